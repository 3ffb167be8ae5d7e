//! Small when idle, large when busy: the read side of a WebSocket connection.
//!
//! tungstenite reads into a buffer of `read_buffer_size` bytes, and never more per read call.
//! Every connection holds that buffer, idle or not, so it is small here ([`crate::Config`]
//! sets 512 bytes); but then a 16 KiB message would take 32 read system calls. [`ReadAhead`]
//! sits under tungstenite: while messages are small it reads straight into tungstenite's
//! buffer. Once a read fills that buffer, more is likely waiting, so it reads [`CHUNK`] bytes
//! at a time into a buffer of its own and hands them out from memory; when a read comes back
//! short, the socket is drained, and the buffer is freed once it has been handed out.
//!
//! That costs a trip through every layer for each 512 bytes, and a copy of every byte. So a
//! connection whose reads take whole chunks is *heavy* ([`ReadAhead::is_heavy`]): the echo
//! loop then gives it a tungstenite socket with a window as wide as a chunk
//! (`config::WIDE_READ`) and tells this layer to stand aside ([`ReadAhead::set_wide`]):
//! tungstenite reads straight from the socket into its own buffer, with no chunk and no copy,
//! until the peer falls silent.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

/// The most one read system call takes while the connection is busy.
pub const CHUNK: usize = 32 * 1024;

/// A socket whose reads go through a buffer of its own while it is busy.
pub struct ReadAhead<S> {
    inner: S,
    /// Empty unless busy; `start..end` is what has been read and not handed out yet.
    chunk: Box<[u8]>,
    start: usize,
    end: usize,
    /// The last read filled what it was given.
    busy: bool,
    /// A chunk was read whole since [`ReadAhead::set_wide`] was last called.
    heavy: bool,
    /// Reads go straight to the socket: the peer is heavy, and tungstenite's own window is
    /// as wide as a chunk.
    wide: bool,
}

impl<S> ReadAhead<S> {
    pub fn new(inner: S) -> Self {
        ReadAhead {
            inner,
            chunk: Box::default(),
            start: 0,
            end: 0,
            busy: false,
            heavy: false,
            wide: false,
        }
    }

    /// Whether the peer sends faster than small reads keep up with: a read of a whole
    /// [`CHUNK`] since the last [`ReadAhead::set_wide`].
    pub fn is_heavy(&self) -> bool {
        self.heavy
    }

    /// Whether the peer is heavy and tungstenite reads in wide windows: then reads go
    /// straight to the socket, once what is buffered is handed out; otherwise through the
    /// chunk while busy, as before. Heaviness is judged afresh. Called when tungstenite's
    /// socket is renewed.
    pub fn set_wide(&mut self, wide: bool) {
        self.wide = wide;
        self.busy = false;
        if self.start == self.end {
            self.chunk = Box::default();
        }
        self.heavy = false;
    }

    /// The wrapped socket.
    #[cfg(test)]
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Whether it holds a buffer now.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn is_buffering(&self) -> bool {
        !self.chunk.is_empty()
    }

    /// Hands out what is buffered; frees the buffer once it is empty and the socket drained.
    fn hand_out(&mut self, out: &mut ReadBuf<'_>) {
        let n = out.remaining().min(self.end - self.start);
        out.put_slice(&self.chunk[self.start..self.start + n]);
        self.start += n;
        if self.start == self.end && (!self.busy || self.wide) {
            self.chunk = Box::default();
        }
    }
}

