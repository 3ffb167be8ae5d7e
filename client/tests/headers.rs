//! Request headers on the native transport (`Builder::header`), against the echo server
//! in-process on port 0. Its origin policy makes a header's arrival visible: a page of another
//! origin is refused with 403, the server's own is accepted, and no `Origin` at all (not a
//! browser) is accepted too.

#![cfg(not(target_arch = "wasm32"))]

use futures_util::StreamExt;
use wasm_websocket::{CloseCause, Error, Message, WebSocket};

/// The echo server on loopback with its default settings; its port.
async fn server() -> u16 {
    let listener = wsecho::listen("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = wsecho::Config::default();
    tokio::spawn(wsecho::serve(listener, config, std::future::pending()));
    port
}

#[tokio::test(flavor = "current_thread")]
async fn headers_reach_the_server_on_every_handshake() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let port = server().await;
            let url = format!("ws://127.0.0.1:{port}/");

            // The server's own origin, and a header of the application's: opens and echoes.
            let own = format!("http://127.0.0.1:{port}");
            let socket = WebSocket::builder(&url)
                .header("Origin", &own)
                .header("Authorization", "Bearer a-token")
                .open()
                .await
                .unwrap();
            let mut messages = socket.messages();
            socket.send("with headers").unwrap();
            let reply = messages.next().await;
            assert_eq!(reply, Some(Message::Text("Received:  with headers".into())));
            socket.close().unwrap();
            assert_eq!(messages.next().await, None);

            // Another origin: the server answers 403, so the header was sent.
            let refused = WebSocket::builder(&url)
                .header("Origin", "https://attacker.example")
                .open()
                .await
                .unwrap_err();
            let Error::ConnectFailed(close) = refused else {
                panic!("expected ConnectFailed, got {refused:?}");
            };
            assert_eq!(
                (close.code, close.cause),
                (1006, CloseCause::HandshakeFailed)
            );
            assert!(close.reason.contains("403"), "{}", close.reason);
        })
        .await
}

#[tokio::test(flavor = "current_thread")]
async fn a_header_http_does_not_allow_is_a_typed_error() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let url = "ws://127.0.0.1:9/";
            for (name, value) in [("bad name", "x"), ("X-Token", "line\nbreak")] {
                let error = WebSocket::builder(url).header(name, value).connect();
                assert_eq!(
                    error.err(),
                    Some(Error::InvalidHeader(name.to_owned())),
                    "{name}: {value:?}"
                );
            }
        })
        .await
}
