//! Model-based tests (issue 23, item 4): random sequences of the application's calls (also
//! from inside every callback), the server's doings, time passing and network changes, on
//! random configurations, run on the simulated transport and clock of `sim.rs` and checked
//! after every step against the invariants the socket promises. proptest draws and shrinks
//! the sequences from a fixed seed (`MODEL_SEED` overrides it); a failure prints the seed and
//! the shrunk sequence, which then becomes a `regression_*` test below.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
#[cfg(test)]
use proptest::prelude::*;
#[cfg(test)]
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use crate::tests::sim::{self, Mark, Network};
use crate::{
    Builder, CloseCause, CloseEvent, Event, Events, Heartbeat, Message, Messages, Overflow,
    Reconnect, Sent, State, WeakWebSocket, WebSocket, live_closures,
};

#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz;

/// initial, max delay, max attempts, reset after, 4001 final, capacity, drop oldest.
type Policy = (u64, u64, Option<u32>, u64, bool, usize, bool);

/// The socket's configuration, drawn at random.
#[derive(Clone, Debug)]
pub(crate) struct Conf {
    /// initial, max delay, max attempts, reset after, 4001 final, capacity, drop oldest.
    reconnect: Option<Policy>,
    /// interval, timeout, with a reply predicate ("pong").
    heartbeat: Option<(u64, u64, bool)>,
    connect_timeout: Option<u64>,
    /// should_reconnect: false for code 4002.
    decides: bool,
    /// None; Some(None): at once; Some(Some(ms)): after ms.
    provider: Option<Option<u64>>,
    receive_limit: Option<usize>,
    protocols: bool,
    high_water_mark: Option<u32>,
}

/// What a callback does, once armed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Api {
    Send,
    Close,
    CloseWith(u16, usize),
    ReconnectNow,
}

/// One step.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Send,
    SendAsync,
    Close,
    CloseWith(u16, usize),
    ReconnectNow,
    CloneHandle,
    DropHandle(usize),
    Events,
    Messages,
    DropStream(usize),
    ReadStreams,
    Closed,
    SinkClose,
    /// The next callback performs this call.
    Arm(Api),
    /// The server accepts the handshake, choosing the offered protocol (or none).
    Open(bool),
    /// The server sends: 0 a message, 1 the ping's echo, 2 the reply "pong".
    Receive(u8),
    /// The connection fails: before it opened, an error and a close; `true`, as WebKit fails
    /// an attempt to a blocked port: an error while connecting, and no close.
    Fail(bool),
    RemoteClose(u16, bool),
    HalfClose,
    Flush,
    /// The URL provider gives URLs the transport refuses, or good ones.
    Refuse(bool),
    Advance(u64),
    Network(Network),
}

const PING: &str = "hb";

#[cfg(test)]
fn close_code() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => Just(1000u16),
        1 => Just(1001u16),
        1 => Just(1005u16),
        1 => Just(2999u16),
        2 => 3000u16..5000,
        1 => Just(4001u16),
        1 => Just(4002u16),
        1 => Just(5000u16),
        1 => Just(0u16),
    ]
}

#[cfg(test)]
fn reason_len() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), Just(3), Just(123), Just(124)]
}

#[cfg(test)]
fn api() -> impl Strategy<Value = Api> {
    prop_oneof![
        Just(Api::Send),
        Just(Api::Close),
        (close_code(), reason_len()).prop_map(|(c, r)| Api::CloseWith(c, r)),
        Just(Api::ReconnectNow),
    ]
}

#[cfg(test)]
pub(crate) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::Send),
        2 => Just(Op::SendAsync),
        1 => Just(Op::Close),
        1 => (close_code(), reason_len()).prop_map(|(c, r)| Op::CloseWith(c, r)),
        2 => Just(Op::ReconnectNow),
        1 => Just(Op::CloneHandle),
        1 => (0usize..3).prop_map(Op::DropHandle),
        1 => Just(Op::Events),
        1 => Just(Op::Messages),
        1 => (0usize..3).prop_map(Op::DropStream),
        2 => Just(Op::ReadStreams),
        1 => Just(Op::Closed),
        1 => Just(Op::SinkClose),
        3 => api().prop_map(Op::Arm),
        8 => any::<bool>().prop_map(Op::Open),
        8 => (0u8..3).prop_map(Op::Receive),
        3 => any::<bool>().prop_map(Op::Fail),
        3 => (close_code(), any::<bool>()).prop_map(|(c, clean)| Op::RemoteClose(c, clean)),
        1 => Just(Op::HalfClose),
        2 => Just(Op::Flush),
        1 => any::<bool>().prop_map(Op::Refuse),
        10 => (1u64..60).prop_map(Op::Advance),
        3 => (100u64..6_000).prop_map(Op::Advance),
        1 => Just(Op::Network(Network::Online)),
        1 => Just(Op::Network(Network::Offline)),
        1 => Just(Op::Network(Network::Visible)),
    ]
}

