//! The echo loop of one WebSocket: the seed's `Echo` handler, plus the parts of RFC 6455 the
//! seed left to chance: a protocol error gets a Close frame with its code instead of a dropped
//! socket, and the loop keeps reading after the client's Close so the handshake completes.

use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::broadcast;
use tokio::time::{Instant, MissedTickBehavior, interval_at};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::{debug, info};

use crate::Server;
use crate::controls::{self, Command};
use crate::{telemetry, utf8_guard};

/// How long to wait for the client's Close after sending ours because of an error.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// What one connection did, for its closing log line.
#[derive(Debug, Default)]
struct Tally {
    messages: u64,
    bytes: u64,
    close_code: Option<CloseCode>,
}

/// Echoes messages on `socket` until it closes: text as `prefix + text`, binary unchanged;
/// with test controls on, text starting with `!` may be a [`controls`] command.
///
/// Besides messages it watches three clocks and a signal: a connection silent for the ping
/// interval is pinged, and closed (1001) once silent for the idle timeout; a reply that a peer
/// does not read within the send timeout drops the connection; server shutdown sends Close 1001.
/// `drop_all`, when given, ends the connection abruptly when it hears (the outage control); it
/// is subscribed before the handshake is answered, so that no connection can miss it.
pub async fn run<S>(
    mut socket: S,
    peer: SocketAddr,
    server: &Server,
    mut drop_all: Option<broadcast::Receiver<()>>,
) where
    S: Stream<Item = Result<Message, Error>> + Sink<Message, Error = Error> + Unpin,
{
    let started = Instant::now();
    info!(%peer, "connection opened");
    let metrics = telemetry::Connection::opened();
    let config = &server.config;
    let prefix = config.prefix.as_str();
    // The signals are waited on by futures made once, not once a message: a `changed()` or
    // `recv()` made afresh joins and leaves its channel's waiter list each time.
    let mut shutdown = server.shutdown.clone();
    let shutting_down = shutdown.changed();
    tokio::pin!(shutting_down);
    let has_drop_all = drop_all.is_some();
    let dropped = async { drop_all.as_mut()?.recv().await.ok() };
    tokio::pin!(dropped);
    let mut keepalive = interval_at(started + config.ping_interval, config.ping_interval);
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = started;
    let mut closing = false;
    let mut tally = Tally::default();
    // A message that was already waiting when the last reply was queued, and whether replies
    // are queued but not yet written out.
    let mut waiting = None;
    let mut unflushed = false;
    loop {
        if let (None, true) = (&waiting, unflushed) {
            unflushed = false;
            if let Err(error) = within(config.send_timeout, socket.flush()).await {
                debug!(%peer, %error, "write failed");
                break;
            }
        }
        let received = if let Some(received) = waiting.take() {
            received
        } else {
            tokio::select! {
                // In this order, without the random start select! would draw each time: the
                // signals first, so that a busy connection still hears them.
                biased;
                _ = &mut shutting_down, if !closing => {
                    closing = true;
                    tally.close_code = Some(CloseCode::Away);
                    let close = going_away("server shutting down");
                    if send(&mut socket, close, config.send_timeout).await.is_err() {
                        break;
                    }
                    continue;
                }
                _ = &mut dropped, if has_drop_all => break,
                received = socket.next() => received,
                _ = keepalive.tick() => {
                    let silent = last_heard.elapsed();
                    let control = if closing {
                        // Our Close went unanswered for a whole interval: give up.
                        break;
                    } else if silent >= config.idle_timeout {
                        closing = true;
                        tally.close_code = Some(CloseCode::Away);
                        going_away("idle")
                    } else if silent >= config.ping_interval / 2 {
                        // Half an interval, not a whole one: a ping answered just after the
                        // last tick must not leave two intervals without a ping.
                        Message::Ping(Default::default())
                    } else {
                        continue;
                    };
                    if send(&mut socket, control, config.send_timeout).await.is_err() {
                        break;
                    }
                    continue;
                }
            }
        };
        let Some(received) = received else { break };
        last_heard = Instant::now();
        let reply = match received {
            Ok(Message::Text(text)) if config.test_controls && text.starts_with('!') => {
                match controls::parse(&text) {
                    Some(Command::Close(frame)) => Message::Close(Some(frame)),
                    Some(Command::Drop) => break,
                    Some(Command::Outage(duration)) => {
                        server.controls.start_outage(duration);
                        break;
                    }
                    None => Message::Text(text),
                }
            }
            Ok(Message::Text(text)) => {
                debug!(%peer, "Received back from client: {text}");
                tally.count(text.len());
                metrics.message(text.len());
                let reply = if prefix.is_empty() {
                    text
                } else {
                    Utf8Bytes::from(format!("{prefix}{text}"))
                };
                debug!(%peer, "Sending to client: {reply}");
                Message::Text(reply)
            }
            Ok(Message::Binary(data)) => {
                debug!(%peer, bytes = data.len(), "binary message");
                tally.count(data.len());
                metrics.message(data.len());
                Message::Binary(data)
            }
            // tungstenite answers the Close with the same code and ends the stream once the
            // answer is written: reading on is what completes the close handshake.
            Ok(Message::Close(frame)) => {
                if !closing {
                    tally.close_code = frame.map(|frame| frame.code);
                }
                continue;
            }
            // Pings are answered by tungstenite on the next read or write.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            Err(error) => {
                debug!(%peer, %error, "read failed");
                if let Some(frame) = close_frame_for(&error) {
                    tally.close_code = Some(frame.code);
                    fail(&mut socket, frame).await;
                }
                break;
            }
        };
        // Queued, not written: if more messages are already here, their replies go out with
        // this one in a single write. Waiting for the next message flushes first.
        if let Err(error) = within(config.send_timeout, socket.feed(reply)).await {
            debug!(%peer, %error, "write failed");
            break;
        }
        unflushed = true;
        if let Poll::Ready(next) = futures_util::poll!(socket.next()) {
            waiting = Some(next);
        }
    }
    info!(
        %peer,
        duration_ms = started.elapsed().as_millis() as u64,
        messages = tally.messages,
        bytes = tally.bytes,
        close_code = tally.close_code.map(u16::from),
        "connection closed"
    );
    metrics.closed(tally.close_code.map(u16::from));
}

