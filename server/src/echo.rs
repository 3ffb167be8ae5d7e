//! One WebSocket connection, from the `101` to the end of the close handshake: the seed's
//! `Echo` handler, plus the parts of RFC 6455 the seed left to chance. A protocol error gets a
//! Close frame with its code instead of a dropped socket, and the loop keeps reading after the
//! client's Close so the handshake completes.
//!
//! [`Handler`] owns the connection, in the way mini-redis's `Handler` does: its fields are the
//! connection's state, and each method does one thing: wait for the next event, answer a
//! message, keep a silent peer alive, close, or fail the connection.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::{ArcWake, AtomicWaker};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::{debug, info};

use crate::Server;
use crate::config::WIDE_BUFFER;
use crate::controls::{self, Command};
use crate::deflate::{self, Inflate, InflateError, Negotiated, Reading};
use crate::read_ahead::ReadAhead;
use crate::telemetry;
use crate::utf8_guard::{self, Utf8Guard};

/// After the connection fails, how long the server reads and discards what the client still
/// sends, so that the client reads our Close and then the end of the stream ...
const LINGER_TIME: Duration = Duration::from_secs(2);
/// ... and how much at most. Closing a socket with unread data makes the kernel send a reset
/// instead of a FIN, and a client that gets the reset while still sending (the rest of a
/// message over the limit) reports 1006, not our code; Windows even discards what it had
/// received.
const LINGER_BYTES: usize = 16 << 20;

/// A message longer than this grows tungstenite's buffers past their idle size (its read
/// buffer starts at 512 bytes, its write buffer at nothing), and they keep what they grew to.
const SMALL_MESSAGE: usize = 256;

/// How long a connection whose buffers grew must be silent before it is renewed (`renew`):
/// a busy one is looked at ten times a second, and an idle one gives its buffers back
/// before many others have allocated around them. With a second here, connections that
/// arrived meanwhile left the freed buffers as holes smaller than a page between their own
/// allocations: 5.3 KiB per idle connection after a 2 KiB message, against 4.0 at 100 ms
/// (benchmark scenario 4b, with the connection's task of then; BENCHMARKS.md has today's).
const SETTLE: Duration = Duration::from_millis(100);

/// A keepalive deadline too far to be held by an `Instant` (a configured interval of
/// centuries) is set this far instead: a year, as good as never.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

/// The socket stack of one WebSocket: tungstenite over the UTF-8 guard over the inflating
/// layer (inert unless permessage-deflate was negotiated) over the read-ahead buffer over the
/// connection (TCP or TLS).
pub(crate) type Socket<I> = WebSocketStream<Utf8Guard<Inflate<ReadAhead<I>>>>;

/// Wraps an upgraded connection, and the bytes hyper had read past the handshake, in the
/// socket stack.
///
/// The stack is made here, and tokio-tungstenite's future, which holds it (and is ready at
/// once), on the heap for the moment it takes: an `async fn` would hold its arguments twice
/// (over TLS the connection is a few KiB), and the caller's state while it waits would hold
/// the whole stack, making every connection's task, which is as large as its largest state,
/// larger for the connection's life.
pub(crate) fn open<I>(
    io: I,
    mut already_read: Vec<u8>,
    deflate: Option<Negotiated>,
    server: &Server,
) -> Pin<Box<impl Future<Output = Socket<I>> + use<I>>>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let config = server.config.websocket();
    let max_size = server.config.max_message_size;
    // With deflate on, what was already read may be compressed: it goes through the
    // inflating layer, and tungstenite and the guard see it from there.
    let for_inflate = match deflate {
        Some(_) => std::mem::take(&mut already_read),
        None => Vec::new(),
    };
    let reading = deflate.map(|_| Reading::server(max_size));
    let inflate = Inflate::new(ReadAhead::new(io), reading, for_inflate);
    let guarded = Utf8Guard::new(inflate, &already_read, max_size);
    Box::pin(WebSocketStream::from_partially_read(
        guarded,
        already_read,
        Role::Server,
        Some(config),
    ))
}

