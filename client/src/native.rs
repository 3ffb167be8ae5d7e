//! The native transport: one tokio-tungstenite connection, driven by a local task on the
//! application's tokio `LocalSet`, with rustls (ring) for `wss://`, directly or through a
//! proxy (`tunnel.rs`, as `proxy.rs` chooses), and permessage-deflate if asked for
//! (`Builder::deflate`): the workspace's `ws-deflate`, which the echo server uses too,
//! between the socket (after TLS) and tungstenite.
//!
//! It behaves as the browser's `WebSocket` does, since the state machine above it
//! (`socket.rs`) was written against that: `send` never waits (the bytes go to an
//! unbounded buffer whose size is [`Connection::buffered_amount`], which `send_async` and the
//! sinks keep under the high-water mark); `close` starts the close handshake; a connection
//! that fails before it opens reports an error and then a close with 1006; one lost after
//! it opened reports a close with 1006 only; and dropping the connection closes it with 1000
//! without any further event. Unlike the browser, the task reads only while the socket's
//! inboxes have room ([`Builder::receive_limit`](crate::Builder::receive_limit)), so a slow
//! reader makes TCP push back on the server. With the `http2` feature, `http2.rs` may open
//! the connection as a stream of a shared HTTP/2 connection instead; tungstenite runs on
//! it all the same.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::{Sink, Stream as _};
use tokio::sync::Notify;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message as WireMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{
    CapacityError, Error as WireError, ProtocolError, TlsError,
};
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, client_async_with_config};
use ws_deflate::{Compressor, Inflate, InflateError, ResponseHead, accept_response, inflate_error};

use crate::error::Error;
use crate::event::Unsent;
use crate::message::{CloseEvent, Message, NORMAL_CLOSURE, State};
use crate::payload::Payload;
use crate::proxy::{self, Proxy};
use crate::timer::{sleep, spawn_local};
use crate::tracked::Tracked;
use crate::transport::{Listener, Options};
use crate::tunnel::{self, Failure, Tunnel};

/// How long a close handshake may take before the connection is dropped: the peer may never
/// answer (a stalled server, or one found dead by the heartbeat).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The room tungstenite reads into, which it zero-fills before every read. At 64 KiB a
/// 64 KiB message takes 1.1 `recvfrom` (2.2 at 32 KiB) and a 1 MiB one 16 (32), for about
/// 250 more instructions (5%) per 32-byte message than at 32 KiB (callgrind with glibc's
/// vector `memset`; counted a byte at a time, as `rep stosb` is by default, the fill had
/// looked ten times as dear). tungstenite's default, 128 KiB, halves the big messages' reads
/// again, but a socket's window is resident memory for its life (the fill touches it all).
const READ_BUFFER: usize = 64 * 1024;

/// How long the Close that fails a connection (a message too big, invalid UTF-8, a protocol
/// error of the server's) may take to be written before the connection is dropped anyway.
const FAIL_TIMEOUT: Duration = Duration::from_secs(1);

/// The socket stack: tungstenite over the inflating layer (inert unless permessage-deflate
/// was agreed) over the layer that keeps tungstenite's handshake from reading past the
/// server's answer, over TLS (for `wss://`) over the way to the server.
type Stream = WebSocketStream<Inflate<ResponseHead<MaybeTlsStream<Tunnel>>>>;

/// One tokio-tungstenite connection: the state it shares with its task.
pub(crate) struct Connection {
    link: Rc<Link>,
}

/// What the connection and its task both see.
struct Link {
    url: String,
    state: Cell<State>,
    /// Bytes sent by the application and not yet written to the socket.
    buffered: Cell<u32>,
    protocol: RefCell<String>,
    /// The HTTP version of the handshake, once open.
    #[cfg(feature = "http2")]
    version: Cell<Option<crate::HttpVersion>>,
    /// The server's `Sec-WebSocket-Extensions`, as it answered.
    extensions: RefCell<String>,
    /// With permessage-deflate agreed, what compresses each message sent.
    compressor: RefCell<Option<Compressor>>,
    /// Set when the connection is dropped: no event of its may reach the socket any more.
    detached: Cell<bool>,
    /// Wakes a task whose handshake is under way when the application closes it.
    abort: Notify,
    /// The open stream. `send` writes to it at once, from the application's task, when it
    /// can: a hop to the connection's task and back costs a round trip half its speed. The
    /// task reads from it, and finishes what `send` could not.
    stream: RefCell<Option<Stream>>,
    /// What the task is to write, in order, before anything sent later: the socket had no
    /// room, or a close.
    waiting: RefCell<VecDeque<Command>>,
    /// Wakes the task: commands wait, or a write is to be flushed.
    work: Notify,
}

