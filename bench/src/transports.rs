//! The client's other transports in `cargo xtask bench` (issue 15), with scenario 5's
//! workloads: in Chromium on `WebSocketStream` beside plain JavaScript's `WebSocket`
//! (`client/tests/speed.rs` built for it), and natively beside tokio-tungstenite used directly
//! (`client/tests/native_speed.rs`), both against our server as a pure echo at `url`.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};

/// The section, as Markdown.
pub fn section(root: &Path, url: &str) -> Result<String> {
    let mut stream = cargo(
        root,
        &["--target", "wasm32-unknown-unknown", "--test", "speed"],
    );
    stream
        .args(["--features", "web-socket-stream", "--"])
        .env("WS_TRANSPORT", "stream")
        .env("ECHO_SERVER_URL", url)
        .env("WASM_BINDGEN_TEST_TIMEOUT", "300")
        .envs(test_support::browser::WASM_TEST_RUNNER_ENV);
    let stream = figures(stream)?;
    let mut native = cargo(root, &["--test", "native_speed", "--"]);
    native.env("ECHO_SERVER_URL", url);
    let native = figures(native)?;

    let row = |workload: &str, base: f64, ours: f64, ratio: f64| {
        format!("| {workload} | {base:.0} | {ours:.0} | {ratio:.2}x |\n")
    };
    let mut section = String::from(
        "\n### 5b: the client's other transports\n\n\
         Scenario 5's workloads and method (every reply checked, runs alternating), our server \
         as a pure echo. In headless Chromium: the crate on `WebSocketStream` (feature \
         `web-socket-stream`) against plain JavaScript on `WebSocket` and on \
         `WebSocketStream`, all three alternating in one page (medians of 11; a ratio is the \
         median of the runs' ratios). Natively: the crate on its tokio-tungstenite transport \
         (a local task per connection, on a current-thread runtime) against tokio-tungstenite \
         used directly on the same runtime (medians of 7).\n\n\
         | workload | baseline | ours | ratio |\n|---|---|---|---|\n",
    );
    section += &row(
        "Chromium: round trips/s, JavaScript `WebSocket` vs ours on `WebSocketStream`, async API",
        stream("round_trips", "js=")?,
        stream("round_trips", "stream=")?,
        stream("round_trip_ratios", "async=")?,
    );
    section += &row(
        "the same, callbacks",
        stream("round_trips", "js=")?,
        stream("round_trips", "callbacks=")?,
        stream("round_trip_ratios", "callbacks=")?,
    );
    section += &row(
        "Chromium: 64 KiB binary MB/s, JavaScript `WebSocket` vs ours on `WebSocketStream`",
        stream("binary_mb_per_s", "js=")?,
        stream("binary_mb_per_s", "stream=")?,
        stream("binary_ratio", "ours=")?,
    );
    section += &row(
        "the same, callbacks",
        stream("binary_mb_per_s", "js=")?,
        stream("binary_mb_per_s", "callbacks=")?,
        stream("binary_ratio", "callbacks=")?,
    );
    section += &row(
        "Chromium: round trips/s, JavaScript on `WebSocketStream` vs ours on it, async API",
        stream("stream_round_trips", "js_stream=")?,
        stream("round_trips", "stream=")?,
        stream("stream_round_trip_ratios", "async=")?,
    );
    section += &row(
        "the same, callbacks",
        stream("stream_round_trips", "js_stream=")?,
        stream("round_trips", "callbacks=")?,
        stream("stream_round_trip_ratios", "callbacks=")?,
    );
    section += &row(
        "Chromium: 64 KiB binary MB/s, JavaScript on `WebSocketStream` vs ours on it",
        stream("stream_binary_mb_per_s", "js_stream=")?,
        stream("binary_mb_per_s", "stream=")?,
        stream("stream_binary_ratio", "ours=")?,
    );
    section += &row(
        "the same, callbacks",
        stream("stream_binary_mb_per_s", "js_stream=")?,
        stream("binary_mb_per_s", "callbacks=")?,
        stream("stream_binary_ratio", "callbacks=")?,
    );
    section += &row(
        "Chromium: round trips/s, JavaScript on `WebSocketStream` vs bare Rust on it (no crate), callbacks",
        stream("stream_round_trips", "js_stream=")?,
        stream("bare_round_trips", "callbacks=")?,
        stream("bare_ratios", "callbacks=")?,
    );
    section += &row(
        "the same, bare Rust async",
        stream("stream_round_trips", "js_stream=")?,
        stream("bare_round_trips", "async=")?,
        stream("bare_ratios", "async=")?,
    );
    // Natively, the ratio of the medians.
    let native_row = |workload: &str, name: &str| -> Result<String> {
        let (base, ours) = (native(name, "tungstenite=")?, native(name, "ours=")?);
        Ok(row(workload, base, ours, ours / base))
    };
    section += &native_row(
        "native: round trips/s, tokio-tungstenite vs ours",
        "round_trips",
    )?;
    section += &native_row(
        "native: 64 KiB binary MB/s, tokio-tungstenite vs ours",
        "binary_mb_per_s",
    )?;
    section += &format!(
        "\nOn `WebSocketStream`, ours against bare Rust (scenario 5's floor of any Rust client; \
         median of the runs' ratios): callbacks {:.2}x, async API {:.2}x.\n",
        stream("over_bare", "callbacks=")?,
        stream("over_bare", "async=")?,
    );
    eprint!("{section}");
    Ok(section)
}

/// `cargo test --release -p wasm-websocket` with `args`, its ignored benchmark included.
pub fn cargo(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("cargo");
    command
        .current_dir(root)
        .args(["test", "--release", "-p", "wasm-websocket"])
        .args(args);
    command
}

/// Runs a benchmark test and reads its `speed: NAME key=value ...` lines.
pub fn figures(mut test: Command) -> Result<impl Fn(&str, &str) -> Result<f64>> {
    let output = test
        .args(["--nocapture", "--include-ignored"])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo test")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    ensure!(output.status.success(), "the benchmark failed:\n{stdout}");
    Ok(move |name: &str, key: &str| -> Result<f64> {
        let line = (stdout.lines())
            // The test harness may print `test NAME ... ` before the line on the same line.
            .find_map(|line| line.split_once("speed: ")?.1.strip_prefix(name))
            .with_context(|| format!("no {name} figures in:\n{stdout}"))?;
        let word = line.split_whitespace().find_map(|w| w.strip_prefix(key));
        Ok(word
            .with_context(|| format!("no {key} in {line}"))?
            .parse()?)
    })
}
