//! The echo behaviour, over real sockets against the real binary.

mod support;

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;

use support::{Server, assert_echoed, eventually};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn text_gets_the_seed_reply() {
    let server = Server::start(&[]);
    let mut socket = server.connect().await;
    assert_echoed(&mut socket, "Hello, world!").await;
}

#[tokio::test]
async fn empty_prefix_is_a_pure_echo() {
    let server = Server::start(&["--prefix", ""]);
    let mut socket = server.connect().await;
    socket.send(Message::text("ñandú 🦀")).await.unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap(),
        Message::text("ñandú 🦀")
    );
}

#[tokio::test]
async fn binary_is_echoed_unchanged() {
    let server = Server::start(&[]);
    let mut socket = server.connect().await;
    let data: Vec<u8> = (0..=255).cycle().take(70_000).collect();
    socket.send(Message::binary(data.clone())).await.unwrap();
    assert_eq!(socket.next().await.unwrap().unwrap(), Message::binary(data));
}

#[tokio::test]
async fn ping_gets_pong_with_its_payload() {
    let server = Server::start(&[]);
    let mut socket = server.connect().await;
    socket
        .send(Message::Ping("are you there".into()))
        .await
        .unwrap();
    let answer = socket.next().await.unwrap().unwrap();
    assert_eq!(answer, Message::Pong("are you there".into()));
}

#[tokio::test]
async fn close_is_answered_with_the_clients_code() {
    let server = Server::start(&[]);
    let mut socket = server.connect().await;
    let frame = CloseFrame {
        code: CloseCode::Library(4321),
        reason: "done".into(),
    };
    socket.close(Some(frame)).await.unwrap();
    let answer = socket.next().await.unwrap().unwrap();
    let Message::Close(Some(frame)) = answer else {
        panic!("expected a Close frame, got {answer:?}");
    };
    assert_eq!(frame.code, CloseCode::Library(4321));
    // The server then ends the connection: the handshake is complete.
    assert!(socket.next().await.is_none());
}

#[tokio::test]
async fn hundred_concurrent_clients_each_get_only_their_own_replies() {
    let server = Server::start(&[]);
    let clients = (0..100).map(|client| {
        let url = server.url();
        tokio::spawn(async move {
            let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            for n in 0..20 {
                let text = format!("client {client} message {n}");
                assert_echoed(&mut socket, &text).await;
            }
            socket.close(None).await.unwrap();
        })
    });
    for client in futures_util::future::join_all(clients).await {
        client.unwrap();
    }
}

#[tokio::test]
async fn invalid_utf8_gets_close_1007() {
    let server = Server::start(&[]);
    let mut socket = server.connect().await;
    // A text frame whose payload is not UTF-8; tungstenite sends it as given.
    let frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
        vec![0xff, 0xfe],
        tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
            tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    socket.send(Message::Frame(frame)).await.unwrap();
    let answer = socket.next().await.unwrap().unwrap();
    let Message::Close(Some(frame)) = answer else {
        panic!("expected a Close frame, got {answer:?}");
    };
    assert_eq!(frame.code, CloseCode::Invalid);
}

#[tokio::test]
async fn controls_are_plain_text_unless_switched_on() {
    let server = Server::start(&[]);
    let mut socket = server.connect().await;
    assert_echoed(&mut socket, "!close 4001 bye").await;
}

#[tokio::test]
async fn close_control_closes_with_the_code_and_reason() {
    let server = Server::start(&["--test-controls"]);
    let mut socket = server.connect().await;
    socket
        .send(Message::text("!close 4001 logged out"))
        .await
        .unwrap();
    let answer = socket.next().await.unwrap().unwrap();
    let Message::Close(Some(frame)) = answer else {
        panic!("expected a Close frame, got {answer:?}");
    };
    assert_eq!(frame.code, CloseCode::Library(4001));
    assert_eq!(frame.reason.as_str(), "logged out");
}

#[tokio::test]
async fn outage_control_drops_everyone_and_refuses_handshakes_for_a_while() {
    let server = Server::start(&["--test-controls"]);
    let mut bystander = server.connect().await;
    let mut socket = server.connect().await;
    socket.send(Message::text("!outage 500")).await.unwrap();
    // Both connections end without a Close frame.
    for connection in [&mut socket, &mut bystander] {
        assert_dropped(connection).await;
    }
    let refused = tokio_tungstenite::connect_async(server.url())
        .await
        .unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP error, got {refused:?}");
    };
    assert_eq!(response.status(), 503);
    // And accepted again once the outage is over.
    let url = server.url();
    let (mut socket, _) = eventually(Duration::from_secs(5), "the outage ends", || {
        let url = url.clone();
        async move { tokio_tungstenite::connect_async(url).await.ok() }
    })
    .await;
    assert_echoed(&mut socket, "back").await;
}