/// One WebSocket connection and its state.
pub(crate) struct Handler<'a, I> {
    socket: Socket<I>,
    /// The client, for the log.
    peer: SocketAddr,
    /// The configuration and the signals every connection shares.
    server: &'a Server,
    /// The keepalive clock, set for the next thing it has to do ([`Handler::next_keepalive`]):
    /// ping a silent peer, close an idle one, give up on an unanswered Close; or, while the
    /// buffers are grown, look at renewing the socket. It is not reset on every message:
    /// when it goes off, it looks at when the peer was last heard and sets itself again.
    keepalive: Interval,
    /// When the peer last sent a message.
    last_heard: Instant,
    /// Our Close is sent: from now on the loop only waits for the peer's answer.
    closing: bool,
    /// Replies are queued in tungstenite's write buffer but not yet written.
    unflushed: bool,
    /// A large message, or a batch of replies, has grown tungstenite's buffers since the
    /// socket was last renewed; the keepalive clock then ticks [`SETTLE`] after the peer
    /// falls silent.
    grown: bool,
    /// The socket reads in wide windows (`Config::websocket_wide`): the peer was heavy.
    wide: bool,
    /// The last poll of the socket's read was pending (and nothing was read since): then
    /// tungstenite's read buffer holds no whole frame.
    read_pending: bool,
    /// That poll left a wake-up arranged, in this same poll of the task: the wait that follows
    /// need not poll the socket again before it first sleeps ([`SkipFirst`]).
    read_armed: bool,
    /// The last message taken was text or binary, answered with a reply ([`Handler::answer`]).
    echoing: bool,
    /// How many messages tungstenite gave (wrapping), to compare with what the UTF-8 guard
    /// handed up ([`Handler::holds_no_message`]).
    received: u32,
    /// permessage-deflate, if negotiated: replies over the threshold go out compressed.
    deflate: Option<Negotiated>,
    /// What the connection did, for its closing log line and the metrics.
    tally: Tally,
}

/// What the loop waits for.
enum Event {
    /// The server is shutting down.
    Shutdown,
    /// The outage test control drops every connection.
    Dropped,
    /// The keepalive clock ticked.
    Tick,
    /// A message, a read error, or the end of the stream (`None`).
    Received(Option<Result<Message, Error>>),
}

/// What the loop does after an event: each handler method decides, and the loop alone writes,
/// so that the task's future holds one write in progress at a time, not one for each method
/// (every idle connection's task is as large as its largest state).
enum Step {
    /// Queue a reply to the peer's message.
    Queue(Message),
    /// Send a message of the server's own now (a ping, a Close).
    Send(Message),
    /// Nothing to write: wait for the next event.
    Continue,
    /// End the connection.
    Stop,
    /// A test control takes the connection over for a while (`controls::Takeover`).
    Control(controls::Takeover),
}

