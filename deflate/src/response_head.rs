//! [`ResponseHead`]: a client's socket whose reads stop at the end of the server's handshake
//! response, so that a layer between it and tungstenite sees every frame.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

/// As many headers as tungstenite's client handshake parses (`handshake::headers::MAX_HEADERS`):
/// a response with more fails there, and here it is then passed on as it is.
const MAX_HEADERS: usize = 124;

/// Past this much without the end of the head, the layer stops looking for it and passes
/// everything on (tungstenite refuses a response this large itself).
const MOST: usize = 64 << 10;

/// A client's socket during and after the opening handshake. tungstenite's client handshake
/// reads the server's response and keeps what it read past the response's head for the
/// connection, in its own buffer: frames the server sent right behind its `101` would then
/// never pass through a layer between the socket and tungstenite, such as [`Inflate`]. Under
/// that layer, this hands the response up to the last byte of its head (found with httparse,
/// as tungstenite finds it) and no further, so that tungstenite's handshake ends with nothing
/// read ahead; the next read, the first after the handshake, gets what came after the head.
/// From then on it passes reads on.
///
/// [`Inflate`]: crate::Inflate
pub struct ResponseHead<S> {
    inner: S,
    /// The response read so far, then what was read past its head; `None` once all of it was
    /// handed up (or the head could not be found), and the layer only passes reads on.
    head: Option<Box<Head>>,
}

struct Head {
    /// The bytes read: the head, then what followed it.
    bytes: Vec<u8>,
    /// Where the head ends, once found; how far what followed it was handed up.
    end: Option<usize>,
}

impl<S> ResponseHead<S> {
    /// Wraps `inner`, before the handshake request is written.
    pub fn new(inner: S) -> Self {
        let head = Head {
            bytes: Vec::new(),
            end: None,
        };
        ResponseHead {
            inner,
            head: Some(Box::new(head)),
        }
    }

    /// Wraps `inner` whose opening handshake is over without an HTTP/1.1 response on it (a
    /// stream of an HTTP/2 connection, whose `CONNECT` was answered): it passes reads on.
    pub fn after(inner: S) -> Self {
        ResponseHead { inner, head: None }
    }

    /// The socket under the layer.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

/// Where the head of the response in `bytes` ends; `Err` when it cannot be a response (or one
/// tungstenite reads), `Ok(None)` while it is cut off.
fn head_end(bytes: &[u8]) -> Result<Option<usize>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::Response::new(&mut headers).parse(bytes)? {
        httparse::Status::Complete(end) => Ok(Some(end)),
        httparse::Status::Partial => Ok(None),
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ResponseHead<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let Some(head) = this.head.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        if buf.remaining() == 0 {
            // Nothing can be handed up; reading on would look like the end of the stream.
            return Poll::Ready(Ok(()));
        }
        if let Some(end) = head.end {
            // After the handshake: what came after the head, then the socket itself.
            let rest = &head.bytes[end..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            head.end = Some(end + n);
            if end + n == head.bytes.len() {
                this.head = None;
            }
            if n > 0 {
                return Poll::Ready(Ok(()));
            }
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if read.is_empty() {
            // The end of the stream: tungstenite says what that means.
            this.head = None;
            return Poll::Ready(Ok(()));
        }
        let start = head.bytes.len();
        head.bytes.extend_from_slice(read);
        match head_end(&head.bytes) {
            Ok(Some(end)) => {
                // Only the head goes up now; the rest waits for the next read.
                buf.set_filled(before + (end - start));
                head.bytes.drain(..end);
                head.end = Some(0);
                if head.bytes.is_empty() {
                    this.head = None;
                }
            }
            Ok(None) if head.bytes.len() <= MOST => {}
            // Not a response tungstenite accepts, or too long to be one: it fails the
            // handshake on these same bytes.
            Ok(None) | Err(_) => this.head = None,
        }
        Poll::Ready(Ok(()))
    }
}

// Writes go straight to the socket.
crate::forward_writes!(ResponseHead<S>, inner);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A socket that hands out its pieces one read at a time.
    struct Pieces(Vec<Vec<u8>>);

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if !self.0.is_empty() {
                let piece = self.0.remove(0);
                let n = piece.len().min(buf.remaining());
                buf.put_slice(&piece[..n]);
                if n < piece.len() {
                    self.0.insert(0, piece[n..].to_vec());
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";

    #[tokio::test]
    async fn reads_stop_at_the_end_of_the_head_however_it_arrives() {
        let frames = b"\xc1\x03abc\x81\x01x";
        let whole = [RESPONSE, frames].concat();
        for cut in 1..whole.len() {
            let pieces = Pieces(vec![whole[..cut].to_vec(), whole[cut..].to_vec()]);
            let mut layer = ResponseHead::new(pieces);
            // The handshake: reads until the head is whole, as tungstenite does.
            let mut handshake = Vec::new();
            while head_end(&handshake).unwrap().is_none() {
                let mut buf = [0; 4096];
                let n = layer.read(&mut buf).await.unwrap();
                assert!(n > 0, "cut at {cut}");
                handshake.extend_from_slice(&buf[..n]);
            }
            assert_eq!(handshake, RESPONSE, "cut at {cut}");
            // Then the frames, in reads as small as the caller's buffer.
            let mut after = Vec::new();
            loop {
                let mut buf = [0; 3];
                match layer.read(&mut buf).await.unwrap() {
                    0 => break,
                    n => after.extend_from_slice(&buf[..n]),
                }
            }
            assert_eq!(after, frames, "cut at {cut}");
            assert!(layer.head.is_none(), "passing reads on");
        }
    }

    #[tokio::test]
    async fn what_is_no_response_passes_on_as_it_is() {
        let garbage = b"SSH-2.0-OpenSSH\r\n\r\nmore".to_vec();
        let mut layer = ResponseHead::new(Pieces(vec![garbage.clone()]));
        let mut read = Vec::new();
        layer.read_to_end(&mut read).await.unwrap();
        assert_eq!(read, garbage);
    }
}
