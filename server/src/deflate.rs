//! permessage-deflate (RFC 7692) beneath tungstenite, which has no extension support (0.30
//! fails every frame with RSV1 set with 1002).
//!
//! Three parts:
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

use std::cell::RefCell;
use std::io::{self, Cursor};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use hyper::header::{HeaderMap, HeaderValue, SEC_WEBSOCKET_EXTENSIONS};
use tokio::io::{AsyncRead, ReadBuf};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// The extension's name in the handshake.
pub const EXTENSION: &str = "permessage-deflate";

/// What RFC 7692 appends to a message's compressed payload before inflating it, and what a
/// sender strips from the end of its own (section 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// An empty, non-final, uncompressed DEFLATE block: after the tail, a message that ended on
/// a block boundary (as RFC 7692 section 7.2.1 makes every sender's) reads it as nothing.
const EMPTY_BLOCK: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];

/// The most inflated bytes handed up in one frame, and so how far past the size limit a bomb
/// is inflated before the read fails.
pub const CHUNK: usize = 16 << 10;

/// The zlib level for outgoing messages. 1 is zlib-rs's fastest (its own quick strategy): an
/// echo server pays the compression for every reply, and level 6 shrank a 16 KiB JSON-like
/// message only a little more for several times the CPU.
const LEVEL: u32 = 1;

/// What one connection agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The LZ77 window the server compresses with: `server_max_window_bits` if the client
    /// asked for one, else 15.
    pub server_window_bits: u8,
}

/// Accepts the first permessage-deflate offer in `headers` that the server can honour exactly
/// (RFC 7692 sections 5 and 7.1), and returns it with the response header's value. `None`
/// when there is no such offer: the connection then goes on without compression.
///
/// The response always says `server_no_context_takeover` and `client_no_context_takeover`
/// (section 7.1.1; Node's `ws` answers both unasked too, and Autobahn, Chromium and Python's
/// `websockets` accept it), so that neither side keeps a window between messages: the
/// server's idle memory does not depend on the client.
pub fn negotiate(headers: &HeaderMap) -> Option<(Negotiated, HeaderValue)> {
    let offers = headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        // A header that is not ASCII is no offer we can read.
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| split_unquoted(value, ','));
    for offer in offers {
        let mut parts = split_unquoted(offer, ';').into_iter();
        if parts.next().map(str::trim) != Some(EXTENSION) {
            continue;
        }
        if let Some(accepted) = accept_offer(parts) {
            return Some(accepted);
        }
    }
    None
}

/// One offer's parameters, checked: any unknown, repeated or invalid one declines the offer.
fn accept_offer<'a>(params: impl Iterator<Item = &'a str>) -> Option<(Negotiated, HeaderValue)> {
    let mut seen = [false; 4];
    let mut server_window_bits = None;
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(unquote(value.trim())?)),
            None => (param.trim(), None),
        };
        let index = match name {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return None,
        };
        if std::mem::replace(&mut seen[index], true) {
            return None;
        }
        match (index, value) {
            // Flags take no value.
            (0 | 1, None) => {}
            // The client asks us to compress with at most this window; zlib cannot deflate
            // with 8 bits, so an offer of 8 is declined.
            (2, Some(value)) => match window_bits(&value)? {
                8 => return None,
                bits => server_window_bits = Some(bits),
            },
            // The client may limit its own window; we inflate with 15 bits, which reads
            // anything, so we need not answer it.
            (3, None) => {}
            (3, Some(value)) => {
                window_bits(&value)?;
            }
            _ => return None,
        }
    }
    let mut response =
        format!("{EXTENSION}; server_no_context_takeover; client_no_context_takeover");
    if let Some(bits) = server_window_bits {
        response.push_str(&format!("; server_max_window_bits={bits}"));
    }
    let negotiated = Negotiated {
        server_window_bits: server_window_bits.unwrap_or(15),
    };
    Some((negotiated, HeaderValue::from_str(&response).ok()?))
}

/// A window size as RFC 7692 spells it: 8 to 15, without leading zeros or signs.
fn window_bits(value: &str) -> Option<u8> {
    let bits: u8 = value.parse().ok()?;
    ((8..=15).contains(&bits) && value == bits.to_string()).then_some(bits)
}

/// A parameter value: a token, or a quoted string whose content is one (section 7.1).
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.is_empty()).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut unquoted = String::new();
    let mut escaped = false;
    for c in inner.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return None,
            c => {
                unquoted.push(c);
                escaped = false;
            }
        }
    }
    (!escaped && !unquoted.is_empty()).then_some(unquoted)
}

