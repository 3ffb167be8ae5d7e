//! Test-only controls, off unless `--test-controls` is given: text messages starting with `!`
//! that make the server misbehave on purpose, so that client tests can see how a client copes
//! with a server that closes, vanishes or goes down.
//!
//! - `!close CODE REASON`: the server closes the connection with that code and reason.
//! - `!drop`: the server drops the TCP connection without a Close frame (the browser says 1006).
//! - `!outage MILLIS`: the server drops every connection and refuses handshakes with 503 for
//!   that long (at most [`MAX_OUTAGE`]), as if it had stopped and started again.
//! - `!stall MILLIS`: the server stops reading and answering this connection but keeps it
//!   open for that long (at most [`MAX_OUTAGE`]), then drops it: a half-open peer, as after a
//!   laptop sleeps or a network changes.
//! - `!flood COUNT SIZE`: the server sends COUNT binary messages of SIZE bytes (at most
//!   [`MAX_FLOOD_COUNT`] and [`MAX_FLOOD_SIZE`]), each as soon as the peer takes the one
//!   before, and reads nothing meanwhile: for clients' receive backpressure. It holds one
//!   message at a time, whatever COUNT: what waits is in the kernel's socket buffers.
//! - A handshake on [`SILENT_PATH`] is never answered (until the HTTP timeout): a server that
//!   accepts connections and hangs, for clients' connect timeouts.
//!
//! Any other text, `!` or not, is echoed as usual.

use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::{Sink, SinkExt};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::Error;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The longest outage `!outage` may ask for: long enough for any reconnection test, short
/// enough that a mistaken or hostile command cannot take the server down for good.
pub const MAX_OUTAGE: Duration = Duration::from_secs(60);

/// The most messages one `!flood` sends.
pub const MAX_FLOOD_COUNT: u32 = 1_000_000;

/// The largest message `!flood` sends: 1 MiB.
pub const MAX_FLOOD_SIZE: usize = 1 << 20;

/// The path whose handshakes are never answered.
pub const SILENT_PATH: &str = "/silent";

/// A control command.
#[derive(Debug, PartialEq)]
pub enum Command {
    Close(CloseFrame),
    Drop,
    Outage(Duration),
    /// `!stall` and `!flood`, which the echo loop hands the connection over to.
    Takeover(Takeover),
}

/// A control that takes the connection over from the echo loop for a while: the loop runs
/// it ([`Takeover::run`]) and goes on, or not, as it says.
#[derive(Debug, PartialEq)]
pub enum Takeover {
    /// `!stall MILLIS`: neither read nor answer for this long, then end the connection.
    Stall(Duration),
    /// `!flood COUNT SIZE`: send this many binary messages of this size, reading nothing
    /// meanwhile.
    Flood { count: u32, size: usize },
}

impl Takeover {
    /// Runs the control on `socket`: a stall ends early when the server shuts down
    /// (`shutting_down`), and ends the connection; a flood gives each message `timeout` and
    /// lets the connection go on.
    pub async fn run<S, F>(
        self,
        socket: &mut S,
        shutting_down: Pin<&mut F>,
        timeout: Duration,
    ) -> Result<ControlFlow<()>, Error>
    where
        S: Sink<Message, Error = Error> + Unpin,
        F: Future,
    {
        match self {
            Takeover::Stall(duration) => {
                tokio::select! {
                    _ = tokio::time::sleep(duration) => {}
                    _ = shutting_down => {}
                }
                Ok(ControlFlow::Break(()))
            }
            Takeover::Flood { count, size } => {
                flood(socket, count, size, timeout).await?;
                Ok(ControlFlow::Continue(()))
            }
        }
    }
}

/// Parses a control command; `None` for any other text, and for an outage longer than
/// [`MAX_OUTAGE`].
pub fn parse(text: &str) -> Option<Command> {
    let (verb, rest) = text
        .strip_prefix('!')?
        .split_once(' ')
        .unwrap_or((&text[1..], ""));
    match verb {
        "close" => {
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(Command::Close(CloseFrame {
                code: CloseCode::from(code.parse::<u16>().ok()?),
                reason: reason.to_owned().into(),
            }))
        }
        "drop" => Some(Command::Drop),
        "flood" => {
            let (count, size) = rest.split_once(' ')?;
            let (count, size) = (count.parse().ok()?, size.parse().ok()?);
            (count <= MAX_FLOOD_COUNT && size <= MAX_FLOOD_SIZE)
                .then_some(Command::Takeover(Takeover::Flood { count, size }))
        }
        "outage" | "stall" => {
            let duration = Duration::from_millis(rest.parse().ok()?);
            if duration > MAX_OUTAGE {
                return None;
            }
            Some(match verb {
                "outage" => Command::Outage(duration),
                _ => Command::Takeover(Takeover::Stall(duration)),
            })
        }
        _ => None,
    }
}

/// The state the controls share across connections.
#[derive(Debug)]
pub struct Controls {
    outage_until: Mutex<Option<Instant>>,
    drop_all: broadcast::Sender<()>,
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            outage_until: Mutex::new(None),
            drop_all: broadcast::channel(1).0,
        }
    }
}

impl Controls {
    /// Whether handshakes are being refused.
    pub fn in_outage(&self) -> bool {
        let until = *self.outage_until.lock().expect("never poisoned");
        until.is_some_and(|until| Instant::now() < until)
    }

    /// Drops every connection and refuses handshakes for `duration`.
    pub fn start_outage(&self, duration: Duration) {
        *self.outage_until.lock().expect("never poisoned") = Some(Instant::now() + duration);
        let _ = self.drop_all.send(());
    }

    /// A receiver that hears when every connection must be dropped.
    pub fn subscribe(&self) -> broadcast::Receiver<()> {
        self.drop_all.subscribe()
    }
}

/// Sends `count` binary messages of `size` bytes on `sink`, each within `timeout` (a peer that
/// stops reading for longer ends the flood with a timeout error). One buffer is shared by
/// every message, so the server holds one message however many it sends.
async fn flood<S>(sink: &mut S, count: u32, size: usize, timeout: Duration) -> Result<(), Error>
where
    S: Sink<Message, Error = Error> + Unpin,
{
    let message = Message::Binary(vec![0x5a; size].into());
    for _ in 0..count {
        match tokio::time::timeout(timeout, sink.send(message.clone())).await {
            Ok(sent) => sent?,
            Err(_) => return Err(Error::Io(std::io::ErrorKind::TimedOut.into())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_leaves_other_text_alone() {
        let close = parse("!close 4001 logged out").unwrap();
        let Command::Close(frame) = close else {
            panic!("{close:?}")
        };
        assert_eq!(u16::from(frame.code), 4001);
        assert_eq!(frame.reason.as_str(), "logged out");
        assert_eq!(parse("!drop"), Some(Command::Drop));
        assert_eq!(
            parse("!outage 500"),
            Some(Command::Outage(Duration::from_millis(500)))
        );
        assert_eq!(
            parse("!outage 60000"),
            Some(Command::Outage(Duration::from_secs(60)))
        );
        assert_eq!(
            parse("!stall 2000"),
            Some(Command::Takeover(Takeover::Stall(Duration::from_secs(2))))
        );
        assert_eq!(
            parse("!flood 1000 65536"),
            Some(Command::Takeover(Takeover::Flood {
                count: 1000,
                size: 65536
            }))
        );
        for text in [
            "!flood 10",
            "!flood 10 1048577",
            "!flood 1000001 1",
            "Hello, world!",
            "!",
            "!close x",
            "!unknown",
            "close 4000",
            "!outage 60001",
            "!outage 18446744073709551615",
            "!stall 60001",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
