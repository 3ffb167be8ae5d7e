//! The client in a dedicated Web Worker, off the page's main thread: the crate never touches
//! `window`, so the same code runs there. The worker connects to the server that served it,
//! and posts each reply to the page (`index.html` here), which shows it and logs it. Browser
//! only.
//!
//! Build it, make its JavaScript glue with the `wasm-bindgen` CLI (the version in Cargo.lock,
//! which `cargo xtask build` installs), put it beside the page and the worker's script
//! (`worker.js`, which loads it), and serve them with this project's server:
//!
//! ```sh
//! cargo build -p wasm-websocket --example worker --target wasm32-unknown-unknown
//! wasm-bindgen --target web --out-dir target/worker/pkg \
//!     target/wasm32-unknown-unknown/debug/examples/worker.wasm
//! cp client/examples/worker/index.html client/examples/worker/worker.js target/worker/
//! cargo run -p wsecho -- --www target/worker       # then open http://127.0.0.1:1234/
//! ```
//!
//! The page shows `Received:  from a worker`, then `closed (1000)`.

/// In a dedicated worker: its global scope is a `DedicatedWorkerGlobalScope`, whose
/// `postMessage` talks to the page that started it.
#[cfg(target_arch = "wasm32")]
fn main() {
    use futures_util::{SinkExt, StreamExt};
    use wasm_bindgen::JsCast;
    use wasm_websocket::{Message, WebSocket};

    let Ok(scope) = js_sys::global().dyn_into::<web_sys::DedicatedWorkerGlobalScope>() else {
        web_sys::console::error_1(&"this example runs in a dedicated worker".into());
        return;
    };
    // The server that served the worker's script (a worker has a location, not a window).
    let url = format!("ws://{}/", scope.location().host());
    let post = move |line: &str| {
        let _ = scope.post_message(&line.into());
    };
    // The worker's own event loop runs the future, as a page's does.
    wasm_bindgen_futures::spawn_local(async move {
        let run = async {
            let socket = WebSocket::open(&url).await?;
            let mut messages = socket.messages();
            messages.send("from a worker".into()).await?;
            if let Some(Message::Text(reply)) = messages.next().await {
                post(&reply);
            }
            messages.close().await?;
            Ok::<_, wasm_websocket::Error>(socket.closed().await)
        };
        match run.await {
            Ok(close) => post(&format!("closed ({})", close.code)),
            Err(error) => post(&error.to_string()),
        }
    });
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "the worker example runs in a browser's dedicated worker: build it for \
         wasm32-unknown-unknown (see the comment at the top of examples/worker/main.rs)"
    );
}
