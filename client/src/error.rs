//! The crate's one error type.

use crate::message::{CloseEvent, MAX_CLOSE_REASON, NORMAL_CLOSURE, State};

/// What can go wrong, with a message that says what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The browser refused the URL: its scheme must be `ws`, `wss`, `http` or `https` (a
    /// relative URL is resolved against the page), and it must not have a fragment.
    #[error("invalid WebSocket URL \"{url}\": {message}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// The browser's explanation.
        message: String,
    },
    /// A message was sent while the socket was not open; wait for the open callback, or
    /// reconnect after a close.
    #[error("cannot send while the socket is {0}; send after it opens, or use send_async")]
    NotOpen(State),
    /// Browsers allow only 1000 and 3000 to 4999 in `close()`; the others are reserved for the
    /// protocol itself.
    #[error("close code {0} is not allowed: use 1000, or 3000 to 4999 for the application")]
    InvalidCloseCode(u16),
    /// The close reason is longer than the protocol allows.
    #[error("close reason is {0} bytes of UTF-8; at most {MAX_CLOSE_REASON} are allowed")]
    ReasonTooLong(usize),
    /// The socket closed before it ever opened (an awaited [`open`](crate::Builder::open)),
    /// with the code and reason of its last close: 1006 when the server could not be
    /// reached or refused the handshake (browsers tell nothing more, on purpose).
    #[error("could not connect: closed with code {} before opening{}", .0.code, reason_suffix(&.0.reason))]
    ConnectFailed(CloseEvent),
    /// With reconnection on, the queue of messages waiting for the next connection is full
    /// and its overflow policy is [`Overflow::Error`](crate::Overflow::Error).
    #[error("the queue of {capacity} messages waiting for reconnection is full")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// A subprotocol that the browser would refuse: it must be a non-empty HTTP token (no
    /// spaces, commas or other separators) and offered only once.
    #[error("invalid subprotocol \"{0}\": use a distinct, non-empty token without separators")]
    InvalidProtocol(String),
    /// The browser threw an exception this crate did not foresee.
    #[error("the browser raised an exception: {0}")]
    Js(String),
    /// With the `json` feature: a value serde_json could not serialize, or a message that
    /// did not decode as the type asked for, with serde_json's reason.
    #[cfg(feature = "json")]
    #[error("JSON: {0}")]
    Json(String),
    /// Natively, a request header given to `Builder::header` that HTTP does not allow: its
    /// name must be a token, and its value visible ASCII, spaces and tabs.
    #[cfg(not(target_arch = "wasm32"))]
    #[error(
        "invalid request header \"{0}\": the name must be an HTTP token, the value visible ASCII"
    )]
    InvalidHeader(String),
    /// Natively, sockets run as local tasks: make them inside a tokio `LocalSet` (or from a
    /// task it runs), on a runtime with the `time` and `net` drivers enabled.
    #[cfg(not(target_arch = "wasm32"))]
    #[error(
        "no tokio LocalSet here: connect from inside `tokio::task::LocalSet::run_until` (or a task it runs)"
    )]
    NoLocalSet,
    /// Natively, a proxy URL (given to `Builder::proxy`, or in a proxy variable of the
    /// environment) that is not one: its scheme must be `http`, `https`, `socks5` or
    /// `socks5h` (or none, which is `http`), and it must name a host.
    #[cfg(not(target_arch = "wasm32"))]
    #[error("invalid proxy \"{proxy}\": {message}")]
    InvalidProxy {
        /// The proxy URL, its password hidden.
        proxy: String,
        /// What is wrong with it.
        message: String,
    },
    /// Natively, an awaited [`open`](crate::Builder::open) whose last attempt the proxy
    /// refused: `status` is the proxy's answer's (407: it wants other credentials; 403: it
    /// forbids the destination; 502 or 500: it cannot reach the server), `None` when the
    /// proxy could not be reached, did not answer in HTTP, or is a SOCKS5 proxy (the reason
    /// then says what it answered). Its close event has
    /// [`CloseCause::Proxy`](crate::CloseCause::Proxy).
    #[cfg(not(target_arch = "wasm32"))]
    #[error("could not connect: {reason}")]
    Proxy {
        /// The proxy's HTTP status.
        status: Option<u16>,
        /// Which proxy, and what it answered.
        reason: String,
    },
    /// Natively, an awaited [`open`](crate::Builder::open) whose last attempt failed because
    /// the server's handshake answer named extensions the client cannot honour (RFC 6455
    /// section 4.1, RFC 7692 section 5.1): one it did not offer, or permessage-deflate with
    /// an unknown, repeated or invalid parameter. The reason says which. Its close event has
    /// [`CloseCause::Extension`](crate::CloseCause::Extension).
    #[cfg(not(target_arch = "wasm32"))]
    #[error("could not connect: {reason}")]
    Extension {
        /// What the server answered, and why it cannot be accepted.
        reason: String,
    },
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        [": ", reason].concat()
    }
}

/// Checks a close code and reason the way the browser's `close()` does, before it throws.
pub fn validate_close(code: u16, reason: &str) -> Result<(), Error> {
    if code != NORMAL_CLOSURE && !(3000..=4999).contains(&code) {
        return Err(Error::InvalidCloseCode(code));
    }
    if reason.len() > MAX_CLOSE_REASON {
        return Err(Error::ReasonTooLong(reason.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_the_browser_accepts() {
        assert!(validate_close(1000, "").is_ok());
        assert!(validate_close(3000, "").is_ok());
        assert!(validate_close(4999, "").is_ok());
        for code in [0, 999, 1001, 1005, 1006, 2999, 5000] {
            assert_eq!(validate_close(code, ""), Err(Error::InvalidCloseCode(code)));
        }
    }

    #[test]
    fn close_reason_is_limited_in_bytes_not_characters() {
        assert!(validate_close(1000, &"a".repeat(123)).is_ok());
        assert_eq!(
            validate_close(1000, &"a".repeat(124)),
            Err(Error::ReasonTooLong(124))
        );
        // 62 two-byte characters: 124 bytes.
        assert_eq!(
            validate_close(1000, &"ñ".repeat(62)),
            Err(Error::ReasonTooLong(124))
        );
    }
}
