//! Proxies, natively: the client through a real HTTP proxy (Debian's tinyproxy, started here
//! on a port of its own) to echo servers in-process, over `ws://` and `wss://`, with and
//! without authentication, and over TLS to the proxy (rustls in front of tinyproxy); the proxy's refusals as typed errors; reconnection, the queue and
//! the heartbeat through it; and the environment's proxy variables, read by a child process
//! of this test binary that is given them.
//!
//! Needs tinyproxy (`cargo xtask test` installs it and sets `REQUIRE_TINYPROXY`); without it,
//! and without that variable, the tests say so and do nothing.

#![cfg(not(target_arch = "wasm32"))]

#[path = "support/echo.rs"]
mod echo;

#[path = "support/skip.rs"]
mod skip;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use echo::Echo;
use futures_util::StreamExt;
use skip::{next_close, next_open};
use test_support::tls::Localhost;
use wasm_websocket::{
    CloseCause, Error, Event, Events, Heartbeat, Message, Reconnect, Sent, WebSocket,
};

const TINYPROXY: &str = "/usr/bin/tinyproxy";
const MICROSOCKS: &str = "/usr/bin/microsocks";

/// Whether `program` is there; if not, the test says so and does nothing, unless
/// `REQUIRE_TINYPROXY` is set (`cargo xtask test` installs both proxies).
fn installed(program: &str) -> bool {
    if Path::new(program).exists() {
        return true;
    }
    assert!(
        std::env::var_os("REQUIRE_TINYPROXY").is_none(),
        "{program} is missing"
    );
    eprintln!("SKIPPED: {program} is not installed; `cargo xtask test` installs it");
    false
}

/// microsocks, a SOCKS5 proxy, on loopback (with `-u USER -P PASSWORD` if `credentials`),
/// killed when dropped; its port.
struct Microsocks {
    child: Child,
    port: u16,
}

