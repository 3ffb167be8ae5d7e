//! The builder: what a socket is configured with before it connects, and the application's
//! callbacks. It makes the core's configuration and the driver's hooks (`socket.rs`).

use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, ready};
use std::time::Duration;

use futures_util::StreamExt;

use crate::core::{self, Config, Core, Millis, millis};
use crate::error::Error;
use crate::event::{Event, Unsent};
use crate::heartbeat::Heartbeat;
use crate::message::{CloseCause, CloseEvent, Message, Reconnecting};
use crate::reconnect::Reconnect;
use crate::socket::{Callbacks, DEFAULT_HIGH_WATER_MARK, Hooks, Setup, Shared, WebSocket};
use crate::transport::Options;
use crate::watch::{self, Beat, Watch};

impl WebSocket {
    /// Opens a socket to `url` with the default settings and no callbacks, and returns at
    /// once: listen with [`events`](Self::events) or [`messages`](Self::messages).
    ///
    /// Such a socket behaves as one the builder makes without options, and is lighter: a
    /// program that never calls [`builder`](Self::builder) carries none of its machinery
    /// (reconnection, the queue, timers, callbacks, hooks).
    pub fn connect(url: impl AsRef<str>) -> Result<WebSocket, Error> {
        crate::thin::connect(url.as_ref())
    }

    /// Opens a socket to `url` with the default settings and waits until it is open; see
    /// [`Builder::open`], and [`connect`](Self::connect) for what such a socket carries.
    pub async fn open(url: impl AsRef<str>) -> Result<WebSocket, Error> {
        opened(crate::thin::connect(url.as_ref())?).await
    }

    /// Starts configuring a socket to `url` (`ws://` or `wss://`; `http(s)://` and relative
    /// URLs are resolved by the browser against the page). Takes a `&str`, a `String`, … .
    pub fn builder(url: impl AsRef<str>) -> Builder {
        Builder::new(url.as_ref())
    }
}

impl Builder {
    fn new(url: &str) -> Builder {
        Builder {
            url: url.to_owned(),
            options: Options::default(),
            reconnect: None,
            next_attempt: None,
            enqueue: None,
            high_water_mark: DEFAULT_HIGH_WATER_MARK,
            receive_limit: None,
            watch: None,
            judge: None,
            decide: None,
            ask_url: None,
            overflow: None,
            unchosen: None,
            callbacks: Callbacks::default(),
            hooks: Hooks::default(),
        }
    }
}

/// Configures a socket before it connects: subprotocols, reconnection, the high-water mark,
/// and callbacks. Made by [`WebSocket::builder`].
///
/// Each callback is given the socket, so that it can send or close without capturing a
/// handle: a handle captured by one of its own callbacks keeps a socket alive until it
/// closes. To keep one anyway, capture a [`WeakWebSocket`](crate::WeakWebSocket).
#[must_use = "a builder does nothing until `connect` or `open`"]
pub struct Builder {
    url: String,
    options: Options,
    reconnect: Option<Reconnect>,
    next_attempt: Option<core::NextAttempt>,
    enqueue: Option<core::Enqueue>,
    high_water_mark: u32,
    receive_limit: Option<usize>,
    /// Made by the first of the builder methods that need one.
    watch: Option<Box<dyn Watch>>,
    judge: Option<fn(&mut Core, Millis, bool)>,
    /// The core's side of `should_reconnect` and of the URL provider: see [`Config`].
    decide: Option<fn(&mut Core, CloseEvent)>,
    ask_url: Option<fn(&mut Core, Millis)>,
    overflow: Option<fn(&mut Core)>,
    unchosen: Option<fn(&mut Core)>,
    callbacks: Callbacks,
    hooks: Hooks,
}

