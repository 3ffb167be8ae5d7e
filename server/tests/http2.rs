//! WebSockets over HTTP/2 (RFC 8441) against the real server: a native HTTP/2 client (hyper's,
//! sending the extended `CONNECT`, then tungstenite on the upgraded stream, as axum's own test
//! does), over cleartext HTTP/2 by prior knowledge (`--h2c`) and over TLS with ALPN. Many
//! sockets share one connection; what one stream does wrong, or does not read, is that
//! stream's alone.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http2::{self, SendRequest};
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{Server, assert_echoed, client_frame, close_code, eventually, server_frames};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A WebSocket that is a stream of an HTTP/2 connection.
type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// The client's windows: as large as a browser's (Chromium: 6 MiB a stream, 15 MiB the
/// connection), so that what holds a stream up is the server's doing.
const CLIENT_STREAM_WINDOW: u32 = 1 << 20;
const CLIENT_CONNECTION_WINDOW: u32 = 16 << 20;

/// One HTTP/2 connection of the test's, over any transport.
#[derive(Clone)]
struct Connection {
    send: SendRequest<Empty<Bytes>>,
    /// `host:port`, for `:authority`.
    authority: String,
}

impl Connection {
    /// HTTP/2 by prior knowledge on a new TCP connection to a server started with `--h2c`.
    async fn h2c(server: &Server) -> Connection {
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        Connection::over(tcp, server.addr.to_string()).await
    }

    /// The HTTP/2 handshake over `io`, waiting for the server's SETTINGS to allow the
    /// extended CONNECT.
    async fn over<I>(io: I, authority: String) -> Connection
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, connection) = http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(CLIENT_STREAM_WINDOW)
            .initial_connection_window_size(CLIENT_CONNECTION_WINDOW)
            .handshake(TokioIo::new(io))
            .await
            .unwrap();
        let mut connection = Box::pin(connection);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !connection.is_extended_connect_protocol_enabled() {
            assert!(Instant::now() < deadline, "no ENABLE_CONNECT_PROTOCOL");
            let _ = tokio::time::timeout(Duration::from_millis(5), connection.as_mut()).await;
        }
        tokio::spawn(connection);
        Connection { send, authority }
    }

    /// An extended CONNECT for `/` with `sec-websocket-version: 13` and `headers`.
    fn request(&self, headers: &[(&str, &str)]) -> Request<Empty<Bytes>> {
        let mut request = Request::builder()
            .method(Method::CONNECT)
            .uri(format!("http://{}/", self.authority))
            .extension(hyper::ext::Protocol::from_static("websocket"))
            .header("sec-websocket-version", "13");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Empty::new()).unwrap()
    }

    /// Sends `request` on a new stream.
    async fn send(&self, request: Request<Empty<Bytes>>) -> Response<Incoming> {
        let mut send = self.send.clone();
        send.ready().await.unwrap();
        send.send_request(request).await.unwrap()
    }

    /// A WebSocket on a new stream, offering `headers`; the answer's headers too.
    async fn open_with(&self, headers: &[(&str, &str)]) -> (Socket, hyper::HeaderMap) {
        let mut response = self.send(self.request(headers)).await;
        assert_eq!(response.status(), StatusCode::OK, "{response:?}");
        let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
        let io = TokioIo::new(upgraded);
        let socket = WebSocketStream::from_raw_socket(io, Role::Client, None).await;
        (socket, response.headers().clone())
    }

    /// A WebSocket on a new stream.
    async fn open(&self) -> Socket {
        self.open_with(&[]).await.0
    }

    /// The upgraded stream of a new WebSocket, for raw frames.
    async fn open_raw(&self) -> TokioIo<Upgraded> {
        let mut response = self.send(self.request(&[])).await;
        assert_eq!(response.status(), StatusCode::OK);
        TokioIo::new(hyper::upgrade::on(&mut response).await.unwrap())
    }

    /// The status of an extended CONNECT with `headers`, and its body.
    async fn refused(&self, request: Request<Empty<Bytes>>) -> (StatusCode, hyper::HeaderMap) {
        let response = self.send(request).await;
        let (parts, body) = response.into_parts();
        let _ = body.collect().await;
        (parts.status, parts.headers)
    }

    /// A plain GET over this connection; its body.
    async fn get(&self, path: &str) -> (StatusCode, String) {
        let request = Request::get(format!("http://{}{path}", self.authority))
            .body(Empty::new())
            .unwrap();
        let response = self.send(request).await;
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// The Close code the server answers on a stream after `bytes`, read until the stream ends.
async fn close_code_after(stream: &mut TokioIo<Upgraded>, bytes: &[u8]) -> Option<u16> {
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    let frames = server_frames(&answer);
    let (_, payload) = frames.iter().find(|(opcode, _)| *opcode == 0x8)?;
    close_code(payload)
}

/// A metric's value in the server's `/metrics` text.
fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test]
async fn many_sockets_echo_at_once_on_one_connection_and_are_counted_as_http2() {
    let server = Server::start(&["--h2c", "--metrics"]);
    let connection = Connection::h2c(&server).await;
    let sockets = futures_util::future::join_all((0..100).map(|_| connection.open())).await;
    let echoes = sockets
        .into_iter()
        .enumerate()
        .map(|(i, mut socket)| async move {
            for n in 0..10 {
                assert_echoed(&mut socket, &format!("socket {i}, message {n}")).await;
            }
            socket
                .send(Message::binary(vec![i as u8; 100_000]))
                .await
                .unwrap();
            let reply = socket.next().await.unwrap().unwrap();
            assert_eq!(reply, Message::binary(vec![i as u8; 100_000]));
            socket
        });
    let sockets = futures_util::future::join_all(echoes).await;
    // The page and the metrics come over the same connection.
    let (status, metrics) = connection.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let over = |version| {
        let name = format!("echo_connections_open_by_http_version{{http_version=\"{version}\"}}");
        metric(&metrics, &name)
    };
    assert_eq!(over("2"), Some(100.0), "{metrics}");
    assert_eq!(over("1.1"), None, "{metrics}");
    drop(sockets);
    // HTTP/1.1 still works on the same port.
    assert_echoed(&mut server.connect().await, "and over HTTP/1.1").await;
}

