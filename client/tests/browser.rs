//! The client in headless Chromium against the live echo server, started with
//! `--test-controls --protocol echo.v1`: by `cargo xtask test`, which names it in
//! `ECHO_SERVER_URL` at build time, or by hand on the port of `support::DEFAULT_SERVER_URL`
//! for `wasm-pack test --headless --chrome client` (README, "The client crate").

#![cfg(target_arch = "wasm32")]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures_util::{Sink, SinkExt, StreamExt};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_websocket::{
    CloseCause, CloseEvent, Error, Event, Events, Heartbeat, Message, MessageSink, Overflow,
    Reconnecting, State, WebSocket, live_closures,
};

wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::{
    assert_closures_back_to, close, dispatch, dropped_by_the_server, finish, is_unsent, next,
    next_close, next_event, open, quick_reconnect, server_url, silent_url, sleep, text, within,
};

/// Port 9 (discard) is closed on the loopback of a test machine.
const UNREACHABLE: &str = "ws://127.0.0.1:9/";

/// The server's close, with its code and reason.
fn server_close(code: u16, reason: &str) -> Event {
    Event::Close(CloseEvent::new(code, reason, true))
}

async fn open_url(url: &str) -> (WebSocket, Events) {
    open(WebSocket::connect(url).unwrap()).await
}

fn wasm_memory() -> u32 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length()
}

#[wasm_bindgen_test]
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

