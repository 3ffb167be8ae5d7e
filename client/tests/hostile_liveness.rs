//! Hostile and careless uses of the liveness features (connect timeout, heartbeat, close
//! causes, `should_reconnect`, `reconnect_now`, `follow_network` and the URL providers), in the
//! browser: what only the browser can show of them.
//!
//! This suite used to try the state machine here: 17 tests, about 12 s of real waits. The
//! core hears the browser's `online`, `offline` and `visibilitychange` as inputs, so those
//! scenarios now run natively in milliseconds on the simulated transport and clock, under the
//! same names, in `src/tests/scenarios/liveness.rs` (`cargo test -p wasm-websocket --lib
//! scenarios`). What stays is what the simulation cannot show: the `follow_network`
//! listeners, the timer's callback and the URL provider's future, all closures of the
//! browser's, freed when the last handle goes in every state, when the only handle is dropped
//! inside the `offline` listener's own call, and when `close()` ends a socket a final code had
//! finished. That the browser's events reach the core is `browser.rs`'s and `worker.rs`'s.

#![cfg(target_arch = "wasm32")]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_websocket::{CloseCause, Event, Heartbeat, State, WebSocket, live_closures};

wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::{
    dispatch, dropped_by_the_server, next, next_close, next_event, open, quick_reconnect,
    server_url, sleep,
};

fn global() -> wasm_bindgen::JsValue {
    js_sys::global().into()
}

/// An async URL provider that takes `ms` to answer the server's URL, counting its calls.
fn slow_provider(
    ms: i32,
    asked: Rc<Cell<u32>>,
) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = String>>> {
    let base = server_url().to_owned();
    move || {
        asked.set(asked.get() + 1);
        let url = base.clone();
        Box::pin(async move {
            sleep(ms).await;
            url
        })
    }
}

/// A socket that follows the network and reconnects, except after close code 4002.
fn final_code_4002() -> WebSocket {
    WebSocket::builder(server_url())
        .reconnect(quick_reconnect().final_code(4002))
        .follow_network()
        .connect()
        .unwrap()
}

/// The last handle dropped while every listener and timer is live (open with heartbeat and
/// listeners; held offline) leaves no closure behind.
#[wasm_bindgen_test]
async fn dropping_the_last_handle_with_everything_live() {
    let before = live_closures();
    let build = || {
        WebSocket::builder(server_url())
            .reconnect(quick_reconnect())
            .heartbeat(Heartbeat::new(
                Duration::from_millis(50),
                Duration::from_millis(500),
            ))
            .connect_timeout(Duration::from_secs(5))
            .url_provider_async(slow_provider(200, Rc::default()))
            .follow_network()
            .connect()
            .unwrap()
    };
    let (socket, events) = open(build()).await;
    sleep(120).await;
    assert!(live_closures() > before);
    drop((socket, events));
    sleep(0).await;
    assert_eq!(live_closures(), before, "dropped while open");

    let (socket, mut events) = open(build()).await;
    dispatch(&global(), "offline");
    assert_eq!(next_close(&mut events).await.cause, CloseCause::Offline);
    drop((socket, events));
    dispatch(&global(), "online");
    sleep(300).await;
    assert_eq!(live_closures(), before, "dropped while held offline");

    // While the async URL is pending.
    let (socket, mut events) = open(build()).await;
    dropped_by_the_server(&socket, &mut events).await;
    sleep(150).await;
    drop((socket, events));
    sleep(300).await;
    assert_eq!(live_closures(), before, "dropped while the URL was pending");
}

/// The only handle, dropped from `on_close` of an offline close (inside the browser's
/// `offline` listener, which goes with the socket): no panic, nothing left behind.
#[wasm_bindgen_test]
async fn the_only_handle_dropped_from_the_close_of_an_offline() {
    let before = live_closures();
    let holder: Rc<RefCell<Option<WebSocket>>> = Rc::default();
    let closes = Rc::new(RefCell::new(Vec::new()));
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect())
        .heartbeat(Heartbeat::new(
            Duration::from_millis(100),
            Duration::from_millis(500),
        ))
        .follow_network()
        .on_close({
            let holder = holder.clone();
            let closes = closes.clone();
            move |_, close| {
                closes.borrow_mut().push(close.cause);
                drop(holder.borrow_mut().take());
            }
        })
        .connect()
        .unwrap();
    let mut events = socket.events();
    assert_eq!(next_event(&mut events).await, Event::Open);
    *holder.borrow_mut() = Some(socket);
    drop(events);
    sleep(150).await;
    dispatch(&global(), "offline");
    dispatch(&global(), "online");
    sleep(300).await;
    assert_eq!(*closes.borrow(), vec![CloseCause::Offline]);
    assert!(holder.borrow().is_none());
    assert_eq!(live_closures(), before);
}

/// Regression (found by this suite, now fixed): A socket ended by the server's final code (or by
/// its attempts running out) keeps its `follow_network` listeners for `reconnect_now`; the
/// application's close() afterwards is final, and must let them go.
#[wasm_bindgen_test]
async fn close_after_a_final_code_lets_the_listeners_go() {
    let before = live_closures();
    let (socket, mut events) = open(final_code_4002()).await;
    socket.send("!close 4002 final").unwrap();
    assert_eq!(next_close(&mut events).await.code, 4002);
    assert_eq!(next(&mut events).await, None);
    socket.close().unwrap();
    sleep(100).await;
    let live = live_closures();
    // The socket is over for good: reconnect_now does nothing.
    socket.reconnect_now();
    sleep(100).await;
    assert_eq!(socket.state(), State::Closed);
    drop(socket);
    assert_eq!(
        live, before,
        "held after close(), before the handle is dropped"
    );
}
