//! The optional parts of a socket: the connect timeout, the heartbeat ([`Heartbeat`]), the
//! receive limit and the application's `should_reconnect`. `Shared` knows them only as a [`Watchdog`], made by
//! the builder methods that ask for them, so that an application that never does carries none
//! of their code.

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen::JsCast;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen::closure::Closure;

use crate::socket::{Alarm, Shared};
use crate::timer::Timeout;
#[cfg(target_arch = "wasm32")]
use crate::tracked::Tracked;
use crate::{CloseCause, CloseEvent, Message, State};

/// A check that an open connection is alive, where browsers have none: WebSocket pings are
/// not available to pages, and a half-open connection (a laptop that slept, a network that
/// changed) can look open for many minutes. Every `interval` the client sends an application
/// message, and expects a message back within `timeout`; without one, the connection is
/// declared dead, closed with [`CloseCause::HeartbeatLost`], and reconnected if the policy
/// allows. Set with [`Builder::heartbeat`](crate::Builder::heartbeat).
///
/// The convention: any message proves the connection alive, so a server that answers the
/// heartbeat message at all (this project's echo server echoes it) needs no change. With
/// [`reply`](Self::reply), only the messages it recognises count, and those are the
/// heartbeat's own: they are not delivered to the application.
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
    /// within 35 s, at the cost of a small message each way every 25 s. (Proxies and load
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

/// The application's asynchronous URL provider.
pub(crate) type UrlProvider = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = String>>>>;

/// The application's answer to "reconnect after this close?".
pub(crate) type ShouldReconnect = Box<dyn Fn(&CloseEvent) -> bool>;

/// What a socket's watchdog is told, and does.
pub(crate) trait Watchdog {
    fn set_connect_timeout(&mut self, timeout: Duration);
    fn set_heartbeat(&mut self, heartbeat: Heartbeat);
    fn set_should_reconnect(&mut self, decide: ShouldReconnect);
    fn set_follow_network(&mut self);
    fn set_url_provider(&mut self, provider: UrlProvider);
    /// Starts getting the URL of the next attempt, if an asynchronous provider gives it; the
    /// attempt is then opened when it is there.
    fn provide_url(&self, shared: &Rc<Shared>) -> bool;
    /// The URL provider's future for request `ask` is done: whether it is still wanted (not
    /// timed out, the socket not closed).
    fn provided(&self, ask: u32) -> bool;
    /// The application or the browser says to try now: not offline any more.
    fn online(&self);
    /// Whether the browser said it is offline (and not online since).
    fn offline(&self) -> bool;
    /// The application closed the socket: stop listening to the browser.
    fn released(&self);
    /// Whether to reconnect after `close`, as far as the application says.
    fn should_reconnect(&self, close: &CloseEvent) -> bool;
    /// A connection attempt began: arm its connect timeout (and, the first time, start
    /// listening to the browser, if asked to).
    fn attached(&self, shared: &Rc<Shared>);
    /// It opened: start the heartbeat.
    fn opened(&self, shared: &Rc<Shared>);
    /// A message came; whether it is not to be delivered: the heartbeat's own reply, or one
    /// past the receive limit (the connection is then given up).
    fn heard(&self, shared: &Rc<Shared>, message: &Message) -> bool;
    fn set_receive_limit(&mut self, limit: usize);
    /// How many events a stream's inbox may hold before the transport stops reading (or,
    /// on the browser's `WebSocket`, gives the connection up).
    fn receive_limit(&self) -> Option<usize>;
    /// One of its alarms rang.
    fn ring(&self, shared: &Rc<Shared>, watch: Watch);
    /// The connection closed: stop watching it.
    fn closed(&self);
}

/// What a watchdog's alarm is for.
// Natively there are no browser events: the last three are never made there.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) enum Watch {
    /// The attempt is out of time, if it has not opened.
    ConnectTimeout,
    /// Send the heartbeat's ping.
    Ping,
    /// The ping is out of time, unless a message came since it left.
    Deadline,
    /// The browser went offline.
    Offline,
    /// The browser is online again.
    Online,
    /// The page is visible again: check the connection now.
    Visible,
}

