//! The `WebSocketStream` transport (Chromium 124 and later): the browser's WebSocket with
//! streams, whose readable side is pulled. A read is asked for only while the socket's
//! streams have room ([`Shared::may_read`]); while none is, the browser stops reading the TCP
//! connection and the server feels the backpressure. web-sys has no bindings for it yet: they
//! are declared here.
//!
//! It behaves as the `WebSocket` transport does (`connection.rs`): `send` never waits (each
//! message goes to the stream's writer; what is not yet written counts in
//! [`Connection::buffered_amount`]), a connection that fails to open reports an error and a
//! close with 1006, and dropping the connection closes it with 1000 without further events.
//!
//! It is driven as the browser's `WebSocket` is, by callbacks: seven closures made once per
//! connection and given to every promise it waits on (the handshake, each read, the close),
//! so that a message costs no closure, task or microtask of ours, as plain JavaScript's
//! `await reader.read()` costs none. Writes are not waited on: the writer's queue says how
//! many are not done yet when the buffered amount is asked for, and a close asked for while
//! some are waits for the newest. A binary message is copied into a buffer that is reused
//! once its write is done. The closures hold the connection, and it holds them, until the
//! close is reported and every promise they were given has settled: a closure the browser
//! may still call is never freed.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::time::Duration;

use js_sys::{ArrayBuffer, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::error::Error;
use crate::event::Unsent;
use crate::js::{self, describe};
use crate::message::{CloseEvent, Message, NORMAL_CLOSURE, State};
use crate::timer::{sleep, spawn};
use crate::tracked::Tracked;
use crate::transport::{Listener, Options};

/// How many bytes of buffers whose writes are done a connection keeps for the next binary
/// messages: a fresh `ArrayBuffer` per message costs the page an allocation and its garbage
/// collection (a fifth of the throughput of 64 KiB messages, measured in plain JavaScript).
const SPARE_BYTES: u32 = 1 << 20;

/// How many writes a connection remembers before looking which are done.
const FORGET_AFTER: usize = 64;

/// How long a dropped connection's close handshake may take before it is let go: its peer
/// may never answer (a stalled server, found dead by the heartbeat).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a message costs in calls to the browser is what limits the round trips (Chromium's
/// processes share a core with the page); these do in one call what would take several.
#[wasm_bindgen(inline_js = "const ignore = () => {};
export function ignore_rejection(promise) { promise.catch(ignore); }
export function write(writer, chunk) {
    const written = writer.write(chunk);
    written.catch(ignore);
    return written;
}
export function read(reader, read, failed) { reader.read().then(read, failed); }
export function chunk(result) { return result.done ? undefined : result.value; }
export function new_buffer(length) { return new Uint8Array(length); }")]
extern "C" {
    /// Handles `promise`'s rejection by doing nothing: for writes, whose failure is the
    /// connection's and is reported as its close.
    fn ignore_rejection(promise: &Promise);
    /// Writes `chunk`, its rejection ignored as [`ignore_rejection`] does.
    fn write(writer: &Writer, chunk: &JsValue) -> Promise;
    /// Reads the next chunk, calling `read` or `failed`.
    fn read(
        reader: &Reader,
        read: &Closure<dyn FnMut(JsValue)>,
        failed: &Closure<dyn FnMut(JsValue)>,
    );
    /// What a read resolved to: its chunk, or `undefined` once the stream has ended.
    fn chunk(result: &JsValue) -> JsValue;
    /// A new `Uint8Array` of `length` bytes, or the `RangeError` of a page that cannot
    /// allocate it.
    #[wasm_bindgen(catch)]
    fn new_buffer(length: u32) -> Result<Uint8Array, JsValue>;
}

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

    /// What `opened` resolves to.
    type Opened;
    #[wasm_bindgen(method, getter)]
    fn readable(this: &Opened) -> Stream;
    #[wasm_bindgen(method, getter)]
    fn writable(this: &Opened) -> Stream;
    #[wasm_bindgen(method, getter)]
    fn protocol(this: &Opened) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn extensions(this: &Opened) -> JsValue;

    /// What `closed` resolves to.
    type Closed;
    #[wasm_bindgen(method, getter, js_name = closeCode)]
    fn close_code(this: &Closed) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn reason(this: &Closed) -> JsValue;

    /// A `ReadableStream` or a `WritableStream`, of an open connection.
    type Stream;
    #[wasm_bindgen(method, js_name = getReader)]
    fn get_reader(this: &Stream) -> Reader;
    #[wasm_bindgen(method, js_name = getWriter)]
    fn get_writer(this: &Stream) -> Writer;

    /// A `ReadableStream`'s default reader.
    #[derive(Clone)]
    type Reader;
    #[wasm_bindgen(method)]
    fn cancel(this: &Reader) -> Promise;

    /// A `WritableStream`'s default writer.
    #[derive(Clone)]
    type Writer;
    #[wasm_bindgen(method)]
    fn abort(this: &Writer) -> Promise;
    /// Room left in the writer's queue, in chunks (Chromium's queueing strategy counts them);
    /// `null` once the stream has failed.
    #[wasm_bindgen(method, getter, js_name = desiredSize)]
    fn desired_size(this: &Writer) -> JsValue;
}

