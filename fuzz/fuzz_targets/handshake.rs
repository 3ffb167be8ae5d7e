//! The handshake (`handshake::accept`) and the origin policy (`origin::Policy`), on any
//! request line and headers.
//!
//! - A `101` only for a `GET` of `/` with `Upgrade: websocket`, `Connection: upgrade`,
//!   version 13 and one key of 24 base64 characters, answered with that key's accept value
//!   and, if any, a protocol both sides named; such a request is always accepted. A refusal
//!   has a status that names it and the header that status needs.
//! - Origins: no `Origin` and `*` are always let in; a listed origin too (but an empty one); turning `--dev`
//!   on, or binding to loopback, only ever lets more in; without them and without a list,
//!   an origin is let in only as `http(s)://` and the very `Host` the request was sent to.
#![no_main]

use arbitrary::Arbitrary;
use hyper::header::{
    CONNECTION, HeaderName, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use wsecho::fuzzing::{OriginPolicy, Rejection, accept_handshake};

const NAMES: [HeaderName; 5] = [
    UPGRADE,
    CONNECTION,
    SEC_WEBSOCKET_VERSION,
    SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL,
];

const GOOD: [(HeaderName, &str); 4] = [
    (UPGRADE, "websocket"),
    (CONNECTION, "Upgrade"),
    (SEC_WEBSOCKET_VERSION, "13"),
    (SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ=="),
];

#[derive(Arbitrary, Debug)]
struct Origins {
    origin: Option<String>,
    host: Option<String>,
    allowed: Vec<String>,
    hosts: Vec<String>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    post: bool,
    path: String,
    /// The good headers first, for a start the fuzzer can break one piece at a time.
    good: bool,
    headers: Vec<(u8, String)>,
    protocols: Vec<String>,
    origins: Origins,
}

fn values<'a>(request: &'a Request<()>, name: &HeaderName) -> Vec<&'a [u8]> {
    request
        .headers()
        .get_all(name)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect()
}

fn has_token(request: &Request<()>, name: &HeaderName, token: &str) -> bool {
    (values(request, name).into_iter())
        .filter_map(|value| std::str::from_utf8(value).ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

fn handshake(input: &Input) {
    let method = if input.post {
        Method::POST
    } else {
        Method::GET
    };
    let Ok(mut request) = Request::builder().method(method).uri(&input.path).body(()) else {
        return;
    };
    let headers = request.headers_mut();
    if input.good {
        for (name, value) in GOOD {
            headers.append(name, HeaderValue::from_static(value));
        }
    }
    for (name, value) in &input.headers {
        let Ok(value) = HeaderValue::from_str(value) else {
            continue;
        };
        headers.append(NAMES[usize::from(*name) % NAMES.len()].clone(), value);
    }
    let protocols: Vec<String> = (input.protocols.iter())
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        .cloned()
        .collect();
    let keys = values(&request, &SEC_WEBSOCKET_KEY);
    let well_formed = request.method() == Method::GET
        && request.uri().path() == "/"
        && has_token(&request, &UPGRADE, "websocket")
        && has_token(&request, &CONNECTION, "upgrade")
        && values(&request, &SEC_WEBSOCKET_VERSION).first() == Some(&&b"13"[..])
        && keys.len() == 1
        && keys[0].len() == 24
        && keys[0][..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"+/".contains(c))
        && keys[0].ends_with(b"==");
    match accept_handshake(&request, &protocols) {
        Ok(response) => {
            assert!(well_formed, "accepted: {request:?}");
            assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
            let accept = &response.headers()[SEC_WEBSOCKET_ACCEPT];
            assert_eq!(accept.as_bytes(), derive_accept_key(keys[0]).as_bytes());
            if let Some(chosen) = response.headers().get(SEC_WEBSOCKET_PROTOCOL) {
                let chosen = chosen.to_str().expect("a token");
                assert!(protocols.iter().any(|p| p == chosen));
                let offered = (values(&request, &SEC_WEBSOCKET_PROTOCOL).into_iter())
                    .filter_map(|value| std::str::from_utf8(value).ok())
                    .flat_map(|value| value.split(','))
                    .any(|offer| offer.trim() == chosen);
                assert!(offered, "{chosen} chosen, never offered: {request:?}");
            }
        }
        Err(rejection) => {
            assert!(!well_formed, "refused ({rejection:?}): {request:?}");
            let response = rejection.into_response();
            let status = response.status();
            assert_eq!(status, rejection.status());
            let needs = match rejection {
                Rejection::NotGet => Some(hyper::header::ALLOW),
                Rejection::UnsupportedVersion => Some(SEC_WEBSOCKET_VERSION),
                _ => None,
            };
            assert!(needs.is_none_or(|name| response.headers().contains_key(name)));
            assert!([400, 404, 405, 426].contains(&status.as_u16()), "{status}");
        }
    }
}

fn origins(input: &Origins) {
    let (origin, host) = (input.origin.as_deref(), input.host.as_deref());
    let policy = |allowed: &[String], loopback, dev| {
        OriginPolicy::new(allowed, &input.hosts, loopback, dev).allows(origin, host)
    };
    let strict = policy(&[], false, false);
    for (loopback, dev) in [(false, true), (true, false), (true, true)] {
        assert!(!strict || policy(&[], loopback, dev), "{input:?}");
        assert!(
            !policy(&[], loopback, false) || policy(&[], loopback, true),
            "{input:?}"
        );
    }
    let listed = policy(&input.allowed, false, false);
    assert!(!strict || listed, "a list took an origin away: {input:?}");
    if origin.is_none() {
        assert!(strict);
    }
    assert!(policy(&["*".to_owned()], false, false));
    if origin == Some("") {
        // What an unreadable `Origin` reads as: only `*` lets it in.
        let star = input.allowed.iter().any(|allowed| allowed == "*");
        assert!(star || !policy(&input.allowed, true, true), "{input:?}");
    }
    if let Some(origin) = origin {
        // Listed, it is let in; but for "", what an unreadable one reads as.
        assert!(origin.is_empty() || policy(&[origin.to_owned()], false, false));
        if strict {
            let own = (origin
                .strip_prefix("http://")
                .or(origin.strip_prefix("https://")))
            .is_some_and(|rest| host.is_some_and(|host| rest.eq_ignore_ascii_case(host)));
            assert!(own, "a foreign origin let in: {input:?}");
        }
    }
}

fuzz_target!(|input: Input| {
    handshake(&input);
    origins(&input.origins);
});
