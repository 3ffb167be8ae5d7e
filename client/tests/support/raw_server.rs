//! A WebSocket server in raw bytes, for the deflate tests (`deflate.rs`, `deflate_bomb.rs`):
//! what the echo server never sends. Included with `#[path]` by the files that use it.

#![allow(dead_code)] // Each test file uses its own part.

use flate2::{Compress, Compression, FlushCompress};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;

/// A server written in raw bytes, for one connection: it answers the handshake with
/// `extensions` (none if empty), then hands the socket to the test.
pub struct RawServer {
    listener: TcpListener,
    port: u16,
}

impl RawServer {
    pub async fn start() -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        RawServer { listener, port }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// Accepts a connection and answers its handshake; the socket and the request's
    /// `Sec-WebSocket-Extensions`.
    pub async fn accept(&self, extensions: &str) -> (TcpStream, String) {
        let (mut socket, _) = self.listener.accept().await.unwrap();
        let mut request = Vec::new();
        while !request.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            socket.read_exact(&mut byte).await.unwrap();
            request.push(byte[0]);
        }
        let request = String::from_utf8(request).unwrap();
        let header = |name: &str| {
            request.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        let key = header("Sec-WebSocket-Key").unwrap();
        let mut answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n",
            derive_accept_key(key.as_bytes())
        );
        if !extensions.is_empty() {
            answer += &format!("Sec-WebSocket-Extensions: {extensions}\r\n");
        }
        answer += "\r\n";
        socket.write_all(answer.as_bytes()).await.unwrap();
        (
            socket,
            header("Sec-WebSocket-Extensions").unwrap_or_default(),
        )
    }
}

/// A server's frame: unmasked, with `first` as its first byte (FIN, RSV1, opcode).
pub fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        is_final: first & 0x80 != 0,
        rsv1: first & 0x40 != 0,
        opcode: OpCode::from(first & 0x0f),
        ..FrameHeader::default()
    };
    let mut frame = Vec::new();
    header.format(payload.len() as u64, &mut frame).unwrap();
    frame.extend_from_slice(payload);
    frame
}

/// Reads the client's next frame: its first byte and its payload, unmasked.
pub async fn client_frame(
    socket: &mut (impl AsyncRead + Unpin),
    buffered: &mut Vec<u8>,
) -> (u8, Vec<u8>) {
    loop {
        if let Some((header, length, size)) = ws_deflate::frame_header::parse(buffered).unwrap()
            && buffered.len() >= size + length as usize
        {
            assert!(header.mask.is_some(), "a client's frame is masked");
            let mask = header.mask.unwrap();
            let first = buffered[0];
            let payload = (buffered[size..size + length as usize].iter().enumerate())
                .map(|(i, byte)| byte ^ mask[i % 4])
                .collect();
            buffered.drain(..size + length as usize);
            return (first, payload);
        }
        let mut bytes = [0; 64 << 10];
        let n = socket.read(&mut bytes).await.unwrap();
        assert!(n > 0, "the client closed the connection");
        buffered.extend_from_slice(&bytes[..n]);
    }
}

/// A sender's compressor, kept between messages (context takeover) or not.
pub struct Sender(Compress);

impl Sender {
    pub fn new(bits: u8) -> Sender {
        Sender(Compress::new_with_window_bits(
            Compression::new(6),
            false,
            bits,
        ))
    }

    /// One message's payload: sync-flushed, its `00 00 ff ff` tail left off.
    pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        let start = self.0.total_in();
        loop {
            let used = (self.0.total_in() - start) as usize;
            self.0
                .compress_vec(&data[used..], &mut out, FlushCompress::Sync)
                .unwrap();
            if (self.0.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity());
        }
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    }
}
