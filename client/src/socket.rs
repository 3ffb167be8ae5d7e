//! The socket: one handle over a browser WebSocket that reconnection may replace, and the
//! dispatch of its events to callbacks and streams.
//!
//! Ownership, which is what keeps this leak-free: handles own [`Shared`]; `Shared` owns the
//! current [`Connection`] (the browser socket and the four closures set as its handlers) and
//! the reconnection timer. Closures and timer hold only a `Weak` back. The application's
//! callbacks and the streams' senders are dropped when the socket finishes, so a callback that
//! holds a handle does not keep its own socket alive forever.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{BinaryType, MessageEvent};

use crate::error::describe;
use crate::reconnect::{Overflow, Reconnect};
use crate::stream::{self, Events, Feed, Messages};
use crate::timer::{Timeout, sleep};
use crate::tracked::Tracked;
use crate::{CloseEvent, Error, Event, Message, NORMAL_CLOSURE, Reconnecting, State};

/// The default high-water mark of [`WebSocket::send_async`]: 1 MiB.
pub const DEFAULT_HIGH_WATER_MARK: u32 = 1 << 20;

/// Configures a socket before it connects: subprotocols, reconnection, the high-water mark,
/// and callbacks. Made by [`WebSocket::builder`].
#[must_use = "a builder does nothing until `connect`"]
pub struct Builder {
    url: String,
    protocols: Vec<String>,
    reconnect: Option<Reconnect>,
    high_water_mark: u32,
    callbacks: Callbacks,
}

impl Builder {
    /// Offers these subprotocols, in order of preference; [`WebSocket::protocol`] tells which
    /// one the server chose.
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Reopens the connection when it closes, as `policy` says. Off by default.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// [`WebSocket::send_async`] waits while the browser holds more than this many bytes
    /// not yet sent (`bufferedAmount`). Default: [`DEFAULT_HIGH_WATER_MARK`].
    pub fn high_water_mark(mut self, bytes: u32) -> Self {
        self.high_water_mark = bytes;
        self
    }

    /// Called each time a connection opens.
    pub fn on_open(mut self, callback: impl FnMut() + 'static) -> Self {
        self.callbacks.on_open = Some(Box::new(callback));
        self
    }

    /// Called for each message received.
    pub fn on_message(mut self, callback: impl FnMut(Message) + 'static) -> Self {
        self.callbacks.on_message = Some(Box::new(callback));
        self
    }

    /// Called when the browser reports an error; a close follows. Browsers tell nothing
    /// more about the error, on purpose.
    pub fn on_error(mut self, callback: impl FnMut() + 'static) -> Self {
        self.callbacks.on_error = Some(Box::new(callback));
        self
    }

    /// Called each time a connection closes, with its code, reason and cleanliness.
    pub fn on_close(mut self, callback: impl FnMut(CloseEvent) + 'static) -> Self {
        self.callbacks.on_close = Some(Box::new(callback));
        self
    }

    /// Called when a reconnection attempt is scheduled, with its number and delay.
    pub fn on_reconnect(mut self, callback: impl FnMut(Reconnecting) + 'static) -> Self {
        self.callbacks.on_reconnect = Some(Box::new(callback));
        self
    }

    /// Opens the socket. Fails at once, like the browser's constructor, on an invalid URL or
    /// subprotocol; a server that cannot be reached is reported later, as an error and a
    /// close event.
    pub fn connect(self) -> Result<WebSocket, Error> {
        console_error_panic_hook::set_once();
        if let Some(bad) = invalid_protocol(&self.protocols) {
            return Err(Error::InvalidProtocol(bad.to_owned()));
        }
        let shared = Rc::new(Shared {
            url: self.url,
            protocols: self.protocols,
            reconnect: self.reconnect,
            high_water_mark: self.high_water_mark,
            connection: RefCell::new(None),
            timer: RefCell::new(None),
            phase: Cell::new(Phase::Active),
            closed_by_app: Cell::new(false),
            attempt: Cell::new(0),
            opened_at: Cell::new(None),
            queue: RefCell::new(VecDeque::new()),
            listeners: RefCell::new(Listeners {
                callbacks: self.callbacks,
                streams: Vec::new(),
            }),
            pending: RefCell::new(VecDeque::new()),
            dispatching: Cell::new(false),
        });
        let connection = Connection::open(&shared)?;
        *shared.connection.borrow_mut() = Some(connection);
        Ok(WebSocket { shared })
    }
}

