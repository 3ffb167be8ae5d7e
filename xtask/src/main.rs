//! Project automation, run as `cargo xtask COMMAND` (an alias in `.cargo/config.toml`).
//!
//! - `serve [--addr HOST:PORT]`: installs what the build needs, builds the page's wasm (`www/`,
//!   on the client library) into `www/pkg/`, and runs the echo server (default
//!   `127.0.0.1:1234`), which serves the page.
//! - `build`: only the first two steps.
//! - `bench`: builds for release and runs the benchmarks, writing BENCHMARKS.md; `bench
//!   SCENARIO...` (`1`, `4b`, `8`, ...) runs only those and replaces their sections there.
//! - `test`: everything CI checks, in order: formatting, clippy (native and wasm32), docs, the
//!   native tests (the nginx one included), the client's examples (built for both targets,
//!   and run against the server), the wasm-bindgen tests in headless Chromium against a
//!   live server (through `wasm-pack test`, as the README shows), the Autobahn client cases run
//!   by the client on each transport (in Chromium on `WebSocket` and on `WebSocketStream`, and
//!   natively), the Autobahn server cases against the echo server, the
//!   `wasm-pack` build of the page, `cargo publish --dry-run` of the two published crates, and
//!   the end-to-end page test.
//!   It ends with one line, `tests: N passed, N failed`, over every test runner it ran; a
//!   failing test runner ends it at once, with that line and its failures.
//!   `test --list` names its steps; `test STEP...` runs only those.
//!
//! Every install step checks first, so a second run installs nothing.
//!
//! A module per command, as rust-analyzer's xtask is split: `build`, `serve`, `bench` and
//! `test` (the test command's steps); `tools` installs what they need, `wsecho` is the
//! server they start, and `autobahn` drives kosoku. What they all use (the workspace's paths,
//! running a command and echoing it) is here.

use std::borrow::BorrowMut;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod autobahn;
mod bench;
mod build;
mod serve;
mod test;
#[cfg(test)]
mod tidy;
mod tools;
mod wsecho;

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const CLIENT: &str = "wasm-websocket";
/// The permessage-deflate crate the client and the server share.
const DEFLATE: &str = "ws-deflate";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve"] => serve::serve("127.0.0.1:1234"),
        ["serve", "--addr", addr] => serve::serve(addr),
        ["build"] => build::build_client(),
        ["test", steps @ ..] => test::test(steps),
        ["bench", scenarios @ ..] => bench::bench(scenarios),
        _ => {
            eprintln!(
                "usage: cargo xtask serve [--addr HOST:PORT] | build | test [--list | STEP...] | bench [SCENARIO...]"
            );
            std::process::exit(2);
        }
    }
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// A command run from the workspace root.
fn cmd(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args).current_dir(root());
    command
}

/// Runs a command, echoing it first, and fails if it fails.
fn run(mut command: impl BorrowMut<Command>) -> Result<()> {
    let command = command.borrow_mut();
    eprintln!("$ {}", describe(command));
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", describe(command)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(command));
    }
    Ok(())
}

fn describe(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// A child process, killed (and reaped) when dropped: a server or test runner that a failing
/// step leaves behind does not outlive the command.
struct Killed(std::process::Child);

impl std::ops::Deref for Killed {
    type Target = std::process::Child;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Killed {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The output of a command, or `None` when it cannot run or fails.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The version of `package` that Cargo.lock resolved.
fn locked_version(package: &str) -> Result<String> {
    locked_version_in(&root().join("Cargo.lock"), package)
}

/// The version of `package` that the lock file `lock` resolved.
fn locked_version_in(lock: &Path, package: &str) -> Result<String> {
    let lock =
        std::fs::read_to_string(lock).with_context(|| format!("reading {}", lock.display()))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{package}\"") {
            let version = lines.next().unwrap_or_default();
            if let Some(version) = version.strip_prefix("version = \"") {
                return Ok(version.trim_end_matches('"').to_owned());
            }
        }
    }
    bail!("{package} is not in the lock file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_bindgen_is_locked_not_pinned() {
        // The CLI follows Cargo.lock; a `=` pin in a library would bind its users too.
        let version = locked_version("wasm-bindgen").unwrap();
        assert!(version.starts_with("0.2."), "{version}");
        for manifest in ["client/Cargo.toml", "www/Cargo.toml"] {
            let text = std::fs::read_to_string(root().join(manifest)).unwrap();
            assert!(
                !text.contains("wasm-bindgen = \"="),
                "{manifest} pins wasm-bindgen"
            );
        }
    }

    #[test]
    fn the_peers_lock_has_the_cli_wasm_bindgen() {
        // The comparison's programs (bench/peers, a workspace of their own) are bound by the
        // same CLI as the page.
        let peers = root().join("bench/peers/Cargo.lock");
        assert_eq!(
            locked_version_in(&peers, "wasm-bindgen").unwrap(),
            locked_version("wasm-bindgen").unwrap(),
            "run `cargo update -p wasm-bindgen --precise VERSION` in bench/peers"
        );
    }
}
