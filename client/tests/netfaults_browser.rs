//! The browser client across a real black hole: the page's half of the browser case in the
//! repository's `server/tests/netfaults/` (`cargo xtask test netfaults`). That test starts two
//! echo servers in network namespaces at fixed addresses (`ws://10.9.1.2:8080/` and
//! `ws://10.9.2.2:8080/`), runs this test in headless Chromium inside the client's namespace,
//! and drops every packet between the client and the first server right after that server
//! answered a heartbeat. Built with `NETFAULT_BROWSER` set; in other builds (the browser
//! suites') it does nothing.

#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use futures_util::StreamExt;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_websocket::{CloseCause, Event, Heartbeat, Message, Reconnect, Sent, WebSocket};

wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::within;

/// The heartbeat: a ping every second, an answer within half a second; its bound, 1.5 s.
const INTERVAL_MS: u64 = 1000;
const TIMEOUT_MS: u64 = 500;

#[wasm_bindgen_test]
async fn a_black_hole_is_found_by_the_heartbeat_and_the_client_fails_over() {
    if option_env!("NETFAULT_BROWSER").is_none() {
        console_log!("not built for the network fault lab: nothing to do");
        return;
    }
    let heartbeat = Heartbeat::new(
        Duration::from_millis(INTERVAL_MS),
        Duration::from_millis(TIMEOUT_MS),
    );
    let socket = WebSocket::builder("ws://10.9.1.2:8080/")
        .reconnect(Reconnect::new().initial_delay(Duration::from_millis(50)))
        .url_provider(|| "ws://10.9.2.2:8080/".to_owned())
        .heartbeat(heartbeat)
        .connect()
        .unwrap();
    let mut events = socket.events();
    assert_eq!(events.next().await, Some(Event::Open));
    // Every message until the hole is an answer to a heartbeat (`A ping`); the last one is
    // the last message heard.
    let mut last_heard = js_sys::Date::now();
    let mut answers = 0;
    let close = within(20_000, async {
        loop {
            match events.next().await {
                Some(Event::Message(message)) => {
                    assert_eq!(message.as_text(), Some("A ping"));
                    last_heard = js_sys::Date::now();
                    answers += 1;
                }
                Some(Event::Close(close)) => break close,
                Some(_) => {}
                None => panic!("ended without a close"),
            }
        }
    })
    .await;
    let found = js_sys::Date::now() - last_heard;
    assert_eq!(close.cause, CloseCause::HeartbeatLost, "{close:?}");
    // While it waits to reconnect, three messages wait in its queue.
    within(5_000, async {
        while !matches!(events.next().await, Some(Event::Reconnecting(_))) {}
    })
    .await;
    for n in 0..3 {
        assert_eq!(socket.send(format!("q{n}")).unwrap(), Sent::Queued);
    }
    let reopened = within(10_000, async {
        while events.next().await != Some(Event::Open) {}
        js_sys::Date::now()
    })
    .await;
    let echoed = within(10_000, async {
        let mut echoed = Vec::new();
        while echoed.len() < 3 {
            if let Some(Event::Message(Message::Text(text))) = events.next().await {
                if text != "B ping" {
                    echoed.push(text);
                }
            }
        }
        echoed
    })
    .await;
    assert_eq!(echoed, ["B q0", "B q1", "B q2"]);
    socket.close().unwrap();
    let bound = (INTERVAL_MS + TIMEOUT_MS) as f64;
    console_log!(
        "browser: black hole found {found:.0} ms after the last message heard (bound {bound:.0} \
         ms, {answers} answers before it); open on B {:.0} ms later, the queue echoed in order",
        reopened - last_heard - found
    );
    assert!(
        found <= bound + 300.0,
        "found {found} ms after the last message"
    );
    assert!(found >= bound - 250.0, "found early: {found} ms");
}
