//! Attacks on the real server, each checking the answer, that the server stays up and serves
//! a normal client afterwards, and that its memory stays bounded. Named after the
//! vulnerabilities of other WebSocket servers they reproduce.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use support::{
    Server, VERSION_AND_KEY, assert_echoed, client_frame, close_code_after_handshake, eventually,
    handshake_with, status_line, upgrade_request,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// Peak server memory allowed through any of these attacks.
const MEMORY_LIMIT_MIB: u64 = 64;

/// Reads until the server closes the connection, or fails after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let read = stream.read_to_end(&mut seen);
    match tokio::time::timeout(limit, read).await {
        Ok(_) => seen,
        Err(_) => panic!("the server kept the connection open for {limit:?}"),
    }
}

#[tokio::test]
async fn a_message_over_the_limit_gets_1009() {
    let server = Server::start(&["--max-message-size", "1024"]);
    let mut socket = server.connect().await;
    socket.send(Message::binary(vec![0; 1024])).await.unwrap();
    assert_eq!(socket.next().await.unwrap().unwrap().len(), 1024);
    socket.send(Message::binary(vec![0; 1025])).await.unwrap();
    let answer = socket.next().await.unwrap().unwrap();
    let Message::Close(Some(frame)) = answer else {
        panic!("expected Close, got {answer:?}")
    };
    assert_eq!(frame.code, CloseCode::Size);
    server.assert_healthy(MEMORY_LIMIT_MIB).await;
}

#[tokio::test]
async fn an_endless_flood_of_tiny_fragments_gets_1009_at_the_limit() {
    let server = Server::start(&["--max-message-size", "65536"]);
    let mut socket = server.connect().await;
    let first = Frame::message(vec![b'a'; 16], OpCode::Data(Data::Text), false);
    socket.send(Message::Frame(first)).await.unwrap();
    let mut sent = 0;
    let answer = loop {
        let fragment = Frame::message(vec![b'a'; 16], OpCode::Data(Data::Continue), false);
        if socket.send(Message::Frame(fragment)).await.is_err() {
            break socket.next().await;
        }
        sent += 1;
        assert!(sent < 100_000, "the server accepted {sent} fragments");
        if sent % 1000 == 0 {
            // See whether the server has spoken yet.
            if let Ok(answer) = tokio::time::timeout(Duration::from_millis(1), socket.next()).await
            {
                break answer;
            }
        }
    };
    let Some(Ok(Message::Close(Some(frame)))) = answer else {
        panic!("expected Close, got {answer:?}")
    };
    assert_eq!(frame.code, CloseCode::Size);
    server.assert_healthy(MEMORY_LIMIT_MIB).await;
}

/// CVE-2020-27813, CVE-2022-35922: a frame header claiming close to 2^63 bytes must not make
/// the server allocate, and is answered with 1009.
#[tokio::test]
async fn a_64_bit_frame_length_near_2_63_gets_1009_without_allocating() {
    let server = Server::start(&[]);
    let mut request = handshake_with("");
    request.extend_from_slice(&[0x82, 0x80 | 127]);
    request.extend_from_slice(&(i64::MAX as u64 - 7).to_be_bytes());
    request.extend_from_slice(&[0, 0, 0, 0, 1, 2, 3]);
    let answer = server.raw(&request).await;
    assert_eq!(close_code_after_handshake(&answer), Some(1009));
    server.assert_healthy(MEMORY_LIMIT_MIB).await;
}

#[tokio::test]
async fn protocol_violations_get_1002_and_bad_utf8_1007() {
    let server = Server::start(&[]);
    let cases: [(&str, Vec<u8>, u16); 7] = [
        ("reserved bit", client_frame(0x81 | 0x40, b"x"), 1002),
        ("unknown opcode", client_frame(0x83, b"x"), 1002),
        ("fragmented ping", client_frame(0x09, b"x"), 1002),
        ("long ping", client_frame(0x89, &[0; 126]), 1002),
        ("continuation of nothing", client_frame(0x80, b"x"), 1002),
        ("unmasked", vec![0x81, 0x01, b'x'], 1002),
        (
            "invalid UTF-8",
            client_frame(0x81, &[0xce, 0xba, 0xff]),
            1007,
        ),
    ];
    for (name, frame, code) in cases {
        let mut request = handshake_with("");
        request.extend_from_slice(&frame);
        let answer = server.raw(&request).await;
        assert_eq!(close_code_after_handshake(&answer), Some(code), "{name}");
    }
    // Invalid UTF-8 early in a long frame fails the connection before the frame ends.
    let mut partial = client_frame(0x81, &[b'a'; 100]);
    partial.truncate(6 + 4);
    partial[6 + 1] = 0xff;
    let mut request = handshake_with("");
    request.extend_from_slice(&partial);
    let answer = server.raw(&request).await;
    assert_eq!(close_code_after_handshake(&answer), Some(1007), "fail fast");
    server.assert_healthy(MEMORY_LIMIT_MIB).await;
}

