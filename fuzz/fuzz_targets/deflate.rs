//! permessage-deflate (`deflate`): negotiation and the inflating reader.
//!
//! - Any `Sec-WebSocket-Extensions` headers: an accepted offer's answer always turns context
//!   takeover off on both sides, with a window the server can deflate with (9 to 15), and
//!   offered back it is accepted as it is.
//! - Messages compressed as a sender does (raw DEFLATE, sync-flushed with the tail cut, or
//!   finished), fragmented anywhere, between pings, some plain, read through the server's
//!   stack with the extension on and delivered in any pieces: every message comes out as it
//!   was sent, until one whose inflated or compressed size passes the limit, which gets 1009.
//! - The same streams with a byte flipped: whatever happens (a message, 1002, 1007, 1009),
//!   it happens the same however the bytes arrive.
#![no_main]

use std::io::Write;

use arbitrary::Arbitrary;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use fuzz::{Delivery, Outcome, client_frame, close_frame, message, ours, text};
use hyper::header::{HeaderMap, HeaderValue, SEC_WEBSOCKET_EXTENSIONS};
use libfuzzer_sys::fuzz_target;
use tokio_tungstenite::tungstenite::Message;
use wsecho::fuzzing::negotiate;

#[derive(Arbitrary, Debug)]
struct Sent {
    is_text: bool,
    payload: Vec<u8>,
    /// The payload is repeated this many times, squared: room for large, compressible ones.
    repeat: u8,
    compress: bool,
    /// Ends the DEFLATE stream (BFINAL) rather than sync-flushing and cutting the tail.
    finish: bool,
    level: u8,
    cuts: Vec<u16>,
    mask: [u8; 4],
    ping_between: bool,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Negotiate(Vec<String>),
    Stream {
        messages: Vec<Sent>,
        limit: u8,
        delivery: Delivery,
        flip: Option<(u32, u8)>,
    },
}

const LIMITS: [usize; 5] = [125, 1000, 16 << 10, 64 << 10, 1 << 20];

fn compressed(payload: &[u8], level: u8, finish: bool) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::new(u32::from(level % 10)));
    encoder.write_all(payload).expect("into a Vec");
    if finish {
        return encoder.finish().expect("into a Vec");
    }
    encoder.flush().expect("into a Vec");
    let mut bytes = encoder.get_ref().clone();
    if bytes.ends_with(&[0, 0, 0xff, 0xff]) {
        bytes.truncate(bytes.len() - 4);
    }
    bytes
}

/// `bytes` cut after each of `cuts` bytes, the rest last.
fn fragments<'a>(bytes: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = bytes;
    for cut in cuts {
        let (piece, after) = rest.split_at(usize::from(*cut).min(rest.len()));
        pieces.push(piece);
        rest = after;
    }
    pieces.push(rest);
    pieces
}

fn negotiation(values: &[String]) {
    let mut headers = HeaderMap::new();
    for value in values {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.append(SEC_WEBSOCKET_EXTENSIONS, value);
        }
    }
    let Some((negotiated, answer)) = negotiate(&headers) else {
        return;
    };
    let answer_text = answer.to_str().expect("ASCII");
    assert!(
        answer_text.starts_with(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ),
        "{answer_text}"
    );
    assert!(
        (9..=15).contains(&negotiated.server_window_bits),
        "{negotiated:?}"
    );
    let mut again = HeaderMap::new();
    again.insert(SEC_WEBSOCKET_EXTENSIONS, answer.clone());
    assert_eq!(negotiate(&again), Some((negotiated, answer)));
}

fuzz_target!(|input: Input| {
    let Input::Stream {
        messages,
        limit,
        delivery,
        flip,
    } = input
    else {
        if let Input::Negotiate(values) = input {
            negotiation(&values);
        }
        return;
    };
    let max_size = LIMITS[usize::from(limit) % LIMITS.len()];
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    let mut too_big = false;
    for sent in &messages {
        let mut payload = Vec::new();
        for _ in 0..usize::from(sent.repeat % 32).pow(2).max(1) {
            payload.extend_from_slice(&sent.payload);
        }
        if sent.is_text {
            payload = text(&payload).into_bytes();
        }
        let opcode = if sent.is_text { 0x1 } else { 0x2 };
        let wire = if sent.compress {
            compressed(&payload, sent.level, sent.finish)
        } else {
            payload.clone()
        };
        let before = expected.len();
        let pieces = fragments(&wire, &sent.cuts);
        let last = pieces.len() - 1;
        for (index, piece) in pieces.into_iter().enumerate() {
            let fin = if index == last { 0x80 } else { 0 };
            let first = match index {
                0 if sent.compress => 0x40 | opcode,
                0 => opcode,
                _ => 0x0,
            };
            stream.extend(client_frame(fin | first, sent.mask, piece));
            if sent.ping_between && index != last {
                stream.extend(client_frame(0x89, sent.mask, b"ping"));
                if !too_big {
                    expected.push(Message::Ping(b"ping".to_vec().into()));
                }
            }
        }
        if !too_big && (payload.len() > max_size || wire.len() > max_size) {
            too_big = true;
            expected.truncate(before);
        }
        if !too_big {
            expected.push(message(sent.is_text, &payload));
        }
    }
    stream.extend(close_frame());
    if let Some((at, xor)) = flip
        && xor != 0
    {
        let at = at as usize % stream.len();
        stream[at] ^= xor;
        let whole = ours(&stream, &Delivery::whole(), true, max_size);
        let split = ours(&stream, &delivery, true, max_size);
        assert_eq!(
            split, whole,
            "split as {delivery:?}: {stream:02x?}, limit {max_size}"
        );
        return;
    }
    let got = ours(&stream, &delivery, true, max_size);
    if too_big {
        // Pings of the message over the limit may arrive before the limit is seen.
        assert_eq!(got.code, Some(1009), "{got:?}");
        let pings = expected.len()..got.messages.len();
        assert!(got.messages.starts_with(&expected), "{got:?}");
        assert!(
            got.messages[pings]
                .iter()
                .all(|m| matches!(m, Message::Ping(_)))
        );
    } else {
        expected.push(Message::Close(Some(
            tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: 1000.into(),
                reason: "".into(),
            },
        )));
        assert_eq!(
            got,
            Outcome {
                messages: expected,
                code: None
            }
        );
    }
});
