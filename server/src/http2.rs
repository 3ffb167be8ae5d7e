//! WebSockets over HTTP/2 (RFC 8441): a connection whose client chose `h2` in ALPN, or that
//! opens with the HTTP/2 preface in cleartext (`--h2c`), is served by hyper's HTTP/2 server
//! with the extended `CONNECT` switched on (`SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`). Each
//! request goes through the same `upgrade::route` as over HTTP/1.1: files, `/healthz`,
//! `/metrics`, and a `CONNECT` with `:protocol websocket` through the same steps (outage,
//! handshake, origin with `:authority` as the host, permit), answered with `200`; the
//! upgraded stream then runs the same echo `Handler`.
//!
//! Unlike HTTP/1.1, hyper stays between the socket and every WebSocket for the life of the
//! connection: it multiplexes the streams, and its flow control is what keeps one stream from
//! holding up the others. The windows (see [`STREAM_WINDOW`], [`CONNECTION_WINDOW`]):
//! - each stream may have [`STREAM_WINDOW`] bytes in flight towards the server, unread; a
//!   WebSocket that stops reading (its peer does not read the replies, or `!stall`) holds no
//!   more of the connection than that;
//! - the connection as a whole [`CONNECTION_WINDOW`]: sixteen stalled streams before the
//!   others wait, and the most a client can make the server buffer, however many streams;
//! - replies: hyper takes a write only once the previous one is handed to h2, which sends it
//!   as the client's window allows and buffers at most [`SEND_BUFFER`] of it per stream.
//!
//! A connection lives as long as it has a request or a WebSocket, and for `http_timeout`
//! without one (the HTTP/1.1 limit on speaking HTTP, read as a limit on idleness, since a
//! browser keeps its HTTP/2 connection for the page and all its sockets); then it gets
//! GOAWAY. Shutdown sends GOAWAY at once, and each WebSocket its Close 1001 (the `Handler`
//! does, as over HTTP/1.1); the connection ends when they have.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::debug;

use crate::{FIRST_REQUEST_GRACE, Server, log_end, upgrade};

/// The most a stream may send the server before the server has read it: a quarter of the
/// default largest message, so that a stalled WebSocket pins little of the connection's
/// window (hyper's default, 1 MiB for streams and the connection alike, lets one stalled
/// stream stop all the others). Caps one socket at `STREAM_WINDOW / RTT` (5 MB/s at 50 ms).
pub const STREAM_WINDOW: u32 = 256 << 10;

/// The most all streams of a connection may have sent the server unread: sixteen stalled
/// streams' worth, and the bound on what one connection makes the server buffer.
pub const CONNECTION_WINDOW: u32 = 16 * STREAM_WINDOW;

/// The most of its replies a stream has h2 hold while the client's window is shut.
pub const SEND_BUFFER: usize = STREAM_WINDOW as usize;

/// The largest header block accepted (`SETTINGS_MAX_HEADER_LIST_SIZE`), as the HTTP/1.1
/// path's buffer.
const HEADER_LIST: u32 = 16 << 10;

/// The HTTP/2 connection preface (RFC 9113 section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether a cleartext connection opens with the HTTP/2 preface; looked at, not read, so
/// that either server reads it from the start. `false` as soon as a byte differs.
pub(crate) async fn starts_with_preface(stream: &TcpStream) -> std::io::Result<bool> {
    let mut start = [0; PREFACE.len()];
    loop {
        let n = stream.peek(&mut start).await?;
        if n == 0 || start[..n] != PREFACE[..n] {
            return Ok(false);
        }
        if n == PREFACE.len() {
            return Ok(true);
        }
        // Only part of the preface is here; peeking again at once would spin.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Serves one HTTP/2 connection until the client closes it, it has been idle for
/// `http_timeout`, or the server shuts down and its WebSockets have closed.
pub(crate) async fn connection<I>(
    io: I,
    peer: SocketAddr,
    server: Arc<Server>,
    alive: mpsc::Sender<()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Every request, and every WebSocket after it, holds a clone of `streams`: the connection
    // is idle when only the service's own is left and no request came since the last look.
    let (streams, mut all_closed) = mpsc::channel::<()>(1);
    let requests = Arc::new(AtomicU64::new(0));
    let requested = Arc::new(tokio::sync::Notify::new());
    let service = {
        let (server, requests, asked) = (server.clone(), requests.clone(), requested.clone());
        service_fn(move |request| {
            requests.fetch_add(1, Ordering::Relaxed);
            asked.notify_one();
            let (server, streams) = (server.clone(), streams.clone());
            async move { Ok::<_, Infallible>(upgrade::route::<I>(request, peer, server, streams).await) }
        })
    };
    let idle_count = all_closed.sender_strong_count();
    let config = &server.config;
    // On the heap, so that it can be dropped before the connection task ends.
    let mut http = Box::pin(
        http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .enable_connect_protocol()
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_send_buf_size(SEND_BUFFER)
            .max_concurrent_streams(config.h2_max_streams)
            .max_header_list_size(HEADER_LIST)
            // A peer gone without a word: the WebSockets find out by their own pings, a
            // connection with none by these.
            .keep_alive_interval(config.ping_interval)
            .keep_alive_timeout(config.ping_interval)
            .serve_connection(TokioIo::new(io), service),
    );
    let mut shutdown = server.shutdown.clone();
    let mut idle = tokio::time::interval(config.http_timeout);
    idle.reset();
    let (mut seen, mut closing) = (0, false);
    loop {
        tokio::select! {
            result = &mut http => {
                log_end(result, peer);
                break;
            }
            _ = shutdown.changed(), if !closing => {
                closing = true;
                // As over HTTP/1.1: a connection accepted just before has a moment for its
                // first request, which GOAWAY would otherwise refuse.
                if requests.load(Ordering::Relaxed) == 0 {
                    let first = tokio::time::timeout(FIRST_REQUEST_GRACE, requested.notified());
                    tokio::select! {
                        result = &mut http => {
                            log_end(result, peer);
                            break;
                        }
                        _ = first => {}
                    }
                }
                http.as_mut().graceful_shutdown();
            }
            _ = idle.tick() => {
                let now = requests.load(Ordering::Relaxed);
                let open = all_closed.sender_strong_count() > idle_count;
                if closing && !open {
                    // GOAWAY was sent an interval ago, and the client holds on to nothing.
                    debug!(%peer, "HTTP/2 connection closed after GOAWAY went unheeded");
                    break;
                }
                if now == seen && !open {
                    debug!(%peer, "HTTP/2 connection idle: GOAWAY");
                    closing = true;
                    http.as_mut().graceful_shutdown();
                }
                seen = now;
            }
        }
    }
    // Let go of hyper (and the service's clone of `streams`), then wait for the WebSockets
    // that were on it, which fail fast now that their streams are gone.
    drop(http);
    let _ = tokio::time::timeout(config.shutdown_timeout, all_closed.recv()).await;
    drop(alive);
}
