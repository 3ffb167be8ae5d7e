//! The Autobahn TestSuite's client cases, run by this crate inside headless Chromium against
//! kosoku's fuzzing server (`kosoku -m fuzzingserver`), whose address `cargo xtask test` passes
//! in `AUTOBAHN_URL` at build time. The client echoes every message back unchanged; the
//! fuzzing server judges each case and `cargo xtask test` reads its report.

#![cfg(target_arch = "wasm32")]

use futures_util::StreamExt;
use futures_util::future::{Either, select};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_websocket::{Event, Message, WebSocket};

wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::sleep;

const AGENT: &str = "wasm-websocket";

/// A case that has not closed by then is abandoned; the report shows it.
const CASE_TIMEOUT_MS: i32 = 30_000;

fn fuzzing_server() -> &'static str {
    match option_env!("AUTOBAHN_URL") {
        Some(url) => url,
        None => panic!("AUTOBAHN_URL names kosoku's fuzzing server; run `cargo xtask test`"),
    }
}

/// Connects to `path` of the fuzzing server, echoes every message until the connection closes
/// or the case times out, and returns the first message received.
async fn run(path: &str) -> Option<Message> {
    let socket = WebSocket::connect(&format!("{}{path}", fuzzing_server())).unwrap();
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
        web_sys::console::log_1(&format!("{path} timed out").into());
        let _ = socket.close();
    }
    first
}

#[wasm_bindgen_test]
#[ignore = "needs kosoku's fuzzing server: `cargo xtask test` runs it with --include-ignored"]
async fn autobahn_client_cases() {
    let Some(Message::Text(count)) = run("/getCaseCount").await else {
        panic!("the fuzzing server did not say how many cases it has");
    };
    let count: u32 = count.parse().expect("a number of cases");
    assert!(count > 0);
    for case in 1..=count {
        run(&format!("/runCase?case={case}&agent={AGENT}")).await;
    }
    run(&format!("/updateReports?agent={AGENT}")).await;
}
