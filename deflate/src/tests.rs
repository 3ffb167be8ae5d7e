//! The deflate layer's unit tests: negotiation, inflating reads, compression; a server's
//! first, then a client's.

use super::compress::*;
use super::inflate::*;
use super::negotiate::*;
use super::*;
use crate::frame_header;
use http::header::{HeaderMap, HeaderValue, SEC_WEBSOCKET_EXTENSIONS};
use std::io::{self, Cursor};
use std::pin::Pin;
use std::task::{Context, Poll};
use test_support::deflate::{compressed_with_window, inflate};
use test_support::rng::Rng;
use tokio::io::AsyncReadExt;
use tokio::io::{AsyncRead, ReadBuf};
use tungstenite::Message;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::OpCode;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};

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

const PLAIN: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

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
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Runs `wire` through a server's layer in random read sizes; what it hands up, or the error.
async fn through_layer(
    wire: Vec<u8>,
    rng: &mut Rng,
    max_size: usize,
) -> (Vec<u8>, Option<io::Error>) {
    through_layer_as(Reading::server(max_size), wire, rng).await
}

/// [`through_layer`] for any end of the connection.
async fn through_layer_as(
    reading: Reading,
    wire: Vec<u8>,
    rng: &mut Rng,
) -> (Vec<u8>, Option<io::Error>) {
    let split = wire.len().min(rng.below(40));
    let already_read = wire[..split].to_vec();
    let pieces = Pieces {
        data: wire[split..].to_vec(),
        at: 0,
        rng: rng.fork(),
    };
    let mut layer = Inflate::new(pieces, Some(reading), already_read);
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
                    rng.next_u64() as u8
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
        compressed_with_window(&data, 9 + rng.below(7) as u8)
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
        let mask = (rng.next_u64() as u32).to_be_bytes();
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
        let mut rng = Rng::new(seed);
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
            let (header, length, size) = frame_header::parse(rest).unwrap().unwrap();
            assert!(!header.rsv1, "seed {seed}");
            if header.mask == Some([0; 4]) {
                assert!(length as usize <= CHUNK, "seed {seed}: {length}");
            }
            rest = &rest[size + length as usize..];
        }
        assert_eq!(tungstenite_reads(plain), messages, "seed {seed}");
    }
}

#[tokio::test]
async fn rsv1_where_it_does_not_belong_reaches_tungstenite_unchanged() {
    let mut rng = Rng::new(7);
    let compressed = compressed_with_window(b"hello hello hello", 15);
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
            matches!(failed, tungstenite::Error::Protocol(_)),
            "{wire:x?}: {failed}"
        );
    }
}

#[tokio::test]
async fn a_bomb_fails_one_chunk_past_the_limit_and_bad_data_as_corrupt() {
    let mut rng = Rng::new(3);
    let limit = 1 << 20;
    let zeros = vec![0u8; 64 << 20];
    let bomb = compressed_with_window(&zeros, 15);
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
    assert_eq!(inflate(frame.payload(), 10), text.as_bytes());

    let short = Message::text("short");
    assert_eq!(compress(short.clone(), deflate, 1024), short);
    assert_eq!(
        compress(Message::text(text.clone()), None, 0),
        Message::text(text)
    );
    // Random bytes do not shrink: plain, unless every message is to be compressed.
    let noise = Rng::new(5).bytes(4096);
    let binary = Message::binary(noise);
    assert_eq!(compress(binary.clone(), deflate, 1024), binary);
    assert!(matches!(compress(binary, deflate, 0), Message::Frame(_)));
}

/// Found by the `deflate` fuzz target: a compressed message that inflates past the limit
/// before its data turns corrupt failed as too big (1009) when it came in one read, but as
/// corrupt (1007) when its first 40 bytes came with the handshake: the bytes an inflate call
/// made before it failed were not counted against the limit. The first fault in the stream
/// decides, however its bytes arrive.
#[tokio::test]
async fn regression_too_big_then_corrupt_is_too_big_however_the_bytes_arrive() {
    let wire: Vec<u8> = vec![
        0xc1, 0xb9, 0xff, 0x00, 0x00, 0x00, 0x9d, 0x78, 0xbf, 0x7f, 0x50, 0xee, 0x28, 0x31, 0xe5,
        0x06, 0xa3, 0xe9, 0x9f, 0x34, 0x1b, 0x8c, 0xe9, 0x05, 0xa1, 0x25, 0x1e, 0x68, 0x49, 0x38,
        0xa5, 0x12, 0x8e, 0x96, 0x7b, 0xa3, 0x25, 0xe1, 0x97, 0x49, 0x38, 0x5a, 0xed, 0x8e, 0x96,
        0x84, 0x5c, 0x25, 0xe1, 0x68, 0xb6, 0x38, 0x5a, 0x12, 0x71, 0x96, 0x84, 0x80, 0x2e, 0xb5,
        0x24, 0x04, 0xff, 0x88, 0x82, 0x07, 0x07, 0x07, 0x07, 0x04, 0xef,
    ];
    for split in 0..wire.len() {
        let (already_read, rest) = wire.split_at(split);
        let reading = Some(Reading::server(125));
        let mut layer = Inflate::new(rest, reading, already_read.to_vec());
        let mut buffer = [0; 512];
        let error = loop {
            match layer.read(&mut buffer).await {
                Ok(0) => panic!("split at {split}: the stream ended without an error"),
                Ok(_) => {}
                Err(error) => break error,
            }
        };
        let failure = inflate_error(&error);
        assert_eq!(failure, Some(&InflateError::TooBig), "split at {split}");
    }
}

