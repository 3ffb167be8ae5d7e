//! The thin driver (`thin.rs`) against the full one (`socket.rs` over `core.rs`): random
//! sequences of the application's calls, the server's doings and time passing, each run
//! twice on the simulated world, once on a socket made by `WebSocket::connect` (thin) and
//! once on one made by `WebSocket::builder(url).connect()` without options (full), must give
//! the same trace: every call's return value, the events every stream reads and when, the
//! state and the other getters after every step (before and after the timers due at once),
//! what the connections were handed, the closures and futures left, what `closed()`, the
//! sinks and `send_async` resolved to. The sequences are the model tests' (`model.rs`),
//! without what needs the builder: callbacks, URL providers, the network.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::{FutureExt, SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use crate::socket::Shared;
use crate::tests::model::{Op, op};
use crate::tests::sim;
use crate::thin::Thin;
use crate::{CloseEvent, Events, Message, Messages, WeakWebSocket, WebSocket, live_closures};

type Trace = Rc<RefCell<Vec<String>>>;

/// One sequence on one socket, written down.
struct Run {
    trace: Trace,
    handles: Vec<WebSocket>,
    weak: WeakWebSocket,
    events: Vec<Events>,
    messages: Vec<Messages>,
    next_id: u64,
}

impl Run {
    fn new(thin: bool) -> Run {
        sim::reset(11);
        let socket = if thin {
            WebSocket::connect("ws://a")
        } else {
            WebSocket::builder("ws://a").connect()
        }
        .expect("the URL is good");
        // Each on the driver it is meant to compare: otherwise the traces agree trivially.
        let any = socket.driver.clone().into_any();
        assert_eq!(
            any.is::<Thin>(),
            thin,
            "WebSocket::connect makes a thin socket"
        );
        assert_eq!(any.is::<Shared>(), !thin, "the builder makes a full one");
        let run = Run {
            trace: Trace::default(),
            weak: socket.downgrade(),
            handles: vec![socket],
            events: Vec::new(),
            messages: Vec::new(),
            next_id: 0,
        };
        run.observe("start");
        run
    }

    fn note(&self, line: String) {
        self.trace.borrow_mut().push(line);
    }

