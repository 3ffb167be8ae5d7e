//! The values a socket deals in: messages, close events and their causes, states. Plain data,
//! shared by the core, the driver and the transports.

use std::fmt;
use std::time::Duration;

use crate::payload::Payload;

/// The largest close reason the protocol allows, in bytes of UTF-8 (RFC 6455 section 5.5).
pub const MAX_CLOSE_REASON: usize = 123;

/// The close code of a normal closure.
pub const NORMAL_CLOSURE: u16 = 1000;

/// A complete WebSocket message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message: valid UTF-8, as the protocol guarantees.
    Text(String),
    /// A binary message. [`Payload`] derefs to `[u8]` and converts from a `Vec<u8>` without a
    /// copy; natively it is tungstenite's `Bytes`, so a received message is never copied.
    Binary(Payload),
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::Text(text.to_owned())
    }
}

impl From<&String> for Message {
    fn from(text: &String) -> Self {
        Message::Text(text.clone())
    }
}

impl From<Payload> for Message {
    fn from(data: Payload) -> Self {
        Message::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Message::Binary(data.into())
    }
}

impl From<&[u8]> for Message {
    fn from(data: &[u8]) -> Self {
        Message::Binary(data.into())
    }
}

impl From<&Vec<u8>> for Message {
    fn from(data: &Vec<u8>) -> Self {
        Message::from(&data[..])
    }
}

impl<const N: usize> From<[u8; N]> for Message {
    fn from(data: [u8; N]) -> Self {
        Message::from(&data[..])
    }
}

impl<const N: usize> From<&[u8; N]> for Message {
    fn from(data: &[u8; N]) -> Self {
        Message::from(&data[..])
    }
}

impl fmt::Display for Message {
    /// A text message's text; a binary message as its size, `binary message (N bytes)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Text(text) => f.write_str(text),
            Message::Binary(data) => write!(f, "binary message ({} bytes)", data.len()),
        }
    }
}

impl Message {
    /// The text of a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text),
            Message::Binary(_) => None,
        }
    }

    /// The bytes of a binary message.
    pub fn as_binary(&self) -> Option<&[u8]> {
        match self {
            Message::Text(_) => None,
            Message::Binary(data) => Some(data),
        }
    }
}

/// How a connection closed, from the browser's close event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseEvent {
    /// The close code: the peer's, or 1006 when the connection was lost without a Close frame.
    pub code: u16,
    /// The close reason, possibly empty.
    pub reason: String,
    /// Whether the close handshake completed.
    pub was_clean: bool,
    /// Why, as far as the client can tell.
    pub cause: CloseCause,
}

impl CloseEvent {
    /// A close event, as the browser would report it, of a connection the server closed or
    /// lost; for tests and adapters.
    pub fn new(code: u16, reason: impl Into<String>, was_clean: bool) -> Self {
        CloseEvent {
            code,
            reason: reason.into(),
            was_clean,
            cause: CloseCause::Remote,
        }
    }

    /// The same close, for another cause.
    pub fn with_cause(mut self, cause: CloseCause) -> Self {
        self.cause = cause;
        self
    }
}

/// Why a connection closed. Reconnection never follows [`CloseCause::Application`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCause {
    /// The server closed the connection (with its code and reason), or the connection was
    /// lost after it opened (1006).
    Remote,
    /// The application closed it: [`WebSocket::close`](crate::WebSocket::close) and its kin, or the last handle
    /// dropped.
    Application,
    /// It never opened: the server could not be reached or refused the handshake (browsers
    /// say no more, on purpose), or the browser refused the URL of a reconnection attempt.
    HandshakeFailed,
    /// It did not open within [`Builder::connect_timeout`](crate::Builder::connect_timeout).
    ConnectTimeout,
    /// No message came within the [`Heartbeat`](crate::Heartbeat)'s timeout: the peer is gone, though the
    /// browser had not noticed.
    HeartbeatLost,
    /// The browser went offline ([`Builder::follow_network`](crate::Builder::follow_network)).
    Offline,
    /// A message came while a stream's inbox already held [`Builder::receive_limit`](crate::Builder::receive_limit) events,
    /// on the browser's `WebSocket`, which cannot be told to stop: the connection was given up
    /// (the server sees a close with 1000; the application, this cause and 1008).
    ReceiveOverflow,
    /// Natively, the proxy did not open the tunnel to the server
    /// ([`Builder::proxy`](crate::Builder::proxy)): `status` is its answer's (407 when it
    /// wants credentials, 403 when it forbids the destination, 502 or 500 when it cannot
    /// reach the server), `None` when the proxy could not be reached, did not answer in
    /// HTTP, or is a SOCKS5 proxy. The close's reason says which proxy, and what it answered.
    #[cfg(not(target_arch = "wasm32"))]
    Proxy {
        /// The proxy's HTTP status.
        status: Option<u16>,
    },
    /// Natively, the server's handshake answer named extensions the client cannot honour: one
    /// it did not offer, or permessage-deflate with parameters RFC 7692 does not allow in an
    /// answer ([`Builder::deflate`](crate::Builder::deflate)). The close's reason says what
    /// was wrong; the code is 1006, as the connection was never established.
    #[cfg(not(target_arch = "wasm32"))]
    Extension,
}

