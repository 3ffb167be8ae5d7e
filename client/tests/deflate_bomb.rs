//! A compression bomb sent to the native client (`Builder::deflate`), in a test binary of its
//! own so that the process's peak memory is this test's: a message that inflates to 1 GiB is
//! failed with 1009 once it passes the client's message size limit (64 MiB, tungstenite's
//! default, which the native transport keeps), and the process never holds much more than
//! that limit.

#![cfg(not(target_arch = "wasm32"))]

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use wasm_websocket::{Event, WebSocket};

#[path = "support/raw_server.rs"]
mod raw_server;
use raw_server::{RawServer, Sender, client_frame, server_frame};

/// The peak resident memory of this process (`VmHWM`), in KiB.
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn a_bomb_is_failed_with_1009_in_bounded_memory() {
    // 1 MiB of zeros deflated is about a kilobyte; sync-flushed pieces follow one another in
    // one DEFLATE stream, so 1,024 of them inflate to 1 GiB.
    let piece = [
        Sender::new(15).compress(&vec![0; 1 << 20]),
        vec![0, 0, 0xff, 0xff],
    ]
    .concat();
    let mut bomb = piece.repeat(1024);
    bomb.truncate(bomb.len() - 4);
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let before = peak_kib();

    let server = RawServer::start().await;
    let url = server.url();
    let serving = async {
        let (socket, _) = server.accept("permessage-deflate").await;
        let (mut read, mut write) = socket.into_split();
        // Written on its own: the client stops reading when it fails the connection.
        let frame = server_frame(0xc2, &bomb);
        let writing = tokio::spawn(async move { write.write_all(&frame).await });
        let mut buffered = Vec::new();
        let (first, payload) = client_frame(&mut read, &mut buffered).await;
        writing.abort();
        assert_eq!(first & 0x0f, 0x8, "a Close");
        u16::from_be_bytes([payload[0], payload[1]])
    };
    let local = tokio::task::LocalSet::new();
    let client = local.run_until(async {
        let socket = WebSocket::builder(url).deflate().connect().unwrap();
        let mut events = socket.events();
        let mut received = 0;
        loop {
            match events.next().await {
                Some(Event::Message(_)) => received += 1,
                Some(Event::Close(close)) => return (close, received),
                Some(_) => {}
                None => panic!("no close"),
            }
        }
    });
    let (code, (close, received)) = tokio::join!(serving, client);
    assert_eq!(code, 1009, "the Close the client sent");
    // The client failed the connection: no Close came back, so 1006, as a browser says.
    assert_eq!(
        (close.code, close.was_clean, received),
        (1006, false, 0),
        "{close}"
    );
    let peak = peak_kib();
    eprintln!("peak resident memory: {before} KiB before, {peak} KiB after");
    // The limit, once (tungstenite's message under way), and some room: far from 1 GiB.
    assert!(peak < 160 << 10, "{peak} KiB at the peak");
}
