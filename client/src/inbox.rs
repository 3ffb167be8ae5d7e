//! The async side's plumbing: each stream made by `WebSocket::events` is an inbox that the
//! driver feeds, through the socket's [`Fan`]. Knows nothing of sockets.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_util::Stream;

use crate::event::Event;
use crate::message::CloseEvent;

/// Every event of a socket, in order; made by [`WebSocket::events`](crate::WebSocket::events).
/// Ends after the socket's last close event.
///
/// The browser cannot be told to stop receiving, so events wait here until read: read them.
#[derive(Debug)]
pub struct Events {
    inbox: Rc<RefCell<Inbox>>,
    /// The socket's transport waiting for room in the streams, woken when this one gives an
    /// event or goes away.
    #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
    room: Room,
}

/// Where a pulling transport waits for room in a socket's streams: see the driver's
/// `Listener::wait_for_room`.
#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
pub(crate) type Room = Rc<RefCell<Option<Waker>>>;

/// How long a transport waiting for room in the streams waits at most before it looks again:
/// a stream's read wakes it sooner.
#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
const ROOM_PAUSE: std::time::Duration = std::time::Duration::from_millis(16);

/// Where the socket leaves events for one stream: a queue and the waker of the task reading
/// it. Everything runs on the page's one thread, so a `RefCell` is all the locking needed.
#[derive(Debug, Default)]
struct Inbox {
    events: VecDeque<Event>,
    waker: Option<Waker>,
    /// The socket finished: no more events will come.
    ended: bool,
}

/// The socket's end of one [`Events`] stream. Dropping it ends the stream.
#[derive(Debug)]
pub(crate) struct Feed {
    inbox: Rc<RefCell<Inbox>>,
}

/// The socket's ends of its streams. The driver holds them as a `Box<dyn Fan>` that only
/// `WebSocket::events` makes, so that an application that makes no stream (the page) carries
/// none of their code: copying events, waking readers, ending streams. Few methods: each is in
/// the vtable of every program that makes a stream, called or not.
pub(crate) trait Fan {
    /// The streams.
    fn feeds(&mut self) -> &mut Vec<Feed>;
    /// Takes in the streams of `other`, made while these were out delivering.
    fn join(&mut self, other: Box<dyn Fan>);
    /// Gives `event` to every stream still read, and lets go of the others. Handed back when
    /// `keep` (a callback wants it): the streams get copies; otherwise the last one gets it
    /// itself.
    /// (Three arguments: with one more, the vtable's call would be of the type of
    /// wasm-bindgen's closure shims, which would keep them, live, in the page.)
    fn send(&mut self, event: Event, keep: bool) -> Option<Event>;
}

/// A fan without streams, for the first.
fn fan() -> Box<dyn Fan> {
    Box::new(Vec::new())
}

/// A socket's streams, as both drivers keep them (`socket.rs`, `thin.rs`): their fan, made by
/// the first stream so that a program that makes none carries none of its code, whether the
/// socket has finished, and its last close; and the URL of its latest attempt, which the
/// handle reads here rather than through a method of the drivers' vtable (in every program
/// that makes a driver, called or not).
#[derive(Default)]
pub(crate) struct Streams {
    fan: Cell<Option<Box<dyn Fan>>>,
    /// The socket finished and its last events were delivered: no stream can join.
    released: Cell<bool>,
    /// The last close delivered, for `WebSocket::closed`.
    last_close: Cell<Option<CloseEvent>>,
    /// The URL of the latest attempt, as the transport resolved it, for `WebSocket::url`.
    url: Cell<String>,
    /// Where a pulling transport waits for room in the streams.
    #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
    room: Room,
}

impl Streams {
    /// A new stream of the events from now on; ended at once once the socket has finished.
    pub(crate) fn join(&self) -> Events {
        let (feed, events) = channel();
        #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
        let events = events.with_room(self.room.clone());
        if !self.released.get() {
            let mut fan = self.fan.take().unwrap_or_else(fan);
            fan.feeds().push(feed);
            self.fan.set(Some(fan));
        }
        events
    }

    /// Gives `event` to every stream; handed back when `keep` (a callback wants it).
    pub(crate) fn deliver(&self, event: Event, keep: bool) -> Option<Event> {
        if let Event::Close(close) = &event {
            self.last_close.set(Some(close.clone()));
        }
        let Some(mut fan) = self.fan.take() else {
            return keep.then_some(event);
        };
        let left = fan.send(event, keep);
        // A reader woken above may have made a stream already (an executor may poll at
        // once): keep it.
        if let Some(joined) = self.fan.take() {
            fan.join(joined);
        }
        self.fan.set(Some(fan));
        left
    }

    /// Whether every stream has room for another event under `limit`.
    pub(crate) fn has_room(&self, limit: usize) -> bool {
        let mut fan = self.fan.take();
        let room = (fan.as_mut()).is_none_or(|fan| {
            (fan.feeds().iter()).all(|feed| feed.is_closed() || feed.len() < limit)
        });
        self.fan.set(fan);
        room
    }

