//! The behaviour every transport shares, written once and run on each (issue 15):
//!
//! - in headless Chromium on the browser's `WebSocket` (`wasm-pack test`, as for the other
//!   browser suites);
//! - in headless Chromium on `WebSocketStream`, built with `WS_TRANSPORT=stream`;
//! - natively, on tokio-tungstenite: `cargo test -p wasm-websocket --test transports --
//!   --include-ignored` with the server's URL in `ECHO_SERVER_URL` (natively these tests are
//!   ignored by default, since they need the server).
//!
//! `cargo xtask test` runs all three against the echo server started with `--test-controls
//! --protocol echo.v1`. Browser-only behaviour (the browser's memory, its `online` and
//! `visibilitychange` events, what it is asked to do) stays in `browser.rs`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures_util::{Sink, SinkExt};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test_configure;
use wasm_websocket::{
    CloseCause, Error, Event, Heartbeat, Message, MessageSink, Overflow, Reconnecting, Sent, State,
    live_closures,
};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::{
    UNREACHABLE, assert_closures_back_to, builder, close, closures_per_connection,
    dropped_by_the_server, expected_transport, finish, is_unsent, next, next_close, next_event,
    now_ms, open, open_url, quick_reconnect, server_close, server_url, silent_url, sleep, text,
    transport_test, within,
};

transport_test!(
    /// A reader slower than the server, with a receive limit of 8: on the transports that pull,
    /// every message arrives, in order, however late it is read; on the browser's `WebSocket`,
    /// which cannot be told to stop, the connection is given up once a stream is full, with 1008
    /// and its own cause, and nothing is dropped unseen.
    async fn a_slow_reader_is_held_to_the_receive_limit() {
        let before = live_closures();
        let socket = builder(server_url()).receive_limit(8).connect().unwrap();
        let (socket, mut events) = open(socket).await;
        socket.send("!flood 100 1000").unwrap();
        // Not reading, while the server sends far more than the limit.
        sleep(500).await;
        if expected_transport() == wasm_websocket::Transport::WebSocket {
            for _ in 0..8 {
                let message = next_event(&mut events).await;
                assert_eq!(message, Event::Message(Message::from(vec![0x5a; 1000])));
            }
            let overflow = next_close(&mut events).await;
            assert_eq!(overflow.code, 1008);
            assert_eq!(overflow.cause, CloseCause::ReceiveOverflow);
            assert_eq!(next(&mut events).await, None);
        } else {
            for _ in 0..100 {
                let message = next_event(&mut events).await;
                assert_eq!(message, Event::Message(Message::from(vec![0x5a; 1000])));
            }
            finish(socket, events).await;
        }
        assert_closures_back_to(before).await;
    }
);

transport_test!(
    /// The suite runs on the transport it says it does: a fallback would show here.
    async fn the_socket_runs_on_the_transport_asked_for() {
        let (socket, events) = open_url(server_url()).await;
        assert_eq!(socket.transport(), expected_transport());
        finish(socket, events).await;
    }
);

transport_test!(
    async fn open_send_receive_and_close_with_a_code() {
        let (socket, mut events) = open_url(server_url()).await;
        socket.send("Hello, world!").unwrap();
        assert_eq!(
            next_event(&mut events).await,
            text("Received:  Hello, world!")
        );
        socket.close_with(4000, "bye").unwrap();
        assert_eq!(next_event(&mut events).await, close(4000, "bye"));
        assert_eq!(socket.state(), State::Closed);
        // After the last close the stream ends: the socket let go of its listeners.
        assert_eq!(next(&mut events).await, None);
    }
);