impl Microsocks {
    async fn start(credentials: Option<(&str, &str)>) -> Option<Microsocks> {
        if !installed(MICROSOCKS) {
            return None;
        }
        for _ in 0..5 {
            let port = free_port();
            let mut command = Command::new(MICROSOCKS);
            command.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
            if let Some((user, password)) = credentials {
                command.args(["-u", user, "-P", password]);
            }
            let child = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut proxy = Microsocks { child, port };
            let started = Instant::now();
            loop {
                if proxy.child.try_wait().unwrap().is_some() {
                    break;
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return Some(proxy);
                }
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "microsocks did not start"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        panic!("microsocks exited at once, five times");
    }
}

impl Drop for Microsocks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tinyproxy on loopback, killed when dropped; its log says what it was asked.
struct Tinyproxy {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Tinyproxy {
    /// A tinyproxy with these configuration lines besides its port and log (`BasicAuth user
    /// pass`, say); `None` (the test then does nothing) where tinyproxy is missing and
    /// `REQUIRE_TINYPROXY` is not set.
    async fn start(extra: &str) -> Option<Tinyproxy> {
        if !installed(TINYPROXY) {
            return None;
        }
        // A port found free may be taken before tinyproxy binds it (by a server of another
        // test): tinyproxy then exits, and another port is tried.
        for _ in 0..5 {
            let port = free_port();
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tinyproxy-{port}"));
            std::fs::create_dir_all(&dir).unwrap();
            let log = dir.join("tinyproxy.log");
            let _ = std::fs::remove_file(&log);
            let config = format!(
                "Port {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nLogFile \"{}\"\n\
                 LogLevel Connect\nMaxClients 64\nTimeout 30\n{extra}\n",
                log.display()
            );
            let file = dir.join("tinyproxy.conf");
            std::fs::write(&file, config).unwrap();
            let child = Command::new(TINYPROXY)
                .arg("-d")
                .arg("-c")
                .arg(&file)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut proxy = Tinyproxy { child, port, log };
            let started = Instant::now();
            loop {
                if proxy.child.try_wait().unwrap().is_some() {
                    break;
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return Some(proxy);
                }
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "tinyproxy did not start"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        panic!("tinyproxy exited at once, five times: is its configuration right?");
    }

    /// The proxy's URL, with `user:password@` if given.
    fn url(&self, credentials: &str) -> String {
        format!("http://{credentials}127.0.0.1:{}", self.port)
    }

    /// How many tunnels it was asked for to `target` (`host:port`).
    fn connects_to(&self, target: &str) -> usize {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let request = format!("CONNECT {target} HTTP/1.1");
        log.lines().filter(|line| line.ends_with(&request)).count()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `https://` proxy: TLS (rustls, presenting `localhost`'s certificate) in front of
/// `proxy`, each connection's bytes passed on to it once decrypted. Its port.
async fn tls_in_front_of(proxy: &Tinyproxy, localhost: &Localhost) -> u16 {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(localhost.server_config()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let behind = proxy.port;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut outside) = acceptor.accept(socket).await else {
                    return;
                };
                let mut inside = tokio::net::TcpStream::connect(("127.0.0.1", behind))
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut outside, &mut inside).await;
            });
        }
    });
    port
}

/// A free loopback port: bound, read and released.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn local<F: Future>(body: F) -> F::Output {
    tokio::task::LocalSet::new().run_until(body).await
}

/// Opens `url` through `proxy`, checks one echo and closes.
async fn echo_through(url: &str, proxy: &str, localhost: &Localhost) {
    let socket = WebSocket::builder(url)
        .proxy(proxy)
        .tls_config(Arc::new(localhost.client_config()))
        .open()
        .await
        .unwrap_or_else(|error| panic!("{url} through {proxy}: {error}"));
    let mut messages = socket.messages();
    socket.send("through the proxy").unwrap();
    let reply = Some(Message::Text("Received:  through the proxy".into()));
    assert_eq!(messages.next().await, reply, "{url} through {proxy}");
    socket.close_with(4000, "done").unwrap();
    assert_eq!(messages.next().await, None);
    assert_eq!(messages.close_event().map(|close| close.code), Some(4000));
}

#[tokio::test(flavor = "current_thread")]
async fn ws_and_wss_through_tinyproxy_with_and_without_authentication() {
    let Some(open) = Tinyproxy::start("").await else {
        return;
    };
    let Some(guarded) = Tinyproxy::start("BasicAuth user pass").await else {
        return;
    };
    let localhost = Localhost::new();
    let (plain, secure) = (
        Echo::start(0, wsecho::Config::default()),
        Echo::tls(0, &localhost, wsecho::Config::default()),
    );
    let ws = format!("ws://127.0.0.1:{}/", plain.port);
    let wss = format!("wss://localhost:{}/", secure.port);
    // The guarded proxy reached over TLS too: `wss://` through it is TLS inside TLS.
    let https = format!(
        "https://user:pass@localhost:{}",
        tls_in_front_of(&guarded, &localhost).await
    );
    local(async {
        // Percent-encoded in the URL, as credentials may need to be.
        for proxy in [open.url(""), guarded.url("us%65r:pass@"), https] {
            echo_through(&ws, &proxy, &localhost).await;
            echo_through(&wss, &proxy, &localhost).await;
        }
    })
    .await;
    // Each went through its proxy: one tunnel each to each server, two for the one reached
    // both over TCP and over TLS.
    for (proxy, tunnels) in [(&open, 1), (&guarded, 2)] {
        assert_eq!(
            proxy.connects_to(&format!("127.0.0.1:{}", plain.port)),
            tunnels
        );
        assert_eq!(
            proxy.connects_to(&format!("localhost:{}", secure.port)),
            tunnels
        );
    }
}

/// The error an awaited `open` fails with through `proxy`.
async fn refusal(url: &str, proxy: &str) -> Error {
    match WebSocket::builder(url).proxy(proxy).open().await {
        Ok(_) => panic!("{url} opened through {proxy}"),
        Err(error) => error,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_proxy_that_refuses_is_a_typed_error_with_its_status() {
    let Some(guarded) = Tinyproxy::start("BasicAuth user pass").await else {
        return;
    };
    let Some(ports_limited) = Tinyproxy::start("ConnectPort 443").await else {
        return;
    };
    let echo = Echo::start(0, wsecho::Config::default());
    let url = format!("ws://127.0.0.1:{}/", echo.port);
    let closed_port = free_port();
    local(async {
        let status = |error: &Error| match error {
            Error::Proxy { status, reason } => {
                assert!(reason.contains("proxy http://127.0.0.1:"), "{reason}");
                *status
            }
            other => panic!("expected Error::Proxy, got {other:?}"),
        };
        // No credentials: 407; wrong ones: tinyproxy 1.11 says 401 (squid says 407 again); a
        // port it does not tunnel to: 403; a server it cannot reach: tinyproxy's 500 ("Unable
        // to connect"; other proxies say 502).
        let unauthenticated = refusal(&url, &guarded.url("")).await;
        assert_eq!(status(&unauthenticated), Some(407), "{unauthenticated}");
        assert!(
            unauthenticated.to_string().contains("407"),
            "{unauthenticated}"
        );
        let wrong = refusal(&url, &guarded.url("user:wrong@")).await;
        assert_eq!(status(&wrong), Some(401), "{wrong}");
        assert_eq!(
            status(&refusal(&url, &ports_limited.url("")).await),
            Some(403)
        );
        let unreachable = format!("ws://127.0.0.1:{closed_port}/");
        assert_eq!(
            status(&refusal(&unreachable, &guarded.url("user:pass@")).await),
            Some(500)
        );
        // A proxy that is not there: no status.
        let absent = format!("http://127.0.0.1:{closed_port}");
        assert_eq!(status(&refusal(&url, &absent).await), None);

        // The events say the same: an error, then a close with the proxy as its cause.
        let socket = WebSocket::builder(&url)
            .proxy(guarded.url(""))
            .connect()
            .unwrap();
        let mut events = socket.events();
        assert_eq!(events.next().await, Some(Event::Error));
        let Some(Event::Close(close)) = events.next().await else {
            panic!("a close follows the error");
        };
        assert_eq!(close.code, 1006);
        assert_eq!(close.cause, CloseCause::Proxy { status: Some(407) });

        // A proxy URL that is not one fails at once.
        let invalid = WebSocket::builder(&url)
            .proxy("socks4://127.0.0.1:1")
            .connect();
        assert!(
            matches!(invalid, Err(Error::InvalidProxy { .. })),
            "{:?}",
            invalid.err()
        );
    })
    .await;
    assert_eq!(guarded.connects_to(&format!("127.0.0.1:{}", echo.port)), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn reconnection_the_queue_and_the_heartbeat_go_through_the_proxy_again() {
    let Some(proxy) = Tinyproxy::start("").await else {
        return;
    };
    let echo = Echo::start(0, wsecho::Config::default());
    let port = echo.port;
    let target = format!("127.0.0.1:{port}");
    let reply =
        |message: &Message| matches!(message, Message::Text(text) if text == "Received:  ping");
    local(async {
        let socket = WebSocket::builder(format!("ws://{target}/"))
            .proxy(proxy.url(""))
            .reconnect(
                Reconnect::new()
                    .initial_delay(Duration::from_millis(50))
                    .max_delay(Duration::from_millis(200)),
            )
            .heartbeat(
                Heartbeat::new(Duration::from_millis(300), Duration::from_millis(300)).reply(reply),
            )
            .connect()
            .unwrap();
        let mut events = socket.events();
        next_open(&mut events).await;

        // The server is killed: the proxy ends the tunnel, and each attempt meanwhile is
        // refused by the proxy, which cannot reach it (500); the sends wait in the queue.
        echo.kill();
        assert_eq!(next_close(&mut events).await.cause, CloseCause::Remote);
        let refused = next_close(&mut events).await;
        assert_eq!(
            refused.cause,
            CloseCause::Proxy { status: Some(500) },
            "{refused}"
        );
        for text in ["one", "two", "three"] {
            assert_eq!(socket.send(text), Ok(Sent::Queued));
        }
        let restarted = Echo::start(port, wsecho::Config::default());
        next_open(&mut events).await;
        let mut received = Vec::new();
        while received.len() < 3 {
            if let Some(Event::Message(Message::Text(text))) = events.next().await {
                received.push(text);
            }
        }
        assert_eq!(
            received,
            ["Received:  one", "Received:  two", "Received:  three"]
        );

        // A server that stops answering behind the proxy: the heartbeat finds it dead, and
        // the next connection goes through the proxy again.
        socket.send("!stall 10000").unwrap();
        let lost = next_close(&mut events).await;
        assert_eq!(lost.cause, CloseCause::HeartbeatLost, "{lost}");
        next_open(&mut events).await;
        socket.send("after").unwrap();
        loop {
            if let Some(Event::Message(Message::Text(text))) = events.next().await {
                assert_eq!(text, "Received:  after");
                break;
            }
        }
        socket.close().unwrap();
        drop(restarted);
    })
    .await;
    // The first connection, the attempts refused while the server was down, the one after
    // its restart, and the one after the heartbeat.
    let tunnels = proxy.connects_to(&target);
    assert!(tunnels >= 4, "{tunnels} CONNECTs to {target}");
}

/// What the child process is told, in its environment besides the proxy variables.
const CHILD_URLS: &str = "PROXY_TEST_URLS";
const CHILD_ROOT: &str = "PROXY_TEST_ROOT";

/// The child: opens each of `PROXY_TEST_URLS` as the environment says (trusting the DER
/// certificate in the file `PROXY_TEST_ROOT`), and with `PROXY_TEST_DIRECT` also with
/// `Builder::no_proxy`. Run by [`the_environment_chooses_the_proxy_as_curl_does`] only.
#[tokio::test(flavor = "current_thread")]
#[ignore = "a child process of the_environment_chooses_the_proxy_as_curl_does"]
async fn environment_child() {
    let urls = std::env::var(CHILD_URLS).unwrap();
    let root = std::fs::read(std::env::var(CHILD_ROOT).unwrap()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.into()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = Arc::new(tls);
    local(async {
        for url in urls.split_whitespace() {
            let mut builder = WebSocket::builder(url).tls_config(tls.clone());
            if std::env::var_os("PROXY_TEST_DIRECT").is_some() {
                builder = builder.no_proxy();
            }
            let socket = builder
                .open()
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            let mut messages = socket.messages();
            socket.send("hello").unwrap();
            assert_eq!(
                messages.next().await,
                Some(Message::Text("Received:  hello".into()))
            );
            socket.close().unwrap();
            while messages.next().await.is_some() {}
        }
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn the_environment_chooses_the_proxy_as_curl_does() {
    let Some(plain_proxy) = Tinyproxy::start("").await else {
        return;
    };
    let Some(tls_proxy) = Tinyproxy::start("BasicAuth user pass").await else {
        return;
    };
    let localhost = Localhost::new();
    let (plain, secure) = (
        Echo::start(0, wsecho::Config::default()),
        Echo::tls(0, &localhost, wsecho::Config::default()),
    );
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("proxy-root-{}", secure.port));
    std::fs::write(&root, localhost.certificate()).unwrap();
    let urls = format!(
        "ws://127.0.0.1:{}/ wss://localhost:{}/",
        plain.port, secure.port
    );
    let ws_target = format!("127.0.0.1:{}", plain.port);
    let wss_target = format!("localhost:{}", secure.port);
    let child = |vars: &[(&str, String)]| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.args([
            "--exact",
            "environment_child",
            "--ignored",
            "--test-threads",
            "1",
        ]);
        for name in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
            "ws_proxy",
            "WS_PROXY",
            "wss_proxy",
            "WSS_PROXY",
            "no_proxy",
            "NO_PROXY",
        ] {
            command.env_remove(name);
        }
        command.env(CHILD_URLS, &urls).env(CHILD_ROOT, &root);
        command.envs(vars.iter().map(|(name, value)| (name, value)));
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "the child failed with {vars:?}:\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let counts = || {
        [
            plain_proxy.connects_to(&ws_target),
            plain_proxy.connects_to(&wss_target),
            tls_proxy.connects_to(&ws_target),
            tls_proxy.connects_to(&wss_target),
        ]
    };

    // ws:// takes http_proxy, wss:// HTTPS_PROXY (its credentials too).
    let tls_url = tls_proxy.url("user:pass@");
    child(&[
        ("http_proxy", plain_proxy.url("")),
        ("HTTPS_PROXY", tls_url.clone()),
    ]);
    assert_eq!(counts(), [1, 0, 0, 1]);
    // HTTP_PROXY is not read (httpoxy); ALL_PROXY serves both.
    child(&[
        ("HTTP_PROXY", tls_url.clone()),
        ("ALL_PROXY", plain_proxy.url("")),
    ]);
    assert_eq!(counts(), [2, 1, 0, 1]);
    // NO_PROXY: a host and a name suffix; then `*`; then the builder's `no_proxy`.
    let all = ("ALL_PROXY", plain_proxy.url(""));
    child(&[all.clone(), ("NO_PROXY", "127.0.0.1,.localhost".into())]);
    child(&[all.clone(), ("no_proxy", "*".into())]);
    child(&[all.clone(), ("PROXY_TEST_DIRECT", "1".into())]);
    assert_eq!(counts(), [2, 1, 0, 1]);
    // A NO_PROXY that names neither leaves both to the proxy.
    child(&[all, ("NO_PROXY", "example.com,127.0.0.2".into())]);
    assert_eq!(counts(), [3, 2, 0, 1]);
}

#[tokio::test(flavor = "current_thread")]
async fn ws_and_wss_through_a_socks5_proxy() {
    let Some(open) = Microsocks::start(None).await else {
        return;
    };
    let Some(guarded) = Microsocks::start(Some(("user", "pass"))).await else {
        return;
    };
    let localhost = Localhost::new();
    let (plain, secure) = (
        Echo::start(0, wsecho::Config::default()),
        Echo::tls(0, &localhost, wsecho::Config::default()),
    );
    let ws = format!("ws://127.0.0.1:{}/", plain.port);
    let wss = format!("wss://localhost:{}/", secure.port);
    local(async {
        // socks5h: the proxy resolves `localhost`; socks5: the client does.
        let (open, guarded) = (open.port, guarded.port);
        for proxy in [
            format!("socks5h://127.0.0.1:{open}"),
            format!("socks5://127.0.0.1:{open}"),
            format!("socks5h://user:pass@127.0.0.1:{guarded}"),
        ] {
            echo_through(&ws, &proxy, &localhost).await;
            echo_through(&wss, &proxy, &localhost).await;
        }
        // Without the credentials, or with wrong ones, the guarded proxy refuses: SOCKS5
        // has no HTTP status.
        for proxy in [
            format!("socks5h://127.0.0.1:{guarded}"),
            format!("socks5h://user:wrong@127.0.0.1:{guarded}"),
        ] {
            match refusal(&ws, &proxy).await {
                Error::Proxy {
                    status: None,
                    reason,
                } => {
                    assert!(reason.contains("SOCKS5"), "{reason}");
                }
                other => panic!("{proxy}: expected Error::Proxy, got {other:?}"),
            }
        }
    })
    .await;
}

/// With the `http2` feature, `wss://` through an HTTP proxy is TLS, then HTTP/2, inside one
/// tunnel: three sockets share it (tinyproxy is asked once), and their reconnections after
/// the server closed them take streams of it again.
#[cfg(feature = "http2")]
#[tokio::test(flavor = "current_thread")]
async fn wss_through_a_proxy_shares_one_http2_tunnel() {
    use wasm_websocket::HttpVersion;

    let Some(proxy) = Tinyproxy::start("").await else {
        return;
    };
    let localhost = Localhost::new();
    let echo = Echo::tls(0, &localhost, wsecho::Config::default());
    let target = format!("localhost:{}", echo.port);
    let tls = Arc::new(localhost.client_config());
    local(async {
        let open = || {
            WebSocket::builder(format!("wss://{target}/"))
                .proxy(proxy.url(""))
                .tls_config(tls.clone())
                .reconnect(Reconnect::new().initial_delay(Duration::from_millis(50)))
                .connect()
                .unwrap()
        };
        let sockets = [open(), open(), open()];
        let mut events: Vec<Events> = sockets.iter().map(WebSocket::events).collect();
        for (socket, events) in sockets.iter().zip(&mut events) {
            next_open(events).await;
            assert_eq!(socket.http_version(), Some(HttpVersion::Http2));
            socket.send("through one tunnel").unwrap();
            loop {
                if let Some(Event::Message(message)) = events.next().await {
                    assert_eq!(
                        message,
                        Message::Text("Received:  through one tunnel".into())
                    );
                    break;
                }
            }
        }
        assert_eq!(proxy.connects_to(&target), 1);
        // The server closes every socket: they reconnect on the same connection.
        for socket in &sockets {
            socket.send("!close 4001 again").unwrap();
        }
        for events in &mut events {
            let close = next_close(events).await;
            assert_eq!(close.code, 4001, "{close}");
            next_open(events).await;
        }
        for socket in &sockets {
            assert_eq!(socket.http_version(), Some(HttpVersion::Http2));
            socket.close().unwrap();
        }
    })
    .await;
    let tunnels = proxy.connects_to(&target);
    assert_eq!(tunnels, 1, "{tunnels} CONNECTs to {target}");
}
