//! `cargo xtask test`: everything CI checks, as a list of named steps ([`STEPS`]) run in
//! order, each step's time printed at the end, and one closing line, `tests: N passed, N
//! failed`, over every test runner it ran. A failing test runner ends the command at once,
//! with that line and its failures.
//!
//! `cargo xtask test STEP...` runs only the steps named (after `install`, which costs nothing
//! once everything is there), in the list's order; `cargo xtask test --list` names them. A
//! step may need what an earlier one made: the browser steps need the page built (`build`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use test_support::browser::{CHROMEDRIVER, DRIVER_VARIABLES, Engine};

use crate::autobahn;
use crate::build::{PAGE_FILES, build_client};
use crate::tools::{
    ensure_cargo_fuzz, ensure_debian_packages, ensure_geckodriver, ensure_python_websockets,
    ensure_wasm_pack, ensure_wasm_tools,
};
use crate::wsecho::{BROWSER_TEST_SERVER, EchoServer};
use crate::{CLIENT, DEFLATE, WASM_TARGET, cmd, locked_version, root, run, target_dir};

mod examples;
pub mod fuzz;
mod runner;

use runner::{
    Beside, Tally, ignored_wasm_test, run_tests, run_tests_unless_tab_crashed, wasm_test,
    wasm_test_in,
};

/// One step of the test command: the name that selects it, what it checks, and how.
struct Step {
    name: &'static str,
    title: &'static str,
    run: fn(&mut Shared) -> Result<()>,
}

/// Every step, in the order the command runs them: the quick checks first, then the tests,
/// the browser ones after the page is built, the end-to-end page tests last.
const STEPS: &[Step] = &[
    Step {
        name: "install",
        title: "install tools",
        run: install,
    },
    Step {
        name: "fmt",
        title: "format, and the locks of the workspaces the command does not build",
        run: format,
    },
    Step {
        name: "clippy",
        title: "clippy (native)",
        run: clippy,
    },
    Step {
        name: "clippy-wasm",
        title: "clippy (wasm32)",
        run: clippy_wasm,
    },
    Step {
        name: "docs",
        title: "docs",
        run: docs,
    },
    Step {
        name: "native",
        title: "native tests",
        run: native_tests,
    },
    Step {
        name: "fuzz",
        title: "fuzz targets, each for a bounded time",
        run: fuzz,
    },
    Step {
        name: "transports-native",
        title: "transport suite, natively on tokio-tungstenite",
        run: transports_native,
    },
    Step {
        name: "examples",
        title: "the client's examples, built for both targets and run against the server",
        run: examples,
    },
    Step {
        name: "build",
        title: "build the client",
        run: build,
    },
    Step {
        name: "wasm-chromium",
        title: "wasm tests in headless Chromium, through wasm-pack",
        run: wasm_chromium,
    },
    Step {
        name: "netfaults",
        title: "network faults: black hole, latency, loss, reset, MTU, natively and in Chromium, in network namespaces",
        run: netfaults,
    },
    Step {
        name: "wasm-firefox",
        title: "wasm tests in headless Firefox",
        run: wasm_firefox,
    },
    Step {
        name: "wasm-webkit",
        title: "wasm tests in WebKit",
        run: wasm_webkit,
    },
    Step {
        name: "autobahn-client",
        title: "Autobahn client cases, on each transport",
        run: autobahn_client,
    },
    Step {
        name: "autobahn-firefox",
        title: "Autobahn client cases in Firefox, beside plain JavaScript",
        run: autobahn_firefox,
    },
    Step {
        name: "autobahn-webkit",
        title: "Autobahn client cases in WebKit, beside plain JavaScript",
        run: autobahn_webkit,
    },
    Step {
        name: "autobahn-server",
        title: "Autobahn server cases",
        run: autobahn_server,
    },
    Step {
        name: "autobahn-server-deflate",
        title: "Autobahn server cases with permessage-deflate",
        run: autobahn_server_deflate,
    },
    Step {
        name: "python",
        title: "Python websockets client against --deflate",
        run: python_websockets,
    },
    Step {
        name: "wasm-pack-build",
        title: "wasm-pack build",
        run: wasm_pack_build,
    },
    Step {
        name: "publish",
        title: "publish dry runs",
        run: publish,
    },
    Step {
        name: "e2e",
        title: "end-to-end page test",
        run: e2e,
    },
    Step {
        name: "e2e-firefox",
        title: "end-to-end page test in Firefox",
        run: e2e_firefox,
    },
    Step {
        name: "e2e-webkit",
        title: "end-to-end page test in WebKit",
        run: e2e_webkit,
    },
];

/// Steps run only when named: the long forms of steps the command runs a sample of.
const EXTRA_STEPS: &[Step] = &[Step {
    name: "autobahn-server-deflate-all",
    title: "every Autobahn server case with permessage-deflate (about five minutes)",
    run: autobahn_server_deflate_all,
}];

