//! Failing fast on invalid UTF-8 inside a frame.
//!
//! tungstenite checks a text message's UTF-8 once a frame has fully arrived. RFC 6455 asks an
//! endpoint to fail the connection as soon as it sees an invalid sequence (Autobahn 6.4.3 and
//! 6.4.4 send one in the first part of a long frame and wait). [`Utf8Guard`] sits between the
//! socket and tungstenite and watches the bytes go by: it parses each frame header with
//! tungstenite's own [`FrameHeader::parse`], unmasks text payload as it streams, and validates
//! it incrementally. The bytes themselves pass through unchanged; tungstenite still does all the
//! framing. On an invalid sequence the guard passes on what came before it in that read (a
//! message or a ping in the same read as the bad frame is still answered) and fails the next
//! read with [`InvalidUtf8`], which the echo loop answers with Close 1007.
//!
//! The first fault in the stream decides the close code: a frame header that tungstenite will
//! reject (reserved bits, an unknown opcode, a new message inside a fragmented one, a frame or
//! message over the size limit, no mask) ends the guard's watch before any of its payload is
//! checked, so tungstenite's 1002 or 1009 is what the client gets.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use ws_deflate::frame_header;

/// The error a guarded read fails with on invalid UTF-8.
#[derive(Debug, thiserror::Error)]
#[error("invalid UTF-8 in a text frame")]
pub struct InvalidUtf8;

/// Whether a tungstenite error came from the guard.
pub fn is_invalid_utf8(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<InvalidUtf8>())
}

/// A socket whose reads are watched for invalid UTF-8 in text frames.
pub struct Utf8Guard<S> {
    inner: S,
    watch: Watch,
    /// Reads stop at the end of the message under way ([`Utf8Guard::hold_at_message_end`]).
    hold: bool,
}

impl<S> Utf8Guard<S> {
    /// Guards `inner`; `already_read` is what was read from it before (it is watched too).
    /// `max_size` is tungstenite's limit for a frame and for a message: past it, tungstenite
    /// fails the connection with 1009 and the guard stands aside.
    pub fn new(inner: S, already_read: &[u8], max_size: usize) -> Self {
        let mut watch = Watch {
            max_size: max_size as u64,
            ..Watch::default()
        };
        // tungstenite takes these bytes from its own buffer, not through the guard: a bad
        // frame complete among them is failed by tungstenite itself, and a cut-off one by
        // the guard's first read.
        let _ = watch.feed(already_read);
        Utf8Guard {
            inner,
            watch,
            hold: false,
        }
    }

    /// While `hold` is set, no read goes past the end of the frame under way, and a read at
    /// a message boundary is pending at once, **without** arranging a wake-up: the caller
    /// polls once with it set, clears it, and then may renew tungstenite's socket (nothing of
    /// a message is left in tungstenite's buffer) before it polls again.
    pub fn hold_at_message_end(&mut self, hold: bool) {
        self.hold = hold;
    }

    /// The socket under the guard, to drain what the peer still sends once the connection
    /// has failed.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Whether what was handed up so far ends a message: no frame, nor fragmented message,
    /// is cut off. Once tungstenite's read is pending too, its buffer then holds nothing.
    pub fn at_message_boundary(&self) -> bool {
        let watch = &self.watch;
        watch.state == State::Header && watch.header.is_empty() && !watch.in_message
    }

