//! The socket's whole behaviour as a plain value that does no I/O and reads no clock, in the
//! manner of quinn-proto and rustls: phases, attempts and backoff, the queue and what it
//! could not send, close validation and causes, the connect timeout and the heartbeat
//! (`watch.rs`), network changes, the receive limit, the application's `should_reconnect` and
//! URL provider requests.
//!
//! The driver (`socket.rs`) feeds it what happened: the application's calls (`send`,
//! `close`, `reconnect_now`), the transport's events (`opened`, `received`, `failed`,
//! `closed`, `refused`), the time (`handle_timeout`), the network (`online`, `offline`,
//! `visible`) and the answers to its questions (`url_provided`, `decided`). It takes back
//! [`Action`]s from [`Core::poll`], in order, and sets one timer for [`Core::poll_timeout`].
//! Time is milliseconds on any clock that does not run backwards by much (`Date.now()` in
//! the browser); a clock that does only makes timers fire early or late, never panic.
//!
//! Calls of the application's never deliver an event while they run: what they cause is
//! deferred to a timer due at once, as the browser does with its own events.

use std::collections::VecDeque;
use std::time::Duration;

use crate::error::Error;
use crate::event::{Event, Unsent};
use crate::message::{CloseCause, CloseEvent, Message, Reconnecting, State};
use crate::queue::Queue;
use crate::reconnect::Reconnect;
pub(crate) use crate::watch::{Millis, millis};
use crate::watch::{Verdict, Watch};

/// How long a drain waits before looking again at a buffer over the high-water mark: browsers
/// have no event for a draining buffer.
pub(crate) const DRAIN_PAUSE: Millis = 16;

/// A deadline that never comes: cheaper than an `Option` in the page's code.
pub(crate) const NEVER: Millis = Millis::MAX;

/// What a socket is configured with.
pub(crate) struct Config {
    pub(crate) reconnect: Option<Reconnect>,
    pub(crate) high_water_mark: u32,
    /// With the browser's `WebSocket`, which cannot stop reading: a message that finds a
    /// stream this full gives the connection up.
    pub(crate) receive_limit: Option<usize>,
    /// Asks the application whether to reconnect (`Action::Decide`, [`decide`]): set by
    /// `Builder::should_reconnect`, so that an application without it carries none of this.
    pub(crate) decide: Option<fn(&mut Core, CloseEvent)>,
    /// Asks each reconnection attempt's URL (`Action::AskUrl`, [`ask_url`]): set by
    /// `Builder::url_provider_async`, likewise.
    pub(crate) ask_url: Option<fn(&mut Core, Millis)>,
    /// Gives the connection up for a message that found a stream full ([`overflow`]): set by
    /// `Builder::receive_limit`, likewise.
    pub(crate) overflow: Option<fn(&mut Core)>,
    /// Fails a handshake in which the server chose none of the offered subprotocols
    /// ([`unchosen`]): set by `Builder::protocols`, likewise.
    pub(crate) unchosen: Option<fn(&mut Core)>,
    /// The connect timeout and the heartbeat, when asked for: made only by the builder
    /// methods that ask, so that an application that does not carries none of their code.
    pub(crate) watch: Option<Box<dyn Watch>>,
    /// What the watch's verdicts do ([`judge`]): set with the watch, by the same builder
    /// methods, so that its code too stays out of applications without one.
    pub(crate) judge: Option<fn(&mut Core, Millis, bool)>,
    /// The reconnection policy's verdict after a close ([`next_attempt`]): set by
    /// `Builder::reconnect`, so that an application that never reconnects carries none of it.
    pub(crate) next_attempt: Option<NextAttempt>,
    /// Queues what is sent while not open ([`enqueue`]): set by `Builder::reconnect`, likewise.
    pub(crate) enqueue: Option<Enqueue>,
    /// The seed of the backoff's jitter.
    pub(crate) seed: u64,
}

