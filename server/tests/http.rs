//! What the server answers to plain HTTP and to broken handshakes, spoken as raw bytes.

mod support;

use support::{Server, status_line};

const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

fn handshake(method: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\n{extra}\r\n"
    )
    .into_bytes()
}

fn www() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("www-http-test");
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>WebSocket Echo Test</h1>").unwrap();
    std::fs::write(dir.join("pkg/app.wasm"), b"\0asm").unwrap();
    dir
}

#[tokio::test]
async fn plain_get_serves_the_page_with_its_type() {
    let server = Server::with_www(&www());
    let answer = server
        .raw(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
    assert!(text.contains("content-type: text/html"), "{text}");
    assert!(text.ends_with("<h1>WebSocket Echo Test</h1>"), "{text}");

    let answer = server
        .raw(b"GET /pkg/app.wasm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert!(String::from_utf8_lossy(&answer).contains("content-type: application/wasm"));
}

#[tokio::test]
async fn unknown_and_escaping_paths_get_404() {
    let server = Server::with_www(&www());
    for path in ["/nothing.html", "/../Cargo.toml", "/pkg/../../x"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let answer = server.raw(request.as_bytes()).await;
        assert_eq!(status_line(&answer), "HTTP/1.1 404 Not Found", "{path}");
    }
}

#[tokio::test]
async fn a_good_handshake_gets_101_and_the_accept_key() {
    let server = Server::start(&[]);
    let answer = server
        .raw(&handshake(
            "GET",
            &format!("Sec-WebSocket-Version: 13\r\n{KEY}"),
        ))
        .await;
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(status_line(&answer), "HTTP/1.1 101 Switching Protocols");
    assert!(
        text.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{text}"
    );
}

#[tokio::test]
async fn broken_handshakes_get_their_status() {
    let server = Server::start(&[]);
    let cases = [
        (
            handshake("POST", &format!("Sec-WebSocket-Version: 13\r\n{KEY}")),
            "405",
        ),
        (handshake("GET", "Sec-WebSocket-Version: 13\r\n"), "400"),
        (
            handshake("GET", &format!("Sec-WebSocket-Version: 8\r\n{KEY}")),
            "426",
        ),
        (
            handshake(
                "GET",
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n",
            ),
            "400",
        ),
    ];
    for (request, status) in cases {
        let answer = server.raw(&request).await;
        let line = status_line(&answer);
        assert!(line.starts_with(&format!("HTTP/1.1 {status} ")), "{line}");
    }
    // And the server still echoes afterwards.
    let mut socket = server.connect().await;
    use futures_util::{SinkExt, StreamExt};
    socket.send("still here".into()).await.unwrap();
    assert!(socket.next().await.unwrap().is_ok());
}

#[tokio::test]
async fn unmasked_client_frame_gets_close_1002() {
    let server = Server::start(&[]);
    let mut request = handshake("GET", &format!("Sec-WebSocket-Version: 13\r\n{KEY}"));
    // An unmasked text frame "hi": clients must mask every frame.
    request.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    let answer = server.raw(&request).await;
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    // The first frame after the handshake: Close (0x88) with code 1002.
    assert_eq!(answer[end], 0x88, "{:?}", &answer[end..]);
    assert_eq!(u16::from_be_bytes([answer[end + 2], answer[end + 3]]), 1002);
}

#[tokio::test]
async fn healthz_answers_ok() {
    let server = Server::start(&[]);
    let answer = server
        .raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
    assert!(answer.ends_with(b"ok\n"));
}

#[tokio::test]
async fn metrics_count_connections_messages_and_close_codes_when_asked() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let get = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let without = Server::start(&[]);
    assert_eq!(
        status_line(&without.raw(get).await),
        "HTTP/1.1 404 Not Found"
    );

    let server = Server::start(&["--metrics"]);
    let mut socket = server.connect().await;
    socket.send("four".into()).await.unwrap();
    socket.next().await.unwrap().unwrap();
    let frame = CloseFrame {
        code: 4001.into(),
        reason: "".into(),
    };
    socket.close(Some(frame)).await.unwrap();
    while socket.next().await.is_some() {}
    server
        .raw(&handshake("GET", "Sec-WebSocket-Version: 8\r\n"))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let answer = String::from_utf8(server.raw(get).await).unwrap();
    for line in [
        "echo_connections_total 1",
        "echo_connections_open 0",
        "echo_messages_total 1",
        "echo_bytes_total 4",
        "echo_closes_total{code=\"4001\"} 1",
        "echo_handshakes_refused_total{status=\"426\"} 1",
    ] {
        assert!(
            answer.lines().any(|l| l == line),
            "no {line:?} in\n{answer}"
        );
    }
}
