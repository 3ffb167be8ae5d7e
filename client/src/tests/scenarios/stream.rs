//! The state-machine part of `client/tests/hostile_stream.rs`, natively. That suite runs on
//! `WebSocketStream`, a pulling transport, as the native one is: the simulated transport
//! reads only while the streams have room (`Listener::may_read`), so what the driver makes of
//! a reader that holds back is shown here as well. What the promise-driven transport itself
//! does (its closures, writes under way, Chromium's faults, the page staying quiet) stays in
//! the browser; see its header. Same names, and the same assertions, exact where Chromium
//! loses messages and the driver does not.

use std::cell::Cell;
use std::rc::Rc;

use futures_util::{FutureExt, SinkExt};

use super::*;
use crate::Sent;

/// Every public method from `on_open`, `on_message`, `on_close`, `on_reconnect` and
/// `on_unsent`: the state each sees, the replies, the order; streams made and dropped inside
/// each; `reconnect_now` from each; no panic, nothing left behind.
#[test]
fn every_method_from_every_callback() {
    fresh();
    let seen: Seen<String> = Rc::default();
    let log = |seen: &Seen<String>| {
        let seen = seen.clone();
        move |line: String| seen.borrow_mut().push(line)
    };
    let (on_open, on_message, on_close, on_reconnect, on_unsent) =
        (log(&seen), log(&seen), log(&seen), log(&seen), log(&seen));
    let opens = Rc::new(Cell::new(0));
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect().initial_delay(ms(50)).final_code(4002))
        .on_open(move |socket| {
            let _ = (socket.url(), socket.protocol(), socket.extensions());
            let _ = (socket.buffered_amount(), socket.queued());
            drop(socket.events());
            drop(socket.messages());
            drop(socket.sink());
            // Does nothing while open.
            socket.reconnect_now();
            opens.set(opens.get() + 1);
            let first = if opens.get() == 1 {
                "a"
            } else {
                "after reconnect"
            };
            let sent = socket.send(first);
            on_open(format!(
                "open {} {sent:?} {}",
                socket.state(),
                socket.buffered_amount()
            ));
        })
        .on_message(move |socket, message| {
            drop(socket.events());
            socket.reconnect_now();
            let reply = match &message {
                Message::Text(text) if text == "Received:  a" => Some(socket.send("!drop")),
                Message::Text(text) if text == "Received:  after reconnect" => {
                    Some(socket.send("!close 4002 final"))
                }
                _ => None,
            };
            on_message(format!("message {message:?} {reply:?}"));
        })
        .on_close(move |socket, event| {
            drop(socket.messages());
            let state = socket.state();
            // Queued for the next connection while one is announced; refused once final.
            let reply = socket.send("c");
            let queued = socket.queued();
            assert_eq!(
                socket.close_with(1001, ""),
                Err(Error::InvalidCloseCode(1001))
            );
            on_close(format!("close {} {state} {reply:?} {queued}", event.code));
        })
        .on_reconnect(move |socket, next| {
            drop(socket.events());
            on_reconnect(format!("reconnect {} {}", next.attempt, socket.state()));
            // Skips the backoff: the attempt starts after this callback.
            socket.reconnect_now();
        })
        .on_unsent(move |socket, unsent| {
            on_unsent(format!("unsent {:?} {}", unsent.message, socket.state()));
        })
        .connect()
        .unwrap();
    let mut events = socket.events();
    assert!(sim::open(""));
    sim::serve();
    // At once, not after the backoff.
    sim::settle();
    assert_eq!(conns(), 2);
    assert!(sim::open(""));
    sim::serve();
    let rest = rest(&mut events);
    let expected = [
        "open open Ok(Now) 1",
        r#"message Text("Received:  a") Some(Ok(Now))"#,
        "close 1006 reconnecting Ok(Queued) 1",
        "reconnect 1 reconnecting",
        // "c" (queued in on_close) went out first, before on_open: this one goes out now.
        "open open Ok(Now) 16",
        r#"message Text("Received:  c") None"#,
        r#"message Text("Received:  after reconnect") Some(Ok(Now))"#,
        "close 4002 closed Err(NotOpen(Closed)) 0",
    ];
    assert_eq!(*seen.borrow(), expected);
    assert_eq!(rest.last(), Some(&server_close(4002, "final")));
    assert_eq!(socket.state(), State::Closed);
    drop_and_check(socket);
}

