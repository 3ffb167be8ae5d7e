//! The echo server of the seed chapter: a WebSocket at `/` that answers every text message
//! `m` with `prefix + m` (the seed's `"Received:  "` by default) and echoes binary messages
//! unchanged, and the demo page on plain HTTP `GET`, all on one port.
//!
//! How a connection flows through the modules:
//!
//! - [`serve`] accepts TCP connections and hands each to hyper's HTTP/1 server, so that every
//!   request, good or bad, gets a real HTTP answer.
//! - [`handshake`] decides what a request is: a valid WebSocket upgrade at `/` gets
//!   `101 Switching Protocols`; a broken one gets the HTTP status that names its fault; anything
//!   else is a plain request for a file, answered by [`files`].
//! - After the `101`, the upgraded connection is unwrapped back to the plain socket and handed to
//!   tokio-tungstenite, and [`echo`] runs the echo loop on it until the close handshake is done.
//!   From then on hyper is out of the way: the echo path costs the same as tokio-tungstenite alone.
//!
//! The binary (`src/main.rs`) only parses arguments, binds the listener and calls [`serve`].

pub mod controls;
pub mod echo;
pub mod files;
pub mod handshake;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::{debug, info, warn};

/// The seed's reply prefix: `"Received:  " + msg`, with two spaces.
pub const DEFAULT_PREFIX: &str = "Received:  ";

/// The seed's address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:1234";

/// Everything a running server needs to know; shared read-only by all connections.
#[derive(Clone, Debug)]
pub struct Config {
    /// Prepended to every text message in the reply; empty for a pure echo.
    pub prefix: String,
    /// Directory served on plain `GET`; `None` serves no files (every such request gets 404).
    pub www: Option<PathBuf>,
    /// Subprotocols the server speaks, in order of preference.
    pub protocols: Vec<String>,
    /// How long a client may take to send its request headers.
    pub handshake_timeout: Duration,
    /// tungstenite's limits and buffer sizes for each WebSocket.
    pub websocket: WebSocketConfig,
    /// Whether the test-only [`controls`] are on.
    pub test_controls: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            prefix: DEFAULT_PREFIX.to_owned(),
            www: None,
            protocols: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            websocket: WebSocketConfig::default(),
            test_controls: false,
        }
    }
}

/// What every connection of a running server shares.
#[derive(Debug, Default)]
pub struct Server {
    pub config: Config,
    pub controls: controls::Controls,
}

/// The response type of every HTTP answer the server gives.
pub type HttpResponse = Response<Full<Bytes>>;

/// Accepts connections on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let server = Arc::new(Server {
        config,
        controls: controls::Controls::default(),
    });
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
            () = &mut shutdown => return,
        };
        // Echo replies are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, peer, server.clone()));
    }
}

/// Serves one TCP (or TLS) connection: HTTP requests until one of them upgrades.
async fn connection<I>(io: I, peer: SocketAddr, server: Arc<Server>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = server.config.handshake_timeout;
    let service = service_fn(move |request| {
        let server = server.clone();
        async move { Ok::<_, Infallible>(route::<I>(request, peer, server).await) }
    });
    let result = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
    if let Err(error) = result {
        debug!(%peer, %error, "HTTP connection ended with an error");
    }
}

/// Answers one HTTP request: a WebSocket upgrade, or a file.
async fn route<I>(request: Request<Incoming>, peer: SocketAddr, server: Arc<Server>) -> HttpResponse
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = &server.config;
    if !handshake::is_upgrade_attempt(&request) {
        return files::respond(config.www.as_deref(), &request).await;
    }
    if config.test_controls && server.controls.in_outage() {
        let body = "down for a test outage\n";
        return handshake::plain(hyper::StatusCode::SERVICE_UNAVAILABLE, body);
    }
    let accepted = match handshake::accept(&request, &config.protocols) {
        Ok(accepted) => accepted,
        Err(rejection) => {
            info!(%peer, ?rejection, status = %rejection.status(), "handshake rejected");
            return rejection.into_response();
        }
    };
    let drop_all = config.test_controls.then(|| server.controls.subscribe());
    tokio::spawn(async move {
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
        let socket = WebSocketStream::from_partially_read(
            parts.io.into_inner(),
            parts.read_buf.to_vec(),
            Role::Server,
            Some(server.config.websocket),
        )
        .await;
        echo::run(socket, peer, &server, drop_all).await;
    });
    accepted
}
