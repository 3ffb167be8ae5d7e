//! Network namespaces for the fault tests: a client namespace joined to each server's
//! namespace by a veth pair of its own, the real `wsecho` started inside a server namespace
//! (`ip netns exec`), and the client run on a thread that entered the client namespace
//! (`setns`), so that every socket its runtime makes is there. Everything a lab made is
//! removed when it is dropped, also when a test fails: the servers are killed, then the
//! namespaces deleted, which deletes their veth ends and iptables rules with them.
//!
//! Names are unique per process (`wsnf-PID-CASE-ROLE`); namespaces left by a process that
//! was killed before it could clean up are deleted by the next run.

use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use test_support::Spawned;

/// The namespaces' names start with this, then the process id.
const PREFIX: &str = "wsnf-";
/// iptables, installed by `cargo xtask test install`.
const IPTABLES: &str = "/usr/sbin/iptables";

/// A network namespace, deleted when dropped with everything still running in it.
pub struct Netns {
    pub name: String,
}

impl Netns {
    fn create(name: String) -> Result<Netns, String> {
        run("ip", &["netns", "add", &name])?;
        let netns = Netns { name };
        netns.ip(&["link", "set", "lo", "up"]);
        Ok(netns)
    }

    /// `ip -n NAME ARGS`; panics if it fails.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all).unwrap();
    }

    /// Runs `program ARGS` in this namespace: [`exec_in`].
    pub fn exec(&self, program: &str, args: &[&str]) -> String {
        exec_in(&self.name, program, args)
    }

    /// Adds an iptables rule in this namespace: [`iptables_in`].
    pub fn iptables(&self, rule: &str) {
        iptables_in(&self.name, rule)
    }
}

/// Runs `program ARGS` in the namespace `netns` (`ip netns exec`); its stdout. Panics if it
/// fails. For the client's thread, which has the namespaces' names, not the lab.
pub fn exec_in(netns: &str, program: &str, args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", netns, program];
    all.extend_from_slice(args);
    output("ip", &all).unwrap()
}

/// Adds an iptables rule in the namespace `netns`, e.g. `-A INPUT -i IF -j DROP`.
pub fn iptables_in(netns: &str, rule: &str) {
    let mut args = vec!["-w"];
    args.extend(rule.split_whitespace());
    exec_in(netns, IPTABLES, &args);
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove_netns(&self.name);
    }
}

/// Kills what still runs in namespace `name`, then deletes it.
fn remove_netns(name: &str) {
    if let Ok(pids) = output("ip", &["netns", "pids", name]) {
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(Stdio::null())
        .status();
}

/// Runs `program ARGS`, with its stderr as the error when it fails.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    output(program, args).map(drop)
}

