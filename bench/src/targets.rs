//! The servers under test: each started as a process of its own, pinned to the server's core,
//! so that its CPU time can be read.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use bench::Wire;
use bench::counters::{self, Snapshot};
use test_support::Spawned;

/// The fastest WebSocket baseline, which the targets compare with.
pub const FASTWEBSOCKETS: &str = "fastwebsockets";

/// One server under test, started as its own process so its CPU time can be read.
#[derive(Clone)]
pub struct Target {
    pub name: &'static str,
    pub program: PathBuf,
    pub args: &'static [&'static str],
    pub wire: Wire,
}

/// A target's process, killed when dropped.
pub struct Running {
    pub process: Spawned,
    pub addr: String,
}

/// Every target, from the binaries beside the benchmark's own in `dir`: the TCP floor first,
/// then the WebSocket baselines, ours last.
pub fn all(dir: &Path) -> [Target; 4] {
    [
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
    ]
}

impl Target {
    pub fn start(&self) -> Result<Running> {
        self.spawn(Command::new(&self.program))
    }

    /// Starts the target under callgrind, which writes its counts to `out` when it ends.
    pub fn start_under_callgrind(&self, out: &Path) -> Result<Running> {
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
    pub fn counters(&self) -> Result<Snapshot> {
        Ok(Snapshot::of(self.process.id())?)
    }

    /// The process's resident memory, from `/proc/PID/status`.
    pub fn rss_kib(&self) -> Result<u64> {
        Ok(self.process.status_kib("VmRSS")?)
    }
}
