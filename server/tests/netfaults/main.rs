//! Real network faults between the real server and the project's native client (issue 33):
//! each in network namespaces of its own, the client's joined to each server's by a veth pair
//! (`lab.rs`). This kernel has no `netem`: loss and black holes come from iptables, latency
//! from a delaying relay (`relay.rs`), a slow link from `tbf`.
//!
//! - a black hole (every packet dropped both ways) right after the client's heartbeat was
//!   answered: the client finds it within its heartbeat's bound and fails over to a second
//!   server; the server lets the vanished client go within its idle timeout;
//! - 200 ms of latency each way, and separately 5% random loss each way: every message is
//!   echoed once and in order, also those the client queued while it reconnected;
//! - a reset in the middle of a large message: both ends report it and let it go;
//! - an MTU of 576: large messages echo intact;
//! - the black hole for the browser client: headless Chromium in the client's namespace runs
//!   `client/tests/netfaults_browser.rs`, built by the step (`NETFAULT_BROWSER_WASM` names it).
//!
//! Needs root, `ip` and iptables (`cargo xtask test install`); elsewhere each test says why
//! and does nothing. Ignored by a plain `cargo test`: `cargo xtask test netfaults` runs them,
//! at once, with `REQUIRE_NETNS` set so that a skip is a failure there.

mod lab;
mod relay;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lab::Lab;
use wasm_websocket::{CloseCause, Event, Heartbeat, Message, Reconnect, Sent, WebSocket};

/// The client's heartbeat in these tests: a ping every second, an answer within half a
/// second, so a silent connection is found within 1.5 s of the last message heard
/// (`Heartbeat`'s documented bound, interval + timeout).
const HEARTBEAT: (Duration, Duration) = (Duration::from_secs(1), Duration::from_millis(500));
/// The server's keepalive in these tests, and its documented bound: a client from which
/// nothing was heard for the idle timeout is let go.
const SERVER_KEEPALIVE: [&str; 6] = [
    "--ping-interval",
    "0.5",
    "--idle-timeout",
    "2",
    "--close-timeout",
    "0.5",
];
const SERVER_IDLE: Duration = Duration::from_secs(2);
/// A timer's lateness, the log file's polling and a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(300);

/// What one client saw, as its events came.
#[derive(Default)]
struct Seen {
    opened: Vec<Instant>,
    closes: Vec<(u16, CloseCause, Instant)>,
    /// Every text message received, with when.
    replies: Vec<(String, Instant)>,
    binary: Vec<Vec<u8>>,
    /// Messages sent, in order (not the test controls).
    sent: Vec<String>,
    reconnecting: usize,
}

type Shared = Rc<RefCell<Seen>>;

/// Follows `socket`'s events into a `Seen`; while the socket waits to reconnect the first
/// time, `on_reconnecting` sends what it returns (which must be queued).
fn follow(socket: &WebSocket, queued: Vec<String>) -> Shared {
    let seen = Shared::default();
    let mut events = socket.events();
    let (log, sender) = (seen.clone(), socket.clone());
    tokio::task::spawn_local(async move {
        let mut queued = Some(queued);
        while let Some(event) = events.next().await {
            let now = Instant::now();
            match event {
                Event::Open => log.borrow_mut().opened.push(now),
                Event::Close(close) => log.borrow_mut().closes.push((close.code, close.cause, now)),
                Event::Message(Message::Text(text)) => log.borrow_mut().replies.push((text, now)),
                Event::Message(Message::Binary(bytes)) => {
                    log.borrow_mut().binary.push(bytes.into_vec())
                }
                Event::Reconnecting(_) => {
                    log.borrow_mut().reconnecting += 1;
                    for text in queued.take().unwrap_or_default() {
                        let sent = sender.send(text.as_str()).unwrap();
                        assert_eq!(sent, Sent::Queued, "{text} while reconnecting");
                        log.borrow_mut().sent.push(text);
                    }
                }
                _ => {}
            }
        }
    });
    seen
}

