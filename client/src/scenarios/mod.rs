//! Named scenarios on the simulated transport and clock (`sim.rs`), which run the real
//! `WebSocket` and `Builder` natively in milliseconds: the bugs of issue 23, each with the test
//! that failed before its fix (`issue23.rs`), and the state-machine scenarios of the browser
//! suites, one file per suite (`transports.rs`), each under its browser test's name.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::sim;
use crate::{
    Builder, CloseCause, CloseEvent, Event, Message, Reconnect, State, WebSocket, live_closures,
};

mod issue23;
mod transports;

pub(crate) type Log = Rc<RefCell<Vec<(u64, Event)>>>;

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

fn application(code: u16, reason: &str) -> CloseEvent {
    CloseEvent::new(code, reason, true).with_cause(CloseCause::Application)
}

fn lost(cause: CloseCause) -> impl Fn(&Event) -> bool {
    move |event| matches!(event, Event::Close(close) if close.cause == cause)
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
