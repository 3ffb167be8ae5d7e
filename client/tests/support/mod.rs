//! What the test files share, in the browser and natively (`transports.rs` runs on both).
//! Nothing here touches `window`, so that the same helpers work in a dedicated worker.

#![allow(dead_code)] // Each test file uses its own part.

#[cfg(target_arch = "wasm32")]
use std::cell::Cell;
use std::cell::RefCell;
#[cfg(target_arch = "wasm32")]
use std::pin::Pin;
use std::rc::Rc;
#[cfg(target_arch = "wasm32")]
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::future::{Either, select};
use futures_util::{Stream, StreamExt};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen::JsCast;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen::prelude::*;
use wasm_websocket::{
    Builder, CloseCause, CloseEvent, Error, Event, Events, Message, Reconnect, Reconnecting, State,
    WebSocket,
};

/// Where the tests find the echo server, started with the flags they need (README, "The
/// client crate"):
///
/// ```sh
/// cargo run -p wsecho -- --addr 127.0.0.1:1235 --dev --test-controls --protocol echo.v1 --deflate
/// ```
///
/// `cargo xtask test` starts its own on port 0 and names it in `ECHO_SERVER_URL` at build time.
pub const DEFAULT_SERVER_URL: &str = "ws://127.0.0.1:1235/";

/// In the browser, `ECHO_SERVER_URL` at build time; natively, at run time.
#[cfg(target_arch = "wasm32")]
pub fn server_url() -> &'static str {
    option_env!("ECHO_SERVER_URL").unwrap_or(DEFAULT_SERVER_URL)
}

#[cfg(not(target_arch = "wasm32"))]
pub fn server_url() -> &'static str {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| std::env::var("ECHO_SERVER_URL").unwrap_or(DEFAULT_SERVER_URL.into()))
}

/// A builder on the transport the suite runs on: `WS_TRANSPORT=stream` at build time (with
/// the `web-socket-stream` feature) picks the browser's `WebSocketStream`; otherwise the
/// target's default.
pub fn builder(url: &str) -> Builder {
    let builder = WebSocket::builder(url);
    #[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
    if option_env!("WS_TRANSPORT") == Some("stream") {
        return builder.web_socket_stream();
    }
    builder
}

/// The transport [`builder`] picks. Asked for `WebSocketStream` in an engine that has none
/// (Firefox and WebKit: only Chromium has it), the socket falls back to `WebSocket` and says
/// so: that is what the suite then expects, and runs on.
pub fn expected_transport() -> wasm_websocket::Transport {
    use wasm_websocket::Transport;
    if cfg!(not(target_arch = "wasm32")) {
        Transport::Tungstenite
    } else if option_env!("WS_TRANSPORT") == Some("stream") && engine_has_web_socket_stream() {
        Transport::WebSocketStream
    } else {
        Transport::WebSocket
    }
}

/// Whether the engine the tests run in has `WebSocketStream`, in a page or a worker.
#[cfg(target_arch = "wasm32")]
pub fn engine_has_web_socket_stream() -> bool {
    js_sys::Reflect::has(&js_sys::global(), &"WebSocketStream".into()).unwrap_or(false)
}

#[cfg(not(target_arch = "wasm32"))]
pub fn engine_has_web_socket_stream() -> bool {
    false
}

/// The crate's closures (or, natively, tasks) that one connection holds: the browser's
/// `WebSocket` has four handlers, `WebSocketStream` seven promise callbacks, tungstenite one
/// task.
pub fn closures_per_connection() -> usize {
    match expected_transport() {
        wasm_websocket::Transport::WebSocket => 4,
        wasm_websocket::Transport::WebSocketStream => 7,
        _ => 1,
    }
}

/// Runs a test's body where sockets can be made: natively, on a tokio `LocalSet` (the socket
/// is `!Send`, like the browser's); in the browser, as it is.
#[cfg(not(target_arch = "wasm32"))]
pub async fn local<F: Future>(body: F) -> F::Output {
    tokio::task::LocalSet::new().run_until(body).await
}

/// Runs a test's body (in the browser, there is nothing to set up).
#[cfg(target_arch = "wasm32")]
pub async fn local<F: Future>(body: F) -> F::Output {
    body.await
}

