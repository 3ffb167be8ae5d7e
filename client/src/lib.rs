//! The browser's WebSocket, for Rust compiled to `wasm32-unknown-unknown`.
//!
//! [`WebSocket::connect`] opens a socket and wires its four events (open, message, error,
//! close) to the Rust callbacks given in [`Callbacks`]. What it adds to the bare `web_sys`
//! binding:
//!
//! - **Typed messages**: a [`Message`] is text or binary. Binary always arrives as an
//!   `ArrayBuffer` (never a `Blob`, whose asynchronous reading can reorder messages) and is
//!   copied into Rust once.
//! - **Typed errors**: what the browser would throw on (sending while not open, a close code
//!   it refuses, an over-long close reason) is checked first and returned as an [`Error`].
//! - **No leaked closures**: the JavaScript closures are owned by the socket. They are dropped
//!   after the close event has been delivered, or when the last [`WebSocket`] handle is dropped,
//!   which also closes the socket with code 1000. Nothing calls `Closure::forget`.
//! - **Handles are cheap clones**: any of them can send or close.
//!
//! ```no_run
//! use wasm_websocket::{Callbacks, Message, WebSocket};
//!
//! let socket = WebSocket::connect(
//!     "ws://127.0.0.1:1234/",
//!     Callbacks::new()
//!         .on_open(|| web_sys::console::log_1(&"open".into()))
//!         .on_message(|message| {
//!             if let Message::Text(text) = message {
//!                 web_sys::console::log_1(&text.into());
//!             }
//!         })
//!         .on_close(|event| {
//!             let line = format!("closed ({})", event.code);
//!             web_sys::console::log_1(&line.into());
//!         }),
//! )?;
//! // Later, once open:
//! socket.send_text("Hello, world!")?;
//! socket.close()?;
//! # Ok::<(), wasm_websocket::Error>(())
//! ```
//!
//! With the default `demo` feature the crate also exports `start_demo`, the echo page of
//! `www/`; a library that depends on this crate turns it off with `default-features = false`.

#[cfg(feature = "demo")]
mod demo;
mod error;

use std::cell::RefCell;
use std::fmt;
use std::rc::{Rc, Weak};

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{BinaryType, MessageEvent};

pub use error::Error;

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

/// How a socket closed, from the browser's close event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseEvent {
    /// The close code: the peer's, or 1006 when the connection was lost without a Close frame.
    pub code: u16,
    /// The close reason, possibly empty.
    pub reason: String,
    /// Whether the close handshake completed.
    pub was_clean: bool,
}

/// The socket's `readyState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The opening handshake is under way.
    Connecting,
    /// Messages can be sent and received.
    Open,
    /// The close handshake is under way.
    Closing,
    /// The connection is closed or could not be opened.
    Closed,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Connecting => "connecting",
            State::Open => "open",
            State::Closing => "closing",
            State::Closed => "closed",
        })
    }
}

type Callback<T> = Option<Box<dyn FnMut(T)>>;

/// The application's callbacks, one for each event; any may be left out.
#[derive(Default)]
pub struct Callbacks {
    on_open: Callback<()>,
    on_message: Callback<Message>,
    on_error: Callback<()>,
    on_close: Callback<CloseEvent>,
}

impl Callbacks {
    /// No callbacks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Called once the opening handshake has completed.
    pub fn on_open(mut self, callback: impl FnMut() + 'static) -> Self {
        let mut callback = callback;
        self.on_open = Some(Box::new(move |()| callback()));
        self
    }

    /// Called for each message received.
    pub fn on_message(mut self, callback: impl FnMut(Message) + 'static) -> Self {
        self.on_message = Some(Box::new(callback));
        self
    }

    /// Called when the browser reports an error; the close event follows. Browsers say
    /// nothing more about the error, on purpose.
    pub fn on_error(mut self, callback: impl FnMut() + 'static) -> Self {
        let mut callback = callback;
        self.on_error = Some(Box::new(move |()| callback()));
        self
    }

