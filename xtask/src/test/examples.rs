//! The `examples` step: the client's examples (`client/examples/`) built for both targets, and
//! each run against a real echo server, its output checked.
//!
//! - Those whose doc comment shows their output (a ```` ```text ```` block) are run natively
//!   and must print exactly that: what a newcomer is promised is what is checked.
//! - `reconnect` is driven through its stdin while the server really stops and starts again
//!   on the same port, and must reconnect and deliver what was sent meanwhile.
//! - `worker`, browser only, runs as its doc comment says (wasm-bindgen, its page, the server
//!   with `--www`) in headless Chromium, whose console must show the worker's replies.
//!
//! Every run has a deadline: an example that hangs is killed and fails the step.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use test_support::browser::{CHROMIUM, chromium_args};

use crate::wsecho::EchoServer;
use crate::{CLIENT, Killed, WASM_TARGET, cmd, root, run, target_dir};

/// How long any one example may take: they take well under a second.
const DEADLINE: Duration = Duration::from_secs(30);

pub fn examples() -> Result<()> {
    // Every example, on both targets: one build each, with every feature an example may
    // require, so that none is skipped. Not `fuzzing`: it puts the simulated transport of the
    // client's own tests in the native one's place.
    let features = "json web-socket-stream";
    let build = ["build", "-p", CLIENT, "--examples", "--features", features];
    run(cmd("cargo", &build))?;
    run(cmd("cargo", &build).args(["--target", WASM_TARGET]))?;
    let server = EchoServer::start("debug", &["--addr", "127.0.0.1:0"], "warn")?;
    for name in ["hello", "callbacks", "streams", "codec"] {
        transcribed(name, &server.url)?;
    }
    // Typed JSON needs text back as it was sent, without the server's reply prefix.
    let pure = EchoServer::start("debug", &["--addr", "127.0.0.1:0", "--prefix", ""], "warn")?;
    transcribed("json", &pure.url)?;
    reconnect()?;
    worker()
}

/// Runs example `name` natively against `url`: it must print the ```` ```text ```` block of
/// its doc comment, and exit successfully.
fn transcribed(name: &'static str, url: &str) -> Result<()> {
    let expected = transcript_in_docs(name)?;
    let printed = Example::start(name, url)?.finish()?;
    ensure!(
        printed == expected,
        "the {name} example printed {printed:#?}, its docs say {expected:#?}"
    );
    eprintln!("example {name}: {} lines, as its docs say", printed.len());
    Ok(())
}

