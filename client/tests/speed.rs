//! Scenario 5 of `cargo xtask bench`: this crate against the browser's own `WebSocket` driven
//! by plain JavaScript, on the same page and the same server (a pure echo, started by the
//! benchmark and named in `ECHO_SERVER_URL` at build time). Every reply is checked on both
//! sides. The round trips run twice in Rust: through the async API (`messages()` in a task
//! of its own) and through the callbacks, and twice more by the least Rust can do on the same
//! bindings without the crate (the floor of any Rust client: `bare_open`). It prints `speed:`
//! lines that the benchmark reads;
//! it is ignored by default (the test command only builds it) and `cargo xtask bench` runs it
//! with `--include-ignored`. Built with the `web-socket-stream` feature and
//! `WS_TRANSPORT=stream`, the crate runs on the browser's `WebSocketStream` instead (the
//! benchmark's transport rows).

#![cfg(target_arch = "wasm32")]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use futures_util::StreamExt;
use js_sys::Date;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_websocket::{Builder, Event, Message, Messages, WebSocket};

wasm_bindgen_test_configure!(run_in_browser);

/// Sequential round trips of `TEXT_SIZE` bytes, per run.
const ROUND_TRIPS: u32 = 5_000;
const TEXT_SIZE: usize = 32;
/// `BINARY_COUNT` messages of `BINARY_SIZE` bytes each way, `IN_FLIGHT` at a time, per run.
const BINARY_COUNT: u32 = 1_000;
const BINARY_SIZE: usize = 64 * 1024;
const IN_FLIGHT: u32 = 8;
/// Runs of each, alternating JavaScript and Rust; the medians are reported.
const RUNS: usize = 11;

#[wasm_bindgen(inline_js = r#"
function text(n, size) { return String(n).padStart(size, "0"); }
function binary(n, size) {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (n + i) & 255;
    return data;
}
function open(url) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        ws.binaryType = "arraybuffer";
        ws.onopen = () => resolve(ws);
        ws.onerror = () => reject(new Error("cannot connect to " + url));
    });
}
export async function js_round_trips(url, count, size) {
    const ws = await open(url);
    const start = performance.now();
    await new Promise((resolve, reject) => {
        let n = 0;
        ws.onmessage = (event) => {
            if (event.data !== text(n, size)) return reject(new Error("wrong reply " + n));
            if (++n === count) return resolve();
            ws.send(text(n, size));
        };
        ws.send(text(0, size));
    });
    const elapsed = performance.now() - start;
    ws.close();
    return elapsed;
}
export async function js_binary(url, count, size, inFlight) {
    const ws = await open(url);
    const messages = [];
    for (let n = 0; n < count; n++) messages.push(binary(n, size));
    const start = performance.now();
    await new Promise((resolve, reject) => {
        let sent = 0, received = 0;
        const send = () => {
            while (sent < count && sent - received < inFlight) ws.send(messages[sent++]);
        };
        ws.onmessage = (event) => {
            const reply = new Uint8Array(event.data);
            const expected = messages[received];
            if (reply.length !== size || reply[0] !== expected[0] || reply[size - 1] !== expected[size - 1])
                return reject(new Error("wrong reply " + received));
            if (++received === count) return resolve();
            send();
        };
        send();
    });
    const elapsed = performance.now() - start;
    ws.close();
    return elapsed;
}
// The least a Rust program can do for the round trips on the same bindings, without the crate:
// `listen` calls `on` with each message (from `onmessage`, or from each `read()` of a
// `WebSocketStream`), which sends the next through `send`.
const ignore = () => {};
export async function bare_open(url, stream) {
    if (!stream) {
        const ws = await open(url);
        return {
            send: (chunk) => ws.send(chunk),
            listen: (on) => { ws.onmessage = (event) => on(event.data); },
            close: () => { ws.onmessage = null; ws.close(); },
        };
    }
    const wss = new WebSocketStream(url);
    const { readable, writable } = await wss.opened;
    const reader = readable.getReader(), writer = writable.getWriter();
    return {
        send: (chunk) => { writer.write(chunk).catch(ignore); },
        listen: (on) => {
            const next = (result) => {
                if (result.done) return;
                on(result.value);
                reader.read().then(next, ignore);
            };
            reader.read().then(next, ignore);
        },
        close: () => wss.close(),
    };
}
// The same on `WebSocketStream`, the baseline of the crate on that transport.
export async function js_stream_round_trips(url, count, size) {
    const wss = new WebSocketStream(url);
    const { readable, writable } = await wss.opened;
    const reader = readable.getReader(), writer = writable.getWriter();
    const start = performance.now();
    for (let n = 0; n < count; n++) {
        writer.write(text(n, size));
        const { value } = await reader.read();
        if (value !== text(n, size)) throw new Error("wrong reply " + n);
    }
    const elapsed = performance.now() - start;
    wss.close();
    return elapsed;
}
export async function js_stream_binary(url, count, size, inFlight) {
    const wss = new WebSocketStream(url);
    const { readable, writable } = await wss.opened;
    const reader = readable.getReader(), writer = writable.getWriter();
    const messages = [];
    for (let n = 0; n < count; n++) messages.push(binary(n, size));
    const start = performance.now();
    let sent = 0;
    for (let received = 0; received < count; received++) {
        while (sent < count && sent - received < inFlight) writer.write(messages[sent++]);
        const { value } = await reader.read();
        const reply = new Uint8Array(value), expected = messages[received];
        if (reply.length !== size || reply[0] !== expected[0] || reply[size - 1] !== expected[size - 1])
            throw new Error("wrong reply " + received);
    }
    const elapsed = performance.now() - start;
    wss.close();
    return elapsed;
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    async fn js_stream_round_trips(url: &str, count: u32, size: usize) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn js_stream_binary(
        url: &str,
        count: u32,
        size: usize,
        in_flight: u32,
    ) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn bare_open(url: &str, stream: bool) -> Result<JsValue, JsValue>;
    /// What `bare_open` resolves to.
    #[derive(Clone)]
    type Bare;
    #[wasm_bindgen(method)]
    fn send(this: &Bare, chunk: &JsValue);
    #[wasm_bindgen(method)]
    fn listen(this: &Bare, on: &Closure<dyn FnMut(JsValue)>);
    #[wasm_bindgen(method)]
    fn close(this: &Bare);
    #[wasm_bindgen(catch)]
    async fn js_round_trips(url: &str, count: u32, size: usize) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn js_binary(
        url: &str,
        count: u32,
        size: usize,
        in_flight: u32,
    ) -> Result<JsValue, JsValue>;
}

