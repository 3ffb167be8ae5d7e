//! Callbacks: the socket calls the application on open, on each message and on close. Each
//! callback is given the socket, so it can send or close without a handle of its own (a
//! handle captured by its own callback would keep the socket alive).
//!
//! Natively, against a running echo server (`cargo xtask serve`, or `cargo run -p wsecho`):
//!
//! ```sh
//! cargo run -p wasm-websocket --example callbacks -- ws://127.0.0.1:1234/
//! ```
//!
//! ```text
//! open
//! received "Received:  one"
//! received "Received:  two"
//! received 3 bytes: [1, 2, 3]
//! closed (1000) done
//! ```

use wasm_websocket::{CloseEvent, Message, WebSocket};

/// Connects, and leaves the rest to the callbacks: send on open, close after the last reply.
fn connect(url: &str) -> Result<WebSocket, wasm_websocket::Error> {
    let mut replies = 0;
    WebSocket::builder(url)
        .on_open(|socket| {
            log("open");
            // `send` takes anything that is `Into<Message>`: text, or bytes for binary.
            for message in [Message::from("one"), "two".into(), [1u8, 2, 3].into()] {
                // In `on_open` the socket is open: this fails only if it was closed since.
                if let Err(error) = socket.send(message) {
                    log(&format!("not sent: {error}"));
                }
            }
        })
        .on_message(move |socket, message| {
            match message {
                Message::Text(text) => log(&format!("received {text:?}")),
                Message::Binary(bytes) => {
                    log(&format!("received {} bytes: {bytes:?}", bytes.len()))
                }
            }
            replies += 1;
            // One reply for each of the three messages sent.
            if replies == 3 {
                // Starts the close handshake; `on_close` tells when it is done. The code and
                // reason are checked here, before the browser would throw on them.
                let _ = socket.close_with(1000, "done");
            }
        })
        .on_close(|_, close| log(&format!("closed ({}) {}", close.code, close.reason)))
        // Fails at once only on an invalid URL; a server that cannot be reached is a close
        // (1006) later, through `on_close`.
        .connect()
}

/// Connects, then waits until the socket has closed: the handle must live until then, since
/// dropping the last one closes the socket.
async fn run(url: &str) -> Result<CloseEvent, wasm_websocket::Error> {
    let socket = connect(url)?;
    Ok(socket.closed().await)
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
    let close = tokio::task::LocalSet::new().run_until(run(url)).await?;
    if close.code != 1000 {
        return Err(format!("closed with {} {}", close.code, close.reason).into());
    }
    Ok(())
}

fn log(line: &str) {
    #[cfg(target_arch = "wasm32")]
    web_sys::console::log_1(&line.into());
    #[cfg(not(target_arch = "wasm32"))]
    println!("{line}");
}
