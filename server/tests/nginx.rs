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

/// nginx with `deploy/nginx.conf` in front of `servers`, and its address; `None` (the test
/// then does nothing) where nginx is missing and `REQUIRE_NGINX` is not set.
async fn nginx_in_front_of(servers: &[&Server]) -> Option<(Nginx, String)> {
    if !Path::new(NGINX).exists() {
        assert!(
            std::env::var_os("REQUIRE_NGINX").is_none(),
            "{NGINX} is missing"
        );
        eprintln!("SKIPPED: {NGINX} is not installed; `cargo xtask test` installs it");
        return None;
    }
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
    let nginx = Nginx(
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
    Some((nginx, addr))
}

#[tokio::test]
async fn nginx_proxies_the_page_and_the_websocket_to_several_instances() {
    let www = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nginx-www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "<h1>WebSocket Echo Test</h1>").unwrap();
    let servers = [Server::with_www(&www), Server::with_www(&www)];
    let Some((_nginx, addr)) = nginx_in_front_of(&[&servers[0], &servers[1]]).await else {
        return;
    };

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

/// Clients through nginx in front of three instances.
const CLIENTS: usize = 30;
/// Messages each affected client sends while it waits to reconnect (queued by the client).
const QUEUED: usize = 3;
/// Every client is back on a surviving instance within this of its instance's end: the
/// client's first reconnection attempt comes after 100 ms (jittered), and nginx passes a
/// refused connection on to the next instance at once.
const FAILOVER_BOUND: Duration = Duration::from_secs(2);

/// What one client of the failover test saw, as its events came.
#[derive(Default)]
struct Seen {
    opened: Vec<Instant>,
    closes: Vec<u16>,
    /// The text of every reply: `INSTANCE client N message M`.
    replies: Vec<String>,
    /// How many messages it has sent.
    sent: usize,
}

/// Waits, 10 s at most, until `done` holds for every client.
async fn until(
    what: &str,
    clients: &[std::rc::Rc<std::cell::RefCell<Seen>>],
    done: impl Fn(&Seen) -> bool,
) {
    let started = Instant::now();
    while !clients.iter().all(|seen| done(&seen.borrow())) {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The instance a reply came from: its prefix.
fn instance_of(reply: &str) -> &str {
    reply.split_once(' ').map_or("", |(instance, _)| instance)
}

/// Three instances behind nginx (each with a reply prefix that names it); clients of the
/// project's own native client with reconnection on. Instance A is stopped (SIGTERM: its
/// clients get 1001), later instance B is killed (SIGKILL: its clients see the connection
/// drop). Every affected client is back on a surviving instance within `FAILOVER_BOUND`, and
/// the messages it sent while disconnected (queued by the client) are echoed in order, each
/// once, after the ones before.
#[tokio::test]
async fn clients_fail_over_through_nginx_when_instances_stop_or_die() {
    use std::cell::RefCell;
    use std::rc::Rc;
    use wasm_websocket::{Event, Reconnect, WebSocket};

    let servers = [
        Server::start(&["--prefix", "A "]),
        Server::start(&["--prefix", "B "]),
        Server::start(&["--prefix", "C "]),
    ];
    let Some((_nginx, addr)) = nginx_in_front_of(&[&servers[0], &servers[1], &servers[2]]).await
    else {
        return;
    };
    let url = format!("ws://{addr}/");
    tokio::task::LocalSet::new()
        .run_until(async move {
            let mut clients = Vec::new();
            for n in 0..CLIENTS {
                let policy = Reconnect::new()
                    .initial_delay(Duration::from_millis(100))
                    .max_delay(Duration::from_millis(500));
                let socket = WebSocket::builder(&url)
                    .reconnect(policy)
                    .connect()
                    .unwrap();
                let seen = Rc::new(RefCell::new(Seen::default()));
                let mut events = socket.events();
                let (log, sender) = (seen.clone(), socket.clone());
                // Each client's events, as they come: while it waits to reconnect, it sends
                // QUEUED messages, which wait in its queue.
                tokio::task::spawn_local(async move {
                    while let Some(event) = events.next().await {
                        let mut seen = log.borrow_mut();
                        match event {
                            Event::Open => seen.opened.push(Instant::now()),
                            Event::Close(close) => seen.closes.push(close.code),
                            Event::Message(wasm_websocket::Message::Text(text)) => {
                                seen.replies.push(text)
                            }
                            Event::Reconnecting(_) => {
                                for _ in 0..QUEUED {
                                    let m = seen.sent;
                                    sender.send(format!("client {n} message {m}")).unwrap();
                                    seen.sent += 1;
                                }
                            }
                            _ => {}
                        }
                    }
                });
                clients.push((socket, seen));
            }
            let seen: Vec<_> = clients.iter().map(|(_, seen)| seen.clone()).collect();
            until("every client opens", &seen, |seen| !seen.opened.is_empty()).await;
            // One message each, echoed: where each client is.
            for (n, (socket, seen)) in clients.iter().enumerate() {
                socket.send(format!("client {n} message 0")).unwrap();
                seen.borrow_mut().sent = 1;
            }
            until("every first message is echoed", &seen, |seen| {
                seen.replies.len() == 1
            })
            .await;
            let on = |instance: &str| -> Vec<usize> {
                (clients.iter().enumerate())
                    .filter(|(_, (_, seen))| {
                        instance_of(seen.borrow().replies.last().unwrap()) == instance
                    })
                    .map(|(n, _)| n)
                    .collect()
            };
            for (signal, instance) in [("TERM", "A"), ("KILL", "B")] {
                let affected = on(instance);
                assert!(!affected.is_empty(), "nginx gave {instance} no client");
                let opens: Vec<usize> = (clients.iter())
                    .map(|(_, seen)| seen.borrow().opened.len())
                    .collect();
                let server = &servers[(instance.as_bytes()[0] - b'A') as usize];
                let stopped = Instant::now();
                server.signal(signal);
                // Back, with what it queued meanwhile echoed.
                let back = |n: usize| {
                    let seen = clients[n].1.borrow();
                    seen.opened.len() > opens[n] && seen.replies.len() == seen.sent
                };
                let started = Instant::now();
                while !affected.iter().all(|&n| back(n)) {
                    assert!(started.elapsed() < Duration::from_secs(10), "not back");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let slowest = (affected.iter())
                    .map(|&n| *clients[n].1.borrow().opened.last().unwrap() - stopped)
                    .max()
                    .unwrap();
                eprintln!(
                    "SIG{signal} {instance}: {} clients back in {slowest:?} at most",
                    affected.len()
                );
                assert!(slowest <= FAILOVER_BOUND, "{slowest:?}");
                let code = if signal == "TERM" { 1001 } else { 1006 };
                for &n in &affected {
                    assert_eq!(clients[n].1.borrow().closes.last(), Some(&code));
                }
            }
            // Every message of every client echoed once, in order, the last ones by a
            // surviving instance; and all of them on C now.
            for (n, (socket, seen)) in clients.iter().enumerate() {
                let seen = seen.borrow();
                let expected: Vec<String> = (0..seen.sent)
                    .map(|m| format!("client {n} message {m}"))
                    .collect();
                let echoed: Vec<&str> = (seen.replies.iter())
                    .map(|reply| reply.split_once(' ').unwrap().1)
                    .collect();
                assert_eq!(echoed, expected, "client {n}");
                assert_eq!(instance_of(seen.replies.last().unwrap()), "C", "client {n}");
                socket.close().unwrap();
            }
        })
        .await;
}