/// Waits, up to `limit`, until `done` holds for what the client saw; fails saying `what`.
async fn until(what: &str, seen: &Shared, limit: Duration, done: impl Fn(&Seen) -> bool) {
    let started = Instant::now();
    while !done(&seen.borrow()) {
        if started.elapsed() > limit {
            let seen = seen.borrow();
            panic!(
                "{what}: not within {limit:?}; opened {}, closes {:?}, {} replies, last {:?}",
                seen.opened.len(),
                seen.closes,
                seen.replies.len(),
                seen.replies.last()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends `text` and notes it as sent.
fn send(socket: &WebSocket, seen: &Shared, text: String) {
    socket.send(text.as_str()).unwrap();
    seen.borrow_mut().sent.push(text);
}

/// A text message of a few bytes to a few KiB (several segments), numbered.
fn numbered(tag: &str, n: usize) -> String {
    sized(tag, n, 5000)
}

/// A text message numbered `n`, of up to `largest` bytes.
fn sized(tag: &str, n: usize, largest: usize) -> String {
    format!("{tag}{n} {}", "x".repeat(n * 997 % largest))
}

/// The replies the client saw, without the heartbeat's.
fn replies(seen: &Seen) -> Vec<String> {
    let heartbeat = |text: &str| text.ends_with("ping") && text.len() <= 7;
    let texts = seen.replies.iter().map(|(text, _)| text.clone());
    texts.filter(|text| !heartbeat(text)).collect()
}

/// A black hole between the client and server A, made right after the client's heartbeat
/// was answered (its worst case: the next ping leaves an interval after the last, and the
/// answer is awaited a timeout more). The client finds it within its bound and reconnects
/// to server B (its URL provider's), where what it queued meanwhile is echoed in order; the
/// vanished client is let go by server A within the idle timeout of the last thing it heard.
#[test]
#[ignore = "needs root and network namespaces: cargo xtask test netfaults"]
fn a_black_hole_is_found_by_both_ends_within_their_bounds_and_the_client_fails_over() {
    let Some(mut lab) = Lab::new("hole") else {
        return;
    };
    let (to_a, to_b) = (lab.link(), lab.link());
    let with = |prefix: &'static str| {
        let mut args = vec!["--prefix", prefix];
        args.extend(SERVER_KEEPALIVE);
        args
    };
    let a = lab.start_server(&to_a, &with("A "));
    let b = lab.start_server(&to_b, &with("B "));
    let (url_a, url_b, log_a) = (a.url.clone(), b.url.clone(), a.log.clone());
    let client_netns = lab.client.name.clone();
    let interface = to_a.client_if.clone();
    let report = lab.run_client(move || async move {
        let (interval, timeout) = HEARTBEAT;
        let socket = WebSocket::builder(&url_a)
            .reconnect(Reconnect::new().initial_delay(Duration::from_millis(50)))
            .url_provider(move || url_b.clone())
            .heartbeat(Heartbeat::new(interval, timeout))
            .connect()
            .unwrap();
        let queued: Vec<String> = (0..5).map(|n| numbered("q", n)).collect();
        let seen = follow(&socket, queued.clone());
        until("open on A", &seen, Duration::from_secs(5), |s| {
            s.opened.len() == 1
        })
        .await;
        for n in 0..5 {
            send(&socket, &seen, numbered("m", n));
        }
        // Wait for a heartbeat's answer, then black-hole the path to A at once.
        let answered = seen.borrow().replies.len();
        until("a heartbeat answered", &seen, Duration::from_secs(5), |s| {
            (s.replies[answered..].iter()).any(|(text, _)| text == "A ping")
        })
        .await;
        let answered_at = seen.borrow().replies.last().unwrap().1;
        lab::iptables_in(&client_netns, &format!("-A INPUT -i {interface} -j DROP"));
        lab::iptables_in(&client_netns, &format!("-A OUTPUT -o {interface} -j DROP"));
        let holed_at = Instant::now();
        until(
            "the heartbeat finds the hole",
            &seen,
            Duration::from_secs(10),
            |s| !s.closes.is_empty(),
        )
        .await;
        let (code, cause, found_at) = seen.borrow().closes[0];
        assert_eq!(cause, CloseCause::HeartbeatLost, "closed with {code}");
        until(
            "open on B, the queue echoed",
            &seen,
            Duration::from_secs(10),
            |s| s.opened.len() == 2 && replies(s).len() == 10,
        )
        .await;
        let server_let_go = log_a.closed_by(1, Duration::from_secs(10)).await;
        let seen = seen.borrow();
        let expected: Vec<String> = (0..5)
            .map(|n| format!("A {}", numbered("m", n)))
            .chain(queued.iter().map(|text| format!("B {text}")))
            .collect();
        assert_eq!(replies(&seen), expected, "every message once, in order");
        (
            answered_at,
            holed_at,
            found_at,
            seen.opened[1],
            server_let_go,
        )
    });
    let (answered_at, holed_at, found_at, reopened_at, server_let_go) = report;
    let bound = HEARTBEAT.0 + HEARTBEAT.1;
    let found = found_at - answered_at;
    let server_let_go = server_let_go.expect("server A lets the vanished client go");
    eprintln!(
        "black hole {:?} after the heartbeat's answer; client found it {found:?} after that \
         answer (bound {bound:?}), on B {:?} later; server A let it go {:?} after the hole \
         (bound {SERVER_IDLE:?} after the last thing it heard)",
        holed_at - answered_at,
        reopened_at - found_at,
        server_let_go - holed_at
    );
    // Nothing was heard after the hole was made, so the bounds run from then at the latest.
    assert!(found_at - holed_at <= bound + SLACK, "client: {found:?}");
    // Not something else: the answer came a round trip after its ping, and the event a little
    // after the answer, so a little under the bound.
    assert!(
        found >= bound - Duration::from_millis(250),
        "found early: {found:?}"
    );
    assert!(server_let_go - holed_at <= SERVER_IDLE + SLACK);
    assert!(reopened_at - found_at <= Duration::from_secs(1));
    let log = a.log.text();
    let line = log.lines().find(|line| line.contains("connection closed"));
    assert!(line.unwrap().contains("close_code=1001"), "{log}");
}

/// Over `url`: a round trip, 40 messages of a few bytes to `largest`, then the server drops
/// the connection (`!drop`), 20 messages are queued while the client reconnects, and 40 more
/// are sent once it is open again. Every one is echoed once, in order, by the same server
/// (`prefix`). The first round trip's time.
async fn messages_survive(url: String, prefix: &str, largest: usize) -> Duration {
    let socket = WebSocket::builder(&url)
        .reconnect(Reconnect::new().initial_delay(Duration::from_millis(50)))
        .connect()
        .unwrap();
    let queued: Vec<String> = (0..20).map(|n| sized("q", n, largest)).collect();
    let seen = follow(&socket, queued);
    let limit = Duration::from_secs(30);
    until("open", &seen, limit, |s| s.opened.len() == 1).await;
    let started = Instant::now();
    send(&socket, &seen, "first".to_owned());
    until("the first echo", &seen, limit, |s| s.replies.len() == 1).await;
    let round_trip = started.elapsed();
    for n in 0..40 {
        send(&socket, &seen, sized("m", n, largest));
    }
    until("40 echoes", &seen, limit, |s| s.replies.len() == 41).await;
    socket.send("!drop").unwrap();
    until("the queue echoed", &seen, limit, |s| s.replies.len() == 61).await;
    for n in 0..40 {
        send(&socket, &seen, sized("n", n, largest));
    }
    until("40 more echoes", &seen, limit, |s| s.replies.len() == 101).await;
    socket.close().unwrap();
    let seen = seen.borrow();
    assert_eq!((seen.opened.len(), seen.reconnecting), (2, 1));
    let expected: Vec<String> = seen.sent.iter().map(|m| format!("{prefix}{m}")).collect();
    assert_eq!(replies(&seen), expected, "every message once, in order");
    round_trip
}

/// 200 ms each way, from a delaying relay in the client's namespace.
#[test]
#[ignore = "needs root and network namespaces: cargo xtask test netfaults"]
fn with_200_ms_of_latency_every_message_arrives_once_in_order_across_a_reconnection() {
    let Some(mut lab) = Lab::new("late") else {
        return;
    };
    let link = lab.link();
    let server = lab.start_server(&link, &["--test-controls"]);
    let upstream = server.url["ws://".len()..]
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let delay = Duration::from_millis(200);
    let round_trip = lab.run_client(move || async move {
        let relay = relay::delaying(upstream, delay).await;
        messages_survive(format!("ws://{relay}/"), "Received:  ", 5000).await
    });
    eprintln!("200 ms each way: a round trip took {round_trip:?}");
    assert!(round_trip >= 2 * delay, "{round_trip:?}");
}

/// 5% of the packets dropped at random, each way.
#[test]
#[ignore = "needs root and network namespaces: cargo xtask test netfaults"]
fn with_5_percent_loss_every_message_arrives_once_in_order_across_a_reconnection() {
    let Some(mut lab) = Lab::new("loss") else {
        return;
    };
    let link = lab.link();
    let server = lab.start_server(&link, &["--test-controls"]);
    let lossy = "-m statistic --mode random --probability 0.05 -j DROP";
    let interface = &link.client_if;
    // Packets of one segment each, as on a wire: a veth otherwise hands on 64 KB at once
    // (segmentation offload), and a loss would drop dozens of segments together.
    for (netns, device) in [
        (&lab.client, interface),
        (lab.server_netns(&link), &link.server_if),
    ] {
        netns.ip(&["link", "set", device, "gso_max_size", "1500"]);
        netns.ip(&["link", "set", device, "gro_max_size", "1500"]);
    }
    // Rules without a target count every packet, before the loss.
    lab.client.iptables(&format!("-A INPUT -i {interface}"));
    lab.client.iptables(&format!("-A OUTPUT -o {interface}"));
    lab.client
        .iptables(&format!("-A INPUT -i {interface} {lossy}"));
    lab.client
        .iptables(&format!("-A OUTPUT -o {interface} {lossy}"));
    let url = server.url.clone();
    // Up to 60 KB a message, about 2.5 MB each way: a few thousand packets.
    lab.run_client(move || messages_survive(url, "Received:  ", 60_000));
    let counters = lab
        .client
        .exec("/usr/sbin/iptables", &["-L", "-v", "-n", "-x"]);
    let count = |rules: &str| -> u64 {
        let lines = counters.lines().filter(|line| line.contains(interface));
        let lines = lines.filter(|line| line.contains("statistic") == (rules == "lossy"));
        (lines.filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())).sum()
    };
    let (packets, dropped) = (count("all"), count("lossy"));
    eprintln!("5% loss: {dropped} of {packets} packets dropped");
    assert!(dropped > 0, "{counters}");
}

/// A reset (iptables' REJECT with a TCP reset, both ways) while a 2 MiB message is on its
/// way over an 8 Mbit/s link (2.1 s for the message): the client reports the connection lost (1006, `Remote`), the
/// server logs its end without a close code (found by its keepalive's ping), both let it go,
/// and nothing is echoed.
#[test]
#[ignore = "needs root and network namespaces: cargo xtask test netfaults"]
fn a_reset_in_the_middle_of_a_large_message_is_reported_by_both_ends() {
    let Some(mut lab) = Lab::new("reset") else {
        return;
    };
    let link = lab.link();
    // A reader hears nothing of a reset it sends nothing into: both namespaces answer every
    // packet with a reset, but the server's socket, reading the message, sends no packet
    // unless an ACK was still on its way (so it learnt of the reset in about half the runs).
    // Its keepalive is that packet: a ping after half a second of silence, answered by a reset.
    let flags = ["--max-message-size", "4194304", "--ping-interval", "0.5"];
    let server = lab.start_server(&link, &flags);
    // Two seconds for the message, so that the reset comes in its middle.
    let slow = ["qdisc", "add", "dev", &link.client_if, "root", "tbf"];
    let rate = ["rate", "8mbit", "burst", "16kb", "latency", "200ms"];
    lab.client.exec("tc", &[&slow[..], &rate[..]].concat());
    let (url, log) = (server.url.clone(), server.log.clone());
    let namespaces = [
        lab.client.name.clone(),
        lab.server_netns(&link).name.clone(),
    ];
    let (closed, sent_for, reset_at, server_let_go) = lab.run_client(move || async move {
        let socket = WebSocket::builder(&url).connect().unwrap();
        let seen = follow(&socket, Vec::new());
        until("open", &seen, Duration::from_secs(5), |s| {
            s.opened.len() == 1
        })
        .await;
        let sent_at = Instant::now();
        socket.send(vec![7; 2 << 20]).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Every TCP packet but a reset gets a reset for an answer, in both namespaces: each
        // end's socket gets the other's.
        let reject = "-A INPUT -p tcp --tcp-flags RST NONE -j REJECT --reject-with tcp-reset";
        for netns in &namespaces {
            lab::iptables_in(netns, reject);
        }
        let reset_at = Instant::now();
        until("the client's close", &seen, Duration::from_secs(5), |s| {
            !s.closes.is_empty()
        })
        .await;
        let server_let_go = log.closed_by(1, Duration::from_secs(5)).await;
        let seen = seen.borrow();
        assert!(seen.binary.is_empty(), "nothing echoed");
        (seen.closes[0], reset_at - sent_at, reset_at, server_let_go)
    });
    let (code, cause, closed_at) = closed;
    let server_let_go = server_let_go.expect("the server lets the connection go");
    eprintln!(
        "reset {sent_for:?} into the message: the client closed ({code}, {cause:?}) {:?} \
         later, the server let go {:?} later",
        closed_at - reset_at,
        server_let_go - reset_at
    );
    assert_eq!((code, cause), (1006, CloseCause::Remote));
    assert!(
        sent_for < Duration::from_millis(1500),
        "not in the middle: {sent_for:?}"
    );
    let log = server.log.text();
    let line = log.lines().find(|line| line.contains("connection closed"));
    let line = line.unwrap();
    assert!(
        line.contains("messages=0") && !line.contains("close_code"),
        "{line}"
    );
    assert!(closed_at - reset_at <= Duration::from_secs(2));
    assert!(server_let_go - reset_at <= Duration::from_secs(2));
}

/// An MTU of 576 on both ends of the link: large messages, binary and text, echo intact,
/// in segments of at most 536 bytes.
#[test]
#[ignore = "needs root and network namespaces: cargo xtask test netfaults"]
fn with_an_mtu_of_576_large_messages_echo_intact() {
    let Some(mut lab) = Lab::new("mtu") else {
        return;
    };
    let link = lab.link();
    lab.client
        .ip(&["link", "set", &link.client_if, "mtu", "576"]);
    lab.server_netns(&link)
        .ip(&["link", "set", &link.server_if, "mtu", "576"]);
    let server = lab.start_server(&link, &["--prefix", ""]);
    let url = server.url.clone();
    let client_netns = lab.client.name.clone();
    let mss = lab.run_client(move || async move {
        let socket = WebSocket::builder(&url).connect().unwrap();
        let seen = follow(&socket, Vec::new());
        until("open", &seen, Duration::from_secs(5), |s| {
            s.opened.len() == 1
        })
        .await;
        let mut rng = test_support::rng::Rng::new(576);
        let large = [rng.bytes(1 << 20), rng.bytes(64 << 10), rng.bytes(1000)];
        for bytes in &large {
            socket.send(bytes.clone()).unwrap();
        }
        let text: String = (0..100_000)
            .map(|n| char::from(b'a' + (n % 26) as u8))
            .collect();
        socket.send(text.as_str()).unwrap();
        until("the echoes", &seen, Duration::from_secs(10), |s| {
            s.binary.len() == 3 && s.replies.len() == 1
        })
        .await;
        let sockets = lab::exec_in(&client_netns, "ss", &["-tin"]);
        let seen = seen.borrow();
        assert!(seen.binary == large, "binary messages changed on the way");
        assert!(
            seen.replies[0].0 == text,
            "the text message changed on the way"
        );
        sockets
    });
    let mss: Vec<u32> = (mss.split_whitespace())
        .filter_map(|word| word.strip_prefix("mss:")?.parse().ok())
        .collect();
    eprintln!("MTU 576: segments of {mss:?} bytes");
    assert!(
        !mss.is_empty() && mss.iter().all(|&mss| mss <= 536),
        "{mss:?}"
    );
}

/// The black hole for the browser client: Chromium (through chromedriver and
/// wasm-bindgen-test-runner, all three in the client's namespace) runs
/// `client/tests/netfaults_browser.rs`, built by `cargo xtask test netfaults` with the two
/// servers' fixed addresses in it; the path to A is black-holed right after A's log shows it
/// answered the page's heartbeat. The page checks its own bound (1.5 s) and the failover;
/// here, server A lets the vanished page go within its idle timeout.
#[test]
#[ignore = "needs root and network namespaces: cargo xtask test netfaults"]
fn a_black_hole_is_found_by_the_browser_client_too() {
    let Some(wasm) = std::env::var_os("NETFAULT_BROWSER_WASM") else {
        assert!(
            std::env::var_os("REQUIRE_NETNS").is_none(),
            "NETFAULT_BROWSER_WASM is not set"
        );
        eprintln!("SKIPPED: the browser's page is built by `cargo xtask test netfaults`");
        return;
    };
    let Some(mut lab) = Lab::new("web") else {
        return;
    };
    let (to_a, to_b) = (lab.link(), lab.link());
    // The page comes from the runner's loopback origin: `--dev` lets it in.
    let with = |prefix: &'static str| {
        let mut args = vec!["--prefix", prefix, "--dev"];
        args.extend(SERVER_KEEPALIVE);
        args
    };
    // At debug, the server logs each reply: the harness's cue for the hole.
    let a = lab.start_server_on(&to_a, 8080, "info,wsecho::echo=debug", &with("A "));
    let _b = lab.start_server_on(&to_b, 8080, "info", &with("B "));
    assert_eq!(a.url, "ws://10.9.1.2:8080/", "the page's address for A");
    let mut runner = std::process::Command::new("ip");
    runner
        .args([
            "netns",
            "exec",
            &lab.client.name,
            "wasm-bindgen-test-runner",
        ])
        .arg(&wasm)
        .arg("--nocapture")
        .env("CHROMEDRIVER", test_support::browser::CHROMEDRIVER)
        .env("WASM_BINDGEN_TEST_TIMEOUT", "60")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let runner = runner.spawn().expect("wasm-bindgen-test-runner");
    let started = Instant::now();
    while !a.log.text().contains("Sending to client: A ping") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the page's heartbeat never reached A: {}",
            a.log.text()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let interface = &to_a.client_if;
    lab.client
        .iptables(&format!("-A INPUT -i {interface} -j DROP"));
    lab.client
        .iptables(&format!("-A OUTPUT -o {interface} -j DROP"));
    let holed_at = Instant::now();
    let mut server_let_go = None;
    while holed_at.elapsed() < Duration::from_secs(10) {
        if a.log.connections_closed() >= 1 {
            server_let_go = Some(holed_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let server_let_go = server_let_go.expect("server A lets the vanished page go");
    let output = runner.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let figure = stdout
        .lines()
        .find(|line| line.contains("browser: black hole"));
    eprintln!(
        "{}; server A let it go {server_let_go:?} after the hole (bound {SERVER_IDLE:?})",
        figure.unwrap_or("no figure from the page")
    );
    assert!(figure.is_some(), "{stdout}");
    assert!(server_let_go <= SERVER_IDLE + SLACK, "{server_let_go:?}");
}
