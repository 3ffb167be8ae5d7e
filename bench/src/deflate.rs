//! Scenario 7: permessage-deflate. Bytes on the wire and server CPU per message, for a
//! compressible 16 KiB JSON-like message and for 32-byte messages, against our server without
//! and with `--deflate` and against Node's `ws` with `perMessageDeflate` (the most used deflate
//! server), side by side in one run; then idle memory with 19,000 connections that negotiated
//! deflate, with and without a compressed message before idling, and without deflate.
//!
//! The client is a raw one of this module's (tungstenite has no deflate): it offers what
//! Chromium offers, compresses what it sends with flate2 as a browser would, inflates and
//! checks every reply, and counts the bytes that cross its sockets after the handshake.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use test_support::deflate::{self, try_inflate};

use anyhow::{Context, Result, ensure};
use test_support::Spawned;
use test_support::raw::masked_client_frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// What every client offers: Chromium's offer.
const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// Where `cargo xtask bench` installed `ws` (its `node_modules/ws`); without it, no ws rows.
const WS_MODULE_ENV: &str = "BENCH_NODE_WS";

/// Idle connections, as in scenario 4.
const IDLE: usize = 19_000;

const STALL: Duration = Duration::from_secs(10);

/// One server of this scenario.
struct Server {
    name: &'static str,
    command: Command,
}

impl Server {
    fn ours(program: &Path, name: &'static str, extra: &[&str]) -> Server {
        let mut command = Command::new(program);
        command
            .args(["--addr", "127.0.0.1:0", "--prefix", ""])
            .args(extra);
        Server { name, command }
    }

    fn start(&mut self) -> Result<Spawned> {
        let command = self.command.env("RUST_LOG", "warn").stderr(Stdio::null());
        Spawned::start(command).with_context(|| format!("cannot start {}", self.name))
    }
}

/// One load: `connections` at once, each sending `messages` of `size` bytes one after another.
#[derive(Clone, Copy)]
struct Load {
    name: &'static str,
    connections: usize,
    messages: usize,
    size: usize,
    /// Whether the client compresses what it sends (browsers do, every message; `ws` clients
    /// leave messages under 1 KiB plain).
    compress_sends: bool,
}

const LOADS: [Load; 3] = [
    Load {
        name: "16 KiB JSON-like",
        connections: 20,
        messages: 250,
        size: 16 << 10,
        compress_sends: true,
    },
    Load {
        name: "32 B, sent plain",
        connections: 50,
        messages: 1000,
        size: 32,
        compress_sends: false,
    },
    Load {
        name: "32 B, sent compressed (as Chromium does)",
        connections: 50,
        messages: 1000,
        size: 32,
        compress_sends: true,
    },
];

/// What a run measured.
struct Measured {
    /// Bytes after the handshakes, client to server and back, per message.
    up: f64,
    down: f64,
    /// Server CPU per message.
    cpu: Duration,
    negotiated: bool,
}