#[cfg(test)]
pub(crate) fn conf() -> impl Strategy<Value = Conf> {
    // Backoff of at least 5 ms: with none, an attempt that fails at once (a refused URL, a
    // connect timeout of zero) is retried at once, forever, at the same instant.
    let reconnect = proptest::option::weighted(
        0.75,
        (
            10u64..400,
            10u64..3_000,
            proptest::option::of(0u32..5),
            0u64..2_000,
            any::<bool>(),
            0usize..5,
            any::<bool>(),
        ),
    );
    let heartbeat = proptest::option::of((1u64..400, 0u64..600, any::<bool>()));
    let provider = proptest::option::of(proptest::option::of(0u64..300));
    (
        reconnect,
        heartbeat,
        proptest::option::of(0u64..800),
        any::<bool>(),
        provider,
        proptest::option::of(0usize..4),
        any::<bool>(),
        proptest::option::of(0u32..12),
    )
        .prop_map(
            |(
                reconnect,
                heartbeat,
                connect_timeout,
                decides,
                provider,
                receive_limit,
                protocols,
                high_water_mark,
            )| Conf {
                reconnect,
                heartbeat,
                connect_timeout,
                decides,
                provider,
                receive_limit,
                protocols,
                high_water_mark,
            },
        )
}

impl Conf {
    fn policy(&self) -> Option<Reconnect> {
        let (initial, max, attempts, reset, final_code, capacity, drop_oldest) = self.reconnect?;
        let mut policy = Reconnect::new()
            .initial_delay(Duration::from_millis(initial))
            .max_delay(Duration::from_millis(max))
            .reset_after(Duration::from_millis(reset))
            .queue_capacity(capacity)
            .overflow(if drop_oldest {
                Overflow::DropOldest
            } else {
                Overflow::Error
            });
        if let Some(attempts) = attempts {
            policy = policy.max_attempts(attempts);
        }
        if final_code {
            policy = policy.final_code(4001);
        }
        Some(policy)
    }
}

/// What the test knows, shared with the callbacks and the spawned futures.
#[derive(Default)]
struct Ledger {
    /// Every event delivered to the callbacks: the time, how many attempts were made
    /// before it, and the event.
    log: Vec<(u64, usize, Event)>,
    next_id: u64,
    /// The ids of the messages a send accepted, in the order it did.
    accepted: Vec<u64>,
    armed: Option<Api>,
    /// How many attempts there were when the application first closed the socket.
    closed_at: Option<usize>,
    /// When the socket was hurried (`reconnect_now`, online), and how long the log was.
    hurried: Vec<(u64, usize)>,
    /// What `closed()` resolved to, and the last close delivered then.
    closed: Vec<(CloseEvent, Option<CloseEvent>)>,
    refuse: bool,
    /// A send whose `Sent` said otherwise than what became of its message at once.
    misreported: Option<String>,
}

type Shared = Rc<RefCell<Ledger>>;

fn attempts() -> usize {
    sim::with(|world| world.marks.len())
}

fn id_of(message: &Message) -> Option<u64> {
    message.as_text()?.strip_prefix('m')?.parse().ok()
}

fn send(ledger: &Shared, socket: &WebSocket) {
    let id = {
        let mut ledger = ledger.borrow_mut();
        ledger.next_id += 1;
        ledger.next_id
    };
    if let Ok(sent) = socket.send(format!("m{id}")) {
        // `Now`: a connection has it when `send` returns; `Queued`: none has, and it waits.
        let on_wire = sim::with(|world| {
            (world.conns.iter()).any(|conn| conn.sent.iter().any(|(_, m)| id_of(m) == Some(id)))
        });
        let told = match sent {
            Sent::Now => on_wire,
            Sent::Queued => !on_wire && socket.queued() > 0,
        };
        let mut ledger = ledger.borrow_mut();
        if !told {
            let queued = socket.queued();
            ledger.misreported.get_or_insert(format!(
                "m{id}: {sent:?}, but on a connection: {on_wire}, queued: {queued}"
            ));
        }
        ledger.accepted.push(id);
    }
}

