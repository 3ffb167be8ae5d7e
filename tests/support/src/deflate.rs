//! Client-side permessage-deflate (RFC 7692) with flate2: a message compressed as a client
//! sends it, and a server's compressed payload inflated. Behind the `deflate` feature.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// The `00 00 ff ff` that ends a sync flush, left off every compressed message (section 7.2.1).
pub const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// Raw DEFLATE of `data` at level 6 with a window of `bits`, ending in a flush of `flush` kind.
pub fn deflate(data: &[u8], bits: u8, flush: FlushCompress) -> Vec<u8> {
    let mut compress = Compress::new_with_window_bits(Compression::new(6), false, bits);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    loop {
        let used = compress.total_in() as usize;
        compress
            .compress_vec(&data[used..], &mut out, flush)
            .expect("flate2 compresses");
        if compress.total_in() as usize == data.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity());
    }
}

/// A message as a client compresses it (window 15): a sync flush, its tail left off.
pub fn compressed(data: &[u8]) -> Vec<u8> {
    compressed_with_window(data, 15)
}

/// [`compressed`] with a window of `bits` (9 to 15).
pub fn compressed_with_window(data: &[u8], bits: u8) -> Vec<u8> {
    let mut out = deflate(data, bits, FlushCompress::Sync);
    assert!(out.ends_with(&TAIL), "no sync flush");
    out.truncate(out.len() - TAIL.len());
    out
}

/// Inflates a compressed payload (tail appended) with a window of `bits`; an error if the
/// data is corrupt. `capacity` is a first guess of the size.
pub fn try_inflate(payload: &[u8], bits: u8, capacity: usize) -> std::io::Result<Vec<u8>> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&TAIL);
    let mut decompress = Decompress::new_with_window_bits(false, bits);
    let mut out = Vec::with_capacity(capacity.max(64));
    loop {
        let used = decompress.total_in() as usize;
        decompress.decompress_vec(&input[used..], &mut out, FlushDecompress::Sync)?;
        if decompress.total_in() as usize == input.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        out.reserve(out.capacity());
    }
}

/// [`try_inflate`] of data known to be sound.
pub fn inflate(payload: &[u8], bits: u8) -> Vec<u8> {
    try_inflate(payload, bits, payload.len() * 4).expect("sound DEFLATE data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_at_every_window() {
        let text = "{\"id\": 1, \"tags\": [\"a\", \"b\"]} ".repeat(2000);
        for bits in 9..=15 {
            let payload = compressed_with_window(text.as_bytes(), bits);
            assert!(payload.len() < text.len() / 5);
            assert_eq!(inflate(&payload, bits), text.as_bytes());
        }
        assert!(try_inflate(&[0xff; 40], 15, 0).is_err());
    }
}
