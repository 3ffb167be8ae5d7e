//! The benchmark's parts: a load generator that verifies every echoed byte, the plain TCP echo
//! that is the floor, and the minimal tokio-tungstenite echo that is the baseline.
//!
//! Every loop is bounded by a message count, and every wait by a timeout: loopback only.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

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

/// The floor: a plain TCP echo on tokio, one task per connection.
pub async fn tcp_echo(listener: TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
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
        let config = echo_server::Config {
            prefix: String::new(),
            ..Default::default()
        };
        tokio::spawn(echo_server::serve(ours, config, std::future::pending()));
        run(&ours_addr, Wire::WebSocket, SMALL).await.unwrap();
    }

    #[tokio::test]
    async fn a_wrong_reply_fails_the_run() {
        // The seed's prefix changes every reply: the generator must notice.
        let (ours, addr) = listener().await;
        tokio::spawn(echo_server::serve(
            ours,
            Default::default(),
            std::future::pending(),
        ));
        let error = run(&addr, Wire::WebSocket, SMALL).await.unwrap_err();
        assert!(error.to_string().contains("wrong reply"), "{error}");
    }
}
