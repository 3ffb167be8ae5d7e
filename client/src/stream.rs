//! The async side: streams of events and of messages.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker, ready};

use futures_util::Stream;

use crate::{Event, Message};

/// Every event of a socket, in order; made by [`WebSocket::events`](crate::WebSocket::events).
/// Ends after the socket's last close event.
///
/// The browser cannot be told to stop receiving, so events wait here until read: read them.
#[derive(Debug)]
pub struct Events {
    inbox: Rc<RefCell<Inbox>>,
}

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
        Events { inbox },
    )
}

impl Feed {
    /// Whether the stream has been dropped.
    pub(crate) fn is_closed(&self) -> bool {
        Rc::strong_count(&self.inbox) == 1
    }

    pub(crate) fn send(&self, event: Event) {
        self.update(|inbox| inbox.events.push_back(event));
    }

    /// Changes the inbox, then wakes the reader outside the borrow: an executor may poll the
    /// stream right away.
    fn update(&self, change: impl FnOnce(&mut Inbox)) {
        let waker = {
            let mut inbox = self.inbox.borrow_mut();
            change(&mut inbox);
            inbox.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.update(|inbox| inbox.ended = true);
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut inbox = self.inbox.borrow_mut();
        if let Some(event) = inbox.events.pop_front() {
            return Poll::Ready(Some(event));
        }
        if inbox.ended {
            return Poll::Ready(None);
        }
        inbox.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The messages of a socket, without its other events; made by
/// [`WebSocket::messages`](crate::WebSocket::messages). Ends after the socket's last close.
#[derive(Debug)]
pub struct Messages {
    events: Events,
}

impl Messages {
    pub(crate) fn new(events: Events) -> Self {
        Messages { events }
    }
}

impl Stream for Messages {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        loop {
            match ready!(Pin::new(&mut self.events).poll_next(cx)) {
                Some(Event::Message(message)) => return Poll::Ready(Some(message)),
                Some(_) => {}
                None => return Poll::Ready(None),
            }
        }
    }
}
