//! Differential: the server's socket stack (tungstenite over the UTF-8 guard, the inflating
//! layer and the read-ahead) against plain tungstenite with the same limits, on the same
//! client frames (any first byte, masked or not, lengths in any form, text or any bytes,
//! then maybe the client's Close and any bytes). They must agree on every message and on
//! the close code, but for the one difference the guard exists for: invalid UTF-8 in a
//! frame the stream ends inside of is 1007 for the stack and the end of the stream for
//! tungstenite. The stack gives the same however the bytes arrive (what hyper read past the
//! handshake, reads of any size, pending reads), and with permessage-deflate negotiated it
//! gives the same again as long as no frame has RSV1 set. `server/tests/differential.rs`
//! does this over real sockets from a seeded generator; this is its coverage-guided twin.
#![no_main]

use arbitrary::Arbitrary;
use fuzz::{Delivery, close_frame, ours, plain, text};
use libfuzzer_sys::fuzz_target;
use wsecho::fuzzing::parse_frame_header;

#[derive(Arbitrary, Debug)]
struct Frame {
    /// FIN, RSV1-3 and the opcode.
    first: u8,
    masked: bool,
    mask: [u8; 4],
    payload: Vec<u8>,
    as_text: bool,
    /// The length in the 8-byte form, however short.
    long_length: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    frames: Vec<Frame>,
    close: bool,
    tail: Vec<u8>,
    limit: u8,
    delivery: Delivery,
}

const LIMITS: [usize; 4] = [16, 64, 125, 1 << 20];

fn frame(frame: &Frame) -> Vec<u8> {
    let payload = if frame.as_text {
        text(&frame.payload).into_bytes()
    } else {
        frame.payload.clone()
    };
    let mask_bit = if frame.masked { 0x80 } else { 0 };
    let mut bytes = vec![frame.first];
    let len = payload.len();
    if frame.long_length {
        bytes.push(mask_bit | 127);
        bytes.extend_from_slice(&(len as u64).to_be_bytes());
    } else if len < 126 {
        bytes.push(mask_bit | len as u8);
    } else {
        bytes.push(mask_bit | 126);
        bytes.extend_from_slice(&(len as u16).to_be_bytes());
    }
    if frame.masked {
        bytes.extend_from_slice(&frame.mask);
        bytes.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ frame.mask[i % 4]),
        );
    } else {
        bytes.extend_from_slice(&payload);
    }
    bytes
}

/// Whether any frame header of `stream`, followed from the start, has RSV1 set.
fn has_rsv1(stream: &[u8]) -> bool {
    let mut at = 0;
    while let Ok(Some((header, length, size))) = parse_frame_header(&stream[at..]) {
        if header.rsv1 {
            return true;
        }
        at = match (at + size).checked_add(length as usize) {
            Some(next) if next <= stream.len() => next,
            _ => return false,
        };
    }
    false
}

fuzz_target!(|input: Input| {
    let max_size = LIMITS[usize::from(input.limit) % LIMITS.len()];
    let mut stream: Vec<u8> = input.frames.iter().flat_map(frame).collect();
    if input.close {
        stream.extend(close_frame());
    }
    stream.extend_from_slice(&input.tail);

    let reference = plain(&stream, max_size);
    let whole = ours(&stream, &Delivery::whole(), false, max_size);
    assert_eq!(whole.messages, reference.messages, "{stream:02x?}");
    let guard_first = reference.code.is_none() && whole.code == Some(1007);
    assert!(
        whole.code == reference.code || guard_first,
        "ours {:?}, tungstenite {:?}: {stream:02x?}",
        whole.code,
        reference.code
    );
    let split = ours(&stream, &input.delivery, false, max_size);
    assert_eq!(split, whole, "split as {:?}: {stream:02x?}", input.delivery);
    if !has_rsv1(&stream) {
        let inflating = ours(&stream, &input.delivery, true, max_size);
        assert_eq!(inflating, whole, "with deflate on: {stream:02x?}");
    }
});