/// The scenario's section of BENCHMARKS.md.
pub fn section(runtime: &tokio::runtime::Runtime, dir: &Path) -> Result<String> {
    let ours = dir.join("wsecho");
    let mut servers = vec![
        Server::ours(&ours, "wsecho (ours), no --deflate", &[]),
        Server::ours(&ours, "wsecho (ours), --deflate", &["--deflate"]),
    ];
    let ws = std::env::var_os(WS_MODULE_ENV).map(PathBuf::from);
    match &ws {
        Some(module) => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/ws-echo.cjs");
            let mut command = Command::new("node");
            command.arg(script).arg(module);
            servers.push(Server {
                name: "Node ws 8, perMessageDeflate",
                command,
            });
        }
        None => eprintln!("{WS_MODULE_ENV} not set: no ws rows"),
    }
    let mut section = String::from(
        "\n### 7: permessage-deflate\n\n\
         Each load from one process, one message in flight per connection; every reply \
         inflated and checked. Bytes are what crossed the client's sockets after the \
         handshake (frame headers included), per message each way; server CPU per message \
         from `/proc/PID/task/*/schedstat` (all threads: ws compresses on libuv's). Median \
         of 3. Ours without `--deflate` declines the offer, so that row is plain WebSocket. \
         Ours compresses replies of 1 KiB or more (`--deflate-threshold`) at zlib level 1; \
         ws at its default level (zlib's 6), threshold 1 KiB, both without context \
         takeover.\n\n\
         | server | messages | bytes up per message | bytes down per message | server CPU per message |\n\
         |---|---|---|---|---|\n",
    );
    for load in LOADS {
        for server in servers.iter_mut() {
            let mut runs = Vec::new();
            for _ in 0..3 {
                let process = server.start()?;
                let addr: SocketAddr = process.addr().parse()?;
                let before = cpu(process.id())?;
                let (up, down, negotiated) = runtime.block_on(run(addr, load))?;
                let spent = cpu(process.id())? - before;
                let count = (load.connections * load.messages) as f64;
                runs.push(Measured {
                    up: up as f64 / count,
                    down: down as f64 / count,
                    cpu: spent.div_f64(count),
                    negotiated,
                });
            }
            runs.sort_by_key(|run| run.cpu);
            let run = &runs[1];
            let deflate = if run.negotiated { "" } else { " (declined)" };
            let row = format!(
                "| {}{deflate} | {} | {:.0} | {:.0} | {:.2} µs |\n",
                server.name,
                load.name,
                run.up,
                run.down,
                run.cpu.as_secs_f64() * 1e6,
            );
            eprint!("{row}");
            section.push_str(&row);
        }
    }
    section.push_str(&format!(
        "\nIdle: {IDLE} connections to ours, each opened with Chromium's offer, then (or not) \
         one 2 KiB JSON-like round trip (compressed both ways where negotiated), then left \
         idle for a second; server RSS per connection (compare scenario 4, which sends no \
         message before measuring).\n\n\
         | server | before idling | RSS per connection | RSS before | RSS held |\n\
         |---|---|---|---|---|\n"
    ));
    let cases: [(&str, &[&str], bool); 3] = [
        ("ours, no --deflate", &[], true),
        ("ours, --deflate", &["--deflate"], false),
        ("ours, --deflate", &["--deflate"], true),
    ];
    for (source, (name, args, echo)) in cases.into_iter().enumerate() {
        let mut server = Server::ours(&ours, name, args);
        let (per_connection, before, held) = idle(runtime, &mut server, echo, source as u8 + 1)?;
        let what = if echo {
            "one 2 KiB message"
        } else {
            "no message"
        };
        let row = format!(
            "| {name} | {what} | {per_connection:.1} KiB | {:.1} MiB | {:.1} MiB |\n",
            before as f64 / 1024.0,
            held as f64 / 1024.0,
        );
        eprint!("{row}");
        section.push_str(&row);
    }
    Ok(section)
}

/// CPU time of every thread of `pid`, from `schedstat` (nanoseconds).
fn cpu(pid: u32) -> Result<Duration> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = std::fs::read_to_string(task?.path().join("schedstat"))?;
        let ns: u64 = stat
            .split_whitespace()
            .next()
            .context("schedstat")?
            .parse()?;
        total += ns;
    }
    Ok(Duration::from_nanos(total))
}

/// A JSON-like message of `size` bytes, different for every `seq`.
pub(crate) fn json_like(seq: usize, size: usize) -> String {
    let mut text = String::with_capacity(size + 128);
    let mut id = seq * 1000;
    while text.len() < size {
        text.push_str(&format!(
            "{{\"id\":{id},\"user\":\"user-{}\",\"score\":{}.{},\"tags\":[\"alpha\",\"beta\"],\"active\":{}}},",
            id % 97,
            id % 1000,
            id % 7,
            id.is_multiple_of(2)
        ));
        id += 1;
    }
    text.truncate(size);
    text
}

/// A masked client frame.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    masked_client_frame(first, payload, [0x37, 0xfa, 0x21, 0x3d])
}

/// Opens a connection from `source` (any port when `None`) with Chromium's offer; the stream
/// and whether the server accepted permessage-deflate.
pub(crate) async fn open(
    addr: SocketAddr,
    source: Option<SocketAddr>,
) -> Result<(TcpStream, bool)> {
    let socket = TcpSocket::new_v4()?;
    if let Some(source) = source {
        socket.set_reuseaddr(true)?;
        socket.bind(source)?;
    }
    let mut stream = tokio::time::timeout(STALL, socket.connect(addr)).await??;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Extensions: {OFFER}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        ensure!(
            stream.read(&mut byte).await? == 1,
            "closed in the handshake"
        );
        answer.push(byte[0]);
    }
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    ensure!(answer.starts_with("http/1.1 101"), "no 101: {answer}");
    let negotiated = answer
        .lines()
        .any(|line| line.starts_with("sec-websocket-extensions: permessage-deflate"));
    Ok((stream, negotiated))
}