/// `close()` while connecting: nothing inside the call, one close (the application's), no
/// reconnection, what was queued reported, nothing left behind.
#[test]
fn close_while_connecting() {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect())
        .connect()
        .unwrap();
    let mut events = socket.events();
    assert_eq!(socket.state(), State::Connecting);
    socket.send("queued while connecting").unwrap();
    socket.close_with(4000, "early").unwrap();
    socket.close_with(4001, "again").unwrap();
    assert!(matches!(socket.send("late"), Err(Error::NotOpen(_))));
    socket.reconnect_now();
    assert_eq!(waiting(&mut events), [], "inside the calls");
    let closed = Error::NotOpen(State::Closed);
    let rest = rest(&mut events);
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert_eq!(rest[0], close(4000, "early"));
    assert!(is_unsent(&rest[1], "queued while connecting", &closed));
    sim::advance(300);
    assert_eq!(socket.state(), State::Closed);
    assert_eq!(conns(), 1);
    drop(socket);
    assert_nothing_left();
}

/// Each method while closing (the application's close) and after: typed errors, the first
/// close kept, no panic, no reconnection.
#[test]
fn every_method_while_closing_and_after() {
    fresh();
    let (socket, mut events) = opened(WebSocket::connect("ws://a").unwrap());
    socket.close_with(4000, "first").unwrap();
    assert_eq!(socket.state(), State::Closing);
    assert_eq!(socket.send("between"), Err(Error::NotOpen(State::Closing)));
    assert_eq!(
        socket.send_async("between").now_or_never(),
        Some(Err(Error::NotOpen(State::Closing)))
    );
    socket.close_with(4001, "second").unwrap();
    socket.reconnect_now();
    drop(socket.events());
    assert!(sim::close(CloseEvent::new(4000, "first", true)));
    assert_eq!(rest(&mut events), [close(4000, "first")]);
    assert_eq!(socket.buffered_amount(), 0);
    socket.close_with(4002, "after").unwrap();
    socket.reconnect_now();
    sim::advance(1_000);
    assert_eq!(socket.state(), State::Closed, "reconnected after close()");
    assert_eq!(conns(), 1);
    let closed = Error::NotOpen(State::Closed);
    assert_eq!(socket.send("after"), Err(closed.clone()));
    assert_eq!(
        socket.send_async("after").now_or_never(),
        Some(Err(closed.clone()))
    );
    let mut sink = socket.sink();
    assert_eq!(sink.send("after".into()).now_or_never(), Some(Err(closed)));
    drop(sink);
    drop_and_check(socket);
}

/// `reconnect_now` in every state: nothing while connecting or open; at once while waiting;
/// again after the socket finished on its own; never after `close()`.
#[test]
fn reconnect_now_in_every_state() {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(slow_reconnect().final_code(4003))
        .connect()
        .unwrap();
    let mut events = socket.events();
    socket.reconnect_now();
    sim::settle();
    assert_eq!(conns(), 1, "an attempt while connecting");
    assert!(sim::open(""));
    assert_eq!(waiting(&mut events), [Event::Open]);
    socket.reconnect_now();
    sim::settle();
    assert_eq!(socket.state(), State::Open);
    assert_eq!(conns(), 1, "an attempt while open");
    // Waiting 5 to 10 s to reconnect: at once instead, and once.
    dropped_by_the_server(&socket, &mut events);
    socket.reconnect_now();
    socket.reconnect_now();
    sim::settle();
    assert_eq!(
        conns(),
        2,
        "the backoff was waited out, or two attempts made"
    );
    assert!(sim::open(""));
    assert_eq!(waiting(&mut events), [Event::Open]);
    // The server's final answer (no attempt left): finished; then started again.
    socket.send("!close 4003 done").unwrap();
    sim::serve();
    assert_eq!(rest(&mut events), [server_close(4003, "done")]);
    socket.send("!drop").unwrap_err();
    assert_eq!(socket.state(), State::Closed);
    socket.reconnect_now();
    let mut events = socket.events();
    sim::settle();
    assert_eq!(conns(), 3);
    assert!(sim::open(""));
    assert_eq!(waiting(&mut events), [Event::Open]);
    socket.close().unwrap();
    socket.reconnect_now();
    assert!(sim::close(CloseEvent::new(1000, "", true)));
    assert_eq!(rest(&mut events), [close(1000, "")]);
    socket.reconnect_now();
    sim::advance(100);
    assert_eq!(socket.state(), State::Closed);
    assert_eq!(conns(), 3);
    drop(socket);
    assert_nothing_left();
}

