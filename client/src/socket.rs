//! The driver: the handle the application holds, and the thin layer that feeds the core
//! (`core.rs`) what happens and does what it says. It owns the core, the current transport
//! connection, one timer set from the core's next deadline, the application's callbacks and
//! the streams' feeds. Events flow one way: transports report to it as a
//! [`Listener`](crate::transport::Listener); it asks the core; the core's actions come back
//! out through [`Shared::pump`].
//!
//! Ownership, which is what keeps this leak-free: handles own [`Shared`]; `Shared` owns the
//! current connection (the browser socket and its closures) and the timer. Closures and timers
//! hold only a `Weak` back. The streams' feeds are dropped when the socket closes for good, and
//! the application's callbacks when the application closes it or drops it; callbacks are given
//! the socket, so that they need not hold a handle.
//!
//! No borrow is held while application code runs: the core is borrowed for one call at a
//! time, and the callbacks are taken out while they are called.

use std::any::Any;
use std::cell::{Cell, Ref, RefCell};
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::StreamExt;

use crate::core::{Action, Config, Core, DRAIN_PAUSE, Millis, NEVER};
use crate::error::{Error, validate_close};
use crate::event::{Event, Unsent};
use crate::inbox::{Events, Streams};
use crate::link::{self, Connection};
use crate::message::{CloseEvent, Message, NORMAL_CLOSURE, Reconnecting, Sent, State};
#[cfg(target_arch = "wasm32")]
use crate::network::{self, Change};
use crate::timer::{Timeout, now, sleep};
use crate::transport::{Listener, Options, invalid_protocol};

/// The default high-water mark of [`WebSocket::send_async`]: 1 MiB.
pub const DEFAULT_HIGH_WATER_MARK: u32 = 1 << 20;

/// How many events a stream holds before a pulling transport (natively, or `WebSocketStream`)
/// stops reading, unless [`Builder::receive_limit`](crate::Builder::receive_limit) says
/// otherwise.
pub const DEFAULT_RECEIVE_LIMIT: usize = 64;

/// A handle to one WebSocket. Clones are handles to the same socket, and any of them can send
/// or close it. Dropping the last handle closes the socket with code 1000 and frees
/// everything it held, its queue included.
#[derive(Clone)]
pub struct WebSocket {
    pub(crate) driver: Rc<dyn Driver>,
}

/// A handle that does not keep its socket alive: for callbacks and other places that would
/// otherwise make a cycle. Made by [`WebSocket::downgrade`].
#[derive(Clone, Debug, Default)]
pub struct WeakWebSocket {
    driver: Option<Weak<dyn Driver>>,
}

impl WeakWebSocket {
    /// The socket, while some [`WebSocket`] handle still holds it.
    pub fn upgrade(&self) -> Option<WebSocket> {
        let driver = self.driver.as_ref()?.upgrade()?;
        Some(WebSocket { driver })
    }
}

