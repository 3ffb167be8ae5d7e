//! The client used the way a hostile or careless application would, in the browser: what
//! only the browser can show of it.
//!
//! This suite used to attack the state machine here (every public method from inside every
//! callback, in every state, after errors; handles, streams and sinks dropped at odd moments;
//! junk from the URL provider; queue and high-water-mark edge cases): 24 tests, about 7 s. Those
//! scenarios now run natively in milliseconds on the simulated transport and clock, under
//! the same names, in `src/tests/scenarios/hostile.rs` (`cargo test -p wasm-websocket --lib
//! scenarios`), with the echo server and its controls played by `sim::serve`. What stays is
//! what the simulation cannot show: the browser's own closures (its `WebSocket`'s handlers and
//! the timer's `setTimeout` callback) freed when the only handle is dropped inside one of them.
//! The browser's events, refusals and memory are `browser.rs`'s; each transport's behaviour is
//! `transports.rs`'s and, for `WebSocketStream`, `hostile_stream.rs`'s. Runs against the echo
//! server started with `--test-controls --protocol echo.v1`, like `browser.rs`.

#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_websocket::{Error, Event, Events, Overflow, State, WebSocket, live_closures};

wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::{
    drop_only_handle, is_unsent, keep_only_handle, next_event, open, rest, server_url, sleep,
    slow_reconnect, text,
};

/// Drops the connection from the server's side and waits until the socket waits to reconnect.
async fn drop_and_wait(socket: &WebSocket, events: &mut Events) {
    socket.send("!drop").unwrap();
    loop {
        match next_event(events).await {
            Event::Reconnecting(_) => break,
            Event::Close(_) | Event::Error => {}
            other => panic!("unexpected {other:?} before the reconnection"),
        }
    }
    assert_eq!(socket.state(), State::Reconnecting);
}

/// The application's only handle, dropped from inside a callback: the socket closes with 1000
/// once the callback returns, its streams end and every closure is freed, the one running
/// included (the browser's message and close handlers, and a timer's). The events each part
/// hears are asserted natively too (`scenarios::hostile::the_only_handle_dropped_inside_callbacks`);
/// the closures freed during their own call are the browser's.
#[wasm_bindgen_test]
async fn the_only_handle_dropped_inside_callbacks() {
    let before = live_closures();
    // From on_message, inside the browser's message handler.
    let socket = WebSocket::builder(server_url())
        .on_open(|socket| {
            socket.send("drop me").unwrap();
        })
        .on_message(|_, _| {
            drop_only_handle();
        })
        .connect()
        .unwrap();
    let mut events = socket.events();
    keep_only_handle(socket);
    let seen = rest(&mut events).await;
    assert_eq!(seen, [Event::Open, text("Received:  drop me")]);
    sleep(0).await;
    assert_eq!(live_closures(), before, "from on_message");

    // From on_reconnect, inside the close handler, with a timer scheduled.
    let socket = WebSocket::builder(server_url())
        .reconnect(slow_reconnect())
        .on_reconnect(|_, _| {
            drop_only_handle();
        })
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    socket.send("!drop").unwrap();
    keep_only_handle(socket);
    let seen = rest(&mut events).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    sleep(0).await;
    assert_eq!(live_closures(), before, "from on_reconnect");

    // From on_unsent, inside a timer.
    let socket = WebSocket::builder(server_url())
        .reconnect(
            slow_reconnect()
                .queue_capacity(1)
                .overflow(Overflow::DropOldest),
        )
        .on_unsent(|_, _| {
            drop_only_handle();
        })
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    drop_and_wait(&socket, &mut events).await;
    socket.send("a").unwrap();
    socket.send("b").unwrap();
    keep_only_handle(socket);
    let seen = rest(&mut events).await;
    let full = Error::QueueFull { capacity: 1 };
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(is_unsent(&seen[0], "a", &full), "{seen:?}");
    sleep(0).await;
    assert_eq!(live_closures(), before, "from on_unsent");
}