/// Runs the steps named in `selected` (all when none is), then prints each one's time and the
/// closing line.
pub fn test(selected: &[&str]) -> Result<()> {
    if selected == ["--list"] {
        for step in STEPS {
            println!("{:<28} {}", step.name, step.title);
        }
        for step in EXTRA_STEPS {
            println!("{:<28} {} (only when named)", step.name, step.title);
        }
        return Ok(());
    }
    let steps = steps(selected)?;
    let started = Instant::now();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut cx = Shared::default();
    for step in steps {
        eprintln!("\n== {}", step.title);
        let begun = Instant::now();
        (step.run)(&mut cx).with_context(|| format!("step `{}` failed", step.title))?;
        timings.push((step.title, begun.elapsed()));
    }
    eprintln!();
    for (title, took) in &timings {
        eprintln!("{:>7.1} s  {title}", took.as_secs_f64());
    }
    eprintln!("{:>7.1} s  in all", started.elapsed().as_secs_f64());
    // The closing line CI reads: the tests of every runner above, added up.
    let tally = &cx.tally;
    println!("tests: {} passed, {} failed", tally.passed, tally.failed);
    Ok(())
}

/// What the steps share: the test counts, and the echo server the browser suites run
/// against, started by the first step that needs it. One server for every engine: its URL is
/// built into the wasm tests (`ECHO_SERVER_URL`), so a new one would rebuild them.
#[derive(Default)]
struct Shared {
    tally: Tally,
    browser_test_server: Option<EchoServer>,
}

impl Shared {
    /// The URL of the server the browser suites run against ([`BROWSER_TEST_SERVER`]).
    fn browser_test_server(&mut self) -> Result<String> {
        if self.browser_test_server.is_none() {
            let server = EchoServer::start("debug", &BROWSER_TEST_SERVER, "warn")?;
            self.browser_test_server = Some(server);
        }
        let server = self.browser_test_server.as_ref().expect("started");
        Ok(server.url.clone())
    }
}

/// The steps `selected` names, in the lists' order, after `install`; every step of
/// [`STEPS`] for none.
fn steps(selected: &[&str]) -> Result<Vec<&'static Step>> {
    let every = || STEPS.iter().chain(EXTRA_STEPS);
    if let Some(unknown) = (selected.iter()).find(|name| !every().any(|s| s.name == **name)) {
        let names: Vec<&str> = every().map(|step| step.name).collect();
        bail!("no step {unknown:?}; the steps: {}", names.join(" "));
    }
    if selected.is_empty() {
        return Ok(STEPS.iter().collect());
    }
    Ok(every()
        .filter(|step| step.name == "install" || selected.contains(&step.name))
        .collect())
}

fn cargo(args: &[&str]) -> Result<()> {
    run(cmd("cargo", args))
}

fn deny_doc_warnings(args: &[&str]) -> Result<()> {
    run(cmd("cargo", args).env("RUSTDOCFLAGS", "-D warnings"))
}

const WASM: [&str; 2] = ["--target", WASM_TARGET];

/// On a new machine the installs take minutes: four Rust programs built from crates.io, and
/// Debian's packages downloaded and unpacked. They run in three threads, since a `cargo
/// install` leaves a core idle in its single-crate stretches and the packages wait on the
/// network and the disk.
fn install(_: &mut Shared) -> Result<()> {
    std::thread::scope(|scope| {
        let packages = scope.spawn(|| {
            ensure_debian_packages()?;
            autobahn::ensure_kosoku()
        });
        let fuzzing = scope.spawn(|| {
            ensure_cargo_fuzz()?;
            ensure_geckodriver()
        });
        let wasm = ensure_wasm_tools().and_then(|()| ensure_wasm_pack());
        let joined = |thread: std::thread::ScopedJoinHandle<'_, Result<()>>| {
            thread
                .join()
                .unwrap_or_else(|_| bail!("an install panicked"))
        };
        let (packages, fuzzing) = (joined(packages), joined(fuzzing));
        wasm.and(packages).and(fuzzing)
    })
}

fn format(_: &mut Shared) -> Result<()> {
    cargo(&["fmt", "--all", "--check"])?;
    // `bench/peers` (built by the bench) and `fuzz` (on nightly) have locks of their own,
    // which a new dependency of the client or the server makes stale; built `--locked`, they
    // would then fail far from the change. Resolving them costs a second.
    for workspace in ["bench/peers", "fuzz"] {
        let manifest = root().join(workspace).join("Cargo.toml");
        let mut metadata = cmd("cargo", &["metadata", "--locked", "--format-version", "1"]);
        metadata.arg("--manifest-path").arg(manifest);
        run(metadata.stdout(std::process::Stdio::null())).with_context(|| {
            format!("{workspace}/Cargo.lock is stale: run `cargo update -w` there")
        })?;
    }
    Ok(())
}