/// Whether this browser has `WebSocketStream`.
pub(crate) fn available() -> bool {
    Reflect::has(&js_sys::global(), &"WebSocketStream".into()).unwrap_or(false)
}

/// One `WebSocketStream`: the socket's handle on its link.
pub(crate) struct Connection {
    link: Rc<Link>,
}

/// A connection's state, shared with its callbacks.
struct Link {
    stream: JsWebSocketStream,
    listener: Weak<dyn Listener>,
    state: Cell<State>,
    protocol: RefCell<String>,
    extensions: RefCell<String>,
    reader: RefCell<Option<Reader>>,
    writer: RefCell<Option<Writer>>,
    /// The writer's room when nothing is written: the writes not yet done are this less its
    /// room now.
    capacity: Cell<f64>,
    /// The writes perhaps not yet done, oldest first: they finish in order.
    writes: RefCell<VecDeque<Write>>,
    /// Buffers whose writes are done, with their sizes, for the next binary messages; their
    /// total size is at most [`SPARE_BYTES`].
    spare: RefCell<Vec<(u32, Uint8Array)>>,
    /// Their total.
    buffered: Cell<u32>,
    /// The newest write: once it is done, all are (they finish in order).
    last_write: RefCell<Option<Promise>>,
    /// The close the application asked for while writes were under way: made once they are
    /// done, as the browser's `WebSocket` sends its Close after what it buffered. (Chromium
    /// 156's page crashes when `close()`, or a cancel of the readable side, comes with a few
    /// hundred KiB of writes under way; plain JavaScript's too.)
    close_after_writes: RefCell<Option<JsValue>>,
    /// Whether a read is under way, or a look for room is due.
    reading: Cell<bool>,
    /// Whether the readable side has ended: no read follows.
    read_ended: Cell<bool>,
    /// Whether the close has been reported: nothing more is.
    reported: Cell<bool>,
    /// Set when the connection is dropped: no event of its may reach the socket any more.
    detached: Cell<bool>,
    /// The promises given a callback that has not run yet.
    pending: Cell<u32>,
    callbacks: RefCell<Option<Callbacks>>,
}

type Callback = Tracked<Closure<dyn FnMut(JsValue)>>;

/// The connection's closures, each given to every promise of its kind.
struct Callbacks {
    opened: Callback,
    refused: Callback,
    read: Callback,
    read_failed: Callback,
    written: Callback,
    closed: Callback,
    lost: Callback,
}