/// The only handle dropped from `on_open`, from `on_close` and from `on_reconnect`: the
/// socket goes quietly, no attempt follows, everything is let go of.
#[test]
fn the_only_handle_dropped_inside_each_callback() {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .on_open(|socket| {
            socket.send("sent from on_open").unwrap();
            drop_only_handle();
        })
        .connect()
        .unwrap();
    let mut events = socket.events();
    keep_only_handle(socket);
    assert!(sim::open(""));
    assert_eq!(rest(&mut events), [Event::Open]);
    assert_eq!(sent(0), [text("sent from on_open")]);
    assert_eq!(closes(0), [(1000, String::new())]);
    assert_nothing_left();

    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(slow_reconnect())
        .on_close(|_, _| drop_only_handle())
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    socket.send("!close 4005 go").unwrap();
    keep_only_handle(socket);
    sim::serve();
    // The close, and the attempt it announced (the state machine's order: the announcement
    // follows the close callback), which is never made: the socket was dropped.
    let seen = rest(&mut events);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], server_close(4005, "go"));
    assert!(matches!(seen[1], Event::Reconnecting(_)), "{seen:?}");
    sim::advance(20_000);
    assert_eq!(conns(), 1);
    assert_nothing_left();

    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect().initial_delay(Duration::ZERO))
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
    sim::advance(300);
    assert_eq!(conns(), 1);
    assert_nothing_left();
}

/// `send_async` in every state: it waits for the first connection, goes through while open
/// (with a high-water mark of 0, each once the last write is done), and fails typed once
/// closing or closed; one waiting when the socket closes resolves.
#[test]
fn send_async_in_every_state() {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .high_water_mark(0)
        .connect()
        .unwrap();
    let mut events = socket.events();
    // Connecting: waits for the open, then sends.
    let first = spawned({
        let socket = socket.clone();
        async move { socket.send_async("while connecting").await }
    });
    sim::advance(100);
    assert_eq!(*first.borrow(), None, "sent while connecting");
    assert!(sim::open(""));
    sim::advance(20);
    assert_eq!(*first.borrow(), Some(Ok(Sent::Now)));
    sim::serve();
    assert_eq!(
        waiting(&mut events),
        [Event::Open, echoed("while connecting")]
    );
    // Open, with a high-water mark of 0: each waits for the last write to finish.
    let done = spawned({
        let socket = socket.clone();
        async move {
            for n in 0..5u8 {
                socket.send_async(vec![n; 100_000]).await.unwrap();
            }
        }
    });
    for _ in 0..100 {
        sim::flush();
        sim::advance(5);
    }
    assert!(done.borrow().is_some());
    let at = sent_at(0);
    assert_eq!(at.len(), 6);
    assert!(at.windows(2).all(|pair| pair[0] < pair[1]), "{at:?}");
    sim::serve();
    let expected: Vec<Event> = (0..5u8).map(|n| binary(vec![n; 100_000])).collect();
    assert_eq!(waiting(&mut events), expected);
    // Waiting for room when the socket closes under it: resolves with a typed error.
    socket.send(vec![9u8; 1 << 20]).unwrap();
    let waiting_send = spawned({
        let socket = socket.clone();
        async move { socket.send_async("waits").await }
    });
    sim::advance(50);
    assert_eq!(*waiting_send.borrow(), None);
    socket.close().unwrap();
    sim::advance(20);
    let result = waiting_send.borrow_mut().take();
    assert!(matches!(result, Some(Err(Error::NotOpen(_)))), "{result:?}");
    assert!(sim::close(CloseEvent::new(1000, "", true)));
    assert_eq!(rest(&mut events), [close(1000, "")]);
    drop_and_check(socket);
}

