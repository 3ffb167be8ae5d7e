//! Typed messages (feature `json`): values sent as JSON text with `send_json`, and received
//! as a stream of decoded values with `json::<T>()`. A message that does not decode is an
//! `Err` in the stream, which goes on: never a panic, never a silent drop.
//!
//! Natively, against an echo server that sends text back as it came (this project's adds
//! `Received:  ` in front, unless started with `--prefix ''`):
//!
//! ```sh
//! cargo run -p wsecho -- --prefix ''       # in one terminal
//! cargo run -p wasm-websocket --features json --example json -- ws://127.0.0.1:1234/
//! ```
//!
//! ```text
//! porch: 21.5 °C
//! not a reading: JSON: invalid type: floating point `21.5`, expected struct Reading at line 1 column 4
//! cellar: 12 °C
//! closed (1000)
//! ```

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use wasm_websocket::{Error, WebSocket};

/// What the application sends and receives: any type serde can serialize and deserialize.
#[derive(Debug, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    celsius: f64,
}

async fn run(url: &str) -> Result<(), Error> {
    let socket = WebSocket::open(url).await?;
    // Every message received from now on, decoded as a `Reading`.
    let mut readings = socket.json::<Reading>();

    let porch = Reading {
        sensor: "porch".into(),
        celsius: 21.5,
    };
    socket.send_json_async(&porch).await?;
    // Not a `Reading`: the stream says so, and goes on.
    socket.send_async("21.5").await?;
    // Anything `Serialize` will do, a `serde_json::Value` too.
    let cellar = serde_json::json!({ "sensor": "cellar", "celsius": 12 });
    socket.send_json_async(&cellar).await?;

    for _ in 0..3 {
        match readings.next().await {
            Some(Ok(reading)) => log(&format!("{}: {} °C", reading.sensor, reading.celsius)),
            Some(Err(error)) => log(&format!("not a reading: {error}")),
            None => break,
        }
    }

    socket.close()?;
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
