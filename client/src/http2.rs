//! Natively, with the `http2` feature: WebSockets as streams of a shared HTTP/2 connection
//! (RFC 8441's extended `CONNECT`), on hyper's HTTP/2 client.
//!
//! [`connect`] is asked first by each attempt of the native transport (`native.rs`). It
//! hands back a stream of an HTTP/2 connection, its `CONNECT` answered, or the request for
//! the HTTP/1.1 handshake (with the TLS connection to make it on, if it made one); the
//! caller makes the socket:
//!
//! - **Which connection.** A per-thread pool (the sockets are `!Send` and run on the thread's
//!   `LocalSet`, and so do these connections) holds the HTTP/2 connections by [`Origin`]:
//!   scheme, host, port, proxy and TLS setup. A socket takes a stream of the first
//!   connection with a free one (fewer of ours than the server's
//!   `SETTINGS_MAX_CONCURRENT_STREAMS`); if a connection is being opened, it waits for that
//!   one; otherwise it opens one, and the attempts that come meanwhile wait for it. The one
//!   that opens it does the work in its own future, so the work lives exactly as long as an
//!   attempt wants it: if that attempt is abandoned (its socket closed, its connect timeout),
//!   the next waiting attempt starts over.
//! - **Opening one** (`establish`): the way there as for HTTP/1.1 (`tunnel.rs`: directly or
//!   through the proxy), then TLS offering `h2` and `http/1.1` in ALPN. A server that picks
//!   `http/1.1` (or nothing) gets the WebSocket handshake on that same TLS connection. One
//!   that picks `h2` gets hyper's HTTP/2 handshake, and the client waits for the server's
//!   first SETTINGS: with `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1` the connection joins the
//!   pool and a task of its own drives it (`drive`); without, the origin is remembered as one
//!   without WebSockets over HTTP/2 for [`REMEMBER_REFUSAL`], and the attempt goes the
//!   HTTP/1.1 way, on a new TLS connection that offers no `h2`.
//! - **A stream** (`open_stream`): `CONNECT` with `:protocol websocket`, the request's own
//!   headers (subprotocols, the application's) without HTTP/1.1's connection headers; a `2xx`
//!   opens it, checked as tungstenite checks a `101` (the subprotocol), and tungstenite runs
//!   on the stream ([`Stream`], inside `Tunnel::Carried`, made a socket by `native.rs` with
//!   `from_raw_socket`), so that everything above the byte stream is the same as over TCP.
//! - **Dead connections.** A connection that ends (GOAWAY and its last stream, an error, a
//!   reset) leaves the pool, and the next attempt opens another; a `CONNECT` that fails on a
//!   connection that was already open (a GOAWAY came first) retires it and is tried once on a
//!   fresh one, and so is one after which the connection hears nothing at all for
//!   [`AT_RISK_AFTER`] (Chromium calls such a connection at risk): a socket whose heartbeat
//!   found the network dead does not reconnect into the same dead connection for long.
//!   hyper's keep-alive pings a connection that has streams and has been silent for
//!   [`KEEP_ALIVE`], and closes it when the ping goes unanswered as long again.
//! - **Idle connections** linger [`LINGER`] after their last stream, for the next socket (a
//!   reconnection, the next of a series), then close.
//!
//! Flow control: each stream may have [`STREAM_WINDOW`] of the server's bytes unread (a
//! socket whose application stops reading stops reading its stream, and the server's writes
//! wait), and the connection window is so large ([`CONNECTION_WINDOW`]) that no number of
//! such sockets stops the others: what the client buffers is bounded per stream instead.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http2::{Builder, Connection, SendRequest};
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError, TlsError};
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::http::{self, HeaderMap, Method, Version};

use crate::proxy::Proxy;
use crate::transport::{Http2, Options};
use crate::tunnel::{self, Failure, Tunnel};

/// The most of the server's bytes a stream may have in flight unread. One socket's
/// throughput from the server is at most this per round trip (20 MB/s at 50 ms).
pub(crate) const STREAM_WINDOW: u32 = 1 << 20;

/// The connection's window: as large as HTTP/2 allows, so that sockets that stop reading
/// (each holding at most [`STREAM_WINDOW`] unread) never stop the others. hyper's default
/// (5 MiB for the connection, 2 MiB a stream) lets three stalled sockets stop all.
pub(crate) const CONNECTION_WINDOW: u32 = (1 << 31) - 1;

