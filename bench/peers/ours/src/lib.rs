//! The comparison's program on wasm-websocket: its async API, `send` and the `messages()`
//! stream; sixteen in flight through `messages()` as a `Sink`.

use futures_util::{SinkExt, StreamExt};
use peers_common::{binary, pattern, text};
use wasm_bindgen::prelude::*;
use wasm_websocket::{Message, WebSocket};

#[wasm_bindgen]
pub async fn round_trips(url: String, count: u32, size: usize) -> Result<(), JsError> {
    let socket = WebSocket::open(&url).await?;
    let mut messages = socket.messages();
    for n in 0..count {
        let sent = text(n, size);
        socket.send(sent.as_str())?;
        match messages.next().await {
            Some(Message::Text(reply)) if reply == sent => {}
            _ => return Err(JsError::new("wrong echo")),
        }
    }
    Ok(socket.close()?)
}

#[wasm_bindgen]
pub async fn binary_round_trips(url: String, count: u32, size: usize) -> Result<(), JsError> {
    let socket = WebSocket::open(&url).await?;
    let mut messages = socket.messages();
    let pattern = pattern(size);
    for n in 0..count {
        let sent = binary(&pattern, n);
        socket.send(sent.as_slice())?;
        match messages.next().await {
            Some(Message::Binary(reply)) if reply == sent => {}
            _ => return Err(JsError::new("wrong echo")),
        }
    }
    Ok(socket.close()?)
}

#[wasm_bindgen]
pub async fn in_flight(url: String, count: u32, size: usize, window: u32) -> Result<(), JsError> {
    let socket = WebSocket::open(&url).await?;
    let mut messages = socket.messages();
    let pattern = pattern(size);
    let mut sent = 0;
    for n in 0..count {
        while sent < count && sent - n < window {
            messages.feed(binary(&pattern, sent).into()).await?;
            sent += 1;
        }
        messages.flush().await?;
        match messages.next().await {
            Some(Message::Binary(reply)) if reply == binary(&pattern, n) => {}
            _ => return Err(JsError::new("wrong echo")),
        }
    }
    Ok(socket.close()?)
}

#[wasm_bindgen]
pub async fn open_close(url: String, count: u32) -> Result<(), JsError> {
    for _ in 0..count {
        let socket = WebSocket::open(&url).await?;
        socket.close()?;
        socket.closed().await;
    }
    Ok(())
}