/// A test of the suite every transport runs (`transports.rs`): in the browser, a
/// `wasm_bindgen_test`; natively, a `tokio::test` whose body runs on [`local`], ignored unless
/// asked for, since it needs the echo server (`cargo xtask test` runs it with
/// `--include-ignored`). Doc comments and attributes pass through; in parentheses, rustfmt
/// formats the test as any function:
///
/// ```ignore
/// transport_test!(
///     /// What it shows.
///     async fn a_name() {
///         // The body.
///     }
/// );
/// ```
#[allow(unused_macros)] // Only `transports.rs` has such tests.
macro_rules! transport_test {
    ($(#[$attr:meta])* async fn $name:ident() { $($body:tt)* }) => {
        $(#[$attr])*
        #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(
            not(target_arch = "wasm32"),
            tokio::test,
            ignore = "needs the echo server: cargo xtask test"
        )]
        async fn $name() {
            $crate::support::local(async { $($body)* }).await
        }
    };
}
#[allow(unused_imports)]
pub(crate) use transport_test;

/// Milliseconds since the epoch.
#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Milliseconds since the epoch.
#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> f64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.unwrap().as_secs_f64() * 1000.0
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen]
extern "C" {
    // The global functions, in a window and in a worker alike. (Named unlike the library's
    // own bindings, which would otherwise clash with them at link time.)
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout_for_tests(handler: &js_sys::Function, timeout: i32) -> i32;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout_for_tests(id: i32);
}

/// Resolves after `ms` milliseconds.
#[cfg(not(target_arch = "wasm32"))]
pub async fn sleep(ms: i32) {
    tokio::time::sleep(Duration::from_millis(ms.max(0) as u64)).await;
}

/// Resolves after `ms` milliseconds. Dropped before that (the race in [`within`] that the
/// other side won), it clears its timeout and frees its closure at once: nothing of it stays.
///
/// Not a promise awaited through `JsFuture`, which cannot be cancelled: its two callbacks
/// and their shared state (three allocations, about 60 bytes, and two JS values) stay until
/// the promise settles, and for ever if its timeout is cleared. Every `next` of the tests
/// left that behind for five seconds; WebKit and Firefox open 300 to 400 sockets a second
/// (Chromium 80), so five seconds spanned the whole 1,500-socket loop of the leak test, and
/// the high-water mark of those timers looked like wasm memory growing with every socket.
#[cfg(target_arch = "wasm32")]
pub fn sleep(ms: i32) -> Sleep {
    let fired: Rc<Fired> = Rc::default();
    let callback = Closure::<dyn FnMut()>::new({
        let fired = fired.clone();
        move || {
            fired.done.set(true);
            if let Some(waker) = fired.waker.take() {
                waker.wake();
            }
        }
    });
    let id = set_timeout_for_tests(callback.as_ref().unchecked_ref(), ms);
    Sleep {
        id,
        fired,
        _callback: callback,
    }
}

/// A timeout of [`sleep`]'s, owned by the future that waits for it.
#[cfg(target_arch = "wasm32")]
pub struct Sleep {
    id: i32,
    fired: Rc<Fired>,
    _callback: Closure<dyn FnMut()>,
}

