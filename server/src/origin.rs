//! Which pages may open a WebSocket here: the defence against cross-site WebSocket hijacking
//! and DNS rebinding.
//!
//! Browsers send `Origin` with every WebSocket handshake, and an attacker's page is opened in
//! the victim's browser like any other, so the server must decide. The policy is explicit,
//! never inferred from the address the server is bound to (behind a proxy, every instance is
//! bound to loopback). Accepted:
//! - no `Origin` at all (not a browser: command-line tools, other servers);
//! - the server's own pages: an origin whose host and port are this request's `Host`, when
//!   `Host` names this server: a `--host` name, an IP address, or, while bound to loopback, a
//!   loopback name. A page at `http://attacker.example:1234` whose name the attacker points at
//!   127.0.0.1 (DNS rebinding) sends `Host: attacker.example:1234`, a name the server does not
//!   answer to;
//! - an origin listed with `--allow-origin` (exact match; `null` allows pages opened from
//!   files and sandboxed frames), or anything with `*`;
//! - with `--dev` (what `cargo xtask serve` passes), `null` and any loopback origin, for pages
//!   on other local ports and the chapter's page opened from a file.
//!
//! Everything else gets 403.

use std::net::IpAddr;

/// The origin policy of a running server.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// `--allow-origin`: origins accepted as they are.
    allowed: Vec<String>,
    /// `--host`: the names the server answers to, besides IP addresses.
    hosts: Vec<String>,
    /// The server is bound to a loopback address: loopback names are its names too.
    loopback: bool,
    /// `--dev`: `null` and loopback origins are accepted.
    dev: bool,
}

impl Policy {
    pub(crate) fn new(allowed: &[String], hosts: &[String], loopback: bool, dev: bool) -> Self {
        Policy {
            allowed: allowed.to_vec(),
            hosts: hosts.to_vec(),
            loopback,
            dev,
        }
    }

    /// Whether a handshake from `origin`, sent to `host` (the `Host` header), is accepted.
    pub(crate) fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        // An empty origin is none a browser sends: what `upgrade.rs` makes of one it cannot
        // read. Only `*` lets it in, never an empty entry of the list.
        let listed = |allowed: &String| !origin.is_empty() && allowed.eq_ignore_ascii_case(origin);
        if (self.allowed.iter()).any(|allowed| allowed == "*" || listed(allowed)) {
            return true;
        }
        if self.dev && origin == "null" {
            return true;
        }
        let Some(origin_host) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false;
        };
        if self.dev && is_loopback(name_of(origin_host)) {
            return true;
        }
        host.is_some_and(|host| host.eq_ignore_ascii_case(origin_host) && self.answers_to(host))
    }

    /// Whether `host` (a `Host` header: a name or address, and maybe a port) names this server.
    fn answers_to(&self, host: &str) -> bool {
        let name = name_of(host);
        name.parse::<IpAddr>().is_ok()
            || (self.loopback && is_loopback(name))
            || self
                .hosts
                .iter()
                .any(|ours| ours.eq_ignore_ascii_case(name))
    }
}

/// The name or address of `host[:port]`, without the brackets of an IPv6 address.
fn name_of(host_port: &str) -> &str {
    match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    }
}

/// `localhost`, `127.x.x.x` or `::1`.
fn is_loopback(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// The default policy of a server bound to loopback, or not.
    fn secure(loopback: bool) -> Policy {
        Policy::new(&[], &[], loopback, false)
    }

    #[test]
    fn no_origin_and_the_servers_own_pages_are_accepted() {
        let public = secure(false);
        assert!(public.allows(None, Some("example.com")));
        let by_address = Some("203.0.113.5:8080");
        assert!(public.allows(Some("http://203.0.113.5:8080"), by_address));
        assert!(!public.allows(Some("http://203.0.113.5:9090"), by_address));
        let local = secure(true);
        assert!(local.allows(Some("http://127.0.0.1:1234"), Some("127.0.0.1:1234")));
        assert!(local.allows(Some("http://localhost:1234"), Some("localhost:1234")));
        assert!(local.allows(Some("http://[::1]:1234"), Some("[::1]:1234")));
    }

    #[test]
    fn a_name_the_server_does_not_answer_to_is_refused_dns_rebinding() {
        let rebound = Some("http://attacker.example:1234");
        assert!(!secure(true).allows(rebound, Some("attacker.example:1234")));
        assert!(!secure(false).allows(rebound, Some("attacker.example:1234")));
        let named = Policy::new(&[], &list(&["echo.example.com"]), false, false);
        let ours = Some("echo.example.com:8080");
        assert!(named.allows(Some("https://echo.example.com:8080"), ours));
        assert!(!named.allows(Some("https://echo.example.com:9090"), ours));
        assert!(!named.allows(rebound, Some("attacker.example:1234")));
    }

    #[test]
    fn files_and_other_local_ports_only_in_development() {
        let host = Some("127.0.0.1:1234");
        let others = ["http://localhost:8000", "http://127.0.0.1:9999", "null"];
        for origin in others {
            assert!(!secure(true).allows(Some(origin), host), "{origin}");
            let dev = Policy::new(&[], &[], true, true);
            assert!(dev.allows(Some(origin), host), "{origin}");
        }
        let dev = Policy::new(&[], &[], false, true);
        assert!(!dev.allows(Some("https://evil.example"), host));
        assert!(!dev.allows(Some("http://localhost.evil.example"), host));
        let files = Policy::new(&list(&["null"]), &[], true, false);
        assert!(files.allows(Some("null"), host));
        assert!(!files.allows(Some("http://localhost:8000"), host));
    }

    #[test]
    fn listed_origins_match_exactly_and_star_allows_all() {
        let ours = Policy::new(&list(&["https://app.example.com"]), &[], false, false);
        assert!(ours.allows(Some("https://app.example.com"), None));
        assert!(!ours.allows(Some("https://app.example.com.evil"), None));
        assert!(!ours.allows(Some("http://app.example.com"), None));
        let all = Policy::new(&list(&["*"]), &[], false, false);
        assert!(all.allows(Some("https://anything.example"), None));
    }

    /// Found by the `http` fuzz target: `upgrade.rs` reads an `Origin` that is not visible
    /// ASCII as "", to be refused, but an empty listed origin (`--allow-origin ''`) matched
    /// it, and the server opened a WebSocket for a page whose origin it could not read.
    #[test]
    fn regression_an_unreadable_origin_is_refused_even_with_an_empty_one_listed() {
        for loopback in [false, true] {
            let policy = Policy::new(
                &list(&["", "https://app.example.com"]),
                &[],
                loopback,
                false,
            );
            assert!(!policy.allows(Some(""), Some("localhost:1234")));
            assert!(policy.allows(Some("https://app.example.com"), None));
        }
        let all = Policy::new(&list(&["*"]), &[], false, false);
        assert!(all.allows(Some(""), None), "`*` allows anything");
    }
}
