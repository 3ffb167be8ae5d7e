//! The echo server of the seed chapter: a WebSocket at `/` that answers every text message
//! `m` with `prefix + m` (the seed's `"Received:  "` by default) and echoes binary messages
//! unchanged, and the demo page on plain HTTP `GET`, all on one port.
//!
//! How a connection flows through the modules:
//!
//! - [`serve`] accepts TCP connections (through rustls with [`Config::tls`], `tls`) and hands
//!   each to hyper's HTTP/1 server, so that every request, good or bad, gets a real HTTP answer;
//!   or, when the client chose `h2` in ALPN (or sent the HTTP/2 preface, with
//!   [`Config::h2c`]), to hyper's HTTP/2 server ([`http2`]), where every WebSocket is a stream
//!   (RFC 8441) that goes through the same route, steps and `echo::Handler`.
//!   `upgrade::route` sends a request on its way: a plain `GET` to `/healthz`, `/metrics` (`telemetry`)
//!   or a file of the page (`files`); an upgrade through its steps, each a function of its
//!   own: the outage check (`controls`), the handshake (`handshake`: `101`, or the status that
//!   names the fault), the origin policy (`origin`), the connection permit, and the spawned
//!   connection task (`upgrade`).
//! - After the `101`, the upgraded connection is unwrapped back to the plain socket, wrapped in
//!   `read_ahead` and `utf8_guard`, handed to tokio-tungstenite, and `echo::Handler` runs it
//!   until the close handshake is done. From then on hyper is out of the way.
//! - `response` holds the answers every module gives; `memory` gives memory back to the system
//!   once connections close.
//!
//! Every limit is in [`Config`] (`config`), with a safe default: message size, connection count, handshake
//! and HTTP time, header size, keepalive, and how long a peer that does not read may hold a
//! reply. Shutdown sends every client Close 1001 and waits, for a bounded time, for the
//! handshakes.
//!
//! The binary (`src/main.rs`) only parses arguments, binds the listener and calls [`serve`].

mod config;
mod controls;
// permessage-deflate lives in the workspace's `ws-deflate` crate, which the native client
// shares: one implementation for both ends.
use ws_deflate as deflate;
mod echo;
mod files;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod handover;
mod handshake;
pub mod http2;
mod memory;
mod origin;
mod read_ahead;
mod response;
pub mod telemetry;
pub mod tls;
mod upgrade;
mod utf8_guard;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{debug, info, warn};

pub use config::{Config, DEFAULT_ADDR, DEFAULT_PREFIX};

/// What every connection of a running server shares.
#[derive(Debug)]
struct Server {
    config: Config,
    controls: controls::Controls,
    /// Which pages may open a WebSocket.
    origins: origin::Policy,
    /// The page's files.
    page: files::Page,
    /// One permit for each WebSocket connection.
    connections: Arc<Semaphore>,
    /// What `memory::give_back` watches: the peak of open connections, and renewed ones.
    memory: memory::Usage,
    /// Becomes `true` when the server shuts down.
    shutdown: watch::Receiver<bool>,
}

impl Server {
    /// A server with `config`, whose listener is on loopback or not (the origin policy
    /// depends on it), serving `page`, until `shutdown` becomes `true`.
    fn new(
        config: Config,
        loopback: bool,
        page: files::Page,
        shutdown: watch::Receiver<bool>,
    ) -> Server {
        let origins = origin::Policy::new(
            &config.allowed_origins,
            &config.hosts,
            loopback,
            config.dev_origins,
        );
        Server {
            connections: Arc::new(Semaphore::new(config.max_connections)),
            memory: memory::Usage::default(),
            controls: controls::Controls::default(),
            page,
            origins,
            config,
            shutdown,
        }
    }
}

impl Server {
    /// A server with the default configuration, for unit tests and the fuzz targets.
    #[cfg(any(test, feature = "fuzzing"))]
    fn for_tests() -> Server {
        let config = Config::default();
        Server {
            origins: origin::Policy::new(&[], &[], true, false),
            page: files::Page::new(None),
            connections: Arc::new(Semaphore::new(config.max_connections)),
            memory: memory::Usage::default(),
            controls: controls::Controls::default(),
            config,
            shutdown: watch::channel(false).1,
        }
    }

    /// How many WebSocket connections are open.
    fn open_connections(&self) -> usize {
        self.config.max_connections - self.connections.available_permits()
    }
}

/// The listen backlog: connections the kernel completes before the server accepts them. The
/// usual 128 overflows under a burst of connections, whose SYNs are then retried a second
/// later; the kernel caps it at `net.core.somaxconn` (4096 by default).
pub const BACKLOG: u32 = 4096;