/// What a handle drives, behind one `dyn`, so that a program carries only the drivers it
/// makes. Two exist: the thin one (`thin.rs`), for a socket made by [`WebSocket::connect`] or
/// [`WebSocket::open`] with the default settings, and the full one ([`Shared`] over the
/// core), made only by `Builder::connect`: a program that never calls the builder carries
/// none of the full driver's code.
///
/// A vtable holds every method of the trait, called or not, in every program that makes
/// the driver: so the trait has only what nearly every program calls. The handle's other
/// methods (`handle.rs`) find the driver by its type ([`into_any`](Self::into_any)), and a
/// program carries their code only if it calls them.
pub(crate) trait Driver {
    /// The driver, to find its type, as a handle holds it.
    fn into_any(self: Rc<Self>) -> Rc<dyn Any>;
    /// [`WebSocket::send`].
    fn send(self: Rc<Self>, message: Message) -> Result<Sent, Error>;
    /// The streams, for [`WebSocket::events`] and [`WebSocket::closed`].
    fn streams(&self) -> &Streams;
    /// [`WebSocket::close_with`], its code and reason checked. (Nothing returned: the
    /// vtable's call would otherwise be of the signature, five `i32`s, of wasm-bindgen's
    /// closure shims, and a program that calls it would carry six of them, live, for it.)
    fn close_with(self: Rc<Self>, code: u16, reason: &str);
    /// [`WebSocket::state`].
    fn state(&self) -> State;
    /// Whether a send now would neither wait for the connection nor grow the browser's
    /// buffer or the queue past their bounds: what [`WebSocket::send_async`] and the sinks
    /// wait for.
    fn ready_to_send(&self) -> bool;
    /// The browser's `online`, `offline` or `visibilitychange`, for the unit tests on the
    /// simulated transport (where nothing listens to a browser).
    #[cfg(all(not(target_arch = "wasm32"), any(test, feature = "fuzzing")))]
    fn network_for_test(self: Rc<Self>, change: crate::tests::sim::Network);
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
    /// Opens the socket `setup` describes: its first attempt is made before this returns,
    /// and a URL the transport refuses is the error.
    pub(crate) fn start(setup: Setup) -> Result<WebSocket, Error> {
        let shared = Rc::new(Shared {
            core: RefCell::new(Core::new(setup.config, setup.url.clone())),
            link: RefCell::new(None),
            options: setup.options,
            timer: Cell::new(None),
            pumping: Cell::new(false),
            callbacks: Cell::new(setup.callbacks),
            should_reconnect: setup.hooks.should_reconnect,
            is_reply: setup.hooks.is_reply,
            overflows: setup.hooks.overflows,
            unchosen: setup.hooks.unchosen,
            drain: setup.hooks.drain,
            ask_url: Cell::new(setup.hooks.ask_url),
            streams: Streams::default(),
            listening: Cell::new(None),
        });
        // Checked here rather than in the builder, so that a refusal drops what the socket
        // is made of in one piece.
        if let Some(bad) = invalid_protocol(&shared.options.protocols) {
            return Err(Error::InvalidProtocol(bad.to_owned()));
        }
        shared.core().connect(now());
        shared.open(&setup.url)?;
        if let Some(listen) = setup.hooks.listen {
            shared.listening.set(Some(listen(&shared)));
        }
        // The connect timeout, if there is one.
        shared.arm();
        Ok(WebSocket { driver: shared })
    }

    /// A handle that does not keep the socket alive.
    pub fn downgrade(&self) -> WeakWebSocket {
        WeakWebSocket {
            driver: Some(Rc::downgrade(&self.driver)),
        }
    }

    /// Sends a message now if the socket is open. With reconnection on, a message sent while
    /// the socket is not open (or while earlier queued messages still drain) waits in the
    /// queue for the next connection; otherwise it is [`Error::NotOpen`] (the browser would
    /// throw while connecting, and drop it silently while closing). [`Sent`] says which it
    /// was: handed to the connection now, or queued.
    ///
    /// Takes anything that is `Into<Message>`: `&str`, `String`, `&[u8]`, `&[u8; N]`,
    /// `Vec<u8>`, …
    pub fn send(&self, message: impl Into<Message>) -> Result<Sent, Error> {
        // The application's `Into` runs before the driver is borrowed: it may use the socket.
        let message = message.into();
        self.driver.clone().send(message)
    }

    /// Sends a message once the browser's buffer is below the high-water mark, so that a fast
    /// producer cannot grow it without bound. Also waits for the first connection to open,
    /// and, with reconnection on, while the queue is full (with [`Overflow::Error`]); while
    /// it still drains into a new connection, the message joins it, behind what was sent
    /// before. Then sends as [`send`](Self::send) does, and says whether the message went out
    /// or was queued.
    ///
    /// [`Overflow::Error`]: crate::Overflow::Error
    pub async fn send_async(&self, message: impl Into<Message>) -> Result<Sent, Error> {
        let message = message.into();
        let mut readiness = Readiness::default();
        poll_fn(|cx| readiness.poll(cx, self)).await;
        self.send(message)
    }

