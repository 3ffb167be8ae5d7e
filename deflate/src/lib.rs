//! permessage-deflate (RFC 7692) beneath tungstenite, which has no extension support (0.30
//! fails every frame with RSV1 set with 1002), for both ends of a connection: the echo server
//! (`wsecho`) and the native client (`wasm-websocket`) use this one implementation.
//!
//! The parts:
//!
//! - Negotiation. A server's side, [`negotiate`], reads the client's `Sec-WebSocket-Extensions`
//!   offers and accepts the first one it can honour exactly, always without context takeover
//!   on both sides: no compression state outlives a message, so an idle connection costs what
//!   it costs without deflate. A client's side, [`OFFER`] and [`accept_response`], offers
//!   deflate and checks the server's answer as section 5.1 says: anything it cannot honour
//!   fails the handshake with a [`ResponseError`].
//! - [`Inflate`] sits under tungstenite. It follows the peer's frames with tungstenite's own
//!   [`FrameHeader::parse`](tungstenite::protocol::frame::FrameHeader::parse) and turns each
//!   compressed message (RSV1 on its first frame) into plain frames: unmasked, inflated with
//!   flate2 (raw DEFLATE, the `00 00 ff ff` tail appended at the message's end, RFC 7692
//!   section 7.2.2), and handed up in frames of at most [`CHUNK`] bytes, as tungstenite
//!   expects them in its [`Role`](tungstenite::protocol::Role): masked with a zero mask for a
//!   server, which reads a client's frames; unmasked for a client. Everything else passes
//!   unchanged, so tungstenite still judges it: RSV1 on a control frame or a continuation
//!   keeps its bit and gets tungstenite's 1002. The inflated size counts against the message
//!   size limit: the read fails with [`InflateError::TooBig`] (1009) at most one chunk past
//!   it, so a bomb costs one chunk of memory beyond the limit, and bad DEFLATE data with
//!   [`InflateError::Corrupt`] (1007).
//! - [`ResponseHead`], under [`Inflate`] on a client: tungstenite's client handshake reads the
//!   server's response and keeps whatever came after it in its own buffer, above any layer;
//!   this hands up the response up to its last byte and no further, so that compressed
//!   frames sent right behind the `101` still go through [`Inflate`].
//! - [`compress`] (a server's, with the process's spare compressors) and [`Compressor`] (a
//!   client's own) turn one outgoing data message into a single compressed frame with RSV1
//!   set, which tungstenite sends as it is (`Message::Frame`; in the client role it masks it
//!   like any frame); messages under the threshold, or that would not shrink, go out plain
//!   (RFC 7692 allows that message by message).
//! - `spares` keeps a server's zlib states between messages, for any connection's next one,
//!   and [`release_unused_spares`] drops them after a tick in which no message asked for one.
//!   A client keeps its own, one of each per connection, for as long as it lives.
//! - [`frame_header::parse`]: a frame header as every layer under tungstenite follows it.
//! - [`forward_writes!`]: `AsyncWrite` for a layer that only acts on reads, as its users'
//!   layers under tungstenite are too.

mod compress;
pub mod frame_header;
mod inflate;
mod negotiate;
mod offer;
mod reader;
mod response_head;
mod spares;
#[cfg(test)]
mod tests;

pub use compress::{Compressor, compress};
pub use inflate::{Inflate, InflateError, Reading, inflate_error};
pub use negotiate::{EXTENSION, Negotiated, negotiate};
pub use offer::{Agreed, OFFER, ResponseError, accept_response};
pub use response_head::ResponseHead;
pub use spares::release_unused as release_unused_spares;

#[doc(hidden)]
pub use tokio::io::AsyncWrite as __AsyncWrite;

/// `AsyncWrite` for a layer that only watches or rewrites reads: every write goes straight to
/// its `field`. `forward_writes!(Layer<S>, inner)` for a layer generic over its socket,
/// `forward_writes!(Layer, io)` for one that is not. Inflate and ResponseHead use it, and so do
/// the server's layers and the client's HTTP/2 streams.
#[macro_export]
macro_rules! forward_writes {
    (@methods $field:ident) => {
        fn poll_write(
            self: ::std::pin::Pin<&mut Self>,
            cx: &mut ::std::task::Context<'_>,
            buf: &[u8],
        ) -> ::std::task::Poll<::std::io::Result<usize>> {
            $crate::__AsyncWrite::poll_write(::std::pin::Pin::new(&mut self.get_mut().$field), cx, buf)
        }

        fn poll_flush(
            self: ::std::pin::Pin<&mut Self>,
            cx: &mut ::std::task::Context<'_>,
        ) -> ::std::task::Poll<::std::io::Result<()>> {
            $crate::__AsyncWrite::poll_flush(::std::pin::Pin::new(&mut self.get_mut().$field), cx)
        }

        fn poll_shutdown(
            self: ::std::pin::Pin<&mut Self>,
            cx: &mut ::std::task::Context<'_>,
        ) -> ::std::task::Poll<::std::io::Result<()>> {
            $crate::__AsyncWrite::poll_shutdown(::std::pin::Pin::new(&mut self.get_mut().$field), cx)
        }

        fn poll_write_vectored(
            self: ::std::pin::Pin<&mut Self>,
            cx: &mut ::std::task::Context<'_>,
            bufs: &[::std::io::IoSlice<'_>],
        ) -> ::std::task::Poll<::std::io::Result<usize>> {
            $crate::__AsyncWrite::poll_write_vectored(::std::pin::Pin::new(&mut self.get_mut().$field), cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            $crate::__AsyncWrite::is_write_vectored(&self.$field)
        }
    };
    ($layer:ident<S>, $field:ident) => {
        impl<S: $crate::__AsyncWrite + Unpin> $crate::__AsyncWrite for $layer<S> {
            $crate::forward_writes!(@methods $field);
        }
    };
    ($layer:ty, $field:ident) => {
        impl $crate::__AsyncWrite for $layer {
            $crate::forward_writes!(@methods $field);
        }
    };
}

/// What RFC 7692 appends to a message's compressed payload before inflating it, and what a
/// sender strips from the end of its own (section 7.2.1).
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// An empty, non-final, uncompressed DEFLATE block: after the tail, a message that ended on
/// a block boundary (as RFC 7692 section 7.2.1 makes every sender's) reads it as nothing.
pub(crate) const EMPTY_BLOCK: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];

/// The most inflated bytes handed up in one frame, and so how far past the size limit a bomb
/// is inflated before the read fails.
pub const CHUNK: usize = 16 << 10;
