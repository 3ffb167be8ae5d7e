//! The crate's one error type.

use std::fmt;

use crate::message::{CloseEvent, MAX_CLOSE_REASON, NORMAL_CLOSURE, State};

/// What can go wrong, with a message that says what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The browser refused the URL: its scheme must be `ws`, `wss`, `http` or `https` (a
    /// relative URL is resolved against the page), and it must not have a fragment.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// The browser's explanation.
        message: String,
    },
    /// A message was sent while the socket was not open; wait for the open callback, or
    /// reconnect after a close.
    NotOpen(State),
    /// Browsers allow only 1000 and 3000 to 4999 in `close()`; the others are reserved for the
    /// protocol itself.
    InvalidCloseCode(u16),
    /// The close reason is longer than the protocol allows.
    ReasonTooLong(usize),
    /// The socket closed before it ever opened (an awaited [`open`](crate::Builder::open)),
    /// with the code and reason of its last close: 1006 when the server could not be
    /// reached or refused the handshake (browsers tell nothing more, on purpose).
    ConnectFailed(CloseEvent),
    /// With reconnection on, the queue of messages waiting for the next connection is full
    /// and its overflow policy is [`Overflow::Error`](crate::Overflow::Error).
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// A subprotocol that the browser would refuse: it must be a non-empty HTTP token (no
    /// spaces, commas or other separators) and offered only once.
    InvalidProtocol(String),
    /// The browser threw an exception this crate did not foresee.
    Js(String),
    /// With the `json` feature: a value serde_json could not serialize, or a message that
    /// did not decode as the type asked for, with serde_json's reason.
    #[cfg(feature = "json")]
    Json(String),
    /// Natively, a request header given to `Builder::header` that HTTP does not allow: its
    /// name must be a token, and its value visible ASCII, spaces and tabs.
    #[cfg(not(target_arch = "wasm32"))]
    InvalidHeader(String),
    /// Natively, sockets run as local tasks: make them inside a tokio `LocalSet` (or from a
    /// task it runs), on a runtime with the `time` and `net` drivers enabled.
    #[cfg(not(target_arch = "wasm32"))]
    NoLocalSet,
    /// Natively, a proxy URL (given to `Builder::proxy`, or in a proxy variable of the
    /// environment) that is not one: its scheme must be `http`, `https`, `socks5` or
    /// `socks5h` (or none, which is `http`), and it must name a host.
    #[cfg(not(target_arch = "wasm32"))]
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
    Extension {
        /// What the server answered, and why it cannot be accepted.
        reason: String,
    },
}

impl std::error::Error for Error {}

// Written by hand, in pieces, rather than derived with thiserror: `format_args!` for each
// message, and the integers formatted by Rust, cost the same small program of BENCHMARKS.md
// section 8 511 B of its gzipped wasm. The one number a message may have is written by itoa
// into a buffer on the stack (Rust's integer `Display` costs a page 0.4 KB gzipped that it
// has no other use for; a `String` per number, their allocations and drops).
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut number = itoa::Buffer::new();
        let pieces: &[&str] = match self {
            Error::InvalidUrl { url, message } => {
                &["invalid WebSocket URL \"", url, "\": ", message]
            }
            Error::NotOpen(state) => &[
                "cannot send while the socket is ",
                state.as_str(),
                "; send after it opens, or use send_async",
            ],
            Error::InvalidCloseCode(code) => &[
                "close code ",
                number.format(usize::from(*code)),
                " is not allowed: use 1000, or 3000 to 4999 for the application",
            ],
            Error::ReasonTooLong(length) => &[
                "close reason is ",
                number.format(*length),
                " bytes of UTF-8; at most ",
                MAX_CLOSE_REASON_DECIMAL,
                " are allowed",
            ],
            Error::ConnectFailed(close) => &[
                "could not connect: closed with code ",
                number.format(usize::from(close.code)),
                " before opening",
                if close.reason.is_empty() { "" } else { ": " },
                &close.reason,
            ],
            Error::QueueFull { capacity } => &[
                "the queue of ",
                number.format(*capacity),
                " messages waiting for reconnection is full",
            ],
            Error::InvalidProtocol(protocol) => &[
                "invalid subprotocol \"",
                protocol,
                "\": use a distinct, non-empty token without separators",
            ],
            Error::Js(message) => &["the browser raised an exception: ", message],
            #[cfg(feature = "json")]
            Error::Json(message) => &["JSON: ", message],
            #[cfg(not(target_arch = "wasm32"))]
            Error::InvalidHeader(header) => &[
                "invalid request header \"",
                header,
                "\": the name must be an HTTP token, the value visible ASCII",
            ],
            #[cfg(not(target_arch = "wasm32"))]
            Error::NoLocalSet => &[
                "no tokio LocalSet here: connect from inside `tokio::task::LocalSet::run_until` \
                 (or a task it runs)",
            ],
            #[cfg(not(target_arch = "wasm32"))]
            Error::InvalidProxy { proxy, message } => &["invalid proxy \"", proxy, "\": ", message],
            #[cfg(not(target_arch = "wasm32"))]
            Error::Proxy { reason, .. } | Error::Extension { reason } => {
                &["could not connect: ", reason]
            }
        };
        pieces.iter().try_for_each(|piece| f.write_str(piece))
    }
}

