//! Receive backpressure in the browser, measured (issue 15): the server floods a client that
//! does not read (`!flood COUNT SIZE`, a test control), and the page's memory is read while it
//! does not: wasm memory (`WebAssembly.Memory.buffer.byteLength`) and the JavaScript heap
//! (`performance.memory.usedJSHeapSize`, Chromium's). On `WebSocketStream` the client reads
//! only while its streams have room, so the growth is bounded whatever the volume; the
//! browser's `WebSocket` cannot be stopped, so everything sent lands in the page.
//!
//! Built with the `web-socket-stream` feature; `cargo xtask test` runs it against the echo
//! server named in `ECHO_SERVER_URL` at build time.

#![cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]

use js_sys::Reflect;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_websocket::{DEFAULT_RECEIVE_LIMIT, Event, Transport, WebSocket};

wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::{log, next_event, open, server_url, sleep, wasm_memory};

/// Each flooded message: 32 KiB.
const SIZE: usize = 32 * 1024;

/// How long the reader does not read.
const NOT_READING_MS: i32 = 3_000;

/// Chromium's `performance.memory.usedJSHeapSize` (0 where there is none).
fn js_heap() -> f64 {
    let performance = Reflect::get(&js_sys::global(), &"performance".into());
    let memory = performance.and_then(|p| Reflect::get(&p, &"memory".into()));
    let used = memory.and_then(|m| Reflect::get(&m, &"usedJSHeapSize".into()));
    used.ok().and_then(|used| used.as_f64()).unwrap_or(0.0)
}

/// What the page gained while `count` messages were sent to a socket nobody read, in bytes
/// of wasm memory and of JavaScript heap; then it reads a message to show the socket is fine.
async fn held_while_not_reading(stream: bool, count: u32) -> (f64, f64) {
    let builder = WebSocket::builder(server_url());
    let builder = if stream {
        builder.web_socket_stream()
    } else {
        builder
    };
    let (socket, mut events) = open(builder.connect().unwrap()).await;
    let expected = if stream {
        Transport::WebSocketStream
    } else {
        Transport::WebSocket
    };
    assert_eq!(socket.transport(), expected);
    sleep(0).await;
    let (wasm, heap) = (wasm_memory(), js_heap());
    socket.send(format!("!flood {count} {SIZE}")).unwrap();
    sleep(NOT_READING_MS).await;
    let held = (wasm_memory() - wasm, js_heap() - heap);
    match next_event(&mut events).await {
        Event::Message(message) => assert_eq!(message.as_binary().map(<[u8]>::len), Some(SIZE)),
        other => panic!("expected a flooded message, got {other:?}"),
    }
    // The server is still flooding: the socket is dropped, not closed politely.
    drop(events);
    drop(socket);
    held
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / f64::from(1 << 20))
}

#[wasm_bindgen_test]
async fn on_websocketstream_a_reader_that_does_not_read_holds_a_bounded_amount() {
    // The streams hold at most DEFAULT_RECEIVE_LIMIT messages; Chromium's stream and the
    // socket buffers a few more. Twice the inbox, and 4 MiB besides, whatever the volume.
    let bound = 2.0 * (DEFAULT_RECEIVE_LIMIT * SIZE) as f64 + f64::from(4 << 20);
    let mut figures = Vec::new();
    // Memory never shrinks: the stream runs first, smallest volume first.
    for count in [500, 5_000] {
        let (wasm, heap) = held_while_not_reading(true, count).await;
        let volume = f64::from(count) * SIZE as f64;
        log(&format!(
            "WebSocketStream, {count} x 32 KiB ({}) not read for {NOT_READING_MS} ms: \
             wasm memory +{}, JS heap +{}",
            mib(volume),
            mib(wasm),
            mib(heap)
        ));
        assert!(
            wasm < bound,
            "wasm memory grew by {} for {}",
            mib(wasm),
            mib(volume)
        );
        assert!(
            heap < bound,
            "the JS heap grew by {} for {}",
            mib(heap),
            mib(volume)
        );
        figures.push(wasm);
    }
    // The browser's `WebSocket` cannot stop: what was sent is in the page.
    let (wasm, heap) = held_while_not_reading(false, 1_000).await;
    log(&format!(
        "WebSocket, 1000 x 32 KiB (31.2 MiB) not read for {NOT_READING_MS} ms: \
         wasm memory +{}, JS heap +{}",
        mib(wasm),
        mib(heap)
    ));
    assert!(
        wasm > 2.0 * bound,
        "the classic WebSocket held only {}: the comparison shows nothing",
        mib(wasm)
    );
}
