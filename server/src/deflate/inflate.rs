//! The [`Inflate`] adapter: the I/O side of inflating, which feeds the sans-IO `Reader`
//! from the socket and hands up what it makes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

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

/// A socket whose compressed messages are read as plain frames. Without a negotiated
/// extension it only passes reads on (one branch, and one pointer per connection).
pub struct Inflate<S> {
    inner: S,
    reader: Option<Box<Reader>>,
}

impl<S> Inflate<S> {
    /// Wraps `inner`; inflates only when `negotiated`. `already_read` is what was read from
    /// the socket before: with the extension on it goes through the layer (so tungstenite
    /// must not be given it too); `max_size` is the message size limit.
    pub fn new(inner: S, negotiated: bool, already_read: Vec<u8>, max_size: usize) -> Self {
        let reader = negotiated.then(|| Box::new(Reader::new(already_read, max_size as u64)));
        Inflate { inner, reader }
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
                // first error anyway, and the echo loop answers it with the close code.
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

crate::forward_writes!(Inflate);
