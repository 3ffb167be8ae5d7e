//! Scenario 9: a soak. [`CONNECTIONS`] connections to our server, each sending one JSON-like
//! text message a second and checking its echo, for [`DURATION`]; once without
//! permessage-deflate and once with it (`--deflate`, every message compressed both ways as a
//! browser's would be). Every [`WINDOW`] it reads what the run is doing: messages echoed,
//! echo errors, p50 and p99 round-trip latency, the server's resident memory and its CPU time
//! per message. A server that leaks, slows down or drops anything over ten minutes shows it
//! here, where a short benchmark would not.
//!
//! The connections' sends are spread evenly over each second, so the load is steady rather
//! than a burst a second. The client is scenario 7's raw one (`deflate.rs`): it offers what
//! Chromium offers and inflates and checks every reply.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use tokio::net::TcpStream;

use crate::charts::{self, Line};
use crate::deflate::{json_like, open, round_trip};
use crate::targets::Target;

/// Connections held for the whole run.
pub const CONNECTIONS: usize = 10_000;

/// How long each run lasts, unless `BENCH_SOAK_SECS` says otherwise (for trying the scenario:
/// the section says how long its runs were).
const DURATION: Duration = Duration::from_secs(600);

/// How often the run is sampled.
const WINDOW: Duration = Duration::from_secs(10);

/// Each message's size: a small JSON-like update, as a chat or a dashboard sends.
const SIZE: usize = 160;

/// Connections opened at once.
const WAVE: usize = 100;

/// How long one echo may take before it counts as an error.
const STALL: Duration = Duration::from_secs(10);

/// What one window saw.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The window's end, from the start of the load.
    pub at: Duration,
    pub messages: usize,
    pub errors: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub rss_kib: u64,
    pub cpu_per_message: Duration,
}

/// What the connections report to the sampler: the latencies of the current window and the
/// errors so far.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: usize,
}

/// One run: the server's RSS before any connection, with every connection open, and the
/// samples.
pub struct Run {
    pub name: &'static str,
    pub negotiated: bool,
    pub rss_before: u64,
    pub rss_opened: u64,
    pub samples: Vec<Sample>,
}

fn duration() -> Result<Duration> {
    match std::env::var("BENCH_SOAK_SECS") {
        Ok(secs) => Ok(Duration::from_secs(
            secs.parse().context("BENCH_SOAK_SECS")?,
        )),
        Err(_) => Ok(DURATION),
    }
}

/// Runs the soak against `target` with connections from 127.0.5.`source`.
fn soak(
    runtime: &tokio::runtime::Runtime,
    target: &Target,
    name: &'static str,
    source: u8,
    length: Duration,
) -> Result<Run> {
    let server = target.start()?;
    let addr: SocketAddr = server.addr.parse()?;
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = server.rss_kib()?;
    let source = IpAddr::from([127, 0, 5, source]);
    let streams = runtime.block_on(open_all(addr, source))?;
    let negotiated = streams.iter().all(|(_, negotiated)| *negotiated);
    let rss_opened = server.rss_kib()?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = tokio::time::Instant::now();
    let end = started + length;
    let connections: Vec<_> = (streams.into_iter().enumerate())
        .map(|(conn, (stream, negotiated))| {
            // Spread over the second: connection `conn` sends at its own offset in it.
            let phase = Duration::from_secs(1).mul_f64(conn as f64 / CONNECTIONS as f64);
            let tally = tally.clone();
            runtime.spawn(connection(
                conn,
                stream,
                negotiated,
                started + phase,
                end,
                tally,
            ))
        })
        .collect();
    let mut samples = Vec::new();
    let mut cpu = server.counters()?;
    while samples.len() < length.div_duration_f64(WINDOW).ceil() as usize {
        let at = WINDOW * (samples.len() as u32 + 1);
        runtime.block_on(async { tokio::time::sleep_until(started + at).await });
        let (mut latencies, errors) = {
            let mut tally = tally.lock().expect("no connection panics");
            (std::mem::take(&mut tally.latencies), tally.errors)
        };
        let now = server.counters()?;
        let spent = Duration::from_nanos(now.since(&cpu).cpu_ns);
        cpu = now;
        latencies.sort_unstable();
        let quantile = |q: f64| {
            let at = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
            latencies.get(at).copied().unwrap_or_default()
        };
        let sample = Sample {
            at,
            messages: latencies.len(),
            errors,
            p50: quantile(0.5),
            p99: quantile(0.99),
            rss_kib: server.rss_kib()?,
            cpu_per_message: spent / (latencies.len().max(1) as u32),
        };
        eprintln!(
            "{name}: {:>4} s  {:>6} messages  {} errors  p50 {:.2} ms  p99 {:.2} ms  \
             RSS {:.1} MiB  CPU {:.1} µs/message",
            sample.at.as_secs(),
            sample.messages,
            sample.errors,
            ms(sample.p50),
            ms(sample.p99),
            sample.rss_kib as f64 / 1024.0,
            sample.cpu_per_message.as_secs_f64() * 1e6,
        );
        samples.push(sample);
    }
    for connection in connections {
        runtime.block_on(connection)?;
    }
    Ok(Run {
        name,
        negotiated,
        rss_before,
        rss_opened,
        samples,
    })
}

/// Opens [`CONNECTIONS`] from `source`, [`WAVE`] at a time, each with Chromium's offer; each
/// stream and whether the server accepted permessage-deflate on it.
async fn open_all(addr: SocketAddr, source: IpAddr) -> Result<Vec<(TcpStream, bool)>> {
    let mut streams = Vec::with_capacity(CONNECTIONS);
    while streams.len() < CONNECTIONS {
        let first = streams.len();
        let wave = (first..(first + WAVE).min(CONNECTIONS))
            .map(|i| open(addr, Some(SocketAddr::new(source, 20_000 + i as u16))));
        for opened in futures_util::future::join_all(wave).await {
            streams.push(opened?);
        }
    }
    Ok(streams)
}

