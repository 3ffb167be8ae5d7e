//! The native transport: one tokio-tungstenite connection, driven by a local task on the
//! application's tokio `LocalSet`, with rustls (ring) for `wss://`, directly or through a
//! proxy (`tunnel.rs`, as `proxy.rs` chooses).
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
#[cfg(feature = "http2")]
use tokio_tungstenite::client_async_with_config;
use tokio_tungstenite::tungstenite::Message as WireMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream, client_async_tls_with_config};

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

/// The room tungstenite reads into. It zeroes all of it before every read: with its default,
/// 128 KiB, that `memset` was 94% of `native_speed.rs`'s instructions (callgrind). Smaller
/// costs more reads for big messages.
const READ_BUFFER: usize = 32 * 1024;

type Stream = WebSocketStream<MaybeTlsStream<Tunnel>>;

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
            detached: Cell::new(false),
            abort: Notify::new(),
            stream: RefCell::new(None),
            waiting: RefCell::new(VecDeque::new()),
            work: Notify::new(),
        });
        // Made here, where the options are at hand; a failure fails the attempt.
        let tls = tls(options);
        let task = run(listener, link.clone(), request, destination, tls);
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

    pub(crate) fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
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
        Ok(())
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

    /// tokio-tungstenite negotiates no extension.
    pub(crate) fn extensions(&self) -> String {
        String::new()
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
        if stream.as_mut().start_send(wire(message)).is_err() {
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
}

fn wire(message: Message) -> WireMessage {
    match message {
        Message::Text(text) => WireMessage::text(text),
        Message::Binary(data) => WireMessage::Binary(data.into()),
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // No event of this connection may reach the application any more; it closes with
        // 1000 on its own, as the browser's does.
        self.link.detached.set(true);
        let _ = self.close(NORMAL_CLOSURE, "");
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
) {
    // The socket, while it wants this connection's events.
    let attached = || listener.upgrade().filter(|_| !link.detached.get());
    let handshake = async {
        let tls = tls.map_err(Failure::Other)?;
        let Destination {
            host, port, proxy, ..
        } = &destination;
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        // A stream of a shared HTTP/2 connection if the application and the server allow.
        #[cfg(feature = "http2")]
        let request = {
            use crate::http2::Handshake;
            use tokio_tungstenite::tungstenite::protocol::Role;
            let (choice, proxy) = (&destination.http2, proxy.as_ref());
            match crate::http2::connect(request, choice, host, *port, proxy, &tls).await? {
                Handshake::Opened(way, response) => {
                    let way = MaybeTlsStream::Plain(way);
                    let stream = WebSocketStream::from_raw_socket(way, Role::Client, Some(config));
                    return Ok((stream.await, response));
                }
                // Its server chose HTTP/1.1 on the TLS connection made for HTTP/2.
                Handshake::Http1(request, Some(way)) => {
                    let way = MaybeTlsStream::Rustls(*way);
                    let handshake = client_async_with_config(request, way, Some(config));
                    return (handshake.await).map_err(|error| Failure::Other(error.to_string()));
                }
                Handshake::Http1(request, None) => request,
            }
        };
        let way = tunnel::open(host, *port, proxy.as_ref(), &tls).await?;
        let connector = Connector::Rustls(tls);
        client_async_tls_with_config(request, way, Some(config), Some(connector))
            .await
            .map_err(|error| Failure::Other(error.to_string()))
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
                    Command::Send(message) => wire(message),
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
                // A protocol error: tungstenite has failed the connection.
                Err(_) => break,
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
    drop(link.stream.borrow_mut().take());
    report(&link, attached(), close);
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
/// otherwise keep the whole buffer (32 KiB or more) alive.
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
