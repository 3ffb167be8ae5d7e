//! The thin driver: a socket made by [`WebSocket::connect`] or [`WebSocket::open`], with the
//! default settings (no callbacks, no reconnection policy, no heartbeat, no connect timeout,
//! no subprotocols, no receive limit). It behaves as the full driver (`socket.rs` over
//! `core.rs`) behaves for such a socket, event for event, and `tests/differential.rs` holds it
//! to that; but it is a handful of phases instead of the core's state machine, so that a
//! program that never calls the builder carries none of the core, its timers, its queue or
//! its hooks (issue 30: the same small program, 25.3 KB of wasm gzipped through the full
//! driver, against gloo-net's 18.6 KB).
//!
//! It is a second [`Listener`] of the same transports (`link.rs`), so it works on every one:
//! the browser's `WebSocket`, natively, and on the simulated transport of the unit tests.
//!
//! What the full driver does for such a socket, and so this one: events in order (`Open`,
//! `Message`s, `Error` before a failed attempt's close, `Close` last); the cause of a close
//! (`Application` once the application closed it, `HandshakeFailed` if it never opened,
//! `Remote` otherwise); a close while connecting lets the attempt go and reports the
//! application's close after the call returns (on a timer due at once); `reconnect_now` after
//! a close that was not the application's starts a new attempt on the next tick; the
//! streams end after the last close, and one made after it ends at once.

use std::any::Any;
use std::cell::{Cell, Ref, RefCell};
#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::time::Duration;

use crate::error::Error;
use crate::event::Event;
use crate::inbox::Streams;
use crate::link::{self, Connection};
use crate::message::{CloseCause, CloseEvent, Message, Sent, State};
#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
use crate::socket::DEFAULT_RECEIVE_LIMIT;
use crate::socket::{DEFAULT_HIGH_WATER_MARK, Driver, WebSocket};
use crate::timer::Timeout;
use crate::transport::{Listener, Options};

/// What every attempt of a thin socket opens with.
static DEFAULTS: Options = Options::DEFAULT;

/// Where a thin socket is in its life: the core's phases that a socket without reconnection,
/// hooks or watch can be in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Open,
    /// The application's close is under way.
    Closing,
    /// Closed, and `reconnect_now` asked for an attempt: it starts on the next tick.
    Waiting,
    /// Closed for good (its last events may still wait for the tick: see `ending`).
    Finished,
}

/// A thin socket: see the module's documentation.
pub(crate) struct Thin {
    /// The URL as given: each attempt's.
    given: String,
    link: RefCell<Option<Connection>>,
    phase: Cell<Phase>,
    /// The application closed it: never reconnected after.
    closed_by_app: Cell<bool>,
    /// The current attempt opened.
    opened: Cell<bool>,
    streams: Streams,
    /// The application's close, made while there was no connection to close: delivered by
    /// the timer, after the call returns.
    ending: Cell<Option<CloseEvent>>,
    /// The one timer: due at once, for `ending` or the attempt `reconnect_now` asked for.
    timer: Cell<Option<Timeout>>,
}

/// Opens a thin socket to `url`: its attempt is made before this returns, and a URL the
/// transport refuses is the error.
pub(crate) fn connect(url: &str) -> Result<WebSocket, Error> {
    let thin = Rc::new(Thin {
        given: url.to_owned(),
        link: RefCell::new(None),
        phase: Cell::new(Phase::Connecting),
        closed_by_app: Cell::new(false),
        opened: Cell::new(false),
        streams: Streams::default(),
        ending: Cell::new(None),
        timer: Cell::new(None),
    });
    thin.open()?;
    Ok(WebSocket { driver: thin })
}

impl Thin {
    /// Opens a connection to the given URL, and makes it the current one.
    fn open(self: &Rc<Self>) -> Result<(), Error> {
        let listener: Weak<Thin> = Rc::downgrade(self);
        let link = Connection::open(listener, &self.given, &DEFAULTS)?;
        self.streams.set_url(link.url());
        drop(self.link.replace(Some(link)));
        Ok(())
    }

