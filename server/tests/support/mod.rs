//! A real server process on port 0 for each test, and raw HTTP for the cases a WebSocket
//! client library refuses to send.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// The server binary, killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `echo-server --addr 127.0.0.1:0 ARGS` (or the `--addr` of ARGS) and reads the bound address from the one
    /// line it prints.
    pub fn start(args: &[&str]) -> Server {
        Server::start_in(Path::new("."), args)
    }

    /// Like [`start`](Self::start), with `dir` as the working directory.
    pub fn start_in(dir: &Path, args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_echo-server"));
        command.current_dir(dir);
        if !args.contains(&"--addr") {
            command.args(["--addr", "127.0.0.1:0"]);
        }
        let mut child = command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ws://")
            .or_else(|| line.trim().strip_prefix("listening on wss://"))
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Server { child, addr }
    }

    /// Starts a server that serves `www` as its page directory.
    pub fn with_www(www: &Path) -> Server {
        Server::start(&["--www", www.to_str().unwrap()])
    }

    /// The server's resident memory now, and at its peak, in KiB (`/proc/PID/status`).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| -> u64 {
            let line = status.lines().find(|line| line.starts_with(name)).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Asserts that the server still answers a normal client, and that its memory stayed
    /// under `limit_mib` at its peak.
    pub async fn assert_healthy(&self, limit_mib: u64) {
        use futures_util::{SinkExt, StreamExt};
        let mut socket = self.connect().await;
        socket.send("still there?".into()).await.unwrap();
        let reply = socket.next().await.unwrap().unwrap();
        assert_eq!(
            reply.into_text().unwrap().as_str(),
            "Received:  still there?"
        );
        let (rss, peak) = self.memory_kib();
        eprintln!("server memory: {rss} KiB now, {peak} KiB at peak");
        assert!(peak < limit_mib * 1024, "peak RSS {peak} KiB");
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
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

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The two headers a valid handshake adds to [`upgrade_request`]'s: version 13 and the RFC's
/// example key.
pub const VERSION_AND_KEY: &str =
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// A request for `/` with `Host: host`, `Upgrade: websocket` and `Connection: Upgrade`, then
/// `extra` header lines (each ending in CRLF).
pub fn upgrade_request(method: &str, host: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         {extra}\r\n"
    )
    .into_bytes()
}

/// A valid handshake request, with `extra` header lines (each ending in CRLF).
pub fn handshake_with(extra: &str) -> Vec<u8> {
    upgrade_request("GET", "127.0.0.1", &format!("{VERSION_AND_KEY}{extra}"))
}

/// A masked client frame (mask 0, so the payload goes as is) with a given first byte.
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=65535 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

/// The code of the first Close frame the server sent after its `101` answer.
pub fn close_code_after_handshake(answer: &[u8]) -> Option<u16> {
    let mut rest = &answer[answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4..];
    // Skip the server's unmasked frames (short ones only: pings and the like) up to the Close.
    while rest.len() >= 2 {
        let len = (rest[1] & 0x7f) as usize;
        if rest[0] & 0x0f == 0x8 {
            return (len >= 2).then(|| u16::from_be_bytes([rest[2], rest[3]]));
        }
        rest = rest.get(2 + len..)?;
    }
    None
}

/// The status line of a raw HTTP answer.
pub fn status_line(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    text.lines().next().unwrap_or_default().to_owned()
}

/// Connects, sends a valid handshake and reads up to the end of the `101` answer, so that
/// what the test writes next reaches the server as WebSocket frames in reads of their own.
pub async fn opened(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&handshake_with("")).await.unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "{answer:?}");
        answer.push(byte[0]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 101 "), "{answer:?}");
    stream
}

/// The frames of a server's unmasked byte stream: (opcode, payload); a cut-off frame last
/// is left out.
pub fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let (len, start) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => break,
            len => (len as usize, 2),
        };
        let Some(payload) = bytes.get(start..start + len) else {
            break;
        };
        frames.push((bytes[0] & 0x0f, payload.to_vec()));
        bytes = &bytes[start + len..];
    }
    frames
}

/// The code of a Close frame's payload.
pub fn close_code(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}
