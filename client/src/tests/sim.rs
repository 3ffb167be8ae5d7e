//! A simulated world for the crate's own unit tests: a transport whose server is the test, a
//! clock that moves only when the test says, and a tiny executor for the crate's spawned
//! futures. Everything is thread-local and single-threaded, and deterministic.
//!
//! The transport behaves as `native.rs` does towards the driver: `send` is refused while
//! connecting and silently dropped while closing or closed; dropping a connection detaches
//! it (no event of its reaches the listener any more); it reads only while the listener
//! says it may (`Listener::may_read`), so messages the test sends wait in the connection
//! until the application's streams have room. It records everything handed to it, per
//! connection, for the test to read ([`with`]). Each event reaches the listener on a handle of
//! its own, as in every transport, so a callback may drop the socket's last handle between
//! two. The server is the test, or [`serve`]: the echo server and its test controls.
//!
//! The clock: [`advance`] moves time forward, firing due timers in deadline order (and in
//! the order they were set for equal deadlines), running spawned futures and letting
//! waiting messages in after each.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::error::Error;
use crate::event::Unsent;
use crate::message::{CloseEvent, Message, State};
use crate::tracked::Tracked;
use crate::transport::{Listener, Options};

/// Where the simulated clock starts: not zero, so that arithmetic near zero is not special.
pub(crate) const START: u64 = 1_000_000;

/// The network and page changes the driver follows in the browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Network {
    Online,
    Offline,
    Visible,
}

/// What the test marks in the world's log, beside the connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// A connection was opened (its id).
    Attempt(usize),
    /// A URL was refused.
    Refused(String),
}

/// One connection the driver opened, as the test sees it.
pub(crate) struct Conn {
    pub(crate) url: String,
    pub(crate) state: State,
    pub(crate) protocol: String,
    pub(crate) buffered: u32,
    /// Messages the connection took while open, with the time.
    pub(crate) sent: Vec<(u64, Message)>,
    /// Messages handed to it while closing or closed: silently dropped, as natively.
    pub(crate) dropped: Vec<Message>,
    /// The driver's `close` calls.
    pub(crate) closes: Vec<(u16, String)>,
    /// The driver let go of it: detached.
    pub(crate) released: bool,
    /// When the connection opened, if it did.
    pub(crate) open_at: Option<u64>,
    /// What the listener was given, with the time.
    pub(crate) heard: Vec<(u64, Message)>,
    /// How many of `sent` [`serve`] has answered.
    answered: usize,
    /// [`serve`] closed it: it answers nothing more.
    served_close: bool,
    listener: Weak<dyn Listener>,
    /// What the server sent that the connection has not read yet.
    inbox: VecDeque<Incoming>,
}

enum Incoming {
    Message(Message),
    Close(CloseEvent),
}

type Callback = Box<dyn FnOnce()>;

/// The simulated world of one thread.
pub(crate) struct World {
    pub(crate) now: u64,
    seeds: u64,
    timers: BTreeMap<(u64, u64), Callback>,
    sequence: u64,
    tasks: BTreeMap<u64, Pin<Box<dyn Future<Output = ()>>>>,
    ready: Arc<Mutex<Vec<u64>>>,
    next_task: u64,
    pub(crate) conns: Vec<Conn>,
    pub(crate) marks: Vec<(u64, Mark)>,
    /// A task waits for room in the listener's streams.
    waiting_room: bool,
}

impl World {
    fn new(seed: u64) -> World {
        World {
            now: START,
            seeds: seed,
            timers: BTreeMap::new(),
            sequence: 0,
            tasks: BTreeMap::new(),
            ready: Arc::default(),
            next_task: 0,
            conns: Vec::new(),
            marks: Vec::new(),
            waiting_room: false,
        }
    }

    /// The connection events go to: the latest one not let go of.
    pub(crate) fn current(&self) -> Option<usize> {
        self.conns.iter().rposition(|conn| !conn.released)
    }
}

thread_local! {
    static WORLD: RefCell<World> = RefCell::new(World::new(0));
}

/// Reads or changes the world. Never call into the crate from `f`.
pub(crate) fn with<T>(f: impl FnOnce(&mut World) -> T) -> T {
    WORLD.with(|world| f(&mut world.borrow_mut()))
}

/// A new world on this thread, its backoff seeds drawn from `seed`. What the old one held
/// is dropped outside the borrow (it may hold sockets, whose timers reach for the world).
pub(crate) fn reset(seed: u64) {
    let old = with(|world| std::mem::replace(world, World::new(seed)));
    drop(old);
}

// ---- The clock and the executor ---------------------------------------------------------

/// A pending callback on the simulated clock, counted in `live_closures`. Dropping it
/// cancels it.
pub(crate) struct Timeout {
    key: (u64, u64),
    _tracked: Tracked<()>,
}

