//! The handle's methods that are not in the drivers' vtable (`socket::Driver`): each finds
//! the driver by its type and calls it. A vtable holds every method of its trait in every
//! program that makes the driver, called or not; these are called by some programs only (the
//! demo page calls none of them, nor does the peers' program),
//! and here a program carries their code, for both drivers, only if it calls them.

use std::cell::Ref;
use std::rc::Rc;

use crate::link::Connection;
use crate::socket::{Shared, WebSocket};
use crate::thin::Thin;

/// The driver behind a handle, by its type.
enum Kind {
    Thin(Rc<Thin>),
    Full(Rc<Shared>),
}

impl WebSocket {
    /// Found through `Driver::into_any` alone: a second, borrowing, method would be one more
    /// entry of every program's vtable.
    fn kind(&self) -> Option<Kind> {
        match self.driver.clone().into_any().downcast::<Thin>() {
            Ok(thin) => Some(Kind::Thin(thin)),
            Err(any) => any.downcast::<Shared>().ok().map(Kind::Full),
        }
    }

    /// Makes the next connection attempt now, unless the application closed the socket:
    /// while waiting to reconnect, without waiting out the backoff; once the socket has closed
    /// for good (its attempts used up, a final code, or no reconnection at all), starting
    /// again, with the attempts counted from one; also while the browser says it is offline
    /// ([`Builder::follow_network`](crate::Builder::follow_network)), which it then no longer
    /// heeds until it says so again. The attempt starts right after this call;
    /// streams made before the socket closed have ended, so make new ones. Does nothing while
    /// connecting or open, or after [`close`](Self::close).
    pub fn reconnect_now(&self) {
        match self.kind() {
            Some(Kind::Thin(thin)) => thin.reconnect_now(),
            Some(Kind::Full(shared)) => shared.reconnect_now(),
            None => {}
        }
    }

    /// The transport the socket's connections use: with
    /// `Builder::web_socket_stream` (feature `web-socket-stream`), whether the browser had
    /// `WebSocketStream`.
    pub fn transport(&self) -> crate::Transport {
        match self.kind() {
            Some(Kind::Full(shared)) => shared.transport(),
            _ => Thin::transport(),
        }
    }

    /// Bytes passed to the browser that it has not yet handed to the network.
    pub fn buffered_amount(&self) -> u32 {
        self.with_link(Connection::buffered_amount)
    }

    /// Messages waiting for the next connection.
    pub fn queued(&self) -> usize {
        match self.kind() {
            Some(Kind::Full(shared)) => shared.queued(),
            // No reconnection, no queue.
            _ => 0,
        }
    }

    /// The subprotocol the server selected; empty when none, or while not connected.
    pub fn protocol(&self) -> String {
        self.with_link(Connection::protocol)
    }

    /// The extensions the server accepted, such as `permessage-deflate`; empty when none.
    pub fn extensions(&self) -> String {
        self.with_link(Connection::extensions)
    }

    /// Natively, with the `http2` feature: the HTTP version the current connection opened
    /// with (a stream of a shared HTTP/2 connection, or HTTP/1.1; see
    /// [`Builder::http2`](crate::Builder::http2)); `None` before one opened.
    #[cfg(all(not(target_arch = "wasm32"), feature = "http2"))]
    pub fn http_version(&self) -> Option<crate::HttpVersion> {
        self.with_link(Connection::http_version)
    }

    /// Reads the current connection; `T::default()` when there is none.
    fn with_link<T: Default>(&self, read: impl FnOnce(&Connection) -> T) -> T {
        let kind = self.kind();
        let link: Option<Ref<'_, Connection>> = match &kind {
            Some(Kind::Thin(thin)) => thin.link(),
            Some(Kind::Full(shared)) => shared.link(),
            None => None,
        };
        link.map(|link| read(&link)).unwrap_or_default()
    }
}