fn close_with(ledger: &Shared, socket: &WebSocket, code: u16, reason: usize) {
    let reason = "x".repeat(reason);
    if socket.close_with(code, &reason).is_ok() {
        closed_now(ledger);
    }
}

fn hurry(ledger: &Shared) {
    let mut ledger = ledger.borrow_mut();
    let len = ledger.log.len();
    ledger.hurried.push((sim::now(), len));
}

fn closed_now(ledger: &Shared) {
    let attempts = attempts();
    ledger.borrow_mut().closed_at.get_or_insert(attempts);
}

fn reconnect_now(ledger: &Shared, socket: &WebSocket) {
    hurry(ledger);
    socket.reconnect_now();
}

/// The callbacks: each logs its event, then does what is armed.
fn callbacks(builder: Builder, ledger: &Shared) -> Builder {
    let on = |ledger: &Shared| {
        let ledger = ledger.clone();
        move |socket: &WebSocket, event: Event| {
            let entry = (sim::now(), attempts(), event);
            ledger.borrow_mut().log.push(entry);
            let armed = ledger.borrow_mut().armed.take();
            match armed {
                Some(Api::Send) => send(&ledger, socket),
                Some(Api::Close) => close_with(&ledger, socket, 1000, 0),
                Some(Api::CloseWith(code, reason)) => close_with(&ledger, socket, code, reason),
                Some(Api::ReconnectNow) => reconnect_now(&ledger, socket),
                None => {}
            }
        }
    };
    let (open, message, error, close, reconnect, unsent) = (
        on(ledger),
        on(ledger),
        on(ledger),
        on(ledger),
        on(ledger),
        on(ledger),
    );
    builder
        .on_open(move |s| open(s, Event::Open))
        .on_message(move |s, m| message(s, Event::Message(m)))
        .on_error(move |s| error(s, Event::Error))
        .on_close(move |s, c| close(s, Event::Close(c)))
        .on_reconnect(move |s, r| reconnect(s, Event::Reconnecting(r)))
        .on_unsent(move |s, u| unsent(s, Event::Unsent(u)))
}

fn build(conf: &Conf, ledger: &Shared) -> Builder {
    let mut builder = WebSocket::builder("ws://a");
    if let Some(policy) = conf.policy() {
        builder = builder.reconnect(policy);
    }
    if let Some((interval, timeout, reply)) = conf.heartbeat {
        let mut beat = Heartbeat::new(
            Duration::from_millis(interval),
            Duration::from_millis(timeout),
        )
        .message(PING);
        if reply {
            beat = beat.reply(|m| m.as_text() == Some("pong"));
        }
        builder = builder.heartbeat(beat);
    }
    if let Some(timeout) = conf.connect_timeout {
        builder = builder.connect_timeout(Duration::from_millis(timeout));
    }
    if conf.decides {
        builder = builder.should_reconnect(|close| close.code != 4002);
    }
    if let Some(delay) = conf.provider {
        let ledger = ledger.clone();
        let mut n = 0;
        builder = builder.url_provider_async(move || {
            n += 1;
            let url = if ledger.borrow().refuse {
                format!("ws://refuse/{n}")
            } else {
                format!("ws://a/{n}")
            };
            async move {
                if let Some(delay) = delay {
                    sim::sleep(Duration::from_millis(delay)).await;
                }
                url
            }
        });
    }
    if let Some(limit) = conf.receive_limit {
        builder = builder.receive_limit(limit);
    }
    if conf.protocols {
        builder = builder.protocols(["chat"]);
    }
    if let Some(mark) = conf.high_water_mark {
        builder = builder.high_water_mark(mark);
    }
    callbacks(builder, ledger)
}

