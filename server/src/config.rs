//! [`Config`]: every limit and setting of a running server, with a safe default, and the
//! tungstenite settings that follow from them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// tungstenite's read window on a heavy connection, which reads straight from the socket
/// (`read_ahead`): as wide as `ReadAhead`'s chunk, whose place it takes. Benchmark scenario 3
/// (16 KiB messages), against 2,000 bytes a read out of the chunk: 10,912 instructions per
/// message instead of 13,415, and less server CPU time (callgrind with glibc's `memset` and
/// `memcpy` kept to vector loops, as the benchmark counts them: see ARCHITECTURE.md, "The
/// passes over a payload"); with a buffer of one window, a read took only the rest of one
/// frame, and since [`WIDE_BUFFER`] most reads take a whole window.
pub const WIDE_READ: usize = 32 * 1024;

/// The read buffer tungstenite is given on a heavy connection, four windows ([`WIDE_READ`])
/// long. tungstenite moves a frame cut off at the end of its buffer to the front before it
/// reads the rest, and made with a buffer as long as its window (32 KiB), it did so with
/// nearly every 16 KiB frame (32 KiB is two such frames but a few bytes): a 16 KiB copy per
/// message, and a read of only the rest of one frame each time. With room for four windows,
/// reads take whole windows and a cut-off frame is moved once every 128 KiB. Benchmark
/// scenario 3 in its steady state (callgrind, 10,000 messages): 10,700-10,970 -> 8,760-10,040
/// instructions per message; `recvfrom` calls 1.02 -> 0.59 a message (strace). Held only while
/// the peer is heavy.
pub const WIDE_BUFFER: usize = 128 * 1024;

/// The seed's reply prefix: `"Received:  " + msg`, with two spaces.
pub const DEFAULT_PREFIX: &str = "Received:  ";

/// The seed's address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:1234";

/// Everything a running server needs to know; shared read-only by all connections.
#[derive(Clone, Debug)]
pub struct Config {
    /// Prepended to every text message in the reply; empty for a pure echo.
    pub prefix: String,
    /// Directory served on plain `GET` (the page: `index.html`, its style, icon and `pkg/`);
    /// `None` serves no files (every such request gets 404).
    pub www: Option<PathBuf>,
    /// Subprotocols the server speaks, in order of preference.
    pub protocols: Vec<String>,
    /// Origins accepted besides the server's own pages, matched exactly; `null` accepts pages
    /// opened from files, `*` accepts all.
    pub allowed_origins: Vec<String>,
    /// The names the server answers to, besides IP addresses (and loopback names while bound
    /// to loopback): a page's origin counts as the server's own only with one of these as
    /// `Host`, which shuts out DNS rebinding.
    pub hosts: Vec<String>,
    /// Development: accept pages opened from files (`Origin: null`) and pages of any loopback
    /// origin. Never on a public server.
    pub dev_origins: bool,
    /// The largest message, and frame, accepted; larger gets Close 1009.
    pub max_message_size: usize,
    /// WebSocket connections at once; past it, handshakes get 503.
    pub max_connections: usize,
    /// How long a client may take to send its request headers.
    pub handshake_timeout: Duration,
    /// How long a connection may speak HTTP before it upgrades: requests, files and a client
    /// that does not read them all count; then it is closed.
    pub http_timeout: Duration,
    /// A connection silent for this long is pinged, and again every interval while it stays
    /// silent (a pong counts as heard).
    pub ping_interval: Duration,
    /// A connection from which nothing (not even a pong) was heard for this long is let go:
    /// its Close (1001) leaves `close_timeout` earlier (half of it at most:
    /// [`Config::close_after`]), so that a
    /// vanished peer, which never answers it, is let go at this bound and not later.
    pub idle_timeout: Duration,
    /// How long the server waits for the answer to a Close of its own (idle, shutdown)
    /// before it lets the connection go.
    pub close_timeout: Duration,
    /// How long a reply may wait for a peer that does not read before it is dropped.
    pub send_timeout: Duration,
    /// How long shutdown waits for the close handshakes.
    pub shutdown_timeout: Duration,
    /// Whether to negotiate permessage-deflate (RFC 7692) with clients that offer it, always
    /// without context takeover, so that an idle connection keeps no compression state.
    pub deflate: bool,
    /// With `deflate`, replies shorter than this many bytes go out uncompressed, as do those
    /// that compression would not shrink; 0 compresses every reply.
    pub deflate_threshold: usize,
    /// Whether the test-only controls (`!close`, `!drop`, `!outage` text messages) are on.
    pub test_controls: bool,
    /// TLS, for `wss://` ([`crate::tls::load`]); `None` serves plain `ws://`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// With `tls`: offer HTTP/2 in ALPN (beside HTTP/1.1) and serve WebSockets over it (RFC
    /// 8441). Browsers then open every socket of the origin as a stream of their HTTP/2
    /// connection, and do not fall back to HTTP/1.1.
    pub http2: bool,
    /// Cleartext HTTP/2 by prior knowledge (h2c): a connection that opens with the HTTP/2
    /// preface is served as HTTP/2, any other as HTTP/1.1. For tests and for proxies that
    /// speak it; no browser does.
    pub h2c: bool,
    /// Streams at once on one HTTP/2 connection (`SETTINGS_MAX_CONCURRENT_STREAMS`): its
    /// WebSockets and requests. A client that opens more has them refused (`REFUSED_STREAM`);
    /// hyper's client and browsers wait for a free stream instead.
    pub h2_max_streams: u32,
    /// Renders `/metrics` when set ([`crate::telemetry::install`]).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            prefix: DEFAULT_PREFIX.to_owned(),
            www: None,
            protocols: Vec::new(),
            allowed_origins: Vec::new(),
            hosts: Vec::new(),
            dev_origins: false,
            max_message_size: 1 << 20,
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            http_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            close_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
            deflate: false,
            deflate_threshold: 1024,
            test_controls: false,
            tls: None,
            http2: true,
            h2c: false,
            h2_max_streams: 256,
            metrics: None,
        }
    }
}

impl Config {
    /// After how much silence an idle connection's Close leaves: `close_timeout` before
    /// `idle_timeout` (half of it at most), so that the connection is let go by then even if
    /// the Close goes unanswered.
    pub fn close_after(&self) -> Duration {
        let wait = self.close_timeout.min(self.idle_timeout / 2);
        self.idle_timeout - wait
    }

    /// tungstenite's settings: the size limits, and buffers sized for an idle connection
    /// rather than for the largest message (they grow while a large message passes).
    pub fn websocket(&self) -> WebSocketConfig {
        // Small, since every connection holds it even when idle: `read_ahead` makes up for
        // it on large messages. Replies are queued up to 64 KiB before a write: the echo loop
        // flushes whenever no further message is already waiting, so this only batches the
        // replies to messages that arrived together.
        WebSocketConfig::default()
            .read_buffer_size(512)
            .write_buffer_size(64 << 10)
            .max_write_buffer_size(self.max_message_size + (64 << 10))
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size))
    }

    /// [`Config::websocket`] for a heavy connection (`read_ahead`): tungstenite reads up to
    /// 32 KiB (`WIDE_READ`) a call instead of 512, straight from the socket. Only while the
    /// connection stays busy: the echo loop renews the socket with the small window once the
    /// peer falls silent.
    pub fn websocket_wide(&self) -> WebSocketConfig {
        self.websocket().read_buffer_size(WIDE_READ)
    }
}