impl<'a, I> Handler<'a, I>
where
    I: AsyncRead + AsyncWrite + Unpin + 'static,
{
    /// A handler for `socket`, whose handshake is done.
    pub(crate) fn new(
        socket: Socket<I>,
        deflate: Option<Negotiated>,
        peer: SocketAddr,
        server: &'a Server,
    ) -> Self {
        info!(%peer, "connection opened");
        let now = Instant::now();
        let interval = server.config.ping_interval;
        // Set for the first ping; `next_keepalive` sets it from then on (the interval's own
        // period only matters should a tick ever go unanswered by a new deadline).
        let mut keepalive = interval_at(now + interval, interval);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut handler = Handler {
            socket,
            peer,
            server,
            keepalive,
            last_heard: now,
            closing: false,
            unflushed: false,
            grown: false,
            wide: false,
            read_pending: false,
            read_armed: false,
            echoing: false,
            received: 0,
            deflate,
            tally: Tally::new(now),
        };
        let first = handler.next_keepalive();
        handler.keepalive.reset_at(first);
        handler
    }

    /// Echoes messages until the connection ends: text as `prefix + text`, binary unchanged;
    /// with test controls on, text that is a [`controls`] command is obeyed instead.
    ///
    /// `drop_all`, when given, ends the connection abruptly when it hears (the outage control);
    /// it is subscribed before the handshake is answered, so that no connection can miss it.
    ///
    /// The handler comes boxed: an `async fn` holds its arguments twice for the connection's
    /// life, once as passed and once as its own bindings of them (rust-lang/rust#62958), and
    /// the handler is 624 bytes, a box 8.
    pub(crate) async fn run(mut self: Box<Self>, mut drop_all: Option<broadcast::Receiver<()>>) {
        // The signals are waited on by futures made once, not once a message: a `changed()`
        // or `recv()` made afresh joins and leaves its channel's waiter list each time.
        let mut shutdown = self.server.shutdown.clone();
        let shutting_down = shutdown.changed();
        tokio::pin!(shutting_down);
        let can_drop = drop_all.is_some();
        let dropped = async { drop_all.as_mut()?.recv().await.ok() };
        tokio::pin!(dropped);
        let signals = Arc::new(Signals::default());
        let signal_waker = futures_util::task::waker(signals.clone());
        loop {
            let event = match self.already_received().await {
                Some(received) => Event::Received(received),
                None => {
                    if self.flush().await.is_break() {
                        break;
                    }
                    if self.may_widen().await {
                        // On the heap, as a renewal on a tick.
                        self.socket = Box::pin(renew(self.socket, self.server, true)).await;
                        self.wide = true;
                        self.read_armed = false;
                        self.grew();
                    }
                    // The socket was polled just now, pending, and the task has not slept
                    // since: polling it again before the wait first sleeps would only find it
                    // pending again, at the cost of a trip through every layer (about 500
                    // instructions a message in benchmark scenario 2). Its wake-up is arranged
                    // with this task's waker, and a wake-up that comes while the task runs
                    // has it polled again.
                    let skip = std::mem::take(&mut self.read_armed);
                    let mut received = SkipFirst::new(self.socket.next(), skip);
                    let (closing, keepalive) = (self.closing, &mut self.keepalive);
                    std::future::poll_fn(|cx| {
                        // The socket first, since a message is what usually wakes the task.
                        // A busy connection still hears the signals: the socket's reads
                        // count against tokio's cooperative budget, so a peer that never lets
                        // it be pending gets a pending read within 128.
                        if let Poll::Ready(received) = Pin::new(&mut received).poll(cx) {
                            return Poll::Ready(Event::Received(received));
                        }
                        if !signals.take_fired(cx) {
                            return Poll::Pending;
                        }
                        let mut cx = Context::from_waker(&signal_waker);
                        if !closing && shutting_down.as_mut().poll(&mut cx).is_ready() {
                            return Poll::Ready(Event::Shutdown);
                        }
                        if can_drop && dropped.as_mut().poll(&mut cx).is_ready() {
                            return Poll::Ready(Event::Dropped);
                        }
                        match keepalive.poll_tick(&mut cx) {
                            Poll::Ready(_) => Poll::Ready(Event::Tick),
                            Poll::Pending => Poll::Pending,
                        }
                    })
                    .await
                }
            };
            if !matches!(event, Event::Received(_)) {
                // A signal was taken, or a tick resets the clock and its wake-up with it:
                // the next wait polls them all again.
                signals.fire();
            }
            let step = match event {
                Event::Shutdown => {
                    let answer_by = Instant::now() + self.server.config.close_timeout;
                    self.go_away("server shutting down", answer_by)
                }
                Event::Dropped | Event::Received(None) => Step::Stop,
                // Our Close went unanswered for the close timeout: the peer is let go.
                Event::Tick if self.closing => Step::Stop,
                Event::Tick if self.grown => {
                    if self.may_renew().await {
                        // On the heap: the socket stack is a few hundred bytes, and every
                        // connection's task would hold room for it.
                        self.socket = Box::pin(renew(self.socket, self.server, false)).await;
                        self.wide = false;
                        self.server.memory.renewed();
                    }
                    Step::Continue
                }
                Event::Tick => self.keep_alive(),
                Event::Received(Some(Ok(message))) => {
                    self.received = self.received.wrapping_add(1);
                    self.answer(message)
                }
                Event::Received(Some(Err(error))) => {
                    // On the heap: a connection fails once, and most never do.
                    Box::pin(self.fail(error)).await;
                    Step::Stop
                }
            };
            let flow = match step {
                // Queued, not written: if more messages are already here, their replies go
                // out with this one in a single write. The loop flushes before it waits.
                Step::Queue(reply) => {
                    if self.unflushed {
                        // A batch: the write buffer holds every reply until the flush.
                        self.grew();
                    }
                    self.unflushed = true;
                    let queued = within(self.send_timeout(), self.socket.feed(reply)).await;
                    self.check_write(queued)
                }
                // A ping or a Close of the server's own: a peer that does not read gets the
                // send timeout, but no longer than the idle bound leaves it.
                Step::Send(message) => {
                    let limit = self.send_timeout().min(self.until_let_go());
                    let sent = within(limit, self.socket.send(message)).await;
                    self.check_write(sent)
                }
                Step::Continue => ControlFlow::Continue(()),
                Step::Stop => ControlFlow::Break(()),
                // On the heap, like a failure: only tests take a connection over.
                Step::Control(takeover) => {
                    let timeout = self.send_timeout();
                    let run = takeover.run(&mut self.socket, shutting_down.as_mut(), timeout);
                    let flow = match Box::pin(run).await {
                        Ok(flow) => flow,
                        Err(error) => self.check_write(Err(error)),
                    };
                    // The takeover waited on the shutdown with the task's own waker.
                    signals.fire();
                    flow
                }
            };
            if flow.is_break() {
                break;
            }
        }
        self.tally.log(self.peer);
    }

    /// While replies are queued, a message that has already arrived: its reply then leaves
    /// in the same write as theirs. `None` when nothing is queued or nothing is waiting.
    /// A heavy peer's socket is looked at too, to learn whether it may be widened now.
    async fn already_received(&mut self) -> Option<Option<Result<Message, Error>>> {
        self.read_pending = false;
        self.read_armed = false;
        let widen = self.wants_wide();
        if !self.unflushed && !widen {
            return None;
        }
        if !widen && self.holds_no_message() {
            // Nothing in tungstenite's buffer, so its read would go to the socket: asking the
            // socket alone is enough (about 600 instructions a message fewer in benchmark
            // scenario 2, where this is pending every time), and arranges the same wake-up.
            let readable = std::future::poll_fn(|cx| {
                let layers = self.socket.get_mut().get_mut().get_mut();
                Poll::Ready(layers.poll_readable(cx))
            });
            if readable.await.is_pending() {
                self.read_pending = true;
                self.read_armed = true;
                return None;
            }
        }
        // For a heavy peer, reads stop at the end of a message, where tungstenite's buffer
        // is empty and the socket can be widened; the wait's own poll reads on.
        if widen {
            self.socket.get_mut().hold_at_message_end(true);
        }
        let polled = futures_util::poll!(self.socket.next());
        if widen {
            self.socket.get_mut().hold_at_message_end(false);
        }
        match polled {
            Poll::Ready(received) => Some(received),
            Poll::Pending => {
                self.read_pending = true;
                // Held at a message end, a pending read arranges no wake-up.
                self.read_armed = !widen;
                None
            }
        }
    }

    /// Whether tungstenite holds no whole message that it has not given yet, and its next read
    /// would go to the socket with nothing else to do first: the UTF-8 guard handed it up as
    /// many messages as it gave, and the last was data, whose reply the flush that follows
    /// writes with anything tungstenite queued meanwhile (a pong). Not after a control
    /// message (a Close's answer ends the stream at the next read), not with deflate (the
    /// inflating layer holds bytes of its own), not once our Close is sent.
    fn holds_no_message(&mut self) -> bool {
        self.echoing
            && !self.closing
            && self.deflate.is_none()
            && self.socket.get_ref().messages_handed_up() == Some(self.received)
    }

    /// Whether the peer sends enough at once for wide reads (`read_ahead`), and the socket
    /// does not read in them yet.
    fn wants_wide(&mut self) -> bool {
        !self.wide && !self.closing && self.socket.get_mut().get_mut().get_mut().is_heavy()
    }

    /// Whether the socket may be renewed with wide reads now: the peer is heavy, and nothing
    /// of tungstenite's state can be lost (as in [`Handler::may_renew`]: its read was pending,
    /// what it was handed ends a message, and nothing waits to be written). Not while
    /// closing: the renewed socket would not know our Close was sent.
    async fn may_widen(&mut self) -> bool {
        if !self.read_pending || !self.wants_wide() {
            return false;
        }
        if !self.socket.get_ref().at_message_boundary() {
            return false;
        }
        let flushed = futures_util::poll!(self.socket.flush());
        matches!(flushed, Poll::Ready(Ok(())))
    }

    /// Writes out the queued replies, if any, before the loop waits.
    async fn flush(&mut self) -> ControlFlow<()> {
        if !self.unflushed {
            return ControlFlow::Continue(());
        }
        self.unflushed = false;
        let flushed = match futures_util::poll!(self.socket.flush()) {
            Poll::Ready(flushed) => flushed,
            Poll::Pending => {
                // The task sleeps until the peer reads: a wake-up of the read may be spent
                // meanwhile, so the wait must poll the socket afresh.
                self.read_armed = false;
                within(self.send_timeout(), self.socket.flush()).await
            }
        };
        self.check_write(flushed)
    }

    /// The answer to one message from the peer.
    fn answer(&mut self, message: Message) -> Step {
        self.last_heard = Instant::now();
        self.echoing = false;
        match message {
            // Our Close is sent: no data may follow it (RFC 6455 section 5.5.1), so what the
            // peer sent meanwhile goes unanswered while we wait for its Close.
            Message::Text(_) | Message::Binary(_) if self.closing => Step::Continue,
            Message::Text(text) => {
                let command = self
                    .server
                    .config
                    .test_controls
                    .then(|| controls::parse(&text));
                if let Some(Some(command)) = command {
                    return self.obey(command);
                }
                debug!(peer = %self.peer, "Received back from client: {text}");
                self.echoing = true;
                self.count(text.len());
                let prefix = self.server.config.prefix.as_str();
                let reply = if prefix.is_empty() {
                    text
                } else {
                    Utf8Bytes::from(format!("{prefix}{text}"))
                };
                debug!(peer = %self.peer, "Sending to client: {reply}");
                Step::Queue(self.compress(Message::Text(reply)))
            }
            Message::Binary(data) => {
                debug!(peer = %self.peer, bytes = data.len(), "binary message");
                self.echoing = true;
                self.count(data.len());
                Step::Queue(self.compress(Message::Binary(data)))
            }
            // tungstenite answers the Close with the same code and ends the stream once the
            // answer is written: reading on is what completes the close handshake.
            Message::Close(frame) => {
                if !self.closing {
                    self.tally.close_code = frame.map(|frame| frame.code);
                }
                Step::Continue
            }
            // Pings are answered by tungstenite on the next read or write.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Step::Continue,
        }
    }

    /// Counts a message for the tally; a large one marks the buffers grown.
    fn count(&mut self, bytes: usize) {
        self.tally.count(bytes);
        if bytes > SMALL_MESSAGE {
            self.grew();
        }
    }

    /// Marks tungstenite's buffers grown, and sets the keepalive clock to tick once the
    /// peer may have fallen silent ([`Handler::may_renew`] then decides). Not while our
    /// Close waits for its answer: the clock then keeps the close timeout.
    fn grew(&mut self) {
        if !self.grown {
            self.grown = true;
            if !self.closing {
                self.keepalive.reset_after(SETTLE);
            }
        }
    }

    /// On a tick while the buffers are grown: whether the socket may be renewed now. It may
    /// once the peer has been silent for [`SETTLE`], no frame nor fragmented message is cut
    /// off in what tungstenite was handed (the tick came from a wait in which its read was
    /// pending, so then its read buffer holds nothing), and nothing waits to be written (a
    /// pong to a ping read meanwhile). A peer heard from lately sets the clock for when it
    /// may be; one in the middle of a message is left as it is until its next large one, or
    /// looked at again after [`SETTLE`] if its socket is wide, unless the keepalive is due
    /// first (the keepalive, and the idle bound, never wait for a renewal).
    async fn may_renew(&mut self) -> bool {
        if self.last_heard.elapsed() < SETTLE {
            self.keepalive.reset_at(self.last_heard + SETTLE);
            return false;
        }
        self.grown = false;
        let next = self.next_keepalive();
        self.keepalive.reset_at(next);
        let renewable = self.socket.get_ref().at_message_boundary()
            && matches!(
                futures_util::poll!(self.socket.flush()),
                Poll::Ready(Ok(()))
            );
        let again = Instant::now() + SETTLE;
        if !renewable && self.wide && again < next {
            // A wide socket holds a wide read buffer: look again after a while.
            self.grown = true;
            self.keepalive.reset_at(again);
        }
        renewable
    }

    /// A reply as it goes out: compressed if deflate is on and it is large enough.
    fn compress(&self, reply: Message) -> Message {
        // Checked here, where it is inlined: the call moves the message twice for nothing.
        if self.deflate.is_none() {
            return reply;
        }
        let threshold = self.server.config.deflate_threshold;
        deflate::compress(reply, self.deflate, threshold)
    }

    /// Carries out a test control.
    fn obey(&mut self, command: Command) -> Step {
        match command {
            Command::Close(frame) => {
                self.closing = true;
                let answer_by = Instant::now() + self.server.config.close_timeout;
                self.keepalive.reset_at(answer_by);
                self.tally.close_code = Some(frame.code);
                Step::Queue(Message::Close(Some(frame)))
            }
            Command::Drop => Step::Stop,
            Command::Outage(duration) => {
                self.server.controls.start_outage(duration);
                Step::Stop
            }
            Command::Takeover(takeover) => Step::Control(takeover),
        }
    }

    /// How long a write may wait for a peer that does not read.
    fn send_timeout(&self) -> Duration {
        self.server.config.send_timeout
    }

    /// Whether the connection goes on after a write: a peer that does not read within the
    /// send timeout, or a broken connection, ends it.
    fn check_write(&self, written: Result<(), Error>) -> ControlFlow<()> {
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(error) => {
                debug!(peer = %self.peer, %error, "write failed");
                ControlFlow::Break(())
            }
        }
    }

    /// On a tick of the keepalive clock: closes a peer silent for [`Config::close_after`]
    /// (1001), so that it is let go at the idle timeout if it never answers; pings a peer
    /// silent for a ping interval (and every interval after); and sets the clock again.
    ///
    /// Issue 33: the clock once ticked every ping interval, so the idle check came up to an
    /// interval late, and an unanswered Close then waited another whole interval: a vanished
    /// client was let go 180.8 s after its last message, where 120 s was promised. Now the
    /// clock is set for each deadline itself, and the Close's wait is part of the bound.
    ///
    /// [`Config::close_after`]: crate::Config::close_after
    fn keep_alive(&mut self) -> Step {
        let config = &self.server.config;
        let silent = self.last_heard.elapsed();
        if silent >= config.close_after() {
            // The Close's answer is awaited until the idle timeout, which it was sent early
            // for (or at once, should this tick have come late).
            let answer_by = self.let_go_at().max(Instant::now());
            return self.go_away("idle", answer_by);
        }
        let next = self.next_keepalive();
        self.keepalive.reset_at(next);
        if silent >= config.ping_interval {
            Step::Send(Message::Ping(Default::default()))
        } else {
            // Heard from since the clock was set: nothing to do yet.
            Step::Continue
        }
    }

    /// When the keepalive clock next has something to do: the next ping (after every whole
    /// ping interval of silence) or the idle Close, whichever comes first.
    fn next_keepalive(&self) -> Instant {
        let config = &self.server.config;
        let interval = config.ping_interval.max(Duration::from_millis(1));
        let silent = self.last_heard.elapsed();
        let pings = silent.as_nanos() / interval.as_nanos() + 1;
        let pings = u32::try_from(pings).unwrap_or(u32::MAX);
        let ping = interval.saturating_mul(pings);
        let next = ping.min(config.close_after());
        // A deadline past what `Instant` can hold is as good as never.
        (self.last_heard.checked_add(next)).unwrap_or_else(|| Instant::now() + FAR_FUTURE)
    }

    /// When a peer silent from now on is let go: the idle timeout after it was last heard.
    fn let_go_at(&self) -> Instant {
        let idle = self.server.config.idle_timeout;
        (self.last_heard.checked_add(idle)).unwrap_or_else(|| Instant::now() + FAR_FUTURE)
    }

    /// How long until an idle peer is let go: a write of the keepalive's may wait no longer.
    fn until_let_go(&self) -> Duration {
        self.let_go_at().saturating_duration_since(Instant::now())
    }

    /// Starts the closing handshake with 1001: the server ends the connection itself (idle,
    /// or shutting down). The loop then waits for the peer's Close until `answer_by`, and
    /// lets the connection go then.
    fn go_away(&mut self, reason: &'static str, answer_by: Instant) -> Step {
        self.closing = true;
        self.keepalive.reset_at(answer_by);
        self.tally.close_code = Some(CloseCode::Away);
        let close = CloseFrame {
            code: CloseCode::Away,
            reason: reason.into(),
        };
        Step::Send(Message::Close(Some(close)))
    }

    /// Fails the connection after a read error that is the peer's fault: sends the Close
    /// with its code, ends our side of the stream, and reads and discards what the peer still
    /// sends (bounded), so that the peer reads the Close and then a FIN, not a reset.
    ///
    /// tokio-tungstenite ends its stream for good after any error, so the rest is done on
    /// the socket under it.
    async fn fail(&mut self, error: Error) {
        debug!(peer = %self.peer, %error, "read failed");
        let Some(frame) = close_frame_for(&error) else {
            return;
        };
        self.tally.close_code = Some(frame.code);
        let close = Message::Close(Some(frame));
        let sent = within(self.send_timeout(), self.socket.send(close)).await;
        if self.check_write(sent).is_break() {
            return;
        }
        let socket = self.socket.get_mut().get_mut().get_mut();
        let _ = tokio::time::timeout(LINGER_TIME, linger(socket)).await;
    }
}

