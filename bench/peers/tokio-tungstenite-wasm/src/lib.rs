//! The comparison's program on tokio-tungstenite-wasm 0.8: `connect`, and its
//! `WebSocketStream`, a `Stream` and `Sink` of tungstenite-style messages.

use futures_util::{SinkExt, StreamExt};
use peers_common::{binary, pattern, text};
use tokio_tungstenite_wasm::{Message, connect};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub async fn round_trips(url: String, count: u32, size: usize) -> Result<(), JsError> {
    let mut socket = connect(&url).await?;
    for n in 0..count {
        let sent = text(n, size);
        socket.send(Message::text(sent.clone())).await?;
        match socket.next().await {
            Some(Ok(Message::Text(reply))) if reply.as_str() == sent => {}
            _ => return Err(JsError::new("wrong echo")),
        }
    }
    Ok(socket.close().await?)
}

#[wasm_bindgen]
pub async fn binary_round_trips(url: String, count: u32, size: usize) -> Result<(), JsError> {
    let mut socket = connect(&url).await?;
    let pattern = pattern(size);
    for n in 0..count {
        let sent = binary(&pattern, n);
        socket.send(Message::binary(sent.clone())).await?;
        match socket.next().await {
            Some(Ok(Message::Binary(reply))) if reply == sent => {}
            _ => return Err(JsError::new("wrong echo")),
        }
    }
    Ok(socket.close().await?)
}

#[wasm_bindgen]
pub async fn in_flight(url: String, count: u32, size: usize, window: u32) -> Result<(), JsError> {
    let mut socket = connect(&url).await?;
    let pattern = pattern(size);
    let mut sent = 0;
    for n in 0..count {
        while sent < count && sent - n < window {
            socket.feed(Message::binary(binary(&pattern, sent))).await?;
            sent += 1;
        }
        socket.flush().await?;
        match socket.next().await {
            Some(Ok(Message::Binary(reply))) if reply == binary(&pattern, n) => {}
            _ => return Err(JsError::new("wrong echo")),
        }
    }
    Ok(socket.close().await?)
}

#[wasm_bindgen]
pub async fn open_close(url: String, count: u32) -> Result<(), JsError> {
    for _ in 0..count {
        let mut socket = connect(&url).await?;
        socket.close().await?;
        while socket.next().await.is_some() {}
    }
    Ok(())
}