impl Connection {
    pub(crate) fn open(
        listener: Weak<dyn Listener>,
        url: &str,
        options: &Options,
    ) -> Result<Connection, Error> {
        let protocols: js_sys::Array = (options.protocols.iter())
            .map(|protocol| js_sys::JsString::from(protocol.as_str()))
            .collect();
        let options = Object::new();
        let _ = Reflect::set(&options, &"protocols".into(), &protocols);
        let stream = JsWebSocketStream::new(url, &options).map_err(|error| Error::InvalidUrl {
            url: url.to_owned(),
            message: describe(&error),
        })?;
        let link = Rc::new(Link {
            stream,
            listener,
            state: Cell::new(State::Connecting),
            protocol: RefCell::new(String::new()),
            extensions: RefCell::new(String::new()),
            reader: RefCell::new(None),
            writer: RefCell::new(None),
            capacity: Cell::new(0.0),
            writes: RefCell::new(VecDeque::new()),
            spare: RefCell::new(Vec::new()),
            buffered: Cell::new(0),
            last_write: RefCell::new(None),
            close_after_writes: RefCell::new(None),
            reading: Cell::new(false),
            read_ended: Cell::new(false),
            reported: Cell::new(false),
            detached: Cell::new(false),
            pending: Cell::new(0),
            callbacks: RefCell::new(None),
        });
        let callbacks = Callbacks {
            opened: callback(&link, Link::opened),
            refused: callback(&link, Link::refused),
            read: callback(&link, Link::read),
            read_failed: callback(&link, |link, _| link.read_end()),
            written: callback(&link, Link::written),
            closed: callback(&link, Link::closed),
            lost: callback(&link, Link::lost),
        };
        *link.callbacks.borrow_mut() = Some(callbacks);
        link.when(&link.stream.opened(), |c| (&c.opened, &c.refused));
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
        let link = &self.link;
        let writer = link.writer.borrow();
        let Some(writer) = writer.as_ref() else {
            let error = Error::NotOpen(State::Closing);
            return Err(Unsent { message, error });
        };
        let (chunk, buffer, size): (JsValue, _, _) = match &message {
            Message::Text(text) => (text.into(), None, text.len()),
            // Copied out of wasm memory, which may change before the write is done.
            Message::Binary(data) => {
                let (length, buffer) = match link.buffer(data.len() as u32) {
                    Ok(buffer) => buffer,
                    // The page is out of memory for it.
                    Err(error) => return Err(Unsent { message, error }),
                };
                let view = buffer.subarray(0, data.len() as u32);
                view.copy_from(data);
                (view.into(), Some((length, buffer)), data.len())
            }
        };
        // The write's promise is not waited on: its failure is the connection's, which the
        // close reports (so it is only kept from being an unhandled rejection). What is not
        // yet written, `buffered_amount` counts.
        let written = write(writer, &chunk);
        *link.last_write.borrow_mut() = Some(written);
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        link.buffered.set(link.buffered.get().saturating_add(size));
        let mut writes = link.writes.borrow_mut();
        writes.push_back(Write { size, buffer });
        // Those done are forgotten now and then, and when the buffered amount is asked for.
        if writes.len() >= FORGET_AFTER {
            drop(writes);
            link.forget_written();
        }
        Ok(())
    }

    pub(crate) fn close(&self, code: u16, reason: &str) {
        if !matches!(self.state(), State::Connecting | State::Open) {
            return;
        }
        self.link.state.set(State::Closing);
        let info = Object::new();
        let _ = Reflect::set(&info, &"closeCode".into(), &code.into());
        let _ = Reflect::set(&info, &"reason".into(), &reason.into());
        let link = &self.link;
        if link.writes_left() {
            if let Some(last) = link.last_write.take() {
                *link.close_after_writes.borrow_mut() = Some(info.into());
                link.when(&last, |c| (&c.written, &c.written));
                return;
            }
        }
        // The code and reason were checked by the handle (`validate_close`): nothing else
        // makes `close` throw.
        let _ = link.stream.close(&info);
    }

    pub(crate) fn buffered_amount(&self) -> u32 {
        self.link.forget_written();
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
        // No event of this connection may reach the socket any more; it closes with 1000 on
        // its own, as the browser's does, and is let go if that takes too long.
        self.link.detached.set(true);
        self.close(NORMAL_CLOSURE, "");
        let link = self.link.clone();
        spawn(async move {
            sleep(CLOSE_TIMEOUT).await;
            link.let_go();
        });
    }
}

/// A closure that calls `on` with `link`, counting the promise it was given as settled. It
/// holds the link, which holds it, until [`Link::release`].
fn callback(link: &Rc<Link>, on: fn(&Rc<Link>, JsValue)) -> Callback {
    let link = link.clone();
    Tracked::new(Closure::new(move |value| {
        link.pending.set(link.pending.get() - 1);
        on(&link, value);
        link.release();
    }))
}

impl Link {
    /// The socket, while it wants this connection's events.
    fn attached(&self) -> Option<Rc<dyn Listener>> {
        self.listener.upgrade().filter(|_| !self.detached.get())
    }

    /// Calls the callbacks `pick` chooses when `promise` is fulfilled or rejected.
    fn when(&self, promise: &Promise, pick: fn(&Callbacks) -> (&Callback, &Callback)) {
        self.give(pick, |fulfilled, rejected| {
            let _ = promise.then2(fulfilled, rejected);
        });
    }

