//! The benchmark's parts: a load generator that verifies every echoed byte, the plain TCP echo
//! that is the floor, and the minimal tokio-tungstenite echo that is the baseline.
//!
//! Every loop is bounded by a message count, and every wait by a timeout: loopback only.
//! [`counters`] reads what the kernel counts for a server (CPU time in nanoseconds, context
//! switches) and pins processes to cores; [`callgrind`] reads valgrind's instruction and
//! allocation counts.

pub mod callgrind;
pub mod counters;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How long any single wait may take before the run fails.
const STALL: Duration = Duration::from_secs(10);

/// A load shape: connections, round trips per connection, messages in flight, message size.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub connections: usize,
    pub round_trips: usize,
    pub in_flight: usize,
    pub size: usize,
    pub binary: bool,
}

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub messages: usize,
    pub bytes: usize,
    pub elapsed: Duration,
    /// Round-trip times, when one message is in flight at a time.
    pub latencies: Vec<Duration>,
}

/// The wire a target speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    WebSocket,
    Tcp,
}

/// The payload of message `seq` of connection `conn`: distinct for every message, so that a
/// reply that belongs to another message or connection is caught.
fn payload(conn: usize, seq: usize, size: usize) -> Vec<u8> {
    let stamp = format!("{conn:06}:{seq:09}|");
    stamp
        .bytes()
        .chain((0..).map(|i| b'a' + (i % 26) as u8))
        .take(size)
        .collect()
}

/// Runs `shape` against `addr` and checks every reply.
pub async fn run(addr: &str, wire: Wire, shape: Shape) -> Result<Outcome> {
    let started = Instant::now();
    let clients = (0..shape.connections).map(|conn| {
        let addr = addr.to_owned();
        tokio::spawn(async move {
            match wire {
                Wire::WebSocket => websocket_client(&addr, conn, shape).await,
                Wire::Tcp => tcp_client(&addr, conn, shape).await,
            }
        })
    });
    let mut outcome = Outcome::default();
    for client in futures_util::future::join_all(clients).await {
        let latencies = client??;
        outcome.latencies.extend(latencies);
    }
    outcome.elapsed = started.elapsed();
    outcome.messages = shape.connections * shape.round_trips;
    outcome.bytes = outcome.messages * shape.size;
    Ok(outcome)
}

async fn websocket_client(addr: &str, conn: usize, shape: Shape) -> Result<Vec<Duration>> {
    let url = format!("ws://{addr}/");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    let message = |seq| {
        let data = payload(conn, seq, shape.size);
        if shape.binary {
            Message::binary(data)
        } else {
            Message::text(String::from_utf8(data).expect("ASCII"))
        }
    };
    let mut latencies = Vec::new();
    let (mut sent, mut received) = (0, 0);
    let mut timer = Instant::now();
    while received < shape.round_trips {
        while sent < shape.round_trips && sent - received < shape.in_flight {
            socket.feed(message(sent)).await?;
            sent += 1;
        }
        socket.flush().await?;
        let reply = tokio::time::timeout(STALL, socket.next())
            .await
            .context("no reply within 10 s")?
            .context("the server closed")??;
        ensure!(
            reply == message(received),
            "wrong reply to {conn}:{received}"
        );
        received += 1;
        if shape.in_flight == 1 {
            latencies.push(timer.elapsed());
            timer = Instant::now();
        }
    }
    socket.close(None).await?;
    Ok(latencies)
}

async fn tcp_client(addr: &str, conn: usize, shape: Shape) -> Result<Vec<Duration>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut latencies = Vec::new();
    let (mut sent, mut received) = (0, 0);
    let mut reply = vec![0; shape.size];
    let mut timer = Instant::now();
    while received < shape.round_trips {
        while sent < shape.round_trips && sent - received < shape.in_flight {
            stream.write_all(&payload(conn, sent, shape.size)).await?;
            sent += 1;
        }
        tokio::time::timeout(STALL, stream.read_exact(&mut reply))
            .await
            .context("no reply within 10 s")??;
        if reply != payload(conn, received, shape.size) {
            bail!("wrong reply to {conn}:{received}");
        }
        received += 1;
        if shape.in_flight == 1 {
            latencies.push(timer.elapsed());
            timer = Instant::now();
        }
    }
    Ok(latencies)
}

/// Connections opened and then left idle: WebSocket handshakes done, or TCP connected.
pub enum Held {
    WebSocket(Vec<WebSocketStream<TcpStream>>),
    Tcp(Vec<TcpStream>),
}

