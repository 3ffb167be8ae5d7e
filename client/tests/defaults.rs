//! Liveness with its default settings, which take their time: a stalled server is found
//! within the default heartbeat's interval and timeout (35 s) of the last message heard, in
//! the worst case: the server stalls right after it answered a ping (an earlier version pinged
//! only once the last ping was judged, and took 45 s there). About a minute; ignored unless
//! asked for: `cargo xtask test` runs it with `--include-ignored` and a longer test timeout.

#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use futures_util::StreamExt;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_websocket::{CloseCause, Event, Heartbeat, WebSocket};

wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::{server_url, within};

#[wasm_bindgen_test]
#[ignore = "60 s: `cargo xtask test` runs it with --include-ignored"]
async fn the_default_heartbeat_finds_a_stalled_server_within_35_seconds() {
    let socket = WebSocket::builder(server_url())
        .heartbeat(Heartbeat::default())
        .connect()
        .unwrap();
    let mut events = socket.events();
    assert_eq!(events.next().await, Some(Event::Open));
    // The first ping leaves after 25 s; the echo server answers `Received:  ping`, which is
    // the last message heard before the stall.
    let echo = within(30_000, async {
        loop {
            if let Some(Event::Message(message)) = events.next().await {
                break message;
            }
        }
    })
    .await;
    let stalled = js_sys::Date::now();
    assert_eq!(echo.as_text(), Some("Received:  ping"));
    socket.send("!stall 60000").unwrap();
    let close = within(45_000, async {
        loop {
            match events.next().await {
                Some(Event::Close(close)) => break close,
                Some(_) => {}
                None => panic!("ended without a close"),
            }
        }
    })
    .await;
    let detected = js_sys::Date::now() - stalled;
    assert_eq!(close.cause, CloseCause::HeartbeatLost);
    let bound = Duration::from_secs(35).as_millis() as f64 + 1_000.0;
    assert!(detected <= bound, "detected after {detected} ms");
    console_log!("heartbeat (defaults): stall detected after {detected:.0} ms");
}
