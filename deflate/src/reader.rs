//! The sans-IO reader: follows the peer's frames, inflates compressed messages into plain
//! frames for tungstenite.

use flate2::{Decompress, FlushDecompress, Status};
use tokio::io::ReadBuf;
use tungstenite::protocol::Role;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Data, OpCode};

use super::spares::{give_back_inflater, take_inflater};
use super::{CHUNK, EMPTY_BLOCK, InflateError, Reading, TAIL};
use crate::frame_header;

/// Where the reader is in the peer's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
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
/// waits in them, so an idle connection holds only this struct (and a client, its inflater).
pub(super) struct Reader {
    max_size: u64,
    /// Whose frames are read: a server reads masked ones and hands up frames masked with
    /// zeros; a client reads unmasked ones and hands up unmasked frames.
    role: Role,
    /// Whether the peer may use context takeover: the inflater keeps its window between
    /// messages.
    context_takeover: bool,
    /// Bytes read from the socket, from `input_at` on not yet followed.
    input: Vec<u8>,
    input_at: usize,
    /// Bytes for tungstenite, from `output_at` on not yet handed up.
    output: Vec<u8>,
    output_at: usize,
    state: State,
    /// The compressed message under way, if `in_compressed_message`; otherwise a client's
    /// inflater kept for the next one (a server's goes back to the spares). Boxed: it is 200
    /// bytes (152 of them flate2's stream), which every idle connection kept inline, and the
    /// reader is 112 without it.
    message: Option<Box<Inflating>>,
    /// Whether a compressed message is under way (in `message`).
    in_compressed_message: bool,
    /// Whether a fragmented uncompressed message is under way (a compressed one may not
    /// start inside it; passed on, its RSV1 makes tungstenite fail it).
    in_plain_message: bool,
    /// The read fails with this once what came before is handed up.
    pub(super) failure: Option<InflateError>,
}

/// One compressed message being inflated (or, between a client's messages, its inflater).
pub(super) struct Inflating {
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
    pub(super) fn new(already_read: Vec<u8>, reading: Reading) -> Self {
        Reader {
            max_size: reading.max_message_size as u64,
            role: reading.role,
            context_takeover: reading.context_takeover,
            input: already_read,
            input_at: 0,
            output: Vec::new(),
            output_at: 0,
            state: State::Header,
            message: None,
            in_compressed_message: false,
            in_plain_message: false,
            failure: None,
        }
    }

    /// The compressed message under way.
    fn current(&mut self) -> Option<&mut Inflating> {
        if !self.in_compressed_message {
            return None;
        }
        self.message.as_deref_mut()
    }

    /// Whether the inflater is the connection's own, kept between messages: a client's (it
    /// has a few connections, and nothing would release spares), and anyone's whose peer
    /// keeps its window.
    fn keeps_inflater(&self) -> bool {
        self.role == Role::Client || self.context_takeover
    }