/// `reconnect`, through a real restart of the server: a line before, the server stopped
/// (SIGTERM: it closes its connections with 1001 and exits), a line sent while it is away and
/// at least one attempt refused, the server started again on the same port, and then the line
/// sent meanwhile must come back.
fn reconnect() -> Result<()> {
    let mut server = EchoServer::start("debug", &["--addr", "127.0.0.1:0"], "warn")?;
    let addr = server.process.addr().to_owned();
    let mut example = Example::start("reconnect", &server.url)?;
    example.expect(|line| line == "open")?;
    example.type_line("before")?;
    example.expect(|line| line == r#"received "Received:  before""#)?;

    server.process.terminate()?;
    example.expect(|line| line.starts_with("closed (1001, Remote), now reconnecting"))?;
    example.type_line("meanwhile")?;
    example.expect(|line| line.starts_with(r#"queued "meanwhile""#))?;
    example.expect(|line| line.starts_with("closed (1006, HandshakeFailed)"))?;

    // The same binary again, on the same port, at once: no build in between.
    let www = root().join("www");
    let _server = EchoServer::start_built("debug", &["--addr", &addr], "warn", &www)?;
    example.expect(|line| line == "open")?;
    example.expect(|line| line == r#"received "Received:  meanwhile""#)?;
    // The end of its input: it closes for good, and exits.
    let rest = example.finish()?;
    ensure!(
        rest == ["closed (1000, Application), now closed"],
        "after its input ended, the reconnect example printed {rest:?}"
    );
    eprintln!("example reconnect: reconnected after the server's restart, the queued line sent");
    Ok(())
}

/// `worker`, as its doc comment says: its glue made by wasm-bindgen beside its page and
/// script, served by the echo server, opened in headless Chromium.
fn worker() -> Result<()> {
    let dir = target_dir().join("worker");
    let wasm = target_dir().join(format!("{WASM_TARGET}/debug/examples/worker.wasm"));
    let mut bindgen = cmd("wasm-bindgen", &["--target", "web", "--out-dir"]);
    run(bindgen.arg(dir.join("pkg")).arg(&wasm))?;
    let source = root().join("client/examples/worker");
    for file in ["index.html", "worker.js"] {
        std::fs::copy(source.join(file), dir.join(file))
            .with_context(|| format!("cannot copy {file} to {}", dir.display()))?;
    }
    let server = EchoServer::start_with_page("debug", &["--addr", "127.0.0.1:0"], "warn", &dir)?;
    let page = server.url.replacen("ws://", "http://", 1);

    let profile = target_dir().join("worker-chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    let mut chromium = Command::new(CHROMIUM);
    chromium
        .args(chromium_args(&profile))
        // The page's console, on stderr: `... CONSOLE ... "from the worker: ..."`.
        .args(["--enable-logging=stderr", "--v=0", &page])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // What its errors show: the page's console, not Chromium's own complaints.
    let mut browser = Running::spawn(chromium, |line| line.contains(":CONSOLE"))?;
    for wanted in ["Received:  from a worker", "closed (1000)"] {
        let line = format!("\"from the worker: {wanted}\"");
        browser
            .expect(|logged| logged.contains(&line))
            .context("the worker example in headless Chromium")?;
    }
    eprintln!("example worker: its page showed the replies, in headless Chromium");
    Ok(())
}

/// The lines of the ```` ```text ```` block in the doc comment of example `name`.
fn transcript_in_docs(name: &str) -> Result<Vec<String>> {
    let path = root().join(format!("client/examples/{name}.rs"));
    let source = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let docs = source.lines().map_while(|line| line.strip_prefix("//!"));
    let block: Vec<String> = docs
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .skip_while(|line| *line != "```text")
        .skip(1)
        .take_while(|line| *line != "```")
        .map(str::to_owned)
        .collect();
    ensure!(
        !block.is_empty(),
        "{} shows no ```text block of its output",
        path.display()
    );
    Ok(block)
}

/// An example running natively, with its stdin open.
struct Example {
    name: &'static str,
    running: Running,
    stdin: Option<ChildStdin>,
}

impl Example {
    fn start(name: &'static str, url: &str) -> Result<Example> {
        let binary = target_dir().join("debug/examples").join(name);
        let mut command = Command::new(&binary);
        command
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut running = Running::spawn(command, |_| true)?;
        let stdin = running.child.stdin.take();
        Ok(Example {
            name,
            running,
            stdin,
        })
    }

    fn type_line(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().expect("open until finish");
        writeln!(stdin, "{line}").with_context(|| format!("cannot write to {}", self.name))
    }

    fn expect(&mut self, wanted: impl Fn(&str) -> bool) -> Result<()> {
        (self.running.expect(wanted)).with_context(|| format!("the {} example", self.name))
    }

    /// Ends its input, and returns what it printed that was not expected yet, once it has
    /// exited, successfully, before the deadline.
    fn finish(mut self) -> Result<Vec<String>> {
        drop(self.stdin.take());
        let name = self.name;
        let printed = self
            .running
            .finish()
            .with_context(|| format!("the {name} example"))?;
        Ok(printed)
    }
}

/// A process whose output (stdout, or stderr when stdout is not piped) is read line by line
/// on a thread, killed when dropped, and given [`DEADLINE`] for everything.
struct Running {
    child: Killed,
    lines: Receiver<String>,
    /// Every line read so far, for the error that says what happened ...
    transcript: Vec<String>,
    /// ... which shows those for which this holds.
    shown: fn(&str) -> bool,
    deadline: Instant,
}

impl Running {
    fn spawn(mut command: Command, shown: fn(&str) -> bool) -> Result<Running> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {program}"))?;
        let output: Box<dyn std::io::Read + Send> = match child.stdout.take() {
            Some(stdout) => Box::new(stdout),
            None => Box::new(child.stderr.take().context("no output piped")?),
        };
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Running {
            child: Killed(child),
            lines,
            transcript: Vec::new(),
            shown,
            deadline: Instant::now() + DEADLINE,
        })
    }

    /// Reads lines until one is `wanted`.
    fn expect(&mut self, wanted: impl Fn(&str) -> bool) -> Result<()> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = wanted(&line);
                    self.transcript.push(line);
                    if found {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    bail!("timed out; it printed {:#?}", self.shown())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("it ended; it printed {:#?}", self.shown())
                }
            }
        }
    }

    fn shown(&self) -> Vec<&str> {
        let lines = self.transcript.iter().map(String::as_str);
        lines.filter(|line| (self.shown)(line)).collect()
    }

    /// The lines left to read once it has exited successfully.
    fn finish(&mut self) -> Result<Vec<String>> {
        let seen = self.transcript.len();
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.transcript.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    bail!("timed out; it printed {:#?}", self.shown())
                }
            }
        }
        // Its output ended: it exits now, or is about to.
        let status = self.child.wait()?;
        ensure!(
            status.success(),
            "it exited with {status}; it printed {:#?}",
            self.shown()
        );
        Ok(self.transcript.split_off(seen))
    }
}