/// Where an attempt's TCP connection goes: the server's host and port, through its proxy if
/// it has one.
struct Destination {
    host: String,
    port: u16,
    proxy: Option<Proxy>,
    /// Whether it may be a stream of a shared HTTP/2 connection (`http2.rs`).
    #[cfg(feature = "http2")]
    http2: crate::http2::Choice,
}

enum Command {
    Send(Message),
    Close(u16, String),
}

impl Connection {
    pub(crate) fn open(
        listener: Weak<dyn Listener>,
        url: &str,
        options: &Options,
    ) -> Result<Connection, Error> {
        let request = request(url, options)?;
        let uri = request.uri();
        let secure = uri.scheme_str() == Some("wss");
        let host = uri.host().unwrap_or_default();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        // The environment is read at each attempt, as a program started anew would.
        let proxy = proxy::choose(&options.proxy, secure, host, |name| {
            std::env::var(name).ok()
        })?;
        let destination = Destination {
            host: host.to_owned(),
            port,
            proxy,
            #[cfg(feature = "http2")]
            http2: crate::http2::Choice::new(options),
        };
        let link = Rc::new(Link {
            url: url.to_owned(),
            state: Cell::new(State::Connecting),
            buffered: Cell::new(0),
            protocol: RefCell::new(String::new()),
            #[cfg(feature = "http2")]
            version: Cell::new(None),
            extensions: RefCell::new(String::new()),
            compressor: RefCell::new(None),
            detached: Cell::new(false),
            abort: Notify::new(),
            stream: RefCell::new(None),
            waiting: RefCell::new(VecDeque::new()),
            work: Notify::new(),
        });
        // Made here, where the options are at hand; a failure fails the attempt.
        let tls = tls(options);
        let deflate = options.deflate;
        let task = run(listener, link.clone(), request, destination, tls, deflate);
        // The task counts as one of the crate's closures while it lives: it is what the
        // browser transport's four closures are.
        let tracked = Tracked::new(());
        spawn_local(async move {
            task.await;
            drop(tracked);
        })
        .ok_or(Error::NoLocalSet)?;
        Ok(Connection { link })
    }

    pub(crate) fn state(&self) -> State {
        self.link.state.get()
    }

    pub(crate) fn send(&self, message: Message) -> Result<(), Unsent> {
        let state = self.state();
        if state != State::Open {
            return crate::transport::not_open(state, message);
        }
        let size = u32::try_from(payload_of(&message).len()).unwrap_or(u32::MAX);
        let link = &self.link;
        // Straight to the socket while nothing waits before it; what it does not flush, or
        // cannot take, the task finishes.
        let waiting = if link.waiting.borrow().is_empty() {
            match link.write_now(message) {
                Ok(true) => return Ok(()),
                // In tungstenite's buffer until the task flushes it.
                Ok(false) => None,
                Err(message) => Some(message),
            }
        } else {
            Some(message)
        };
        link.buffered.set(link.buffered.get().saturating_add(size));
        if let Some(message) = waiting {
            link.waiting.borrow_mut().push_back(Command::Send(message));
        }
        link.work.notify_one();
        Ok(())
    }

    pub(crate) fn close(&self, code: u16, reason: &str) {
        match self.state() {
            State::Connecting => {
                // As the browser: closing before the handshake completes fails the
                // connection (1006), without a Close frame.
                self.link.state.set(State::Closing);
                self.link.abort.notify_one();
            }
            State::Open => {
                self.link.state.set(State::Closing);
                let close = Command::Close(code, reason.to_owned());
                self.link.waiting.borrow_mut().push_back(close);
                self.link.work.notify_one();
            }
            State::Closing | State::Reconnecting | State::Closed => {}
        }
    }

    pub(crate) fn buffered_amount(&self) -> u32 {
        self.link.buffered.get()
    }

