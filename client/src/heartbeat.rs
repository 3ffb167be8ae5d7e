//! The heartbeat's public settings. The core applies them (`watch.rs`); the `reply`
//! predicate, the application's code, is called by the driver.

use std::rc::Rc;
use std::time::Duration;

use crate::message::Message;

/// A check that an open connection is alive, where browsers have none: WebSocket pings are
/// not available to pages, and a half-open connection (a laptop that slept, a network that
/// changed) can look open for many minutes. Every `interval` the client sends an application
/// message, and expects a message back within `timeout`; without one, the connection is
/// declared dead, closed with [`CloseCause::HeartbeatLost`](crate::CloseCause::HeartbeatLost), and reconnected if the policy
/// allows. Set with [`Builder::heartbeat`](crate::Builder::heartbeat).
///
/// The convention: any message proves the connection alive, so a server that answers the
/// heartbeat message at all needs no change. A message identical to the ping (a pure echo
/// server's answer, as `wsecho --prefix ''` gives) is the heartbeat's own and is not
/// delivered to the application; any other answer is delivered (`wsecho`'s default,
/// `Received:  ping`, is). With [`reply`](Self::reply), only the messages it recognises
/// count, and those are the heartbeat's own: they are not delivered either; a predicate
/// must then recognise every form the server's answer takes, or the connection is taken
/// for dead.
///
/// Pings leave every `interval` while the connection is open, whether or not the last was
/// answered, so a connection that goes silent is found dead at most `interval + timeout`
/// after the last message heard (with the default, 35 s), plus a timer's lateness.
///
/// Hidden tabs throttle timers (Chromium runs them at most once a second, and after some
/// minutes hidden once a minute): the heartbeat then pings less often, and the deadline asks
/// whether a message came since the ping left, never how many timer ticks passed, so a late
/// timer is never taken for a dead connection. A timeout of zero leaves no time for a reply:
/// each ping then finds the connection dead.
#[derive(Clone)]
pub struct Heartbeat {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) message: Message,
    pub(crate) reply: Option<IsReply>,
}

type IsReply = Rc<dyn Fn(&Message) -> bool>;

impl std::fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heartbeat")
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("message", &self.message)
            .field("reply", &self.reply.is_some())
            .finish()
    }
}

impl Default for Heartbeat {
    /// A ping every 25 s, a message expected within 10 s of it: a dead connection is found
    /// within 35 s of the last message heard, at the cost of a small message each way every 25 s. (Proxies and load
    /// balancers commonly drop connections silent for 60 s; 25 s keeps them open too.)
    fn default() -> Self {
        Heartbeat::new(Duration::from_secs(25), Duration::from_secs(10))
    }
}

impl Heartbeat {
    /// A ping every `interval`, and a message expected within `timeout` of it; the ping is
    /// the text `ping`. [`Heartbeat::default`] is 25 s and 10 s.
    pub fn new(interval: Duration, timeout: Duration) -> Self {
        Heartbeat {
            interval,
            timeout,
            message: Message::Text("ping".to_owned()),
            reply: None,
        }
    }

    /// The message sent as the ping.
    pub fn message(mut self, message: impl Into<Message>) -> Self {
        self.message = message.into();
        self
    }

    /// Only messages for which `is_reply` holds prove the connection alive; they are the
    /// heartbeat's, and are not delivered.
    pub fn reply(mut self, is_reply: impl Fn(&Message) -> bool + 'static) -> Self {
        self.reply = Some(Rc::new(is_reply));
        self
    }
}