/// Each method from `on_error` and `on_close` of attempts that fail (nothing listens), and
/// the only handle dropped from `on_error`: the states they see, the sends queued while a
/// reconnection follows, the close from `on_error` ending it for good.
#[test]
fn every_method_from_on_error_of_refused_attempts() {
    fresh();
    let seen: Seen<String> = Rc::default();
    let errors = Rc::new(Cell::new(0));
    let socket = WebSocket::builder("ws://unreachable")
        .reconnect(quick_reconnect().initial_delay(ms(10)))
        .on_error({
            let seen = seen.clone();
            move |socket| {
                errors.set(errors.get() + 1);
                drop(socket.events());
                socket.reconnect_now();
                let sent = socket.send(format!("e{}", errors.get()));
                let line = format!("error {} {sent:?} {}", socket.state(), socket.queued());
                seen.borrow_mut().push(line);
                if errors.get() == 2 {
                    socket.close_with(4000, "from on_error").unwrap();
                }
            }
        })
        .on_close({
            let seen = seen.clone();
            move |socket, event| {
                let line = format!(
                    "close {} {} {}",
                    event.code,
                    socket.state(),
                    socket.queued()
                );
                seen.borrow_mut().push(line);
            }
        })
        .connect()
        .unwrap();
    let mut events = socket.events();
    for _ in 0..4 {
        sim::fail();
        sim::advance(100);
    }
    let ending = rest(&mut events);
    let closed = Error::NotOpen(State::Closed);
    let n = ending.len();
    assert!(n >= 3, "{ending:?}");
    assert!(is_unsent(&ending[n - 2], "e1", &closed), "{ending:?}");
    assert!(is_unsent(&ending[n - 1], "e2", &closed), "{ending:?}");
    assert_eq!(
        *seen.borrow(),
        [
            "error closing Ok(Queued) 1",
            "close 1006 reconnecting 1",
            "error closing Ok(Queued) 2",
            // The application's close, as it asked, now for good.
            "close 4000 closed 2",
        ]
    );
    assert_eq!(ending[n - 3], close(4000, "from on_error"));
    assert_eq!(conns(), 2);
    drop(socket);
    assert_nothing_left();

    // The only handle dropped from `on_error`: no close follows, nothing is left.
    fresh();
    let socket = WebSocket::builder("ws://unreachable")
        .reconnect(quick_reconnect())
        .on_error(|_| drop_only_handle())
        .connect()
        .unwrap();
    let mut events = socket.events();
    keep_only_handle(socket);
    assert!(sim::fail());
    assert_eq!(rest(&mut events), [Event::Error]);
    sim::advance(1_000);
    assert_eq!(conns(), 1);
    assert_nothing_left();
}

/// A reader slower than the server (limit 8, not reading for a while) then reads everything:
/// the flood and the numbered echoes behind it, exact in count and order, and then the
/// server's close, with its code and reason.
#[test]
fn a_slow_reader_gets_everything_then_the_close() {
    fresh();
    let socket = WebSocket::builder("ws://a").receive_limit(8);
    let (socket, mut events) = opened(socket.connect().unwrap());
    // `!flood 200 3000`, then 100 numbered echoes.
    for _ in 0..200 {
        assert!(sim::receive(Message::from(vec![0x5a; 3000])));
    }
    for n in 0..100 {
        socket.send(format!("n{n}")).unwrap();
    }
    sim::serve();
    sim::advance(700);
    let heard = sim::with(|world| world.conns[0].heard.len());
    assert_eq!(heard, 8, "read past the limit");
    for n in 0..200 {
        assert_eq!(
            next_event(&mut events),
            binary(vec![0x5a; 3000]),
            "flood message {n}"
        );
    }
    for n in 0..100 {
        assert_eq!(next_event(&mut events), echoed(&format!("n{n}")));
        // Reading slowly, a pause every ten.
        if n % 10 == 0 {
            sim::advance(20);
        }
    }
    socket.send("!close 4001 flood over ✓").unwrap();
    sim::serve();
    assert_eq!(next_event(&mut events), server_close(4001, "flood over ✓"));
    assert!(ended(&mut events));
    drop_and_check(socket);
}

