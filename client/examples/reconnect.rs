//! A connection that survives a server restart: reconnection with backoff, a heartbeat, and a
//! queue for what is sent while the server is away. Each line typed is sent; stop the server
//! and start it again, and the lines typed meanwhile go out, in order, once it is back.
//!
//! Natively, against a running echo server (`cargo xtask serve`, or `cargo run -p wsecho`):
//!
//! ```sh
//! cargo run -p wasm-websocket --example reconnect -- ws://127.0.0.1:1234/
//! ```
//!
//! Type `before`, stop the server (Ctrl-C), type `meanwhile`, start it again, then end the
//! input (Ctrl-D):
//!
//! ```text
//! open
//! received "Received:  before"
//! closed (1001, Remote), now reconnecting
//! reconnecting: attempt 1 in 163ms
//! closed (1006, HandshakeFailed), now reconnecting
//! reconnecting: attempt 2 in 412ms
//! queued "meanwhile" (1 waiting)
//! ...
//! open
//! received "Received:  meanwhile"
//! closed (1000, Application), now closed
//! ```

use std::pin::pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt, future};
use wasm_websocket::{Event, Heartbeat, Message, Reconnect, Sent, WebSocket};

/// Sends each of `lines` and prints every event, until `lines` ends.
async fn chat(url: &str, lines: impl Stream<Item = String>) -> Result<(), wasm_websocket::Error> {
    let socket = WebSocket::builder(url)
        // Reopens after every close but the application's own: 250 ms, doubling up to 5 s,
        // with jitter, without end. Sends meanwhile wait in a queue (64 messages by default)
        // and go out, in order, when the next connection opens.
        .reconnect(Reconnect::new().max_delay(Duration::from_secs(5)))
        // A restart ends the connection (a close with 1001, or a reset), which the socket sees
        // at once. One that dies without a word (a laptop that slept, a NAT that forgot it)
        // is found by the heartbeat: a ping every 10 s, and an answer expected within 5 s.
        .heartbeat(
            Heartbeat::new(Duration::from_secs(10), Duration::from_secs(5))
                // The ping's echo, as it is or with this project's server's prefix: the
                // heartbeat's own, so it is not delivered as a message.
                .reply(|message| matches!(message.as_text(), Some("ping" | "Received:  ping"))),
        )
        .connect()?;

    // Every event from now on: opens, messages, closes, attempts. It ends after the last close.
    let mut events = socket.events();
    let printing = async {
        while let Some(event) = events.next().await {
            match event {
                Event::Open => log("open"),
                Event::Message(Message::Text(text)) => log(&format!("received {text:?}")),
                Event::Message(Message::Binary(bytes)) => {
                    log(&format!("received {} bytes", bytes.len()))
                }
                Event::Close(close) => log(&format!(
                    "closed ({}, {:?}), now {}",
                    close.code,
                    close.cause,
                    socket.state()
                )),
                Event::Reconnecting(next) => log(&format!(
                    "reconnecting: attempt {} in {:?}",
                    next.attempt, next.delay
                )),
                // What was queued when the socket gave up for good.
                Event::Unsent(unsent) => log(&format!("never sent: {:?}", unsent.message)),
                _ => {}
            }
        }
    };

    let sending = async {
        let mut lines = pin!(lines);
        while let Some(line) = lines.next().await {
            // While the server is away this queues the line (and waits while the queue is
            // full); on an open connection it sends it.
            match socket.send_async(line.as_str()).await {
                Ok(Sent::Queued) => log(&format!("queued {line:?} ({} waiting)", socket.queued())),
                Ok(Sent::Now) => {}
                Err(error) => log(&format!("not sent: {error}")),
            }
        }
        // The end of the input: close for good (no reconnection follows the application's
        // own close), which ends the events too.
        socket.close()
    };

    let ((), closed) = future::join(printing, sending).await;
    closed
}

/// In the browser: a page would send what its user types, through a channel; here one line,
/// and then the socket stays up: restart the server and watch the console.
#[cfg(target_arch = "wasm32")]
fn main() {
    let lines =
        futures_util::stream::iter([String::from("hello")]).chain(futures_util::stream::pending());
    wasm_bindgen_futures::spawn_local(async {
        if let Err(error) = chat("ws://127.0.0.1:1234/", lines).await {
            log(&error.to_string());
        }
    });
}

/// Natively: the lines of stdin, and tokio on one thread with the socket's tasks on a
/// `LocalSet` (the socket is `!Send`).
#[cfg(not(target_arch = "wasm32"))]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), wasm_websocket::Error> {
    let url = std::env::args().nth(1);
    let url = url.as_deref().unwrap_or("ws://127.0.0.1:1234/");
    // Reading stdin blocks: a thread of its own reads it, and a channel hands the lines over.
    let (sender, lines) = futures_channel::mpsc::unbounded();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if sender.unbounded_send(line).is_err() {
                break;
            }
        }
    });
    tokio::task::LocalSet::new()
        .run_until(chat(url, lines))
        .await
}

fn log(line: &str) {
    #[cfg(target_arch = "wasm32")]
    web_sys::console::log_1(&line.into());
    #[cfg(not(target_arch = "wasm32"))]
    println!("{line}");
}