    /// Gives the callbacks `pick` chooses to `to`, which hands them to a promise: one of them
    /// will be called.
    fn give(
        &self,
        pick: fn(&Callbacks) -> (&Callback, &Callback),
        to: impl FnOnce(&Callback, &Callback),
    ) {
        if let Some(callbacks) = self.callbacks.borrow().as_ref() {
            let (fulfilled, rejected) = pick(callbacks);
            to(fulfilled, rejected);
            self.pending.set(self.pending.get() + 1);
        }
    }

    /// Frees the callbacks (and so the link) once the close is reported and no promise may
    /// call them any more. A closure freed during its own call is freed when the call returns.
    fn release(&self) {
        if self.reported.get() && self.pending.get() == 0 {
            drop(self.callbacks.borrow_mut().take());
        }
    }

    /// The handshake succeeded: open, and start reading.
    fn opened(self: &Rc<Self>, opened: JsValue) {
        if self.state.get() != State::Connecting {
            // Closed by the application meanwhile: failed, as the browser's `WebSocket`.
            return self.report(CloseEvent::new(1006, "", false));
        }
        let opened = opened.unchecked_into::<Opened>();
        *self.protocol.borrow_mut() = opened.protocol().as_string().unwrap_or_default();
        *self.extensions.borrow_mut() = opened.extensions().as_string().unwrap_or_default();
        *self.reader.borrow_mut() = Some(opened.readable().get_reader());
        let writer = opened.writable().get_writer();
        self.capacity
            .set(writer.desired_size().as_f64().unwrap_or(0.0));
        *self.writer.borrow_mut() = Some(writer);
        self.state.set(State::Open);
        if let Some(shared) = self.attached() {
            shared.opened();
        }
        self.read_next();
    }

    /// The handshake failed, or the application closed the connection while it ran: an
    /// error (for a refusal), then a close with 1006, as the browser's `WebSocket` reports
    /// them.
    fn refused(self: &Rc<Self>, _: JsValue) {
        if self.state.get() == State::Connecting {
            self.state.set(State::Closed);
            if let Some(shared) = self.attached() {
                shared.failed(false);
            }
        }
        self.report(CloseEvent::new(1006, "", false));
    }

    /// Asks for the next message, if the socket's streams have room for it; else once they
    /// have.
    fn read_next(self: &Rc<Self>) {
        if self.reading.get() || self.read_ended.get() {
            return;
        }
        let Some(reader) = self.reader.borrow().clone() else {
            return;
        };
        self.reading.set(true);
        if let Some(shared) = self.attached().filter(|shared| !shared.may_read()) {
            let (link, room) = (self.clone(), shared.wait_for_room());
            spawn(async move {
                room.await;
                link.reading.set(false);
                link.read_next();
            });
            return;
        }
        self.give(
            |c| (&c.read, &c.read_failed),
            |ok, failed| read(&reader, ok, failed),
        );
    }

    /// Gives up a dropped connection whose close handshake has not finished: reported (to no
    /// one), and its pending read cancelled, so that no callback waits on the peer.
    fn let_go(self: &Rc<Self>) {
        if self.reported.get() {
            return;
        }
        let reader = self.reader.take().filter(|_| self.reading.get());
        // With writes still under way (their close waits for them), the writable side is
        // aborted instead, which ends the connection too: a cancel would crash the page.
        let writer = self.writer.borrow().clone().filter(|_| self.writes_left());
        self.report(CloseEvent::new(1006, "", false));
        if let Some(writer) = writer {
            ignore_rejection(&writer.abort());
        } else if let Some(reader) = reader {
            let _ = reader.cancel();
        }
        self.release();
    }

    /// A read finished: a message for the socket, or the end of the readable side.
    fn read(self: &Rc<Self>, result: JsValue) {
        self.reading.set(false);
        let chunk = chunk(&result);
        if chunk.is_undefined() {
            return self.read_end();
        }
        if let (Some(shared), Some(message)) = (self.attached(), decode(chunk)) {
            shared.received(message);
        }
        self.read_next();
    }

    /// The readable side ended, every message before the close delivered: the close
    /// follows, once the browser reports it. (Asked for only now, so that no callback waits
    /// on a close handshake while messages are read, nor on a peer that never answers it.)
    fn read_end(self: &Rc<Self>) {
        self.reading.set(false);
        self.read_ended.set(true);
        if !self.reported.get() {
            self.state.set(State::Closing);
            self.when(&self.stream.closed(), |c| (&c.closed, &c.lost));
        }
    }

    /// Whether writes are under way.
    fn writes_left(&self) -> bool {
        self.forget_written();
        !self.writes.borrow().is_empty()
    }