#[wasm_bindgen_test]
async fn callbacks_hear_every_event_in_order() {
    let heard = Rc::new(RefCell::new(Vec::new()));
    let log = |heard: &Rc<RefCell<Vec<String>>>| {
        let heard = heard.clone();
        move |line: String| heard.borrow_mut().push(line)
    };
    let (on_open, on_message, on_close) = (log(&heard), log(&heard), log(&heard));
    let socket = WebSocket::builder(server_url())
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

#[wasm_bindgen_test]
async fn binary_round_trip_is_byte_exact() {
    let (socket, mut events) = open_url(server_url()).await;
    let data: Vec<u8> = (0..=255).cycle().take(100_000).collect();
    socket.send(&data).unwrap();
    let echoed = next_event(&mut events).await;
    assert_eq!(echoed, Event::Message(Message::Binary(data)));
    finish(socket, events).await;
}

/// The test server runs with `--deflate`: Chromium offers permessage-deflate on every
/// handshake, and the server's compressed replies (and its inflating of the browser's
/// compressed messages) are what every test here goes through.
#[wasm_bindgen_test]
async fn chromium_negotiates_permessage_deflate_and_large_messages_round_trip() {
    let (socket, mut events) = open_url(server_url()).await;
    assert_eq!(
        socket.extensions(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    // Over the server's 1 KiB threshold, and compressible: the reply comes back compressed.
    let json = r#"{"id": 7, "name": "echo", "tags": ["a", "b", "c"]} "#.repeat(400);
    socket.send(json.as_str()).unwrap();
    let expected = format!("Received:  {json}");
    assert_eq!(next_event(&mut events).await, text(&expected));
    finish(socket, events).await;
}

#[wasm_bindgen_test]
async fn messages_stream_and_sink_carry_both_kinds() {
    let socket = WebSocket::connect(server_url()).unwrap();
    let mut messages = Box::pin(socket.messages());
    let mut sink: MessageSink = socket.sink();
    // The sink waits for the connection to open.
    sink.send("via the sink".into()).await.unwrap();
    sink.send(vec![1, 2, 3].into()).await.unwrap();
    let first = next(&mut messages).await;
    assert_eq!(first, Some(Message::Text("Received:  via the sink".into())));
    assert_eq!(
        next(&mut messages).await,
        Some(Message::Binary(vec![1, 2, 3]))
    );
    socket.close().unwrap();
    assert_eq!(next(&mut messages).await, None);
}

#[wasm_bindgen_test]
async fn unreachable_server_fires_error_then_close_1006() {
    let socket = WebSocket::connect(UNREACHABLE).unwrap();
    let mut events = socket.events();
    assert_eq!(next_event(&mut events).await, Event::Error);
    let closed = next_close(&mut events).await;
    assert_eq!((closed.code, closed.was_clean), (1006, false));
    assert_eq!(next(&mut events).await, None);
}

#[wasm_bindgen_test]
async fn a_server_close_with_code_and_reason_reaches_the_app() {
    let (socket, mut events) = open_url(server_url()).await;
    socket.send("!close 4002 server says bye").unwrap();
    assert_eq!(
        next_event(&mut events).await,
        server_close(4002, "server says bye")
    );
    assert_eq!(next(&mut events).await, None);
}

#[wasm_bindgen_test]
async fn the_negotiated_subprotocol_is_exposed() {
    let socket = WebSocket::builder(server_url())
        .protocols(["chat.v2", "echo.v1"])
        .connect()
        .unwrap();
    let (socket, events) = open(socket).await;
    assert_eq!(socket.protocol(), "echo.v1");
    // Chromium offers permessage-deflate, and the test server (`--deflate`) accepts it.
    assert!(socket.extensions().starts_with("permessage-deflate"));
    finish(socket, events).await;
}

#[wasm_bindgen_test]
async fn sending_while_connecting_is_a_typed_error() {
    let socket = WebSocket::connect(server_url()).unwrap();
    assert_eq!(
        socket.send("too early"),
        Err(Error::NotOpen(State::Connecting))
    );
}

#[wasm_bindgen_test]
async fn sending_after_close_is_a_typed_error() {
    let (socket, events) = open_url(server_url()).await;
    socket.close().unwrap();
    // The browser would drop this silently while closing.
    assert_eq!(socket.send("late"), Err(Error::NotOpen(State::Closing)));
    finish(socket.clone(), events).await;
    assert_eq!(socket.send("later"), Err(Error::NotOpen(State::Closed)));
}

#[wasm_bindgen_test]
fn bad_close_arguments_are_typed_errors_and_never_reach_the_browser() {
    let socket = WebSocket::connect(server_url()).unwrap();
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
}

#[wasm_bindgen_test]
fn invalid_urls_and_protocols_are_typed_errors() {
    let error = WebSocket::connect("ftp://127.0.0.1/").unwrap_err();
    assert!(matches!(error, Error::InvalidUrl { .. }), "{error}");
    let error = WebSocket::builder(server_url())
        .protocols(["chat", "chat"])
        .connect()
        .unwrap_err();
    assert_eq!(error, Error::InvalidProtocol("chat".into()));
}

#[wasm_bindgen_test]
async fn another_handle_can_close_and_the_last_handle_frees_everything() {
    let before = live_closures();
    let (socket, mut events) = open_url(server_url()).await;
    assert_eq!(live_closures(), before + 4);
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

#[wasm_bindgen_test]
async fn a_thousand_sockets_leave_no_closures_and_no_memory_behind() {
    let before = live_closures();
    let mut memory_after_warmup = 0;
    for round in 0..1_000 {
        let (socket, events) = open_url(server_url()).await;
        finish(socket, events).await;
        if round == 99 {
            sleep(0).await;
            memory_after_warmup = wasm_memory();
        }
    }
    assert_closures_back_to(before).await;
    let growth = wasm_memory() - memory_after_warmup;
    // Nothing per socket is kept: 900 more sockets grow memory by less than one 64 KiB page.
    assert!(
        growth < 65_536,
        "wasm memory grew by {growth} bytes over 900 sockets"
    );
}

#[wasm_bindgen_test]
async fn send_async_keeps_the_browser_buffer_near_the_high_water_mark() {
    const CHUNK: usize = 64 * 1024;
    const HIGH_WATER_MARK: u32 = 256 * 1024;
    let chunk = vec![7u8; CHUNK];

    // Plain sends from one task pile up in the browser: the baseline.
    let (socket, events) = open_url(server_url()).await;
    for _ in 0..100 {
        socket.send(&chunk[..]).unwrap();
    }
    let unbounded = socket.buffered_amount();
    finish(socket, events).await;

    let socket = WebSocket::builder(server_url())
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

#[wasm_bindgen_test]
async fn after_an_outage_it_reconnects_and_sends_the_queue_in_order_exactly_once() {
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect())
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    socket.send("!outage 600").unwrap();
    let dropped = next_close(&mut events).await;
    assert_eq!(dropped.code, 1006);
    let Event::Reconnecting(Reconnecting { attempt: 1, .. }) = next_event(&mut events).await else {
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

#[wasm_bindgen_test]
async fn a_deliberate_close_is_never_followed_by_a_reconnection() {
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect())
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    socket.close().unwrap();
    assert_eq!(next_event(&mut events).await, close(1000, ""));
    assert_eq!(next(&mut events).await, None);
    assert_eq!(socket.state(), State::Closed);
}

#[wasm_bindgen_test]
async fn a_close_code_marked_final_is_never_followed_by_a_reconnection() {
    let socket = WebSocket::builder(server_url())
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

#[wasm_bindgen_test]
async fn attempts_stop_at_the_maximum() {
    let socket = WebSocket::builder(UNREACHABLE)
        .reconnect(
            quick_reconnect()
                .initial_delay(Duration::from_millis(20))
                .max_attempts(2),
        )
        .connect()
        .unwrap();
    let mut events = socket.events();
    let mut attempts = Vec::new();
    let mut closes = 0;
    while let Some(event) = next(&mut events).await {
        match event {
            Event::Reconnecting(next) => attempts.push(next.attempt),
            Event::Close(_) => closes += 1,
            _ => {}
        }
    }
    assert_eq!(attempts, [1, 2]);
    assert_eq!(closes, 3);
    assert_eq!(socket.state(), State::Closed);
}

#[wasm_bindgen_test]
async fn attempts_count_again_from_one_after_a_connection_stays_up() {
    for (reset_after, second_attempt) in [(Duration::ZERO, 1), (Duration::from_secs(60), 2)] {
        let socket = WebSocket::builder(server_url())
            .reconnect(quick_reconnect().reset_after(reset_after))
            .connect()
            .unwrap();
        let (socket, mut events) = open(socket).await;
        socket.send("!drop").unwrap();
        let mut attempts = Vec::new();
        while attempts.len() < 2 {
            match next_event(&mut events).await {
                Event::Open => socket.send("!drop").unwrap(),
                Event::Reconnecting(next) => attempts.push(next.attempt),
                _ => {}
            }
        }
        assert_eq!(attempts, [1, second_attempt], "reset after {reset_after:?}");
        finish(socket, events).await;
    }
}

#[wasm_bindgen_test]
async fn closing_while_waiting_to_reconnect_cancels_the_attempt() {
    // Counted before the socket exists: its four closures, and the timer's, must all go.
    let before = live_closures();
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect().initial_delay(Duration::from_secs(10)))
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    dropped_by_the_server(&socket, &mut events).await;
    assert_eq!(socket.state(), State::Reconnecting);
    socket.close_with(4000, "never mind").unwrap();
    assert_eq!(next_event(&mut events).await, close(4000, "never mind"));
    assert_eq!(next(&mut events).await, None);
    sleep(0).await;
    assert_eq!(live_closures(), before, "a closure was not freed");
}

#[wasm_bindgen_test]
async fn a_full_queue_drops_the_oldest_and_reports_it_or_refuses_as_configured() {
    let socket = WebSocket::builder(server_url())
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

    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect().queue_capacity(2))
        .connect()
        .unwrap();
    socket.send("a").unwrap();
    socket.send("b").unwrap();
    assert_eq!(socket.send("c"), Err(Error::QueueFull { capacity: 2 }));
    socket.close().unwrap();
}

/// Bug: a queue of capacity 0 with `DropOldest` accepted a message and dropped it unseen.
#[wasm_bindgen_test]
fn a_queue_of_capacity_zero_refuses_whatever_the_policy() {
    for overflow in [Overflow::Error, Overflow::DropOldest] {
        let socket = WebSocket::builder(server_url())
            .reconnect(quick_reconnect().queue_capacity(0).overflow(overflow))
            .connect()
            .unwrap();
        assert_eq!(socket.send("a"), Err(Error::QueueFull { capacity: 0 }));
        assert_eq!(socket.queued(), 0);
        socket.close().unwrap();
    }
}

/// Bug: `close()` from inside `on_close` only set a flag, and the reconnection decided before
/// the callback opened a new connection that stayed open.
#[wasm_bindgen_test]
async fn close_from_the_close_callback_means_never_again() {
    let before = live_closures();
    let states = Rc::new(RefCell::new(Vec::new()));
    let socket = WebSocket::builder(server_url())
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

/// Bug: a send from `on_close` was `NotOpen(Closed)` although a reconnection followed, while
/// the same send from a stream consumer was queued. Both now see `Reconnecting` and queue.
#[wasm_bindgen_test]
async fn a_send_from_the_close_callback_is_queued_like_any_other() {
    let results = Rc::new(RefCell::new(Vec::new()));
    let socket = WebSocket::builder(server_url())
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
    socket.send("from the stream").unwrap();
    assert_eq!(*results.borrow(), [Ok(())]);
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

/// Bug: the queue went out all at once on open, past the high-water mark, and a message the
/// browser refused was dropped silently.
#[wasm_bindgen_test]
async fn the_queue_drains_at_the_pace_of_the_high_water_mark() {
    const CHUNK: usize = 64 * 1024;
    const COUNT: usize = 20;
    let at_open = Rc::new(Cell::new((0, 0)));
    let socket = WebSocket::builder(server_url())
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
        assert_eq!(echoed, Some(Message::Binary(vec![n as u8; CHUNK])), "{n}");
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

#[wasm_bindgen_test]
async fn what_is_still_queued_when_the_socket_ends_is_reported() {
    let socket = WebSocket::builder(server_url())
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

/// Bug: when a reconnection attempt could not even be made, the socket finished without a
/// word to the application.
#[wasm_bindgen_test]
async fn an_attempt_the_browser_refuses_is_a_failed_attempt_that_says_why() {
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect().max_attempts(1))
        .url_provider(|| "ftp://127.0.0.1/".to_owned())
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    dropped_by_the_server(&socket, &mut events).await;
    assert_eq!(next_event(&mut events).await, Event::Error);
    let refused = next_close(&mut events).await;
    assert_eq!((refused.code, refused.was_clean), (1006, false));
    assert!(
        refused.reason.contains("ftp://127.0.0.1/"),
        "{}",
        refused.reason
    );
    // One attempt allowed, and used: the socket is done.
    assert_eq!(next(&mut events).await, None);
    assert_eq!(socket.state(), State::Closed);
}

#[wasm_bindgen_test]
async fn the_url_provider_is_asked_before_each_reconnection() {
    let asked = Rc::new(Cell::new(0));
    let url = format!("{}?attempt", server_url());
    let socket = WebSocket::builder(server_url())
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

// A spy on the browser's `WebSocket`: what the library asks of it, recorded in JavaScript.
#[wasm_bindgen(inline_js = r#"
export function spy(method) {
    const original = WebSocket.prototype[method];
    const calls = [], copies = [];
    WebSocket.prototype[method] = function (...args) {
        calls.push(args);
        // Views into wasm memory change once Rust frees what they show: copy now.
        copies.push(args.map((arg) => (ArrayBuffer.isView(arg) ? arg.slice() : arg)));
        return original.apply(this, args);
    };
    return { calls, copies, restore() { WebSocket.prototype[method] = original; } };
}
"#)]
extern "C" {
    type Spy;
    fn spy(method: &str) -> Spy;
    #[wasm_bindgen(method, getter)]
    fn calls(this: &Spy) -> js_sys::Array;
    #[wasm_bindgen(method, getter)]
    fn copies(this: &Spy) -> js_sys::Array;
    #[wasm_bindgen(method)]
    fn restore(this: &Spy);
}

/// Bug: a callback that captured a handle kept its socket open after the application dropped
/// its own. Callbacks are given the socket, or keep a weak handle, and the last handle closes.
#[wasm_bindgen_test]
async fn dropping_the_last_handle_closes_with_1000_even_when_callbacks_send_and_close() {
    let before = live_closures();
    let weak = Rc::new(RefCell::new(None));
    let socket = WebSocket::builder(server_url())
        .on_open(|socket| socket.send("hello").unwrap())
        .on_message(|socket, message| {
            if message == Message::Text("Received:  bye".into()) {
                socket.close_with(4000, "bye").unwrap();
            }
        })
        .on_close({
            let weak = weak.clone();
            move |_, _| {
                let weak: &RefCell<Option<wasm_websocket::WeakWebSocket>> = &weak;
                if let Some(socket) = weak.borrow().as_ref().and_then(|weak| weak.upgrade()) {
                    let _ = socket.send("never");
                }
            }
        })
        .connect()
        .unwrap();
    *weak.borrow_mut() = Some(socket.downgrade());
    let mut messages = socket.messages();
    assert_eq!(
        next(&mut messages).await,
        Some(Message::Text("Received:  hello".into()))
    );
    let close = spy("close");
    drop(socket);
    // `messages` holds a handle too: it is the last.
    drop(messages);
    let calls = close.calls();
    close.restore();
    assert_eq!(
        calls.length(),
        1,
        "close was called {} times",
        calls.length()
    );
    let code = js_sys::Array::from(&calls.get(0)).get(0).as_f64();
    assert_eq!(code, Some(1000.0));
    assert!(weak.borrow().as_ref().unwrap().upgrade().is_none());
    assert_closures_back_to(before).await;
}

/// Bug: binary was always sent as a view into wasm memory, which browsers refuse when that
/// memory is shared (wasm threads). Where it is shared, the bytes go out of a buffer of
/// JavaScript's own; elsewhere the view is what the browser copies from, with no copy of ours.
#[wasm_bindgen_test]
async fn binary_is_sent_from_memory_the_browser_accepts() {
    let (socket, mut events) = open_url(server_url()).await;
    let send = spy("send");
    socket.send(vec![1, 2, 3]).unwrap();
    let (calls, copies) = (send.calls(), send.copies());
    send.restore();
    let view: js_sys::Uint8Array = js_sys::Array::from(&calls.get(0))
        .get(0)
        .dyn_into()
        .expect("a Uint8Array");
    let bytes = js_sys::Uint8Array::new(&js_sys::Array::from(&copies.get(0)).get(0));
    assert_eq!(bytes.to_vec(), [1, 2, 3]);
    let memory = wasm_bindgen::memory().unchecked_into::<js_sys::WebAssembly::Memory>();
    let shared = memory
        .buffer()
        .is_instance_of::<js_sys::SharedArrayBuffer>();
    let from_memory = js_sys::Object::is(&view.buffer(), &memory.buffer());
    assert_eq!(from_memory, !shared, "shared memory: {shared}");
    assert_eq!(
        next_event(&mut events).await,
        Event::Message(Message::Binary(vec![1, 2, 3]))
    );
    finish(socket, events).await;
}

/// Bug: after one failed send, the next panicked inside `futures`' `unfold` ("start_send
/// called without poll_ready"), which aborted the wasm instance.
#[wasm_bindgen_test]
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

#[wasm_bindgen_test]
async fn a_sink_waits_for_room_in_a_full_queue() {
    // A queue of one: the second message waits for the connection instead of failing.
    let socket = WebSocket::builder(server_url())
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

#[wasm_bindgen_test]
async fn open_resolves_once_the_connection_is_open() {
    let socket = WebSocket::open(server_url()).await.unwrap();
    assert_eq!(socket.state(), State::Open);
    let socket = WebSocket::builder(server_url())
        .protocols(["echo.v1"])
        .open()
        .await
        .unwrap();
    assert_eq!(socket.protocol(), "echo.v1");
    socket.close().unwrap();
}

#[wasm_bindgen_test]
async fn open_fails_with_a_typed_error_that_tells_why() {
    let error = WebSocket::open("ftp://127.0.0.1/").await.unwrap_err();
    assert!(matches!(error, Error::InvalidUrl { .. }), "{error}");
    let error = within(5_000, WebSocket::open(UNREACHABLE))
        .await
        .unwrap_err();
    let Error::ConnectFailed(close) = &error else {
        panic!("{error}")
    };
    assert_eq!((close.code, close.was_clean), (1006, false));
    // With reconnection, once the attempts are used up.
    let error = WebSocket::builder(UNREACHABLE)
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

#[wasm_bindgen_test]
async fn messages_is_a_stream_and_a_sink_that_splits_and_tells_how_it_ended() {
    let socket = WebSocket::open(server_url()).await.unwrap();
    let mut messages = socket.messages();
    drop(socket);
    messages.send("whole".into()).await.unwrap();
    assert_eq!(
        next(&mut messages).await,
        Some(Message::Text("Received:  whole".into()))
    );
    let (mut sink, mut stream) = messages.split();
    sink.send(vec![9].into()).await.unwrap();
    assert_eq!(next(&mut stream).await, Some(Message::Binary(vec![9])));
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
    let (mut sink, mut stream) = WebSocket::open(server_url())
        .await
        .unwrap()
        .messages()
        .split();
    sink.close().await.unwrap();
    assert_eq!(next(&mut stream).await, None);
    assert_eq!(stream.close_event().map(|close| close.code), Some(1000));
}

/// The server's `!close CODE REASON` (a test control) closes from the server side.
#[wasm_bindgen_test]
async fn a_server_close_ends_the_message_stream_with_its_code_and_reason() {
    let mut messages = WebSocket::open(server_url()).await.unwrap().messages();
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

#[wasm_bindgen_test]
async fn a_connect_timeout_fails_an_attempt_that_hangs_with_a_typed_cause() {
    let before = live_closures();
    let error = within(
        5_000,
        WebSocket::builder(&silent_url())
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
    let socket = WebSocket::builder(&silent_url())
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

#[wasm_bindgen_test]
async fn the_heartbeat_finds_a_stalled_server_and_the_socket_reconnects() {
    let before = live_closures();
    let (interval, timeout) = (Duration::from_millis(200), Duration::from_millis(200));
    let socket = WebSocket::builder(server_url())
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
    let stalled = js_sys::Date::now();
    let lost = loop {
        match next_event(&mut events).await {
            Event::Close(close) => break close,
            // Replies to the pings before the stall.
            Event::Message(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    let detected = js_sys::Date::now() - stalled;
    assert_eq!(lost.cause, CloseCause::HeartbeatLost, "{lost:?}");
    // Within one interval and one timeout, give or take the timers.
    let bound = (interval + timeout).as_millis() as f64 + 300.0;
    assert!(detected <= bound, "detected after {detected} ms");
    wasm_bindgen_test::console_log!("heartbeat: stall detected after {detected} ms");
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

#[wasm_bindgen_test]
async fn heartbeat_replies_it_recognises_are_not_delivered() {
    let socket = WebSocket::builder(server_url())
        .heartbeat(
            Heartbeat::new(Duration::from_millis(50), Duration::from_millis(500))
                .message("beat")
                .reply(|message| message.as_text() == Some("Received:  beat")),
        )
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    sleep(400).await;
    socket.send("real").unwrap();
    // Only the application's own message comes through, though some pings went and came back.
    assert_eq!(next_event(&mut events).await, text("Received:  real"));
    assert_eq!(socket.state(), State::Open);
    finish(socket, events).await;
}

#[wasm_bindgen_test]
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

    let socket = WebSocket::connect(UNREACHABLE).unwrap();
    let mut events = socket.events();
    assert_eq!(next_event(&mut events).await, Event::Error);
    assert_eq!(
        next_close(&mut events).await.cause,
        CloseCause::HandshakeFailed
    );
}

#[wasm_bindgen_test]
async fn reconnect_now_skips_the_backoff_and_starts_again_after_the_attempts_run_out() {
    let before = live_closures();
    let opened = Rc::new(Cell::new(0));
    let socket = WebSocket::builder(server_url())
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

#[wasm_bindgen_test]
async fn should_reconnect_stops_the_loop() {
    let socket = WebSocket::builder(server_url())
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

#[wasm_bindgen_test]
async fn offline_closes_and_holds_the_attempts_until_online() {
    let before = live_closures();
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect())
        .follow_network()
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    dispatch(&js_sys::global(), "offline");
    let offline = next_close(&mut events).await;
    assert_eq!((offline.code, offline.cause), (1006, CloseCause::Offline));
    // Longer than any backoff of the policy: no attempt is made, or announced.
    sleep(600).await;
    assert_eq!(socket.state(), State::Reconnecting);
    assert_eq!(futures_util::FutureExt::now_or_never(events.next()), None);
    dispatch(&js_sys::global(), "online");
    assert_eq!(next_event(&mut events).await, Event::Open);
    finish(socket, events).await;
    sleep(0).await;
    assert_eq!(live_closures(), before, "the listeners go with the close");
}

#[wasm_bindgen_test]
async fn online_starts_an_attempt_waiting_in_backoff_at_once() {
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect().initial_delay(Duration::from_secs(20)))
        .follow_network()
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    dropped_by_the_server(&socket, &mut events).await;
    dispatch(&js_sys::global(), "online");
    // Well within the ten seconds or more of the backoff.
    assert_eq!(next_event(&mut events).await, Event::Open);
    finish(socket, events).await;
}

#[wasm_bindgen_test]
async fn a_page_shown_again_checks_the_connection_at_once() {
    let document = js_sys::Reflect::get(&js_sys::global(), &"document".into()).unwrap();
    let state = js_sys::Reflect::get(&document, &"visibilityState".into()).unwrap();
    assert_eq!(state.as_string().as_deref(), Some("visible"));
    let socket = WebSocket::builder(server_url())
        .heartbeat(Heartbeat::new(
            Duration::from_secs(60),
            Duration::from_millis(300),
        ))
        .follow_network()
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    socket.send("!stall 10000").unwrap();
    sleep(100).await;
    dispatch(&document, "visibilitychange");
    // Long before the heartbeat's next interval.
    let lost = next_close(&mut events).await;
    assert_eq!(lost.cause, CloseCause::HeartbeatLost);
}

#[wasm_bindgen_test]
async fn an_async_url_provider_is_awaited_once_per_attempt_in_order() {
    let before = live_closures();
    let asked = Rc::new(Cell::new(0));
    let base = server_url().to_owned();
    let socket = WebSocket::builder(server_url())
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

#[wasm_bindgen_test]
async fn a_url_provider_that_never_answers_is_cut_by_the_connect_timeout() {
    let before = live_closures();
    let asked = Rc::new(Cell::new(0));
    let socket = WebSocket::builder(server_url())
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
