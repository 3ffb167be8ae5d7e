//! Named scenarios on the simulated transport and clock (`sim.rs`), which run the real
//! `WebSocket` and `Builder` natively in milliseconds: the bugs of issue 23, each with the test
//! that failed before its fix (`issue23.rs`), and the state-machine scenarios of the browser
//! suites, one file per suite: `transports.rs`, `hostile.rs`, `liveness.rs`
//! (`hostile_liveness.rs`) and `stream.rs` (the state-machine part of `hostile_stream.rs`).
//! Each keeps its browser test's name and assertions, with the simulated clock for real
//! waits, `sim::serve` for the echo server and its controls, and `sim::fail` for a server
//! that cannot be reached or drops the connection. What stays in the browser, and why, is in
//! each browser file's header.
//!
//! `live_closures()` counts here what the crate tracks natively: the socket's timer (the
//! simulated connection is no closure); a connection let go of is `sim::Conn::released`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};

use crate::tests::sim::{self, Network};
use crate::{
    Builder, CloseCause, CloseEvent, Error, Event, Events, Message, Reconnect, Reconnecting, State,
    WebSocket, live_closures,
};

mod hostile;
mod issue23;
mod issue30;
mod liveness;
mod stream;
mod transports;

pub(crate) type Log = Rc<RefCell<Vec<(u64, Event)>>>;

/// What callbacks share with the test.
type Seen<T> = Rc<RefCell<Vec<T>>>;

/// The builder with every callback recording its event, with the time.
pub(crate) fn logged(builder: Builder) -> (Builder, Log) {
    let log = Log::default();
    let record = |log: &Log| {
        let log = log.clone();
        move |event: Event| log.borrow_mut().push((sim::now(), event))
    };
    let (open, message, error, close, reconnect, unsent) = (
        record(&log),
        record(&log),
        record(&log),
        record(&log),
        record(&log),
        record(&log),
    );
    let builder = builder
        .on_open(move |_| open(Event::Open))
        .on_message(move |_, m| message(Event::Message(m)))
        .on_error(move |_| error(Event::Error))
        .on_close(move |_, c| close(Event::Close(c)))
        .on_reconnect(move |_, r| reconnect(Event::Reconnecting(r)))
        .on_unsent(move |_, u| unsent(Event::Unsent(u)));
    (builder, log)
}

pub(crate) fn text(text: &str) -> Message {
    Message::Text(text.to_owned())
}

/// The echo server's answer to `text` (`sim::serve`).
fn echoed(text: &str) -> Event {
    Event::Message(Message::Text(format!("Received:  {text}")))
}

