//! Restarts that refuse no one (`--handover`, issue 24): an instance is replaced twice while
//! handshakes arrive continuously; none is refused or reset, and every client of a replaced
//! instance gets Close 1001.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use support::Server;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// One handshake every this long: about 300 a second.
const PACE: Duration = Duration::from_micros(3_300);
/// How long the handshakes go on; the instance is replaced after 1 s and again after 2.5 s.
const LOAD: Duration = Duration::from_secs(4);
/// Clients each instance holds before it is replaced.
const HELD: usize = 50;

/// What a client of the load saw.
#[derive(Debug)]
enum Seen {
    /// Its message echoed.
    Echoed,
    /// Close 1001 from an instance being replaced, after its handshake.
    GoingAway,
    /// Refused, reset, or anything else: a fault.
    Fault(String),
}

/// Opens a WebSocket, sends one message and waits for its echo.
async fn one_client(url: String, n: usize) -> Seen {
    let connected = tokio_tungstenite::connect_async(&url).await;
    let mut socket = match connected {
        Ok((socket, _)) => socket,
        Err(error) => return Seen::Fault(format!("handshake {n}: {error}")),
    };
    let text = format!("client {n}");
    if let Err(error) = socket.send(Message::text(text.clone())).await {
        return Seen::Fault(format!("send {n}: {error}"));
    }
    let reply = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
    let seen = match reply {
        Ok(Some(Ok(Message::Text(echo)))) if echo.as_str() == format!("Received:  {text}") => {
            Seen::Echoed
        }
        Ok(Some(Ok(Message::Close(Some(frame))))) if frame.code == CloseCode::Away => {
            Seen::GoingAway
        }
        other => return Seen::Fault(format!("reply {n}: {other:?}")),
    };
    let _ = socket.close(None).await;
    seen
}

/// `HELD` clients of `server`, each with one message echoed.
async fn held(server: &Server) -> Vec<support::Client> {
    let mut clients = Vec::new();
    for n in 0..HELD {
        let mut socket = server.connect().await;
        socket
            .send(Message::text(format!("held {n}")))
            .await
            .unwrap();
        assert!(matches!(socket.next().await, Some(Ok(Message::Text(_)))));
        clients.push(socket);
    }
    clients
}

/// Every held client reads Close 1001, within 5 s.
async fn assert_all_get_1001(clients: Vec<support::Client>) {
    for mut socket in clients {
        let closed = async {
            loop {
                match socket.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|frame| frame.code),
                    Some(Ok(_)) => continue,
                    other => panic!("no Close: {other:?}"),
                }
            }
        };
        let code = tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .expect("a Close within 5 s");
        assert_eq!(code, Some(CloseCode::Away));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_an_instance_refuses_no_handshake_and_sends_its_clients_1001() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("handover-{}.sock", std::process::id()));
    let path = path.to_str().unwrap();
    let args = ["--handover", path];
    let first = Server::start(&args);
    let url = first.url();

    let started = Instant::now();
    let load = tokio::spawn({
        let url = url.clone();
        async move {
            let mut clients = JoinSet::new();
            let mut pace = tokio::time::interval(PACE);
            let mut n = 0;
            while started.elapsed() < LOAD {
                pace.tick().await;
                clients.spawn(one_client(url.clone(), n));
                n += 1;
            }
            clients.join_all().await
        }
    });

    let mut instance = first;
    for at in [Duration::from_millis(1000), Duration::from_millis(2500)] {
        let clients = held(&instance).await;
        tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
        let successor = Server::start(&args);
        assert_eq!(
            successor.url(),
            url,
            "the successor listens on the same socket"
        );
        assert_all_get_1001(clients).await;
        let status = instance.exited_within(Duration::from_secs(10)).await;
        assert!(status.is_some_and(|status| status.success()), "{status:?}");
        instance = successor;
    }

    let seen = load.await.unwrap();
    let echoed = seen.iter().filter(|s| matches!(s, Seen::Echoed)).count();
    let going_away = seen.iter().filter(|s| matches!(s, Seen::GoingAway)).count();
    let faults: Vec<&str> = (seen.iter())
        .filter_map(|seen| match seen {
            Seen::Fault(why) => Some(why.as_str()),
            _ => None,
        })
        .collect();
    eprintln!(
        "{} handshakes in {LOAD:?}: {echoed} echoed, {going_away} closed with 1001 by a replaced \
         instance, {} faults",
        seen.len(),
        faults.len()
    );
    assert!(faults.is_empty(), "refused or reset: {faults:?}");
    assert!(seen.len() >= 1000, "only {} handshakes", seen.len());
    // And the last instance still serves.
    instance.assert_healthy(200).await;
}
