//! The link: which transport a socket's connections use, chosen at compile time so that a
//! page carries only the transports it can use:
//!
//! - natively, tokio-tungstenite (`native.rs`); in the crate's own unit tests, the simulated
//!   transport of `tests/sim.rs` instead;
//! - in the browser, its `WebSocket` (`connection.rs`);
//! - in the browser with the `web-socket-stream` feature, either that or `WebSocketStream`
//!   (`websocketstream.rs`), chosen per socket by [`Builder::web_socket_stream`] and
//!   the browser.
//!
//! [`Builder::web_socket_stream`]: crate::Builder

use crate::transport::{Options, Transport};

#[cfg(all(not(target_arch = "wasm32"), not(any(test, feature = "fuzzing"))))]
pub(crate) use crate::native::Connection;
#[cfg(all(not(target_arch = "wasm32"), any(test, feature = "fuzzing")))]
pub(crate) use crate::tests::sim::Connection;

#[cfg(all(target_arch = "wasm32", not(feature = "web-socket-stream")))]
pub(crate) use crate::connection::Connection;

#[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
pub(crate) use either::Connection;

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

    use crate::error::Error;
    use crate::event::Unsent;
    use crate::message::{Message, State};
    use crate::transport::{Listener, Options, Transport};
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

        pub(crate) fn close(&self, code: u16, reason: &str) {
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