/// Binds `addr` (the first address it resolves to) with [`BACKLOG`] and `SO_REUSEADDR`, so that
/// a restarted server can listen while the old connections linger in TIME_WAIT.
pub async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let addr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other("the address resolves to nothing"))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Accepts connections on `listener` until `shutdown` completes; then sends every WebSocket
/// Close 1001 and returns once they have all closed, or `shutdown_timeout` has passed.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (stop, stopped) = watch::channel(false);
    let loopback = listener
        .local_addr()
        .is_ok_and(|addr| addr.ip().is_loopback());
    let page = files::Page::new(config.www.clone());
    let server = Arc::new(Server::new(config, loopback, page, stopped));
    let give_back = tokio::spawn(memory::give_back(server.clone()));
    let tls = (server.config.tls.as_ref()).map(|tls| tls::with_alpn(tls, server.config.http2));
    // Every connection task holds a clone of `alive`; `all_closed` ends when the last is gone.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Running out of file descriptors is the usual cause; accepting again at
                    // once would spin, so give the other connections time to finish.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Echo replies are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let alive = alive.clone();
        match &tls {
            None if server.config.h2c => {
                tokio::spawn(cleartext(stream, peer, server.clone(), alive))
            }
            None => tokio::spawn(connection(stream, peer, server.clone(), alive)),
            Some(tls) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
                let server = server.clone();
                tokio::spawn(async move {
                    // The TLS handshake counts against the handshake timeout too.
                    let limit = server.config.handshake_timeout;
                    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
                            http2::connection(stream, peer, server, alive).await
                        }
                        Ok(Ok(stream)) => connection(stream, peer, server, alive).await,
                        Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                })
            }
        };
    }
    drop(listener);
    info!("shutting down: closing every connection with 1001");
    let _ = stop.send(true);
    drop(alive);
    let deadline = server.config.shutdown_timeout;
    if tokio::time::timeout(deadline, all_closed.recv())
        .await
        .is_err()
    {
        warn!("shutdown: some connections did not close within {deadline:?}");
    }
    give_back.abort();
}

/// Serves one TCP (or TLS) connection: HTTP requests until one of them upgrades, for
/// `http_timeout` at most, so that a client that never reads its answer cannot hold one.
async fn connection<I>(io: I, peer: SocketAddr, server: Arc<Server>, alive: mpsc::Sender<()>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = &server.config;
    let (header_limit, http_limit) = (config.handshake_timeout, config.http_timeout);
    let mut shutdown = server.shutdown.clone();
    // Whether a request has come: a connection accepted just before a shutdown (or a
    // handover to a new instance) is given a moment for its first request, which hyper's
    // graceful shutdown would otherwise refuse by closing the idle connection, so that a
    // handshake that reached this instance is answered, not reset.
    let requested = Arc::new(tokio::sync::Notify::new());
    let asked = requested.clone();
    let service = service_fn(move |request| {
        let server = server.clone();
        let alive = alive.clone();
        asked.notify_one();
        async move { Ok::<_, Infallible>(upgrade::route::<I>(request, peer, server, alive).await) }
    });
    let http = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_limit)
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(http);
    let exchange = async {
        tokio::select! {
            result = &mut http => result,
            _ = shutdown.changed() => {
                let first = tokio::time::timeout(FIRST_REQUEST_GRACE, requested.notified());
                tokio::select! {
                    result = &mut http => return result,
                    _ = first => {}
                }
                http.as_mut().graceful_shutdown();
                http.await
            }
        }
    };
    match tokio::time::timeout(http_limit, exchange).await {
        Ok(result) => log_end(result, peer),
        Err(_) => debug!(%peer, "HTTP connection closed after {http_limit:?}"),
    }
}

/// With `--h2c`: a cleartext connection that opens with the HTTP/2 preface goes to the HTTP/2
/// server, any other to the HTTP/1.1 one, within the handshake timeout.
async fn cleartext(
    stream: TcpStream,
    peer: SocketAddr,
    server: Arc<Server>,
    alive: mpsc::Sender<()>,
) {
    let limit = server.config.handshake_timeout;
    match tokio::time::timeout(limit, http2::starts_with_preface(&stream)).await {
        Ok(Ok(true)) => http2::connection(stream, peer, server, alive).await,
        Ok(Ok(false)) => connection(stream, peer, server, alive).await,
        Ok(Err(error)) => debug!(%peer, %error, "connection failed before its first request"),
        Err(_) => debug!(%peer, "no request within {limit:?}"),
    }
}

/// How long a connection that has sent no request yet is given for its first one once the
/// server shuts down.
const FIRST_REQUEST_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

fn log_end(result: Result<(), hyper::Error>, peer: SocketAddr) {
    if let Err(error) = result {
        debug!(%peer, %error, "HTTP connection ended with an error");
    }
}