/// What a socket with a receive limit of 4 hears when the server sends 40 echoes and closes
/// while the reader waits for room (not read for 500 ms, then read to the end): the stream's
/// events, and the callbacks' log of the same.
fn server_close_while_waiting_for_room() -> (Vec<Event>, Vec<String>) {
    fresh();
    let heard: Seen<String> = Rc::default();
    let socket = WebSocket::builder("ws://a")
        .receive_limit(4)
        .on_message({
            let heard = heard.clone();
            move |_, message| heard.borrow_mut().push(format!("{message:?}"))
        })
        .on_close({
            let heard = heard.clone();
            move |_, event| {
                let line = format!("close {} {}", event.code, event.reason);
                heard.borrow_mut().push(line)
            }
        });
    let (socket, mut events) = opened(socket.connect().unwrap());
    for n in 0..40 {
        socket.send(format!("m{n}")).unwrap();
    }
    socket.send("!close 4321 bye now ✓").unwrap();
    sim::serve();
    sim::advance(500);
    // The stream holds 4 and the reader waits: no close yet, anywhere.
    assert!(
        !heard.borrow().iter().any(|line| line.starts_with("close")),
        "a close before the messages: {heard:?}"
    );
    assert_eq!(socket.state(), State::Open);
    let mut seen = Vec::new();
    while !matches!(seen.last(), Some(Event::Close(_))) {
        seen.push(next_event(&mut events));
    }
    assert!(ended(&mut events));
    drop_and_check(socket);
    let heard = heard.borrow().clone();
    (seen, heard)
}

/// The server closes while the reader waits for room: the close is reported after every
/// message, exact (code, reason, clean, the server's cause), to the stream and the callbacks
/// alike, and nothing is lost: all 40 messages come before the close. (In the browser
/// Chromium's `WebSocketStream` discards what it had not handed over, and that test is
/// ignored; the driver loses nothing.)
#[test]
fn a_server_close_while_the_reader_waits_for_room_is_reported_last_and_exact() {
    let (seen, heard) = server_close_while_waiting_for_room();
    let Some(Event::Close(close_event)) = seen.last() else {
        panic!("the last event is not the close: {seen:?}");
    };
    assert_eq!(
        (close_event.code, close_event.reason.as_str()),
        (4321, "bye now ✓")
    );
    assert!(close_event.was_clean);
    assert_eq!(close_event.cause, CloseCause::Remote);
    let mut expected: Vec<Event> = (0..40).map(|n| echoed(&format!("m{n}"))).collect();
    expected.push(server_close(4321, "bye now ✓"));
    assert_eq!(seen, expected);
    assert_eq!(heard.len(), 41, "{heard:?}");
    assert_eq!(heard.last().unwrap(), "close 4321 bye now ✓");
}

/// A stream that is made and never read pauses the reader; dropping it lets reading go on.
/// Streams made and dropped at once (`events()`, `messages()`) never pause it.
#[test]
fn a_dropped_stream_no_longer_holds_the_reader() {
    fresh();
    let socket = WebSocket::builder("ws://a").receive_limit(2);
    let (socket, mut events) = opened(socket.connect().unwrap());
    let unread = socket.events();
    for _ in 0..50 {
        drop(socket.events());
        drop(socket.messages());
    }
    for n in 0..10 {
        socket.send(format!("{n}")).unwrap();
    }
    sim::serve();
    assert_eq!(waiting(&mut events), [echoed("0"), echoed("1")]);
    // The unread stream holds 2: nothing more is read.
    sim::advance(300);
    assert_eq!(waiting(&mut events), [], "read past the limit");
    drop(unread);
    for n in 2..10 {
        assert_eq!(next_event(&mut events), echoed(&format!("{n}")));
    }
    socket.close().unwrap();
    assert!(sim::close(CloseEvent::new(1000, "", true)));
    assert_eq!(rest(&mut events), [close(1000, "")]);
    drop_and_check(socket);
}

