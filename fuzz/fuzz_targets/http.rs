//! One HTTP connection as the server runs it (`serve`'s `connection`, `upgrade::route` and
//! its steps, hyper in front), on any request bytes, with any origin policy, protocols,
//! deflate on or off and connection cap: the server answers with a status line or closes,
//! never hangs (the clock is paused and jumps to each timeout), and never lets a WebSocket
//! open that it should not: a `101` answers the request's one key, for an origin the policy
//! allows, under the connection cap; a handshake attempt never gets a file.
#![no_main]

use arbitrary::Arbitrary;
use fuzz::block_on;
use libfuzzer_sys::fuzz_target;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use wsecho::Config;
use wsecho::fuzzing::{OriginPolicy, http_exchange};

#[derive(Arbitrary, Debug)]
struct Input {
    /// A handshake's request line and headers first, for a start to break one piece at a
    /// time.
    good: bool,
    lines: Vec<(u8, String)>,
    end_headers: bool,
    rest: Vec<u8>,
    allowed: Vec<String>,
    hosts: Vec<String>,
    protocols: Vec<String>,
    dev: bool,
    loopback: bool,
    deflate: bool,
    full: bool,
}

const GOOD: &str = "GET / HTTP/1.1\r\nHost: localhost:1234\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

const NAMES: [&str; 10] = [
    "",
    "Host",
    "Origin",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Content-Length",
];

fn header<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Vec<&'a [u8]> {
    (headers.iter())
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
        .collect()
}

fuzz_target!(|input: Input| {
    let mut request = Vec::new();
    if input.good {
        request.extend_from_slice(GOOD.as_bytes());
    }
    for (name, value) in &input.lines {
        match NAMES[usize::from(*name) % NAMES.len()] {
            "" => request.extend_from_slice(value.as_bytes()),
            name => request.extend_from_slice(format!("{name}: {value}").as_bytes()),
        }
        request.extend_from_slice(b"\r\n");
    }
    if input.end_headers {
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(&input.rest);
    let config = Config {
        allowed_origins: input.allowed.clone(),
        hosts: input.hosts.clone(),
        protocols: (input.protocols.iter())
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
            .cloned()
            .collect(),
        dev_origins: input.dev,
        deflate: input.deflate,
        max_connections: if input.full { 0 } else { 10 },
        ..Config::default()
    };
    let answer = block_on(http_exchange(&request, config, input.loopback));
    if answer.is_empty() {
        return;
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = response.parse(&answer) else {
        panic!("not an HTTP answer: {:?}", String::from_utf8_lossy(&answer));
    };
    let status = response.code.expect("a status");
    assert!(
        [
            101, 200, 400, 403, 404, 405, 408, 413, 426, 431, 501, 503, 505
        ]
        .contains(&status),
        "status {status} for {:?}",
        String::from_utf8_lossy(&request)
    );
    let mut request_headers = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut request_headers);
    let Ok(httparse::Status::Complete(_)) = parsed.parse(&request) else {
        assert_ne!(status, 101, "101 to a request that is no request");
        return;
    };
    let named = |name| !header(parsed.headers, name).is_empty();
    if status == 200 {
        let attempt = named("Upgrade") || named("Sec-WebSocket-Key");
        assert!(!attempt, "a handshake attempt answered with 200");
    }
    if status != 101 {
        return;
    }
    assert!(!input.full, "101 past the connection cap");
    assert_eq!(parsed.method, Some("GET"));
    let keys = header(parsed.headers, "Sec-WebSocket-Key");
    assert_eq!(keys.len(), 1, "101 without one key");
    let accept = header(response.headers, "Sec-WebSocket-Accept");
    assert_eq!(accept, [derive_accept_key(keys[0]).as_bytes()]);
    // As `upgrade.rs` reads them: a value that is not visible ASCII reads as "".
    let visible = |v: &[u8]| v.iter().all(|b| *b == b'\t' || (0x20..0x7f).contains(b));
    let text = |name| {
        let first = header(parsed.headers, name).first().copied();
        first.map(|v| match visible(v) {
            true => std::str::from_utf8(v).expect("ASCII"),
            false => "",
        })
    };
    let policy = OriginPolicy::new(&input.allowed, &input.hosts, input.loopback, input.dev);
    assert!(
        policy.allows(text("Origin"), text("Host")),
        "101 for an origin the policy refuses: {:?}",
        String::from_utf8_lossy(&request)
    );
});
