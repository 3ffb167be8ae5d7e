//! Async streams and sinks: `open` resolves once the socket is connected, and `messages()` is
//! one value that is both a `Stream` of the messages received and a `Sink` of messages to send.
//! Split, one half sends while the other receives, with the `futures` combinators.
//!
//! Natively, against a running echo server (`cargo xtask serve`, or `cargo run -p wsecho`):
//!
//! ```sh
//! cargo run -p wasm-websocket --example streams -- ws://127.0.0.1:1234/
//! ```
//!
//! ```text
//! received "Received:  one"
//! received "Received:  two"
//! received "Received:  three"
//! closed (1000)
//! ```

use futures_util::{SinkExt, StreamExt, future};
use wasm_websocket::{Error, Message, WebSocket};

const LINES: [&str; 3] = ["one", "two", "three"];

async fn run(url: &str) -> Result<(), Error> {
    // Resolves once open; a server that refuses is `Error::ConnectFailed`, with its close code.
    let socket = WebSocket::open(url).await?;
    let (mut sink, mut stream) = socket.messages().split();

    // Each `send` waits while the socket's send buffer is over its high-water mark:
    // backpressure, as any `Sink`.
    let sending = async {
        for line in LINES {
            sink.send(line.into()).await?;
        }
        Ok::<_, Error>(())
    };
    // Meanwhile, the replies as they come. The stream ends after the socket's last close.
    let receiving = async {
        let mut replies = stream.by_ref().take(LINES.len());
        while let Some(message) = replies.next().await {
            match message {
                Message::Text(text) => log(&format!("received {text:?}")),
                Message::Binary(bytes) => log(&format!("received {} bytes", bytes.len())),
            }
        }
    };
    let (sent, ()) = future::join(sending, receiving).await;
    sent?;

    // Closing the sink closes the socket with 1000, and resolves once the close handshake is
    // done; `closed()` then tells how it ended (it waits, if the socket is still open).
    sink.close().await?;
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
async fn main() -> Result<(), Error> {
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
