//! `client/tests/hostile.rs`, natively: the client used the way a hostile or careless
//! application would (every public method from inside every callback, in every state, after
//! errors; handles, streams and sinks dropped at odd moments; junk from the URL provider; queue
//! and high-water-mark edge cases). Same names, same assertions; the browser keeps what only a
//! browser shows (see its header).

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};

use super::*;
use crate::{Overflow, Sent, WeakWebSocket};

/// `close()` called by the URL provider (the one piece of application code that runs while an
/// attempt is being made) was overridden: the attempt went ahead, the socket reported its
/// close and let go of its listeners, and a connection stayed open behind it.
#[test]
fn close_from_the_url_provider_means_never_again() {
    fresh();
    let slot: Rc<RefCell<Option<WeakWebSocket>>> = Rc::default();
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect())
        .url_provider({
            let slot = slot.clone();
            move || {
                if let Some(socket) = slot.borrow().as_ref().and_then(WeakWebSocket::upgrade) {
                    socket.close_with(4000, "from the provider").unwrap();
                }
                "ws://b".to_owned()
            }
        })
        .connect()
        .unwrap();
    *slot.borrow_mut() = Some(socket.downgrade());
    let (socket, mut events) = opened(socket);
    dropped_by_the_server(&socket, &mut events);
    sim::advance(1_000);
    assert_eq!(rest(&mut events), [close(4000, "from the provider")]);
    sim::advance(1_000);
    assert_eq!(socket.state(), State::Closed);
    assert_eq!(
        conns(),
        1,
        "a connection opened after the socket's last close"
    );
    assert_eq!(live_closures(), 0);
    drop_and_check(socket);
}

/// The error event of a connection that will be reopened. Bug: `on_error` saw
/// `State::Closed` ("closed for good") and its send was refused, while `on_close` of the same
/// failure, and every later moment, saw `Reconnecting` and queued. Now it sees `Closing`.
#[test]
fn on_error_before_a_reconnection_acts_as_on_close() {
    fresh();
    let seen: Seen<(&str, State, Result<Sent, Error>)> = Rc::default();
    let socket = WebSocket::builder("ws://unreachable")
        .reconnect(slow_reconnect())
        .on_error({
            let seen = seen.clone();
            move |socket| {
                let state = socket.state();
                seen.borrow_mut()
                    .push(("error", state, socket.send("from on_error")));
            }
        })
        .on_close({
            let seen = seen.clone();
            move |socket, _| {
                let state = socket.state();
                seen.borrow_mut()
                    .push(("close", state, socket.send("from on_close")));
            }
        })
        .connect()
        .unwrap();
    let mut events = socket.events();
    assert!(sim::fail());
    let failure = waiting(&mut events);
    assert!(
        matches!(
            failure.as_slice(),
            [Event::Error, Event::Close(_), Event::Reconnecting(_)]
        ),
        "{failure:?}"
    );
    socket.close().unwrap();
    let rest = rest(&mut events);
    assert_eq!(
        *seen.borrow(),
        [
            // The close is under way: not `Closed`, which is for good. Both sends queue.
            ("error", State::Closing, Ok(Sent::Queued)),
            ("close", State::Reconnecting, Ok(Sent::Queued)),
            // The application's close, for good.
            ("close", State::Closed, Err(Error::NotOpen(State::Closed))),
        ]
    );
    // And both come back once the socket is closed.
    let closed = Error::NotOpen(State::Closed);
    assert_eq!(rest.len(), 3, "{rest:?}");
    assert_eq!(rest[0], close(1000, ""));
    assert!(is_unsent(&rest[1], "from on_error", &closed), "{rest:?}");
    assert!(is_unsent(&rest[2], "from on_close", &closed), "{rest:?}");
}

/// `close_with` from `on_error` of a refused attempt (the socket is `Reconnecting` there):
/// the docs promise that while waiting to reconnect, the close event with the application's
/// code and reason ends the socket's events. It was the refused attempt's 1006 instead.
#[test]
fn close_from_on_error_of_a_refused_attempt_ends_with_its_code() {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect().max_attempts(3))
        .url_provider(|| "ws://refuse".to_owned())
        .on_error(|socket| {
            if socket.state() == State::Reconnecting {
                socket.close_with(4000, "stop").unwrap();
            }
        })
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    dropped_by_the_server(&socket, &mut events);
    sim::advance(1_000);
    let rest = rest(&mut events);
    assert_eq!(rest, [Event::Error, close(4000, "stop")]);
    assert_eq!(refused(), ["ws://refuse"], "one attempt, refused");
    drop_and_check(socket);
}

