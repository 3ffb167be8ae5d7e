//! Natively, the byte stream a connection's handshake runs over: a TCP connection to the
//! server, or a tunnel through an HTTP proxy (`CONNECT`, RFC 9110 section 9.3.6), over TCP or
//! TLS to the proxy, or through a SOCKS5 proxy (tokio-socks). tokio-tungstenite then adds the server's TLS (for `wss://`) and the
//! WebSocket handshake on top, as on a direct connection: only the way there differs. With
//! the `http2` feature it may also be a stream of a shared HTTP/2 connection (`http2.rs`),
//! whose own way to the server was opened here.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_socks::tcp::Socks5Stream;

use crate::message::{CloseCause, CloseEvent};
use crate::proxy::{Proxy, Scheme};

/// The most a proxy's answer to `CONNECT` may take before its end, body excluded: its status
/// line and headers.
const MAX_ANSWER: usize = 16 * 1024;

/// The most headers read in a proxy's answer.
const MAX_HEADERS: usize = 64;

/// The way to the server.
pub(crate) enum Tunnel {
    /// A TCP connection: to the server, or a tunnel through an `http://` proxy.
    Tcp(TcpStream),
    /// A tunnel through an `https://` proxy: TLS to the proxy, and the server's TLS (for
    /// `wss://`) inside it.
    Tls(Box<TlsStream<TcpStream>>),
    /// A connection through a SOCKS5 proxy.
    Socks(Socks5Stream<TcpStream>),
    /// A byte stream carried by another protocol over one of the above: a stream of a shared
    /// HTTP/2 connection (RFC 8441's extended `CONNECT`, `http2.rs`), whose TLS, if any, is
    /// the connection's, beneath it.
    #[cfg(all(feature = "http2", not(feature = "fuzzing")))]
    Carried(Box<dyn Carried>),
}

/// A byte stream [`Tunnel::Carried`] holds.
#[cfg(all(feature = "http2", not(feature = "fuzzing")))]
pub(crate) trait Carried: AsyncRead + AsyncWrite + Send + Unpin {}

#[cfg(all(feature = "http2", not(feature = "fuzzing")))]
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Carried for T {}

/// Why the way could not be opened.
#[derive(Clone, Debug)]
pub(crate) enum Failure {
    /// The proxy did not open the tunnel: its answer's status, or `None` when it could not
    /// be reached or did not answer in HTTP; the reason says which proxy and what it said.
    Proxy { status: Option<u16>, reason: String },
    /// The server could not be reached, or the handshake failed, as tungstenite says it.
    Other(String),
    /// The server's handshake answer named extensions the client cannot honour.
    Extension(String),
}

impl Failure {
    /// The close the application is told of.
    pub(crate) fn close_event(self) -> CloseEvent {
        match self {
            Failure::Proxy { status, reason } => {
                CloseEvent::new(1006, reason, false).with_cause(CloseCause::Proxy { status })
            }
            Failure::Other(reason) => CloseEvent::new(1006, reason, false),
            Failure::Extension(reason) => {
                CloseEvent::new(1006, reason, false).with_cause(CloseCause::Extension)
            }
        }
    }
}

/// `host:port`, with an IPv6 address in brackets.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The proxy's URL, without its credentials: for error messages.
fn display(proxy: &Proxy) -> String {
    let scheme = match proxy.scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
        Scheme::Socks5 => "socks5",
        Scheme::Socks5h => "socks5h",
    };
    format!("{scheme}://{}", host_port(&proxy.host, proxy.port))
}

