//! Scenarios 1 to 3: echo throughput and latency under load, with the server's CPU time and
//! context switches per message; for 2 and 3 also user-space instructions and allocations per
//! message from short runs under callgrind.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use bench::callgrind::Counts;
use bench::counters::Used;
use bench::{Outcome, Shape};

use crate::stats::{Figure, percentile};
use crate::targets::Target;

pub struct Scenario {
    pub name: &'static str,
    pub shape: Shape,
    /// Round trips per connection of the short run under callgrind (and twice as many in the
    /// second run, whose difference is the per-message figure); `None`: no callgrind runs.
    pub callgrind_round_trips: Option<usize>,
}

pub const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "1: latency, 1 conn x 20,000 x 32 B",
        shape: Shape {
            connections: 1,
            round_trips: 20_000,
            in_flight: 1,
            size: 32,
            binary: false,
        },
        callgrind_round_trips: None,
    },
    Scenario {
        name: "2: 100 conns x 2,000 x 32 B",
        shape: Shape {
            connections: 100,
            round_trips: 2_000,
            in_flight: 1,
            size: 32,
            binary: false,
        },
        callgrind_round_trips: Some(10),
    },
    Scenario {
        name: "3: 50 conns x 16 in flight x 16 KiB",
        shape: Shape {
            connections: 50,
            round_trips: 400,
            in_flight: 16,
            size: 16 * 1024,
            binary: true,
        },
        callgrind_round_trips: Some(16),
    },
];

pub const RUNS: usize = 5;

/// One row of the table: a target in a scenario, each figure the median of its runs.
pub struct Row {
    pub scenario: &'static str,
    pub target: &'static str,
    pub per_second: Figure,
    pub megabytes_per_second: f64,
    /// Server CPU time per message, in nanoseconds.
    pub cpu_per_message: Figure,
    /// Server context switches per 1,000 messages.
    pub switches: Figure,
    /// User-space instructions and allocations per message, from callgrind.
    pub instructions: Option<Figure>,
    pub allocations: Option<Figure>,
    /// Latencies of the run with the median rate.
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
}

impl Row {
    /// The row as a line of the round trips' table.
    pub fn line(&self) -> String {
        format!(
            "| {} | {} | {:.0} | {:.0} | {} | {:.0} | {} | {} | {} | {} |",
            self.scenario,
            self.target,
            self.per_second.median,
            self.megabytes_per_second,
            micros_of_ns(self.cpu_per_message.median),
            self.switches.median,
            optional(self.instructions, |n| format!("{n:.0}")),
            optional(self.allocations, |n| format!("{n:.2}")),
            micros(self.p50),
            micros(self.p99),
        )
    }
}

fn micros(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.1} µs", d.as_secs_f64() * 1e6),
    )
}

/// Nanoseconds as microseconds, to the nearest 10 ns.
fn micros_of_ns(ns: f64) -> String {
    format!("{:.2} µs", ns / 1000.0)
}

fn optional(figure: Option<Figure>, show: impl Fn(f64) -> String) -> String {
    figure.map_or_else(|| "-".to_owned(), |figure| show(figure.median))
}

