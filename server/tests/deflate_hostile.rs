//! permessage-deflate (RFC 7692) against the real server as a hostile or careless client
//! would use it: raw frames over a `TcpStream`, misplaced RSV1 bits, compressed messages cut
//! at every byte, odd DEFLATE streams, UTF-8 that breaks only once inflated, the size limit
//! to the byte, bombs between pings, half-sent messages on many connections, and the
//! negotiation's corners, each checked against what RFC 6455 and RFC 7692 ask.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use support::{Server, close_code, frames_of, masked_client_frame, opened_with, read_frames};
use test_support::deflate::{compressed, inflate};
use test_support::rng::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What Chromium offers.
const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

/// The server's answer to any offer it accepts without a window limit.
const PLAIN: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The prefix the server puts before every text reply.
const PREFIX: &str = "Received:  ";

/// A masked client frame with a real mask, so that unmasking has to follow the payload's
/// position across reads and frames.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    masked_client_frame(first, payload, [0x37, 0xfa, 0x21, 0x3d])
}

/// A deflate connection (Chromium's offer, accepted).
async fn open(addr: SocketAddr) -> TcpStream {
    let (stream, answer) = opened_with(addr, OFFER).await;
    assert_eq!(extensions(&answer), Some(PLAIN.to_owned()), "{answer}");
    stream
}

/// The `Sec-WebSocket-Extensions` values of an answer, joined, if any.
fn extensions(answer: &str) -> Option<String> {
    let values: Vec<&str> = answer
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| value.trim())
        })
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// The one answer expected to `wire`: the payload of a reply, or the code of a Close.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Close(Option<u16>),
    Nothing,
}

/// Turns a server frame into an [`Answer`], inflating it if RSV1 is set.
fn answer_of(frame: Option<&(u8, Vec<u8>)>) -> Answer {
    let Some((first, payload)) = frame else {
        return Answer::Nothing;
    };
    let data = if first & 0x40 != 0 {
        inflate(payload, 15)
    } else {
        payload.clone()
    };
    match first & 0x0f {
        0x1 => Answer::Text(data),
        0x2 => Answer::Binary(data),
        0x8 => Answer::Close(close_code(payload)),
        other => panic!("unexpected opcode {other:#x}"),
    }
}

/// Sends `wire` on a fresh deflate connection and returns the first answer.
async fn first_answer(server: &Server, wire: &[u8]) -> Answer {
    let mut stream = open(server.addr).await;
    stream.write_all(wire).await.unwrap();
    answer_of(read_frames(&mut stream, 1).await.first())
}

fn text(data: &str) -> Answer {
    Answer::Text(format!("{PREFIX}{data}").into_bytes())
}

// RSV1 where it does not belong.

#[tokio::test]
async fn rsv1_on_a_continuation_or_a_control_frame_gets_1002() {
    let server = Server::start(&["--deflate"]);
    let hello = compressed(b"hello hello hello");
    let cases: [(&str, Vec<u8>); 5] = [
        (
            "RSV1 on the continuation of a plain message",
            [frame(0x01, b"a"), frame(0xc0, b"b")].concat(),
        ),
        (
            "RSV1 on the continuation of a compressed message",
            [frame(0x41, &hello[..4]), frame(0xc0, &hello[4..])].concat(),
        ),
        ("RSV1 on a ping", frame(0xc9, b"")),
        ("RSV1 on a pong", frame(0xca, b"x")),
        ("RSV1 on a close", frame(0xc8, &[0x03, 0xe8])),
    ];
    for (what, wire) in cases {
        assert_eq!(
            first_answer(&server, &wire).await,
            Answer::Close(Some(1002)),
            "{what}"
        );
    }
    // RSV2 and RSV3 are no extension's: 1002 even on a first frame.
    for first in [0xa1, 0x91, 0xe1] {
        assert_eq!(
            first_answer(&server, &frame(first, &hello)).await,
            Answer::Close(Some(1002)),
            "{first:#x}"
        );
    }
}

#[tokio::test]
async fn rsv1_without_negotiation_gets_1002() {
    let without = Server::start(&[]);
    let with = Server::start(&["--deflate"]);
    let payload = compressed(b"hello");
    let offers = [
        (&without, OFFER),
        (&with, ""),
        (
            &with,
            "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n",
        ),
    ];
    for (server, offer) in offers {
        let (mut stream, answer) = opened_with(server.addr, offer).await;
        assert_eq!(extensions(&answer), None, "{answer}");
        stream.write_all(&frame(0xc1, &payload)).await.unwrap();
        let frames = read_frames(&mut stream, 1).await;
        assert_eq!(
            answer_of(frames.first()),
            Answer::Close(Some(1002)),
            "{offer}"
        );
    }
}

