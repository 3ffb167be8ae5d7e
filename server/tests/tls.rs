//! `wss://` with a certificate made in the test.

mod support;

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use support::{Server, assert_echoed};
use test_support::tls::Localhost;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn wss_echoes_with_a_certificate_made_here() {
    let localhost = Localhost::new();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tls-test");
    let (cert, key) = localhost.write_pem(&dir).unwrap();
    let server = Server::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);

    let connector = TlsConnector::from(Arc::new(localhost.client_config()));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let url = format!("wss://localhost:{}/", server.addr.port());
    let (mut socket, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    assert_echoed(&mut socket, "over TLS").await;

    // Plain HTTP on the TLS port is refused without a crash.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"));
    socket.send(Message::text("still here")).await.unwrap();
    assert!(socket.next().await.unwrap().is_ok());
}