// A client's side.

/// The reader's size, which every idle connection with the extension on holds (boxed).
#[test]
fn an_idle_reader_is_112_bytes() {
    assert!(
        std::mem::size_of::<super::reader::Reader>() <= 112,
        "{}",
        std::mem::size_of::<super::reader::Reader>()
    );
}

fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        is_final: first & 0x80 != 0,
        rsv1: first & 0x40 != 0,
        opcode: OpCode::from(first & 0x0f),
        ..FrameHeader::default()
    };
    let mut frame = Vec::new();
    header.format(payload.len() as u64, &mut frame).unwrap();
    frame.extend_from_slice(payload);
    frame
}

/// A server's compressor, kept between its messages (context takeover) or made anew for
/// each.
struct ServerDeflate {
    kept: Option<flate2::Compress>,
    bits: u8,
}

impl ServerDeflate {
    /// One message's payload: sync-flushed, its tail left off.
    fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let Some(compress) = self.kept.as_mut() else {
            return compressed_with_window(data, self.bits);
        };
        let mut out = Vec::with_capacity(data.len() + 64);
        let start = compress.total_in();
        loop {
            let used = (compress.total_in() - start) as usize;
            let flush = flate2::FlushCompress::Sync;
            compress
                .compress_vec(&data[used..], &mut out, flush)
                .unwrap();
            if (compress.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity());
        }
        // An empty message after a flush: zlib has nothing to write, and the payload is
        // empty (Python's `websockets` sends that).
        if out.is_empty() {
            return out;
        }
        assert!(out.ends_with(&TAIL));
        out.truncate(out.len() - TAIL.len());
        out
    }
}

/// The server's frames for `message`, compressed most of the time, cut into random
/// fragments with pings between them.
fn encode_server(
    message: &Message,
    rng: &mut Rng,
    deflate: &mut ServerDeflate,
    wire: &mut Vec<u8>,
) {
    let (opcode, data) = match message {
        Message::Text(text) => (0x1, text.as_str().as_bytes().to_vec()),
        Message::Binary(data) => (0x2, data.to_vec()),
        _ => unreachable!(),
    };
    let compressed = rng.below(4) != 0;
    let payload = if compressed {
        deflate.compress(&data)
    } else {
        data
    };
    let pieces = 1 + rng.below(5);
    let mut cuts: Vec<usize> = (1..pieces).map(|_| rng.below(payload.len() + 1)).collect();
    cuts.sort();
    cuts.insert(0, 0);
    cuts.push(payload.len());
    for (index, range) in cuts.windows(2).enumerate() {
        let (first, last) = (index == 0, index + 2 == cuts.len());
        let mut byte = if first { opcode } else { 0x0 };
        if last {
            byte |= 0x80;
        }
        if first && compressed {
            byte |= 0x40;
        }
        wire.extend(server_frame(byte, &payload[range[0]..range[1]]));
        if !last && rng.below(4) == 0 {
            wire.extend(server_frame(0x89, b"ping"));
        }
    }
}

/// What plain tungstenite reads from `bytes` as a client, up to the Close.
fn tungstenite_reads_as_client(bytes: Vec<u8>) -> Result<Vec<Message>, tungstenite::Error> {
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let replay = Replay(Cursor::new(bytes));
    let mut socket = WebSocket::from_raw_socket(replay, Role::Client, Some(config));
    let mut messages = Vec::new();
    loop {
        match socket.read()? {
            Message::Close(_) => return Ok(messages),
            Message::Ping(_) => {}
            message => messages.push(message),
        }
    }
}

fn client_reading(context_takeover: bool) -> Reading {
    Reading {
        role: Role::Client,
        max_message_size: usize::MAX,
        context_takeover,
    }
}