/// A subprotocol the browser would refuse: empty, not an HTTP token, or offered twice.
fn invalid_protocol(protocols: &[String]) -> Option<&str> {
    let is_token = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
    };
    protocols
        .iter()
        .enumerate()
        .find_map(|(i, p)| (!is_token(p) || protocols[..i].contains(p)).then_some(p.as_str()))
}

/// A handle to one WebSocket. Clones are handles to the same socket, and any of them can send
/// or close it. Dropping the last handle closes the socket with code 1000 and frees
/// everything it held.
#[derive(Clone)]
pub struct WebSocket {
    shared: Rc<Shared>,
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("url", &self.shared.url)
            .field("state", &self.state())
            .finish()
    }
}

impl WebSocket {
    /// Opens a socket to `url` with the default settings and no callbacks: listen with
    /// [`events`](Self::events) or [`messages`](Self::messages).
    pub fn connect(url: &str) -> Result<WebSocket, Error> {
        Self::builder(url).connect()
    }

    /// Starts configuring a socket to `url` (`ws://` or `wss://`; `http(s)://` and relative
    /// URLs are resolved by the browser against the page).
    pub fn builder(url: &str) -> Builder {
        Builder {
            url: url.to_owned(),
            protocols: Vec::new(),
            reconnect: None,
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            callbacks: Callbacks::default(),
        }
    }