/// Fault 6 of issue 13: `!outage` took any duration, so `!outage 18446744073709551615` took
/// the server down for good. Past a minute it is not a control: it is echoed as usual.
#[tokio::test]
async fn an_outage_longer_than_a_minute_is_not_obeyed() {
    let server = Server::start(&["--test-controls"]);
    let mut socket = server.connect().await;
    for text in ["!outage 18446744073709551615", "!outage 60001"] {
        assert_echoed(&mut socket, text).await;
    }
    let mut another = server.connect().await;
    assert_echoed(&mut another, "up").await;
}

/// `!stall MILLIS`: a half-open peer for clients' heartbeats. Nothing is answered, the
/// connection stays open for that long, then it is dropped; other connections go on.
#[tokio::test]
async fn stall_control_keeps_the_connection_but_answers_nothing() {
    let server = Server::start(&["--test-controls"]);
    let mut socket = server.connect().await;
    socket.send(Message::text("!stall 600")).await.unwrap();
    socket.send(Message::text("anyone?")).await.unwrap();
    let silent = tokio::time::timeout(Duration::from_millis(300), socket.next()).await;
    assert!(silent.is_err(), "answered during the stall: {silent:?}");
    let mut another = server.connect().await;
    assert_echoed(&mut another, "up").await;
    assert_dropped(&mut socket).await;
}

/// A handshake on `/silent` is never answered, with test controls on: for clients' connect
/// timeouts. Without them it is a path with no WebSocket, as any other.
#[tokio::test]
async fn silent_path_never_answers_the_handshake() {
    let server = Server::start(&["--test-controls"]);
    let url = format!("{}silent", server.url());
    let hung = tokio::time::timeout(
        Duration::from_millis(500),
        tokio_tungstenite::connect_async(url),
    )
    .await;
    assert!(hung.is_err(), "the handshake was answered: {hung:?}");

    let server = Server::start(&[]);
    let url = format!("{}silent", server.url());
    let refused = tokio_tungstenite::connect_async(url).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP error, got {refused:?}");
    };
    assert_eq!(response.status(), 404);
}

/// Checks that the server drops `connection` within 5 s, without a Close frame or any other
/// message first.
async fn assert_dropped<S>(connection: &mut S)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let ended = tokio::time::timeout(Duration::from_secs(5), connection.next()).await;
    match ended.expect("the connection is dropped within 5 s") {
        None | Some(Err(_)) => {}
        Some(Ok(message)) => panic!("expected the connection to drop, got {message:?}"),
    }
}

/// A connection that passed a large message is renewed once silent for 100 ms (its
/// tungstenite socket made afresh, issue 24), never in the middle of a message: a message
/// whose first fragment arrived before that silence and its last after it is whole, and the
/// renewed connection echoes, answers pings and takes fragments as before.
#[tokio::test]
async fn a_connection_renewed_after_a_large_message_loses_nothing() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    let server = Server::start(&["--prefix", ""]);
    let mut socket = server.connect().await;
    let large: String = ('a'..='z').cycle().take(100_000).collect();
    let fragment = |text: &str, opcode, last| {
        Message::Frame(Frame::message(text.to_owned(), OpCode::Data(opcode), last))
    };
    let (first, rest) = large.split_at(60_000);
    for _ in 0..2 {
        socket.send(Message::text(large.clone())).await.unwrap();
        assert_eq!(
            socket.next().await.unwrap().unwrap(),
            Message::text(&*large)
        );
        // Cut off across the silence that lets the server renew the connection.
        socket
            .send(fragment(first, Data::Text, false))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        socket
            .send(fragment(rest, Data::Continue, true))
            .await
            .unwrap();
        assert_eq!(
            socket.next().await.unwrap().unwrap(),
            Message::text(&*large)
        );
        // Silent now, between messages: renewed.
        tokio::time::sleep(Duration::from_millis(500)).await;
        socket
            .send(Message::Ping(b"after".to_vec().into()))
            .await
            .unwrap();
        let pong = socket.next().await.unwrap().unwrap();
        assert_eq!(pong, Message::Pong(b"after".to_vec().into()));
        socket.send(Message::text("small")).await.unwrap();
        assert_eq!(
            socket.next().await.unwrap().unwrap(),
            Message::text("small")
        );
    }
}