transport_test!(
    async fn callbacks_hear_every_event_in_order() {
        let heard = Rc::new(RefCell::new(Vec::new()));
        let log = |heard: &Rc<RefCell<Vec<String>>>| {
            let heard = heard.clone();
            move |line: String| heard.borrow_mut().push(line)
        };
        let (on_open, on_message, on_close) = (log(&heard), log(&heard), log(&heard));
        let socket = builder(server_url())
            .on_open(move |_| on_open("open".into()))
            .on_message(move |_, message| on_message(format!("{message:?}")))
            .on_close(move |_, event| on_close(format!("close {}", event.code)))
            .connect()
            .unwrap();
        let mut events = socket.events();
        assert_eq!(next_event(&mut events).await, Event::Open);
        socket.send("one").unwrap();
        next_event(&mut events).await;
        socket.close().unwrap();
        while next(&mut events).await.is_some() {}
        let expected = ["open", r#"Text("Received:  one")"#, "close 1000"];
        assert_eq!(*heard.borrow(), expected);
    }
);

transport_test!(
    async fn binary_round_trip_is_byte_exact() {
        let (socket, mut events) = open_url(server_url()).await;
        let data: Vec<u8> = (0..=255).cycle().take(100_000).collect();
        socket.send(&data).unwrap();
        let echoed = next_event(&mut events).await;
        assert_eq!(echoed, Event::Message(Message::from(data)));
        finish(socket, events).await;
    }
);

transport_test!(
    async fn messages_stream_and_sink_carry_both_kinds() {
        let socket = builder(server_url()).connect().unwrap();
        let mut messages = Box::pin(socket.messages());
        let mut sink: MessageSink = socket.sink();
        // The sink waits for the connection to open.
        sink.send("via the sink".into()).await.unwrap();
        sink.send(vec![1, 2, 3].into()).await.unwrap();
        let first = next(&mut messages).await;
        assert_eq!(first, Some(Message::Text("Received:  via the sink".into())));
        assert_eq!(
            next(&mut messages).await,
            Some(Message::from(vec![1, 2, 3]))
        );
        socket.close().unwrap();
        assert_eq!(next(&mut messages).await, None);
    }
);

transport_test!(
    async fn unreachable_server_fires_error_then_close_1006() {
        let socket = builder(UNREACHABLE).connect().unwrap();
        let mut events = socket.events();
        assert_eq!(next_event(&mut events).await, Event::Error);
        let closed = next_close(&mut events).await;
        assert_eq!((closed.code, closed.was_clean), (1006, false));
        assert_eq!(next(&mut events).await, None);
    }
);

transport_test!(
    async fn a_server_close_with_code_and_reason_reaches_the_app() {
        let (socket, mut events) = open_url(server_url()).await;
        socket.send("!close 4002 server says bye").unwrap();
        assert_eq!(
            next_event(&mut events).await,
            server_close(4002, "server says bye")
        );
        assert_eq!(next(&mut events).await, None);
    }
);

transport_test!(
    async fn the_negotiated_subprotocol_is_exposed() {
        let socket = builder(server_url())
            .protocols(["chat.v2", "echo.v1"])
            .connect()
            .unwrap();
        let (socket, events) = open(socket).await;
        assert_eq!(socket.protocol(), "echo.v1");
        // Chromium offers permessage-deflate on both of its transports, and the test server
        // (`--deflate`) accepts it; the native transport offers no extension.
        if cfg!(target_arch = "wasm32") {
            assert!(socket.extensions().starts_with("permessage-deflate"));
        } else {
            assert_eq!(socket.extensions(), "");
        }
        finish(socket, events).await;
    }
);

transport_test!(
    async fn sending_while_connecting_is_a_typed_error() {
        let socket = builder(server_url()).connect().unwrap();
        assert_eq!(
            socket.send("too early"),
            Err(Error::NotOpen(State::Connecting))
        );
    }
);

transport_test!(
    async fn sending_after_close_is_a_typed_error() {
        let (socket, events) = open_url(server_url()).await;
        socket.close().unwrap();
        // The browser would drop this silently while closing.
        assert_eq!(socket.send("late"), Err(Error::NotOpen(State::Closing)));
        finish(socket.clone(), events).await;
        assert_eq!(socket.send("later"), Err(Error::NotOpen(State::Closed)));
    }
);

transport_test!(
    async fn bad_close_arguments_are_typed_errors_and_never_reach_the_browser() {
        let socket = builder(server_url()).connect().unwrap();
        assert_eq!(
            socket.close_with(1001, ""),
            Err(Error::InvalidCloseCode(1001))
        );
        assert_eq!(
            socket.close_with(2999, ""),
            Err(Error::InvalidCloseCode(2999))
        );
        let long = "ü".repeat(62);
        assert_eq!(
            socket.close_with(1000, &long),
            Err(Error::ReasonTooLong(124))
        );
        assert_eq!(socket.state(), State::Connecting);
        // The messages, numbers included, as every engine formats them.
        assert_eq!(
            Error::InvalidCloseCode(2999).to_string(),
            "close code 2999 is not allowed: use 1000, or 3000 to 4999 for the application"
        );
        assert_eq!(
            Error::ReasonTooLong(124).to_string(),
            "close reason is 124 bytes of UTF-8; at most 123 are allowed"
        );
    }
);

transport_test!(
    async fn invalid_urls_and_protocols_are_typed_errors() {
        let error = builder("ftp://127.0.0.1/").connect().unwrap_err();
        assert!(matches!(error, Error::InvalidUrl { .. }), "{error}");
        let error = builder(server_url())
            .protocols(["chat", "chat"])
            .connect()
            .unwrap_err();
        assert_eq!(error, Error::InvalidProtocol("chat".into()));
    }
);

transport_test!(
    async fn another_handle_can_close_and_the_last_handle_frees_everything() {
        let before = live_closures();
        let (socket, mut events) = open_url(server_url()).await;
        assert_eq!(live_closures(), before + closures_per_connection());
        let other = socket.clone();
        other.close_with(3001, "from a clone").unwrap();
        assert_eq!(next_event(&mut events).await, close(3001, "from a clone"));
        assert_eq!(next(&mut events).await, None);

        // Dropping the last handle of an open socket closes it and ends its events.
        let (socket, mut events) = open_url(server_url()).await;
        drop(socket);
        drop(other);
        assert_eq!(next(&mut events).await, None);
        assert_closures_back_to(before).await;
    }
);

transport_test!(
    async fn send_async_keeps_the_browser_buffer_near_the_high_water_mark() {
        const CHUNK: usize = 64 * 1024;
        const HIGH_WATER_MARK: u32 = 256 * 1024;
        let chunk = vec![7u8; CHUNK];

        // Known limit, not ours: Chromium 156's `WebSocketStream` stops delivering echoes of a
        // burst of large messages written without waiting (plain JavaScript too: 7 of 20
        // echoed 64 KiB messages arrive), and the page hangs. The baseline below writes such a
        // burst on purpose, so this test is not run there.
        if expected_transport() == wasm_websocket::Transport::WebSocketStream {
            support::log("skipped on WebSocketStream: Chromium stalls on the unpaced baseline");
            return;
        }
        // Plain sends from one task pile up: the baseline. In the browser at once; natively
        // each goes straight to the socket while it has room, so they pile up only once the
        // kernel's buffers on both sides are full (the server stops reading when its echoes
        // cannot go out, since this task does not read): some megabytes on loopback.
        let (socket, events) = open_url(server_url()).await;
        let mut unbounded = 0;
        for _ in 0..1_000 {
            socket.send(&chunk[..]).unwrap();
            unbounded = socket.buffered_amount();
            if unbounded > 4 * HIGH_WATER_MARK {
                break;
            }
        }
        finish(socket, events).await;

        let socket = builder(server_url())
            .high_water_mark(HIGH_WATER_MARK)
            .connect()
            .unwrap();
        let mut highest = 0;
        for _ in 0..100 {
            socket.send_async(&chunk[..]).await.unwrap();
            highest = highest.max(socket.buffered_amount());
        }
        assert!(
            unbounded > 4 * HIGH_WATER_MARK,
            "baseline only reached {unbounded}"
        );
        let bound = HIGH_WATER_MARK + CHUNK as u32;
        assert!(
            highest <= bound,
            "reached {highest} with a mark of {HIGH_WATER_MARK}"
        );
        socket.close().unwrap();
    }
);

transport_test!(
    async fn after_an_outage_it_reconnects_and_sends_the_queue_in_order_exactly_once() {
        let socket = builder(server_url())
            .reconnect(quick_reconnect())
            .connect()
            .unwrap();
        let (socket, mut events) = open(socket).await;
        socket.send("!outage 600").unwrap();
        let dropped = next_close(&mut events).await;
        assert_eq!(dropped.code, 1006);
        let Event::Reconnecting(Reconnecting { attempt: 1, .. }) = next_event(&mut events).await
        else {
            panic!("expected a first reconnection attempt")
        };
        for n in 1..=5 {
            socket.send(format!("queued {n}")).unwrap();
        }
        assert_eq!(socket.queued(), 5);
        // Attempts during the outage fail (503) until the server is back.
        loop {
            match next_event(&mut events).await {
                Event::Open => break,
                Event::Error | Event::Close(_) | Event::Reconnecting(_) => {}
                other => panic!("unexpected {other:?} while reconnecting"),
            }
        }
        assert_eq!(socket.queued(), 0);
        for n in 1..=5 {
            assert_eq!(
                next_event(&mut events).await,
                text(&format!("Received:  queued {n}"))
            );
        }
        socket.send("after").unwrap();
        // Nothing was sent twice: the next message is the reply to "after".
        assert_eq!(next_event(&mut events).await, text("Received:  after"));
        finish(socket, events).await;
    }
);

transport_test!(
    async fn a_deliberate_close_is_never_followed_by_a_reconnection() {
        let socket = builder(server_url())
            .reconnect(quick_reconnect())
            .connect()
            .unwrap();
        let (socket, mut events) = open(socket).await;
        socket.close().unwrap();
        assert_eq!(next_event(&mut events).await, close(1000, ""));
        assert_eq!(next(&mut events).await, None);
        assert_eq!(socket.state(), State::Closed);
    }
);

transport_test!(
    async fn a_close_code_marked_final_is_never_followed_by_a_reconnection() {
        let socket = builder(server_url())
            .reconnect(quick_reconnect().final_code(4001))
            .connect()
            .unwrap();
        let (socket, mut events) = open(socket).await;
        socket.send("!close 4001 logged out").unwrap();
        assert_eq!(
            next_event(&mut events).await,
            server_close(4001, "logged out")
        );
        assert_eq!(next(&mut events).await, None);
        assert_eq!(socket.state(), State::Closed);
    }
);

transport_test!(
    async fn attempts_count_again_from_one_after_a_connection_stays_up() {
        for (reset_after, second_attempt) in [(Duration::ZERO, 1), (Duration::from_secs(60), 2)] {
            let socket = builder(server_url())
                .reconnect(quick_reconnect().reset_after(reset_after))
                .connect()
                .unwrap();
            let (socket, mut events) = open(socket).await;
            socket.send("!drop").unwrap();
            let mut attempts = Vec::new();
            while attempts.len() < 2 {
                match next_event(&mut events).await {
                    Event::Open => {
                        socket.send("!drop").unwrap();
                    }
                    Event::Reconnecting(next) => attempts.push(next.attempt),
                    _ => {}
                }
            }
            assert_eq!(attempts, [1, second_attempt], "reset after {reset_after:?}");
            finish(socket, events).await;
        }
    }
);

transport_test!(
    async fn a_full_queue_drops_the_oldest_and_reports_it_or_refuses_as_configured() {
        let socket = builder(server_url())
            .reconnect(
                quick_reconnect()
                    .queue_capacity(2)
                    .overflow(Overflow::DropOldest),
            )
            .connect()
            .unwrap();
        let mut events = socket.events();
        for message in ["a", "b", "c"] {
            socket.send(message).unwrap();
        }
        assert_eq!(socket.queued(), 2);
        let mut seen = Vec::new();
        while seen.len() < 4 {
            seen.push(next_event(&mut events).await);
        }
        let full = Error::QueueFull { capacity: 2 };
        // The report comes from a timer, so it may come before or after the open.
        assert!(
            seen.iter().any(|event| is_unsent(event, "a", &full)),
            "{seen:?}"
        );
        assert!(seen.contains(&Event::Open), "{seen:?}");
        seen.retain(|event| matches!(event, Event::Message(_)));
        assert_eq!(seen, [text("Received:  b"), text("Received:  c")]);
        finish(socket, events).await;

        let socket = builder(server_url())
            .reconnect(quick_reconnect().queue_capacity(2))
            .connect()
            .unwrap();
        socket.send("a").unwrap();
        socket.send("b").unwrap();
        assert_eq!(socket.send("c"), Err(Error::QueueFull { capacity: 2 }));
        socket.close().unwrap();
    }
);

transport_test!(
    /// Bug: a queue of capacity 0 with `DropOldest` accepted a message and dropped it unseen.
    async fn a_queue_of_capacity_zero_refuses_whatever_the_policy() {
        for overflow in [Overflow::Error, Overflow::DropOldest] {
            let socket = builder(server_url())
                .reconnect(quick_reconnect().queue_capacity(0).overflow(overflow))
                .connect()
                .unwrap();
            assert_eq!(socket.send("a"), Err(Error::QueueFull { capacity: 0 }));
            assert_eq!(socket.queued(), 0);
            socket.close().unwrap();
        }
    }
);

transport_test!(
    /// Bug: `close()` from inside `on_close` only set a flag, and the reconnection decided before
    /// the callback opened a new connection that stayed open.
    async fn close_from_the_close_callback_means_never_again() {
        let before = live_closures();
        let states = Rc::new(RefCell::new(Vec::new()));
        let socket = builder(server_url())
            .reconnect(quick_reconnect())
            .on_close({
                let states = states.clone();
                move |socket, _| {
                    // Inside the callback the socket already shows what follows the close.
                    states.borrow_mut().push(socket.state());
                    socket.close().unwrap();
                    states.borrow_mut().push(socket.state());
                }
            })
            .connect()
            .unwrap();
        let (socket, mut events) = open(socket).await;
        socket.send("!drop").unwrap();
        let dropped = next_close(&mut events).await;
        assert_eq!(dropped.code, 1006);
        // No attempt is announced or made: the application's close ends the socket.
        assert_eq!(next_event(&mut events).await, close(1000, ""));
        assert_eq!(next(&mut events).await, None);
        assert_eq!(socket.state(), State::Closed);
        // Called for both closes: the connection's, then the application's.
        let expected = [
            State::Reconnecting,
            State::Closed,
            State::Closed,
            State::Closed,
        ];
        assert_eq!(*states.borrow(), expected);
        // Longer than the first attempt's delay: nothing was opened behind our back.
        sleep(300).await;
        assert_eq!(socket.state(), State::Closed);
        assert_eq!(live_closures(), before);
    }
);

transport_test!(
    /// Bug: a send from `on_close` was `NotOpen(Closed)` although a reconnection followed, while
    /// the same send from a stream consumer was queued. Both now see `Reconnecting` and queue.
    async fn a_send_from_the_close_callback_is_queued_like_any_other() {
        let results = Rc::new(RefCell::new(Vec::new()));
        let socket = builder(server_url())
            .reconnect(quick_reconnect())
            .on_close({
                let results = results.clone();
                move |socket, _| results.borrow_mut().push(socket.send("from on_close"))
            })
            .connect()
            .unwrap();
        let (socket, mut events) = open(socket).await;
        socket.send("!drop").unwrap();
        next_close(&mut events).await;
        // The stream consumer, at the same point.
        assert_eq!(socket.state(), State::Reconnecting);
        assert_eq!(socket.send("from the stream"), Ok(Sent::Queued));
        assert_eq!(*results.borrow(), [Ok(Sent::Queued)]);
        assert!(matches!(
            next_event(&mut events).await,
            Event::Reconnecting(_)
        ));
        assert_eq!(next_event(&mut events).await, Event::Open);
        assert_eq!(
            next_event(&mut events).await,
            text("Received:  from on_close")
        );
        assert_eq!(
            next_event(&mut events).await,
            text("Received:  from the stream")
        );
        finish(socket, events).await;
    }
);

transport_test!(
    /// Bug: the queue went out all at once on open, past the high-water mark, and a message the
    /// browser refused was dropped silently.
    async fn the_queue_drains_at_the_pace_of_the_high_water_mark() {
        const CHUNK: usize = 64 * 1024;
        const COUNT: usize = 20;
        let at_open = Rc::new(Cell::new((0, 0)));
        let socket = builder(server_url())
            .reconnect(quick_reconnect().queue_capacity(COUNT))
            .high_water_mark(CHUNK as u32)
            .on_open({
                let at_open = at_open.clone();
                move |socket| at_open.set((socket.buffered_amount(), socket.queued()))
            })
            .connect()
            .unwrap();
        let mut messages = socket.messages();
        for n in 0..COUNT {
            socket.send(vec![n as u8; CHUNK]).unwrap();
        }
        assert_eq!(socket.queued(), COUNT);
        for n in 0..COUNT {
            let echoed = next(&mut messages).await;
            assert_eq!(echoed, Some(Message::from(vec![n as u8; CHUNK])), "{n}");
        }
        let (buffered, queued) = at_open.get();
        assert!(
            buffered <= 2 * CHUNK as u32,
            "{buffered} bytes handed to the browser at once"
        );
        assert!(queued > 0, "the whole queue went out at once");
        assert_eq!(socket.queued(), 0);
        socket.close().unwrap();
    }
);

transport_test!(
    async fn what_is_still_queued_when_the_socket_ends_is_reported() {
        let socket = builder(server_url())
            .reconnect(quick_reconnect().initial_delay(Duration::from_secs(10)))
            .connect()
            .unwrap();
        let (socket, mut events) = open(socket).await;
        socket.send("!drop").unwrap();
        next_close(&mut events).await;
        socket.send("one").unwrap();
        socket.send(vec![2]).unwrap();
        socket.close_with(4000, "giving up").unwrap();
        let mut rest = Vec::new();
        while let Some(event) = next(&mut events).await {
            rest.push(event);
        }
        let closed = Error::NotOpen(State::Closed);
        assert_eq!(rest.len(), 4, "{rest:?}");
        assert!(matches!(rest[0], Event::Reconnecting(_)), "{rest:?}");
        assert_eq!(rest[1], close(4000, "giving up"));
        assert!(is_unsent(&rest[2], "one", &closed), "{rest:?}");
        assert!(is_unsent(&rest[3], vec![2], &closed), "{rest:?}");
    }
);

transport_test!(
    async fn the_url_provider_is_asked_before_each_reconnection() {
        let asked = Rc::new(Cell::new(0));
        let url = format!("{}?attempt", server_url());
        let socket = builder(server_url())
            .reconnect(quick_reconnect())
            .url_provider({
                let asked = asked.clone();
                move || {
                    asked.set(asked.get() + 1);
                    url.clone()
                }
            })
            .connect()
            .unwrap();
        let (socket, mut events) = open(socket).await;
        assert_eq!(asked.get(), 0);
        socket.send("!drop").unwrap();
        while next_event(&mut events).await != Event::Open {}
        assert_eq!(asked.get(), 1);
        assert!(socket.url().ends_with("/?attempt"), "{}", socket.url());
        finish(socket, events).await;
    }
);

transport_test!(
    /// Bug: after one failed send, the next panicked inside `futures`' `unfold` ("start_send
    /// called without poll_ready"), which aborted the wasm instance.
    async fn a_sink_stays_usable_after_an_error() {
        let (socket, events) = open_url(server_url()).await;
        let mut sink = socket.sink();
        finish(socket.clone(), events).await;
        for _ in 0..3 {
            assert_eq!(
                sink.send("late".into()).await,
                Err(Error::NotOpen(State::Closed))
            );
        }
        // Driven by hand, out of order: an error each time, never a panic.
        let mut sink = std::pin::pin!(sink);
        for _ in 0..2 {
            assert_eq!(
                sink.as_mut().start_send("x".into()),
                Err(Error::NotOpen(State::Closed))
            );
        }
    }
);

transport_test!(
    async fn a_sink_waits_for_room_in_a_full_queue() {
        // A queue of one: the second message waits for the connection instead of failing.
        let socket = builder(server_url())
            .reconnect(quick_reconnect().queue_capacity(1))
            .connect()
            .unwrap();
        let (mut sink, mut stream) = socket.messages().split();
        within(5_000, sink.send("one".into())).await.unwrap();
        within(5_000, sink.send("two".into())).await.unwrap();
        for reply in ["Received:  one", "Received:  two"] {
            assert_eq!(next(&mut stream).await, Some(Message::Text(reply.into())));
        }
        stream.close().unwrap();
    }
);

transport_test!(
    async fn open_resolves_once_the_connection_is_open() {
        let socket = builder(server_url()).open().await.unwrap();
        assert_eq!(socket.state(), State::Open);
        let socket = builder(server_url())
            .protocols(["echo.v1"])
            .open()
            .await
            .unwrap();
        assert_eq!(socket.protocol(), "echo.v1");
        socket.close().unwrap();
    }
);

transport_test!(
    async fn open_fails_with_a_typed_error_that_tells_why() {
        let error = builder("ftp://127.0.0.1/").open().await.unwrap_err();
        assert!(matches!(error, Error::InvalidUrl { .. }), "{error}");
        let error = within(5_000, builder(UNREACHABLE).open())
            .await
            .unwrap_err();
        let Error::ConnectFailed(close) = &error else {
            panic!("{error}")
        };
        assert_eq!((close.code, close.was_clean), (1006, false));
        // With reconnection, once the attempts are used up.
        let error = builder(UNREACHABLE)
            .reconnect(
                quick_reconnect()
                    .initial_delay(Duration::from_millis(10))
                    .max_attempts(2),
            )
            .open()
            .await
            .unwrap_err();
        assert!(matches!(error, Error::ConnectFailed(_)), "{error}");
    }
);

transport_test!(
    async fn messages_is_a_stream_and_a_sink_that_splits_and_tells_how_it_ended() {
        let socket = builder(server_url()).open().await.unwrap();
        let mut messages = socket.messages();
        drop(socket);
        messages.send("whole".into()).await.unwrap();
        assert_eq!(
            next(&mut messages).await,
            Some(Message::Text("Received:  whole".into()))
        );
        let (mut sink, mut stream) = messages.split();
        sink.send(vec![9].into()).await.unwrap();
        assert_eq!(next(&mut stream).await, Some(Message::from(vec![9])));
        // The receiving half closes: the sending half sees it.
        stream.close_with(4000, "from the stream").unwrap();
        assert_eq!(next(&mut stream).await, None);
        let closed = stream.close_event().expect("the close that ended it");
        assert_eq!(
            (closed.code, closed.reason.as_str()),
            (4000, "from the stream")
        );
        assert_eq!(
            sink.send("late".into()).await,
            Err(Error::NotOpen(State::Closed))
        );

        // The sending half closes with 1000, as `SinkExt::close` does for any sink.
        let (mut sink, mut stream) = builder(server_url())
            .open()
            .await
            .unwrap()
            .messages()
            .split();
        sink.close().await.unwrap();
        assert_eq!(next(&mut stream).await, None);
        assert_eq!(stream.close_event().map(|close| close.code), Some(1000));
    }
);

transport_test!(
    /// The server's `!close CODE REASON` (a test control) closes from the server side.
    async fn a_server_close_ends_the_message_stream_with_its_code_and_reason() {
        let mut messages = builder(server_url()).open().await.unwrap().messages();
        messages
            .send("!close 4002 server says bye".into())
            .await
            .unwrap();
        assert_eq!(next(&mut messages).await, None);
        let closed = messages.close_event().unwrap();
        assert_eq!(
            (closed.code, closed.reason.as_str()),
            (4002, "server says bye")
        );
    }
);

transport_test!(
    async fn a_connect_timeout_fails_an_attempt_that_hangs_with_a_typed_cause() {
        let before = live_closures();
        let error = within(
            5_000,
            builder(&silent_url())
                .connect_timeout(Duration::from_millis(300))
                .open(),
        )
        .await
        .unwrap_err();
        let Error::ConnectFailed(close) = &error else {
            panic!("{error}")
        };
        assert_eq!(close.cause, CloseCause::ConnectTimeout, "{close:?}");
        assert_eq!((close.code, close.was_clean), (1006, false));
        assert_closures_back_to(before).await;

        // With reconnection, each timed-out attempt counts.
        let socket = builder(&silent_url())
            .connect_timeout(Duration::from_millis(100))
            .reconnect(
                quick_reconnect()
                    .initial_delay(Duration::from_millis(10))
                    .max_attempts(2),
            )
            .connect()
            .unwrap();
        let mut events = socket.events();
        let mut causes = Vec::new();
        while let Some(event) = next(&mut events).await {
            if let Event::Close(close) = event {
                causes.push(close.cause);
            }
        }
        assert_eq!(causes, [CloseCause::ConnectTimeout; 3]);
    }
);

transport_test!(
    async fn the_heartbeat_finds_a_stalled_server_and_the_socket_reconnects() {
        let before = live_closures();
        let (interval, timeout) = (Duration::from_millis(200), Duration::from_millis(200));
        let socket = builder(server_url())
            .reconnect(quick_reconnect())
            .heartbeat(Heartbeat::new(interval, timeout))
            .connect()
            .unwrap();
        let (socket, mut events) = open(socket).await;
        // Alive while the server answers: several intervals pass with no close.
        sleep(700).await;
        assert_eq!(socket.state(), State::Open);
        // A half-open peer: the TCP connection stays, nothing comes back.
        socket.send("!stall 10000").unwrap();
        let stalled = now_ms();
        let lost = loop {
            match next_event(&mut events).await {
                Event::Close(close) => break close,
                // Replies to the pings before the stall.
                Event::Message(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        };
        let detected = now_ms() - stalled;
        assert_eq!(lost.cause, CloseCause::HeartbeatLost, "{lost:?}");
        // Within one interval and one timeout, give or take the timers.
        let bound = (interval + timeout).as_millis() as f64 + 300.0;
        assert!(detected <= bound, "detected after {detected} ms");
        support::log(&format!("heartbeat: stall detected after {detected} ms"));
        assert!(matches!(
            next_event(&mut events).await,
            Event::Reconnecting(_)
        ));
        while next_event(&mut events).await != Event::Open {}
        socket.send("back").unwrap();
        loop {
            if next_event(&mut events).await == text("Received:  back") {
                break;
            }
        }
        finish(socket, events).await;
        assert_closures_back_to(before).await;
    }
);

transport_test!(
    async fn close_causes_tell_who_closed() {
        let (socket, mut events) = open_url(server_url()).await;
        socket.close().unwrap();
        assert_eq!(next_close(&mut events).await.cause, CloseCause::Application);

        let (socket, mut events) = open_url(server_url()).await;
        socket.send("!close 4002 bye").unwrap();
        assert_eq!(next_close(&mut events).await.cause, CloseCause::Remote);

        let (socket, mut events) = open_url(server_url()).await;
        socket.send("!drop").unwrap();
        let dropped = next_close(&mut events).await;
        assert_eq!((dropped.code, dropped.cause), (1006, CloseCause::Remote));

        let socket = builder(UNREACHABLE).connect().unwrap();
        let mut events = socket.events();
        assert_eq!(next_event(&mut events).await, Event::Error);
        assert_eq!(
            next_close(&mut events).await.cause,
            CloseCause::HandshakeFailed
        );
    }
);

transport_test!(
    async fn reconnect_now_skips_the_backoff_and_starts_again_after_the_attempts_run_out() {
        let before = live_closures();
        let opened = Rc::new(Cell::new(0));
        let socket = builder(server_url())
            .reconnect(
                quick_reconnect()
                    .initial_delay(Duration::from_secs(20))
                    .max_attempts(1),
            )
            .on_open({
                let opened = opened.clone();
                move |_| opened.set(opened.get() + 1)
            })
            .connect()
            .unwrap();
        let (socket, mut events) = open(socket).await;
        dropped_by_the_server(&socket, &mut events).await;
        // Without it, the attempt would be ten seconds or more away.
        socket.reconnect_now();
        assert_eq!(next_event(&mut events).await, Event::Open);

        // The one attempt allowed is used: the next drop ends the socket and its streams.
        socket.send("!drop").unwrap();
        next_close(&mut events).await;
        assert_eq!(next(&mut events).await, None);
        assert_eq!(socket.state(), State::Closed);
        // Started again, with its callbacks; a stream made now hears it.
        socket.reconnect_now();
        assert_eq!(socket.state(), State::Reconnecting);
        let mut events = socket.events();
        assert_eq!(next_event(&mut events).await, Event::Open);
        assert_eq!(opened.get(), 3);

        // After the application's close, never.
        finish(socket.clone(), events).await;
        socket.reconnect_now();
        sleep(300).await;
        assert_eq!(socket.state(), State::Closed);
        assert_eq!(opened.get(), 3);
        drop(socket);
        assert_closures_back_to(before).await;
    }
);

transport_test!(
    async fn should_reconnect_stops_the_loop() {
        let socket = builder(server_url())
            .reconnect(quick_reconnect())
            .should_reconnect(|close| close.code != 4003)
            .connect()
            .unwrap();
        let (socket, mut events) = open(socket).await;
        // Another code: reconnected as usual.
        socket.send("!close 4004 again").unwrap();
        assert_eq!(next_close(&mut events).await.code, 4004);
        assert!(matches!(
            next_event(&mut events).await,
            Event::Reconnecting(_)
        ));
        assert_eq!(next_event(&mut events).await, Event::Open);
        socket.send("!close 4003 unauthorised").unwrap();
        assert_eq!(next_close(&mut events).await.code, 4003);
        assert_eq!(next(&mut events).await, None);
        assert_eq!(socket.state(), State::Closed);
    }
);

transport_test!(
    async fn an_async_url_provider_is_awaited_once_per_attempt_in_order() {
        let before = live_closures();
        let asked = Rc::new(Cell::new(0));
        let base = server_url().to_owned();
        let socket = builder(server_url())
            .reconnect(quick_reconnect().initial_delay(Duration::from_millis(50)))
            .url_provider_async({
                let asked = asked.clone();
                move || {
                    asked.set(asked.get() + 1);
                    let url = format!("{base}?attempt={}", asked.get());
                    async move {
                        // A token fetched from somewhere, say.
                        sleep(30).await;
                        url
                    }
                }
            })
            .connect()
            .unwrap();
        let (socket, mut events) = open(socket).await;
        assert_eq!(asked.get(), 0);
        // Attempts fail (503) for a while: each asks for a URL of its own.
        socket.send("!outage 400").unwrap();
        let mut attempts = 0;
        loop {
            match next_event(&mut events).await {
                Event::Reconnecting(_) => attempts += 1,
                Event::Open => break,
                _ => {}
            }
        }
        assert!(attempts >= 2, "{attempts} attempts");
        assert_eq!(asked.get(), attempts);
        let url = socket.url();
        assert!(url.ends_with(&format!("?attempt={attempts}")), "{url}");
        finish(socket, events).await;
        assert_closures_back_to(before).await;
    }
);

transport_test!(
    async fn a_url_provider_that_never_answers_is_cut_by_the_connect_timeout() {
        let before = live_closures();
        let asked = Rc::new(Cell::new(0));
        let socket = builder(server_url())
            .connect_timeout(Duration::from_millis(200))
            .reconnect(
                quick_reconnect()
                    .initial_delay(Duration::from_millis(10))
                    .max_attempts(2),
            )
            .url_provider_async({
                let asked = asked.clone();
                move || {
                    asked.set(asked.get() + 1);
                    std::future::pending::<String>()
                }
            })
            .connect()
            .unwrap();
        let (socket, mut events) = open(socket).await;
        dropped_by_the_server(&socket, &mut events).await;
        let mut causes = Vec::new();
        while let Some(event) = next(&mut events).await {
            if let Event::Close(close) = event {
                causes.push(close.cause);
            }
        }
        // Each attempt asked once, and gave up at the timeout; then the attempts were used up.
        assert_eq!(causes, [CloseCause::ConnectTimeout; 2]);
        assert_eq!(asked.get(), 2);
        assert_eq!(socket.state(), State::Closed);
        socket.close().unwrap();
        drop(socket);
        assert_closures_back_to(before).await;
    }
);

transport_test!(
    /// On the transports that pull, a reader that holds back longer than the heartbeat's timeout
    /// is not taken for a dead connection: the replies wait behind what it has not read. Once it
    /// reads on, everything comes, in order, on the same connection. (The browser's `WebSocket`
    /// reads everything, so its heartbeat always hears the replies: nothing to hold back there.)
    async fn a_reader_that_holds_back_is_not_taken_for_a_dead_connection() {
        if expected_transport() == wasm_websocket::Transport::WebSocket {
            return;
        }
        let beat = Heartbeat::new(Duration::from_millis(200), Duration::from_millis(300));
        let socket = builder(server_url()).receive_limit(4).heartbeat(beat);
        let (socket, mut events) = open(socket.connect().unwrap()).await;
        for n in 0..20 {
            socket.send(format!("m{n}")).unwrap();
        }
        // Holding back for several heartbeats.
        sleep(1_500).await;
        let mut next_echo = 0;
        while next_echo < 20 {
            match next_event(&mut events).await {
                Event::Message(Message::Text(echo)) if echo == "Received:  ping" => {}
                Event::Message(Message::Text(echo)) => {
                    assert_eq!(echo, format!("Received:  m{next_echo}"));
                    next_echo += 1;
                }
                other => panic!("after {next_echo} echoes: {other:?}"),
            }
        }
        assert_eq!(socket.state(), State::Open);
        finish(socket, events).await;
    }
);

transport_test!(
    /// A reader that keeps up, with a receive limit of 1 (a careless 0 counts as 1): each message
    /// fills the stream, and the transport reads the next as soon as the stream is read, rather
    /// than when it next looks (every 16 ms, which held such a reader to 60 messages a second).
    async fn a_reader_that_keeps_up_is_not_held_back_by_a_small_receive_limit() {
        for limit in [1, 0] {
            let socket = builder(server_url()).receive_limit(limit);
            let (socket, mut events) = open(socket.connect().unwrap()).await;
            let start = now_ms();
            for n in 0..300 {
                socket.send(format!("{n}")).unwrap();
            }
            for n in 0..300 {
                assert_eq!(
                    next_event(&mut events).await,
                    text(&format!("Received:  {n}"))
                );
            }
            // 300 messages at 60 a second would take 5 s; they take some tens of ms.
            let took = now_ms() - start;
            assert!(took < 2_000.0, "limit {limit}: 300 echoes took {took} ms");
            finish(socket, events).await;
        }
    }
);