fn clippy(_: &mut Shared) -> Result<()> {
    // With the client's features that nothing in the workspace turns on: one pass.
    let args = [
        &["clippy", "--workspace", "--all-targets"][..],
        &NATIVE_FEATURES,
        &["--", "-D", "warnings"],
    ];
    cargo(&args.concat())
}

fn clippy_wasm(_: &mut Shared) -> Result<()> {
    // Without and with the `WebSocketStream` transport and typed messages, each behind a
    // feature.
    for features in [&[][..], &["--features", "web-socket-stream json"][..]] {
        cargo(
            &[
                &["clippy", "-p", CLIENT, "--all-targets"],
                &WASM[..],
                features,
                &["--", "-D", "warnings"],
            ]
            .concat(),
        )?;
    }
    Ok(())
}

fn docs(_: &mut Shared) -> Result<()> {
    // Natively with the client's `http2` feature, so that its items are documented too.
    deny_doc_warnings(&[
        "doc",
        "--workspace",
        "--no-deps",
        "--features",
        "wasm-websocket/http2",
    ])?;
    let features = ["--features", "web-socket-stream json"];
    deny_doc_warnings(&[&["doc", "-p", CLIENT, "--no-deps"], &WASM[..], &features].concat())
}

/// The client's features that nothing in the workspace turns on, for the native tests and
/// the native transport suite: one build for both (each adds methods and changes no default,
/// so the rest is tested as without them). `platform-verifier`'s test needs it, the
/// transport suite's typed messages `json`, and `client/tests/http2.rs` `http2` (whose
/// default, `Http2::Auto`, sends every `wss://` test of the workspace over HTTP/2 where the
/// server offers it; `Http2::Never` there takes the path of a build without it).
const NATIVE_FEATURES: [&str; 2] = [
    "--features",
    "wasm-websocket/platform-verifier wasm-websocket/json wasm-websocket/http2",
];

fn native_tests(cx: &mut Shared) -> Result<()> {
    let args = [
        &["test", "--workspace", "--exclude", "e2e"][..],
        &NATIVE_FEATURES,
    ]
    .concat();
    // The nginx and tinyproxy tests skip themselves where those are missing; here they were
    // installed.
    let mut tests = cmd("cargo", &args);
    tests
        .env("REQUIRE_NGINX", "1")
        .env("REQUIRE_TINYPROXY", "1");
    run_tests(&mut tests, &mut cx.tally)
}

fn transports_native(cx: &mut Shared) -> Result<()> {
    // The suite the browser runs too (`client/tests/transports.rs`), against the same
    // server. One test at a time, as in the browser: `!outage` affects every connection.
    let server = EchoServer::start("debug", &BROWSER_TEST_SERVER, "warn")?;
    // With typed messages and bytes as a stream; selected from the workspace with the native
    // tests' features, so that it reuses their build.
    let tests = ["--test", "transports", "--test", "json", "--test", "io"];
    let args = [
        &["test", "--workspace", "--exclude", "e2e"][..],
        &NATIVE_FEATURES,
        &tests,
        &["--", "--include-ignored", "--test-threads=1"],
    ]
    .concat();
    run_tests(
        cmd("cargo", &args).env("ECHO_SERVER_URL", &server.url),
        &mut cx.tally,
    )
}

fn fuzz(_: &mut Shared) -> Result<()> {
    fuzz::fuzz(fuzz::SECONDS_EACH)
}

fn netfaults(cx: &mut Shared) -> Result<()> {
    // Ignored by the native step (they need root); here all six at once, in namespaces of
    // their own, so the step takes as long as the longest once built. A machine where they
    // cannot run fails here instead of skipping. After the Chromium suites, which built the
    // client for wasm32: the browser case's page is then one small test crate more.
    let page = netfaults_page()?;
    let args = [
        "test",
        "-p",
        "wsecho",
        "--test",
        "netfaults",
        "--",
        "--ignored",
        "--test-threads=8",
    ];
    let mut test = cmd("cargo", &args);
    test.env("REQUIRE_NETNS", "1")
        .env("NETFAULT_BROWSER_WASM", page);
    run_tests(test, &mut cx.tally)
}

/// The browser case's page: `client/tests/netfaults_browser.rs` built for wasm32 with
/// `NETFAULT_BROWSER` set (the servers' addresses are fixed in it); the path of its wasm,
/// which the case runs with wasm-bindgen-test-runner inside the client's namespace.
fn netfaults_page() -> Result<PathBuf> {
    built_wasm_test("netfaults_browser", &[("NETFAULT_BROWSER", "1")])
}