/// A stream made after `close()` while waiting to reconnect ended at once, without the close
/// event that the same stream made after `close()` on an open connection hears.
#[test]
fn a_stream_made_after_close_hears_the_close_in_every_state() {
    // Open: the stream made after `close` hears it.
    fresh();
    let (socket, events) = opened(WebSocket::connect("ws://a").unwrap());
    drop(events);
    socket.close_with(4000, "open").unwrap();
    let mut events = socket.events();
    assert!(sim::close(CloseEvent::new(4000, "open", true)));
    assert_eq!(rest(&mut events), [close(4000, "open")]);

    // Waiting to reconnect: the same.
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(slow_reconnect())
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    dropped_by_the_server(&socket, &mut events);
    drop(events);
    socket.close_with(4000, "waiting").unwrap();
    let mut events = socket.events();
    assert_eq!(rest(&mut events), [close(4000, "waiting")]);
    drop_and_check(socket);
}

/// Dropping the last handle is the application letting go of the socket: the queue goes with
/// it, as documented, and the streams end with nothing more (no close, no `Unsent`), and no
/// callback runs.
#[test]
fn dropping_the_last_handle_discards_the_queue_with_the_socket() {
    fresh();
    let unsent: Seen<Message> = Rc::default();
    let socket = WebSocket::builder("ws://a")
        .reconnect(slow_reconnect())
        .on_unsent({
            let unsent = unsent.clone();
            move |_, event| unsent.borrow_mut().push(event.message)
        })
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    dropped_by_the_server(&socket, &mut events);
    socket.send("one").unwrap();
    socket.send(vec![2]).unwrap();
    assert_eq!(socket.queued(), 2);
    drop(socket);
    assert_eq!(rest(&mut events), []);
    assert!(unsent.borrow().is_empty());
    sim::advance(20_000);
    assert_eq!(conns(), 1, "an attempt after the last handle went");
    assert_nothing_left();
}

/// A URL provider is application code given to the builder, like the callbacks; unlike them,
/// it was never let go of. One that holds a handle (say, to log the socket's state) kept its
/// socket, queue and callbacks alive forever, long after the last close.
#[test]
fn a_url_provider_that_holds_its_socket_is_let_go_after_the_last_close() {
    fresh();
    let slot: Rc<RefCell<Option<WebSocket>>> = Rc::default();
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect())
        .url_provider({
            let slot = slot.clone();
            move || {
                if let Some(socket) = slot.borrow().as_ref() {
                    let _ = format!("reconnecting {socket:?}");
                }
                "ws://a".to_owned()
            }
        })
        .connect()
        .unwrap();
    *slot.borrow_mut() = Some(socket.clone());
    drop(slot);
    let weak = socket.downgrade();
    let (socket, mut events) = opened(socket);
    socket.close().unwrap();
    assert!(sim::close(CloseEvent::new(1000, "", true)));
    assert_eq!(rest(&mut events), [close(1000, "")]);
    drop(socket);
    sim::settle();
    assert!(
        weak.upgrade().is_none(),
        "the finished socket is still alive"
    );
    assert_nothing_left();
}

thread_local! {
    /// What the hostile waker below runs when it is woken.
    static ON_WAKE: RefCell<Option<Box<dyn FnMut()>>> = RefCell::new(None);
}

/// A waker that runs application code at once, as an executor that polls on wake would.
struct RunsOnWake;

impl Wake for RunsOnWake {
    fn wake(self: Arc<Self>) {
        let hook = ON_WAKE.with(|slot| slot.borrow_mut().take());
        if let Some(mut hook) = hook {
            hook();
            ON_WAKE.with(|slot| *slot.borrow_mut() = Some(hook));
        }
    }
}