    /// Sends a text message. See [`send`](Self::send).
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        self.send_payload(Payload::Text(text))
    }

    /// Sends a binary message. See [`send`](Self::send).
    pub fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        self.send_payload(Payload::Binary(data))
    }

    /// Sends a message now if the socket is open. With reconnection on, a message sent while
    /// the socket is not open waits in the queue for the next connection; otherwise it is
    /// [`Error::NotOpen`] (the browser would throw while connecting, and drop it silently
    /// while closing).
    pub fn send(&self, message: &Message) -> Result<(), Error> {
        self.send_payload(message.into())
    }

    /// Sends a message once the browser's buffer is below the high-water mark, so that a fast
    /// producer cannot grow it without bound. Also waits for the first connection to open;
    /// with reconnection on, queues like [`send`](Self::send) while reconnecting.
    pub async fn send_async(&self, message: Message) -> Result<(), Error> {
        let mut pause = Duration::from_millis(1);
        loop {
            let state = self.state();
            let waiting = match state {
                State::Open => self.buffered_amount() > self.shared.high_water_mark,
                State::Connecting => self.shared.reconnect.is_none(),
                _ => false,
            };
            if !waiting {
                return self.send(&message);
            }
            // Browsers have no event for a draining buffer: look again shortly.
            sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(16));
        }
    }

    /// A `futures` sink of messages that sends with [`send_async`](Self::send_async).
    /// Closing the sink does not close the socket.
    pub fn sink(&self) -> impl futures_util::Sink<Message, Error = Error> + Unpin + use<> {
        Box::pin(futures_util::sink::unfold(
            self.clone(),
            |socket, message| async move { socket.send_async(message).await.map(|()| socket) },
        ))
    }

    /// A stream of every event from now on, ending after the socket's last close (the one
    /// not followed by a reconnection). Events are delivered only to streams that exist when
    /// they happen; events are never delivered during the call that connects, so a stream
    /// made right after [`connect`](Self::connect) misses nothing.
    pub fn events(&self) -> Events {
        let (feed, events) = stream::channel();
        if self.shared.phase.get() != Phase::Finished {
            self.shared.listeners.borrow_mut().streams.push(feed);
        }
        events
    }

    /// The messages of [`events`](Self::events), without the other events.
    pub fn messages(&self) -> Messages {
        Messages::new(self.events())
    }

    /// Closes with code 1000 and no reason.
    pub fn close(&self) -> Result<(), Error> {
        self.close_with(NORMAL_CLOSURE, "")
    }

    /// Closes with `code` (1000, or 3000 to 4999) and `reason` (at most
    /// [`MAX_CLOSE_REASON`](crate::MAX_CLOSE_REASON) bytes of UTF-8), checked first as the
    /// browser would. A closed socket is never reconnected; closing it again does nothing.
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        crate::validate_close(code, reason)?;
        let shared = &self.shared;
        shared.closed_by_app.set(true);
        match shared.phase.get() {
            Phase::Active => {
                if let Some(connection) = shared.connection.borrow().as_ref() {
                    let socket = &connection.socket;
                    socket
                        .close_with_code_and_reason(code, reason)
                        .map_err(Error::from_js)?;
                }
            }
            Phase::Waiting => {
                // No connection to close: cancel the attempt and report the close from a
                // timer of its own, like the browser's events, never inside this call.
                shared.phase.set(Phase::Finished);
                shared.queue.borrow_mut().clear();
                let event = CloseEvent {
                    code,
                    reason: reason.to_owned(),
                    was_clean: true,
                };
                let weak = Rc::downgrade(shared);
                let report = Timeout::new(Duration::ZERO, move || {
                    if let Some(shared) = weak.upgrade() {
                        shared.emit(Some(Event::Close(event)));
                        shared.finish();
                    }
                });
                *shared.timer.borrow_mut() = Some(report);
            }
            Phase::Finished => {}
        }
        Ok(())
    }

    /// The socket's state; [`State::Reconnecting`] between a close and the next attempt.
    pub fn state(&self) -> State {
        match self.shared.phase.get() {
            Phase::Waiting => State::Reconnecting,
            Phase::Finished => State::Closed,
            Phase::Active => self
                .shared
                .connection
                .borrow()
                .as_ref()
                .map_or(State::Closed, |connection| connection.state()),
        }
    }

    /// Bytes passed to `send` that the browser has not yet handed to the network.
    pub fn buffered_amount(&self) -> u32 {
        self.shared.with_socket(|socket| socket.buffered_amount())
    }

    /// Messages waiting for the next connection.
    pub fn queued(&self) -> usize {
        self.shared.queue.borrow().len()
    }

    /// The URL: as the browser resolved it once connected, as given before.
    pub fn url(&self) -> String {
        let url = self.shared.with_socket(|socket| socket.url());
        if url.is_empty() {
            self.shared.url.clone()
        } else {
            url
        }
    }

    /// The subprotocol the server selected; empty when none.
    pub fn protocol(&self) -> String {
        self.shared.with_socket(|socket| socket.protocol())
    }

    /// The extensions the server accepted, such as `permessage-deflate`; empty when none.
    pub fn extensions(&self) -> String {
        self.shared.with_socket(|socket| socket.extensions())
    }

    fn send_payload(&self, payload: Payload<'_>) -> Result<(), Error> {
        let shared = &self.shared;
        if let Some(connection) = shared.connection.borrow().as_ref() {
            if connection.state() == State::Open {
                return connection.send(payload);
            }
        }
        let state = self.state();
        match &shared.reconnect {
            Some(policy) if !shared.closed_by_app.get() && state != State::Closed => {
                let mut queue = shared.queue.borrow_mut();
                if queue.len() >= policy.queue_capacity {
                    match policy.overflow {
                        Overflow::Error => {
                            let capacity = policy.queue_capacity;
                            return Err(Error::QueueFull { capacity });
                        }
                        Overflow::DropOldest => drop(queue.pop_front()),
                    }
                }
                if policy.queue_capacity > 0 {
                    queue.push_back(payload.to_message());
                }
                Ok(())
            }
            _ => Err(Error::NotOpen(state)),
        }
    }
}

