//! What the browser test files share. Nothing here touches `window`, so that the same helpers
//! work in a dedicated worker.

#![allow(dead_code)] // Each test file uses its own part.

use futures_util::future::{Either, select};
use futures_util::{Stream, StreamExt};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// Where the tests find the echo server, started with the flags they need (README, "The
/// client crate"):
///
/// ```sh
/// cargo run -p echo-server -- --addr 127.0.0.1:1235 --test-controls --protocol echo.v1
/// ```
///
/// `cargo xtask test` starts its own on port 0 and names it in `ECHO_SERVER_URL` at build time.
pub const DEFAULT_SERVER_URL: &str = "ws://127.0.0.1:1235/";

pub fn server_url() -> &'static str {
    option_env!("ECHO_SERVER_URL").unwrap_or(DEFAULT_SERVER_URL)
}

#[wasm_bindgen]
extern "C" {
    // The global function, in a window and in a worker alike. (Declared unlike the library's
    // own binding, which would otherwise clash with it at link time.)
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout_for_tests(handler: &js_sys::Function, timeout: f64);
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout_for_tests(&resolve, ms.into());
    });
    JsFuture::from(promise).await.unwrap();
}

/// The next item, or a panic after five seconds without one.
pub async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    within(5_000, stream.next()).await
}

/// `future`'s output, or a panic after `ms` milliseconds without it.
pub async fn within<F: Future>(ms: i32, future: F) -> F::Output {
    match select(Box::pin(future), Box::pin(sleep(ms))).await {
        Either::Left((output, _)) => output,
        Either::Right(_) => panic!("nothing within {ms} ms"),
    }
}

/// Fires the browser event `name` on `target`, as the browser would.
pub fn dispatch(target: &wasm_bindgen::JsValue, name: &str) {
    use wasm_bindgen::JsCast;
    let target: &web_sys::EventTarget = target.unchecked_ref();
    let event = web_sys::Event::new(name).unwrap();
    target.dispatch_event(&event).unwrap();
}
