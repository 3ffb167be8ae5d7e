//! `wss://` on the native transport: the echo server in-process, serving TLS with a
//! certificate made in the test. With the application's roots (`Builder::tls_config`) the
//! socket opens and echoes; with the default roots (Mozilla's) the same server is refused.

#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use futures_util::StreamExt;
use test_support::tls::Localhost;
use wasm_websocket::{CloseCause, Error, Message, Transport, WebSocket};

/// An echo server on loopback, serving `wss://` with a certificate for `localhost`; its port
/// and the certificate.
async fn tls_server() -> (u16, Localhost) {
    let localhost = Localhost::new();
    let config = wsecho::Config {
        tls: Some(Arc::new(localhost.server_config())),
        ..wsecho::Config::default()
    };
    let listener = wsecho::listen("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(wsecho::serve(listener, config, std::future::pending()));
    (port, localhost)
}

#[tokio::test(flavor = "current_thread")]
async fn wss_opens_with_the_applications_roots_and_is_refused_without_them() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (port, localhost) = tls_server().await;
            let url = format!("wss://localhost:{port}/");

            let socket = WebSocket::builder(&url)
                .tls_config(Arc::new(localhost.client_config()))
                .open()
                .await
                .unwrap();
            assert_eq!(socket.transport(), Transport::Tungstenite);
            let mut messages = socket.messages();
            socket.send("over TLS").unwrap();
            let reply = messages.next().await;
            assert_eq!(reply, Some(Message::Text("Received:  over TLS".into())));
            socket.close_with(4000, "done").unwrap();
            assert_eq!(messages.next().await, None);
            assert_eq!(messages.close_event().map(|close| close.code), Some(4000));

            // Mozilla's roots do not know the test's certificate.
            let refused = WebSocket::open(&url).await.unwrap_err();
            let Error::ConnectFailed(close) = refused else {
                panic!("expected ConnectFailed, got {refused:?}");
            };
            assert_eq!(
                (close.code, close.cause),
                (1006, CloseCause::HandshakeFailed)
            );
            assert!(close.reason.contains("certificate"), "{}", close.reason);
        })
        .await
}
