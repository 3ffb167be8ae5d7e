//! Typed messages (feature `json`), in the browser and natively against the echo server: a
//! value sent as JSON text comes back prefixed by the server (`Received:  {..}`), which is not
//! JSON, and the stream says so and goes on; the same value's bytes sent as binary come back
//! as they were, and decode. `cargo xtask test` runs it in Chromium and natively.

#![cfg(feature = "json")]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test_configure;
use wasm_websocket::{Error, WebSocket};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::{next, server_url, transport_test};

#[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
struct Reading {
    sensor: String,
    celsius: f64,
}

transport_test!(
    async fn values_come_back_decoded_and_garbage_is_an_error_not_an_end() {
        let socket = WebSocket::open(server_url()).await.unwrap();
        let mut values = socket.json::<Reading>();
        let reading = Reading {
            sensor: "porch".into(),
            celsius: 21.5,
        };
        // Text: the server's prefix makes it something else than JSON.
        socket.send_json(&reading).unwrap();
        let garbage = next(&mut values).await.unwrap();
        assert!(matches!(&garbage, Err(Error::Json(_))), "{garbage:?}");
        // Binary: echoed as it was, and decoded; the stream went on after the error.
        let bytes = serde_json::to_vec(&reading).unwrap();
        socket.send_async(bytes).await.unwrap();
        assert_eq!(next(&mut values).await, Some(Ok(reading)));
        socket.close().unwrap();
        assert_eq!(next(&mut values).await, None);
        assert_eq!(values.close_event().map(|close| close.code), Some(1000));
    }
);