#[tokio::test]
async fn a_client_layer_hands_tungstenite_what_the_server_compressed_with_its_window_or_not() {
    for seed in 0..120 {
        let mut rng = Rng::new(seed);
        // Half the servers keep their window between messages.
        let takeover = seed % 2 == 0;
        let bits = 9 + rng.below(7) as u8;
        let kept = takeover.then(|| {
            flate2::Compress::new_with_window_bits(flate2::Compression::new(6), false, bits)
        });
        let mut deflate = ServerDeflate { kept, bits };
        let messages: Vec<Message> = (0..1 + rng.below(8))
            .map(|_| random_message(&mut rng))
            .collect();
        let mut wire = Vec::new();
        for message in &messages {
            encode_server(message, &mut rng, &mut deflate, &mut wire);
        }
        wire.extend(server_frame(0x88, &[0x03, 0xe8]));
        let reading = client_reading(takeover);
        let (plain, error) = through_layer_as(reading, wire, &mut rng).await;
        assert!(error.is_none(), "seed {seed}: {error:?}");
        // Unmasked, as a server's frames must be, and without RSV1.
        let mut rest = &plain[..];
        while !rest.is_empty() {
            let (header, length, size) = frame_header::parse(rest).unwrap().unwrap();
            assert!(!header.rsv1 && header.mask.is_none(), "seed {seed}");
            rest = &rest[size + length as usize..];
        }
        let read = tungstenite_reads_as_client(plain);
        assert_eq!(read.unwrap(), messages, "seed {seed}");
    }
}

#[tokio::test]
async fn a_window_kept_where_none_was_agreed_is_corrupt_data() {
    let mut rng = Rng::new(11);
    let kept = flate2::Compress::new_with_window_bits(flate2::Compression::new(6), false, 15);
    let mut deflate = ServerDeflate {
        kept: Some(kept),
        bits: 15,
    };
    let text = "the same words again and again, ".repeat(50);
    let mut wire = server_frame(0xc1, &deflate.compress(text.as_bytes()));
    // The second refers to the first, which the client's reset inflater no longer has.
    wire.extend(server_frame(0xc1, &deflate.compress(text.as_bytes())));
    let (_, error) = through_layer_as(client_reading(false), wire.clone(), &mut rng).await;
    assert_eq!(inflate_error(&error.unwrap()), Some(&InflateError::Corrupt));
    // Agreed, the same bytes read as sent.
    wire.extend(server_frame(0x88, &[0x03, 0xe8]));
    let (plain, error) = through_layer_as(client_reading(true), wire, &mut rng).await;
    assert!(error.is_none());
    let read = tungstenite_reads_as_client(plain).unwrap();
    assert_eq!(read, [Message::text(text.clone()), Message::text(text)]);
}

#[tokio::test]
async fn a_client_passes_a_masked_compressed_frame_on_for_tungstenite_to_fail() {
    let mut rng = Rng::new(5);
    let compressed = compressed_with_window(b"hello hello hello", 15);
    let wire = client_frame(0xc1, &compressed, [1, 2, 3, 4]);
    let (plain, error) = through_layer_as(client_reading(false), wire.clone(), &mut rng).await;
    assert!(error.is_none());
    assert_eq!(plain, wire, "unchanged");
    let failed = tungstenite_reads_as_client(plain).unwrap_err();
    assert!(
        matches!(failed, tungstenite::Error::Protocol(_)),
        "{failed}"
    );
}

#[tokio::test]
async fn a_bomb_from_the_server_fails_one_chunk_past_the_clients_limit() {
    let mut rng = Rng::new(3);
    let limit = 1 << 20;
    let bomb = compressed_with_window(&vec![0u8; 64 << 20], 15);
    for takeover in [false, true] {
        let reading = Reading {
            max_message_size: limit,
            ..client_reading(takeover)
        };
        let wire = server_frame(0xc2, &bomb);
        let (plain, error) = through_layer_as(reading, wire, &mut rng).await;
        assert_eq!(
            inflate_error(&error.expect("the read fails")),
            Some(&InflateError::TooBig)
        );
        assert!(plain.len() <= limit + CHUNK, "{} bytes", plain.len());
    }
}

#[test]
fn a_clients_compressor_keeps_no_window_and_honours_the_servers_limit() {
    let text = "{\"id\": 17, \"name\": \"echo\", \"tags\": [\"a\", \"b\"]} ".repeat(300);
    let mut compressor = Compressor::new(9);
    for _ in 0..2 {
        // Each message inflates alone, with a 9-bit window: nothing of the last one is kept.
        let Message::Frame(frame) = compressor.compress(Message::text(text.clone()), 0) else {
            panic!("not compressed");
        };
        assert!(frame.header().rsv1 && frame.header().is_final);
        assert!(frame.payload().len() < text.len() / 5);
        assert_eq!(inflate(frame.payload(), 9), text.as_bytes());
    }
    // A threshold of 0 compresses even what does not shrink; above it, small ones go plain.
    let short = Message::text("hi");
    assert!(matches!(
        compressor.compress(short.clone(), 0),
        Message::Frame(_)
    ));
    assert_eq!(compressor.compress(short.clone(), 1024), short);
    // zlib cannot deflate with 8 bits: a server that asks for them gets plain messages.
    let mut eight = Compressor::new(8);
    let plain = Message::text(text);
    assert_eq!(eight.compress(plain.clone(), 0), plain);
}