/// The same connection in a fresh tungstenite socket: with small buffers again (tungstenite
/// keeps the capacity its read and write buffers grew to for the life of the socket, and
/// offers no way to shrink them), or with wide reads for a heavy peer (`wide`; tungstenite
/// sets its read window only when a socket is made). Only tungstenite's state is replaced;
/// the layers under it, and what they know of the stream, stay. Called only where nothing of
/// tungstenite's state is lost: see [`Handler::may_renew`] and [`Handler::may_widen`].
async fn renew<I>(socket: Socket<I>, server: &Server, wide: bool) -> Socket<I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let config = match wide {
        true => server.config.websocket_wide(),
        false => server.config.websocket(),
    };
    let mut layers = socket.into_inner();
    layers.get_mut().get_mut().set_wide(wide);
    if !wide {
        return WebSocketStream::from_raw_socket(layers, Role::Server, Some(config)).await;
    }
    // tungstenite makes its read buffer from the bytes it is handed, keeping their
    // allocation (`BytesMut::from_iter` collects the `Vec` in place): an empty one with room
    // for a few windows ([`WIDE_BUFFER`]), where its own would be one window long.
    let buffer = Vec::with_capacity(WIDE_BUFFER);
    WebSocketStream::from_partially_read(layers, buffer, Role::Server, Some(config)).await
}