/// Natively there are no network or visibility events to listen to.
#[cfg(not(target_arch = "wasm32"))]
type Listener = ();

/// A listener for one of the browser's events, removed when dropped.
#[cfg(target_arch = "wasm32")]
struct Listener {
    target: web_sys::EventTarget,
    event: &'static str,
    closure: Tracked<Closure<dyn FnMut(web_sys::Event)>>,
}

#[cfg(target_arch = "wasm32")]
impl Listener {
    fn new(target: &web_sys::EventTarget, event: &'static str, shared: &Rc<Shared>) -> Self {
        let weak: std::rc::Weak<Shared> = Rc::downgrade(shared);
        let closure = Closure::<dyn FnMut(_)>::new(move |_: web_sys::Event| {
            let Some(shared) = weak.upgrade() else { return };
            let watch = match event {
                "online" => Watch::Online,
                "offline" => Watch::Offline,
                _ if is_visible() => Watch::Visible,
                _ => return,
            };
            shared.watch_now(watch);
        });
        let _ = target.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
        Listener {
            target: target.clone(),
            event,
            closure: Tracked::new(closure),
        }
    }
}

#[cfg(target_arch = "wasm32")]
impl Drop for Listener {
    fn drop(&mut self) {
        let callback = self.closure.as_ref().unchecked_ref();
        let _ = (self.target).remove_event_listener_with_callback(self.event, callback);
    }
}

/// Whether the page is visible (`document.visibilityState`).
#[cfg(target_arch = "wasm32")]
fn is_visible() -> bool {
    let global = js_sys::global();
    let state = js_sys::Reflect::get(&global, &"document".into())
        .and_then(|document| js_sys::Reflect::get(&document, &"visibilityState".into()));
    state.ok().and_then(|state| state.as_string()).as_deref() == Some("visible")
}

/// A watchdog with nothing to watch yet: the builder methods set what.
pub(crate) fn watchdog() -> Box<dyn Watchdog> {
    Box::new(Dog {
        connect_timeout: None,
        heartbeat: None,
        receive_limit: None,
        should_reconnect: None,
        url_provider: RefCell::new(None),
        follow_network: false,
        listeners: RefCell::new(Vec::new()),
        listening: Cell::new(false),
        providing: Cell::new(false),
        asked: Cell::new(0),
        awaiting: Cell::new(false),
        offline: Cell::new(false),
        timer: Cell::new(None),
        heard: Cell::new(false),
        ping_sent: Cell::new(0.0),
    })
}

struct Dog {
    connect_timeout: Option<Duration>,
    receive_limit: Option<usize>,
    heartbeat: Option<Heartbeat>,
    should_reconnect: Option<ShouldReconnect>,
    url_provider: RefCell<Option<UrlProvider>>,
    follow_network: bool,
    /// The browser's events it listens to, with `follow_network`.
    listeners: RefCell<Vec<Listener>>,
    /// Whether it has started listening (once for the socket's life).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    listening: Cell<bool>,
    /// Whether the URL provider's future is pending: asked once per attempt.
    providing: Cell<bool>,
    /// The number of the last request for a URL; a late answer to an earlier one is dropped.
    asked: Cell<u32>,
    /// Whether a ping waits for its deadline.
    awaiting: Cell<bool>,
    offline: Cell<bool>,
    /// The current connection's one alarm: its connect timeout, then its ping or deadline.
    timer: Cell<Option<Timeout>>,
    /// Whether a message came since the last ping left, and when it left (`Date.now()`).
    heard: Cell<bool>,
    ping_sent: Cell<f64>,
}

impl Dog {
    /// Natively there is nothing to follow: `follow_network` does nothing.
    #[cfg(not(target_arch = "wasm32"))]
    fn listen(&self, _: &Rc<Shared>) {}