/// A message to send, borrowed.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl<'a> From<&'a Message> for Payload<'a> {
    fn from(message: &'a Message) -> Self {
        match message {
            Message::Text(text) => Payload::Text(text),
            Message::Binary(data) => Payload::Binary(data),
        }
    }
}

impl Payload<'_> {
    fn to_message(self) -> Message {
        match self {
            Payload::Text(text) => Message::Text(text.to_owned()),
            Payload::Binary(data) => Message::Binary(data.to_vec()),
        }
    }
}

/// Where a socket is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A browser socket exists (connecting, open or closing).
    Active,
    /// Closed, with a reconnection attempt scheduled.
    Waiting,
    /// Closed for good.
    Finished,
}

type Callback<T> = Option<Box<dyn FnMut(T)>>;

/// The application's callbacks.
#[derive(Default)]
struct Callbacks {
    on_open: Option<Box<dyn FnMut()>>,
    on_message: Callback<Message>,
    on_error: Option<Box<dyn FnMut()>>,
    on_close: Callback<CloseEvent>,
    on_reconnect: Callback<Reconnecting>,
}

impl Callbacks {
    fn wants(&self, event: &Event) -> bool {
        match event {
            Event::Open => self.on_open.is_some(),
            Event::Message(_) => self.on_message.is_some(),
            Event::Error => self.on_error.is_some(),
            Event::Close(_) => self.on_close.is_some(),
            Event::Reconnecting(_) => self.on_reconnect.is_some(),
        }
    }

    fn call(&mut self, event: Event) {
        match event {
            Event::Open => self.on_open.as_mut().map(|f| f()),
            Event::Message(message) => self.on_message.as_mut().map(|f| f(message)),
            Event::Error => self.on_error.as_mut().map(|f| f()),
            Event::Close(close) => self.on_close.as_mut().map(|f| f(close)),
            Event::Reconnecting(next) => self.on_reconnect.as_mut().map(|f| f(next)),
        };
    }
}

/// Who hears the events.
#[derive(Default)]
struct Listeners {
    callbacks: Callbacks,
    streams: Vec<Feed>,
}

/// What all handles of one socket share.
struct Shared {
    url: String,
    protocols: Vec<String>,
    reconnect: Option<Reconnect>,
    high_water_mark: u32,
    connection: RefCell<Option<Connection>>,
    timer: RefCell<Option<Timeout>>,
    phase: Cell<Phase>,
    closed_by_app: Cell<bool>,
    /// Reconnection attempts since the last connection that stayed up.
    attempt: Cell<u32>,
    /// When the current connection opened (`Date.now()`), if it did.
    opened_at: Cell<Option<f64>>,
    queue: RefCell<VecDeque<Message>>,
    listeners: RefCell<Listeners>,
    /// Events waiting to be delivered; `None` releases the listeners.
    pending: RefCell<VecDeque<Option<Event>>>,
    dispatching: Cell<bool>,
}

impl Shared {
    fn with_socket<T: Default>(&self, read: impl FnOnce(&web_sys::WebSocket) -> T) -> T {
        self.connection
            .borrow()
            .as_ref()
            .map(|connection| read(&connection.socket))
            .unwrap_or_default()
    }

    /// The browser opened the current connection: send what waited for it, then tell.
    fn opened(&self) {
        self.opened_at.set(Some(js_sys::Date::now()));
        let queued = std::mem::take(&mut *self.queue.borrow_mut());
        if let Some(connection) = self.connection.borrow().as_ref() {
            for message in &queued {
                let _ = connection.send(message.into());
            }
        }
        self.emit(Some(Event::Open));
    }

    /// The current connection closed: tell, then reconnect or finish.
    fn closed(self: &Rc<Self>, event: CloseEvent) {
        drop(self.connection.borrow_mut().take());
        let attempt = self.next_attempt(&event);
        self.emit(Some(Event::Close(event)));
        match attempt {
            Some(attempt) => self.schedule(attempt),
            None => self.finish(),
        }
    }