/// Opens the way to `host:port` (a name, or an address without brackets): directly, or
/// through `proxy`, whose TLS (for an `https://` proxy) is set up by `tls` as the server's
/// is. Nagle is off on the socket: a small message goes out at once, not after the
/// previous one's ACK.
pub(crate) async fn open(
    host: &str,
    port: u16,
    proxy: Option<&Proxy>,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Tunnel, Failure> {
    let Some(proxy) = proxy else {
        let socket = TcpStream::connect((host, port)).await.map_err(|error| {
            // In tungstenite's words, as when it connected itself.
            Failure::Other(tokio_tungstenite::tungstenite::Error::Io(error).to_string())
        })?;
        socket
            .set_nodelay(true)
            .map_err(|e| Failure::Other(e.to_string()))?;
        return Ok(Tunnel::Tcp(socket));
    };
    let refused = |status, reason: String| Failure::Proxy {
        status,
        reason: format!("proxy {}: {reason}", display(proxy)),
    };
    let socket = TcpStream::connect((proxy.host.as_str(), proxy.port))
        .await
        .map_err(|error| refused(None, format!("cannot connect: {error}")))?;
    socket
        .set_nodelay(true)
        .map_err(|error| refused(None, error.to_string()))?;
    let mut tunnel = match proxy.scheme {
        Scheme::Socks5 | Scheme::Socks5h => {
            return socks(socket, host, port, proxy)
                .await
                .map_err(|e| refused(None, e));
        }
        Scheme::Http => Tunnel::Tcp(socket),
        Scheme::Https => {
            let name = rustls::pki_types::ServerName::try_from(proxy.host.clone())
                .map_err(|error| refused(None, format!("not a TLS server name: {error}")))?;
            let tls = TlsConnector::from(tls.clone()).connect(name, socket).await;
            Tunnel::Tls(Box::new(
                tls.map_err(|error| refused(None, format!("TLS: {error}")))?,
            ))
        }
    };
    let target = host_port(host, port);
    let mut connect = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(authorization) = proxy.basic() {
        connect += &format!("Proxy-Authorization: {authorization}\r\n");
    }
    connect += "\r\n";
    tunnel
        .write_all(connect.as_bytes())
        .await
        .map_err(|error| refused(None, format!("cannot send CONNECT: {error}")))?;
    let (status, phrase) = read_answer(&mut tunnel)
        .await
        .map_err(|why| refused(None, why))?;
    if !(200..300).contains(&status) {
        let reason = format!("refused the tunnel to {target}: {status} {phrase}");
        return Err(refused(Some(status), reason));
    }
    Ok(tunnel)
}

/// Asks the SOCKS5 proxy on `socket` for a connection to `host:port`: by name with
/// `socks5h://`; with `socks5://`, to the first address the client resolves the name to.
async fn socks(socket: TcpStream, host: &str, port: u16, proxy: &Proxy) -> Result<Tunnel, String> {
    let target = if proxy.scheme == Scheme::Socks5 {
        let mut addresses = (tokio::net::lookup_host((host, port)).await)
            .map_err(|error| format!("cannot resolve {host}: {error}"))?;
        let address = addresses
            .next()
            .ok_or_else(|| format!("{host} resolves to nothing"))?;
        tokio_socks::TargetAddr::Ip(address)
    } else {
        tokio_socks::TargetAddr::Domain(host.into(), port)
    };
    let connected = match &proxy.credentials {
        None => Socks5Stream::connect_with_socket(socket, target).await,
        Some((user, password)) => {
            Socks5Stream::connect_with_password_and_socket(socket, target, user, password).await
        }
    };
    let stream = connected.map_err(|error| format!("SOCKS5: {error}"))?;
    Ok(Tunnel::Socks(stream))
}

/// Reads the proxy's answer to `CONNECT` up to the end of its headers: its status and
/// reason phrase. Nothing may follow a success before the client speaks (the server has not
/// been asked anything yet), so a read past the headers is harmless, and refused.
async fn read_answer(tunnel: &mut Tunnel) -> Result<(u16, String), String> {
    let mut answer = Vec::with_capacity(1024);
    let mut chunk = [0; 1024];
    loop {
        let read = (tunnel.read(&mut chunk).await).map_err(|error| error.to_string())?;
        if read == 0 {
            return Err("closed the connection without answering CONNECT".to_owned());
        }
        answer.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&answer) {
            Ok(httparse::Status::Complete(length)) => {
                let status = response.code.unwrap_or_default();
                let phrase = response.reason.unwrap_or_default().to_owned();
                if (200..300).contains(&status) && length < answer.len() {
                    return Err("sent bytes after its answer to CONNECT".to_owned());
                }
                return Ok((status, phrase));
            }
            Ok(httparse::Status::Partial) if answer.len() < MAX_ANSWER => {}
            Ok(httparse::Status::Partial) => {
                return Err(format!(
                    "answered CONNECT with more than {MAX_ANSWER} bytes of headers"
                ));
            }
            Err(error) => return Err(format!("answered CONNECT with no HTTP response: {error}")),
        }
    }
}

impl AsyncRead for Tunnel {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Tunnel::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Tunnel::Tls(stream) => Pin::new(stream).poll_read(cx, buf),
            Tunnel::Socks(stream) => Pin::new(stream).poll_read(cx, buf),
            #[cfg(all(feature = "http2", not(feature = "fuzzing")))]
            Tunnel::Carried(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Tunnel {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Tunnel::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Tunnel::Tls(stream) => Pin::new(stream).poll_write(cx, buf),
            Tunnel::Socks(stream) => Pin::new(stream).poll_write(cx, buf),
            #[cfg(all(feature = "http2", not(feature = "fuzzing")))]
            Tunnel::Carried(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Tunnel::Tcp(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Tunnel::Tls(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Tunnel::Socks(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            #[cfg(all(feature = "http2", not(feature = "fuzzing")))]
            Tunnel::Carried(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Tunnel::Tcp(stream) => stream.is_write_vectored(),
            Tunnel::Tls(stream) => stream.is_write_vectored(),
            Tunnel::Socks(stream) => stream.is_write_vectored(),
            #[cfg(all(feature = "http2", not(feature = "fuzzing")))]
            Tunnel::Carried(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Tunnel::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Tunnel::Tls(stream) => Pin::new(stream).poll_flush(cx),
            Tunnel::Socks(stream) => Pin::new(stream).poll_flush(cx),
            #[cfg(all(feature = "http2", not(feature = "fuzzing")))]
            Tunnel::Carried(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Tunnel::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Tunnel::Tls(stream) => Pin::new(stream).poll_shutdown(cx),
            Tunnel::Socks(stream) => Pin::new(stream).poll_shutdown(cx),
            #[cfg(all(feature = "http2", not(feature = "fuzzing")))]
            Tunnel::Carried(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}
