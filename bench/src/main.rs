//! `cargo xtask bench`: builds in release mode (xtask does), then runs every scenario against
//! our server and the baselines, each three times, and prints one table (median of three),
//! which `--write FILE` also writes with the machine and the date.
//!
//! Scenarios 1 to 3: echo throughput and latency under load (CPU per message); 4: idle
//! connections held (memory per connection, after close, and a million-connection estimate);
//! 5: the wasm client against plain JavaScript in Chromium; 6: the demo's sizes; 7:
//! permessage-deflate, against Node's `ws` (`deflate.rs`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

mod deflate;
use bench::{Outcome, Shape, Wire};
use test_support::Spawned;

mod transports;

/// One server under test, started as its own process so its CPU time can be read.
struct Target {
    name: &'static str,
    program: PathBuf,
    args: &'static [&'static str],
    wire: Wire,
}

/// A target's process, killed when dropped.
struct Running {
    process: Spawned,
    addr: String,
}

impl Target {
    fn start(&self) -> Result<Running> {
        let mut command = Command::new(&self.program);
        command
            .args(self.args)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null());
        let process =
            Spawned::start(&mut command).with_context(|| format!("cannot start {}", self.name))?;
        let addr = process.addr().to_owned();
        Ok(Running { process, addr })
    }
}

impl Running {
    /// The process's CPU time so far (user + system), from `/proc/PID/stat`.
    fn cpu(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.process.id()))?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("stat")?
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        // Linux reports in clock ticks of 1/100 s.
        Ok(Duration::from_millis(ticks * 10))
    }

    /// The process's resident memory, from `/proc/PID/status`.
    fn rss_kib(&self) -> Result<u64> {
        Ok(self.process.status_kib("VmRSS")?)
    }
}

struct Scenario {
    name: &'static str,
    shape: Shape,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "1: latency, 1 conn x 20,000 x 32 B",
        shape: Shape {
            connections: 1,
            round_trips: 20_000,
            in_flight: 1,
            size: 32,
            binary: false,
        },
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
    },
];

const RUNS: usize = 3;

/// One row of the table: the median run of a target in a scenario.
struct Row {
    scenario: &'static str,
    target: &'static str,
    per_second: f64,
    megabytes_per_second: f64,
    cpu_per_message: Duration,
    p50: Option<Duration>,
    p99: Option<Duration>,
}

fn main() -> Result<()> {
    let usage = "usage: bench --root WORKSPACE [--write FILE] [--only 1,4,...]";
    let (mut root, mut write, mut only) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--root", Some(dir)) => root = Some(PathBuf::from(dir)),
            ("--write", Some(file)) => write = Some(PathBuf::from(file)),
            ("--only", Some(list)) => only = Some(list),
            _ => bail!(usage),
        }
    }
    let root = root.context(usage)?;
    // `--only` is for working on one scenario; a report needs them all.
    ensure!(write.is_none() || only.is_none(), usage);
    let wanted = |n: char| only.as_ref().is_none_or(|list| list.contains(n));
    let here = std::env::current_exe()?;
    let dir = here.parent().context("the binary's directory")?;
    let targets = [
        Target {
            name: "plain TCP echo (floor)",
            program: dir.join("tcp-echo"),
            args: &[],
            wire: Wire::Tcp,
        },
        Target {
            name: "tokio-tungstenite, defaults",
            program: dir.join("tungstenite-echo"),
            args: &[],
            wire: Wire::WebSocket,
        },
        Target {
            name: "fastwebsockets",
            program: dir.join("fastwebsockets-echo"),
            args: &[],
            wire: Wire::WebSocket,
        },
        Target {
            name: "echo-server (ours, production defaults)",
            program: dir.join("echo-server"),
            // `--dev`: scenario 5's page comes from the test runner's own local port.
            args: &["--addr", "127.0.0.1:0", "--prefix", "", "--dev"],
            wire: Wire::WebSocket,
        },
    ];
    // The load generator gets one thread; the server gets the other core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for scenario in SCENARIOS
        .iter()
        .filter(|s| wanted(s.name.chars().next().unwrap_or('?')))
    {
        for target in &targets {
            let mut runs = Vec::new();
            for _ in 0..RUNS {
                let server = target.start()?;
                let before = server.cpu()?;
                let outcome =
                    runtime.block_on(bench::run(&server.addr, target.wire, scenario.shape))?;
                let cpu = server.cpu()? - before;
                runs.push((outcome, cpu));
            }
            rows.push(median(scenario.name, target.name, runs));
            eprintln!("{}", line(rows.last().expect("pushed")));
        }
    }
    let mut report = table(&rows);
    report.push_str(&ratios(&rows));
    if wanted('4') {
        report.push_str(&idle_section(&runtime, &targets)?);
    }
    if wanted('5') {
        let ours = targets.last().expect("ours is the last target");
        report.push_str(&browser_section(&root, ours)?);
        let server = ours.start()?;
        report.push_str(&transports::section(
            &root,
            &format!("ws://{}/", server.addr),
        )?);
    }
    if wanted('6') {
        report.push_str(&size_section(&root.join("www/pkg"))?);
    }
    if wanted('7') {
        report.push_str(&deflate::section(&runtime, dir)?);
    }
    println!("{report}");
    if let Some(file) = write {
        write_report(&file, &report)?;
    }
    Ok(())
}