#[tokio::test]
async fn past_the_connection_limit_handshakes_get_503_and_nothing_hangs() {
    let server = Server::start(&["--max-connections", "2"]);
    let first = server.connect().await;
    let _second = server.connect().await;
    let answer = server.raw(&handshake_with("")).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 503 Service Unavailable");
    drop(first);
    // The first connection's permit comes back once the server has seen it close.
    let url = server.url();
    let (mut third, _) = eventually(Duration::from_secs(5), "a permit comes back", || {
        let url = url.clone();
        async move { tokio_tungstenite::connect_async(url).await.ok() }
    })
    .await;
    third.send("in".into()).await.unwrap();
    assert!(third.next().await.unwrap().is_ok());
}

/// CVE-2023-43669 and the slowloris attack: headers that never end, sent a byte at a time,
/// are cut off at the handshake timeout.
#[tokio::test]
async fn a_slow_endless_handshake_is_dropped_at_the_timeout() {
    let server = Server::start(&["--handshake-timeout", "1"]);
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        .await
        .unwrap();
    let trickle = async {
        loop {
            if stream.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let ended = tokio::time::timeout(Duration::from_secs(5), trickle).await;
    assert!(ended.is_ok(), "the server kept reading a slow handshake");
    assert!(started.elapsed() < Duration::from_secs(4));

    // A connection that never sends anything is dropped too.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    closed_within(&mut silent, Duration::from_secs(4)).await;
    server.assert_healthy(MEMORY_LIMIT_MIB).await;
}

/// CVE-2024-37890: thousands of headers. And one huge header. Both get 431.
#[tokio::test]
async fn too_many_or_too_large_headers_get_431() {
    let server = Server::start(&[]);
    let many: String = (0..5_000)
        .map(|n| format!("X-Header-{n}: {n}\r\n"))
        .collect();
    let answer = server.raw(&handshake_with(&many)).await;
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    let huge = format!("X-Huge: {}\r\n", "a".repeat(100_000));
    let answer = server.raw(&handshake_with(&huge)).await;
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    server.assert_healthy(MEMORY_LIMIT_MIB).await;
}

/// CVE-2021-32640 (a protocol header of 32,000 spaces, slow to parse with a regex) and
/// CVE-2020-7662 (an extensions header with an unclosed quote): answered at once, and the
/// connection works, since the server negotiates neither.
#[tokio::test]
async fn hostile_protocol_and_extension_headers_are_answered_at_once() {
    let server = Server::start(&["--protocol", "echo"]);
    let spaces = format!("Sec-WebSocket-Protocol: {}x\r\n", " ".repeat(32_000));
    let started = Instant::now();
    let answer = server.raw(&handshake_with(&spaces)).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    // Over the 16 KiB header budget.
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    let spaces = format!("Sec-WebSocket-Protocol: {}echo\r\n", " ".repeat(8_000));
    let answer = server.raw(&handshake_with(&spaces)).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 101 Switching Protocols");

    let quote = "Sec-WebSocket-Extensions: permessage-deflate; x=\"unclosed\r\n";
    let mut request = handshake_with(quote);
    request.extend_from_slice(&client_frame(0x81, b"hi"));
    let answer = server.raw(&request).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(
        !text.to_lowercase().contains("sec-websocket-extensions"),
        "{text}"
    );
    assert!(text.ends_with("Received:  hi"), "{text}");
    server.assert_healthy(MEMORY_LIMIT_MIB).await;
}

#[tokio::test]
async fn non_ascii_header_values_get_an_answer_not_a_panic() {
    let server = Server::start(&[]);
    let request = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ\u{e9}==\r\n\r\n";
    let answer = server.raw(request.as_bytes()).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 400 Bad Request");
    let origin = "Origin: http://\u{e9}vil.example\r\n";
    let answer = server.raw(&handshake_with(origin)).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 403 Forbidden");
    let answer = server
        .raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
        .await;
    assert!(!status_line(&answer).starts_with("HTTP/1.1 101"));
    server.assert_healthy(MEMORY_LIMIT_MIB).await;
}

/// The handshake's status line for a page at `host` sent to `host`.
async fn status_for_host(server: &Server, host: &str) -> String {
    let origin = format!("{VERSION_AND_KEY}Origin: http://{host}\r\n");
    server
        .status_of(&upgrade_request("GET", host, &origin))
        .await
}

/// The handshake's status line for a request with these extra header lines.
async fn status_for(server: &Server, headers: &str) -> String {
    server.status_of(&handshake_with(headers)).await
}

const SWITCHING: &str = "HTTP/1.1 101 Switching Protocols";
const FORBIDDEN: &str = "HTTP/1.1 403 Forbidden";

/// Fault 4 of issue 13 (first half): loopback trust came from the bind address, so behind
/// nginx, which the deployment binds to loopback, any site's sandboxed frame (`Origin: null`)
/// got in. Files and other local ports are now let in only in development (`--dev`).
#[tokio::test]
async fn origins_of_other_sites_get_403() {
    let server = Server::start(&[]);
    assert_eq!(
        status_for(&server, "Origin: https://evil.example\r\n").await,
        FORBIDDEN
    );
    // The server's own page: the origin is the Host the request was sent to.
    assert_eq!(
        status_for(&server, "Origin: http://127.0.0.1\r\n").await,
        SWITCHING
    );
    let others = ["http://localhost:8080", "http://127.0.0.2:9999", "null"];
    for origin in others {
        let header = format!("Origin: {origin}\r\n");
        assert_eq!(status_for(&server, &header).await, FORBIDDEN, "{origin}");
    }
    let dev = Server::start(&["--dev"]);
    let files = Server::start(&["--allow-origin", "null"]);
    for origin in others {
        let header = format!("Origin: {origin}\r\n");
        assert_eq!(
            status_for(&dev, &header).await,
            SWITCHING,
            "{origin} with --dev"
        );
        let listed = if origin == "null" {
            SWITCHING
        } else {
            FORBIDDEN
        };
        assert_eq!(
            status_for(&files, &header).await,
            listed,
            "{origin}, null listed"
        );
    }

    // Bound to every address, the same; listed origins are accepted.
    let open = Server::start(&[
        "--addr",
        "0.0.0.0:0",
        "--allow-origin",
        "https://app.example",
    ]);
    let ask = |origin: &str| format!("Origin: {origin}\r\n");
    assert_eq!(
        status_for(&open, &ask("http://localhost:8080")).await,
        FORBIDDEN
    );
    assert_eq!(status_for(&open, &ask("null")).await, FORBIDDEN);
    assert_eq!(
        status_for(&open, &ask("https://app.example")).await,
        SWITCHING
    );
}

/// Fault 4 of issue 13 (second half), DNS rebinding: a page at `http://attacker.example:1234`
/// whose name resolves to 127.0.0.1 sends an origin equal to its `Host`; that is not a name
/// this server answers to. Names are given with `--host`.
#[tokio::test]
async fn a_rebound_name_gets_403_unless_the_server_answers_to_it() {
    let rebound = "attacker.example:1234";
    let ours = "echo.example:1234";
    let local = Server::start(&[]);
    assert_eq!(status_for_host(&local, rebound).await, FORBIDDEN);
    assert_eq!(status_for_host(&local, ours).await, FORBIDDEN);
    let named = Server::start(&["--host", "echo.example"]);
    assert_eq!(status_for_host(&named, rebound).await, FORBIDDEN);
    assert_eq!(status_for_host(&named, ours).await, SWITCHING);
    // Addresses cannot be rebound: a page at the server's address is its own.
    assert_eq!(status_for_host(&local, "127.0.0.1:1234").await, SWITCHING);
}

/// CVE-2020-35896: a peer that sends but never reads must not make the server buffer
/// without end; it is dropped once a reply has waited the send timeout.
#[tokio::test]
async fn a_peer_that_never_reads_is_dropped_with_memory_bounded() {
    let server = Server::start(&["--send-timeout", "1"]);
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&handshake_with("")).await.unwrap();
    let message = client_frame(0x82, &vec![7; 60_000]);
    let started = Instant::now();
    // 200 MB of requests, never reading a reply: the server must stop us long before.
    let mut written = 0usize;
    while written < 200_000_000 {
        match tokio::time::timeout(Duration::from_secs(5), stream.write_all(&message)).await {
            Ok(Ok(())) => written += message.len(),
            Ok(Err(_)) => break,
            Err(_) => panic!("writes stalled for 5 s without the server dropping us"),
        }
    }
    assert!(
        written < 200_000_000,
        "the server kept reading without us reading"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    server.assert_healthy(MEMORY_LIMIT_MIB).await;
}

#[tokio::test]
async fn two_thousand_connections_at_once_are_all_served_and_their_memory_given_back() {
    let server = Server::start(&[]);
    let url = server.url();
    let (before, _) = server.memory_kib();
    let clients = (0..2_000).map(|n| {
        let url = url.clone();
        tokio::spawn(async move {
            let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            assert_echoed(&mut socket, &n.to_string()).await;
            socket
        })
    });
    let sockets = futures_util::future::join_all(clients).await;
    assert!(sockets.iter().all(Result::is_ok));
    let (held, _) = server.memory_kib();
    eprintln!("2,000 open connections: server RSS {held} KiB, {before} KiB before");
    drop(sockets);
    // Once they have closed, at least half of what they took goes back to the system.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = held;
    while after > before + (held - before) / 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = server.memory_kib().0;
    }
    eprintln!("after they closed: {after} KiB");
    assert!(
        after <= before + (held - before) / 2,
        "RSS {after} KiB after close: {held} KiB held, {before} KiB before"
    );
    server.assert_healthy(MEMORY_LIMIT_MIB).await;
}

#[tokio::test]
async fn a_silent_connection_is_pinged_then_closed_with_1001() {
    let server = Server::start(&[
        "--ping-interval",
        "1",
        "--idle-timeout",
        "2",
        "--close-timeout",
        "0.5",
    ]);
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&handshake_with("")).await.unwrap();
    let seen = closed_within(&mut stream, Duration::from_secs(6)).await;
    let after_handshake = &seen[seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    assert_eq!(
        after_handshake[0], 0x89,
        "a ping first: {after_handshake:?}"
    );
    assert_eq!(close_code_after_handshake(&seen), Some(1001));

    // A client that answers the pings is alive, however little it says: it stays.
    let mut socket = server.connect().await;
    let mut pings = 0;
    let listen = tokio::time::timeout(Duration::from_millis(3_500), async {
        while let Some(Ok(message)) = socket.next().await {
            assert!(message.is_ping(), "expected only pings, got {message:?}");
            pings += 1;
        }
    });
    assert!(listen.await.is_err(), "the connection ended");
    assert!(pings >= 2, "{pings} pings");
}

/// The idle-bound tests' keepalive: a ping after 0.4 s of silence, a Close 0.5 s before the
/// idle timeout of [`SHORT_IDLE`].
const SHORT_KEEPALIVE: [&str; 6] = [
    "--ping-interval",
    "0.4",
    "--idle-timeout",
    "1.5",
    "--close-timeout",
    "0.5",
];
const SHORT_IDLE: Duration = Duration::from_millis(1500);

/// Issue 33: a vanished client was let go 180.8 s after its last message where the README
/// said 120 s: the keepalive ticked every 30 s, so the idle check came up to a tick late, and
/// the unanswered Close then waited a whole tick more. The worst case for a clock that ticks:
/// the client's last message comes right after a tick (the server's ping). The connection is
/// let go within the idle timeout of that message; the client here never answers (the
/// kernel still acknowledges, as for a client whose process hangs), so only the server's
/// own bound ends it.
#[tokio::test]
async fn a_silent_client_is_let_go_within_the_idle_timeout_at_the_worst_case() {
    // With these flags the code before the fix let it go after 5.0 s: a Close at the fourth
    // tick after the message, and its wait a whole tick more.
    let idle = SHORT_IDLE;
    let server = Server::start(&SHORT_KEEPALIVE);
    let mut stream = support::opened(server.addr).await;
    // The first ping marks a tick of the server's keepalive clock.
    let mut ping = [0; 2];
    stream.read_exact(&mut ping).await.unwrap();
    assert_eq!(ping, [0x89, 0x00], "a ping first");
    stream
        .write_all(&client_frame(0x81, b"last words"))
        .await
        .unwrap();
    let (let_go, frames) = let_go_within(&mut stream, Instant::now(), idle).await;
    assert_eq!(frames[0], (0x1, b"Received:  last words".to_vec()));
    // Pinged at 0.4 and 0.8 s of silence, closed at 1.0 s (the close timeout before the idle
    // timeout), let go at 1.5 s.
    let pings = frames.iter().filter(|(opcode, _)| *opcode == 0x9).count();
    assert_eq!(pings, 2, "{frames:?}");
    assert!(
        let_go >= idle - Duration::from_millis(20),
        "let go early: {let_go:?}"
    );
}

/// Waits for the server to close a connection silent since `last_heard`, and checks that it
/// closed it with 1001 within the idle timeout `idle`; how long after `last_heard` that was,
/// and the frames it sent.
async fn let_go_within(
    stream: &mut TcpStream,
    last_heard: Instant,
    idle: Duration,
) -> (Duration, Vec<(u8, Vec<u8>)>) {
    let seen = closed_within(stream, idle * 3).await;
    let let_go = last_heard.elapsed();
    let frames = support::server_frames(&seen);
    eprintln!("let go {let_go:?} after the last bytes (bound {idle:?}): {frames:?}");
    let (opcode, close) = frames.last().expect("a Close last");
    assert_eq!((*opcode, support::close_code(close)), (0x8, Some(1001)));
    // A timer's lateness and the process's scheduling on a busy machine: a few tens of ms.
    assert!(
        let_go <= idle + Duration::from_millis(250),
        "let go {let_go:?} after the last bytes, past the idle timeout of {idle:?}"
    );
    (let_go, frames)
}

/// A heavy client (its reads take whole chunks, so the server reads it in wider windows)
/// that vanishes in the middle of a message: the server looks again and again at whether it
/// may narrow the socket, but never past the keepalive's deadline, so the client is still
/// pinged, closed and let go within the idle timeout of the last thing heard.
#[tokio::test]
async fn a_heavy_client_silent_mid_message_is_let_go_within_the_idle_timeout() {
    let idle = SHORT_IDLE;
    let server = Server::start(&[&["--prefix", ""][..], &SHORT_KEEPALIVE].concat());
    let mut stream = support::opened(server.addr).await;
    let large = vec![7; 256 << 10];
    stream.write_all(&client_frame(0x82, &large)).await.unwrap();
    // The echo, after any ping of the keepalive's.
    let mut seen = Vec::new();
    while !support::server_frames(&seen).contains(&(0x2, large.clone())) {
        let mut chunk = vec![0; 64 << 10];
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "closed before the echo");
        seen.extend_from_slice(&chunk[..read]);
    }
    // Half a frame, then nothing more.
    let next = client_frame(0x82, &large);
    stream.write_all(&next[..next.len() / 2]).await.unwrap();
    let_go_within(&mut stream, Instant::now(), idle).await;
}

#[tokio::test]
async fn sigterm_closes_every_client_with_1001_and_exits_0() {
    let mut server = Server::start(&[]);
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(server.connect().await);
    }
    let readers = sockets.into_iter().map(|mut socket| {
        tokio::spawn(async move {
            match socket.next().await {
                Some(Ok(Message::Close(Some(frame)))) => frame.code,
                other => panic!("expected Close, got {other:?}"),
            }
        })
    });
    let readers: Vec<_> = readers.collect();
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(5));
    for reader in readers {
        assert_eq!(reader.await.unwrap(), CloseCode::Away);
    }
}

#[test]
fn frame_header_parser_is_tungstenites() {
    // The attacks above build frames by hand; check the helper against tungstenite's parser.
    let frame = client_frame(0x82, &[1; 300]);
    let (header, length) = FrameHeader::parse(&mut std::io::Cursor::new(&frame))
        .unwrap()
        .unwrap();
    assert_eq!(length, 300);
    assert!(header.is_final);
    assert!(header.mask.is_some());
}