    /// How many frames that tungstenite answers with a message (a control frame, the last
    /// frame of a data message) were handed up whole so far, counting from the bytes read
    /// before the guard (wrapping); `None` once the guard no longer follows the stream. When
    /// it equals the messages tungstenite gave, tungstenite holds no whole message: its next
    /// read goes to the socket before it can give one.
    pub fn messages_handed_up(&self) -> Option<u32> {
        matches!(self.watch.state, State::Header | State::Payload).then_some(self.watch.messages)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Utf8Guard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.watch.state == State::Invalid {
            return Poll::Ready(Err(invalid()));
        }
        let before = buf.filled().len();
        if this.hold {
            ready!(this.poll_held(cx, buf))?;
        } else {
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        }
        if let Some(bad) = this.watch.feed(&buf.filled()[before..]) {
            // Pass on what came before the bad bytes; the next read fails. Nothing before
            // them in this read means failing now (an empty read would say end of stream).
            if bad == 0 {
                return Poll::Ready(Err(invalid()));
            }
            buf.set_filled(before + bad);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> Utf8Guard<S> {
    /// A read while held ([`Utf8Guard::hold_at_message_end`]); out of line, since it is rare.
    #[cold]
    #[inline(never)]
    fn poll_held(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.watch.read_limit() {
            Some(0) => Poll::Pending,
            Some(limit) if limit < buf.remaining() => {
                // tungstenite's window is initialised already: nothing is zeroed here.
                let mut limited = ReadBuf::new(buf.initialize_unfilled_to(limit));
                ready!(Pin::new(&mut self.inner).poll_read(cx, &mut limited))?;
                let read = limited.filled().len();
                buf.advance(read);
                Poll::Ready(Ok(()))
            }
            _ => Pin::new(&mut self.inner).poll_read(cx, buf),
        }
    }
}

fn invalid() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, InvalidUtf8)
}

ws_deflate::forward_writes!(Utf8Guard<S>, inner);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Reading a frame header; its bytes so far are in `header`.
    #[default]
    Header,
    /// Reading a frame's payload.
    Payload,
    /// The guard cannot follow the stream any more; tungstenite will say why.
    Off,
    /// Invalid UTF-8 was seen.
    Invalid,
}

/// What the guard knows of the stream.
#[derive(Debug, Default)]
struct Watch {
    state: State,
    /// The largest frame, and message, tungstenite accepts.
    max_size: u64,
    header: Vec<u8>,
    /// Payload bytes left in the current frame.
    remaining: u64,
    mask: [u8; 4],
    /// Position in the current frame's payload, for the mask.
    position: usize,
    /// Whether the current frame's payload is text.
    frame_is_text: bool,
    /// Whether the current frame is a data frame that ends its message.
    frame_ends_message: bool,
    /// Whether the current frame is a whole text message: `Text` with FIN.
    frame_is_whole_message: bool,
    /// Whether the current frame is a data frame (not a control frame between fragments).
    frame_is_data: bool,
    /// Whether a fragmented message is under way, and its size so far.
    in_message: bool,
    message_size: u64,
    /// Whether the message under way is text.
    message_is_text: bool,
    utf8: Utf8Stream,
    /// Frames followed to their end that tungstenite answers with a message (wrapping):
    /// [`Utf8Guard::messages_handed_up`].
    messages: u32,
}

/// The longest frame header: 2 bytes, 8 of length, 4 of mask.
const MAX_HEADER: usize = 14;