/// One sequence on one socket.
struct Run {
    conf: Conf,
    ledger: Shared,
    handles: Vec<WebSocket>,
    weak: WeakWebSocket,
    events: Vec<Events>,
    messages: Vec<Messages>,
    /// How many attempts there were when the last handle went.
    gone_at: Option<usize>,
    /// When the test last held a stream that might be full (the transport then holds back,
    /// and the heartbeat does not judge).
    held_streams_at: Option<u64>,
    visible: Vec<u64>,
    offline: bool,
    /// Whether some handle may have dropped the socket while messages were queued.
    discarded: bool,
}

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

impl Run {
    fn new(conf: Conf) -> Run {
        let ledger = Shared::default();
        let socket = build(&conf, &ledger)
            .connect()
            .expect("the first URL is good");
        Run {
            conf,
            ledger,
            weak: socket.downgrade(),
            handles: vec![socket],
            events: Vec::new(),
            messages: Vec::new(),
            gone_at: None,
            held_streams_at: None,
            visible: Vec::new(),
            offline: false,
            discarded: false,
        }
    }

    fn socket(&self) -> Option<WebSocket> {
        self.weak.upgrade()
    }

    fn step(&mut self, op: &Op) {
        let ledger = self.ledger.clone();
        let socket = self.socket();
        match (op, socket) {
            (Op::Send, Some(s)) => send(&ledger, &s),
            (Op::SendAsync, Some(s)) => {
                let id = {
                    let mut ledger = ledger.borrow_mut();
                    ledger.next_id += 1;
                    ledger.next_id
                };
                sim::spawn(async move {
                    if s.send_async(format!("m{id}")).await.is_ok() {
                        ledger.borrow_mut().accepted.push(id);
                    }
                });
            }
            (Op::Close, Some(s)) => close_with(&ledger, &s, 1000, 0),
            (Op::CloseWith(code, reason), Some(s)) => close_with(&ledger, &s, *code, *reason),
            (Op::ReconnectNow, Some(s)) => reconnect_now(&ledger, &s),
            (Op::CloneHandle, Some(s)) => self.handles.push(s),
            (Op::DropHandle(i), _) if !self.handles.is_empty() => {
                let i = i % self.handles.len();
                if let Some(s) = self.socket()
                    && s.queued() > 0
                {
                    self.discarded = true;
                }
                self.handles.remove(i);
            }
            (Op::Events, Some(s)) => self.events.push(s.events()),
            (Op::Messages, Some(s)) => self.messages.push(s.messages()),
            (Op::DropStream(i), _) => {
                if !self.messages.is_empty() && i % 2 == 1 {
                    let i = i % self.messages.len();
                    self.messages.remove(i);
                } else if !self.events.is_empty() {
                    let i = i % self.events.len();
                    self.events.remove(i);
                }
            }
            (Op::ReadStreams, _) => {
                for events in &mut self.events {
                    while let Some(Some(_)) = events.next().now_or_never() {}
                }
                for messages in &mut self.messages {
                    while let Some(Some(_)) = messages.next().now_or_never() {}
                }
            }
            (Op::Closed, Some(s)) => sim::spawn(async move {
                let close = s.closed().await;
                let mut ledger = ledger.borrow_mut();
                let last = ledger
                    .log
                    .iter()
                    .rev()
                    .find_map(|(_, _, event)| match event {
                        Event::Close(close) => Some(close.clone()),
                        _ => None,
                    });
                ledger.closed.push((close, last));
            }),
            (Op::SinkClose, Some(s)) => {
                closed_now(&ledger);
                sim::spawn(async move {
                    let _ = s.sink().close().await;
                });
            }
            (Op::Arm(api), _) => ledger.borrow_mut().armed = Some(*api),
            (Op::Open(pick), _) => {
                let chosen = if *pick && self.conf.protocols {
                    "chat"
                } else {
                    ""
                };
                sim::open(chosen);
            }
            (Op::Receive(kind), _) => {
                let message = match kind {
                    0 => {
                        let mut ledger = ledger.borrow_mut();
                        ledger.next_id += 1;
                        format!("s{}", ledger.next_id)
                    }
                    1 => PING.to_owned(),
                    _ => "pong".to_owned(),
                };
                sim::receive(Message::Text(message));
            }
            // As WebKit fails an attempt to a blocked port, while connecting; otherwise (or
            // once open) as the other engines fail a connection.
            (Op::Fail(true), _) if sim::fail_without_close() => {}
            (Op::Fail(_), _) => {
                sim::fail();
            }
            (Op::RemoteClose(code, clean), _) => {
                sim::close(CloseEvent::new(*code, "", *clean));
            }
            (Op::HalfClose, _) => {
                sim::half_close();
            }
            (Op::Flush, _) => sim::flush(),
            (Op::Refuse(refuse), _) => ledger.borrow_mut().refuse = *refuse,
            (Op::Advance(ms), _) => sim::advance(*ms),
            (Op::Network(change), Some(s)) => {
                match change {
                    Network::Online => {
                        self.offline = false;
                        hurry(&ledger);
                    }
                    Network::Offline => self.offline = true,
                    Network::Visible => self.visible.push(sim::now()),
                }
                s.driver.clone().network_for_test(*change);
            }
            _ => {}
        }
        sim::settle();
        if self.gone_at.is_none() && self.socket().is_none() {
            self.gone_at = Some(attempts());
        }
        if !self.events.is_empty() || !self.messages.is_empty() {
            self.held_streams_at = Some(sim::now());
        }
    }

