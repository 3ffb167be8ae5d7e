//! The same random frame streams, sent to our server and to plain tokio-tungstenite echoing
//! with the same limits: the client must read the same frames from both (Close frames by
//! their code). Our stack puts `ReadAhead` and the UTF-8 guard under tungstenite and fails
//! bad UTF-8 mid-frame; none of that may change what a client sees. This is how faults 1 and 3
//! of issue 13 were found.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::{Server, client_frame, opened, server_frames};
use test_support::rng::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Small, so that the random streams reach it.
const MAX_SIZE: usize = 64;

/// Plain tokio-tungstenite: the seed's echo, and a Close with the error's code.
async fn reference(listener: TcpListener) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_SIZE))
        .max_frame_size(Some(MAX_SIZE));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let Ok(mut socket) =
                tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await
            else {
                return;
            };
            while let Some(received) = socket.next().await {
                let reply = match received {
                    Ok(Message::Text(text)) => {
                        Message::Text(Utf8Bytes::from(format!("Received:  {text}")))
                    }
                    Ok(Message::Binary(data)) => Message::Binary(data),
                    Ok(_) => continue,
                    Err(error) => {
                        let code = match error {
                            Error::Protocol(_) => CloseCode::Protocol,
                            Error::Utf8(_) => CloseCode::Invalid,
                            Error::Capacity(CapacityError::MessageTooLong { .. }) => {
                                CloseCode::Size
                            }
                            _ => return,
                        };
                        let reason = Utf8Bytes::default();
                        let close = Message::Close(Some(CloseFrame { code, reason }));
                        let _ = socket.send(close).await;
                        return;
                    }
                };
                if socket.send(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Random frame streams, drawn from the tests' generator.
struct Streams(Rng);

impl Streams {
    /// Text that is valid UTF-8, with characters of one to four bytes, maybe cut anywhere.
    fn text(&mut self, max: usize) -> Vec<u8> {
        let alphabet = ["a", "é", "€", "🦀", " ", "ñ"];
        let mut text = Vec::new();
        while text.len() < max {
            text.extend_from_slice(alphabet[self.0.below(alphabet.len())].as_bytes());
        }
        text.truncate(self.0.below(max + 1));
        text
    }

    /// Bytes that may be anything.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.0.below(max + 1);
        self.0.bytes(len)
    }

    /// One frame: mostly well-formed, sometimes broken in one of the ways a header or a
    /// payload can be.
    fn frame(&mut self) -> Vec<u8> {
        let fin = if self.0.chance(75) { 0x80 } else { 0 };
        let (opcode, payload) = match self.0.below(10) {
            0..=2 => (0x1, self.text(40)),
            3 => (0x1, self.bytes(20)),
            4 => (0x2, self.bytes(40)),
            5 => (0x0, self.text(30)),
            6 => (0x0, self.bytes(10)),
            7 => (0x9, self.text(20)),
            8 => (0xa, self.bytes(10)),
            _ => (self.0.below(16) as u8, self.text(80)),
        };
        let fin = if opcode >= 0x8 && self.0.chance(90) {
            0x80
        } else {
            fin
        };
        let rsv = if self.0.chance(5) { 0x40 } else { 0 };
        let mut frame = client_frame(fin | rsv | opcode, &payload);
        if self.0.chance(3) {
            // Unmasked: the mask bit off, the mask key gone.
            frame[1] &= 0x7f;
            frame.drain(2..6);
        }
        frame
    }

    /// A stream of frames, ending with the client's Close so that every case ends.
    fn stream(&mut self) -> Vec<u8> {
        let mut stream = Vec::new();
        for _ in 0..1 + self.0.below(6) {
            stream.extend(self.frame());
        }
        stream.extend(client_frame(0x88, &1000u16.to_be_bytes()));
        stream
    }
}

/// What a client that sends `stream` in one write reads back: the frames, Close frames by
/// their code alone.
async fn answer(addr: std::net::SocketAddr, stream: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut socket: TcpStream = opened(addr).await;
    socket.write_all(stream).await.unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0; 4096];
    let read = async {
        while let Ok(n @ 1..) = socket.read(&mut buffer).await {
            seen.extend_from_slice(&buffer[..n]);
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), read).await;
    server_frames(&seen)
        .into_iter()
        .map(|(opcode, payload)| match opcode {
            0x8 => (opcode, payload[..payload.len().min(2)].to_vec()),
            _ => (opcode, payload),
        })
        .collect()
}

#[tokio::test]
async fn random_frame_streams_get_the_same_answers_as_from_plain_tokio_tungstenite() {
    let ours = Server::start(&["--max-message-size", &MAX_SIZE.to_string()]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain = listener.local_addr().unwrap();
    tokio::spawn(reference(listener));
    let seed = 0x5eed_1313;
    let mut streams = Streams(Rng::new(seed));
    let mut codes = std::collections::BTreeMap::<u16, usize>::new();
    for case in 0..2_000 {
        let stream = streams.stream();
        let (expected, got) = tokio::join!(answer(plain, &stream), answer(ours.addr, &stream));
        assert_eq!(
            got, expected,
            "seed {seed:#x}, case {case}: the stream {stream:02x?}"
        );
        if let Some((0x8, code)) = got.last() {
            *codes
                .entry(support::close_code(code).unwrap_or(0))
                .or_default() += 1;
        }
    }
    // The streams reach every way a connection ends.
    eprintln!("close codes: {codes:?}");
    for code in [1000, 1002, 1007, 1009] {
        let seen = codes.get(&code).is_some_and(|n| *n > 10);
        assert!(seen, "seed {seed:#x}: {codes:?}");
    }
}
