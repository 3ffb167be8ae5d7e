//! Timers on the browser's `setTimeout`: a one-shot callback owned by Rust and cancelled when
//! dropped, and a sleep future.

use std::time::Duration;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::tracked::Tracked;

/// A pending `setTimeout` callback. Dropping it cancels the timeout and frees the closure.
pub(crate) struct Timeout {
    id: i32,
    _callback: Tracked<Closure<dyn FnMut()>>,
}

impl Timeout {
    /// Calls `callback` once after `delay`.
    pub(crate) fn new(delay: Duration, callback: impl FnOnce() + 'static) -> Timeout {
        let mut callback = Some(callback);
        let closure = Closure::<dyn FnMut()>::new(move || {
            if let Some(callback) = callback.take() {
                callback();
            }
        });
        let id = set_timeout(closure.as_ref().unchecked_ref(), millis(delay));
        Timeout {
            id,
            _callback: Tracked::new(closure),
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timeout(self.id);
    }
}

/// Resolves after `delay`. The timeout callback is the promise's own resolve function, so
/// there is no Rust closure to keep alive.
pub(crate) async fn sleep(delay: Duration) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, millis(delay));
    });
    let _ = JsFuture::from(promise).await;
}

fn millis(delay: Duration) -> i32 {
    delay.as_millis().try_into().unwrap_or(i32::MAX)
}

// The global functions, so that timers work in a window and in a worker alike.
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, timeout: i32) -> i32;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: i32);
}