    /// Every invariant, after a step.
    fn check(&mut self) -> Check {
        let shared = self.ledger.clone();
        let ledger = shared.borrow();
        let attempts = attempts();
        // Nothing starts after close(), or after the last handle went.
        if let Some(at) = ledger.closed_at {
            ensure!(
                attempts == at,
                "an attempt after close(): {at} before, {attempts} now"
            );
        }
        if let Some(at) = self.gone_at {
            ensure!(attempts == at, "an attempt after the last handle went");
            let all = sim::with(|world| world.conns.iter().all(|conn| conn.released));
            ensure!(all, "a connection still held after the last handle went");
        }
        if let Some(misreported) = &ledger.misreported {
            return Err(format!("send said what did not happen: {misreported}"));
        }
        self.check_messages(&ledger)?;
        self.check_lifecycle(&ledger)?;
        self.check_backoff(&ledger)?;
        self.check_heartbeat(&ledger)?;
        Ok(())
    }

    /// Every accepted message goes to a transport once or comes back once, in order.
    fn check_messages(&self, ledger: &Ledger) -> Check {
        let position = |id: u64| ledger.accepted.iter().position(|&a| a == id);
        let mut seen = std::collections::HashSet::new();
        let mut last = None;
        let (sent, dropped) = sim::with(|world| {
            let sent: Vec<u64> = (world.conns.iter())
                .flat_map(|conn| conn.sent.iter().filter_map(|(_, m)| id_of(m)))
                .collect();
            let dropped: Vec<u64> = (world.conns.iter())
                .flat_map(|conn| conn.dropped.iter().filter_map(id_of))
                .collect();
            (sent, dropped)
        });
        ensure!(
            dropped.is_empty(),
            "accepted messages handed to a closing transport, lost: {dropped:?}"
        );
        for id in sent {
            ensure!(seen.insert(id), "m{id} sent twice");
            let Some(at) = position(id) else {
                return Err(format!("m{id} sent but never accepted"));
            };
            ensure!(last.is_none_or(|last| at > last), "m{id} sent out of order");
            last = Some(at);
        }
        for (_, _, event) in &ledger.log {
            if let Event::Unsent(unsent) = event {
                let Some(id) = id_of(&unsent.message) else {
                    return Err(format!("an unsent message not ours: {unsent:?}"));
                };
                ensure!(seen.insert(id), "m{id} sent or unsent twice");
                ensure!(position(id).is_some(), "m{id} unsent but never accepted");
            }
        }
        Ok(())
    }

