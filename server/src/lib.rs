//! The echo server of the seed chapter: a WebSocket at `/` that answers every text message
//! `m` with `prefix + m` (the seed's `"Received:  "` by default) and echoes binary messages
//! unchanged, and the demo page on plain HTTP `GET`, all on one port.
//!
//! How a connection flows through the modules:
//!
//! - [`serve`] accepts TCP connections (through rustls with [`Config::tls`], `tls`) and hands
//!   each to hyper's HTTP/1 server, so that every request, good or bad, gets a real HTTP answer.
//!   `route` sends a request on its way: a plain `GET` to `/healthz`, `/metrics` (`telemetry`)
//!   or a file of the page (`files`); an upgrade through its steps, each a function of its
//!   own: the outage check (`controls`), the handshake (`handshake`: `101`, or the status that
//!   names the fault), the origin policy (`origin`), the connection permit, and the spawned
//!   connection task.
//! - After the `101`, the upgraded connection is unwrapped back to the plain socket, wrapped in
//!   `read_ahead` and `utf8_guard`, handed to tokio-tungstenite, and `echo::Handler` runs it
//!   until the close handshake is done. From then on hyper is out of the way.
//! - `response` holds the answers every module gives; `memory` gives memory back to the system
//!   once connections close.
//!
//! Every limit is in [`Config`], with a safe default: message size, connection count, handshake
//! and HTTP time, header size, keepalive, and how long a peer that does not read may hold a
//! reply. Shutdown sends every client Close 1001 and waits, for a bounded time, for the
//! handshakes.
//!
//! The binary (`src/main.rs`) only parses arguments, binds the listener and calls [`serve`].

/// `AsyncWrite` for a wrapper that only watches or buffers reads: every write goes straight to
/// its `inner` socket.
macro_rules! forward_writes {
    ($wrapper:ident) => {
        impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $wrapper<S> {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }
        }
    };
}
pub(crate) use forward_writes;

mod controls;
mod deflate;
mod echo;
mod files;
mod handshake;
mod memory;
mod origin;
mod read_ahead;
mod response;
pub mod telemetry;
pub mod tls;
mod utf8_guard;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HOST, ORIGIN};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, info, warn};

use crate::response::{HttpResponse, plain};

/// The seed's reply prefix: `"Received:  " + msg`, with two spaces.
pub const DEFAULT_PREFIX: &str = "Received:  ";

/// The seed's address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:1234";

/// Everything a running server needs to know; shared read-only by all connections.
#[derive(Clone, Debug)]
pub struct Config {
    /// Prepended to every text message in the reply; empty for a pure echo.
    pub prefix: String,
    /// Directory served on plain `GET` (the page: `index.html`, its style, icon and `pkg/`);
    /// `None` serves no files (every such request gets 404).
    pub www: Option<PathBuf>,
    /// Subprotocols the server speaks, in order of preference.
    pub protocols: Vec<String>,
    /// Origins accepted besides the server's own pages, matched exactly; `null` accepts pages
    /// opened from files, `*` accepts all.
    pub allowed_origins: Vec<String>,
    /// The names the server answers to, besides IP addresses (and loopback names while bound
    /// to loopback): a page's origin counts as the server's own only with one of these as
    /// `Host`, which shuts out DNS rebinding.
    pub hosts: Vec<String>,
    /// Development: accept pages opened from files (`Origin: null`) and pages of any loopback
    /// origin. Never on a public server.
    pub dev_origins: bool,
    /// The largest message, and frame, accepted; larger gets Close 1009.
    pub max_message_size: usize,
    /// WebSocket connections at once; past it, handshakes get 503.
    pub max_connections: usize,
    /// How long a client may take to send its request headers.
    pub handshake_timeout: Duration,
    /// How long a connection may speak HTTP before it upgrades: requests, files and a client
    /// that does not read them all count; then it is closed.
    pub http_timeout: Duration,
    /// A connection silent for this long is pinged.
    pub ping_interval: Duration,
    /// A connection silent for this long is closed.
    pub idle_timeout: Duration,
    /// How long a reply may wait for a peer that does not read before it is dropped.
    pub send_timeout: Duration,
    /// How long shutdown waits for the close handshakes.
    pub shutdown_timeout: Duration,
    /// Whether to negotiate permessage-deflate (RFC 7692) with clients that offer it, always
    /// without context takeover, so that an idle connection keeps no compression state.
    pub deflate: bool,
    /// With `deflate`, replies shorter than this many bytes go out uncompressed, as do those
    /// that compression would not shrink; 0 compresses every reply.
    pub deflate_threshold: usize,
    /// Whether the test-only controls (`!close`, `!drop`, `!outage` text messages) are on.
    pub test_controls: bool,
    /// TLS, for `wss://` ([`tls::load`]); `None` serves plain `ws://`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Renders `/metrics` when set ([`telemetry::install`]).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            prefix: DEFAULT_PREFIX.to_owned(),
            www: None,
            protocols: Vec::new(),
            allowed_origins: Vec::new(),
            hosts: Vec::new(),
            dev_origins: false,
            max_message_size: 1 << 20,
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            http_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            send_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
            deflate: false,
            deflate_threshold: 1024,
            test_controls: false,
            tls: None,
            metrics: None,
        }
    }
}

