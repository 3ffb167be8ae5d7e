//! A real server process on port 0 for each test, and raw HTTP for the cases a WebSocket
//! client library refuses to send.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use test_support::Spawned;
pub use test_support::raw::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// A client of the server.
pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Sends `text` on `socket` and asserts that the reply is the seed's: `Received:  ` + `text`.
pub async fn assert_echoed<S>(socket: &mut S, text: &str)
where
    S: futures_util::Sink<Message, Error = tungstenite::Error>
        + futures_util::Stream<Item = Result<Message, tungstenite::Error>>
        + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    socket.send(Message::text(text)).await.unwrap();
    let reply = socket.next().await.expect("a reply").unwrap();
    assert_eq!(reply, Message::text(format!("Received:  {text}")));
}

/// The server binary, killed when dropped.
pub struct Server {
    process: Spawned,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `wsecho --addr 127.0.0.1:0 ARGS` (or the `--addr` of ARGS) and reads the
    /// bound address from the one line it prints.
    pub fn start(args: &[&str]) -> Server {
        Server::start_in(Path::new("."), args)
    }

    /// Like [`start`](Self::start), with `dir` as the working directory.
    pub fn start_in(dir: &Path, args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wsecho"));
        command.current_dir(dir);
        if !args.contains(&"--addr") {
            command.args(["--addr", "127.0.0.1:0"]);
        }
        command.args(args).stderr(std::process::Stdio::null());
        let process = Spawned::start(&mut command).expect("the server binary starts");
        let addr = process.addr().parse().expect("HOST:PORT");
        Server { process, addr }
    }

    /// Starts a server that serves `www` as its page directory.
    pub fn with_www(www: &Path) -> Server {
        Server::start(&["--www", www.to_str().unwrap()])
    }

    /// The server's resident memory now, and at its peak, in KiB (`/proc/PID/status`).
    pub fn memory_kib(&self) -> (u64, u64) {
        let field = |name| self.process.status_kib(name).unwrap();
        (field("VmRSS"), field("VmHWM"))
    }

    /// How many files the server has open: one a connection, and a few of its own.
    pub fn open_files(&self) -> usize {
        self.process.open_files().unwrap()
    }

    /// Asserts that the server still answers a normal client, and that its memory stayed
    /// under `limit_mib` at its peak.
    pub async fn assert_healthy(&self, limit_mib: u64) {
        assert_echoed(&mut self.connect().await, "still there?").await;
        let (rss, peak) = self.memory_kib();
        eprintln!("server memory: {rss} KiB now, {peak} KiB at peak");
        assert!(peak < limit_mib * 1024, "peak RSS {peak} KiB");
    }

    /// Sends `signal` (`TERM`, `KILL`) and returns at once.
    pub fn signal(&self, signal: &str) {
        let pid = self.process.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status();
        assert!(sent.unwrap().success(), "kill -{signal} {pid}");
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.process.terminate().unwrap()
    }

    /// Waits, up to `limit`, for the process to exit by itself; `None` if it has not (it is
    /// killed then).
    pub async fn exited_within(
        self,
        limit: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let id = self.process.id();
        let waiting = tokio::task::spawn_blocking(move || self.process.wait());
        match tokio::time::timeout(limit, waiting).await {
            Ok(status) => Some(status.unwrap().unwrap()),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &id.to_string()])
                    .status();
                None
            }
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    pub async fn connect(&self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        connect_async(self.url()).await.expect("handshake").0
    }

    /// Sends raw bytes and returns everything the server answers until it closes or
    /// a second passes.
    pub async fn raw(&self, request: &[u8]) -> Vec<u8> {
        self.raw_for(request, std::time::Duration::from_secs(1))
            .await
    }

    /// Sends raw bytes and returns the status line of the answer, without waiting for more.
    pub async fn status_of(&self, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        let read_line = async {
            let mut byte = [0];
            while !answer.ends_with(b"\r\n") && stream.read(&mut byte).await.unwrap() == 1 {
                answer.push(byte[0]);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), read_line)
            .await
            .expect("an answer within 5 s");
        status_line(&answer)
    }

    /// Like [`raw`](Self::raw), reading for up to `time`.
    pub async fn raw_for(&self, request: &[u8], time: std::time::Duration) -> Vec<u8> {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let _ = stream.write_all(request).await;
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        let _ = tokio::time::timeout(time, read).await;
        answer
    }
}

/// Connects, sends a valid handshake and reads up to the end of the `101` answer, so that
/// what the test writes next reaches the server as WebSocket frames in reads of their own.
pub async fn opened(addr: SocketAddr) -> TcpStream {
    opened_with(addr, "").await.0
}

/// [`opened`] with `extra` header lines in the handshake (each ending in CRLF); the stream
/// and the `101` answer. Small writes go out at once (no Nagle), each in a read of its own.
pub async fn opened_with(addr: SocketAddr, extra: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream.write_all(&handshake_with(extra)).await.unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "{answer:?}");
        answer.push(byte[0]);
    }
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
    (stream, answer)
}

/// Tries `attempt` every 20 ms until it gives a value, and fails after `limit`.
pub async fn eventually<T, F, Fut>(limit: std::time::Duration, what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Reads frames until `count` have arrived, a Close has, or the server hangs up; fails after
/// 10 s.
pub async fn read_frames(stream: &mut TcpStream, count: usize) -> Vec<(u8, Vec<u8>)> {
    let mut bytes = Vec::new();
    let read = async {
        loop {
            let frames = frames_of(&bytes);
            if frames.len() >= count || frames.iter().any(|(first, _)| first & 0x0f == 0x8) {
                return frames;
            }
            let mut buf = [0; 64 << 10];
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return frames,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("frames within 10 s")
}