impl Held {
    pub fn len(&self) -> usize {
        match self {
            Held::WebSocket(sockets) => sockets.len(),
            Held::Tcp(streams) => streams.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How many connections are opened, or checked, at once.
pub const WAVE: usize = 500;

/// The first of the client ports `open_idle` binds: below the ephemeral range (32768 and up
/// here), so that no listening port is in the way.
const FIRST_PORT: u16 = 10_000;

/// Opens `count` (at most 20,000) connections to `addr`, `WAVE` at a time, and leaves them
/// idle. Each binds its own port on the loopback address `source` first: letting `connect`
/// pick ports takes the kernel longer and longer as the range fills (25 s for 19,000 here),
/// while an explicit port is found at once. Use a fresh `source` for each run.
pub async fn open_idle(addr: &str, source: IpAddr, wire: Wire, count: usize) -> Result<Held> {
    ensure!(
        count <= 20_000,
        "at most 20,000 connections per source address"
    );
    let addr: SocketAddr = addr.parse()?;
    let connect = move |i: usize| async move {
        let socket = TcpSocket::new_v4()?;
        // A port left in TIME_WAIT by an earlier run may be bound again.
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::new(source, FIRST_PORT + i as u16))?;
        let stream = tokio::time::timeout(STALL, socket.connect(addr))
            .await
            .context("no connection within 10 s")??;
        stream.set_nodelay(true)?;
        anyhow::Ok(stream)
    };
    // A small read buffer: 19,000 clients of the default 128 KiB would be 2.4 GB here.
    let config = WebSocketConfig::default().read_buffer_size(1024);
    let mut held = match wire {
        Wire::WebSocket => Held::WebSocket(Vec::with_capacity(count)),
        Wire::Tcp => Held::Tcp(Vec::with_capacity(count)),
    };
    while held.len() < count {
        let wave = WAVE.min(count - held.len());
        match &mut held {
            Held::Tcp(streams) => {
                let first = streams.len();
                let opened = (first..first + wave).map(connect);
                let opened = futures_util::future::join_all(opened).await;
                for stream in opened {
                    streams.push(stream?);
                }
            }
            Held::WebSocket(sockets) => {
                let first = sockets.len();
                let opened = (first..first + wave).map(|i| async move {
                    let stream = connect(i).await?;
                    let url = format!("ws://{addr}/");
                    let handshake =
                        tokio_tungstenite::client_async_with_config(url, stream, Some(config));
                    let (socket, _) = tokio::time::timeout(STALL, handshake)
                        .await
                        .context("no handshake within 10 s")??;
                    anyhow::Ok(socket)
                });
                let opened = futures_util::future::join_all(opened).await;
                for socket in opened {
                    sockets.push(socket?);
                }
            }
        }
    }
    Ok(held)
}

/// One 32-byte round trip on every held connection, `WAVE` at a time, each reply checked:
/// proof that the server still holds them all.
pub async fn echo_each(held: &mut Held) -> Result<()> {
    match held {
        Held::WebSocket(sockets) => {
            for (wave, sockets) in sockets.chunks_mut(WAVE).enumerate() {
                let checks = sockets
                    .iter_mut()
                    .enumerate()
                    .map(|(i, socket)| async move {
                        let conn = wave * WAVE + i;
                        let text = String::from_utf8(payload(conn, 0, 32)).expect("ASCII");
                        let message = Message::text(text);
                        socket.send(message.clone()).await?;
                        let reply = tokio::time::timeout(STALL, socket.next())
                            .await
                            .context("no reply within 10 s")?
                            .context("the server closed")??;
                        ensure!(reply == message, "wrong reply to {conn}");
                        Ok(())
                    });
                futures_util::future::try_join_all(checks).await?;
            }
        }
        Held::Tcp(streams) => {
            for (wave, streams) in streams.chunks_mut(WAVE).enumerate() {
                let checks = streams
                    .iter_mut()
                    .enumerate()
                    .map(|(i, stream)| async move {
                        let conn = wave * WAVE + i;
                        let message = payload(conn, 0, 32);
                        stream.write_all(&message).await?;
                        let mut reply = vec![0; message.len()];
                        tokio::time::timeout(STALL, stream.read_exact(&mut reply))
                            .await
                            .context("no reply within 10 s")??;
                        ensure!(reply == message, "wrong reply to {conn}");
                        Ok(())
                    });
                futures_util::future::try_join_all(checks).await?;
            }
        }
    }
    Ok(())
}

/// A listener on a free loopback port with the backlog our server uses (the default 128
/// overflows while the idle scenario opens connections), for every baseline alike.
pub fn listen() -> Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    Ok(socket.listen(4096)?)
}

/// The floor: a plain TCP echo on tokio, one task per connection.
pub async fn tcp_echo(listener: TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            // The buffer once there is something to read: an idle connection holds none.
            let mut first = [0; 1024];
            let Ok(n @ 1..) = stream.read(&mut first).await else {
                return;
            };
            if stream.write_all(&first[..n]).await.is_err() {
                return;
            }
            let mut buffer = vec![0; 64 * 1024];
            while let Ok(n @ 1..) = stream.read(&mut buffer).await {
                if stream.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// The baseline: tokio-tungstenite with its default configuration, the echo loop of its
/// examples.
pub async fn tungstenite_echo(listener: TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(message)) = socket.next().await {
                if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err()
                {
                    break;
                }
            }
        });
    }
}

