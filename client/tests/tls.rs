//! `wss://` on the native transport: the echo server in-process, serving TLS with a
//! certificate made in the test. With the application's roots (`Builder::tls_config`) the
//! socket opens and echoes; with the default roots (Mozilla's) the same server is refused. A
//! private certificate authority made here, and client certificates it issues for a server
//! that requires them, through `tls_config`; and, with the `platform-verifier` feature, the
//! system's trust store (`SSL_CERT_FILE`, given to a child process of this test binary).

#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use futures_util::StreamExt;
use test_support::tls::{Authority, Localhost};
use wasm_websocket::{Builder, CloseCause, Error, Message, Transport, WebSocket};

/// An echo server on loopback, serving `wss://` with a certificate for `localhost`; its port
/// and the certificate.
async fn tls_server() -> (u16, Localhost) {
    let localhost = Localhost::new();
    let port = serve(localhost.server_config()).await;
    (port, localhost)
}

/// An echo server on loopback, serving `wss://` as `tls` says; its port.
async fn serve(tls: rustls::ServerConfig) -> u16 {
    let config = wsecho::Config {
        tls: Some(Arc::new(tls)),
        ..wsecho::Config::default()
    };
    let listener = wsecho::listen("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(wsecho::serve(listener, config, std::future::pending()));
    port
}

/// Opens `builder`'s socket, checks one echo and closes it.
async fn echoes(builder: Builder) {
    let socket = builder.open().await.unwrap();
    let mut messages = socket.messages();
    socket.send("over TLS").unwrap();
    let reply = messages.next().await;
    assert_eq!(reply, Some(Message::Text("Received:  over TLS".into())));
    socket.close().unwrap();
    while messages.next().await.is_some() {}
}

/// The close an awaited `open` of `builder` fails with.
async fn refused(builder: Builder) -> wasm_websocket::CloseEvent {
    match builder.open().await {
        Err(Error::ConnectFailed(close)) => close,
        other => panic!("expected ConnectFailed, got {:?}", other.map(|_| ())),
    }
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

#[tokio::test(flavor = "current_thread")]
async fn a_private_authority_and_client_certificates_through_tls_config() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let authority = Authority::new("wasm-websocket test authority");
            let clients = Authority::new("wasm-websocket test clients");
            let stranger = Authority::new("someone else");
            let trusting = |identity| Arc::new(authority.client_config(identity));

            // A server whose certificate the private authority issued: trusted through it.
            let port = serve(authority.server_config(None)).await;
            let url = format!("wss://localhost:{port}/");
            echoes(WebSocket::builder(&url).tls_config(trusting(None))).await;
            let close = refused(WebSocket::builder(&url)).await;
            assert!(close.reason.contains("certificate"), "{}", close.reason);

            // A server that requires a client certificate of `clients`: opens with one, and
            // refuses a client without one, or with one from another authority.
            let port = serve(authority.server_config(Some(&clients))).await;
            let url = format!("wss://localhost:{port}/");
            echoes(WebSocket::builder(&url).tls_config(trusting(Some(clients.issue(true))))).await;
            for identity in [None, Some(stranger.issue(true))] {
                let close = refused(WebSocket::builder(&url).tls_config(trusting(identity))).await;
                assert_eq!(
                    (close.code, close.cause),
                    (1006, CloseCause::HandshakeFailed)
                );
            }
        })
        .await
}

/// The child of [`the_platform_verifier_trusts_the_systems_store`]: opens
/// `TLS_TEST_URL` with the platform's verifier, and expects it to open if `TLS_TEST_OPENS`.
#[cfg(feature = "platform-verifier")]
#[tokio::test(flavor = "current_thread")]
#[ignore = "a child process of the_platform_verifier_trusts_the_systems_store"]
async fn platform_verifier_child() {
    let url = std::env::var("TLS_TEST_URL").unwrap();
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let builder = WebSocket::builder(&url).platform_verifier();
            if std::env::var_os("TLS_TEST_OPENS").is_some() {
                echoes(builder).await;
            } else {
                let close = refused(builder).await;
                assert!(close.reason.contains("certificate"), "{}", close.reason);
            }
        })
        .await
}

/// The system's store, as `SSL_CERT_FILE` names it (rustls-native-certs reads that variable,
/// as OpenSSL does): the server's authority in it opens the socket; another does not.
#[cfg(feature = "platform-verifier")]
#[tokio::test(flavor = "current_thread")]
async fn the_platform_verifier_trusts_the_systems_store() {
    let authority = Authority::new("wasm-websocket test authority");
    let port = serve(authority.server_config(None)).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-store-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (ours, theirs) = (dir.join("ours.pem"), dir.join("theirs.pem"));
    std::fs::write(&ours, authority.pem()).unwrap();
    std::fs::write(&theirs, Authority::new("someone else").pem()).unwrap();
    for (store, opens) in [(&ours, true), (&theirs, false)] {
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap());
        child.args(["--exact", "platform_verifier_child", "--ignored"]);
        child.env("TLS_TEST_URL", format!("wss://localhost:{port}/"));
        child.env("SSL_CERT_FILE", store).env_remove("SSL_CERT_DIR");
        if opens {
            child.env("TLS_TEST_OPENS", "1");
        }
        // Awaited, so that this runtime goes on serving the child meanwhile.
        let output = child.output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "with {}:\n{stdout}{}",
            store.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
