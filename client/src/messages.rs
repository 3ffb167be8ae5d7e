//! The async side: the stream of messages, and the duplex [`Messages`].

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::{Sink, Stream};

use crate::error::Error;
use crate::event::Event;
use crate::inbox::Events;
use crate::message::{CloseEvent, Message};
use crate::sink::MessageSink;
use crate::socket::WebSocket;

impl WebSocket {
    /// One value that is both a `Stream` of the messages received from now on and a `Sink`
    /// of messages to send; [`Messages::split`] parts it in two.
    pub fn messages(&self) -> Messages {
        Messages::new(self.sink(), MessageStream::new(self.clone(), self.events()))
    }
}

/// The messages a socket receives, without its other events: the receiving half of
/// [`Messages`]. Ends after the socket's last close, whose code and reason
/// [`close_event`](Self::close_event) then tells. It holds a handle, so it keeps the socket
/// open while it exists, and it can close it.
#[derive(Debug)]
pub struct MessageStream {
    socket: WebSocket,
    events: Events,
    last_close: Option<CloseEvent>,
}

impl MessageStream {
    pub(crate) fn new(socket: WebSocket, events: Events) -> Self {
        MessageStream {
            socket,
            events,
            last_close: None,
        }
    }

    /// The last close seen so far; once the stream has ended, the close that ended the
    /// socket, with its code and reason.
    pub fn close_event(&self) -> Option<&CloseEvent> {
        self.last_close.as_ref()
    }

    /// The socket.
    pub fn socket(&self) -> &WebSocket {
        &self.socket
    }

    /// Closes the socket with 1000; see [`WebSocket::close`].
    pub fn close(&self) -> Result<(), Error> {
        self.socket.close()
    }

    /// Closes the socket; see [`WebSocket::close_with`].
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        self.socket.close_with(code, reason)
    }

    /// Resolves once the socket has closed for good; see [`WebSocket::closed`].
    pub async fn closed(&self) -> CloseEvent {
        self.socket.closed().await
    }
}

impl Stream for MessageStream {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        loop {
            match ready!(Pin::new(&mut self.events).poll_next(cx)) {
                Some(Event::Message(message)) => return Poll::Ready(Some(message)),
                Some(Event::Close(close)) => self.last_close = Some(close),
                Some(_) => {}
                None => return Poll::Ready(None),
            }
        }
    }
}

/// One value that is both a `Stream` of the messages a socket receives and a `Sink` of
/// messages to send, like tokio-tungstenite's and gloo's; made by
/// [`WebSocket::messages`](crate::WebSocket::messages).
///
/// The stream ends after the socket's last close, whose code and reason
/// [`close_event`](Self::close_event) then tells. The sink sends as
/// [`WebSocket::send_async`](crate::WebSocket::send_async) does, and closing it closes the
/// socket. Errors leave both usable. [`split`](Self::split) parts it into halves that can
/// each close the socket; dropping the last of them (and every other handle) closes it.
#[derive(Debug)]
pub struct Messages {
    sink: MessageSink,
    stream: MessageStream,
}

impl Messages {
    pub(crate) fn new(sink: MessageSink, stream: MessageStream) -> Self {
        Messages { sink, stream }
    }

    /// The sending and the receiving half, each usable from its own task.
    pub fn split(self) -> (MessageSink, MessageStream) {
        (self.sink, self.stream)
    }

    /// See [`MessageStream::close_event`].
    pub fn close_event(&self) -> Option<&CloseEvent> {
        self.stream.close_event()
    }

    /// The socket.
    pub fn socket(&self) -> &WebSocket {
        self.stream.socket()
    }

    /// Closes the socket with a code and reason; see [`WebSocket::close_with`]. (`close`,
    /// from `SinkExt`, closes it with 1000.)
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        self.stream.close_with(code, reason)
    }
}

impl Stream for Messages {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        Pin::new(&mut self.stream).poll_next(cx)
    }
}

impl Sink<Message> for Messages {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.sink).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        Pin::new(&mut self.sink).start_send(message)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.sink).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.sink).poll_close(cx)
    }
}