/// The library wakes readers "outside the borrow" because "an executor may poll the stream
/// right away". If that reader makes a stream (or a `messages()`), it is made while the
/// socket has its list of streams taken out, and the list put back over it drops the new
/// stream's feed: the stream ends at once, with the socket still open.
#[test]
fn a_stream_made_by_a_reader_woken_during_delivery_hears_what_follows() {
    fresh();
    let (socket, mut first) = opened(WebSocket::connect("ws://a").unwrap());
    let made: Rc<RefCell<Option<Events>>> = Rc::default();
    ON_WAKE.with(|slot| {
        let weak = socket.downgrade();
        let made = made.clone();
        *slot.borrow_mut() = Some(Box::new(move || {
            if made.borrow().is_some() {
                return;
            }
            if let Some(socket) = weak.upgrade() {
                *made.borrow_mut() = Some(socket.events());
            }
        }));
    });
    // Register the hostile waker with the first stream, then make something to deliver, and
    // leave the stream alone (polling it would replace the waker) until it is delivered.
    let waker = Waker::from(Arc::new(RunsOnWake));
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut first).poll_next(&mut cx).is_pending());
    socket.send("wake up").unwrap();
    sim::serve();
    ON_WAKE.with(|slot| slot.borrow_mut().take());
    let mut made = made.borrow_mut().take().expect("the waker ran");
    assert_eq!(waiting(&mut first), [echoed("wake up")]);
    socket.send("after").unwrap();
    sim::serve();
    assert_eq!(
        waiting(&mut made),
        [echoed("after")],
        "the stream ended while its socket is open"
    );
    assert!(!ended(&mut made));
    drop((first, made));
    drop_and_check(socket);
}

thread_local! {
    /// The only handle of a socket, let go of when the waker below is dropped.
    static KEPT: RefCell<Option<WebSocket>> = const { RefCell::new(None) };
}

/// A waker whose last copy owns, in effect, a socket: as the waker of an executor's task
/// owns the task, and the task its future, which may hold the socket's last handle.
struct OwnsTheSocket;

impl Wake for OwnsTheSocket {
    fn wake(self: Arc<Self>) {}
}

impl Drop for OwnsTheSocket {
    fn drop(&mut self) {
        drop(KEPT.with(|slot| slot.borrow_mut().take()));
    }
}

/// `Events::poll_next` replaces the stored waker while it holds the inbox's `RefCell` borrow.
/// When the old waker was the last owner of the socket, dropping it drops the socket, whose
/// streams' feeds then borrow that same inbox to end it: "already borrowed", a panic from
/// `poll_next`.
#[test]
fn a_stream_polled_with_a_new_waker_when_the_old_one_owned_the_socket() {
    fresh();
    let (socket, mut events) = opened(WebSocket::connect("ws://a").unwrap());
    KEPT.with(|slot| *slot.borrow_mut() = Some(socket));
    {
        let waker = Waker::from(Arc::new(OwnsTheSocket));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut events).poll_next(&mut cx).is_pending());
    }
    // The stream holds the last copy of that waker; polling with another one drops it, and
    // with it the socket: the stream ends (at the latest when polled again).
    assert_ne!(events.next().now_or_never(), Some(Some(Event::Open)));
    assert!(ended(&mut events));
    assert!(KEPT.with(|slot| slot.borrow().is_none()));
    assert_eq!(closes(0), [(1000, String::new())]);
    assert_nothing_left();
}

/// Between the server's close frame and the close event the socket is `Closing`. With
/// reconnection on, a send there is queued for the next connection, as while `Reconnecting`;
/// but `send_async` (and the sinks) took `Closing` for a state where a send "fails at once"
/// and did not wait for room in a full queue: `QueueFull`, where `Reconnecting` waits.
#[test]
fn send_async_waits_for_room_while_the_server_closes() {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect().queue_capacity(1))
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    // The server's close frame is read; its close event is yet to come.
    assert!(sim::half_close());
    assert_eq!(socket.state(), State::Closing);
    socket.send("fills the queue").unwrap();
    let result = spawned({
        let socket = socket.clone();
        async move { socket.send_async("waits for room").await }
    });
    sim::advance(50);
    assert_eq!(*result.borrow(), None, "a full queue took a message");
    assert!(sim::close(CloseEvent::new(4003, "bye", true)));
    sim::advance(1_000);
    assert!(sim::open(""));
    // It looks again within 16 ms.
    sim::advance(20);
    assert_eq!(
        *result.borrow(),
        Some(Ok(Sent::Now)),
        "a send_async while closing, sent once the next connection opened"
    );
    sim::serve();
    let messages: Vec<Event> = (waiting(&mut events).into_iter())
        .filter(|event| matches!(event, Event::Message(_)))
        .collect();
    assert_eq!(
        messages,
        [echoed("fills the queue"), echoed("waits for room")]
    );
    drop(events);
    drop_and_check(socket);
}

