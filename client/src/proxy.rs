//! Natively, which proxy an attempt goes through: the application's
//! ([`Builder::proxy`](crate::Builder::proxy)), or the environment's, read as curl reads it,
//! or none. Plain values and no I/O: `tunnel.rs` opens the way this chooses.
//!
//! curl's rules, which other tools follow too:
//! - `ws://` reads `ws_proxy`, `WS_PROXY`, then `http_proxy` (lower case only: a CGI program
//!   gets the request's `Proxy:` header as `HTTP_PROXY`, "httpoxy"), then `all_proxy`,
//!   `ALL_PROXY`; `wss://` reads `wss_proxy`, `WSS_PROXY`, `https_proxy`, `HTTPS_PROXY`,
//!   `all_proxy`, `ALL_PROXY`. The first that is set and not empty wins.
//! - `no_proxy` (or else `NO_PROXY`) lists hosts reached directly, separated by commas: `*`
//!   alone is every host; a name is that host and the hosts under it (`example.com` is
//!   `www.example.com` too, never `notexample.com`; a leading or trailing dot is ignored,
//!   case too); an IP address is that address, or with `/BITS` the network.
//! - A proxy URL without a scheme is `http://`; its default port is 1080 (`https://`: 443);
//!   `user:password@` in it, percent-decoded, is sent as `Proxy-Authorization: Basic`.
//!   `socks5://` (the client resolves the server's name) and `socks5h://` (the proxy does)
//!   are SOCKS5 proxies, their credentials given as SOCKS5's user and password.

use std::net::IpAddr;

use crate::error::Error;

/// Where a socket's attempts look for their proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum ProxySetting {
    /// The environment's, read at each attempt (the default).
    #[default]
    Environment,
    /// None: every attempt connects directly.
    Off,
    /// This proxy URL, for every attempt; the environment is not read.
    Given(String),
}

/// The proxy's protocol: how the client speaks to the proxy itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// HTTP `CONNECT` over TCP.
    Http,
    /// HTTP `CONNECT` over TLS to the proxy.
    Https,
    /// SOCKS5 (RFC 1928), the server's name resolved by the client (`socks5://`).
    Socks5,
    /// SOCKS5, the name resolved by the proxy (`socks5h://`).
    Socks5h,
}

/// A proxy to open a tunnel through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Proxy {
    pub(crate) scheme: Scheme,
    /// A name or an IP address, without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The user and password in its URL, percent-decoded.
    pub(crate) credentials: Option<(String, String)>,
}

impl Proxy {
    /// `Proxy-Authorization`'s value for an HTTP proxy: `Basic …` of the credentials.
    pub(crate) fn basic(&self) -> Option<String> {
        let (user, password) = self.credentials.as_ref()?;
        let encoded = data_encoding::BASE64.encode(format!("{user}:{password}").as_bytes());
        Some(format!("Basic {encoded}"))
    }
}

/// The proxy for an attempt to `host` (as in the URL, brackets or not) over `wss://` if
/// `secure`, as `setting` says; environment variables are looked up with `var`.
pub(crate) fn choose(
    setting: &ProxySetting,
    secure: bool,
    host: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>, Error> {
    match setting {
        ProxySetting::Off => Ok(None),
        ProxySetting::Given(url) => parse(url).map(Some),
        ProxySetting::Environment => {
            // Set and not empty, as curl's `curl_getenv` reads them.
            let var = |name: &str| var(name).filter(|value| !value.is_empty());
            let no_proxy = var("no_proxy").or_else(|| var("NO_PROXY"));
            if no_proxy.is_some_and(|list| bypasses(&list, host)) {
                return Ok(None);
            }
            let names: &[&str] = if secure {
                &["wss_proxy", "WSS_PROXY", "https_proxy", "HTTPS_PROXY"]
            } else {
                &["ws_proxy", "WS_PROXY", "http_proxy"]
            };
            let chosen =
                (names.iter().chain(&["all_proxy", "ALL_PROXY"])).find_map(|name| var(name));
            chosen.as_deref().map(parse).transpose()
        }
    }
}

/// A proxy URL, as curl reads one.
pub(crate) fn parse(url: &str) -> Result<Proxy, Error> {
    let invalid = |message: &str| Error::InvalidProxy {
        proxy: redacted(url),
        message: message.to_owned(),
    };
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("http".to_owned(), url),
    };
    let scheme = match scheme.as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        "socks5" => Scheme::Socks5,
        "socks5h" => Scheme::Socks5h,
        _ => {
            return Err(invalid(
                "the proxy's scheme must be http, https, socks5 or socks5h",
            ));
        }
    };
    // The authority ends at the path, if any; the path means nothing to a proxy.
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = (bracketed.split_once(']'))
            .ok_or_else(|| invalid("an IPv6 address must end with ']'"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(invalid("only a port may follow the IPv6 address")),
            },
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("the proxy URL has no host"));
    }
    let port = match port {
        None | Some("") => match scheme {
            Scheme::Https => 443,
            Scheme::Http | Scheme::Socks5 | Scheme::Socks5h => 1080,
        },
        Some(port) => port
            .parse()
            .map_err(|_| invalid("the port must be a number from 0 to 65535"))?,
    };
    let credentials = match userinfo {
        None => None,
        Some(userinfo) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let user = percent_decode(user).ok_or_else(|| invalid("bad %-escape in the user"))?;
            let password =
                percent_decode(password).ok_or_else(|| invalid("bad %-escape in the password"))?;
            Some((user, password))
        }
    };
    Ok(Proxy {
        scheme,
        host: host.to_owned(),
        port,
        credentials,
    })
}

