//! Frame headers as the layers under tungstenite follow them (this crate's [`Inflate`](crate::Inflate),
//! the server's UTF-8 guard): read with tungstenite's own parser, so that every layer agrees
//! with it on where a frame starts.

use std::io::Cursor;

use tungstenite::error::Error;
use tungstenite::protocol::frame::FrameHeader;

/// The frame header at the start of `bytes`: the header, its payload's length and how many
/// bytes the header took; `None` while `bytes` holds only the start of one. An error where
/// tungstenite fails the header itself: a reserved opcode.
pub fn parse(bytes: &[u8]) -> Result<Option<(FrameHeader, u64, usize)>, Error> {
    let mut cursor = Cursor::new(bytes);
    let parsed = FrameHeader::parse(&mut cursor)?;
    Ok(parsed.map(|(header, length)| (header, length, cursor.position() as usize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_whole_cut_off_or_bad() {
        // A masked text frame of 300 bytes: two bytes, two of length, four of mask.
        let bytes = [0x81, 0x80 | 126, 0x01, 0x2c, 1, 2, 3, 4, b'x'];
        let (header, length, size) = parse(&bytes).unwrap().unwrap();
        assert_eq!(
            (header.is_final, header.mask, length, size),
            (true, Some([1, 2, 3, 4]), 300, 8)
        );
        assert!(parse(&bytes[..7]).unwrap().is_none());
        assert!(parse(&[0x83, 0]).is_err(), "a reserved opcode");
    }
}