/// Splits at `separator` outside quoted strings.
fn split_unquoted(value: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (index, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&value[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

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

/// Where the reader is in the client's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At a frame header (its bytes wait in `input` until it is whole).
    Header,
    /// In the payload of a frame passed on unchanged.
    Passed { remaining: u64 },
    /// In the payload of a frame of a compressed message.
    Compressed {
        remaining: u64,
        mask: [u8; 4],
        position: usize,
        is_final: bool,
    },
    /// At the end of a compressed message: `fed` bytes of [`TAIL`] are inflated.
    Tail { fed: usize },
    /// A header we cannot follow: everything passes on, and tungstenite fails it.
    Off,
}

/// The layer's state while the extension is on. Its buffers are released whenever nothing
/// waits in them, so an idle connection holds only this struct.
struct Reader {
    max_size: u64,
    /// Bytes read from the socket, from `input_at` on not yet followed.
    input: Vec<u8>,
    input_at: usize,
    /// Bytes for tungstenite, from `output_at` on not yet handed up.
    output: Vec<u8>,
    output_at: usize,
    state: State,
    /// The compressed message under way, if any.
    message: Option<Inflating>,
    /// Whether a fragmented uncompressed message is under way (a compressed one may not
    /// start inside it; passed on, its RSV1 makes tungstenite fail it).
    in_plain_message: bool,
    /// The read fails with this once what came before is handed up.
    failure: Option<InflateError>,
}

/// One compressed message being inflated.
struct Inflating {
    opcode: Data,
    decompress: Decompress,
    /// Inflated bytes not yet handed up as a frame; at most [`CHUNK`].
    chunk: Vec<u8>,
    /// Whether a frame of this message was handed up (later ones are continuations).
    started: bool,
    inflated: u64,
    compressed: u64,
    /// Whether the inflater is at the start of a DEFLATE stream: nothing of the message fed
    /// yet, or its last block had BFINAL set. The message may end there without the tail.
    fresh: bool,
}

impl Reader {
    fn new(already_read: Vec<u8>, max_size: u64) -> Self {
        Reader {
            max_size,
            input: already_read,
            input_at: 0,
            output: Vec::new(),
            output_at: 0,
            state: State::Header,
            message: None,
            in_plain_message: false,
            failure: None,
        }
    }

    /// Copies waiting output into `buf`; `false` when there was none.
    fn hand_up(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let waiting = &self.output[self.output_at..];
        if waiting.is_empty() || buf.remaining() == 0 {
            return false;
        }
        let n = waiting.len().min(buf.remaining());
        buf.put_slice(&waiting[..n]);
        self.output_at += n;
        if self.output_at == self.output.len() {
            self.output.clear();
            self.output_at = 0;
            if self.input_at == self.input.len() && self.message.is_none() {
                // Idle again: give the buffers back.
                self.input = Vec::new();
                self.output = Vec::new();
                self.input_at = 0;
            }
        }
        true
    }

    /// Adds bytes read from the socket.
    fn take_in(&mut self, bytes: &[u8]) {
        if self.input_at == self.input.len() {
            self.input.clear();
        } else {
            self.input.drain(..self.input_at);
        }
        self.input_at = 0;
        self.input.extend_from_slice(bytes);
    }

    /// Follows the input, filling the output up to about a chunk; whether anything moved.
    fn follow(&mut self) -> bool {
        let (input_before, output_before) = (self.input_at, self.output.len());
        let mut moved = false;
        while self.output.len() < CHUNK && self.failure.is_none() {
            let step = match self.state {
                State::Off => {
                    self.output.extend_from_slice(&self.input[self.input_at..]);
                    self.input_at = self.input.len();
                    false
                }
                State::Header => self.header(),
                State::Passed { remaining } => {
                    let data = &self.input[self.input_at..];
                    let take = remaining.min(data.len() as u64) as usize;
                    self.output.extend_from_slice(&data[..take]);
                    self.input_at += take;
                    let remaining = remaining - take as u64;
                    self.state = if remaining == 0 {
                        State::Header
                    } else {
                        State::Passed { remaining }
                    };
                    take > 0
                }
                State::Compressed { .. } => self.payload(),
                State::Tail { .. } => self.tail(),
            };
            if !step {
                break;
            }
            moved = true;
        }
        moved
            || self.input_at != input_before
            || self.output.len() != output_before
            || self.failure.is_some()
    }

    /// Reads a frame header if it is whole; whether it was.
    fn header(&mut self) -> bool {
        let mut cursor = Cursor::new(&self.input[self.input_at..]);
        let (header, length) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return false,
            Err(_) => {
                self.state = State::Off;
                return true;
            }
        };
        let header_len = cursor.position() as usize;
        let plain_bits = header.mask.is_some() && !header.rsv2 && !header.rsv3;
        let mask = header.mask.unwrap_or_default();
        match header.opcode {
            OpCode::Data(opcode @ (Data::Text | Data::Binary))
                if header.rsv1
                    && plain_bits
                    && self.message.is_none()
                    && !self.in_plain_message =>
            {
                self.input_at += header_len;
                self.message = Some(Inflating {
                    opcode,
                    decompress: take_inflater(),
                    chunk: Vec::new(),
                    started: false,
                    inflated: 0,
                    compressed: 0,
                    fresh: true,
                });
                self.compressed_frame(length, mask, header.is_final);
            }
            OpCode::Data(Data::Continue)
                if !header.rsv1 && plain_bits && self.message.is_some() =>
            {
                self.input_at += header_len;
                self.compressed_frame(length, mask, header.is_final);
            }
            _ => {
                // A data frame inside a compressed message is a protocol error: tungstenite
                // must know a message is under way to see it.
                if self.message.is_some() && matches!(header.opcode, OpCode::Data(_)) {
                    self.start_message();
                }
                let bytes = &self.input[self.input_at..self.input_at + header_len];
                self.output.extend_from_slice(bytes);
                self.input_at += header_len;
                self.pass(&header, length);
            }
        }
        true
    }

    /// Follows a frame passed on unchanged.
    fn pass(&mut self, header: &FrameHeader, length: u64) {
        match header.opcode {
            OpCode::Data(Data::Continue) if header.is_final => self.in_plain_message = false,
            OpCode::Data(Data::Text | Data::Binary) => self.in_plain_message = !header.is_final,
            _ => {}
        }
        self.state = if length == 0 {
            State::Header
        } else {
            State::Passed { remaining: length }
        };
    }

    /// Whether the reader holds nothing and is between or inside frames passed on unchanged:
    /// then a read can go straight into tungstenite's buffer ([`Reader::pass_in_place`]).
    fn is_passing(&self) -> bool {
        matches!(self.state, State::Header | State::Passed { .. })
            && self.message.is_none()
            && self.failure.is_none()
            && self.input_at == self.input.len()
            && self.output_at == self.output.len()
    }

    /// Follows `data`, just read into tungstenite's buffer, as long as it holds whole headers
    /// of frames passed on unchanged and their payload; how many of its bytes may stay there
    /// as they are. The rest (from a compressed message's header, or a header cut off) is
    /// for [`Reader::follow`]. Uncompressed messages so cost no copy.
    fn pass_in_place(&mut self, data: &[u8]) -> usize {
        let mut at = 0;
        while at < data.len() {
            match self.state {
                State::Passed { remaining } => {
                    let take = remaining.min((data.len() - at) as u64);
                    at += take as usize;
                    self.state = match remaining - take {
                        0 => State::Header,
                        remaining => State::Passed { remaining },
                    };
                }
                State::Header => {
                    let mut cursor = Cursor::new(&data[at..]);
                    let Ok(Some((header, length))) = FrameHeader::parse(&mut cursor) else {
                        return at;
                    };
                    let compressed = header.rsv1
                        && matches!(header.opcode, OpCode::Data(Data::Text | Data::Binary));
                    if compressed {
                        return at;
                    }
                    at += cursor.position() as usize;
                    self.pass(&header, length);
                }
                _ => return at,
            }
        }
        at
    }

    /// Starts following a frame of the compressed message.
    fn compressed_frame(&mut self, length: u64, mask: [u8; 4], is_final: bool) {
        let Some(message) = self.message.as_mut() else {
            return;
        };
        // The compressed size counts too, as tungstenite counts a plain message's frames:
        // a stream of empty DEFLATE blocks inflates to nothing but still costs.
        message.compressed += length;
        if message.compressed > self.max_size {
            return self.fail(InflateError::TooBig);
        }
        self.state = State::Compressed {
            remaining: length,
            mask,
            position: 0,
            is_final,
        };
        if length == 0 {
            self.end_frame(is_final);
        }
    }

    fn end_frame(&mut self, is_final: bool) {
        self.state = if is_final {
            State::Tail { fed: 0 }
        } else {
            State::Header
        };
    }

    /// Unmasks and inflates what is here of a compressed frame's payload.
    fn payload(&mut self) -> bool {
        let State::Compressed {
            remaining,
            mask,
            position,
            is_final,
        } = self.state
        else {
            return false;
        };
        let data = &self.input[self.input_at..];
        let mut plain = [0u8; 4 << 10];
        let take = (remaining.min(data.len() as u64) as usize).min(plain.len());
        if take == 0 {
            return false;
        }
        for (offset, (plain, byte)) in plain.iter_mut().zip(&data[..take]).enumerate() {
            *plain = byte ^ mask[(position + offset) % 4];
        }
        let Some((used, made)) = self.inflate(&plain[..take]) else {
            return true;
        };
        self.input_at += used;
        let remaining = remaining - used as u64;
        self.state = State::Compressed {
            remaining,
            mask,
            position: position + used,
            is_final,
        };
        if remaining == 0 {
            self.end_frame(is_final);
        }
        // The chunk always has room (a full one is handed on at once), so zlib moves; if it
        // ever did not, saying so stops the loop rather than spinning.
        used > 0 || made > 0
    }

    /// Inflates the tail, then whatever the inflater still holds, then ends the message.
    fn tail(&mut self) -> bool {
        let State::Tail { fed } = self.state else {
            return false;
        };
        let fresh = self.message.as_ref().is_some_and(|message| message.fresh);
        // A message that ends a DEFLATE stream (or is empty) needs no tail.
        if fed < TAIL.len() && !(fed == 0 && fresh) {
            let Some((used, made)) = self.inflate(&TAIL[fed..]) else {
                return true;
            };
            self.state = State::Tail { fed: fed + used };
            return used > 0 || made > 0;
        }
        let Some((_, made)) = self.inflate(&[]) else {
            return true;
        };
        if made == 0 {
            // Everything is out. A message that stopped inside a block (cut short, or a
            // stored block missing bytes) used the tail as data: an empty stored block after
            // it then inflates to something, or is no block at all.
            if !fresh && self.inflate(&EMPTY_BLOCK) != Some((EMPTY_BLOCK.len(), 0)) {
                if self.failure.is_none() {
                    self.fail(InflateError::Corrupt);
                }
                return true;
            }
            // The last frame ends the message, and the inflater goes back.
            self.emit(true);
            if let Some(message) = self.message.take() {
                give_back_inflater(message.decompress);
            }
            self.state = State::Header;
        }
        true
    }

    /// Inflates `input` into the message's chunk, handing the chunk on as a frame whenever it
    /// fills; how much input was used and output made, or `None` once the read has failed.
    fn inflate(&mut self, input: &[u8]) -> Option<(usize, usize)> {
        let max_size = self.max_size;
        let message = self.message.as_mut()?;
        if message.chunk.capacity() == 0 {
            message.chunk.reserve_exact(CHUNK);
        }
        let (in_before, out_before) = (message.decompress.total_in(), message.chunk.len());
        let status =
            message
                .decompress
                .decompress_vec(input, &mut message.chunk, FlushDecompress::Sync);
        let used = (message.decompress.total_in() - in_before) as usize;
        let made = message.chunk.len() - out_before;
        message.inflated += made as u64;
        match status {
            Err(_) => {
                self.fail(InflateError::Corrupt);
                return None;
            }
            // A block with BFINAL set ends the DEFLATE stream; anything after it starts a
            // new one.
            Ok(Status::StreamEnd) => {
                message.decompress.reset(false);
                message.fresh = true;
            }
            Ok(Status::Ok | Status::BufError) => message.fresh &= used == 0,
        }
        if message.inflated > max_size {
            self.fail(InflateError::TooBig);
            return None;
        }
        if message.chunk.len() == message.chunk.capacity() {
            self.emit(false);
        }
        Some((used, made))
    }

    /// Makes sure tungstenite has seen the message begin: an empty first frame if needed.
    fn start_message(&mut self) {
        if self
            .message
            .as_ref()
            .is_some_and(|message| !message.started)
        {
            self.emit(false);
        }
    }

    /// Hands the chunk on as a plain frame (masked with zeros, as a client's frame must be).
    fn emit(&mut self, is_final: bool) {
        let Some(message) = self.message.as_mut() else {
            return;
        };
        let opcode = if message.started {
            Data::Continue
        } else {
            message.opcode
        };
        let header = FrameHeader {
            is_final,
            opcode: OpCode::Data(opcode),
            mask: Some([0; 4]),
            ..FrameHeader::default()
        };
        let length = message.chunk.len() as u64;
        // Writing to a Vec cannot fail.
        let _ = header.format(length, &mut self.output);
        self.output.extend_from_slice(&message.chunk);
        message.chunk.clear();
        message.started = true;
    }

    fn fail(&mut self, error: InflateError) {
        self.failure = Some(error);
        self.message = None;
        self.state = State::Off;
        self.input = Vec::new();
        self.input_at = 0;
    }
}

thread_local! {
    /// An inflater between messages, one per worker thread: without context takeover a reset
    /// one is as good as a new one, and making one (zlib's state and its 32 KiB window) cost
    /// more than inflating a small message. A message under way while another starts on the
    /// same thread gets a new one.
    static INFLATER: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// A reset inflater: the thread's spare, or a new one.
fn take_inflater() -> Decompress {
    let spare = INFLATER.with(|cell| cell.try_borrow_mut().ok()?.take());
    // 15 bits read a stream made with any smaller window.
    spare.unwrap_or_else(|| Decompress::new_with_window_bits(false, 15))
}

/// Keeps `decompress` as the thread's spare, reset, if there is none.
fn give_back_inflater(mut decompress: Decompress) {
    decompress.reset(false);
    INFLATER.with(|cell| {
        if let Ok(mut spare) = cell.try_borrow_mut() {
            spare.get_or_insert(decompress);
        }
    });
}

thread_local! {
    /// One compressor per worker thread, reset for every message: without context takeover
    /// no state outlives a message, so connections need none of their own (zlib's deflate
    /// state is a few hundred KiB at 15 bits).
    static COMPRESSOR: RefCell<Option<(u8, Compress)>> = const { RefCell::new(None) };
}

/// `message` as it goes out on a connection that negotiated `deflate`: a data message of at
/// least `threshold` bytes becomes one compressed frame with RSV1 set, if that is smaller
/// (with a threshold of 0, every data message, smaller or not).
pub fn compress(message: Message, deflate: Option<Negotiated>, threshold: usize) -> Message {
    let Some(deflate) = deflate else {
        return message;
    };
    let (payload, opcode) = match &message {
        Message::Text(text) => (text.as_str().as_bytes(), Data::Text),
        Message::Binary(data) => (&data[..], Data::Binary),
        _ => return message,
    };
    if payload.len() < threshold {
        return message;
    }
    let Some(compressed) = deflate_payload(payload, deflate.server_window_bits) else {
        return message;
    };
    // Compressing may not pay (data already compressed): then the plain message is smaller.
    // A threshold of 0 asks for every message compressed all the same (kosoku's compression
    // cases fail on an uncompressed echo).
    if threshold > 0 && compressed.len() >= payload.len() {
        return message;
    }
    let mut frame = Frame::message(compressed, OpCode::Data(opcode), true);
    frame.header_mut().rsv1 = true;
    Message::Frame(frame)
}

/// Raw DEFLATE of `payload` ending in a sync flush, without its `00 00 ff ff` tail (RFC 7692
/// section 7.2.1); `None` if zlib fails.
fn deflate_payload(payload: &[u8], window_bits: u8) -> Option<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut cell = cell.try_borrow_mut().ok()?;
        if !matches!(&*cell, Some((bits, _)) if *bits == window_bits) {
            // `negotiate` never agrees on less than 9 bits; the clamp keeps flate2 from
            // panicking all the same.
            let bits = window_bits.clamp(9, 15);
            let level = Compression::new(LEVEL);
            *cell = Some((
                window_bits,
                Compress::new_with_window_bits(level, false, bits),
            ));
        }
        let (_, compressor) = cell.as_mut()?;
        compressor.reset();
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        let start = compressor.total_in();
        loop {
            let used = (compressor.total_in() - start) as usize;
            compressor
                .compress_vec(&payload[used..], &mut out, FlushCompress::Sync)
                .ok()?;
            let used = (compressor.total_in() - start) as usize;
            // A sync flush is complete once zlib returns with room to spare.
            if used == payload.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        let end = out.len().checked_sub(TAIL.len())?;
        (out[end..] == TAIL).then(|| {
            out.truncate(end);
            out
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};

    fn offers(values: &[&str]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                SEC_WEBSOCKET_EXTENSIONS,
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let (negotiated, answer) = negotiate(&headers)?;
        let answer = answer.to_str().unwrap().to_owned();
        let bits = negotiated.server_window_bits;
        if answer.contains("server_max_window_bits") {
            assert!(answer.ends_with(&format!("server_max_window_bits={bits}")));
        } else {
            assert_eq!(bits, 15);
        }
        Some(answer)
    }

    const PLAIN: &str =
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

    #[test]
    fn negotiation_accepts_the_first_offer_it_can_honour_exactly() {
        let with_bits = |bits: u8| format!("{PLAIN}; server_max_window_bits={bits}");
        let table: &[(&[&str], Option<String>)] = &[
            // What Chromium and Firefox send.
            (
                &["permessage-deflate; client_max_window_bits"],
                Some(PLAIN.into()),
            ),
            (&["permessage-deflate"], Some(PLAIN.into())),
            (&["x-webkit-deflate-frame"], None),
            (&[], None),
            // Every parameter, quoted values, odd spacing.
            (
                &[
                    "permessage-deflate;client_no_context_takeover; server_no_context_takeover ;\
                   server_max_window_bits=\"10\"; client_max_window_bits=9",
                ],
                Some(with_bits(10)),
            ),
            (
                &["permessage-deflate; server_max_window_bits=9"],
                Some(with_bits(9)),
            ),
            (
                &["permessage-deflate; server_max_window_bits=15"],
                Some(with_bits(15)),
            ),
            // Declined: zlib cannot deflate with 8 bits; out of range; not the RFC's spelling;
            // missing or unexpected values; unknown or repeated parameters.
            (&["permessage-deflate; server_max_window_bits=8"], None),
            (&["permessage-deflate; server_max_window_bits=16"], None),
            (&["permessage-deflate; server_max_window_bits=7"], None),
            (&["permessage-deflate; server_max_window_bits=010"], None),
            (&["permessage-deflate; server_max_window_bits=+9"], None),
            (&["permessage-deflate; server_max_window_bits"], None),
            (&["permessage-deflate; server_max_window_bits=\"\""], None),
            (&["permessage-deflate; server_max_window_bits=\"9"], None),
            (&["permessage-deflate; client_max_window_bits=16"], None),
            (
                &["permessage-deflate; client_max_window_bits=8"],
                Some(PLAIN.into()),
            ),
            (&["permessage-deflate; server_no_context_takeover=1"], None),
            (
                &["permessage-deflate; client_no_context_takeover=\"x\""],
                None,
            ),
            (&["permessage-deflate; mystery"], None),
            (
                &["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
                None,
            ),
            (&["permessage-deflate; ;"], None),
            // The first acceptable offer wins, across offers and headers.
            (
                &[
                    "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=12",
                ],
                Some(with_bits(12)),
            ),
            (
                &[
                    "foo; a=\"x,y\", permessage-deflate; bogus",
                    "permessage-deflate",
                ],
                Some(PLAIN.into()),
            ),
            (
                &[
                    "permessage-deflate; server_max_window_bits=11",
                    "permessage-deflate",
                ],
                Some(with_bits(11)),
            ),
        ];
        for (values, expected) in table {
            assert_eq!(&offers(values), expected, "{values:?}");
        }
    }

    /// A tiny deterministic generator (SplitMix64), so that failures replay.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Raw DEFLATE with a sync flush and the tail stripped, as a client sends it.
    fn client_deflate(data: &[u8], bits: u8) -> Vec<u8> {
        let mut compress = Compress::new_with_window_bits(Compression::new(6), false, bits);
        let mut out = Vec::with_capacity(data.len() + 64);
        loop {
            let used = compress.total_in() as usize;
            compress
                .compress_vec(&data[used..], &mut out, FlushCompress::Sync)
                .unwrap();
            if compress.total_in() as usize == data.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity());
        }
        assert!(out.ends_with(&TAIL));
        out.truncate(out.len() - TAIL.len());
        out
    }

    fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let header = FrameHeader {
            is_final: first & 0x80 != 0,
            rsv1: first & 0x40 != 0,
            opcode: OpCode::from(first & 0x0f),
            mask: Some(mask),
            ..FrameHeader::default()
        };
        let mut frame = Vec::new();
        header.format(payload.len() as u64, &mut frame).unwrap();
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    /// A socket that hands out its bytes in random pieces.
    struct Pieces {
        data: Vec<u8>,
        at: usize,
        rng: Rng,
    }

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = &mut *self;
            let left = this.data.len() - this.at;
            let n = (1 + this.rng.below(3000)).min(left).min(buf.remaining());
            buf.put_slice(&this.data[this.at..this.at + n]);
            this.at += n;
            Poll::Ready(Ok(()))
        }
    }

    impl tokio::io::AsyncWrite for Pieces {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Runs `wire` through the layer in random read sizes; what it hands up, or the error.
    async fn through_layer(
        wire: Vec<u8>,
        rng: &mut Rng,
        max_size: usize,
    ) -> (Vec<u8>, Option<io::Error>) {
        let split = wire.len().min(rng.below(40));
        let already_read = wire[..split].to_vec();
        let pieces = Pieces {
            data: wire[split..].to_vec(),
            at: 0,
            rng: Rng(rng.next()),
        };
        let mut layer = Inflate::new(pieces, true, already_read, max_size);
        let mut out = Vec::new();
        loop {
            let mut buf = vec![0; 1 + rng.below(1200)];
            match layer.read(&mut buf).await {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(error) => return (out, Some(error)),
            }
        }
    }

    /// A random message: text (sometimes repetitive, sometimes not) or binary.
    fn random_message(rng: &mut Rng) -> Message {
        let len = match rng.below(4) {
            0 => rng.below(20),
            1 => rng.below(2000),
            2 => rng.below(40_000),
            _ => rng.below(200_000),
        };
        if rng.below(2) == 0 {
            let words = ["κόσμε ", "{\"id\":1,\"name\":\"echo\"} ", "🦀", "a", "\n"];
            let mut text = String::new();
            while text.len() < len {
                if rng.below(3) == 0 {
                    text.push(char::from_u32(0x20 + rng.below(0x2000) as u32).unwrap_or('x'));
                } else {
                    text.push_str(words[rng.below(words.len())]);
                }
            }
            Message::text(text)
        } else {
            let data: Vec<u8> = (0..len)
                .map(|i| {
                    if rng.below(4) == 0 {
                        rng.next() as u8
                    } else {
                        (i % 7) as u8
                    }
                })
                .collect();
            Message::binary(data)
        }
    }

    /// The client's frames for `message`: compressed or not, cut into random fragments, with
    /// pings between them.
    fn encode(message: &Message, rng: &mut Rng, wire: &mut Vec<u8>) {
        let (opcode, data) = match message {
            Message::Text(text) => (0x1, text.as_str().as_bytes().to_vec()),
            Message::Binary(data) => (0x2, data.to_vec()),
            _ => unreachable!(),
        };
        let compressed = rng.below(4) != 0;
        let payload = if compressed {
            client_deflate(&data, 9 + rng.below(7) as u8)
        } else {
            data
        };
        let pieces = 1 + rng.below(5);
        let mut cuts: Vec<usize> = (1..pieces).map(|_| rng.below(payload.len() + 1)).collect();
        cuts.sort();
        cuts.insert(0, 0);
        cuts.push(payload.len());
        for (index, range) in cuts.windows(2).enumerate() {
            let first = index == 0;
            let last = index + 2 == cuts.len();
            let mut byte = if first { opcode } else { 0x0 };
            if last {
                byte |= 0x80;
            }
            if first && compressed {
                byte |= 0x40;
            }
            let mask = (rng.next() as u32).to_be_bytes();
            wire.extend(client_frame(byte, &payload[range[0]..range[1]], mask));
            if !last && rng.below(4) == 0 {
                wire.extend(client_frame(0x89, b"ping", mask));
            }
        }
    }

    /// Bytes to read, and a sink for what tungstenite writes (its pongs): a `Cursor` alone
    /// would write them over the bytes still to be read.
    struct Replay(Cursor<Vec<u8>>);

    impl io::Read for Replay {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            io::Read::read(&mut self.0, buf)
        }
    }

    impl io::Write for Replay {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn replay(bytes: Vec<u8>, config: WebSocketConfig) -> WebSocket<Replay> {
        WebSocket::from_raw_socket(Replay(Cursor::new(bytes)), Role::Server, Some(config))
    }

    /// What plain tungstenite reads from `bytes` (a server's view), up to the Close.
    fn tungstenite_reads(bytes: Vec<u8>) -> Vec<Message> {
        let config = WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let mut socket = replay(bytes, config);
        let mut messages = Vec::new();
        loop {
            match socket.read() {
                Ok(Message::Close(_)) => return messages,
                Ok(Message::Ping(_)) => {}
                Ok(message) => messages.push(message),
                Err(error) => panic!("tungstenite: {error} after {} messages", messages.len()),
            }
        }
    }

    #[tokio::test]
    async fn the_layer_hands_tungstenite_the_messages_the_client_compressed() {
        for seed in 0..120 {
            let mut rng = Rng(seed);
            let messages: Vec<Message> = (0..1 + rng.below(8))
                .map(|_| random_message(&mut rng))
                .collect();
            let mut wire = Vec::new();
            for message in &messages {
                encode(message, &mut rng, &mut wire);
            }
            wire.extend(client_frame(0x88, &[0x03, 0xe8], [9, 8, 7, 6]));
            let (plain, error) = through_layer(wire, &mut rng, usize::MAX).await;
            assert!(error.is_none(), "seed {seed}: {error:?}");
            // Inflated frames hold a chunk at most (the client's own frames pass as they
            // are), and none has RSV1.
            let mut rest = &plain[..];
            while !rest.is_empty() {
                let mut cursor = Cursor::new(rest);
                let (header, length) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
                assert!(!header.rsv1, "seed {seed}");
                if header.mask == Some([0; 4]) {
                    assert!(length as usize <= CHUNK, "seed {seed}: {length}");
                }
                rest = &rest[cursor.position() as usize + length as usize..];
            }
            assert_eq!(tungstenite_reads(plain), messages, "seed {seed}");
        }
    }

    #[tokio::test]
    async fn rsv1_where_it_does_not_belong_reaches_tungstenite_unchanged() {
        let mut rng = Rng(7);
        let compressed = client_deflate(b"hello hello hello", 15);
        let cases = [
            // RSV1 on a continuation, on a ping, on a continuation of a compressed message.
            [
                client_frame(0x01, b"a", [1; 4]),
                client_frame(0xc0, b"b", [1; 4]),
            ]
            .concat(),
            client_frame(0xc9, b"", [1; 4]),
            [
                client_frame(0x41, &compressed, [2; 4]),
                client_frame(0xc0, b"", [2; 4]),
            ]
            .concat(),
            // A new message inside a compressed one.
            [
                client_frame(0x41, &compressed, [2; 4]),
                client_frame(0x81, b"x", [2; 4]),
            ]
            .concat(),
        ];
        for wire in cases {
            let (plain, error) = through_layer(wire.clone(), &mut rng, 1 << 20).await;
            assert!(error.is_none());
            let mut socket = replay(plain, WebSocketConfig::default());
            let failed = loop {
                match socket.read() {
                    Ok(_) => continue,
                    Err(error) => break error,
                }
            };
            assert!(
                matches!(failed, tokio_tungstenite::tungstenite::Error::Protocol(_)),
                "{wire:x?}: {failed}"
            );
        }
    }

    #[tokio::test]
    async fn a_bomb_fails_one_chunk_past_the_limit_and_bad_data_as_corrupt() {
        let mut rng = Rng(3);
        let limit = 1 << 20;
        let zeros = vec![0u8; 64 << 20];
        let bomb = client_deflate(&zeros, 15);
        assert!(bomb.len() < 100 << 10, "{}", bomb.len());
        let wire = client_frame(0xc2, &bomb, [5; 4]);
        let (plain, error) = through_layer(wire, &mut rng, limit).await;
        let error = error.expect("the read fails");
        assert_eq!(inflate_error(&error), Some(&InflateError::TooBig));
        assert!(
            plain.len() <= limit + CHUNK,
            "{} bytes handed up",
            plain.len()
        );

        // Spread over many small continuations.
        let mut wire = Vec::new();
        for (index, piece) in bomb.chunks(16).enumerate() {
            let first = if index == 0 { 0x42 } else { 0x00 };
            wire.extend(client_frame(first, piece, [1, 2, 3, 4]));
        }
        let (_, error) = through_layer(wire, &mut rng, limit).await;
        assert_eq!(inflate_error(&error.unwrap()), Some(&InflateError::TooBig));

        let garbage = client_frame(0xc1, &[0xff; 40], [0; 4]);
        let (_, error) = through_layer(garbage, &mut rng, limit).await;
        assert_eq!(inflate_error(&error.unwrap()), Some(&InflateError::Corrupt));
    }

    #[test]
    fn compress_round_trips_through_flate2_and_leaves_small_messages_plain() {
        let deflate = Some(Negotiated {
            server_window_bits: 10,
        });
        let text = "{\"id\": 17, \"name\": \"echo\", \"tags\": [\"a\", \"b\"]} ".repeat(300);
        let Message::Frame(frame) = compress(Message::text(text.clone()), deflate, 1024) else {
            panic!("not compressed");
        };
        assert!(frame.header().rsv1 && frame.header().is_final);
        assert!(
            frame.payload().len() < text.len() / 5,
            "{}",
            frame.payload().len()
        );
        let mut inflater = Decompress::new_with_window_bits(false, 10);
        let mut input = frame.payload().to_vec();
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(text.len() + 16);
        inflater
            .decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(out, text.as_bytes());

        let short = Message::text("short");
        assert_eq!(compress(short.clone(), deflate, 1024), short);
        assert_eq!(
            compress(Message::text(text.clone()), None, 0),
            Message::text(text)
        );
        // Random bytes do not shrink: plain, unless every message is to be compressed.
        let mut rng = Rng(5);
        let noise: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
        let binary = Message::binary(noise);
        assert_eq!(compress(binary.clone(), deflate, 1024), binary);
        assert!(matches!(compress(binary, deflate, 0), Message::Frame(_)));
    }
}
