//! The yardstick for the client's Autobahn runs: the same cases run by a plain JavaScript
//! client on the browser's `WebSocket`, in the engine `E2E_ENGINE` names, echoing every
//! message as `client/tests/autobahn.rs` does. A case the browser itself decides (it fails the
//! connection before any script sees a frame) comes out the same for both, so `cargo xtask
//! test` requires the client to do no worse than this on every case.
//!
//! Needs kosoku's fuzzing server at `AUTOBAHN_URL`: ignored unless `cargo xtask test` runs it.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use e2e::{Browser, start_server};
use wsecho::Config;

/// The report's agent.
const AGENT: &str = "plain-javascript";

/// Runs every case of the fuzzing server at `base`, one after another, then has the reports
/// written; progress in `window.__autobahn`. A case that has not closed after 30 s is
/// abandoned, as the client's own run does.
const SCRIPT: &str = r#"
const [base, agent] = arguments;
const state = (window.__autobahn = { done: false, error: null, case: 0, count: 0 });
const run = (path) => new Promise((resolve) => {
  const socket = new WebSocket(base + path);
  socket.binaryType = "arraybuffer";
  let first = null;
  const timer = setTimeout(() => { try { socket.close(); } catch (_) {} resolve(first); }, 30000);
  socket.onmessage = (event) => {
    if (first === null) first = event.data;
    try { socket.send(event.data); } catch (_) {}
  };
  socket.onclose = () => { clearTimeout(timer); resolve(first); };
});
(async () => {
  // Firefox reports about half the connections whose server sends at once and closes (as
  // this one does) as only closed, with no message: ask again.
  // A pause between tries: a clean-clone run once failed them all at once.
  for (let tries = 0; tries < 25 && !state.count; tries++) {
    if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 200));
    state.count = Number(await run("/getCaseCount"));
  }
  for (state.case = 1; state.case <= state.count; state.case++) {
    await run(`/runCase?case=${state.case}&agent=${agent}`);
  }
  await run(`/updateReports?agent=${agent}`);
})().then(() => { state.done = true; }, (error) => { state.error = String(error); state.done = true; });
"#;

#[tokio::test]
#[ignore = "needs kosoku's fuzzing server: `cargo xtask test` runs it with AUTOBAHN_URL"]
async fn plain_javascript_runs_the_autobahn_client_cases() -> anyhow::Result<()> {
    let url = std::env::var("AUTOBAHN_URL").context("AUTOBAHN_URL names the fuzzing server")?;
    // A page of an http origin to run in (Firefox opens no WebSocket from `about:blank`).
    let page = start_server(Config::default()).await?;
    let browser = Browser::start().await?;
    browser.goto(&format!("http://{page}/")).await?;
    browser
        .client
        .execute(SCRIPT, vec![url.trim_end_matches('/').into(), AGENT.into()])
        .await?;
    // Polled rather than awaited in one script: WebDriver cuts a script off after 30 s.
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let state = browser
            .client
            .execute("return window.__autobahn", vec![])
            .await?;
        if state["done"] == true {
            if let Some(error) = state["error"].as_str() {
                bail!("the plain JavaScript client failed: {error}");
            }
            assert!(state["count"].as_u64() > Some(0), "no cases: {state}");
            break;
        }
        if Instant::now() > deadline {
            bail!("the cases did not finish within 900 s: {state}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    browser.close().await
}
