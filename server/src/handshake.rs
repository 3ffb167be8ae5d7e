//! The opening handshake (RFC 6455 section 4.2), checked header by header so that each fault
//! gets the HTTP status that names it instead of a dropped connection; and its HTTP/2 form
//! (RFC 8441 section 5), an extended `CONNECT` answered with `200`.

use http_body_util::Full;
use hyper::header::{
    CONNECTION, HeaderMap, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Method, Request, Response, StatusCode, Version};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::response::{HttpResponse, plain};

/// The only WebSocket path, as in the seed.
pub const PATH: &str = "/";

/// Whether the request tries to open a WebSocket, well or badly. Such a request is never
/// answered with a file: a malformed handshake gets an error status.
pub fn is_upgrade_attempt<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    headers.contains_key(UPGRADE)
        || headers.contains_key(SEC_WEBSOCKET_KEY)
        // HTTP/2: this server is no proxy, so a `CONNECT` can only mean a WebSocket.
        || (request.version() == Version::HTTP_2 && request.method() == Method::CONNECT)
}

/// Why a handshake was refused; each reason has its HTTP status and a short message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not a `GET`: 405.
    NotGet,
    /// Not at [`PATH`]: 404.
    WrongPath,
    /// `Upgrade` is not `websocket`: 400.
    NotWebSocket,
    /// `Connection` lacks `Upgrade`: 400.
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Version` is not 13: 426, naming the version we speak.
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` is missing, repeated, or not 16 bytes of base64: 400.
    BadKey,
    /// HTTP/2: a `CONNECT` whose `:protocol` is not `websocket`: 400.
    NotWebSocketProtocol,
    /// HTTP/2: `sec-websocket-version` is not 13: 400, naming the version we speak (426
    /// would ask for an `Upgrade`, which HTTP/2 does not have).
    UnsupportedVersionOverHttp2,
}

impl Rejection {
    /// The HTTP status that names the fault.
    pub fn status(self) -> StatusCode {
        match self {
            Rejection::NotGet => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::WrongPath => StatusCode::NOT_FOUND,
            Rejection::NotWebSocket
            | Rejection::NoConnectionUpgrade
            | Rejection::BadKey
            | Rejection::NotWebSocketProtocol
            | Rejection::UnsupportedVersionOverHttp2 => StatusCode::BAD_REQUEST,
            Rejection::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Rejection::NotGet => "a WebSocket handshake must use GET\n",
            Rejection::WrongPath => "no WebSocket at this path; it is at /\n",
            Rejection::NotWebSocket => "the Upgrade header must be \"websocket\"\n",
            Rejection::NoConnectionUpgrade => "the Connection header must contain \"Upgrade\"\n",
            Rejection::UnsupportedVersion => "only WebSocket version 13 is supported\n",
            Rejection::BadKey => "Sec-WebSocket-Key must be one base64-encoded 16-byte value\n",
            Rejection::NotWebSocketProtocol => "a CONNECT here must carry :protocol websocket\n",
            Rejection::UnsupportedVersionOverHttp2 => "only WebSocket version 13 is supported\n",
        }
    }

    /// The plain-text answer, with the header the status calls for.
    pub fn into_response(self) -> HttpResponse {
        let mut response = plain(self.status(), self.message());
        let headers = response.headers_mut();
        match self {
            Rejection::NotGet => {
                headers.insert(hyper::header::ALLOW, HeaderValue::from_static("GET"));
            }
            Rejection::UnsupportedVersion | Rejection::UnsupportedVersionOverHttp2 => {
                headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            _ => {}
        }
        response
    }
}

/// Checks a WebSocket upgrade request and returns the `101` answer, or why it was refused.
///
/// `protocols` are the server's subprotocols in order of preference; the first of them the
/// client offers is selected.
pub fn accept<B>(request: &Request<B>, protocols: &[String]) -> Result<HttpResponse, Rejection> {
    let headers = request.headers();
    if request.method() != Method::GET {
        return Err(Rejection::NotGet);
    }
    if request.uri().path() != PATH {
        return Err(Rejection::WrongPath);
    }
    if !has_token(headers, UPGRADE, "websocket") {
        return Err(Rejection::NotWebSocket);
    }
    if !has_token(headers, CONNECTION, "upgrade") {
        return Err(Rejection::NoConnectionUpgrade);
    }
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(Rejection::UnsupportedVersion);
    }
    let key = match headers
        .get_all(SEC_WEBSOCKET_KEY)
        .iter()
        .collect::<Vec<_>>()[..]
    {
        [key] if is_valid_key(key.as_bytes()) => key,
        _ => return Err(Rejection::BadKey),
    };

    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "Upgrade")
        .header(SEC_WEBSOCKET_ACCEPT, derive_accept_key(key.as_bytes()))
        .body(Full::default())
        .expect("static headers are valid");
    if let Some(protocol) = select_protocol(headers, protocols) {
        let value = HeaderValue::from_str(protocol).expect("configured protocols are tokens");
        response.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    Ok(response)
}