    /// Each attempt ends in exactly one Close, after its Open if it opened; the state agrees
    /// with the last event.
    fn check_lifecycle(&self, ledger: &Ledger) -> Check {
        #[derive(Clone, Copy, Debug, PartialEq)]
        enum At {
            Attempting,
            Opened,
            Closed,
            Announced,
            /// The application's close: nothing but what could not be sent follows.
            Ended,
        }
        let mut at = At::Attempting;
        let mut segment = 1;
        let mut last_close = 0;
        for (index, (time, made, event)) in ledger.log.iter().enumerate() {
            ensure!(*made >= 1, "an event before any attempt");
            if *made > segment {
                ensure!(
                    matches!(at, At::Closed | At::Announced | At::Ended),
                    "attempt {made} began at {time} before attempt {segment} closed ({at:?})"
                );
                at = At::Attempting;
                segment = *made;
            }
            at = match (event, at) {
                // The application's close from a close callback, when a reconnection was to
                // follow, is a close of its own (transports.rs
                // close_from_the_close_callback_means_never_again).
                (Event::Close(close), At::Attempting | At::Opened | At::Announced | At::Closed)
                    if close.cause == CloseCause::Application =>
                {
                    At::Ended
                }
                (Event::Open, At::Attempting) => At::Opened,
                (Event::Error, At::Attempting | At::Opened) => at,
                (Event::Close(_), At::Attempting | At::Opened | At::Announced) => At::Closed,
                (Event::Reconnecting(_), At::Closed) => At::Announced,
                // An attempt started by `reconnect_now` once closed is not announced; without
                // a transport (waiting for its URL) it can close again.
                (Event::Close(_), At::Closed)
                    if (ledger.hurried.iter()).any(|&(_, at)| at > last_close && at <= index) =>
                {
                    At::Closed
                }
                (Event::Message(_), At::Opened) => at,
                (Event::Unsent(_), _) => at,
                (event, at) => {
                    return Err(format!(
                        "{event:?} at {time} while {at:?} (attempt {segment})"
                    ));
                }
            };
            if matches!(event, Event::Close(_)) {
                last_close = index;
            }
            if let Event::Message(message) = event {
                if let Some((_, _, reply)) = self.conf.heartbeat {
                    let own = if reply { "pong" } else { PING };
                    ensure!(
                        message.as_text() != Some(own),
                        "the heartbeat's {own} delivered"
                    );
                }
            }
        }
        let Some(socket) = self.socket() else {
            return Ok(());
        };
        let state = socket.state();
        let made = attempts();
        if made > segment {
            // A new attempt, nothing heard of it yet.
            at = At::Attempting;
        }
        let last_error = matches!(ledger.log.last(), Some((_, _, Event::Error)));
        ensure!(!last_error, "an error with no close after it");
        let agrees = match at {
            At::Attempting => state == State::Connecting,
            At::Opened => matches!(state, State::Open | State::Closing),
            At::Closed => matches!(state, State::Closed | State::Reconnecting),
            At::Ended => state == State::Closed,
            At::Announced => state == State::Reconnecting,
        };
        ensure!(agrees, "state {state:?} after {at:?}");
        Ok(())
    }

    /// Backoff within its bounds, attempts within the maximum, no attempt before its time.
    fn check_backoff(&self, ledger: &Ledger) -> Check {
        let marks = sim::with(|world| world.marks.clone());
        for (time, _, event) in &ledger.log {
            let Event::Reconnecting(next) = event else {
                continue;
            };
            let Some(policy) = self.conf.policy() else {
                return Err("a reconnection without a policy".into());
            };
            if let Some(max) = self.conf.reconnect.and_then(|r| r.2) {
                ensure!(
                    next.attempt <= max,
                    "attempt {} of at most {max}",
                    next.attempt
                );
            }
            let (low, high) = (
                policy.delay(next.attempt, 0.0),
                policy.delay(next.attempt, 1.0),
            );
            ensure!(
                low <= next.delay && next.delay <= high,
                "delay {:?} of attempt {} outside {low:?}..={high:?}",
                next.delay,
                next.attempt
            );
            let due = time + next.delay.as_millis() as u64;
            let hurried =
                |until: u64| (ledger.hurried.iter()).any(|&(h, _)| h >= *time && h <= until);
            if let Some((started, _)) = marks.iter().find(|(at, _)| at > time) {
                ensure!(
                    *started >= due || hurried(*started),
                    "attempt {} started at {started}, due at {due}",
                    next.attempt
                );
            }
        }
        Ok(())
    }