impl Builder {
    /// Offers these subprotocols, in order of preference; [`WebSocket::protocol`] tells which
    /// one the server chose.
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.options.protocols = protocols.into_iter().map(Into::into).collect();
        self.unchosen = Some(core::unchosen);
        self.hooks.unchosen = Some(crate::socket::Shared::unchosen);
        self
    }

    /// Reopens the connection when it closes, as `policy` says. Off by default.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self.next_attempt = Some(core::next_attempt);
        self.enqueue = Some(core::enqueue);
        self.hooks.drain = Some(Shared::drain);
        self
    }

    /// Asks `provider` for the URL of each reconnection attempt, for example to put a fresh
    /// token in the query string; the first connection uses the builder's URL. An attempt
    /// whose URL the browser refuses fails like one that cannot connect: an
    /// [`Event::Error`] and a close with code 1006 whose reason says why. See also
    /// [`url_provider_async`](Self::url_provider_async).
    pub fn url_provider(self, mut provider: impl FnMut() -> String + 'static) -> Self {
        // One path for both kinds: the URL is ready at once.
        self.url_provider_async(move || std::future::ready(provider()))
    }

    /// Like [`url_provider`](Self::url_provider), for a URL that takes a while to get (a token
    /// fetched from the server, say): `provider`'s future is awaited before each reconnection
    /// attempt, the socket [`State::Reconnecting`](crate::State::Reconnecting) meanwhile. A close
    /// meanwhile is final: the URL then goes unused.
    pub fn url_provider_async<F, Fut>(mut self, mut provider: F) -> Self
    where
        F: FnMut() -> Fut + 'static,
        Fut: Future<Output = String> + 'static,
    {
        self.ask_url = Some(core::ask_url);
        self.hooks.ask_url = Some(Box::new(move |shared, ask| {
            let url = provider();
            let shared = Rc::downgrade(shared);
            crate::timer::spawn(async move {
                let url = url.await;
                if let Some(shared) = shared.upgrade() {
                    shared.url_provided(ask, url);
                }
            });
        }));
        self
    }

    /// [`WebSocket::send_async`] and the sinks wait while the browser holds more than this
    /// many bytes not yet sent (`bufferedAmount`). Default:
    /// [`DEFAULT_HIGH_WATER_MARK`](crate::DEFAULT_HIGH_WATER_MARK).
    pub fn high_water_mark(mut self, bytes: u32) -> Self {
        self.high_water_mark = bytes;
        self
    }

    /// Bounds what waits to be read: each stream made by [`WebSocket::events`] (and so
    /// [`WebSocket::messages`]) holds at most `events` events. Callbacks are called at once and
    /// need no bound.
    ///
    /// - Natively and on `WebSocketStream` (`Builder::web_socket_stream`, in the browser with
    ///   the `web-socket-stream` feature),
    ///   the transport stops reading while a stream is full, so the server feels TCP
    ///   backpressure and nothing grows on the client. There the default is
    ///   [`DEFAULT_RECEIVE_LIMIT`](crate::DEFAULT_RECEIVE_LIMIT).
    /// - The browser's `WebSocket` cannot be told to stop reading: there, by default, streams
    ///   are unbounded, and with this limit a message that finds a stream full gives the
    ///   connection up: the server sees a close with 1000, the application a close with 1008
    ///   and [`CloseCause::ReceiveOverflow`], and reconnection follows if its policy allows.
    ///   Nothing is dropped unseen.
    ///
    /// A limit of 0 counts as 1. With a heartbeat, a transport that holds back for a slow
    /// reader is not judged dead while it does: the reply may be waiting unread.
    pub fn receive_limit(mut self, events: usize) -> Self {
        // A stream must hold the message it is given: with 0, a pulling transport would never
        // read again.
        self.receive_limit = Some(events.max(1));
        self.hooks.overflows = Some(crate::socket::Shared::overflowing);
        self.overflow = Some(core::overflow);
        self
    }

    /// Uses the browser's `WebSocketStream` (Chromium 124 and later) where there is one, and
    /// its `WebSocket` elsewhere; [`WebSocket::transport`] tells which. `WebSocketStream`
    /// reads only while the application's streams have room
    /// ([`receive_limit`](Self::receive_limit)), so a slow reader slows the server down
    /// instead of growing the page's memory. Behind the `web-socket-stream` feature, so that
    /// pages that do not ask for it carry none of its code.
    ///
    /// A fault of Chromium (156 at least), which no page can avoid: when a connection ends
    /// without a close handshake while a message sent is still being written, Chromium's
    /// renderer crashes and the page with it ("tab crashed"). That happens when the server
    /// drops the connection, when the browser fails it for a protocol error, and when a
    /// stalled server (found by the [`heartbeat`](Self::heartbeat)) never answers the close
    /// after the page sent more than the network took. Plain JavaScript on `WebSocketStream`
    /// crashes the same way; the browser's `WebSocket` does not. A close handshake from the
    /// server is safe. (A close of the page's own while writes are under way, which crashed
    /// the page too, is held back until they are done.)
    ///
    /// Another: when the server closes while the application holds the reader back (its
    /// streams full), Chromium discards the messages it has not yet handed over and still
    /// reports a clean close; the messages before them arrive in order, and the close last.
    /// Plain JavaScript loses them the same way. A protocol that needs every message to the
    /// end should have the server wait for the client's acknowledgement before it closes.
    #[cfg(all(target_arch = "wasm32", feature = "web-socket-stream"))]
    pub fn web_socket_stream(mut self) -> Self {
        self.options.web_socket_stream = true;
        self
    }

    /// Natively, the TLS setup for `wss://` (and for an `https://` [`proxy`](Self::proxy)).
    /// By default, rustls on the ring provider with Mozilla's roots (`webpki-roots`): the
    /// same on every machine, whatever its store holds. (In the browser, the browser's.)
    ///
    /// A private certificate authority, and a client certificate for a server that asks for
    /// one (mutual TLS), are rustls's own settings:
    ///
    /// ```no_run
    /// # #[cfg(not(target_arch = "wasm32"))]
    /// # fn config(
    /// #     authority: rustls::pki_types::CertificateDer<'static>,
    /// #     chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// #     key: rustls::pki_types::PrivateKeyDer<'static>,
    /// # ) -> Result<wasm_websocket::Builder, Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    ///
    /// // The roots: the company's authority (add Mozilla's with `webpki-roots` too if the
    /// // socket also reaches public servers).
    /// let mut roots = rustls::RootCertStore::empty();
    /// roots.add(authority)?;
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_root_certificates(roots)
    ///     // Or `.with_no_client_auth()` where the server asks for no certificate.
    ///     .with_client_auth_cert(chain, key)?;
    /// Ok(wasm_websocket::WebSocket::builder("wss://internal.example/feed")
    ///     .tls_config(Arc::new(config)))
    /// # }
    /// ```
    ///
    /// With the `platform-verifier` feature, `Builder::platform_verifier` trusts what the
    /// operating system trusts instead.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn tls_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        #[cfg(feature = "platform-verifier")]
        {
            self.options.platform_verifier = false;
        }
        self.options.tls = Some(config);
        self
    }

    /// Natively, with the `platform-verifier` feature: verifies servers as the operating
    /// system does (rustls-platform-verifier: the system's trust store and, on macOS,
    /// Windows and Android, its own verifier with revocation), so that an authority an
    /// administrator installed is trusted. Where the system has no roots at all, each attempt
    /// fails with a close whose reason says so. Replaced by a later
    /// [`tls_config`](Self::tls_config), and the other way round.
    #[cfg(all(not(target_arch = "wasm32"), feature = "platform-verifier"))]
    pub fn platform_verifier(mut self) -> Self {
        self.options.tls = None;
        self.options.platform_verifier = true;
        self
    }

    /// Natively, connects through the proxy at `url`, whatever the environment says: each
    /// attempt, reconnections included, asks the proxy for a tunnel to the server, then
    /// speaks TLS (for `wss://`) and WebSocket through it. An HTTP proxy (`http://`, or
    /// `https://` reached over TLS, verified as the server is by
    /// [`tls_config`](Self::tls_config), with the server's TLS inside it) is asked with
    /// `CONNECT host:port`; a SOCKS5 proxy with `socks5://` (the client resolves the server's
    /// name) or `socks5h://` (the proxy does). No scheme is `http://`; no port is 1080, or 443
    /// for `https://`, as curl reads it. Credentials in the URL
    /// (`http://user:password@proxy:3128`, percent-encoded) are sent as
    /// `Proxy-Authorization: Basic`, or as SOCKS5's user and password.
    ///
    /// A URL that is not a proxy's makes [`connect`](Self::connect) fail with
    /// `Error::InvalidProxy`. A proxy that refuses (its status: 407, 403, 502, …; none from
    /// SOCKS5) or cannot be reached fails the attempt: an [`Event::Error`], then a close with 1006 and
    /// `CloseCause::Proxy` carrying the status, and an awaited [`open`](Self::open) fails
    /// with `Error::Proxy`. Reconnection follows as for any failed attempt.
    ///
    /// Without this, or [`no_proxy`](Self::no_proxy), each attempt reads the environment as
    /// curl does: `wss://` takes `wss_proxy`, `https_proxy`, `HTTPS_PROXY`; `ws://` takes
    /// `ws_proxy`, `http_proxy` (never `HTTP_PROXY`, which CGI programs get from a request's
    /// `Proxy:` header); both then `all_proxy`, `ALL_PROXY`. `no_proxy` (or `NO_PROXY`) lists
    /// the hosts reached directly: `*` for all, names (each also its subdomains: `example.com`
    /// covers `www.example.com`), addresses and networks (`10.0.0.0/8`). (In the browser the
    /// browser's own proxy settings apply.)
    #[cfg(not(target_arch = "wasm32"))]
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.options.proxy = crate::proxy::ProxySetting::Given(url.into());
        self
    }

    /// Natively, connects directly, whatever the environment's proxy variables say; see
    /// [`proxy`](Self::proxy).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn no_proxy(mut self) -> Self {
        self.options.proxy = crate::proxy::ProxySetting::Off;
        self
    }

    /// Natively, with the `http2` feature: whether this socket's connections may be streams of
    /// one HTTP/2 connection per server, shared with the thread's other sockets to it (RFC
    /// 8441's extended `CONNECT`), instead of a TCP (and TLS) connection each.
    ///
    /// - [`Http2::Auto`](crate::Http2::Auto), the default with the feature: a `wss://` socket
    ///   offers `h2` in ALPN; where the server chooses it and its SETTINGS allow WebSockets
    ///   (`SETTINGS_ENABLE_CONNECT_PROTOCOL`), the socket is a stream of the thread's
    ///   connection to that server (opened by the first socket, kept while it has streams and
    ///   a few seconds after); otherwise it is HTTP/1.1 as without the feature, and a server
    ///   that speaks HTTP/2 without WebSockets over it is remembered for five minutes so that
    ///   its sockets skip the try. `ws://` stays on HTTP/1.1.
    /// - [`Http2::Always`](crate::Http2::Always): HTTP/2 or nothing: an attempt to a server
    ///   that does not allow it fails (an [`Event::Error`], then a close with 1006 and
    ///   `CloseCause::HandshakeFailed` saying why). For `ws://`, cleartext HTTP/2 by prior
    ///   knowledge (h2c), for servers that expect it.
    /// - [`Http2::Never`](crate::Http2::Never): a connection of its own over HTTP/1.1, always.
    ///
    /// The same holds through a [`proxy`](Self::proxy): the tunnel carries TLS, then HTTP/2.
    /// Sockets share a connection only when they have the same scheme, host, port, proxy and
    /// TLS setup (the same [`tls_config`](Self::tls_config), not an equal one). The client
    /// sets ALPN itself (`h2`, `http/1.1`) on the connections it opens for this, whatever the
    /// configuration says. Messages,
    /// limits, the close handshake, the heartbeat, receive backpressure (a stream that is not
    /// read holds at most 1 MiB of the server's bytes, and the other streams go on) and
    /// reconnection behave as over TCP; [`WebSocket::http_version`] tells which it is.
    ///
    /// What sharing changes: one TCP connection carries every socket to the server, so a lost
    /// packet delays them all, and a load balancer that spreads connections sends them all to
    /// one backend. A socket whose `CONNECT` is followed by 2 s in which its connection hears
    /// nothing gives the connection up for a new one, and hyper pings a connection that has
    /// been silent for 20 s.
    #[cfg(all(not(target_arch = "wasm32"), feature = "http2"))]
    pub fn http2(mut self, http2: crate::Http2) -> Self {
        self.options.http2 = http2;
        self
    }

    /// Natively, adds the header `name: value` to every handshake request: an
    /// `Authorization` token, a `Cookie`, a header of the application's own; repeat it for more.
    /// Browsers let a page set no handshake header but the subprotocols
    /// ([`protocols`](Self::protocols)), so this does not exist there: a browser application
    /// puts a token in the URL (see [`url_provider`](Self::url_provider)) or in a cookie the
    /// browser sends itself. A name or value that HTTP does not allow makes
    /// [`connect`](Self::connect) fail with `Error::InvalidHeader`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        (self.options.headers).push((name.to_owned(), value.to_owned()));
        self
    }

    /// Asks for permessage-deflate (RFC 7692) natively: each attempt offers it, messages the
    /// server sends compressed are inflated, and every message the application sends goes out
    /// compressed, as browsers send them. [`WebSocket::extensions`] says
    /// whether the server accepted (`permessage-deflate; ...`); a server that declines
    /// simply gets plain messages. The offer is
    /// `permessage-deflate; client_no_context_takeover; client_max_window_bits`: the client
    /// never keeps a compression window between its messages, takes the window size the
    /// server asks for, and reads messages the server compresses with its window kept
    /// (context takeover) or not. An inflated message is held to the same size limit as a
    /// plain one (64 MiB): past it, the client fails the connection with 1009 and reports a
    /// close with 1006. An answer the client cannot honour (a parameter RFC 7692 does not
    /// allow there, or an extension it did not offer) fails the attempt: an
    /// [`Event::Error`], a close with 1006 and `CloseCause::Extension`, and an awaited
    /// [`open`](Self::open) fails with `Error::Extension`.
    ///
    /// Memory, per connection and only once used: 46 KiB for the inflater after the first
    /// compressed message received, about 370 KiB for the compressor after the first message
    /// sent compressed (zlib-rs at a 15-bit window).
    ///
    /// In the browser this does nothing: the browser offers permessage-deflate itself, and
    /// compresses and inflates for the page.
    #[cfg_attr(target_arch = "wasm32", allow(unused_mut))]
    pub fn deflate(mut self) -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.options.deflate = true;
        }
        self
    }

    /// Gives each connection attempt `timeout` to open (and, with an asynchronous URL
    /// provider, as long again for its URL); one that does not is closed with
    /// [`CloseCause::ConnectTimeout`] (and counts as a failed attempt when reconnecting), and
    /// an awaited [`open`](Self::open) fails with it. Off by default: the browser's own limit
    /// is minutes.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        let watch = self.watch.get_or_insert_with(watch::watch);
        watch.set_connect_timeout(timeout);
        self.judge = Some(core::judge);
        self
    }

    /// Checks that open connections are alive; see [`Heartbeat`]. Off by default.
    pub fn heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.judge = Some(core::judge);
        let watch = self.watch.get_or_insert_with(watch::watch);
        watch.set_heartbeat(Beat {
            interval: millis(heartbeat.interval),
            timeout: millis(heartbeat.timeout),
            message: heartbeat.message,
            has_reply: heartbeat.reply.is_some(),
        });
        self.hooks.is_reply = heartbeat.reply;
        self
    }

    /// With [`reconnect`](Self::reconnect), decides after each close whether to reconnect,
    /// beside the policy's final codes: `false` ends the socket (until
    /// [`WebSocket::reconnect_now`]). For example, stop on an authentication failure the
    /// server reports with a code of its own, whatever the code; or look at
    /// [`CloseEvent::cause`].
    pub fn should_reconnect(mut self, decide: impl Fn(&CloseEvent) -> bool + 'static) -> Self {
        self.decide = Some(core::decide);
        self.hooks.should_reconnect = Some(Box::new(move |shared, close| {
            let wanted = decide(&close);
            shared.decided(wanted);
        }));
        self
    }

    /// Follows the browser: when it goes `offline`, the connection is closed with
    /// [`CloseCause::Offline`] and no attempt is made (or spent) until it is back `online`,
    /// when an attempt waiting in backoff starts at once; when the page becomes visible
    /// again, the [`Heartbeat`] checks the connection at once rather than at its next
    /// interval. The events are those of the global scope, so this works in workers too
    /// (where there is no page to hide). Off by default.
    #[cfg_attr(not(target_arch = "wasm32"), allow(unused_mut))]
    pub fn follow_network(mut self) -> Self {
        #[cfg(target_arch = "wasm32")]
        {
            self.hooks.listen = Some(crate::socket::follow_network);
        }
        self
    }

    /// Called each time a connection opens.
    pub fn on_open(mut self, callback: impl FnMut(&WebSocket) + 'static) -> Self {
        self.callbacks.on_open = Some(Box::new(callback));
        self
    }

    /// Called for each message received.
    pub fn on_message(mut self, callback: impl FnMut(&WebSocket, Message) + 'static) -> Self {
        self.callbacks.on_message = Some(Box::new(callback));
        self
    }

    /// Called when the browser reports an error; a close follows. Browsers tell nothing
    /// more about the error, on purpose.
    pub fn on_error(mut self, callback: impl FnMut(&WebSocket) + 'static) -> Self {
        self.callbacks.on_error = Some(Box::new(callback));
        self
    }

    /// Called each time a connection closes, with its code, reason and cleanliness. When a
    /// reconnection follows, the socket is already
    /// [`State::Reconnecting`](crate::State::Reconnecting) here, so a send is queued and
    /// [`WebSocket::close`] cancels the attempt.
    pub fn on_close(mut self, callback: impl FnMut(&WebSocket, CloseEvent) + 'static) -> Self {
        self.callbacks.on_close = Some(Box::new(callback));
        self
    }

    /// Called when a reconnection attempt is scheduled, with its number and delay.
    pub fn on_reconnect(
        mut self,
        callback: impl FnMut(&WebSocket, Reconnecting) + 'static,
    ) -> Self {
        self.callbacks.on_reconnect = Some(Box::new(callback));
        self
    }

    /// Called for each message that was accepted but will never be sent ([`Event::Unsent`]).
    pub fn on_unsent(mut self, callback: impl FnMut(&WebSocket, Unsent) + 'static) -> Self {
        self.callbacks.on_unsent = Some(Box::new(callback));
        self
    }

    /// Opens the socket and returns at once, in [`State::Connecting`](crate::State::Connecting).
    /// Fails, like the browser's constructor, on an invalid URL or subprotocol; a server that
    /// cannot be reached is reported later, as an error and a close event. No event is delivered
    /// during this call, so a stream made right after it misses nothing.
    pub fn connect(self) -> Result<WebSocket, Error> {
        let config = Config {
            reconnect: self.reconnect,
            next_attempt: self.next_attempt,
            enqueue: self.enqueue,
            high_water_mark: self.high_water_mark,
            receive_limit: self.receive_limit,
            decide: self.decide,
            ask_url: self.ask_url,
            overflow: self.overflow,
            unchosen: self.unchosen,
            watch: self.watch,
            judge: self.judge,
            seed: crate::timer::seed(),
        };
        WebSocket::start(Setup {
            url: self.url,
            config,
            options: self.options,
            callbacks: self.callbacks,
            hooks: self.hooks,
        })
    }

    /// Opens the socket and waits until it is open. Fails with the errors of
    /// [`connect`](Self::connect), or with [`Error::ConnectFailed`] and the close code and
    /// reason when the socket closes for good before it opens: with reconnection, once the
    /// attempts are used up (so never, without [`Reconnect::max_attempts`]). Natively, when a
    /// proxy refused that last attempt, it fails with `Error::Proxy` and the proxy's status
    /// instead (`Builder::proxy`).
    pub async fn open(self) -> Result<WebSocket, Error> {
        opened(self.connect()?).await
    }
}