/// Shuts down the write side, then reads until the peer's end of stream or [`LINGER_BYTES`].
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(socket: &mut S) -> std::io::Result<()> {
    socket.shutdown().await?;
    // On the heap, and only now: a buffer in this future would make every connection's task
    // larger, idle or not.
    let mut discard = vec![0; 16 << 10];
    let mut left = LINGER_BYTES;
    while left > 0 {
        match socket.read(&mut discard).await? {
            0 => break,
            n => left = left.saturating_sub(n),
        }
    }
    Ok(())
}

/// The waker of the signals the wait watches beside the socket (the shutdown, the outage
/// control, the keepalive clock): it wakes the task and notes that one of them may be ready.
/// The wait polls them only then, and after any event but a message (one was taken, or the
/// clock reset with its wake-up), rather than on every wait: they were about 250
/// instructions a message of 4,258 in benchmark scenario 2 (callgrind), a lock of the
/// shutdown channel's waiter list among them.
struct Signals {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            // The first wait polls them, and so registers this waker with each.
            fired: AtomicBool::new(true),
            task: AtomicWaker::new(),
        }
    }
}

impl Signals {
    /// Marks them to be polled at the next wait.
    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
    }

    /// Whether they are to be polled now; either way, the task `cx` is woken by them.
    fn take_fired(&self, cx: &Context<'_>) -> bool {
        self.task.register(cx.waker());
        self.fired.swap(false, Ordering::AcqRel)
    }
}

