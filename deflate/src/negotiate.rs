//! A server's negotiation: the client's `Sec-WebSocket-Extensions` offers, and the answer (RFC 7692
//! sections 5 and 7.1).

use http::header::{HeaderMap, HeaderValue, SEC_WEBSOCKET_EXTENSIONS};

/// The extension's name in the handshake.
pub const EXTENSION: &str = "permessage-deflate";

/// What one connection agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The LZ77 window the server compresses with: `server_max_window_bits` if the client
    /// asked for one, else 15.
    pub server_window_bits: u8,
}

/// Accepts the first permessage-deflate offer in `headers` that the server can honour exactly
/// (RFC 7692 sections 5 and 7.1), and returns it with the response header's value. `None`
/// when there is no such offer: the connection then goes on without compression.
///
/// The response always says `server_no_context_takeover` and `client_no_context_takeover`
/// (section 7.1.1; Node's `ws` answers both unasked too, and Autobahn, Chromium and Python's
/// `websockets` accept it), so that neither side keeps a window between messages: the
/// server's idle memory does not depend on the client.
pub fn negotiate(headers: &HeaderMap) -> Option<(Negotiated, HeaderValue)> {
    let offers = headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        // A header that is not ASCII is no offer we can read.
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| split_unquoted(value, ','));
    for offer in offers {
        let mut parts = split_unquoted(offer, ';').into_iter();
        if parts.next().map(str::trim) != Some(EXTENSION) {
            continue;
        }
        if let Some(accepted) = accept_offer(parts) {
            return Some(accepted);
        }
    }
    None
}

/// One offer's parameters, checked: any unknown, repeated or invalid one declines the offer.
pub(crate) fn accept_offer<'a>(
    params: impl Iterator<Item = &'a str>,
) -> Option<(Negotiated, HeaderValue)> {
    let mut seen = [false; 4];
    let mut server_window_bits = None;
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(unquote(value.trim())?)),
            None => (param.trim(), None),
        };
        let index = match name {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return None,
        };
        if std::mem::replace(&mut seen[index], true) {
            return None;
        }
        match (index, value) {
            // Flags take no value.
            (0 | 1, None) => {}
            // The client asks us to compress with at most this window; zlib cannot deflate
            // with 8 bits, so an offer of 8 is declined.
            (2, Some(value)) => match window_bits(&value)? {
                8 => return None,
                bits => server_window_bits = Some(bits),
            },
            // The client may limit its own window; we inflate with 15 bits, which reads
            // anything, so we need not answer it.
            (3, None) => {}
            (3, Some(value)) => {
                window_bits(&value)?;
            }
            _ => return None,
        }
    }
    let mut response =
        format!("{EXTENSION}; server_no_context_takeover; client_no_context_takeover");
    if let Some(bits) = server_window_bits {
        response.push_str(&format!("; server_max_window_bits={bits}"));
    }
    let negotiated = Negotiated {
        server_window_bits: server_window_bits.unwrap_or(15),
    };
    Some((negotiated, HeaderValue::from_str(&response).ok()?))
}

/// A window size as RFC 7692 spells it: 8 to 15, without leading zeros or signs.
pub(crate) fn window_bits(value: &str) -> Option<u8> {
    let bits: u8 = value.parse().ok()?;
    ((8..=15).contains(&bits) && value == bits.to_string()).then_some(bits)
}

/// A parameter value: a token, or a quoted string whose content is one (section 7.1).
pub(crate) fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.is_empty()).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut unquoted = String::new();
    let mut escaped = false;
    for c in inner.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return None,
            c => {
                unquoted.push(c);
                escaped = false;
            }
        }
    }
    (!escaped && !unquoted.is_empty()).then_some(unquoted)
}

/// Splits at `separator` outside quoted strings.
pub(crate) fn split_unquoted(value: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (index, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&value[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}