    /// Listens to the browser's `online` and `offline`, and to the page's visibility: once,
    /// and only with `follow_network`.
    #[cfg(target_arch = "wasm32")]
    fn listen(&self, shared: &Rc<Shared>) {
        if !self.follow_network || self.listening.replace(true) {
            return;
        }
        let global: web_sys::EventTarget = js_sys::global().unchecked_into();
        let mut listeners = self.listeners.borrow_mut();
        for event in ["online", "offline"] {
            listeners.push(Listener::new(&global, event, shared));
        }
        // A page (not a worker) can be hidden and shown again.
        let document = js_sys::Reflect::get(&global, &"document".into()).ok();
        if let Some(document) = document.filter(|document| document.is_object()) {
            let document: web_sys::EventTarget = document.unchecked_into();
            listeners.push(Listener::new(&document, "visibilitychange", shared));
        }
    }

    fn set(&self, shared: &Rc<Shared>, delay: Duration, watch: Watch) {
        self.timer
            .set(Some(shared.alarm(delay, Alarm::Watch(watch))));
    }
}

impl Watchdog for Dog {
    fn set_connect_timeout(&mut self, timeout: Duration) {
        self.connect_timeout = Some(timeout);
    }

    fn set_heartbeat(&mut self, heartbeat: Heartbeat) {
        self.heartbeat = Some(heartbeat);
    }

    fn set_should_reconnect(&mut self, decide: ShouldReconnect) {
        self.should_reconnect = Some(decide);
    }

    fn set_follow_network(&mut self) {
        self.follow_network = true;
    }

    fn set_url_provider(&mut self, provider: UrlProvider) {
        *self.url_provider.get_mut() = Some(provider);
    }

    fn provide_url(&self, shared: &Rc<Shared>) -> bool {
        if self.providing.get() {
            return true; // The attempt opens when the URL asked for comes.
        }
        let Some(url) = self
            .url_provider
            .borrow_mut()
            .as_mut()
            .map(|provide| provide())
        else {
            return false;
        };
        self.providing.set(true);
        let ask = self.asked.get().wrapping_add(1);
        self.asked.set(ask);
        // The connect timeout covers the wait for the URL too (and the handshake again).
        if let Some(timeout) = self.connect_timeout {
            self.set(shared, timeout, Watch::ConnectTimeout);
        }
        let weak = Rc::downgrade(shared);
        crate::timer::spawn(async move {
            let url = url.await;
            let Some(shared) = weak.upgrade() else { return };
            if shared.watchdog().is_some_and(|dog| dog.provided(ask)) {
                shared.set_url(url);
                shared.open_attempt();
            }
        });
        true
    }

    fn provided(&self, ask: u32) -> bool {
        let wanted = self.providing.get() && self.asked.get() == ask;
        if wanted {
            self.providing.set(false);
        }
        wanted
    }

    fn online(&self) {
        self.offline.set(false);
    }

    fn offline(&self) -> bool {
        self.offline.get()
    }

    fn released(&self) {
        drop(self.timer.take());
        drop(self.listeners.take());
        drop(self.url_provider.take());
    }

    fn should_reconnect(&self, close: &CloseEvent) -> bool {
        self.should_reconnect
            .as_ref()
            .is_none_or(|decide| decide(close))
    }

    fn attached(&self, shared: &Rc<Shared>) {
        self.listen(shared);
        drop(self.timer.take());
        if let Some(timeout) = self.connect_timeout {
            self.set(shared, timeout, Watch::ConnectTimeout);
        }
    }

    fn opened(&self, shared: &Rc<Shared>) {
        drop(self.timer.take());
        // A connection opened: the browser is online, whatever it said last.
        self.offline.set(false);
        self.awaiting.set(false);
        if let Some(beat) = &self.heartbeat {
            self.set(shared, beat.interval, Watch::Ping);
        }
    }

    fn heard(&self, shared: &Rc<Shared>, message: &Message) -> bool {
        let reply = self.heartbeat.as_ref().and_then(|beat| beat.reply.as_ref());
        let own = reply.is_some_and(|is_reply| is_reply(message));
        if own || reply.is_none() {
            self.heard.set(true);
        }
        // A pulling transport never reads past the limit; only the browser's `WebSocket`,
        // which cannot be stopped, gets here with a full inbox.
        let full = (self.receive_limit).is_some_and(|limit| !shared.has_room(limit));
        if full && !own {
            let overflow = CloseEvent::new(1008, "receive limit exceeded", false);
            shared.lost(overflow.with_cause(CloseCause::ReceiveOverflow));
            return true;
        }
        own
    }

