//! The async side: streams of events and of messages, and the duplex [`Messages`].

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker, ready};

use futures_util::{Sink, Stream};

use crate::{CloseEvent, Error, Event, Message, MessageSink, WebSocket};

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

/// Where a pulling transport waits for room in a socket's streams: see
/// `Shared::wait_for_room`.
#[cfg(any(not(target_arch = "wasm32"), feature = "web-socket-stream"))]
pub(crate) type Room = Rc<RefCell<Option<Waker>>>;

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

/// A new stream and the socket's end of it.
pub(crate) fn channel() -> (Feed, Events) {
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
    pub(crate) fn with_room(mut self, room: Room) -> Events {
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

/// The messages a socket receives, without its other events: the receiving half of
/// [`Messages`]. Ends after the socket's last close, whose code and reason
/// [`close_event`](Self::close_event) then tells. It holds a handle, so it keeps the socket
/// open while it exists, and it can close it.
#[derive(Debug)]
pub struct MessageStream {
    socket: WebSocket,
    events: Events,
    last_close: Option<CloseEvent>,
}

impl MessageStream {
    pub(crate) fn new(socket: WebSocket, events: Events) -> Self {
        MessageStream {
            socket,
            events,
            last_close: None,
        }
    }

    /// The last close seen so far; once the stream has ended, the close that ended the
    /// socket, with its code and reason.
    pub fn close_event(&self) -> Option<&CloseEvent> {
        self.last_close.as_ref()
    }

    /// The socket.
    pub fn socket(&self) -> &WebSocket {
        &self.socket
    }

    /// Closes the socket with 1000; see [`WebSocket::close`].
    pub fn close(&self) -> Result<(), Error> {
        self.socket.close()
    }

    /// Closes the socket; see [`WebSocket::close_with`].
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        self.socket.close_with(code, reason)
    }
}

impl Stream for MessageStream {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        loop {
            match ready!(Pin::new(&mut self.events).poll_next(cx)) {
                Some(Event::Message(message)) => return Poll::Ready(Some(message)),
                Some(Event::Close(close)) => self.last_close = Some(close),
                Some(_) => {}
                None => return Poll::Ready(None),
            }
        }
    }
}

/// One value that is both a `Stream` of the messages a socket receives and a `Sink` of
/// messages to send, like tokio-tungstenite's and gloo's; made by
/// [`WebSocket::messages`](crate::WebSocket::messages).
///
/// The stream ends after the socket's last close, whose code and reason
/// [`close_event`](Self::close_event) then tells. The sink sends as
/// [`WebSocket::send_async`](crate::WebSocket::send_async) does, and closing it closes the
/// socket. Errors leave both usable. [`split`](Self::split) parts it into halves that can
/// each close the socket; dropping the last of them (and every other handle) closes it.
#[derive(Debug)]
pub struct Messages {
    sink: MessageSink,
    stream: MessageStream,
}

impl Messages {
    pub(crate) fn new(sink: MessageSink, stream: MessageStream) -> Self {
        Messages { sink, stream }
    }

    /// The sending and the receiving half, each usable from its own task.
    pub fn split(self) -> (MessageSink, MessageStream) {
        (self.sink, self.stream)
    }

    /// See [`MessageStream::close_event`].
    pub fn close_event(&self) -> Option<&CloseEvent> {
        self.stream.close_event()
    }

    /// The socket.
    pub fn socket(&self) -> &WebSocket {
        self.stream.socket()
    }

    /// Closes the socket with a code and reason; see [`WebSocket::close_with`]. (`close`,
    /// from `SinkExt`, closes it with 1000.)
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        self.stream.close_with(code, reason)
    }
}

impl Stream for Messages {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        Pin::new(&mut self.stream).poll_next(cx)
    }
}

impl Sink<Message> for Messages {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.sink).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        Pin::new(&mut self.sink).start_send(message)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.sink).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.sink).poll_close(cx)
    }
}
