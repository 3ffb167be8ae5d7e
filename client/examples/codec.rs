//! A codec over the socket's bytes: `socket.io()` is an `AsyncRead` + `AsyncWrite` (the
//! `futures-io` traits) over its binary messages, so any codec written against them runs over
//! a WebSocket. Here `asynchronous-codec`'s `LengthCodec`: frames prefixed by their length,
//! which need not line up with the messages that carry them. (`LengthCodec` bounds no length:
//! against a peer you do not trust, wrap it in a codec of your own that does.)
//!
//! Natively, against a running echo server (`cargo xtask serve`, or `cargo run -p wsecho`),
//! which sends binary messages back as they came:
//!
//! ```sh
//! cargo run -p wasm-websocket --example codec -- ws://127.0.0.1:1234/
//! ```
//!
//! ```text
//! frame "first"
//! frame "second"
//! frame "third, sent alone"
//! closed (1000)
//! ```

use asynchronous_codec::{Bytes, Framed, LengthCodec};
use futures_util::{SinkExt, StreamExt};
use wasm_websocket::WebSocket;

async fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let socket = WebSocket::open(url).await?;
    // Every write to `io()` is one binary message; reads run on across messages.
    let mut frames = Framed::new(socket.io(), LengthCodec);

    // `feed` only encodes into the codec's buffer and `flush` writes it: two frames in one
    // WebSocket message. `send` is `feed` then `flush`: one frame, one message.
    frames.feed(Bytes::from("first")).await?;
    frames.feed(Bytes::from("second")).await?;
    frames.flush().await?;
    frames.send(Bytes::from("third, sent alone")).await?;

    // The decoder finds the frames whatever the messages' boundaries.
    for _ in 0..3 {
        match frames.next().await {
            Some(frame) => log(&format!("frame {:?}", String::from_utf8_lossy(&frame?))),
            None => return Err("the socket closed before every frame came back".into()),
        }
    }

    // Closing the writer closes the socket with 1000 and waits for the close handshake.
    frames.close().await?;
    let close = socket.closed().await;
    log(&format!("closed ({})", close.code));
    Ok(())
}

/// In the browser: the page's event loop runs it, and the lines go to the console.
#[cfg(target_arch = "wasm32")]
fn main() {
    wasm_bindgen_futures::spawn_local(async {
        if let Err(error) = run("ws://127.0.0.1:1234/").await {
            log(&error.to_string());
        }
    });
}

/// Natively: tokio on one thread, the socket's tasks on a `LocalSet` (the socket is `!Send`).
#[cfg(not(target_arch = "wasm32"))]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1);
    let url = url.as_deref().unwrap_or("ws://127.0.0.1:1234/");
    tokio::task::LocalSet::new().run_until(run(url)).await
}

fn log(line: &str) {
    #[cfg(target_arch = "wasm32")]
    web_sys::console::log_1(&line.into());
    #[cfg(not(target_arch = "wasm32"))]
    println!("{line}");
}
