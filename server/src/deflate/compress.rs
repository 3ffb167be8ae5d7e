//! Compression: each outgoing data message over the threshold as one compressed frame,
//! with a spare compressor (`spares`).

use flate2::{Compress, FlushCompress};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use super::{Negotiated, TAIL, spares};

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