/// [`MAX_CLOSE_REASON`] in decimal, written once rather than formatted (a test holds them
/// equal).
const MAX_CLOSE_REASON_DECIMAL: &str = "123";

impl Error {
    /// The reason of the close that reports an attempt the transport refused with this
    /// error: the URL and what is wrong with it, for [`Error::InvalidUrl`].
    pub(crate) fn into_refusal_reason(self) -> String {
        match self {
            Error::InvalidUrl { mut url, message } => {
                url.push_str(": ");
                url.push_str(&message);
                url
            }
            _ => String::new(),
        }
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
    fn the_longest_reason_in_decimal_is_the_longest_reason() {
        assert_eq!(MAX_CLOSE_REASON_DECIMAL, MAX_CLOSE_REASON.to_string());
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", allow(unused_mut))]
    fn every_error_says_what_went_wrong() {
        let close = |reason: &str| CloseEvent::new(1006, reason, false);
        let mut cases = vec![
            (
                Error::InvalidUrl {
                    url: "ftp://x".into(),
                    message: "bad scheme".into(),
                },
                "invalid WebSocket URL \"ftp://x\": bad scheme",
            ),
            (
                Error::NotOpen(State::Connecting),
                "cannot send while the socket is connecting; send after it opens, or use send_async",
            ),
            (
                Error::InvalidCloseCode(0),
                "close code 0 is not allowed: use 1000, or 3000 to 4999 for the application",
            ),
            (
                Error::ReasonTooLong(usize::MAX),
                "close reason is 18446744073709551615 bytes of UTF-8; at most 123 are allowed",
            ),
            (
                Error::ConnectFailed(close("")),
                "could not connect: closed with code 1006 before opening",
            ),
            (
                Error::ConnectFailed(close("refused")),
                "could not connect: closed with code 1006 before opening: refused",
            ),
            (
                Error::QueueFull { capacity: 64 },
                "the queue of 64 messages waiting for reconnection is full",
            ),
            (
                Error::InvalidProtocol("a b".into()),
                "invalid subprotocol \"a b\": use a distinct, non-empty token without separators",
            ),
            (
                Error::Js("TypeError".into()),
                "the browser raised an exception: TypeError",
            ),
        ];
        #[cfg(not(target_arch = "wasm32"))]
        cases.extend([
            (
                Error::InvalidHeader("x y".into()),
                "invalid request header \"x y\": the name must be an HTTP token, the value \
                 visible ASCII",
            ),
            (
                Error::NoLocalSet,
                "no tokio LocalSet here: connect from inside `tokio::task::LocalSet::run_until` \
                 (or a task it runs)",
            ),
            (
                Error::InvalidProxy {
                    proxy: "ftp://p".into(),
                    message: "bad scheme".into(),
                },
                "invalid proxy \"ftp://p\": bad scheme",
            ),
            (
                Error::Proxy {
                    status: Some(407),
                    reason: "407 from p".into(),
                },
                "could not connect: 407 from p",
            ),
            (
                Error::Extension {
                    reason: "x-unknown".into(),
                },
                "could not connect: x-unknown",
            ),
        ]);
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }

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
