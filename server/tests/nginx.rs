//! `deploy/nginx.conf` in front of two echo servers: the page and the WebSocket both pass.
//!
//! Needs nginx (`cargo xtask test` installs it and sets `REQUIRE_NGINX`); without it, and
//! without that variable, the test says so and does nothing.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use support::{Server, status_line};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

const NGINX: &str = "/usr/sbin/nginx";

struct Nginx(Child);

impl Drop for Nginx {
    /// SIGTERM, not SIGKILL: the master then stops its workers, which SIGKILL would orphan.
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.0.wait();
    }
}

/// A free loopback port: bound, read and released.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn nginx_proxies_the_page_and_the_websocket_to_several_instances() {
    if !Path::new(NGINX).exists() {
        assert!(
            std::env::var_os("REQUIRE_NGINX").is_none(),
            "{NGINX} is missing"
        );
        eprintln!("SKIPPED: {NGINX} is not installed; `cargo xtask test` installs it");
        return;
    }
    let www = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nginx-www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "<h1>WebSocket Echo Test</h1>").unwrap();
    let servers = [Server::with_www(&www), Server::with_www(&www)];

    // The deployed configuration, with the test's addresses in place of the examples.
    let deployed = include_str!("../../deploy/nginx.conf");
    let port = free_port();
    let upstreams: String = servers
        .iter()
        .map(|server| format!("server {};\n", server.addr))
        .collect();
    let site = deployed
        .replace("server 127.0.0.1:1234;\n", &upstreams)
        .replace("    server 127.0.0.1:1235;\n", "")
        .replace("listen 8080;", &format!("listen 127.0.0.1:{port};"));
    assert_ne!(
        site, deployed,
        "the example addresses moved in deploy/nginx.conf"
    );
    let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("nginx-{port}"));
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    std::fs::write(prefix.join("site.conf"), site).unwrap();
    let main = format!(
        "worker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log;\n\
         events {{ worker_connections 256; }}\n\
         http {{ access_log off; include {p}/site.conf; }}\n",
        p = prefix.display()
    );
    std::fs::write(prefix.join("nginx.conf"), main).unwrap();
    let _nginx = Nginx(
        Command::new(NGINX)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(prefix.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            // Nothing of nginx may hold the test's output open.
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    while tokio::net::TcpStream::connect(&addr).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "nginx did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The page.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let get = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(get.as_bytes()).await.unwrap();
    let mut page = Vec::new();
    stream.read_to_end(&mut page).await.unwrap();
    assert_eq!(status_line(&page), "HTTP/1.1 200 OK");
    assert!(page.ends_with(b"<h1>WebSocket Echo Test</h1>"));

    // Fault 4 of issue 13: the instances are bound to loopback, which once made them trust
    // `Origin: null`, the origin of any site's sandboxed frame. Through nginx it gets 403.
    for origin in ["null", "https://evil.example"] {
        let mut request = format!("ws://{addr}/").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
        let refused = tokio_tungstenite::connect_async(request).await.unwrap_err();
        let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
            panic!("expected an HTTP answer for {origin}, got {refused:?}")
        };
        assert_eq!(response.status(), 403, "{origin}");
    }

    // WebSockets, from a page of the proxy's own origin, over both instances.
    for n in 0..4 {
        let mut request = format!("ws://{addr}/").into_client_request().unwrap();
        let origin = format!("http://{addr}").parse().unwrap();
        request.headers_mut().insert("Origin", origin);
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        socket
            .send(Message::text(format!("via nginx {n}")))
            .await
            .unwrap();
        let reply = socket.next().await.unwrap().unwrap();
        assert_eq!(reply, Message::text(format!("Received:  via nginx {n}")));
        let frame = CloseFrame {
            code: 4000.into(),
            reason: "done".into(),
        };
        socket.close(Some(frame)).await.unwrap();
        let Some(Ok(Message::Close(Some(echoed)))) = socket.next().await else {
            panic!("the close handshake did not pass through nginx")
        };
        assert_eq!(u16::from(echoed.code), 4000);
    }
}