/// Sends text `message` and checks the echo; the bytes written and read.
pub(crate) async fn round_trip(
    stream: &mut TcpStream,
    message: &str,
    compressed: bool,
) -> Result<(u64, u64)> {
    let out = if compressed {
        frame(0xc1, &deflate::compressed(message.as_bytes()))
    } else {
        frame(0x81, message.as_bytes())
    };
    stream.write_all(&out).await?;
    let mut read = 0;
    // The server's keepalive pings a connection it has not heard from for a while (one of
    // thousands still opening): answered, as a browser answers them.
    let (head, payload) = loop {
        let (head, payload) = read_frame(stream).await?;
        read += payload.len() as u64 + header_length(payload.len());
        if head != 0x89 {
            break (head, payload);
        }
        stream.write_all(&frame(0x8a, &payload)).await?;
    };
    ensure!(head & 0x8f == 0x81, "not one final text frame: {head:#x}");
    let reply = if head & 0x40 != 0 {
        try_inflate(&payload, 15, message.len())?
    } else {
        payload
    };
    ensure!(reply == message.as_bytes(), "a wrong echo");
    Ok((out.len() as u64, read))
}

/// Reads one unmasked server frame: its first byte and its payload.
async fn read_frame(stream: &mut TcpStream) -> Result<(u8, Vec<u8>)> {
    let mut head = [0; 2];
    stream.read_exact(&mut head).await?;
    let length = match head[1] & 0x7f {
        126 => u64::from(stream.read_u16().await?),
        127 => stream.read_u64().await?,
        n => u64::from(n),
    };
    let mut payload = vec![0; length as usize];
    stream.read_exact(&mut payload).await?;
    Ok((head[0], payload))
}

/// The length of a server frame's header for a payload of `length` bytes.
fn header_length(length: usize) -> u64 {
    match length {
        0..126 => 2,
        126..65536 => 4,
        _ => 10,
    }
}

/// Runs `load` against `addr`: bytes up, bytes down, and whether deflate was negotiated.
async fn run(addr: SocketAddr, load: Load) -> Result<(u64, u64, bool)> {
    let connections = (0..load.connections).map(|conn| async move {
        let (mut stream, negotiated) = open(addr, None).await?;
        let (mut up, mut down) = (0, 0);
        for seq in 0..load.messages {
            let message = json_like(conn * load.messages + seq, load.size);
            let compressed = negotiated && load.compress_sends;
            let (sent, received) =
                tokio::time::timeout(STALL, round_trip(&mut stream, &message, compressed))
                    .await
                    .context("no echo within 10 s")??;
            up += sent;
            down += received;
        }
        anyhow::Ok((up, down, negotiated))
    });
    let results = futures_util::future::try_join_all(connections).await?;
    let negotiated = results.iter().all(|(_, _, negotiated)| *negotiated);
    Ok(results
        .into_iter()
        .fold((0, 0, negotiated), |(up, down, n), (u, d, _)| {
            (up + u, down + d, n)
        }))
}

/// `count` connections to `addr` from `source` (ports from 10,000 on), opened `wave` at a
/// time, each after one round trip of a JSON-like message of `echo` bytes if any (compressed
/// both ways where deflate was negotiated, as a browser's); the streams, held open.
pub(crate) async fn hold(
    addr: SocketAddr,
    source: IpAddr,
    count: usize,
    wave: usize,
    echo: Option<usize>,
) -> Result<Vec<TcpStream>> {
    let mut held = Vec::with_capacity(count);
    while held.len() < count {
        let first = held.len();
        let opened = (first..(first + wave).min(count)).map(|i| async move {
            let source = SocketAddr::new(source, 10_000 + i as u16);
            let (mut stream, negotiated) = open(addr, Some(source)).await?;
            if let Some(size) = echo {
                let message = json_like(i, size);
                tokio::time::timeout(STALL, round_trip(&mut stream, &message, negotiated))
                    .await
                    .context("no echo within 10 s")??;
            }
            anyhow::Ok(stream)
        });
        for stream in futures_util::future::join_all(opened).await {
            held.push(stream?);
        }
    }
    Ok(held)
}

/// Idle memory: RSS per connection, RSS before and held (KiB), with connections from
/// 127.0.3.`source` that each echo one 2 KiB message first if `echo`.
fn idle(
    runtime: &tokio::runtime::Runtime,
    server: &mut Server,
    echo: bool,
    source: u8,
) -> Result<(f64, u64, u64)> {
    let process = server.start()?;
    let addr: SocketAddr = process.addr().parse()?;
    std::thread::sleep(Duration::from_millis(200));
    let before = process.status_kib("VmRSS")?;
    let source = IpAddr::from([127, 0, 3, source]);
    let echo = echo.then_some(2048);
    let held = runtime.block_on(hold(addr, source, IDLE, bench::WAVE, echo))?;
    std::thread::sleep(Duration::from_secs(1));
    let held_rss = process.status_kib("VmRSS")?;
    drop(held);
    let per_connection = held_rss.saturating_sub(before) as f64 / IDLE as f64;
    Ok((per_connection, before, held_rss))
}