    /// A stream of every event from now on, ending after the socket's last close (the one
    /// not followed by a reconnection). Events are delivered only to streams that exist when
    /// they happen.
    ///
    /// On the browser's `WebSocket`, which cannot be told to stop receiving, events wait in
    /// the stream until read.
    pub fn events(&self) -> Events {
        self.driver.streams().join()
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
    /// While connecting or waiting to reconnect there is no connection to close: the attempt
    /// is let go, and a close event with this code and reason (clean, cause
    /// [`CloseCause::Application`](crate::CloseCause::Application)) ends the socket's events,
    /// after this call returns. [`closed`](Self::closed) waits for the close.
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        validate_close(code, reason)?;
        self.driver.clone().close_with(code, reason);
        Ok(())
    }

    /// Resolves once the socket has closed for good (its last close, not followed by a
    /// reconnection), with that close; at once if it already has. Close first, or wait for
    /// the server or the reconnection policy to end it.
    pub async fn closed(&self) -> CloseEvent {
        // Once the socket has finished, the stream ends at once.
        let mut events = self.events();
        while events.next().await.is_some() {}
        let last = self.driver.streams().last_close();
        last.unwrap_or_else(|| CloseEvent::new(1006, "", false))
    }

    /// The socket's state; [`State::Reconnecting`] from the close of a connection that will be
    /// reopened until the next attempt starts.
    pub fn state(&self) -> State {
        self.driver.state()
    }

    /// The URL of the latest attempt, as the transport resolved it (the browser resolves a
    /// relative URL against the page and adds the path `/`): the same in every state.
    pub fn url(&self) -> String {
        self.driver.streams().url()
    }
}

/// Waits, polling with a growing pause, until a socket is ready to send: browsers have no
/// event for a draining buffer.
#[derive(Default)]
pub(crate) struct Readiness {
    pause: Option<Pin<Box<dyn Future<Output = ()>>>>,
    /// The last pause, in milliseconds: integers, since `Duration`'s multiplication checks
    /// for overflow and panics, which every program with a sink would carry.
    delay: Millis,
}

impl Readiness {
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, socket: &WebSocket) -> Poll<()> {
        loop {
            if let Some(pause) = &mut self.pause {
                ready!(pause.as_mut().poll(cx));
                self.pause = None;
            }
            if socket.driver.ready_to_send() {
                self.delay = 0;
                return Poll::Ready(());
            }
            self.delay = (self.delay * 2).clamp(1, DRAIN_PAUSE);
            self.pause = Some(Box::pin(sleep(Duration::from_millis(self.delay))));
        }
    }
}

/// What a socket is made of, as the builder sets it up.
pub(crate) struct Setup {
    /// The URL of the first attempt, and of every other unless a provider gives one.
    pub(crate) url: String,
    pub(crate) config: Config,
    pub(crate) options: Options,
    pub(crate) callbacks: Callbacks,
    pub(crate) hooks: Hooks,
}

type Callback<T> = Option<Box<dyn FnMut(&WebSocket, T)>>;
type Notice = Option<Box<dyn FnMut(&WebSocket)>>;

/// The application's callbacks.
#[derive(Default)]
pub(crate) struct Callbacks {
    pub(crate) on_open: Notice,
    pub(crate) on_message: Callback<Message>,
    pub(crate) on_error: Notice,
    pub(crate) on_close: Callback<CloseEvent>,
    pub(crate) on_reconnect: Callback<Reconnecting>,
    pub(crate) on_unsent: Callback<Unsent>,
}

impl Callbacks {
    fn wants(&self, event: &Event) -> bool {
        match event {
            Event::Open => self.on_open.is_some(),
            Event::Message(_) => self.on_message.is_some(),
            Event::Error => self.on_error.is_some(),
            Event::Close(_) => self.on_close.is_some(),
            Event::Reconnecting(_) => self.on_reconnect.is_some(),
            Event::Unsent(_) => self.on_unsent.is_some(),
        }
    }

    fn call(&mut self, socket: &WebSocket, event: Event) {
        match event {
            Event::Open => self.on_open.as_mut().map(|f| f(socket)),
            Event::Message(message) => self.on_message.as_mut().map(|f| f(socket, message)),
            Event::Error => self.on_error.as_mut().map(|f| f(socket)),
            Event::Close(close) => self.on_close.as_mut().map(|f| f(socket, close)),
            Event::Reconnecting(next) => self.on_reconnect.as_mut().map(|f| f(socket, next)),
            Event::Unsent(unsent) => self.on_unsent.as_mut().map(|f| f(socket, unsent)),
        };
    }
}

