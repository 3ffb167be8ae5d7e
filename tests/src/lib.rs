//! What the end-to-end tests share: the echo server started in this process on port 0, and a
//! browser driven over WebDriver by a driver started for each test: Chromium through
//! chromedriver, Firefox through geckodriver, or WebKit through WebKitWebDriver, as
//! `E2E_ENGINE` says (Chromium by default).
//!
//! The page needs the built client in `www/pkg/`; `cargo xtask test` builds it first.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use std::os::unix::process::CommandExt;
use wsecho::Config;

use test_support::browser::{CHROMIUM, Engine, FIREFOX, XVFB_RUN, chromium_args};

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
    tokio::spawn(wsecho::serve(listener, config, std::future::pending()));
    Ok(addr)
}

/// A browser session in one engine, and the WebDriver server that drives it; both end when
/// this is dropped.
pub struct Browser {
    pub client: Client,
    engine: Engine,
    driver: Driver,
}

impl Browser {
    /// Starts a session in the engine `E2E_ENGINE` names (`chromium`, the default, `firefox`
    /// or `webkit`); in Firefox with the preferences `E2E_FIREFOX_PREFS` may add.
    pub async fn start() -> Result<Browser> {
        Browser::start_in(Engine::from_env().map_err(anyhow::Error::msg)?).await
    }

    /// Starts the engine's WebDriver server on a free port and a session through it: headless
    /// Chromium, headless Firefox, or WebKitGTK's MiniBrowser on a virtual display.
    pub async fn start_in(engine: Engine) -> Result<Browser> {
        let driver = Driver::start(engine)?;
        let capabilities = match engine {
            Engine::Chromium => {
                let profile = std::env::temp_dir().join(format!(
                    "e2e-chromium-{}-{}",
                    std::process::id(),
                    driver.port
                ));
                let mut args = chromium_args(&profile);
                args.push("--window-size=900,700".to_owned());
                // The https tests' certificate is made on the spot: trusted by no one.
                args.push("--ignore-certificate-errors".to_owned());
                serde_json::json!({
                    "acceptInsecureCerts": true,
                    "goog:loggingPrefs": { "browser": "ALL" },
                    "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
                })
            }
            // geckodriver makes a fresh profile of its own, with the preferences that keep
            // Firefox from calling home; `E2E_FIREFOX_PREFS` (a JSON object) adds others.
            Engine::Firefox => {
                let prefs = match std::env::var("E2E_FIREFOX_PREFS") {
                    Ok(prefs) => serde_json::from_str(&prefs).context("E2E_FIREFOX_PREFS")?,
                    Err(_) => serde_json::json!({}),
                };
                serde_json::json!({
                    "acceptInsecureCerts": true,
                    "moz:firefoxOptions": {
                        "binary": FIREFOX,
                        "args": ["-headless", "-width=900", "-height=700"],
                        "prefs": prefs
                    }
                })
            }
            // WebKitWebDriver starts MiniBrowser with what it needs (`--automation`).
            Engine::WebKit => serde_json::json!({ "acceptInsecureCerts": true }),
        };
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .with_context(|| format!("{} could not start {engine:?}", driver.name))?;
        Ok(Browser {
            client,
            engine,
            driver,
        })
    }