/// Waits for `socket`'s open, or its last close. (A poll function, not an `async fn`: in
/// the `async fn`s that call it, one state machine rather than two nested.)
fn opened(socket: WebSocket) -> impl Future<Output = Result<WebSocket, Error>> {
    let mut events = socket.events();
    let mut last_close = None;
    poll_fn(move |cx| {
        while let Some(event) = ready!(events.poll_next_unpin(cx)) {
            match event {
                Event::Open => return Poll::Ready(Ok(socket.clone())),
                Event::Close(close) => last_close = Some(close),
                _ => {}
            }
        }
        Poll::Ready(Err(failed(last_close.take())))
    })
}

/// The error of an awaited `open` whose socket closed for good, with `last_close`, before it
/// opened.
fn failed(last_close: Option<CloseEvent>) -> Error {
    let never = CloseEvent::new(1006, "", false).with_cause(CloseCause::HandshakeFailed);
    let last_close = last_close.unwrap_or(never);
    #[cfg(not(target_arch = "wasm32"))]
    match last_close.cause {
        CloseCause::Proxy { status } => {
            let reason = last_close.reason;
            return Error::Proxy { status, reason };
        }
        CloseCause::Extension => {
            let reason = last_close.reason;
            return Error::Extension { reason };
        }
        _ => {}
    }
    Error::ConnectFailed(last_close)
}

#[cfg(test)]
mod tests {
    use crate::transport::invalid_protocol;

    #[test]
    fn protocols_must_be_distinct_tokens() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(invalid_protocol(&list(&["chat", "echo.v2"])), None);
        assert_eq!(invalid_protocol(&list(&["chat", ""])), Some(""));
        assert_eq!(invalid_protocol(&list(&["a b"])), Some("a b"));
        assert_eq!(invalid_protocol(&list(&["chat", "chat"])), Some("chat"));
        assert_eq!(invalid_protocol(&list(&["x,y"])), Some("x,y"));
    }
}
