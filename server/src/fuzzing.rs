//! What the fuzz targets of `fuzz/` drive, reached without a socket: the byte layers under
//! tungstenite, the socket stack the echo loop reads, and one HTTP connection as `serve`
//! runs it. Behind the `fuzzing` feature, which only `fuzz/` turns on, and hidden from the
//! docs: no part of the server's API.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;

pub use crate::deflate::{Inflate, InflateError, Negotiated, inflate_error, negotiate};
pub use crate::handshake::{PATH, Rejection, accept as accept_handshake};
pub use crate::read_ahead::{CHUNK as READ_AHEAD_CHUNK, ReadAhead};
pub use crate::utf8_guard::{Utf8Guard, is_invalid_utf8};
use crate::{Config, Server, files, origin};

/// The guard's incremental UTF-8 check.
#[derive(Debug, Default)]
pub struct Utf8Stream(crate::utf8_guard::Utf8Stream);

impl Utf8Stream {
    /// Adds bytes; `false` once they cannot be valid UTF-8, whatever follows.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        self.0.push(bytes)
    }

    /// The bytes of a character cut off at the end of the last push.
    pub fn pending(&self) -> usize {
        self.0.pending_len
    }
}

/// The frame header at the start of `bytes`, as the layers follow it (`frame_header::parse`).
pub fn parse_frame_header(bytes: &[u8]) -> Result<Option<(FrameHeader, u64, usize)>, Error> {
    ws_deflate::frame_header::parse(bytes)
}

/// Whether the read-ahead layer holds a buffer now.
pub fn read_ahead_is_buffering<S>(socket: &ReadAhead<S>) -> bool {
    socket.is_buffering()
}

/// The socket stack the echo loop reads (`echo::Socket`).
pub type Stack<I> = WebSocketStream<Utf8Guard<Inflate<ReadAhead<I>>>>;

/// Opens the server's socket stack on `io` as `echo::open` does after a `101`, with
/// permessage-deflate negotiated or not, and this message size limit.
pub async fn open_stack<I>(
    io: I,
    already_read: Vec<u8>,
    deflate: bool,
    max_message_size: usize,
) -> Stack<I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut server = Server::for_tests();
    server.config.max_message_size = max_message_size;
    let negotiated = deflate.then_some(Negotiated {
        server_window_bits: 15,
    });
    crate::echo::open(io, already_read, negotiated, &server).await
}

/// tungstenite's settings for this message size limit, as the server sets them.
pub fn websocket_config(max_message_size: usize) -> WebSocketConfig {
    let config = Config {
        max_message_size,
        ..Config::default()
    };
    config.websocket()
}

/// The close code the echo loop answers a read error with, if any.
pub fn close_code_for(error: &Error) -> Option<u16> {
    crate::echo::close_frame_for(error).map(|frame| frame.code.into())
}

/// The origin policy (`origin::Policy`).
#[derive(Debug)]
pub struct OriginPolicy(origin::Policy);

impl OriginPolicy {
    pub fn new(allowed: &[String], hosts: &[String], loopback: bool, dev: bool) -> Self {
        OriginPolicy(origin::Policy::new(allowed, hosts, loopback, dev))
    }

    /// Whether a handshake from `origin`, sent to `host`, is accepted.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        self.0.allows(origin, host)
    }
}

/// One HTTP connection as `serve` runs it, with `config` and the listener on loopback or
/// not: `request` is written, then the client's side is shut; what the server answered, up
/// to its end of the stream.
pub async fn http_exchange(request: &[u8], config: Config, loopback: bool) -> Vec<u8> {
    let page = files::Page::new(None);
    let server = Arc::new(Server::new(config, loopback, page, watch::channel(false).1));
    let (mut client, io) = tokio::io::duplex(64 << 10);
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    let peer: SocketAddr = ([127, 0, 0, 1], 40_000).into();
    tokio::spawn(crate::connection(io, peer, server, alive));
    let mut answer = Vec::new();
    let exchange = async {
        // A server that answers before reading everything may close first.
        let _ = client.write_all(request).await;
        let _ = client.shutdown().await;
        let _ = client.read_to_end(&mut answer).await;
    };
    exchange.await;
    // Every task of the connection ends.
    let _ = all_closed.recv().await;
    answer
}
