//! Scenario 10: the client crate natively over HTTP/2 (issue 32). [`SOCKETS`] `wss://`
//! sockets of `wasm-websocket` (feature `http2`) from the load generator's one thread to our
//! server, as streams of one HTTP/2 connection against a TCP and TLS connection each: the
//! time to open them all at once, then the time for one round trip on each, all at once, and
//! the memory each side grew by while they were open. Each run against a fresh server with a
//! certificate made for the bench.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bench::counters;
use futures_util::StreamExt;
use test_support::Spawned;
use test_support::tls::Localhost;
use wasm_websocket::{Http2, HttpVersion, Message, WebSocket};

use crate::stats::Figure;

/// Sockets opened in each run.
pub const SOCKETS: usize = 1000;

/// Runs of each way, alternating.
const RUNS: usize = 5;

/// One way of opening the sockets.
struct Way {
    name: &'static str,
    http2: Http2,
    /// `--h2-max-streams`, or the server's default.
    max_streams: Option<&'static str>,
    version: HttpVersion,
}

const WAYS: [Way; 3] = [
    Way {
        name: "HTTP/1.1 (`Http2::Never`): a TCP and TLS connection each",
        http2: Http2::Never,
        max_streams: None,
        version: HttpVersion::Http11,
    },
    Way {
        name: "HTTP/2 (`Http2::Auto`), `--h2-max-streams 1000`: one connection",
        http2: Http2::Auto,
        max_streams: Some("1000"),
        version: HttpVersion::Http2,
    },
    Way {
        name: "HTTP/2, the server's default of 256 streams a connection",
        http2: Http2::Auto,
        max_streams: None,
        version: HttpVersion::Http2,
    },
];

/// What one run measured.
struct Run {
    connections: f64,
    open_ms: f64,
    round_trips_ms: f64,
    client_kib: f64,
    server_kib: f64,
}

/// The load generator's resident memory, in KiB.
fn own_rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS")?.parse()?)
}

/// Gives what the allocator holds free back to the system, so that a run's growth is its own.
fn trim() {
    // SAFETY: malloc_trim only releases free memory of glibc's heap.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn run(
    runtime: &tokio::runtime::Runtime,
    wsecho: &Path,
    pem: (&Path, &Path),
    tls: &Arc<rustls::ClientConfig>,
    way: &Way,
) -> Result<Run> {
    let mut command = Command::new(wsecho);
    command
        .args(["--addr", "127.0.0.1:0", "--prefix", ""])
        .arg("--tls-cert")
        .arg(pem.0)
        .arg("--tls-key")
        .arg(pem.1)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null());
    if let Some(streams) = way.max_streams {
        command.args(["--h2-max-streams", streams]);
    }
    if counters::can_pin() {
        counters::pin_command(&mut command, &[counters::SERVER_CORE]);
    }
    let server = Spawned::start(&mut command).context("cannot start wsecho")?;
    let port = server
        .addr()
        .rsplit(':')
        .next()
        .context("the port")?
        .to_owned();
    let url = format!("wss://localhost:{port}/");
    std::thread::sleep(Duration::from_millis(200));
    let (files_before, server_before) = (server.open_files()?, server.status_kib("VmRSS")?);
    trim();
    let client_before = own_rss_kib()?;
    let local = tokio::task::LocalSet::new();
    let (open, round_trips, sockets) = runtime.block_on(local.run_until(async {
        let started = Instant::now();
        let opening = (0..SOCKETS).map(|_| {
            let builder = WebSocket::builder(&url).tls_config(tls.clone());
            builder.http2(way.http2).open()
        });
        let sockets = futures_util::future::try_join_all(opening).await?;
        let open = started.elapsed();
        let started = Instant::now();
        let echoes = sockets.iter().map(|socket| async move {
            let mut messages = socket.messages();
            socket.send("hello")?;
            match messages.next().await {
                Some(Message::Text(text)) if text == "hello" => Ok(()),
                other => anyhow::bail!("expected the echo, got {other:?}"),
            }
        });
        futures_util::future::try_join_all(echoes).await?;
        anyhow::Ok((open, started.elapsed(), sockets))
    }))?;
    let client_after = own_rss_kib()?;
    let (files, server_after) = (server.open_files()?, server.status_kib("VmRSS")?);
    for socket in &sockets {
        ensure!(
            socket.http_version() == Some(way.version),
            "{}: a socket opened over {:?}",
            way.name,
            socket.http_version()
        );
    }
    runtime.block_on(local.run_until(async {
        let closing = sockets.iter().map(|socket| {
            let mut messages = socket.messages();
            let _ = socket.close();
            async move { while messages.next().await.is_some() {} }
        });
        futures_util::future::join_all(closing).await;
    }));
    drop(sockets);
    // The pooled connection's task goes with the `LocalSet`.
    drop(local);
    drop(server);
    trim();
    let per_socket = |after: u64, before: u64| after.saturating_sub(before) as f64 / SOCKETS as f64;
    Ok(Run {
        connections: files.saturating_sub(files_before) as f64,
        open_ms: open.as_secs_f64() * 1e3,
        round_trips_ms: round_trips.as_secs_f64() * 1e3,
        client_kib: per_socket(client_after, client_before),
        server_kib: per_socket(server_after, server_before),
    })
}