    /// Reads the current connection; `T::default()` when there is none.
    fn with_link<T: Default>(&self, read: impl FnOnce(&Connection) -> T) -> T {
        let link = self.link.try_borrow();
        (link.ok())
            .and_then(|link| link.as_ref().map(read))
            .unwrap_or_default()
    }

    /// Lets the connection go: it closes with 1000, and reports nothing more.
    fn release(&self) {
        drop(self.link.replace(None));
    }

    /// The transport's own state: `Closed` when there is none.
    fn link_state(&self) -> State {
        self.with_link(|link| Some(link.state()))
            .unwrap_or(State::Closed)
    }

    /// Whether an attempt is under way whose close is yet to come.
    fn linked(&self) -> bool {
        matches!(
            self.phase.get(),
            Phase::Connecting | Phase::Open | Phase::Closing
        )
    }

    /// Gives `event` to every stream.
    fn deliver(&self, event: Event) {
        drop(self.streams.deliver(event, false));
    }

    /// Closed for good, unless restarted: the streams end; closed by the application, the
    /// timer goes too.
    fn finish(&self) {
        self.streams.end();
        if self.closed_by_app.get() {
            drop(self.timer.take());
        }
    }

    /// The connection is over (the transport already let go of): why, then the close.
    fn closed_now(&self, mut event: CloseEvent) {
        if event.cause == CloseCause::Remote {
            if self.closed_by_app.get() {
                event.cause = CloseCause::Application;
            } else if !self.opened.get() {
                event.cause = CloseCause::HandshakeFailed;
            }
        }
        self.phase.set(Phase::Finished);
        self.deliver(Event::Close(event));
        self.finish();
    }

    /// Sets the timer, due at once, unless it is set: `ring` is what it then does. Given by
    /// the caller, so that a program that never calls `reconnect_now` carries no attempt made
    /// by the timer.
    fn arm(self: &Rc<Self>, ring: fn(&Rc<Thin>)) {
        let timer = self.timer.take();
        let timer = timer.unwrap_or_else(|| {
            let weak = Rc::downgrade(self);
            Timeout::new(Duration::ZERO, move || {
                if let Some(thin) = weak.upgrade() {
                    // A timer dropped from its own callback is freed once the callback
                    // returns.
                    let fired = thin.timer.take();
                    ring(&thin);
                    drop(fired);
                }
            })
        });
        self.timer.set(Some(timer));
    }

    /// The timer `close_with` set fired: the application's close is delivered. Whether there
    /// was one.
    fn end(self: &Rc<Self>) -> bool {
        let Some(close) = self.ending.take() else {
            return false;
        };
        self.deliver(Event::Close(close));
        self.finish();
        true
    }

    /// The timer `reconnect_now` set fired: the application's close is delivered if it closed
    /// the socket meanwhile (`close_with` kept this timer), otherwise the attempt made.
    fn reattempt(self: &Rc<Self>) {
        if self.end() || self.phase.get() != Phase::Waiting {
            return;
        }
        self.phase.set(Phase::Connecting);
        self.opened.set(false);
        if let Err(error) = self.open() {
            // The transport refused the URL: a failed attempt, with an error event and a
            // close whose reason says why.
            let reason = error.into_refusal_reason();
            self.deliver(Event::Error);
            let failed = CloseEvent::new(1006, reason, false);
            self.closed_now(failed.with_cause(CloseCause::HandshakeFailed));
        }
    }
}

impl Driver for Thin {
    fn into_any(self: Rc<Self>) -> Rc<dyn Any> {
        self
    }

    fn send(self: Rc<Self>, message: Message) -> Result<Sent, Error> {
        let state = self.state();
        if state != State::Open {
            return Err(Error::NotOpen(state));
        }
        match self.link.try_borrow().as_deref() {
            Ok(Some(link)) => match link.send(message) {
                Ok(()) => Ok(Sent::Now),
                Err(unsent) => Err(unsent.error),
            },
            _ => Err(Error::NotOpen(State::Closed)),
        }
    }

    fn streams(&self) -> &Streams {
        &self.streams
    }

