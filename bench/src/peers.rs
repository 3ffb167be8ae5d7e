//! Scenario 8: the client beside its peers. The same small program (open a socket, round
//! trips, close) on wasm-websocket, gloo-net, ws_stream_wasm and tokio-tungstenite-wasm, and
//! in plain JavaScript as the reference (`bench/peers/`, a workspace of its own that `cargo
//! xtask bench` builds alike into `--peers DIR`: release with opt-level "z", LTO, one codegen
//! unit, the default allocator and panic behaviour, `wasm-bindgen --target web`, `wasm-opt
//! -Oz`). One driver page (`bench/peers/index.html`, served with the programs by our server,
//! which is also the pure echo they talk to) runs one program per page load, in headless
//! Chromium and then in headless Firefox over WebDriver; [`ROUNDS`] rounds, the programs'
//! order rotated each round. Each figure is the median over the rounds; a ratio is the median
//! of the rounds' ratios to plain JavaScript in the same round. Every reply is checked
//! against what was sent in every program: a wrong echo fails the run.
//!
//! Natively, `client/tests/native_speed.rs`: the crate against tokio-tungstenite used
//! directly (there are no other peers to run natively).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use test_support::browser::Engine;

use crate::report::command_output;
use crate::stats::Figure;
use crate::targets::{Target, VECTOR_STRINGS};
use crate::transports;

/// Rounds: every program once per round and engine.
pub const ROUNDS: usize = 7;

/// One program of the comparison.
pub struct Program {
    /// Its directory under `bench/peers` (and under `--peers`), `js` for plain JavaScript.
    pub dir: &'static str,
    /// The crate, as Cargo.lock names it; `None` for ours and for plain JavaScript.
    pub krate: Option<&'static str>,
    pub label: &'static str,
    /// Its source, under `bench/peers`: what its lines count.
    pub source: &'static str,
}

/// Plain JavaScript first (the reference), ours second, then the peers.
pub const PROGRAMS: [Program; 5] = [
    Program {
        dir: "js",
        krate: None,
        label: "plain JavaScript",
        source: "plain.js",
    },
    Program {
        dir: "ours",
        krate: None,
        label: "wasm-websocket (ours)",
        source: "ours/src/lib.rs",
    },
    Program {
        dir: "gloo-net",
        krate: Some("gloo-net"),
        label: "gloo-net",
        source: "gloo-net/src/lib.rs",
    },
    Program {
        dir: "ws-stream-wasm",
        krate: Some("ws_stream_wasm"),
        label: "ws_stream_wasm",
        source: "ws-stream-wasm/src/lib.rs",
    },
    Program {
        dir: "tokio-tungstenite-wasm",
        krate: Some("tokio-tungstenite-wasm"),
        label: "tokio-tungstenite-wasm",
        source: "tokio-tungstenite-wasm/src/lib.rs",
    },
];

/// One timed workload of the driver page: its key there, what it is, and how many.
struct Workload {
    key: &'static str,
    label: &'static str,
    count: u32,
}

/// Each at least ~200 ms in either engine on this machine (about 400 ms in Chromium). The
/// sockets, about 12 s of opening and closing, run in the first round only, in a fresh
/// instance before anything else: the memory figure is read from that round.
const WORKLOADS: [Workload; 5] = [
    Workload {
        key: "text",
        label: "sequential round trips of 13 B text",
        count: 1_500,
    },
    Workload {
        key: "binary_64k",
        label: "sequential round trips of 64 KiB binary",
        count: 500,
    },
    Workload {
        key: "binary_1m",
        label: "sequential round trips of 1 MiB binary",
        count: 50,
    },
    Workload {
        key: "in_flight",
        label: "round trips of 16 KiB binary, 16 in flight",
        count: 2_000,
    },
    Workload {
        key: "sockets",
        label: "sockets opened and closed, one after another (first round only)",
        count: 1_000,
    },
];

/// What the driver page reports for one program in one round.
type Run = serde_json::Map<String, Value>;

