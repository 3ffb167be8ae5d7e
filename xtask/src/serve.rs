//! `cargo xtask serve`: the page built, and the echo server serving it.

use anyhow::Result;

use crate::build::build_client;
use crate::wsecho::EchoServer;
use crate::{cmd, run};

/// Builds the client and runs the release echo server on `addr` until it is stopped.
pub fn serve(addr: &str) -> Result<()> {
    build_client()?;
    run(cmd("cargo", &["build", "--release", "-p", "wsecho"]))?;
    // `--dev`: the chapter's own page, opened from a file (`Origin: null`), connects too.
    let server = EchoServer::start("release", &["--addr", addr, "--dev"], "info")?;
    let url = server.url.replacen("ws://", "http://", 1);
    eprintln!("\nopen {url} in a browser; Ctrl-C stops the server\n");
    server.wait()
}
