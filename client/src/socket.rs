//! The socket: one handle over a browser WebSocket that reconnection may replace, and the
//! dispatch of its events to callbacks and streams. (`builder.rs` configures it,
//! `connection.rs` is one browser socket, `liveness.rs` the optional parts.)
//!
//! Ownership, which is what keeps this leak-free: handles own [`Shared`]; `Shared` owns the
//! current [`Connection`] (the browser socket and the four closures set as its handlers) and
//! its timers. Closures and timers hold only a `Weak` back. The streams' feeds are dropped
//! when the socket closes for good, and the application's callbacks when the application
//! closes it or drops it; callbacks are given the socket, so that they need not hold a handle.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use crate::builder::{Builder, Callbacks};
use crate::liveness::{Watch, Watchdog};
use crate::queue::Queue;
use crate::reconnect::Reconnect;
use crate::sink::MessageSink;
use crate::stream::{self, Events, Feed, MessageStream, Messages};
use crate::timer::{Timeout, now_ms, random, sleep};
use crate::transport::Connection;
use crate::{
    CloseCause, CloseEvent, Error, Event, Message, NORMAL_CLOSURE, Reconnecting, State, Unsent,
};

/// The default high-water mark of [`WebSocket::send_async`]: 1 MiB.
pub const DEFAULT_HIGH_WATER_MARK: u32 = 1 << 20;

/// How many events a stream holds before a pulling transport (natively, or `WebSocketStream`)
/// stops reading, unless [`Builder::receive_limit`] says otherwise.
pub const DEFAULT_RECEIVE_LIMIT: usize = 64;

/// While the queue drains or the browser's buffer is over the high-water mark, look again
/// this often at most: browsers have no event for a draining buffer.
const LONGEST_PAUSE: Duration = Duration::from_millis(16);

/// How long a transport waiting for room in the streams waits at most before it looks again:
/// a stream's read wakes it sooner.
#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
const ROOM_PAUSE: Duration = Duration::from_millis(16);

/// A handle to one WebSocket. Clones are handles to the same socket, and any of them can send
/// or close it. Dropping the last handle closes the socket with code 1000 and frees
/// everything it held, its queue included.
#[derive(Clone)]
pub struct WebSocket {
    shared: Rc<Shared>,
}

/// A handle that does not keep its socket alive: for callbacks and other places that would
/// otherwise make a cycle. Made by [`WebSocket::downgrade`].
#[derive(Clone, Debug, Default)]
pub struct WeakWebSocket {
    shared: Weak<Shared>,
}

impl WeakWebSocket {
    /// The socket, while some [`WebSocket`] handle still holds it.
    pub fn upgrade(&self) -> Option<WebSocket> {
        self.shared.upgrade().map(|shared| WebSocket { shared })
    }
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("url", &self.url())
            .field("state", &self.state())
            .finish()
    }
}

impl WebSocket {
    /// Opens a socket to `url` with the default settings and no callbacks, and returns at
    /// once: listen with [`events`](Self::events) or [`messages`](Self::messages).
    pub fn connect(url: &str) -> Result<WebSocket, Error> {
        Self::builder(url).connect()
    }

    /// Opens a socket to `url` with the default settings and waits until it is open; see
    /// [`Builder::open`].
    pub async fn open(url: &str) -> Result<WebSocket, Error> {
        Self::builder(url).open().await
    }

    /// Starts configuring a socket to `url` (`ws://` or `wss://`; `http(s)://` and relative
    /// URLs are resolved by the browser against the page).
    pub fn builder(url: &str) -> Builder {
        Builder {
            url: url.to_owned(),
            protocols: Vec::new(),
            reconnect: None,
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            watchdog: None,
            callbacks: Callbacks::default(),
            #[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
            web_socket_stream: false,
            #[cfg(not(target_arch = "wasm32"))]
            tls: None,
        }
    }

