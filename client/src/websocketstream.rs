//! The `WebSocketStream` transport (Chromium 124 and later): the browser's WebSocket with
//! streams, whose readable side is pulled. A local task reads a message only while the
//! socket's streams have room ([`Shared::may_read`]); while it does not read, the browser
//! stops reading the TCP connection and the server feels the backpressure. web-sys has no
//! bindings for it yet: they are declared here.
//!
//! It behaves as the `WebSocket` transport does (`connection.rs`): `send` never waits (each
//! message goes to the stream's writer; what is not yet written counts in
//! [`Connection::buffered_amount`]), a connection that fails to open reports an error and a
//! close with 1006, and dropping the connection closes it with 1000 without further events.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::pin;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_util::future::{Either, select};
use js_sys::{ArrayBuffer, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::error::describe;
use crate::socket::Shared;
use crate::timer::{sleep, spawn};
use crate::tracked::Tracked;
use crate::{CloseEvent, Error, Event, Message, NORMAL_CLOSURE, State, Unsent};

/// How often a reader that waits for room looks again (no event says a stream was read).
const ROOM_PAUSE: Duration = Duration::from_millis(16);

/// How long a dropped connection's close handshake may take before the task lets it go.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

#[wasm_bindgen]
extern "C" {
    /// `WebSocketStream`, as Chromium ships it.
    #[wasm_bindgen(js_name = WebSocketStream)]
    type JsWebSocketStream;
    #[wasm_bindgen(constructor, catch, js_class = "WebSocketStream")]
    fn new(url: &str, options: &JsValue) -> Result<JsWebSocketStream, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn url(this: &JsWebSocketStream) -> String;
    #[wasm_bindgen(method, getter)]
    fn opened(this: &JsWebSocketStream) -> Promise;
    #[wasm_bindgen(method, getter)]
    fn closed(this: &JsWebSocketStream) -> Promise;
    #[wasm_bindgen(method, catch)]
    fn close(this: &JsWebSocketStream, info: &JsValue) -> Result<(), JsValue>;

    /// A `ReadableStream`'s default reader.
    type Reader;
    #[wasm_bindgen(method)]
    fn read(this: &Reader) -> Promise;
    /// A `WritableStream`'s default writer.
    type Writer;
    #[wasm_bindgen(method)]
    fn write(this: &Writer, chunk: &JsValue) -> Promise;
    /// The `ReadableStream` and `WritableStream` of an open connection.
    type Stream;
    #[wasm_bindgen(method, js_name = getReader)]
    fn get_reader(this: &Stream) -> Reader;
    #[wasm_bindgen(method, js_name = getWriter)]
    fn get_writer(this: &Stream) -> Writer;
}

/// Whether this browser has `WebSocketStream`.
pub(crate) fn available() -> bool {
    Reflect::has(&js_sys::global(), &"WebSocketStream".into()).unwrap_or(false)
}

/// One `WebSocketStream` and what its task shares with it.
pub(crate) struct Connection {
    link: Rc<Link>,
}

struct Link {
    stream: JsWebSocketStream,
    state: Cell<State>,
    protocol: RefCell<String>,
    extensions: RefCell<String>,
    writer: RefCell<Option<Writer>>,
    /// The writes not yet done, oldest first, with their sizes: they finish in order.
    writes: RefCell<VecDeque<(Promise, u32)>>,
    buffered: Cell<u32>,
    /// Whether a task waits for the writes.
    draining: Cell<bool>,
    /// Set when the connection is dropped: no event of its may reach the socket any more.
    detached: Cell<bool>,
    /// The task, woken when the connection is dropped.
    task: RefCell<Option<Waker>>,
}

impl Connection {
    pub(crate) fn open(shared: &Rc<Shared>, url: &str) -> Result<Connection, Error> {
        let options = Object::new();
        let protocols: js_sys::Array = (shared.protocols.iter())
            .map(|protocol| js_sys::JsString::from(protocol.as_str()))
            .collect();
        let _ = Reflect::set(&options, &"protocols".into(), &protocols);
        let stream = JsWebSocketStream::new(url, &options).map_err(|error| Error::InvalidUrl {
            url: url.to_owned(),
            message: describe(&error),
        })?;
        let link = Rc::new(Link {
            stream,
            state: Cell::new(State::Connecting),
            protocol: RefCell::new(String::new()),
            extensions: RefCell::new(String::new()),
            writer: RefCell::new(None),
            writes: RefCell::new(VecDeque::new()),
            buffered: Cell::new(0),
            draining: Cell::new(false),
            detached: Cell::new(false),
            task: RefCell::new(None),
        });
        // The task counts as one of the crate's closures while it lives.
        let tracked = Tracked::new(());
        let task = run(Rc::downgrade(shared), link.clone());
        spawn(async move {
            task.await;
            drop(tracked);
        });
        Ok(Connection { link })
    }

    pub(crate) fn state(&self) -> State {
        self.link.state.get()
    }

    pub(crate) fn send(&self, message: Message) -> Result<(), Unsent> {
        let state = self.state();
        if state != State::Open {
            return crate::transport::not_open(state, message);
        }
        let (chunk, size): (JsValue, usize) = match &message {
            Message::Text(text) => (text.into(), text.len()),
            // Copied out of wasm memory: the write finishes later.
            Message::Binary(data) => (Uint8Array::from(&data[..]).into(), data.len()),
        };
        let Some(written) = (self.link.writer.borrow().as_ref()).map(|w| w.write(&chunk)) else {
            let error = Error::NotOpen(State::Closing);
            return Err(Unsent { message, error });
        };
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        self.link
            .buffered
            .set(self.link.buffered.get().saturating_add(size));
        self.link.writes.borrow_mut().push_back((written, size));
        if !self.link.draining.replace(true) {
            spawn(drain(self.link.clone()));
        }
        Ok(())
    }

    pub(crate) fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        if !matches!(self.state(), State::Connecting | State::Open) {
            return Ok(());
        }
        self.link.state.set(State::Closing);
        let info = Object::new();
        let _ = Reflect::set(&info, &"closeCode".into(), &code.into());
        let _ = Reflect::set(&info, &"reason".into(), &reason.into());
        self.link.stream.close(&info).map_err(Error::from_js)
    }

    pub(crate) fn buffered_amount(&self) -> u32 {
        self.link.buffered.get()
    }

    pub(crate) fn url(&self) -> String {
        self.link.stream.url()
    }

    pub(crate) fn protocol(&self) -> String {
        self.link.protocol.borrow().clone()
    }

    pub(crate) fn extensions(&self) -> String {
        self.link.extensions.borrow().clone()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.link.detached.set(true);
        let _ = self.close(NORMAL_CLOSURE, "");
        if let Some(task) = self.link.task.take() {
            task.wake();
        }
    }
}