/// The application's code that the core asks about, and the optional parts of the driver:
/// each made only by the builder method that asks for it, so that an application that does
/// not carries none of its code.
#[derive(Default)]
pub(crate) struct Hooks {
    /// `Builder::should_reconnect`: asks it, and tells [`Shared::decided`].
    pub(crate) should_reconnect: Option<ShouldReconnect>,
    /// `Builder::url_provider_async`: starts getting a URL, which it gives to
    /// [`Shared::url_provided`] with the request's number.
    pub(crate) ask_url: Option<AskUrl>,
    /// `Heartbeat::reply`.
    pub(crate) is_reply: Option<IsReply>,
    /// `Builder::receive_limit`: [`Shared::overflowing`].
    pub(crate) overflows: Option<fn(&Shared) -> bool>,
    /// `Builder::protocols`: [`Shared::unchosen`].
    pub(crate) unchosen: Option<fn(&Shared) -> bool>,
    /// `Builder::follow_network`: starts listening to the browser.
    pub(crate) listen: Option<fn(&Rc<Shared>) -> Listening>,
    /// `Builder::reconnect`: [`Shared::drain`], the queue into an open connection.
    pub(crate) drain: Option<fn(&Rc<Shared>)>,
}

/// Asks `Builder::should_reconnect` "reconnect after this close?", and tells the answer to
/// [`Shared::decided`].
pub(crate) type ShouldReconnect = Box<dyn Fn(&Rc<Shared>, CloseEvent)>;
/// `Heartbeat::reply`.
pub(crate) type IsReply = Rc<dyn Fn(&Message) -> bool>;
/// Starts getting a URL, which it gives to [`Shared::url_provided`] with the request's number.
pub(crate) type AskUrl = Box<dyn FnMut(&Rc<Shared>, u32)>;

/// The browser's events a socket listens to, until dropped.
pub(crate) type Listening = Box<dyn std::any::Any>;

/// Starts following the browser's network and the page's visibility, for `shared`: the hook
/// that `Builder::follow_network` sets.
#[cfg(target_arch = "wasm32")]
pub(crate) fn follow_network(shared: &Rc<Shared>) -> Listening {
    let weak = Rc::downgrade(shared);
    network::listen(move |change| {
        if let Some(shared) = weak.upgrade() {
            shared.network(change);
        }
    })
}

/// What all handles of one socket share.
pub(crate) struct Shared {
    core: RefCell<Core>,
    link: RefCell<Option<Connection>>,
    options: Options,
    /// The one timer, and the deadline it is set for.
    timer: Cell<Option<(Millis, Timeout)>>,
    /// Whether [`pump`](Self::pump) is running (a callback's call into the socket then
    /// leaves its actions to it).
    pumping: Cell<bool>,
    /// Each of the following is taken out while in use and put back.
    callbacks: Cell<Callbacks>,
    /// `Builder::should_reconnect`, `Heartbeat::reply` and the URL provider: see [`Hooks`].
    should_reconnect: Option<ShouldReconnect>,
    is_reply: Option<IsReply>,
    overflows: Option<fn(&Shared) -> bool>,
    unchosen: Option<fn(&Shared) -> bool>,
    drain: Option<fn(&Rc<Shared>)>,
    ask_url: Cell<Option<AskUrl>>,
    /// The streams' ends, once [`WebSocket::events`] made one.
    streams: Streams,
    listening: Cell<Option<Listening>>,
}