    /// The number of the next reconnection attempt, if one should be made.
    fn next_attempt(&self, event: &CloseEvent) -> Option<u32> {
        let policy = self.reconnect.as_ref()?;
        if self.closed_by_app.get() || policy.final_codes.contains(&event.code) {
            return None;
        }
        if let Some(opened_at) = self.opened_at.take() {
            let up = js_sys::Date::now() - opened_at;
            if up >= policy.reset_after.as_millis() as f64 {
                self.attempt.set(0);
            }
        }
        let attempt = self.attempt.get() + 1;
        self.attempt.set(attempt);
        policy.allows(attempt).then_some(attempt)
    }

    fn schedule(self: &Rc<Self>, attempt: u32) {
        let policy = self.reconnect.as_ref().expect("only called with a policy");
        let delay = policy.delay(attempt, js_sys::Math::random());
        let weak = Rc::downgrade(self);
        let timer = Timeout::new(delay, move || {
            if let Some(shared) = weak.upgrade() {
                shared.reopen();
            }
        });
        *self.timer.borrow_mut() = Some(timer);
        self.phase.set(Phase::Waiting);
        self.emit(Some(Event::Reconnecting(Reconnecting { attempt, delay })));
    }

    /// The reconnection timer fired: open a new connection.
    fn reopen(self: &Rc<Self>) {
        // This runs inside the timer's closure; wasm-bindgen frees a closure dropped during
        // its own call once the call returns.
        let timer = self.timer.borrow_mut().take();
        drop(timer);
        match Connection::open(self) {
            Ok(connection) => {
                *self.connection.borrow_mut() = Some(connection);
                self.phase.set(Phase::Active);
            }
            // The same URL and protocols worked before; nothing is left to try.
            Err(_) => self.finish(),
        }
    }

    /// Closed for good: nothing more will happen, so let go of the listeners once the events
    /// before this point have been delivered.
    fn finish(&self) {
        self.phase.set(Phase::Finished);
        self.queue.borrow_mut().clear();
        self.emit(None);
    }

    /// Delivers `event` (or releases the listeners, for `None`) after any being delivered
    /// now, so that a callback that causes another event sees them in order.
    fn emit(&self, event: Option<Event>) {
        self.pending.borrow_mut().push_back(event);
        if self.dispatching.replace(true) {
            return;
        }
        loop {
            let next = self.pending.borrow_mut().pop_front();
            match next {
                None => break,
                Some(Some(event)) => self.deliver(event),
                Some(None) => drop(self.listeners.take()),
            }
        }
        self.dispatching.set(false);
    }

    /// Gives `event` to every stream, then to its callback; copied only for all but the last.
    fn deliver(&self, event: Event) {
        let left = {
            let mut listeners = self.listeners.borrow_mut();
            let wanted = listeners.callbacks.wants(&event);
            listeners.streams.retain(|stream| !stream.is_closed());
            match listeners.streams.split_last() {
                None => Some(event),
                Some((last, others)) => {
                    for stream in others {
                        stream.send(event.clone());
                    }
                    if wanted {
                        last.send(event.clone());
                        Some(event)
                    } else {
                        last.send(event);
                        None
                    }
                }
            }
        };
        let Some(event) = left else { return };
        // Called without holding a borrow, since a callback may use the socket.
        let mut callbacks = std::mem::take(&mut self.listeners.borrow_mut().callbacks);
        callbacks.call(event);
        self.listeners.borrow_mut().callbacks = callbacks;
    }
}

/// One browser WebSocket and the closures set as its handlers.
struct Connection {
    socket: web_sys::WebSocket,
    _closures: Closures,
}

struct Closures {
    _open: Tracked<Closure<dyn FnMut(web_sys::Event)>>,
    _message: Tracked<Closure<dyn FnMut(MessageEvent)>>,
    _error: Tracked<Closure<dyn FnMut(web_sys::Event)>>,
    _close: Tracked<Closure<dyn FnMut(web_sys::CloseEvent)>>,
}