/// The fastest Rust WebSocket library we know, as its own example echoes: hyper for the
/// handshake, `FragmentCollector` for whole messages.
pub async fn fastwebsockets_echo(listener: TcpListener) {
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};
    type Empty = http_body_util::Empty<Bytes>;

    async fn echo(upgrade: fastwebsockets::upgrade::UpgradeFut) -> Result<()> {
        let mut socket = fastwebsockets::FragmentCollector::new(upgrade.await?);
        loop {
            let frame = socket.read_frame().await?;
            match frame.opcode {
                fastwebsockets::OpCode::Close => return Ok(()),
                fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                    socket.write_frame(frame).await?;
                }
                _ => {}
            }
        }
    }

    async fn upgrade(mut request: Request<Incoming>) -> Result<Response<Empty>> {
        let (response, upgrade) = fastwebsockets::upgrade::upgrade(&mut request)?;
        tokio::spawn(echo(upgrade));
        Ok(response)
    }

    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(upgrade);
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades();
            let _ = connection.await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Shape = Shape {
        connections: 3,
        round_trips: 50,
        in_flight: 4,
        size: 64,
        binary: false,
    };

    async fn listener() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        (listener, addr)
    }

    #[tokio::test]
    async fn the_load_generator_verifies_every_reply_from_each_kind_of_server() {
        let (tcp, tcp_addr) = listener().await;
        tokio::spawn(tcp_echo(tcp));
        let outcome = run(&tcp_addr, Wire::Tcp, SMALL).await.unwrap();
        assert_eq!(outcome.messages, 150);

        let (ws, ws_addr) = listener().await;
        tokio::spawn(tungstenite_echo(ws));
        let binary = Shape {
            binary: true,
            size: 20_000,
            in_flight: 1,
            ..SMALL
        };
        let outcome = run(&ws_addr, Wire::WebSocket, binary).await.unwrap();
        assert_eq!(outcome.latencies.len(), 150);

        let (fast, fast_addr) = listener().await;
        tokio::spawn(fastwebsockets_echo(fast));
        run(&fast_addr, Wire::WebSocket, binary).await.unwrap();

        let (ours, ours_addr) = listener().await;
        let config = wsecho::Config {
            prefix: String::new(),
            ..Default::default()
        };
        tokio::spawn(wsecho::serve(ours, config, std::future::pending()));
        run(&ours_addr, Wire::WebSocket, SMALL).await.unwrap();
    }

    #[tokio::test]
    async fn idle_connections_are_opened_held_and_each_checked() {
        let source = |n| IpAddr::from([127, 0, 2, n]);
        let (ours, addr) = listener().await;
        let config = wsecho::Config {
            prefix: String::new(),
            ..Default::default()
        };
        tokio::spawn(wsecho::serve(ours, config, std::future::pending()));
        let mut held = open_idle(&addr, source(1), Wire::WebSocket, 600)
            .await
            .unwrap();
        assert_eq!(held.len(), 600);
        echo_each(&mut held).await.unwrap();

        let (tcp, tcp_addr) = listener().await;
        tokio::spawn(tcp_echo(tcp));
        let mut held = open_idle(&tcp_addr, source(2), Wire::Tcp, 10)
            .await
            .unwrap();
        echo_each(&mut held).await.unwrap();

        // A server that answers with a prefix fails the check.
        let (seed, seed_addr) = listener().await;
        tokio::spawn(wsecho::serve(
            seed,
            Default::default(),
            std::future::pending(),
        ));
        let mut held = open_idle(&seed_addr, source(3), Wire::WebSocket, 3)
            .await
            .unwrap();
        let error = echo_each(&mut held).await.unwrap_err();
        assert!(error.to_string().contains("wrong reply"), "{error}");
    }

    #[tokio::test]
    async fn a_wrong_reply_fails_the_run() {
        // The seed's prefix changes every reply: the generator must notice.
        let (ours, addr) = listener().await;
        tokio::spawn(wsecho::serve(
            ours,
            Default::default(),
            std::future::pending(),
        ));
        let error = run(&addr, Wire::WebSocket, SMALL).await.unwrap_err();
        assert!(error.to_string().contains("wrong reply"), "{error}");
    }
}