impl Timeout {
    pub(crate) fn new(delay: Duration, callback: impl FnOnce() + 'static) -> Timeout {
        Timeout {
            key: set_timer(delay, Box::new(callback)),
            _tracked: Tracked::new(()),
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        // Taken out under the borrow, dropped outside it. The world may be gone at the
        // thread's end.
        let callback =
            WORLD.try_with(|world| world.try_borrow_mut().ok()?.timers.remove(&self.key));
        drop(callback);
    }
}

fn set_timer(delay: Duration, callback: Callback) -> (u64, u64) {
    with(|world| {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let key = (world.now.saturating_add(ms), world.sequence);
        world.sequence += 1;
        world.timers.insert(key, callback);
        key
    })
}

/// The simulated time, in milliseconds.
pub(crate) fn now() -> u64 {
    with(|world| world.now)
}

/// A different seed for each socket, the same in every run.
pub(crate) fn seed() -> u64 {
    with(|world| {
        world.seeds = world.seeds.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = world.seeds;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// Resolves after `delay` of simulated time. Not counted in `live_closures`, like the
/// browser's (whose timeout calls the promise's own resolve function).
pub(crate) fn sleep(delay: Duration) -> impl Future<Output = ()> {
    let until = now().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
    Sleep { until, timer: None }
}

struct Sleep {
    until: u64,
    timer: Option<(u64, u64)>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if now() >= self.until {
            return Poll::Ready(());
        }
        if self.timer.is_none() {
            let waker = cx.waker().clone();
            let delay = Duration::from_millis(self.until - now());
            self.timer = Some(set_timer(delay, Box::new(move || waker.wake())));
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.timer {
            let callback = WORLD.try_with(|world| world.try_borrow_mut().ok()?.timers.remove(&key));
            drop(callback);
        }
    }
}

struct TaskWaker {
    id: u64,
    ready: Arc<Mutex<Vec<u64>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.ready.lock().unwrap().push(self.id);
    }
}

/// Runs `future` on the world's executor, from the next [`run`] on.
pub(crate) fn spawn(future: impl Future<Output = ()> + 'static) {
    with(|world| {
        let id = world.next_task;
        world.next_task += 1;
        world.tasks.insert(id, Box::pin(future));
        world.ready.lock().unwrap().push(id);
    });
}

/// How many spawned futures have not finished.
pub(crate) fn tasks() -> usize {
    with(|world| world.tasks.len())
}

/// Polls the woken futures until none is, and lets in what connections may read.
pub(crate) fn run() {
    loop {
        let mut woken = with(|world| std::mem::take(&mut *world.ready.lock().unwrap()));
        woken.sort_unstable();
        woken.dedup();
        let read = read();
        if woken.is_empty() && !read {
            return;
        }
        for id in woken {
            let (task, ready) = with(|world| (world.tasks.remove(&id), world.ready.clone()));
            let Some(mut task) = task else { continue };
            let waker = Waker::from(Arc::new(TaskWaker { id, ready }));
            if task
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
            {
                with(|world| world.tasks.insert(id, task));
            }
        }
    }
}

/// Moves the clock `ms` forward: due timers fire in deadline order, each at its deadline,
/// with the futures they wake run after each.
pub(crate) fn advance(ms: u64) {
    let until = now().saturating_add(ms);
    // Timers fired without the clock moving: a storm is many at one instant (a deadline
    // left in the past rings at once, forever), not many over a long advance.
    let (mut fired, mut instant) = (0u32, now());
    loop {
        run();
        let due = with(|world| {
            let (&key, _) = world.timers.first_key_value()?;
            if key.0 > until {
                return None;
            }
            world.now = world.now.max(key.0);
            world.timers.remove(&key)
        });
        let Some(callback) = due else { break };
        if now() != instant {
            (fired, instant) = (0, now());
        }
        fired += 1;
        assert!(fired < 5_000, "a timer storm: 5,000 timers at {instant}");
        callback();
    }
    with(|world| world.now = world.now.max(until));
    run();
}

/// Fires what is due now.
pub(crate) fn settle() {
    advance(0);
}

// ---- The transport ----------------------------------------------------------------------

/// A connection of the simulated transport: the id of its record in the world.
pub(crate) struct Connection {
    id: usize,
}

impl Connection {
    /// A URL containing "refuse" is refused, as the browser refuses a bad one.
    pub(crate) fn open(
        listener: Weak<dyn Listener>,
        url: &str,
        _: &Options,
    ) -> Result<Connection, Error> {
        with(|world| {
            let now = world.now;
            if url.contains("refuse") {
                world.marks.push((now, Mark::Refused(url.to_owned())));
                return Err(Error::InvalidUrl {
                    url: url.to_owned(),
                    message: "refused by the test".to_owned(),
                });
            }
            let id = world.conns.len();
            world.conns.push(Conn {
                url: url.to_owned(),
                state: State::Connecting,
                protocol: String::new(),
                buffered: 0,
                sent: Vec::new(),
                dropped: Vec::new(),
                closes: Vec::new(),
                released: false,
                open_at: None,
                heard: Vec::new(),
                answered: 0,
                served_close: false,
                listener,
                inbox: VecDeque::new(),
            });
            world.marks.push((now, Mark::Attempt(id)));
            Ok(Connection { id })
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> T) -> T {
        with(|world| f(&mut world.conns[self.id]))
    }

    pub(crate) fn state(&self) -> State {
        self.with(|conn| conn.state)
    }

    pub(crate) fn send(&self, message: Message) -> Result<(), Unsent> {
        let now = now();
        self.with(|conn| match conn.state {
            State::Open => {
                let size = match &message {
                    Message::Text(text) => text.len(),
                    Message::Binary(data) => data.len(),
                };
                let size = u32::try_from(size).unwrap_or(u32::MAX);
                conn.buffered = conn.buffered.saturating_add(size);
                conn.sent.push((now, message));
                Ok(())
            }
            // As natively: refused while connecting, dropped silently (and recorded) after.
            state => {
                if state != State::Connecting {
                    conn.dropped.push(message.clone());
                }
                crate::transport::not_open(state, message)
            }
        })
    }

    pub(crate) fn close(&self, code: u16, reason: &str) {
        self.with(|conn| {
            conn.closes.push((code, reason.to_owned()));
            if matches!(conn.state, State::Connecting | State::Open) {
                conn.state = State::Closing;
            }
        });
    }

    pub(crate) fn buffered_amount(&self) -> u32 {
        self.with(|conn| conn.buffered)
    }

    pub(crate) fn url(&self) -> String {
        self.with(|conn| conn.url.clone())
    }

    pub(crate) fn protocol(&self) -> String {
        self.with(|conn| conn.protocol.clone())
    }

    pub(crate) fn extensions(&self) -> String {
        String::new()
    }

    #[cfg(feature = "http2")]
    pub(crate) fn http_version(&self) -> Option<crate::HttpVersion> {
        None
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Detached: nothing of it reaches the listener any more. The world may be gone at the
        // thread's end.
        let _ = WORLD.try_with(|world| {
            // Not there if the world was reset under a socket still alive.
            if let Ok(mut world) = world.try_borrow_mut()
                && let Some(conn) = world.conns.get_mut(self.id)
            {
                conn.released = true;
                if conn.state != State::Closed {
                    conn.closes.push((1000, String::new()));
                    conn.state = State::Closed;
                }
                conn.inbox.clear();
            }
        });
    }
}

/// The current connection's listener, if there is one still listening.
fn listener() -> Option<(usize, Rc<dyn Listener>)> {
    with(|world| {
        let id = world.current()?;
        Some((id, world.conns[id].listener.upgrade()?))
    })
}

/// The server accepts the handshake of the current connection, choosing `protocol`; false
/// if there is no connection opening.
pub(crate) fn open(protocol: &str) -> bool {
    let Some((id, listener)) = listener() else {
        return false;
    };
    let opening = with(|world| {
        let conn = &mut world.conns[id];
        if conn.state != State::Connecting {
            return false;
        }
        conn.state = State::Open;
        conn.open_at = Some(world.now);
        conn.protocol = protocol.to_owned();
        true
    });
    if opening {
        listener.opened();
        run();
    }
    opening
}

/// The server sends `message` on the current connection: read as soon as the listener has
/// room for it. False if no connection is open.
pub(crate) fn receive(message: Message) -> bool {
    let open = with(|world| {
        let Some(id) = world.current() else {
            return false;
        };
        let conn = &mut world.conns[id];
        let open = conn.state == State::Open;
        if open {
            conn.inbox.push_back(Incoming::Message(message));
        }
        open
    });
    run();
    open
}

/// The current connection fails: before it opened, an error and then a close with 1006; after,
/// a close with 1006 only (as natively). False if there is none.
pub(crate) fn fail() -> bool {
    let Some((id, listener)) = listener() else {
        return false;
    };
    let state = with(|world| {
        let conn = &mut world.conns[id];
        conn.inbox.clear();
        std::mem::replace(&mut conn.state, State::Closed)
    });
    if state == State::Closed {
        return false;
    }
    // Each event on its own handle, as every transport does: the error callback may drop
    // the socket's last handle, and the close then reaches no one.
    if state == State::Connecting {
        listener.failed(false);
    } else {
        drop(listener);
    }
    let listener = with(|world| {
        let conn = &world.conns[id];
        (!conn.released).then(|| conn.listener.upgrade()).flatten()
    });
    if let Some(listener) = listener {
        listener.closed(CloseEvent::new(1006, "", false));
    }
    run();
    true
}

/// The current connection fails while connecting as WebKit fails an attempt it refuses
/// itself (to a port it blocks): an error event while still connecting, and no close ever.
/// False if there is none, or it is not connecting.
pub(crate) fn fail_without_close() -> bool {
    let Some((id, listener)) = listener() else {
        return false;
    };
    let connecting = with(|world| world.conns[id].state == State::Connecting);
    if !connecting {
        return false;
    }
    // The transport says what WebKit's socket says: still connecting.
    listener.failed(true);
    with(|world| world.conns[id].state = State::Closed);
    run();
    true
}

/// The server's close frame is read (the connection is closing) but not yet reported.
pub(crate) fn half_close() -> bool {
    with(|world| {
        let Some(id) = world.current() else {
            return false;
        };
        let conn = &mut world.conns[id];
        let open = conn.state == State::Open;
        if open {
            conn.state = State::Closing;
        }
        open
    })
}

/// The current connection closes with `event`, once what came before it has been read.
/// False if there is none (or it has not opened: see [`fail`]).
pub(crate) fn close(event: CloseEvent) -> bool {
    let closing = with(|world| {
        let Some(id) = world.current() else {
            return false;
        };
        let conn = &mut world.conns[id];
        let closing = matches!(conn.state, State::Open | State::Closing);
        if closing {
            conn.inbox.push_back(Incoming::Close(event));
        }
        closing
    });
    run();
    closing
}

/// The echo server with its test controls (`wsecho --test-controls`), on the current
/// connection while it is open: answers, in order, what the connection took that it has not
/// answered yet, including what the application sends in answer to its answers. `!drop` drops the
/// connection ([`fail`]); `!close CODE REASON` closes it, cleanly, and nothing after it is
/// answered; other text comes back as `Received:  TEXT`, binary as it is. A server that stalls
/// is one that is not asked to serve. How many messages it answered.
pub(crate) fn serve() -> usize {
    let mut answered = 0;
    loop {
        let next = with(|world| {
            let id = world.current()?;
            let conn = &mut world.conns[id];
            if conn.state != State::Open || conn.served_close {
                return None;
            }
            let (_, message) = conn.sent.get(conn.answered)?;
            let message = message.clone();
            conn.answered += 1;
            if let Message::Text(text) = &message
                && text.starts_with("!close")
            {
                conn.served_close = true;
            }
            Some(message)
        });
        let Some(message) = next else {
            return answered;
        };
        answered += 1;
        match message {
            Message::Text(text) if text == "!drop" => {
                fail();
            }
            Message::Text(text) if text.starts_with("!close") => {
                let mut words = text.splitn(3, ' ').skip(1);
                let code = words.next().and_then(|code| code.parse().ok());
                let reason = words.next().unwrap_or_default();
                close(CloseEvent::new(code.unwrap_or(1000), reason, true));
            }
            Message::Text(text) => {
                receive(Message::Text(format!("Received:  {text}")));
            }
            binary => {
                receive(binary);
            }
        }
    }
}

/// The network's writes caught up: nothing buffered any more.
pub(crate) fn flush() {
    with(|world| {
        for conn in &mut world.conns {
            conn.buffered = 0;
        }
    });
}

/// Lets the current connection read what waits for it, while its listener has room.
/// Whether it read anything.
fn read() -> bool {
    let mut any = false;
    loop {
        let Some((id, listener)) = listener() else {
            return any;
        };
        let next = with(|world| match world.conns[id].inbox.front() {
            Some(Incoming::Message(_)) => Some(false),
            Some(Incoming::Close(_)) => Some(true),
            None => None,
        });
        match next {
            None => return any,
            Some(false) if !listener.may_read() => {
                // As natively: wait for room (a stream read, or a short pause).
                if !with(|world| std::mem::replace(&mut world.waiting_room, true)) {
                    spawn(async move {
                        listener.wait_for_room().await;
                        with(|world| world.waiting_room = false);
                    });
                }
                return any;
            }
            _ => {}
        }
        let incoming = with(|world| {
            let now = world.now;
            let conn = &mut world.conns[id];
            let incoming = conn.inbox.pop_front();
            match &incoming {
                Some(Incoming::Message(message)) => conn.heard.push((now, message.clone())),
                Some(Incoming::Close(_)) => conn.state = State::Closed,
                None => {}
            }
            incoming
        });
        any = true;
        match incoming {
            Some(Incoming::Message(message)) => listener.received(message),
            Some(Incoming::Close(event)) => listener.closed(event),
            None => {}
        }
    }
}