    /// The writes are done: the close asked for meanwhile goes out.
    fn written(self: &Rc<Self>, _: JsValue) {
        if let Some(info) = self.close_after_writes.take() {
            let _ = self.stream.close(&info);
        }
    }

    /// Takes the writes done out of the buffered amount: the writer's queue says how many
    /// are not, and they finish in order. (Asked when needed, rather than a callback on each
    /// write's promise: a promise reaction per message costs round trips.)
    fn forget_written(&self) {
        let room = match self.writer.borrow().as_ref() {
            Some(writer) => writer.desired_size().as_f64(),
            None => return,
        };
        let room = room.unwrap_or(self.capacity.get());
        let left = (self.capacity.get() - room).max(0.0) as usize;
        let mut writes = self.writes.borrow_mut();
        while writes.len() > left {
            let Some(Write { size, buffer }) = writes.pop_front() else {
                break;
            };
            self.buffered.set(self.buffered.get().saturating_sub(size));
            if let Some(buffer) = buffer {
                self.keep(buffer);
            }
        }
    }

    /// A buffer of at least `size` bytes for a binary write, and its size: a spare one if
    /// one is, else a new one, its size a power of two so that it serves messages of similar
    /// sizes again.
    fn buffer(&self, size: u32) -> Result<(u32, Uint8Array), Error> {
        let take = || {
            let mut spare = self.spare.borrow_mut();
            let fits = spare.iter().position(|(length, _)| *length >= size)?;
            Some(spare.swap_remove(fits))
        };
        let spare = take().or_else(|| {
            self.forget_written();
            take()
        });
        if let Some(spare) = spare {
            return Ok(spare);
        }
        let length = if size <= SPARE_BYTES {
            size.max(1024).next_power_of_two()
        } else {
            size
        };
        Ok((length, new_buffer(length).map_err(js::error)?))
    }

    /// Keeps a buffer whose write is done for the next, if there is room, and if the browser
    /// did not take it over (a transferred buffer is empty).
    fn keep(&self, (length, buffer): (u32, Uint8Array)) {
        let mut spare = self.spare.borrow_mut();
        let kept: u32 = spare.iter().map(|(length, _)| length).sum();
        if kept.saturating_add(length) <= SPARE_BYTES && buffer.length() == length {
            spare.push((length, buffer));
        }
    }

    /// The browser reports the close handshake done.
    fn closed(self: &Rc<Self>, info: JsValue) {
        let info = info.unchecked_into::<Closed>();
        let code = info.close_code().as_f64().map_or(1005, |code| code as u16);
        let reason = info.reason().as_string().unwrap_or_default();
        self.report(CloseEvent::new(code, reason, true));
    }

    /// The connection ended without a clean close handshake: with the code and reason of the
    /// peer's Close frame if one came (the `WebSocketError` that `closed` rejects with carries
    /// them, as the browser's `WebSocket` reports them in its close event), else 1006.
    fn lost(self: &Rc<Self>, error: JsValue) {
        let field = |name: &str| Reflect::get(&error, &name.into()).ok();
        let code = field("closeCode").and_then(|code| code.as_f64());
        let reason = field("reason").and_then(|reason| reason.as_string());
        let code = code.map_or(1006, |code| code as u16);
        self.report(CloseEvent::new(code, reason.unwrap_or_default(), false));
    }

    /// Reports the close, once.
    fn report(self: &Rc<Self>, event: CloseEvent) {
        if self.reported.replace(true) {
            return;
        }
        self.state.set(State::Closed);
        *self.writer.borrow_mut() = None;
        *self.reader.borrow_mut() = None;
        self.writes.borrow_mut().clear();
        self.spare.borrow_mut().clear();
        self.buffered.set(0);
        if let Some(shared) = self.attached() {
            shared.closed(event);
        }
    }
}

/// A write not yet known to be done: its size, and its buffer (with the buffer's size) if it
/// is a binary message's.
struct Write {
    size: u32,
    buffer: Option<(u32, Uint8Array)>,
}

/// A chunk read: a string, or bytes (an `ArrayBuffer` or a view) copied into Rust once.
fn decode(value: JsValue) -> Option<Message> {
    if let Some(text) = value.as_string() {
        return Some(Message::Text(text));
    }
    if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        return Some(Message::from(Uint8Array::new(buffer).to_vec()));
    }
    let view = value.dyn_into::<Uint8Array>().ok()?;
    Some(Message::from(view.to_vec()))
}