    /// Opens the socket `builder` describes, whose subprotocols are checked.
    pub(crate) fn start(builder: Builder) -> Result<WebSocket, Error> {
        let shared = Rc::new(Shared {
            url: Cell::new(String::new()),
            protocols: builder.protocols,
            reconnect: builder.reconnect,
            high_water_mark: builder.high_water_mark,
            watchdog: builder.watchdog,
            connection: RefCell::new(None),
            timer: Cell::new(None),
            soon: Cell::new(None),
            deferred: Cell::new(Vec::new()),
            phase: Cell::new(Phase::Active),
            closed_by_app: Cell::new(false),
            attempt: Cell::new(0),
            opened_at: Cell::new(None),
            queue: Cell::new(Queue::default()),
            callbacks: Cell::new(builder.callbacks),
            streams: Cell::new(Vec::new()),
            #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
            room: stream::Room::default(),
            released: Cell::new(false),
            pending: Cell::new(VecDeque::new()),
            dispatching: Cell::new(false),
            #[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
            web_socket_stream: builder.web_socket_stream,
            #[cfg(not(target_arch = "wasm32"))]
            tls: builder.tls,
        });
        let connection = Connection::open(&shared, &builder.url);
        shared.url.set(builder.url);
        shared.attach(connection?);
        Ok(WebSocket { shared })
    }

    /// A handle that does not keep the socket alive.
    pub fn downgrade(&self) -> WeakWebSocket {
        WeakWebSocket {
            shared: Rc::downgrade(&self.shared),
        }
    }

    /// Sends a message now if the socket is open. With reconnection on, a message sent while
    /// the socket is not open (or while earlier queued messages still drain) waits in the
    /// queue for the next connection; otherwise it is [`Error::NotOpen`] (the browser would
    /// throw while connecting, and drop it silently while closing).
    ///
    /// Takes anything that is `Into<Message>`: `&str`, `String`, `&[u8]`, `Vec<u8>`, …
    pub fn send(&self, message: impl Into<Message>) -> Result<(), Error> {
        self.shared.send(message.into())
    }

    /// Sends a message once the browser's buffer is below the high-water mark, so that a fast
    /// producer cannot grow it without bound. Also waits for the first connection to open,
    /// and, with reconnection on, while the queue is full (with [`Overflow::Error`]) or still
    /// draining into a new connection. Then sends as [`send`](Self::send) does.
    ///
    /// [`Overflow::Error`]: crate::Overflow::Error
    pub async fn send_async(&self, message: impl Into<Message>) -> Result<(), Error> {
        let message = message.into();
        let mut readiness = Readiness::default();
        poll_fn(|cx| readiness.poll(cx, self)).await;
        self.send(message)
    }

    /// A `futures` sink that sends as [`send_async`](Self::send_async) does. Closing the
    /// sink closes the socket with 1000.
    pub fn sink(&self) -> MessageSink {
        MessageSink::new(self.clone())
    }

    /// A stream of every event from now on, ending after the socket's last close (the one
    /// not followed by a reconnection). Events are delivered only to streams that exist when
    /// they happen.
    ///
    /// The browser cannot be told to stop receiving, so events wait in the stream until read.
    pub fn events(&self) -> Events {
        let (feed, events) = stream::channel();
        #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
        let events = events.with_room(self.shared.room.clone());
        if !self.shared.released.get() {
            let mut streams = self.shared.streams.take();
            streams.push(feed);
            self.shared.streams.set(streams);
        }
        events
    }

    /// One value that is both a `Stream` of the messages received from now on and a `Sink`
    /// of messages to send; [`Messages::split`] parts it in two.
    pub fn messages(&self) -> Messages {
        Messages::new(self.sink(), MessageStream::new(self.clone(), self.events()))
    }

    /// Closes with code 1000 and no reason.
    pub fn close(&self) -> Result<(), Error> {
        self.close_with(NORMAL_CLOSURE, "")
    }

