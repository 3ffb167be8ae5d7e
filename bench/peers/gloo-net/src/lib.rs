//! The comparison's program on gloo-net 0.6: `gloo_net::websocket::futures::WebSocket`, a
//! `Stream` and `Sink` of messages.

use futures_util::future::poll_fn;
use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::{Message, futures::WebSocket};
use peers_common::{binary, pattern, text};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub async fn round_trips(url: String, count: u32, size: usize) -> Result<(), JsError> {
    let mut socket = WebSocket::open(&url)?;
    for n in 0..count {
        let sent = text(n, size);
        socket.send(Message::Text(sent.clone())).await?;
        match socket.next().await {
            Some(Ok(Message::Text(reply))) if reply == sent => {}
            _ => return Err(JsError::new("wrong echo")),
        }
    }
    Ok(socket.close(None, None)?)
}

#[wasm_bindgen]
pub async fn binary_round_trips(url: String, count: u32, size: usize) -> Result<(), JsError> {
    let mut socket = WebSocket::open(&url)?;
    let pattern = pattern(size);
    for n in 0..count {
        let sent = binary(&pattern, n);
        socket.send(Message::Bytes(sent.clone())).await?;
        match socket.next().await {
            Some(Ok(Message::Bytes(reply))) if reply == sent => {}
            _ => return Err(JsError::new("wrong echo")),
        }
    }
    Ok(socket.close(None, None)?)
}

#[wasm_bindgen]
pub async fn in_flight(url: String, count: u32, size: usize, window: u32) -> Result<(), JsError> {
    let mut socket = WebSocket::open(&url)?;
    let pattern = pattern(size);
    let mut sent = 0;
    for n in 0..count {
        while sent < count && sent - n < window {
            socket.feed(Message::Bytes(binary(&pattern, sent))).await?;
            sent += 1;
        }
        socket.flush().await?;
        match socket.next().await {
            Some(Ok(Message::Bytes(reply))) if reply == binary(&pattern, n) => {}
            _ => return Err(JsError::new("wrong echo")),
        }
    }
    Ok(socket.close(None, None)?)
}

#[wasm_bindgen]
pub async fn open_close(url: String, count: u32) -> Result<(), JsError> {
    for _ in 0..count {
        let mut socket = WebSocket::open(&url)?;
        // `open` does not wait, the sink's readiness does; `close` cannot be awaited.
        poll_fn(|cx| socket.poll_ready_unpin(cx)).await?;
        socket.close(None, None)?;
    }
    Ok(())
}
