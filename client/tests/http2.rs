//! WebSockets over HTTP/2 natively (feature `http2`, `Builder::http2`): the echo server
//! in-process over TLS with a certificate made here, behind a relay of the test's that counts
//! the TCP connections it carries (so that sharing is seen from outside the client) and can
//! cut them or stop forwarding on them. Many sockets share one connection and behave as over
//! TCP (messages, limits, closes, receive backpressure per stream); a server without HTTP/2,
//! or with HTTP/2 but without WebSockets over it, gets HTTP/1.1; `Http2::Always` and
//! `Http2::Never`; reconnection after the connection is cut and after a restart of the
//! server, with the queue; the heartbeat, over a stalled stream and over a connection gone
//! silent.

#![cfg(all(not(target_arch = "wasm32"), feature = "http2"))]

#[path = "support/echo.rs"]
mod echo;

#[path = "support/skip.rs"]
mod skip;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use echo::Echo;
use futures_util::StreamExt;
use skip::{next_close, next_open};
use test_support::tls::Localhost;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wasm_websocket::{
    Builder, CloseCause, Error, Event, Events, Heartbeat, Http2, HttpVersion, Message, Reconnect,
    Sent, WebSocket,
};

/// A TCP relay in front of a server, on a thread of its own: counts the connections it
/// accepts and the bytes it forwards towards the client; `cut` closes every connection it
/// carries, `silence` stops forwarding on them (new ones pass), as a network that lost them.
struct Relay {
    port: u16,
    shared: Arc<RelayShared>,
    _runtime: std::thread::JoinHandle<()>,
}

#[derive(Default)]
struct RelayShared {
    accepted: AtomicUsize,
    to_client: AtomicU64,
    /// Connections numbered below this are cut.
    cut_below: AtomicUsize,
    /// Connections numbered below this forward nothing.
    silent_below: AtomicUsize,
}

impl Relay {
    fn start(server: u16) -> Relay {
        let shared = Arc::new(RelayShared::default());
        let (bound, port_rx) = std::sync::mpsc::channel();
        let runtime = std::thread::spawn({
            let shared = shared.clone();
            move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                    bound.send(listener.local_addr().unwrap().port()).unwrap();
                    while let Ok((client, _)) = listener.accept().await {
                        let id = shared.accepted.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(relay(client, server, id, shared.clone()));
                    }
                });
            }
        });
        Relay {
            port: port_rx.recv().unwrap(),
            shared,
            _runtime: runtime,
        }
    }

    fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    fn to_client(&self) -> u64 {
        self.shared.to_client.load(Ordering::SeqCst)
    }

    /// Closes every connection accepted so far.
    fn cut(&self) {
        let accepted = self.accepted();
        self.shared.cut_below.store(accepted, Ordering::SeqCst);
    }

    /// Forwards nothing more on the connections accepted so far, and keeps them open.
    fn silence(&self) {
        let accepted = self.accepted();
        self.shared.silent_below.store(accepted, Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("wss://localhost:{}/", self.port)
    }
}

