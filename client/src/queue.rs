//! The queue of messages sent while the socket is down, waiting for the next connection:
//! bounded, with an overflow policy. Pure, so that it is tested natively.

use std::collections::VecDeque;

use crate::error::Error;
use crate::message::Message;
use crate::reconnect::Overflow;

/// Messages waiting for the next connection, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    messages: VecDeque<Message>,
}

impl Queue {
    /// Adds `message` at the back. When the queue already holds `capacity` messages,
    /// [`Overflow::Error`] refuses the new one and [`Overflow::DropOldest`] makes room by
    /// returning the oldest. A capacity of 0 refuses every message, whatever the policy:
    /// there is nothing to drop to make room.
    pub(crate) fn push(
        &mut self,
        message: Message,
        capacity: usize,
        overflow: Overflow,
    ) -> Result<Option<Message>, Error> {
        let full = Error::QueueFull { capacity };
        if capacity == 0 {
            return Err(full);
        }
        let mut dropped = None;
        if self.messages.len() >= capacity {
            match overflow {
                Overflow::Error => return Err(full),
                Overflow::DropOldest => dropped = self.messages.pop_front(),
            }
        }
        self.messages.push_back(message);
        Ok(dropped)
    }

    /// Whether a push would be refused.
    pub(crate) fn is_full(&self, capacity: usize, overflow: Overflow) -> bool {
        capacity == 0 || (overflow == Overflow::Error && self.messages.len() >= capacity)
    }

    pub(crate) fn pop(&mut self) -> Option<Message> {
        self.messages.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Empties the queue, oldest first.
    pub(crate) fn take(&mut self) -> VecDeque<Message> {
        std::mem::take(&mut self.messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(text: &str) -> Message {
        Message::Text(text.into())
    }

    #[test]
    fn a_full_queue_refuses_or_drops_the_oldest() {
        let mut queue = Queue::default();
        for message in ["a", "b"] {
            assert_eq!(queue.push(text(message), 2, Overflow::Error), Ok(None));
        }
        assert!(queue.is_full(2, Overflow::Error));
        assert_eq!(
            queue.push(text("c"), 2, Overflow::Error),
            Err(Error::QueueFull { capacity: 2 })
        );
        assert!(!queue.is_full(2, Overflow::DropOldest));
        assert_eq!(
            queue.push(text("c"), 2, Overflow::DropOldest),
            Ok(Some(text("a")))
        );
        assert_eq!(queue.take(), [text("b"), text("c")]);
    }

    #[test]
    fn capacity_zero_refuses_even_when_dropping_the_oldest() {
        let mut queue = Queue::default();
        for overflow in [Overflow::Error, Overflow::DropOldest] {
            assert!(queue.is_full(0, overflow));
            assert_eq!(
                queue.push(text("a"), 0, overflow),
                Err(Error::QueueFull { capacity: 0 })
            );
        }
        assert!(queue.is_empty());
    }
}
