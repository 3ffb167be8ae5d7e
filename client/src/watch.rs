//! The core's optional parts: the connect timeout and the heartbeat. Pure, like the core:
//! deadlines in, verdicts out. The core knows them only as a [`Watch`], made by the builder
//! methods that ask for them, so that an application that never does carries none of their
//! code.

use std::time::Duration;

use crate::message::{CloseCause, CloseEvent, Message, State};

/// Milliseconds on the driver's clock.
pub(crate) type Millis = u64;

/// A duration in whole milliseconds, saturating. (Compared, not multiplied with overflow
/// checks: in wasm either of those is a 128-bit multiplication, a library call.)
pub(crate) fn millis(duration: Duration) -> Millis {
    let secs = duration.as_secs();
    if secs > u64::MAX / 1000 {
        return u64::MAX;
    }
    (secs * 1000).saturating_add(u64::from(duration.subsec_millis()))
}

/// What the core tells its watch, and asks it.
pub(crate) trait Watch {
    fn set_connect_timeout(&mut self, timeout: Duration);
    fn set_heartbeat(&mut self, beat: Beat);
    /// An attempt began (or its URL was asked for): arm the connect timeout.
    fn attempt(&mut self, now: Millis);
    /// It opened: the heartbeat starts.
    fn opened(&mut self, now: Millis);
    /// A message came (`is_reply`: the application's `reply` predicate holds for it):
    /// whether it is the heartbeat's own, not to be delivered.
    fn heard(&mut self, message: &Message, is_reply: bool) -> bool;
    /// The page is visible again: ping now, unless a ping awaits its answer.
    #[cfg_attr(
        all(not(target_arch = "wasm32"), not(any(test, feature = "fuzzing"))),
        allow(dead_code)
    )]
    fn visible(&mut self, now: Millis);
    /// The connection is over: nothing to watch.
    fn ended(&mut self);
    /// When [`expired`](Self::expired) is next due.
    fn deadline(&self) -> Option<Millis>;
    /// What is due at `now` for a socket in `state`, one verdict at a time. `reader_behind`:
    /// the transport holds back for a slow reader, so a reply may wait unread.
    fn expired(&mut self, now: Millis, state: State, reader_behind: bool) -> Option<Verdict>;
}

/// What a deadline says.
pub(crate) enum Verdict {
    /// Send the ping.
    Ping(Message),
    /// Give the connection up, with this close.
    Dead(CloseEvent),
}

/// The heartbeat's settings, as the core sees them.
pub(crate) struct Beat {
    pub(crate) interval: Millis,
    pub(crate) timeout: Millis,
    pub(crate) message: Message,
    /// Whether the application recognises replies itself (`Heartbeat::reply`).
    pub(crate) has_reply: bool,
}

/// A watch with nothing to watch yet: the builder methods set what.
pub(crate) fn watch() -> Box<dyn Watch> {
    Box::new(Dog::default())
}

#[derive(Default)]
struct Dog {
    connect_timeout: Option<Millis>,
    beat: Option<Beat>,
    /// When the attempt under way is out of time.
    connect_by: Option<Millis>,
    /// When the next ping leaves.
    next_ping: Option<Millis>,
    /// When the oldest ping not yet answered left: the connection is dead at that plus the
    /// timeout, unless a message comes first.
    awaiting: Option<Millis>,
}

impl Watch for Dog {
    fn set_connect_timeout(&mut self, timeout: Duration) {
        self.connect_timeout = Some(millis(timeout));
    }

    fn set_heartbeat(&mut self, beat: Beat) {
        self.beat = Some(beat);
    }

    fn attempt(&mut self, now: Millis) {
        self.ended();
        self.connect_by = (self.connect_timeout).map(|timeout| now.saturating_add(timeout));
    }

    fn opened(&mut self, now: Millis) {
        self.ended();
        // Every interval from the open, whatever the answers: a ping scheduled only once the
        // last was judged would leave every interval plus timeout.
        self.next_ping = (self.beat.as_ref()).map(|beat| now.saturating_add(beat.interval));
    }

    fn heard(&mut self, message: &Message, is_reply: bool) -> bool {
        let Some(beat) = &self.beat else {
            return false;
        };
        // Without a predicate, any message proves the connection alive, and an echo of the
        // ping itself is the heartbeat's.
        let own = if beat.has_reply {
            is_reply
        } else {
            *message == beat.message
        };
        if own || !beat.has_reply {
            self.awaiting = None;
        }
        own
    }

    fn visible(&mut self, now: Millis) {
        // A ping awaiting its answer keeps its deadline (judged at once if a throttled timer
        // let it pass).
        if self.beat.is_some() && self.awaiting.is_none() {
            self.next_ping = Some(now);
        }
    }

    fn ended(&mut self) {
        self.connect_by = None;
        self.next_ping = None;
        self.awaiting = None;
    }

    fn deadline(&self) -> Option<Millis> {
        let judged = self.awaiting.zip(self.beat.as_ref());
        let judged = judged.map(|(sent, beat)| sent.saturating_add(beat.timeout));
        [self.connect_by, self.next_ping, judged]
            .into_iter()
            .flatten()
            .min()
    }

    fn expired(&mut self, now: Millis, state: State, reader_behind: bool) -> Option<Verdict> {
        if self.connect_by.is_some_and(|by| by <= now) {
            self.connect_by = None;
            if matches!(state, State::Connecting | State::Reconnecting) {
                let reason = match state {
                    State::Connecting => "connect timeout",
                    _ => "connect timeout: no URL",
                };
                let timeout = CloseEvent::new(1006, reason, false);
                return Some(Verdict::Dead(
                    timeout.with_cause(CloseCause::ConnectTimeout),
                ));
            }
        }
        let beat = self.beat.as_ref()?;
        if state != State::Open {
            // Closing (the application's close while open): nothing more to ping or judge. A
            // ping deadline left in the past would make the timer ring at once, forever
            // (found by the model tests: regression_heartbeat_while_closing_spins).
            self.next_ping = None;
            self.awaiting = None;
            return None;
        }
        // Alive if anything came since the ping left: judged by what came, not by timer
        // ticks, since timers in hidden tabs fire late and messages do not.
        if let Some(sent) = self.awaiting
            && sent.saturating_add(beat.timeout) <= now
        {
            self.awaiting = None;
            // A reader holding back may have the reply waiting unread: no judgement then,
            // the next ping asks again.
            if !reader_behind {
                let reason = "no message within the heartbeat's timeout";
                let lost = CloseEvent::new(1006, reason, false);
                return Some(Verdict::Dead(lost.with_cause(CloseCause::HeartbeatLost)));
            }
        }
        if self.next_ping.is_some_and(|at| at <= now) {
            self.next_ping = Some(now.saturating_add(beat.interval.max(1)));
            self.awaiting.get_or_insert(now);
            return Some(Verdict::Ping(beat.message.clone()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_saturate_as_as_millis_does() {
        let as_millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let top = u64::MAX / 1000;
        for duration in [
            Duration::ZERO,
            Duration::from_nanos(999_999),
            Duration::from_millis(1_500),
            Duration::new(top, 615_999_999),
            Duration::new(top, 616_000_000),
            Duration::new(top + 1, 0),
            Duration::MAX,
        ] {
            assert_eq!(millis(duration), as_millis(duration), "{duration:?}");
        }
    }
}