impl<S: AsyncRead + Unpin + 'static> ReadAhead<S> {
    /// Whether a read may find something now, without reading: `Ready` if bytes are buffered
    /// here or the socket may have some, `Pending` once a plain TCP socket is known to have
    /// none, with the task `cx` to be woken when it has. Only a `TcpStream` is asked (its
    /// readiness, which tokio clears after a short read, costs no system call); any other
    /// transport (TLS, an HTTP/2 stream) is always `Ready`, and so read as before.
    pub fn poll_readable(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.start < self.end {
            return Poll::Ready(());
        }
        let socket: &mut dyn std::any::Any = &mut self.inner;
        match socket.downcast_mut::<tokio::net::TcpStream>() {
            Some(tcp) => tcp.poll_read_ready(cx).map(|_| ()),
            None => Poll::Ready(()),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start < this.end {
            this.hand_out(out);
            return Poll::Ready(Ok(()));
        }
        if this.wide {
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        if !this.busy {
            let (before, room) = (out.filled().len(), out.remaining());
            ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
            this.busy = room > 0 && out.filled().len() - before == room;
            return Poll::Ready(Ok(()));
        }
        if this.chunk.is_empty() {
            this.chunk = vec![0; CHUNK].into_boxed_slice();
        }
        let mut chunk = ReadBuf::new(&mut this.chunk);
        let read = Pin::new(&mut this.inner).poll_read(cx, &mut chunk);
        let n = chunk.filled().len();
        if let Poll::Pending | Poll::Ready(Err(_)) = read {
            this.busy = false;
            this.chunk = Box::default();
            return read;
        }
        // A short read drained the socket: back to reading straight through.
        this.busy = n == CHUNK;
        this.heavy |= this.busy;
        (this.start, this.end) = (0, n);
        this.hand_out(out);
        Poll::Ready(Ok(()))
    }
}

ws_deflate::forward_writes!(ReadAhead<S>, inner);

/// A socket that counts the reads that reach it, for tests: this layer's, and the echo
/// loop's reads on a wide socket.
#[cfg(test)]
pub(crate) struct Counted<S> {
    pub(crate) inner: S,
    pub(crate) reads: usize,
}

#[cfg(test)]
impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if result.is_ready() {
            this.reads += 1;
        }
        result
    }
}

