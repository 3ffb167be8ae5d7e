//! The async side: a stream of events.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_channel::mpsc::UnboundedReceiver;
use futures_util::Stream;

use crate::Event;

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
