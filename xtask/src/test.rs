//! `cargo xtask test`: everything CI checks, step by step, with each step's time and one
//! closing line, `tests: N passed, N failed`, over every test runner it ran.

use std::borrow::BorrowMut;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use test_support::browser::CHROMEDRIVER;

use crate::autobahn;
use crate::build::{PAGE_FILES, build_client};
use crate::echo_server::{BROWSER_TEST_SERVER, EchoServer};
use crate::tools::{
    ensure_debian_packages, ensure_python_websockets, ensure_wasm_pack, ensure_wasm_tools,
};
use crate::{CLIENT, WASM_TARGET, cmd, describe, root, run, target_dir};

pub fn test() -> Result<()> {
    let started = Instant::now();
    let mut timings = Vec::new();
    let mut step = |name: &str, action: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        eprintln!("\n== {name}");
        let begun = Instant::now();
        action().with_context(|| format!("step `{name}` failed"))?;
        timings.push((name.to_owned(), begun.elapsed()));
        Ok(())
    };
    let cargo = |args: &[&str]| run(cmd("cargo", args));
    let wasm = ["--target", WASM_TARGET];
    let deny_doc_warnings =
        |args: &[&str]| run(cmd("cargo", args).env("RUSTDOCFLAGS", "-D warnings"));

    step("install tools", &mut || {
        ensure_wasm_tools()?;
        ensure_wasm_pack()?;
        autobahn::ensure_kosoku()?;
        ensure_debian_packages()
    })?;
    step("format", &mut || cargo(&["fmt", "--all", "--check"]))?;
    step("clippy (native)", &mut || {
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    step("clippy (wasm32)", &mut || {
        // Without and with the `WebSocketStream` transport, which is behind a feature.
        for features in [&[][..], &["--features", "web-socket-stream"][..]] {
            cargo(
                &[
                    &["clippy", "-p", CLIENT, "--all-targets"],
                    &wasm[..],
                    features,
                    &["--", "-D", "warnings"],
                ]
                .concat(),
            )?;
        }
        Ok(())
    })?;
    step("docs", &mut || {
        deny_doc_warnings(&["doc", "--workspace", "--no-deps"])?;
        let features = ["--features", "web-socket-stream"];
        deny_doc_warnings(&[&["doc", "-p", CLIENT, "--no-deps"], &wasm[..], &features].concat())
    })?;
    let mut tally = Tally::default();
    step("native tests", &mut || {
        let args = ["test", "--workspace", "--exclude", "e2e"];
        // The nginx test skips itself where nginx is missing; here it was installed.
        run_tests(cmd("cargo", &args).env("REQUIRE_NGINX", "1"), &mut tally)
    })?;
    step(
        "transport suite, natively on tokio-tungstenite",
        &mut || {
            // The suite the browser runs too (`client/tests/transports.rs`), against the same
            // server. One test at a time, as in the browser: `!outage` affects every connection.
            let server = EchoServer::start("debug", &BROWSER_TEST_SERVER, "warn")?;
            let args = [
                "test",
                "-p",
                CLIENT,
                "--test",
                "transports",
                "--",
                "--include-ignored",
                "--test-threads=1",
            ];
            run_tests(
                cmd("cargo", &args).env("ECHO_SERVER_URL", &server.url),
                &mut tally,
            )?;
            // The README's program, natively, against the same server.
            let example = ["run", "-q", "-p", CLIENT, "--example", "hello", "--"];
            let out = cmd("cargo", &example).arg(&server.url).output()?;
            let reply = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() || reply.trim() != "Received:  Hello, world!" {
                bail!("the hello example answered {reply:?} ({})", out.status);
            }
            Ok(())
        },
    )?;
    step("build the client", &mut build_client)?;
    step(
        "wasm tests in headless Chromium, through wasm-pack",
        &mut || {
            // The server the README's `wasm-pack test` line expects, on a port of its own.
            let server = EchoServer::start("debug", &BROWSER_TEST_SERVER, "warn")?;
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
            run_tests(test.env("ECHO_SERVER_URL", &server.url), &mut tally)?;
            // The same suite on `WebSocketStream` (the `transports` target, built to ask for it).
            let mut stream = wasm_test("transports", "60");
            stream
                .args(["--features", "web-socket-stream"])
                .env("WS_TRANSPORT", "stream");
            run_tests(stream.env("ECHO_SERVER_URL", &server.url), &mut tally)?;
            // `WebSocketStream` used the way a hostile or careless application would (about 10 s).
            let mut hostile = wasm_test("hostile_stream", "120");
            hostile
                .args(["--features", "web-socket-stream"])
                .env("WS_TRANSPORT", "stream");
            run_tests(hostile.env("ECHO_SERVER_URL", &server.url), &mut tally)?;
            // Receive backpressure, measured: the page's memory under `!flood`.
            let mut flood = wasm_test("backpressure", "120");
            flood.args(["--features", "web-socket-stream"]);
            run_tests(flood.env("ECHO_SERVER_URL", &server.url), &mut tally)?;
            // The liveness defaults take their time (35 s).
            let mut defaults = ignored_wasm_test("defaults", "120");
            run_tests(defaults.env("ECHO_SERVER_URL", &server.url), &mut tally)
        },
    )?;
    step("Autobahn client cases, on each transport", &mut || {
        // One test runs every case in turn: minutes, not the default 20 s.
        let classic = ignored_wasm_test("autobahn", "900");
        // The whole run gets 900 s; a page of one case, or of the reports, 90 s (a case that
        // does not close is abandoned after 30 s).
        let stream = |timeout_secs| {
            let mut test = wasm_test("autobahn", timeout_secs);
            test.args(["--features", "web-socket-stream"])
                .env("WS_TRANSPORT", "stream")
                .args(["--", "--include-ignored"]);
            test
        };
        let native = ["test", "-p", CLIENT, "--test", "autobahn"];
        let mut native = cmd("cargo", &native);
        native.args(["--", "--include-ignored"]);
        let crashing = &autobahn::CRASH_CHROMIUM_ON_STREAM[..];
        let runs = [
            (
                "wasm-websocket",
                "client",
                "in Chromium on WebSocket",
                classic,
                &[][..],
            ),
            // Without the cases that can crash Chromium's renderer: they run below.
            (
                "wasm-websocket-stream",
                "client-stream",
                "in Chromium on WebSocketStream",
                stream("900"),
                crashing,
            ),
            (
                "wasm-websocket-native",
                "client-native",
                "natively",
                native,
                &[][..],
            ),
        ];
        for (agent, dir, transport, mut test, excluded) in runs {
            // A fuzzing server for each run: it stops once its reports are written.
            let reports = target_dir().join("autobahn").join(dir);
            let cases = autobahn::client_cases();
            let begun = Instant::now();
            let fuzzing = autobahn::FuzzingServer::start(&reports, &cases, excluded)?;
            test.env("AUTOBAHN_URL", &fuzzing.url);
            // A crash here is a case missing from CRASH_CHROMIUM_ON_STREAM, or news: say so.
            if !run_tests_unless_tab_crashed(test, &mut tally)? {
                println!(
                    "tests: {} passed, {} failed",
                    tally.passed,
                    tally.failed + 1
                );
                bail!(
                    "Chromium's renderer crashed during the Autobahn client cases {transport}, \
                     outside autobahn::CRASH_CHROMIUM_ON_STREAM (see ARCHITECTURE.md, \
                     \"Transports\", and {})",
                    reports.display()
                );
            }
            let report = autobahn::Report::read(&reports, agent)?;
            let took = begun.elapsed().as_secs();
            eprintln!(
                "Autobahn, client {transport} ({took} s): {}",
                report.summary()
            );
            // Natively no browser decides anything: every FAILED case is ours.
            let native = agent.ends_with("native");
            let ours: Vec<&String> = (report.failed.iter())
                .filter(|case| native || !autobahn::DECIDED_BY_CHROMIUM.contains(&case.as_str()))
                .collect();
            if !ours.is_empty() {
                bail!(
                    "Autobahn cases FAILED by the client {transport}: {ours:?} (see {})",
                    reports.display()
                );
            }
        }
        // On `WebSocketStream`, each case that can crash Chromium's renderer in a page of its
        // own, then a page that has the reports written: a crash costs that page only, and
        // the fuzzing server judges the case from what reached it all the same.
        let begun = Instant::now();
        let reports = target_dir().join("autobahn").join("client-stream-crashing");
        let cases: Vec<String> = crashing.iter().map(|case| case.to_string()).collect();
        let fuzzing = autobahn::FuzzingServer::start(&reports, &cases, &[])?;
        let mut crashed = 0;
        for case in 1..=cases.len() {
            let mut test = stream("90");
            test.env("AUTOBAHN_URL", &fuzzing.url)
                .env("AUTOBAHN_CASE", case.to_string());
            if !run_tests_unless_tab_crashed(test, &mut tally)? {
                crashed += 1;
            }
        }
        let mut report_page = stream("90");
        report_page
            .env("AUTOBAHN_URL", &fuzzing.url)
            .env("AUTOBAHN_CASE", "report");
        run_tests(report_page, &mut tally)?;
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
    })?;
    step("Autobahn server cases", &mut || {
        let (report, reports) = autobahn_server(&[], "server")?;
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
    })?;
    step("Autobahn server cases with permessage-deflate", &mut || {
        // Every reply compressed (threshold 0): kosoku's compression cases (12.x, 13.x) fail
        // on an uncompressed echo, which RFC 7692 allows.
        let flags = ["--deflate", "--deflate-threshold", "0"];
        let (report, reports) = autobahn_server(&flags, "server-deflate")?;
        eprintln!("Autobahn, echo server with --deflate: {}", report.summary());
        report.require_all_passed(autobahn::CASES, &reports)
    })?;
    step("Python websockets client against --deflate", &mut || {
        let python = ensure_python_websockets()?;
        let args = ["--addr", "127.0.0.1:0", "--prefix", "", "--deflate"];
        let server = EchoServer::start("debug", &args, "warn")?;
        let script = root().join("tests/interop/websockets_client.py");
        run(Command::new(python).arg(script).arg(&server.url))
    })?;
    step("wasm-pack build", &mut || {
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
    })?;
    step("publish dry runs", &mut || {
        for package in [CLIENT, "echo-server"] {
            let args = ["publish", "--dry-run", "--allow-dirty", "-p", package];
            run(cmd("cargo", &args))?;
        }
        Ok(())
    })?;
    step("end-to-end page test", &mut || {
        run_tests(cmd("cargo", &["test", "-p", "e2e"]), &mut tally)
    })?;

    eprintln!();
    for (name, took) in &timings {
        eprintln!("{:>7.1} s  {name}", took.as_secs_f64());
    }
    eprintln!("{:>7.1} s  in all", started.elapsed().as_secs_f64());
    // The closing line CI reads: the tests of every runner above, added up.
    println!("tests: {} passed, {} failed", tally.passed, tally.failed);
    Ok(())
}

/// Autobahn's fuzzing client against a debug echo server with `flags`, a pure echo with room
/// for the suite's 16 MiB messages; its report, and where it was written (under
/// `target/autobahn/DIR`).
fn autobahn_server(flags: &[&str], dir: &str) -> Result<(autobahn::Report, PathBuf)> {
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
    autobahn::run_fuzzing_client(addr, &reports)?;
    let report = autobahn::Report::read(&reports, addr)?;
    Ok((report, reports))
}

/// `cargo test` of one test target of the client in headless Chromium, with the tests that
/// are ignored unless asked for (they take long, or need a server of their own), each given
/// `timeout_secs`.
fn ignored_wasm_test(target: &str, timeout_secs: &str) -> Command {
    let mut test = wasm_test(target, timeout_secs);
    test.args(["--", "--include-ignored"]);
    test
}

/// `cargo test` of one test target of the client in headless Chromium, each test given
/// `timeout_secs`; arguments for cargo may follow.
fn wasm_test(target: &str, timeout_secs: &str) -> Command {
    let mut test = cmd(
        "cargo",
        &[
            "test",
            "-p",
            CLIENT,
            "--target",
            WASM_TARGET,
            "--test",
            target,
        ],
    );
    test.envs(test_support::browser::WASM_TEST_RUNNER_ENV)
        .env("WASM_BINDGEN_TEST_TIMEOUT", timeout_secs);
    test
}

/// Runs a test command like [`run`], passing its output through, and adds up the passed and
/// failed counts of every `test result:` line it prints.
fn run_tests(mut command: impl BorrowMut<Command>, tally: &mut Tally) -> Result<()> {
    let command = command.borrow_mut();
    eprintln!("$ {}", describe(command));
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", describe(command)))?;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        tally.add(&line);
    }
    let status = child.wait()?;
    if !status.success() {
        // The closing line, now: the steps after this one do not run. A runner that failed
        // without a summary (it did not build, or crashed) counts as one failure.
        println!(
            "tests: {} passed, {} failed",
            tally.passed,
            tally.failed.max(1)
        );
        bail!("`{}` failed ({status})", describe(command));
    }
    Ok(())
}