    /// The getters, and the world: what each connection was handed.
    fn observe(&self, when: &str) {
        let socket = self.weak.upgrade();
        let getters = socket.map(|s| {
            format!(
                "{:?} buffered {} queued {} url {} protocol {:?} extensions {:?} {:?}",
                s.state(),
                s.buffered_amount(),
                s.queued(),
                s.url(),
                s.protocol(),
                s.extensions(),
                s.transport(),
            )
        });
        let world = sim::with(|world| {
            (world.conns.iter())
                .map(|conn| {
                    format!(
                        "[{} {:?} sent {:?} dropped {:?} closes {:?} released {}]",
                        conn.url, conn.state, conn.sent, conn.dropped, conn.closes, conn.released
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        });
        self.note(format!("{when}: {getters:?} {world}"));
    }

    /// What the streams hold now, read.
    fn read(&mut self, first_only: bool) {
        let mut lines = Vec::new();
        let count = if first_only { 1 } else { self.events.len() };
        for (i, events) in self.events.iter_mut().take(count).enumerate() {
            loop {
                match events.next().now_or_never() {
                    Some(Some(event)) => lines.push(format!("events {i}: {event:?}")),
                    Some(None) => {
                        lines.push(format!("events {i}: ended"));
                        break;
                    }
                    None => break,
                }
            }
        }
        if !first_only {
            for (i, messages) in self.messages.iter_mut().enumerate() {
                loop {
                    match messages.next().now_or_never() {
                        Some(Some(message)) => lines.push(format!("messages {i}: {message:?}")),
                        Some(None) => {
                            let close = messages.close_event();
                            lines.push(format!("messages {i}: ended after {close:?}"));
                            break;
                        }
                        None => break,
                    }
                }
            }
        }
        for line in lines {
            self.note(line);
        }
    }

    fn step(&mut self, op: &Op) {
        let socket = self.weak.upgrade();
        let trace = self.trace.clone();
        match (op, socket) {
            (Op::Send, Some(s)) => {
                self.next_id += 1;
                let sent = s.send(format!("m{}", self.next_id));
                self.note(format!("send: {sent:?}"));
            }
            (Op::SendAsync, Some(s)) => {
                self.next_id += 1;
                let id = self.next_id;
                sim::spawn(async move {
                    let sent = s.send_async(format!("m{id}")).await;
                    trace
                        .borrow_mut()
                        .push(format!("send_async m{id}: {sent:?}"));
                });
            }
            (Op::Close, Some(s)) => self.note(format!("close: {:?}", s.close())),
            (Op::CloseWith(code, reason), Some(s)) => {
                let closed = s.close_with(*code, &"x".repeat(*reason));
                self.note(format!("close_with {code}: {closed:?}"));
            }
            (Op::ReconnectNow, Some(s)) => s.reconnect_now(),
            (Op::CloneHandle, Some(s)) => self.handles.push(s),
            (Op::DropHandle(i), _) if !self.handles.is_empty() => {
                let i = i % self.handles.len();
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
            (Op::ReadStreams, _) => self.read(false),
            (Op::Closed, Some(s)) => sim::spawn(async move {
                let close: CloseEvent = s.closed().await;
                trace.borrow_mut().push(format!("closed: {close:?}"));
            }),
            (Op::SinkClose, Some(s)) => sim::spawn(async move {
                let closed = s.sink().close().await;
                trace.borrow_mut().push(format!("sink closed: {closed:?}"));
            }),
            (Op::Open(_), _) => {
                sim::open("");
            }
            (Op::Receive(kind), _) => {
                self.next_id += 1;
                let message = match kind {
                    0 => Message::Text(format!("s{}", self.next_id)),
                    1 => Message::Binary(vec![1, 2, 3].into()),
                    _ => Message::Text(String::new()),
                };
                sim::receive(message);
            }
            (Op::Fail(true), _) if sim::fail_without_close() => {}
            (Op::Fail(_), _) => {
                sim::fail();
            }
            (Op::RemoteClose(code, clean), _) => {
                sim::close(CloseEvent::new(*code, "bye", *clean));
            }
            (Op::HalfClose, _) => {
                sim::half_close();
            }
            (Op::Flush, _) => sim::flush(),
            (Op::Advance(ms), _) => sim::advance(*ms),
            _ => {}
        }
        // Before the timers due at once: what a call causes is not delivered during it.
        self.read(true);
        self.observe("during");
        sim::settle();
        self.note(format!(
            "after {op:?}: closures {} tasks {}",
            live_closures(),
            sim::tasks()
        ));
        self.observe("after");
    }

    /// The end, as the model's: closed, settled, every handle gone.
    fn finish(mut self) -> Vec<String> {
        if let Some(socket) = self.weak.upgrade() {
            self.note(format!("close: {:?}", socket.close()));
            sim::settle();
            sim::close(CloseEvent::new(1000, "", true));
            sim::fail();
            sim::advance(60_000);
            self.read(false);
            self.observe("closed");
        }
        self.events.clear();
        self.messages.clear();
        self.handles.clear();
        sim::advance(60_000);
        self.note(format!(
            "end: alive {} closures {} tasks {}",
            self.weak.upgrade().is_some(),
            live_closures(),
            sim::tasks()
        ));
        self.observe("end");
        self.trace.take()
    }
}

/// The trace of `ops` on a thin socket, or on a full one.
fn trace(thin: bool, ops: &[Op]) -> Vec<String> {
    let mut run = Run::new(thin);
    for op in ops {
        run.step(op);
    }
    run.finish()
}

/// The first line where the two traces part, with some before it.
fn compare(ops: &[Op]) -> Result<(), String> {
    let (thin, full) = (trace(true, ops), trace(false, ops));
    if thin == full {
        return Ok(());
    }
    let at = (thin.iter().zip(&full))
        .position(|(a, b)| a != b)
        .unwrap_or(thin.len().min(full.len()));
    let before = at.saturating_sub(6);
    Err(format!(
        "the traces part at line {at}:\n  same: {:#?}\n  thin: {:?}\n  full: {:?}",
        &thin[before..at],
        thin.get(at),
        full.get(at)
    ))
}

/// What needs the builder: callbacks, URL providers and the network have no thin twin.
fn plain(op: &Op) -> bool {
    !matches!(op, Op::Arm(_) | Op::Refuse(_) | Op::Network(_))
}

#[test]
fn thin_and_full_drivers_agree() {
    let seed: u64 = std::env::var("MODEL_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(30);
    let cases = std::env::var("MODEL_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(1_000);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4_000,
        ..Config::default()
    };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let ops = proptest::collection::vec(op().prop_filter("plain", plain), 1..100);
    let result = runner.run(&ops, |ops| compare(&ops).map_err(TestCaseError::fail));
    if let Err(error) = result {
        panic!("the drivers differ (MODEL_SEED={seed}): {error}");
    }
}

/// The cases the brief names, by hand: a close while connecting is reported after the call
/// returns, clean, with the application's code; the last handle's drop frees everything.
#[test]
fn close_while_connecting_and_drop() {
    use crate::tests::model::Op::*;
    for ops in [
        vec![Events, CloseWith(4000, 3), ReadStreams, Closed, Advance(1)],
        vec![
            Messages,
            Open(false),
            Receive(0),
            CloseWith(3000, 0),
            RemoteClose(3000, true),
        ],
        vec![
            Events,
            Open(false),
            RemoteClose(4001, true),
            ReconnectNow,
            Events,
            Open(false),
        ],
        vec![Events, Fail(true), ReconnectNow, Fail(false), ReadStreams],
        vec![Events, Open(false), DropHandle(0), ReadStreams],
        vec![
            Messages,
            SendAsync,
            Open(false),
            Send,
            HalfClose,
            Send,
            SinkClose,
            Advance(5),
        ],
    ] {
        compare(&ops).unwrap();
    }
}