/// One engine's figures: for each program (in [`PROGRAMS`]' order), each workload's median
/// milliseconds and median ratio to plain JavaScript, and the wasm memory before and after
/// the sockets.
pub struct EngineFigures {
    pub engine: Engine,
    pub browser: String,
    /// `[program][workload]`: (median ms, the ratio to plain JavaScript over the rounds: its
    /// median, lowest and highest).
    pub times: Vec<Vec<(f64, Figure)>>,
    /// `[program]`: wasm memory in bytes before and after the sockets (`None` for JS).
    pub memory: Vec<Option<(f64, f64)>>,
}

/// The figures the charts are drawn from.
pub struct Figures {
    pub engines: Vec<EngineFigures>,
}

impl Figures {
    /// The rows of the chart: for each engine, each timed workload and each program but plain
    /// JavaScript, its ratio to plain JavaScript.
    pub fn ratios(&self) -> Vec<(String, Vec<crate::charts::Group>)> {
        (self.engines.iter())
            .map(|figures| {
                let rows = (WORKLOADS.iter().enumerate())
                    .map(|(w, workload)| {
                        let bars = (PROGRAMS.iter().zip(&figures.times).skip(1))
                            .map(|(program, times)| (program.label, times[w].1.median))
                            .collect();
                        (short_label(workload), bars)
                    })
                    .collect();
                (format!("{:?}", figures.engine), rows)
            })
            .collect()
    }
}

fn short_label(workload: &Workload) -> String {
    match workload.key {
        "text" => "13 B text".to_owned(),
        "binary_64k" => "64 KiB binary".to_owned(),
        "binary_1m" => "1 MiB binary".to_owned(),
        "in_flight" => "16 KiB x 16 in flight".to_owned(),
        _ => format!("{} sockets", thousands(workload.count as usize)),
    }
}

