//! Compression: each outgoing data message over the threshold as one compressed frame, with
//! a spare compressor (`spares`) on a server, or the connection's own on a client.

use flate2::{Compress, FlushCompress};
use tungstenite::Message;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

use super::{Negotiated, TAIL, spares};

/// `message` as a server sends it on a connection that negotiated `deflate`: a data message of
/// at least `threshold` bytes becomes one compressed frame with RSV1 set, if that is smaller
/// (with a threshold of 0, every data message, smaller or not). The compressor is a spare,
/// taken for this message and given back reset (no context takeover).
pub fn compress(message: Message, deflate: Option<Negotiated>, threshold: usize) -> Message {
    let Some(deflate) = deflate else {
        return message;
    };
    compress_with(message, threshold, |payload| {
        deflate_payload(payload, deflate.server_window_bits)
    })
}

/// A client's compressor: its own, made at the first message it compresses and kept while the
/// connection lives (a spare from the server's pool would outlive it: nothing releases the
/// spares in a client), reset after every message, as the client offers
/// `client_no_context_takeover` and so never keeps a window between messages.
pub struct Compressor {
    window_bits: u8,
    state: Option<Compress>,
}

impl Compressor {
    /// A compressor for a window of at most `window_bits` (what the server allowed with
    /// `client_max_window_bits`; 15 when it said nothing). zlib cannot deflate with 8 bits:
    /// with 8, every message goes out plain, as RFC 7692 allows message by message.
    pub fn new(window_bits: u8) -> Compressor {
        Compressor {
            window_bits,
            state: None,
        }
    }

    /// `message` as it goes out: as [`compress`] makes it, with this compressor.
    pub fn compress(&mut self, message: Message, threshold: usize) -> Message {
        if self.window_bits < 9 {
            return message;
        }
        let window_bits = self.window_bits.min(15);
        let state = &mut self.state;
        compress_with(message, threshold, |payload| {
            let compressor = state.get_or_insert_with(|| spares::new_compressor(window_bits));
            let compressed = deflate_with(compressor, payload);
            compressor.reset();
            compressed
        })
    }
}

/// [`compress`] with the compressing given as `deflate`.
fn compress_with(
    message: Message,
    threshold: usize,
    deflate: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Message {
    let (payload, opcode) = match &message {
        Message::Text(text) => (text.as_str().as_bytes(), Data::Text),
        Message::Binary(data) => (&data[..], Data::Binary),
        _ => return message,
    };
    if payload.len() < threshold {
        return message;
    }
    let Some(compressed) = deflate(payload) else {
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
pub(super) fn deflate_payload(payload: &[u8], window_bits: u8) -> Option<Vec<u8>> {
    let mut compressor = spares::take_compressor(window_bits);
    let compressed = deflate_with(&mut compressor, payload);
    spares::give_back_compressor(window_bits, compressor);
    compressed
}

fn deflate_with(compressor: &mut Compress, payload: &[u8]) -> Option<Vec<u8>> {
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
}