/// The only handle dropped from `on_message` in the middle of a flood: the events end there,
/// and no message is delivered after the drop.
#[test]
fn the_only_handle_dropped_inside_a_read() {
    fresh();
    let count = Rc::new(Cell::new(0));
    let socket = WebSocket::builder("ws://a")
        .on_message({
            let count = count.clone();
            move |_, _| {
                count.set(count.get() + 1);
                if count.get() == 5 {
                    drop_only_handle();
                }
            }
        })
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    keep_only_handle(socket);
    // `!flood 1000 8192`, as long as the connection takes it.
    let mut flooded = 0;
    while flooded < 1_000 && sim::receive(Message::from(vec![7; 8192])) {
        flooded += 1;
    }
    let seen = rest(&mut events);
    assert_eq!(seen.len(), 5, "the events go on after the drop");
    assert_eq!(count.get(), 5, "a message after the drop");
    assert_nothing_left();
}

/// A stream made and forgotten (never read, never dropped) while the application listens
/// with callbacks holds the reader back for the callbacks too: they stop once it is full (the
/// open counts), and the server's close is not reported (the socket still says open) until
/// the stream goes; then every message, and the close, exact and last.
#[test]
fn a_forgotten_stream_holds_back_the_callbacks_and_the_close() {
    fresh();
    let heard: Seen<String> = Rc::default();
    let socket = WebSocket::builder("ws://a")
        .receive_limit(8)
        .on_message({
            let heard = heard.clone();
            move |_, message| heard.borrow_mut().push(format!("{message:?}"))
        })
        .on_close({
            let heard = heard.clone();
            move |_, event| {
                heard
                    .borrow_mut()
                    .push(format!("close {} {}", event.code, event.reason))
            }
        })
        .connect()
        .unwrap();
    let forgotten = socket.events();
    assert!(sim::open(""));
    for n in 0..20 {
        socket.send(format!("{n}")).unwrap();
    }
    socket.send("!close 4000 bye").unwrap();
    sim::serve();
    sim::advance(500);
    // The open and 7 messages fill the stream.
    assert_eq!(heard.borrow().len(), 7, "{:?}", heard.borrow());
    assert_eq!(socket.state(), State::Open);
    drop(forgotten);
    sim::advance(100);
    assert_eq!(socket.state(), State::Closed);
    let heard = heard.borrow().clone();
    let (last, messages) = heard.split_last().unwrap();
    assert_eq!(last, "close 4000 bye");
    let expected: Vec<String> = (0..20)
        .map(|n| format!("Text(\"Received:  {n}\")"))
        .collect();
    assert_eq!(messages, expected);
    drop_and_check(socket);
}

/// The application closes while its reader waits for room (a stream full, echoes behind it):
/// once the stream is read, every message comes, in order, then the close, last, with the
/// application's code and reason.
#[test]
fn the_application_closes_while_the_reader_waits_for_room() {
    fresh();
    let socket = WebSocket::builder("ws://a").receive_limit(4);
    let (socket, mut events) = opened(socket.connect().unwrap());
    for n in 0..40 {
        socket.send(format!("m{n}")).unwrap();
    }
    sim::serve();
    sim::advance(300);
    socket.close_with(4000, "enough ✓").unwrap();
    assert_eq!(socket.state(), State::Closing);
    assert_eq!(closes(0), [(4000, "enough ✓".to_owned())]);
    // The server answers the close behind the echoes.
    assert!(sim::close(CloseEvent::new(4000, "enough ✓", true)));
    sim::advance(300);
    let mut seen = Vec::new();
    while !matches!(seen.last(), Some(Event::Close(_))) {
        seen.push(next_event(&mut events));
    }
    let mut expected: Vec<Event> = (0..40).map(|n| echoed(&format!("m{n}"))).collect();
    expected.push(close(4000, "enough ✓"));
    assert_eq!(seen, expected);
    assert!(ended(&mut events));
    drop_and_check(socket);
}