fn server_url() -> &'static str {
    match option_env!("ECHO_SERVER_URL") {
        Some(url) => url,
        None => panic!("ECHO_SERVER_URL names a pure echo server; run `cargo xtask bench`"),
    }
}

/// Whether the crate is measured on `WebSocketStream`: then plain JavaScript on it is measured
/// too.
fn on_stream() -> bool {
    cfg!(feature = "web-socket-stream") && option_env!("WS_TRANSPORT") == Some("stream")
}

/// A builder on the transport measured: `WebSocketStream` when built for it.
fn builder() -> Builder {
    let builder = WebSocket::builder(server_url());
    #[cfg(feature = "web-socket-stream")]
    if option_env!("WS_TRANSPORT") == Some("stream") {
        return builder.web_socket_stream();
    }
    builder
}

async fn open() -> (WebSocket, Messages) {
    let socket = builder().connect().unwrap();
    let mut events = socket.events();
    assert_eq!(events.next().await, Some(Event::Open));
    drop(events);
    let messages = socket.messages();
    (socket, messages)
}

fn text(n: u32) -> String {
    format!("{n:0TEXT_SIZE$}")
}

fn binary(n: u32) -> Vec<u8> {
    (0..BINARY_SIZE).map(|i| (n as usize + i) as u8).collect()
}

async fn rust_round_trips() -> f64 {
    let (socket, mut messages) = open().await;
    let start = Date::now();
    for n in 0..ROUND_TRIPS {
        let sent = text(n);
        socket.send(&sent).unwrap();
        let reply = messages.next().await.expect("a reply");
        assert!(
            matches!(reply, Message::Text(text) if text == sent),
            "wrong reply {n}"
        );
    }
    let elapsed = Date::now() - start;
    socket.close().unwrap();
    elapsed
}