impl Shared {
    /// The core, for one call. (One function for every use: each borrow site costs the page
    /// code.)
    #[inline(never)]
    fn core(&self) -> std::cell::RefMut<'_, Core> {
        self.core.borrow_mut()
    }

    /// Reads the current connection; `T::default()` when there is none. (Never held while
    /// the connection is replaced: `try_borrow` only spares the page a panic's code.)
    fn with_link<T: Default>(&self, read: impl FnOnce(&Connection) -> T) -> T {
        let link = self.link.try_borrow();
        (link.ok())
            .and_then(|link| link.as_ref().map(read))
            .unwrap_or_default()
    }

    /// Makes `link` the current connection, and hands back the one it replaces.
    #[inline(never)]
    fn replace_link(&self, link: Option<Connection>) -> Option<Connection> {
        self.link.replace(link)
    }

    /// The transport's own state: `Closed` when there is none.
    fn link_state(&self) -> State {
        self.with_link(|link| Some(link.state()))
            .unwrap_or(State::Closed)
    }

    fn state(&self) -> State {
        self.core().state(self.link_state())
    }

    fn poll(&self) -> Option<Action> {
        self.core().poll()
    }

    /// Gives `message` to the current connection; hands it back if there is none or it
    /// refuses it.
    fn hand_over(&self, message: Message) -> Result<(), Unsent> {
        match self.link.try_borrow().as_deref() {
            Ok(Some(link)) => link.send(message),
            _ => Err(Unsent {
                message,
                error: Error::NotOpen(State::Closed),
            }),
        }
    }

    /// Opens a connection to `url`, and makes it the current one.
    fn open(self: &Rc<Self>, url: &str) -> Result<(), Error> {
        // A `Weak<Shared>`: the browser's transport takes it as it is, the others as a
        // `Weak<dyn Listener>`.
        let listener: Weak<Shared> = Rc::downgrade(self);
        let link = Connection::open(listener, url, &self.options)?;
        self.streams.set_url(link.url());
        self.replace_link(Some(link));
        Ok(())
    }

    /// Does what the core says, in order, then sets the timer for its next deadline. A call
    /// made while it runs (from a callback) leaves its actions to the running one.
    pub(crate) fn pump(self: &Rc<Self>) {
        if self.pumping.replace(true) {
            return;
        }
        while let Some(action) = self.poll() {
            self.perform(action);
        }
        self.pumping.set(false);
        self.arm();
    }

    fn perform(self: &Rc<Self>, action: Action) {
        match action {
            Action::Open(url) => {
                if let Err(error) = self.open(&url) {
                    let reason = error.into_refusal_reason();
                    self.core().refused(now(), reason);
                }
            }
            Action::AskUrl(ask) => {
                // Actions run one at a time: nothing asks again while this is out.
                if let Some(mut ask_url) = self.ask_url.take() {
                    ask_url(self, ask);
                    self.ask_url.set(Some(ask_url));
                }
            }
            Action::Decide(close) => {
                // Asked only with `Builder::should_reconnect`.
                if let Some(decide) = &self.should_reconnect {
                    decide(self, close);
                }
            }
            Action::Close(code, reason) => {
                // The core checked the code and reason: the browser takes them.
                self.with_link(|link| link.close(code, &reason));
            }
            Action::Release => {
                drop(self.replace_link(None));
            }
            Action::Drain => {
                // Only a queue asks, and only `Builder::reconnect` makes one.
                if let Some(drain) = self.drain {
                    drain(self);
                }
            }
            Action::Ping(message) => {
                let _ = self.hand_over(message);
            }
            Action::Deliver(event) => self.deliver(event),
            Action::Finish { for_good } => {
                self.streams.end();
                // Closed by the application, it is over for good. Otherwise `reconnect_now`
                // may start it again, for these.
                if for_good {
                    drop(self.callbacks.take());
                    drop(self.ask_url.take());
                    drop(self.listening.take());
                    drop(self.timer.take());
                }
            }
        }
    }

    /// Sets the timer for the core's next deadline, unless it is set for it already.
    fn arm(self: &Rc<Self>) {
        let due = self.core().poll_timeout();
        let old = self.timer.take();
        if old.as_ref().map_or(NEVER, |(at, _)| *at) == due {
            self.timer.set(old);
            return;
        }
        if due != NEVER {
            let weak = Rc::downgrade(self);
            let delay = Duration::from_millis(due.saturating_sub(now()));
            let alarm = Timeout::new(delay, move || {
                if let Some(shared) = weak.upgrade() {
                    shared.ring();
                }
            });
            self.timer.set(Some((due, alarm)));
        }
        // A timer dropped from its own callback is freed once the callback returns.
        drop(old);
    }

    /// The timer fired.
    fn ring(self: &Rc<Self>) {
        let fired = self.timer.take();
        let behind = self.reader_behind();
        self.core().handle_timeout(now(), behind);
        self.pump();
        drop(fired);
    }

    /// Whether a pulling transport holds back for a slow reader: what the peer sent may wait
    /// unread. (The browser's `WebSocket` reads everything.)
    fn reader_behind(&self) -> bool {
        #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
        if link::kind(&self.options) != crate::Transport::WebSocket {
            return !self.may_read();
        }
        false
    }

    /// Whether every stream has room for another event under `limit`.
    fn has_room(&self, limit: usize) -> bool {
        self.streams.has_room(limit)
    }

    /// The URL provider answered request `ask`.
    pub(crate) fn url_provided(self: &Rc<Self>, ask: u32, url: String) {
        self.core().url_provided(now(), ask, url);
        self.pump();
    }

    /// The browser's `online`, `offline` or `visibilitychange` (to visible).
    #[cfg(target_arch = "wasm32")]
    fn network(self: &Rc<Self>, change: Change) {
        let behind = self.reader_behind();
        {
            let mut core = self.core();
            match change {
                Change::Online => core.online(now()),
                Change::Offline => core.offline(now()),
                Change::Visible => core.visible(now(), behind),
            }
        }
        self.pump();
    }

    /// The browser's `online`, `offline` or `visibilitychange`, for the unit tests on the
    /// simulated transport (where nothing listens to a browser).
    #[cfg(all(not(target_arch = "wasm32"), any(test, feature = "fuzzing")))]
    pub(crate) fn network_for_test(self: &Rc<Self>, change: crate::tests::sim::Network) {
        use crate::tests::sim::Network;
        let behind = self.reader_behind();
        {
            let mut core = self.core();
            match change {
                Network::Online => core.online(now()),
                Network::Offline => core.offline(now()),
                Network::Visible => core.visible(now(), behind),
            }
        }
        self.pump();
    }

    /// Gives `event` to every stream, then to its callback; copied only for all but the last.
    fn deliver(self: &Rc<Self>, event: Event) {
        let mut callbacks = self.callbacks.take();
        let wanted = callbacks.wants(&event);
        let left = self.streams.deliver(event, wanted);
        if let Some(event) = left {
            // A callback may use the socket, and make streams: everything is back in place.
            let socket = WebSocket {
                driver: self.clone(),
            };
            callbacks.call(&socket, event);
        }
        // Actions run one at a time (a callback's calls leave theirs to the running pump),
        // so nothing let go of the callbacks meanwhile.
        self.callbacks.set(callbacks);
    }
}