/// How long a connection that was open before an attempt may stay silent after the
/// attempt's `CONNECT` before the attempt gives it up for a fresh one.
pub(crate) const AT_RISK_AFTER: Duration = Duration::from_secs(2);

/// How long a connection with streams may be silent before hyper pings it, and how long the
/// ping may then go unanswered before the connection is closed.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// How long a connection whose last stream ended is kept for the next socket.
pub(crate) const LINGER: Duration = Duration::from_secs(5);

/// How long an origin whose server speaks HTTP/2 but not WebSockets over it is remembered
/// as such: its sockets go straight to HTTP/1.1 meanwhile.
pub(crate) const REMEMBER_REFUSAL: Duration = Duration::from_secs(300);

/// How long the server may take to send its SETTINGS after the TLS handshake.
const SETTINGS_TIMEOUT: Duration = Duration::from_secs(10);

/// What an attempt asks for: the application's choice, and who it trusts (part of the
/// connection's identity: a socket never shares a connection verified otherwise).
pub(crate) struct Choice {
    mode: Http2,
    trust: Trust,
}

impl Choice {
    pub(crate) fn new(options: &Options) -> Choice {
        let trust = match &options.tls {
            Some(config) => Trust::Given(config.clone()),
            #[cfg(feature = "platform-verifier")]
            None if options.platform_verifier => Trust::Platform,
            None => Trust::Roots,
        };
        Choice {
            mode: options.http2,
            trust,
        }
    }
}

/// The TLS setup a connection was verified with.
#[derive(Clone)]
enum Trust {
    /// Mozilla's roots, the default.
    Roots,
    /// The operating system's verifier.
    #[cfg(feature = "platform-verifier")]
    Platform,
    /// The application's configuration: the same one, not an equal one.
    Given(Arc<rustls::ClientConfig>),
}

