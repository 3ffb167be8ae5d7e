//! The `fuzz` step: the fuzz targets of `fuzz/` (cargo-fuzz, libFuzzer, on the nightly
//! toolchain) built once, then each run for [`SECONDS_EACH`], two at a time, from its seed corpus
//! (`fuzz/seeds/TARGET/`, in the repository) and what earlier runs on this machine found
//! (`fuzz/corpus/TARGET/`, cargo-fuzz's own place, ignored by git like its build in
//! `fuzz/target/`). A crash, a broken invariant (a panic) or an input that takes longer than
//! [`TIMEOUT`] fails the step; libFuzzer leaves the input in `fuzz/artifacts/TARGET/`
//! (ignored by git too) and prints how to reproduce it.
//!
//! Without a sanitizer: the targets' code is safe Rust (no `unsafe` in the server or the
//! client), so AddressSanitizer would only halve the executions; overflow checks and debug
//! assertions stay on.

use std::fs::File;
use std::path::Path;
use std::process::Child;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::{cmd, root, run};

/// Every target, as `fuzz/Cargo.toml` names them.
pub const TARGETS: [&str; 8] = [
    "frame_header",
    "utf8_guard",
    "read_ahead",
    "deflate",
    "handshake",
    "http",
    "differential",
    "client_model",
];

/// How long each target runs in the test command.
pub const SECONDS_EACH: u32 = 10;

/// The longest one input may take, in seconds, before it counts as a hang.
const TIMEOUT: u32 = 10;

/// The arguments every `cargo fuzz` command shares: nightly and no sanitizer (cargo-fuzz
/// keeps debug assertions and overflow checks on in its release build).
fn fuzz_args(subcommand: &str) -> [&str; 5] {
    ["+nightly", "fuzz", subcommand, "--sanitizer", "none"]
}

/// How many targets run at once: libFuzzer keeps one core busy, and the machine has two.
const AT_ONCE: usize = 2;

/// Builds every target, then runs each for `seconds`, [`AT_ONCE`] at a time, each one's
/// output kept in `fuzz/artifacts/TARGET.log` and printed only if it fails (then the step
/// fails too), its executions per second otherwise.
pub fn fuzz(seconds: u32) -> Result<()> {
    let started = Instant::now();
    run(cmd("cargo", &fuzz_args("build")).current_dir(root().join("fuzz")))?;
    eprintln!(
        "fuzz targets built in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let logs = root().join("fuzz/artifacts");
    std::fs::create_dir_all(&logs)?;
    for batch in TARGETS.chunks(AT_ONCE) {
        let mut running = Vec::new();
        for target in batch {
            let log = logs.join(format!("{target}.log"));
            running.push((*target, start(target, seconds, &log)?, log));
        }
        for (target, mut child, log) in running {
            let status = child.wait()?;
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            if !status.success() {
                eprintln!("{output}");
                bail!("fuzz target {target} failed ({status}): its output is above");
            }
            let runs = output.lines().rev().find(|line| line.starts_with("Done "));
            eprintln!("{target}: {}", runs.unwrap_or("(no summary)"));
        }
    }
    Ok(())
}

/// Starts `target` for `seconds` from what earlier runs found (`fuzz/corpus/TARGET/`, where
/// libFuzzer writes) and its seeds, writing all its output to `log`.
fn start(target: &str, seconds: u32, log: &Path) -> Result<Child> {
    let corpus = root().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&corpus)?;
    let seeds = root().join("fuzz/seeds").join(target);
    let mut command = cmd("cargo", &fuzz_args("run"));
    command
        .current_dir(root().join("fuzz"))
        .arg(target)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={TIMEOUT}"))
        .arg("-print_final_stats=1");
    let out = File::create(log)?;
    command.stdout(out.try_clone()?).stderr(out);
    eprintln!("$ cargo +nightly fuzz run {target} ... -max_total_time={seconds}");
    Ok(command.spawn()?)
}