#[cfg(test)]
ws_deflate::forward_writes!(Counted<S>, inner);

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// `n` bytes that differ from one position to the next.
    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn small_reads_go_straight_through_and_hold_no_buffer() {
        let (mut peer, socket) = tokio::io::duplex(1 << 20);
        let mut socket = ReadAhead::new(Counted {
            inner: socket,
            reads: 0,
        });
        for i in 0..10u8 {
            peer.write_all(&[i; 38]).await.unwrap();
            let mut buffer = [0; 512];
            let n = socket.read(&mut buffer).await.unwrap();
            assert_eq!(&buffer[..n], &[i; 38]);
            assert!(!socket.is_buffering());
        }
        assert_eq!(socket.get_ref().reads, 10);
    }

    #[tokio::test]
    async fn a_large_burst_takes_few_system_reads_arrives_intact_and_frees_the_buffer() {
        let (mut peer, socket) = tokio::io::duplex(1 << 20);
        let mut socket = ReadAhead::new(Counted {
            inner: socket,
            reads: 0,
        });
        let sent = pattern(200_000);
        peer.write_all(&sent).await.unwrap();
        let mut received = Vec::new();
        let mut buffer = [0; 512];
        while received.len() < sent.len() {
            let n = socket.read(&mut buffer).await.unwrap();
            received.extend_from_slice(&buffer[..n]);
        }
        assert_eq!(received, sent);
        // 391 reads of 512 bytes, but only 1 + 200,000 / CHUNK + 1 reach the socket.
        let reads = socket.get_ref().reads;
        assert!(reads <= 2 + sent.len() / CHUNK, "{reads} reads");
        assert!(!socket.is_buffering(), "the buffer is freed once drained");

        // And small messages go straight through again.
        peer.write_all(b"after").await.unwrap();
        let n = socket.read(&mut buffer).await.unwrap();
        assert_eq!(&buffer[..n], b"after");
        assert!(!socket.is_buffering());
    }

    #[tokio::test]
    async fn a_heavy_peer_is_told_and_a_wide_reader_reads_straight_from_the_socket() {
        let (mut peer, socket) = tokio::io::duplex(1 << 20);
        let mut socket = ReadAhead::new(Counted {
            inner: socket,
            reads: 0,
        });
        // A few small messages: not heavy.
        peer.write_all(&[1; 600]).await.unwrap();
        let mut buffer = [0; 512];
        while socket.read(&mut buffer).await.unwrap() == 512 {}
        assert!(!socket.is_heavy());
        // A burst of more than a chunk: heavy.
        let sent = pattern(3 * CHUNK);
        peer.write_all(&sent).await.unwrap();
        let mut received = Vec::new();
        while received.len() < CHUNK {
            let n = socket.read(&mut buffer).await.unwrap();
            received.extend_from_slice(&buffer[..n]);
        }
        assert!(socket.is_heavy());
        // Widened while part of a chunk is still buffered (the echo loop does so only where
        // nothing is; read on for the test): that part is handed out first, then every read
        // reaches the socket, and no chunk is held.
        socket.set_wide(true);
        assert!(!socket.is_heavy(), "judged afresh");
        let mut wide = vec![0; CHUNK];
        let n = socket.read(&mut wide).await.unwrap();
        received.extend_from_slice(&wide[..n]);
        assert!(!socket.is_buffering(), "the chunk is freed once handed out");
        let before = socket.get_ref().reads;
        let mut reads = 0;
        while received.len() < sent.len() {
            let n = socket.read(&mut wide).await.unwrap();
            received.extend_from_slice(&wide[..n]);
            reads += 1;
            assert!(!socket.is_buffering(), "no chunk while wide");
        }
        assert_eq!(received, sent);
        assert_eq!(
            socket.get_ref().reads - before,
            reads,
            "every read reaches the socket"
        );
        // Narrowed again: small reads go straight through, and a full one starts a chunk.
        socket.set_wide(false);
        peer.write_all(&pattern(2 * CHUNK)).await.unwrap();
        let n = socket.read(&mut buffer).await.unwrap();
        assert_eq!(n, 512);
        assert!(!socket.is_buffering());
        let n = socket.read(&mut buffer).await.unwrap();
        assert_eq!(n, 512);
        assert!(
            socket.is_buffering(),
            "busy again: reads go through the chunk"
        );
    }

    /// One look at whether `socket` is readable.
    async fn readable<S: AsyncRead + Unpin + 'static>(socket: &mut ReadAhead<S>) -> Poll<()> {
        std::future::poll_fn(|cx| Poll::Ready(socket.poll_readable(cx))).await
    }

    #[tokio::test]
    async fn a_tcp_socket_says_whether_it_is_readable_without_a_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let mut socket = ReadAhead::new(listener.accept().await.unwrap().0);
        // tokio takes a socket it has not read yet for readable.
        peer.write_all(b"hello").await.unwrap();
        let mut buffer = [0; 512];
        assert_eq!(socket.read(&mut buffer).await.unwrap(), 5);
        // A short read drained the socket: pending now, with a wake-up arranged for when the
        // peer writes.
        assert!(readable(&mut socket).await.is_pending());
        assert!(
            readable(&mut socket).await.is_pending(),
            "asking took nothing"
        );
        peer.write_all(b"again").await.unwrap();
        std::future::poll_fn(|cx| socket.poll_readable(cx)).await;
        let n = socket.read(&mut buffer).await.unwrap();
        assert_eq!(&buffer[..n], b"again");
        // Any other transport is always worth a read.
        let (_peer, duplex) = tokio::io::duplex(64);
        let mut other = ReadAhead::new(duplex);
        assert!(readable(&mut other).await.is_ready());
    }

    #[tokio::test]
    async fn the_end_of_the_stream_is_passed_on() {
        let (mut peer, socket) = tokio::io::duplex(1 << 20);
        let mut socket = ReadAhead::new(socket);
        let sent = pattern(3_000);
        peer.write_all(&sent).await.unwrap();
        drop(peer);
        let mut received = Vec::new();
        let mut buffer = [0; 512];
        loop {
            let n = socket.read(&mut buffer).await.unwrap();
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buffer[..n]);
        }
        assert_eq!(received, sent);
    }
}