/// The same round trips driven from the callbacks, as the JavaScript is: each reply sends the
/// next message from inside the message callback.
async fn rust_callback_round_trips() -> f64 {
    let (done, finished) = futures_channel::oneshot::channel();
    let mut done = Some(done);
    // The callbacks send through the socket they are given.
    let start = Rc::new(Cell::new(0.0));
    let on_open = {
        let start = start.clone();
        move |socket: &WebSocket| {
            start.set(Date::now());
            socket.send(text(0)).unwrap();
        }
    };
    let on_message = {
        let (start, mut n) = (start.clone(), 0);
        move |socket: &WebSocket, reply| {
            assert!(
                matches!(reply, Message::Text(t) if t == text(n)),
                "wrong reply {n}"
            );
            n += 1;
            if n < ROUND_TRIPS {
                socket.send(text(n)).unwrap();
            } else if let Some(done) = done.take() {
                let _ = done.send(Date::now() - start.get());
            }
        }
    };
    driven(on_open, on_message, finished).await
}

/// The floor of any Rust client's round trips: the same round trips by the least a Rust
/// program can do on the same bindings, without this crate (`bare_open`): a closure given each
/// reply, sending the next. What remains between it and the JavaScript is wasm-bindgen's: the
/// strings and the call crossing between wasm and JavaScript.
async fn bare_callback_round_trips() -> f64 {
    let bare = bare().await;
    let (done, finished) = futures_channel::oneshot::channel();
    let (mut done, mut n, sender) = (Some(done), 0, bare.clone());
    let start = Date::now();
    let on = Closure::new(move |reply: JsValue| {
        assert!(reply.as_string() == Some(text(n)), "wrong reply {n}");
        n += 1;
        if n < ROUND_TRIPS {
            sender.send(&text(n).into());
        } else if let Some(done) = done.take() {
            let _ = done.send(Date::now() - start);
        }
    });
    bare.listen(&on);
    bare.send(&text(0).into());
    let elapsed = finished.await.expect("all round trips");
    bare.close();
    elapsed
}

/// The floor of any async Rust client's round trips: the same bindings, each reply handed to a
/// task through the least a channel needs (a queue and the task's waker). What remains
/// between it and the callbacks is the executor's: wasm-bindgen-futures wakes a task through
/// `queueMicrotask`.
async fn bare_async_round_trips() -> f64 {
    let bare = bare().await;
    let inbox: Rc<RefCell<(VecDeque<JsValue>, Option<Waker>)>> = Rc::default();
    let on = {
        let inbox = inbox.clone();
        Closure::new(move |reply| {
            let mut inbox = inbox.borrow_mut();
            inbox.0.push_back(reply);
            if let Some(task) = inbox.1.take() {
                task.wake();
            }
        })
    };
    bare.listen(&on);
    let start = Date::now();
    for n in 0..ROUND_TRIPS {
        let sent = text(n);
        bare.send(&JsValue::from(&sent));
        let reply = poll_fn(|cx| {
            let mut inbox = inbox.borrow_mut();
            inbox.0.pop_front().map_or_else(
                || {
                    inbox.1 = Some(cx.waker().clone());
                    Poll::Pending
                },
                Poll::Ready,
            )
        })
        .await;
        assert!(reply.as_string() == Some(sent), "wrong reply {n}");
    }
    let elapsed = Date::now() - start;
    bare.close();
    elapsed
}

async fn bare() -> Bare {
    let bare = bare_open(server_url(), on_stream()).await;
    bare.expect("a connection").unchecked_into()
}

/// Like the JavaScript, it sends messages made before the clock starts, each handed over as
/// it is (the JavaScript's arrays are not copied either), and checks each reply against what
/// it noted of the message.
async fn rust_binary() -> f64 {
    let (socket, mut messages) = open().await;
    let mut unsent: Vec<Vec<u8>> = (0..BINARY_COUNT).map(binary).collect();
    let sent: Vec<Noted> = unsent.iter().map(|data| Noted::of(data)).collect();
    let start = Date::now();
    let mut next = 0;
    for (received, noted) in sent.iter().enumerate() {
        while next < unsent.len() && next - received < IN_FLIGHT as usize {
            socket.send(std::mem::take(&mut unsent[next])).unwrap();
            next += 1;
        }
        let reply = messages.next().await.expect("a reply");
        assert!(
            matches!(&reply, Message::Binary(data) if Noted::of(data) == *noted),
            "wrong reply {received}"
        );
    }
    let elapsed = Date::now() - start;
    socket.close().unwrap();
    elapsed
}

