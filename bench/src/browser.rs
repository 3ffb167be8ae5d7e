//! Scenario 5: the wasm client against plain JavaScript, in headless Chromium and Firefox.

use std::path::Path;

use anyhow::Result;
use bench::counters;
use test_support::browser::{Engine, FIREFOX};

use crate::report::command_output;
use crate::targets::Target;
use crate::transports;

/// Scenario 5: `client/tests/speed.rs` in headless Chromium, against our server as a pure echo;
/// and the same in headless Firefox (on its `WebSocket`, the only transport it has).
pub fn section(root: &Path, ours: &Target, engine: Engine) -> Result<String> {
    let server = ours.start()?;
    let mut cargo = transports::cargo(
        root,
        &[
            "--target",
            "wasm32-unknown-unknown",
            "--test",
            "speed",
            "--",
        ],
    );
    // The runner takes the first driver variable it finds: only this engine's is set.
    for variable in test_support::browser::DRIVER_VARIABLES {
        cargo.env_remove(variable);
    }
    cargo
        .env("ECHO_SERVER_URL", format!("ws://{}/", server.addr))
        .env("WASM_BINDGEN_TEST_TIMEOUT", "300")
        .envs(engine.wasm_test_runner_env());
    // The compiler and the browser may use every core, as before pinning: this scenario
    // measures the client, against our server (still on its own core).
    counters::pin_command(&mut cargo, &counters::all_cores());
    let figure = transports::figures(cargo)?;
    let js_trips = figure("round_trips", "js=")?;
    let stream_trips = figure("round_trips", "stream=")?;
    let callback_trips = figure("round_trips", "callbacks=")?;
    let js_mb = figure("binary_mb_per_s", "js=")?;
    let stream_mb = figure("binary_mb_per_s", "stream=")?;
    let trips_ratio = figure("round_trip_ratios", "async=")?;
    let callback_ratio = figure("round_trip_ratios", "callbacks=")?;
    let mb_ratio = figure("binary_ratio", "ours=")?;
    let callback_mb = figure("binary_mb_per_s", "callbacks=")?;
    let callback_mb_ratio = figure("binary_ratio", "callbacks=")?;
    let (bare_trips, bare_async_trips) = (
        figure("bare_round_trips", "callbacks=")?,
        figure("bare_round_trips", "async=")?,
    );
    let (bare_ratio, bare_async_ratio) = (
        figure("bare_ratios", "callbacks=")?,
        figure("bare_ratios", "async=")?,
    );
    let (over_bare, over_bare_async) = (
        figure("over_bare", "callbacks=")?,
        figure("over_bare", "async=")?,
    );
    let (heading, browser) = match engine {
        Engine::Chromium => ("5", command_output("chromium", &["--version"])),
        _ => ("5 in Firefox", command_output(FIREFOX, &["--version"])),
    };
    let name = format!("{engine:?}");
    let section = format!(
        "\n### {heading}: the wasm client against plain JavaScript in {name}\n\n\
         `client/tests/speed.rs` in headless {name} ({browser}), one page, our server as a \
         pure echo; every reply checked the same way on both sides (a binary one by its \
         length and first and last bytes); runs alternate (which goes first too), medians of \
         11; a ratio is the median of the runs' ratios (each run against the JavaScript run \
         beside it), which a drift of the machine's speed during the series skews less. The \
         wasm client is built for release and measured through its async API \
         (`send` and the `messages()` stream, in a task of its own) and \
         through its callbacks (each reply sends the next from `on_message`, as the JavaScript \
         does). The bare Rust rows are the floor of any Rust client: the same \
         round trips by the least Rust can do on the same bindings, without the crate (a \
         closure given each reply; for the async one, a task woken per reply through a queue \
         and its waker).\n\n\
         | workload | plain JavaScript `WebSocket` | wasm client (ours) | ratio |\n\
         |---|---|---|---|\n\
         | 5,000 sequential round trips of 32-byte text, async API | {js_trips:.0}/s | {stream_trips:.0}/s | {:.2}x |\n\
         | the same, callbacks | {js_trips:.0}/s | {callback_trips:.0}/s | {:.2}x |\n\
         | 1,000 x 64 KiB binary, 8 in flight (MB/s, both ways), async API | {js_mb:.0} | {stream_mb:.0} | {:.2}x |\n\
         | the same, callbacks | {js_mb:.0} | {callback_mb:.0} | {callback_mb_ratio:.2}x |\n\
         | the round trips, bare Rust (no crate), callbacks | {js_trips:.0}/s | {bare_trips:.0}/s | {bare_ratio:.2}x |\n\
         | the round trips, bare Rust (no crate), async | {js_trips:.0}/s | {bare_async_trips:.0}/s | {bare_async_ratio:.2}x |\n\n\
         Ours against bare Rust (median of the runs' ratios): callbacks {over_bare:.2}x, \
         async API {over_bare_async:.2}x.\n",
        trips_ratio, callback_ratio, mb_ratio,
    );
    eprint!("{section}");
    Ok(section)
}