/// Scenario 4: idle connections held open, all from one load-generator process.
const IDLE: usize = 19_000;

/// One run of scenario 4: the server's resident memory before, with every connection held
/// (before any message), and two seconds after they closed.
struct Idle {
    before: u64,
    held: u64,
    after: u64,
    /// The kernel's slab memory (sockets and their files) grown while held, both ends.
    kernel: u64,
}

impl Idle {
    fn per_connection(&self) -> f64 {
        (self.held.saturating_sub(self.before)) as f64 / IDLE as f64
    }

    /// Kernel memory per connection at one end: both ends live on this machine.
    fn kernel_per_connection(&self) -> f64 {
        self.kernel as f64 / IDLE as f64 / 2.0
    }
}

/// The kernel's slab memory, from `/proc/meminfo`.
fn slab_kib() -> Result<u64> {
    let info = std::fs::read_to_string("/proc/meminfo")?;
    let line = info
        .lines()
        .find(|l| l.starts_with("Slab:"))
        .context("Slab")?;
    Ok(line.split_whitespace().nth(1).context("Slab")?.parse()?)
}

fn idle(runtime: &tokio::runtime::Runtime, target: &Target, source: IpAddr) -> Result<Idle> {
    let server = target.start()?;
    std::thread::sleep(Duration::from_millis(200));
    let (before, slab_before) = (server.rss_kib()?, slab_kib()?);
    let mut held = runtime.block_on(bench::open_idle(&server.addr, source, target.wire, IDLE))?;
    std::thread::sleep(Duration::from_secs(1));
    let (held_rss, slab_held) = (server.rss_kib()?, slab_kib()?);
    runtime.block_on(bench::echo_each(&mut held))?;
    drop(held);
    std::thread::sleep(Duration::from_secs(2));
    Ok(Idle {
        before,
        held: held_rss,
        after: server.rss_kib()?,
        kernel: slab_held.saturating_sub(slab_before),
    })
}

fn idle_section(runtime: &tokio::runtime::Runtime, targets: &[Target]) -> Result<String> {
    let mut section = format!(
        "\n### 4: {IDLE} idle connections\n\n\
         Opened {WAVE} at a time from one process (each run from a loopback address of its own), \
         then left idle; resident memory (VmRSS) read after a second; then one 32-byte round \
         trip on every connection proves all are held; then they close. Median of {IDLE_RUNS}.\n\n\
         | server | RSS per connection | RSS before | RSS with {IDLE} held | RSS 2 s after close |\n\
         |---|---|---|---|---|\n",
        WAVE = bench::WAVE,
    );
    let mut source = 0;
    let mut ours = None;
    for target in targets {
        let mut runs = Vec::new();
        for _ in 0..IDLE_RUNS {
            source += 1;
            runs.push(idle(runtime, target, IpAddr::from([127, 0, 1, source]))?);
        }
        runs.sort_by(|a, b| a.per_connection().total_cmp(&b.per_connection()));
        let run = runs.swap_remove(runs.len() / 2);
        let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
        let row = format!(
            "| {} | {:.1} KiB | {} | {} | {} |\n",
            target.name,
            run.per_connection(),
            mib(run.before),
            mib(run.held),
            mib(run.after),
        );
        eprint!("{row}");
        section.push_str(&row);
        ours = Some(run);
    }
    if let Some(ours) = ours {
        section.push_str(&million(&ours));
    }
    Ok(section)
}

