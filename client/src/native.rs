//! The native transport: one tokio-tungstenite connection, driven by a local task on the
//! application's tokio `LocalSet`, with rustls (ring) for `wss://`.
//!
//! It behaves as the browser's `WebSocket` does, since the state machine above it
//! (`socket.rs`) was written against that: `send` never waits (the bytes go to an
//! unbounded buffer whose size is [`Connection::buffered_amount`], which `send_async` and the
//! sinks keep under the high-water mark); `close` starts the close handshake; a connection
//! that fails before it opens reports an error and then a close with 1006; one lost after
//! it opened reports a close with 1006 only; and dropping the connection closes it with 1000
//! without any further event. Unlike the browser, the task reads only while the socket's
//! inboxes have room ([`Builder::receive_limit`](crate::Builder::receive_limit)), so a slow
//! reader makes TCP push back on the server.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message as WireMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{Connector, connect_async_tls_with_config};

use crate::socket::Shared;
use crate::timer::{sleep, spawn_local};
use crate::tracked::Tracked;
use crate::{CloseEvent, Error, Event, Message, NORMAL_CLOSURE, State};

/// How long a close handshake may take before the connection is dropped: the peer may never
/// answer (a stalled server, or one found dead by the heartbeat).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The most commands written before one flush.
const BATCH: usize = 64;

/// How often a reader that waits for room looks again (no event says a stream was read).
const ROOM_PAUSE: Duration = Duration::from_millis(16);

/// One tokio-tungstenite connection: the sending end of its task's commands, and the state it
/// shares with the task.
pub(crate) struct Connection {
    link: Rc<Link>,
    commands: mpsc::UnboundedSender<Command>,
}

/// What the connection and its task both see.
struct Link {
    url: String,
    state: Cell<State>,
    /// Bytes sent by the application and not yet written to the socket.
    buffered: Cell<u32>,
    protocol: RefCell<String>,
    /// Set when the connection is dropped: no event of its may reach the socket any more.
    detached: Cell<bool>,
    /// Wakes a task whose handshake is under way when the application closes it.
    abort: Notify,
}

enum Command {
    Send(Message),
    Close(u16, String),
}

impl Connection {
    pub(crate) fn open(shared: &Rc<Shared>, url: &str) -> Result<Connection, Error> {
        let request = request(url, &shared.protocols)?;
        let link = Rc::new(Link {
            url: url.to_owned(),
            state: Cell::new(State::Connecting),
            buffered: Cell::new(0),
            protocol: RefCell::new(String::new()),
            detached: Cell::new(false),
            abort: Notify::new(),
        });
        let (commands, receiver) = mpsc::unbounded_channel();
        let tls = shared.tls.clone();
        let task = run(Rc::downgrade(shared), link.clone(), request, receiver, tls);
        // The task counts as one of the crate's closures while it lives: it is what the
        // browser transport's four closures are.
        let tracked = Tracked::new(());
        spawn_local(async move {
            task.await;
            drop(tracked);
        })
        .ok_or(Error::NoLocalSet)?;
        Ok(Connection { link, commands })
    }

    pub(crate) fn state(&self) -> State {
        self.link.state.get()
    }

    pub(crate) fn send(&self, message: &Message) -> Result<(), Error> {
        // As the browser: a send is refused while connecting, and silently dropped while
        // closing (the state machine never sends then).
        match self.state() {
            State::Open => {}
            State::Connecting => return Err(Error::NotOpen(State::Connecting)),
            _ => return Ok(()),
        }
        let size = u32::try_from(payload(message).len()).unwrap_or(u32::MAX);
        let buffered = &self.link.buffered;
        buffered.set(buffered.get().saturating_add(size));
        // The task ends only after the connection is dropped or closed.
        let _ = self.commands.send(Command::Send(message.clone()));
        Ok(())
    }

    pub(crate) fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        match self.state() {
            State::Connecting => {
                // As the browser: closing before the handshake completes fails the
                // connection (1006), without a Close frame.
                self.link.state.set(State::Closing);
                self.link.abort.notify_one();
            }
            State::Open => {
                self.link.state.set(State::Closing);
                let _ = self.commands.send(Command::Close(code, reason.to_owned()));
            }
            State::Closing | State::Reconnecting | State::Closed => {}
        }
        Ok(())
    }

    pub(crate) fn buffered_amount(&self) -> u32 {
        self.link.buffered.get()
    }

    pub(crate) fn url(&self) -> String {
        self.link.url.clone()
    }

    pub(crate) fn protocol(&self) -> String {
        self.link.protocol.borrow().clone()
    }

    /// tokio-tungstenite negotiates no extension.
    pub(crate) fn extensions(&self) -> String {
        String::new()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // No event of this connection may reach the application any more; it closes with
        // 1000 on its own, as the browser's does.
        self.link.detached.set(true);
        let _ = self.close(NORMAL_CLOSURE, "");
    }
}

/// The handshake request for `url` offering `protocols`, refused as the browser refuses it:
/// a scheme other than `ws`, `wss`, `http` or `https`, a fragment, or no host.
fn request(url: &str, protocols: &[String]) -> Result<Request, Error> {
    let invalid = |message: &str| Error::InvalidUrl {
        url: url.to_owned(),
        message: message.to_owned(),
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        invalid("not an absolute URL (natively there is no page to resolve against)")
    })?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err(invalid("the scheme must be ws, wss, http or https")),
    };
    if url.contains('#') {
        return Err(invalid("a WebSocket URL cannot have a fragment"));
    }
    let mut request = format!("{scheme}://{rest}")
        .into_client_request()
        .map_err(|error| invalid(&error.to_string()))?;
    if !protocols.is_empty() {
        let offered = HeaderValue::from_str(&protocols.join(", "))
            .map_err(|error| invalid(&error.to_string()))?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", offered);
    }
    Ok(request)
}

