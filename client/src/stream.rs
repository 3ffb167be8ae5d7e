//! The async side: streams of events and of messages.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_channel::mpsc::UnboundedReceiver;
use futures_util::Stream;

use crate::{Event, Message};

/// Every event of a socket, in order; made by [`WebSocket::events`](crate::WebSocket::events).
/// Ends after the socket's last close event.
///
/// The browser cannot be told to stop receiving, so events wait here until read: read them.
#[derive(Debug)]
pub struct Events {
    receiver: UnboundedReceiver<Event>,
}

impl Events {
    pub(crate) fn new(receiver: UnboundedReceiver<Event>) -> Self {
        Events { receiver }
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        Pin::new(&mut self.receiver).poll_next(cx)
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