/// Close twice with different codes while open: the first wins, the second is a no-op, and a
/// send between them is a typed error.
#[test]
fn close_twice_while_open_keeps_the_first_close() {
    fresh();
    let (socket, mut events) = opened(WebSocket::connect("ws://a").unwrap());
    socket.close_with(4000, "first").unwrap();
    assert_eq!(socket.send("between"), Err(Error::NotOpen(State::Closing)));
    socket.close_with(4001, "second").unwrap();
    socket.close().unwrap();
    assert_eq!(closes(0), [(4000, "first".to_owned())], "one close frame");
    assert!(sim::close(CloseEvent::new(4000, "first", true)));
    assert_eq!(rest(&mut events), [close(4000, "first")]);
    socket.close_with(4002, "after").unwrap();
    assert_eq!(socket.send("after"), Err(Error::NotOpen(State::Closed)));
    drop_and_check(socket);
}

/// Close twice while waiting to reconnect, then send: one close, the queued message reported,
/// the late send refused, and the timer gone.
#[test]
fn close_twice_while_waiting_then_send() {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(slow_reconnect())
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    dropped_by_the_server(&socket, &mut events);
    socket.send("queued").unwrap();
    socket.close_with(4000, "first").unwrap();
    socket.close_with(4001, "second").unwrap();
    assert_eq!(socket.send("late"), Err(Error::NotOpen(State::Closed)));
    let rest = rest(&mut events);
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert_eq!(rest[0], close(4000, "first"));
    assert!(is_unsent(
        &rest[1],
        "queued",
        &Error::NotOpen(State::Closed)
    ));
    assert_eq!(live_closures(), 0, "the timer is gone");
    drop_and_check(socket);
}

/// Every public method from `on_open`, `on_message`, `on_close` and `on_unsent`, and the state
/// each sees, without a panic and with the effect a stream consumer would get.
#[test]
fn every_method_from_every_callback() {
    fresh();
    let seen: Seen<String> = Rc::default();
    let log = |seen: &Seen<String>| {
        let seen = seen.clone();
        move |line: String| seen.borrow_mut().push(line)
    };
    let (on_open, on_message, on_close, on_unsent) =
        (log(&seen), log(&seen), log(&seen), log(&seen));
    let socket = WebSocket::builder("ws://a")
        .reconnect(slow_reconnect().final_code(4002))
        .on_open(move |socket| {
            let _ = (socket.url(), socket.protocol(), socket.extensions());
            let _ = (socket.buffered_amount(), socket.queued());
            let _events = socket.events();
            let _messages = socket.messages();
            let _sink = socket.sink();
            let _weak = socket.downgrade().upgrade().unwrap();
            on_open(format!("open {} {:?}", socket.state(), socket.send("a")));
        })
        .on_message(move |socket, message| {
            let reply = if message == text("Received:  a") {
                socket.send("b")
            } else {
                socket.send("!close 4002 final")
            };
            on_message(format!("message {message:?} {reply:?}"));
        })
        .on_close(move |socket, event| {
            let state = socket.state();
            let reply = socket.send("c");
            assert_eq!(
                socket.close_with(1001, ""),
                Err(Error::InvalidCloseCode(1001))
            );
            socket.close().unwrap();
            on_close(format!("close {} {state} {reply:?}", event.code));
        })
        .on_unsent(move |socket, unsent| {
            on_unsent(format!("unsent {:?} {}", unsent.message, socket.state()));
        })
        .connect()
        .unwrap();
    let mut events = socket.events();
    assert!(sim::open(""));
    sim::serve();
    let rest = rest(&mut events);
    let expected = [
        "open open Ok(Now)",
        r#"message Text("Received:  a") Ok(Now)"#,
        r#"message Text("Received:  b") Ok(Now)"#,
        "close 4002 closed Err(NotOpen(Closed))",
    ];
    assert_eq!(*seen.borrow(), expected);
    assert_eq!(rest.last(), Some(&server_close(4002, "final")));
    assert_eq!(socket.state(), State::Closed);
    drop_and_check(socket);
}

