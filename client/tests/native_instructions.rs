//! The native rows' instruction counts: one side of `native_speed.rs`'s binary workload
//! (`NATIVE_SIDE=ours` or `tungstenite`, tokio-tungstenite used directly), `NATIVE_COUNT`
//! round trips of `NATIVE_SIZE` bytes with 8 in flight, every reply checked, for
//! `valgrind --tool=callgrind` to count. Run it twice, with a count and twice that count: the
//! difference over the extra messages is the instructions a message costs, without start-up,
//! the handshake and the setup. The messages cycle through 16 made before the clock starts, so
//! the difference holds no making of data. Ignored by default:
//!
//! ```sh
//! NATIVE_SIDE=ours NATIVE_COUNT=200 NATIVE_SIZE=65536 ECHO_SERVER_URL=ws://127.0.0.1:PORT/ \
//!   valgrind --tool=callgrind target/release/deps/native_instructions-HASH --include-ignored
//! ```

#![cfg(not(target_arch = "wasm32"))]

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Wire;
use wasm_websocket::{Message, WebSocket};

const IN_FLIGHT: usize = 8;

fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn number(name: &str) -> usize {
    setting(name).parse().expect("a number")
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "for callgrind: `cargo xtask bench` or the command in the header"]
async fn one_side_of_the_binary_workload() {
    let (count, size, url) = (
        number("NATIVE_COUNT"),
        number("NATIVE_SIZE"),
        setting("ECHO_SERVER_URL"),
    );
    let messages: Vec<Vec<u8>> = (0..16)
        .map(|k| (0..size).map(|i| (k + i) as u8).collect())
        .collect();
    let sent = |n: usize| &messages[n % messages.len()];
    let side = setting("NATIVE_SIDE");
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            match side.as_str() {
                "ours" => {
                    let socket = WebSocket::open(url).await.unwrap();
                    let mut replies = socket.messages();
                    let mut next = 0;
                    for received in 0..count {
                        while next < count && next - received < IN_FLIGHT {
                            socket.send(sent(next)).unwrap();
                            next += 1;
                        }
                        let reply = replies.next().await.expect("a reply");
                        assert!(
                            matches!(&reply, Message::Binary(d) if d[..] == sent(received)[..])
                        );
                    }
                    socket.close().unwrap();
                    socket.closed().await;
                }
                "tungstenite" => {
                    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
                    let (mut sink, mut stream) = ws.split();
                    let mut next = 0;
                    for received in 0..count {
                        while next < count && next - received < IN_FLIGHT {
                            sink.feed(Wire::binary(sent(next).clone())).await.unwrap();
                            next += 1;
                        }
                        sink.flush().await.unwrap();
                        let reply = stream.next().await.expect("a reply").unwrap();
                        assert!(matches!(&reply, Wire::Binary(d) if d[..] == sent(received)[..]));
                    }
                    let _ = sink.close().await;
                }
                other => panic!("NATIVE_SIDE is ours or tungstenite, not {other}"),
            }
        })
        .await
}
