//! The browser's WebSocket for Rust on `wasm32-unknown-unknown`, and the same API natively:
//! callbacks, or async streams and sinks; typed errors and validated closes; opt-in
//! reconnection with a bounded queue; backpressure on sending and on receiving; and JavaScript
//! closures that are owned and freed, never leaked. In the browser it runs wherever browsers
//! run code, in a page or a worker: it never touches `window`.
//!
//! # Transports
//!
//! One public API, three transports ([`Transport`], [`WebSocket::transport`]):
//!
//! - **the browser's `WebSocket`**, the default on `wasm32`. It cannot be told to stop
//!   receiving: a slow reader's messages wait in the page ([`Builder::receive_limit`] bounds
//!   that, by giving the connection up);
//! - **the browser's `WebSocketStream`** (Chromium 124 and later), with the
//!   `web-socket-stream` feature and `Builder::web_socket_stream()`; where the browser has
//!   none, the socket uses `WebSocket` and says so. It reads only while the application's
//!   streams have room, so a stream that is not polled makes TCP push back on the server;
//! - **tokio-tungstenite**, natively, with rustls (ring, Mozilla's roots) for `wss://`; it
//!   reads only while the streams have room, too. Natively only: the application's TLS
//!   setup (`Builder::tls_config`: a private authority, a client certificate), the system's
//!   verifier (`Builder::platform_verifier`, feature `platform-verifier`), and HTTP and
//!   SOCKS5 proxies (`Builder::proxy`, or the environment's `HTTPS_PROXY`, `http_proxy`, `ALL_PROXY` and
//!   `NO_PROXY` as curl reads them; `Builder::no_proxy`), whose refusal is `Error::Proxy`
//!   with the proxy's status; and with the `http2` feature, `wss://` sockets to one server as
//!   streams of one shared HTTP/2 connection (`Builder::http2`, `WebSocket::http_version`).
//!
//! The differences, and why:
//!
//! - **`!Send` everywhere.** The handle is an `Rc` over the driver, as a browser's one thread
//!   needs (the state machine itself is a plain value that does no I/O). Natively a socket lives on the thread that made it, driven by local tasks: make
//!   it inside a tokio `LocalSet` (`LocalSet::run_until`, or a task it runs) on a runtime with
//!   timers and I/O enabled; elsewhere `connect` fails with `Error::NoLocalSet`. A `Send`
//!   handle would need `Arc`/`Mutex` in the browser too, where they cost size and buy
//!   nothing; an application that wants one runs a socket on its own thread and talks to it
//!   over channels.
//! - **Natively there is no page:** URLs must be absolute (`http(s)://` is taken as
//!   `ws(s)://`), `follow_network` does nothing, and `extensions()` is empty (no
//!   permessage-deflate).
//! - **Subprotocols, the same everywhere:** a server that answers none of the offered
//!   subprotocols fails the attempt (an [`Event::Error`], then a close with 1006 and
//!   [`CloseCause::HandshakeFailed`]), as the WHATWG standard says. Chromium and tungstenite
//!   fail it themselves; Firefox and WebKit open it, and the crate then fails it.
//! - **Blocked ports, the same everywhere:** an attempt to a port browsers block (such as
//!   6000) fails with an [`Event::Error`], then a close with 1006 and
//!   [`CloseCause::HandshakeFailed`]. Chromium and Firefox report both; WebKit reports the
//!   error alone, and the crate then ends the attempt itself.
//! - [`live_closures`] counts the JavaScript closures of each connection (four on the
//!   browser's `WebSocket`, seven promise callbacks on `WebSocketStream`) and, natively, its
//!   task; a dropped connection's live on for its close handshake, at most 2 s.
//!
//! One socket, three styles, usable together. A [`WebSocket`] is a handle: clone it freely.
//! Its [`Event`]s go to the callbacks given to its [`Builder`] and to every stream made with
//! [`WebSocket::events`]. [`WebSocket::messages`] is one value that is both a `Stream` of
//! received messages and a `Sink` of messages to send.
//!
//! Every send takes ownership of its message, as anything that is `Into<Message>`: `&str`,
//! `String`, `&[u8]` and `Vec<u8>` alike.
//!
//! This is a library: it installs no panic hook and no allocator; both are the application's
//! (the demo page in `www/` installs `console_error_panic_hook` and `talc`).
//!
//! # Callbacks
//!
//! Each callback gets the socket it belongs to, so it can send or close without holding a
//! handle of its own (a handle captured by a callback would keep its socket alive).
//!
//! ```no_run
//! use std::cell::RefCell;
//!
//! use wasm_bindgen::prelude::*;
//! use wasm_websocket::{Message, WebSocket};
//!
//! thread_local! {
//!     // Dropping the last handle closes the socket: the page keeps it here.
//!     static SOCKET: RefCell<Option<WebSocket>> = const { RefCell::new(None) };
//! }
//!
//! #[wasm_bindgen(start)]
//! pub fn main() -> Result<(), JsError> {
//!     let socket = WebSocket::builder("ws://127.0.0.1:1234/")
//!         .on_open(|socket| {
//!             // Sends from a callback cannot fail for want of a connection.
//!             let _ = socket.send("Hello, world!");
//!         })
//!         .on_message(|socket, message| {
//!             if let Message::Text(text) = message {
//!                 web_sys::console::log_1(&text.into());
//!             }
//!             let _ = socket.close_with(4000, "one is enough");
//!         })
//!         .on_close(|_, close| {
//!             let line = format!("closed ({}) {}", close.code, close.reason);
//!             web_sys::console::log_1(&line.into());
//!         })
//!         .connect()?;
//!     SOCKET.with(|slot| slot.replace(Some(socket)));
//!     Ok(())
//! }
//! ```
//!
//! # A stream and a sink
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use wasm_websocket::{Message, WebSocket};
//!
//! async fn echo_twice() -> Result<(), wasm_websocket::Error> {
//!     // Resolves once open; a refused connection is `Error::ConnectFailed` with its code.
//!     let socket = WebSocket::open("ws://127.0.0.1:1234/").await?;
//!     let (mut sink, mut stream) = socket.messages().split();
//!     // Waits while the browser's buffer is over the high-water mark.
//!     sink.send("one".into()).await?;
//!     sink.send(vec![2u8].into()).await?;
//!     for _ in 0..2 {
//!         if let Some(Message::Text(text)) = stream.next().await {
//!             web_sys::console::log_1(&text.into());
//!         }
//!     }
//!     // Either half can close; the stream ends after the close, and keeps it.
//!     stream.close_with(4000, "done")?;
//!     while stream.next().await.is_some() {}
//!     assert_eq!(stream.close_event().map(|close| close.code), Some(4000));
//!     Ok(())
//! }
//! # wasm_bindgen_futures::spawn_local(async { echo_twice().await.unwrap() });
//! ```
//!
//! # The same program in the browser and natively
//!
//! Only what starts it differs (`examples/hello.rs`, which `cargo xtask test` runs natively):
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use wasm_websocket::{Message, WebSocket};
//!
//! async fn hello(url: &str) -> Result<String, wasm_websocket::Error> {
//!     let socket = WebSocket::open(url).await?;
//!     let (mut sink, mut stream) = socket.messages().split();
//!     sink.send("Hello, world!".into()).await?;
//!     let reply = match stream.next().await {
//!         Some(Message::Text(text)) => text,
//!         _ => String::new(),
//!     };
//!     stream.close()?;
//!     Ok(reply)
//! }
//!
//! // In the browser: the page's event loop runs it.
//! #[cfg(target_arch = "wasm32")]
//! fn main() {
//!     wasm_bindgen_futures::spawn_local(async {
//!         if let Ok(reply) = hello("ws://127.0.0.1:1234/").await {
//!             web_sys::console::log_1(&reply.into());
//!         }
//!     });
//! }
//!
//! // Natively: tokio on one thread, the socket's tasks on a `LocalSet`.
//! #[cfg(not(target_arch = "wasm32"))]
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), wasm_websocket::Error> {
//!     let reply = tokio::task::LocalSet::new()
//!         .run_until(hello("ws://127.0.0.1:1234/"))
//!         .await?;
//!     println!("{reply}");
//!     Ok(())
//! }
//! ```
//!
//! # Every event, with reconnection
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use wasm_websocket::{Event, Reconnect, WebSocket};
//!
//! async fn chat() -> Result<(), wasm_websocket::Error> {
//!     let socket = WebSocket::builder("wss://example.com/chat")
//!         .protocols(["chat.v1"])
//!         .reconnect(Reconnect::new().max_attempts(10).final_code(4001))
//!         .connect()?;
//!     let mut events = socket.events();
//!     // While the socket is down, sends wait in a bounded queue for the next connection.
//!     socket.send_async("hello").await?;
//!     while let Some(event) = events.next().await {
//!         match event {
//!             Event::Message(message) => web_sys::console::log_1(&format!("{message:?}").into()),
//!             Event::Reconnecting(next) => {
//!                 let line = format!("attempt {} in {:?}", next.attempt, next.delay);
//!                 web_sys::console::log_1(&line.into());
//!             }
//!             Event::Unsent(unsent) => {
//!                 let line = format!("not sent: {:?} ({})", unsent.message, unsent.error);
//!                 web_sys::console::log_1(&line.into());
//!             }
//!             _ => {}
//!         }
//!     }
//!     Ok(()) // The stream ends after the last close.
//! }
//! # wasm_bindgen_futures::spawn_local(async { chat().await.unwrap() });
//! ```
//!
//! # A connection that knows when it is dead
//!
//! A half-open connection (a laptop that slept, a network that changed) looks open to the
//! browser for minutes, and a handshake that never completes hangs as long. A heartbeat and a
//! connect timeout find both; each close says why ([`CloseCause`]), and reconnection can
//! decide on it. With a heartbeat, pings leave every `interval` while open, and a connection
//! that goes silent is found dead within `interval + timeout` of the last message heard. These
//! parts are opt-in, and an application that does not ask for them carries none of their
//! code. [`WebSocket::closed`] waits for the socket's last close.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use futures_util::StreamExt;
//! use wasm_websocket::{CloseCause, Event, Heartbeat, Reconnect, WebSocket};
//!
//! fn token() -> String {
//!     String::from("fresh") // For example, from the application's session.
//! }
//!
//! async fn resilient() -> Result<(), wasm_websocket::Error> {
//!     let socket = WebSocket::builder(&format!("wss://example.com/live?token={}", token()))
//!         // Each attempt must open within 5 s.
//!         .connect_timeout(Duration::from_secs(5))
//!         // A ping every 15 s; without a message within 10 s of it, the connection is dead.
//!         // Any message proves it alive; an exact echo of the ping is not delivered.
//!         .heartbeat(Heartbeat::new(Duration::from_secs(15), Duration::from_secs(10)))
//!         .reconnect(Reconnect::new().initial_delay(Duration::from_millis(500)))
//!         // A fresh token for every attempt (`url_provider_async` awaits one).
//!         .url_provider(|| format!("wss://example.com/live?token={}", token()))
//!         // Offline: no attempts spent; online, or the page shown again: act at once.
//!         .follow_network()
//!         // Not after the server says the login is over.
//!         .should_reconnect(|close| close.code != 4001)
//!         .connect()?;
//!     let mut events = socket.events();
//!     while let Some(event) = events.next().await {
//!         if let Event::Close(close) = event {
//!             if close.cause == CloseCause::HeartbeatLost {
//!                 web_sys::console::log_1(&"the connection was dead; reconnecting".into());
//!             }
//!         }
//!     }
//!     // Given up: the attempts can start again on demand, for example on a button.
//!     socket.reconnect_now();
//!     Ok(())
//! }
//! # wasm_bindgen_futures::spawn_local(async { resilient().await.unwrap() });
//! ```
//!
//! ## In a hidden tab
//!
//! Browsers throttle the timers of hidden pages: Chromium runs them at most once a second,
//! and after some minutes hidden, at most once a minute. Messages and the browser's own
//! events are not throttled. For this crate that means:
//!
//! - **backoff**: a reconnection attempt may start up to a minute late; with
//!   [`Builder::follow_network`], coming back `online` starts it at once;
//! - **heartbeat**: pings go out late, so a dead connection may be found later; a live one is
//!   never declared dead for it, since the deadline asks whether a message came since the ping
//!   left, not how many timer ticks passed. With `follow_network`, the page becoming visible again
//!   checks the connection at once;
//! - **`send_async` and the sinks**: while waiting for the browser's buffer to drain they look
//!   again on a timer (there is no event for it), so a hidden page sends in bursts, once a
//!   second or less. Sends that need not wait (an open socket under its high-water mark) are
//!   not delayed.
//!
//! # What it guarantees
//!
//! - **No panics from the public API**: every failure is an [`Error`], and a sink or stream
//!   stays usable after one.
//! - **Typed errors**: what the browser would throw on, or silently drop, is checked first and
//!   returned as an [`Error`]: a close code other than 1000 or 3000–4999, a reason over 123
//!   bytes, sending while not open, an invalid subprotocol.
//! - **Binary arrives as `ArrayBuffer`**, never `Blob` (whose asynchronous reading can reorder
//!   messages), and is copied into Rust once. Binary to send is read by the browser straight
//!   from wasm memory, or, where that memory is shared (threads, `+atomics`, which browsers
//!   refuse to read from), copied into a JavaScript buffer first.
//! - **No leaks**: the JavaScript closures are owned by the socket and dropped after its last
//!   close, or with its last handle, which also closes it with 1000. Nothing calls
//!   `Closure::forget`; [`live_closures`] counts them.
//! - **Reconnection** ([`Reconnect`]) is opt-in: exponential backoff with jitter, bounded
//!   delay and attempts, reset after a connection stays up; never after [`WebSocket::close`]
//!   (from anywhere, a callback included) or a close code marked final. Messages sent
//!   meanwhile wait in a bounded queue with an [`Overflow`] policy, and go out in order when
//!   the next connection opens, at the pace of the high-water mark.
//! - **Nothing is dropped quietly**: a message that [`WebSocket::send`] accepted either goes
//!   to the browser on an open connection or comes back in an [`Event::Unsent`], unless the
//!   application drops every handle first, which discards the socket and its queue at once.
//! - **Backpressure**: [`WebSocket::send_async`] and the sinks wait while `bufferedAmount` is
//!   above the high-water mark, and while the reconnection queue is full; while the queue still
//!   drains into a new connection, a message joins it (`Sent::Queued`), so order is kept.
//! - **One behaviour everywhere**: a send does the same from a callback, a stream consumer
//!   or any other code: the state it sees is the one [`WebSocket::state`] reports. A close
//!   while connecting ends the same way as one while waiting to reconnect: one close event,
//!   clean, with the application's code and reason.

mod builder;
#[cfg(target_arch = "wasm32")]
mod connection;
mod core;
mod error;
mod event;
mod handle;
mod heartbeat;
#[cfg(all(
    not(target_arch = "wasm32"),
    not(any(test, feature = "fuzzing")),
    feature = "http2"
))]
mod http2;
mod inbox;
mod io;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(feature = "json")]
mod json;
mod link;
mod message;
mod messages;
#[cfg(all(not(target_arch = "wasm32"), not(any(test, feature = "fuzzing"))))]
mod native;
#[cfg(target_arch = "wasm32")]
mod network;
mod payload;
#[cfg(not(target_arch = "wasm32"))]
mod proxy;
mod queue;
mod reconnect;
mod sink;
mod socket;
#[cfg(all(not(target_arch = "wasm32"), any(test, feature = "fuzzing")))]
mod tests;
mod thin;
mod timer;
mod tracked;
mod transport;
#[cfg(all(not(target_arch = "wasm32"), not(test)))]
mod tunnel;
mod watch;
#[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
mod websocketstream;