    pub(crate) fn url(&self) -> String {
        self.link.url.clone()
    }

    pub(crate) fn protocol(&self) -> String {
        self.link.protocol.borrow().clone()
    }

    /// The extensions the server accepted, as its answer names them.
    pub(crate) fn extensions(&self) -> String {
        self.link.extensions.borrow().clone()
    }

    #[cfg(feature = "http2")]
    pub(crate) fn http_version(&self) -> Option<crate::HttpVersion> {
        self.link.version.get()
    }
}

impl Link {
    /// Writes `message` to the socket now, without waiting: whether it was flushed too, or
    /// the message back if the stream cannot take it now (the task writes it later). A broken
    /// stream takes it: the reading side sees the connection end.
    fn write_now(&self, message: Message) -> Result<bool, Message> {
        let Ok(mut stream) = self.stream.try_borrow_mut() else {
            return Err(message);
        };
        let Some(stream) = stream.as_mut() else {
            return Err(message);
        };
        let mut stream = Pin::new(stream);
        // Nothing here waits: the task is woken to flush what does not go out now, and polls
        // with its own waker then.
        let mut cx = Context::from_waker(Waker::noop());
        match stream.as_mut().poll_ready(&mut cx) {
            Poll::Pending => return Err(message),
            Poll::Ready(Err(_)) => return Ok(true),
            Poll::Ready(Ok(())) => {}
        }
        if stream.as_mut().start_send(self.wire(message)).is_err() {
            return Ok(true);
        }
        Ok(stream.poll_flush(&mut cx).is_ready())
    }

    /// Polls the open stream with `act`; ends (never ready) if there is none.
    fn poll_stream<T>(
        &self,
        cx: &mut Context<'_>,
        act: impl FnOnce(Pin<&mut Stream>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        match self.stream.borrow_mut().as_mut() {
            Some(stream) => act(Pin::new(stream), cx),
            None => Poll::Pending,
        }
    }

    /// `message` as it goes out: compressed, if permessage-deflate was agreed and that pays.
    fn wire(&self, message: Message) -> WireMessage {
        let wire = match message {
            Message::Text(text) => WireMessage::text(text),
            Message::Binary(data) => WireMessage::Binary(data.into()),
        };
        match self.compressor.borrow_mut().as_mut() {
            Some(compressor) => compressor.compress(wire, DEFLATE_THRESHOLD),
            None => wire,
        }
    }
}

/// With permessage-deflate, every message goes out compressed, as browsers send them (and as
/// Autobahn's fuzzing server wants the echoes of its compression cases): a threshold of 0.
/// A message of a few bytes grows by one or two, which a browser's does too.
const DEFLATE_THRESHOLD: usize = 0;

impl Drop for Connection {
    fn drop(&mut self) {
        // No event of this connection may reach the application any more; it closes with
        // 1000 on its own, as the browser's does.
        self.link.detached.set(true);
        self.close(NORMAL_CLOSURE, "");
    }
}

/// The handshake request for `url` offering the subprotocols and carrying the headers of
/// `options`, refused as the browser refuses it: a scheme other than `ws`, `wss`, `http` or
/// `https`, a fragment, or no host; and a header that is not one.
fn request(url: &str, options: &Options) -> Result<Request, Error> {
    let protocols = &options.protocols;
    let invalid = |message: &str| Error::InvalidUrl {
        url: url.to_owned(),
        message: message.to_owned(),
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        invalid("not an absolute URL (natively there is no page to resolve against)")
    })?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err(invalid("the scheme must be ws, wss, http or https")),
    };
    if url.contains('#') {
        return Err(invalid("a WebSocket URL cannot have a fragment"));
    }
    let mut request = format!("{scheme}://{rest}")
        .into_client_request()
        .map_err(|error| invalid(&error.to_string()))?;
    if !protocols.is_empty() {
        let offered = HeaderValue::from_str(&protocols.join(", "))
            .map_err(|error| invalid(&error.to_string()))?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", offered);
    }
    for (name, value) in &options.headers {
        let invalid = |_| Error::InvalidHeader(name.clone());
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(invalid)?;
        let value = HeaderValue::from_str(value).map_err(|_| Error::InvalidHeader(name.clone()))?;
        request.headers_mut().append(header, value);
    }
    if options.deflate {
        // The crate's offer, in place of any the application gave: it is what the answer is
        // checked against.
        let offer = HeaderValue::from_static(ws_deflate::OFFER);
        request
            .headers_mut()
            .insert("Sec-WebSocket-Extensions", offer);
    }
    Ok(request)
}