/// Builds the client's test `target` for wasm32 (with `envs` set), and gives its wasm's path.
fn built_wasm_test(target: &str, envs: &[(&str, &str)]) -> Result<PathBuf> {
    built(
        &["-p", CLIENT, "--target", WASM_TARGET, "--test", target],
        target,
        envs,
    )
}

/// Builds `package`'s test `target` natively (with `envs` set), and gives its executable.
fn built_test(package: &str, target: &str, envs: &[(&str, &str)]) -> Result<PathBuf> {
    built(&["-p", package, "--test", target], target, envs)
}

/// `cargo test ARGS --no-run` with `envs` set: the executable of the test `target`.
fn built(args: &[&str], target: &str, envs: &[(&str, &str)]) -> Result<PathBuf> {
    let args = [&["test"], args, &["--no-run", "--message-format=json"]].concat();
    let mut build = cmd("cargo", &args);
    let mut line = String::new();
    for (name, value) in envs {
        build.env(name, value);
        line.push_str(&format!("{name}={value} "));
    }
    eprintln!("$ {line}cargo {}", args.join(" "));
    let out = build.stderr(std::process::Stdio::inherit()).output()?;
    if !out.status.success() {
        bail!("the test {target} did not build");
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let message: serde_json::Value = serde_json::from_str(line)?;
        if message["target"]["name"] == target
            && let Some(executable) = message["executable"].as_str()
        {
            return Ok(PathBuf::from(executable));
        }
    }
    bail!("cargo named no executable for the test {target}")
}

/// wasm-bindgen-test-runner on the test `wasm`, in `engine`, as cargo would start it: the
/// runner as the engine's (WebKit's under xvfb-run), only that engine's driver named.
fn wasm_runner_in(engine: Engine, wasm: &Path) -> Command {
    let [(_, runner), driver] = engine.wasm_test_runner_env();
    let mut words = runner.split_whitespace();
    let mut test = Command::new(words.next().unwrap_or_default());
    test.args(words)
        .arg(wasm)
        .current_dir(root().join("client"));
    for variable in DRIVER_VARIABLES {
        test.env_remove(variable);
    }
    test.env(driver.0, driver.1);
    test
}

fn examples(_: &mut Shared) -> Result<()> {
    examples::examples()
}

fn build(_: &mut Shared) -> Result<()> {
    build_client()
}

fn wasm_chromium(cx: &mut Shared) -> Result<()> {
    // The server the README's `wasm-pack test` line expects, on a port of its own.
    let server = cx.browser_test_server()?;
    // The liveness defaults wait a minute on timers (the first ping at 25 s, then the 35 s
    // bound): run beside the other suites, in a Chromium of their own.
    let defaults = defaults_beside(&server)?;
    let mut test = cmd(
        "wasm-pack",
        &[
            "test",
            "--headless",
            "--chrome",
            "--chromedriver",
            CHROMEDRIVER,
            "client",
        ],
    );
    // wasm-bindgen-test's default 20 s is for the whole suite: 47 tests took 19 to
    // 22 s on a machine shared with two other builds, and failed as timed out.
    test.env("WASM_BINDGEN_TEST_TIMEOUT", "60");
    run_tests(test.env("ECHO_SERVER_URL", &server), &mut cx.tally)?;
    // The same suite on `WebSocketStream` (the `transports` target, built to ask for it).
    let mut stream = wasm_test("transports", "60");
    stream
        .args(["--features", "web-socket-stream"])
        .env("WS_TRANSPORT", "stream");
    run_tests(stream.env("ECHO_SERVER_URL", &server), &mut cx.tally)?;
    // `WebSocketStream` used the way a hostile or careless application would (about 10 s).
    let mut hostile = wasm_test("hostile_stream", "120");
    hostile
        .args(["--features", "web-socket-stream"])
        .env("WS_TRANSPORT", "stream");
    run_tests(hostile.env("ECHO_SERVER_URL", &server), &mut cx.tally)?;
    // Typed messages (feature `json`).
    let mut json = wasm_test("json", "60");
    json.args(["--features", "json"]);
    run_tests(json.env("ECHO_SERVER_URL", &server), &mut cx.tally)?;
    // Receive backpressure, measured: the page's memory under `!flood`.
    let mut flood = wasm_test("backpressure", "120");
    flood.args(["--features", "web-socket-stream"]);
    run_tests(flood.env("ECHO_SERVER_URL", &server), &mut cx.tally)?;
    defaults.join(&mut cx.tally)
}

/// `client/tests/defaults.rs`, ignored unless asked for, started in headless Chromium by the
/// runner itself: `cargo test` would hold the build directory's lock until it ends.
fn defaults_beside(server: &str) -> Result<Beside> {
    // The server's address is built in, as the suites' own runs build it.
    let wasm = built_wasm_test("defaults", &[("ECHO_SERVER_URL", server)])?;
    let mut test = wasm_runner_in(Engine::Chromium, &wasm);
    test.arg("--include-ignored")
        .env("WASM_BINDGEN_TEST_TIMEOUT", "120");
    Beside::start(test)
}