/// The Close (1001) the server sends when it ends a connection itself: idle, or shutting down.
fn going_away(reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: reason.into(),
    }))
}

/// Sends a message and flushes, within `limit`.
async fn send<S>(socket: &mut S, message: Message, limit: Duration) -> Result<(), Error>
where
    S: Sink<Message, Error = Error> + Unpin,
{
    within(limit, socket.send(message)).await
}

/// Runs a write, giving a peer that does not read `limit` to make room for it. The timer is
/// set only when the write cannot complete at once, so the common case costs no timer.
async fn within<F>(limit: Duration, writing: F) -> Result<(), Error>
where
    F: Future<Output = Result<(), Error>>,
{
    tokio::pin!(writing);
    match futures_util::poll!(&mut writing) {
        Poll::Ready(result) => result,
        Poll::Pending => match tokio::time::timeout(limit, writing).await {
            Ok(result) => result,
            Err(_) => Err(Error::Io(std::io::ErrorKind::TimedOut.into())),
        },
    }
}

impl Tally {
    fn count(&mut self, bytes: usize) {
        self.messages += 1;
        self.bytes += bytes as u64;
    }
}

/// The Close frame that reports a read error to the client, if the error is the client's fault.
fn close_frame_for(error: &Error) -> Option<CloseFrame> {
    let (code, reason) = match error {
        Error::Protocol(_) => (CloseCode::Protocol, "protocol error"),
        Error::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8 in a text message"),
        Error::Io(error) if utf8_guard::is_invalid_utf8(error) => {
            (CloseCode::Invalid, "invalid UTF-8 in a text message")
        }
        Error::Capacity(CapacityError::MessageTooLong { .. }) => {
            (CloseCode::Size, "message too big")
        }
        _ => return None,
    };
    Some(CloseFrame {
        code,
        reason: reason.into(),
    })
}

/// Fails the connection: sends `frame`, then reads until the client answers or a short time
/// passes, so the Close is not lost to a TCP reset from unread data.
async fn fail<S>(socket: &mut S, frame: CloseFrame)
where
    S: Stream<Item = Result<Message, Error>> + Sink<Message, Error = Error> + Unpin,
{
    if socket.send(Message::Close(Some(frame))).await.is_ok() {
        let drain = async { while let Some(Ok(_)) = socket.next().await {} };
        let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
    }
}
