//! The client in headless Chromium against the live echo server that `cargo xtask test` starts
//! and names in `ECHO_SERVER_URL` at build time.

#![cfg(target_arch = "wasm32")]

use futures_channel::mpsc::{UnboundedReceiver, unbounded};
use futures_util::StreamExt;
use futures_util::future::{Either, select};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_websocket::{Callbacks, CloseEvent, Error, Message, State, WebSocket};

wasm_bindgen_test_configure!(run_in_browser);

fn server_url() -> &'static str {
    match option_env!("ECHO_SERVER_URL") {
        Some(url) => url,
        None => panic!("ECHO_SERVER_URL names the live echo server; run `cargo xtask test`"),
    }
}

/// Every event a socket delivers, in order.
#[derive(Debug, PartialEq)]
enum Event {
    Open,
    Message(Message),
    Error,
    Close(CloseEvent),
}

/// Callbacks that record each event into a channel, and its receiving end.
fn recorder() -> (Callbacks, UnboundedReceiver<Event>) {
    let (sender, receiver) = unbounded();
    let (open, message, error, close) = (sender.clone(), sender.clone(), sender.clone(), sender);
    let callbacks = Callbacks::new()
        .on_open(move || open.unbounded_send(Event::Open).unwrap())
        .on_message(move |m| message.unbounded_send(Event::Message(m)).unwrap())
        .on_error(move || error.unbounded_send(Event::Error).unwrap())
        .on_close(move |c| close.unbounded_send(Event::Close(c)).unwrap());
    (callbacks, receiver)
}

async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(resolve.unchecked_ref(), ms)
            .unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

/// The next event, or a panic after five seconds without one.
async fn next(events: &mut UnboundedReceiver<Event>) -> Event {
    match select(events.next(), Box::pin(sleep(5_000))).await {
        Either::Left((Some(event), _)) => event,
        Either::Left((None, _)) => panic!("the socket dropped its callbacks"),
        Either::Right(_) => panic!("no event within 5 s"),
    }
}

async fn open() -> (WebSocket, UnboundedReceiver<Event>) {
    let (callbacks, mut events) = recorder();
    let socket = WebSocket::connect(server_url(), callbacks).unwrap();
    assert_eq!(next(&mut events).await, Event::Open);
    assert_eq!(socket.state(), State::Open);
    (socket, events)
}

#[wasm_bindgen_test]
async fn open_send_receive_and_close_with_a_code() {
    let (socket, mut events) = open().await;
    socket.send_text("Hello, world!").unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Message(Message::Text("Received:  Hello, world!".into()))
    );
    socket.close_with(4000, "bye").unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Close(CloseEvent {
            code: 4000,
            reason: "bye".into(),
            was_clean: true
        })
    );
    assert_eq!(socket.state(), State::Closed);
    // After the close event the closures are dropped, and the channel with them.
    assert_eq!(events.next().await, None);
}

#[wasm_bindgen_test]
async fn binary_round_trip_is_byte_exact() {
    let (socket, mut events) = open().await;
    let data: Vec<u8> = (0..=255).cycle().take(100_000).collect();
    socket.send_binary(&data).unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Message(Message::Binary(data))
    );
    socket.close().unwrap();
}

#[wasm_bindgen_test]
async fn unreachable_server_fires_error_then_close() {
    let (callbacks, mut events) = recorder();
    // Port 9 (discard) is closed on the loopback of a test machine.
    let _socket = WebSocket::connect("ws://127.0.0.1:9/", callbacks).unwrap();
    assert_eq!(next(&mut events).await, Event::Error);
    match next(&mut events).await {
        Event::Close(close) => {
            assert_eq!(close.code, 1006);
            assert!(!close.was_clean);
        }
        other => panic!("expected close, got {other:?}"),
    }
}

#[wasm_bindgen_test]
fn sending_while_connecting_is_a_typed_error() {
    let (callbacks, _events) = recorder();
    let socket = WebSocket::connect(server_url(), callbacks).unwrap();
    assert_eq!(
        socket.send_text("too early"),
        Err(Error::NotOpen(State::Connecting))
    );
}

#[wasm_bindgen_test]
fn bad_close_arguments_are_typed_errors() {
    let (callbacks, _events) = recorder();
    let socket = WebSocket::connect(server_url(), callbacks).unwrap();
    assert_eq!(
        socket.close_with(1001, ""),
        Err(Error::InvalidCloseCode(1001))
    );
    let long = "x".repeat(124);
    assert_eq!(
        socket.close_with(1000, &long),
        Err(Error::ReasonTooLong(124))
    );
    // Neither reached the browser: the socket is still connecting, not closing.
    assert_eq!(socket.state(), State::Connecting);
}

#[wasm_bindgen_test]
fn an_invalid_url_is_a_typed_error() {
    let (callbacks, _events) = recorder();
    let error = WebSocket::connect("ftp://127.0.0.1/", callbacks).unwrap_err();
    assert!(matches!(error, Error::InvalidUrl { .. }), "{error}");
}
