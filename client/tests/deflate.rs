//! permessage-deflate natively (`Builder::deflate`): against the echo server in-process with
//! `deflate` on (its `--deflate`), through a relay that counts the bytes each way, so that
//! compression is seen on the wire in both directions; large messages, text and binary; and
//! against small servers written here in raw bytes, for what the echo server never sends: a
//! compressed message in fragments between pings, messages that use the window of the ones
//! before (context takeover), a window size asked of the client, answers the client must
//! refuse (typed errors), and corrupt data. Reconnection, the queue and the heartbeat with
//! compression on. The bomb is `deflate_bomb.rs`'s, in a process of its own.

#![cfg(not(target_arch = "wasm32"))]

#[path = "support/skip.rs"]
mod skip;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flate2::{Decompress, FlushDecompress};
use futures_util::StreamExt;
use skip::{next_close, next_open};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wasm_websocket::{
    CloseCause, Error, Event, Events, Heartbeat, Message, Reconnect, Sent, WebSocket,
};

#[path = "support/raw_server.rs"]
mod raw_server;
use raw_server::{RawServer, Sender, client_frame, server_frame};

/// The echo server's settings here: deflate on, its test controls, room for large messages.
fn deflate_config() -> wsecho::Config {
    wsecho::Config {
        deflate: true,
        test_controls: true,
        max_message_size: 32 << 20,
        ..wsecho::Config::default()
    }
}

/// The echo server, in-process on this test's runtime; its port.
async fn serve(config: wsecho::Config) -> u16 {
    let listener = wsecho::listen("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(wsecho::serve(listener, config, std::future::pending()));
    port
}

async fn local<F: Future>(body: F) -> F::Output {
    tokio::task::LocalSet::new().run_until(body).await
}

/// A TCP relay in front of a server, counting the bytes each way.
struct Relay {
    port: u16,
    /// Bytes from the clients to the server, and back.
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
}

impl Relay {
    async fn start(to: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let counts = (up.clone(), down.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(("127.0.0.1", to)).await.unwrap();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, counts.0.clone()));
                tokio::spawn(pump(server_read, client_write, counts.1.clone()));
            }
        });
        Relay { port, up, down }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// The bytes relayed so far: up, down.
    fn bytes(&self) -> (u64, u64) {
        (
            self.up.load(Ordering::SeqCst),
            self.down.load(Ordering::SeqCst),
        )
    }
}

/// Copies `from` to `to`, counting, until either ends.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    count: Arc<AtomicU64>,
) {
    let mut buffer = vec![0; 64 << 10];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                count.fetch_add(n as u64, Ordering::SeqCst);
                if to.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// Text that compresses as JSON does: `len` bytes of records that repeat with variations.
fn json_like(len: usize) -> String {
    let mut text = String::with_capacity(len + 64);
    let mut id = 0u64;
    while text.len() < len {
        id += 1;
        text.push_str(&format!(
            "{{\"id\":{id},\"name\":\"user {}\",\"tags\":[\"ä\",\"b\"],\"ok\":{}}},",
            id % 97,
            id % 3 == 0
        ));
    }
    text.truncate(len);
    text
}

/// Bytes that compress: a pattern with a little noise.
fn patterned(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            if i % 61 == 0 {
                (i / 61) as u8
            } else {
                (i % 11) as u8
            }
        })
        .collect()
}