impl ArcWake for Signals {
    fn wake_by_ref(signals: &Arc<Self>) {
        signals.fire();
        signals.task.wake();
    }
}

/// A future that is pending at its first poll without polling the future it wraps, if told
/// to skip: for a read that was just polled pending, in the same poll of the task (see
/// [`Handler::run`]).
struct SkipFirst<F> {
    inner: F,
    skip: bool,
}

impl<F> SkipFirst<F> {
    fn new(inner: F, skip: bool) -> Self {
        SkipFirst { inner, skip }
    }
}

impl<F: Future + Unpin> Future for SkipFirst<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if std::mem::take(&mut self.skip) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// Runs a write, giving a peer that does not read `limit` to make room for it. The timer is
/// set only when the write cannot complete at once, so the common case costs no timer.
///
/// Not an `async fn`, which would hold the write twice (rust-lang/rust#62958), and the timer
/// on the heap, only when it is set: the loop's future holds this one while it waits, and
/// every connection's task is as large as its largest state, for its whole life.
#[allow(clippy::manual_async_fn)] // an `async fn` holds its arguments twice
fn within<F>(limit: Duration, mut writing: F) -> impl Future<Output = Result<(), Error>>
where
    F: Future<Output = Result<(), Error>> + Unpin,
{
    async move {
        match futures_util::poll!(&mut writing) {
            Poll::Ready(result) => result,
            Poll::Pending => match Box::pin(tokio::time::timeout(limit, &mut writing)).await {
                Ok(result) => result,
                Err(_) => Err(Error::Io(std::io::ErrorKind::TimedOut.into())),
            },
        }
    }
}

