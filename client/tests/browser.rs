//! The client in headless Chromium against the live echo server that `cargo xtask test`
//! starts (with `--test-controls --protocol echo.v1`) and names in `ECHO_SERVER_URL` at build
//! time.

#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::{Either, select};
use futures_util::{SinkExt, Stream, StreamExt};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_websocket::{
    CloseEvent, Error, Event, Events, Message, Overflow, Reconnect, Reconnecting, State, WebSocket,
    live_closures,
};

wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::sleep;

fn server_url() -> &'static str {
    match option_env!("ECHO_SERVER_URL") {
        Some(url) => url,
        None => panic!("ECHO_SERVER_URL names the live echo server; run `cargo xtask test`"),
    }
}

/// Port 9 (discard) is closed on the loopback of a test machine.
const UNREACHABLE: &str = "ws://127.0.0.1:9/";

/// The next item, or a panic after five seconds without one.
async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    match select(stream.next(), Box::pin(sleep(5_000))).await {
        Either::Left((item, _)) => item,
        Either::Right(_) => panic!("nothing within 5 s"),
    }
}

async fn next_event(events: &mut Events) -> Event {
    next(events).await.expect("the stream ended early")
}

fn text(text: &str) -> Event {
    Event::Message(Message::Text(text.into()))
}

fn close(code: u16, reason: &str) -> Event {
    Event::Close(CloseEvent {
        code,
        reason: reason.into(),
        was_clean: true,
    })
}

/// An open socket and its events.
async fn open(socket: WebSocket) -> (WebSocket, Events) {
    let mut events = socket.events();
    assert_eq!(next_event(&mut events).await, Event::Open);
    assert_eq!(socket.state(), State::Open);
    (socket, events)
}

async fn open_url(url: &str) -> (WebSocket, Events) {
    open(WebSocket::connect(url).unwrap()).await
}

/// Closes a socket made by a test and waits for the end of its events.
async fn finish(socket: WebSocket, mut events: Events) {
    let _ = socket.close();
    while next(&mut events).await.is_some() {}
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
    socket.send_text("Hello, world!").unwrap();
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
        .on_open(move || on_open("open".into()))
        .on_message(move |message| on_message(format!("{message:?}")))
        .on_close(move |event| on_close(format!("close {}", event.code)))
        .connect()
        .unwrap();
    let mut events = socket.events();
    assert_eq!(next_event(&mut events).await, Event::Open);
    socket.send_text("one").unwrap();
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
    socket.send_binary(&data).unwrap();
    let echoed = next_event(&mut events).await;
    assert_eq!(echoed, Event::Message(Message::Binary(data)));
    finish(socket, events).await;
}

#[wasm_bindgen_test]
async fn messages_stream_and_sink_carry_both_kinds() {
    let socket = WebSocket::connect(server_url()).unwrap();
    let mut messages = Box::pin(socket.messages());
    let mut sink = socket.sink();
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
    let Event::Close(closed) = next_event(&mut events).await else {
        panic!("expected a close")
    };
    assert_eq!((closed.code, closed.was_clean), (1006, false));
    assert_eq!(next(&mut events).await, None);
}

#[wasm_bindgen_test]
async fn a_server_close_with_code_and_reason_reaches_the_app() {
    let (socket, mut events) = open_url(server_url()).await;
    socket.send_text("!close 4002 server says bye").unwrap();
    assert_eq!(
        next_event(&mut events).await,
        close(4002, "server says bye")
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
    // Chromium offers permessage-deflate; this server accepts no extension.
    assert_eq!(socket.extensions(), "");
    finish(socket, events).await;
}

#[wasm_bindgen_test]
async fn sending_while_connecting_is_a_typed_error() {
    let socket = WebSocket::connect(server_url()).unwrap();
    assert_eq!(
        socket.send_text("too early"),
        Err(Error::NotOpen(State::Connecting))
    );
}

#[wasm_bindgen_test]
async fn sending_after_close_is_a_typed_error() {
    let (socket, events) = open_url(server_url()).await;
    socket.close().unwrap();
    // The browser would drop this silently while closing.
    assert_eq!(
        socket.send_text("late"),
        Err(Error::NotOpen(State::Closing))
    );
    finish(socket.clone(), events).await;
    assert_eq!(
        socket.send_text("later"),
        Err(Error::NotOpen(State::Closed))
    );
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
    sleep(0).await;
    assert_eq!(live_closures(), before);
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
    sleep(0).await;
    assert_eq!(live_closures(), before);
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
        socket.send_binary(&chunk).unwrap();
    }
    let unbounded = socket.buffered_amount();
    finish(socket, events).await;

    let socket = WebSocket::builder(server_url())
        .high_water_mark(HIGH_WATER_MARK)
        .connect()
        .unwrap();
    let mut highest = 0;
    for _ in 0..100 {
        socket
            .send_async(Message::Binary(chunk.clone()))
            .await
            .unwrap();
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

fn quick_reconnect() -> Reconnect {
    Reconnect::new()
        .initial_delay(Duration::from_millis(100))
        .max_delay(Duration::from_millis(400))
}

#[wasm_bindgen_test]
async fn after_an_outage_it_reconnects_and_sends_the_queue_in_order_exactly_once() {
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect())
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    socket.send_text("!outage 600").unwrap();
    let Event::Close(dropped) = next_event(&mut events).await else {
        panic!("expected the outage to close the connection")
    };
    assert_eq!(dropped.code, 1006);
    let Event::Reconnecting(Reconnecting { attempt: 1, .. }) = next_event(&mut events).await else {
        panic!("expected a first reconnection attempt")
    };
    for n in 1..=5 {
        socket.send_text(&format!("queued {n}")).unwrap();
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
    socket.send_text("after").unwrap();
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
    socket.send_text("!close 4001 logged out").unwrap();
    assert_eq!(next_event(&mut events).await, close(4001, "logged out"));
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
        socket.send_text("!drop").unwrap();
        let mut attempts = Vec::new();
        while attempts.len() < 2 {
            match next_event(&mut events).await {
                Event::Open => socket.send_text("!drop").unwrap(),
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
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect().initial_delay(Duration::from_secs(10)))
        .connect()
        .unwrap();
    let before = live_closures();
    let (socket, mut events) = open(socket).await;
    socket.send_text("!drop").unwrap();
    assert!(matches!(next_event(&mut events).await, Event::Close(_)));
    assert!(matches!(
        next_event(&mut events).await,
        Event::Reconnecting(_)
    ));
    assert_eq!(socket.state(), State::Reconnecting);
    socket.close_with(4000, "never mind").unwrap();
    assert_eq!(next_event(&mut events).await, close(4000, "never mind"));
    assert_eq!(next(&mut events).await, None);
    sleep(0).await;
    assert!(
        live_closures() <= before,
        "the timer's closure was not freed"
    );
}

#[wasm_bindgen_test]
async fn a_full_queue_drops_the_oldest_or_refuses_as_configured() {
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
        socket.send_text(message).unwrap();
    }
    assert_eq!(socket.queued(), 2);
    assert_eq!(next_event(&mut events).await, Event::Open);
    assert_eq!(next_event(&mut events).await, text("Received:  b"));
    assert_eq!(next_event(&mut events).await, text("Received:  c"));
    finish(socket, events).await;

    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect().queue_capacity(2))
        .connect()
        .unwrap();
    socket.send_text("a").unwrap();
    socket.send_text("b").unwrap();
    assert_eq!(socket.send_text("c"), Err(Error::QueueFull { capacity: 2 }));
    socket.close().unwrap();
}