/// The next message among `events`, skipping the rest; `None` once the socket closed.
async fn next_message(events: &mut Events) -> Option<Message> {
    loop {
        match events.next().await? {
            Event::Message(message) => return Some(message),
            Event::Close(_) => return None,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn messages_go_compressed_both_ways_text_and_binary_small_and_large() {
    let relay = Relay::start(serve(deflate_config()).await).await;
    let sent = local(async {
        let socket = WebSocket::builder(relay.url())
            .deflate()
            .open()
            .await
            .unwrap();
        assert_eq!(
            socket.extensions(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        let mut events = socket.events();
        let text = json_like(300_000);
        let binary = patterned(300_000);
        // 16 MiB: many of the inflater's chunks, and past tungstenite's read buffer.
        let large = json_like(16 << 20);
        let mut sent = 0;
        for message in [
            Message::Text(text.clone()),
            Message::Binary(binary.clone().into()),
            Message::Text("short".into()),
            Message::Text(large.clone()),
        ] {
            sent += match &message {
                Message::Text(text) => text.len(),
                Message::Binary(data) => data.len(),
            };
            socket.send(message).unwrap();
        }
        let expected = [
            Message::Text(format!("Received:  {text}")),
            Message::Binary(binary.into()),
            Message::Text("Received:  short".into()),
            Message::Text(format!("Received:  {large}")),
        ];
        for expected in expected {
            assert_eq!(next_message(&mut events).await.as_ref(), Some(&expected));
        }
        socket.close().unwrap();
        next_close(&mut events).await;
        sent as u64
    })
    .await;
    // JSON-like text compresses more than fivefold at zlib's fastest level, and the
    // handshake and the short message are a few hundred bytes.
    let (up, down) = relay.bytes();
    assert!(up < sent / 5, "{up} bytes up for {sent} sent");
    assert!(down < sent / 5, "{down} bytes down for {sent} echoed");
}

#[tokio::test(flavor = "current_thread")]
async fn without_deflate_nothing_is_offered_or_compressed() {
    let relay = Relay::start(serve(deflate_config()).await).await;
    let sent = json_like(100_000);
    local(async {
        let socket = WebSocket::open(relay.url()).await.unwrap();
        assert_eq!(socket.extensions(), "");
        let mut messages = socket.messages();
        socket.send(sent.as_str()).unwrap();
        let echoed = Some(Message::Text(format!("Received:  {sent}")));
        assert_eq!(messages.next().await, echoed);
        socket.close().unwrap();
        while messages.next().await.is_some() {}
    })
    .await;
    let (up, down) = relay.bytes();
    assert!(
        up > sent.len() as u64 && down > sent.len() as u64,
        "{up} {down}"
    );
}

/// Inflates a client's compressed payload.
fn inflate(payload: &[u8]) -> Vec<u8> {
    let input = [payload, &[0, 0, 0xff, 0xff]].concat();
    let mut inflater = Decompress::new(false);
    let mut out = Vec::with_capacity(payload.len() * 8 + 64);
    loop {
        let used = inflater.total_in() as usize;
        (inflater.decompress_vec(&input[used..], &mut out, FlushDecompress::Sync))
            .expect("sound DEFLATE data");
        if inflater.total_in() as usize == input.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity());
    }
}

#[tokio::test(flavor = "current_thread")]
async fn fragmented_messages_with_the_servers_window_kept_between_them() {
    let server = RawServer::start().await;
    let url = server.url();
    let first = json_like(50_000);
    // The end of the first again: the window kept from it finds all of it.
    let cut = (30_000..).find(|&at| first.is_char_boundary(at)).unwrap();
    let second = first[cut..].to_owned();
    let binary = patterned(70_000);
    let serving = async {
        // No `server_no_context_takeover`: the server keeps its window between messages.
        let (mut socket, offer) = server.accept("permessage-deflate").await;
        assert_eq!(
            offer,
            "permessage-deflate; client_no_context_takeover; client_max_window_bits"
        );
        let mut sender = Sender::new(15);
        let mut wire = Vec::new();
        // The first in three fragments, a ping between two of them.
        let payload = sender.compress(first.as_bytes());
        let (a, rest) = payload.split_at(payload.len() / 3);
        let (b, c) = rest.split_at(rest.len() / 2);
        wire.extend(server_frame(0x41, a));
        wire.extend(server_frame(0x00, b));
        wire.extend(server_frame(0x89, b"between"));
        wire.extend(server_frame(0x80, c));
        // The second, with the window of the first: far smaller than alone.
        let payload = sender.compress(second.as_bytes());
        let alone = Sender::new(15).compress(second.as_bytes());
        assert!(
            payload.len() * 4 < alone.len(),
            "{} {}",
            payload.len(),
            alone.len()
        );
        wire.extend(server_frame(0xc1, &payload));
        // A plain message between compressed ones; then binary, in many small fragments.
        wire.extend(server_frame(0x81, b"plain"));
        let payload = sender.compress(&binary);
        let pieces: Vec<&[u8]> = payload.chunks(100).collect();
        for (index, piece) in pieces.iter().enumerate() {
            let fin = if index + 1 == pieces.len() { 0x80 } else { 0 };
            let opcode = if index == 0 { 0x42 } else { 0x00 };
            wire.extend(server_frame(fin | opcode, piece));
        }
        // An empty compressed message: the first byte of an empty block, the rest of which
        // is the tail (RFC 7692 section 7.2.3.6).
        wire.extend(server_frame(0xc1, &[0x00]));
        socket.write_all(&wire).await.unwrap();
        // The pong, then the client's Close, echoed.
        let mut buffered = Vec::new();
        let (pong, data) = client_frame(&mut socket, &mut buffered).await;
        assert_eq!((pong, data.as_slice()), (0x8a, &b"between"[..]));
        let (close, _) = client_frame(&mut socket, &mut buffered).await;
        assert_eq!(close & 0x0f, 0x8);
        socket
            .write_all(&server_frame(0x88, &[0x03, 0xe8]))
            .await
            .unwrap();
    };
    let client = local(async {
        let socket = WebSocket::builder(url).deflate().connect().unwrap();
        let mut events = socket.events();
        next_open(&mut events).await;
        assert_eq!(socket.extensions(), "permessage-deflate");
        let mut received = Vec::new();
        for _ in 0..5 {
            received.push(next_message(&mut events).await.unwrap());
        }
        socket.close().unwrap();
        let close = next_close(&mut events).await;
        assert_eq!((close.code, close.was_clean), (1000, true), "{close}");
        received
    });
    let ((), received) = tokio::join!(serving, client);
    assert_eq!(
        received,
        [
            Message::Text(first),
            Message::Text(second),
            Message::Text("plain".into()),
            Message::Binary(binary.into()),
            Message::Text(String::new()),
        ]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_client_compresses_with_the_window_the_server_asks_for() {
    let server = RawServer::start().await;
    let url = server.url();
    // 200 random bytes three times make a block of 600, which repeats 25 times: a 9-bit
    // window (512 bytes, of which zlib reaches 250 back) finds the repeats 200 bytes back, a
    // 15-bit one those 600 bytes back too.
    let random: Vec<u8> = (0..200u64)
        .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8)
        .collect();
    let message = random.repeat(3).repeat(25);
    let with_15_bits = Sender::new(15).compress(&message).len();
    let with_9_bits = Sender::new(9).compress(&message).len();
    assert!(
        with_15_bits < 1_000 && with_9_bits > 5_000,
        "{with_15_bits} {with_9_bits}"
    );
    let serving = async {
        let answer = "permessage-deflate; client_max_window_bits=9";
        let (mut socket, _) = server.accept(answer).await;
        let mut buffered = Vec::new();
        let (first, payload) = client_frame(&mut socket, &mut buffered).await;
        assert_eq!(first, 0xc2, "one final binary frame with RSV1");
        // Compressed (15,000 bytes), but without the repeats a 9-bit window cannot reach.
        assert!(payload.len() > 5_000, "{} bytes", payload.len());
        inflate(&payload)
    };
    let client = local(async {
        let socket = WebSocket::builder(url).deflate().open().await.unwrap();
        socket.send(message.clone()).unwrap();
        socket
    });
    let (inflated, _socket) = tokio::join!(serving, client);
    assert_eq!(inflated, message);
}

/// What an awaited `open` fails with when the server answers `extensions`, with deflate
/// asked for or not.
async fn refusal(extensions: &str, deflate: bool) -> Error {
    let server = RawServer::start().await;
    let mut builder = WebSocket::builder(server.url());
    if deflate {
        builder = builder.deflate();
    }
    let serving = async {
        let (mut socket, _) = server.accept(extensions).await;
        // The client fails the connection, which was not established: no Close frame.
        let mut rest = Vec::new();
        socket.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"", "{extensions}");
    };
    let (opened, ()) = tokio::join!(local(builder.open()), serving);
    match opened {
        Err(error) => error,
        Ok(_) => panic!("{extensions:?} was accepted"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_answer_the_client_cannot_honour_is_a_typed_error() {
    let table = [
        (
            "permessage-deflate; mystery",
            "unknown parameter \"mystery\"",
        ),
        (
            "permessage-deflate; client_max_window_bits",
            "\"client_max_window_bits\" has an invalid value",
        ),
        (
            "permessage-deflate; server_max_window_bits=16",
            "\"server_max_window_bits\" has an invalid value",
        ),
        (
            "permessage-deflate; server_max_window_bits=08",
            "\"server_max_window_bits\" has an invalid value",
        ),
        (
            "permessage-deflate; server_no_context_takeover=1",
            "\"server_no_context_takeover\" has an invalid value",
        ),
        (
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "names \"client_no_context_takeover\" more than once",
        ),
        (
            "permessage-deflate, permessage-deflate",
            "permessage-deflate more than once",
        ),
        (
            "x-webkit-deflate-frame",
            "an extension that was not offered: \"x-webkit-deflate-frame\"",
        ),
    ];
    for (answer, why) in table {
        match refusal(answer, true).await {
            Error::Extension { reason } => assert!(reason.contains(why), "{answer}: {reason}"),
            other => panic!("{answer}: {other:?}"),
        }
    }
    // Not asked for, an extension is not offered, and the answer is refused all the same
    // (RFC 6455 section 4.1), as a browser refuses it.
    let error = refusal("permessage-deflate", false).await;
    assert!(
        matches!(&error, Error::Extension { reason } if reason.contains("not offered")),
        "{error:?}"
    );
    // The close event says the same, with its cause.
    let server = RawServer::start().await;
    let close = local(async {
        let socket = WebSocket::builder(server.url())
            .deflate()
            .connect()
            .unwrap();
        let mut events = socket.events();
        let accepting = server.accept("permessage-deflate; bogus");
        let (_accepted, close) = tokio::join!(accepting, next_close(&mut events));
        close
    })
    .await;
    assert_eq!(close.cause, CloseCause::Extension, "{close}");
    assert_eq!((close.code, close.was_clean), (1006, false));
    assert!(close.reason.contains("\"bogus\""), "{close}");
}

#[tokio::test(flavor = "current_thread")]
async fn corrupt_data_fails_the_connection_with_1007() {
    let server = RawServer::start().await;
    let url = server.url();
    let serving = async {
        let (mut socket, _) = server.accept("permessage-deflate").await;
        socket
            .write_all(&server_frame(0xc1, &[0xff; 40]))
            .await
            .unwrap();
        let mut buffered = Vec::new();
        let (first, payload) = client_frame(&mut socket, &mut buffered).await;
        assert_eq!(first & 0x0f, 0x8, "a Close");
        u16::from_be_bytes([payload[0], payload[1]])
    };
    let client = local(async {
        let socket = WebSocket::builder(url).deflate().connect().unwrap();
        let mut events = socket.events();
        next_open(&mut events).await;
        next_close(&mut events).await
    });
    let (code, close) = tokio::join!(serving, client);
    assert_eq!(code, 1007);
    // The client failed the connection: no Close came back, so 1006 here, as a browser says.
    assert_eq!((close.code, close.was_clean), (1006, false), "{close}");
}

#[tokio::test(flavor = "current_thread")]
async fn reconnection_the_queue_and_the_heartbeat_with_compression() {
    let relay = Relay::start(serve(deflate_config()).await).await;
    let reply =
        |message: &Message| matches!(message, Message::Text(text) if text == "Received:  ping");
    let queued: Vec<String> = (0..3).map(|n| json_like(20_000 + n)).collect();
    local(async {
        let socket = WebSocket::builder(relay.url())
            .deflate()
            .reconnect(
                Reconnect::new()
                    .initial_delay(Duration::from_millis(50))
                    .max_delay(Duration::from_millis(200)),
            )
            .heartbeat(
                Heartbeat::new(Duration::from_millis(300), Duration::from_millis(300)).reply(reply),
            )
            .connect()
            .unwrap();
        let mut events = socket.events();
        next_open(&mut events).await;
        assert!(socket.extensions().starts_with("permessage-deflate"));

        // The server drops the connection; what is sent meanwhile waits in the queue, and
        // goes out compressed on the next connection.
        socket.send("!drop").unwrap();
        assert_eq!(next_close(&mut events).await.cause, CloseCause::Remote);
        for text in &queued {
            assert_eq!(socket.send(text.as_str()), Ok(Sent::Queued));
        }
        next_open(&mut events).await;
        assert!(socket.extensions().starts_with("permessage-deflate"));
        for text in &queued {
            let echoed = Message::Text(format!("Received:  {text}"));
            assert_eq!(next_message(&mut events).await, Some(echoed));
        }

        // A server that stops answering: the heartbeat finds it dead, and the next
        // connection is compressed again.
        socket.send("!stall 10000").unwrap();
        let lost = next_close(&mut events).await;
        assert_eq!(lost.cause, CloseCause::HeartbeatLost, "{lost}");
        next_open(&mut events).await;
        assert!(socket.extensions().starts_with("permessage-deflate"));
        let after = json_like(30_000);
        socket.send(after.as_str()).unwrap();
        let echoed = Message::Text(format!("Received:  {after}"));
        assert_eq!(next_message(&mut events).await, Some(echoed));
        socket.close().unwrap();
    })
    .await;
    // 90 KiB of text went each way, compressed; the heartbeats and controls are small.
    let (up, down) = relay.bytes();
    assert!(up < 20_000 && down < 20_000, "{up} up, {down} down");
}