/// The same from the callbacks, as the JavaScript does it: the first messages sent on open,
/// each reply checked and the next message sent from inside the message callback.
async fn rust_callback_binary() -> f64 {
    let unsent: Vec<Vec<u8>> = (0..BINARY_COUNT).map(binary).collect();
    let sent: Vec<Noted> = unsent.iter().map(|data| Noted::of(data)).collect();
    let unsent = Rc::new(RefCell::new(unsent.into_iter()));
    let (done, finished) = futures_channel::oneshot::channel();
    let (mut done, start) = (Some(done), Rc::new(Cell::new(0.0)));
    let on_open = {
        let (unsent, start) = (unsent.clone(), start.clone());
        move |socket: &WebSocket| {
            start.set(Date::now());
            for data in unsent.borrow_mut().by_ref().take(IN_FLIGHT as usize) {
                socket.send(data).unwrap();
            }
        }
    };
    let mut received = 0;
    let on_message = move |socket: &WebSocket, reply| {
        assert!(
            matches!(&reply, Message::Binary(data) if Noted::of(data) == sent[received]),
            "wrong reply {received}"
        );
        received += 1;
        if let Some(data) = unsent.borrow_mut().next() {
            socket.send(data).unwrap();
        } else if received == sent.len() {
            if let Some(done) = done.take() {
                let _ = done.send(Date::now() - start.get());
            }
        }
    };
    driven(on_open, on_message, finished).await
}

/// Connects with the callbacks given, and closes once `finished` gives the time they took.
async fn driven(
    on_open: impl FnMut(&WebSocket) + 'static,
    on_message: impl FnMut(&WebSocket, Message) + 'static,
    finished: futures_channel::oneshot::Receiver<f64>,
) -> f64 {
    let socket = builder()
        .on_open(on_open)
        .on_message(on_message)
        .connect()
        .unwrap();
    let elapsed = finished.await.expect("every reply");
    socket.close().unwrap();
    elapsed
}

/// What the JavaScript checks of a binary reply: its length and its first and last bytes (a
/// comparison of every byte would be work the JavaScript side does not do).
#[derive(PartialEq)]
struct Noted(usize, Option<u8>, Option<u8>);

impl Noted {
    fn of(data: &[u8]) -> Noted {
        Noted(data.len(), data.first().copied(), data.last().copied())
    }
}

/// Runs `work` as a task of its own, as an application would, rather than inside the test
/// harness's future, which is polled (with its own bookkeeping) at every wake.
async fn spawned(work: impl std::future::Future<Output = f64> + 'static) -> f64 {
    let (done, result) = futures_channel::oneshot::channel();
    wasm_bindgen_futures::spawn_local(async move {
        let _ = done.send(work.await);
    });
    result.await.expect("the task ran")
}