/// One connection's load: a message a second from `first` until `end`, each echo checked and
/// timed. A failed echo is counted and ends the connection (its stream is in an unknown
/// state).
async fn connection(
    conn: usize,
    mut stream: TcpStream,
    negotiated: bool,
    first: tokio::time::Instant,
    end: tokio::time::Instant,
    tally: Arc<Mutex<Tally>>,
) {
    let mut tick = tokio::time::interval_at(first, Duration::from_secs(1));
    // `Skip`: each send stays at its own offset in the second. With `Delay` every late tick
    // moved the connection's later ones too, and connections late at the same busy moment
    // stayed together: over ten minutes the sends bunched, and the p50 round trip of the
    // first full runs rose from 0.12 to 0.30 ms (0.14 to 0.42 with deflate) while the
    // server's CPU per message stayed flat.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seq = conn * 1_000;
    loop {
        let at = tick.tick().await;
        if at >= end {
            return;
        }
        let message = json_like(seq, SIZE);
        seq += 1;
        let sent = Instant::now();
        let echoed = tokio::time::timeout(STALL, round_trip(&mut stream, &message, negotiated));
        let failure = match echoed.await {
            Ok(Ok(_)) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!("no echo within {STALL:?}")),
        };
        let mut tally = tally.lock().expect("no connection panics");
        if let Some(failure) = failure {
            if tally.errors == 0 {
                eprintln!("connection {conn}, message {seq}: {failure}");
            }
            tally.errors += 1;
            return;
        }
        tally.latencies.push(sent.elapsed());
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The scenario's section of BENCHMARKS.md, and its chart in `charts` if given.
pub fn section(
    runtime: &tokio::runtime::Runtime,
    ours: &Target,
    charts: Option<&std::path::Path>,
) -> Result<String> {
    let length = duration()?;
    let deflated = Target {
        args: &["--addr", "127.0.0.1:0", "--prefix", "", "--deflate"],
        ..ours.clone()
    };
    let runs = [
        soak(runtime, ours, "without deflate", 1, length)?,
        soak(runtime, &deflated, "with --deflate", 2, length)?,
    ];
    ensure!(runs[1].negotiated, "--deflate did not negotiate deflate");
    let mut section = format!(
        "\n### 9: soak\n\n\
         {CONNECTIONS} connections to ours (production defaults), each sending a {SIZE}-byte \
         JSON-like text message every second (the sends spread evenly over the second) and \
         checking its echo, for {} s; without deflate, then with `--deflate` (every message \
         compressed both ways, as a browser's). Sampled every {} s: messages echoed in the \
         window, echo errors so far (a late echo counts after {} s), p50 and p99 round trip, \
         server RSS, server CPU per message (all threads, from schedstat). The load generator \
         and the server each have a core of their own.\n\n\
         | run | messages | echo errors | RSS before connections | RSS with all open | RSS at the first sample | RSS at the end | p50 / p99, first sample | p50 / p99, last sample | p99, worst sample | CPU per message, median sample |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
        length.as_secs(),
        WINDOW.as_secs(),
        STALL.as_secs(),
    );
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    for run in &runs {
        let (first, last) = (
            run.samples.first().context("a sample")?,
            run.samples.last().context("a sample")?,
        );
        let worst = (run.samples.iter())
            .map(|s| s.p99)
            .max()
            .unwrap_or_default();
        let mut cpu: Vec<Duration> = run.samples.iter().map(|s| s.cpu_per_message).collect();
        cpu.sort_unstable();
        let messages: usize = run.samples.iter().map(|s| s.messages).sum();
        section.push_str(&format!(
            "| {} | {messages} | {} | {} | {} | {} | {} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2} ms | {:.1} µs |\n",
            run.name,
            last.errors,
            mib(run.rss_before),
            mib(run.rss_opened),
            mib(first.rss_kib),
            mib(last.rss_kib),
            ms(first.p50),
            ms(first.p99),
            ms(last.p50),
            ms(last.p99),
            ms(worst),
            cpu[cpu.len() / 2].as_secs_f64() * 1e6,
        ));
    }
    if let Some(dir) = charts {
        chart(&runs, &dir.join("soak.svg"))?;
        section.push_str(
            "\n![The soak over time: latency, memory and CPU per message](bench/charts/soak.svg)\n",
        );
    }
    Ok(section)
}

/// The soak over time: one panel per figure, one line per run.
fn chart(runs: &[Run], file: &std::path::Path) -> Result<()> {
    type Of = fn(&Sample) -> f64;
    let figures: [(&str, &str, Of); 4] = [
        ("p50 round trip", "ms", |s| ms(s.p50)),
        ("p99 round trip", "ms", |s| ms(s.p99)),
        ("server RSS", "MiB", |s| s.rss_kib as f64 / 1024.0),
        ("server CPU per message", "µs", |s| {
            s.cpu_per_message.as_secs_f64() * 1e6
        }),
    ];
    let panels: Vec<charts::LinePanel> = (figures.iter())
        .map(|(title, unit, of)| charts::LinePanel {
            title: format!("9: {title}, {CONNECTIONS} connections, a message a second each"),
            y_label: (*unit).to_owned(),
            lines: (runs.iter())
                .map(|run| Line {
                    name: run.name,
                    points: (run.samples.iter())
                        .map(|s| (s.at.as_secs_f64(), of(s)))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    charts::lines(file, &panels, "seconds")
}
