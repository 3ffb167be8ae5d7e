//! The bugs of issue 23, each with the test that failed before its fix.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures_util::{FutureExt, SinkExt, StreamExt};

use super::*;
use crate::{Heartbeat, Reconnect};

#[test]
fn heartbeat_pings_every_interval_not_every_interval_plus_timeout() {
    fresh();
    let beat = Heartbeat::new(ms(100), ms(500));
    let (socket, _log) = start(WebSocket::builder("ws://a").heartbeat(beat));
    assert!(sim::open(""));
    let opened = sim::now();
    // A server that answers every ping at once.
    for _ in 0..100 {
        sim::advance(10);
        let pings = sent(0).len();
        let heard = sim::with(|w| w.conns[0].heard.last().map(|(at, _)| *at));
        if pings > 0 && heard.is_none_or(|at| at < *sent_at(0).last().unwrap()) {
            sim::receive(text("ping"));
        }
    }
    assert_eq!(sim::now() - opened, 1_000);
    let expected: Vec<u64> = (1..=10).map(|n| opened + n * 100).collect();
    assert_eq!(sent_at(0), expected, "a ping every interval");
    assert_eq!(socket.state(), State::Open);
    drop_and_check(socket);
}

#[test]
fn heartbeat_finds_a_server_that_stalls_right_after_answering_a_ping() {
    for (interval, timeout) in [(200, 800), (100, 500), (25_000, 10_000)] {
        fresh();
        let beat = Heartbeat::new(ms(interval), ms(timeout));
        let (socket, log) = start(WebSocket::builder("ws://a").heartbeat(beat));
        assert!(sim::open(""));
        sim::advance(interval);
        assert_eq!(sent(0), [text("ping")]);
        // The worst case: the answer comes at once, then the server stalls.
        assert!(sim::receive(text("ping")));
        let answered = sim::now();
        sim::advance(10 * (interval + timeout));
        let log = log.borrow();
        let (at, close) = (log.iter())
            .find(|(_, event)| lost(CloseCause::HeartbeatLost)(event))
            .expect("declared dead");
        assert_eq!(
            at - answered,
            interval + timeout,
            "found within interval + timeout of the last message, for ({interval}, {timeout}): {close:?}"
        );
        drop(log);
        drop_and_check(socket);
    }
}

#[test]
fn close_while_connecting_is_the_applications_clean_close() {
    fresh();
    let (socket, log) = start(WebSocket::builder("ws://a"));
    socket.close_with(4001, "bye").unwrap();
    assert!(events(&log).is_empty(), "nothing inside the call");
    sim::settle();
    assert_eq!(events(&log), [Event::Close(application(4001, "bye"))]);
    assert_eq!(socket.state(), State::Closed);
    assert!(released(0));
    drop_and_check(socket);
}

#[test]
fn close_while_waiting_to_reconnect_is_reported_as_while_connecting() {
    fresh();
    let policy = Reconnect::new().initial_delay(ms(100));
    let (socket, log) = start(WebSocket::builder("ws://a").reconnect(policy));
    assert!(sim::fail());
    assert_eq!(socket.state(), State::Reconnecting);
    socket.close_with(4001, "bye").unwrap();
    sim::advance(1_000);
    let all = events(&log);
    assert_eq!(all.last(), Some(&Event::Close(application(4001, "bye"))));
    assert_eq!(all.iter().filter(|e| matches!(e, Event::Error)).count(), 1);
    assert_eq!(conns(), 1, "never reconnected");
    // And the same while connecting, with reconnection on.
    fresh();
    let policy = Reconnect::new().initial_delay(ms(100));
    let (socket, log) = start(WebSocket::builder("ws://a").reconnect(policy));
    socket.close().unwrap();
    sim::advance(1_000);
    assert_eq!(events(&log), [Event::Close(application(1000, ""))]);
    assert_eq!(conns(), 1);
    drop_and_check(socket);
}

