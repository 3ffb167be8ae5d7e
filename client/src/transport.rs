//! The transport seam: what the driver (`socket.rs`) opens, and how each transport reports
//! back. Events flow one way: a transport knows the driver only as a [`Listener`], and never
//! imports it or the core.
//!
//! Every transport's connection has the same methods (`open`, `state`, `send`, `close`,
//! `buffered_amount`, `url`, `protocol`, `extensions`; `send` takes the message and hands it
//! back with the reason if it refuses it) and reports the same way (`opened`, `received`,
//! `closed`, and `failed` before the close of a connection that failed to open); dropping one
//! closes it with 1000 and silences it. `link.rs` chooses among them.

#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
use std::pin::Pin;
use std::rc::Rc;

#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
use crate::error::Error;
#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
use crate::event::Unsent;
#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
use crate::message::State;
use crate::message::{CloseEvent, Message};

/// What a transport reports to, through a `Weak` that it never upgrades while it holds a
/// borrow of its own.
pub(crate) trait Listener {
    /// The connection opened.
    fn opened(self: Rc<Self>);
    /// A message came.
    fn received(self: Rc<Self>, message: Message);
    /// The connection failed (the browser's error event); its close follows, unless
    /// `ended`: the transport reports no close (WebKit fails an attempt it refuses itself, to
    /// a port it blocks, with an error alone), and the listener ends the connection itself.
    fn failed(self: Rc<Self>, ended: bool);
    /// The connection closed: nothing more comes from it.
    fn closed(self: Rc<Self>, event: CloseEvent);
    /// For a transport that pulls: whether to read the next message now.
    #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
    fn may_read(&self) -> bool;
    /// For a transport that pulls: resolves once there may be room to read (or after a
    /// short while: the caller looks again). It holds the listener weakly.
    #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
    fn wait_for_room(self: Rc<Self>) -> Pin<Box<dyn Future<Output = ()>>>;
}

/// What every attempt of a socket opens with.
pub(crate) struct Options {
    pub(crate) protocols: Vec<String>,
    /// Whether the application asked for `WebSocketStream`.
    #[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
    pub(crate) web_socket_stream: bool,
    /// Natively, the application's TLS setup, if it gave one.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Natively, the headers the application adds to each handshake request.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) headers: Vec<(String, String)>,
    /// Natively, with the `platform-verifier` feature: whether the application asked for the
    /// operating system's verifier.
    #[cfg(all(not(target_arch = "wasm32"), feature = "platform-verifier"))]
    pub(crate) platform_verifier: bool,
    /// Natively, where each attempt's proxy comes from.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) proxy: crate::proxy::ProxySetting,
    /// Natively, with the `http2` feature: whether an attempt may be a stream of a shared
    /// HTTP/2 connection.
    #[cfg(all(not(target_arch = "wasm32"), feature = "http2"))]
    pub(crate) http2: Http2,
    /// Natively, whether each attempt offers permessage-deflate (`Builder::deflate`).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) deflate: bool,
}

impl Options {
    /// The defaults, as a constant: the thin driver opens with a static of them (`thin.rs`)
    /// rather than making and dropping a value at each attempt.
    pub(crate) const DEFAULT: Options = Options {
        protocols: Vec::new(),
        #[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
        web_socket_stream: false,
        #[cfg(not(target_arch = "wasm32"))]
        tls: None,
        #[cfg(not(target_arch = "wasm32"))]
        headers: Vec::new(),
        #[cfg(all(not(target_arch = "wasm32"), feature = "platform-verifier"))]
        platform_verifier: false,
        #[cfg(not(target_arch = "wasm32"))]
        proxy: crate::proxy::ProxySetting::Environment,
        #[cfg(all(not(target_arch = "wasm32"), feature = "http2"))]
        http2: Http2::Auto,
        #[cfg(not(target_arch = "wasm32"))]
        deflate: false,
    };
}

impl Default for Options {
    fn default() -> Self {
        Options::DEFAULT
    }
}

/// What carries a socket's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// The browser's `WebSocket`: it cannot be told to stop receiving.
    WebSocket,
    /// The browser's `WebSocketStream`: it reads only while the application's streams have
    /// room.
    WebSocketStream,
    /// tokio-tungstenite, natively: it reads only while the application's streams have room.
    Tungstenite,
}

/// A send while not open, by the browser's rule, for the transports that are not the browser's
/// `WebSocket`: refused while connecting; dropped silently while closing or closed (the state
/// machine never sends then).
#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
pub(crate) fn not_open(state: State, message: Message) -> Result<(), Unsent> {
    match state {
        State::Connecting => Err(Unsent {
            message,
            error: Error::NotOpen(state),
        }),
        _ => Ok(()),
    }
}

/// A subprotocol the browser would refuse: empty, not an HTTP token, or offered twice.
pub(crate) fn invalid_protocol(protocols: &[String]) -> Option<&str> {
    let is_token = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
    };
    protocols
        .iter()
        .enumerate()
        .find_map(|(i, p)| (!is_token(p) || protocols[..i].contains(p)).then_some(p.as_str()))
}

/// Natively, with the `http2` feature: whether a socket's connections may be streams of an
/// HTTP/2 connection shared with the other sockets to the same server (RFC 8441), given to
/// [`Builder::http2`](crate::Builder::http2).
#[cfg(all(not(target_arch = "wasm32"), feature = "http2"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Http2 {
    /// For `wss://`, HTTP/2 where the server offers it in ALPN and allows WebSockets over it
    /// (`SETTINGS_ENABLE_CONNECT_PROTOCOL`), HTTP/1.1 otherwise; `ws://` stays on HTTP/1.1.
    /// The default.
    #[default]
    Auto,
    /// Always HTTP/2: for `wss://` the attempt fails where the server does not allow it;
    /// `ws://` speaks cleartext HTTP/2 by prior knowledge (h2c), which only servers that
    /// expect it understand (`wsecho --h2c`).
    Always,
    /// Never HTTP/2: every connection is a TCP connection of its own, over HTTP/1.1.
    Never,
}

/// Natively, with the `http2` feature: the HTTP version a socket's current connection was
/// opened with ([`WebSocket::http_version`](crate::WebSocket::http_version)).
#[cfg(all(not(target_arch = "wasm32"), feature = "http2"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpVersion {
    /// HTTP/1.1: a connection of its own, upgraded (`101 Switching Protocols`).
    Http11,
    /// HTTP/2: a stream of a connection that other sockets to the same server may share
    /// (RFC 8441's extended `CONNECT`, answered `200`).
    Http2,
}
