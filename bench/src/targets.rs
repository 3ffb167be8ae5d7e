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

/// glibc's tunables that keep `memcpy`, `memmove` and `memset` off `rep movsb` and
/// `rep stosb` at every size (glibc 2.33 and later; an older glibc ignores them).
pub const VECTOR_STRINGS: &str =
    "glibc.cpu.x86_rep_movsb_threshold=1000000000:glibc.cpu.x86_rep_stosb_threshold=1000000000";

impl Target {
    pub fn start(&self) -> Result<Running> {
        self.spawn(Command::new(&self.program))
    }

    /// Starts the target under callgrind, which writes its counts to `out` when it ends.
    ///
    /// glibc's `memcpy` and `memset` are kept to their vector loops at every size
    /// ([`VECTOR_STRINGS`]): from about 2 KiB on they are `rep movsb` and `rep stosb`, which
    /// callgrind counts a byte at a time, though a CPU does such a string about as fast as the
    /// vector loop, which callgrind counts about three instructions for 32 bytes. Counted the
    /// glibc way, a 16 KiB copy was 16,400 instructions (1,560 as a vector loop) and half of
    /// a 16 KiB message's 28,000; and a change that zero-filled a 16 KiB window once instead
    /// of 2,000 bytes eight times looked twice as dear, where it took fewer instructions and
    /// less CPU time (issue 31).
    pub fn start_under_callgrind(&self, out: &Path) -> Result<Running> {
        let mut valgrind = Command::new("valgrind");
        valgrind
            .env("GLIBC_TUNABLES", VECTOR_STRINGS)
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