    /// The engine the session runs in.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Opens `url`, and where the driver cannot capture the console (every engine but
    /// Chromium), installs [`CONSOLE_HOOK`] in the page: what it logs from then on, and its
    /// uncaught errors, are kept for [`Browser::console`].
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.client.goto(url).await?;
        if self.engine != Engine::Chromium {
            self.client.execute(CONSOLE_HOOK, vec![]).await?;
        }
        Ok(())
    }

    /// The text of the page's log, one line per entry. Each entry's text is read on its own:
    /// the WebDriver text of the whole list has no line breaks between entries in WebKit.
    pub async fn log(&self) -> Result<String> {
        let script = "return [...document.querySelectorAll('#log li')]\
                      .map((entry) => entry.innerText).join('\\n')";
        let log = self.client.execute(script, vec![]).await?;
        Ok(log.as_str().context("the log is text")?.to_owned())
    }

    /// Waits until a line of the page's log ends with `text`, or fails after 10 seconds
    /// with the whole log in the message.
    pub async fn wait_for_line(&self, text: &str) -> Result<()> {
        self.wait_for_lines(text, 1).await
    }

    /// Waits until `count` lines of the page's log end with `text` (a line already there
    /// counts: wait for the next one by its number), or fails after 10 seconds with the whole
    /// log in the message.
    pub async fn wait_for_lines(&self, text: &str, count: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log().await?;
            if log.lines().filter(|line| line.ends_with(text)).count() >= count {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("not {count} log lines ending with {text:?} within 10 s; the log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `script` returns `true`, or fails after 10 seconds.
    pub async fn wait_for_script(&self, script: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.client.execute(script, vec![]).await? == serde_json::Value::Bool(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{script:?} was not true within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The console messages logged since the last call, each as its source, then the logged
    /// value in quotes. Chromium's own log has everything from the page's start, the errors
    /// of resources it could not load among them; elsewhere it is what [`CONSOLE_HOOK`] saw
    /// since [`Browser::goto`].
    pub async fn console(&self) -> Result<Vec<String>> {
        Ok(self
            .console_entries()
            .await?
            .into_iter()
            .map(|(_, message)| message)
            .collect())
    }

    /// The errors among the console messages since the last call: Chromium's `SEVERE`
    /// entries (a resource that failed to load is one), or what [`CONSOLE_HOOK`] recorded from
    /// `console.error`, an uncaught exception or an unhandled rejection.
    pub async fn errors(&self) -> Result<Vec<String>> {
        Ok(self
            .console_entries()
            .await?
            .into_iter()
            .filter(|(level, _)| level == "SEVERE")
            .map(|(_, message)| message)
            .collect())
    }

    /// The console since the last call: (level, message), the level `SEVERE` for errors.
    async fn console_entries(&self) -> Result<Vec<(String, String)>> {
        let entries = match self.engine {
            Engine::Chromium => self.client.issue_cmd(BrowserLog).await?,
            _ => {
                let script = "return (window.__e2eConsole || []).splice(0)";
                self.client.execute(script, vec![]).await?
            }
        };
        let entries = entries.as_array().context("the browser log is a list")?;
        Ok(entries
            .iter()
            .filter_map(|entry| {
                let level = entry["level"].as_str()?.to_owned();
                Some((level, entry["message"].as_str()?.to_owned()))
            })
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
    pub async fn close(self) -> Result<()> {
        let result = self.client.clone().close().await;
        drop(self.driver);
        Ok(result?)
    }
}

/// What the page logs, kept in the page for engines whose driver has no console log
/// (geckodriver, WebKitWebDriver): `console.log`, `info`, `warn` and `error` (still passed
/// on), uncaught errors and unhandled rejections, each as `{level, message}` in
/// `window.__e2eConsole`, in the form Chromium's log gives (`source "text"`), errors at level
/// `SEVERE`. Installed after the page has loaded, so it misses what the page logged while
/// loading.
pub const CONSOLE_HOOK: &str = r#"
if (!window.__e2eConsole) {
  const records = (window.__e2eConsole = []);
  const record = (level, source, text) => records.push({ level, message: `${source} "${text}"` });
  for (const name of ["log", "info", "warn", "error"]) {
    const original = console[name].bind(console);
    console[name] = (...args) => {
      record(name === "error" ? "SEVERE" : "INFO", `console.${name}`, args.map(String).join(" "));
      original(...args);
    };
  }
  addEventListener("error", (e) => record("SEVERE", "error", e.message || String(e.target && (e.target.src || e.target.href))), true);
  addEventListener("unhandledrejection", (e) => record("SEVERE", "unhandledrejection", String(e.reason)));
}
"#;

/// A WebDriver server on a port of its own, in a process group of its own: dropping it ends
/// the group, so the browser it started (and, for WebKit, `xvfb-run`'s X server) ends too.
struct Driver {
    child: Child,
    port: u16,
    name: String,
    engine: Engine,
}

impl Driver {
    fn start(engine: Engine) -> Result<Driver> {
        let path = engine.driver();
        let name = path.display().to_string();
        // chromedriver and geckodriver take port 0 and say which they took; WebKitWebDriver
        // says nothing, so it gets a port found free, and MiniBrowser a virtual display.
        let (mut command, port) = match engine {
            Engine::Chromium => {
                let mut command = Command::new(&path);
                command.arg("--port=0");
                (command, None)
            }
            Engine::Firefox => {
                let mut command = Command::new(&path);
                command.args(["--host", "127.0.0.1", "--port", "0"]);
                (command, None)
            }
            Engine::WebKit => {
                let port = free_port()?;
                let mut command = Command::new(XVFB_RUN);
                command.arg("-a").arg(&path).arg(format!("--port={port}"));
                (command, Some(port))
            }
        };
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name}: `cargo xtask test` installs it"))?;
        let mut driver = Driver {
            child,
            port: 0,
            name,
            engine,
        };
        let port = match (engine, port) {
            (_, Some(port)) => await_listening(port),
            (Engine::Firefox, None) => read_port(&mut driver.child, "Listening on 127.0.0.1:"),
            _ => read_port(&mut driver.child, "started successfully on port "),
        };
        driver.port = port.with_context(|| format!("{} did not start", driver.name))?;
        Ok(driver)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Under xvfb-run, its command first: it then stops its X server and removes its files
        // itself, which a signal to the script would prevent.
        let under_xvfb = self.engine == Engine::WebKit;
        for child in children(self.child.id()).into_iter().filter(|_| under_xvfb) {
            let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
            if comm.trim() != "Xvfb" {
                let _ = Command::new("kill").arg(child.to_string()).status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while under_xvfb && Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Then the whole group: the driver, its browser, and xvfb-run's X server.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The processes `pid` started.
fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let children = std::fs::read_to_string(path).unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|child| child.parse().ok())
        .collect()
}

/// A port that was free a moment ago, for a driver that cannot pick one itself.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until something accepts connections on `port`, for 30 seconds at most.
fn await_listening(port: u16) -> Result<u16> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port} after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(port)
}

/// Reads the port from the driver's line that has `prefix` before it (chromedriver: "started
/// successfully on port N.", geckodriver: "Listening on 127.0.0.1:N").
fn read_port(driver: &mut Child, prefix: &str) -> Result<u16> {
    let stdout = driver.stdout.take().context("the driver's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next() {
        let line = line?;
        if let Some(rest) = line.split(prefix).nth(1) {
            let port = rest.trim().trim_end_matches('.').parse()?;
            // The driver goes on writing: a closed pipe would end it.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(port);
        }
    }
    bail!("the driver exited without saying which port it listens on")
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
