//! The upgrade pipeline: [`route`] sends each HTTP request on its way, and an upgrade
//! through its steps, each a function of its own (the outage check, the handshake, the
//! origin policy, the connection permit); a refused one gets the status its [`Refusal`]
//! names, an accepted one its `101` and [`spawn_websocket`], which runs the echo
//! `Handler` once hyper has sent the `101`. Over HTTP/2 (`http2`) the same steps answer an
//! extended `CONNECT`, with `200`, and the `Handler` runs on the upgraded stream.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HOST, ORIGIN};
use hyper::{Request, StatusCode, Version};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::{debug, info, warn};

use crate::response::{self, HttpResponse, plain};
use crate::{Server, controls, deflate, echo, handshake, telemetry};

/// Answers one HTTP request: an upgrade goes through the WebSocket steps, anything else is a
/// request for the page.
pub(crate) async fn route<I>(
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
    let protocols = &server.config.protocols;
    let accepted = match request.version() {
        Version::HTTP_2 => handshake::accept_connect(request, protocols),
        _ => handshake::accept(request, protocols),
    };
    let mut response = accepted.map_err(|rejection| {
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
    // HTTP/2 names the host in `:authority` (RFC 9113 section 8.3.1), which hyper puts in
    // the URI; `Host` only if the client sent one instead.
    let authority = request
        .uri()
        .authority()
        .map(|authority| authority.as_str());
    let (origin, host) = (header(ORIGIN), header(HOST).or(authority));
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
    server.memory.saw(server.open_connections());
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
    // The task keeps what it captures for the connection's life, beside the echo loop's own
    // state: so it captures the upgrade to come (8 bytes), not the request (264), and keeps
    // no binding it has moved from (benchmark scenario 4b, memory per idle connection).
    let version = request.version();
    let upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => return debug!(%peer, %error, "upgrade failed"),
        };
        let over = telemetry::Over::opened(version);
        // Unwrap hyper's upgraded connection back to the socket it came from, so that the
        // WebSocket reads and writes the socket directly, without a boxed layer between; the
        // socket stack is made (`echo::open`) in this statement, so that no state of the task
        // holds hyper's parts (over TLS, the whole connection) while it waits.
        let opening = match upgraded.downcast::<TokioIo<I>>() {
            // `read_buf` shares hyper's whole read buffer: copy what it holds and let the
            // buffer go now, rather than keep it for the life of the connection.
            Ok(parts) => Opening::Direct(echo::open(
                parts.io.into_inner(),
                parts.read_buf.to_vec(),
                deflate,
                &server,
            )),
            // HTTP/2: a stream of a connection that hyper goes on serving.
            Err(stream) => {
                let stream = TokioIo::new(stream);
                Opening::Stream(echo::open(stream, Vec::new(), deflate, &server))
            }
        };
        match opening {
            Opening::Direct(opening) => {
                let handler = echo::Handler::new(opening.await, deflate, peer, &server);
                Box::new(handler).run(drop_all).await;
            }
            Opening::Stream(opening) => {
                let handler = echo::Handler::new(opening.await, deflate, peer, &server);
                Box::new(handler).run(drop_all).await;
            }
        }
        // Held until the connection ends.
        drop((over, permit, alive));
    });
}

/// A socket stack being made: on the connection itself, or on an HTTP/2 stream.
enum Opening<D, S> {
    Direct(D),
    Stream(S),
}