/// Like [`run_tests`], for tests in headless Chromium whose page may crash the renderer:
/// `Ok(false)` when it crashed, an error for any other failure. wasm-bindgen-test-runner says
/// "tab crashed" only in its debug log (otherwise only "missing field `chunk`"), so that log is
/// asked for and read here, and the rest of its stderr passed on.
fn run_tests_unless_tab_crashed(mut command: Command, tally: &mut Tally) -> Result<bool> {
    command.env(
        "RUST_LOG",
        "wasm_bindgen_cli::wasm_bindgen_test_runner::headless=debug",
    );
    eprintln!("$ {}", describe(&command));
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", describe(&command)))?;
    let stderr = BufReader::new(child.stderr.take().expect("piped"));
    let crashed = std::thread::spawn(move || {
        let mut crashed = false;
        // The log's records are one line each (the driver's answers are JSON).
        for line in stderr.lines().map_while(Result::ok) {
            crashed |= line.contains("tab crashed");
            if !line.contains(" DEBUG ") {
                eprintln!("{line}");
            }
        }
        crashed
    });
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        tally.add(&line);
    }
    let status = child.wait()?;
    let crashed = crashed.join().unwrap_or(false);
    if status.success() {
        return Ok(true);
    }
    if crashed {
        eprintln!("(Chromium's renderer crashed: \"tab crashed\")");
        return Ok(false);
    }
    println!(
        "tests: {} passed, {} failed",
        tally.passed,
        tally.failed.max(1)
    );
    bail!("`{}` failed ({status})", describe(&command));
}

/// Test counts over all the test runs of `cargo xtask test`.
#[derive(Debug, Default)]
struct Tally {
    passed: u64,
    failed: u64,
}

impl Tally {
    /// Counts a libtest summary: `test result: ok. 7 passed; 0 failed; ...`.
    fn add(&mut self, line: &str) {
        let Some(counts) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in counts.split([';', '.']) {
            let mut words = part.split_whitespace();
            match (words.next().map(str::parse::<u64>), words.next()) {
                (Some(Ok(n)), Some("passed")) => self.passed += n,
                (Some(Ok(n)), Some("failed")) => self.failed += n,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_adds_libtest_and_wasm_bindgen_summaries() {
        let mut tally = Tally::default();
        tally.add("test result: ok. 7 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
        tally.add("test result: FAILED. 5 passed; 1 failed; 0 ignored; 0 filtered out");
        tally.add("test something ... ok");
        assert_eq!((tally.passed, tally.failed), (12, 1));
    }
}
