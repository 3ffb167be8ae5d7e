//! What the server answers to plain HTTP and to broken handshakes, spoken as raw bytes.

mod support;

use support::{Server, eventually, status_line, upgrade_request};

const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

fn handshake(method: &str, extra: &str) -> Vec<u8> {
    upgrade_request(method, "127.0.0.1", extra)
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

    // The connection's end is counted once the server has seen it.
    let server = &server;
    let limit = std::time::Duration::from_secs(5);
    let answer = eventually(limit, "the close is counted", || async move {
        let answer = String::from_utf8(server.raw(get).await).unwrap();
        (answer.lines())
            .any(|l| l == "echo_connections_open 0")
            .then_some(answer)
    })
    .await;
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

/// A page directory with what an operator's `www/` may hold besides the page: secrets, the
/// page's sources, links out of it, and a FIFO.
fn cluttered_www() -> std::path::PathBuf {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("www-clutter");
    let _ = std::fs::remove_dir_all(&base);
    let dir = base.join("www");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>page</h1>").unwrap();
    std::fs::write(dir.join(".env"), "SECRET=1").unwrap();
    std::fs::write(dir.join("Cargo.toml"), "[package]").unwrap();
    std::fs::write(dir.join("src/lib.rs"), "fn main() {}").unwrap();
    std::fs::write(base.join("outside.html"), "<h1>outside</h1>").unwrap();
    std::os::unix::fs::symlink(base.join("outside.html"), dir.join("leak.html")).unwrap();
    std::os::unix::fs::symlink("index.html", dir.join("alias.html")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("pipe.js").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    dir
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Fault 5 of issue 13: files.rs served whatever the path named: a FIFO (whose GET hung a
/// thread, and then shutdown never ended), a symlink out of `www/`, dotfiles.
#[tokio::test]
async fn only_regular_page_files_inside_the_root_are_served() {
    let mut server = Server::with_www(&cluttered_www());
    for path in [
        "/.env",
        "/Cargo.toml",
        "/src/lib.rs",
        "/leak.html",
        "/pipe.js",
    ] {
        let started = std::time::Instant::now();
        let answer = server.raw(&get(path)).await;
        assert_eq!(status_line(&answer), "HTTP/1.1 404 Not Found", "{path}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{path}"
        );
    }
    let answer = server.raw(&get("/alias.html")).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
    assert!(answer.ends_with(b"<h1>page</h1>"));
    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn answers_say_nosniff_and_the_icon_is_there() {
    let server = Server::with_www(&www());
    for path in ["/", "/pkg/app.wasm", "/nothing.html"] {
        let answer = String::from_utf8_lossy(&server.raw(&get(path)).await).to_lowercase();
        assert!(
            answer.contains("x-content-type-options: nosniff"),
            "{answer}"
        );
    }
    // The page asks for /favicon.ico; without one in www/ the server has its own.
    let answer = server.raw(&get("/favicon.ico")).await;
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
    assert!(text.contains("content-type: image/x-icon"), "{text}");
}

/// `n` clients that ask for `path` and never read it, each answer begun. Their receive
/// buffers are small, so that the answer cannot all wait in the kernel.
async fn stalled_clients(server: &Server, n: usize, path: &str) -> Vec<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut clients = Vec::new();
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(server.addr).await.unwrap();
        stream.write_all(&get(path)).await.unwrap();
        clients.push(stream);
    }
    // Each answer has begun: the server has the file in hand for every client.
    for stream in &mut clients {
        let mut first = [0u8; 1];
        stream.read_exact(&mut first).await.unwrap();
    }
    clients
}

/// A page directory of its own (tests run at the same time) with a large file of `mib` MiB.
fn www_with_a_large_file(name: &str, mib: usize) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>WebSocket Echo Test</h1>").unwrap();
    std::fs::write(dir.join("pkg/large.wasm"), vec![7u8; mib << 20]).unwrap();
    dir
}

/// Fault 5 of issue 13: each request read its whole file into memory: 100 clients that never
/// read a 4 MB file held 400 MB. Now they share one copy.
#[tokio::test]
async fn clients_that_never_read_a_large_file_share_one_copy() {
    let server = Server::with_www(&www_with_a_large_file("www-shared-copy", 4));
    let _clients = stalled_clients(&server, 100, "/pkg/large.wasm").await;
    let (_, peak) = server.memory_kib();
    eprintln!("100 clients on a 4 MiB file: peak RSS {peak} KiB");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}

/// Fault 5 of issue 13: nothing bounded how long an answer may wait for a client that never
/// reads it. Now the whole HTTP exchange before an upgrade ends at `--http-timeout`: the
/// server lets go of those connections (what is left in the kernel's buffers is the kernel's).
#[tokio::test]
async fn clients_that_never_read_are_let_go_at_the_http_timeout() {
    let dir = www_with_a_large_file("www-cut-off", 24);
    let server = Server::start(&["--www", dir.to_str().unwrap(), "--http-timeout", "2"]);
    let before = server.open_files();
    let _clients = stalled_clients(&server, 5, "/pkg/large.wasm").await;
    assert!(server.open_files() >= before + 5);
    let started = std::time::Instant::now();
    let server = &server;
    let limit = std::time::Duration::from_secs(10);
    eventually(limit, "the server lets go", || async move {
        (server.open_files() <= before).then_some(())
    })
    .await;
    eprintln!("let go after {:?}", started.elapsed());
}

/// "An installed server works": `--www` defaulted to the source tree's `www/`, fixed at
/// compile time, so a server run anywhere else served 404. It is now `www` in the working
/// directory, and without one `GET /` says how to start the server with its page.
#[tokio::test]
async fn the_page_is_found_from_the_working_directory_or_its_absence_explained() {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("installed");
    std::fs::create_dir_all(base.join("elsewhere/www")).unwrap();
    std::fs::write(base.join("elsewhere/www/index.html"), "<h1>here</h1>").unwrap();
    let server = Server::start_in(&base.join("elsewhere"), &[]);
    let answer = server.raw(&get("/")).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
    assert!(answer.ends_with(b"<h1>here</h1>"));

    let server = Server::start_in(&base, &[]);
    let answer = server.raw(&get("/")).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 404 Not Found");
    assert!(String::from_utf8_lossy(&answer).contains("--www DIR"));
}
