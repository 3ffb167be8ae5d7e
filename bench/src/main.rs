//! `cargo xtask bench`: builds in release mode (xtask does), then runs every scenario against
//! our server and the baselines, each five times, and prints one table (medians of five, and
//! how far the runs spread), which `--write FILE` also writes with the machine and the date.
//!
//! Every server runs on core 0 and the load generator on core 1 (`counters`), so that neither
//! takes the other's time. Scenarios 1 to 3: echo throughput and latency under load, with the
//! server's CPU time in nanoseconds and its context switches per message; for 2 and 3 also a
//! short fixed run of each server under callgrind, for user-space instructions and allocations
//! per message, which the machine's load does not move (`callgrind`); 4: idle
//! connections held (memory per connection, after close, and a million-connection estimate);
//! 4b: idle connections after one message of 2 KiB, 64 KiB or 512 KiB (`after_traffic`);
//! 5: the wasm client against plain JavaScript in Chromium; 6: the demo's sizes; 7:
//! permessage-deflate, against Node's `ws` (`deflate.rs`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bench::callgrind::Counts;
use bench::counters::{self, Snapshot, Used};
use bench::{Outcome, Shape, Wire};
use test_support::Spawned;
use test_support::browser::{Engine, FIREFOX};

mod after_traffic;
mod deflate;
mod transports;

/// One server under test, started as its own process so its CPU time can be read.
#[derive(Clone)]
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
        self.spawn(Command::new(&self.program))
    }

    /// Starts the target under callgrind, which writes its counts to `out` when it ends.
    fn start_under_callgrind(&self, out: &Path) -> Result<Running> {
        let mut valgrind = Command::new("valgrind");
        valgrind
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(&self.program);
        self.spawn(valgrind)
    }

    /// Starts `command` (the target, or valgrind running it) with the target's arguments,
    /// pinned to the server's core.
    fn spawn(&self, mut command: Command) -> Result<Running> {
        command
            .args(self.args)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null());
        if counters::can_pin() {
            counters::pin_command(&mut command, &[counters::SERVER_CORE]);
        }
        let process =
            Spawned::start(&mut command).with_context(|| format!("cannot start {}", self.name))?;
        let addr = process.addr().to_owned();
        Ok(Running { process, addr })
    }
}

impl Running {
    /// The process's counters now, over all its threads.
    fn counters(&self) -> Result<Snapshot> {
        Ok(Snapshot::of(self.process.id())?)
    }

    /// The process's resident memory, from `/proc/PID/status`.
    fn rss_kib(&self) -> Result<u64> {
        Ok(self.process.status_kib("VmRSS")?)
    }
}

struct Scenario {
    name: &'static str,
    shape: Shape,
    /// Round trips per connection of the short run under callgrind (and twice as many in the
    /// second run, whose difference is the per-message figure); `None`: no callgrind runs.
    callgrind_round_trips: Option<usize>,
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

const RUNS: usize = 5;

/// The fastest WebSocket baseline, which the targets compare with.
const FASTWEBSOCKETS: &str = "fastwebsockets";

/// One figure over the runs: its median, lowest and highest.
#[derive(Clone, Copy, Debug)]
struct Figure {
    median: f64,
    min: f64,
    max: f64,
}

impl Figure {
    fn of(mut values: Vec<f64>) -> Figure {
        values.sort_by(f64::total_cmp);
        Figure {
            median: values[values.len() / 2],
            min: values[0],
            max: values[values.len() - 1],
        }
    }

    /// `value` as a fraction of the median, less one.
    fn off_median(&self, value: f64) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            value / self.median - 1.0
        }
    }

    /// The spread, as `-3.1%..+4.0%` of the median.
    fn spread(&self) -> String {
        let (low, high) = (self.off_median(self.min), self.off_median(self.max));
        format!("{:+.1}%..{:+.1}%", low * 100.0, high * 100.0)
    }

    /// The width of the spread, as a fraction of the median.
    fn width(&self) -> f64 {
        self.off_median(self.max) - self.off_median(self.min)
    }
}

/// One row of the table: a target in a scenario, each figure the median of its runs.
struct Row {
    scenario: &'static str,
    target: &'static str,
    per_second: Figure,
    megabytes_per_second: f64,
    /// Server CPU time per message, in nanoseconds.
    cpu_per_message: Figure,
    /// Server context switches per 1,000 messages.
    switches: Figure,
    /// User-space instructions and allocations per message, from callgrind.
    instructions: Option<Figure>,
    allocations: Option<Figure>,
    /// Latencies of the run with the median rate.
    p50: Option<Duration>,
    p99: Option<Duration>,
}