/// The Close frame that reports a read error to the client, if the error is the client's fault.
pub(crate) fn close_frame_for(error: &Error) -> Option<CloseFrame> {
    let (code, reason) = match error {
        Error::Protocol(_) => (CloseCode::Protocol, "protocol error"),
        Error::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8 in a text message"),
        Error::Io(error) if utf8_guard::is_invalid_utf8(error) => {
            (CloseCode::Invalid, "invalid UTF-8 in a text message")
        }
        Error::Io(error) => match deflate::inflate_error(error) {
            Some(InflateError::TooBig) => (CloseCode::Size, "message too big"),
            Some(InflateError::Corrupt) => (CloseCode::Invalid, "invalid compressed data"),
            None => return None,
        },
        Error::Capacity(CapacityError::MessageTooLong { .. }) => {
            (CloseCode::Size, "message too big")
        }
        _ => return None,
    };
    Some(CloseFrame {
        code,
        reason: reason.into(),
    })
}

/// What one connection did: counted once, for its closing log line and for the metrics.
struct Tally {
    started: Instant,
    messages: u64,
    bytes: u64,
    close_code: Option<CloseCode>,
    metrics: telemetry::Connection,
}

impl Tally {
    fn new(started: Instant) -> Self {
        Tally {
            started,
            messages: 0,
            bytes: 0,
            close_code: None,
            metrics: telemetry::Connection::opened(),
        }
    }

