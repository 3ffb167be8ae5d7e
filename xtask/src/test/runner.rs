//! How the test command runs test runners: their output passed through and their
//! `test result:` lines added up ([`Tally`]), and the wasm-bindgen suites as `cargo test` on
//! the wasm32 target ([`wasm_test`]).

use std::borrow::BorrowMut;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;

use anyhow::{Context, Result, bail};

use test_support::browser::{DRIVER_VARIABLES, Engine};

use crate::{CLIENT, Killed, WASM_TARGET, cmd, describe};

/// Runs a test command like [`run`](crate::run), passing its output through, and adds up the passed and
/// failed counts of every `test result:` line it prints.
pub fn run_tests(mut command: impl BorrowMut<Command>, tally: &mut Tally) -> Result<()> {
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
pub fn run_tests_unless_tab_crashed(mut command: Command, tally: &mut Tally) -> Result<bool> {
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

/// A test runner started beside a step's others, for a suite that mostly waits (the liveness
/// defaults wait a minute on timers): its output is held, and printed and counted when it is
/// [joined](Self::join), so that it does not interleave with theirs. One dropped without
/// being joined (a step before the join failed) is killed.
pub struct Beside {
    what: String,
    child: Killed,
    stdout: JoinHandle<Vec<String>>,
    stderr: JoinHandle<Vec<String>>,
}

impl Beside {
    pub fn start(mut command: impl BorrowMut<Command>) -> Result<Beside> {
        let command = command.borrow_mut();
        let what = describe(command);
        eprintln!("$ {what} (beside the next ones)");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {what}"))?;
        let stdout = hold(child.stdout.take().expect("piped"));
        let stderr = hold(child.stderr.take().expect("piped"));
        Ok(Beside {
            what,
            child: Killed(child),
            stdout,
            stderr,
        })
    }

    /// Waits for the runner, prints what it printed, and adds up its results.
    pub fn join(mut self, tally: &mut Tally) -> Result<()> {
        let status = self.child.wait()?;
        eprintln!("$ {} (run beside the others)", self.what);
        for line in self.stderr.join().unwrap_or_default() {
            eprintln!("{line}");
        }
        for line in self.stdout.join().unwrap_or_default() {
            println!("{line}");
            tally.add(&line);
        }
        if !status.success() {
            let failed = tally.failed.max(1);
            println!("tests: {} passed, {failed} failed", tally.passed);
            bail!("`{}` failed ({status})", self.what);
        }
        Ok(())
    }
}

/// The lines `pipe` gives until it closes, read on a thread of their own.
fn hold(pipe: impl Read + Send + 'static) -> JoinHandle<Vec<String>> {
    std::thread::spawn(move || BufReader::new(pipe).lines().map_while(Result::ok).collect())
}

/// Test counts over all the test runs of `cargo xtask test`.
#[derive(Debug, Default)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
}

impl Tally {
    /// Counts a libtest summary: `test result: ok. 7 passed; 0 failed; ...`.
    pub fn add(&mut self, line: &str) {
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

/// `cargo test` of one test target of the client in headless Chromium, with the tests that
/// are ignored unless asked for (they take long, or need a server of their own), each given
/// `timeout_secs`.
pub fn ignored_wasm_test(target: &str, timeout_secs: &str) -> Command {
    let mut test = wasm_test(target, timeout_secs);
    test.args(["--", "--include-ignored"]);
    test
}

/// `cargo test` of one test target of the client in headless Chromium, each test given
/// `timeout_secs`; arguments for cargo may follow.
pub fn wasm_test(target: &str, timeout_secs: &str) -> Command {
    wasm_test_in(Engine::Chromium, target, timeout_secs)
}

/// `cargo test` of one test target of the client in `engine`, each test given
/// `timeout_secs`; arguments for cargo may follow.
pub fn wasm_test_in(engine: Engine, target: &str, timeout_secs: &str) -> Command {
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
    // The runner takes the first driver variable it finds: only this engine's is set.
    for variable in DRIVER_VARIABLES {
        test.env_remove(variable);
    }
    test.envs(engine.wasm_test_runner_env())
        .env("WASM_BINDGEN_TEST_TIMEOUT", timeout_secs);
    test
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

    #[test]
    fn a_runner_beside_the_others_is_killed_when_dropped_unjoined() {
        let beside = Beside::start(Command::new("sleep").arg("60")).unwrap();
        let pid = beside.child.id();
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        drop(beside);
        // Killed and reaped: no process of that id is left, not even a zombie.
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
