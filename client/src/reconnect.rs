//! When and how to reconnect: the policy. The queue that holds messages meanwhile is in
//! `queue.rs`; `socket.rs` applies both.

use std::time::Duration;

use crate::watch::Millis;

/// What to do with a message sent while the queue of messages waiting for the next
/// connection is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Refuse the new message with [`Error::QueueFull`](crate::Error::QueueFull).
    #[default]
    Error,
    /// Drop the oldest queued message to make room for the new one; it is reported in an
    /// [`Event::Unsent`](crate::Event::Unsent). With a capacity of 0 there is nothing to drop,
    /// and the new message is refused as with [`Overflow::Error`].
    DropOldest,
}

/// Opt-in reconnection: exponential backoff with jitter, bounded in delay and attempts.
///
/// A closed connection is reopened unless the application closed it with
/// [`WebSocket::close`](crate::WebSocket::close), its close code was marked final with
/// [`final_code`](Self::final_code), or the attempts are used up. The attempt count goes back to
/// zero once a connection has stayed open for [`reset_after`](Self::reset_after).
///
/// While the socket is not open, sent messages wait in a queue of
/// [`queue_capacity`](Self::queue_capacity) messages and are sent, in order, as soon as the next
/// connection opens.
#[derive(Clone, Debug, PartialEq)]
pub struct Reconnect {
    pub(crate) initial_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) reset_after: Duration,
    pub(crate) final_codes: Vec<u16>,
    pub(crate) queue_capacity: usize,
    pub(crate) overflow: Overflow,
}

impl Default for Reconnect {
    /// 250 ms doubling up to 30 s, attempts without end, reset after 5 s up, a queue of 64
    /// messages that refuses more.
    fn default() -> Self {
        Reconnect {
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
            reset_after: Duration::from_secs(5),
            final_codes: Vec::new(),
            queue_capacity: 64,
            overflow: Overflow::Error,
        }
    }
}

impl Reconnect {
    /// The default policy; see [`Default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The delay before the first attempt; each further attempt doubles it.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The longest delay between attempts.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Gives up after this many attempts in a row.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// How long a connection must stay open for the attempt count to start again from zero.
    pub fn reset_after(mut self, duration: Duration) -> Self {
        self.reset_after = duration;
        self
    }

    /// A close code after which the server does not want the client back (for example 4001
    /// for "logged out"): a connection closed with it is not reopened. May be repeated.
    pub fn final_code(mut self, code: u16) -> Self {
        self.final_codes.push(code);
        self
    }

    /// How many messages may wait for the next connection. 0 turns the queue off: a send
    /// while the socket is not open is then [`Error::QueueFull`](crate::Error::QueueFull).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// What a send does when the queue is full.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// The delay before attempt `attempt` (1 for the first): the initial delay doubled for
    /// each earlier attempt, capped at the maximum, then scaled by `0.5 + random / 2` so that
    /// many clients dropped at once do not all come back at once. `random` is in `[0, 1)`.
    /// Never under [`MIN_DELAY`](Self::MIN_DELAY), even with a delay of zero: an attempt that
    /// fails at once would otherwise be retried at the same instant, forever.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        Duration::from_millis(self.delay_millis(attempt, random))
    }

    /// [`delay`](Self::delay) in whole milliseconds, which is what timers take. In integers
    /// (nanoseconds, then milliseconds), not `Duration`s: their multiplication with overflow
    /// checks is a 128-bit one in wasm, and every page that reconnects carries this.
    pub(crate) fn delay_millis(&self, attempt: u32, random: f64) -> Millis {
        let doublings = attempt.saturating_sub(1).min(31);
        let (initial, max) = (nanos(self.initial_delay), nanos(self.max_delay));
        // `initial << doublings`, capped at `max`, without overflowing on the way.
        let backoff = if initial <= max >> doublings {
            initial << doublings
        } else {
            max
        };
        let millis = backoff / 1_000_000;
        let scale = 500 + (random.clamp(0.0, 1.0) * 500.0) as u64;
        let scaled = millis / 1000 * scale + millis % 1000 * scale / 1000;
        scaled.max(MIN_DELAY_MILLIS)
    }

    /// The shortest delay between attempts: 10 ms.
    pub const MIN_DELAY: Duration = Duration::from_millis(MIN_DELAY_MILLIS);

    /// Whether attempt `attempt` is allowed.
    pub(crate) fn allows(&self, attempt: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempt <= max)
    }
}

/// [`Reconnect::MIN_DELAY`] in milliseconds.
const MIN_DELAY_MILLIS: Millis = 10;

/// A duration in whole nanoseconds, saturating (at about 584 years).
fn nanos(duration: Duration) -> u64 {
    let secs = duration.as_secs();
    if secs > u64::MAX / 1_000_000_000 {
        return u64::MAX;
    }
    (secs * 1_000_000_000).saturating_add(u64::from(duration.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let policy = Reconnect::new()
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(1));
        let full = |attempt| policy.delay(attempt, 1.0);
        assert_eq!(full(1), Duration::from_millis(100));
        assert_eq!(full(2), Duration::from_millis(200));
        assert_eq!(full(4), Duration::from_millis(800));
        assert_eq!(full(5), Duration::from_secs(1));
        assert_eq!(full(1_000), Duration::from_secs(1));
    }

    #[test]
    fn backoff_doubles_before_it_is_cut_to_milliseconds() {
        let policy = Reconnect::new().initial_delay(Duration::from_micros(1_500));
        assert_eq!(policy.delay(2, 1.0), Duration::from_millis(10));
        assert_eq!(policy.delay(5, 1.0), Duration::from_millis(24));
        let huge = Reconnect::new()
            .initial_delay(Duration::MAX)
            .max_delay(Duration::from_secs(3_600));
        assert_eq!(huge.delay(1, 1.0), Duration::from_secs(3_600));
        let long = Reconnect::new().max_delay(Duration::MAX);
        assert_eq!(long.delay(32, 1.0), Duration::from_millis(250 << 31));
    }

    #[test]
    fn jitter_keeps_at_least_half_the_backoff() {
        let policy = Reconnect::new().initial_delay(Duration::from_millis(100));
        assert_eq!(policy.delay(1, 0.0), Duration::from_millis(50));
        assert_eq!(policy.delay(2, 0.5), Duration::from_millis(150));
    }

    #[test]
    fn a_zero_backoff_still_waits_the_minimum() {
        let policy = Reconnect::new()
            .initial_delay(Duration::ZERO)
            .max_delay(Duration::ZERO);
        assert_eq!(policy.delay(1, 0.0), Reconnect::MIN_DELAY);
        assert_eq!(policy.delay(40, 1.0), Reconnect::MIN_DELAY);
    }

    #[test]
    fn attempts_are_bounded_when_asked() {
        assert!(Reconnect::new().allows(u32::MAX));
        let policy = Reconnect::new().max_attempts(3);
        assert!(policy.allows(3));
        assert!(!policy.allows(4));
    }
}