#[tokio::test]
async fn bad_input_on_one_stream_gets_its_close_code_and_the_others_go_on() {
    let server = Server::start(&["--h2c", "--max-message-size", "1024"]);
    let connection = Connection::h2c(&server).await;
    let mut bystander = connection.open().await;
    let cases: [(&str, Vec<u8>, u16); 6] = [
        ("too big", client_frame(0x82, &[0; 1025]), 1009),
        (
            "invalid UTF-8",
            client_frame(0x81, &[0xce, 0xba, 0xff]),
            1007,
        ),
        ("reserved bit", client_frame(0x81 | 0x40, b"x"), 1002),
        ("unknown opcode", client_frame(0x83, b"x"), 1002),
        ("unmasked", vec![0x81, 0x01, b'x'], 1002),
        ("continuation of nothing", client_frame(0x80, b"x"), 1002),
    ];
    for (name, frame, code) in cases {
        let mut stream = connection.open_raw().await;
        assert_eq!(
            close_code_after(&mut stream, &frame).await,
            Some(code),
            "{name}"
        );
        assert_echoed(&mut bystander, &format!("still here after {name}")).await;
    }
    // Through tungstenite too: a message over the limit, then the bystander again.
    let mut socket = connection.open().await;
    socket.send(Message::binary(vec![0; 2000])).await.unwrap();
    let answer = socket.next().await.unwrap().unwrap();
    let Message::Close(Some(frame)) = answer else {
        panic!("expected Close, got {answer:?}")
    };
    assert_eq!(frame.code, CloseCode::Size);
    assert_echoed(&mut bystander, "and after that").await;
}