fn main() -> Result<()> {
    let usage = "usage: bench --root WORKSPACE [--write FILE] [--only 1,4,4b,...] \
                 [--server NAME] [--callgrind-only]";
    let (mut root, mut write, mut only, mut server) = (None, None, None, None);
    let mut callgrind_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--callgrind-only" {
            callgrind_only = true;
            continue;
        }
        match (arg.as_str(), args.next()) {
            ("--server", Some(name)) => server = Some(name),
            ("--root", Some(dir)) => root = Some(PathBuf::from(dir)),
            ("--write", Some(file)) => write = Some(PathBuf::from(file)),
            ("--only", Some(list)) => only = Some(list),
            _ => bail!(usage),
        }
    }
    let root = root.context(usage)?;
    // `--only`, `--server` and `--callgrind-only` are for working on one scenario or server
    // (the server's program name, e.g. `wsecho`); a report needs them all.
    let partial = only.is_some() || server.is_some() || callgrind_only;
    ensure!(write.is_none() || !partial, usage);
    let wanted = |name: &str| {
        (only.as_ref()).is_none_or(|list| list.split(',').any(|wanted| wanted == name))
    };
    // The generator's core; every server gets the other one (`Target::spawn`). Set before
    // the runtime starts, so that any thread it makes inherits it.
    if counters::can_pin() {
        counters::pin_current_thread(&[counters::LOAD_CORE])?;
    }
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
            name: FASTWEBSOCKETS,
            program: dir.join("fastwebsockets-echo"),
            args: &[],
            wire: Wire::WebSocket,
        },
        Target {
            name: "wsecho (ours, production defaults)",
            program: dir.join("wsecho"),
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
    for scenario in SCENARIOS.iter().filter(|s| wanted(&s.name[..1])) {
        let chosen = |target: &&Target| {
            server
                .as_ref()
                .is_none_or(|name| target.program.ends_with(name))
        };
        for target in targets.iter().filter(chosen) {
            let mut runs = Vec::new();
            for _ in 0..if callgrind_only { 1 } else { RUNS } {
                let server = target.start()?;
                let before = server.counters()?;
                let outcome =
                    runtime.block_on(bench::run(&server.addr, target.wire, scenario.shape))?;
                let used = server.counters()?.since(&before);
                runs.push((outcome, used));
            }
            let mut row = median(scenario.name, target.name, runs);
            if let Some(round_trips) = scenario.callgrind_round_trips {
                let shape = Shape {
                    round_trips,
                    ..scenario.shape
                };
                let out = dir.join("callgrind");
                let counted = under_callgrind(&runtime, target, shape, &out)?;
                row.instructions = Some(counted.0);
                row.allocations = Some(counted.1);
            }
            eprintln!("{}", line(&row));
            rows.push(row);
        }
    }
    let mut report = table(&rows);
    report.push_str(&ratios(&rows));
    report.push_str(&targets_section(&rows));
    report.push_str(&spread_section(&rows));
    if wanted("4") {
        report.push_str(&idle_section(&runtime, &targets)?);
    }
    if wanted("4b") {
        let websockets: Vec<&Target> = (targets.iter())
            .filter(|target| matches!(target.wire, Wire::WebSocket))
            .collect();
        let chosen =
            |target: &&Target| (server.as_ref()).is_none_or(|name| target.program.ends_with(name));
        let deflated = Target {
            name: "wsecho (ours), --deflate",
            args: &["--addr", "127.0.0.1:0", "--prefix", "", "--deflate"],
            ..websockets.last().copied().context("ours")?.clone()
        };
        let websockets: Vec<&Target> = websockets.into_iter().filter(chosen).collect();
        report.push_str(&after_traffic::section(&runtime, &websockets, &deflated)?);
    }
    if wanted("5") {
        let ours = targets.last().expect("ours is the last target");
        report.push_str(&browser_section(&root, ours, Engine::Chromium)?);
        report.push_str(&browser_section(&root, ours, Engine::Firefox)?);
        let server = ours.start()?;
        report.push_str(&transports::section(
            &root,
            &format!("ws://{}/", server.addr),
        )?);
    }
    if wanted("6") {
        report.push_str(&size_section(&root.join("www/pkg"))?);
    }
    if wanted("7") {
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

/// Scenario 5: `client/tests/speed.rs` in headless Chromium, against our server as a pure echo;
/// and the same in headless Firefox (on its `WebSocket`, the only transport it has).
fn browser_section(root: &Path, ours: &Target, engine: Engine) -> Result<String> {
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
    let percentile = |p: f64| {
        (!latencies.is_empty()).then(|| latencies[((latencies.len() - 1) as f64 * p) as usize])
    };
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
        p50: percentile(0.50),
        p99: percentile(0.99),
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

fn line(row: &Row) -> String {
    format!(
        "| {} | {} | {:.0} | {:.0} | {} | {:.0} | {} | {} | {} | {} |",
        row.scenario,
        row.target,
        row.per_second.median,
        row.megabytes_per_second,
        micros_of_ns(row.cpu_per_message.median),
        row.switches.median,
        optional(row.instructions, |n| format!("{n:.0}")),
        optional(row.allocations, |n| format!("{n:.2}")),
        micros(row.p50),
        micros(row.p99),
    )
}

fn table(rows: &[Row]) -> String {
    let mut table = String::from(
        "### 1 to 3: round trips\n\n\
         | scenario | server | round trips/s | MB/s (both ways) | server CPU per message | \
         context switches per 1,000 messages | instructions per message (callgrind) | \
         allocations per message (callgrind) | p50 | p99 |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        table.push_str(&line(row));
        table.push('\n');
    }
    table
}

/// The rows of one scenario, in the targets' order: the TCP floor first, ours last.
fn scenarios(rows: &[Row]) -> Vec<Vec<&Row>> {
    let mut names: Vec<&str> = rows.iter().map(|row| row.scenario).collect();
    names.dedup();
    names
        .into_iter()
        .map(|name| rows.iter().filter(|row| row.scenario == name).collect())
        .collect()
}

/// Ours against the best WebSocket baseline and the TCP floor, scenario by scenario.
fn ratios(rows: &[Row]) -> String {
    let mut text = String::from(
        "\nRatios in this run: ours / the best WebSocket baseline in messages per second, and \
         ours / the plain TCP echo and / the best baseline in server CPU per message.\n\n\
         | scenario | throughput vs best | CPU vs TCP floor | CPU vs best baseline |\n\
         |---|---|---|---|\n",
    );
    for rows in scenarios(rows) {
        // `--server` leaves out the others: no ratios then.
        let [tcp, baselines @ .., ours] = &rows[..] else {
            continue;
        };
        if baselines.is_empty() {
            continue;
        }
        let fastest = baselines
            .iter()
            .map(|row| row.per_second.median)
            .fold(0.0, f64::max);
        let leanest = baselines
            .iter()
            .map(|row| row.cpu_per_message.median)
            .fold(f64::INFINITY, f64::min);
        let cpu = ours.cpu_per_message.median;
        text.push_str(&format!(
            "| {} | {:.2}x | {:.2}x | {:.2}x |\n",
            ours.scenario,
            ours.per_second.median / fastest,
            cpu / tcp.cpu_per_message.median,
            cpu / leanest,
        ));
    }
    text
}

/// The target our server is held to, scenario by scenario (issue 16), from this run's
/// medians: server CPU per message against the TCP floor, and CPU, instructions and
/// messages per second against fastwebsockets.
fn targets_section(rows: &[Row]) -> String {
    let mut text = String::from(
        "\nTargets (issue 16), medians of this run: ours / the TCP floor in server CPU per \
         message (at most 1.2x in scenario 2, 1.3x in 3); ours / fastwebsockets in server CPU \
         and in instructions per message (at most 0.90x) and in messages per second (at \
         least 1.05x).\n\n\
         | scenario | CPU vs TCP floor | CPU vs fastwebsockets | instructions vs fastwebsockets | \
         messages/s vs fastwebsockets |\n\
         |---|---|---|---|---|\n",
    );
    for rows in scenarios(rows) {
        let (Some(tcp), Some(ours)) = (rows.first(), rows.last()) else {
            continue;
        };
        let Some(fast) = rows.iter().find(|row| row.target == FASTWEBSOCKETS) else {
            continue;
        };
        let floor_limit = match ours.scenario.chars().next() {
            Some('2') => 1.2,
            Some('3') => 1.3,
            _ => continue,
        };
        let mark = |ratio: f64, met: bool| {
            format!("{ratio:.2}x ({})", if met { "met" } else { "not met" })
        };
        let cpu = ours.cpu_per_message.median;
        let floor = cpu / tcp.cpu_per_message.median;
        let against_fast = cpu / fast.cpu_per_message.median;
        let instructions = match (ours.instructions, fast.instructions) {
            (Some(ours), Some(fast)) => {
                let ratio = ours.median / fast.median;
                mark(ratio, ratio <= 0.9)
            }
            _ => "-".to_owned(),
        };
        let rate = ours.per_second.median / fast.per_second.median;
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            ours.scenario,
            mark(floor, floor <= floor_limit),
            mark(against_fast, against_fast <= 0.9),
            instructions,
            mark(rate, rate >= 1.05),
        ));
    }
    text
}

/// How far each figure moved across the runs, and which figure is steadiest.
fn spread_section(rows: &[Row]) -> String {
    let mut text = format!(
        "\n### Spread across the {RUNS} runs\n\n\
         The lowest and the highest run of each figure, as a percentage of its median \
         (allocations per message: the lowest and the highest figure).\n\n\
         | scenario | server | round trips/s | server CPU per message | context switches | \
         instructions per message | allocations per message |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let spread = |figure: Option<Figure>| figure.map_or_else(|| "-".to_owned(), |f| f.spread());
    // Near zero, a percentage says nothing: allocations are shown as their range.
    let range = |figure: Option<Figure>| {
        figure.map_or_else(|| "-".to_owned(), |f| format!("{:.2}..{:.2}", f.min, f.max))
    };
    for row in rows {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            row.scenario,
            row.target,
            row.per_second.spread(),
            row.cpu_per_message.spread(),
            row.switches.spread(),
            spread(row.instructions),
            range(row.allocations),
        ));
    }
    // The widest spread of each figure over all rows: the steadiest has the narrowest.
    let widest = |figure: &dyn Fn(&Row) -> Option<Figure>| {
        rows.iter()
            .filter_map(figure)
            .map(|figure| figure.width())
            .fold(None, |widest: Option<f64>, width| {
                Some(widest.map_or(width, |w| w.max(width)))
            })
    };
    let mut figures: Vec<(&str, f64)> = [
        ("round trips/s", widest(&|row| Some(row.per_second))),
        (
            "server CPU per message",
            widest(&|row| Some(row.cpu_per_message)),
        ),
        ("context switches", widest(&|row| Some(row.switches))),
        ("instructions per message", widest(&|row| row.instructions)),
    ]
    .into_iter()
    .filter_map(|(name, width)| Some((name, width?)))
    .collect();
    figures.sort_by(|a, b| a.1.total_cmp(&b.1));
    let order: Vec<String> = figures
        .iter()
        .map(|(name, width)| format!("{name} ({:.1}%)", width * 100.0))
        .collect();
    text.push_str(&format!(
        "\nFrom steadiest to least steady, by the widest spread (max - min, as a percentage \
         of the median) over all rows: {}. The targets are judged on the medians of the same \
         run; instructions per message, which the machine's load does not move, decide between \
         two changes of the server.\n",
        order.join(", ")
    ));
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
         Loopback; the load generator (ours, one thread, every reply verified) runs on core \
         {LOAD} and every server on core {SERVER} (`sched_setaffinity`{pinned}). Medians of {RUNS} \
         runs; how far the runs spread is at the end of the round trips. Server CPU is the time \
         on a CPU of all its threads, in nanoseconds (the first field of \
         `/proc/PID/task/*/schedstat`), and context switches are voluntary + involuntary \
         (`/proc/PID/task/*/status`), both divided by messages. Instructions (user space only; \
         the kernel's share, most of the CPU time on loopback, is not in it) and allocations \
         (calls of `malloc`, `calloc`, `realloc` and the aligned allocators) are counted by \
         `valgrind --tool=callgrind` on a short fixed run of scenarios 2 and 3 ({short_2} round \
         trips per connection in 2, {short_3} in 3), run again with twice the round trips: the \
         difference over the extra messages is the figure per message, without start-up, \
         handshakes and idling. Compare within one run.\n\n{table}",
        date = run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        cores = counters::cores(),
        short_2 = SCENARIOS[1].callgrind_round_trips.unwrap_or_default(),
        short_3 = SCENARIOS[2].callgrind_round_trips.unwrap_or_default(),
        LOAD = counters::LOAD_CORE,
        SERVER = counters::SERVER_CORE,
        pinned = if counters::can_pin() {
            ""
        } else {
            ": not done, fewer than 2 cores"
        },
        kernel = run("uname", &["-sr"]),
    );
    std::fs::write(file, report)?;
    Ok(())
}
