//! The browser's WebSocket for Rust on `wasm32-unknown-unknown`: callbacks or async streams,
//! text and binary, typed errors, no leaked closures, opt-in reconnection with a bounded queue,
//! and backpressure.
//!
//! One core, two styles. A [`WebSocket`] delivers its [`Event`]s to the callbacks given to its
//! [`Builder`], and to every [`Events`] stream made with [`WebSocket::events`]; use either or
//! both.
//!
//! # Callbacks
//!
//! ```no_run
//! use wasm_websocket::{Message, WebSocket};
//!
//! let socket = WebSocket::builder("ws://127.0.0.1:1234/")
//!     .on_open(|| web_sys::console::log_1(&"open".into()))
//!     .on_message(|message| {
//!         if let Message::Text(text) = message {
//!             web_sys::console::log_1(&text.into());
//!         }
//!     })
//!     .on_close(|close| {
//!         let line = format!("closed ({}) {}", close.code, close.reason);
//!         web_sys::console::log_1(&line.into());
//!     })
//!     .connect()?;
//! // Any clone of the handle can send and close; here, once open:
//! socket.send_text("Hello, world!")?;
//! socket.close_with(4000, "done")?;
//! # Ok::<(), wasm_websocket::Error>(())
//! ```
//!
//! # Async
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use wasm_websocket::{Event, Message, Reconnect, WebSocket};
//!
//! async fn chat() -> Result<(), wasm_websocket::Error> {
//!     let socket = WebSocket::builder("wss://example.com/chat")
//!         .protocols(["chat.v1"])
//!         .reconnect(Reconnect::new().max_attempts(10))
//!         .connect()?;
//!     let mut events = socket.events();
//!     // Waits for the connection, and while the browser's buffer is over the high-water mark.
//!     socket.send_async(Message::Text("hello".into())).await?;
//!     let mut sink = socket.sink();
//!     sink.send(Message::Binary(vec![1, 2, 3])).await?;
//!     while let Some(event) = events.next().await {
//!         match event {
//!             Event::Message(Message::Text(text)) if text == "bye" => socket.close()?,
//!             Event::Message(message) => web_sys::console::log_1(&format!("{message:?}").into()),
//!             Event::Reconnecting(next) => {
//!                 let line = format!("attempt {} in {:?}", next.attempt, next.delay);
//!                 web_sys::console::log_1(&line.into());
//!             }
//!             _ => {}
//!         }
//!     }
//!     Ok(()) // The stream ends after the last close.
//! }
//! ```
//!
//! # What it guarantees
//!
//! - **Binary arrives as `ArrayBuffer`**, never `Blob` (whose asynchronous reading can reorder
//!   messages), and is copied into Rust once.
//! - **Typed errors**: what the browser would throw on, or silently drop, is checked first and
//!   returned as an [`Error`]: a close code other than 1000 or 3000–4999, a reason over 123
//!   bytes, sending while not open, an invalid subprotocol.
//! - **No leaks**: the JavaScript closures are owned by the socket and dropped after its last
//!   close, or with its last handle, which also closes it with 1000. Nothing calls
//!   `Closure::forget`; [`live_closures`] counts them.
//! - **Reconnection** ([`Reconnect`]) is opt-in: exponential backoff with jitter, bounded
//!   delay and attempts, reset after a connection stays up; never after [`WebSocket::close`] or
//!   a close code marked final. Messages sent meanwhile wait in a bounded queue with an
//!   [`Overflow`] policy, and go out in order when the next connection opens.
//! - **Backpressure**: [`WebSocket::send_async`] and [`WebSocket::sink`] wait while
//!   `bufferedAmount` is above the high-water mark.
//!
//! With the default `demo` feature the crate also exports `start_demo`, the echo page of
//! `www/`; a library that depends on this crate turns it off with `default-features = false`.

#[cfg(feature = "demo")]
mod demo;
mod error;
mod reconnect;
mod socket;
mod stream;
mod timer;
mod tracked;

use std::fmt;
use std::time::Duration;

pub use error::Error;
pub use reconnect::{Overflow, Reconnect};
pub use socket::{Builder, DEFAULT_HIGH_WATER_MARK, WebSocket};
pub use stream::{Events, Messages};
pub use tracked::live_closures;

/// The largest close reason the protocol allows, in bytes of UTF-8 (RFC 6455 section 5.5).
pub const MAX_CLOSE_REASON: usize = 123;

/// The close code of a normal closure.
pub const NORMAL_CLOSURE: u16 = 1000;

/// A complete WebSocket message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message: valid UTF-8, as the protocol guarantees.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
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

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Message::Binary(data)
    }
}

/// How a connection closed, from the browser's close event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseEvent {
    /// The close code: the peer's, or 1006 when the connection was lost without a Close frame.
    pub code: u16,
    /// The close reason, possibly empty.
    pub reason: String,
    /// Whether the close handshake completed.
    pub was_clean: bool,
}

/// A reconnection attempt, scheduled after a close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reconnecting {
    /// 1 for the first attempt after a connection that stayed up, then 2, 3, …
    pub attempt: u32,
    /// How long until the attempt.
    pub delay: Duration,
}

/// Something that happened to a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A connection opened (each time, with reconnection).
    Open,
    /// A message arrived.
    Message(Message),
    /// The browser reported an error; a close follows.
    Error,
    /// A connection closed. Unless a [`Event::Reconnecting`] follows, it was the last.
    Close(CloseEvent),
    /// A reconnection attempt is scheduled.
    Reconnecting(Reconnecting),
}

/// The socket's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The opening handshake is under way.
    Connecting,
    /// Messages can be sent and received.
    Open,
    /// The close handshake is under way.
    Closing,
    /// Closed, and waiting to reconnect.
    Reconnecting,
    /// Closed for good, or not yet reconnected.
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
        f.write_str(self.as_str())
    }
}

/// Checks a close code and reason the way the browser's `close()` does, before it throws.
pub fn validate_close(code: u16, reason: &str) -> Result<(), Error> {
    if code != NORMAL_CLOSURE && !(3000..=4999).contains(&code) {
        return Err(Error::InvalidCloseCode(code));
    }
    if reason.len() > MAX_CLOSE_REASON {
        return Err(Error::ReasonTooLong(reason.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_the_browser_accepts() {
        assert!(validate_close(1000, "").is_ok());
        assert!(validate_close(3000, "").is_ok());
        assert!(validate_close(4999, "").is_ok());
        for code in [0, 999, 1001, 1005, 1006, 2999, 5000] {
            assert_eq!(validate_close(code, ""), Err(Error::InvalidCloseCode(code)));
        }
    }

    #[test]
    fn close_reason_is_limited_in_bytes_not_characters() {
        assert!(validate_close(1000, &"a".repeat(123)).is_ok());
        assert_eq!(
            validate_close(1000, &"a".repeat(124)),
            Err(Error::ReasonTooLong(124))
        );
        // 62 two-byte characters: 124 bytes.
        assert_eq!(
            validate_close(1000, &"ñ".repeat(62)),
            Err(Error::ReasonTooLong(124))
        );
    }
}

#[cfg(all(
    feature = "demo",
    target_family = "wasm",
    not(target_feature = "atomics")
))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
