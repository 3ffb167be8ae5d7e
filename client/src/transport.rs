//! The transport seam: the one connection type the state machine (`socket.rs`) drives.
//!
//! Every transport's connection has the same methods (`open`, `state`, `send`, `close`,
//! `buffered_amount`, `url`, `protocol`, `extensions`; `send` takes the message and hands it
//! back with the reason if it refuses it) and reports to `Shared` the same way
//! (`opened`, `received`, `closed`, and `emit(Some(Event::Error))` before the close of a
//! connection that failed to open); dropping one closes it with 1000 and silences it. The
//! choice is made at compile time, so that a page carries only the transports it can use:
//!
//! - natively, tokio-tungstenite (`native.rs`);
//! - in the browser, its `WebSocket` (`connection.rs`);
//! - in the browser with the `web-socket-stream` feature, either that or `WebSocketStream`
//!   (`websocketstream.rs`), chosen per socket by [`Builder::web_socket_stream`] and
//!   the browser.
//!
//! [`Builder::web_socket_stream`]: crate::Builder

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::native::Connection;

#[cfg(all(target_arch = "wasm32", not(feature = "web-socket-stream")))]
pub(crate) use crate::connection::Connection;

#[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
pub(crate) use either::Connection;

#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
use crate::{Error, Message, State, Unsent};

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

#[cfg(not(target_arch = "wasm32"))]
impl crate::native::Connection {
    pub(crate) fn transport(_: &crate::socket::Shared) -> Transport {
        Transport::Tungstenite
    }
}

#[cfg(all(target_arch = "wasm32", not(feature = "web-socket-stream")))]
impl crate::connection::Connection {
    pub(crate) fn transport(_: &crate::socket::Shared) -> Transport {
        Transport::WebSocket
    }
}

#[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
mod either {
    use std::rc::Rc;

    use super::Transport;
    use crate::socket::Shared;
    use crate::{Error, Message, State, Unsent, connection, websocketstream};

    /// A connection on whichever browser transport the socket uses.
    pub(crate) enum Connection {
        WebSocket(connection::Connection),
        Stream(websocketstream::Connection),
    }

    impl Connection {
        /// `WebSocketStream` if the application asked for it and the browser has it.
        pub(crate) fn transport(shared: &Shared) -> Transport {
            if shared.web_socket_stream && websocketstream::available() {
                Transport::WebSocketStream
            } else {
                Transport::WebSocket
            }
        }

        pub(crate) fn open(shared: &Rc<Shared>, url: &str) -> Result<Connection, Error> {
            Ok(match Self::transport(shared) {
                Transport::WebSocketStream => {
                    Connection::Stream(websocketstream::Connection::open(shared, url)?)
                }
                _ => Connection::WebSocket(connection::Connection::open(shared, url)?),
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