/// The URL with its password hidden, for an error message.
fn redacted(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let after = &rest[userinfo.len()..];
            let scheme = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            format!("{scheme}{user}:***{after}")
        }
        _ => url.to_owned(),
    }
}

/// `text` with its `%XX` escapes decoded, if they are escapes and the result is UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = bytes.get(at + 1..at + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// Whether `no_proxy` says to reach `host` directly, as curl's `Curl_check_noproxy` says.
pub(crate) fn bypasses(no_proxy: &str, host: &str) -> bool {
    if no_proxy == "*" {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let address = bare.parse::<IpAddr>().ok();
    let name = bare.strip_suffix('.').unwrap_or(bare);
    if name.is_empty() {
        return false;
    }
    // Patterns are separated by commas; blanks around them are skipped, and a blank inside
    // one ends the list there, as in curl.
    for entry in no_proxy.split(',') {
        let entry = entry.trim_start_matches([' ', '\t']);
        let (pattern, rest) = entry.split_at(entry.find([' ', '\t']).unwrap_or(entry.len()));
        let matched = match address {
            Some(address) => address_matches(address, pattern),
            None => name_matches(name, pattern),
        };
        if matched {
            return true;
        }
        if !rest.trim_matches([' ', '\t']).is_empty() {
            return false;
        }
    }
    false
}

/// `www.example.com` matches `example.com` and `.example.com`, not `notexample.com`.
fn name_matches(name: &str, pattern: &str) -> bool {
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
    let pattern = pattern.strip_prefix('.').unwrap_or(pattern);
    if pattern.is_empty() || pattern.len() > name.len() {
        return false;
    }
    let (head, tail) = name.split_at(name.len() - pattern.len());
    tail.eq_ignore_ascii_case(pattern) && (head.is_empty() || head.ends_with('.'))
}

/// An address matches itself, or a network given as `ADDRESS/BITS`.
fn address_matches(address: IpAddr, pattern: &str) -> bool {
    let (network, bits) = match pattern.split_once('/') {
        Some((network, bits)) => match bits.parse::<u32>() {
            Ok(bits) => (network, Some(bits)),
            Err(_) => return false,
        },
        None => (pattern, None),
    };
    let network = network
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(network);
    match (address, network.parse::<IpAddr>()) {
        (IpAddr::V4(address), Ok(IpAddr::V4(network))) => prefix_matches(
            u32::from(address).into(),
            u32::from(network).into(),
            32,
            bits,
        ),
        (IpAddr::V6(address), Ok(IpAddr::V6(network))) => {
            prefix_matches(u128::from(address), u128::from(network), 128, bits)
        }
        _ => false,
    }
}

/// Whether the first `bits` of two `width`-bit addresses agree; all of them without `bits`
/// (or with 0, as curl reads it); never with more bits than the address has.
fn prefix_matches(address: u128, network: u128, width: u32, bits: Option<u32>) -> bool {
    let bits = match bits {
        None | Some(0) => width,
        Some(bits) if bits > width => return false,
        Some(bits) => bits,
    };
    let shift = width - bits;
    address >> shift == network >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(scheme: Scheme, host: &str, port: u16) -> Proxy {
        Proxy {
            scheme,
            host: host.to_owned(),
            port,
            credentials: None,
        }
    }

    #[test]
    fn proxy_urls_as_curl_reads_them() {
        let http = |host, port| proxy(Scheme::Http, host, port);
        assert_eq!(
            parse("http://proxy.example:3128"),
            Ok(http("proxy.example", 3128))
        );
        // No scheme: HTTP; no port: 1080, curl's default (443 for an HTTPS proxy).
        assert_eq!(parse("proxy.example"), Ok(http("proxy.example", 1080)));
        assert_eq!(
            parse("HTTP://proxy.example/"),
            Ok(http("proxy.example", 1080))
        );
        assert_eq!(
            parse("https://proxy.example"),
            Ok(proxy(Scheme::Https, "proxy.example", 443))
        );
        assert_eq!(parse("socks5://s"), Ok(proxy(Scheme::Socks5, "s", 1080)));
        assert_eq!(
            parse("SOCKS5H://s:9050"),
            Ok(proxy(Scheme::Socks5h, "s", 9050))
        );
        assert_eq!(parse("http://[::1]:8080/x"), Ok(http("::1", 8080)));
        assert_eq!(parse("http://[::1]"), Ok(http("::1", 1080)));
        assert_eq!(parse("10.0.0.1:3128"), Ok(http("10.0.0.1", 3128)));
    }

    #[test]
    fn credentials_become_basic_authorization_percent_decoded() {
        // "user:pass" in base64, as RFC 7617's example shows for "Aladdin:open sesame".
        let parsed = parse("http://Aladdin:open%20sesame@proxy:3128").unwrap();
        assert_eq!(
            parsed.basic().as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!((parsed.host.as_str(), parsed.port), ("proxy", 3128));
        // A user alone has an empty password; an '@' in the password is escaped.
        let user = parse("http://user@proxy").unwrap();
        assert_eq!(user.basic().as_deref(), Some("Basic dXNlcjo="));
        // SOCKS5 takes them as they are.
        let socks = parse("socks5h://me:p%3Ass@s").unwrap();
        assert_eq!(
            socks.credentials,
            Some(("me".to_owned(), "p:ss".to_owned()))
        );
        let at = parse("http://u:p%40ss@proxy").unwrap();
        assert_eq!(at.basic().as_deref(), Some("Basic dTpwQHNz"));
    }

    #[test]
    fn bad_proxy_urls_are_refused_without_showing_the_password() {
        for url in [
            "socks4://proxy:1080",
            "ftp://proxy",
            "http://",
            "http://proxy:port",
            "http://proxy:70000",
            "http://[::1",
            "http://[::1]x",
            "http://u:%zz@proxy",
        ] {
            assert!(
                matches!(parse(url), Err(Error::InvalidProxy { .. })),
                "{url}: {:?}",
                parse(url)
            );
        }
        let Err(Error::InvalidProxy { proxy, .. }) = parse("http://me:secret@proxy:port/") else {
            panic!("a bad port is refused");
        };
        assert_eq!(proxy, "http://me:***@proxy:port/");
    }

    #[test]
    fn no_proxy_as_curl_reads_it() {
        // A name is itself and what is under it, at a dot, in any case.
        assert!(bypasses("example.com", "example.com"));
        assert!(bypasses("example.com", "www.EXAMPLE.com"));
        assert!(!bypasses("example.com", "notexample.com"));
        assert!(!bypasses("www.example.com", "example.com"));
        // A leading or trailing dot is ignored, in the list and in the host.
        assert!(bypasses(".example.com", "example.com"));
        assert!(bypasses(".example.com", "a.b.example.com"));
        assert!(bypasses("example.com.", "www.example.com."));
        // A list, with blanks and empty entries; `*` only alone means every host.
        assert!(bypasses("localhost, .internal,,example.org", "example.org"));
        assert!(bypasses(" a.test ,\tb.test", "b.test"));
        assert!(bypasses("*", "anything.example"));
        assert!(!bypasses("*.example.com", "www.example.com"));
        assert!(!bypasses("a.test,*", "b.test"));
        // A blank inside an entry ends the list.
        assert!(!bypasses("a.test b.test,c.test", "c.test"));
        assert!(bypasses("a.test b.test,c.test", "a.test"));
        // Addresses: exact, or a network; never by name suffix.
        assert!(bypasses("127.0.0.1", "127.0.0.1"));
        assert!(!bypasses("127.0.0.1", "127.0.0.2"));
        assert!(bypasses("10.0.0.0/8", "10.1.2.3"));
        assert!(!bypasses("10.0.0.0/8", "11.1.2.3"));
        assert!(!bypasses("0.0.1", "10.0.0.1"));
        assert!(!bypasses("10.0.0.0/33", "10.0.0.1"));
        assert!(bypasses("::1", "[::1]"));
        assert!(bypasses("[::1]", "::1"));
        assert!(bypasses("fd00::/8", "[fd12::5]"));
        assert!(!bypasses("fd00::/8", "[fe80::1]"));
        assert!(!bypasses("", "example.com"));
    }

    #[test]
    fn the_environment_as_curl_reads_it() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                (vars.iter().find(|(key, _)| *key == name)).map(|(_, value)| value.to_string())
            }
        };
        let host = |found: Result<Option<Proxy>, Error>| found.unwrap().map(|proxy| proxy.host);
        let auto = &ProxySetting::Environment;
        let some = |name: &str| Some(name.to_owned());

        // wss:// reads HTTPS_PROXY and https_proxy, the lower case first.
        let both = env(&[("https_proxy", "lower"), ("HTTPS_PROXY", "upper")]);
        assert_eq!(host(choose(auto, true, "h", both)), some("lower"));
        let upper = env(&[("HTTPS_PROXY", "upper")]);
        assert_eq!(host(choose(auto, true, "h", upper)), some("upper"));
        assert_eq!(host(choose(auto, false, "h", upper)), None);
        // ws:// reads http_proxy, and never HTTP_PROXY (httpoxy).
        let lower = env(&[("http_proxy", "lower")]);
        assert_eq!(host(choose(auto, false, "h", lower)), some("lower"));
        assert_eq!(host(choose(auto, true, "h", lower)), None);
        let upper = env(&[("HTTP_PROXY", "upper")]);
        assert_eq!(host(choose(auto, false, "h", upper)), None);
        // ws_proxy and wss_proxy come first; all_proxy and ALL_PROXY last, for both.
        let all = env(&[
            ("ws_proxy", "ws"),
            ("http_proxy", "http"),
            ("ALL_PROXY", "all"),
        ]);
        assert_eq!(host(choose(auto, false, "h", all)), some("ws"));
        assert_eq!(host(choose(auto, true, "h", all)), some("all"));
        let all = env(&[("all_proxy", "lower"), ("ALL_PROXY", "upper")]);
        assert_eq!(host(choose(auto, true, "h", all)), some("lower"));
        // Empty counts as unset.
        let empty = env(&[("https_proxy", ""), ("ALL_PROXY", "all")]);
        assert_eq!(host(choose(auto, true, "h", empty)), some("all"));
        // no_proxy (or else NO_PROXY) sends a host directly.
        let bypass = env(&[
            ("https_proxy", "p"),
            ("no_proxy", "internal"),
            ("NO_PROXY", "*"),
        ]);
        assert_eq!(host(choose(auto, true, "db.internal", bypass)), None);
        assert_eq!(host(choose(auto, true, "example.com", bypass)), some("p"));
        let star = env(&[("https_proxy", "p"), ("NO_PROXY", "*")]);
        assert_eq!(host(choose(auto, true, "example.com", star)), None);
        // A bad proxy variable is an error, not a direct connection.
        let bad = env(&[("https_proxy", "socks4://p")]);
        assert!(matches!(
            choose(auto, true, "h", bad),
            Err(Error::InvalidProxy { .. })
        ));

        // The builder's choices read no environment at all.
        let everything = env(&[("https_proxy", "p"), ("no_proxy", "*")]);
        assert_eq!(
            host(choose(&ProxySetting::Off, true, "h", everything)),
            None
        );
        let given = ProxySetting::Given("http://mine:1".to_owned());
        assert_eq!(host(choose(&given, true, "h", everything)), some("mine"));
    }
}