/// What a million connections would take, from our server's figures.
fn million(ours: &Idle) -> String {
    let (process, kernel) = (ours.per_connection(), ours.kernel_per_connection());
    let gib = |kib: f64| kib * 1e6 / (1024.0 * 1024.0);
    format!(
        "\nA million connections, from these figures: our server holds {process:.1} KiB per idle \
         connection, so {:.1} GiB of process memory, and the kernel another {kernel:.1} KiB per \
         socket (slab growth while held, halved since both ends are on this machine), {:.1} GiB: \
         about {:.0} GiB in all, before any message is in flight (a busy connection borrows a \
         32 KiB read buffer while data waits, and its messages). Beyond memory: an open-file \
         limit above a million (`ulimit -n`, `fs.nr_open`; the server raises its soft limit \
         to the hard one and sizes `--max-connections` from it), clients spread over enough \
         addresses (about 28,000 ports per client address and server address), and CPU for \
         the keepalive: a ping after 30 s of silence is {:.0} pings a second for a million \
         idle connections.\n",
        gib(process),
        gib(kernel),
        (gib(process) + gib(kernel)).ceil(),
        1e6 / 30.0,
    )
}

const IDLE_RUNS: usize = 2;

/// Scenario 5: `client/tests/speed.rs` in headless Chromium, against our server as a pure echo.
fn browser_section(root: &Path, ours: &Target) -> Result<String> {
    let server = ours.start()?;
    let output = Command::new("cargo")
        .current_dir(root)
        .args(["test", "--release", "-p", "wasm-websocket", "--target"])
        .args([
            "wasm32-unknown-unknown",
            "--test",
            "speed",
            "--",
            "--nocapture",
            "--include-ignored",
        ])
        .env("ECHO_SERVER_URL", format!("ws://{}/", server.addr))
        .env("WASM_BINDGEN_TEST_TIMEOUT", "300")
        .envs(test_support::browser::WASM_TEST_RUNNER_ENV)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo test")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "the browser benchmark failed:\n{stdout}"
    );
    // "speed: NAME js=X stream=Y [callbacks=Z]"
    let figure = |name: &str, key: &str| -> Result<f64> {
        let line = stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix("speed: ")?.strip_prefix(name))
            .with_context(|| format!("no {name} figures in:\n{stdout}"))?;
        let word = line.split_whitespace().find_map(|w| w.strip_prefix(key));
        Ok(word
            .with_context(|| format!("no {key} in {line}"))?
            .parse()?)
    };
    let js_trips = figure("round_trips", "js=")?;
    let stream_trips = figure("round_trips", "stream=")?;
    let callback_trips = figure("round_trips", "callbacks=")?;
    let js_mb = figure("binary_mb_per_s", "js=")?;
    let stream_mb = figure("binary_mb_per_s", "stream=")?;
    let section = format!(
        "\n### 5: the wasm client against plain JavaScript in Chromium\n\n\
         `client/tests/speed.rs` in headless Chromium ({chromium}), one page, our server as a \
         pure echo; every reply checked on both sides; runs alternate (which goes first too), \
         median of 7. The wasm client is built for release and measured through its async API \
         (`send` and the `messages()` stream, in a task of its own) and, for \
         round trips, through its callbacks (each reply sends the next from `on_message`, as \
         the JavaScript does).\n\n\
         | workload | plain JavaScript `WebSocket` | wasm client (ours) | ratio |\n\
         |---|---|---|---|\n\
         | 5,000 sequential round trips of 32-byte text, async API | {js_trips:.0}/s | {stream_trips:.0}/s | {:.2}x |\n\
         | the same, callbacks | {js_trips:.0}/s | {callback_trips:.0}/s | {:.2}x |\n\
         | 400 x 64 KiB binary, 8 in flight (MB/s, both ways), async API | {js_mb:.0} | {stream_mb:.0} | {:.2}x |\n",
        stream_trips / js_trips,
        callback_trips / js_trips,
        stream_mb / js_mb,
        chromium = command_output("chromium", &["--version"]),
    );
    eprint!("{section}");
    Ok(section)
}

/// Scenario 6: the demo as `cargo xtask build` leaves it in `www/pkg`.
fn size_section(pkg: &Path) -> Result<String> {
    let mut section = String::from(
        "\n### 6: the demo's size\n\n\
         `cargo xtask build`: release profile (opt-level \"z\", LTO), wasm-bindgen, then \
         `wasm-opt -Oz` (binaryen from npm).\n\n\
         | file | raw | gzip -9 |\n|---|---|---|\n",
    );
    for file in ["echo_page_bg.wasm", "echo_page.js"] {
        let bytes = std::fs::read(pkg.join(file))
            .with_context(|| format!("no {file} in {}: run cargo xtask build", pkg.display()))?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gzip, &bytes)?;
        let gzipped = gzip.finish()?.len();
        section.push_str(&format!(
            "| {file} | {} B | {gzipped} B ({:.1} KiB) |\n",
            bytes.len(),
            gzipped as f64 / 1024.0
        ));
    }
    eprint!("{section}");
    Ok(section)
}

