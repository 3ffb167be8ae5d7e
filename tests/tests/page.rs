//! The seed chapter's acceptance test, as a person would do it: open the page, press
//! "Send Message", read the reply, disconnect.

use e2e::{Browser, start_server, start_server_at};
use echo_server::Config;
use fantoccini::Locator;
use fantoccini::key::Key;

#[tokio::test]
async fn the_page_echoes_and_closes_with_1000() -> anyhow::Result<()> {
    let addr = start_server(Config::default()).await?;
    let browser = Browser::start().await?;
    let page = &browser.client;
    page.goto(&format!("http://{addr}/")).await?;
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
    // Nothing the page asked for was missing, the browser's icon included. (Chromium's words
    // for it: a bare "404" also matches a port such as 40447 in every line.)
    let console = browser.console().await?;
    let missing = |m: &String| m.contains("status of 404");
    assert!(!console.iter().any(missing), "{console:#?}");

    // Enter in the input sends too.
    let input = page.find(Locator::Id("message")).await?;
    input.clear().await?;
    input
        .send_keys(&format!("¡hola, mundo! 🦀{}", char::from(Key::Enter)))
        .await?;
    browser
        .wait_for_line("message received: Received:  ¡hola, mundo! 🦀")
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

    // And Connect opens a new connection.
    page.find(Locator::Id("connect")).await?.click().await?;
    let connected = format!("connected to ws://{addr}/");
    browser.wait_for_line(&connected).await?;
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
    browser.client.goto(&url).await?;
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
    browser
        .client
        .goto(&format!("file://{}", seed.display()))
        .await?;
    browser
        .wait_for_console("connected to ws://127.0.0.1:1234")
        .await?;
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
