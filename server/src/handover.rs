//! Restarts that refuse no one: the listening socket handed from the running instance to its
//! successor over a Unix socket (`--handover PATH`), as HAProxy's `-x` and Envoy's hot
//! restart do.
//!
//! A running instance waits on `PATH` ([`offer`]). A new one started with the same `PATH`
//! connects to it first ([`take_over`]) and receives the very listening socket (its file
//! descriptor, `SCM_RIGHTS`), so both accept from one queue: no handshake in it is refused,
//! reset or lost, whoever of the two takes it. Once the successor says it has the socket, the
//! old instance stops accepting, closes its own descriptor (the socket lives on in the new
//! process), sends every client 1001 and leaves once they are gone, or after
//! `--shutdown-timeout`.
//!
//! Why not `SO_REUSEPORT`: two sockets bound to one port have a queue each, and the kernel
//! resets what waits in the old one's queue when it closes (unless
//! `net.ipv4.tcp_migrate_req` is set, Linux 5.14 and later); one socket has one queue.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use tracing::{info, warn};

/// How long either side waits for the other during a handover.
const PATIENCE: Duration = Duration::from_secs(5);

/// What the successor sends once it holds the socket.
const TAKEN: u8 = 1;

/// The listening socket of the instance waiting on `path`, if one is; `None` when nothing
/// listens there (the first instance, or a stale path).
pub fn take_over(path: &Path) -> io::Result<Option<std::net::TcpListener>> {
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(error),
    };
    stream.set_read_timeout(Some(PATIENCE))?;
    let fd = receive_fd(&stream)?;
    let listener = std::net::TcpListener::from(fd);
    listener.set_nonblocking(true)?;
    // Only now may the old instance stop accepting: the socket is in this process.
    stream.write_all(&[TAKEN])?;
    info!(addr = ?listener.local_addr()?, "took the listening socket over");
    Ok(Some(listener))
}

/// Waits on `path` for a successor, hands it `socket` (a duplicate of the listening socket's
/// descriptor) and completes once it has taken it; a successor that fails midway is logged,
/// and the next one waited for. Any file at `path` is replaced (an instance that took over
/// from the one there no longer needs it).
pub async fn offer(path: &Path, socket: OwnedFd) -> io::Result<()> {
    let _ = std::fs::remove_file(path);
    let waiting = tokio::net::UnixListener::bind(path)?;
    loop {
        let (stream, _) = waiting.accept().await?;
        let stream = stream.into_std()?;
        let fd = socket.as_raw_fd();
        let handed = tokio::task::spawn_blocking(move || hand(stream, fd)).await;
        match handed {
            Ok(Ok(())) => {
                // The path is the successor's now: leave it alone.
                info!("the listening socket is handed over: shutting down");
                return Ok(());
            }
            Ok(Err(error)) => warn!(%error, "a handover failed; still serving"),
            Err(error) => warn!(%error, "a handover failed; still serving"),
        }
    }
}

/// Sends `fd` on `stream` and waits for the successor's word that it holds it.
fn hand(mut stream: UnixStream, fd: RawFd) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    let fds = [fd];
    let message = [ControlMessage::ScmRights(&fds)];
    let byte = [0u8];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(&byte)],
        &message,
        MsgFlags::empty(),
        None,
    )?;
    let mut answer = [0u8];
    stream.read_exact(&mut answer)?;
    if answer[0] != TAKEN {
        return Err(io::Error::other("the successor answered something else"));
    }
    Ok(())
}

/// Receives one file descriptor sent with `SCM_RIGHTS`.
fn receive_fd(stream: &UnixStream) -> io::Result<OwnedFd> {
    let mut byte = [0u8];
    let mut buffers = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut buffers,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for control in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = control
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel just made `fd` this process's, and nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(io::Error::other("the running instance sent no socket"))
}
