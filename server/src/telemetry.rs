//! Prometheus metrics, served at `/metrics` when `--metrics` is given: connections (also by the
//! HTTP version they came over), messages, bytes, close codes and refused handshakes.
//!
//! Recorded through the `metrics` facade, so that without `--metrics` every call is a no-op.
//! Each connection looks its counters up once and then only adds to them.

use metrics::{Counter, counter, gauge};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

/// Installs the Prometheus recorder for the process and returns the handle that renders it.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new().install_recorder()
}

/// The metrics of one WebSocket connection.
pub struct Connection {
    messages: Counter,
    bytes: Counter,
}

impl Connection {
    /// Counts a connection as opened.
    pub fn opened() -> Connection {
        counter!("echo_connections_total").increment(1);
        gauge!("echo_connections_open").increment(1.0);
        Connection {
            messages: counter!("echo_messages_total"),
            bytes: counter!("echo_bytes_total"),
        }
    }

    /// Counts a message echoed.
    pub fn message(&self, bytes: usize) {
        self.messages.increment(1);
        self.bytes.increment(bytes as u64);
    }

    /// Counts the connection as closed, with its close code (`none` without one).
    pub fn closed(self, code: Option<u16>) {
        gauge!("echo_connections_open").decrement(1.0);
        let code = code.map_or_else(|| "none".to_owned(), |code| code.to_string());
        counter!("echo_closes_total", "code" => code).increment(1);
    }
}

/// The HTTP version a WebSocket came over, for as long as it is open: the connection counts
/// split by `http_version` (`1.1`, `2`).
pub struct Over {
    version: &'static str,
}

impl Over {
    /// Counts a WebSocket opened over `version`, until dropped.
    pub fn opened(version: hyper::Version) -> Over {
        let version = match version {
            hyper::Version::HTTP_2 => "2",
            _ => "1.1",
        };
        let labels = [("http_version", version)];
        counter!("echo_connections_by_http_version_total", &labels).increment(1);
        gauge!("echo_connections_open_by_http_version", &labels).increment(1.0);
        Over { version }
    }
}

impl Drop for Over {
    fn drop(&mut self) {
        let labels = [("http_version", self.version)];
        gauge!("echo_connections_open_by_http_version", &labels).decrement(1.0);
    }
}

/// Counts a handshake refused with `status`.
pub fn refused(status: u16) {
    counter!("echo_handshakes_refused_total", "status" => status.to_string()).increment(1);
}
