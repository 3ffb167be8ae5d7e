//! A delaying relay, since this kernel has no `netem`: every byte that comes in on one side
//! goes out on the other a fixed delay later, in order, each way; an end of stream or a
//! reset is passed on (as an end of stream) after the same delay.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Listens on the loopback of the current namespace and relays every connection to
/// `upstream`, `delay` late each way; its address. Runs on the current `LocalSet`.
pub async fn delaying(upstream: SocketAddr, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::task::spawn_local(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            tokio::task::spawn_local(relay(inbound, upstream, delay));
        }
    });
    addr
}

async fn relay(inbound: TcpStream, upstream: SocketAddr, delay: Duration) {
    // The connect itself is delayed too: a handshake costs its round trip.
    tokio::time::sleep(delay).await;
    let Ok(outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (from_client, to_client) = inbound.into_split();
    let (from_server, to_server) = outbound.into_split();
    tokio::join!(
        pipe(from_client, to_server, delay),
        pipe(from_server, to_client, delay)
    );
}

/// Copies `from` to `to`, each chunk `delay` after it was read.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (sender, mut chunks) = mpsc::unbounded_channel::<(Instant, Option<Vec<u8>>)>();
    let reading = async move {
        let mut buffer = vec![0; 64 << 10];
        loop {
            let read = from.read(&mut buffer).await;
            let due = Instant::now() + delay;
            match read {
                Ok(0) | Err(_) => {
                    let _ = sender.send((due, None));
                    break;
                }
                Ok(n) => {
                    let _ = sender.send((due, Some(buffer[..n].to_vec())));
                }
            }
        }
    };
    let writing = async move {
        while let Some((due, chunk)) = chunks.recv().await {
            tokio::time::sleep_until(due).await;
            let Some(bytes) = chunk else {
                let _ = to.shutdown().await;
                break;
            };
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(reading, writing);
}