/// [`next_attempt`]'s shape: after a close at this time with this code, (un)wanted.
pub(crate) type NextAttempt = fn(&mut Core, Millis, u16, bool) -> Next;
/// [`enqueue`]'s shape: a message sent in this state.
pub(crate) type Enqueue = fn(&mut Core, Message, State) -> Result<(), Error>;

/// What the driver is to do, in order.
#[derive(Debug, PartialEq)]
pub(crate) enum Action {
    /// Open a transport to this URL. It answers with `opened`, `failed` and `closed`; one
    /// that cannot be made at all, with `refused`.
    Open(String),
    /// Ask the URL provider; answer with `url_provided` and this number.
    AskUrl(u32),
    /// Ask the application whether to reconnect after this close; answer with `decided`.
    Decide(CloseEvent),
    /// Start the transport's close handshake.
    Close(u16, String),
    /// Let the transport go: it closes with 1000, and reports nothing more.
    Release,
    /// Hand queued messages to the transport: [`Core::drain_next`] until it says no more.
    Drain,
    /// Send the heartbeat's ping, around the queue; a refusal does not matter.
    Ping(Message),
    /// Give the event to the streams and the callbacks.
    Deliver(Event),
    /// Closed and every event delivered: end the streams; `for_good` (closed by the
    /// application), let go of the callbacks and listeners too.
    Finish { for_good: bool },
}

/// What waits to be polled: actions, and steps decided only when their turn comes, since a
/// callback of an earlier event may change what they should be.
#[derive(Debug)]
enum Step {
    Act(Action),
    /// Announced only if the attempt still waits (the close callback may have closed it).
    Announce(Reconnecting),
    /// The transport's close, once the error event before it is delivered.
    Closed(CloseEvent),
    /// Unless restarted meanwhile: what is queued comes back, then `Action::Finish`.
    Finish,
}

/// Where a socket is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A transport is opening.
    Connecting,
    Open,
    /// The application's close is under way.
    Closing,
    /// The transport closed; the application is asked whether to reconnect.
    Deciding,
    /// Closed; the next attempt at this time, or held while offline ([`NEVER`]).
    Waiting(Millis),
    /// Waiting for the URL of the next attempt, asked with this number.
    Asking(u32),
    /// The transport refused the attempt's URL: its error event is being delivered, its
    /// close follows.
    Refused,
    /// Closed for good.
    Finished,
}

/// The socket's behaviour; see the module's documentation.
pub(crate) struct Core {
    config: Config,
    /// The URL of the next attempt.
    url: String,
    phase: Phase,
    closed_by_app: bool,
    /// The browser said it is offline, and not online since.
    offline: bool,
    /// Reconnection attempts since the last connection that stayed up.
    attempt: u32,
    /// When the current connection opened; [`NEVER`] if it did not.
    opened_at: Millis,
    /// The latest time the driver told.
    now: Millis,
    queue: Queue,
    steps: VecDeque<Step>,
    /// What arose inside a call of the application's, and waits for `tick`.
    deferred: VecDeque<Step>,
    /// When `deferred` is due; [`NEVER`] when nothing waits.
    tick: Millis,
    /// When to look again at a buffer that was over the high-water mark.
    drain_at: Millis,
    asked: u32,
    /// `Action::Finish` was given, and nothing restarted the socket since.
    finished: bool,
    /// The close being decided on.
    deciding: Option<CloseEvent>,
    random: u64,
}

impl Core {
    /// A core whose first attempt (and every other, unless a provider gives a URL) is to
    /// `url`.
    pub(crate) fn new(config: Config, url: String) -> Core {
        Core {
            url,
            // xorshift never leaves zero.
            random: config.seed | 1,
            config,
            phase: Phase::Connecting,
            closed_by_app: false,
            offline: false,
            attempt: 0,
            opened_at: NEVER,
            now: 0,
            queue: Queue::default(),
            steps: VecDeque::new(),
            deferred: VecDeque::new(),
            tick: NEVER,
            drain_at: NEVER,
            asked: 0,
            finished: false,
            deciding: None,
        }
    }