fn output(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|error| format!("{program}: {error}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{program} {}: {}", args.join(" "), stderr.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The veth pairs made in this process, for unique interface names.
static LINKS: AtomicUsize = AtomicUsize::new(0);

/// A client namespace and the server namespaces linked to it.
pub struct Lab {
    case: String,
    /// Dropped after the servers (fields drop in order), so the servers are killed by
    /// `Spawned` first.
    pub client: Netns,
    servers: Vec<Netns>,
}

/// A server's end of the lab: its namespace's index, the addresses on its link, and the
/// client's interface towards it (for iptables and `ip link`).
pub struct Link {
    pub server_ip: String,
    pub client_if: String,
    pub server_if: String,
    index: usize,
}

impl Lab {
    /// A lab for `case`: its client namespace, no server yet. `None` after saying why when
    /// network namespaces cannot be made here (not root, no `ip`, no iptables); a failure
    /// instead when `REQUIRE_NETNS` is set, as `cargo xtask test netfaults` sets it.
    pub fn new(case: &str) -> Option<Lab> {
        match Lab::try_new(case) {
            Ok(lab) => Some(lab),
            Err(why) => {
                assert!(std::env::var_os("REQUIRE_NETNS").is_none(), "{why}");
                eprintln!("SKIPPED: {why}; run as root after `cargo xtask test install`");
                None
            }
        }
    }

    fn try_new(case: &str) -> Result<Lab, String> {
        let uid = output("id", &["-u"])?;
        if uid.trim() != "0" {
            return Err("network namespaces need root".to_owned());
        }
        if !Path::new(IPTABLES).exists() {
            return Err(format!("{IPTABLES} is missing"));
        }
        remove_stale();
        let case = format!("{PREFIX}{}-{case}", std::process::id());
        let client = Netns::create(format!("{case}-c"))?;
        Ok(Lab {
            case,
            client,
            servers: Vec::new(),
        })
    }

    /// A new server namespace joined to the client's by a veth pair, and its addresses:
    /// `10.9.N.1` on the client's side, `10.9.N.2` on the server's.
    pub fn link(&mut self) -> Link {
        let index = self.servers.len();
        let netns = Netns::create(format!("{}-s{index}", self.case)).unwrap();
        let n = LINKS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let (client_if, server_if) = (format!("nf{pid}x{n}c"), format!("nf{pid}x{n}s"));
        let add = [
            "link", "add", &client_if, "type", "veth", "peer", "name", &server_if,
        ];
        run("ip", &add).unwrap();
        run(
            "ip",
            &["link", "set", &client_if, "netns", &self.client.name],
        )
        .unwrap();
        run("ip", &["link", "set", &server_if, "netns", &netns.name]).unwrap();
        let subnet = index + 1;
        let (client_ip, server_ip) = (format!("10.9.{subnet}.1"), format!("10.9.{subnet}.2"));
        self.client
            .ip(&["addr", "add", &format!("{client_ip}/24"), "dev", &client_if]);
        netns.ip(&["addr", "add", &format!("{server_ip}/24"), "dev", &server_if]);
        self.client.ip(&["link", "set", &client_if, "up"]);
        netns.ip(&["link", "set", &server_if, "up"]);
        self.servers.push(netns);
        Link {
            server_ip,
            client_if,
            server_if,
            index,
        }
    }

    /// The namespace of `link`'s server.
    pub fn server_netns(&self, link: &Link) -> &Netns {
        &self.servers[link.index]
    }

    /// Starts `wsecho ARGS` in `link`'s server namespace, bound to its address there, on a
    /// port of its choosing, logging at `info`.
    pub fn start_server(&self, link: &Link, args: &[&str]) -> EchoServer {
        self.start_server_on(link, 0, "info", args)
    }

    /// Starts `wsecho ARGS` in `link`'s server namespace, bound to `port` of its address
    /// there (the namespace is the lab's alone, so a fixed port is free), logging at
    /// `level` (`RUST_LOG`).
    pub fn start_server_on(
        &self,
        link: &Link,
        port: u16,
        level: &str,
        args: &[&str],
    ) -> EchoServer {
        let log = std::env::temp_dir().join(format!("{}-s{}.log", self.case, link.index));
        let stderr = File::create(&log).unwrap();
        let addr = format!("{}:{port}", link.server_ip);
        let netns = &self.servers[link.index].name;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", netns, env!("CARGO_BIN_EXE_wsecho")])
            .args(["--addr", &addr])
            .args(args)
            .env("RUST_LOG", level)
            .env("NO_COLOR", "1")
            .stderr(stderr);
        let process = Spawned::start(&mut command).expect("wsecho starts in its namespace");
        let url = process.url.clone();
        EchoServer {
            _process: process,
            url,
            log: ServerLog(log),
        }
    }

    /// Runs `client` on a thread of its own in the client namespace, on a current-thread
    /// tokio runtime with a `LocalSet` (the client's socket is `!Send`), and returns what it
    /// returns; its panic is this thread's.
    pub fn run_client<F, Fut, T>(&self, client: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let netns = PathBuf::from("/run/netns").join(&self.client.name);
        let thread = std::thread::spawn(move || {
            let file = File::open(&netns).expect("the client namespace");
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(tokio::task::LocalSet::new().run_until(client()))
        });
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The servers' namespaces first, while the client's still holds its veth ends.
        self.servers.clear();
    }
}

/// Deletes the namespaces of earlier runs whose process is gone (killed before it could
/// clean up).
fn remove_stale() {
    let Ok(list) = output("ip", &["netns", "list"]) else {
        return;
    };
    for name in list
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        if !Path::new("/proc").join(pid).exists() {
            remove_netns(name);
        }
    }
}

/// A `wsecho` process in a server namespace, killed when dropped.
pub struct EchoServer {
    _process: Spawned,
    pub url: String,
    pub log: ServerLog,
}

/// A server's log (stderr, at `info`) in a file: the server's own word on each connection's
/// end. Cheap to clone into the client's thread.
#[derive(Clone)]
pub struct ServerLog(PathBuf);

impl ServerLog {
    /// The log so far.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_default()
    }

    /// How many connections the server has let go (its `connection closed` lines).
    pub fn connections_closed(&self) -> usize {
        self.text().matches("connection closed").count()
    }

    /// Waits, looking every 5 ms, until the server has let `count` connections go: when it
    /// was seen, or `None` after `limit`.
    pub async fn closed_by(&self, count: usize, limit: Duration) -> Option<Instant> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.connections_closed() >= count {
                return Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log.0);
    }
}
