//! Failing a connection (RFC 6455 section 7.1.7): what the client reads before and after the
//! server's Close. Each test reproduces a fault that a raw-socket client once saw.

mod support;

use std::time::Duration;

use support::{Server, client_frame, close_code, opened, server_frames};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PONG: u8 = 0xa;

/// Writes `bytes` in one write on an opened connection and returns the frames the server
/// sends until it closes the connection.
async fn frames_after(stream: &mut TcpStream, bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the server closes within 5 s")
        .expect("the server closes cleanly, without a reset");
    server_frames(&answer)
}

/// The close code of the last frame, which must be a Close.
fn last_close_code(frames: &[(u8, Vec<u8>)]) -> Option<u16> {
    match frames.last() {
        Some((CLOSE, payload)) => close_code(payload),
        other => panic!("expected a Close last, got {other:?} in {frames:?}"),
    }
}

/// Fault 1 of issue 13: the UTF-8 guard threw away the whole read that held a bad frame,
/// and with it the good frames before it.
#[tokio::test]
async fn frames_before_bad_utf8_in_the_same_read_are_still_answered() {
    let server = Server::start(&[]);
    let bad = client_frame(0x80 | TEXT, &[0xff, 0xfe]);

    let mut stream = opened(server.addr).await;
    let frames = frames_after(
        &mut stream,
        &[client_frame(0x81, b"hello"), bad.clone()].concat(),
    )
    .await;
    assert_eq!(
        frames[0],
        (TEXT, b"Received:  hello".to_vec()),
        "{frames:?}"
    );
    assert_eq!(last_close_code(&frames), Some(1007));

    let mut stream = opened(server.addr).await;
    let frames = frames_after(&mut stream, &[client_frame(0x89, b"ping?"), bad].concat()).await;
    assert_eq!(frames[0], (PONG, b"ping?".to_vec()), "{frames:?}");
    assert_eq!(last_close_code(&frames), Some(1007));
}

/// Fault 3 of issue 13: a frame header that tungstenite rejects came in the same read as bad
/// UTF-8 after it, and the guard's 1007 replaced tungstenite's 1002 or 1009.
#[tokio::test]
async fn the_first_fault_in_the_stream_decides_the_close_code() {
    let server = Server::start(&["--max-message-size", "16"]);
    let bad = [0xffu8; 10];
    let cases: [(&str, Vec<u8>, u16); 5] = [
        ("reserved bit", client_frame(0x80 | 0x40 | TEXT, &bad), 1002),
        (
            "new message inside a fragmented one",
            [client_frame(TEXT, b"a"), client_frame(0x80 | TEXT, &bad)].concat(),
            1002,
        ),
        ("continuation of nothing", client_frame(0x80, &bad), 1002),
        (
            "frame over the limit",
            client_frame(0x80 | TEXT, &[0xff; 17]),
            1009,
        ),
        (
            "message over the limit",
            [client_frame(TEXT, b"abcdefghij"), client_frame(0x80, &bad)].concat(),
            1009,
        ),
    ];
    for (name, bytes, code) in cases {
        let mut stream = opened(server.addr).await;
        let frames = frames_after(&mut stream, &bytes).await;
        assert_eq!(last_close_code(&frames), Some(code), "{name}: {frames:?}");
    }
}

/// Fault 2 of issue 13: after a protocol error the server dropped the socket with unread data,
/// so the kernel reset the connection: a client still sending got ECONNRESET, and often never
/// read the 1009. Now it reads the Close and then the end of the stream, and its writes go
/// through.
#[tokio::test]
async fn a_client_still_sending_past_the_limit_reads_1009_then_a_clean_end() {
    let server = Server::start(&[]);
    let stream = opened(server.addr).await;
    let (mut reader, mut writer) = stream.into_split();
    let size = 8 << 20;
    let sending = tokio::spawn(async move {
        let header = client_frame(0x82, &[]);
        let mut header = header[..1].to_vec();
        header.push(0x80 | 127);
        header.extend_from_slice(&(size as u64).to_be_bytes());
        header.extend_from_slice(&[0; 4]);
        writer.write_all(&header).await?;
        let chunk = vec![0u8; 64 << 10];
        for _ in 0..size / chunk.len() {
            writer.write_all(&chunk).await?;
        }
        Ok::<_, std::io::Error>(writer)
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut answer));
    let read = read.await.expect("the server closes within 10 s");
    let frames = server_frames(&answer);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(last_close_code(&frames), Some(1009));
    read.expect("the Close is followed by a clean end of stream, not a reset");
    let sent = sending.await.unwrap();
    sent.expect("every write went through: the server read and discarded them");
}

/// After the server's own Close (here the `!close` test control) no data frame may follow
/// (RFC 6455 section 5.5.1): a message that arrives meanwhile goes unanswered, and the Close
/// still goes out.
#[tokio::test]
async fn nothing_is_echoed_after_the_servers_close() {
    let server = Server::start(&["--test-controls"]);
    let mut stream = opened(server.addr).await;
    let close = [0x0f, 0xa1]; // 4001
    let bytes = [
        client_frame(0x80 | TEXT, b"!close 4001 bye"),
        client_frame(0x80 | TEXT, b"after"),
        client_frame(0x80 | CLOSE, &close),
    ]
    .concat();
    let frames = frames_after(&mut stream, &bytes).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(last_close_code(&frames), Some(4001));
}