pub fn section(runtime: &tokio::runtime::Runtime, dir: &Path) -> Result<String> {
    let localhost = Localhost::new();
    let pem = localhost
        .write_pem(&std::env::temp_dir().join(format!("bench-http2-{}", std::process::id())))?;
    let tls = Arc::new(localhost.client_config());
    let wsecho = dir.join("wsecho");
    let mut runs: Vec<Vec<Run>> = WAYS.iter().map(|_| Vec::new()).collect();
    for _ in 0..RUNS {
        for (way, runs) in WAYS.iter().zip(&mut runs) {
            runs.push(run(runtime, &wsecho, (&pem.0, &pem.1), &tls, way)?);
        }
    }
    let _ = std::fs::remove_dir_all(pem.0.parent().context("the PEM directory")?);
    let mut section = format!(
        "\n### 10: the native client over HTTP/2\n\n\
         {SOCKETS} `wss://` sockets of the client crate (natively, feature `http2`) to our \
         server from the load generator's one thread: opened all at once, then one round trip \
         of 5 bytes on each, all at once. Each run against a fresh server with a certificate \
         made for it; TCP connections as the server's open files grew. Memory: the resident \
         memory each process grew by while the sockets were open, per socket (the load \
         generator's after trimming what its allocator held free, so it is the client's \
         sockets, connections and TLS). Medians of {RUNS} (lowest..highest).\n\n\
         | way | TCP connections | open all | a round trip on each | client RSS per socket | \
         server RSS per socket |\n|---|---|---|---|---|---|\n"
    );
    for (way, runs) in WAYS.iter().zip(&runs) {
        let figure = |value: fn(&Run) -> f64| Figure::of(runs.iter().map(value).collect());
        let (connections, open, round_trips) = (
            figure(|run| run.connections),
            figure(|run| run.open_ms),
            figure(|run| run.round_trips_ms),
        );
        let (client, server) = (figure(|run| run.client_kib), figure(|run| run.server_kib));
        section.push_str(&format!(
            "| {} | {:.0} | {:.0} ms ({:.0}..{:.0}) | {:.0} ms ({:.0}..{:.0}) | {:.1} KiB \
             ({:.1}..{:.1}) | {:.1} KiB ({:.1}..{:.1}) |\n",
            way.name,
            connections.median,
            open.median,
            open.min,
            open.max,
            round_trips.median,
            round_trips.min,
            round_trips.max,
            client.median,
            client.min,
            client.max,
            server.median,
            server.min,
            server.max,
        ));
    }
    Ok(section)
}
