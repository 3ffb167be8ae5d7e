//! The comparison's program on ws_stream_wasm 0.7: `WsMeta::connect`, and its `WsStream`, a
//! `Stream` and `Sink` of `WsMessage`.

use futures_util::{SinkExt, StreamExt};
use peers_common::{binary, pattern, text};
use wasm_bindgen::prelude::*;
use ws_stream_wasm::{WsMessage, WsMeta};

#[wasm_bindgen]
pub async fn round_trips(url: String, count: u32, size: usize) -> Result<(), JsError> {
    let (meta, mut stream) = WsMeta::connect(&url, None).await?;
    for n in 0..count {
        let sent = text(n, size);
        stream.send(WsMessage::Text(sent.clone())).await?;
        match stream.next().await {
            Some(WsMessage::Text(reply)) if reply == sent => {}
            _ => return Err(JsError::new("wrong echo")),
        }
    }
    meta.close().await?;
    Ok(())
}

#[wasm_bindgen]
pub async fn binary_round_trips(url: String, count: u32, size: usize) -> Result<(), JsError> {
    let (meta, mut stream) = WsMeta::connect(&url, None).await?;
    let pattern = pattern(size);
    for n in 0..count {
        let sent = binary(&pattern, n);
        stream.send(WsMessage::Binary(sent.clone())).await?;
        match stream.next().await {
            Some(WsMessage::Binary(reply)) if reply == sent => {}
            _ => return Err(JsError::new("wrong echo")),
        }
    }
    meta.close().await?;
    Ok(())
}

#[wasm_bindgen]
pub async fn in_flight(url: String, count: u32, size: usize, window: u32) -> Result<(), JsError> {
    let (meta, mut stream) = WsMeta::connect(&url, None).await?;
    let pattern = pattern(size);
    let mut sent = 0;
    for n in 0..count {
        while sent < count && sent - n < window {
            stream
                .feed(WsMessage::Binary(binary(&pattern, sent)))
                .await?;
            sent += 1;
        }
        stream.flush().await?;
        match stream.next().await {
            Some(WsMessage::Binary(reply)) if reply == binary(&pattern, n) => {}
            _ => return Err(JsError::new("wrong echo")),
        }
    }
    meta.close().await?;
    Ok(())
}

#[wasm_bindgen]
pub async fn open_close(url: String, count: u32) -> Result<(), JsError> {
    for _ in 0..count {
        let (meta, _stream) = WsMeta::connect(&url, None).await?;
        meta.close().await?;
    }
    Ok(())
}
