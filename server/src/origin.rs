//! Which pages may open a WebSocket here: the defence against cross-site WebSocket hijacking.
//!
//! Browsers send `Origin` with every WebSocket handshake, and an attacker's page is opened in
//! the victim's browser like any other, so the server must decide. Accepted:
//! - no `Origin` at all (not a browser: command-line tools, other servers);
//! - an origin whose host and port are this request's `Host` (the page this server served);
//! - while the server listens only on loopback, loopback origins (`localhost`, `127.x.x.x`,
//!   `[::1]`, any port) and `null` (a page opened from a file, like the chapter's);
//! - an origin listed with `--allow-origin` (exact match), or anything with `*`.
//!
//! Everything else gets 403.

/// Whether a handshake from `origin`, sent to `host`, is accepted.
pub fn allowed(origin: Option<&str>, host: Option<&str>, list: &[String], loopback: bool) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    if list
        .iter()
        .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    if loopback && origin == "null" {
        return true;
    }
    let Some(origin_host) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    if host.is_some_and(|host| host.eq_ignore_ascii_case(origin_host)) {
        return true;
    }
    loopback && is_loopback_host(origin_host)
}

/// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
fn is_loopback_host(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_origin_and_same_host_are_accepted_everywhere() {
        assert!(allowed(None, Some("example.com"), &[], false));
        let same = Some("echo.example.com:8080");
        assert!(allowed(
            Some("https://echo.example.com:8080"),
            same,
            &[],
            false
        ));
        assert!(!allowed(
            Some("https://echo.example.com:9090"),
            same,
            &[],
            false
        ));
    }

    #[test]
    fn loopback_origins_and_files_only_while_bound_to_loopback() {
        let host = Some("127.0.0.1:1234");
        for origin in [
            "http://localhost:8000",
            "http://127.0.0.1:9999",
            "http://[::1]:80",
            "null",
        ] {
            assert!(allowed(Some(origin), host, &[], true), "{origin}");
            assert!(
                !allowed(Some(origin), Some("example.com"), &[], false),
                "{origin}"
            );
        }
        assert!(!allowed(Some("https://evil.example"), host, &[], true));
        assert!(!allowed(
            Some("http://localhost.evil.example"),
            host,
            &[],
            true
        ));
    }

    #[test]
    fn listed_origins_match_exactly_and_star_allows_all() {
        let ours = list(&["https://app.example.com"]);
        assert!(allowed(Some("https://app.example.com"), None, &ours, false));
        assert!(!allowed(
            Some("https://app.example.com.evil"),
            None,
            &ours,
            false
        ));
        assert!(!allowed(Some("http://app.example.com"), None, &ours, false));
        assert!(allowed(
            Some("https://anything.example"),
            None,
            &list(&["*"]),
            false
        ));
    }
}
