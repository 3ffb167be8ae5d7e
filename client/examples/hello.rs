//! The same program in the browser and natively: `hello` is written once; only `main`, which
//! starts it, differs by target.
//!
//! Natively, against a running echo server (`cargo xtask serve`, or any echo server):
//!
//! ```sh
//! cargo run -p wasm-websocket --example hello -- ws://127.0.0.1:1234/
//! ```
//!
//! ```text
//! Received:  Hello, world!
//! ```
//!
//! In the browser it builds with `cargo build -p wasm-websocket --example hello --target
//! wasm32-unknown-unknown`; the page's `www/` crate is the full-size browser program.

use futures_util::{SinkExt, StreamExt};
use wasm_websocket::{Message, WebSocket};

/// Sends one message and returns the reply: the program, the same on every target.
async fn hello(url: &str) -> Result<String, wasm_websocket::Error> {
    let socket = WebSocket::open(url).await?;
    let (mut sink, mut stream) = socket.messages().split();
    sink.send("Hello, world!".into()).await?;
    let reply = match stream.next().await {
        Some(Message::Text(text)) => text,
        Some(Message::Binary(data)) => format!("{} bytes", data.len()),
        None => String::new(),
    };
    stream.close_with(4000, "done")?;
    // The stream ends after the close handshake, with the close it ended on.
    while stream.next().await.is_some() {}
    Ok(reply)
}

/// In the browser: the page's event loop runs it.
#[cfg(target_arch = "wasm32")]
fn main() {
    wasm_bindgen_futures::spawn_local(async {
        let line = match hello("ws://127.0.0.1:1234/").await {
            Ok(reply) => reply,
            Err(error) => error.to_string(),
        };
        web_sys::console::log_1(&line.into());
    });
}

/// Natively: tokio on one thread, the socket's tasks on a `LocalSet`.
#[cfg(not(target_arch = "wasm32"))]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), wasm_websocket::Error> {
    let url = std::env::args().nth(1);
    let url = url.as_deref().unwrap_or("ws://127.0.0.1:1234/");
    let reply = tokio::task::LocalSet::new().run_until(hello(url)).await?;
    println!("{reply}");
    Ok(())
}