#[tokio::test]
async fn handshake_faults_get_their_status_and_the_connection_goes_on() {
    let server = Server::start(&["--h2c", "--protocol", "echo"]);
    let connection = Connection::h2c(&server).await;
    let ours = format!("http://{}", connection.authority);
    let cases: Vec<(&str, Request<Empty<Bytes>>, StatusCode)> = vec![
        (
            "another site's page",
            connection.request(&[("origin", "https://evil.example")]),
            StatusCode::FORBIDDEN,
        ),
        (
            "version 8",
            Request::builder()
                .method(Method::CONNECT)
                .uri(format!("http://{}/", connection.authority))
                .extension(hyper::ext::Protocol::from_static("websocket"))
                .header("sec-websocket-version", "8")
                .body(Empty::new())
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "no version",
            Request::builder()
                .method(Method::CONNECT)
                .uri(format!("http://{}/", connection.authority))
                .extension(hyper::ext::Protocol::from_static("websocket"))
                .body(Empty::new())
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "another protocol",
            Request::builder()
                .method(Method::CONNECT)
                .uri(format!("http://{}/", connection.authority))
                .extension(hyper::ext::Protocol::from_static("webtransport"))
                .header("sec-websocket-version", "13")
                .body(Empty::new())
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "another path",
            Request::builder()
                .method(Method::CONNECT)
                .uri(format!("http://{}/chat", connection.authority))
                .extension(hyper::ext::Protocol::from_static("websocket"))
                .header("sec-websocket-version", "13")
                .body(Empty::new())
                .unwrap(),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (name, request, status) in cases {
        let (answer, headers) = connection.refused(request).await;
        assert_eq!(answer, status, "{name}");
        if name.starts_with("version") || name.starts_with("no version") {
            assert_eq!(headers["sec-websocket-version"], "13", "{name}");
        }
    }
    // The server's own page (its origin is the `:authority`) is let in, with its subprotocol.
    let offer = [
        ("origin", ours.as_str()),
        ("sec-websocket-protocol", "chat, echo"),
    ];
    let (mut socket, headers) = connection.open_with(&offer).await;
    assert_eq!(headers["sec-websocket-protocol"], "echo");
    assert!(!headers.contains_key("sec-websocket-accept"));
    assert_echoed(&mut socket, "let in").await;
    // A page whose origin names another host than `:authority` (DNS rebinding) is not.
    let rebound = format!("http://attacker.example:{}", server.addr.port());
    let (answer, _) = (connection.refused(connection.request(&[("origin", &rebound)]))).await;
    assert_eq!(answer, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn deflate_is_negotiated_and_test_controls_obeyed_over_http2() {
    let server = Server::start(&["--h2c", "--deflate", "--test-controls"]);
    let connection = Connection::h2c(&server).await;
    let offer = [(
        "sec-websocket-extensions",
        "permessage-deflate; client_max_window_bits",
    )];
    let (_socket, headers) = connection.open_with(&offer).await;
    let answer = headers["sec-websocket-extensions"].to_str().unwrap();
    assert!(answer.starts_with("permessage-deflate"), "{answer}");
    // A compressed reply: RSV1 set on a large repetitive message.
    let offer = "permessage-deflate; client_max_window_bits";
    let mut response = connection
        .send(connection.request(&[("sec-websocket-extensions", offer)]))
        .await;
    let mut stream = TokioIo::new(hyper::upgrade::on(&mut response).await.unwrap());
    let text = "la".repeat(4096);
    stream
        .write_all(&client_frame(0x81, text.as_bytes()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let reply = loop {
        let mut buf = [0; 16 << 10];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the stream ended before the reply");
        seen.extend_from_slice(&buf[..n]);
        if let Some(frame) = support::frames_of(&seen).into_iter().next() {
            break frame;
        }
    };
    assert_eq!(reply.0, 0x80 | 0x40 | 0x1, "a compressed text frame");
    let inflated = test_support::deflate::inflate(&reply.1, 15);
    assert_eq!(inflated, format!("Received:  {text}").into_bytes());
    // `!close`: the server closes this stream with the code asked for.
    let mut socket = connection.open().await;
    socket.send(Message::text("!close 4321 bye")).await.unwrap();
    let answer = socket.next().await.unwrap().unwrap();
    let Message::Close(Some(frame)) = answer else {
        panic!("expected Close, got {answer:?}")
    };
    assert_eq!(u16::from(frame.code), 4321);
}

/// A client that stops reading one socket's replies fills that stream's windows, and the
/// server stops reading it; another socket on the same connection goes on, and once the first
/// reads again every reply arrives, in order: nothing was dropped, nothing grew unbounded.
#[tokio::test]
async fn a_socket_whose_reader_stops_does_not_hold_up_another_on_the_same_connection() {
    let server = Server::start(&["--h2c", "--send-timeout", "60"]);
    let connection = Connection::h2c(&server).await;
    let (mut stalled, mut other) = (connection.open().await, connection.open().await);
    let message = |n: u32| Message::binary(vec![(n % 251) as u8; 64 << 10]);
    // Write without reading until the writes no longer go through: the windows are full.
    let mut sent = 0;
    loop {
        let send = stalled.send(message(sent));
        match tokio::time::timeout(Duration::from_millis(500), send).await {
            Ok(result) => result.unwrap(),
            Err(_) => break,
        }
        sent += 1;
        assert!(
            sent < 1000,
            "the server read {sent} x 64 KiB with no one reading its replies"
        );
    }
    let (rss, _) = server.memory_kib();
    eprintln!("held up after {sent} x 64 KiB; server RSS {rss} KiB");
    for n in 0..20 {
        let text = format!("not held up {n}");
        let round_trip = assert_echoed(&mut other, &text);
        tokio::time::timeout(Duration::from_secs(2), round_trip)
            .await
            .expect("the other socket echoes while the first is stalled");
    }
    // What the stalled socket holds is bounded by the windows: a few MiB, not what was sent.
    assert!(
        rss < 64 << 10,
        "server RSS {rss} KiB while one stream is stalled"
    );
    // Reading again drains it all, in order (the last send, cut off by the timeout, may or
    // may not have been queued).
    let mut reader = stalled;
    let drained = async {
        for n in 0..sent {
            assert_eq!(
                reader.next().await.unwrap().unwrap(),
                message(n),
                "reply {n}"
            );
        }
    };
    tokio::time::timeout(Duration::from_secs(20), drained)
        .await
        .expect("the replies drain");
}

/// A client floods one socket with messages whose replies it never reads: what the server
/// takes in before the stream's window shuts is bounded, and so is its memory, and the server
/// closes the socket once the send timeout has passed; another socket goes on throughout.
#[tokio::test]
async fn a_flood_on_one_stream_stays_bounded() {
    let server = Server::start(&["--h2c", "--send-timeout", "2"]);
    let connection = Connection::h2c(&server).await;
    let (flood, mut other) = (connection.open_raw().await, connection.open().await);
    let (mut reader, mut writer) = tokio::io::split(flood);
    let frame = client_frame(0x82, &[7; 16 << 10]);
    let mut written = 0usize;
    let flooded = loop {
        match tokio::time::timeout(Duration::from_millis(500), writer.write_all(&frame)).await {
            Ok(Ok(())) => written += frame.len(),
            Ok(Err(_)) => break false,
            Err(_) => break true,
        }
        assert!(written < 64 << 20, "the server took {written} bytes unread");
    };
    assert!(flooded, "the writes were held back, not failed");
    let (rss, peak) = server.memory_kib();
    eprintln!(
        "flood held back after {} KiB; server RSS {rss} KiB, peak {peak} KiB",
        written >> 10
    );
    assert!(peak < 64 << 10, "peak RSS {peak} KiB");
    assert_echoed(&mut other, "not held up by the flood").await;
    // The send timeout (2 s) ends the flooding socket; then read what is left (the replies
    // the server had sent) until its stream ends.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_echoed(&mut other, "not held up while the flooder is dropped").await;
    let mut rest = Vec::new();
    let read = reader.read_to_end(&mut rest);
    let ended = tokio::time::timeout(Duration::from_secs(10), read).await;
    assert!(ended.is_ok(), "the server kept the flooding stream open");
    assert_echoed(&mut other, "still not held up").await;
}

#[tokio::test]
async fn streams_past_the_limit_wait_for_a_free_one() {
    let server = Server::start(&["--h2c", "--h2-max-streams", "4"]);
    let connection = Connection::h2c(&server).await;
    let mut open = futures_util::future::join_all((0..4).map(|_| connection.open())).await;
    // The fifth waits (hyper's client, like browsers, holds it until a stream is free).
    let fifth = tokio::spawn({
        let connection = connection.clone();
        async move { connection.open().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !fifth.is_finished(),
        "a fifth stream opened past the limit of 4"
    );
    let mut first = open.remove(0);
    first.close(None).await.unwrap();
    while first.next().await.is_some() {}
    drop(first);
    let mut fifth = tokio::time::timeout(Duration::from_secs(5), fifth)
        .await
        .expect("the fifth opens once a stream is free")
        .unwrap();
    assert_echoed(&mut fifth, "fifth").await;
    for socket in &mut open {
        assert_echoed(socket, "the four").await;
    }
}

/// Shutdown: GOAWAY (no new stream is taken), then Close 1001 on every socket, whose close
/// handshakes complete; then the server exits.
#[tokio::test]
async fn shutdown_sends_goaway_then_1001_on_each_socket() {
    let server = Server::start(&["--h2c"]);
    let connection = Connection::h2c(&server).await;
    let sockets = futures_util::future::join_all((0..5).map(|_| connection.open())).await;
    server.signal("TERM");
    for mut socket in sockets {
        let answer = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
        let Ok(Some(Ok(Message::Close(Some(frame))))) = answer else {
            panic!("expected Close 1001, got {answer:?}")
        };
        assert_eq!(frame.code, CloseCode::Away);
        // Our answer completes the close handshake.
        while let Some(Ok(_)) = socket.next().await {}
    }
    let mut send = connection.send.clone();
    let refused = match send.ready().await {
        Err(_) => true,
        Ok(()) => send.send_request(connection.request(&[])).await.is_err(),
    };
    assert!(refused, "a new stream was taken after GOAWAY");
    let status = server.exited_within(Duration::from_secs(5)).await;
    assert!(status.is_some_and(|status| status.success()), "{status:?}");
}

#[tokio::test]
async fn over_tls_alpn_offers_h2_and_http1_and_both_echo() {
    let localhost = test_support::tls::Localhost::new();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("http2-tls-test");
    let (cert, key) = localhost.write_pem(&dir).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let connect = |server: &Server, alpn: &[&[u8]]| {
        let mut config = localhost.client_config();
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let addr = server.addr;
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            connector.connect(name, tcp).await.unwrap()
        }
    };
    let server = Server::start(&["--tls-cert", cert, "--tls-key", key]);
    let tls = connect(&server, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let authority = format!("localhost:{}", server.addr.port());
    let connection = Connection::over(tls, authority.clone()).await;
    let origin = format!("https://{authority}");
    let (mut socket, _) = connection.open_with(&[("origin", &origin)]).await;
    assert_echoed(&mut socket, "wss over HTTP/2").await;
    let tls = connect(&server, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));

    // With --no-http2, a client that asks for h2 gets HTTP/1.1.
    let server = Server::start(&["--tls-cert", cert, "--tls-key", key, "--no-http2"]);
    let tls = connect(&server, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
}

/// A connection that breaks HTTP/2 itself (a DATA frame on stream 0) gets GOAWAY with
/// PROTOCOL_ERROR and is closed; a socket on another connection goes on.
#[tokio::test]
async fn a_connection_that_breaks_http2_gets_goaway_with_protocol_error() {
    let server = Server::start(&["--h2c"]);
    let mut socket = Connection::h2c(&server).await.open().await;
    let mut bad = TcpStream::connect(server.addr).await.unwrap();
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]); // SETTINGS, empty
    bytes.extend_from_slice(&[0, 0, 1, 0x0, 0, 0, 0, 0, 0, b'x']); // DATA on stream 0
    bad.write_all(&bytes).await.unwrap();
    let mut answer = Vec::new();
    let read = bad.read_to_end(&mut answer);
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the server closes the connection")
        .unwrap();
    // The frames: 9-byte headers (length, type, flags, stream), then the payload.
    let mut rest = &answer[..];
    let mut goaway = None;
    while rest.len() >= 9 {
        let length = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        let Some(payload) = rest.get(9..9 + length) else {
            break;
        };
        if rest[3] == 0x7 {
            goaway = Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
        }
        rest = &rest[9 + length..];
    }
    assert_eq!(
        goaway,
        Some(0x1),
        "GOAWAY with PROTOCOL_ERROR in {answer:?}"
    );
    assert_echoed(&mut socket, "another connection goes on").await;
}

/// A restart with `--handover`: the old instance's HTTP/2 sockets get 1001, and a new
/// connection to the same address is served by the successor.
#[tokio::test]
async fn a_handover_sends_the_old_instances_http2_sockets_1001() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("http2-handover-{}.sock", std::process::id()));
    let args = ["--h2c", "--handover", path.to_str().unwrap()];
    let old = Server::start(&args);
    let connection = Connection::h2c(&old).await;
    let sockets = futures_util::future::join_all((0..3).map(|_| connection.open())).await;
    let new = Server::start(&args);
    assert_eq!(
        new.addr, old.addr,
        "the successor listens on the same socket"
    );
    for mut socket in sockets {
        let answer = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
        let Ok(Some(Ok(Message::Close(Some(frame))))) = answer else {
            panic!("expected Close 1001, got {answer:?}")
        };
        assert_eq!(frame.code, CloseCode::Away);
    }
    let status = old.exited_within(Duration::from_secs(10)).await;
    assert!(status.is_some_and(|status| status.success()), "{status:?}");
    let mut socket = Connection::h2c(&new).await.open().await;
    assert_echoed(&mut socket, "served by the successor").await;
}

/// `--http-timeout` bounds an HTTP/2 connection's idleness, not its life: one with a socket
/// open outlives it, and one left with none gets GOAWAY after it.
#[tokio::test]
async fn a_connection_lives_while_it_has_sockets_and_gets_goaway_when_idle() {
    let server = Server::start(&["--h2c", "--http-timeout", "1"]);
    let connection = Connection::h2c(&server).await;
    let mut socket = connection.open().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_echoed(&mut socket, "alive past the HTTP timeout").await;
    socket.close(None).await.unwrap();
    while socket.next().await.is_some() {}
    drop(socket);
    let send = connection.send.clone();
    let what = "GOAWAY on the idle connection";
    let closed = eventually(Duration::from_secs(5), what, || {
        let closed = send.is_closed();
        async move { closed.then_some(()) }
    });
    closed.await;
}

/// The figures in server/README.md: 1,000 sockets as streams of one HTTP/2 connection against
/// 1,000 sockets over 1,000 HTTP/1.1 connections, each against a fresh server: its memory per
/// socket once they are all open and have echoed one message, the time to open them all, and
/// the time for a round trip on each, all at once. A measure, not a check:
/// `cargo test -p wsecho --release --test http2 -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn measure_1000_sockets_over_one_http2_connection_and_over_1000_connections() {
    const SOCKETS: usize = 1000;
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let round_trips = |sockets: Vec<Socket>| async move {
        let echoes = sockets.into_iter().map(|mut socket| async move {
            assert_echoed(&mut socket, "hello").await;
            socket
        });
        futures_util::future::join_all(echoes).await
    };
    let server = Server::start(&["--h2c", "--h2-max-streams", "2000"]);
    let (before, _) = server.memory_kib();
    let started = Instant::now();
    let connection = Connection::h2c(&server).await;
    let sockets = futures_util::future::join_all((0..SOCKETS).map(|_| connection.open())).await;
    let opened = started.elapsed();
    let started = Instant::now();
    let sockets = round_trips(sockets).await;
    let echoed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (after, _) = server.memory_kib();
    eprintln!(
        "HTTP/2, one connection: {:.1} KiB per socket, opened in {opened:?}, one round trip each in {echoed:?}",
        (after - before) as f64 / SOCKETS as f64
    );
    drop(sockets);

    let server = Server::start(&[]);
    let (before, _) = server.memory_kib();
    let started = Instant::now();
    let sockets = futures_util::future::join_all((0..SOCKETS).map(|_| server.connect())).await;
    let opened = started.elapsed();
    let started = Instant::now();
    let echoes = sockets.into_iter().map(|mut socket| async move {
        assert_echoed(&mut socket, "hello").await;
        socket
    });
    let sockets = futures_util::future::join_all(echoes).await;
    let echoed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (after, _) = server.memory_kib();
    eprintln!(
        "HTTP/1.1, {SOCKETS} connections: {:.1} KiB per socket, opened in {opened:?}, one round trip each in {echoed:?}",
        (after - before) as f64 / SOCKETS as f64
    );
    drop(sockets);
}