impl Watch {
    /// Follows `data`; on invalid UTF-8, returns the offset in `data` of the run of payload
    /// that holds it (everything before that offset is valid).
    fn feed(&mut self, mut data: &[u8]) -> Option<usize> {
        let total = data.len();
        while !data.is_empty() {
            match self.state {
                State::Off | State::Invalid => return None,
                // The usual case, a header whole at the start of what is left: parsed in
                // place, not copied into `header` first.
                State::Header if self.header.is_empty() => match frame_header::parse(data) {
                    Ok(Some((header, length, size))) => {
                        data = &data[size..];
                        self.start_frame(&header, length);
                    }
                    // Shorter than the longest header: all of it is a header's start.
                    Ok(None) => {
                        self.header.extend_from_slice(data);
                        data = &[];
                    }
                    Err(_) => self.state = State::Off,
                },
                State::Header => {
                    let had = self.header.len();
                    let take = (MAX_HEADER - had).min(data.len());
                    self.header.extend_from_slice(&data[..take]);
                    match frame_header::parse(&self.header) {
                        Ok(Some((header, length, size))) => {
                            data = &data[size - had..];
                            self.header.clear();
                            self.start_frame(&header, length);
                        }
                        Ok(None) => data = &data[take..],
                        Err(_) => self.state = State::Off,
                    }
                }
                State::Payload => {
                    let take = (self.remaining.min(data.len() as u64)) as usize;
                    // A text message that is one frame, all of it in this read: tungstenite
                    // validates it as soon as it parses the frame, before anything after it,
                    // and fails with the same 1007, so checking it here would only do the
                    // work twice. The guard is for what tungstenite cannot see yet: a frame
                    // cut off at the end of a read, and the fragments of a message.
                    let whole = self.frame_is_whole_message
                        && self.position == 0
                        && take as u64 == self.remaining;
                    if self.frame_is_text && !whole && !self.check(&data[..take]) {
                        self.state = State::Invalid;
                        return Some(total - data.len());
                    }
                    self.position += take;
                    self.remaining -= take as u64;
                    data = &data[take..];
                    if self.remaining == 0 {
                        self.end_frame();
                    }
                }
            }
        }
        None
    }

    /// How far a held read may go: `Some(0)` at a message boundary, the rest of the frame
    /// within one, and a byte at a time through a header within a message (a fragment's,
    /// or one cut off when the hold began: where it ends is known only once it is whole, and
    /// this lasts a few reads); `None` (no limit) when the guard does not follow the stream.
    fn read_limit(&self) -> Option<usize> {
        match self.state {
            State::Header if self.header.is_empty() && !self.in_message => Some(0),
            State::Header => Some(1),
            State::Payload => Some(usize::try_from(self.remaining).unwrap_or(usize::MAX)),
            State::Off | State::Invalid => None,
        }
    }

    fn start_frame(&mut self, header: &FrameHeader, length: u64) {
        if !self.tungstenite_accepts(header, length) {
            self.state = State::Off;
            return;
        }
        self.mask = header.mask.expect("checked: client frames are masked");
        self.position = 0;
        self.remaining = length;
        self.frame_is_data = matches!(header.opcode, OpCode::Data(_));
        self.frame_ends_message = self.frame_is_data && header.is_final;
        self.frame_is_whole_message = header.is_final && header.opcode == OpCode::Data(Data::Text);
        self.frame_is_text = match header.opcode {
            OpCode::Data(Data::Text) => {
                self.message_is_text = true;
                self.utf8 = Utf8Stream::default();
                true
            }
            OpCode::Data(Data::Continue) => self.message_is_text,
            OpCode::Data(_) => {
                self.message_is_text = false;
                false
            }
            OpCode::Control(_) => false,
        };
        if self.frame_is_data {
            self.message_size += length;
        }
        self.state = State::Payload;
        if length == 0 {
            self.end_frame();
        }
    }

    /// Whether tungstenite takes a frame with this header without failing the connection
    /// (`WebSocket::read_message_frame` and `FrameCodec::read_frame` in tungstenite 0.30):
    /// where it does not, its close code (1002 or 1009) is the one the client must get.
    fn tungstenite_accepts(&self, header: &FrameHeader, length: u64) -> bool {
        if header.mask.is_none() || header.rsv1 || header.rsv2 || header.rsv3 {
            return false;
        }
        if length > self.max_size {
            return false;
        }
        match header.opcode {
            OpCode::Control(Control::Reserved(_)) => false,
            OpCode::Control(_) => header.is_final && length <= 125,
            OpCode::Data(Data::Reserved(_)) => false,
            OpCode::Data(Data::Continue) => {
                self.in_message && self.message_size + length <= self.max_size
            }
            OpCode::Data(Data::Text | Data::Binary) => !self.in_message,
        }
    }