    // ---- What the driver asks -------------------------------------------------------------

    /// The first attempt, which the driver opens itself, to the configured URL: no
    /// `Action::Open`.
    pub(crate) fn connect(&mut self, now: Millis) {
        self.now = now;
        if let Some(watch) = &mut self.config.watch {
            watch.attempt(now);
        }
    }

    /// The next thing to do.
    pub(crate) fn poll(&mut self) -> Option<Action> {
        loop {
            match self.steps.pop_front()? {
                Step::Act(action) => return Some(action),
                Step::Announce(next) => {
                    if matches!(self.phase, Phase::Waiting(at) if at != NEVER) {
                        return Some(Action::Deliver(Event::Reconnecting(next)));
                    }
                }
                Step::Closed(event) => {
                    if self.linked() {
                        self.closed_now(self.now, event);
                    }
                }
                Step::Finish => self.finish(),
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due; [`NEVER`] if it is not.
    pub(crate) fn poll_timeout(&self) -> Millis {
        let reopen = match self.phase {
            Phase::Waiting(at) => at,
            _ => NEVER,
        };
        let watch = (self.config.watch.as_ref()).and_then(|watch| watch.deadline());
        (self.tick.min(self.drain_at))
            .min(reopen)
            .min(watch.unwrap_or(NEVER))
    }

    /// The state the application sees, given the transport's (the browser's socket may be
    /// closing before its close event comes).
    pub(crate) fn state(&self, link: State) -> State {
        // The browser's socket is closed before its close event (an error event comes first)
        // is handled here: until then, the close is under way.
        let closing = matches!(link, State::Closing | State::Closed);
        match self.phase {
            Phase::Connecting if closing => State::Closing,
            Phase::Connecting => State::Connecting,
            Phase::Open if closing => State::Closing,
            Phase::Open => State::Open,
            Phase::Closing | Phase::Deciding => State::Closing,
            Phase::Waiting(_) | Phase::Asking(_) | Phase::Refused => State::Reconnecting,
            Phase::Finished => State::Closed,
        }
    }

    /// Messages waiting for the next connection.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether a send now would neither wait for the connection nor grow the transport's
    /// buffer (`buffered` bytes) or the queue past their bounds.
    pub(crate) fn ready_to_send(&self, link: State, buffered: u32) -> bool {
        let state = self.state(link);
        if state == State::Open && self.queue.is_empty() {
            return buffered <= self.config.high_water_mark;
        }
        match self.queue_policy(state) {
            Some(policy) => !self.queue.is_full(policy.queue_capacity, policy.overflow),
            // Without reconnection, wait for the first connection; otherwise the send fails
            // at once.
            None => state != State::Connecting,
        }
    }

    /// The limit under which a pulling transport reads: [`DEFAULT_RECEIVE_LIMIT`] unless
    /// the application set one.
    ///
    /// [`DEFAULT_RECEIVE_LIMIT`]: crate::DEFAULT_RECEIVE_LIMIT
    #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
    pub(crate) fn read_limit(&self) -> usize {
        (self.config.receive_limit).unwrap_or(crate::DEFAULT_RECEIVE_LIMIT)
    }

    /// The limit past which a message on a transport that cannot stop reading gives the
    /// connection up; `None` when the application set none.
    pub(crate) fn overflow_limit(&self) -> Option<usize> {
        self.config.receive_limit
    }

    // ---- The application's calls ---------------------------------------------------------

    /// A send: `Ok(Some(message))` to hand to the transport now, `Ok(None)` if queued.
    pub(crate) fn send(&mut self, message: Message, link: State) -> Result<Option<Message>, Error> {
        let state = self.state(link);
        if state == State::Open && self.queue.is_empty() {
            return Ok(Some(message));
        }
        match self.config.enqueue {
            Some(enqueue) => enqueue(self, message, state).map(|()| None),
            None => Err(Error::NotOpen(state)),
        }
    }

    /// The application's close, whose code and reason the handle checked as the browser
    /// checks them. Never reconnected after.
    pub(crate) fn close(&mut self, code: u16, reason: &str) {
        let first = !self.closed_by_app;
        self.closed_by_app = true;
        let own = || CloseEvent::new(code, reason, true).with_cause(CloseCause::Application);
        match self.phase {
            Phase::Open => {
                self.phase = Phase::Closing;
                let close = Action::Close(code, reason.to_owned());
                self.steps.push_back(Step::Act(close));
            }
            // Nothing to close yet: the attempt is let go, and the application's close
            // reported as it asked, as while waiting to reconnect.
            Phase::Connecting => {
                self.steps.push_back(Step::Act(Action::Release));
                self.end_with(own());
            }
            Phase::Waiting(_) | Phase::Asking(_) | Phase::Refused => self.end_with(own()),
            // Kept for `reconnect_now` until now: let go of everything.
            Phase::Finished if first && self.finished => {
                self.defer(Step::Act(Action::Finish { for_good: true }));
            }
            Phase::Closing | Phase::Deciding | Phase::Finished => {}
        }
    }

    /// The next attempt now: while waiting, without the rest of the backoff; once closed for
    /// good (not by the application), starting again from the first attempt.
    pub(crate) fn reconnect_now(&mut self) {
        if self.closed_by_app {
            return;
        }
        match self.phase {
            Phase::Waiting(_) => {}
            // The attempt is under way already, waiting for its URL: one attempt, one URL.
            Phase::Asking(_) => {
                self.offline = false;
                return;
            }
            Phase::Finished => {
                self.attempt = 0;
                self.finished = false;
                self.steps.retain(|step| !matches!(step, Step::Finish));
            }
            _ => return,
        }
        // Asked for now: offline no more, as far as the attempts go.
        self.offline = false;
        self.phase = Phase::Waiting(self.now);
    }

    /// The next queued message to hand to the transport, whose buffer holds `buffered`
    /// bytes; `None` when the queue is empty, or the buffer is over the high-water mark
    /// (then it looks again shortly).
    pub(crate) fn drain_next(&mut self, now: Millis, buffered: u32) -> Option<Message> {
        self.now = now;
        if !matches!(self.phase, Phase::Open) || self.queue.is_empty() {
            return None;
        }
        if buffered > self.config.high_water_mark {
            self.drain_at = now + DRAIN_PAUSE;
            return None;
        }
        self.queue.pop()
    }

    /// The transport refused a message it was handed from the queue.
    pub(crate) fn unsent(&mut self, unsent: Unsent) {
        self.defer(Step::Act(Action::Deliver(Event::Unsent(unsent))));
    }

    // ---- The transport's events ----------------------------------------------------------

    /// The transport opened. `unchosen`: subprotocols were offered and the server picked
    /// none, so the handshake fails, as the WHATWG standard says.
    pub(crate) fn opened(&mut self, now: Millis, unchosen: bool) {
        self.now = now;
        if !matches!(self.phase, Phase::Connecting) {
            return;
        }
        if unchosen && let Some(unchosen) = self.config.unchosen {
            unchosen(self);
            return;
        }
        self.phase = Phase::Open;
        self.opened_at = now;
        // A connection opened: the browser is online, whatever it said last.
        self.offline = false;
        if let Some(watch) = &mut self.config.watch {
            watch.opened(now);
        }
        // What waited for the connection goes first, then the application hears of it.
        self.steps.push_back(Step::Act(Action::Drain));
        self.steps
            .push_back(Step::Act(Action::Deliver(Event::Open)));
    }

    /// A message came. `is_reply`: the heartbeat's `reply` predicate holds for it. `full`:
    /// a stream holds [`overflow_limit`](Self::overflow_limit) events already.
    pub(crate) fn received(&mut self, message: Message, is_reply: bool, full: bool) {
        if !matches!(self.phase, Phase::Open | Phase::Closing) {
            return;
        }
        let own = (self.config.watch.as_mut()).is_some_and(|watch| watch.heard(&message, is_reply));
        if own {
            return;
        }
        if full && let Some(overflow) = self.config.overflow {
            overflow(self);
            return;
        }
        self.steps
            .push_back(Step::Act(Action::Deliver(Event::Message(message))));
    }

    /// The transport reported an error; its close follows, unless `ended` (WebKit's error
    /// for an attempt it refuses itself comes alone): then the transport is let go of, and
    /// the attempt fails as it does elsewhere, with an error and then a close with 1006.
    pub(crate) fn failed(&mut self, now: Millis, ended: bool) {
        self.now = now;
        if !self.linked() {
            return;
        }
        if ended {
            self.abandon(String::new());
        } else {
            self.steps
                .push_back(Step::Act(Action::Deliver(Event::Error)));
        }
    }

    /// The transport closed.
    pub(crate) fn closed(&mut self, now: Millis, event: CloseEvent) {
        self.now = now;
        if self.linked() {
            self.give_up(now, event);
        }
    }

    /// The transport could not be made (the browser refused the URL): a failed attempt, with
    /// an error event and a close whose reason says why.
    pub(crate) fn refused(&mut self, now: Millis, reason: String) {
        self.now = now;
        if !matches!(self.phase, Phase::Connecting) {
            return;
        }
        // As while waiting: the application's calls in the error callback see `Reconnecting`.
        self.phase = Phase::Refused;
        self.fail_handshake(reason);
    }

    // ---- Time, the network, and answers --------------------------------------------------

    /// The timer fired. `reader_behind`: the transport holds back for a slow reader, so a
    /// reply may wait unread.
    pub(crate) fn handle_timeout(&mut self, now: Millis, reader_behind: bool) {
        self.now = now;
        if self.tick <= now {
            self.tick = NEVER;
            move_all(&mut self.deferred, &mut self.steps);
        }
        if self.drain_at <= now {
            self.drain_at = NEVER;
            self.steps.push_back(Step::Act(Action::Drain));
        }
        if let Phase::Waiting(at) = self.phase
            && at <= now
        {
            self.reopen(now);
        }
        self.watch(now, reader_behind);
    }

    /// The browser is online again: an attempt that waits starts now.
    #[cfg_attr(
        all(not(target_arch = "wasm32"), not(any(test, feature = "fuzzing"))),
        allow(dead_code)
    )]
    pub(crate) fn online(&mut self, now: Millis) {
        self.now = now;
        self.offline = false;
        if let Phase::Waiting(_) = self.phase {
            self.phase = Phase::Waiting(now);
        }
    }

    /// The browser went offline: the connection is given up, and no attempt is made (or
    /// spent) until it is online.
    #[cfg_attr(
        all(not(target_arch = "wasm32"), not(any(test, feature = "fuzzing"))),
        allow(dead_code)
    )]
    pub(crate) fn offline(&mut self, now: Millis) {
        self.now = now;
        self.offline = true;
        match self.phase {
            Phase::Connecting | Phase::Open => {
                let offline = CloseEvent::new(1006, "offline", false);
                self.give_up(now, offline.with_cause(CloseCause::Offline));
            }
            Phase::Waiting(_) => self.phase = Phase::Waiting(NEVER),
            _ => {}
        }
    }

    /// The page is visible again: the heartbeat checks the connection now.
    #[cfg_attr(
        all(not(target_arch = "wasm32"), not(any(test, feature = "fuzzing"))),
        allow(dead_code)
    )]
    pub(crate) fn visible(&mut self, now: Millis, reader_behind: bool) {
        self.now = now;
        if !matches!(self.phase, Phase::Open) {
            return;
        }
        if let Some(watch) = &mut self.config.watch {
            watch.visible(now);
        }
        self.watch(now, reader_behind);
    }

    /// The URL provider answered request `ask`.
    pub(crate) fn url_provided(&mut self, now: Millis, ask: u32, url: String) {
        self.now = now;
        if let Phase::Asking(asked) = self.phase
            && asked == ask
        {
            self.url = url;
            self.open_attempt(now);
        }
    }

    /// The application decided whether to reconnect after the close it was asked about.
    pub(crate) fn decided(&mut self, now: Millis, reconnect: bool) {
        self.now = now;
        if !matches!(self.phase, Phase::Deciding) {
            return;
        }
        if let Some(event) = self.deciding.take() {
            self.after_close(now, event, reconnect);
        }
    }

    // ---- Inside --------------------------------------------------------------------------

    /// Whether an attempt is under way whose close is yet to come (opening, open, closing,
    /// or refused).
    fn linked(&self) -> bool {
        matches!(
            self.phase,
            Phase::Connecting | Phase::Open | Phase::Closing | Phase::Refused
        )
    }

    /// The reconnection policy, if a send in `state` (other than an open connection with
    /// nothing queued) goes to the queue: with reconnection on, until the socket is closed
    /// for good or by the application.
    fn queue_policy(&self, state: State) -> Option<&Reconnect> {
        let policy = self.config.reconnect.as_ref()?;
        (!self.closed_by_app && state != State::Closed).then_some(policy)
    }

    /// The attempt failed before it opened: an error event, then a close whose reason says
    /// why.
    fn fail_handshake(&mut self, reason: String) {
        self.steps
            .push_back(Step::Act(Action::Deliver(Event::Error)));
        let failed = CloseEvent::new(1006, reason, false);
        self.steps
            .push_back(Step::Closed(failed.with_cause(CloseCause::HandshakeFailed)));
    }

    /// Lets the transport go, and fails the attempt as [`fail_handshake`] does: the close
    /// decided only after the error callback, which may close the socket itself.
    ///
    /// [`fail_handshake`]: Self::fail_handshake
    fn abandon(&mut self, reason: String) {
        self.steps.push_back(Step::Act(Action::Release));
        self.fail_handshake(reason);
    }

    /// Lets the transport go, and ends the connection with `event`.
    fn give_up(&mut self, now: Millis, event: CloseEvent) {
        self.steps.push_back(Step::Act(Action::Release));
        self.closed_now(now, event);
    }

    /// Delivered by the next tick, due now: never inside the application's call.
    fn defer(&mut self, step: Step) {
        self.deferred.push_back(step);
        if self.tick == NEVER {
            self.tick = self.now;
        }
    }

    /// Ends the socket with the application's close, reported after its call returns.
    fn end_with(&mut self, event: CloseEvent) {
        self.phase = Phase::Finished;
        if let Some(watch) = &mut self.config.watch {
            watch.ended();
        }
        self.defer(Step::Act(Action::Deliver(Event::Close(event))));
        self.defer(Step::Finish);
    }

    /// Asks the watch what its deadlines say, if there is one.
    fn watch(&mut self, now: Millis, reader_behind: bool) {
        if let Some(judge) = self.config.judge {
            judge(self, now, reader_behind);
        }
    }

    /// The connection is over (the transport already let go of): why, then what follows.
    fn closed_now(&mut self, now: Millis, mut event: CloseEvent) {
        self.phase = Phase::Deciding;
        if let Some(watch) = &mut self.config.watch {
            watch.ended();
        }
        self.drain_at = NEVER;
        if event.cause == CloseCause::Remote {
            if self.closed_by_app {
                event.cause = CloseCause::Application;
            } else if self.opened_at == NEVER {
                event.cause = CloseCause::HandshakeFailed;
            }
        }
        // Asked only when a reconnection could follow.
        let reconnects = self.config.reconnect.is_some() && !self.closed_by_app;
        if let Some(decide) = self.config.decide
            && reconnects
        {
            decide(self, event);
            return;
        }
        self.after_close(now, event, true);
    }

    /// Reconnect or finish, then tell. The phase changes first, so that the close callback
    /// sees the state that follows it.
    fn after_close(&mut self, now: Millis, event: CloseEvent, wanted: bool) {
        let next = self.next_attempt(now, event.code, wanted);
        let close = Step::Act(Action::Deliver(Event::Close(event)));
        match next {
            // Offline: no attempt, and none spent; `online` starts the next.
            Next::Hold => {
                self.phase = Phase::Waiting(NEVER);
                self.steps.push_back(close);
            }
            Next::Attempt(next, delay) => {
                let at = now.saturating_add(delay);
                self.phase = Phase::Waiting(at.min(NEVER - 1));
                self.steps.push_back(close);
                self.steps.push_back(Step::Announce(next));
            }
            Next::End => {
                self.phase = Phase::Finished;
                self.steps.push_back(close);
                self.steps.push_back(Step::Finish);
            }
        }
    }

    /// What follows a close with `code`: the next reconnection attempt, if one should be made
    /// ([`next_attempt`], with reconnection on).
    fn next_attempt(&mut self, now: Millis, code: u16, wanted: bool) -> Next {
        match self.config.next_attempt {
            Some(next_attempt) => next_attempt(self, now, code, wanted),
            None => Next::End,
        }
    }

    /// The waiting attempt is due: ask for its URL, or open it.
    fn reopen(&mut self, now: Millis) {
        if let Some(ask_url) = self.config.ask_url {
            ask_url(self, now);
            return;
        }
        self.open_attempt(now);
    }

    /// Opens an attempt to the URL now set, unless offline (then it is held).
    fn open_attempt(&mut self, now: Millis) {
        if self.offline {
            self.phase = Phase::Waiting(NEVER);
            return;
        }
        self.phase = Phase::Connecting;
        self.opened_at = NEVER;
        if let Some(watch) = &mut self.config.watch {
            watch.attempt(now);
        }
        self.steps
            .push_back(Step::Act(Action::Open(self.url.clone())));
    }

    /// Closed for good, unless restarted: what is still queued comes back, after anything
    /// deferred, then the streams end.
    fn finish(&mut self) {
        if !matches!(self.phase, Phase::Finished) || self.finished {
            return;
        }
        self.finished = true;
        self.tick = NEVER;
        let mut last = std::mem::take(&mut self.deferred);
        for message in self.queue.take() {
            let error = Error::NotOpen(State::Closed);
            let unsent = Event::Unsent(Unsent { message, error });
            last.push_back(Step::Act(Action::Deliver(unsent)));
        }
        let for_good = self.closed_by_app;
        last.push_back(Step::Act(Action::Finish { for_good }));
        // Before whatever else waits.
        move_all(&mut self.steps, &mut last);
        self.steps = last;
    }

    /// xorshift64*: enough for jitter, and the same sequence for the same seed in tests.
    fn next_random(&mut self) -> f64 {
        let mut x = self.random;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Carries out what the watch's deadlines say at `now`, as long as it has something to say:
/// pings, and the end of a connection that is dead or did not open in time.
pub(crate) fn judge(core: &mut Core, now: Millis, reader_behind: bool) {
    let state = core.state(State::Open);
    while let Some(verdict) =
        (core.config.watch.as_mut()).and_then(|watch| watch.expired(now, state, reader_behind))
    {
        match verdict {
            Verdict::Ping(message) => core.steps.push_back(Step::Act(Action::Ping(message))),
            Verdict::Dead(event) => {
                match core.phase {
                    Phase::Connecting | Phase::Open => core.give_up(now, event),
                    // The URL did not come in time: a failed attempt; the URL, if it
                    // comes, goes unused.
                    Phase::Asking(_) => core.closed_now(now, event),
                    _ => {}
                }
                return;
            }
        }
    }
}

/// Asks the application whether to reconnect after `event`: the [`Config::decide`] that
/// `Builder::should_reconnect` sets.
pub(crate) fn decide(core: &mut Core, event: CloseEvent) {
    core.deciding = Some(event.clone());
    core.steps.push_back(Step::Act(Action::Decide(event)));
}

/// Asks for the URL of the attempt that is due: the [`Config::ask_url`] that
/// `Builder::url_provider_async` sets.
pub(crate) fn ask_url(core: &mut Core, now: Millis) {
    core.asked = core.asked.wrapping_add(1);
    core.phase = Phase::Asking(core.asked);
    if let Some(watch) = &mut core.config.watch {
        // The connect timeout covers the wait for the URL too.
        watch.attempt(now);
    }
    core.steps.push_back(Step::Act(Action::AskUrl(core.asked)));
}

/// Gives the connection up for a message that found a stream at the receive limit: the
/// [`Config::overflow`] that `Builder::receive_limit` sets.
pub(crate) fn overflow(core: &mut Core) {
    let overflow = CloseEvent::new(1008, "receive limit exceeded", false);
    core.give_up(core.now, overflow.with_cause(CloseCause::ReceiveOverflow));
}

/// Fails the handshake in which the server chose none of the offered subprotocols, as the
/// WHATWG standard says (Firefox and WebKit open it all the same): the [`Config::unchosen`]
/// that `Builder::protocols` sets.
pub(crate) fn unchosen(core: &mut Core) {
    let reason = "the server chose none of the offered subprotocols";
    core.abandon(reason.to_owned());
}

/// What follows a close with `code` under the reconnection policy: the next attempt, if one
/// should be made. `Config::next_attempt`, set by `Builder::reconnect`: the backoff, its jitter
/// and the attempts' count are code only applications that reconnect carry.
pub(crate) fn next_attempt(core: &mut Core, now: Millis, code: u16, wanted: bool) -> Next {
    let Some(policy) = core.config.reconnect.as_ref() else {
        return Next::End;
    };
    // Not `contains`, whose unrolled search for `u16`s every reconnecting page would carry.
    #[allow(clippy::manual_contains)]
    let final_code = policy
        .final_codes
        .iter()
        .any(|&final_code| final_code == code);
    if core.closed_by_app || final_code || !wanted {
        return Next::End;
    }
    let opened_at = std::mem::replace(&mut core.opened_at, NEVER);
    if opened_at != NEVER && now.saturating_sub(opened_at) >= millis(policy.reset_after) {
        core.attempt = 0;
    }
    if core.offline {
        return Next::Hold;
    }
    let attempt = core.attempt.saturating_add(1);
    core.attempt = attempt;
    if !policy.allows(attempt) {
        return Next::End;
    }
    let random = core.next_random();
    let delay =
        (core.config.reconnect.as_ref()).map_or(0, |policy| policy.delay_millis(attempt, random));
    Next::Attempt(
        Reconnecting {
            attempt,
            delay: Duration::from_millis(delay),
        },
        delay,
    )
}

/// Queues a message sent while the socket is not open, or while earlier ones still drain,
/// under the reconnection policy. `Config::enqueue`, set by `Builder::reconnect`.
pub(crate) fn enqueue(core: &mut Core, message: Message, state: State) -> Result<(), Error> {
    let Some(policy) = core.queue_policy(state) else {
        return Err(Error::NotOpen(state));
    };
    let (capacity, overflow) = (policy.queue_capacity, policy.overflow);
    if let Some(dropped) = core.queue.push(message, capacity, overflow)? {
        let error = Error::QueueFull { capacity };
        core.defer(Step::Act(Action::Deliver(Event::Unsent(Unsent {
            message: dropped,
            error,
        }))));
    }
    if state == State::Open {
        core.steps.push_back(Step::Act(Action::Drain));
    }
    Ok(())
}

/// Moves every step of `from` to the end of `to`. (By hand: `VecDeque::append` costs the
/// page 700 bytes of code beside the `push_back` and `pop_front` it has already.)
fn move_all(from: &mut VecDeque<Step>, to: &mut VecDeque<Step>) {
    while let Some(step) = from.pop_front() {
        to.push_back(step);
    }
}

/// What follows a close.
pub(crate) enum Next {
    /// The attempt, and its delay in milliseconds.
    Attempt(Reconnecting, Millis),
    /// None yet: the browser is offline.
    Hold,
    End,
}
