//! The sending half: a `futures` sink with backpressure.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::Sink;

use crate::error::Error;
use crate::message::{CloseEvent, Message};
use crate::socket::{Readiness, WebSocket};

impl WebSocket {
    /// A `futures` sink that sends as [`send_async`](Self::send_async) does. Closing the
    /// sink closes the socket with 1000, and resolves once it has closed.
    pub fn sink(&self) -> MessageSink {
        MessageSink::new(self.clone())
    }
}

/// A `futures` sink of messages; made by [`WebSocket::sink`] or [`Messages::split`].
///
/// It is ready when [`WebSocket::send_async`] would send: once the browser's buffer is under
/// the high-water mark, the first connection has opened, and the reconnection queue has room.
/// A failed send is returned as its [`Error`] and leaves the sink as usable as before; no
/// sequence of calls makes it panic. Closing it closes the socket with 1000 and resolves once
/// the socket has closed. It holds a handle, so it keeps the socket open while it exists.
///
/// [`Messages::split`]: crate::Messages::split
pub struct MessageSink {
    socket: WebSocket,
    readiness: Readiness,
    /// The wait for the close, once `poll_close` asked for it.
    closing: Option<Pin<Box<dyn Future<Output = CloseEvent>>>>,
}

impl std::fmt::Debug for MessageSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageSink")
            .field("socket", &self.socket)
            .finish()
    }
}

impl MessageSink {
    pub(crate) fn new(socket: WebSocket) -> Self {
        MessageSink {
            socket,
            readiness: Readiness::default(),
            closing: None,
        }
    }

    /// The socket.
    pub fn socket(&self) -> &WebSocket {
        &self.socket
    }

    /// Closes the socket with a code and reason; see [`WebSocket::close_with`]. (`close`,
    /// from `SinkExt`, closes it with 1000.)
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        self.socket.close_with(code, reason)
    }

    /// Resolves once the socket has closed for good; see [`WebSocket::closed`].
    pub async fn closed(&self) -> CloseEvent {
        self.socket.closed().await
    }
}

impl Sink<Message> for MessageSink {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = &mut *self;
        this.readiness.poll(cx, &this.socket).map(Ok)
    }

    /// Sends at once, like [`WebSocket::send`]; also when `poll_ready` was not called first.
    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.socket.send(message).map(drop)
    }

    /// Messages are handed to the browser (or queued) by `start_send`: nothing to flush.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    /// Closes the socket with 1000 (unless it is closing already), then waits until it has
    /// closed.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.closing.is_none() {
            self.socket.close()?;
            let socket = self.socket.clone();
            self.closing = Some(Box::pin(async move { socket.closed().await }));
        }
        if let Some(closing) = &mut self.closing {
            ready!(closing.as_mut().poll(cx));
        }
        // Closing again waits again (at once, once closed): a future done is not polled.
        self.closing = None;
        Poll::Ready(Ok(()))
    }
}