impl PartialEq for Trust {
    fn eq(&self, other: &Trust) -> bool {
        match (self, other) {
            (Trust::Roots, Trust::Roots) => true,
            #[cfg(feature = "platform-verifier")]
            (Trust::Platform, Trust::Platform) => true,
            (Trust::Given(a), Trust::Given(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// What sockets must have in common to share a connection.
#[derive(Clone, PartialEq)]
struct Origin {
    secure: bool,
    host: String,
    port: u16,
    proxy: Option<Proxy>,
    trust: Trust,
}

/// What [`connect`] came to: the byte stream for tungstenite, and where it is in the
/// WebSocket handshake. The caller makes the socket of it, as of its own connections.
pub(crate) enum Handshake {
    /// A stream of a shared HTTP/2 connection (`Tunnel::Carried`, whose TLS is the
    /// connection's) whose extended `CONNECT` the server answered (`response`, as
    /// tungstenite's, its version HTTP/2): tungstenite runs on it as it is
    /// (`WebSocketStream::from_raw_socket`).
    Opened(Tunnel, Response),
    /// For the HTTP/1.1 handshake: on this TLS connection, whose server chose HTTP/1.1 in
    /// ALPN; or (`None`, not for HTTP/2) on a connection of the caller's own, as without this
    /// module.
    Http1(Request, Option<Box<TlsStream<Tunnel>>>),
}

/// Opens a stream for the socket of `request` over HTTP/2 if `choice` and the server allow,
/// through `proxy` if any, with `tls` for a new connection.
pub(crate) async fn connect(
    request: Request,
    choice: &Choice,
    host: &str,
    port: u16,
    proxy: Option<&Proxy>,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Handshake, Failure> {
    let secure = request.uri().scheme_str() == Some("wss");
    let forced = choice.mode == Http2::Always;
    if choice.mode == Http2::Never || !(secure || forced) {
        return Ok(Handshake::Http1(request, None));
    }
    let origin = Origin {
        secure,
        host: host.to_owned(),
        port,
        proxy: proxy.cloned(),
        trust: choice.trust.clone(),
    };
    if !forced && POOL.with(|pool| pool.borrow_mut().refused(&origin)) {
        return Ok(Handshake::Http1(request, None));
    }
    let mut retried = false;
    loop {
        let (entry, lease, reused) = match take_stream(&origin, tls).await? {
            Taken::Stream(entry, lease, reused) => (entry, lease, reused),
            Taken::NotHttp2(way, why) if forced => {
                drop(way);
                return Err(Failure::Other(format!(
                    "HTTP/2 was required (Http2::Always), but {why}"
                )));
            }
            Taken::NotHttp2(way, _) => return Ok(Handshake::Http1(request, way)),
        };
        match open_stream(&entry, lease, &request, reused && !retried).await {
            Ok(opened) => return Ok(opened),
            Err(Opening::Failed(failure)) => return Err(failure),
            Err(Opening::Retry) => {
                entry.retire();
                retried = true;
            }
        }
    }
}

/// A stream slot, or why there is none.
enum Taken {
    /// A slot on this connection, which was open already (`true`) or was opened for it.
    Stream(Rc<Entry>, Lease, bool),
    /// The server does not take WebSockets over HTTP/2, and why: the TLS connection on
    /// which it chose HTTP/1.1 in ALPN (for the attempt that opened it), or none.
    NotHttp2(Option<Box<TlsStream<Tunnel>>>, &'static str),
}

/// A slot on a connection to `origin`: on one with room, on the one being opened, or on a
/// new one.
async fn take_stream(origin: &Origin, tls: &Arc<rustls::ClientConfig>) -> Result<Taken, Failure> {
    let mut waited: Option<Rc<Entry>> = None;
    loop {
        match POOL.with(|pool| pool.borrow_mut().find(origin)) {
            Found::Room(entry, lease) => {
                // One that opened while the attempt waited is as fresh as one it opened.
                let fresh = waited.as_ref().is_some_and(|w| Rc::ptr_eq(w, &entry));
                return Ok(Taken::Stream(entry, lease, !fresh));
            }
            Found::Opening(entry) => match entry.settled().await {
                // Its room is looked at again, with everyone else's.
                Settled::Ready => waited = Some(entry),
                Settled::Abandoned => {}
                Settled::NotHttp2(why) => return Ok(Taken::NotHttp2(None, why)),
                Settled::Failed(failure) => return Err(failure),
            },
            Found::Nothing => return establish(origin, tls).await,
        }
    }
}

/// Why [`open_stream`] did not open the socket.
enum Opening {
    /// For the application: the server refused, or the connection failed.
    Failed(Failure),
    /// The connection had gone away or fallen silent before this stream: another may do.
    Retry,
}

/// Opens a stream of `entry` for the socket of `request`, in the slot `lease` holds; a
/// failure is a [`Opening::Retry`] if `may_retry`.
async fn open_stream(
    entry: &Entry,
    lease: Lease,
    request: &Request,
    may_retry: bool,
) -> Result<Handshake, Opening> {
    let failed = |why: String| {
        if may_retry {
            Opening::Retry
        } else {
            Opening::Failed(Failure::Other(format!("HTTP/2: {why}")))
        }
    };
    let Some(mut send) = entry.sender() else {
        return Err(failed("the connection closed".to_owned()));
    };
    let connect = extended_connect(request, entry.origin.secure).map_err(Opening::Failed)?;
    let responding = async {
        send.ready().await?;
        send.send_request(connect).await
    };
    let response = if may_retry {
        // A connection that stays silent meanwhile is given up for a fresh one.
        tokio::select! {
            response = responding => response,
            () = entry.liveness.silent_for(AT_RISK_AFTER) => return Err(Opening::Retry),
        }
    } else {
        responding.await
    };
    let mut response = response.map_err(|error| failed(format!("CONNECT: {}", chain(&error))))?;
    let answer = verify(&response, request).map_err(Opening::Failed)?;
    let upgraded = hyper::upgrade::on(&mut response)
        .await
        .map_err(|error| failed(format!("the stream: {}", chain(&error))))?;
    let stream = Stream {
        io: TokioIo::new(upgraded),
        _lease: lease,
    };
    Ok(Handshake::Opened(Tunnel::Carried(Box::new(stream)), answer))
}

/// The extended `CONNECT` (RFC 8441 section 4) for tungstenite's `request`: its target as
/// `:scheme`, `:authority` and `:path`, `:protocol websocket`, and its headers but those of
/// HTTP/1.1's connection and upgrade, which HTTP/2 forbids or replaces.
fn extended_connect(
    request: &Request,
    secure: bool,
) -> Result<http::Request<Empty<Bytes>>, Failure> {
    const LEFT_OUT: [&str; 7] = [
        "host",
        "connection",
        "upgrade",
        "sec-websocket-key",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
    ];
    let uri = request.uri();
    let scheme = if secure { "https" } else { "http" };
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut connect = http::Request::builder()
        .method(Method::CONNECT)
        .version(Version::HTTP_2)
        .uri(format!("{scheme}://{authority}{path}"))
        .extension(hyper::ext::Protocol::from_static("websocket"));
    for (name, value) in request.headers() {
        if !LEFT_OUT.contains(&name.as_str()) {
            connect = connect.header(name, value);
        }
    }
    connect
        .body(Empty::new())
        .map_err(|error| Failure::Other(format!("HTTP/2: {error}")))
}

/// The server's answer to the extended `CONNECT`, checked as tungstenite checks a `101`
/// (RFC 6455 section 4.1, RFC 8441 section 5): a `2xx`; a subprotocol if and only if one was
/// offered, and one of those; no extension that was not offered. As tungstenite's response,
/// for `native.rs` to read as one.
fn verify(
    response: &http::Response<hyper::body::Incoming>,
    request: &Request,
) -> Result<Response, Failure> {
    let answer = {
        let mut answer = Response::new(None);
        *answer.status_mut() = response.status();
        *answer.version_mut() = Version::HTTP_2;
        *answer.headers_mut() = response.headers().clone();
        answer
    };
    if !response.status().is_success() {
        let error = tokio_tungstenite::tungstenite::Error::Http(Box::new(answer));
        return Err(Failure::Other(error.to_string()));
    }
    let headers = response.headers();
    let protocol_error = |error| {
        let error = ProtocolError::SecWebSocketSubProtocolError(error);
        Failure::Other(tokio_tungstenite::tungstenite::Error::Protocol(error).to_string())
    };
    let offered = offered_protocols(request.headers());
    match (headers.get("sec-websocket-protocol"), offered) {
        (None, Some(_)) => return Err(protocol_error(SubProtocolError::NoSubProtocol)),
        (Some(_), None) => {
            return Err(protocol_error(
                SubProtocolError::ServerSentSubProtocolNoneRequested,
            ));
        }
        (Some(chosen), Some(offered)) => {
            let chosen = chosen.to_str().unwrap_or_default();
            if !offered.iter().any(|protocol| protocol == chosen) {
                return Err(protocol_error(SubProtocolError::InvalidSubProtocol));
            }
        }
        (None, None) => {}
    }
    let extensions = "sec-websocket-extensions";
    if let Some(accepted) = headers.get(extensions)
        && !request.headers().contains_key(extensions)
    {
        let accepted = String::from_utf8_lossy(accepted.as_bytes());
        return Err(Failure::Other(format!(
            "the server accepted an extension that was not offered: {accepted}"
        )));
    }
    Ok(answer)
}

/// The subprotocols offered in `Sec-WebSocket-Protocol`, as tungstenite reads them.
fn offered_protocols(headers: &HeaderMap) -> Option<Vec<String>> {
    let offered = headers.get("sec-websocket-protocol")?.to_str().ok()?;
    Some(offered.split(',').map(|p| p.trim().to_owned()).collect())
}

/// `error` and its sources, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.ends_with(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}

// ---- The pool ----------------------------------------------------------------------------

thread_local! {
    /// This thread's connections: sockets are `!Send`, so they and their connections stay on
    /// the thread that made them.
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

#[derive(Default)]
struct Pool {
    connections: Vec<Rc<Entry>>,
    /// Origins whose server speaks HTTP/2 but not WebSockets over it, until when.
    refusing: Vec<(Origin, Instant)>,
}

/// What the pool has for an origin.
enum Found {
    /// A slot on an open connection with room.
    Room(Rc<Entry>, Lease),
    /// A connection being opened, whose attempt the caller may wait for.
    Opening(Rc<Entry>),
    /// Neither: the caller opens a connection.
    Nothing,
}

impl Pool {
    /// Whether `origin` is remembered as one without WebSockets over HTTP/2.
    fn refused(&mut self, origin: &Origin) -> bool {
        let now = Instant::now();
        self.refusing.retain(|(_, until)| *until > now);
        self.refusing.iter().any(|(refused, _)| refused == origin)
    }

    fn find(&mut self, origin: &Origin) -> Found {
        self.connections.retain(|entry| entry.in_pool());
        let mut opening = None;
        for entry in self
            .connections
            .iter()
            .filter(|entry| entry.origin == *origin)
        {
            match *entry.phase.borrow() {
                Phase::Ready(_) if entry.slots.taken() < entry.max_streams.get() => {
                    return Found::Room(entry.clone(), Lease::take(entry));
                }
                Phase::Connecting => opening = Some(entry.clone()),
                _ => {}
            }
        }
        opening.map_or(Found::Nothing, Found::Opening)
    }
}

/// One connection of the pool, from the attempt that opens it to its end.
struct Entry {
    origin: Origin,
    phase: RefCell<Phase>,
    /// Wakes the attempts waiting for it to open.
    settled: Notify,
    /// Our streams on it, open or opening.
    slots: Arc<Slots>,
    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS`, as last seen.
    max_streams: Cell<usize>,
    /// No new stream: it fell silent, or failed one.
    retired: Cell<bool>,
    liveness: Rc<Liveness>,
}

enum Phase {
    Connecting,
    Ready(SendRequest<Empty<Bytes>>),
    /// The attempts that waited learn why, and go their way.
    NotHttp2(&'static str),
    Failed(Failure),
    /// The attempt opening it was dropped: another starts over.
    Abandoned,
    /// It ended.
    Closed,
}

/// How a connection being opened settled, for an attempt that waited.
enum Settled {
    Ready,
    NotHttp2(&'static str),
    Failed(Failure),
    Abandoned,
}

impl Entry {
    fn connecting(origin: &Origin) -> Rc<Entry> {
        Rc::new(Entry {
            origin: origin.clone(),
            phase: RefCell::new(Phase::Connecting),
            settled: Notify::new(),
            slots: Arc::default(),
            max_streams: Cell::new(0),
            retired: Cell::new(false),
            liveness: Rc::new(Liveness::default()),
        })
    }

    /// Whether new streams may still look for room on it.
    fn in_pool(&self) -> bool {
        !self.retired.get() && matches!(*self.phase.borrow(), Phase::Connecting | Phase::Ready(_))
    }

    fn settle(&self, phase: Phase) {
        *self.phase.borrow_mut() = phase;
        self.settled.notify_waiters();
    }

    /// Waits until the attempt opening it succeeds or gives up.
    async fn settled(&self) -> Settled {
        loop {
            let mut notified = pin!(self.settled.notified());
            notified.as_mut().enable();
            match &*self.phase.borrow() {
                Phase::Connecting => {}
                Phase::Ready(_) => return Settled::Ready,
                Phase::NotHttp2(why) => return Settled::NotHttp2(why),
                Phase::Failed(failure) => return Settled::Failed(failure.clone()),
                Phase::Abandoned | Phase::Closed => return Settled::Abandoned,
            }
            notified.await;
        }
    }

    fn sender(&self) -> Option<SendRequest<Empty<Bytes>>> {
        match &*self.phase.borrow() {
            Phase::Ready(send) => Some(send.clone()),
            _ => None,
        }
    }

    /// Takes no new stream any more; closes once its streams have ended.
    fn retire(&self) {
        self.retired.set(true);
        self.slots.activity.notify_one();
    }
}

/// The count of a connection's streams, which each stream holds a share of: `Send`, since
/// tokio-tungstenite wants the byte stream under a socket to be.
#[derive(Default)]
struct Slots {
    taken: AtomicUsize,
    /// Wakes the connection's driver when `taken` reaches or leaves 0, or it is retired.
    activity: Notify,
}

impl Slots {
    fn taken(&self) -> usize {
        self.taken.load(Ordering::Relaxed)
    }
}

/// A stream slot on a connection: counted from the moment it is taken until the socket on
/// it is dropped (or its opening fails), so that the next socket sees the room left.
struct Lease {
    slots: Arc<Slots>,
}

impl Lease {
    fn take(entry: &Entry) -> Lease {
        let slots = entry.slots.clone();
        if slots.taken.fetch_add(1, Ordering::Relaxed) == 0 {
            slots.activity.notify_one();
        }
        Lease { slots }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.slots.taken.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.slots.activity.notify_one();
        }
    }
}

/// Whether the connection hears from the server: how many reads brought bytes.
#[derive(Default)]
struct Liveness {
    reads: Cell<u64>,
}

impl Liveness {
    fn heard(&self) {
        self.reads.set(self.reads.get().wrapping_add(1));
    }

    /// Resolves if the connection hears nothing for `period` from now; never if it does.
    async fn silent_for(&self, period: Duration) {
        let before = self.reads.get();
        tokio::time::sleep(period).await;
        if self.reads.get() != before {
            std::future::pending::<()>().await;
        }
    }
}

/// Opens a connection for `origin` and takes the first stream slot on it; the attempts that
/// come meanwhile wait for it (see [`Entry::settled`]).
async fn establish(origin: &Origin, tls: &Arc<rustls::ClientConfig>) -> Result<Taken, Failure> {
    let entry = Entry::connecting(origin);
    POOL.with(|pool| pool.borrow_mut().connections.push(entry.clone()));
    // Dropped before the connection settles (the attempt was abandoned): the waiting attempts
    // start over.
    let mut abandoned = Abandon(Some(entry.clone()));
    let opened = open_connection(origin, tls, entry.liveness.clone()).await;
    abandoned.disarm();
    match opened {
        Ok(Opened::Http2(send, connection, max_streams)) => {
            entry.max_streams.set(max_streams);
            entry.settle(Phase::Ready(send));
            let lease = Lease::take(&entry);
            crate::timer::spawn(drive(connection, entry.clone()));
            Ok(Taken::Stream(entry, lease, false))
        }
        Ok(Opened::NotHttp2(way, why)) => {
            if way.is_none() {
                // The server speaks HTTP/2 without WebSockets: its other sockets are spared
                // the try.
                let until = Instant::now() + REMEMBER_REFUSAL;
                POOL.with(|pool| pool.borrow_mut().refusing.push((origin.clone(), until)));
            }
            entry.settle(Phase::NotHttp2(why));
            Ok(Taken::NotHttp2(way, why))
        }
        Err(failure) => {
            entry.settle(Phase::Failed(failure.clone()));
            Err(failure)
        }
    }
}

/// Marks `entry` abandoned when dropped, unless disarmed.
struct Abandon(Option<Rc<Entry>>);

impl Abandon {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if let Some(entry) = self.0.take() {
            entry.settle(Phase::Abandoned);
        }
    }
}

/// The byte stream under an HTTP/2 connection: TLS (or, for `ws://` forced to HTTP/2,
/// cleartext) over the way to the server, watched for [`Liveness`].
type Io = TokioIo<Watched>;

/// A connection as hyper hands it over: the future that drives it.
type Driven = Pin<Box<Connection<Io, Empty<Bytes>, Spawner>>>;

/// What opening a connection came to.
enum Opened {
    /// HTTP/2 with WebSockets: its sender, its driver and the server's stream limit.
    Http2(SendRequest<Empty<Bytes>>, Driven, usize),
    /// Not for WebSockets over HTTP/2, and why: the TLS connection whose ALPN chose HTTP/1.1
    /// (usable for this attempt's handshake), or none (the server's SETTINGS refused).
    NotHttp2(Option<Box<TlsStream<Tunnel>>>, &'static str),
}

async fn open_connection(
    origin: &Origin,
    tls: &Arc<rustls::ClientConfig>,
    liveness: Rc<Liveness>,
) -> Result<Opened, Failure> {
    let way = tunnel::open(&origin.host, origin.port, origin.proxy.as_ref(), tls).await?;
    let io = if origin.secure {
        let name = rustls::pki_types::ServerName::try_from(origin.host.clone()).map_err(|_| {
            let error = tokio_tungstenite::tungstenite::Error::Tls(TlsError::InvalidDnsName);
            Failure::Other(error.to_string())
        })?;
        let mut config = (**tls).clone();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let connected = TlsConnector::from(Arc::new(config))
            .connect(name, way)
            .await;
        // In tungstenite's words, as when it made the TLS connection itself.
        let tls = connected.map_err(|error| {
            Failure::Other(tokio_tungstenite::tungstenite::Error::Io(error).to_string())
        })?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            let why = "the server did not choose HTTP/2 in ALPN";
            return Ok(Opened::NotHttp2(Some(Box::new(tls)), why));
        }
        MaybeTlsStream::Rustls(tls)
    } else {
        MaybeTlsStream::Plain(way)
    };
    let hook = Rc::new(Hook::default());
    let io = TokioIo::new(Watched { io, liveness });
    let http2_error = |error: hyper::Error| Failure::Other(format!("HTTP/2: {}", chain(&error)));
    let (send, connection) = Builder::new(Spawner { hook: hook.clone() })
        .timer(TokioTimer::new())
        // No stream before the server's SETTINGS: until they come, this reads 0.
        .initial_max_send_streams(0)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .keep_alive_interval(KEEP_ALIVE)
        .keep_alive_timeout(KEEP_ALIVE)
        .handshake::<_, Empty<Bytes>>(io)
        .await
        .map_err(http2_error)?;
    let mut connection = Box::pin(connection);
    // The server's first frame is its SETTINGS; hyper's connection task reads it, and the
    // executor's hook wakes this wait after each of its polls.
    let settings = poll_fn(|cx| {
        hook.waker.replace(Some(cx.waker().clone()));
        if let Poll::Ready(result) = connection.as_mut().poll(cx) {
            return Poll::Ready(Err(result));
        }
        match connection.current_max_send_streams() {
            0 => Poll::Pending,
            max => Poll::Ready(Ok((max, connection.is_extended_connect_protocol_enabled()))),
        }
    });
    let settings = tokio::time::timeout(SETTINGS_TIMEOUT, settings).await;
    drop(hook.waker.take());
    match settings {
        Err(_) => Err(Failure::Other(
            "HTTP/2: the server sent no SETTINGS".to_owned(),
        )),
        Ok(Err(Err(error))) => Err(http2_error(error)),
        Ok(Err(Ok(()))) => Err(Failure::Other(
            "HTTP/2: the server closed the connection before its SETTINGS".to_owned(),
        )),
        Ok(Ok((_, false))) => Ok(Opened::NotHttp2(
            None,
            "the server's HTTP/2 SETTINGS do not allow WebSockets (no ENABLE_CONNECT_PROTOCOL)",
        )),
        Ok(Ok((max, true))) => Ok(Opened::Http2(send, connection, max)),
    }
}

/// A pooled connection's task: drives hyper's side of it until it ends, or until it has had
/// no stream for [`LINGER`] (at once once retired); then it leaves the pool, and dropping
/// its sender and driver closes it.
async fn drive(mut connection: Driven, entry: Rc<Entry>) {
    // Also when the task is dropped with its `LocalSet` (a runtime shut down): the pool must
    // not offer a connection whose driver is gone.
    let _closes = Closes(entry.clone());
    let running = poll_fn(|cx| {
        let polled = connection.as_mut().poll(cx);
        entry.max_streams.set(connection.current_max_send_streams());
        polled
    });
    let slots = &entry.slots;
    let idle = async {
        loop {
            if slots.taken() > 0 {
                slots.activity.notified().await;
            } else if entry.retired.get() {
                return;
            } else {
                let more = tokio::time::timeout(LINGER, slots.activity.notified()).await;
                if more.is_err() && slots.taken() == 0 {
                    return;
                }
            }
        }
    };
    tokio::select! {
        _ = running => {}
        () = idle => {}
    }
}

/// Marks a connection closed when its driver ends; dropping it leaves the pool, and dropping
/// its sender closes it.
struct Closes(Rc<Entry>);

impl Drop for Closes {
    fn drop(&mut self) {
        self.0.settle(Phase::Closed);
    }
}

/// Where hyper's HTTP/2 client runs its tasks (the connection's I/O, each request, each
/// upgraded stream's writer): local tasks on the thread's `LocalSet`, as the sockets. After
/// each poll of one of them it wakes whoever waits on the hook: the wait for the server's
/// SETTINGS, which hyper's connection task reads.
#[derive(Clone)]
struct Spawner {
    hook: Rc<Hook>,
}

#[derive(Default)]
struct Hook {
    waker: Cell<Option<Waker>>,
}

impl<F> hyper::rt::Executor<F> for Spawner
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        let hook = self.hook.clone();
        crate::timer::spawn(async move {
            let mut future = pin!(future);
            poll_fn(|cx| {
                let polled = future.as_mut().poll(cx);
                if let Some(waker) = hook.waker.take() {
                    waker.wake();
                }
                polled.map(drop)
            })
            .await;
        });
    }
}

/// The connection's byte stream, noting when it hears from the server ([`Liveness`]).
struct Watched {
    io: MaybeTlsStream<Tunnel>,
    liveness: Rc<Liveness>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.liveness.heard();
        }
        polled
    }
}

ws_deflate::forward_writes!(Watched, io);

/// A WebSocket's stream of a shared connection: the upgraded `CONNECT`, holding its slot.
struct Stream {
    io: TokioIo<Upgraded>,
    _lease: Lease,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

ws_deflate::forward_writes!(Stream, io);