impl Config {
    /// tungstenite's settings: the size limits, and buffers sized for an idle connection
    /// rather than for the largest message (they grow while a large message passes).
    pub fn websocket(&self) -> WebSocketConfig {
        // Small, since every connection holds it even when idle: `read_ahead` makes up for
        // it on large messages. Replies are queued up to 64 KiB before a write: the echo loop
        // flushes whenever no further message is already waiting, so this only batches the
        // replies to messages that arrived together.
        WebSocketConfig::default()
            .read_buffer_size(512)
            .write_buffer_size(64 << 10)
            .max_write_buffer_size(self.max_message_size + (64 << 10))
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size))
    }
}

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
    /// The most connections open at once lately, for `memory::give_back`.
    peak: memory::Peak,
    /// Becomes `true` when the server shuts down.
    shutdown: watch::Receiver<bool>,
}

impl Server {
    /// A server with the default configuration, for unit tests.
    #[cfg(test)]
    fn for_tests() -> Server {
        let config = Config::default();
        Server {
            origins: origin::Policy::new(&[], &[], true, false),
            page: files::Page::new(None),
            connections: Arc::new(Semaphore::new(config.max_connections)),
            peak: memory::Peak::default(),
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
    let origins = origin::Policy::new(
        &config.allowed_origins,
        &config.hosts,
        loopback,
        config.dev_origins,
    );
    let server = Arc::new(Server {
        connections: Arc::new(Semaphore::new(config.max_connections)),
        peak: memory::Peak::default(),
        controls: controls::Controls::default(),
        page: files::Page::new(config.www.clone()),
        origins,
        config,
        shutdown: stopped,
    });
    let give_back = tokio::spawn(memory::give_back(server.clone()));
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
        match &server.config.tls {
            None => tokio::spawn(connection(stream, peer, server.clone(), alive)),
            Some(tls) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
                let server = server.clone();
                tokio::spawn(async move {
                    // The TLS handshake counts against the handshake timeout too.
                    let limit = server.config.handshake_timeout;
                    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
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
    let service = service_fn(move |request| {
        let server = server.clone();
        let alive = alive.clone();
        async move { Ok::<_, Infallible>(route::<I>(request, peer, server, alive).await) }
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
                http.as_mut().graceful_shutdown();
                http.await
            }
        }
    };
    match tokio::time::timeout(http_limit, exchange).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => debug!(%peer, %error, "HTTP connection ended with an error"),
        Err(_) => debug!(%peer, "HTTP connection closed after {http_limit:?}"),
    }
}

/// Answers one HTTP request: an upgrade goes through the WebSocket steps, anything else is a
/// request for the page.
async fn route<I>(
    request: Request<Incoming>,
    peer: SocketAddr,
    server: Arc<Server>,
    alive: mpsc::Sender<()>,
) -> HttpResponse
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if !handshake::is_upgrade_attempt(&request) {
        return plain_request(&request, &server).await;
    }
    if server.config.test_controls && request.uri().path() == controls::SILENT_PATH {
        // Test control: hang like a server that accepted the connection and went away.
        tokio::time::sleep(controls::MAX_OUTAGE).await;
        return plain(StatusCode::SERVICE_UNAVAILABLE, "silent\n");
    }
    let steps = || -> Result<_, Refusal> {
        refuse_during_outage(&server)?;
        let accepted = handshake(&request, peer, &server)?;
        check_origin(&request, peer, &server)?;
        let permit = take_permit(peer, &server)?;
        Ok((accepted, permit))
    };
    match steps() {
        Ok(((accepted, deflate), permit)) => {
            spawn_websocket::<I>(request, peer, server, deflate, permit, alive);
            accepted
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// `/healthz`, `/metrics` when on, and the page's files.
async fn plain_request(request: &Request<Incoming>, server: &Server) -> HttpResponse {
    match (request.uri().path(), &server.config.metrics) {
        ("/healthz", _) => plain(StatusCode::OK, "ok\n"),
        ("/metrics", Some(metrics)) => response::metrics(metrics.render()),
        _ => server.page.respond(request).await,
    }
}

/// Why an upgrade was refused: each step's fault, answered with its status.
#[derive(Debug)]
enum Refusal {
    /// A test outage (`!outage`): 503.
    Outage,
    /// A malformed handshake: its own status.
    Handshake(handshake::Rejection),
    /// The origin policy: 403.
    Origin,
    /// Every connection permit is taken: 503.
    Full,
}

impl Refusal {
    /// The answer, counted in the metrics by its status.
    fn into_response(self) -> HttpResponse {
        let (status, body) = match self {
            Refusal::Handshake(rejection) => {
                telemetry::refused(rejection.status().as_u16());
                return rejection.into_response();
            }
            // Not counted: a test's own doing.
            Refusal::Outage => {
                let body = "down for a test outage\n";
                return plain(StatusCode::SERVICE_UNAVAILABLE, body);
            }
            Refusal::Origin => (StatusCode::FORBIDDEN, "this origin may not connect\n"),
            Refusal::Full => (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n"),
        };
        telemetry::refused(status.as_u16());
        plain(status, body)
    }
}

/// During a test outage, handshakes are refused.
fn refuse_during_outage(server: &Server) -> Result<(), Refusal> {
    if server.config.test_controls && server.controls.in_outage() {
        return Err(Refusal::Outage);
    }
    Ok(())
}

/// The `101` answer, with permessage-deflate if it is on and the client offers it in a way
/// the server can honour; or the handshake's fault.
fn handshake<B>(
    request: &Request<B>,
    peer: SocketAddr,
    server: &Server,
) -> Result<(HttpResponse, Option<deflate::Negotiated>), Refusal> {
    let mut response =
        handshake::accept(request, &server.config.protocols).map_err(|rejection| {
            info!(%peer, ?rejection, status = %rejection.status(), "handshake rejected");
            Refusal::Handshake(rejection)
        })?;
    let negotiated = server
        .config
        .deflate
        .then(|| deflate::negotiate(request.headers()))
        .flatten()
        .map(|(negotiated, answer)| {
            let headers = response.headers_mut();
            headers.insert(hyper::header::SEC_WEBSOCKET_EXTENSIONS, answer);
            negotiated
        });
    Ok((response, negotiated))
}

/// Whether the origin policy lets the page in.
fn check_origin<B>(request: &Request<B>, peer: SocketAddr, server: &Server) -> Result<(), Refusal> {
    // A header that is not visible ASCII reads as "" (never allowed), not as absent.
    let header = |name| (request.headers().get(name)).map(|v| v.to_str().unwrap_or_default());
    let (origin, host) = (header(ORIGIN), header(HOST));
    if server.origins.allows(origin, host) {
        return Ok(());
    }
    info!(%peer, origin, host, "handshake rejected: origin not allowed");
    Err(Refusal::Origin)
}

/// One of the `max_connections` permits.
fn take_permit(peer: SocketAddr, server: &Server) -> Result<OwnedSemaphorePermit, Refusal> {
    let Ok(permit) = server.connections.clone().try_acquire_owned() else {
        let limit = server.config.max_connections;
        warn!(%peer, limit, "handshake rejected: too many connections");
        return Err(Refusal::Full);
    };
    server.peak.saw(server.open_connections());
    Ok(permit)
}

/// Once hyper has sent the `101`, takes the connection back from it and runs the echo
/// `Handler` on it, holding the permit and `alive` until the connection ends.
fn spawn_websocket<I>(
    request: Request<Incoming>,
    peer: SocketAddr,
    server: Arc<Server>,
    deflate: Option<deflate::Negotiated>,
    permit: OwnedSemaphorePermit,
    alive: mpsc::Sender<()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Subscribed before the 101 is sent, so that no connection misses an outage.
    let drop_all = server
        .config
        .test_controls
        .then(|| server.controls.subscribe());
    tokio::spawn(async move {
        let _permit = permit;
        let _alive = alive;
        let upgraded = match hyper::upgrade::on(request).await {
            Ok(upgraded) => upgraded,
            Err(error) => return debug!(%peer, %error, "upgrade failed"),
        };
        // Unwrap hyper's upgraded connection back to the socket it came from, so that the
        // WebSocket reads and writes the socket directly, without a boxed layer between.
        let parts = match upgraded.downcast::<TokioIo<I>>() {
            Ok(parts) => parts,
            Err(_) => unreachable!("the connection was served as TokioIo<I>"),
        };
        // `read_buf` shares hyper's whole read buffer: copy what it holds and let the buffer
        // go now, rather than keep it for the life of the connection.
        let already_read = parts.read_buf.to_vec();
        drop(parts.read_buf);
        let socket = echo::open(parts.io.into_inner(), already_read, deflate, &server).await;
        echo::Handler::new(socket, deflate, peer, &server)
            .run(drop_all)
            .await;
    });
}
