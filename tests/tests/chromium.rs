//! A fault of the Chromium that the tests run in, shown in plain JavaScript against the real
//! server, because `cargo xtask test` works around it: on `WebSocketStream`, a write still
//! pending when the connection ends without a close handshake crashes the page's renderer.
//! The Autobahn client cases that do that on purpose (`xtask/src/autobahn.rs`,
//! `CRASH_CHROMIUM_ON_STREAM`) therefore run each in a page of their own there. When a
//! Chromium without the fault arrives, this test fails, and the workaround can go.

use e2e::{Browser, start_server};
use test_support::browser::Engine;
use wsecho::Config;

/// Opens a `WebSocketStream` to `url`, sends `first` (a test control), then at once one
/// message of 1 MB, and resolves with what became of them.
const SCRIPT: &str = r#"
const [url, first, done] = arguments;
(async () => {
  const stream = new WebSocketStream(url);
  const { writable } = await stream.opened;
  const writer = writable.getWriter();
  writer.write(first);
  const big = writer.write("x".repeat(1 << 20)).then(() => "written", () => "rejected");
  const closed = stream.closed.then(() => "clean", () => "not clean");
  done(`${await big}, ${await closed}`);
})().catch((error) => done(`error: ${error}`));
"#;

#[tokio::test]
async fn websocketstream_crashes_on_a_write_pending_at_an_unclean_close() -> anyhow::Result<()> {
    let config = Config {
        test_controls: true,
        ..Config::default()
    };
    let addr = start_server(config).await?;
    let browser = Browser::start_in(Engine::Chromium).await?;
    let page = &browser.client;
    page.goto(&format!("http://{addr}/")).await?;
    let url = serde_json::json!(format!("ws://{addr}/"));
    let run = |first: &str| page.execute_async(SCRIPT, vec![url.clone(), first.into()]);

    // The control: the server closes with a handshake while the big message is being
    // written. The write fails, and the page lives on.
    let answer = run("!close 4001 bye").await?;
    assert_eq!(answer, "rejected, not clean", "{answer}");

    // The fault: the server drops the connection without a handshake meanwhile.
    let crashed = match run("!drop").await {
        Ok(answer) => panic!(
            "the page lived on ({answer}): this Chromium no longer crashes, so \
             CRASH_CHROMIUM_ON_STREAM and its pages of their own can go"
        ),
        Err(error) => error.to_string(),
    };
    assert!(crashed.contains("tab crashed"), "{crashed}");
    browser.close().await
}
