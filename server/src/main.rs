//! The echo server binary: `cargo run -p wsecho -- --help`.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use wsecho::{Config, DEFAULT_ADDR, DEFAULT_PREFIX};

/// Open files kept for what is not a WebSocket: handshakes in progress, files served, logs.
const RESERVED_FILES: u64 = 100;

/// WebSocket echo server: answers each text message with PREFIX + message, echoes binary
/// messages, and serves the demo page on plain HTTP GET.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = DEFAULT_ADDR)]
    addr: String,
    /// Prepended to every text reply; '' makes a pure echo.
    #[arg(long, default_value = DEFAULT_PREFIX)]
    prefix: String,
    /// Directory of the page served on plain GET (index.html, style.css, pkg/), relative to
    /// the working directory: the default is the source tree's www/ when started from the
    /// repository's root. Without it, GET / says how to start the server with its page.
    #[arg(long, default_value = "www")]
    www: PathBuf,
    /// A subprotocol to accept, in order of preference; may be repeated.
    #[arg(long = "protocol")]
    protocols: Vec<String>,
    /// An origin allowed to connect besides the server's own pages, matched exactly, e.g.
    /// https://app.example.com; 'null' allows pages opened from files, '*' allows all.
    /// Repeatable.
    #[arg(long = "allow-origin")]
    allowed_origins: Vec<String>,
    /// A name this server answers to, e.g. echo.example.com (repeatable): its own pages are
    /// those whose origin is the Host they were sent to, and Host must be one of these names,
    /// an IP address, or, while bound to loopback, a loopback name (no DNS rebinding).
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// Development: also accept pages opened from files (Origin: null) and pages of any
    /// loopback origin. `cargo xtask serve` passes it; never on a public server.
    #[arg(long)]
    dev: bool,
    /// Largest message (and frame) in bytes; larger is closed with 1009.
    #[arg(long, default_value_t = Config::default().max_message_size)]
    max_message_size: usize,
    /// WebSocket connections at once; past it, handshakes get 503. Default: the open-file
    /// limit, raised to its hard maximum at start, less 100 for handshakes, files and logs.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Seconds a client may take to send its handshake.
    #[arg(long, default_value_t = secs(Config::default().handshake_timeout))]
    handshake_timeout: u64,
    /// Seconds a connection may speak HTTP before it upgrades (requests, files, a client that
    /// does not read them); then it is closed.
    #[arg(long, default_value_t = secs(Config::default().http_timeout))]
    http_timeout: u64,
    /// Seconds of silence before the server pings a connection, and between pings while it
    /// stays silent (fractions allowed, e.g. 0.5).
    #[arg(long, default_value_t = Seconds(Config::default().ping_interval))]
    ping_interval: Seconds,
    /// Seconds of silence (not even a pong) after which a connection is let go: its Close
    /// (1001) leaves --close-timeout earlier, so that one that never answers is let go then.
    #[arg(long, default_value_t = Seconds(Config::default().idle_timeout))]
    idle_timeout: Seconds,
    /// Seconds the server waits for the answer to its Close (idle, shutdown) before it lets
    /// the connection go; at most half of --idle-timeout for an idle one.
    #[arg(long, default_value_t = Seconds(Config::default().close_timeout))]
    close_timeout: Seconds,
    /// Seconds a reply may wait for a peer that does not read before the connection is dropped.
    #[arg(long, default_value_t = secs(Config::default().send_timeout))]
    send_timeout: u64,
    /// Seconds shutdown waits for close handshakes (on SIGINT or SIGTERM).
    #[arg(long, default_value_t = secs(Config::default().shutdown_timeout))]
    shutdown_timeout: u64,
    /// PEM certificate chain for wss:// (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for wss:// (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// With --tls-cert: offer HTTP/1.1 only in ALPN, not HTTP/2. With HTTP/2 offered (the
    /// default), Chromium and Firefox open every WebSocket of the origin as a stream of their
    /// HTTP/2 connection (RFC 8441).
    #[arg(long)]
    no_http2: bool,
    /// Cleartext HTTP/2 by prior knowledge (h2c) besides HTTP/1.1: a connection that opens
    /// with the HTTP/2 preface is served as HTTP/2. For tests and proxies; browsers never use it.
    #[arg(long)]
    h2c: bool,
    /// Streams at once on one HTTP/2 connection (its WebSockets and requests); a client that
    /// opens more has them refused (REFUSED_STREAM).
    #[arg(long, default_value_t = Config::default().h2_max_streams)]
    h2_max_streams: u32,
    /// Serve Prometheus metrics at /metrics (connections, messages, bytes, close codes,
    /// refused handshakes). Anyone who can reach the port can read them.
    #[arg(long)]
    metrics: bool,
    /// Negotiate permessage-deflate (RFC 7692) with clients that offer it: worth it for
    /// large, repetitive messages (JSON) on slow links; costs CPU per message. Never keeps
    /// compression state between messages, so idle connections cost the same.
    #[arg(long)]
    deflate: bool,
    /// With --deflate, replies shorter than this many bytes go out uncompressed (as do those
    /// that compression would not shrink); 0 compresses every reply.
    #[arg(long, default_value_t = Config::default().deflate_threshold)]
    deflate_threshold: usize,
    /// Restarts that refuse no one: a Unix socket path where this instance waits for its
    /// successor. Started with the same path while another instance runs, it takes that
    /// one's listening socket over (--addr is then ignored), and the old one stops accepting,
    /// closes its clients with 1001 and leaves.
    #[arg(long)]
    handover: Option<PathBuf>,
    /// Obey the test-only commands (`!close CODE REASON`, `!drop`, `!outage MILLIS` up to a
    /// minute) sent as text messages. Never on a public server.
    #[arg(long)]
    test_controls: bool,
}

