//! permessage-deflate (RFC 7692) beneath tungstenite, which has no extension support (0.30
//! fails every frame with RSV1 set with 1002).
//!
//! Four parts:
//!
//! - [`negotiate`] reads the client's `Sec-WebSocket-Extensions` offers and accepts the first
//!   one it can honour exactly, always without context takeover on both sides: no compression
//!   state outlives a message, so an idle connection costs what it costs without deflate.
//! - [`Inflate`] sits under tungstenite (and under the UTF-8 guard, which so sees inflated
//!   text). It follows the client's frames with tungstenite's own [`FrameHeader::parse`], and
//!   turns each compressed message (RSV1 on its first frame) into plain frames: unmasked,
//!   inflated with flate2 (raw DEFLATE, the `00 00 ff ff` tail appended at the message's end,
//!   RFC 7692 section 7.2.2), and handed up in frames of at most [`CHUNK`] bytes, masked with
//!   a zero mask, as tungstenite requires of a client. Everything else passes unchanged, so
//!   tungstenite still judges it: RSV1 on a control frame or a continuation keeps its bit and
//!   gets tungstenite's 1002. The inflated size counts against the message size limit: the
//!   read fails with [`InflateError::TooBig`] (1009) at most one chunk past it, so a bomb
//!   costs one chunk of memory, and bad DEFLATE data with [`InflateError::Corrupt`] (1007).
//! - [`compress`] turns one outgoing data message into a single compressed frame with RSV1
//!   set, which tungstenite sends as it is (`Message::Frame`); messages under the threshold,
//!   or that would not shrink, go out plain (RFC 7692 allows that message by message).
//! - `spares` keeps the zlib states between messages, for any connection's next one, and
//!   drops them after a second in which no message asked for one.

mod compress;
mod inflate;
mod negotiate;
mod reader;
mod spares;
#[cfg(test)]
mod tests;

pub use compress::compress;
pub use inflate::{Inflate, InflateError, inflate_error};
pub use negotiate::{Negotiated, negotiate};
pub use spares::release_unused as release_unused_spares;

/// What RFC 7692 appends to a message's compressed payload before inflating it, and what a
/// sender strips from the end of its own (section 7.2.1).
pub(super) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// An empty, non-final, uncompressed DEFLATE block: after the tail, a message that ended on
/// a block boundary (as RFC 7692 section 7.2.1 makes every sender's) reads it as nothing.
pub(super) const EMPTY_BLOCK: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];

/// The most inflated bytes handed up in one frame, and so how far past the size limit a bomb
/// is inflated before the read fails.
pub const CHUNK: usize = 16 << 10;