/// The rows of `scenarios` for every target of `targets`, each from [`RUNS`] runs (one with
/// `callgrind_only`), and for scenarios that ask for it the callgrind runs, whose files are
/// kept in `dir/callgrind`.
///
/// The runs take turns: the first run of every target, then the second of every target, and
/// so on, so that a machine that grows slower or faster over the minutes a scenario takes
/// (server CPU per message was seen to climb from about 10 to 20 µs within one minute on a
/// shared VM) weighs on every target alike, not on whichever runs last (ours).
pub fn rows<'a>(
    runtime: &tokio::runtime::Runtime,
    scenarios: impl Iterator<Item = &'a Scenario>,
    targets: &[&Target],
    dir: &Path,
    callgrind_only: bool,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for scenario in scenarios {
        let mut runs: Vec<Vec<(Outcome, Used)>> = targets.iter().map(|_| Vec::new()).collect();
        for _ in 0..if callgrind_only { 1 } else { RUNS } {
            for (target, runs) in targets.iter().zip(&mut runs) {
                let server = target.start()?;
                let before = server.counters()?;
                let outcome =
                    runtime.block_on(bench::run(&server.addr, target.wire, scenario.shape))?;
                let used = server.counters()?.since(&before);
                runs.push((outcome, used));
            }
        }
        for (target, runs) in targets.iter().zip(runs) {
            let mut row = median(scenario.name, target.name, runs);
            if let Some(round_trips) = scenario.callgrind_round_trips {
                let shape = Shape {
                    round_trips,
                    ..scenario.shape
                };
                let out = dir.join("callgrind");
                let counted = under_callgrind(runtime, target, shape, &out)?;
                row.instructions = Some(counted.0);
                row.allocations = Some(counted.1);
            }
            eprintln!("{}", row.line());
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Each figure's median over the runs; the latencies of the run with the median rate.
fn median(scenario: &'static str, target: &'static str, mut runs: Vec<(Outcome, Used)>) -> Row {
    let figure = |f: &dyn Fn(&(Outcome, Used)) -> f64| Figure::of(runs.iter().map(f).collect());
    let per_second = figure(&|(o, _)| o.messages as f64 / o.elapsed.as_secs_f64());
    let cpu_per_message = figure(&|(o, used)| used.cpu_ns as f64 / o.messages as f64);
    let switches = figure(&|(o, used)| used.switches as f64 * 1000.0 / o.messages as f64);
    runs.sort_by_key(|run| run.0.elapsed);
    let (outcome, _) = runs.swap_remove(runs.len() / 2);
    let seconds = outcome.elapsed.as_secs_f64();
    let mut latencies = outcome.latencies.clone();
    latencies.sort();
    Row {
        scenario,
        target,
        per_second,
        // Both directions: every byte goes there and back.
        megabytes_per_second: 2.0 * outcome.bytes as f64 / seconds / 1e6,
        cpu_per_message,
        switches,
        instructions: None,
        allocations: None,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
    }
}

/// Instructions and allocations per message: `RUNS` pairs of callgrind runs of `shape`, one
/// with its round trips and one with twice as many; the difference over the extra messages
/// leaves out start-up, handshakes and idling.
fn under_callgrind(
    runtime: &tokio::runtime::Runtime,
    target: &Target,
    shape: Shape,
    dir: &Path,
) -> Result<(Figure, Figure)> {
    std::fs::create_dir_all(dir)?;
    // Kept after the run, one file for each server and length, for `callgrind_annotate`.
    let program = target
        .program
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    let count = |shape: Shape| -> Result<Counts> {
        let out = dir.join(format!(
            "{program}.{}x{}x{}.out",
            shape.connections, shape.round_trips, shape.size
        ));
        let _ = std::fs::remove_file(&out);
        let mut server = target.start_under_callgrind(&out)?;
        runtime.block_on(bench::run(&server.addr, target.wire, shape))?;
        // SIGTERM: our server shuts down, the baselines die of it; callgrind writes either way.
        server.process.terminate()?;
        Counts::read(&out)
    };
    let double = Shape {
        round_trips: 2 * shape.round_trips,
        ..shape
    };
    let extra = (shape.connections * shape.round_trips) as f64;
    let (mut instructions, mut allocations) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let started = std::time::Instant::now();
        let (single, twice) = (count(shape)?, count(double)?);
        eprintln!("  callgrind: {} in {:.1?}", target.name, started.elapsed());
        let per = |of: fn(&Counts) -> u64| of(&twice).saturating_sub(of(&single)) as f64 / extra;
        instructions.push(per(|c| c.instructions));
        allocations.push(per(|c| c.allocations));
    }
    Ok((Figure::of(instructions), Figure::of(allocations)))
}