#[cfg(target_arch = "wasm32")]
#[derive(Default)]
struct Fired {
    done: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

#[cfg(target_arch = "wasm32")]
impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.fired.done.get() {
            return Poll::Ready(());
        }
        self.fired.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

#[cfg(target_arch = "wasm32")]
impl Drop for Sleep {
    fn drop(&mut self) {
        // Harmless once it fired; before, the closure (dropped next) is never called.
        clear_timeout_for_tests(self.id);
    }
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
#[cfg(target_arch = "wasm32")]
pub fn dispatch(target: &wasm_bindgen::JsValue, name: &str) {
    let target: &web_sys::EventTarget = target.unchecked_ref();
    let event = web_sys::Event::new(name).unwrap();
    target.dispatch_event(&event).unwrap();
}

/// A line in the test's output: the browser's console, or stdout.
pub fn log(line: &str) {
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::console_log!("{line}");
    #[cfg(not(target_arch = "wasm32"))]
    println!("{line}");
}

/// Checks that the crate holds exactly `before` JavaScript closures again, once wasm-bindgen
/// has freed those dropped during their own calls (which happens after the current task).
/// On the transports driven by a task, a dropped connection's task first finishes its close
/// handshake: it gets the transport's close timeout (2 s) for it.
pub async fn assert_closures_back_to(before: usize) {
    sleep(0).await;
    let waits = match expected_transport() {
        wasm_websocket::Transport::WebSocket => 0,
        _ => 250,
    };
    for _ in 0..waits {
        if wasm_websocket::live_closures() == before {
            break;
        }
        sleep(10).await;
    }
    assert_eq!(
        wasm_websocket::live_closures(),
        before,
        "closures left behind"
    );
}

pub fn quick_reconnect() -> Reconnect {
    Reconnect::new()
        .initial_delay(Duration::from_millis(100))
        .max_delay(Duration::from_millis(400))
}

/// An open socket and its events.
pub async fn open(socket: WebSocket) -> (WebSocket, Events) {
    let mut events = socket.events();
    assert_eq!(next_event(&mut events).await, Event::Open);
    assert_eq!(socket.state(), State::Open);
    (socket, events)
}

pub async fn next_event(events: &mut Events) -> Event {
    next(events).await.expect("the stream ended early")
}

pub fn text(text: &str) -> Event {
    Event::Message(Message::Text(text.into()))
}

/// Port 9 (discard) is closed on the loopback of a test machine.
pub const UNREACHABLE: &str = "ws://127.0.0.1:9/";

/// A log that callbacks share with the test.
pub type Log<T> = Rc<RefCell<Vec<T>>>;

/// An open socket to `url` on the suite's transport ([`builder`]), and its events.
pub async fn open_url(url: &str) -> (WebSocket, Events) {
    open(builder(url).connect().unwrap()).await
}

/// The server's close, with its code and reason.
pub fn server_close(code: u16, reason: &str) -> Event {
    Event::Close(CloseEvent::new(code, reason, true))
}

/// The size of the page's wasm memory, in bytes.
#[cfg(target_arch = "wasm32")]
pub fn wasm_memory() -> f64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    let buffer: js_sys::ArrayBuffer = memory.buffer().unchecked_into();
    buffer.byte_length().into()
}

/// A handshake on the server's `/silent` path (a test control) is never answered.
pub fn silent_url() -> String {
    format!("{}silent", server_url())
}

/// Whether `event` reports `message` as unsent, for `error`.
pub fn is_unsent(event: &Event, message: impl Into<Message>, error: &Error) -> bool {
    let message = message.into();
    matches!(event, Event::Unsent(unsent) if unsent.message == message && unsent.error == *error)
}

/// The close of the application's `close_with(code, reason)`.
pub fn close(code: u16, reason: &str) -> Event {
    Event::Close(CloseEvent::new(code, reason, true).with_cause(CloseCause::Application))
}

/// The next event, which must be a close.
pub async fn next_close(events: &mut Events) -> CloseEvent {
    match next_event(events).await {
        Event::Close(close) => close,
        other => panic!("expected a close, got {other:?}"),
    }
}

/// Closes a socket made by a test and waits for the end of its events.
pub async fn finish(socket: WebSocket, mut events: Events) {
    let _ = socket.close();
    while next(&mut events).await.is_some() {}
}

/// Has the server drop the connection of a socket that reconnects, and returns the announced
/// attempt.
pub async fn dropped_by_the_server(socket: &WebSocket, events: &mut Events) -> Reconnecting {
    socket.send("!drop").unwrap();
    assert_eq!(next_close(events).await.code, 1006);
    match next_event(events).await {
        Event::Reconnecting(next) => next,
        other => panic!("expected a reconnection attempt, got {other:?}"),
    }
}

/// Every event until the stream ends.
pub async fn rest(events: &mut Events) -> Vec<Event> {
    let mut rest = Vec::new();
    while let Some(event) = next(events).await {
        rest.push(event);
    }
    rest
}

/// Reconnection whose first attempt waits long enough for a test to act while waiting: 5 to
/// 10 s. (Its maximum too: [`quick_reconnect`]'s 400 ms would cap it.)
pub fn slow_reconnect() -> Reconnect {
    let slow = Duration::from_secs(10);
    quick_reconnect().initial_delay(slow).max_delay(slow)
}

thread_local! {
    static ONLY_HANDLE: RefCell<Option<WebSocket>> = const { RefCell::new(None) };
}

/// Holds `socket` as the application's only handle, for a callback to drop with
/// [`drop_only_handle`].
pub fn keep_only_handle(socket: WebSocket) {
    ONLY_HANDLE.with(|slot| *slot.borrow_mut() = Some(socket));
}

/// Drops the handle [`keep_only_handle`] holds (from inside a callback, say).
pub fn drop_only_handle() {
    drop(ONLY_HANDLE.with(|slot| slot.borrow_mut().take()));
}