/// Checks an HTTP/2 extended `CONNECT` (RFC 8441 section 5) and returns the `200` answer, or
/// why it was refused. It carries no key and gets no accept key: the stream is the
/// WebSocket's alone from the start.
pub fn accept_connect<B>(
    request: &Request<B>,
    protocols: &[String],
) -> Result<HttpResponse, Rejection> {
    let protocol = request.extensions().get::<hyper::ext::Protocol>();
    if request.method() != Method::CONNECT || protocol.map(|p| p.as_str()) != Some("websocket") {
        return Err(Rejection::NotWebSocketProtocol);
    }
    if request.uri().path() != PATH {
        return Err(Rejection::WrongPath);
    }
    let headers = request.headers();
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(Rejection::UnsupportedVersionOverHttp2);
    }
    let mut response = Response::new(Full::default());
    if let Some(protocol) = select_protocol(headers, protocols) {
        let value = HeaderValue::from_str(protocol).expect("configured protocols are tokens");
        response.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    Ok(response)
}

/// The first of the server's protocols that the client offers.
fn select_protocol<'a>(headers: &HeaderMap, protocols: &'a [String]) -> Option<&'a str> {
    let offered: Vec<&str> = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    protocols
        .iter()
        .map(String::as_str)
        .find(|protocol| offered.contains(protocol))
}

/// Whether a comma-separated header contains `token`, case-insensitively.
fn has_token(headers: &HeaderMap, name: hyper::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// A key is 16 bytes in base64: 22 characters of the alphabet and `==`.
fn is_valid_key(key: &[u8]) -> bool {
    let alphabet = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    key.len() == 24 && key[..22].iter().all(alphabet) && &key[22..] == b"=="
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get("/");
        for (name, value) in pairs {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    const GOOD: [(&str, &str); 4] = [
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn accepts_the_rfc_example_with_its_accept_key() {
        let response = accept(&request(&GOOD), &[]).unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            response.headers()[SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(!response.headers().contains_key(SEC_WEBSOCKET_PROTOCOL));
    }

    #[test]
    fn each_fault_gets_its_rejection() {
        let without = |name: &str| -> Vec<(&str, &str)> {
            GOOD.iter().copied().filter(|(n, _)| *n != name).collect()
        };
        let verdict = |pairs: &[(&str, &str)]| accept(&request(pairs), &[]).unwrap_err();
        assert_eq!(verdict(&without("Sec-WebSocket-Key")), Rejection::BadKey);
        assert_eq!(verdict(&without("Upgrade")), Rejection::NotWebSocket);
        assert_eq!(
            verdict(&without("Connection")),
            Rejection::NoConnectionUpgrade
        );
        let mut old = without("Sec-WebSocket-Version");
        old.push(("Sec-WebSocket-Version", "8"));
        assert_eq!(verdict(&old), Rejection::UnsupportedVersion);
        let mut short = without("Sec-WebSocket-Key");
        short.push(("Sec-WebSocket-Key", "c2hvcnQ="));
        assert_eq!(verdict(&short), Rejection::BadKey);
        let mut twice = GOOD.to_vec();
        twice.push(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(verdict(&twice), Rejection::BadKey);

        let mut post = Request::post("/");
        for (name, value) in GOOD {
            post = post.header(name, value);
        }
        assert_eq!(
            accept(&post.body(()).unwrap(), &[]).unwrap_err(),
            Rejection::NotGet
        );
    }

    #[test]
    fn rejections_carry_the_headers_their_status_needs() {
        let response = Rejection::UnsupportedVersion.into_response();
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(response.headers()[SEC_WEBSOCKET_VERSION], "13");
        let response = Rejection::NotGet.into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[hyper::header::ALLOW], "GET");
    }

    #[test]
    fn an_extended_connect_is_accepted_with_200_and_its_faults_rejected() {
        let connect = |protocol: Option<&'static str>, path: &str, version: Option<&str>| {
            let mut builder = Request::builder().method(Method::CONNECT).uri(path);
            if let Some(protocol) = protocol {
                builder = builder.extension(hyper::ext::Protocol::from_static(protocol));
            }
            if let Some(version) = version {
                builder = builder.header("sec-websocket-version", version);
            }
            builder.body(()).unwrap()
        };
        let ws = Some("websocket");
        let response = accept_connect(&connect(ws, "/", Some("13")), &[]).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.headers().contains_key(SEC_WEBSOCKET_ACCEPT));
        let verdict = |request| accept_connect(&request, &[]).unwrap_err();
        let unsupported = Rejection::UnsupportedVersionOverHttp2;
        assert_eq!(verdict(connect(ws, "/", Some("8"))), unsupported);
        assert_eq!(verdict(connect(ws, "/", None)), unsupported);
        assert_eq!(unsupported.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            verdict(connect(ws, "/chat", Some("13"))),
            Rejection::WrongPath
        );
        let other = Rejection::NotWebSocketProtocol;
        assert_eq!(
            verdict(connect(Some("webtransport"), "/", Some("13"))),
            other
        );
        assert_eq!(verdict(connect(None, "/", Some("13"))), other);
    }

    #[test]
    fn selects_the_servers_first_protocol_the_client_offers() {
        let mut pairs = GOOD.to_vec();
        pairs.push(("Sec-WebSocket-Protocol", "chat, echo"));
        let ours = ["echo".to_owned(), "chat".to_owned()];
        let response = accept(&request(&pairs), &ours).unwrap();
        assert_eq!(response.headers()[SEC_WEBSOCKET_PROTOCOL], "echo");
        let none = accept(&request(&pairs), &["other".to_owned()]).unwrap();
        assert!(!none.headers().contains_key(SEC_WEBSOCKET_PROTOCOL));
    }
}