    /// Called once when the socket has closed, with the code, reason and cleanliness.
    pub fn on_close(mut self, callback: impl FnMut(CloseEvent) + 'static) -> Self {
        self.on_close = Some(Box::new(callback));
        self
    }
}

/// The JavaScript closures installed as the socket's event handlers.
struct Handlers {
    _open: Closure<dyn FnMut(web_sys::Event)>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _error: Closure<dyn FnMut(web_sys::Event)>,
    _close: Closure<dyn FnMut(web_sys::CloseEvent)>,
}

/// What all handles of one socket share.
struct Shared {
    socket: web_sys::WebSocket,
    /// `None` once the close event has been delivered.
    handlers: RefCell<Option<Handlers>>,
}

/// A handle to one browser WebSocket. Clones are handles to the same socket; dropping the
/// last one closes it with code 1000 and drops its closures.
#[derive(Clone)]
pub struct WebSocket {
    shared: Rc<Shared>,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("url", &self.url())
            .field("state", &self.state())
            .finish()
    }
}

impl WebSocket {
    /// Opens a socket to `url` (`ws://` or `wss://`) and wires `callbacks` to its events.
    ///
    /// Fails at once, like the browser's constructor, when the URL is not a valid WebSocket
    /// URL; a server that cannot be reached is reported later, by the error and close
    /// callbacks.
    pub fn connect(url: &str, callbacks: Callbacks) -> Result<WebSocket, Error> {
        Self::connect_with_protocols(url, &[], callbacks)
    }

    /// Like [`connect`](Self::connect), offering the subprotocols `protocols` in order of
    /// preference; [`protocol`](Self::protocol) tells which one the server chose.
    pub fn connect_with_protocols(
        url: &str,
        protocols: &[&str],
        callbacks: Callbacks,
    ) -> Result<WebSocket, Error> {
        console_error_panic_hook::set_once();
        let socket = if protocols.is_empty() {
            web_sys::WebSocket::new(url)
        } else {
            let list: js_sys::Array = protocols
                .iter()
                .map(|p| js_sys::JsString::from(*p))
                .collect();
            web_sys::WebSocket::new_with_str_sequence(url, &list)
        }
        .map_err(|error| Error::InvalidUrl {
            url: url.to_owned(),
            message: error::describe(&error),
        })?;
        socket.set_binary_type(BinaryType::Arraybuffer);
        let shared = Rc::new(Shared {
            socket,
            handlers: RefCell::new(None),
        });
        let handlers = Handlers::install(&shared, callbacks);
        *shared.handlers.borrow_mut() = Some(handlers);
        Ok(WebSocket { shared })
    }

