//! A client's negotiation: the offer it sends, and the server's answer checked as RFC 7692
//! section 5.1 says (the answer's parameters: sections 7.1.1 and 7.1.2).

use http::header::{HeaderMap, SEC_WEBSOCKET_EXTENSIONS};
use tungstenite::protocol::Role;

use crate::negotiate::{EXTENSION, split_unquoted, unquote, window_bits};
use crate::{Compressor, Reading};

/// The `Sec-WebSocket-Extensions` a client offers: permessage-deflate, telling the server that
/// the client keeps no window between its messages (`client_no_context_takeover`, a hint the
/// server may answer or not) and that it can compress with a smaller window if the server
/// wants one (`client_max_window_bits`). It leaves the server free to keep its own window
/// (no `server_no_context_takeover`): the client can read that, and a server that keeps it
/// compresses small messages much better.
pub const OFFER: &str = "permessage-deflate; client_no_context_takeover; client_max_window_bits";

/// What a client and the server agreed on, read from the server's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreed {
    /// The largest window the client may compress with: the answer's
    /// `client_max_window_bits`, else 15.
    pub client_window_bits: u8,
    /// Whether the server may compress with the window of its earlier messages: its answer
    /// has no `server_no_context_takeover`.
    pub server_context_takeover: bool,
}

impl Agreed {
    /// How the client reads the server's frames, with `max_message_size` as its limit.
    pub fn reading(&self, max_message_size: usize) -> Reading {
        Reading {
            role: Role::Client,
            max_message_size,
            context_takeover: self.server_context_takeover,
        }
    }

    /// The client's compressor for this connection.
    pub fn compressor(&self) -> Compressor {
        Compressor::new(self.client_window_bits)
    }
}

/// Why the server's `Sec-WebSocket-Extensions` cannot be accepted: the client must fail the
/// connection (RFC 6455 section 4.1, RFC 7692 section 5.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The server named an extension the client did not offer.
    #[error("the server answered with an extension that was not offered: \"{0}\"")]
    NotOffered(String),
    /// The server accepted permessage-deflate more than once.
    #[error("the server answered with permessage-deflate more than once")]
    Repeated,
    /// A parameter that RFC 7692 does not define for a response.
    #[error("the server's permessage-deflate has an unknown parameter \"{0}\"")]
    UnknownParameter(String),
    /// A parameter given twice.
    #[error("the server's permessage-deflate names \"{0}\" more than once")]
    RepeatedParameter(String),
    /// A parameter's value is not what RFC 7692 allows: a window size that is not 8 to 15, a
    /// value on a flag, or none where one is needed.
    #[error("the server's permessage-deflate parameter \"{0}\" has an invalid value")]
    InvalidValue(String),
    /// The header is not text.
    #[error("the server's Sec-WebSocket-Extensions is not readable text")]
    Unreadable,
}

/// Reads the server's `Sec-WebSocket-Extensions` from its handshake `response` headers, after
/// a handshake that offered [`OFFER`] if `offered`, else no extension: what was agreed (`None`:
/// no extension, the connection goes on without compression), or why the answer cannot be
/// accepted.
pub fn accept_response(
    headers: &HeaderMap,
    offered: bool,
) -> Result<Option<Agreed>, ResponseError> {
    let mut agreed = None;
    for value in headers.get_all(SEC_WEBSOCKET_EXTENSIONS) {
        let value = value.to_str().map_err(|_| ResponseError::Unreadable)?;
        for element in split_unquoted(value, ',') {
            let mut parts = split_unquoted(element, ';').into_iter();
            let name = parts.next().unwrap_or_default().trim();
            if name.is_empty() && element.trim().is_empty() {
                // An empty list element: HTTP's list syntax allows it.
                continue;
            }
            if !offered || name != EXTENSION {
                return Err(ResponseError::NotOffered(element.trim().to_owned()));
            }
            if agreed.is_some() {
                return Err(ResponseError::Repeated);
            }
            agreed = Some(read_parameters(parts)?);
        }
    }
    Ok(agreed)
}

/// The parameters of the server's permessage-deflate (section 7.1): each at most once, flags
/// without a value, window sizes with one.
fn read_parameters<'a>(params: impl Iterator<Item = &'a str>) -> Result<Agreed, ResponseError> {
    const NAMES: [&str; 4] = [
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
    ];
    let mut seen = [false; 4];
    let mut agreed = Agreed {
        client_window_bits: 15,
        server_context_takeover: true,
    };
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (param.trim(), None),
        };
        let Some(index) = NAMES.iter().position(|known| *known == name) else {
            return Err(ResponseError::UnknownParameter(name.to_owned()));
        };
        if std::mem::replace(&mut seen[index], true) {
            return Err(ResponseError::RepeatedParameter(name.to_owned()));
        }
        let invalid = || ResponseError::InvalidValue(name.to_owned());
        let bits = || {
            let value = unquote(value.ok_or_else(invalid)?).ok_or_else(invalid)?;
            window_bits(&value).ok_or_else(invalid)
        };
        match index {
            // The server keeps no window: each of its messages is inflated afresh.
            0 if value.is_none() => agreed.server_context_takeover = false,
            // The client never keeps one anyway (it offered not to).
            1 if value.is_none() => {}
            // The server's own window: an inflater with 15 bits reads any smaller one.
            2 => {
                bits()?;
            }
            // The client offered `client_max_window_bits`, so the server may limit it.
            3 => agreed.client_window_bits = bits()?,
            _ => return Err(invalid()),
        }
    }
    Ok(agreed)
}