    fn set_receive_limit(&mut self, limit: usize) {
        // A stream must hold the message it is given: with 0, a pulling transport would never
        // read again.
        self.receive_limit = Some(limit.max(1));
    }

    fn receive_limit(&self) -> Option<usize> {
        self.receive_limit
    }

    fn ring(&self, shared: &Rc<Shared>, watch: Watch) {
        if matches!(watch, Watch::ConnectTimeout | Watch::Ping | Watch::Deadline) {
            // Its own timer's, or the one it replaces. A timer's closure dropped during its
            // own call is freed once the call returns.
            drop(self.timer.take());
        }
        match watch {
            Watch::Offline => {
                self.offline.set(true);
                if matches!(shared.state(), State::Connecting | State::Open) {
                    let offline = CloseEvent::new(1006, "offline", false);
                    shared.lost(offline.with_cause(CloseCause::Offline));
                } else {
                    shared.hold();
                }
            }
            Watch::Online => {
                self.offline.set(false);
                if shared.waiting() {
                    shared.attempt_now();
                }
            }
            // Shown again: a ping awaiting its reply keeps its deadline (judged at once if
            // a throttled timer let it pass); otherwise, a ping now.
            Watch::Visible => {
                let Some(beat) = &self.heartbeat else { return };
                if shared.state() != State::Open {
                    return;
                }
                let overdue = crate::timer::now_ms() - self.ping_sent.get();
                if !self.awaiting.get() {
                    self.ring(shared, Watch::Ping);
                } else if overdue >= beat.timeout.as_millis() as f64 {
                    self.ring(shared, Watch::Deadline);
                }
            }
            Watch::ConnectTimeout => {
                if self.providing.replace(false) {
                    // The URL did not come in time: a failed attempt; the URL, if it comes,
                    // goes unused.
                    if shared.waiting() {
                        let timeout = CloseEvent::new(1006, "connect timeout: no URL", false);
                        shared.closed(timeout.with_cause(CloseCause::ConnectTimeout));
                    }
                } else if shared.state() == State::Connecting {
                    let timeout = CloseEvent::new(1006, "connect timeout", false);
                    shared.lost(timeout.with_cause(CloseCause::ConnectTimeout));
                }
            }
            Watch::Ping => {
                let Some(beat) = &self.heartbeat else { return };
                if shared.state() != State::Open {
                    return;
                }
                self.ping_sent.set(crate::timer::now_ms());
                self.heard.set(false);
                self.awaiting.set(true);
                // Around the queue: a ping is about this connection, not the application's
                // order of messages.
                let _ = shared.hand_over(beat.message.clone());
                if beat.timeout.is_zero() {
                    // No time to answer in: judged now, whatever a timer would race.
                    self.ring(shared, Watch::Deadline);
                } else {
                    self.set(shared, beat.timeout, Watch::Deadline);
                }
            }
            // Alive if anything came since the ping left: judged by what came, not by timer
            // ticks, since timers in hidden tabs fire late and messages do not.
            Watch::Deadline => {
                self.awaiting.set(false);
                let Some(beat) = &self.heartbeat else { return };
                if shared.state() != State::Open {
                    return;
                }
                // A pulling transport that holds back for a slow reader may have the reply
                // waiting unread: no judgement then, the next ping asks again.
                if self.heard.get() || shared.holding_back() {
                    self.set(shared, beat.interval, Watch::Ping);
                } else {
                    let reason = "no message within the heartbeat's timeout";
                    let lost = CloseEvent::new(1006, reason, false);
                    shared.lost(lost.with_cause(CloseCause::HeartbeatLost));
                }
            }
        }
    }

    fn closed(&self) {
        drop(self.timer.take());
    }
}