/// `events()` and `messages()` after the socket finished end at once; its sink keeps failing
/// with a typed error, driven any way, and never panics.
#[test]
fn streams_and_sinks_made_after_the_end() {
    fresh();
    let (socket, mut events) = opened(WebSocket::connect("ws://a").unwrap());
    socket.close().unwrap();
    assert!(sim::close(CloseEvent::new(1000, "", true)));
    rest(&mut events);
    let mut late = socket.events();
    assert!(ended(&mut late));
    assert!(ended(&mut late));
    let mut messages = socket.messages();
    assert_eq!(messages.next().now_or_never(), Some(None));
    let closed = Error::NotOpen(State::Closed);
    for _ in 0..3 {
        let late = messages.send("late".into()).now_or_never();
        assert_eq!(late, Some(Err(closed.clone())));
        let late = socket.send_async("late").now_or_never();
        assert_eq!(late, Some(Err(closed.clone())));
    }
    assert_eq!(messages.close().now_or_never(), Some(Ok(())));
    assert_eq!(messages.close().now_or_never(), Some(Ok(())));
    assert_eq!(
        messages.close_with(999, ""),
        Err(Error::InvalidCloseCode(999))
    );
    drop(messages);
    drop_and_check(socket);
}

/// Dropping the receiving half keeps the sending half working, and the other way round.
#[test]
fn messages_split_and_one_half_dropped() {
    fresh();
    let (socket, mut events) = opened(WebSocket::connect("ws://a").unwrap());
    let (mut sink, stream) = socket.messages().split();
    drop(socket);
    drop(stream);
    let sent = sink.send("stream gone".into()).now_or_never();
    assert_eq!(sent, Some(Ok(())));
    sim::serve();
    assert_eq!(waiting(&mut events), [echoed("stream gone")]);

    let (sink_two, mut stream) = sink.socket().messages().split();
    drop(sink);
    drop(sink_two);
    stream.socket().send("sinks gone").unwrap();
    sim::serve();
    assert_eq!(
        stream.next().now_or_never(),
        Some(Some(text("Received:  sinks gone")))
    );
    assert_eq!(waiting(&mut events), [echoed("sinks gone")]);
    // The last handle: the stream.
    drop(stream);
    assert!(ended(&mut events));
    assert_eq!(closes(0), [(1000, String::new())]);
    assert_nothing_left();
}

/// An awaited `open` dropped midway, while connecting and while waiting to reconnect, leaves
/// nothing behind.
#[test]
fn open_dropped_midway_leaves_nothing_behind() {
    fresh();
    let mut opening = Box::pin(WebSocket::open("ws://a"));
    assert!((&mut opening).now_or_never().is_none());
    drop(opening);
    assert_nothing_left();

    fresh();
    let mut opening = Box::pin(
        WebSocket::builder("ws://a")
            .reconnect(slow_reconnect())
            .open(),
    );
    assert!((&mut opening).now_or_never().is_none());
    assert!(sim::fail());
    sim::advance(300);
    assert!(
        (&mut opening).now_or_never().is_none(),
        "finished while it should be waiting"
    );
    assert_eq!(live_closures(), 1, "the reconnection timer");
    drop(opening);
    sim::advance(20_000);
    assert_eq!(conns(), 1);
    assert_nothing_left();
}

/// A high-water mark of 0: every send waits for an empty buffer, and everything goes out in
/// order, through `send_async`, a sink, and the reconnection queue.
#[test]
fn a_high_water_mark_of_zero_still_sends_everything_in_order() {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .high_water_mark(0)
        .reconnect(quick_reconnect().queue_capacity(8))
        .connect()
        .unwrap();
    let mut events = socket.events();
    // Queued while connecting.
    for n in 0..8 {
        socket.send(format!("queued {n}")).unwrap();
    }
    let done = spawned({
        let socket = socket.clone();
        async move {
            let mut sink = socket.sink();
            for n in 0..8 {
                socket.send_async(vec![n; 20_000]).await.unwrap();
                sink.send(format!("sink {n}").into()).await.unwrap();
            }
        }
    });
    assert!(sim::open(""));
    // The network takes what is buffered once a millisecond.
    for _ in 0..1_000 {
        if done.borrow().is_some() && socket.queued() == 0 {
            break;
        }
        sim::flush();
        sim::advance(1);
    }
    assert!(done.borrow().is_some(), "the sends never finished");
    sim::serve();
    let mut expected = vec![Event::Open];
    for n in 0..8 {
        expected.push(echoed(&format!("queued {n}")));
    }
    for n in 0..8 {
        expected.push(binary(vec![n; 20_000]));
        expected.push(echoed(&format!("sink {n}")));
    }
    assert!(waiting(&mut events) == expected, "out of order");
    // Each was handed over once the buffer was empty: never two at once.
    let at = sent_at(0);
    assert!(at.windows(2).all(|pair| pair[0] < pair[1]), "{at:?}");
    drop(events);
    drop_and_check(socket);
}

