//! What a socket reports: its events, and the messages it could not send.

use crate::error::Error;
use crate::message::{CloseEvent, Message, Reconnecting};

/// A message that [`WebSocket::send`](crate::WebSocket::send) accepted but that will never go out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unsent {
    /// The message.
    pub message: Message,
    /// Why: [`Error::QueueFull`](crate::Error::QueueFull) when [`Overflow::DropOldest`](crate::Overflow::DropOldest) pushed it out of the
    /// reconnection queue, [`Error::NotOpen`](crate::Error::NotOpen) when it was still queued as the socket closed
    /// for good, or the browser's error when it refused the message.
    pub error: Error,
}

/// Something that happened to a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A connection opened (each time, with reconnection).
    Open,
    /// A message arrived.
    Message(Message),
    /// The browser reported an error; a close follows.
    Error,
    /// A connection closed. Unless a [`Event::Reconnecting`](crate::Event::Reconnecting) follows, it was the last.
    Close(CloseEvent),
    /// A reconnection attempt is scheduled.
    Reconnecting(Reconnecting),
    /// A message that was accepted will never be sent.
    Unsent(Unsent),
}