    /// The socket finished and its last events were delivered: the streams end, and none
    /// can join until [`restart`](Self::restart).
    pub(crate) fn end(&self) {
        self.released.set(true);
        drop(self.fan.take());
    }

    /// The socket starts again (`reconnect_now`): streams can join.
    pub(crate) fn restart(&self) {
        self.released.set(false);
    }

    /// An attempt opens, to `url` as the transport resolved it.
    pub(crate) fn set_url(&self, url: String) {
        self.url.set(url);
    }

    pub(crate) fn url(&self) -> String {
        let url = self.url.take();
        self.url.set(url.clone());
        url
    }

    pub(crate) fn last_close(&self) -> Option<CloseEvent> {
        let last = self.last_close.take();
        self.last_close.set(last.clone());
        last
    }

    /// Where a pulling transport waits for room in the streams.
    #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
    pub(crate) fn room(&self) -> Room {
        self.room.clone()
    }

    /// `Listener::wait_for_room` for a driver of these streams, `listener`: resolves once
    /// `may_read` says it may read (or the driver is gone), or after [`ROOM_PAUSE`] (the
    /// caller looks again); a stream's read wakes it sooner. Holds the driver weakly.
    #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
    pub(crate) fn wait_for_room<T: 'static>(
        &self,
        listener: &Rc<T>,
        may_read: fn(&T) -> bool,
    ) -> Pin<Box<dyn Future<Output = ()>>> {
        let room = self.room();
        let listener = Rc::downgrade(listener);
        let mut pause = Box::pin(crate::timer::sleep(ROOM_PAUSE));
        Box::pin(std::future::poll_fn(move |cx| {
            let Some(strong) = listener.upgrade().filter(|strong| !may_read(strong)) else {
                return Poll::Ready(());
            };
            drop(strong);
            let waiting = room.borrow_mut().replace(cx.waker().clone());
            drop(waiting);
            pause.as_mut().poll(cx)
        }))
    }
}

impl Fan for Vec<Feed> {
    fn feeds(&mut self) -> &mut Vec<Feed> {
        self
    }

    fn join(&mut self, mut other: Box<dyn Fan>) {
        self.append(other.feeds());
    }

    fn send(&mut self, event: Event, keep: bool) -> Option<Event> {
        self.retain(|feed| !feed.is_closed());
        let Some((last, others)) = self.split_last() else {
            return keep.then_some(event);
        };
        for feed in others {
            feed.send(event.clone());
        }
        if keep {
            last.send(event.clone());
            Some(event)
        } else {
            last.send(event);
            None
        }
    }
}

/// A new stream and the socket's end of it.
fn channel() -> (Feed, Events) {
    let inbox = Rc::new(RefCell::new(Inbox::default()));
    (
        Feed {
            inbox: inbox.clone(),
        },
        Events {
            inbox,
            #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
            room: Room::default(),
        },
    )
}

#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
impl Events {
    /// The stream, waking `room` when it gives an event or goes away.
    fn with_room(mut self, room: Room) -> Events {
        self.room = room;
        self
    }

    fn wake_room(&self) {
        let waiting = self.room.borrow_mut().take();
        if let Some(waker) = waiting {
            waker.wake();
        }
    }
}

#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
impl Drop for Events {
    fn drop(&mut self) {
        self.wake_room();
    }
}

impl Feed {
    /// Whether the stream has been dropped.
    pub(crate) fn is_closed(&self) -> bool {
        Rc::strong_count(&self.inbox) == 1
    }

    /// How many events wait to be read.
    pub(crate) fn len(&self) -> usize {
        self.inbox.borrow().events.len()
    }

    /// Leaves `event` for the reader, and wakes it outside the borrow: an executor may poll
    /// the stream right away.
    pub(crate) fn send(&self, event: Event) {
        let waker = {
            let mut inbox = self.inbox.borrow_mut();
            inbox.events.push_back(event);
            inbox.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if self.is_closed() {
            return; // Nobody reads the stream any more.
        }
        let waker = {
            let mut inbox = self.inbox.borrow_mut();
            inbox.ended = true;
            inbox.waker.take()
        };
        // Outside the borrow: an executor may poll the stream right away.
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut inbox = self.inbox.borrow_mut();
        if let Some(event) = inbox.events.pop_front() {
            drop(inbox);
            #[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
            self.wake_room();
            return Poll::Ready(Some(event));
        }
        if inbox.ended {
            return Poll::Ready(None);
        }
        let replaced = inbox.waker.replace(cx.waker().clone());
        // Dropped outside the borrow: the old waker may own the socket, whose end borrows the
        // inbox to end this stream.
        drop(inbox);
        drop(replaced);
        Poll::Pending
    }
}