/// A URL provider that returns junk (URLs the transport refuses): each attempt fails with an
/// error and a 1006 that names the URL, until the attempts are used up.
#[test]
fn a_url_provider_that_returns_junk() {
    fresh();
    let junk = [
        "refuse:",
        "ws://[::1 refuse",
        "ftp://refuse/",
        "ws://refuse/#x",
    ];
    let asked = Rc::new(Cell::new(0));
    let socket = WebSocket::builder("ws://a")
        .reconnect(
            quick_reconnect()
                .initial_delay(ms(10))
                .max_attempts(junk.len() as u32),
        )
        .url_provider({
            let asked = asked.clone();
            move || {
                let url = junk[asked.get() % junk.len()];
                asked.set(asked.get() + 1);
                url.to_owned()
            }
        })
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    assert!(sim::fail());
    sim::advance(20_000);
    let rest = rest(&mut events);
    let closes: Vec<&CloseEvent> = (rest.iter())
        .filter_map(|event| match event {
            Event::Close(close) => Some(close),
            _ => None,
        })
        .collect();
    assert_eq!(closes.len(), junk.len() + 1, "{rest:?}");
    for (close, url) in closes[1..].iter().zip(junk) {
        assert_eq!(
            (close.code, close.cause),
            (1006, CloseCause::HandshakeFailed)
        );
        assert!(close.reason.contains(url), "{close:?}");
    }
    assert_eq!(rest.iter().filter(|e| **e == Event::Error).count(), 4);
    assert!(!rest.contains(&Event::Open), "{rest:?}");
    assert_eq!(asked.get(), junk.len());
    assert_eq!(refused(), junk);
    assert_eq!(socket.state(), State::Closed);
    drop_and_check(socket);
}

/// The application's only handle, dropped from inside a callback: the socket closes with 1000
/// once the callback returns, its streams end and everything is let go of.
#[test]
fn the_only_handle_dropped_inside_callbacks() {
    // From on_message.
    fresh();
    let socket = WebSocket::builder("ws://a")
        .on_open(|socket| {
            socket.send("drop me").unwrap();
        })
        .on_message(|_, _| drop_only_handle())
        .connect()
        .unwrap();
    let mut events = socket.events();
    keep_only_handle(socket);
    assert!(sim::open(""));
    sim::serve();
    assert_eq!(rest(&mut events), [Event::Open, echoed("drop me")]);
    assert_eq!(closes(0), [(1000, String::new())]);
    assert_nothing_left();

    // From on_reconnect, with a timer scheduled.
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(slow_reconnect())
        .on_reconnect(|_, _| drop_only_handle())
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    keep_only_handle(socket);
    assert!(sim::fail());
    let seen = rest(&mut events);
    assert!(
        matches!(seen.as_slice(), [Event::Close(_), Event::Reconnecting(_)]),
        "{seen:?}"
    );
    sim::advance(20_000);
    assert_eq!(conns(), 1);
    assert_nothing_left();

    // From on_unsent, inside a timer.
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(
            slow_reconnect()
                .queue_capacity(1)
                .overflow(Overflow::DropOldest),
        )
        .on_unsent(|_, _| drop_only_handle())
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    dropped_by_the_server(&socket, &mut events);
    socket.send("a").unwrap();
    socket.send("b").unwrap();
    keep_only_handle(socket);
    let seen = rest(&mut events);
    let full = Error::QueueFull { capacity: 1 };
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(is_unsent(&seen[0], "a", &full), "{seen:?}");
    sim::advance(20_000);
    assert_eq!(conns(), 1);
    assert_nothing_left();
}