impl CloseCause {
    /// The cause in a few words, as the `Display` impl writes it: `"closed by the server or
    /// lost"`, `"closed by the application"`, …
    pub fn as_str(self) -> &'static str {
        match self {
            CloseCause::Remote => "closed by the server or lost",
            CloseCause::Application => "closed by the application",
            CloseCause::HandshakeFailed => "the handshake failed",
            CloseCause::ConnectTimeout => "the connect timeout passed",
            CloseCause::HeartbeatLost => "the heartbeat went unanswered",
            CloseCause::Offline => "the browser went offline",
            CloseCause::ReceiveOverflow => "the receive limit was exceeded",
            #[cfg(not(target_arch = "wasm32"))]
            CloseCause::Proxy { .. } => "the proxy refused the tunnel",
            #[cfg(not(target_arch = "wasm32"))]
            CloseCause::Extension => "the server's extensions were refused",
        }
    }
}

impl fmt::Display for CloseCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Display for CloseEvent {
    /// `1000 "done" (clean, closed by the application)`; an empty reason is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.reason.is_empty() {
            write!(f, " {:?}", self.reason)?;
        }
        let clean = if self.was_clean { "clean" } else { "not clean" };
        write!(f, " ({clean}, {})", self.cause)
    }
}

/// What became of a message that [`WebSocket::send`](crate::WebSocket::send) (or
/// [`send_async`](crate::WebSocket::send_async)) accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Handed to the open connection: the browser's buffer, or natively the socket.
    Now,
    /// Waiting in the reconnection queue, to go out in order once a connection opens (or to
    /// come back in an [`Event::Unsent`](crate::Event::Unsent) if it never can).
    Queued,
}

/// A reconnection attempt, scheduled after a close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconnecting {
    /// 1 for the first attempt after a connection that stayed up, then 2, 3, …
    pub attempt: u32,
    /// How long until the attempt.
    pub delay: Duration,
}

/// The socket's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// The opening handshake is under way.
    Connecting,
    /// Messages can be sent and received.
    Open,
    /// The close handshake is under way.
    Closing,
    /// Closed, and waiting to reconnect.
    Reconnecting,
    /// Closed for good.
    Closed,
}

impl State {
    /// The state in lower case, as the `Display` impl writes it: `"open"`, `"closed"`, …
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Open => "open",
            State::Closing => "closing",
            State::Reconnecting => "reconnecting",
            State::Closed => "closed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_closes_display_as_a_user_reads_them() {
        assert_eq!(Message::from("Hello, world!").to_string(), "Hello, world!");
        assert_eq!(
            Message::from(vec![0u8; 3]).to_string(),
            "binary message (3 bytes)"
        );
        let close = CloseEvent::new(4000, "done", true).with_cause(CloseCause::Application);
        assert_eq!(
            close.to_string(),
            r#"4000 "done" (clean, closed by the application)"#
        );
        let lost = CloseEvent::new(1006, "", false);
        assert_eq!(
            lost.to_string(),
            "1006 (not clean, closed by the server or lost)"
        );
        assert_eq!(
            CloseCause::HeartbeatLost.to_string(),
            "the heartbeat went unanswered"
        );
        // Width and alignment are honoured, as for a `str`.
        assert_eq!(format!("[{:>8}]", State::Open), "[    open]");
    }
}
