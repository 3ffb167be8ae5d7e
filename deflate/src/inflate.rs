//! The [`Inflate`] adapter: the I/O side of inflating, which feeds the sans-IO `Reader`
//! from the socket and hands up what it makes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};
use tungstenite::protocol::Role;

use super::reader::Reader;

/// Why an inflating read failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The message inflates past the size limit: Close 1009.
    #[error("a compressed message inflates past the size limit")]
    TooBig,
    /// The payload is not DEFLATE data: Close 1007.
    #[error("a compressed message is not valid DEFLATE data")]
    Corrupt,
}

/// The inflating layer's error inside a tungstenite I/O error, if it is one.
pub fn inflate_error(error: &io::Error) -> Option<&InflateError> {
    error.get_ref()?.downcast_ref::<InflateError>()
}

/// How the peer's frames are read once permessage-deflate is agreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Our end of the connection, as tungstenite is told it. A server reads a client's
    /// masked frames and hands tungstenite inflated ones masked with a zero mask; a client
    /// reads a server's unmasked frames and hands them up unmasked. A compressed frame masked
    /// the other way passes unchanged, and tungstenite fails it.
    pub role: Role,
    /// The message size limit, which a compressed message is held to once inflated (and
    /// compressed: a stream of empty DEFLATE blocks costs too).
    pub max_message_size: usize,
    /// Whether the peer may compress a message with the window of the messages before it
    /// (it was not told `*_no_context_takeover` for its side): the inflater then keeps its
    /// window from one message to the next.
    pub context_takeover: bool,
}

impl Reading {
    /// A server's reading as `negotiate` agrees it: the client's frames, without context
    /// takeover.
    pub fn server(max_message_size: usize) -> Reading {
        Reading {
            role: Role::Server,
            max_message_size,
            context_takeover: false,
        }
    }
}

/// A socket whose compressed messages are read as plain frames. Without a negotiated
/// extension it only passes reads on (one branch, and one pointer per connection).
///
/// Where its zlib state comes from depends on the role: a server (many connections, few
/// messages in flight at once) takes a spare inflater for each compressed message and gives
/// it back at its end (`release_unused_spares` drops the spares once unused); a client keeps
/// one of its own for as long as the connection lives, made at the first compressed message.
pub struct Inflate<S> {
    inner: S,
    reader: Option<Box<Reader>>,
}

impl<S> Inflate<S> {
    /// Wraps `inner`; inflates as `reading` says, or only passes reads on without it.
    /// `already_read` is what was read from the socket before: with the extension on it goes
    /// through the layer (so tungstenite must not be given it too).
    pub fn new(inner: S, reading: Option<Reading>, already_read: Vec<u8>) -> Self {
        let reader = reading.map(|reading| Box::new(Reader::new(already_read, reading)));
        Inflate { inner, reader }
    }

    /// Starts inflating on a layer made without a [`Reading`], before anything past the
    /// handshake was read through it: a client, once tungstenite's handshake (over a
    /// [`ResponseHead`](crate::ResponseHead), which keeps what follows the response for later
    /// reads) has agreed on the extension.
    pub fn turn_on(&mut self, reading: Reading) {
        self.reader = Some(Box::new(Reader::new(Vec::new(), reading)));
    }

    /// The socket under the layer, to drain what the peer still sends once the connection
    /// has failed.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Inflate<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let Some(reader) = this.reader.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        if buf.remaining() == 0 {
            // Nothing can be handed up; reading on would look like the end of the stream.
            return Poll::Ready(Ok(()));
        }
        loop {
            if reader.hand_up(buf) {
                return Poll::Ready(Ok(()));
            }
            if let Some(failure) = reader.failure {
                // Every read from now on fails: tokio-tungstenite ends its stream at the
                // first error anyway, and the caller answers it with the close code
                // (`inflate_error`).
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, failure)));
            }
            if reader.follow() {
                continue;
            }
            if reader.is_passing() {
                // Straight into tungstenite's buffer; what must be inflated is taken back.
                let before = buf.filled().len();
                ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                let read = buf.filled().len() - before;
                if read == 0 {
                    return Poll::Ready(Ok(()));
                }
                let passed = reader.pass_in_place(&buf.filled()[before..]);
                if passed < read {
                    reader.take_in(&buf.filled()[before + passed..]);
                    buf.set_filled(before + passed);
                }
                if passed > 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            // Nothing to hand up and nothing to follow: read on. On the stack, not in the
            // reader: an idle connection keeps no buffer.
            let mut bytes = [0u8; 8 << 10];
            let mut read = ReadBuf::new(&mut bytes);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // The end of the stream; tungstenite says what that means.
                return Poll::Ready(Ok(()));
            }
            reader.take_in(read.filled());
        }
    }
}

// Writes go straight to the socket: compression happens before tungstenite, message by
// message (`compress`, `Compressor`).
crate::forward_writes!(Inflate<S>, inner);