impl Connection {
    fn open(shared: &Rc<Shared>) -> Result<Connection, Error> {
        let socket = if shared.protocols.is_empty() {
            web_sys::WebSocket::new(&shared.url)
        } else {
            let protocols: js_sys::Array = shared
                .protocols
                .iter()
                .map(|protocol| js_sys::JsString::from(protocol.as_str()))
                .collect();
            web_sys::WebSocket::new_with_str_sequence(&shared.url, &protocols)
        }
        .map_err(|error| Error::InvalidUrl {
            url: shared.url.clone(),
            message: describe(&error),
        })?;
        // Blobs are read asynchronously and can overtake each other; ArrayBuffers cannot.
        socket.set_binary_type(BinaryType::Arraybuffer);

        let weak = Rc::downgrade(shared);
        let on_open = {
            let weak = weak.clone();
            Closure::<dyn FnMut(_)>::new(move |_: web_sys::Event| {
                if let Some(shared) = weak.upgrade() {
                    shared.opened();
                }
            })
        };
        let on_message = {
            let weak = weak.clone();
            Closure::<dyn FnMut(_)>::new(move |event: MessageEvent| {
                if let (Some(shared), Some(message)) = (weak.upgrade(), decode(&event)) {
                    shared.emit(Some(Event::Message(message)));
                }
            })
        };
        let on_error = {
            let weak = weak.clone();
            Closure::<dyn FnMut(_)>::new(move |_: web_sys::Event| {
                if let Some(shared) = weak.upgrade() {
                    shared.emit(Some(Event::Error));
                }
            })
        };
        let on_close = Closure::<dyn FnMut(_)>::new(move |event: web_sys::CloseEvent| {
            if let Some(shared) = weak.upgrade() {
                shared.closed(CloseEvent {
                    code: event.code(),
                    reason: event.reason(),
                    was_clean: event.was_clean(),
                });
            }
        });
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Connection {
            socket,
            _closures: Closures {
                _open: Tracked::new(on_open),
                _message: Tracked::new(on_message),
                _error: Tracked::new(on_error),
                _close: Tracked::new(on_close),
            },
        })
    }

    fn state(&self) -> State {
        match self.socket.ready_state() {
            web_sys::WebSocket::CONNECTING => State::Connecting,
            web_sys::WebSocket::OPEN => State::Open,
            web_sys::WebSocket::CLOSING => State::Closing,
            _ => State::Closed,
        }
    }

    fn send(&self, payload: Payload<'_>) -> Result<(), Error> {
        match payload {
            Payload::Text(text) => self.socket.send_with_str(text),
            Payload::Binary(data) => self.socket.send_with_u8_array(data),
        }
        .map_err(Error::from_js)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // No event of this connection may reach the application any more.
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onerror(None);
        self.socket.set_onclose(None);
        if matches!(self.state(), State::Connecting | State::Open) {
            let _ = self.socket.close_with_code(NORMAL_CLOSURE);
        }
        // The closures are dropped next. This may run inside one of them (the close handler
        // drops its own connection): wasm-bindgen then frees it when that call returns.
    }
}

/// The message a `message` event carries: a string, or an `ArrayBuffer` copied into Rust once.
fn decode(event: &MessageEvent) -> Option<Message> {
    let data = event.data();
    if let Some(text) = data.as_string() {
        return Some(Message::Text(text));
    }
    let buffer = data.dyn_into::<ArrayBuffer>().ok()?;
    Some(Message::Binary(Uint8Array::new(&buffer).to_vec()))
}

#[cfg(test)]
mod tests {
    use super::invalid_protocol;

    #[test]
    fn protocols_must_be_distinct_tokens() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(invalid_protocol(&list(&["chat", "echo.v2"])), None);
        assert_eq!(invalid_protocol(&list(&["chat", ""])), Some(""));
        assert_eq!(invalid_protocol(&list(&["a b"])), Some("a b"));
        assert_eq!(invalid_protocol(&list(&["chat", "chat"])), Some("chat"));
        assert_eq!(invalid_protocol(&list(&["x,y"])), Some("x,y"));
    }
}