    fn end_frame(&mut self) {
        if !self.frame_is_data || self.frame_ends_message {
            self.messages = self.messages.wrapping_add(1);
        }
        if self.frame_is_data {
            self.in_message = !self.frame_ends_message;
            if self.frame_ends_message {
                self.message_is_text = false;
                self.message_size = 0;
            }
        }
        self.state = State::Header;
    }

    /// Unmasks a run of text payload and checks it; `false` on invalid UTF-8.
    fn check(&mut self, masked: &[u8]) -> bool {
        let mut chunk = [0u8; 256];
        for (index, part) in masked.chunks(chunk.len()).enumerate() {
            let start = self.position + index * chunk.len();
            for (offset, (plain, byte)) in chunk.iter_mut().zip(part).enumerate() {
                *plain = byte ^ self.mask[(start + offset) % 4];
            }
            if !self.utf8.push(&chunk[..part.len()]) {
                return false;
            }
        }
        true
    }
}

/// Incremental UTF-8 validation: what is seen so far could still begin valid text.
#[derive(Debug, Default)]
pub(crate) struct Utf8Stream {
    /// The start of a character cut off at the end of the last push.
    pending: [u8; 4],
    pub(crate) pending_len: usize,
}

impl Utf8Stream {
    /// Adds bytes; `false` once they cannot be valid UTF-8, whatever follows.
    pub(crate) fn push(&mut self, mut bytes: &[u8]) -> bool {
        if self.pending_len > 0 {
            let take = (4 - self.pending_len).min(bytes.len());
            let mut joined = self.pending;
            joined[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            let joined = &joined[..self.pending_len + take];
            match std::str::from_utf8(joined) {
                Ok(_) => {
                    self.pending_len = 0;
                    bytes = &bytes[take..];
                }
                Err(error) if error.error_len().is_some() => return false,
                Err(error) if error.valid_up_to() == 0 => {
                    // Still incomplete: all of `bytes` went into the pending character.
                    self.pending[..joined.len()].copy_from_slice(joined);
                    self.pending_len = joined.len();
                    return true;
                }
                Err(error) => {
                    bytes = &bytes[error.valid_up_to() - self.pending_len..];
                    self.pending_len = 0;
                }
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => true,
            Err(error) if error.error_len().is_some() => false,
            Err(error) => {
                let rest = &bytes[error.valid_up_to()..];
                self.pending[..rest.len()].copy_from_slice(rest);
                self.pending_len = rest.len();
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_stream_accepts_characters_split_anywhere() {
        let text = "κόσμε 🦀 ñ".as_bytes();
        for split in 0..text.len() {
            let mut stream = Utf8Stream::default();
            assert!(stream.push(&text[..split]), "{split}");
            assert!(stream.push(&text[split..]), "{split}");
        }
        // One byte at a time.
        let mut stream = Utf8Stream::default();
        assert!(text.iter().all(|byte| stream.push(&[*byte])));
    }

    #[test]
    fn utf8_stream_fails_at_the_first_impossible_byte() {
        let mut stream = Utf8Stream::default();
        assert!(stream.push("κόσμε".as_bytes()));
        assert!(stream.push(&[0xce]));
        assert!(!stream.push(&[0xff]));
        let mut stream = Utf8Stream::default();
        assert!(!stream.push(&[0xed, 0xa0, 0x80])); // a UTF-16 surrogate
    }

    fn unlimited() -> Watch {
        Watch {
            max_size: u64::MAX,
            ..Watch::default()
        }
    }

    fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut frame = vec![first, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    /// One read of up to `room` bytes through `guard`: `None` when pending.
    fn read_once(guard: &mut Utf8Guard<&[u8]>, room: usize) -> Option<Vec<u8>> {
        let mut bytes = vec![0; room];
        let mut buf = ReadBuf::new(&mut bytes);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Pin::new(guard).poll_read(&mut cx, &mut buf) {
            Poll::Ready(result) => {
                result.unwrap();
                Some(buf.filled().to_vec())
            }
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_held_read_stops_at_the_end_of_the_message_under_way() {
        // A text message in two fragments with a ping between them, then a binary message.
        let first = [
            masked_frame(0x01, b"hello, "),
            masked_frame(0x89, b"ping"),
            masked_frame(0x80, b"world"),
        ]
        .concat();
        let second = masked_frame(0x82, &[7; 100]);
        let stream = [first.clone(), second.clone()].concat();
        let mut guard = Utf8Guard::new(&stream[..], &[], 1 << 20);
        // Unheld, a read takes what fits.
        assert_eq!(read_once(&mut guard, 3).unwrap(), stream[..3]);
        guard.hold_at_message_end(true);
        // Held: through the fragments and the ping between them, and no further.
        let mut got = stream[..3].to_vec();
        while got.len() < first.len() {
            let read = read_once(&mut guard, 4096).expect("not pending within a message");
            assert!(!read.is_empty());
            got.extend(read);
        }
        assert_eq!(got, first, "a held read ran past the message's end");
        assert!(guard.at_message_boundary());
        // At the boundary a held read is pending, and reads nothing.
        assert_eq!(read_once(&mut guard, 4096), None);
        assert_eq!(read_once(&mut guard, 4096), None);
        // Released, reading goes on where it stopped.
        guard.hold_at_message_end(false);
        assert_eq!(read_once(&mut guard, 4096).unwrap(), second);
        assert!(guard.at_message_boundary());
    }

    #[test]
    fn watch_fails_mid_frame_and_ignores_binary_and_control_frames() {
        let mut watch = unlimited();
        watch.feed(&masked_frame(0x82, &[0xff, 0xfe])); // binary: anything goes
        watch.feed(&masked_frame(0x89, &[0xff])); // ping
        watch.feed(&masked_frame(0x81, "ok".as_bytes()));
        assert_eq!(watch.state, State::Header);
        let bad = masked_frame(0x81, &[b'a', b'b', 0xe2, 0x82, b'c', b'd']);
        watch.feed(&bad[..9]); // the header, "ab" and the start of a three-byte character
        assert_eq!(watch.state, State::Payload);
        watch.feed(&bad[9..10]);
        assert_eq!(watch.state, State::Payload);
        watch.feed(&bad[10..11]); // "c" where the character's last byte should be
        assert_eq!(watch.state, State::Invalid);
    }

    #[test]
    fn feed_says_where_the_bad_run_starts_so_what_came_before_passes() {
        let mut watch = unlimited();
        let good = masked_frame(0x81, b"hello");
        let bad = masked_frame(0x81, &[0xff, 0xfe, b'a']);
        // The bad frame is cut off by the end of the read: tungstenite cannot see it yet.
        let read = [&good[..], &bad[..bad.len() - 1]].concat();
        // The good frame and the bad one's header (2 bytes and the mask) pass.
        assert_eq!(watch.feed(&read), Some(good.len() + 6));
        assert_eq!(watch.state, State::Invalid);
    }

    #[test]
    fn a_whole_text_message_in_one_read_is_left_to_tungstenite() {
        // tungstenite validates it as soon as it parses it, with the same 1007: the guard
        // passes it on unchecked and keeps following the stream.
        let mut watch = unlimited();
        let bad = masked_frame(0x81, &[0xff, 0xfe]);
        let after = masked_frame(0x81, &[b'a', 0xff]);
        assert_eq!(watch.feed(&[bad, after.clone()].concat()), None);
        assert_eq!(watch.state, State::Header);
        // The same bytes as a fragment, or cut off by the end of the read, are checked.
        let mut watch = unlimited();
        assert_eq!(watch.feed(&masked_frame(0x01, &[0xff, 0xfe])), Some(6));
        let mut watch = unlimited();
        assert_eq!(watch.feed(&after[..after.len() - 1]), None);
        assert_eq!(watch.feed(&after[after.len() - 1..]), Some(0));
    }

    #[test]
    fn headers_tungstenite_rejects_end_the_watch_before_their_payload() {
        let bad = [0xffu8, 0xfe];
        let rejected = [
            masked_frame(0x80 | 0x40 | 0x01, &bad), // a reserved bit
            [masked_frame(0x01, b"a"), masked_frame(0x81, &bad)].concat(), // a new message
            masked_frame(0x80, &bad),               // a continuation of nothing
            vec![0x81, 0x02, 0xff, 0xfe],           // no mask
        ];
        for bytes in rejected {
            let mut watch = unlimited();
            assert_eq!(watch.feed(&bytes), None, "{bytes:x?}");
            assert_eq!(watch.state, State::Off, "{bytes:x?}");
        }
        let mut small = Watch {
            max_size: 4,
            ..Watch::default()
        };
        assert_eq!(small.feed(&masked_frame(0x81, &[0xff; 5])), None);
        assert_eq!(small.state, State::Off, "over the size limit");
        let mut small = Watch {
            max_size: 4,
            ..Watch::default()
        };
        let message = [masked_frame(0x01, b"abc"), masked_frame(0x80, &bad)].concat();
        assert_eq!(small.feed(&message), None);
        assert_eq!(small.state, State::Off, "a message over the size limit");
    }

    #[test]
    fn watch_follows_text_across_fragments_and_interleaved_pings() {
        let mut watch = unlimited();
        let euro = "€".as_bytes(); // three bytes, split over two fragments
        watch.feed(&masked_frame(0x01, &euro[..1]));
        watch.feed(&masked_frame(0x89, b"ping"));
        watch.feed(&masked_frame(0x80, &euro[1..]));
        assert_eq!(watch.state, State::Header);
        watch.feed(&masked_frame(0x01, &euro[..1]));
        assert_eq!(watch.state, State::Header);
        assert_eq!(watch.utf8.pending_len, 1, "{watch:?}");
        watch.feed(&masked_frame(0x80, &[0x41]));
        assert_eq!(watch.state, State::Invalid, "{watch:?}");
    }

    #[test]
    fn the_messages_handed_up_are_counted_as_tungstenite_gives_them() {
        // A fragmented text message with a ping between its fragments, a binary message and
        // a pong: tungstenite gives four messages (the ping, the text, the binary, the pong).
        let stream = [
            masked_frame(0x01, b"hel"),
            masked_frame(0x89, b"ping"),
            masked_frame(0x80, b"lo"),
            masked_frame(0x82, &[7; 10]),
            masked_frame(0x8a, b""),
        ]
        .concat();
        // Split anywhere, and with a part read before the guard: a frame counts once whole.
        for split in 0..stream.len() {
            let mut guard = Utf8Guard::new(&stream[split..], &stream[..split], 1 << 20);
            let mut counts = vec![guard.messages_handed_up().unwrap()];
            while let Some(read) = read_once(&mut guard, 7) {
                if read.is_empty() {
                    break;
                }
                counts.push(guard.messages_handed_up().unwrap());
            }
            assert_eq!(counts.last(), Some(&4), "split at {split}: {counts:?}");
        }
        // One frame at a time: the count moves only as each message-giving frame ends.
        let mut guard = Utf8Guard::new(&stream[..], &[], 1 << 20);
        let mut counts = Vec::new();
        for frame in [9, 10, 8, 16, 6] {
            read_once(&mut guard, frame).unwrap();
            counts.push(guard.messages_handed_up().unwrap());
        }
        assert_eq!(counts, [0, 1, 2, 3, 4]);
        // A header tungstenite rejects: the guard no longer follows, and says so.
        let mut guard = Utf8Guard::new(&[0x81, 0x02, 0xff, 0xfe][..], &[], 1 << 20);
        read_once(&mut guard, 16).unwrap();
        assert_eq!(guard.messages_handed_up(), None);
    }
}
