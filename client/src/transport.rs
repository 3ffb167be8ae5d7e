//! The transport seam: what the driver (`socket.rs`) opens, and how each transport reports
//! back. Events flow one way: a transport knows the driver only as a [`Listener`], and never
//! imports it or the core.
//!
//! Every transport's connection has the same methods (`open`, `state`, `send`, `close`,
//! `buffered_amount`, `url`, `protocol`, `extensions`; `send` takes the message and hands it
//! back with the reason if it refuses it) and reports the same way (`opened`, `received`,
//! `closed`, and `failed` before the close of a connection that failed to open); dropping one
//! closes it with 1000 and silences it. The choice is made at compile time, so that a page
//! carries only the transports it can use:
//!
//! - natively, tokio-tungstenite (`native.rs`); in the crate's own unit tests, the simulated
//!   transport of `sim.rs` instead;
//! - in the browser, its `WebSocket` (`connection.rs`);
//! - in the browser with the `web-socket-stream` feature, either that or `WebSocketStream`
//!   (`websocketstream.rs`), chosen per socket by [`Builder::web_socket_stream`] and
//!   the browser.
//!
//! [`Builder::web_socket_stream`]: crate::Builder

#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
use std::pin::Pin;
use std::rc::Rc;

#[cfg(all(not(target_arch = "wasm32"), not(test)))]
pub(crate) use crate::native::Connection;
#[cfg(all(not(target_arch = "wasm32"), test))]
pub(crate) use crate::sim::Connection;

#[cfg(all(target_arch = "wasm32", not(feature = "web-socket-stream")))]
pub(crate) use crate::connection::Connection;

#[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
pub(crate) use either::Connection;

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
    /// The connection failed (the browser's error event); its close follows.
    fn failed(self: Rc<Self>);
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
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) protocols: Vec<String>,
    /// Whether the application asked for `WebSocketStream`.
    #[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
    pub(crate) web_socket_stream: bool,
    /// Natively, the application's TLS setup, if it gave one.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) tls: Option<std::sync::Arc<rustls::ClientConfig>>,
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

/// The transport a socket with these options uses.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn kind(_: &Options) -> Transport {
    Transport::Tungstenite
}

/// The transport a socket with these options uses.
#[cfg(all(target_arch = "wasm32", not(feature = "web-socket-stream")))]
pub(crate) fn kind(_: &Options) -> Transport {
    Transport::WebSocket
}

/// `WebSocketStream` if the application asked for it and the browser has it.
#[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
pub(crate) fn kind(options: &Options) -> Transport {
    if options.web_socket_stream && crate::websocketstream::available() {
        Transport::WebSocketStream
    } else {
        Transport::WebSocket
    }
}

#[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
mod either {
    use std::rc::Weak;

    use super::{Listener, Options, Transport};
    use crate::error::Error;
    use crate::event::Unsent;
    use crate::message::{Message, State};
    use crate::{connection, websocketstream};

    /// A connection on whichever browser transport the socket uses.
    pub(crate) enum Connection {
        WebSocket(connection::Connection),
        Stream(websocketstream::Connection),
    }

    impl Connection {
        pub(crate) fn open(
            listener: Weak<dyn Listener>,
            url: &str,
            options: &Options,
        ) -> Result<Connection, Error> {
            Ok(match super::kind(options) {
                Transport::WebSocketStream => {
                    Connection::Stream(websocketstream::Connection::open(listener, url, options)?)
                }
                _ => Connection::WebSocket(connection::Connection::open(listener, url, options)?),
            })
        }

        pub(crate) fn state(&self) -> State {
            match self {
                Connection::WebSocket(c) => c.state(),
                Connection::Stream(c) => c.state(),
            }
        }

        pub(crate) fn send(&self, message: Message) -> Result<(), Unsent> {
            match self {
                Connection::WebSocket(c) => c.send(message),
                Connection::Stream(c) => c.send(message),
            }
        }

        pub(crate) fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
            match self {
                Connection::WebSocket(c) => c.close(code, reason),
                Connection::Stream(c) => c.close(code, reason),
            }
        }

        pub(crate) fn buffered_amount(&self) -> u32 {
            match self {
                Connection::WebSocket(c) => c.buffered_amount(),
                Connection::Stream(c) => c.buffered_amount(),
            }
        }

        pub(crate) fn url(&self) -> String {
            match self {
                Connection::WebSocket(c) => c.url(),
                Connection::Stream(c) => c.url(),
            }
        }

        pub(crate) fn protocol(&self) -> String {
            match self {
                Connection::WebSocket(c) => c.protocol(),
                Connection::Stream(c) => c.protocol(),
            }
        }

        pub(crate) fn extensions(&self) -> String {
            match self {
                Connection::WebSocket(c) => c.extensions(),
                Connection::Stream(c) => c.extensions(),
            }
        }
    }
}
