//! What the fuzz targets share: a socket that hands out scripted bytes in the pieces the
//! fuzzer chose, a runtime to drive the async layers on, client frames, and the two readers
//! the targets compare: the server's socket stack (`wsecho::fuzzing::open_stack`) and plain
//! tungstenite.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use arbitrary::Arbitrary;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use wsecho::fuzzing::{close_code_for, open_stack, websocket_config};

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
}

/// Runs `future` to its end on the thread's runtime, whose clock is paused: it jumps ahead
/// whenever every task waits for a timer, so timeouts cost no real time.
pub fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// A socket that reads `data` in pieces of the sizes given (cycled; the rest in one piece
/// once they run out), each read pending once first where `pending` says so, and then the
/// end of the stream. Writes are taken and dropped. It records the size of every buffer a
/// read was given, in `offered` (shared, to be read once the socket is wrapped).
pub struct Scripted {
    data: Vec<u8>,
    at: usize,
    sizes: Vec<u16>,
    reads: usize,
    pending: u64,
    was_pending: bool,
    pub offered: Rc<RefCell<Vec<usize>>>,
}

impl Scripted {
    pub fn new(data: &[u8], sizes: &[u16], pending: u64) -> Scripted {
        Scripted {
            data: data.to_vec(),
            at: 0,
            sizes: sizes.to_vec(),
            reads: 0,
            pending,
            was_pending: false,
            offered: Rc::default(),
        }
    }

    /// The size of the next piece.
    fn next_piece(&mut self) -> usize {
        let left = self.data.len() - self.at;
        let size = match self.sizes.get(self.reads % self.sizes.len().max(1)) {
            Some(size) => usize::from(*size).max(1),
            None => left,
        };
        self.reads += 1;
        size.min(left)
    }
}

impl AsyncRead for Scripted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.offered.borrow_mut().push(buf.remaining());
        let pend = this.pending >> (this.reads % 64) & 1 == 1;
        if pend && !this.was_pending {
            this.was_pending = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.was_pending = false;
        let n = this.next_piece().min(buf.remaining());
        buf.put_slice(&this.data[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Scripted {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What a reader made of a stream: the messages, and the close code its end gets from the
/// echo loop (`None`: the stream ended, or an error with no code).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub messages: Vec<Message>,
    pub code: Option<u16>,
}

/// How the bytes reach the server: what hyper read past the handshake (`already_read`
/// bytes), then reads of the sizes given.
#[derive(Arbitrary, Debug, Clone)]
pub struct Delivery {
    pub already_read: u16,
    pub sizes: Vec<u16>,
    pub pending: u64,
}

impl Delivery {
    /// All at once: nothing read ahead, one read.
    pub fn whole() -> Delivery {
        Delivery {
            already_read: 0,
            sizes: Vec::new(),
            pending: 0,
        }
    }
}

/// The server's socket stack reading `stream` as `delivery` hands it over.
pub fn ours(stream: &[u8], delivery: &Delivery, deflate: bool, max_size: usize) -> Outcome {
    let split = usize::from(delivery.already_read).min(stream.len());
    let (already_read, rest) = stream.split_at(split);
    let io = Scripted::new(rest, &delivery.sizes, delivery.pending);
    block_on(async {
        let mut socket = open_stack(io, already_read.to_vec(), deflate, max_size).await;
        let mut messages = Vec::new();
        loop {
            match socket.next().await {
                Some(Ok(message)) => messages.push(message),
                // The end of the stream without a close handshake: no code, as for `plain`.
                Some(Err(Error::Protocol(ProtocolError::ResetWithoutClosingHandshake))) | None => {
                    return Outcome {
                        messages,
                        code: None,
                    };
                }
                Some(Err(error)) => {
                    let code = close_code_for(&error);
                    return Outcome { messages, code };
                }
            }
        }
    })
}

/// A blocking socket over bytes, for plain tungstenite.
struct Bytes<'a>(&'a [u8]);

impl Read for Bytes<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Bytes<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Plain tungstenite, with the server's settings, reading `stream`; its errors get the codes
/// the seed's echo (and `server/tests/differential.rs`'s reference) gives them.
pub fn plain(stream: &[u8], max_size: usize) -> Outcome {
    let config = websocket_config(max_size);
    let mut socket = WebSocket::from_raw_socket(Bytes(stream), Role::Server, Some(config));
    let mut messages = Vec::new();
    loop {
        match socket.read() {
            Ok(message) => messages.push(message),
            Err(error) => {
                let code = match error {
                    Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
                    Error::Protocol(_) => Some(1002),
                    Error::Utf8(_) => Some(1007),
                    Error::Capacity(CapacityError::MessageTooLong { .. }) => Some(1009),
                    _ => None,
                };
                return Outcome { messages, code };
            }
        }
    }
}

/// A client frame: `first` is FIN, RSV and the opcode; masked with `mask`.
pub fn client_frame(first: u8, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first];
    let len = payload.len();
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len <= 0xffff {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// The client's Close with code 1000, which ends every well-formed stream.
pub fn close_frame() -> Vec<u8> {
    client_frame(0x88, [7, 7, 7, 7], &1000u16.to_be_bytes())
}

/// A text message's payload from any bytes: valid UTF-8.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The message a reader gives for a data message.
pub fn message(is_text: bool, payload: &[u8]) -> Message {
    if is_text {
        Message::Text(Utf8Bytes::from(text(payload)))
    } else {
        Message::Binary(payload.to_vec().into())
    }
}