/// A command's output, trimmed; empty if it cannot run.
fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The run with the median rate, with its CPU time per message.
fn median(scenario: &'static str, target: &'static str, mut runs: Vec<(Outcome, Duration)>) -> Row {
    runs.sort_by_key(|run| run.0.elapsed);
    let (outcome, cpu) = runs.swap_remove(runs.len() / 2);
    let seconds = outcome.elapsed.as_secs_f64();
    let mut latencies = outcome.latencies.clone();
    latencies.sort();
    let percentile = |p: f64| {
        (!latencies.is_empty()).then(|| latencies[((latencies.len() - 1) as f64 * p) as usize])
    };
    Row {
        scenario,
        target,
        per_second: outcome.messages as f64 / seconds,
        // Both directions: every byte goes there and back.
        megabytes_per_second: 2.0 * outcome.bytes as f64 / seconds / 1e6,
        cpu_per_message: cpu / outcome.messages as u32,
        p50: percentile(0.50),
        p99: percentile(0.99),
    }
}

fn micros(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.1} µs", d.as_secs_f64() * 1e6),
    )
}

fn line(row: &Row) -> String {
    format!(
        "| {} | {} | {:.0} | {:.0} | {} | {} | {} |",
        row.scenario,
        row.target,
        row.per_second,
        row.megabytes_per_second,
        micros(Some(row.cpu_per_message)),
        micros(row.p50),
        micros(row.p99),
    )
}

fn table(rows: &[Row]) -> String {
    let mut table = String::from(
        "### 1 to 3: round trips\n\n| scenario | server | round trips/s | MB/s (both ways) | server CPU per message | p50 | p99 |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        table.push_str(&line(row));
        table.push('\n');
    }
    table
}

/// Ours against the best WebSocket baseline and the TCP floor, scenario by scenario.
fn ratios(rows: &[Row]) -> String {
    let mut text = String::from(
        "\nRatios in this run: ours / the best WebSocket baseline in messages per second, and \
         ours / the plain TCP echo and / the best baseline in server CPU per message.\n\n\
         | scenario | throughput vs best | CPU vs TCP floor | CPU vs best baseline |\n\
         |---|---|---|---|\n",
    );
    let mut scenarios: Vec<&str> = rows.iter().map(|row| row.scenario).collect();
    scenarios.dedup();
    for scenario in scenarios {
        let rows: Vec<&Row> = rows.iter().filter(|row| row.scenario == scenario).collect();
        let (Some(tcp), Some(ours)) = (rows.first(), rows.last()) else {
            continue;
        };
        let baselines = &rows[1..rows.len() - 1];
        let fastest = baselines
            .iter()
            .map(|row| row.per_second)
            .fold(0.0, f64::max);
        let leanest = baselines
            .iter()
            .map(|row| row.cpu_per_message)
            .min()
            .unwrap_or_default();
        let cpu = |of: &Row, to: Duration| of.cpu_per_message.as_secs_f64() / to.as_secs_f64();
        text.push_str(&format!(
            "| {scenario} | {:.2}x | {:.2}x | {:.2}x |\n",
            ours.per_second / fastest,
            cpu(ours, tcp.cpu_per_message),
            cpu(ours, leanest),
        ));
    }
    text
}

fn write_report(file: &Path, table: &str) -> Result<()> {
    let run = command_output;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|line| line.starts_with("model name"))?;
            Some(line.split_once(':')?.1.trim().to_owned())
        })
        .unwrap_or_default();
    let report = format!(
        "# Benchmarks\n\n`cargo xtask bench`, {date}, on {cores} cores ({cpu}), {kernel}.\n\
         Loopback; the load generator (ours, one thread, every reply verified) shares the machine \
         with the server. Median of {RUNS} runs. Server CPU is user + system time from \
         `/proc/PID/stat` (10 ms ticks) divided by messages; the machine is noisy, so compare \
         within one run.\n\n{table}",
        date = run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        cores = run("nproc", &[]),
        kernel = run("uname", &["-sr"]),
    );
    std::fs::write(file, report)?;
    Ok(())
}