    /// Sends a text message.
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        self.check_open()?;
        self.shared
            .socket
            .send_with_str(text)
            .map_err(Error::from_js)
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        self.shared
            .socket
            .send_with_u8_array(data)
            .map_err(Error::from_js)
    }

    /// Sends a message of either kind.
    pub fn send(&self, message: &Message) -> Result<(), Error> {
        match message {
            Message::Text(text) => self.send_text(text),
            Message::Binary(data) => self.send_binary(data),
        }
    }

    /// Starts the close handshake with code 1000 and no reason.
    pub fn close(&self) -> Result<(), Error> {
        self.close_with(NORMAL_CLOSURE, "")
    }

    /// Starts the close handshake with `code` (1000, or 3000 to 4999) and `reason` (at most
    /// [`MAX_CLOSE_REASON`] bytes of UTF-8). Closing a socket that is already closing or
    /// closed does nothing, as in the browser.
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        validate_close(code, reason)?;
        self.shared
            .socket
            .close_with_code_and_reason(code, reason)
            .map_err(Error::from_js)
    }

    /// The socket's current state.
    pub fn state(&self) -> State {
        match self.shared.socket.ready_state() {
            web_sys::WebSocket::CONNECTING => State::Connecting,
            web_sys::WebSocket::OPEN => State::Open,
            web_sys::WebSocket::CLOSING => State::Closing,
            _ => State::Closed,
        }
    }

    /// Bytes queued by `send` that the browser has not yet handed to the network.
    pub fn buffered_amount(&self) -> u32 {
        self.shared.socket.buffered_amount()
    }

    /// The URL as the browser resolved it.
    pub fn url(&self) -> String {
        self.shared.socket.url()
    }

    /// The subprotocol the server selected; empty when none.
    pub fn protocol(&self) -> String {
        self.shared.socket.protocol()
    }

    /// The extensions the server accepted, such as `permessage-deflate`; empty when none.
    pub fn extensions(&self) -> String {
        self.shared.socket.extensions()
    }

    fn check_open(&self) -> Result<(), Error> {
        match self.state() {
            State::Open => Ok(()),
            state => Err(Error::NotOpen(state)),
        }
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

impl Handlers {
    /// Wraps the callbacks in JavaScript closures and sets them as the socket's handlers.
    /// The closures hold only a weak reference to the socket, so they keep nothing alive.
    fn install(shared: &Rc<Shared>, callbacks: Callbacks) -> Handlers {
        let Callbacks {
            on_open,
            on_message,
            on_error,
            on_close,
        } = callbacks;
        let socket = &shared.socket;

        let open = unit_closure(on_open);
        socket.set_onopen(Some(open.as_ref().unchecked_ref()));

        let mut on_message = on_message;
        let message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let (Some(callback), Some(message)) = (&mut on_message, decode(&event)) {
                callback(message);
            }
        });
        socket.set_onmessage(Some(message.as_ref().unchecked_ref()));

        let error = unit_closure(on_error);
        socket.set_onerror(Some(error.as_ref().unchecked_ref()));

        let weak: Weak<Shared> = Rc::downgrade(shared);
        let mut on_close = on_close;
        let close =
            Closure::<dyn FnMut(web_sys::CloseEvent)>::new(move |event: web_sys::CloseEvent| {
                if let Some(callback) = &mut on_close {
                    callback(CloseEvent {
                        code: event.code(),
                        reason: event.reason(),
                        was_clean: event.was_clean(),
                    });
                }
                // No event follows a close: release the closures (and, through them, the
                // application's callbacks and whatever they hold). Dropped from a task rather
                // than here, since this very closure is among them.
                if let Some(shared) = weak.upgrade() {
                    let handlers = shared.take_handlers();
                    wasm_bindgen_futures::spawn_local(async move { drop(handlers) });
                }
            });
        socket.set_onclose(Some(close.as_ref().unchecked_ref()));

        Handlers {
            _open: open,
            _message: message,
            _error: error,
            _close: close,
        }
    }
}

impl Shared {
    /// Detaches the handlers from the socket and hands them over, to be dropped.
    fn take_handlers(&self) -> Option<Handlers> {
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onerror(None);
        self.socket.set_onclose(None);
        self.handlers.borrow_mut().take()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle is gone: nobody can hear events any more, so stop them and close.
        drop(self.take_handlers());
        let state = self.socket.ready_state();
        if state == web_sys::WebSocket::CONNECTING || state == web_sys::WebSocket::OPEN {
            let _ = self.socket.close_with_code(NORMAL_CLOSURE);
        }
    }
}

fn unit_closure(callback: Callback<()>) -> Closure<dyn FnMut(web_sys::Event)> {
    let mut callback = callback;
    Closure::new(move |_: web_sys::Event| {
        if let Some(callback) = &mut callback {
            callback(());
        }
    })
}

/// The message a `message` event carries: a string, or an `ArrayBuffer` since `binaryType`
/// is `arraybuffer`.
fn decode(event: &MessageEvent) -> Option<Message> {
    let data = event.data();
    if let Some(text) = data.as_string() {
        return Some(Message::Text(text));
    }
    let buffer = data.dyn_into::<ArrayBuffer>().ok()?;
    Some(Message::Binary(Uint8Array::new(&buffer).to_vec()))
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