// Compressed messages cut anywhere.

#[tokio::test]
async fn a_compressed_message_split_at_every_byte_boundary_echoes() {
    let server = Server::start(&["--deflate"]);
    let message = "κόσμε, hello hello hello! 🦀🦀";
    let payload = compressed(message.as_bytes());
    let wire = [
        frame(0x41, &payload[..3]),
        frame(0x89, b"p"),
        frame(0x80, &payload[3..]),
    ]
    .concat();
    // Every cut into two reads, each on its own connection.
    for cut in 1..wire.len() {
        let mut stream = open(server.addr).await;
        stream.write_all(&wire[..cut]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
        stream.write_all(&wire[cut..]).await.unwrap();
        let frames = read_frames(&mut stream, 2).await;
        assert_eq!(frames.first(), Some(&(0x8a, b"p".to_vec())), "cut {cut}");
        assert_eq!(answer_of(frames.get(1)), text(message), "cut {cut}");
    }
    // Every cut at once: one byte a write.
    let mut stream = open(server.addr).await;
    for byte in &wire {
        stream.write_all(&[*byte]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let frames = read_frames(&mut stream, 2).await;
    assert_eq!(answer_of(frames.get(1)), text(message));
}

#[tokio::test]
async fn a_compressed_message_in_one_byte_continuations_with_empty_ones_echoes() {
    let server = Server::start(&["--deflate"]);
    let message: String = (0..3000).map(|i| format!("{} ", i % 97)).collect();
    let payload = compressed(message.as_bytes());
    let mut wire = frame(0x41, b"");
    for byte in &payload {
        wire.extend(frame(0x00, std::slice::from_ref(byte)));
        wire.extend(frame(0x00, b""));
    }
    wire.extend(frame(0x80, b""));
    assert_eq!(first_answer(&server, &wire).await, text(&message));
}

// Odd DEFLATE streams.

#[tokio::test]
async fn empty_stored_and_final_block_messages_are_read_as_the_rfc_says() {
    let server = Server::start(&["--deflate"]);
    let cases: [(&str, Vec<u8>, Answer); 8] = [
        ("an empty payload", frame(0xc1, b""), text("")),
        (
            "an empty binary payload",
            frame(0xc2, b""),
            Answer::Binary(vec![]),
        ),
        // RFC 7692 section 7.2.3.6: an empty message may be the single byte 0x00.
        ("the single byte 0x00", frame(0xc1, &[0x00]), text("")),
        // What a client that forgot to strip the tail sends for an empty message: a whole
        // empty stored block (five bytes; the four of the tail alone are not one). RFC 7692
        // section 7.2.1 says a sender MUST strip it: the tail the server appends then starts
        // a block that never ends, which is data that is not DEFLATE (as for a message cut
        // short, below).
        (
            "a whole empty stored block",
            frame(0xc1, &[0, 0, 0, 0xff, 0xff]),
            Answer::Close(Some(1007)),
        ),
        // RFC 7692 section 7.2.3.3's example: a stored block, then the first byte of the
        // empty block whose other four the sender stripped.
        (
            "a stored block",
            frame(
                0xc2,
                &[0x00, 5, 0, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o', 0x00],
            ),
            Answer::Binary(b"Hello".to_vec()),
        ),
        // The same without that byte ends on a block boundary before the tail, which then
        // starts a block that never ends: no sender following section 7.2.1 makes it.
        (
            "a stored block, nothing stripped",
            frame(
                0xc2,
                &[0x00, 5, 0, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o'],
            ),
            Answer::Close(Some(1007)),
        ),
        // RFC 7692 section 7.2.3.3's example: a BFINAL block then a padding byte.
        (
            "BFINAL and padding",
            frame(0xc1, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]),
            text("Hello"),
        ),
        (
            "BFINAL without padding",
            frame(0xc1, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
            text("Hello"),
        ),
    ];
    for (what, wire, expected) in cases {
        assert_eq!(first_answer(&server, &wire).await, expected, "{what}");
    }
}

#[tokio::test]
async fn garbage_after_a_final_block_gets_1007() {
    let server = Server::start(&["--deflate"]);
    // "Hello" with BFINAL, then bytes that start a block of the reserved type 11.
    let wire = frame(
        0xc1,
        &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xff, 0xff, 0xff],
    );
    assert_eq!(
        first_answer(&server, &wire).await,
        Answer::Close(Some(1007))
    );
}

#[tokio::test]
async fn a_message_that_ends_mid_block_gets_1007() {
    let server = Server::start(&["--deflate"]);
    let message = "the quick brown fox jumps over the lazy dog ".repeat(20);
    let payload = compressed(message.as_bytes());
    let cases: [(&str, Vec<u8>); 3] = [
        // Cut inside the Huffman block: the tail is then read as more of the block's codes
        // (observed: 822 of the 880 bytes echoed as a whole message).
        (
            "a Huffman block cut short",
            payload[..payload.len() - 6].to_vec(),
        ),
        // A final stored block that says 100 bytes and brings 5 (observed: "Hello" and the
        // four tail bytes echoed as the message).
        (
            "a stored block cut short",
            [&[0x01, 100, 0, 155, 0xff][..], b"Hello"].concat(),
        ),
        // The tail alone is the start of a stored block of 0xff00 bytes, not an empty
        // message (observed: 00 ff ff echoed).
        ("the tail only", vec![0, 0, 0xff, 0xff]),
    ];
    // RFC 7692 section 7.2.2: the payload and the tail are to inflate to the message; a
    // DEFLATE stream cut inside a block is not one (no sender per section 7.2.1 makes it),
    // and delivering part of it as a whole message corrupts data silently.
    let mut wrong = Vec::new();
    for (what, payload) in cases {
        match first_answer(&server, &frame(0xc2, &payload)).await {
            Answer::Close(Some(1007)) => {}
            Answer::Binary(data) if data.len() > 16 => {
                wrong.push(format!("{what}: {} bytes echoed", data.len()))
            }
            other => wrong.push(format!("{what}: {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "not 1007: {wrong:#?}");
}

// UTF-8 that breaks only once inflated.

#[tokio::test]
async fn invalid_utf8_after_inflation_gets_1007_even_across_chunks() {
    let server = Server::start(&["--deflate"]);
    // The server hands inflated data up in 16 KiB frames: put the bad byte at the seam.
    let seam = 16 << 10;
    let mut valid_at_seam = vec![b'a'; seam - 1];
    valid_at_seam.extend_from_slice("é".as_bytes());
    valid_at_seam.extend_from_slice(b"zz");
    let mut bad_at_seam = vec![b'a'; seam - 1];
    bad_at_seam.extend_from_slice(&[0xc3, b'a']);
    let mut cut_at_end = vec![b'a'; seam - 1];
    cut_at_end.push(0xc3);
    let mut overlong = b"abc".to_vec();
    overlong.extend_from_slice(&[0xc0, 0xaf]);
    let surrogate = [b'x', 0xed, 0xa0, 0x80];
    let cases: [(&str, &[u8], bool); 5] = [
        ("a two-byte character across the seam", &valid_at_seam, true),
        (
            "a lead byte before the seam, ASCII after",
            &bad_at_seam,
            false,
        ),
        ("a lead byte at the message's end", &cut_at_end, false),
        ("an overlong encoding", &overlong, false),
        ("a surrogate", &surrogate, false),
    ];
    for (what, data, valid) in cases {
        let payload = compressed(data);
        // In one frame, and in two fragments cut in the middle.
        let (head, tail) = payload.split_at(payload.len() / 2);
        for wire in [
            frame(0xc1, &payload),
            [frame(0x41, head), frame(0x80, tail)].concat(),
        ] {
            let answer = first_answer(&server, &wire).await;
            if valid {
                let expected = [PREFIX.as_bytes(), data].concat();
                assert_eq!(answer, Answer::Text(expected), "{what}");
            } else {
                assert_eq!(answer, Answer::Close(Some(1007)), "{what}");
            }
        }
    }
}

// The size limit, to the byte.

#[tokio::test]
async fn a_message_inflating_to_the_limit_echoes_and_one_byte_more_gets_1009() {
    let limit = 100_000;
    let server = Server::start(&["--deflate", "--max-message-size", &limit.to_string()]);
    let make =
        |len: usize| -> String { (0..len).map(|i| (b'a' + (i % 23) as u8) as char).collect() };
    let exact = make(limit);
    let payload = compressed(exact.as_bytes());
    assert!(payload.len() < limit / 10);
    assert_eq!(
        first_answer(&server, &frame(0xc1, &payload)).await,
        text(&exact)
    );
    // Fragmented, so the limit is counted over the frames too.
    let (head, tail) = payload.split_at(payload.len() / 3);
    let fragmented = [frame(0x41, head), frame(0x80, tail)].concat();
    assert_eq!(first_answer(&server, &fragmented).await, text(&exact));

    let over = make(limit + 1);
    let payload = compressed(over.as_bytes());
    assert_eq!(
        first_answer(&server, &frame(0xc1, &payload)).await,
        Answer::Close(Some(1009))
    );
    let (head, tail) = payload.split_at(payload.len() / 3);
    let fragmented = [frame(0x41, head), frame(0x80, tail)].concat();
    assert_eq!(
        first_answer(&server, &fragmented).await,
        Answer::Close(Some(1009))
    );
}

// Control frames among the compressed frames.

/// DEFLATE of `mib` MiB of zeros, each MiB ending in a full flush (about 1 KiB a MiB).
fn zeros_bomb(mib: usize) -> Vec<u8> {
    let mut compress = Compress::new(Compression::new(9), false);
    let zeros = vec![0u8; 1 << 20];
    let mut out = Vec::with_capacity(4 << 10);
    compress
        .compress_vec(&zeros, &mut out, FlushCompress::Full)
        .unwrap();
    assert_eq!(compress.total_in(), 1 << 20);
    out.repeat(mib)
}

#[tokio::test]
async fn a_bomb_in_tiny_continuations_between_pings_gets_1009_pongs_in_order() {
    let server = Server::start(&["--deflate"]);
    let bomb = zeros_bomb(64);
    let mut wire = Vec::new();
    let mut pings = 0u32;
    for (index, piece) in bomb.chunks(8).enumerate() {
        let first = if index == 0 { 0x42 } else { 0x00 };
        wire.extend(frame(first, piece));
        if index % 8 == 0 {
            wire.extend(frame(0x89, &pings.to_be_bytes()));
            pings += 1;
        }
    }
    let mut stream = open(server.addr).await;
    // The server stops reading at the Close; what it leaves unread may fail the write.
    let _ = stream.write_all(&wire).await;
    let frames = read_frames(&mut stream, usize::MAX).await;
    let (close, pongs) = frames.split_last().expect("some frames");
    assert_eq!(answer_of(Some(close)), Answer::Close(Some(1009)));
    // Every pong before it answers the next ping, none skipped, none reordered.
    for (index, (first, payload)) in pongs.iter().enumerate() {
        assert_eq!(*first, 0x8a, "frame {index}");
        assert_eq!(payload[..], (index as u32).to_be_bytes(), "pong {index}");
    }
    // The limit is 1 MiB, about one KiB of this bomb: the pings sent with that KiB (one
    // every 64 bytes) are answered before the Close.
    assert!(pongs.len() >= 8, "{} pongs", pongs.len());
    server.assert_healthy(64).await;
}

#[tokio::test]
async fn pings_between_compressed_fragments_are_answered_first_and_in_order() {
    let server = Server::start(&["--deflate"]);
    let message = "ping-pong ".repeat(500);
    let payload = compressed(message.as_bytes());
    let parts: Vec<&[u8]> = payload.chunks(payload.len().div_ceil(4)).collect();
    let mut wire = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let mut first = if index == 0 { 0x41 } else { 0x00 };
        if index + 1 == parts.len() {
            first |= 0x80;
        }
        wire.extend(frame(first, part));
        if index + 1 < parts.len() {
            wire.extend(frame(0x89, format!("ping {index}").as_bytes()));
        }
    }
    wire.extend(frame(0x81, b"after"));
    let mut stream = open(server.addr).await;
    stream.write_all(&wire).await.unwrap();
    let frames = read_frames(&mut stream, parts.len() + 1).await;
    for index in 0..parts.len() - 1 {
        assert_eq!(
            frames[index],
            (0x8a, format!("ping {index}").into_bytes()),
            "{frames:?}"
        );
    }
    assert_eq!(answer_of(frames.get(parts.len() - 1)), text(&message));
    assert_eq!(answer_of(frames.get(parts.len())), text("after"));
}

#[tokio::test]
async fn a_close_in_the_middle_of_a_compressed_message_is_answered_and_ends_it() {
    let server = Server::start(&["--deflate"]);
    let payload = compressed("half of a message ".repeat(100).as_bytes());
    let mut stream = open(server.addr).await;
    stream
        .write_all(&frame(0x41, &payload[..payload.len() / 2]))
        .await
        .unwrap();
    stream
        .write_all(&frame(0x88, &[0x03, 0xe8, b'b', b'y', b'e']))
        .await
        .unwrap();
    let frames = read_frames(&mut stream, 1).await;
    assert_eq!(answer_of(frames.first()), Answer::Close(Some(1000)));
    // And it hangs up: no reply to the half message, nothing more.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest));
    assert!(read.await.is_ok(), "the server did not hang up");
    assert_eq!(frames_of(&rest), vec![]);

    // A client that just goes away mid-message leaves no connection behind.
    let before = server.open_files();
    for _ in 0..20 {
        let mut stream = open(server.addr).await;
        stream
            .write_all(&frame(0x41, &payload[..10]))
            .await
            .unwrap();
    }
    support::eventually(Duration::from_secs(5), "connections released", || async {
        (server.open_files() <= before).then_some(())
    })
    .await;
    server.assert_healthy(64).await;
}

// Negotiation.

#[tokio::test]
async fn negotiation_edge_cases_get_exactly_the_expected_answer() {
    let server = Server::start(&["--deflate"]);
    let bits = |n: u8| Some(format!("{PLAIN}; server_max_window_bits={n}"));
    let header = |value: &str| format!("Sec-WebSocket-Extensions: {value}\r\n");
    let cases: Vec<(String, Option<String>)> = vec![
        (header("permessage-deflate"), Some(PLAIN.into())),
        (
            header("permessage-deflate; client_max_window_bits"),
            Some(PLAIN.into()),
        ),
        (
            header("permessage-deflate; client_max_window_bits=\"9\""),
            Some(PLAIN.into()),
        ),
        (
            header("permessage-deflate; server_max_window_bits=\"10\""),
            bits(10),
        ),
        (
            header("permessage-deflate ;server_max_window_bits=9 "),
            bits(9),
        ),
        // The first offer invalid, the second taken.
        (
            header(
                "permessage-deflate; server_max_window_bits=16, permessage-deflate; client_max_window_bits",
            ),
            Some(PLAIN.into()),
        ),
        (
            header("permessage-deflate; bogus, permessage-deflate; server_max_window_bits=12"),
            bits(12),
        ),
        (
            header("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=11"),
            bits(11),
        ),
        // Declined: zlib cannot deflate with an 8-bit window.
        (header("permessage-deflate; server_max_window_bits=8"), None),
        (
            header(
                "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9",
            ),
            bits(9),
        ),
        (
            header("permessage-deflate; server_max_window_bits=16"),
            None,
        ),
        (header("permessage-deflate; server_max_window_bits=0"), None),
        (
            header("permessage-deflate; server_max_window_bits=010"),
            None,
        ),
        (header("permessage-deflate; server_max_window_bits"), None),
        (header("permessage-deflate; client_max_window_bits="), None),
        (header("permessage-deflate; client_max_window_bits=7"), None),
        (
            header("permessage-deflate; server_max_window_bits=\"1\"0"),
            None,
        ),
        // Duplicates.
        (
            header("permessage-deflate; client_max_window_bits; client_max_window_bits"),
            None,
        ),
        (
            header("permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"),
            None,
        ),
        (
            header("permessage-deflate; server_no_context_takeover; server_no_context_takeover"),
            None,
        ),
        // The name in another case is another extension (a token, compared as it is).
        (header("Permessage-Deflate"), None),
        (header("PERMESSAGE-DEFLATE; client_max_window_bits"), None),
        // An offer inside another's quoted value is no offer.
        (header("x-foo; bar=\"a, permessage-deflate\""), None),
        // Offers over several header lines, the first line's declined.
        (
            format!(
                "{}{}",
                header("permessage-deflate; server_max_window_bits=8"),
                header("permessage-deflate; server_max_window_bits=13")
            ),
            bits(13),
        ),
        (
            format!("{}{}", header("x-foo"), header("permessage-deflate")),
            Some(PLAIN.into()),
        ),
        (
            "sec-websocket-extensions: permessage-deflate\r\n".into(),
            Some(PLAIN.into()),
        ),
    ];
    for (offer, expected) in cases {
        let (_, answer) = opened_with(server.addr, &offer).await;
        assert_eq!(extensions(&answer), expected, "{offer}");
    }
}

#[tokio::test]
async fn replies_respect_the_negotiated_server_window() {
    let server = Server::start(&["--deflate"]);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n";
    let (mut stream, answer) = opened_with(server.addr, offer).await;
    assert_eq!(
        extensions(&answer),
        Some(format!("{PLAIN}; server_max_window_bits=9"))
    );
    // Runs a small window compresses well, between bytes that do not compress: the reply
    // is compressed. (Whether its matches all stay within 512 bytes is not checked here:
    // zlib's inflater, given one large output buffer, follows matches past its window.)
    let mut block = Rng::new(9).bytes(300);
    block.extend_from_slice(&b"xyz".repeat(100));
    let data = block.repeat(50);
    stream
        .write_all(&frame(0xc2, &compressed(&data)))
        .await
        .unwrap();
    let frames = read_frames(&mut stream, 1).await;
    let (first, payload) = &frames[0];
    assert_eq!(*first, 0xc2, "one compressed binary frame");
    assert_eq!(inflate(payload, 9), data);
}

// Memory.

/// `count` connections that negotiated deflate, and the server's resident memory (KiB) once
/// they have settled, idle.
async fn opened_and_settled(server: &Server, count: usize) -> (Vec<TcpStream>, u64) {
    let mut streams = Vec::new();
    for _ in 0..count {
        streams.push(open(server.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idle, _) = server.memory_kib();
    (streams, idle)
}

#[tokio::test]
async fn many_half_sent_compressed_messages_cost_bounded_memory_each() {
    let server = Server::start(&["--deflate"]);
    let count = 200;
    let data: String = (0..100_000).map(|i| format!("{i} ")).collect();
    let payload = compressed(data.as_bytes());
    // A small first fragment: what it inflates to waits in tungstenite as a plain fragment
    // would; the rest of the cost is the inflating layer's.
    let head = &payload[..2048];
    let inflated_kib = {
        let mut decompress = Decompress::new(false);
        let mut out = Vec::with_capacity(1 << 20);
        decompress
            .decompress_vec(head, &mut out, FlushDecompress::Sync)
            .unwrap();
        out.len() as u64 / 1024
    };
    let (mut streams, idle) = opened_and_settled(&server, count).await;
    for stream in &mut streams {
        stream.write_all(&frame(0x42, head)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (busy, peak) = server.memory_kib();
    let each = busy.saturating_sub(idle) / count as u64;
    eprintln!(
        "{count} half-sent compressed messages ({} B sent, {inflated_kib} KiB inflated each): \
         {idle} KiB idle, {busy} KiB with them ({each} KiB each), {peak} KiB peak",
        head.len()
    );
    // An inflater's state and window (about 40 KiB with zlib-rs), a 16 KiB chunk, read
    // buffers, and what was inflated; not more.
    assert!(each < inflated_kib + 128, "{each} KiB a connection");
    // All still alive: the rest of each message completes the echo.
    for stream in streams.iter_mut().take(5) {
        stream
            .write_all(&frame(0x80, &payload[head.len()..]))
            .await
            .unwrap();
        let frames = read_frames(stream, 1).await;
        assert_eq!(
            answer_of(frames.first()),
            Answer::Binary(data.as_bytes().to_vec())
        );
    }
}

// The reply side's threshold.

#[tokio::test]
async fn replies_under_the_threshold_go_plain_and_at_it_compressed() {
    let server = Server::start(&["--deflate"]);
    let mut stream = open(server.addr).await;
    let threshold = 1024;
    // Text replies carry the prefix; binary ones are the message.
    let cases = [
        (0x81, threshold - PREFIX.len() - 1, false),
        (0x81, threshold - PREFIX.len(), true),
        (0x82, threshold - 1, false),
        (0x82, threshold, true),
        (0x82, 4 * threshold, true),
    ];
    for (first, len, compressed_reply) in cases {
        let data = "abcd".repeat(len).into_bytes()[..len].to_vec();
        // Sent compressed or not, the reply depends only on its own size.
        for wire in [frame(first, &data), frame(first | 0x40, &compressed(&data))] {
            stream.write_all(&wire).await.unwrap();
            let frames = read_frames(&mut stream, 1).await;
            let (reply_first, payload) = &frames[0];
            let expected = match first {
                0x81 => [PREFIX.as_bytes(), &data].concat(),
                _ => data.clone(),
            };
            if compressed_reply {
                assert_eq!(*reply_first, first | 0x40, "{len}");
                assert!(payload.len() < expected.len() / 4, "{len}");
                assert_eq!(inflate(payload, 15), expected, "{len}");
            } else {
                assert_eq!(*reply_first, first, "{len}");
                assert_eq!(payload, &expected, "{len}");
            }
        }
    }
}

// Frames that break the message structure around compressed ones.

#[tokio::test]
async fn compressed_and_plain_messages_may_not_nest_and_must_be_masked() {
    let server = Server::start(&["--deflate"]);
    let hello = compressed(b"hello hello hello");
    let unmasked = {
        let mut out = vec![0xc1, hello.len() as u8];
        out.extend_from_slice(&hello);
        out
    };
    let cases: [(&str, Vec<u8>); 5] = [
        (
            "a compressed message inside a plain one",
            [frame(0x01, b"a"), frame(0xc1, &hello)].concat(),
        ),
        (
            "a plain message inside a compressed one",
            [frame(0x41, &hello[..3]), frame(0x81, b"x")].concat(),
        ),
        (
            "a compressed message inside a compressed one",
            [frame(0x41, &hello[..3]), frame(0xc1, &hello)].concat(),
        ),
        ("a continuation with no message", frame(0x80, &hello)),
        ("an unmasked compressed frame", unmasked),
    ];
    for (what, wire) in cases {
        assert_eq!(
            first_answer(&server, &wire).await,
            Answer::Close(Some(1002)),
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_huge_declared_compressed_frame_is_refused_before_its_payload() {
    let server = Server::start(&["--deflate"]);
    // 2^40 bytes declared, a few sent: the server must not wait for (or buffer) the rest.
    let mut wire = vec![0xc2, 0x80 | 127];
    wire.extend_from_slice(&(1u64 << 40).to_be_bytes());
    wire.extend_from_slice(&[0; 4]);
    wire.extend_from_slice(&compressed(b"abc"));
    assert_eq!(
        first_answer(&server, &wire).await,
        Answer::Close(Some(1009))
    );
    // The most significant bit of a 64-bit length must be 0 (RFC 6455 section 5.2).
    let mut wire = vec![0xc2, 0x80 | 127];
    wire.extend_from_slice(&(1u64 << 63).to_be_bytes());
    wire.extend_from_slice(&[0; 4]);
    let answer = first_answer(&server, &wire).await;
    assert!(
        matches!(answer, Answer::Close(Some(1002 | 1009))),
        "{answer:?}"
    );
    server.assert_healthy(64).await;
}

#[tokio::test]
async fn a_client_that_keeps_its_window_despite_client_no_context_takeover_gets_1007() {
    let server = Server::start(&["--deflate"]);
    let message = b"a sentence the second message will refer back to, word for word";
    // One compressor for both messages, as a client with context takeover would.
    let mut compress = Compress::new(Compression::new(6), false);
    let mut payloads = Vec::new();
    for _ in 0..2 {
        let mut out = Vec::with_capacity(1024);
        compress
            .compress_vec(message, &mut out, FlushCompress::Sync)
            .unwrap();
        out.truncate(out.len() - 4);
        payloads.push(out);
    }
    assert!(payloads[1].len() < payloads[0].len() / 2, "{payloads:?}");
    let mut stream = open(server.addr).await;
    stream.write_all(&frame(0xc2, &payloads[0])).await.unwrap();
    stream.write_all(&frame(0xc2, &payloads[1])).await.unwrap();
    let frames = read_frames(&mut stream, 2).await;
    assert_eq!(answer_of(frames.first()), Answer::Binary(message.to_vec()));
    // The server answered client_no_context_takeover: the back-reference reaches before
    // the message's start, which is not DEFLATE data it can read.
    assert_eq!(answer_of(frames.get(1)), Answer::Close(Some(1007)));
}

#[tokio::test]
async fn interleaved_compressed_messages_on_two_connections_do_not_mix() {
    let server = Server::start(&["--deflate"]);
    let a_text = "connection A's message ".repeat(200);
    let b_text = "connection B's message, which differs ".repeat(150);
    let a_payload = compressed(a_text.as_bytes());
    let b_payload = compressed(b_text.as_bytes());
    let mut a = open(server.addr).await;
    let mut b = open(server.addr).await;
    let (a_head, a_tail) = a_payload.split_at(a_payload.len() / 2);
    let (b_head, b_tail) = b_payload.split_at(b_payload.len() / 2);
    // Each half lands while the other connection's message is under way.
    a.write_all(&frame(0x41, a_head)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    b.write_all(&frame(0x41, b_head)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.write_all(&frame(0x80, a_tail)).await.unwrap();
    assert_eq!(
        answer_of(read_frames(&mut a, 1).await.first()),
        text(&a_text)
    );
    // A fresh message on A while B is still half-sent.
    a.write_all(&frame(0xc1, &b_payload)).await.unwrap();
    assert_eq!(
        answer_of(read_frames(&mut a, 1).await.first()),
        text(&b_text)
    );
    b.write_all(&frame(0x80, b_tail)).await.unwrap();
    assert_eq!(
        answer_of(read_frames(&mut b, 1).await.first()),
        text(&b_text)
    );
}

#[tokio::test]
async fn invalid_utf8_in_a_compressed_binary_message_is_echoed() {
    let server = Server::start(&["--deflate"]);
    let data = [0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80].repeat(300);
    assert_eq!(
        first_answer(&server, &frame(0xc2, &compressed(&data))).await,
        Answer::Binary(data)
    );
}

#[tokio::test]
async fn with_a_threshold_of_0_every_data_reply_is_compressed_but_no_control_frame() {
    let server = Server::start(&["--deflate", "--deflate-threshold", "0"]);
    let mut stream = open(server.addr).await;
    let cases: [(&[u8], u8, &[u8]); 4] = [
        (&frame(0x82, b""), 0xc2, b""),
        (&frame(0xc2, &[0x00]), 0xc2, b""),
        (&frame(0x82, b"x"), 0xc2, b"x"),
        (&frame(0x81, b""), 0xc1, PREFIX.as_bytes()),
    ];
    for (wire, first, expected) in cases {
        stream.write_all(wire).await.unwrap();
        let frames = read_frames(&mut stream, 1).await;
        assert_eq!(frames[0].0, first, "{wire:x?}");
        assert_eq!(inflate(&frames[0].1, 15), expected, "{wire:x?}");
    }
    stream.write_all(&frame(0x89, b"ping")).await.unwrap();
    let frames = read_frames(&mut stream, 1).await;
    assert_eq!(frames[0], (0x8a, b"ping".to_vec()), "a plain pong");
    stream.write_all(&frame(0x88, &[0x03, 0xe8])).await.unwrap();
    let frames = read_frames(&mut stream, 1).await;
    assert_eq!(frames[0], (0x88, vec![0x03, 0xe8]), "a plain close");
}

/// What 100 connections keep, each, once each has echoed one 64 KiB message (compressed or
/// not, as `first` says) and gone idle, in KiB.
async fn kept_after_one_message(first: u8) -> u64 {
    let server = Server::start(&["--deflate"]);
    let count = 100;
    let data: Vec<u8> = (0..64 << 10).map(|i: u32| (i % 251) as u8).collect();
    let wire = if first & 0x40 != 0 {
        frame(first, &compressed(&data))
    } else {
        frame(first, &data)
    };
    let (mut streams, idle) = opened_and_settled(&server, count).await;
    for stream in &mut streams {
        stream.write_all(&wire).await.unwrap();
        let frames = read_frames(stream, 1).await;
        assert_eq!(frames.len(), 1);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (after, _) = server.memory_kib();
    after.saturating_sub(idle) / count as u64
}

#[tokio::test]
async fn a_connection_idle_after_a_compressed_message_keeps_no_more_than_after_a_plain_one() {
    let plain = kept_after_one_message(0x82).await;
    let compressed = kept_after_one_message(0xc2).await;
    eprintln!(
        "kept a connection after one 64 KiB message: {plain} KiB plain, {compressed} KiB compressed"
    );
    // The inflater goes back to the thread and the layer's buffers are freed: a few KiB of
    // noise at most.
    assert!(
        compressed <= plain + 16,
        "{compressed} KiB against {plain} KiB"
    );
}
