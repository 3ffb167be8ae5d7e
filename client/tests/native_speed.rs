//! `cargo xtask bench`'s native transport rows: this crate natively against tokio-tungstenite
//! used directly, on the same runtime and the same server (a pure echo, named in
//! `ECHO_SERVER_URL` at run time), with the workloads of scenario 5 (`speed.rs`). Every reply
//! is checked. It prints `speed:` lines that the benchmark reads; it is ignored by default and
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
const IN_FLIGHT: usize = 8;
const RUNS: usize = 7;

fn server_url() -> String {
    std::env::var("ECHO_SERVER_URL").expect("ECHO_SERVER_URL names a pure echo server")
}

fn text(n: u32) -> String {
    format!("{n:0TEXT_SIZE$}")
}

fn binary(n: u32) -> Vec<u8> {
    (0..BINARY_SIZE).map(|i| (n as usize + i) as u8).collect()
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

async fn ours_binary(sent: &[Vec<u8>]) -> f64 {
    let socket = WebSocket::open(&server_url()).await.unwrap();
    let mut messages = socket.messages();
    let start = Instant::now();
    let mut next = 0;
    for received in 0..sent.len() {
        while next < sent.len() && next - received < IN_FLIGHT {
            socket.send(&sent[next]).unwrap();
            next += 1;
        }
        let reply = messages.next().await.expect("a reply");
        assert!(matches!(&reply, Message::Binary(d) if *d == sent[received]));
    }
    let elapsed = start.elapsed().as_secs_f64();
    socket.close().unwrap();
    elapsed
}

async fn tungstenite_binary(sent: &[Vec<u8>]) -> f64 {
    let (ws, _) = tokio_tungstenite::connect_async(server_url())
        .await
        .unwrap();
    let (mut sink, mut stream) = ws.split();
    let start = Instant::now();
    let mut next = 0;
    for received in 0..sent.len() {
        while next < sent.len() && next - received < IN_FLIGHT {
            sink.feed(Wire::binary(sent[next].clone())).await.unwrap();
            next += 1;
        }
        sink.flush().await.unwrap();
        let reply = stream.next().await.expect("a reply").unwrap();
        assert!(matches!(&reply, Wire::Binary(d) if d[..] == sent[received][..]));
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

    let sent: Vec<Vec<u8>> = (0..BINARY_COUNT).map(binary).collect();
    let (mut direct, mut ours) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        if run % 2 == 1 {
            ours.push(ours_binary(&sent).await);
        }
        direct.push(tungstenite_binary(&sent).await);
        if run % 2 == 0 {
            ours.push(ours_binary(&sent).await);
        }
    }
    let megabytes = 2.0 * f64::from(BINARY_COUNT) * BINARY_SIZE as f64 / 1e6;
    let (direct, ours) = (megabytes / median(direct), megabytes / median(ours));
    println!("speed: binary_mb_per_s tungstenite={direct:.1} ours={ours:.1}");
}