/// The TLS setup for `wss://` and for an `https://` proxy: the application's; or rustls on
/// the ring provider (no C toolchain needed) with the platform's verifier if asked for
/// (feature `platform-verifier`), else with the Mozilla roots of `webpki-roots` (the same on
/// every machine, unlike the system's store).
fn tls(options: &Options) -> Result<Arc<rustls::ClientConfig>, String> {
    if let Some(config) = &options.tls {
        return Ok(config.clone());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    #[cfg(feature = "platform-verifier")]
    if options.platform_verifier {
        use rustls_platform_verifier::BuilderVerifierExt;
        // Built at each attempt: the system's store is read as it is now.
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_platform_verifier())
            .map_err(|error| format!("the platform's verifier: {error}"))?
            .with_no_client_auth();
        return Ok(Arc::new(config));
    }
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The connection's task: the handshake, then reading and writing until the connection
/// closes, then the close event.
async fn run(
    listener: Weak<dyn Listener>,
    link: Rc<Link>,
    request: Request,
    destination: Destination,
    tls: Result<Arc<rustls::ClientConfig>, String>,
    deflate: bool,
) {
    // The socket, while it wants this connection's events.
    let attached = || listener.upgrade().filter(|_| !link.detached.get());
    let handshake = async {
        let tls = tls.map_err(Failure::Other)?;
        let Destination {
            host, port, proxy, ..
        } = &destination;
        // An extension header the application gave itself (without `Builder::deflate`) is its
        // own business: the answer to it is not judged here.
        let judged = deflate || !request.headers().contains_key("Sec-WebSocket-Extensions");
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        // A stream of a shared HTTP/2 connection if the application and the server allow; or
        // the TLS connection made for it, on which the server chose HTTP/1.1.
        #[cfg(feature = "http2")]
        let (request, made) = {
            use crate::http2::Handshake;
            use tokio_tungstenite::tungstenite::protocol::Role;
            let (choice, proxy) = (&destination.http2, proxy.as_ref());
            match crate::http2::connect(request, choice, host, *port, proxy, &tls).await? {
                Handshake::Opened(way, response) => {
                    // The CONNECT was answered: no HTTP/1.1 response head on this stream.
                    let way = ResponseHead::after(MaybeTlsStream::Plain(way));
                    let layers = Inflate::new(way, None, Vec::new());
                    let stream =
                        WebSocketStream::from_raw_socket(layers, Role::Client, Some(config));
                    let deflate = (judged, deflate);
                    return agree(&link, stream.await, response, deflate, &config);
                }
                Handshake::Http1(request, made) => (request, made),
            }
        };
        #[cfg(not(feature = "http2"))]
        let made: Option<std::convert::Infallible> = None;
        let way = match made {
            #[cfg(feature = "http2")]
            Some(way) => MaybeTlsStream::Rustls(*way),
            _ => {
                let way = tunnel::open(host, *port, proxy.as_ref(), &tls).await?;
                match request.uri().scheme_str() == Some("wss") {
                    true => MaybeTlsStream::Rustls(server_tls(host, way, tls).await?),
                    false => MaybeTlsStream::Plain(way),
                }
            }
        };
        // Inert until the server's answer is read; nothing after the answer is read before.
        let layers = Inflate::new(ResponseHead::new(way), None, Vec::new());
        let (stream, response) = client_async_with_config(request, layers, Some(config))
            .await
            .map_err(|error| Failure::Other(error.to_string()))?;
        agree(&link, stream, response, (judged, deflate), &config)
    };
    // `None`: the application closed it meanwhile.
    let connected = tokio::select! {
        connected = handshake => connected.map_err(Some),
        () = link.abort.notified() => Err(None),
    };
    let stream = match connected {
        Ok((stream, response)) if link.state.get() == State::Connecting => {
            let chosen = response.headers().get("Sec-WebSocket-Protocol");
            let chosen = chosen.and_then(|value| value.to_str().ok()).unwrap_or("");
            *link.protocol.borrow_mut() = chosen.to_owned();
            #[cfg(feature = "http2")]
            link.version.set(Some(match response.version() {
                tokio_tungstenite::tungstenite::http::Version::HTTP_2 => crate::HttpVersion::Http2,
                _ => crate::HttpVersion::Http11,
            }));
            stream
        }
        // Closed by the application meanwhile: failed, as in the browser (no error event).
        Ok(_) => return report(&link, attached(), None),
        Err(failure) => {
            // The browser's error event carries nothing; the close reason says what failed.
            let aborted = failure.is_none();
            if let Some(listener) = attached().filter(|_| !aborted) {
                listener.failed(false);
            }
            link.state.set(State::Closed);
            if let Some(listener) = attached() {
                let close = failure.map(Failure::close_event);
                listener.closed(close.unwrap_or_else(|| CloseEvent::new(1006, "", false)));
            }
            return;
        }
    };
    link.state.set(State::Open);
    if let Some(listener) = attached() {
        listener.opened();
    }
    *link.stream.borrow_mut() = Some(stream);
    let write = async {
        loop {
            link.work.notified().await;
            let mut closing = false;
            loop {
                // The next command is taken only once the stream has room for it, so that
                // `send` (which writes at once while nothing waits) cannot pass it.
                if link.waiting.borrow().is_empty() {
                    break;
                }
                let ready = poll_fn(|cx| link.poll_stream(cx, |s, cx| s.poll_ready(cx))).await;
                let Some(command) = link.waiting.borrow_mut().pop_front() else {
                    break;
                };
                let wire = match command {
                    Command::Send(message) => link.wire(message),
                    Command::Close(code, reason) => {
                        closing = true;
                        WireMessage::Close(Some(CloseFrame {
                            code: CloseCode::from(code),
                            reason: reason.into(),
                        }))
                    }
                };
                let sent = ready.and_then(|()| match link.stream.borrow_mut().as_mut() {
                    Some(stream) => Pin::new(stream).start_send(wire),
                    None => Ok(()),
                });
                if sent.is_err() {
                    return; // The reading side sees the connection end.
                }
            }
            if poll_fn(|cx| link.poll_stream(cx, |s, cx| s.poll_flush(cx)))
                .await
                .is_err()
            {
                return;
            }
            if link.waiting.borrow().is_empty() {
                link.buffered.set(0);
            }
            if closing {
                break;
            }
        }
        // Closing, or the connection dropped: the peer has this long to finish the close
        // handshake.
        sleep(CLOSE_TIMEOUT).await;
    };
    // Why the client fails the connection, if it does: the Close it sends the server.
    let failure = Cell::new(None);
    let read = async {
        let mut close = None;
        loop {
            // Not a message more than the application's streams have room for: TCP pushes
            // back on the server meanwhile.
            while let Some(listener) = attached().filter(|listener| !listener.may_read()) {
                listener.wait_for_room().await;
            }
            let next = poll_fn(|cx| link.poll_stream(cx, |s, cx| s.poll_next(cx))).await;
            let Some(received) = next else {
                break;
            };
            let message = match received {
                Ok(WireMessage::Text(text)) => Message::Text(text.as_str().to_owned()),
                Ok(WireMessage::Binary(data)) => Message::Binary(payload(data)),
                Ok(WireMessage::Close(frame)) => {
                    link.state.set(State::Closing);
                    close = Some(frame);
                    continue;
                }
                // tungstenite answers pings itself.
                Ok(_) => continue,
                // The server broke the protocol, or the connection was lost.
                Err(error) => {
                    failure.set(failing_close(&error));
                    break;
                }
            };
            if let Some(listener) = attached() {
                listener.received(message);
            }
        }
        close
    };
    let close = tokio::select! {
        close = read => close,
        () = write => None,
    };
    if let Some((code, reason)) = failure.get() {
        // Failing the connection (RFC 6455 section 7.1.7): a Close that says why, then the
        // connection dropped without waiting for the answer.
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let send = poll_fn(|cx| link.poll_stream(cx, |s, cx| s.poll_ready(cx)));
        let sent = async {
            send.await?;
            if let Some(stream) = link.stream.borrow_mut().as_mut() {
                Pin::new(stream).start_send(WireMessage::Close(Some(frame)))?;
            }
            poll_fn(|cx| link.poll_stream(cx, |s, cx| s.poll_flush(cx))).await
        };
        let _ = tokio::time::timeout(FAIL_TIMEOUT, sent).await;
    }
    drop(link.stream.borrow_mut().take());
    report(&link, attached(), close);
}

/// The Close a client sends when it fails the connection for `error`, which the server
/// caused: what the server's `echo::close_frame_for` answers a client with, in the other
/// direction. `None` for a lost connection (the end of the stream without a Close, too).
fn failing_close(error: &WireError) -> Option<(CloseCode, &'static str)> {
    match error {
        WireError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WireError::Protocol(_) => Some((CloseCode::Protocol, "protocol error")),
        WireError::Utf8(_) => Some((CloseCode::Invalid, "invalid UTF-8 in a text message")),
        WireError::Capacity(CapacityError::MessageTooLong { .. }) => {
            Some((CloseCode::Size, "message too big"))
        }
        WireError::Io(error) => match inflate_error(error)? {
            InflateError::TooBig => Some((CloseCode::Size, "message too big")),
            InflateError::Corrupt => Some((CloseCode::Invalid, "invalid compressed data")),
        },
        _ => None,
    }
}

/// After the server's answer: the extensions it names, judged (`deflate.0`) against what was
/// offered (`deflate.1`: permessage-deflate), and permessage-deflate turned on if agreed.
/// RFC 6455 section 4.1: an answer naming an extension the client cannot honour fails the
/// connection, which is not established yet: no Close frame, a close with 1006.
fn agree(
    link: &Link,
    mut stream: Stream,
    response: Response,
    (judged, deflate): (bool, bool),
    config: &WebSocketConfig,
) -> Result<(Stream, Response), Failure> {
    let headers = response.headers();
    let agreed = match judged {
        true => accept_response(headers, deflate).map_err(|e| Failure::Extension(e.to_string()))?,
        false => None,
    };
    if let Some(agreed) = agreed {
        let max_size = config.max_message_size.unwrap_or(usize::MAX);
        stream.get_mut().turn_on(agreed.reading(max_size));
        *link.compressor.borrow_mut() = Some(agreed.compressor());
    }
    let extensions = headers.get_all("Sec-WebSocket-Extensions").iter();
    let extensions: Vec<&str> = extensions.filter_map(|v| v.to_str().ok()).collect();
    *link.extensions.borrow_mut() = extensions.join(", ");
    Ok((stream, response))
}

/// TLS to the server, for `wss://`: rustls with `tls`, verifying `host`, as
/// tokio-tungstenite does it, and with its words for what fails.
async fn server_tls(
    host: &str,
    way: Tunnel,
    tls: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<Tunnel>, Failure> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| Failure::Other(WireError::Tls(TlsError::InvalidDnsName).to_string()))?;
    let connected = TlsConnector::from(tls).connect(name, way).await;
    connected.map_err(|error| Failure::Other(WireError::Io(error).to_string()))
}

/// Reports the end of the connection: with the peer's close frame, or 1006 without one.
fn report(link: &Link, listener: Option<Rc<dyn Listener>>, close: Option<Option<CloseFrame>>) {
    link.state.set(State::Closed);
    link.buffered.set(0);
    let event = match close {
        Some(Some(frame)) => CloseEvent::new(frame.code.into(), frame.reason.as_str(), true),
        // A Close frame without a code: 1005, as the browser says.
        Some(None) => CloseEvent::new(1005, "", true),
        None => CloseEvent::new(1006, "", false),
    };
    if let Some(listener) = listener {
        listener.closed(event);
    }
}

/// A received binary message's bytes: tungstenite's own, without a copy; but a payload
/// smaller than the read buffer is copied out of it, since one the application keeps would
/// otherwise keep the whole buffer (64 KiB or more) alive.
fn payload(data: bytes::Bytes) -> Payload {
    if data.len() < READ_BUFFER {
        Payload::from(&data[..])
    } else {
        data.into()
    }
}

fn payload_of(message: &Message) -> &[u8] {
    match message {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(data) => data,
    }
}