fn secs(duration: Duration) -> u64 {
    duration.as_secs()
}

/// A number of seconds above zero, fractions allowed (`0.5`): the keepalive's settings,
/// which tests set short.
#[derive(Clone, Copy, Debug)]
struct Seconds(Duration);

impl std::str::FromStr for Seconds {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let seconds: f64 = text.parse().map_err(|_| format!("not a number: {text}"))?;
        match Duration::try_from_secs_f64(seconds) {
            Ok(duration) if !duration.is_zero() => Ok(Seconds(duration)),
            _ => Err(format!("not a number of seconds above 0: {text}")),
        }
    }
}

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

fn main() -> anyhow::Result<()> {
    runtime()?.block_on(run())
}

/// tokio's multi-threaded runtime when the process may use several cores. On one core (a
/// small VM, or pinned with `taskset` or a cgroup's cpuset) it would have one worker thread
/// anyway, and the current-thread runtime does the same work with less: no work-stealing
/// queues, no atomics on every wake-up: 4% fewer instructions per message in the benchmark's
/// scenario 2 (5,068 to 4,858, callgrind; `cargo xtask bench` pins each server to one core).
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut builder = if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(wsecho::tls::load(cert, key)?),
        _ => None,
    };
    let taken = match &args.handover {
        Some(path) => wsecho::handover::take_over(path)
            .with_context(|| format!("cannot take over from {}", path.display()))?,
        None => None,
    };
    let listener = match taken {
        Some(listener) => tokio::net::TcpListener::from_std(listener)?,
        None => wsecho::listen(&args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?,
    };
    // For the successor: a duplicate of the listening socket's descriptor.
    let handover = match args.handover {
        Some(path) => Some((path, listener.as_fd().try_clone_to_owned()?)),
        None => None,
    };
    let addr = listener.local_addr()?;
    // The one line on stdout: tests and scripts read the real port from it.
    let (ws, http) = if tls.is_some() {
        ("wss", "https")
    } else {
        ("ws", "http")
    };
    println!("listening on {ws}://{addr}/");
    std::io::stdout().flush()?;
    if args.www.join("index.html").is_file() {
        tracing::info!("page at {http}://{addr}/ (serving {})", args.www.display());
    } else {
        let www = std::path::absolute(&args.www).unwrap_or_else(|_| args.www.clone());
        tracing::warn!(
            "no page: {} has no index.html; pass --www DIR to serve it (the WebSocket works \
             without it)",
            www.display()
        );
    }

    let max_connections = args.max_connections.unwrap_or_else(|| {
        let files = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
        usize::try_from(files.saturating_sub(RESERVED_FILES).max(1)).unwrap_or(usize::MAX)
    });
    tracing::debug!(max_connections);
    let config = Config {
        prefix: args.prefix,
        www: Some(args.www),
        protocols: args.protocols,
        allowed_origins: args.allowed_origins,
        hosts: args.hosts,
        dev_origins: args.dev,
        max_message_size: args.max_message_size,
        max_connections,
        handshake_timeout: Duration::from_secs(args.handshake_timeout),
        http_timeout: Duration::from_secs(args.http_timeout),
        ping_interval: args.ping_interval.0,
        idle_timeout: args.idle_timeout.0,
        close_timeout: args.close_timeout.0,
        send_timeout: Duration::from_secs(args.send_timeout),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        deflate: args.deflate,
        deflate_threshold: args.deflate_threshold,
        test_controls: args.test_controls,
        tls,
        http2: !args.no_http2,
        h2c: args.h2c,
        h2_max_streams: args.h2_max_streams,
        metrics: args.metrics.then(wsecho::telemetry::install).transpose()?,
    };
    wsecho::serve(listener, config, stop_signal(handover)).await;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what service managers and container runtimes
/// send), or once a successor has taken the listening socket over (`--handover`).
async fn stop_signal(handover: Option<(PathBuf, OwnedFd)>) {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("can listen for SIGTERM");
    let handed_over = async {
        let Some((path, socket)) = handover else {
            return std::future::pending().await;
        };
        if let Err(error) = wsecho::handover::offer(&path, socket).await {
            tracing::warn!(%error, path = %path.display(), "no handover: cannot wait there");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        () = handed_over => {}
    }
}
