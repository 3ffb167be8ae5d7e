//! `cargo xtask bench`'s native transport rows: this crate natively against tokio-tungstenite
//! used directly, on the same runtime and the same server (a pure echo, named in
//! `ECHO_SERVER_URL` at run time), with the workloads of scenario 5 (`speed.rs`), and 1 MiB
//! binary messages beside 64 KiB ones (scenario 8's native rows). Every reply is checked. It prints `speed:` lines that the benchmark reads; it is ignored by default and
//! the benchmark runs it with `--include-ignored` in release.

#![cfg(not(target_arch = "wasm32"))]

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Wire;
use wasm_websocket::{Message, WebSocket};

const ROUND_TRIPS: u32 = 5_000;
const TEXT_SIZE: usize = 32;
const BINARY_COUNT: u32 = 400;
const BINARY_SIZE: usize = 64 * 1024;
/// The large messages: `LARGE_COUNT` of `LARGE_SIZE` bytes each way, one at a time (as in
/// the browser's rows; the server's limit is one 1 MiB message, and eight in flight outgrow
/// its write buffer), cycling through `LARGE_DISTINCT` different ones.
const LARGE_COUNT: u32 = 200;
const LARGE_SIZE: usize = 1024 * 1024;
const LARGE_DISTINCT: u32 = 16;
const IN_FLIGHT: usize = 8;
const RUNS: usize = 7;

fn server_url() -> String {
    std::env::var("ECHO_SERVER_URL").expect("ECHO_SERVER_URL names a pure echo server")
}

fn text(n: u32) -> String {
    format!("{n:0TEXT_SIZE$}")
}

fn binary(n: u32, size: usize) -> Vec<u8> {
    (0..size).map(|i| (n as usize + i) as u8).collect()
}

async fn ours_round_trips() -> f64 {
    let socket = WebSocket::open(&server_url()).await.unwrap();
    let mut messages = socket.messages();
    let start = Instant::now();
    for n in 0..ROUND_TRIPS {
        let sent = text(n);
        socket.send(&sent).unwrap();
        let reply = messages.next().await.expect("a reply");
        assert!(
            matches!(reply, Message::Text(t) if t == sent),
            "wrong reply {n}"
        );
    }
    let elapsed = start.elapsed().as_secs_f64();
    socket.close().unwrap();
    // Outside the measure: the close handshake completes before the next run, and before the
    // runtime ends after the last (which cut it short: the server logged a reset, 1002).
    socket.closed().await;
    elapsed
}

async fn tungstenite_round_trips() -> f64 {
    let (mut ws, _) = tokio_tungstenite::connect_async(server_url())
        .await
        .unwrap();
    let start = Instant::now();
    for n in 0..ROUND_TRIPS {
        let sent = text(n);
        ws.send(Wire::text(sent.clone())).await.unwrap();
        let reply = ws.next().await.expect("a reply").unwrap();
        assert!(
            matches!(reply, Wire::Text(t) if t.as_str() == sent),
            "wrong reply {n}"
        );
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = ws.close(None).await;
    elapsed
}

/// `count` binary round trips, `in_flight` at a time, the `n`th message `sent[n % len]`.
async fn ours_binary(sent: &[Vec<u8>], count: usize, in_flight: usize) -> f64 {
    let socket = WebSocket::open(&server_url()).await.unwrap();
    let mut messages = socket.messages();
    let start = Instant::now();
    let mut next = 0;
    for received in 0..count {
        while next < count && next - received < in_flight {
            socket.send(&sent[next % sent.len()]).unwrap();
            next += 1;
        }
        let reply = messages.next().await.expect("a reply");
        let expected = &sent[received % sent.len()];
        assert!(matches!(&reply, Message::Binary(d) if d == expected));
    }
    let elapsed = start.elapsed().as_secs_f64();
    socket.close().unwrap();
    // Outside the measure: the close handshake completes before the next run, and before the
    // runtime ends after the last (which cut it short: the server logged a reset, 1002).
    socket.closed().await;
    elapsed
}

async fn tungstenite_binary(sent: &[Vec<u8>], count: usize, in_flight: usize) -> f64 {
    let (ws, _) = tokio_tungstenite::connect_async(server_url())
        .await
        .unwrap();
    let (mut sink, mut stream) = ws.split();
    let start = Instant::now();
    let mut next = 0;
    for received in 0..count {
        while next < count && next - received < in_flight {
            sink.feed(Wire::binary(sent[next % sent.len()].clone()))
                .await
                .unwrap();
            next += 1;
        }
        sink.flush().await.unwrap();
        let reply = stream.next().await.expect("a reply").unwrap();
        let expected = &sent[received % sent.len()];
        assert!(matches!(&reply, Wire::Binary(d) if d[..] == expected[..]));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = sink.close().await;
    elapsed
}

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "a benchmark: `cargo xtask bench` runs it with --include-ignored"]
async fn native_client_against_tokio_tungstenite() {
    tokio::task::LocalSet::new().run_until(measure()).await
}

async fn measure() {
    let (mut direct, mut ours) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        // Alternate which goes first.
        if run % 2 == 1 {
            ours.push(ours_round_trips().await);
        }
        direct.push(tungstenite_round_trips().await);
        if run % 2 == 0 {
            ours.push(ours_round_trips().await);
        }
    }
    let per_second = |s: f64| f64::from(ROUND_TRIPS) / s;
    let (direct, ours) = (per_second(median(direct)), per_second(median(ours)));
    println!("speed: round_trips tungstenite={direct:.0} ours={ours:.0}");

    let sent: Vec<Vec<u8>> = (0..BINARY_COUNT).map(|n| binary(n, BINARY_SIZE)).collect();
    let (direct, ours) = binary_runs(&sent, BINARY_COUNT, BINARY_SIZE, IN_FLIGHT).await;
    println!("speed: binary_mb_per_s tungstenite={direct:.1} ours={ours:.1}");

    let sent: Vec<Vec<u8>> = (0..LARGE_DISTINCT).map(|n| binary(n, LARGE_SIZE)).collect();
    let (direct, ours) = binary_runs(&sent, LARGE_COUNT, LARGE_SIZE, 1).await;
    println!("speed: binary_1m_mb_per_s tungstenite={direct:.1} ours={ours:.1}");
}

/// MB/s both ways of `count` messages of `size` bytes (from `sent`), `in_flight` at a time,
/// tokio-tungstenite's and ours: the medians of [`RUNS`] runs each, alternating which goes
/// first.
async fn binary_runs(sent: &[Vec<u8>], count: u32, size: usize, in_flight: usize) -> (f64, f64) {
    let (mut direct, mut ours) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        if run % 2 == 1 {
            ours.push(ours_binary(sent, count as usize, in_flight).await);
        }
        direct.push(tungstenite_binary(sent, count as usize, in_flight).await);
        if run % 2 == 0 {
            ours.push(ours_binary(sent, count as usize, in_flight).await);
        }
    }
    let megabytes = 2.0 * f64::from(count) * size as f64 / 1e6;
    (megabytes / median(direct), megabytes / median(ours))
}