/// A test that fails in one engine but not in Chromium, and why: skipped there (and said so)
/// until the crate behaves the same everywhere.
struct KnownFailure {
    engine: Engine,
    suite: &'static str,
    test: &'static str,
    why: &'static str,
}

/// Every test that differs between engines, one line each.
const KNOWN_FAILURES: &[KnownFailure] = &[KnownFailure {
    engine: Engine::Firefox,
    suite: "browser",
    test: "chromium_negotiates_permessage_deflate_and_large_messages_round_trip",
    why: "Firefox's `extensions` names the extension without its parameters \
              (`permessage-deflate`); the test expects Chromium's full answer",
}];

/// The browser suites in an engine other than Chromium: what can differ between engines, not
/// everything again. The shared transport suite on the browser's `WebSocket`, the browser and
/// worker suites, and the transport suite built to ask for `WebSocketStream`, which these
/// engines lack: the socket falls back to `WebSocket` and says so (`transport()`, which the
/// suite checks against what the engine has), and passes the same suite.
fn wasm_in(engine: Engine, cx: &mut Shared) -> Result<()> {
    let server = cx.browser_test_server()?;
    let runs: [(&str, &[&str]); 4] = [
        ("transports", &[]),
        ("browser", &[]),
        ("worker", &[]),
        ("transports", &["--features", "web-socket-stream"]),
    ];
    for (suite, features) in runs {
        let mut test = wasm_test_in(engine, suite, "60");
        test.args(features).env("ECHO_SERVER_URL", &server);
        if !features.is_empty() {
            test.env("WS_TRANSPORT", "stream");
        }
        test.arg("--");
        for known in KNOWN_FAILURES {
            if known.engine == engine && known.suite == suite {
                eprintln!(
                    "skipped in {engine:?}: {suite}::{}: {}",
                    known.test, known.why
                );
                test.args(["--skip", known.test]);
            }
        }
        run_tests(test, &mut cx.tally)?;
    }
    Ok(())
}

fn wasm_firefox(cx: &mut Shared) -> Result<()> {
    wasm_in(Engine::Firefox, cx)
}

fn wasm_webkit(cx: &mut Shared) -> Result<()> {
    wasm_in(Engine::WebKit, cx)
}

/// `cargo test` of the client's Autobahn target on `WebSocketStream` in Chromium, with the
/// case runs it ignores unless asked, each test given `timeout_secs`.
fn autobahn_on_stream(timeout_secs: &str) -> Command {
    let mut test = wasm_test("autobahn", timeout_secs);
    test.args(["--features", "web-socket-stream"])
        .env("WS_TRANSPORT", "stream")
        .args(["--", "--include-ignored"]);
    test
}

fn autobahn_client(cx: &mut Shared) -> Result<()> {
    // Natively, beside the browser's runs (its own fuzzing server; by its runner, since
    // `cargo test` holds the build directory's lock while it runs).
    let begun = Instant::now();
    let native_reports = target_dir().join("autobahn").join("client-native");
    // Natively no browser compresses: the client's own permessage-deflate runs more of the
    // compression cases.
    let cases = autobahn::native_client_cases();
    let native_fuzzing = autobahn::FuzzingServer::start(&native_reports, &cases, &[])?;
    let mut native = Command::new(built_test(CLIENT, "autobahn", &[])?);
    native
        .current_dir(root().join("client"))
        .arg("--include-ignored")
        .env("AUTOBAHN_URL", &native_fuzzing.url);
    let native = Beside::start(native)?;
    // One test runs every case in turn: minutes, not the default 20 s.
    let classic = ignored_wasm_test("autobahn", "900");
    let crashing = &autobahn::CRASH_CHROMIUM_ON_STREAM[..];
    let runs = [
        (
            "wasm-websocket",
            "client",
            "in Chromium on WebSocket",
            classic,
            &[][..],
        ),
        // Without the cases that can crash Chromium's renderer: they run below. The whole
        // run gets 900 s.
        (
            "wasm-websocket-stream",
            "client-stream",
            "in Chromium on WebSocketStream",
            autobahn_on_stream("900"),
            crashing,
        ),
    ];
    for (agent, dir, transport, mut test, excluded) in runs {
        // A fuzzing server for each run: it stops once its reports are written.
        let reports = target_dir().join("autobahn").join(dir);
        let begun = Instant::now();
        let cases = autobahn::client_cases();
        let fuzzing = autobahn::FuzzingServer::start(&reports, &cases, excluded)?;
        test.env("AUTOBAHN_URL", &fuzzing.url);
        // A crash here is a case missing from CRASH_CHROMIUM_ON_STREAM, or news: say so.
        if !run_tests_unless_tab_crashed(test, &mut cx.tally)? {
            println!(
                "tests: {} passed, {} failed",
                cx.tally.passed,
                cx.tally.failed + 1
            );
            bail!(
                "Chromium's renderer crashed during the Autobahn client cases {transport}, \
                 outside autobahn::CRASH_CHROMIUM_ON_STREAM (see ARCHITECTURE.md, \
                 \"Transports\", and {})",
                reports.display()
            );
        }
        client_report(agent, &reports, transport, begun)?;
    }
    autobahn_crashing_on_stream(cx)?;
    native.join(&mut cx.tally)?;
    client_report("wasm-websocket-native", &native_reports, "natively", begun)?;
    drop(native_fuzzing);
    Ok(())
}