#[test]
fn url_is_the_same_in_every_state() {
    fresh();
    let policy = Reconnect::new().initial_delay(ms(100));
    let (socket, _log) = start(WebSocket::builder("ws://host:1").reconnect(policy));
    let url = "ws://host:1";
    assert_eq!(socket.url(), url);
    sim::open("");
    assert_eq!(socket.url(), url);
    sim::close(CloseEvent::new(1001, "away", true));
    assert_eq!(socket.state(), State::Reconnecting);
    assert_eq!(socket.url(), url);
    sim::advance(1_000);
    assert_eq!(socket.state(), State::Connecting);
    assert_eq!(socket.url(), url);
    socket.close().unwrap();
    sim::settle();
    assert_eq!(socket.state(), State::Closed);
    assert_eq!(socket.url(), url);
    drop_and_check(socket);
}

#[test]
fn a_server_that_picks_none_of_the_offered_subprotocols_fails_the_attempt() {
    fresh();
    let (socket, log) = start(WebSocket::builder("ws://a").protocols(["chat", "v2"]));
    assert!(sim::open(""));
    sim::settle();
    let failed = CloseEvent::new(
        1006,
        "the server chose none of the offered subprotocols",
        false,
    )
    .with_cause(CloseCause::HandshakeFailed);
    assert_eq!(events(&log), [Event::Error, Event::Close(failed)]);
    assert_eq!(socket.state(), State::Closed);
    assert!(released(0));
    // One the server picks opens.
    fresh();
    let (socket, log) = start(WebSocket::builder("ws://a").protocols(["chat", "v2"]));
    assert!(sim::open("v2"));
    assert_eq!(events(&log), [Event::Open]);
    assert_eq!(socket.protocol(), "v2");
    drop_and_check(socket);
}

/// Issue 25: WebKit fails an attempt it refuses itself (to a blocked port) with an error while
/// the socket is still connecting, and never closes it. The attempt ends all the same, as in
/// the other engines: the error, then one close with 1006, and the next attempt on time.
#[test]
fn an_error_with_no_close_after_it_ends_the_attempt_as_in_other_engines() {
    let failed = CloseEvent::new(1006, "", false).with_cause(CloseCause::HandshakeFailed);
    // The engines that close (`sim::fail`) and WebKit, alike: what the application sees,
    // the state in its error callback included.
    for webkit in [false, true] {
        fresh();
        let (builder, log) = logged(WebSocket::builder("ws://a"));
        let state_on_error = Rc::new(Cell::new(None));
        let socket = (builder.on_error({
            let state_on_error = state_on_error.clone();
            move |socket| state_on_error.set(Some(socket.state()))
        }))
        .connect()
        .unwrap();
        assert!(if webkit {
            sim::fail_without_close()
        } else {
            sim::fail()
        });
        sim::settle();
        assert_eq!(
            events(&log),
            [Event::Close(failed.clone())],
            "webkit: {webkit}"
        );
        assert_eq!(state_on_error.get(), Some(State::Closing));
        assert_eq!(socket.state(), State::Closed);
        assert!(released(0));
        drop_and_check(socket);
    }
    // With reconnection, the next attempt comes on time and opens.
    fresh();
    let policy = Reconnect::new().initial_delay(ms(100));
    let (socket, log) = start(WebSocket::builder("ws://a").reconnect(policy));
    assert!(sim::fail_without_close());
    sim::settle();
    let next = match &events(&log)[..] {
        [Event::Error, Event::Close(close), Event::Reconnecting(next)] if *close == failed => *next,
        other => panic!("{other:?}"),
    };
    sim::advance(next.delay.as_millis() as u64);
    assert_eq!(conns(), 2);
    assert!(sim::open(""));
    assert_eq!(events(&log).last(), Some(&Event::Open));
    drop_and_check(socket);
    // The error callback's close is the one close.
    fresh();
    let (builder, log) = logged(WebSocket::builder("ws://a").reconnect(Reconnect::new()));
    let socket = (builder.on_error(|socket| socket.close_with(4000, "bye").unwrap()))
        .connect()
        .unwrap();
    assert!(sim::fail_without_close());
    sim::advance(1_000);
    assert_eq!(events(&log), [Event::Close(application(4000, "bye"))]);
    assert_eq!(conns(), 1, "never reconnected");
    drop_and_check(socket);
}