/// The scenario's section: the programs in `www` (`cargo xtask bench` builds them there),
/// served by `ours` (which must echo with no prefix), in Chromium and Firefox; the native
/// rows; and the targets. `demo_wasm` is the page's wasm, whose size has a target too.
pub fn section(
    runtime: &tokio::runtime::Runtime,
    ours: &Target,
    www: &Path,
    root: &Path,
) -> Result<(String, Figures)> {
    let peers = root.join("bench/peers");
    let lock = std::fs::read_to_string(peers.join("Cargo.lock"))?;
    let label = |program: &Program| match program.krate {
        Some(krate) => format!("{} {}", program.label, locked(&lock, krate).unwrap_or("?")),
        None => program.label.to_owned(),
    };
    let labels: Vec<String> = PROGRAMS.iter().map(label).collect();
    let www_arg: &'static str = Box::leak(www.display().to_string().into_boxed_str());
    let args: &'static [&'static str] = Box::leak(Box::new([
        "--addr",
        "127.0.0.1:0",
        "--prefix",
        "",
        "--dev",
        "--www",
        www_arg,
    ]));
    let server = Target {
        args,
        ..ours.clone()
    }
    .start()?;

    let mut engines = Vec::new();
    for engine in [Engine::Chromium, Engine::Firefox] {
        let runs = runtime.block_on(rounds(engine, &server.addr))?;
        engines.push(figures(engine, &runs));
    }
    let native = native(root, &format!("ws://{}/", server.addr))?;
    let instructions = native_instructions(root, &format!("ws://{}/", server.addr))?;

    let mut text = format!(
        "\n### 8: the client beside its peers\n\n\
         {date}. The same program (open a socket, round trips, close) on each crate, \
         each pinned to an exact version (`bench/peers/`, a workspace of its own with its own \
         lock) and built alike: release, opt-level \"z\", LTO, one codegen unit, the default \
         allocator and panic behaviour, `wasm-bindgen --target web`, then `wasm-opt -Oz`; and \
         in plain JavaScript on the browser's `WebSocket` (`plain.js`), the reference. Each \
         program is written as its crate's documentation shows (wasm-websocket: `send` and \
         the `messages()` stream; the others: their `Stream` + `Sink`); every reply is \
         compared with what was sent, byte for byte (in the Rust \
         programs with `==` on the bytes in wasm memory, in the JavaScript four bytes at a \
         time in a loop, which is why plain JavaScript is slower than every crate on large \
         messages in Chromium). One driver page, served by our server, \
         which is also the pure echo (`--prefix ''`), loads one program per page load, in \
         headless Chromium and Firefox over WebDriver; {ROUNDS} rounds, the order of the \
         programs rotated each round. Each figure is the median over the rounds (milliseconds \
         for the whole program: open, round trips, close); a ratio is the median of the \
         rounds' ratios to plain JavaScript in the same round (below 1.00x: faster than \
         JavaScript). ewebsock 0.8 is not in it: it has no async API (`WsReceiver::try_recv` \
         is polled, as an egui frame loop does), and its callback API (`ws_connect`) takes a \
         `Send` handler while its `WsSender` holds an `Rc` of the browser's socket on the \
         web, so a reply cannot send the next message without a global; the same program \
         cannot be written on it.\n\n\
         | | {} |\n|---|{}\n",
        labels.join(" | "),
        "---|".repeat(PROGRAMS.len()),
        date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    );
    // Each program's wasm, its JavaScript (the glue, or plain JavaScript's program) and both,
    // gzipped.
    let sizes = sizes(www)?;
    let downloads: Vec<[Option<usize>; 3]> = (sizes.iter().zip(&PROGRAMS))
        .map(|(size, program)| match *size {
            Some((wasm, glue)) => [Some(wasm), Some(glue), Some(wasm + glue)],
            None => {
                let js = gzip_size(&www.join(program.source)).ok();
                [None, js, js]
            }
        })
        .collect();
    let size_rows = [
        "wasm, gzip -9",
        "JavaScript (glue, or the program), gzip -9",
        "both: what the page downloads for the program, gzip -9",
    ];
    for (column, label) in size_rows.iter().enumerate() {
        let cells: Vec<String> = (downloads.iter())
            .map(|size| size[column].map_or("-".to_owned(), |n| format!("{} B", thousands(n))))
            .collect();
        text += &format!("| {label} | {} |\n", cells.join(" | "));
    }
    let lines: Vec<usize> = (PROGRAMS.iter())
        .map(|program| lines_of(&peers.join(program.source)))
        .collect::<Result<_>>()?;
    text += &format!(
        "| lines of the program (without blank lines and comments) | {} |\n",
        lines
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    text += "\nThe lines leave out the messages and their comparison, which every program \
             shares (`common/` for Rust, `messages.js` for JavaScript).\n";

    for figures in &engines {
        text += &format!(
            "\nIn headless {:?} ({}): the ratio to plain JavaScript (median, then the lowest \
             and the highest round's), and the median milliseconds.\n\n\
             | workload | {} |\n|---|{}\n",
            figures.engine,
            figures.browser,
            labels.join(" | "),
            "---|".repeat(PROGRAMS.len()),
        );
        for (w, workload) in WORKLOADS.iter().enumerate() {
            let cells: Vec<String> = (figures.times.iter().enumerate())
                .map(|(p, times)| {
                    let (ms, ratio) = times[w];
                    match (p, workload.key) {
                        (0, _) => format!("{ms:.0} ms"),
                        // One round: no range.
                        (_, "sockets") => format!("{:.2}x, {ms:.0} ms", ratio.median),
                        _ => format!(
                            "{:.2}x ({:.2}-{:.2}), {ms:.0} ms",
                            ratio.median, ratio.min, ratio.max
                        ),
                    }
                })
                .collect();
            text += &format!(
                "| {} {} | {} |\n",
                thousands(workload.count as usize),
                workload.label,
                cells.join(" | ")
            );
        }
        let memory: Vec<String> = (figures.memory.iter())
            .map(|memory| match memory {
                Some((before, after)) => format!(
                    "{} KiB (+{})",
                    thousands((after / 1024.0) as usize),
                    thousands(((after - before) / 1024.0) as usize)
                ),
                None => "-".to_owned(),
            })
            .collect();
        text += &format!(
            "| wasm memory after the 1,000 sockets (growth over them) | {} |\n",
            memory.join(" | ")
        );
    }
    text += "\nThe memory is the instance's `WebAssembly.Memory` (pages of 64 KiB), read in \
             a fresh page (the first round's) before and after the sockets: it never shrinks, so growth is what \
             the sockets kept or needed at once. Plain JavaScript has none: `-`.\n";

    text += &format!(
        "\nNatively (`client/tests/native_speed.rs`, the crate on its tokio-tungstenite \
         transport against tokio-tungstenite used directly, on one current-thread runtime; \
         medians of 7, alternating):\n\n\
         | workload | tokio-tungstenite | ours | ratio |\n|---|---|---|---|\n\
         | 5,000 sequential round trips of 32 B text (per second) | {:.0} | {:.0} | {:.2}x |\n\
         | 400 x 64 KiB binary, 8 in flight (MB/s both ways) | {:.0} | {:.0} | {:.2}x |\n\
         | 200 x 1 MiB binary, sequential (MB/s both ways) | {:.0} | {:.0} | {:.2}x |\n",
        native[0].0,
        native[0].1,
        native[0].1 / native[0].0,
        native[1].0,
        native[1].1,
        native[1].1 / native[1].0,
        native[2].0,
        native[2].1,
        native[2].1 / native[2].0,
    );

    text += &format!(
        "\nInstructions per binary message natively (`client/tests/native_instructions.rs` \
         under callgrind, 8 in flight, every reply checked: one side at a time, run with {} \
         and with twice as many messages, the difference over the extra messages; median of \
         {} such pairs; user space only):\n\n\
         | message | tokio-tungstenite | ours | ratio |\n|---|---|---|---|\n",
        INSTRUCTION_COUNTS
            .iter()
            .map(|(_, count)| count.to_string())
            .collect::<Vec<_>>()
            .join(" or "),
        INSTRUCTION_PAIRS,
    );
    for ((base, ours), (size, _)) in instructions.iter().zip(INSTRUCTION_COUNTS) {
        text += &format!(
            "| {} | {} | {} | {:.3}x |\n",
            size_label(size),
            thousands(*base as usize),
            thousands(*ours as usize),
            ours / base
        );
    }

    text += &targets(&sizes, &engines, &native, &instructions, root)?;
    text += "\nWhere the gaps come from: ARCHITECTURE.md, \"The client beside its peers\".\n\n\
             ![Each crate's time as a ratio to plain JavaScript, per workload and engine]\
             (bench/charts/peers.svg)\n";
    eprint!("{text}");
    Ok((text, Figures { engines }))
}

