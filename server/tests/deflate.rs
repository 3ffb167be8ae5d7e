//! permessage-deflate against the real server (`--deflate`), in raw frames: negotiation,
//! compressed echo both ways, and compression bombs, each answered with 1009 while the server's
//! memory stays bounded and another client is still served.

mod support;

use flate2::FlushCompress;
use futures_util::{SinkExt, StreamExt};
use support::{Server, client_frame, close_code, opened_with, read_frames};
use test_support::deflate::{compressed, deflate, inflate};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

/// What Chromium offers.
const CHROMIUM_OFFER: &str =
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

/// Peak server memory allowed through a bomb: what the other attacks are allowed.
const MEMORY_LIMIT_MIB: u64 = 64;

/// The `Sec-WebSocket-Extensions` value of an answer, if any.
fn extensions(answer: &str) -> Option<&str> {
    answer.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-extensions")
            .then(|| value.trim())
    })
}

#[tokio::test]
async fn chromiums_offer_is_accepted_and_messages_echo_compressed_both_ways() {
    let server = Server::start(&["--deflate"]);
    let (mut stream, answer) = opened_with(server.addr, CHROMIUM_OFFER).await;
    assert_eq!(
        extensions(&answer),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    let text = "{\"id\": 1, \"name\": \"echo\", \"tags\": [\"a\", \"b\"]} ".repeat(100);
    // Compressed, in two fragments with a ping between, then a short plain message.
    let payload = compressed(text.as_bytes());
    let (head, tail) = payload.split_at(payload.len() / 2);
    stream.write_all(&client_frame(0x41, head)).await.unwrap();
    stream.write_all(&client_frame(0x89, b"hi")).await.unwrap();
    stream.write_all(&client_frame(0x80, tail)).await.unwrap();
    stream
        .write_all(&client_frame(0x81, b"short"))
        .await
        .unwrap();
    let frames = read_frames(&mut stream, 3).await;
    assert_eq!(frames[0], (0x8a, b"hi".to_vec()), "the pong");
    let (first, reply) = &frames[1];
    assert_eq!(*first, 0xc1, "one final text frame with RSV1");
    assert!(reply.len() < text.len() / 5, "{} bytes", reply.len());
    let expected = format!("Received:  {text}");
    assert_eq!(inflate(reply, 15), expected.as_bytes());
    assert_eq!(
        frames[2],
        (0x81, b"Received:  short".to_vec()),
        "under the threshold: plain"
    );
}

#[tokio::test]
async fn without_deflate_or_an_acceptable_offer_rsv1_gets_1002() {
    let plain = Server::start(&[]);
    let declined = Server::start(&["--deflate"]);
    let offer_8 = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8\r\n";
    for (server, offer) in [(&plain, CHROMIUM_OFFER), (&declined, offer_8)] {
        let (mut stream, answer) = opened_with(server.addr, offer).await;
        assert_eq!(extensions(&answer), None, "{answer}");
        stream
            .write_all(&client_frame(0xc1, &compressed(b"hello")))
            .await
            .unwrap();
        let frames = read_frames(&mut stream, 1).await;
        assert_eq!(frames[0].0, 0x88);
        assert_eq!(close_code(&frames[0].1), Some(1002));
    }
}

#[tokio::test]
async fn corrupt_compressed_data_gets_1007() {
    let server = Server::start(&["--deflate"]);
    let (mut stream, _) = opened_with(server.addr, CHROMIUM_OFFER).await;
    stream
        .write_all(&client_frame(0xc2, &[0xff; 64]))
        .await
        .unwrap();
    let frames = read_frames(&mut stream, 1).await;
    assert_eq!(close_code(&frames[0].1), Some(1007));
}

/// A DEFLATE stream of `segments` MiB of zeros: one MiB ending in a full flush (which forgets
/// the window, so the next segment compresses to the same bytes), repeated. About 1 KiB a
/// MiB, the most DEFLATE can shrink anything.
fn zeros_bomb(segments: usize) -> Vec<u8> {
    let segment = deflate(&vec![0; 1 << 20], 15, FlushCompress::Full);
    segment.repeat(segments)
}

/// Sends `bomb` (client frames) on a deflate connection while another client talks, and
/// checks the answer is 1009, the other client still served and the memory bounded.
async fn assert_defused(server: &Server, bomb: &[u8]) {
    let mut bystander = server.connect().await;
    bystander.send("before".into()).await.unwrap();
    let (mut stream, _) = opened_with(server.addr, CHROMIUM_OFFER).await;
    // The server answers after about a KiB of it; the rest it reads and discards.
    stream.write_all(bomb).await.unwrap();
    let frames = read_frames(&mut stream, 1).await;
    assert_eq!(frames[0].0, 0x88, "a Close");
    assert_eq!(close_code(&frames[0].1), Some(1009));
    bystander.send("after".into()).await.unwrap();
    for expected in ["Received:  before", "Received:  after"] {
        let reply = bystander.next().await.unwrap().unwrap();
        assert_eq!(reply, Message::text(expected));
    }
    server.assert_healthy(MEMORY_LIMIT_MIB).await;
}

#[tokio::test]
async fn a_frame_that_inflates_to_a_gigabyte_gets_1009_with_memory_bounded() {
    let server = Server::start(&["--deflate"]);
    let bomb = zeros_bomb(1024);
    assert!(bomb.len() < 1100 << 10, "{} bytes", bomb.len());
    // A segment really inflates to what it claims.
    assert_eq!(inflate(&bomb[..bomb.len() / 1024], 15), vec![0; 1 << 20]);
    assert_defused(&server, &client_frame(0xc2, &bomb)).await;
}

#[tokio::test]
async fn a_bomb_over_many_small_continuations_gets_1009_with_memory_bounded() {
    let server = Server::start(&["--deflate"]);
    let bomb = zeros_bomb(64);
    let mut frames = Vec::new();
    for (index, piece) in bomb.chunks(16).enumerate() {
        let first = if index == 0 { 0x42 } else { 0x00 };
        frames.extend(client_frame(first, piece));
    }
    assert_defused(&server, &frames).await;
}