fn binary(data: Vec<u8>) -> Event {
    Event::Message(Message::Binary(data.into()))
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The events of the log, without their times.
fn events(log: &Log) -> Vec<Event> {
    log.borrow()
        .iter()
        .map(|(_, event)| event.clone())
        .collect()
}

/// The messages connection `id` took, pings included.
fn sent(id: usize) -> Vec<Message> {
    sim::with(|world| {
        world.conns[id]
            .sent
            .iter()
            .map(|(_, m)| m.clone())
            .collect()
    })
}

fn sent_at(id: usize) -> Vec<u64> {
    sim::with(|world| world.conns[id].sent.iter().map(|(at, _)| *at).collect())
}

/// How many connections the socket opened.
fn conns() -> usize {
    sim::with(|world| world.conns.len())
}

fn released(id: usize) -> bool {
    sim::with(|world| world.conns[id].released)
}

fn closes(id: usize) -> Vec<(u16, String)> {
    sim::with(|world| world.conns[id].closes.clone())
}

/// URLs the transport refused (a URL containing "refuse").
fn refused() -> Vec<String> {
    sim::with(|world| {
        (world.marks.iter())
            .filter_map(|(_, mark)| match mark {
                sim::Mark::Refused(url) => Some(url.clone()),
                sim::Mark::Attempt(_) => None,
            })
            .collect()
    })
}

fn application(code: u16, reason: &str) -> CloseEvent {
    CloseEvent::new(code, reason, true).with_cause(CloseCause::Application)
}

/// The close event of the application's `close_with(code, reason)`.
fn close(code: u16, reason: &str) -> Event {
    Event::Close(application(code, reason))
}

/// The server's close, with its code and reason.
fn server_close(code: u16, reason: &str) -> Event {
    Event::Close(CloseEvent::new(code, reason, true))
}

fn lost(cause: CloseCause) -> impl Fn(&Event) -> bool {
    move |event| matches!(event, Event::Close(close) if close.cause == cause)
}

/// Whether `event` reports `message` as unsent, for `error`.
fn is_unsent(event: &Event, message: impl Into<Message>, error: &Error) -> bool {
    let message = message.into();
    matches!(event, Event::Unsent(unsent) if unsent.message == message && unsent.error == *error)
}

/// A fresh world, and a socket to `url` made by `builder` with every callback logged.
fn start(builder: Builder) -> (WebSocket, Log) {
    let (builder, log) = logged(builder);
    let socket = builder.connect().expect("connect");
    (socket, log)
}

fn fresh() {
    sim::reset(7);
}

/// Drops `socket`, lets everything settle, and checks that nothing is left behind.
fn drop_and_check(socket: WebSocket) {
    drop(socket);
    sim::advance(10_000);
    assert_eq!(live_closures(), 0, "closures or timers left behind");
    assert_eq!(sim::tasks(), 0, "futures left behind");
}

/// Nothing left: no timer, no future, and every connection let go of.
fn assert_nothing_left() {
    sim::settle();
    assert_eq!(live_closures(), 0, "closures or timers left behind");
    assert_eq!(sim::tasks(), 0, "futures left behind");
    for id in 0..conns() {
        assert!(released(id), "connection {id} is still held");
    }
}

/// The browser suites' reconnection: 100 ms, then up to 400 ms.
fn quick_reconnect() -> Reconnect {
    Reconnect::new().initial_delay(ms(100)).max_delay(ms(400))
}

/// Reconnection whose first attempt waits long enough for a test to act while waiting: 5 to
/// 10 s.
fn slow_reconnect() -> Reconnect {
    let slow = Duration::from_secs(10);
    quick_reconnect().initial_delay(slow).max_delay(slow)
}

/// The events already waiting in the stream, without waiting for more.
fn waiting(events: &mut Events) -> Vec<Event> {
    let mut seen = Vec::new();
    while let Some(Some(event)) = events.next().now_or_never() {
        seen.push(event);
    }
    seen
}

/// Whether the stream has ended (nothing waits in it).
fn ended(events: &mut Events) -> bool {
    events.next().now_or_never() == Some(None)
}

/// What is due now, then every event up to the end of the stream, which must have ended.
fn rest(events: &mut Events) -> Vec<Event> {
    sim::settle();
    let seen = waiting(events);
    assert!(ended(events), "the stream goes on after {seen:?}");
    seen
}

/// The next event, waiting for it on the simulated clock (5 s at most).
fn next_event(events: &mut Events) -> Event {
    for _ in 0..5_000 {
        match events.next().now_or_never() {
            Some(Some(event)) => return event,
            Some(None) => panic!("the stream ended early"),
            None => sim::advance(1),
        }
    }
    panic!("no event within 5 s");
}

/// The next event, which must be a close.
fn next_close(events: &mut Events) -> CloseEvent {
    match next_event(events) {
        Event::Close(close) => close,
        other => panic!("expected a close, got {other:?}"),
    }
}

/// The server accepts the handshake: the socket is open, and its events follow.
fn opened(socket: WebSocket) -> (WebSocket, Events) {
    let mut events = socket.events();
    assert!(sim::open(""), "no connection opening");
    assert_eq!(waiting(&mut events), [Event::Open]);
    assert_eq!(socket.state(), State::Open);
    (socket, events)
}

/// The server drops the connection of a socket that reconnects: its close (1006) and the
/// announced attempt; the socket then waits to reconnect.
fn dropped_by_the_server(socket: &WebSocket, events: &mut Events) -> Reconnecting {
    assert!(sim::fail(), "no connection to drop");
    assert_eq!(next_close(events).code, 1006);
    let next = match waiting(events).as_slice() {
        [Event::Reconnecting(next)] => *next,
        other => panic!("expected a reconnection attempt, got {other:?}"),
    };
    assert_eq!(socket.state(), State::Reconnecting);
    next
}

/// The browser's `online`, `offline` or `visibilitychange`, as `follow_network` hears them.
fn network(socket: &WebSocket, change: Network) {
    socket.driver.clone().network_for_test(change);
}

/// Runs `future` on the simulated executor; its output, once it has one, in the cell.
fn spawned<T: 'static>(future: impl Future<Output = T> + 'static) -> Rc<RefCell<Option<T>>> {
    let output = Rc::new(RefCell::new(None));
    let slot = output.clone();
    sim::spawn(async move {
        let value = future.await;
        *slot.borrow_mut() = Some(value);
    });
    sim::run();
    output
}

thread_local! {
    static ONLY_HANDLE: RefCell<Option<WebSocket>> = const { RefCell::new(None) };
}

/// Holds `socket` as the application's only handle, for a callback to drop with
/// [`drop_only_handle`].
fn keep_only_handle(socket: WebSocket) {
    ONLY_HANDLE.with(|slot| *slot.borrow_mut() = Some(socket));
}

/// Drops the handle [`keep_only_handle`] holds (from inside a callback, say).
fn drop_only_handle() {
    drop(ONLY_HANDLE.with(|slot| slot.borrow_mut().take()));
}