/// The targets (issue 30) and whether this run met them.
fn targets(
    sizes: &[Option<(usize, usize)>],
    engines: &[EngineFigures],
    native: &[(f64, f64); 3],
    instructions: &[(f64, f64); 2],
    root: &Path,
) -> Result<String> {
    let mark = |met: bool| if met { "met" } else { "not met" };
    let mut text = String::from(
        "\nTargets (issue 30), on the medians of this run: the wasm, gzipped, at most the \
         smallest peer's and the demo page's at most 20,480 B; in every workload, ours at most \
         the fastest peer's ratio and at most 1.05x plain JavaScript; natively at least 1.00x \
         tokio-tungstenite; after the sockets, ours no more wasm memory than the peer that \
         keeps least.\n\n\
         | target | figure (ours / theirs) | |\n|---|---|---|\n",
    );
    let ours = sizes[1].context("our wasm")?.0;
    let smallest = (sizes[2..].iter().flatten())
        .map(|size| size.0)
        .min()
        .context("the peers' wasm")?;
    text += &format!(
        "| wasm gzip: ours at most the smallest peer's | {} B / {} B | {} |\n",
        thousands(ours),
        thousands(smallest),
        mark(ours <= smallest)
    );
    let demo = gzip_size(&root.join("www/pkg/echo_page_bg.wasm"))
        .context("no www/pkg/echo_page_bg.wasm: cargo xtask bench builds it")?;
    text += &format!(
        "| the demo page's wasm gzip: at most 20,480 B | {} B | {} |\n",
        thousands(demo),
        mark(demo <= 20_480)
    );
    for figures in engines {
        // The sockets' time is the browser's (the same in plain JavaScript), from one round:
        // their target is the memory they leave.
        for (w, workload) in WORKLOADS.iter().enumerate() {
            if workload.key == "sockets" {
                let growth =
                    |memory: &Option<(f64, f64)>| memory.map(|(before, after)| after - before);
                let ours = growth(&figures.memory[1]).context("our memory")?;
                let least =
                    (figures.memory[2..].iter().filter_map(growth)).fold(f64::INFINITY, f64::min);
                text += &format!(
                    "| {:?}, wasm memory growth over {} sockets: at most the least peer's | {} KiB / {} KiB | {} |\n",
                    figures.engine,
                    thousands(workload.count as usize),
                    thousands((ours / 1024.0) as usize),
                    thousands((least / 1024.0) as usize),
                    mark(ours <= least)
                );
                continue;
            }
            let ours = figures.times[1][w].1.median;
            let fastest = (figures.times[2..].iter())
                .map(|times| times[w].1.median)
                .fold(f64::INFINITY, f64::min);
            // Two decimals, or three where two would show a difference as none.
            let digits = if format!("{ours:.2}") == format!("{fastest:.2}") {
                3
            } else {
                2
            };
            text += &format!(
                "| {:?}, {}: at most the fastest peer's, at most 1.05x JavaScript | {ours:.digits$}x / {fastest:.digits$}x | {} |\n",
                figures.engine,
                short_label(workload),
                mark(ours <= fastest && ours <= 1.05)
            );
        }
    }
    for ((base, ours), name) in native.iter().zip(["32 B round trips", "64 KiB", "1 MiB"]) {
        let ratio = ours / base;
        text += &format!(
            "| native, {name}: at least 1.00x tokio-tungstenite | {ratio:.2}x | {} |\n",
            mark(ratio >= 1.0)
        );
    }
    for ((base, ours), (size, _)) in instructions.iter().zip(INSTRUCTION_COUNTS) {
        let ratio = ours / base;
        text += &format!(
            "| native, instructions per {} message: within 5% of tokio-tungstenite's | {ratio:.3}x | {} |\n",
            size_label(size),
            mark(ratio <= 1.05)
        );
    }
    Ok(text)
}