/// What a client reads in an answer.
type Answered = Result<Option<Agreed>, ResponseError>;

/// The server's answer `values` to the client's [`OFFER`], read.
fn answer(values: &[&str]) -> Answered {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(
            SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_str(value).unwrap(),
        );
    }
    accept_response(&headers, true)
}

#[test]
fn a_client_accepts_exactly_the_answers_rfc_7692_allows() {
    let agreed = |client_window_bits, server_context_takeover| {
        Ok(Some(Agreed {
            client_window_bits,
            server_context_takeover,
        }))
    };
    let unknown = |name: &str| Err(ResponseError::UnknownParameter(name.into()));
    let invalid = |name: &str| Err(ResponseError::InvalidValue(name.into()));
    let table: &[(&[&str], Answered)] = &[
        (&[], Ok(None)),
        (&[""], Ok(None)),
        (&["permessage-deflate"], agreed(15, true)),
        // What the echo server answers, and Node's `ws`.
        (
            &["permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
            agreed(15, false),
        ),
        (
            &["permessage-deflate;client_max_window_bits=\"9\" ; server_max_window_bits=12"],
            agreed(9, true),
        ),
        (
            &["permessage-deflate; client_max_window_bits=8"],
            agreed(8, true),
        ),
        (
            &["permessage-deflate; server_max_window_bits=8"],
            agreed(15, true),
        ),
        // Refused: unknown, repeated or invalid parameters; several answers; others.
        (&["permessage-deflate; mystery"], unknown("mystery")),
        (&["permessage-deflate; ;"], unknown("")),
        (
            &["permessage-deflate; client_max_window_bits"],
            invalid("client_max_window_bits"),
        ),
        (
            &["permessage-deflate; server_max_window_bits"],
            invalid("server_max_window_bits"),
        ),
        (
            &["permessage-deflate; server_max_window_bits=7"],
            invalid("server_max_window_bits"),
        ),
        (
            &["permessage-deflate; client_max_window_bits=16"],
            invalid("client_max_window_bits"),
        ),
        (
            &["permessage-deflate; client_max_window_bits=\"1\"0"],
            invalid("client_max_window_bits"),
        ),
        (
            &["permessage-deflate; server_no_context_takeover=\"\""],
            invalid("server_no_context_takeover"),
        ),
        (
            &["permessage-deflate; client_no_context_takeover=x"],
            invalid("client_no_context_takeover"),
        ),
        (
            &["permessage-deflate; server_max_window_bits=9; server_max_window_bits=9"],
            Err(ResponseError::RepeatedParameter(
                "server_max_window_bits".into(),
            )),
        ),
        (
            &["permessage-deflate", "permessage-deflate"],
            Err(ResponseError::Repeated),
        ),
        (
            &["x-webkit-deflate-frame"],
            Err(ResponseError::NotOffered("x-webkit-deflate-frame".into())),
        ),
        (
            &["permessage-deflate, foo; a=\"x,y\""],
            Err(ResponseError::NotOffered("foo; a=\"x,y\"".into())),
        ),
    ];
    for (values, expected) in table {
        assert_eq!(&answer(values), expected, "{values:?}");
    }
    // Nothing offered, nothing may be answered.
    let mut headers = HeaderMap::new();
    assert_eq!(accept_response(&headers, false), Ok(None));
    headers.insert(
        SEC_WEBSOCKET_EXTENSIONS,
        HeaderValue::from_static("permessage-deflate"),
    );
    assert_eq!(
        accept_response(&headers, false),
        Err(ResponseError::NotOffered("permessage-deflate".into()))
    );
    let unreadable = HeaderValue::from_bytes(b"permessage-deflate; \xff").unwrap();
    headers.insert(SEC_WEBSOCKET_EXTENSIONS, unreadable);
    assert_eq!(
        accept_response(&headers, true),
        Err(ResponseError::Unreadable)
    );
}

/// Every answer the server side gives is one the client side accepts, as agreed: the two
/// ends of this crate speak to each other.
#[test]
fn the_servers_answers_are_accepted_by_the_client() {
    for offer in [
        OFFER,
        "permessage-deflate",
        "permessage-deflate; server_max_window_bits=10",
    ] {
        let mut headers = HeaderMap::new();
        headers.insert(SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_static(offer));
        let (_, response) = negotiate(&headers).unwrap();
        let answered = answer(&[response.to_str().unwrap()]);
        assert_eq!(
            answered,
            Ok(Some(Agreed {
                client_window_bits: 15,
                server_context_takeover: false
            }))
        );
    }
}
