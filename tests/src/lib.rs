//! What the end-to-end tests share: the echo server started in this process on port 0, and
//! headless Chromium driven over WebDriver by a chromedriver started for each test.
//!
//! The page needs the built client in `www/pkg/`; `cargo xtask test` builds it first.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use echo_server::Config;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use test_support::browser::{CHROMEDRIVER, CHROMIUM, chromium_args};

/// The workspace's `www/` directory.
pub fn www() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../www")
}

/// Starts the real server in this process on `127.0.0.1:0`, serving `www/` and negotiating
/// permessage-deflate, and returns the
/// address it is bound to. It runs until the test's runtime stops.
pub async fn start_server(config: Config) -> Result<SocketAddr> {
    start_server_at("127.0.0.1:0", config).await
}

/// Like [`start_server`], on a given address.
pub async fn start_server_at(addr: &str, config: Config) -> Result<SocketAddr> {
    let wasm = www().join("pkg/echo_page_bg.wasm");
    if !wasm.exists() {
        bail!(
            "{} is missing: run `cargo xtask test`, which builds it",
            wasm.display()
        );
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    // With permessage-deflate, as `--deflate` serves it: Chromium offers it on every
    // handshake, so the page's messages go through the server's inflating layer.
    let config = Config {
        www: Some(www()),
        deflate: true,
        ..config
    };
    tokio::spawn(echo_server::serve(listener, config, std::future::pending()));
    Ok(addr)
}

/// Headless Chromium and the chromedriver that drives it; both end when this is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session through it.
    pub async fn start() -> Result<Browser> {
        let mut driver = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("cannot start {CHROMEDRIVER}: `cargo xtask test` installs it")
            })?;
        let port = driver_port(&mut driver)?;
        let profile =
            std::env::temp_dir().join(format!("e2e-chromium-{}-{port}", std::process::id()));
        let mut args = chromium_args(&profile);
        args.push("--window-size=900,700".to_owned());
        let capabilities = serde_json::json!({
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match client {
            Ok(client) => client,
            Err(error) => {
                let _ = driver.kill();
                return Err(error).context("chromedriver could not start Chromium");
            }
        };
        Ok(Browser { client, driver })
    }

    /// The text of the page's log, one line per entry.
    pub async fn log(&self) -> Result<String> {
        Ok(self.client.find(Locator::Id("log")).await?.text().await?)
    }

    /// Waits until a line of the page's log ends with `text`, or fails after 10 seconds
    /// with the whole log in the message.
    pub async fn wait_for_line(&self, text: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log().await?;
            if log.lines().any(|line| line.ends_with(text)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("no log line ending with {text:?} within 10 s; the log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The console messages logged since the last call, as Chromium reports them: the source,
    /// then the logged value (strings in quotes).
    pub async fn console(&self) -> Result<Vec<String>> {
        let entries = self.client.issue_cmd(BrowserLog).await?;
        let entries = entries.as_array().context("the browser log is a list")?;
        Ok(entries
            .iter()
            .filter_map(|entry| entry["message"].as_str().map(str::to_owned))
            .collect())
    }

    /// Waits until the console has logged a string ending with `text`, or fails after
    /// 10 seconds with everything it logged in the message.
    pub async fn wait_for_console(&self, text: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let quoted = format!("{text}\"");
        let mut seen = Vec::new();
        loop {
            seen.extend(self.console().await?);
            if seen.iter().any(|message| message.ends_with(&quoted)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the console never logged {text:?}; it logged:\n{}",
                    seen.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) -> Result<()> {
        let result = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        Ok(result?)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// Reads the port from chromedriver's "started successfully on port N." line.
fn driver_port(driver: &mut Child) -> Result<u16> {
    let stdout = driver.stdout.take().context("chromedriver stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(rest) = line.split("started successfully on port ").nth(1) {
            return Ok(rest.trim_end_matches('.').parse()?);
        }
    }
    bail!("chromedriver exited without saying which port it listens on")
}

/// chromedriver's command for the browser's console log (`goog:loggingPrefs`), which WebDriver
/// itself does not define.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}
