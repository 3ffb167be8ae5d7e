//! The echo server that the commands start: the one `serve` runs, and those the test
//! command's browser suites and Autobahn runs talk to.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cmd, root, run, target_dir};

/// The flags of the server the client's browser tests run against (README, "The client
/// crate"), here on port 0: page origins on loopback (`--dev`), the test controls, and the
/// subprotocol the tests negotiate.
pub const BROWSER_TEST_SERVER: [&str; 7] = [
    "--addr",
    "127.0.0.1:0",
    "--dev",
    "--test-controls",
    "--protocol",
    "echo.v1",
    // Chromium offers permessage-deflate on every handshake: the browser suites run over it.
    "--deflate",
];

/// The echo server binary of one build profile, killed when dropped.
pub struct EchoServer {
    pub process: test_support::Spawned,
    pub url: String,
}

impl EchoServer {
    /// Starts the server of build profile `profile` (built first when it is the debug one)
    /// with `args` and reads the URL it listens on from the one line it prints; it serves the
    /// page (`www/`).
    pub fn start(profile: &str, args: &[&str], log: &str) -> Result<EchoServer> {
        Self::start_with_page(profile, args, log, &root().join("www"))
    }

    /// Like [`start`](Self::start), serving the page files in `www` instead.
    pub fn start_with_page(
        profile: &str,
        args: &[&str],
        log: &str,
        www: &Path,
    ) -> Result<EchoServer> {
        if profile == "debug" {
            run(cmd("cargo", &["build", "-p", "wsecho"]))?;
        }
        Self::start_built(profile, args, log, www)
    }

    /// Like [`start_with_page`](Self::start_with_page), without building it first: at once,
    /// as a restart is (cargo may wait for another build's lock, or rebuild).
    pub fn start_built(profile: &str, args: &[&str], log: &str, www: &Path) -> Result<EchoServer> {
        let binary = target_dir().join(profile).join("wsecho");
        let mut command = Command::new(&binary);
        command
            .args(args)
            .env("RUST_LOG", log)
            .arg("--www")
            .arg(www);
        let process = test_support::Spawned::start(&mut command)
            .with_context(|| format!("cannot start {}", binary.display()))?;
        eprintln!("listening on {}", process.url);
        Ok(EchoServer {
            url: process.url.clone(),
            process,
        })
    }

    pub fn wait(self) -> Result<()> {
        let status = self.process.wait()?;
        if !status.success() {
            bail!("the server exited with {status}");
        }
        Ok(())
    }
}