/// The TLS setup for `wss://`: the application's, or rustls on the ring provider (no C
/// toolchain needed) with the Mozilla roots of `webpki-roots` (the same on every machine,
/// unlike the system's store).
fn tls(config: Option<Arc<rustls::ClientConfig>>) -> Result<Connector, String> {
    if let Some(config) = config {
        return Ok(Connector::Rustls(config));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

/// The connection's task: the handshake, then reading and writing until the connection
/// closes, then the close event.
async fn run(
    shared: Weak<Shared>,
    link: Rc<Link>,
    request: Request,
    mut commands: mpsc::UnboundedReceiver<Command>,
    tls_config: Option<Arc<rustls::ClientConfig>>,
) {
    // The socket, while it wants this connection's events.
    let attached = || shared.upgrade().filter(|_| !link.detached.get());
    let handshake = async {
        let connector = tls(tls_config)?;
        connect_async_tls_with_config(request, None, false, Some(connector))
            .await
            .map_err(|error| error.to_string())
    };
    let connected = tokio::select! {
        connected = handshake => connected,
        () = link.abort.notified() => Err(String::new()),
    };
    let stream = match connected {
        Ok((stream, response)) if link.state.get() == State::Connecting => {
            let chosen = response.headers().get("Sec-WebSocket-Protocol");
            let chosen = chosen.and_then(|value| value.to_str().ok()).unwrap_or("");
            *link.protocol.borrow_mut() = chosen.to_owned();
            stream
        }
        // Closed by the application meanwhile: failed, as in the browser (no error event).
        Ok(_) => return report(&link, attached(), None),
        Err(reason) => {
            // The browser's error event carries nothing; the close reason says what failed.
            let aborted = reason.is_empty();
            if let Some(shared) = attached().filter(|_| !aborted) {
                shared.emit(Some(Event::Error));
            }
            link.state.set(State::Closed);
            if let Some(shared) = attached() {
                shared.closed(CloseEvent::new(1006, reason, false));
            }
            return;
        }
    };
    link.state.set(State::Open);
    if let Some(shared) = attached() {
        shared.opened();
    }
    let (mut sink, mut incoming) = stream.split();
    let write = async {
        // Everything already waiting goes out in one flush (the batch's room is reused).
        let mut batch = Vec::new();
        while commands.recv_many(&mut batch, BATCH).await > 0 {
            let mut written = 0u32;
            let mut closing = false;
            for command in batch.drain(..) {
                let wire = match command {
                    Command::Send(message) => {
                        written = written.saturating_add(payload(&message).len() as u32);
                        match message {
                            Message::Text(text) => WireMessage::text(text),
                            Message::Binary(data) => WireMessage::binary(data),
                        }
                    }
                    Command::Close(code, reason) => {
                        closing = true;
                        WireMessage::Close(Some(CloseFrame {
                            code: CloseCode::from(code),
                            reason: reason.into(),
                        }))
                    }
                };
                if sink.feed(wire).await.is_err() {
                    return; // The reading side sees the connection end.
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
            let buffered = &link.buffered;
            buffered.set(buffered.get().saturating_sub(written));
            if closing {
                break;
            }
        }
        // Closing, or the connection dropped: the peer has this long to finish the close
        // handshake.
        sleep(CLOSE_TIMEOUT).await;
    };
    let read = async {
        let mut close = None;
        loop {
            // Not a message more than the application's streams have room for: TCP pushes
            // back on the server meanwhile.
            while attached().is_some_and(|shared| !shared.may_read()) {
                sleep(ROOM_PAUSE).await;
            }
            let Some(received) = incoming.next().await else {
                break;
            };
            let message = match received {
                Ok(WireMessage::Text(text)) => Message::Text(text.as_str().to_owned()),
                Ok(WireMessage::Binary(data)) => Message::Binary(data.into()),
                Ok(WireMessage::Close(frame)) => {
                    link.state.set(State::Closing);
                    close = Some(frame);
                    continue;
                }
                // tungstenite answers pings itself.
                Ok(_) => continue,
                // A protocol error: tungstenite has failed the connection.
                Err(_) => break,
            };
            if let Some(shared) = attached() {
                shared.received(message);
            }
        }
        close
    };
    let close = tokio::select! {
        close = read => close,
        () = write => None,
    };
    report(&link, attached(), close);
}

/// Reports the end of the connection: with the peer's close frame, or 1006 without one.
fn report(link: &Link, shared: Option<Rc<Shared>>, close: Option<Option<CloseFrame>>) {
    link.state.set(State::Closed);
    link.buffered.set(0);
    let event = match close {
        Some(Some(frame)) => CloseEvent::new(frame.code.into(), frame.reason.as_str(), true),
        // A Close frame without a code: 1005, as the browser says.
        Some(None) => CloseEvent::new(1005, "", true),
        None => CloseEvent::new(1006, "", false),
    };
    if let Some(shared) = shared {
        shared.closed(event);
    }
}

fn payload(message: &Message) -> &[u8] {
    match message {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(data) => data,
    }
}