/// A send that pushes a message out of a full queue reports it later, never inside the call;
/// a `send_async` waiting for room that is dropped accepted nothing; one still waiting when
/// the socket closes for good resolves with a typed error.
#[test]
fn full_queues_and_pending_sends() {
    fresh();
    let inside = Rc::new(Cell::new(false));
    let reported: Seen<Message> = Rc::default();
    let socket = WebSocket::builder("ws://a")
        .reconnect(
            slow_reconnect()
                .queue_capacity(1)
                .overflow(Overflow::DropOldest),
        )
        .on_unsent({
            let (inside, reported) = (inside.clone(), reported.clone());
            move |_, unsent| {
                assert!(!inside.get(), "on_unsent ran inside send");
                reported.borrow_mut().push(unsent.message);
            }
        })
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    dropped_by_the_server(&socket, &mut events);
    inside.set(true);
    socket.send("a").unwrap();
    socket.send("b").unwrap();
    inside.set(false);
    assert!(reported.borrow().is_empty());
    sim::settle();
    assert_eq!(*reported.borrow(), [text("a")]);
    socket.close().unwrap();
    rest(&mut events);

    // Overflow::Error: send_async waits for room.
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(slow_reconnect().queue_capacity(1))
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    dropped_by_the_server(&socket, &mut events);
    socket.send("a").unwrap();
    let mut dropped = Box::pin(socket.send_async("dropped"));
    assert!((&mut dropped).now_or_never().is_none());
    sim::advance(50);
    assert!(
        (&mut dropped).now_or_never().is_none(),
        "a full queue took a message"
    );
    drop(dropped);
    let mut sink = socket.sink();
    {
        let mut dropped_too = sink.send("dropped too".into());
        assert!((&mut dropped_too).now_or_never().is_none());
        sim::advance(50);
        assert!(
            (&mut dropped_too).now_or_never().is_none(),
            "a full queue took a message"
        );
    }
    assert_eq!(socket.queued(), 1, "a dropped send left a message behind");
    let result = spawned({
        let socket = socket.clone();
        async move { socket.send_async("waiting").await }
    });
    sim::advance(50);
    assert_eq!(*result.borrow(), None);
    socket.close_with(4000, "done").unwrap();
    // It looks again within 16 ms.
    sim::advance(20);
    assert_eq!(*result.borrow(), Some(Err(Error::NotOpen(State::Closed))));
    let rest = rest(&mut events);
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert_eq!(rest[0], close(4000, "done"));
    assert!(is_unsent(&rest[1], "a", &Error::NotOpen(State::Closed)));
    // The sink is still usable, with a typed error.
    assert_eq!(
        sink.send("late".into()).now_or_never(),
        Some(Err(Error::NotOpen(State::Closed)))
    );
    drop(sink);
    drop_and_check(socket);
}

/// Dropping every handle while waiting to reconnect frees the timer, lets go of everything,
/// and ends the streams.
#[test]
fn dropping_every_handle_while_waiting_frees_the_timer() {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(slow_reconnect())
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    dropped_by_the_server(&socket, &mut events);
    assert_eq!(live_closures(), 1, "the reconnection timer");
    drop(socket);
    assert!(ended(&mut events));
    assert_eq!(live_closures(), 0);
    sim::advance(20_000);
    assert_eq!(conns(), 1);
    assert_nothing_left();
}

/// `close()` from `on_open` of a connection while the queue still drains at the pace of the
/// high-water mark: what was handed to the transport goes out, the rest comes back as
/// unsent, and nothing is lost or reported twice.
#[test]
fn close_from_on_open_while_the_queue_drains_reports_the_rest() {
    const CHUNK: usize = 64 * 1024;
    const COUNT: usize = 10;
    fresh();
    let left_at_close = Rc::new(Cell::new(usize::MAX));
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect().queue_capacity(COUNT))
        .high_water_mark(CHUNK as u32)
        .on_open({
            let left_at_close = left_at_close.clone();
            move |socket| {
                socket.close_with(4000, "enough").unwrap();
                left_at_close.set(socket.queued());
            }
        })
        .connect()
        .unwrap();
    let mut events = socket.events();
    for n in 0..COUNT {
        socket.send(vec![n as u8; CHUNK]).unwrap();
    }
    assert!(sim::open(""));
    assert!(sim::close(CloseEvent::new(4000, "enough", true)));
    let rest = rest(&mut events);
    let left = left_at_close.get();
    assert!(left > 0 && left < COUNT, "{left} left at the close");
    let unsent: Vec<u8> = rest
        .iter()
        .filter_map(|event| match event {
            Event::Unsent(unsent) => unsent.message.as_binary().map(|data| data[0]),
            _ => None,
        })
        .collect();
    let expected: Vec<u8> = (COUNT - left..COUNT).map(|n| n as u8).collect();
    assert_eq!(unsent, expected);
    // What went out, and what came back: each once, in order.
    let went: Vec<u8> = (sent(0).iter())
        .filter_map(|message| message.as_binary().map(|data| data[0]))
        .collect();
    let all: Vec<u8> = went.iter().chain(&unsent).copied().collect();
    assert_eq!(all, (0..COUNT as u8).collect::<Vec<_>>());
    assert!(matches!(
        rest.iter().rfind(|event| matches!(event, Event::Close(_))),
        Some(Event::Close(CloseEvent { code: 4000, .. }))
    ));
    drop_and_check(socket);
}