    /// Copies waiting output into `buf`; `false` when there was none.
    pub(super) fn hand_up(&mut self, buf: &mut ReadBuf<'_>) -> bool {
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
            if self.input_at == self.input.len() && !self.in_compressed_message {
                // Idle again: give the buffers back.
                self.input = Vec::new();
                self.output = Vec::new();
                self.input_at = 0;
            }
        }
        true
    }

    /// Adds bytes read from the socket.
    pub(super) fn take_in(&mut self, bytes: &[u8]) {
        if self.input_at == self.input.len() {
            self.input.clear();
        } else {
            self.input.drain(..self.input_at);
        }
        self.input_at = 0;
        self.input.extend_from_slice(bytes);
    }

    /// Follows the input, filling the output up to about a chunk; whether anything moved.
    pub(super) fn follow(&mut self) -> bool {
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
        let (header, length, header_len) = match frame_header::parse(&self.input[self.input_at..]) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return false,
            Err(_) => {
                self.state = State::Off;
                return true;
            }
        };
        // A client's frames are masked, a server's are not (RFC 6455 section 5.1).
        let masked_as_due = header.mask.is_some() == (self.role == Role::Server);
        let plain_bits = masked_as_due && !header.rsv2 && !header.rsv3;
        let mask = header.mask.unwrap_or_default();
        match header.opcode {
            OpCode::Data(opcode @ (Data::Text | Data::Binary))
                if header.rsv1
                    && plain_bits
                    && !self.in_compressed_message
                    && !self.in_plain_message =>
            {
                self.input_at += header_len;
                self.begin_message(opcode);
                self.compressed_frame(length, mask, header.is_final);
            }
            OpCode::Data(Data::Continue)
                if !header.rsv1 && plain_bits && self.in_compressed_message =>
            {
                self.input_at += header_len;
                self.compressed_frame(length, mask, header.is_final);
            }
            _ => {
                // A data frame inside a compressed message is a protocol error: tungstenite
                // must know a message is under way to see it.
                if self.in_compressed_message && matches!(header.opcode, OpCode::Data(_)) {
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

    /// Starts a compressed message: with the inflater kept from the last one, or a spare.
    fn begin_message(&mut self, opcode: Data) {
        let message = match self.message.take() {
            Some(mut kept) => {
                kept.opcode = opcode;
                kept.started = false;
                kept.inflated = 0;
                kept.compressed = 0;
                kept.fresh = true;
                kept
            }
            None => Box::new(Inflating {
                opcode,
                decompress: if self.keeps_inflater() {
                    // 15 bits read a stream made with any smaller window.
                    Decompress::new_with_window_bits(false, 15)
                } else {
                    take_inflater()
                },
                chunk: Vec::new(),
                started: false,
                inflated: 0,
                compressed: 0,
                fresh: true,
            }),
        };
        self.message = Some(message);
        self.in_compressed_message = true;
    }

    /// Ends the compressed message: its inflater goes back to the spares, or is kept (reset,
    /// unless the peer keeps its window).
    fn end_message(&mut self) {
        self.in_compressed_message = false;
        let Some(mut message) = self.message.take() else {
            return;
        };
        if self.keeps_inflater() {
            if !self.context_takeover {
                message.decompress.reset(false);
            }
            // The chunk is made again for the next message: an idle connection keeps none.
            message.chunk = Vec::new();
            self.message = Some(message);
        } else {
            give_back_inflater(message.decompress);
        }
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
    pub(super) fn is_passing(&self) -> bool {
        matches!(self.state, State::Header | State::Passed { .. })
            && !self.in_compressed_message
            && self.failure.is_none()
            && self.input_at == self.input.len()
            && self.output_at == self.output.len()
    }

    /// Follows `data`, just read into tungstenite's buffer, as long as it holds whole headers
    /// of frames passed on unchanged and their payload; how many of its bytes may stay there
    /// as they are. The rest (from a compressed message's header, or a header cut off) is
    /// for [`Reader::follow`]. Uncompressed messages so cost no copy.
    pub(super) fn pass_in_place(&mut self, data: &[u8]) -> usize {
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
                    let Ok(Some((header, length, size))) = frame_header::parse(&data[at..]) else {
                        return at;
                    };
                    let compressed = header.rsv1
                        && matches!(header.opcode, OpCode::Data(Data::Text | Data::Binary));
                    if compressed {
                        return at;
                    }
                    at += size;
                    self.pass(&header, length);
                }
                _ => return at,
            }
        }
        at
    }

    /// Starts following a frame of the compressed message.
    fn compressed_frame(&mut self, length: u64, mask: [u8; 4], is_final: bool) {
        let max_size = self.max_size;
        let Some(message) = self.current() else {
            return;
        };
        // The compressed size counts too, as tungstenite counts a plain message's frames:
        // a stream of empty DEFLATE blocks inflates to nothing but still costs.
        message.compressed += length;
        if message.compressed > max_size {
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
        let fresh = self.current().is_some_and(|message| message.fresh);
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
            // The last frame ends the message, and the inflater goes back (or is kept).
            self.emit(true);
            self.end_message();
            self.state = State::Header;
        }
        true
    }

    /// Inflates `input` into the message's chunk, handing the chunk on as a frame whenever it
    /// fills; how much input was used and output made, or `None` once the read has failed.
    fn inflate(&mut self, input: &[u8]) -> Option<(usize, usize)> {
        let max_size = self.max_size;
        let message = self.current()?;
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
        // What a call made came before any fault it then met in the data: past the limit,
        // the message is too big, however its bytes were split between calls.
        if message.inflated > max_size {
            self.fail(InflateError::TooBig);
            return None;
        }
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
        if message.chunk.len() == message.chunk.capacity() {
            self.emit(false);
        }
        Some((used, made))
    }

    /// Makes sure tungstenite has seen the message begin: an empty first frame if needed.
    fn start_message(&mut self) {
        if self.current().is_some_and(|message| !message.started) {
            self.emit(false);
        }
    }

    /// Hands the chunk on as a plain frame: masked with zeros on a server, as a client's frame
    /// must be; unmasked on a client, as a server's must be.
    fn emit(&mut self, is_final: bool) {
        let mask = (self.role == Role::Server).then_some([0; 4]);
        // The field, not `current`: the frame is written to `output` while it is borrowed.
        let message = self.message.as_deref_mut();
        let Some(message) = message.filter(|_| self.in_compressed_message) else {
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
            mask,
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
        self.in_compressed_message = false;
        self.state = State::Off;
        self.input = Vec::new();
        self.input_at = 0;
    }
}