/// The full driver behind a handle: what `Builder::connect` makes.
impl Driver for Shared {
    fn into_any(self: Rc<Self>) -> Rc<dyn Any> {
        self
    }

    fn send(self: Rc<Self>, message: Message) -> Result<Sent, Error> {
        let shared = &self;
        // What the reconnection queue holds goes first, as far as an open connection takes it
        // now: then this message either goes straight out (`Now`) or waits behind what is
        // still queued (`Queued`), and is not drained by this call's own pump after the core
        // said it was queued.
        let link = shared.link_state();
        if link == State::Open
            && let Some(drain) = shared.drain
            && shared.core().queued() > 0
        {
            drain(shared);
        }
        let now = shared.core().send(message, link);
        let result = match now {
            Ok(Some(message)) => match shared.hand_over(message) {
                Ok(()) => Ok(Sent::Now),
                Err(unsent) => Err(unsent.error),
            },
            Ok(None) => Ok(Sent::Queued),
            Err(error) => Err(error),
        };
        shared.pump();
        result
    }

    fn streams(&self) -> &Streams {
        &self.streams
    }

    fn close_with(self: Rc<Self>, code: u16, reason: &str) {
        self.core().close(code, reason);
        self.pump();
    }

    fn state(&self) -> State {
        Shared::state(self)
    }

