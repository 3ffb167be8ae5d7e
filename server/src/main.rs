//! The echo server binary: `cargo run -p echo-server -- --help`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use echo_server::{Config, DEFAULT_ADDR, DEFAULT_PREFIX};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// WebSocket echo server: answers each text message with PREFIX + message, echoes binary
/// messages, and serves the demo page on plain HTTP GET.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = DEFAULT_ADDR)]
    addr: String,
    /// Prepended to every text reply; '' makes a pure echo.
    #[arg(long, default_value = DEFAULT_PREFIX)]
    prefix: String,
    /// Directory served on plain GET (the page and its pkg/).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../www"))]
    www: PathBuf,
    /// A subprotocol to accept, in order of preference; may be repeated.
    #[arg(long = "protocol")]
    protocols: Vec<String>,
    /// Obey the test-only commands (`!close CODE REASON`, `!drop`, `!outage MILLIS`) sent as
    /// text messages. Never on a public server.
    #[arg(long)]
    test_controls: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let listener = TcpListener::bind(&args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    // The one line on stdout: tests and scripts read the real port from it.
    println!("listening on ws://{addr}/");
    std::io::stdout().flush()?;
    tracing::info!("page at http://{addr}/ (serving {})", args.www.display());

    let config = Config {
        prefix: args.prefix,
        www: Some(args.www),
        protocols: args.protocols,
        test_controls: args.test_controls,
        ..Config::default()
    };
    echo_server::serve(listener, config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}
