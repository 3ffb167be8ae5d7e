//! The browser transport: one browser `WebSocket` and the closures set as its handlers.

use std::rc::{Rc, Weak};

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, MessageEvent};

use crate::error::Error;
use crate::event::Unsent;
use crate::js::{self, describe};
use crate::message::{CloseEvent, Message, NORMAL_CLOSURE, State};
use crate::tracked::Tracked;
use crate::transport::{Listener, Options};

/// One browser WebSocket and the closures set as its handlers.
pub(crate) struct Connection {
    socket: web_sys::WebSocket,
    _handlers: [Tracked<Handler>; 4],
}

/// A handler of the socket's: the four are of one closure type, told apart by their kind
/// ([`OPEN`], [`MESSAGE`], [`ERROR`], [`CLOSE`]), so that a page carries the glue of one
/// closure rather than four.
type Handler = Closure<dyn FnMut(JsValue)>;

const OPEN: u8 = 0;
const MESSAGE: u8 = 1;
const ERROR: u8 = 2;
const CLOSE: u8 = 3;

impl Connection {
    /// Generic over the listener, so that the page's closures upgrade and call it directly,
    /// with no `dyn` in between; a `Weak<dyn Listener>` works too.
    pub(crate) fn open<L: Listener + ?Sized + 'static>(
        listener: Weak<L>,
        url: &str,
        options: &Options,
    ) -> Result<Connection, Error> {
        // One constructor for both cases: an empty list offers no subprotocol.
        let protocols: js_sys::Array = options
            .protocols
            .iter()
            .map(|protocol| js_sys::JsString::from(protocol.as_str()))
            .collect();
        let socket =
            web_sys::WebSocket::new_with_str_sequence(url, &protocols).map_err(|error| {
                Error::InvalidUrl {
                    url: url.to_owned(),
                    message: describe(&error),
                }
            })?;
        // Blobs are read asynchronously and can overtake each other; ArrayBuffers cannot.
        socket.set_binary_type(BinaryType::Arraybuffer);

        let handler = |kind| {
            let (listener, socket) = (listener.clone(), socket.clone());
            Tracked::new(Handler::new(move |event: JsValue| {
                if let Some(listener) = listener.upgrade() {
                    handle(listener, &socket, kind, event);
                }
            }))
        };
        let handlers = [
            handler(OPEN),
            handler(MESSAGE),
            handler(ERROR),
            handler(CLOSE),
        ];
        let [open, message, error, close] = &handlers;
        socket.set_onopen(Some(open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(message.as_ref().unchecked_ref()));
        socket.set_onerror(Some(error.as_ref().unchecked_ref()));
        socket.set_onclose(Some(close.as_ref().unchecked_ref()));
        Ok(Connection {
            socket,
            _handlers: handlers,
        })
    }

    pub(crate) fn state(&self) -> State {
        match self.socket.ready_state() {
            web_sys::WebSocket::CONNECTING => State::Connecting,
            web_sys::WebSocket::OPEN => State::Open,
            web_sys::WebSocket::CLOSING => State::Closing,
            _ => State::Closed,
        }
    }

    pub(crate) fn send(&self, message: Message) -> Result<(), Unsent> {
        match &message {
            Message::Text(text) => self.socket.send_with_str(text),
            // Browsers refuse a view into shared memory (wasm threads, `+atomics`): there the
            // bytes go into a buffer of JavaScript's own first. Elsewhere the browser copies
            // from the view itself; a copy of ours would cost a third of the throughput.
            Message::Binary(data) if cfg!(target_feature = "atomics") => self
                .socket
                .send_with_js_u8_array(&Uint8Array::from(&data[..])),
            Message::Binary(data) => self.socket.send_with_u8_array(data),
        }
        .map_err(|error| Unsent {
            message,
            error: js::error(error),
        })
    }

    /// Starts the close handshake; the close event follows. The code and reason were checked
    /// by the handle (`validate_close`): nothing else makes the browser throw.
    pub(crate) fn close(&self, code: u16, reason: &str) {
        let _ = self.socket.close_with_code_and_reason(code, reason);
    }

    /// Bytes handed to the browser that it has not yet sent (`bufferedAmount`).
    pub(crate) fn buffered_amount(&self) -> u32 {
        self.socket.buffered_amount()
    }

    /// The URL as the browser resolved it.
    pub(crate) fn url(&self) -> String {
        self.socket.url()
    }

    pub(crate) fn protocol(&self) -> String {
        self.socket.protocol()
    }

    pub(crate) fn extensions(&self) -> String {
        self.socket.extensions()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // No event of this connection may reach the application any more.
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onerror(None);
        self.socket.set_onclose(None);
        if matches!(self.state(), State::Connecting | State::Open) {
            let _ = self.socket.close_with_code(NORMAL_CLOSURE);
        }
        // The closures are dropped next. This may run inside one of them (the close handler
        // drops its own connection): wasm-bindgen then frees it when that call returns.
    }
}

/// Tells `listener` of the event of `kind` on `socket`.
fn handle<L: Listener + ?Sized>(
    listener: Rc<L>,
    socket: &web_sys::WebSocket,
    kind: u8,
    event: JsValue,
) {
    match kind {
        OPEN => listener.opened(),
        MESSAGE => {
            if let Some(message) = decode(event.unchecked_ref()) {
                listener.received(message);
            }
        }
        ERROR => {
            // Chromium and Firefox close the socket before its error event, and their close
            // event follows. WebKit fails an attempt it refuses itself (to a port it blocks)
            // while the socket is still connecting, and never closes it: the attempt ends
            // here then, the same close following.
            let connecting = socket.ready_state() == web_sys::WebSocket::CONNECTING;
            listener.failed(connecting);
        }
        _ => {
            let event = event.unchecked_into::<web_sys::CloseEvent>();
            let close = CloseEvent::new(event.code(), event.reason(), event.was_clean());
            listener.closed(close);
        }
    }
}

/// The message a `message` event carries: a string, or an `ArrayBuffer` copied into Rust once.
fn decode(event: &MessageEvent) -> Option<Message> {
    let data = event.data();
    if let Some(text) = data.as_string() {
        return Some(Message::Text(text));
    }
    let buffer = data.dyn_into::<ArrayBuffer>().ok()?;
    Some(Message::from(js::bytes(&Uint8Array::new(&buffer))))
}