    /// Closes with `code` (1000, or 3000 to 4999) and `reason` (at most
    /// [`MAX_CLOSE_REASON`](crate::MAX_CLOSE_REASON) bytes of UTF-8), checked first as the
    /// browser would. A closed socket is never reconnected, whenever this is called: while
    /// connecting, open, waiting to reconnect, or from any callback. Closing it again does
    /// nothing.
    ///
    /// While waiting to reconnect there is no connection to close: the attempt is cancelled
    /// and a close event with this code and reason ends the socket's events.
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        crate::validate_close(code, reason)?;
        let shared = &self.shared;
        shared.closed_by_app.set(true);
        match shared.phase.get() {
            Phase::Active => {
                if let Some(connection) = shared.connection.borrow().as_ref() {
                    connection.close(code, reason)?;
                }
            }
            Phase::Waiting => {
                // Report the close from a timer of its own, like the browser's events, never
                // inside this call.
                shared.phase.set(Phase::Finished);
                let event = CloseEvent::new(code, reason, true).with_cause(CloseCause::Application);
                let report = shared.alarm(Duration::ZERO, Alarm::Report(event));
                shared.timer.set(Some(report));
            }
            // Kept for `reconnect_now` until now: released (after the current callback, if
            // this runs in one).
            Phase::Finished if shared.released.get() => shared.emit(None),
            Phase::Finished => {}
        }
        Ok(())
    }

    /// Makes the next connection attempt now, unless the application closed the socket:
    /// while waiting to reconnect, without waiting out the backoff; once the socket has closed
    /// for good (its attempts used up, a final code, or no reconnection at all), starting
    /// again, with the attempts counted from one; also while the browser says it is offline
    /// ([`Builder::follow_network`]), which it then no longer heeds until it says so again.
    /// The attempt starts right after this call;
    /// streams made before the socket closed have ended, so make new ones. Does nothing while
    /// connecting or open, or after [`close`](Self::close).
    pub fn reconnect_now(&self) {
        let shared = &self.shared;
        if shared.closed_by_app.get() {
            return;
        }
        match shared.phase.get() {
            Phase::Active => return,
            Phase::Waiting => {}
            Phase::Finished => {
                shared.attempt.set(0);
                shared.released.set(false);
            }
        }
        shared.attempt_now();
    }

    /// The socket's state; [`State::Reconnecting`] from the close of a connection that will be
    /// reopened until the next attempt starts.
    pub fn state(&self) -> State {
        self.shared.state()
    }

    /// The transport the socket's connections use: with
    /// `Builder::web_socket_stream` (feature `web-socket-stream`), whether the browser had
    /// `WebSocketStream`.
    pub fn transport(&self) -> crate::Transport {
        crate::transport::Connection::transport(&self.shared)
    }

    /// Bytes passed to the browser that it has not yet handed to the network.
    pub fn buffered_amount(&self) -> u32 {
        self.shared.with_socket(|socket| socket.buffered_amount())
    }

    /// Messages waiting for the next connection.
    pub fn queued(&self) -> usize {
        self.shared.with_queue(|queue| queue.len())
    }

    /// The URL: as the browser resolved it while connected, as given before.
    pub fn url(&self) -> String {
        let url = self.shared.with_socket(|socket| socket.url());
        if url.is_empty() {
            let given = self.shared.url.take();
            self.shared.url.set(given.clone());
            given
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

    /// Whether a send now would neither wait for the connection nor grow the browser's buffer
    /// or the queue past their bounds: what [`send_async`](Self::send_async) waits for.
    fn ready_to_send(&self) -> bool {
        let shared = &self.shared;
        let state = shared.state();
        if state == State::Open && shared.with_queue(|queue| queue.is_empty()) {
            return shared.with_socket(|s| s.buffered_amount()) <= shared.high_water_mark;
        }
        match shared.queue_policy(state) {
            Some(policy) => {
                !shared.with_queue(|queue| queue.is_full(policy.queue_capacity, policy.overflow))
            }
            // Without reconnection, wait for the first connection; otherwise the send fails
            // at once.
            None => state != State::Connecting,
        }
    }
}

/// Waits, polling with a growing pause, until a socket is ready to send.
#[derive(Default)]
pub(crate) struct Readiness {
    pause: Option<Pin<Box<dyn Future<Output = ()>>>>,
    delay: Duration,
}

impl Readiness {
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, socket: &WebSocket) -> Poll<()> {
        loop {
            if let Some(pause) = &mut self.pause {
                ready!(pause.as_mut().poll(cx));
                self.pause = None;
            }
            if socket.ready_to_send() {
                self.delay = Duration::ZERO;
                return Poll::Ready(());
            }
            self.delay = (self.delay * 2).clamp(Duration::from_millis(1), LONGEST_PAUSE);
            self.pause = Some(Box::pin(sleep(self.delay)));
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

/// What follows a close.
enum Next {
    /// A reconnection attempt, as announced.
    Attempt(Reconnecting),
    /// None yet: the browser is offline.
    Hold,
    /// Nothing: the socket is closed for good.
    End,
}

/// What a timer of the socket's is for.
pub(crate) enum Alarm {
    /// Make the next reconnection attempt.
    Reopen,
    /// Report the close the application made while waiting to reconnect.
    Report(CloseEvent),
    /// Deliver deferred events and drain the queue: [`Shared::tick`].
    Tick,
    /// The watchdog's: see `liveness.rs`.
    Watch(Watch),
}

/// What all handles of one socket share.
pub(crate) struct Shared {
    /// The URL of the current or last connection.
    url: Cell<String>,
    pub(crate) protocols: Vec<String>,
    reconnect: Option<Reconnect>,
    high_water_mark: u32,
    /// Connect timeout and heartbeat, when asked for: behind a trait object made only by the
    /// builder methods that ask, so that their code is left out of applications that do not.
    watchdog: Option<Box<dyn Watchdog>>,
    connection: RefCell<Option<Connection>>,
    /// The reconnection attempt, or the report of a close made while waiting for one.
    timer: Cell<Option<Timeout>>,
    /// The next [`tick`](Shared::tick).
    soon: Cell<Option<Timeout>>,
    /// Events that arose inside a call of the application's, delivered by the next tick so
    /// that no callback runs inside `send`.
    deferred: Cell<Vec<Event>>,
    phase: Cell<Phase>,
    closed_by_app: Cell<bool>,
    /// Reconnection attempts since the last connection that stayed up.
    attempt: Cell<u32>,
    /// When the current connection opened (`Date.now()`), if it did.
    opened_at: Cell<Option<f64>>,
    /// Each of the following is taken out while in use and put back, which no callback can
    /// see: nothing of the application's runs meanwhile.
    queue: Cell<Queue>,
    /// The listeners, released (dropped) when the socket finishes.
    callbacks: Cell<Callbacks>,
    streams: Cell<Vec<Feed>>,
    /// Where a pulling transport waits for room in the streams.
    #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
    room: stream::Room,
    /// The socket finished and its last events were delivered: no stream can join.
    released: Cell<bool>,
    pending: Cell<VecDeque<Option<Event>>>,
    dispatching: Cell<bool>,
    /// Whether the application asked for `WebSocketStream`.
    #[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
    pub(crate) web_socket_stream: bool,
    /// Natively, the application's TLS setup, if it gave one.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Shared {
    fn with_socket<T: Default>(&self, read: impl FnOnce(&Connection) -> T) -> T {
        self.connection
            .borrow()
            .as_ref()
            .map(read)
            .unwrap_or_default()
    }

    pub(crate) fn state(&self) -> State {
        match self.phase.get() {
            Phase::Waiting => State::Reconnecting,
            Phase::Finished => State::Closed,
            // The browser's socket is closed before its close event (an error event comes
            // first) is handled here: until then, the close is under way.
            Phase::Active => match self.connection.borrow().as_ref().map(Connection::state) {
                Some(State::Closed) | None => State::Closing,
                Some(state) => state,
            },
        }
    }

    fn send(self: &Rc<Self>, message: Message) -> Result<(), Error> {
        let state = self.state();
        if state == State::Open && self.with_queue(|queue| queue.is_empty()) {
            return self.hand_over(message).map_err(|unsent| unsent.error);
        }
        match self.queue_policy(state) {
            // Queued while down, and behind what is still queued while the queue drains.
            Some(policy) => {
                let pushed = self.with_queue(|queue| {
                    queue.push(message, policy.queue_capacity, policy.overflow)
                });
                if let Some(dropped) = pushed? {
                    let capacity = policy.queue_capacity;
                    self.unsent(dropped, Error::QueueFull { capacity });
                }
                if state == State::Open {
                    self.drain();
                }
                Ok(())
            }
            _ => Err(Error::NotOpen(state)),
        }
    }

    /// The reconnection policy, if a send in `state` (other than an open connection with
    /// nothing queued) goes to the queue: with reconnection on, until the socket is closed
    /// for good or by the application.
    fn queue_policy(&self, state: State) -> Option<&Reconnect> {
        let policy = self.reconnect.as_ref()?;
        (!self.closed_by_app.get() && state != State::Closed).then_some(policy)
    }

    /// Gives `message` to the current connection; hands it back if there is none or it
    /// refuses it.
    pub(crate) fn hand_over(&self, message: Message) -> Result<(), Unsent> {
        match self.connection.borrow().as_ref() {
            Some(connection) => connection.send(message),
            None => Err(Unsent {
                message,
                error: Error::NotOpen(State::Closed),
            }),
        }
    }

    /// A timer that calls [`ring`](Self::ring) with `alarm` after `delay`, while the socket
    /// exists. (One kind of closure for every timer: each kind costs the page code.)
    pub(crate) fn alarm(self: &Rc<Self>, delay: Duration, alarm: Alarm) -> Timeout {
        let weak = Rc::downgrade(self);
        Timeout::new(delay, move || {
            if let Some(shared) = weak.upgrade() {
                shared.ring(alarm);
            }
        })
    }

    /// A timer fired. This runs inside the timer's closure: wasm-bindgen frees a closure
    /// dropped during its own call once the call returns.
    fn ring(self: &Rc<Self>, alarm: Alarm) {
        match alarm {
            Alarm::Reopen => self.reopen(),
            Alarm::Report(event) => {
                drop(self.timer.take());
                self.emit(Some(Event::Close(event)));
                self.finish();
            }
            Alarm::Tick => self.tick(),
            Alarm::Watch(watch) => self.watch_now(watch),
        }
    }

    /// Reports a message that will not go out, after the call that caused it returns.
    fn unsent(self: &Rc<Self>, message: Message, error: Error) {
        let mut deferred = self.deferred.take();
        deferred.push(Event::Unsent(Unsent { message, error }));
        self.deferred.set(deferred);
        self.tick_after(Duration::ZERO);
    }

    /// Calls [`tick`](Self::tick) after `delay`, unless a tick is already due.
    fn tick_after(self: &Rc<Self>, delay: Duration) {
        let due = self.soon.take();
        if due.is_some() {
            self.soon.set(due);
            return;
        }
        let tick = self.alarm(delay, Alarm::Tick);
        self.soon.set(Some(tick));
    }

    /// Delivers the deferred events, then goes on draining the queue.
    fn tick(self: &Rc<Self>) {
        self.deliver_deferred();
        self.drain();
    }

    /// Delivers the events that waited for the next tick, now.
    fn deliver_deferred(self: &Rc<Self>) {
        drop(self.soon.take());
        for event in self.deferred.take() {
            self.emit(Some(event));
        }
    }

    /// Hands queued messages to the open connection, in order, while the browser's buffer is
    /// under the high-water mark; looks again shortly when it is not. What is left when the
    /// connection closes stays queued for the next one.
    fn drain(self: &Rc<Self>) {
        while self.state() == State::Open {
            if self.with_socket(|socket| socket.buffered_amount()) > self.high_water_mark {
                self.tick_after(LONGEST_PAUSE);
                return;
            }
            let Some(message) = self.with_queue(Queue::pop) else {
                return;
            };
            if let Err(Unsent { message, error }) = self.hand_over(message) {
                self.unsent(message, error);
            }
        }
    }

    /// The next attempt, right after the current call, instead of after the backoff.
    pub(crate) fn attempt_now(self: &Rc<Self>) {
        // Asked for now (by `reconnect_now`, or `online`): offline no more, as far as the
        // attempts go.
        if let Some(watchdog) = &self.watchdog {
            watchdog.online();
        }
        self.phase.set(Phase::Waiting);
        self.timer
            .set(Some(self.alarm(Duration::ZERO, Alarm::Reopen)));
    }

    /// One of the watchdog's alarms, or of the browser's events it listens to.
    pub(crate) fn watch_now(self: &Rc<Self>, watch: Watch) {
        if let Some(watchdog) = &self.watchdog {
            watchdog.ring(self, watch);
        }
    }

    /// The watchdog, if the application asked for one.
    pub(crate) fn watchdog(&self) -> Option<&dyn Watchdog> {
        self.watchdog.as_deref()
    }

    /// Sets the URL of the next attempt.
    pub(crate) fn set_url(&self, url: String) {
        self.url.set(url);
    }

    /// Whether the socket waits to reconnect.
    pub(crate) fn waiting(&self) -> bool {
        self.phase.get() == Phase::Waiting
    }

    /// Holds the attempt that waits, until [`attempt_now`](Self::attempt_now).
    pub(crate) fn hold(&self) {
        if self.waiting() {
            drop(self.timer.take());
        }
    }

    /// Makes `connection` the current one, and starts its connect timeout.
    fn attach(self: &Rc<Self>, connection: Connection) {
        *self.connection.borrow_mut() = Some(connection);
        if let Some(watchdog) = &self.watchdog {
            watchdog.attached(self);
        }
    }

    /// The current connection is given up for `event`: let it go (which closes the browser's
    /// socket, whose own events no longer reach us) and report it as closed.
    pub(crate) fn lost(self: &Rc<Self>, event: CloseEvent) {
        drop(self.connection.borrow_mut().take());
        self.closed(event);
    }

    /// The browser opened the current connection: send what waited for it, then tell.
    pub(crate) fn opened(self: &Rc<Self>) {
        self.opened_at.set(Some(now_ms()));
        if let Some(watchdog) = &self.watchdog {
            watchdog.opened(self);
        }
        self.drain();
        self.emit(Some(Event::Open));
    }

    /// A message came on the current connection: the heartbeat's own reply, or the
    /// application's.
    pub(crate) fn received(self: &Rc<Self>, message: Message) {
        let own = (self.watchdog()).is_some_and(|dog| dog.heard(self, &message));
        if !own {
            self.emit(Some(Event::Message(message)));
        }
    }

    /// Whether every stream has room for another event under `limit`.
    pub(crate) fn has_room(&self, limit: usize) -> bool {
        let streams = self.streams.take();
        let room = streams
            .iter()
            .all(|feed| feed.is_closed() || feed.len() < limit);
        self.streams.set(streams);
        room
    }

    /// For a transport that pulls: whether to read the next message now, under the receive
    /// limit (by default [`DEFAULT_RECEIVE_LIMIT`]).
    pub(crate) fn may_read(&self) -> bool {
        let limit = self.watchdog().and_then(|dog| dog.receive_limit());
        self.has_room(limit.unwrap_or(DEFAULT_RECEIVE_LIMIT))
    }

    /// Whether a pulling transport holds back for lack of room: what the peer sent may wait
    /// unread. (The browser's `WebSocket` reads everything.)
    pub(crate) fn holding_back(&self) -> bool {
        Connection::transport(self) != crate::Transport::WebSocket && !self.may_read()
    }

    /// Resolves once the streams have room for another message (a stream that gives an
    /// event or goes away wakes it), or after [`ROOM_PAUSE`] at most: the caller looks again.
    /// It holds the socket weakly, so that a transport waiting in it keeps nothing alive.
    #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
    pub(crate) fn wait_for_room(self: &Rc<Self>) -> impl Future<Output = ()> + 'static {
        let socket = Rc::downgrade(self);
        let mut pause = Box::pin(crate::timer::sleep(ROOM_PAUSE));
        poll_fn(move |cx| {
            let Some(shared) = socket.upgrade().filter(|shared| !shared.may_read()) else {
                return Poll::Ready(());
            };
            let waiting = shared.room.borrow_mut().replace(cx.waker().clone());
            drop(waiting);
            pause.as_mut().poll(cx)
        })
    }

    /// The current connection closed: reconnect or finish, then tell. The phase changes
    /// first, so that the close callback sees the state that follows it.
    pub(crate) fn closed(self: &Rc<Self>, mut event: CloseEvent) {
        drop(self.connection.borrow_mut().take());
        if let Some(watchdog) = &self.watchdog {
            watchdog.closed();
        }
        if event.cause == CloseCause::Remote {
            if self.closed_by_app.get() {
                event.cause = CloseCause::Application;
            } else if self.opened_at.get().is_none() {
                event.cause = CloseCause::HandshakeFailed;
            }
        }
        match self.next_attempt(&event) {
            // Offline: no attempt, and none spent; `online` starts the next.
            Next::Hold => {
                self.phase.set(Phase::Waiting);
                self.emit(Some(Event::Close(event)));
            }
            Next::Attempt(announcement) => {
                self.schedule(announcement.delay);
                // Delivered at once: browser events and timers never run inside a dispatch.
                self.emit(Some(Event::Close(event)));
                // The application may have closed from the close callback: then the attempt
                // is off, and is not announced.
                if self.phase.get() == Phase::Waiting {
                    self.emit(Some(Event::Reconnecting(announcement)));
                }
            }
            Next::End => {
                self.phase.set(Phase::Finished);
                self.emit(Some(Event::Close(event)));
                // Unless the close callback started it again (`reconnect_now`).
                if self.phase.get() == Phase::Finished {
                    self.finish();
                }
            }
        }
    }

    /// What follows the close `event`: the next reconnection attempt, if one should be made.
    fn next_attempt(&self, event: &CloseEvent) -> Next {
        let Some(policy) = self.reconnect.as_ref() else {
            return Next::End;
        };
        let declined = (self.watchdog.as_ref()).is_some_and(|dog| !dog.should_reconnect(event));
        if self.closed_by_app.get() || policy.final_codes.contains(&event.code) || declined {
            return Next::End;
        }
        if let Some(opened_at) = self.opened_at.take() {
            let up = now_ms() - opened_at;
            if up >= policy.reset_after.as_millis() as f64 {
                self.attempt.set(0);
            }
        }
        if (self.watchdog.as_ref()).is_some_and(|dog| dog.offline()) {
            return Next::Hold;
        }
        let attempt = self.attempt.get().saturating_add(1);
        self.attempt.set(attempt);
        if !policy.allows(attempt) {
            return Next::End;
        }
        let delay = policy.delay(attempt, random());
        Next::Attempt(Reconnecting { attempt, delay })
    }

    /// Waits `delay` for the next attempt.
    fn schedule(self: &Rc<Self>, delay: Duration) {
        self.timer.set(Some(self.alarm(delay, Alarm::Reopen)));
        self.phase.set(Phase::Waiting);
    }

    /// The reconnection timer fired: open a new connection. One the browser refuses (a URL
    /// from the provider that it will not take) counts as a failed attempt.
    fn reopen(self: &Rc<Self>) {
        drop(self.timer.take());
        // With a URL provider, the watchdog calls `open_attempt` once it has the URL.
        if (self.watchdog.as_ref()).is_some_and(|dog| dog.provide_url(self)) {
            return;
        }
        self.open_attempt();
    }

    /// Opens the attempt's connection, to the URL now set, unless the socket was closed
    /// meanwhile (by the URL provider, say).
    pub(crate) fn open_attempt(self: &Rc<Self>) {
        if self.phase.get() != Phase::Waiting || self.connection.borrow().is_some() {
            return;
        }
        // Offline meanwhile: held until `online`.
        if (self.watchdog.as_ref()).is_some_and(|dog| dog.offline()) {
            return;
        }
        let url = self.url.take();
        let opened = Connection::open(self, &url);
        self.url.set(url);
        match opened {
            Ok(connection) => {
                self.attach(connection);
                self.phase.set(Phase::Active);
            }
            Err(error) => {
                let reason = match error {
                    Error::InvalidUrl { url, message } => [url, message].join(": "),
                    _ => String::new(),
                };
                self.emit(Some(Event::Error));
                // Closed from the error callback: that close, reported by its own timer,
                // is the last.
                if self.phase.get() != Phase::Waiting {
                    return;
                }
                let refused = CloseEvent::new(1006, reason, false);
                self.closed(refused.with_cause(CloseCause::HandshakeFailed));
            }
        }
    }

    /// Closed for good: nothing more will happen. Report what is still queued, then let go of
    /// the listeners once every event before this point has been delivered.
    fn finish(self: &Rc<Self>) {
        // Runs from a browser event or a timer, never inside a call of the application's:
        // what waits for the next tick is delivered now.
        self.deliver_deferred();
        let left = self.with_queue(Queue::take);
        for message in left {
            let error = Error::NotOpen(State::Closed);
            self.emit(Some(Event::Unsent(Unsent { message, error })));
        }
        self.emit(None);
    }

    /// Delivers `next` after anything being delivered now, so that a callback that causes
    /// another event sees them in order; `None` releases the listeners.
    pub(crate) fn emit(self: &Rc<Self>, next: Option<Event>) {
        let mut pending = self.pending.take();
        pending.push_back(next);
        self.pending.set(pending);
        if self.dispatching.replace(true) {
            return;
        }
        loop {
            let mut pending = self.pending.take();
            let next = pending.pop_front();
            self.pending.set(pending);
            match next {
                None => break,
                Some(Some(event)) => self.deliver(event),
                Some(None) => {
                    self.released.set(true);
                    drop(self.streams.take());
                    // Closed by the application, it is over for good. Otherwise
                    // `reconnect_now` may start it again, for these.
                    if self.closed_by_app.get() {
                        drop(self.callbacks.take());
                        if let Some(watchdog) = &self.watchdog {
                            watchdog.released();
                        }
                    }
                }
            }
        }
        self.dispatching.set(false);
    }

    /// Gives `event` to every stream, then to its callback; copied only for all but the last.
    fn deliver(self: &Rc<Self>, event: Event) {
        let mut callbacks = self.callbacks.take();
        let mut streams = self.streams.take();
        streams.retain(|stream| !stream.is_closed());
        let wanted = callbacks.wants(&event);
        let left = match streams.split_last() {
            None => wanted.then_some(event),
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
        };
        // A reader woken above may have made a stream already (an executor may poll at once):
        // keep it.
        let joined = self.streams.take();
        streams.extend(joined);
        self.streams.set(streams);
        if let Some(event) = left {
            // A callback may use the socket, and make streams: everything is back in place.
            let socket = WebSocket {
                shared: self.clone(),
            };
            callbacks.call(&socket, event);
        }
        self.callbacks.set(callbacks);
    }

    fn with_queue<T>(&self, use_queue: impl FnOnce(&mut Queue) -> T) -> T {
        let mut queue = self.queue.take();
        let result = use_queue(&mut queue);
        self.queue.set(queue);
        result
    }
}