async fn relay(client: TcpStream, server: u16, id: usize, shared: Arc<RelayShared>) {
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", server)).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = upstream.into_split();
    let cut = async {
        while shared.cut_below.load(Ordering::SeqCst) <= id {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        () = pipe(client_read, server_write, id, &shared, false) => {}
        () = pipe(server_read, client_write, id, &shared, true) => {}
        () = cut => {}
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    id: usize,
    shared: &RelayShared,
    to_client: bool,
) {
    let mut buf = vec![0; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if shared.silent_below.load(Ordering::SeqCst) > id {
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        if to_client {
            shared.to_client.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
    let _ = to.shutdown().await;
}

async fn local<F: Future>(body: F) -> F::Output {
    tokio::task::LocalSet::new().run_until(body).await
}

/// A builder for `url` trusting `localhost`'s certificate through `tls` (the same
/// configuration for every socket, so that they may share).
fn builder(url: &str, tls: &Arc<rustls::ClientConfig>) -> Builder {
    WebSocket::builder(url).tls_config(tls.clone())
}

/// The next message among `events`, skipping the rest.
async fn next_message(events: &mut Events) -> Message {
    loop {
        match events.next().await {
            Some(Event::Message(message)) => return message,
            Some(_) => {}
            None => panic!("the events ended without a message"),
        }
    }
}

/// `future`, which must be done within `seconds`.
async fn within<F: Future>(seconds: u64, what: &str, future: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(seconds), future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: not within {seconds} s"),
    }
}

fn text(text: &str) -> Message {
    Message::Text(format!("Received:  {text}"))
}

#[tokio::test(flavor = "current_thread")]
async fn sockets_to_one_server_share_one_connection_and_behave_as_over_tcp() {
    let localhost = Localhost::new();
    let echo = Echo::tls(0, &localhost, wsecho::Config::default());
    let relay = Relay::start(echo.port);
    let tls = Arc::new(localhost.client_config());
    local(async {
        let opening = (0..20).map(|_| builder(&relay.url(), &tls).open());
        let sockets: Vec<WebSocket> = futures_util::future::try_join_all(opening).await.unwrap();
        for socket in &sockets {
            assert_eq!(socket.http_version(), Some(HttpVersion::Http2));
        }
        assert_eq!(relay.accepted(), 1, "20 sockets, one TCP connection");

        // Text, binary and a message of 900 KiB (the server's limit is 1 MiB), each socket at
        // once.
        let echoes = sockets.iter().enumerate().map(|(i, socket)| async move {
            let mut messages = socket.messages();
            socket.send(format!("socket {i}")).unwrap();
            assert_eq!(messages.next().await, Some(text(&format!("socket {i}"))));
            let binary = vec![i as u8; 3000];
            socket.send(binary.clone()).unwrap();
            assert_eq!(messages.next().await, Some(Message::Binary(binary.into())));
            let large: Vec<u8> = (0..900 << 10).map(|n| (n % 251) as u8).collect();
            socket.send(large.clone()).unwrap();
            assert_eq!(messages.next().await, Some(Message::Binary(large.into())));
        });
        within(30, "the echoes", futures_util::future::join_all(echoes)).await;

        // Closes: the client's code, the server's (`!close`), and the server's limit (1009);
        // each ends its own stream, and the others go on.
        let mut messages = sockets[0].messages();
        sockets[0].close_with(4000, "done").unwrap();
        assert_eq!(messages.next().await, None);
        assert_eq!(messages.close_event().map(|close| close.code), Some(4000));
        let mut messages = sockets[1].messages();
        sockets[1].send("!close 4321 bye").unwrap();
        assert_eq!(messages.next().await, None);
        let close = messages.close_event().unwrap();
        assert_eq!((close.code, close.reason.as_str()), (4321, "bye"));
        let mut messages = sockets[2].messages();
        sockets[2].send(vec![0; (1 << 20) + 1]).unwrap();
        assert_eq!(messages.next().await, None);
        assert_eq!(messages.close_event().map(|close| close.code), Some(1009));
        let mut messages = sockets[3].messages();
        sockets[3].send("still here").unwrap();
        assert_eq!(messages.next().await, Some(text("still here")));

        // Closed sockets free their streams; one opened now takes one on the same connection.
        let mut closing = Vec::new();
        for socket in sockets {
            let mut messages = socket.messages();
            let _ = socket.close();
            closing.push(async move { while messages.next().await.is_some() {} });
        }
        futures_util::future::join_all(closing).await;
        let socket = builder(&relay.url(), &tls).open().await.unwrap();
        assert_eq!(socket.http_version(), Some(HttpVersion::Http2));
        assert_eq!(
            relay.accepted(),
            1,
            "the idle connection was kept for the next socket"
        );
        // Another TLS setup is another connection.
        let other = Arc::new(localhost.client_config());
        let socket = builder(&relay.url(), &other).open().await.unwrap();
        assert_eq!(socket.http_version(), Some(HttpVersion::Http2));
        assert_eq!(relay.accepted(), 2);
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_server_without_http2_gets_http11_and_never_and_always_are_obeyed() {
    let localhost = Localhost::new();
    let tls = Arc::new(localhost.client_config());
    let without = wsecho::Config {
        http2: false,
        ..wsecho::Config::default()
    };
    let echo = Echo::tls(0, &localhost, without);
    let relay = Relay::start(echo.port);
    let with = Echo::tls(0, &localhost, wsecho::Config::default());
    let with_relay = Relay::start(with.port);
    let cleartext = Echo::start(
        0,
        wsecho::Config {
            h2c: true,
            ..wsecho::Config::default()
        },
    );
    let h2c = Relay::start(cleartext.port);
    local(async {
        // `--no-http2`: ALPN chooses HTTP/1.1, and the handshake goes on over that TLS
        // connection: one each.
        for n in 1..=3 {
            let socket = builder(&relay.url(), &tls).open().await.unwrap();
            assert_eq!(socket.http_version(), Some(HttpVersion::Http11));
            let mut messages = socket.messages();
            socket.send("over HTTP/1.1").unwrap();
            assert_eq!(messages.next().await, Some(text("over HTTP/1.1")));
            assert_eq!(relay.accepted(), n);
        }
        // Required, it fails, and says why.
        let refused = builder(&relay.url(), &tls)
            .http2(Http2::Always)
            .open()
            .await;
        let Err(Error::ConnectFailed(close)) = refused else {
            panic!("expected ConnectFailed, got {:?}", refused.map(|_| ()));
        };
        assert_eq!(
            (close.code, close.cause),
            (1006, CloseCause::HandshakeFailed)
        );
        assert!(close.reason.contains("ALPN"), "{}", close.reason);

        // Forbidden: a server with HTTP/2 gets a connection per socket over HTTP/1.1.
        for n in 1..=2 {
            let socket = builder(&with_relay.url(), &tls)
                .http2(Http2::Never)
                .open()
                .await;
            assert_eq!(socket.unwrap().http_version(), Some(HttpVersion::Http11));
            assert_eq!(with_relay.accepted(), n);
        }

        // Required for `ws://`: cleartext HTTP/2 by prior knowledge (`--h2c`), shared too.
        let url = format!("ws://127.0.0.1:{}/", h2c.port);
        for _ in 0..3 {
            let socket = WebSocket::builder(&url)
                .http2(Http2::Always)
                .open()
                .await
                .unwrap();
            assert_eq!(socket.http_version(), Some(HttpVersion::Http2));
            let mut messages = socket.messages();
            socket.send("h2c").unwrap();
            assert_eq!(messages.next().await, Some(text("h2c")));
        }
        assert_eq!(h2c.accepted(), 1);
        // And `ws://` stays on HTTP/1.1 by default.
        let socket = WebSocket::open(&url).await.unwrap();
        assert_eq!(socket.http_version(), Some(HttpVersion::Http11));
        assert_eq!(h2c.accepted(), 2);
    })
    .await;
}

/// A server that offers `h2` in ALPN but whose HTTP/2 does not take WebSockets (no
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL`, as an HTTP/2 server that predates RFC 8441): TLS made
/// here, hyper's HTTP/2 server without the setting on `h2`, and on `http/1.1` the plain echo
/// server behind. It counts its HTTP/2 connections; its port.
async fn http2_without_websockets(localhost: &Localhost, echo: u16, h2: Arc<AtomicUsize>) -> u16 {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let mut config = localhost.server_config();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, h2) = (acceptor.clone(), h2.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    h2.fetch_add(1, Ordering::SeqCst);
                    let service = service_fn(|_| async {
                        let body = http_body_util::Empty::<bytes::Bytes>::new();
                        let response = hyper::Response::builder().status(404).body(body);
                        Ok::<_, std::convert::Infallible>(response.unwrap())
                    });
                    let serving = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service);
                    let _ = serving.await;
                } else {
                    let mut inside = TcpStream::connect(("127.0.0.1", echo)).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut inside).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "current_thread")]
async fn a_server_whose_http2_refuses_websockets_gets_http11_and_is_remembered() {
    let localhost = Localhost::new();
    let tls = Arc::new(localhost.client_config());
    let echo = Echo::start(0, wsecho::Config::default());
    let h2 = Arc::new(AtomicUsize::new(0));
    let port = http2_without_websockets(&localhost, echo.port, h2.clone()).await;
    let url = format!("wss://localhost:{port}/");
    local(async {
        for _ in 0..3 {
            let socket = builder(&url, &tls).open().await.unwrap();
            assert_eq!(socket.http_version(), Some(HttpVersion::Http11));
            let mut messages = socket.messages();
            socket.send("fell back").unwrap();
            assert_eq!(messages.next().await, Some(text("fell back")));
        }
        // The first socket tried HTTP/2 and fell back; the others went straight to HTTP/1.1.
        assert_eq!(h2.load(Ordering::SeqCst), 1);
        let refused = builder(&url, &tls).http2(Http2::Always).open().await;
        let Err(Error::ConnectFailed(close)) = refused else {
            panic!("expected ConnectFailed, got {:?}", refused.map(|_| ()));
        };
        assert!(
            close.reason.contains("ENABLE_CONNECT_PROTOCOL"),
            "{}",
            close.reason
        );
    })
    .await;
}

/// One socket's application stops reading while the server floods it: the client stops
/// reading that stream, HTTP/2's flow control holds the server back (the bytes towards the
/// client stop growing, far below what the flood sends), and another socket on the same
/// connection echoes meanwhile; once read again, every message arrives, in order.
#[tokio::test(flavor = "current_thread")]
async fn a_socket_that_is_not_read_holds_back_its_stream_only() {
    const COUNT: usize = 600;
    const SIZE: usize = 64 << 10;
    let localhost = Localhost::new();
    let config = wsecho::Config {
        send_timeout: Duration::from_secs(60),
        ..wsecho::Config::default()
    };
    let echo = Echo::tls(0, &localhost, config);
    let relay = Relay::start(echo.port);
    let tls = Arc::new(localhost.client_config());
    local(async {
        let slow = builder(&relay.url(), &tls)
            .receive_limit(4)
            .open()
            .await
            .unwrap();
        let other = builder(&relay.url(), &tls).open().await.unwrap();
        assert_eq!(relay.accepted(), 1);
        let mut flood = slow.messages();
        slow.send(format!("!flood {COUNT} {SIZE}")).unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let held = relay.to_client();
        let mut messages = other.messages();
        for n in 0..20 {
            other.send(format!("not held up {n}")).unwrap();
            let reply = within(2, "an echo beside the stalled stream", messages.next()).await;
            assert_eq!(reply, Some(text(&format!("not held up {n}"))));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let still = relay.to_client();
        let flooded = (COUNT * SIZE) as u64;
        eprintln!(
            "held back at {} KiB of the flood's {} KiB",
            held >> 10,
            flooded >> 10
        );
        assert!(
            still < held + (64 << 10),
            "the flood went on while unread: {held} then {still} bytes"
        );
        assert!(
            held < flooded / 3,
            "{held} bytes of {flooded} reached the client unread"
        );
        let drained = async {
            for n in 0..COUNT {
                let Some(Message::Binary(payload)) = flood.next().await else {
                    panic!("message {n} of the flood is missing");
                };
                assert_eq!(payload.len(), SIZE, "message {n}");
            }
        };
        within(60, "the flood once read", drained).await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn reconnection_and_the_queue_after_the_connection_is_cut_and_after_a_restart() {
    let localhost = Localhost::new();
    let echo = Echo::tls(0, &localhost, wsecho::Config::default());
    let port = echo.port;
    let relay = Relay::start(port);
    let tls = Arc::new(localhost.client_config());
    local(async {
        let reconnecting = || {
            builder(&relay.url(), &tls)
                .reconnect(
                    Reconnect::new()
                        .initial_delay(Duration::from_millis(50))
                        .max_delay(Duration::from_millis(200)),
                )
                .connect()
                .unwrap()
        };
        let sockets: Vec<WebSocket> = (0..3).map(|_| reconnecting()).collect();
        let mut events: Vec<Events> = sockets.iter().map(WebSocket::events).collect();
        for events in &mut events {
            next_open(events).await;
        }
        assert_eq!(relay.accepted(), 1);

        // The connection is cut: every socket sees it end (1006), and they come back on one new
        // connection.
        relay.cut();
        for events in &mut events {
            let close = within(5, "the close", next_close(events)).await;
            assert_eq!(
                (close.code, close.cause),
                (1006, CloseCause::Remote),
                "{close}"
            );
            within(5, "the reopening", next_open(events)).await;
        }
        for socket in &sockets {
            assert_eq!(socket.http_version(), Some(HttpVersion::Http2));
        }
        assert_eq!(
            relay.accepted(),
            2,
            "the sockets came back on one connection"
        );

        // The server is killed: the sends wait in the queue while it is away, and go out in
        // order once a new instance listens on the same port.
        echo.kill();
        for events in &mut events {
            within(5, "the close", next_close(events)).await;
        }
        for (i, socket) in sockets.iter().enumerate() {
            for n in 0..3 {
                assert_eq!(socket.send(format!("{i}.{n}")), Ok(Sent::Queued));
            }
        }
        let restarted = Echo::tls(port, &localhost, wsecho::Config::default());
        for (i, events) in events.iter_mut().enumerate() {
            within(10, "the reopening", next_open(events)).await;
            for n in 0..3 {
                let reply = within(5, "a queued message", next_message(events)).await;
                assert_eq!(reply, text(&format!("{i}.{n}")));
            }
        }
        for socket in &sockets {
            assert_eq!(socket.http_version(), Some(HttpVersion::Http2));
            socket.close().unwrap();
        }
        drop(restarted);
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn the_heartbeat_over_a_stalled_stream_and_over_a_silent_connection() {
    let localhost = Localhost::new();
    let echo = Echo::tls(0, &localhost, wsecho::Config::default());
    let relay = Relay::start(echo.port);
    let tls = Arc::new(localhost.client_config());
    let reply =
        |message: &Message| matches!(message, Message::Text(text) if text == "Received:  ping");
    local(async {
        let watched = || {
            builder(&relay.url(), &tls)
                .reconnect(
                    Reconnect::new()
                        .initial_delay(Duration::from_millis(50))
                        .max_delay(Duration::from_millis(200)),
                )
                .heartbeat(
                    Heartbeat::new(Duration::from_millis(300), Duration::from_millis(300))
                        .reply(reply),
                )
                .connect()
                .unwrap()
        };
        let (stalled, bystander) = (watched(), watched());
        let (mut events, mut bystanding) = (stalled.events(), bystander.events());
        next_open(&mut events).await;
        next_open(&mut bystanding).await;

        // One stream's server stops answering: its heartbeat finds it dead and it reconnects,
        // on the same connection (which still answers); the other socket is not disturbed.
        stalled.send("!stall 10000").unwrap();
        let lost = within(5, "the heartbeat's verdict", next_close(&mut events)).await;
        assert_eq!(lost.cause, CloseCause::HeartbeatLost, "{lost}");
        within(5, "the reopening", next_open(&mut events)).await;
        stalled.send("after").unwrap();
        assert_eq!(next_message(&mut events).await, text("after"));
        bystander.send("undisturbed").unwrap();
        assert_eq!(next_message(&mut bystanding).await, text("undisturbed"));
        assert_eq!(relay.accepted(), 1);

        // The connection falls silent (the network lost it): both heartbeats find it dead, and
        // their reconnections do not go into it (it sent and heard nothing for 2 s: at risk)
        // but onto a new one.
        relay.silence();
        for events in [&mut events, &mut bystanding] {
            let lost = within(5, "the heartbeat's verdict", next_close(events)).await;
            assert_eq!(lost.cause, CloseCause::HeartbeatLost, "{lost}");
            within(10, "the reopening", next_open(events)).await;
        }
        for (socket, events) in [(&stalled, &mut events), (&bystander, &mut bystanding)] {
            socket.send("on a new connection").unwrap();
            assert_eq!(next_message(events).await, text("on a new connection"));
            assert_eq!(socket.http_version(), Some(HttpVersion::Http2));
        }
        assert_eq!(relay.accepted(), 2);
        stalled.close().unwrap();
        bystander.close().unwrap();
    })
    .await;
}

/// A server lets an HTTP/2 connection with no socket go after its `--http-timeout` (GOAWAY):
/// the pool lets go of it too, and the next socket opens another.
#[tokio::test(flavor = "current_thread")]
async fn a_connection_the_server_sends_goaway_on_leaves_the_pool() {
    let localhost = Localhost::new();
    let config = wsecho::Config {
        http_timeout: Duration::from_millis(500),
        ..wsecho::Config::default()
    };
    let echo = Echo::tls(0, &localhost, config);
    let relay = Relay::start(echo.port);
    let tls = Arc::new(localhost.client_config());
    local(async {
        for n in 1..=2 {
            let socket = builder(&relay.url(), &tls).open().await.unwrap();
            assert_eq!(socket.http_version(), Some(HttpVersion::Http2));
            let mut messages = socket.messages();
            socket.send("before GOAWAY").unwrap();
            assert_eq!(messages.next().await, Some(text("before GOAWAY")));
            socket.close().unwrap();
            while messages.next().await.is_some() {}
            assert_eq!(relay.accepted(), n);
            // Idle for twice the server's limit (it looks every 500 ms): GOAWAY.
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
    })
    .await;
}

/// A close the server never answers (`!stall`) ends after the client's close timeout, with the
/// same close event over HTTP/2 as over HTTP/1.1.
#[tokio::test(flavor = "current_thread")]
async fn an_unanswered_close_times_out_as_over_tcp() {
    let localhost = Localhost::new();
    let echo = Echo::tls(0, &localhost, wsecho::Config::default());
    let relay = Relay::start(echo.port);
    let tls = Arc::new(localhost.client_config());
    local(async {
        let mut seen = Vec::new();
        for (http2, version) in [
            (Http2::Auto, HttpVersion::Http2),
            (Http2::Never, HttpVersion::Http11),
        ] {
            let socket = builder(&relay.url(), &tls)
                .http2(http2)
                .open()
                .await
                .unwrap();
            assert_eq!(socket.http_version(), Some(version));
            let mut events = socket.events();
            socket.send("!stall 5000").unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let asked = std::time::Instant::now();
            socket.close_with(4000, "bye").unwrap();
            let close = within(5, "the close", next_close(&mut events)).await;
            let took = asked.elapsed();
            assert!(
                (Duration::from_millis(1500)..Duration::from_millis(3500)).contains(&took),
                "{version:?}: the close took {took:?}"
            );
            seen.push((close.code, close.cause, close.was_clean));
        }
        assert_eq!(seen[0], seen[1], "HTTP/2, then HTTP/1.1");
    })
    .await;
}

/// The handshake's outcomes are the same over HTTP/2 as over HTTP/1.1: the subprotocol chosen,
/// the application's headers (here an `Origin` the server refuses: 403), and an offer the
/// server cannot take.
#[tokio::test(flavor = "current_thread")]
async fn subprotocols_headers_and_refusals_as_over_http11() {
    let localhost = Localhost::new();
    let config = wsecho::Config {
        protocols: vec!["echo.v2".to_owned()],
        ..wsecho::Config::default()
    };
    let echo = Echo::tls(0, &localhost, config);
    let relay = Relay::start(echo.port);
    let tls = Arc::new(localhost.client_config());
    let outcome = |http2: Http2,
                   protocols: &'static [&'static str],
                   origin: Option<&'static str>| {
        let mut builder = builder(&relay.url(), &tls)
            .http2(http2)
            .protocols(protocols.iter().copied());
        if let Some(origin) = origin {
            builder = builder.header("Origin", origin);
        }
        async move {
            match builder.open().await {
                Ok(socket) => Ok((socket.protocol(), socket.http_version())),
                Err(Error::ConnectFailed(close)) => Err((close.code, close.cause, close.reason)),
                Err(other) => panic!("{other:?}"),
            }
        }
    };
    local(async {
        let cases: [(&[&str], Option<&str>); 4] = [
            (&["chat", "echo.v2"], None),
            (&[], None),
            (&["chat"], None),
            (&["echo.v2"], Some("https://attacker.example")),
        ];
        for (protocols, origin) in cases {
            let over_h2 = outcome(Http2::Auto, protocols, origin).await;
            let over_h1 = outcome(Http2::Never, protocols, origin).await;
            match (&over_h2, &over_h1) {
                (Ok((chosen2, version2)), Ok((chosen1, version1))) => {
                    assert_eq!(chosen2, chosen1, "{protocols:?}");
                    assert_eq!(*version2, Some(HttpVersion::Http2));
                    assert_eq!(*version1, Some(HttpVersion::Http11));
                }
                (Err(refused2), Err(refused1)) => assert_eq!(refused2, refused1, "{protocols:?}"),
                _ => panic!("{protocols:?} {origin:?}: {over_h2:?} over HTTP/2, {over_h1:?}"),
            }
            eprintln!("{protocols:?} {origin:?}: {over_h2:?}");
        }
        let chosen = outcome(Http2::Auto, &["chat", "echo.v2"], None).await;
        assert_eq!(chosen.unwrap().0, "echo.v2");
        let refused = outcome(Http2::Auto, &["echo.v2"], Some("https://attacker.example")).await;
        assert!(refused.unwrap_err().2.contains("403"));
    })
    .await;
}

/// The pool is the thread's, and outlives a runtime: a runtime shut down with a connection in
/// the pool leaves nothing that the next runtime on the thread would try to use.
#[test]
fn a_runtime_after_another_on_the_same_thread_opens_its_own_connection() {
    let localhost = Localhost::new();
    let echo = Echo::tls(0, &localhost, wsecho::Config::default());
    let relay = Relay::start(echo.port);
    let tls = Arc::new(localhost.client_config());
    for n in 1..=2 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(local(async {
            let socket = builder(&relay.url(), &tls).open().await.unwrap();
            assert_eq!(socket.http_version(), Some(HttpVersion::Http2));
            let mut messages = socket.messages();
            socket.send("in this runtime").unwrap();
            let reply = within(5, "the echo", messages.next()).await;
            assert_eq!(reply, Some(text("in this runtime")));
            // Left open: the runtime goes with the socket and its connection.
        }));
        drop(runtime);
        assert_eq!(relay.accepted(), n);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn compression_over_http2_streams_of_one_connection() {
    let localhost = Localhost::new();
    let config = wsecho::Config {
        deflate: true,
        deflate_threshold: 0,
        ..wsecho::Config::default()
    };
    let echo = Echo::tls(0, &localhost, config);
    let relay = Relay::start(echo.port);
    let tls = Arc::new(localhost.client_config());
    local(async {
        let opening = (0..3).map(|_| builder(&relay.url(), &tls).deflate().open());
        let sockets: Vec<WebSocket> = futures_util::future::try_join_all(opening).await.unwrap();
        assert_eq!(relay.accepted(), 1, "three sockets, one TCP connection");
        let before = relay.shared.to_client.load(Ordering::SeqCst);
        // 300 KB of text that compresses well, both ways, on each stream at once.
        let large = "all work and no play makes a dull socket. ".repeat(7000);
        let echoes = sockets.iter().map(|socket| {
            let large = large.clone();
            async move {
                assert_eq!(socket.http_version(), Some(HttpVersion::Http2));
                assert!(
                    socket.extensions().starts_with("permessage-deflate"),
                    "{:?}",
                    socket.extensions()
                );
                let mut messages = socket.messages();
                socket.send(large.clone()).unwrap();
                assert_eq!(messages.next().await, Some(text(&large)));
            }
        });
        within(30, "the echoes", futures_util::future::join_all(echoes)).await;
        let carried = relay.shared.to_client.load(Ordering::SeqCst) - before;
        assert!(
            carried < large.len() as u64 / 10,
            "three echoes of {} B came back in {carried} B: not compressed",
            large.len()
        );
        // A message past the server's limit once inflated (1 MiB) is that stream's 1009.
        let mut messages = sockets[0].messages();
        sockets[0].send("a".repeat((1 << 20) + 1)).unwrap();
        assert_eq!(messages.next().await, None);
        assert_eq!(messages.close_event().map(|close| close.code), Some(1009));
        let mut messages = sockets[1].messages();
        sockets[1].send("still here").unwrap();
        assert_eq!(messages.next().await, Some(text("still here")));
    })
    .await;
}