fn median(runs: &[f64]) -> f64 {
    let mut runs = runs.to_vec();
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// Ours against the baseline, from their times: the median of each run's ratio against the
/// baseline's run beside it, which a change in the machine's speed during the series skews
/// less than a ratio of the two medians does.
fn ratio(baseline_ms: &[f64], ours_ms: &[f64]) -> f64 {
    let ratios: Vec<f64> = (baseline_ms.iter().zip(ours_ms))
        .map(|(base, ours)| base / ours)
        .collect();
    median(&ratios)
}

#[wasm_bindgen_test]
#[ignore = "a benchmark: `cargo xtask bench` runs it with --include-ignored"]
async fn wasm_client_against_plain_javascript() {
    let url = server_url();
    let (mut js, mut js_stream, mut rust, mut cb) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut bare_cb, mut bare_async) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        // Alternate which goes first: the second of a pair may pay for the first's garbage.
        if run % 2 == 1 {
            rust.push(spawned(rust_round_trips()).await);
            cb.push(rust_callback_round_trips().await);
            bare_cb.push(bare_callback_round_trips().await);
            bare_async.push(spawned(bare_async_round_trips()).await);
        }
        let ms = js_round_trips(url, ROUND_TRIPS, TEXT_SIZE).await.unwrap();
        js.push(ms.as_f64().unwrap());
        if on_stream() {
            let ms = js_stream_round_trips(url, ROUND_TRIPS, TEXT_SIZE).await;
            js_stream.push(ms.unwrap().as_f64().unwrap());
        }
        if run % 2 == 0 {
            bare_async.push(spawned(bare_async_round_trips()).await);
            bare_cb.push(bare_callback_round_trips().await);
            cb.push(rust_callback_round_trips().await);
            rust.push(spawned(rust_round_trips()).await);
        }
    }
    let per_second = |ms: f64| f64::from(ROUND_TRIPS) / ms * 1e3;
    let (js_rate, rust_rate, cb_rate) = (
        per_second(median(&js)),
        per_second(median(&rust)),
        per_second(median(&cb)),
    );
    console_log!("speed: round_trips js={js_rate:.0} stream={rust_rate:.0} callbacks={cb_rate:.0}");
    console_log!(
        "speed: round_trip_ratios async={:.3} callbacks={:.3}",
        ratio(&js, &rust),
        ratio(&js, &cb)
    );
    // The floor, against the JavaScript on the same transport.
    let same = if on_stream() { &js_stream } else { &js };
    console_log!(
        "speed: bare_round_trips callbacks={:.0} async={:.0}",
        per_second(median(&bare_cb)),
        per_second(median(&bare_async))
    );
    console_log!(
        "speed: bare_ratios callbacks={:.3} async={:.3}",
        ratio(same, &bare_cb),
        ratio(same, &bare_async)
    );
    console_log!(
        "speed: over_bare callbacks={:.3} async={:.3}",
        ratio(&bare_cb, &cb),
        ratio(&bare_async, &rust)
    );
    if on_stream() {
        let js = per_second(median(&js_stream));
        console_log!("speed: stream_round_trips js_stream={js:.0}");
        console_log!(
            "speed: stream_round_trip_ratios async={:.3} callbacks={:.3}",
            ratio(&js_stream, &rust),
            ratio(&js_stream, &cb)
        );
    }

    let (mut js_ms, mut js_stream_ms, mut rust_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut cb_ms = Vec::new();
    for run in 0..RUNS {
        if run % 2 == 1 {
            rust_ms.push(spawned(rust_binary()).await);
            cb_ms.push(rust_callback_binary().await);
        }
        let ms = js_binary(url, BINARY_COUNT, BINARY_SIZE, IN_FLIGHT)
            .await
            .unwrap();
        js_ms.push(ms.as_f64().unwrap());
        if on_stream() {
            let ms = js_stream_binary(url, BINARY_COUNT, BINARY_SIZE, IN_FLIGHT).await;
            js_stream_ms.push(ms.unwrap().as_f64().unwrap());
        }
        if run % 2 == 0 {
            cb_ms.push(rust_callback_binary().await);
            rust_ms.push(spawned(rust_binary()).await);
        }
    }
    // Both ways, like the server scenarios.
    let megabytes = 2.0 * f64::from(BINARY_COUNT) * BINARY_SIZE as f64 / 1e6;
    let per_second = |ms: f64| megabytes / ms * 1e3;
    let (js, rust) = (per_second(median(&js_ms)), per_second(median(&rust_ms)));
    let cb = per_second(median(&cb_ms));
    console_log!("speed: binary_mb_per_s js={js:.1} stream={rust:.1} callbacks={cb:.1}");
    console_log!(
        "speed: binary_ratio ours={:.3} callbacks={:.3}",
        ratio(&js_ms, &rust_ms),
        ratio(&js_ms, &cb_ms)
    );
    if on_stream() {
        let js = per_second(median(&js_stream_ms));
        console_log!("speed: stream_binary_mb_per_s js_stream={js:.1}");
        console_log!(
            "speed: stream_binary_ratio ours={:.3} callbacks={:.3}",
            ratio(&js_stream_ms, &rust_ms),
            ratio(&js_stream_ms, &cb_ms)
        );
    }
}