pub use builder::Builder;
pub use error::{Error, validate_close};
pub use event::{Event, Unsent};
pub use heartbeat::Heartbeat;
pub use inbox::Events;
pub use io::ByteStream;
#[cfg(feature = "json")]
pub use json::JsonStream;
pub use message::{
    CloseCause, CloseEvent, MAX_CLOSE_REASON, Message, NORMAL_CLOSURE, Reconnecting, Sent, State,
};
pub use messages::{MessageStream, Messages};
pub use payload::Payload;
pub use reconnect::{Overflow, Reconnect};
pub use sink::MessageSink;
pub use socket::{DEFAULT_HIGH_WATER_MARK, DEFAULT_RECEIVE_LIMIT, WeakWebSocket, WebSocket};
pub use tracked::live_closures;
pub use transport::Transport;
#[cfg(all(not(target_arch = "wasm32"), feature = "http2"))]
pub use transport::{Http2, HttpVersion};

/// The model tests' sequence that `data` encodes, run on the simulated world: the first
/// invariant it breaks. For the fuzz target of `fuzz/` only (the `fuzzing` feature).
#[cfg(all(not(target_arch = "wasm32"), feature = "fuzzing"))]
#[doc(hidden)]
pub fn fuzz_model(data: &[u8]) -> Result<(), String> {
    tests::model::fuzz::model(data)
}
