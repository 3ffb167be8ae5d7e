//! Scenario 4b: idle memory after traffic. Scenario 4's connections never send a message;
//! real ones send some and then sit idle for hours, holding whatever their buffers grew to.
//! Here every connection echoes one text message (JSON-like, compressed by the client when
//! permessage-deflate is negotiated, as a browser would) of 2 KiB, 64 KiB or 512 KiB, and
//! then idles; the server's resident memory per connection is read [`SETTLE`] later. A
//! 32-byte message, which grows no buffer, gives the floor of the same run: what a
//! connection costs when its traffic left nothing behind. Every size has the same number of
//! connections, opened [`WAVE`] at a time (as clients arrive, not all at once: 500
//! simultaneous handshakes leave their own holes in the heap, a few KiB per connection of
//! scenario 4's 19,000). Every server and size runs [`RUNS`] times, each in a fresh process:
//! where freed buffers end up in the heap moves with timing, so one run can mislead.
//!
//! The client is scenario 7's raw one (`deflate.rs`), which offers what Chromium offers: the
//! baselines, without deflate, answer it plain.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Result;

use crate::deflate::hold;
use crate::stats::Figure;
use crate::targets::Target;

/// The message sizes: 32 B, 2 KiB, 64 KiB, 512 KiB.
const SIZES: [usize; 4] = [32, 2 << 10, 64 << 10, 512 << 10];

/// Connections for each size.
const CONNECTIONS: usize = 2_000;

/// Connections opened, and their messages echoed, at once.
const WAVE: usize = 50;

/// Runs of each server and size, each a fresh server process.
pub const RUNS: usize = 5;

/// What an idle connection of ours may hold after any message (issue 31): every run, not
/// only the median.
const OUR_LIMIT_KIB: f64 = 4.5;

/// How long the connections idle after their message before the memory is read: long enough
/// for a server to give back what it can (ours renews a connection silent for 100 ms and
/// trims malloc's free pages within the next second).
pub const SETTLE: Duration = Duration::from_secs(3);

/// RSS growth per connection (KiB) with `count` connections from 127.0.4.`source` that each
/// echoed one message of `size` bytes, [`SETTLE`] after the last echo.
fn after_one_message(
    runtime: &tokio::runtime::Runtime,
    target: &Target,
    size: usize,
    count: usize,
    source: u8,
) -> Result<f64> {
    let server = target.start()?;
    let addr: SocketAddr = server.addr.parse()?;
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss_kib()?;
    let source = IpAddr::from([127, 0, 4, source]);
    let held = runtime.block_on(hold(addr, source, count, WAVE, Some(size)))?;
    std::thread::sleep(SETTLE);
    let held_rss = server.rss_kib()?;
    drop(held);
    Ok(held_rss.saturating_sub(before) as f64 / count as f64)
}

/// A server's name and its KiB per connection after each of [`SIZES`] (the medians).
pub type Memory = (&'static str, [f64; 4]);

/// The message sizes' labels, as the table and the chart show them.
pub const SIZE_LABELS: [&str; 4] = ["32 B", "2 KiB", "64 KiB", "512 KiB"];

/// The scenario's section of BENCHMARKS.md, for every WebSocket target in `targets` and ours
/// again with `--deflate` (`deflated`); and each server's figures (KiB per connection after
/// each size), for the chart.
pub fn section(
    runtime: &tokio::runtime::Runtime,
    targets: &[&Target],
    deflated: &Target,
) -> Result<(String, Vec<Memory>)> {
    let mut section = format!(
        "\n### 4b: idle connections after one message\n\n\
         Each connection echoes one JSON-like text message (compressed by the client, as a \
         browser does, when permessage-deflate is negotiated; the baselines answer plain), \
         {CONNECTIONS} connections for each size, opened {WAVE} at a time; then all idle. \
         Resident memory (VmRSS) growth per connection, read {SETTLE:?} after the last echo. \
         {RUNS} runs of each, every one a fresh server: the median, then the lowest and the \
         highest run. The 32-byte message grows no buffer: its column is the floor of this \
         method.\n\n\
         | server | after 32 B | after 2 KiB | after 64 KiB | after 512 KiB |\n\
         |---|---|---|---|---|\n",
    );
    // Each run a loopback address of its own, so that no run waits for the last one's ports.
    let mut source = 0u8;
    let mut figures = Vec::new();
    let mut ours_highest: f64 = 0.0;
    for target in targets.iter().copied().chain([deflated]) {
        let mut row = format!("| {} |", target.name);
        let mut kibs = [0.0; 4];
        for (size, kib) in SIZES.into_iter().zip(&mut kibs) {
            let mut runs = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                source = source.wrapping_add(1).max(1);
                runs.push(after_one_message(
                    runtime,
                    target,
                    size,
                    CONNECTIONS,
                    source,
                )?);
            }
            let figure = Figure::of(runs);
            *kib = figure.median;
            if target.program.ends_with("wsecho") {
                ours_highest = ours_highest.max(figure.max);
            }
            row.push_str(&format!(
                " {:.1} KiB ({:.1}-{:.1}) |",
                figure.median, figure.min, figure.max
            ));
        }
        row.push('\n');
        eprint!("{row}");
        section.push_str(&row);
        figures.push((target.name, kibs));
    }
    let met = if ours_highest <= OUR_LIMIT_KIB {
        "met"
    } else {
        "not met"
    };
    section.push_str(&format!(
        "\nTarget (issue 31): every run of ours, with and without `--deflate`, at most \
         {OUR_LIMIT_KIB} KiB per connection after any message: the highest was \
         {ours_highest:.1} KiB ({met}).\n"
    ));
    section.push_str(
        "\n![Memory per idle connection after one message, per server and message size]\
         (bench/charts/memory-after-traffic.svg)\n",
    );
    Ok((section, figures))
}