/// Counts the writes out of the buffered amount as they finish. They finish in order, so
/// the newest write's promise stands for every write before it: one wait (two closures and
/// a microtask) for each batch of sends instead of each message.
async fn drain(link: Rc<Link>) {
    loop {
        let newest = {
            let mut writes = link.writes.borrow_mut();
            let size = (writes.iter()).fold(0u32, |sum, (_, size)| sum.saturating_add(*size));
            let newest = writes.pop_back().map(|(written, _)| (written, size));
            writes.clear();
            newest
        };
        let Some((written, size)) = newest else { break };
        let _ = JsFuture::from(written).await;
        link.buffered.set(link.buffered.get().saturating_sub(size));
    }
    link.draining.set(false);
}

/// The connection's task: the handshake, then reading while there is room, then the close.
async fn run(shared: Weak<Shared>, link: Rc<Link>) {
    let attached = || shared.upgrade().filter(|_| !link.detached.get());
    let opened = match JsFuture::from(link.stream.opened()).await {
        Ok(opened) if link.state.get() == State::Connecting => opened,
        failed => {
            // Closed by the application meanwhile, or refused: an error (for a refusal),
            // then a close with 1006, as the browser's `WebSocket` reports them.
            let refused = failed.is_err() && link.state.get() == State::Connecting;
            link.state.set(State::Closed);
            if let Some(shared) = attached().filter(|_| refused) {
                shared.emit(Some(Event::Error));
            }
            if let Some(shared) = attached() {
                shared.closed(CloseEvent::new(1006, "", false));
            }
            return;
        }
    };
    let get = |name: &str| Reflect::get(&opened, &name.into()).unwrap_or(JsValue::UNDEFINED);
    let text = |name: &str| get(name).as_string().unwrap_or_default();
    *link.protocol.borrow_mut() = text("protocol");
    *link.extensions.borrow_mut() = text("extensions");
    let reader = get("readable").unchecked_into::<Stream>().get_reader();
    let writer = get("writable").unchecked_into::<Stream>().get_writer();
    *link.writer.borrow_mut() = Some(writer);
    link.state.set(State::Open);
    if let Some(shared) = attached() {
        shared.opened();
    }
    let reading = async {
        loop {
            // Not a message more than the application's streams have room for.
            while attached().is_some_and(|shared| !shared.may_read()) {
                sleep(ROOM_PAUSE).await;
            }
            let Ok(read) = JsFuture::from(reader.read()).await else {
                break;
            };
            if Reflect::get(&read, &"done".into()).is_ok_and(|done| done.is_truthy()) {
                break;
            }
            let value = Reflect::get(&read, &"value".into()).unwrap_or(JsValue::UNDEFINED);
            if let (Some(shared), Some(message)) = (attached(), decode(value)) {
                shared.received(message);
            }
        }
    };
    // A dropped connection's peer may never answer its close (a stalled server, found dead
    // by the heartbeat): it gets this long, then the task lets it go.
    let dropped = async {
        poll_fn(|cx| {
            if link.detached.get() {
                return Poll::Ready(());
            }
            *link.task.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        sleep(CLOSE_TIMEOUT).await;
    };
    if let Either::Right(_) = select(pin!(reading), pin!(dropped)).await {
        link.state.set(State::Closed);
        return;
    }
    link.state.set(State::Closing);
    let closed = JsFuture::from(link.stream.closed()).await.ok();
    link.state.set(State::Closed);
    *link.writer.borrow_mut() = None;
    let event = match closed {
        Some(info) => {
            let code = Reflect::get(&info, &"closeCode".into()).ok();
            let code = code.and_then(|code| code.as_f64()).unwrap_or(1005.0) as u16;
            let reason = Reflect::get(&info, &"reason".into()).ok();
            CloseEvent::new(
                code,
                reason.and_then(|r| r.as_string()).unwrap_or_default(),
                true,
            )
        }
        None => CloseEvent::new(1006, "", false),
    };
    if let Some(shared) = attached() {
        shared.closed(event);
    }
}

/// A chunk read: a string, or bytes (an `ArrayBuffer` or a view) copied into Rust once.
fn decode(value: JsValue) -> Option<Message> {
    if let Some(text) = value.as_string() {
        return Some(Message::Text(text));
    }
    if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        return Some(Message::Binary(Uint8Array::new(buffer).to_vec()));
    }
    let view = value.dyn_into::<Uint8Array>().ok()?;
    Some(Message::Binary(view.to_vec()))
}