/// Every round in `engine`: one page load per program, in an order rotated each round.
/// `runs[round][program]`.
async fn rounds(engine: Engine, addr: &str) -> Result<Vec<Vec<Run>>> {
    let browser = e2e::Browser::start_in(engine).await?;
    let mut runs = Vec::new();
    let result = async {
        for round in 0..ROUNDS {
            let query: Vec<String> = (WORKLOADS.iter())
                .map(|workload| match workload.key {
                    "sockets" if round > 0 => "sockets=0".to_owned(),
                    key => format!("{key}={}", workload.count),
                })
                .collect();
            let mut results: Vec<Option<Run>> = vec![None; PROGRAMS.len()];
            for i in 0..PROGRAMS.len() {
                let p = (i + round) % PROGRAMS.len();
                let url = format!(
                    "http://{addr}/index.html?program={}&{}",
                    PROGRAMS[p].dir,
                    query.join("&")
                );
                let run = one(&browser, &url).await?;
                eprintln!("  {engine:?} round {round}: {} {run:?}", PROGRAMS[p].dir);
                results[p] = Some(run);
            }
            runs.push(results.into_iter().flatten().collect());
        }
        anyhow::Ok(())
    }
    .await;
    browser.close().await?;
    result?;
    Ok(runs)
}

/// Loads the driver page at `url` and waits for what it reports.
async fn one(browser: &e2e::Browser, url: &str) -> Result<Run> {
    browser.client.goto(url).await?;
    let script = "return window.peerError !== undefined ? { error: window.peerError } \
                  : (window.peerResult ?? null)";
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match browser.client.execute(script, vec![]).await? {
            Value::Null => {}
            Value::Object(result) => {
                if let Some(error) = result.get("error") {
                    bail!("{url}: {error}");
                }
                return Ok(result);
            }
            other => bail!("{url}: {other}"),
        }
        if Instant::now() > deadline {
            bail!("{url}: no result within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn figures(engine: Engine, runs: &[Vec<Run>]) -> EngineFigures {
    let number = |run: &Run, key: &str| run.get(key).and_then(Value::as_f64);
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let times = (0..PROGRAMS.len())
        .map(|p| {
            (WORKLOADS.iter())
                .map(|workload| {
                    let ms =
                        |run: &Vec<Run>, p: usize| number(&run[p], workload.key).unwrap_or(0.0);
                    let runs = if workload.key == "sockets" {
                        &runs[..1]
                    } else {
                        runs
                    };
                    let all = runs.iter().map(|run| ms(run, p)).collect();
                    let ratios = runs.iter().map(|run| ms(run, p) / ms(run, 0)).collect();
                    (median(all), Figure::of(ratios))
                })
                .collect()
        })
        .collect();
    let memory = (0..PROGRAMS.len())
        .map(|p| {
            let before: Vec<f64> = (runs[..1].iter())
                .filter_map(|run| number(&run[p], "memory_before"))
                .collect();
            let after: Vec<f64> = (runs[..1].iter())
                .filter_map(|run| number(&run[p], "memory_after_sockets"))
                .collect();
            (!before.is_empty() && !after.is_empty()).then(|| (median(before), median(after)))
        })
        .collect();
    let browser = match engine {
        Engine::Chromium => command_output("chromium", &["--version"]),
        _ => command_output(test_support::browser::FIREFOX, &["--version"]),
    };
    EngineFigures {
        engine,
        browser,
        times,
        memory,
    }
}

/// The native rows: (tokio-tungstenite, ours) in round trips per second, then MB/s of 64 KiB
/// and of 1 MiB messages.
fn native(root: &Path, url: &str) -> Result<[(f64, f64); 3]> {
    let mut native = transports::cargo(root, &["--test", "native_speed", "--"]);
    native.env("ECHO_SERVER_URL", url);
    let figure = transports::figures(native)?;
    let pair = |name: &str| -> Result<(f64, f64)> {
        Ok((figure(name, "tungstenite=")?, figure(name, "ours=")?))
    };
    Ok([
        pair("round_trips")?,
        pair("binary_mb_per_s")?,
        pair("binary_1m_mb_per_s")?,
    ])
}

/// `64 KiB`, `1 MiB`.
fn size_label(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// The native instruction rows' message sizes, each with the smaller of its two counts. How
/// a 1 MiB message is read in parts moves a run's count by millions: at 40 and 80 the
/// difference method's noise was ±10% (1.097x one run, 0.96x at 40 and 120 by hand); at 80 and
/// 160 it is a quarter of that.
const INSTRUCTION_COUNTS: [(usize, usize); 2] = [(64 * 1024, 100), (1024 * 1024, 80)];
/// How many pairs of runs each figure is the median of: partial reads move a count by a few
/// percent from run to run.
const INSTRUCTION_PAIRS: usize = 3;

/// Instructions per binary message of each size, (tokio-tungstenite used directly, ours):
/// `client/tests/native_instructions.rs` under callgrind (cargo's runner), each side with a
/// count and twice that count, the difference over the extra messages. glibc's `memcpy` and
/// `memset` keep to their vector loops ([`VECTOR_STRINGS`]), as the server's are counted:
/// tungstenite zero-fills its read window before each read, which `rep stosb` would have
/// counted a byte at a time.
fn native_instructions(root: &Path, url: &str) -> Result<[(f64, f64); 2]> {
    let dir = root.join("target/release/callgrind");
    std::fs::create_dir_all(&dir)?;
    let count = |side: &str, size: usize, count: usize| -> Result<u64> {
        let out = dir.join(format!("native-{side}-{size}-{count}.out"));
        let runner = format!(
            "valgrind --tool=callgrind --callgrind-out-file={}",
            out.display()
        );
        let mut test = transports::cargo(root, &["--test", "native_instructions", "--"]);
        test.args(["--include-ignored", "--nocapture"])
            .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER", runner)
            .env("GLIBC_TUNABLES", VECTOR_STRINGS)
            .env("ECHO_SERVER_URL", url)
            .env("NATIVE_SIDE", side)
            .env("NATIVE_SIZE", size.to_string())
            .env("NATIVE_COUNT", count.to_string());
        let output = test
            .output()
            .context("cannot run cargo test under callgrind")?;
        if !output.status.success() {
            bail!(
                "native_instructions failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(bench::callgrind::Counts::read(&out)?.instructions)
    };
    let per_message = |side: &str, size: usize, n: usize| -> Result<f64> {
        let mut figures = Vec::new();
        for _ in 0..INSTRUCTION_PAIRS {
            let (once, twice) = (count(side, size, n)?, count(side, size, 2 * n)?);
            figures.push(twice.saturating_sub(once) as f64 / n as f64);
        }
        figures.sort_by(f64::total_cmp);
        Ok(figures[figures.len() / 2])
    };
    let mut rows = [(0.0, 0.0); 2];
    for (row, (size, n)) in rows.iter_mut().zip(INSTRUCTION_COUNTS) {
        *row = (
            per_message("tungstenite", size, n)?,
            per_message("ours", size, n)?,
        );
    }
    Ok(rows)
}

/// For each program, its wasm and its JavaScript glue, gzipped (`None` for plain JavaScript).
fn sizes(www: &Path) -> Result<Vec<Option<(usize, usize)>>> {
    (PROGRAMS.iter())
        .map(|program| {
            if program.dir == "js" {
                return Ok(None);
            }
            let dir = www.join(program.dir);
            Ok(Some((
                gzip_size(&dir.join("peer_bg.wasm"))?,
                gzip_size(&dir.join("peer.js"))?,
            )))
        })
        .collect()
}

/// The file's size after gzip -9.
pub fn gzip_size(file: &Path) -> Result<usize> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gzip, &bytes)?;
    Ok(gzip.finish()?.len())
}

/// The lines of a program that are neither blank nor comments (`//` and `//!`).
fn lines_of(file: &Path) -> Result<usize> {
    let source =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(source
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .count())
}

/// The version of `krate` in a Cargo.lock's text.
fn locked<'a>(lock: &'a str, krate: &str) -> Option<&'a str> {
    let mut lines = lock.lines();
    lines.find(|line| *line == format!("name = \"{krate}\""))?;
    lines
        .next()?
        .strip_prefix("version = \"")?
        .strip_suffix('"')
}

/// `12345` as `12,345`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_and_locked_versions() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(21909), "21,909");
        assert_eq!(thousands(1234567), "1,234,567");
        let lock = "[[package]]\nname = \"gloo-net\"\nversion = \"0.6.0\"\n";
        assert_eq!(locked(lock, "gloo-net"), Some("0.6.0"));
        assert_eq!(locked(lock, "gloo"), None);
    }

    #[test]
    fn every_program_has_its_source_and_the_driver_page_its_workloads() {
        let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
        for program in &PROGRAMS {
            assert!(
                lines_of(&peers.join(program.source)).unwrap() > 10,
                "{}",
                program.source
            );
        }
        let page = std::fs::read_to_string(peers.join("index.html")).unwrap();
        for workload in &WORKLOADS {
            assert!(
                page.contains(&format!("\"{}\"", workload.key)),
                "{}",
                workload.key
            );
        }
        let lock = std::fs::read_to_string(peers.join("Cargo.lock")).unwrap();
        for krate in PROGRAMS.iter().filter_map(|program| program.krate) {
            assert!(
                locked(&lock, krate).is_some(),
                "{krate} is not in bench/peers/Cargo.lock"
            );
        }
    }
}