/// `open()` against a server that keeps refusing, with reconnection: every attempt gets its
/// error, close and announcement, then the typed error; the timers are gone.
#[test]
fn open_with_reconnection_during_an_outage_gives_up_cleanly() {
    fresh();
    let result = spawned(
        WebSocket::builder("ws://a")
            .reconnect(quick_reconnect().initial_delay(ms(10)).max_attempts(2))
            .open(),
    );
    // The server refuses every handshake.
    for _ in 0..5 {
        sim::fail();
        sim::advance(1_000);
    }
    assert_eq!(conns(), 3, "the first attempt and two more");
    let result = result.borrow_mut().take().expect("open never finished");
    let error = result.map(|_| ()).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::ConnectFailed(CloseEvent {
                code: 1006,
                cause: CloseCause::HandshakeFailed,
                ..
            })
        ),
        "{error}"
    );
    assert_nothing_left();
}

/// A sink driven by hand past a full queue gets `QueueFull`, and stays usable: once the
/// connection opens, its next send goes out.
#[test]
fn a_sink_stays_usable_after_queue_full() {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect().queue_capacity(1))
        .connect()
        .unwrap();
    let mut events = socket.events();
    let mut sink = Box::pin(socket.sink());
    sink.as_mut().start_send("one".into()).unwrap();
    assert_eq!(
        sink.as_mut().start_send("two".into()),
        Err(Error::QueueFull { capacity: 1 })
    );
    assert!(sim::open(""));
    assert_eq!(waiting(&mut events), [Event::Open]);
    assert_eq!(sink.send("three".into()).now_or_never(), Some(Ok(())));
    sim::serve();
    assert_eq!(waiting(&mut events), [echoed("one"), echoed("three")]);
    let closed = spawned(async move { sink.close().await });
    assert_eq!(
        *closed.borrow(),
        None,
        "the sink's close waits for the socket's"
    );
    assert!(sim::close(CloseEvent::new(1000, "", true)));
    assert_eq!(*closed.borrow(), Some(Ok(())));
    assert_eq!(rest(&mut events), [close(1000, "")]);
    drop_and_check(socket);
}

/// The URL provider runs while the socket waits to reconnect: a send from it is queued for
/// the connection it is about to name, and a stream made in it hears that connection open.
#[test]
fn the_url_provider_can_send_and_listen() {
    fresh();
    let slot: Rc<RefCell<Option<WeakWebSocket>>> = Rc::default();
    let made: Rc<RefCell<Option<Events>>> = Rc::default();
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect())
        .url_provider({
            let (slot, made) = (slot.clone(), made.clone());
            move || {
                if let Some(socket) = slot.borrow().as_ref().and_then(WeakWebSocket::upgrade) {
                    assert_eq!(socket.state(), State::Reconnecting);
                    socket.send("from the provider").unwrap();
                    let _ = (socket.url(), socket.queued(), socket.buffered_amount());
                    *made.borrow_mut() = Some(socket.events());
                }
                "ws://b".to_owned()
            }
        })
        .connect()
        .unwrap();
    *slot.borrow_mut() = Some(socket.downgrade());
    let (socket, mut events) = opened(socket);
    dropped_by_the_server(&socket, &mut events);
    sim::advance(1_000);
    assert_eq!(sim::with(|world| world.conns[1].url.clone()), "ws://b");
    assert!(sim::open(""));
    sim::serve();
    assert_eq!(
        waiting(&mut events),
        [Event::Open, echoed("from the provider")]
    );
    let mut made = made.borrow_mut().take().expect("the provider was asked");
    assert_eq!(
        waiting(&mut made),
        [Event::Open, echoed("from the provider")]
    );
    socket.close().unwrap();
    assert!(sim::close(CloseEvent::new(1000, "", true)));
    assert_eq!(rest(&mut made), [close(1000, "")]);
    drop(events);
    drop_and_check(socket);
}