    /// Pings every interval while open; a silent connection is found within interval +
    /// timeout of the last message heard, and one that keeps talking never is.
    fn check_heartbeat(&self, ledger: &Ledger) -> Check {
        let Some((interval, timeout, reply)) = self.conf.heartbeat else {
            return Ok(());
        };
        let interval = interval.max(1);
        let now = sim::now();
        let own = |m: &Message| !reply || m.as_text() == Some("pong");
        let conns = sim::with(|world| {
            (world.conns.iter())
                .map(|conn| {
                    let pings: Vec<u64> = (conn.sent.iter())
                        .filter(|(_, m)| m.as_text() == Some(PING))
                        .map(|(at, _)| *at)
                        .collect();
                    let heard: Vec<u64> = (conn.heard.iter())
                        .filter(|(_, m)| own(m))
                        .map(|(at, _)| *at)
                        .collect();
                    (conn.open_at, pings, heard, conn.released)
                })
                .collect::<Vec<_>>()
        });
        let visible_in = |from: u64, to: u64| self.visible.iter().any(|&v| v >= from && v <= to);
        for (open_at, pings, _, _) in &conns {
            let Some(open_at) = open_at else { continue };
            let mut last = *open_at;
            for &ping in pings {
                ensure!(
                    ping - last == interval || (ping - last < interval && visible_in(last, ping)),
                    "a ping at {ping}, {} after the last (or the open), interval {interval}",
                    ping - last
                );
                last = ping;
            }
        }
        // The current connection, while open.
        let state = self.socket().map(|s| s.state());
        if let (Some(State::Open), Some((Some(open_at), pings, heard, false))) =
            (state, conns.last())
        {
            let last = pings.last().copied().unwrap_or(*open_at);
            ensure!(
                now < last + interval,
                "no ping since {last}, now {now}, interval {interval}"
            );
            let heard = heard.last().copied().unwrap_or(*open_at).max(*open_at);
            let held = self.held_streams_at.is_some_and(|at| at >= heard);
            ensure!(
                held || now <= heard + interval + timeout,
                "silent since {heard}, still open at {now} (interval {interval}, timeout {timeout})"
            );
        }
        // Never declared dead while hearing.
        let marks = sim::with(|world| world.marks.clone());
        for (time, made, event) in &ledger.log {
            let Event::Close(close) = event else { continue };
            if close.cause != CloseCause::HeartbeatLost {
                continue;
            }
            let Some((_, Mark::Attempt(id))) = marks.get(made - 1) else {
                return Err(format!("heartbeat lost without a connection at {time}"));
            };
            let heard = conns[*id].2.last().copied();
            ensure!(
                heard.is_none_or(|heard| heard + timeout <= *time),
                "declared dead at {time}, heard at {heard:?}, timeout {timeout}"
            );
        }
        Ok(())
    }

    /// The end: closed by the application (unless every handle went), then settled: every
    /// accepted message accounted for, the last attempt closed, nothing left behind.
    fn finish(mut self) -> Check {
        self.events.clear();
        self.messages.clear();
        if let Some(socket) = self.socket() {
            close_with(&self.ledger, &socket, 1000, 0);
            sim::settle();
            // The server answers any close.
            sim::close(CloseEvent::new(1000, "", true));
            sim::fail();
            sim::advance(60_000);
            ensure!(
                socket.state() == State::Closed,
                "not closed: {:?}",
                socket.state()
            );
            let ledger = self.ledger.borrow();
            if !self.discarded {
                let mut accounted: Vec<u64> = sim::with(|world| {
                    (world.conns.iter())
                        .flat_map(|conn| conn.sent.iter().filter_map(|(_, m)| id_of(m)))
                        .collect()
                });
                for (_, _, event) in &ledger.log {
                    if let Event::Unsent(unsent) = event {
                        accounted.extend(id_of(&unsent.message));
                    }
                }
                for id in &ledger.accepted {
                    ensure!(
                        accounted.contains(id),
                        "m{id} accepted, never sent nor unsent"
                    );
                }
            }
            for (close, last) in &ledger.closed {
                ensure!(
                    Some(close) == last.as_ref(),
                    "closed() gave {close:?}, last {last:?}"
                );
            }
            drop(ledger);
            self.check()?;
            // The last attempt ended in a close.
            let ledger = self.ledger.borrow();
            let ended = (ledger.log.iter().rev()).find(|(_, _, e)| {
                matches!(e, Event::Close(_) | Event::Open | Event::Reconnecting(_))
            });
            let made = attempts();
            ensure!(
                matches!(ended, Some((_, m, Event::Close(_))) if *m == made),
                "the socket ended without closing its last attempt: {ended:?}"
            );
        }
        self.handles.clear();
        sim::advance(60_000);
        ensure!(self.socket().is_none(), "the socket outlived every handle");
        ensure!(
            live_closures() == 0,
            "{} closures left behind",
            live_closures()
        );
        ensure!(sim::tasks() == 0, "{} futures left behind", sim::tasks());
        Ok(())
    }
}