    fn ready_to_send(&self) -> bool {
        let buffered = self.with_link(Connection::buffered_amount);
        let link = self.link_state();
        self.core().ready_to_send(link, buffered)
    }

    #[cfg(all(not(target_arch = "wasm32"), any(test, feature = "fuzzing")))]
    fn network_for_test(self: Rc<Self>, change: crate::tests::sim::Network) {
        Shared::network_for_test(&self, change);
    }
}

/// What the handle's methods that are not in the vtable ask of the full driver (`handle.rs`).
impl Shared {
    /// See `WebSocket::reconnect_now`.
    pub(crate) fn reconnect_now(self: &Rc<Self>) {
        self.core().reconnect_now();
        if self.state() != State::Closed {
            self.streams.restart();
        }
        self.pump();
    }

    /// See `WebSocket::transport`.
    pub(crate) fn transport(&self) -> crate::Transport {
        link::kind(&self.options)
    }

    /// The current connection, if there is one.
    pub(crate) fn link(&self) -> Option<Ref<'_, Connection>> {
        let link = self.link.try_borrow().ok()?;
        Ref::filter_map(link, Option::as_ref).ok()
    }

    /// See `WebSocket::queued`.
    pub(crate) fn queued(&self) -> usize {
        self.core().queued()
    }
}

impl Listener for Shared {
    fn opened(self: Rc<Self>) {
        let unchosen = self.unchosen.is_some_and(|unchosen| unchosen(&self));
        self.core().opened(now(), unchosen);
        self.pump();
    }

    fn received(self: Rc<Self>, message: Message) {
        let is_reply = (self.is_reply.as_ref()).is_some_and(|is_reply| is_reply(&message));
        let full = self.overflows.is_some_and(|overflows| overflows(&self));
        self.core().received(message, is_reply, full);
        self.pump();
    }

    fn failed(self: Rc<Self>, ended: bool) {
        self.core().failed(now(), ended);
        self.pump();
    }

    fn closed(self: Rc<Self>, event: CloseEvent) {
        self.core().closed(now(), event);
        self.pump();
    }

    #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
    fn may_read(&self) -> bool {
        let limit = self.core().read_limit();
        self.has_room(limit.max(1))
    }

    #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
    fn wait_for_room(self: Rc<Self>) -> Pin<Box<dyn Future<Output = ()>>> {
        self.streams.wait_for_room(&self, Self::may_read)
    }
}

impl Shared {
    /// The application decided whether to reconnect after the close it was asked about.
    pub(crate) fn decided(self: &Rc<Self>, wanted: bool) {
        self.core().decided(now(), wanted);
    }

    /// Subprotocols were offered, and the server picked none: the hook `Builder::protocols`
    /// sets, so that pages that offer none carry none of this.
    pub(crate) fn unchosen(&self) -> bool {
        !self.options.protocols.is_empty() && self.with_link(Connection::protocol).is_empty()
    }

    /// Hands the reconnection queue's messages to the open connection while it takes them
    /// under the high-water mark: the hook `Builder::reconnect` sets.
    pub(crate) fn drain(self: &Rc<Self>) {
        // A connection closing (the server's Close arrived, its close event not yet) drops
        // what it is handed, as the browser does: the queue keeps it for the next one.
        while self.link_state() == State::Open {
            let buffered = self.with_link(Connection::buffered_amount);
            let next = self.core().drain_next(now(), buffered);
            let Some(message) = next else { break };
            if let Err(unsent) = self.hand_over(message) {
                self.core().unsent(unsent);
            }
        }
    }

    /// A message on a transport that cannot stop reading finds a stream at the receive
    /// limit: the hook `Builder::receive_limit` sets, so that pages without a limit carry
    /// none of this.
    pub(crate) fn overflowing(&self) -> bool {
        #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
        if link::kind(&self.options) != crate::Transport::WebSocket {
            return false;
        }
        let limit = self.core().overflow_limit();
        limit.is_some_and(|limit| !self.has_room(limit.max(1)))
    }
}
