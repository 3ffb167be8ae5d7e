//! The Autobahn TestSuite's client cases, run by this crate against kosoku's fuzzing server
//! (`kosoku -m fuzzingserver`), whose address `cargo xtask test` passes in `AUTOBAHN_URL` (at
//! build time for the browser, at run time natively), on each transport: in headless Chromium
//! on `WebSocket` and (with `WS_TRANSPORT=stream`) on `WebSocketStream`, and natively. The
//! client echoes every message back unchanged; the fuzzing server judges each case, and
//! `cargo xtask test` reads its report, one agent per transport.

use futures_util::StreamExt;
use futures_util::future::{Either, select};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_websocket::{Event, Message, Transport};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::{builder, expected_transport, local, sleep};

/// The agent the report names: one per transport.
fn agent() -> &'static str {
    match expected_transport() {
        Transport::WebSocketStream => "wasm-websocket-stream",
        Transport::Tungstenite => "wasm-websocket-native",
        _ => "wasm-websocket",
    }
}

/// A case that has not closed by then is abandoned; the report shows it.
const CASE_TIMEOUT_MS: i32 = 30_000;

fn fuzzing_server() -> String {
    #[cfg(not(target_arch = "wasm32"))]
    let url = std::env::var("AUTOBAHN_URL").ok();
    #[cfg(target_arch = "wasm32")]
    let url = option_env!("AUTOBAHN_URL").map(str::to_owned);
    match url {
        Some(url) => url,
        None => panic!("AUTOBAHN_URL names kosoku's fuzzing server; run `cargo xtask test`"),
    }
}

/// Connects to `path` of the fuzzing server, echoes every message until the connection closes
/// or the case times out, and returns the first message received.
async fn run(path: &str) -> Option<Message> {
    let socket = builder(&format!("{}{path}", fuzzing_server()))
        .connect()
        .unwrap();
    let mut events = socket.events();
    let mut first = None;
    let echo = async {
        while let Some(event) = events.next().await {
            if let Event::Message(message) = event {
                first.get_or_insert_with(|| message.clone());
                let _ = socket.send(message);
            }
        }
    };
    if let Either::Right(_) = select(Box::pin(echo), Box::pin(sleep(CASE_TIMEOUT_MS))).await {
        support::log(&format!("{path} timed out"));
        let _ = socket.close();
    }
    first
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), tokio::test)]
#[ignore = "needs kosoku's fuzzing server: `cargo xtask test` runs it with --include-ignored"]
async fn autobahn_client_cases() {
    local(cases()).await
}

async fn cases() {
    let agent = agent();
    let Some(Message::Text(count)) = run("/getCaseCount").await else {
        panic!("the fuzzing server did not say how many cases it has");
    };
    let count: u32 = count.parse().expect("a number of cases");
    assert!(count > 0);
    for case in 1..=count {
        run(&format!("/runCase?case={case}&agent={agent}")).await;
    }
    run(&format!("/updateReports?agent={agent}")).await;
}
