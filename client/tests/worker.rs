//! The library where no `window` exists: in a dedicated Web Worker, against the same live echo
//! server as `browser.rs`.

#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use futures_util::SinkExt;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_websocket::{CloseCause, Event, Message, Reconnect, State, WebSocket, live_closures};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

mod support;
use support::{dispatch, next, server_url};

#[wasm_bindgen_test]
fn this_is_a_worker() {
    let global = js_sys::global();
    assert!(
        js_sys::Reflect::get(&global, &"window".into())
            .unwrap()
            .is_undefined()
    );
    assert!(js_sys::Reflect::has(&global, &"postMessage".into()).unwrap());
}

#[wasm_bindgen_test]
async fn open_echo_and_close_in_a_worker() {
    let before = live_closures();
    let socket = WebSocket::open(server_url()).await.unwrap();
    let mut messages = socket.messages();
    messages.send("from a worker".into()).await.unwrap();
    messages.send(vec![1, 2, 3].into()).await.unwrap();
    assert_eq!(
        next(&mut messages).await,
        Some(Message::Text("Received:  from a worker".into()))
    );
    assert_eq!(
        next(&mut messages).await,
        Some(Message::from(vec![1, 2, 3]))
    );
    messages.close_with(4000, "bye").unwrap();
    assert_eq!(next(&mut messages).await, None);
    assert_eq!(messages.close_event().map(|close| close.code), Some(4000));
    assert_eq!(socket.state(), State::Closed);
    drop((socket, messages));
    assert_eq!(live_closures(), before);
}

#[wasm_bindgen_test]
async fn timers_work_in_a_worker_reconnection_and_callbacks_included() {
    let socket = WebSocket::builder(server_url())
        .reconnect(Reconnect::new().initial_delay(Duration::from_millis(50)))
        .on_open(|socket| {
            socket.send("hello").unwrap();
        })
        .connect()
        .unwrap();
    let mut events = socket.events();
    assert_eq!(next(&mut events).await, Some(Event::Open));
    assert_eq!(
        next(&mut events).await,
        Some(Event::Message(Message::Text("Received:  hello".into())))
    );
    socket.send("!drop").unwrap();
    while next(&mut events).await != Some(Event::Open) {}
    assert_eq!(
        next(&mut events).await,
        Some(Event::Message(Message::Text("Received:  hello".into())))
    );
    socket.close().unwrap();
    while next(&mut events).await.is_some() {}
}

#[wasm_bindgen_test]
async fn a_worker_follows_offline_and_online_on_its_global_scope() {
    let before = live_closures();
    let socket = WebSocket::builder(server_url())
        .reconnect(Reconnect::new().initial_delay(Duration::from_millis(50)))
        .follow_network()
        .connect()
        .unwrap();
    let mut events = socket.events();
    assert_eq!(next(&mut events).await, Some(Event::Open));
    dispatch(&js_sys::global(), "offline");
    let Some(Event::Close(offline)) = next(&mut events).await else {
        panic!("expected a close")
    };
    assert_eq!(offline.cause, CloseCause::Offline);
    dispatch(&js_sys::global(), "online");
    assert_eq!(next(&mut events).await, Some(Event::Open));
    socket.close().unwrap();
    while next(&mut events).await.is_some() {}
    drop(socket);
    assert_eq!(live_closures(), before);
}