    /// Counts a message echoed.
    fn count(&mut self, bytes: usize) {
        self.messages += 1;
        self.bytes += bytes as u64;
        self.metrics.message(bytes);
    }

    /// The closing log line and metrics.
    fn log(self, peer: SocketAddr) {
        let close_code = self.close_code.map(u16::from);
        info!(
            %peer,
            duration_ms = self.started.elapsed().as_millis() as u64,
            messages = self.messages,
            bytes = self.bytes,
            close_code,
            "connection closed"
        );
        self.metrics.closed(close_code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection's task is allocated at the size of its largest state, idle or not: a
    /// few hundred bytes more here are a few hundred bytes more per idle connection (the
    /// whole of it is about 3.5 KiB, BENCHMARKS.md scenario 4b). 1,960 bytes before issue 13's
    /// `Handler`, 1,968 after, 2,056 in a task of 2,816 bytes before issue 31's memory work;
    /// 624 since, in a task of 896 (the handler boxed, and no state holding a timer, the
    /// socket stack being made, or an argument twice).
    #[tokio::test]
    async fn the_handlers_future_stays_small() {
        let (io, _peer) = tokio::io::duplex(1024);
        let server = Server::for_tests();
        let socket = open(io, Vec::new(), None, &server).await;
        let peer = "127.0.0.1:1".parse().unwrap();
        let run = Box::new(Handler::new(socket, None, peer, &server)).run(None);
        let size = std::mem::size_of_val(&run);
        assert!(size <= 640, "the echo loop's future takes {size} bytes");
    }

    /// A heavy peer's tungstenite reads whole windows into its wide buffer: 16 frames of
    /// 16 KiB come in 9 reads (8 windows and a few bytes). With a buffer one window long (32
    /// KiB, two such frames but a few bytes), a frame cut off by a read was moved to the front
    /// of the buffer, and the read after it took only what was left of the buffer: 11 reads
    /// here, and one a message in benchmark scenario 3.
    #[tokio::test]
    async fn a_wide_socket_reads_whole_windows() {
        use crate::read_ahead::Counted;
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

        let (io, mut peer) = tokio::io::duplex(1 << 20);
        let server = Server::for_tests();
        let io = Counted {
            inner: io,
            reads: 0,
        };
        let socket = open(io, Vec::new(), None, &server).await;
        let mut socket = renew(socket, &server, true).await;
        let frames = 17;
        let mut sent = Vec::new();
        for i in 0..frames {
            let payload = vec![i as u8; 16 << 10];
            let mut frame = Frame::message(payload, OpCode::Data(Data::Binary), true);
            frame.header_mut().mask = Some([1, 2, 3, i as u8]);
            frame.format(&mut sent).unwrap();
        }
        // The first message and the next one's header, as a read under load may end; then
        // the rest.
        let (first, rest) = sent.split_at(sent.len() / frames + 8);
        peer.write_all(first).await.unwrap();
        let reads = |socket: &mut Socket<Counted<tokio::io::DuplexStream>>| {
            socket.get_mut().get_mut().get_mut().get_ref().reads
        };
        for i in 0..frames {
            let message = socket.next().await.unwrap().unwrap();
            assert_eq!(message, Message::Binary(vec![i as u8; 16 << 10].into()));
            if i == 0 {
                assert_eq!(reads(&mut socket), 1);
                peer.write_all(rest).await.unwrap();
            }
        }
        let reads = reads(&mut socket) - 1;
        assert!(reads <= 9, "{reads} reads for {} frames", frames - 1);
    }
}
