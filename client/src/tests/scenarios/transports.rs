//! The state-machine scenarios of `client/tests/transports.rs`, the suite every transport
//! passes, that left the browser: they run here on the simulated clock.

use super::*;

/// transports.rs `attempts_stop_at_the_maximum`.
#[test]
fn attempts_stop_at_the_maximum() {
    fresh();
    let policy = Reconnect::new().initial_delay(ms(50)).max_attempts(2);
    let (socket, log) = start(WebSocket::builder("ws://a").reconnect(policy));
    for _ in 0..5 {
        sim::fail();
        sim::advance(1_000);
    }
    assert_eq!(conns(), 3, "the first attempt and two more");
    let announced: Vec<u32> = (events(&log).iter())
        .filter_map(|e| match e {
            Event::Reconnecting(r) => Some(r.attempt),
            _ => None,
        })
        .collect();
    assert_eq!(announced, [1, 2]);
    assert_eq!(socket.state(), State::Closed);
    drop_and_check(socket);
}

/// transports.rs `what_is_still_queued_when_the_socket_ends_is_reported` and hostile.rs
/// `close_from_on_reconnect_cancels_the_attempt`.
#[test]
fn close_from_on_reconnect_cancels_the_attempt_and_reports_the_queue() {
    fresh();
    let policy = Reconnect::new().initial_delay(ms(50));
    let (builder, log) = logged(WebSocket::builder("ws://a").reconnect(policy));
    let socket = builder
        .on_reconnect(|socket, _| {
            assert_eq!(socket.state(), State::Reconnecting);
            socket.send("queued").unwrap();
            socket.close_with(4000, "from on_reconnect").unwrap();
            assert_eq!(socket.state(), State::Closed);
        })
        .connect()
        .unwrap();
    sim::open("");
    sim::fail();
    sim::advance(1_000);
    assert_eq!(conns(), 1, "no attempt after the close");
    let all = events(&log);
    let n = all.len();
    assert_eq!(
        all[n - 2],
        Event::Close(application(4000, "from on_reconnect"))
    );
    let unsent = crate::Unsent {
        message: text("queued"),
        error: crate::Error::NotOpen(State::Closed),
    };
    assert_eq!(all[n - 1], Event::Unsent(unsent));
    drop_and_check(socket);
}
