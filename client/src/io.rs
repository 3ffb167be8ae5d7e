//! Bytes as a stream: a socket's messages as one `AsyncRead` + `AsyncWrite` byte stream (the
//! `futures-io` traits), for codecs that frame their own data (lines, length-delimited, CBOR)
//! over a WebSocket, as gloo-net's `AsyncRead`/`AsyncWrite` and ws_stream_wasm's `into_io()`
//! offer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_io::{AsyncRead, AsyncWrite};
use futures_util::{Sink, Stream};

use crate::message::{CloseEvent, Message};
use crate::messages::Messages;
use crate::payload::Payload;
use crate::socket::WebSocket;

impl WebSocket {
    /// The messages received from now on as one stream of bytes, and a writer whose every
    /// write is one binary message: an `AsyncRead` + `AsyncWrite` (the `futures-io` traits)
    /// to run a codec over. A text message reads as its UTF-8 bytes. Reading ends (0 bytes)
    /// after the socket's last close; closing the writer closes the socket and waits for it.
    /// Writes wait as [`send_async`](Self::send_async) does.
    pub fn io(&self) -> ByteStream {
        ByteStream {
            messages: self.messages(),
            unread: Payload::default(),
            read: 0,
        }
    }
}

/// A socket's messages as bytes; made by [`WebSocket::io`].
#[derive(Debug)]
pub struct ByteStream {
    messages: Messages,
    /// The message being read, and how much of it has been.
    unread: Payload,
    read: usize,
}

impl ByteStream {
    /// The socket.
    pub fn socket(&self) -> &WebSocket {
        self.messages.socket()
    }

    /// The socket's last close, once reading has ended; see
    /// [`MessageStream::close_event`](crate::MessageStream::close_event).
    pub fn close_event(&self) -> Option<&CloseEvent> {
        self.messages.close_event()
    }
}

impl AsyncRead for ByteStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        while this.read == this.unread.len() {
            let Some(message) = ready!(Pin::new(&mut this.messages).poll_next(cx)) else {
                return Poll::Ready(Ok(0));
            };
            this.unread = match message {
                Message::Text(text) => text.into_bytes().into(),
                Message::Binary(data) => data,
            };
            this.read = 0;
        }
        let left = &this.unread[this.read..];
        let taken = left.len().min(buf.len());
        buf[..taken].copy_from_slice(&left[..taken]);
        this.read += taken;
        Poll::Ready(Ok(taken))
    }
}

impl AsyncWrite for ByteStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut messages = Pin::new(&mut self.messages);
        ready!(messages.as_mut().poll_ready(cx)).map_err(io::Error::other)?;
        let message = Message::from(buf);
        messages.start_send(message).map_err(io::Error::other)?;
        Poll::Ready(Ok(buf.len()))
    }

    /// Every write went to the socket as it was made: nothing to flush.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Closes the socket with 1000 and waits until it has closed.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.messages)
            .poll_close(cx)
            .map_err(io::Error::other)
    }
}