/// Reads `agent`'s Autobahn report, says what it holds, and fails on a FAILED case that is
/// the client's; natively, on a compression case that is not OK too.
fn client_report(agent: &str, reports: &Path, transport: &str, begun: Instant) -> Result<()> {
    let native = agent.ends_with("native");
    let report = autobahn::Report::read(reports, agent)?;
    let took = begun.elapsed().as_secs();
    eprintln!(
        "Autobahn, client {transport} ({took} s): {}",
        report.summary()
    );
    // Natively no browser decides anything: every FAILED case is ours.
    let ours: Vec<&String> = (report.failed.iter())
        .filter(|case| native || !autobahn::DECIDED_BY_CHROMIUM.contains(&case.as_str()))
        .collect();
    if !ours.is_empty() {
        bail!(
            "Autobahn cases FAILED by the client {transport}: {ours:?} (see {})",
            reports.display()
        );
    }
    // And natively every compression case is OK: none left UNIMPLEMENTED (the client
    // offers what each asks for) or merely NON-STRICT.
    let compression: Vec<(&String, &String)> = (report.behaviours.iter())
        .filter(|(case, behaviour)| autobahn::is_compression_case(case) && *behaviour != "OK")
        .collect();
    if native && !compression.is_empty() {
        bail!(
            "Autobahn compression cases not OK natively: {compression:?} (see {})",
            reports.display()
        );
    }
    Ok(())
}

/// On `WebSocketStream`, each Autobahn case that can crash Chromium's renderer in a page of
/// its own, then a page that has the reports written: a crash costs that page only, and the
/// fuzzing server judges the case from what reached it all the same. A page of one case, or
/// of the reports, gets 90 s (a case that does not close is abandoned after 30 s).
fn autobahn_crashing_on_stream(cx: &mut Shared) -> Result<()> {
    let crashing = &autobahn::CRASH_CHROMIUM_ON_STREAM[..];
    let begun = Instant::now();
    let reports = target_dir().join("autobahn").join("client-stream-crashing");
    let cases: Vec<String> = crashing.iter().map(|case| case.to_string()).collect();
    let fuzzing = autobahn::FuzzingServer::start(&reports, &cases, &[])?;
    let mut crashed = 0;
    for case in 1..=cases.len() {
        let mut test = autobahn_on_stream("90");
        test.env("AUTOBAHN_URL", &fuzzing.url)
            .env("AUTOBAHN_CASE", case.to_string());
        if !run_tests_unless_tab_crashed(test, &mut cx.tally)? {
            crashed += 1;
        }
    }
    let mut report_page = autobahn_on_stream("90");
    report_page
        .env("AUTOBAHN_URL", &fuzzing.url)
        .env("AUTOBAHN_CASE", "report");
    run_tests(report_page, &mut cx.tally)?;
    let report = autobahn::Report::read(&reports, "wasm-websocket-stream")?;
    eprintln!(
        "Autobahn, client in Chromium on WebSocketStream, the cases that can crash the \
         renderer, each in its own page ({crashed} of {} crashed; {} s): {}",
        cases.len(),
        begun.elapsed().as_secs(),
        report.summary()
    );
    // Each judged, and none FAILED: no case of this set is one that Chromium decides.
    let judged: usize = report.counts.values().sum();
    if judged != cases.len() || !report.failed.is_empty() {
        bail!(
            "Autobahn on WebSocketStream, the cases that can crash the renderer: {judged} \
             of {} judged, FAILED: {:?} (see {})",
            cases.len(),
            report.failed,
            reports.display()
        );
    }
    Ok(())
}

