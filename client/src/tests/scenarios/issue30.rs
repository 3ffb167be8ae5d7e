//! The bugs of issue 30, each with the test that failed before its fix.

use super::*;
use crate::Sent;

/// A socket whose queue drains under a high-water mark of 100: a message of 200 and one of 5
/// queued while connecting; once open, the first goes out, over the mark, and the second
/// waits.
fn draining_under_the_mark() -> WebSocket {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect())
        .high_water_mark(100)
        .connect()
        .unwrap();
    assert_eq!(socket.send("x".repeat(200)), Ok(Sent::Queued));
    assert_eq!(socket.send("small"), Ok(Sent::Queued));
    assert!(sim::open(""));
    assert_eq!(sent(0).len(), 1);
    assert_eq!(socket.queued(), 1);
    socket
}

/// Bug: with the queue draining under the high-water mark, a send after the buffer emptied
/// was `Queued`, and the same call's pump then drained it: `queued()` said 0 and the
/// connection had the message. The queue is now drained first, so the message goes out at
/// once when the connection takes it, and `Sent` says which it was.
#[test]
fn sent_says_now_for_a_message_the_drain_hands_over_in_the_same_call() {
    let socket = draining_under_the_mark();
    sim::flush();
    assert_eq!(socket.send("c"), Ok(Sent::Now));
    assert_eq!(socket.queued(), 0);
    assert_eq!(sent(0)[1..], [Message::from("small"), Message::from("c")]);
    // The queue is empty: a send goes out at once, as on a socket without reconnection.
    assert_eq!(socket.send("d"), Ok(Sent::Now));
    drop_and_check(socket);
}

/// While the queue still holds messages the connection will not take yet (the buffer over
/// the mark), a send joins them: `Queued`, and `queued()` counts it.
#[test]
fn sent_says_queued_while_earlier_messages_wait_for_the_mark() {
    let socket = draining_under_the_mark();
    assert_eq!(socket.send("c"), Ok(Sent::Queued));
    assert_eq!(socket.queued(), 2);
    sim::flush();
    sim::advance(50);
    assert_eq!(socket.queued(), 0);
    let tail: Vec<Message> = sent(0)[1..].to_vec();
    assert_eq!(tail, [Message::from("small"), Message::from("c")]);
    drop_and_check(socket);
}