thread_local! {
    static STEPS: Cell<usize> = const { Cell::new(0) };
}

/// Runs one sequence: the first invariant it breaks, or a panic.
pub(crate) fn run(conf: &Conf, ops: &[Op]) -> Check {
    sim::reset(11);
    let mut run = Run::new(conf.clone());
    run.check()?;
    for (i, op) in ops.iter().enumerate() {
        STEPS.with(|steps| steps.set(steps.get() + 1));
        run.step(op);
        run.check()
            .map_err(|e| format!("after step {i} ({op:?}) at {}: {e}", sim::now()))?;
    }
    run.finish().map_err(|e| format!("at the end: {e}"))
}

#[test]
fn model() {
    let seed: u64 = std::env::var("MODEL_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(23);
    let cases = std::env::var("MODEL_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(1_400);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: std::env::var("MODEL_SHRINK")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(4_000),
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = (conf(), proptest::collection::vec(op(), 1..150));
    let started = std::time::Instant::now();
    let result = runner.run(&strategy, |(conf, ops)| {
        run(&conf, &ops).map_err(TestCaseError::fail)
    });
    if let Err(error) = result {
        panic!("model test failed with MODEL_SEED={seed}: {error:?}");
    }
    let steps = STEPS.with(Cell::get);
    println!(
        "model: {steps} steps in {:?} (seed {seed})",
        started.elapsed()
    );
    if cases >= 1_400 {
        assert!(steps >= 100_000, "only {steps} steps");
    }
}

// ---- What the model tests found -----------------------------------------------------------

#[cfg(test)]
fn conf_none() -> Conf {
    Conf {
        reconnect: None,
        heartbeat: None,
        connect_timeout: None,
        decides: false,
        provider: None,
        receive_limit: None,
        protocols: false,
        high_water_mark: None,
    }
}

/// With a heartbeat, the application's close while open left the next ping's deadline in
/// the past: the timer rang at once, forever, until the close completed (a busy loop in the
/// browser; in the simulation, a timer storm).
#[test]
fn regression_heartbeat_while_closing_spins() {
    let conf = Conf {
        heartbeat: Some((1, 49, false)),
        ..conf_none()
    };
    run(
        &conf,
        &[Op::Arm(Api::Close), Op::Open(false), Op::Advance(1)],
    )
    .unwrap();
}

/// Found by the `client_model` fuzz target: a heartbeat every millisecond, held open by an
/// event stream nobody reads, pings 5,880 times in an advance of 5,880 ms, which the
/// simulation took for a timer storm (5,000 timers in one advance). A storm is timers that
/// ring without the clock moving; the simulation now counts those.
#[test]
fn regression_a_ping_every_millisecond_is_no_timer_storm() {
    let conf = Conf {
        heartbeat: Some((1, 0, false)),
        connect_timeout: Some(614),
        provider: Some(Some(104)),
        receive_limit: Some(0),
        high_water_mark: Some(8),
        ..conf_none()
    };
    let ops = [
        Op::Receive(1),
        Op::Receive(2),
        Op::Events,
        Op::Open(true),
        Op::Advance(21),
        Op::Advance(5880),
        Op::ReconnectNow,
        Op::Receive(2),
        Op::Events,
        Op::Events,
    ];
    run(&conf, &ops).unwrap();
}

/// Found by the `client_model` fuzz target: messages queued while connecting, held back by
/// a high-water mark of 0, were handed from the queue to a connection the server had half
/// closed (its Close received, the close event not yet), which drops what it is handed: an
/// accepted message lost, with no `Unsent`. The queue keeps them for the next connection.
#[test]
fn regression_the_queue_is_not_drained_into_a_closing_connection() {
    let conf = Conf {
        reconnect: Some((230, 1232, None, 313, false, 4, false)),
        protocols: true,
        decides: true,
        high_water_mark: Some(0),
        ..conf_none()
    };
    let ops = [
        Op::Send,
        Op::Send,
        Op::Open(true),
        Op::HalfClose,
        Op::Flush,
        Op::Advance(20),
    ];
    run(&conf, &ops).unwrap();
}