/// The Autobahn client cases in `engine` (those of [`autobahn::engine_cases`]), run by the
/// client on the browser's `WebSocket` and by plain JavaScript on it too
/// (`tests/tests/autobahn_js.rs`), each against a fuzzing server of its own: the client must
/// do no worse than plain JavaScript on any case. What the engine decides before any script
/// sees it comes out the same for both.
fn autobahn_in(engine: Engine, cx: &mut Shared) -> Result<()> {
    let cases = autobahn::engine_cases();
    let dir = target_dir()
        .join("autobahn")
        .join(format!("client-{}", engine.name()));
    // The two clients run at once, each against a fuzzing server of its own: the cases
    // wait on the network more than they compute. By their runners, since `cargo test`
    // holds the build directory's lock while its tests run.
    let out = |agent: &str| dir.join(agent);
    let ours_fuzzing = autobahn::FuzzingServer::start(&out("wasm-websocket"), &cases, &[])?;
    let js_fuzzing = autobahn::FuzzingServer::start(&out("plain-javascript"), &cases, &[])?;
    // The wasm has its server's address built in.
    let wasm = built_wasm_test("autobahn", &[("AUTOBAHN_URL", &ours_fuzzing.url)])?;
    let mut ours = wasm_runner_in(engine, &wasm);
    ours.args(["--include-ignored"])
        .env("WASM_BINDGEN_TEST_TIMEOUT", "900");
    // Firefox delays each connection to a host whose last one failed, more and more (RFC
    // 6455, 7.2.3): over cases that each end one, that doubled the run's time. The cases are
    // independent of each other, so both clients run without the delay (the suites keep it:
    // it is what users get).
    let no_delay = serde_json::json!({ "network.websocket.delay-failed-reconnects": false });
    if engine == Engine::Firefox {
        std::fs::create_dir_all(&dir)?;
        let capabilities = dir.join("webdriver.json");
        let options = serde_json::json!({ "moz:firefoxOptions": { "prefs": no_delay } });
        std::fs::write(&capabilities, options.to_string())?;
        ours.env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", capabilities);
    }
    let mut javascript = Command::new(built_test("e2e", "autobahn_js", &[])?);
    javascript
        .current_dir(root().join("tests"))
        .arg("--include-ignored")
        .env("E2E_ENGINE", engine.name())
        .env("E2E_FIREFOX_PREFS", no_delay.to_string())
        .env("AUTOBAHN_URL", &js_fuzzing.url);
    let begun = Instant::now();
    let runs = [
        ("the client", "wasm-websocket", Beside::start(ours)?),
        (
            "plain JavaScript",
            "plain-javascript",
            Beside::start(javascript)?,
        ),
    ];
    let mut reports = Vec::new();
    for (who, agent, run) in runs {
        run.join(&mut cx.tally)?;
        let report = autobahn::Report::read(&out(agent), agent)?;
        eprintln!(
            "Autobahn, {who} in {engine:?} on WebSocket (both in {} s): {}",
            begun.elapsed().as_secs(),
            report.summary()
        );
        reports.push((report, out(agent)));
    }
    drop((ours_fuzzing, js_fuzzing));
    let [(ours, out), (javascript, _)] = &reports[..] else {
        unreachable!("two runs")
    };
    let worse = ours.worse_than(javascript);
    if !worse.is_empty() {
        bail!(
            "Autobahn cases where the client does worse than plain JavaScript in {engine:?} \
             (case, ours, plain JavaScript's): {worse:?} (see {})",
            out.display()
        );
    }
    Ok(())
}

fn autobahn_firefox(cx: &mut Shared) -> Result<()> {
    autobahn_in(Engine::Firefox, cx)
}

fn autobahn_webkit(cx: &mut Shared) -> Result<()> {
    autobahn_in(Engine::WebKit, cx)
}

fn autobahn_server(_: &mut Shared) -> Result<()> {
    let (report, reports) = fuzz_server(&[], &[], "server")?;
    eprintln!("Autobahn, echo server: {}", report.summary());
    if !report.failed.is_empty() {
        bail!("Autobahn cases FAILED by the server: {:?}", report.failed);
    }
    // The server's target is stricter: nothing NON-STRICT either.
    if let Some(count) = report.counts.get("NON-STRICT") {
        bail!(
            "{count} Autobahn cases NON-STRICT by the server (see {})",
            reports.display()
        );
    }
    Ok(())
}

fn autobahn_server_deflate(_: &mut Shared) -> Result<()> {
    let (cases, count) = autobahn::deflate_server_sample();
    deflate_cases(&cases, count, "server-deflate")
}

fn autobahn_server_deflate_all(_: &mut Shared) -> Result<()> {
    deflate_cases(&[], autobahn::CASES, "server-deflate-all")
}

/// Autobahn's `cases` (every one for none), `count` of them, against the echo server with
/// `--deflate`.
fn deflate_cases(cases: &[String], count: usize, dir: &str) -> Result<()> {
    // Every reply compressed (threshold 0): kosoku's compression cases (12.x, 13.x) fail
    // on an uncompressed echo, which RFC 7692 allows.
    let flags = ["--deflate", "--deflate-threshold", "0"];
    let (report, reports) = fuzz_server(&flags, cases, dir)?;
    eprintln!("Autobahn, echo server with --deflate: {}", report.summary());
    report.require_all_passed(count, &reports)
}

