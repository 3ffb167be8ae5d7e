//! The seed chapter's acceptance test, as a person would do it: open the page, press
//! "Send Message", read the reply, disconnect. In the engine `E2E_ENGINE` names (Chromium by
//! default; `cargo xtask test` runs these in Firefox and WebKit too).

use e2e::{Browser, start_server, start_server_at};
use fantoccini::Locator;
use fantoccini::key::Key;
use test_support::browser::Engine;
use wsecho::Config;

#[tokio::test]
async fn the_page_echoes_and_closes_with_1000() -> anyhow::Result<()> {
    let addr = start_server(Config::default()).await?;
    let browser = Browser::start().await?;
    let page = &browser.client;
    browser.goto(&format!("http://{addr}/")).await?;
    assert_eq!(page.title().await?, "WebSocket Echo Test");

    browser
        .wait_for_line(&format!("connected to ws://{addr}/"))
        .await?;
    assert_eq!(
        page.find(Locator::Id("status")).await?.text().await?,
        "open"
    );
    page.find(Locator::Id("send")).await?.click().await?;
    browser
        .wait_for_line("message received: Received:  Hello, world!")
        .await?;
    // No error, in the console or uncaught. In Chromium that includes anything the page asked
    // for that was missing, the browser's icon among them ("... status of 404"); the other
    // engines' drivers have no console log, so there it is what the page reported from the
    // moment it loaded (`e2e::CONSOLE_HOOK`).
    let errors = browser.errors().await?;
    assert!(errors.is_empty(), "{errors:#?}");

    // Enter in the input sends too. WebKitWebDriver (WebKitGTK 2.50) types no character
    // outside the Basic Multilingual Plane: the crab stays out of its keys.
    let typed = match browser.engine() {
        Engine::WebKit => "¡hola, mundo! ✓",
        _ => "¡hola, mundo! 🦀",
    };
    let input = page.find(Locator::Id("message")).await?;
    input.clear().await?;
    input
        .send_keys(&format!("{typed}{}", char::from(Key::Enter)))
        .await?;
    browser
        .wait_for_line(&format!("message received: Received:  {typed}"))
        .await?;

    let screenshot = page.screenshot().await?;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-page.png");
    std::fs::write(&path, screenshot)?;

    page.find(Locator::Id("connect")).await?.click().await?;
    browser.wait_for_line("connection closed (1000)").await?;
    assert_eq!(
        page.find(Locator::Id("status")).await?.text().await?,
        "closed"
    );
    let send = page.find(Locator::Id("send")).await?;
    assert_eq!(send.attr("disabled").await?.as_deref(), Some("true"));

    // And Connect opens a new connection: a second "connected" line (waiting for the line
    // alone returned at once in WebKit, on the first connection's).
    page.find(Locator::Id("connect")).await?.click().await?;
    let connected = format!("connected to ws://{addr}/");
    browser.wait_for_lines(&connected, 2).await?;
    let log = browser.log().await?;
    assert_eq!(
        log.lines()
            .filter(|line| line.ends_with(&connected))
            .count(),
        2,
        "{log}"
    );
    browser.close().await
}

#[tokio::test]
async fn the_url_parameter_picks_another_server() -> anyhow::Result<()> {
    let page_server = start_server(Config::default()).await?;
    // The page comes from another port: another origin, let in by the development switch.
    let pure_echo = start_server(Config {
        prefix: String::new(),
        dev_origins: true,
        ..Config::default()
    })
    .await?;
    let browser = Browser::start().await?;
    let url = format!("http://{page_server}/?url=ws://{pure_echo}/");
    browser.goto(&url).await?;
    browser
        .wait_for_line(&format!("connected to ws://{pure_echo}/"))
        .await?;
    browser
        .client
        .find(Locator::Id("send"))
        .await?
        .click()
        .await?;
    browser
        .wait_for_line("message received: Hello, world!")
        .await?;
    browser.close().await
}

/// The chapter's own page, byte for byte (`tests/seed/index.html`), opened from a file as the
/// chapter does. It hard-codes `ws://127.0.0.1:1234`, so this test needs that port free.
#[tokio::test]
async fn the_seed_page_works_unmodified() -> anyhow::Result<()> {
    // A page opened from a file has `Origin: null`: let in by the development switch, which
    // `cargo xtask serve` passes too.
    let config = Config {
        dev_origins: true,
        ..Config::default()
    };
    start_server_at("127.0.0.1:1234", config).await?;
    let browser = Browser::start().await?;
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seed/index.html");
    browser.goto(&format!("file://{}", seed.display())).await?;
    if browser.engine() == Engine::Chromium {
        browser
            .wait_for_console("connected to ws://127.0.0.1:1234")
            .await?;
    } else {
        // The page logged that while loading, before a console hook could be installed: its
        // socket (the page's global `sock`) says the same.
        let open = "return typeof sock === 'object' && sock !== null && sock.readyState === 1 \
                    && sock.url === 'ws://127.0.0.1:1234/'";
        browser.wait_for_script(open).await?;
    }
    browser
        .client
        .find(Locator::Css("button"))
        .await?
        .click()
        .await?;
    browser
        .wait_for_console("message received: Received:  Hello, world!")
        .await?;
    browser.close().await
}

/// The page over `https://`, from a server that offers HTTP/2 (as it does by default with
/// TLS): the page comes over HTTP/2, and its socket is a stream of that connection (RFC 8441),
/// as the server's metrics show. Chromium and Firefox do so; WebKitGTK 2.50 loads the page over
/// HTTP/2 but opens its socket over HTTP/1.1 (a connection of its own), which works as well:
/// the test prints what it saw.
#[tokio::test]
async fn the_page_over_https_opens_its_socket_over_http2() -> anyhow::Result<()> {
    let localhost = test_support::tls::Localhost::new();
    let metrics = metrics();
    let config = Config {
        tls: Some(std::sync::Arc::new(localhost.server_config())),
        metrics: Some(metrics.clone()),
        ..Config::default()
    };
    let addr = start_server(config).await?;
    let browser = Browser::start().await?;
    let before = opened_over_http2(&metrics.render());
    browser.goto(&format!("https://{addr}/")).await?;
    browser
        .wait_for_line(&format!("connected to wss://{addr}/"))
        .await?;
    let page = &browser.client;
    page.find(Locator::Id("send")).await?.click().await?;
    browser
        .wait_for_line("message received: Received:  Hello, world!")
        .await?;
    let page_over = page
        .execute(
            "return performance.getEntriesByType('navigation')[0].nextHopProtocol",
            vec![],
        )
        .await?;
    // Only this test's server speaks HTTP/2; the others, running meanwhile in this process
    // and counted by the same recorder, open their sockets over HTTP/1.1.
    let http2 = opened_over_http2(&metrics.render()) - before;
    eprintln!(
        "{:?}: page over {page_over}; sockets opened over HTTP/2: {http2}",
        browser.engine()
    );
    match browser.engine() {
        Engine::Chromium | Engine::Firefox => {
            assert_eq!(page_over, "h2", "the page came over HTTP/2");
            assert_eq!(http2, 1.0, "the socket came over HTTP/2");
        }
        Engine::WebKit => {}
    }
    browser.close().await
}

/// The process's Prometheus recorder, installed once: the tests of this file share it.
fn metrics() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| wsecho::telemetry::install().expect("the only recorder"))
        .clone()
}

/// WebSockets opened so far over HTTP/2, by the metrics' text.
fn opened_over_http2(text: &str) -> f64 {
    let name = "echo_connections_by_http_version_total{http_version=\"2\"}";
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}