#[test]
fn an_echo_of_the_heartbeat_is_the_heartbeats_own() {
    fresh();
    let beat = Heartbeat::new(ms(100), ms(500)).message("hb");
    let (socket, log) = start(WebSocket::builder("ws://a").heartbeat(beat));
    let mut stream = socket.events();
    sim::open("");
    sim::advance(100);
    sim::receive(text("hb"));
    sim::receive(text("news"));
    assert_eq!(events(&log), [Event::Open, Event::Message(text("news"))]);
    let streamed: Vec<Event> =
        std::iter::from_fn(|| stream.next().now_or_never().flatten()).collect();
    assert_eq!(streamed, [Event::Open, Event::Message(text("news"))]);
    drop(stream);
    drop_and_check(socket);
}

#[test]
fn heartbeat_replies_it_recognises_are_not_delivered() {
    fresh();
    let beat = Heartbeat::new(ms(100), ms(500)).reply(|m| m == &text("pong"));
    let (socket, log) = start(WebSocket::builder("ws://a").heartbeat(beat));
    sim::open("");
    sim::advance(100);
    sim::receive(text("pong"));
    sim::receive(text("ping"));
    assert_eq!(events(&log), [Event::Open, Event::Message(text("ping"))]);
    drop_and_check(socket);
}

#[test]
fn closed_resolves_to_the_final_close_on_the_socket_and_both_halves() {
    fresh();
    let (socket, _log) = start(WebSocket::builder("ws://a"));
    sim::open("");
    let (sink, stream) = socket.messages().split();
    type Got = Rc<RefCell<Vec<(&'static str, CloseEvent, State)>>>;
    let got: Got = Rc::default();
    for name in ["socket", "sink", "stream"] {
        let (got, socket, sink) = (got.clone(), socket.clone(), sink.socket().clone());
        let stream_socket = stream.socket().clone();
        sim::spawn(async move {
            let close = match name {
                "socket" => socket.closed().await,
                "sink" => crate::MessageSink::new(sink).closed().await,
                _ => stream_socket.closed().await,
            };
            got.borrow_mut().push((name, close, socket.state()));
        });
    }
    sim::settle();
    assert!(got.borrow().is_empty());
    let sink_closed = Rc::new(Cell::new(None));
    {
        let (mut sink, socket, done) = (sink, socket.clone(), sink_closed.clone());
        sim::spawn(async move {
            let result = sink.close().await;
            done.set(Some((result, socket.state())));
        });
    }
    sim::settle();
    assert_eq!(socket.state(), State::Closing);
    assert_eq!(
        sink_closed.take(),
        None,
        "the sink's close waits for the socket's"
    );
    assert_eq!(closes(0), [(1000, String::new())]);
    // The server answers the close.
    sim::close(CloseEvent::new(1000, "", true));
    sim::settle();
    let expected = application(1000, "");
    let got = got.borrow();
    assert_eq!(got.len(), 3);
    for (name, close, state) in got.iter() {
        assert_eq!(close, &expected, "{name}");
        assert_eq!(*state, State::Closed, "{name}");
    }
    assert_eq!(sink_closed.take(), Some((Ok(()), State::Closed)));
    let mut stream = stream;
    assert_eq!(stream.next().now_or_never(), Some(None));
    assert_eq!(stream.close_event(), Some(&expected));
    drop(got);
    drop(stream);
    drop_and_check(socket);
}