/// Autobahn's fuzzing client, on `cases` (every one for none), against a debug echo server
/// with `flags`, a pure echo with room for the suite's 16 MiB messages; its report, and where
/// it was written (under `target/autobahn/DIR`).
fn fuzz_server(flags: &[&str], cases: &[String], dir: &str) -> Result<(autobahn::Report, PathBuf)> {
    let base = [
        "--addr",
        "127.0.0.1:0",
        "--prefix",
        "",
        "--max-message-size",
        "20000000",
    ];
    let server = EchoServer::start("debug", &[&base[..], flags].concat(), "warn")?;
    let addr = server.process.addr();
    let reports = target_dir().join("autobahn").join(dir);
    autobahn::run_fuzzing_client(addr, cases, &reports)?;
    let report = autobahn::Report::read(&reports, addr)?;
    Ok((report, reports))
}

fn python_websockets(_: &mut Shared) -> Result<()> {
    let python = ensure_python_websockets()?;
    let args = ["--addr", "127.0.0.1:0", "--prefix", "", "--deflate"];
    let server = EchoServer::start("debug", &args, "warn")?;
    let script = root().join("tests/interop/websockets_client.py");
    run(Command::new(python).arg(script).arg(&server.url))
}

fn wasm_pack_build(_: &mut Shared) -> Result<()> {
    let out = target_dir().join("wasm-pack-pkg");
    let mut build = cmd("wasm-pack", &["build", "www", "--target", "web"]);
    run(build.arg("--out-dir").arg(&out))?;
    let files = [
        format!("{PAGE_FILES}.js"),
        format!("{PAGE_FILES}_bg.wasm"),
        "package.json".to_owned(),
    ];
    match files.iter().find(|file| !out.join(file).exists()) {
        Some(file) => bail!("wasm-pack did not write {file}"),
        None => Ok(()),
    }
}

fn publish(_: &mut Shared) -> Result<()> {
    // In one run: the client and the server depend on `ws-deflate`, which is not on
    // crates.io yet, and cargo verifies each package against the others of the same run.
    // Cargo unpacks each package of the run into its registry cache, by name and version,
    // and reuses what an earlier run unpacked there, and built in `target/`, for the same
    // version (a registry's package never changes): the client and the server were then
    // checked against an old `ws-deflate` (a macro it has now was missing). Each run unpacks
    // and builds afresh; on a new machine there is nothing to remove.
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let mut args = vec!["publish", "--dry-run", "--allow-dirty"];
    for package in [DEFLATE, CLIENT, "wsecho"] {
        args.extend(["-p", package]);
        let unpacked = format!("{package}-{}", locked_version(package)?);
        let caches = cargo_home.iter().map(|home| home.join("registry/src"));
        for cache in caches
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
        {
            let stale = cache?.path().join(&unpacked);
            if stale.exists() {
                std::fs::remove_dir_all(&stale)?;
            }
        }
    }
    run(cmd("cargo", &["clean", "--quiet", "-p", DEFLATE]))?;
    run(cmd("cargo", &args))
}

fn e2e(cx: &mut Shared) -> Result<()> {
    let mut test = cmd("cargo", &["test", "-p", "e2e"]);
    run_tests(
        test.env("E2E_ENGINE", Engine::Chromium.name()),
        &mut cx.tally,
    )
}

/// The page tests (`tests/tests/page.rs`: the page, and the chapter's own page) in `engine`;
/// `chromium.rs` is Chromium's alone.
fn e2e_in(engine: Engine, cx: &mut Shared) -> Result<()> {
    let mut test = cmd("cargo", &["test", "-p", "e2e", "--test", "page"]);
    run_tests(test.env("E2E_ENGINE", engine.name()), &mut cx.tally)
}

fn e2e_firefox(cx: &mut Shared) -> Result<()> {
    e2e_in(Engine::Firefox, cx)
}

fn e2e_webkit(cx: &mut Shared) -> Result<()> {
    e2e_in(Engine::WebKit, cx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_named_once_and_selected_in_order() {
        let mut names: Vec<&str> = STEPS.iter().map(|step| step.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), STEPS.len(), "a step name is used twice");
        let all = steps(&[]).unwrap();
        assert_eq!(all.len(), STEPS.len());
        let names = |steps: Vec<&Step>| steps.iter().map(|s| s.name).collect::<Vec<_>>();
        // The list's order, not the command line's, and `install` first.
        let some = steps(&["e2e", "fmt"]).unwrap();
        assert_eq!(names(some), ["install", "fmt", "e2e"]);
        assert!(steps(&["no-such-step"]).is_err());
    }
}