    fn close_with(self: Rc<Self>, code: u16, reason: &str) {
        if self.closed_by_app.replace(true) {
            return;
        }
        match self.phase.get() {
            Phase::Open => {
                self.phase.set(Phase::Closing);
                // Checked by the handle: the transport takes them.
                self.with_link(|link| link.close(code, reason));
            }
            // Nothing to close yet: the attempt is let go, and the application's close
            // reported as it asked, after this call returns.
            Phase::Connecting | Phase::Waiting => {
                self.release();
                self.phase.set(Phase::Finished);
                let own = CloseEvent::new(code, reason, true).with_cause(CloseCause::Application);
                self.ending.set(Some(own));
                self.arm(|thin| {
                    thin.end();
                });
            }
            // Closed for good already: let go of the timer (the full driver's callbacks).
            Phase::Finished => drop(self.timer.take()),
            Phase::Closing => {}
        }
    }

    fn state(&self) -> State {
        // The transport is closed before its close event is handled here (an error event
        // comes first): until then, the close is under way.
        let closing = matches!(self.link_state(), State::Closing | State::Closed);
        match self.phase.get() {
            Phase::Connecting if closing => State::Closing,
            Phase::Connecting => State::Connecting,
            Phase::Open if closing => State::Closing,
            Phase::Open => State::Open,
            Phase::Closing => State::Closing,
            Phase::Waiting => State::Reconnecting,
            Phase::Finished => State::Closed,
        }
    }

    /// Open under the high-water mark; otherwise only while connecting does a send wait (for
    /// the first connection), as without reconnection in the full driver.
    fn ready_to_send(&self) -> bool {
        match self.state() {
            State::Open => self.with_link(Connection::buffered_amount) <= DEFAULT_HIGH_WATER_MARK,
            state => state != State::Connecting,
        }
    }

    /// A thin socket does not follow the network (`Builder::follow_network` does).
    #[cfg(all(not(target_arch = "wasm32"), any(test, feature = "fuzzing")))]
    fn network_for_test(self: Rc<Self>, _: crate::tests::sim::Network) {}
}

/// What the handle's methods that are not in the vtable ask of a thin socket (`handle.rs`).
impl Thin {
    /// Without a reconnection policy, as the full driver: after a close that was not the
    /// application's, a new attempt on the next tick (the streams made before have ended).
    pub(crate) fn reconnect_now(self: &Rc<Self>) {
        if self.closed_by_app.get() || !matches!(self.phase.get(), Phase::Finished | Phase::Waiting)
        {
            return;
        }
        self.phase.set(Phase::Waiting);
        self.streams.restart();
        self.arm(Thin::reattempt);
    }

    /// See `WebSocket::transport`.
    pub(crate) fn transport() -> crate::Transport {
        link::kind(&DEFAULTS)
    }

    /// The current connection, if there is one.
    pub(crate) fn link(&self) -> Option<Ref<'_, Connection>> {
        let link = self.link.try_borrow().ok()?;
        Ref::filter_map(link, Option::as_ref).ok()
    }
}

impl Listener for Thin {
    fn opened(self: Rc<Self>) {
        if self.phase.get() != Phase::Connecting {
            return;
        }
        self.phase.set(Phase::Open);
        self.opened.set(true);
        self.deliver(Event::Open);
    }

    fn received(self: Rc<Self>, message: Message) {
        if matches!(self.phase.get(), Phase::Open | Phase::Closing) {
            self.deliver(Event::Message(message));
        }
    }

    fn failed(self: Rc<Self>, ended: bool) {
        if !self.linked() {
            return;
        }
        if ended {
            // No close follows (WebKit's error for an attempt it refuses itself): the attempt
            // is let go, and fails as elsewhere.
            self.release();
            self.deliver(Event::Error);
            let failed = CloseEvent::new(1006, "", false);
            self.closed_now(failed.with_cause(CloseCause::HandshakeFailed));
        } else {
            self.deliver(Event::Error);
        }
    }

    fn closed(self: Rc<Self>, event: CloseEvent) {
        if self.linked() {
            self.release();
            self.closed_now(event);
        }
    }

    #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
    fn may_read(&self) -> bool {
        self.streams.has_room(DEFAULT_RECEIVE_LIMIT)
    }

    #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
    fn wait_for_room(self: Rc<Self>) -> Pin<Box<dyn Future<Output = ()>>> {
        self.streams.wait_for_room(&self, Self::may_read)
    }
}