/// Control frames sent right behind messages, in the same write as them (one TCP segment):
/// each is answered, though the peer then sends nothing more and waits. The echo loop asks
/// the socket alone for a message already received when the UTF-8 guard's count of the
/// message-giving frames it handed up equals the messages it got (`holds_no_message`); a
/// frame left in tungstenite's buffer at that moment would wait for a readiness that never
/// comes. Cases: a ping behind one message, behind a batch of messages, behind a message
/// whose fragments have a ping between them; a Close behind a message; and a message and a
/// ping in the handshake's own write (tungstenite gets them as bytes read before it), then a
/// batch.
#[tokio::test]
async fn a_control_frame_right_behind_messages_in_one_write_is_answered() {
    use support::{client_frame, frames_of, handshake_with, opened, read_frames};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = Server::start(&[]);
    let echo = |text: &str| (0x81u8, format!("Received:  {text}").into_bytes());

    // A ping behind one message, then behind a batch of three.
    let mut stream = opened(server.addr).await;
    let mut bytes = client_frame(0x81, b"one");
    bytes.extend(client_frame(0x89, b"p1"));
    stream.write_all(&bytes).await.unwrap();
    assert_eq!(
        read_frames(&mut stream, 2).await,
        [echo("one"), (0x8a, b"p1".to_vec())]
    );
    let mut bytes = Vec::new();
    for text in ["a", "b", "c"] {
        bytes.extend(client_frame(0x81, text.as_bytes()));
    }
    bytes.extend(client_frame(0x89, b"p2"));
    stream.write_all(&bytes).await.unwrap();
    assert_eq!(
        read_frames(&mut stream, 4).await,
        [echo("a"), echo("b"), echo("c"), (0x8a, b"p2".to_vec())]
    );
    // A fragmented message with a ping between its fragments, then a ping behind it.
    let mut bytes = client_frame(0x01, b"fr");
    bytes.extend(client_frame(0x89, b"p3"));
    bytes.extend(client_frame(0x80, b"ag"));
    bytes.extend(client_frame(0x89, b"p4"));
    stream.write_all(&bytes).await.unwrap();
    let frames = read_frames(&mut stream, 3).await;
    assert!(frames.contains(&echo("frag")), "{frames:?}");
    assert!(frames.contains(&(0x8a, b"p3".to_vec())), "{frames:?}");
    assert!(frames.contains(&(0x8a, b"p4".to_vec())), "{frames:?}");
    assert_eq!(frames.len(), 3, "{frames:?}");

    // A Close behind a message: the reply, then the Close's answer.
    let mut bytes = client_frame(0x81, b"bye");
    bytes.extend(client_frame(0x88, &1000u16.to_be_bytes()));
    stream.write_all(&bytes).await.unwrap();
    let frames = read_frames(&mut stream, 2).await;
    assert_eq!(frames.first(), Some(&echo("bye")), "{frames:?}");
    assert_eq!(frames.get(1).map(|frame| frame.0), Some(0x88), "{frames:?}");

    // A message and a ping in the handshake's own write.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut bytes = handshake_with("");
    bytes.extend(client_frame(0x81, b"early"));
    bytes.extend(client_frame(0x89, b"p5"));
    stream.write_all(&bytes).await.unwrap();
    let mut answer = Vec::new();
    let read = async {
        loop {
            let mut buf = [0; 4096];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "{answer:?}");
            answer.extend_from_slice(&buf[..n]);
            if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                if frames_of(&answer[end + 4..]).len() >= 2 {
                    return frames_of(&answer[end + 4..]);
                }
            }
        }
    };
    let frames = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the reply and the pong within 10 s");
    assert_eq!(frames, [echo("early"), (0x8a, b"p5".to_vec())]);
    // Then a batch: were the frames read with the handshake not counted, the count would be
    // behind by two, and would match with two frames still in tungstenite's buffer.
    let mut bytes = client_frame(0x82, &[1]);
    bytes.extend(client_frame(0x82, &[2]));
    bytes.extend(client_frame(0x89, b"p6"));
    stream.write_all(&bytes).await.unwrap();
    assert_eq!(
        read_frames(&mut stream, 3).await,
        [(0x82, vec![1]), (0x82, vec![2]), (0x8a, b"p6".to_vec())]
    );
}
