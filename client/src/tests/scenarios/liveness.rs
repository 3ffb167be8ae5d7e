//! `client/tests/hostile_liveness.rs`, natively: hostile and careless uses of the liveness
//! features (connect timeout, heartbeat, close causes, `should_reconnect`, `reconnect_now`,
//! `follow_network` and the URL providers). The browser's `online`, `offline` and
//! `visibilitychange` are the core's inputs they become (`network`); that the browser's events
//! reach them is the browser suites' (`browser.rs`, `worker.rs`). Same names, same
//! assertions; the browser keeps what only a browser shows (see its header).

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;

use super::*;
use crate::{Heartbeat, WeakWebSocket};

/// An async URL provider that takes `ms` to answer `ws://a`, counting its calls.
fn slow_provider(
    ms: u64,
    asked: Rc<Cell<u32>>,
) -> impl FnMut() -> Pin<Box<dyn Future<Output = String>>> {
    move || {
        asked.set(asked.get() + 1);
        Box::pin(async move {
            sim::sleep(Duration::from_millis(ms)).await;
            "ws://a".to_owned()
        })
    }
}

/// A socket that follows the network and reconnects, except after close code 4002.
fn final_code_4002() -> WebSocket {
    WebSocket::builder("ws://a")
        .reconnect(quick_reconnect().final_code(4002))
        .follow_network()
        .connect()
        .unwrap()
}

/// A socket that follows the network, whose server dropped it: its next attempt (due in
/// 10 ms) waits for a URL that `slow_provider(ms, asked)` takes `ms` to give.
fn waiting_for_a_url(ms: u64, asked: &Rc<Cell<u32>>) -> (WebSocket, Events) {
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect().initial_delay(super::ms(10)))
        .url_provider_async(slow_provider(ms, asked.clone()))
        .follow_network()
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    dropped_by_the_server(&socket, &mut events);
    (socket, events)
}

/// Regression: `should_reconnect` "decides after each close whether to reconnect": a close
/// for `offline` is one, and `false` must end the socket.
#[test]
fn should_reconnect_false_ends_an_offline_close_too() {
    fresh();
    let asked = Rc::new(Cell::new(0));
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect())
        .should_reconnect({
            let asked = asked.clone();
            move |_| {
                asked.set(asked.get() + 1);
                false
            }
        })
        .follow_network()
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    network(&socket, Network::Offline);
    let offline = next_close(&mut events);
    assert_eq!(offline.cause, CloseCause::Offline);
    assert_eq!(socket.state(), State::Closed);
    network(&socket, Network::Online);
    sim::advance(500);
    assert_eq!(
        asked.get(),
        1,
        "should_reconnect was not asked about the offline close"
    );
    assert_eq!(rest(&mut events), [], "after online");
    assert_eq!(conns(), 1);
    drop_and_check(socket);
}

/// Regression: "No attempt is made until it is back online": an attempt whose async URL was
/// being fetched when the browser went offline was opened anyway when the URL came.
#[test]
fn offline_while_the_async_url_is_pending_holds_the_attempt() {
    fresh();
    let asked = Rc::new(Cell::new(0));
    let (socket, mut events) = waiting_for_a_url(400, &asked);
    sim::advance(100);
    assert_eq!(asked.get(), 1, "the provider is being awaited");
    network(&socket, Network::Offline);
    sim::advance(800);
    assert_eq!(socket.state(), State::Reconnecting, "while offline");
    assert_eq!(waiting(&mut events), [], "while offline");
    assert_eq!(conns(), 1, "an attempt while offline");
    // Online: the attempt goes ahead.
    network(&socket, Network::Online);
    sim::advance(1_000);
    assert_eq!(conns(), 2);
    drop(events);
    drop_and_check(socket);
}

/// Regression: a page shown again checks the connection at once; it must not give a ping that
/// is already overdue a fresh deadline: a user switching tabs now and then kept a dead
/// connection "alive" for as long as they did.
#[test]
fn visibility_changes_do_not_postpone_a_lost_heartbeat() {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .heartbeat(Heartbeat::new(ms(200), ms(400)))
        .follow_network()
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    let open_at = sim::now();
    // The server stalls: nothing answers the pings. Shown again every 150 ms.
    let mut lost = None;
    for _ in 0..20 {
        sim::advance(150);
        network(&socket, Network::Visible);
        if let Some(Event::Close(close)) = waiting(&mut events).into_iter().next() {
            lost = Some((sim::now(), close));
            break;
        }
    }
    let (at, lost) = lost.expect("no heartbeat close within 3 s of a stall");
    assert_eq!(lost.cause, CloseCause::HeartbeatLost);
    // Within 200 + 400 ms, as without the page's events.
    assert!(at - open_at <= 600, "found after {} ms", at - open_at);
    drop(events);
    drop_and_check(socket);
}

/// Regression: one attempt, one URL: `reconnect_now` (or `online`) while the URL of the
/// attempt is being fetched started another fetch, and a second attempt behind the first.
#[test]
fn reconnect_now_while_the_async_url_is_pending_asks_once() {
    fresh();
    let asked = Rc::new(Cell::new(0));
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect().initial_delay(ms(10)))
        .url_provider_async(slow_provider(400, asked.clone()))
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    dropped_by_the_server(&socket, &mut events);
    sim::advance(100);
    assert_eq!(asked.get(), 1);
    socket.reconnect_now();
    socket.reconnect_now();
    sim::advance(400);
    assert!(sim::open(""));
    assert_eq!(waiting(&mut events), [Event::Open]);
    sim::advance(600);
    assert_eq!(waiting(&mut events), []);
    assert_eq!(
        asked.get(),
        1,
        "the URL provider was called again for the same attempt"
    );
    assert_eq!(conns(), 2, "a second attempt");
    drop(events);
    drop_and_check(socket);
}

/// Regression: a final code is final; but a close that came while the socket thought the
/// browser offline (offline, then `reconnect_now`, which connects) was taken as an offline
/// close and waited for `online`, ignoring the final code.
#[test]
fn a_final_code_is_final_while_offline() {
    fresh();
    let (socket, mut events) = opened(final_code_4002());
    network(&socket, Network::Offline);
    assert_eq!(next_close(&mut events).cause, CloseCause::Offline);
    socket.reconnect_now();
    sim::settle();
    assert!(sim::open(""));
    assert_eq!(waiting(&mut events), [Event::Open]);
    socket.send("!close 4002 go away").unwrap();
    sim::serve();
    let last = next_close(&mut events);
    assert_eq!((last.code, last.cause), (4002, CloseCause::Remote));
    sim::advance(50);
    assert_eq!(socket.state(), State::Closed, "after a final code");
    network(&socket, Network::Online);
    sim::advance(300);
    assert_eq!(rest(&mut events), [], "after online");
    assert_eq!(conns(), 2);
    drop_and_check(socket);
}

/// `close()` while the async URL provider is pending is final: the URL goes unused, the close
/// is reported with the application's cause, and nothing is left behind.
#[test]
fn close_while_the_async_url_is_pending_is_final() {
    fresh();
    let asked = Rc::new(Cell::new(0));
    let (socket, mut events) = waiting_for_a_url(300, &asked);
    sim::advance(60);
    assert_eq!(asked.get(), 1);
    socket.close_with(4100, "bye").unwrap();
    socket.reconnect_now();
    let last = next_close(&mut events);
    assert_eq!(
        (last.code, last.cause),
        (4100, CloseCause::Application),
        "{last:?}"
    );
    assert!(ended(&mut events));
    sim::advance(500);
    assert_eq!(socket.state(), State::Closed);
    assert_eq!(asked.get(), 1);
    assert_eq!(conns(), 1, "the URL was used");
    network(&socket, Network::Online);
    sim::advance(500);
    assert_eq!(socket.state(), State::Closed);
    assert_eq!(conns(), 1);
    drop(socket);
    assert_nothing_left();
}

/// A connect timeout of zero fails every attempt with its own cause, and `open` with it.
#[test]
fn a_connect_timeout_of_zero_fails_open_with_its_cause() {
    fresh();
    let result = spawned(
        WebSocket::builder("ws://silent")
            .connect_timeout(Duration::ZERO)
            .reconnect(quick_reconnect().max_attempts(1))
            .open(),
    );
    // The server never answers the handshake.
    sim::advance(1_000);
    match result.borrow_mut().take().expect("open never finished") {
        Err(Error::ConnectFailed(close)) => {
            assert_eq!(
                (close.code, close.cause),
                (1006, CloseCause::ConnectTimeout)
            );
        }
        other => panic!("expected a connect timeout, got {:?}", other.map(|_| ())),
    }
    assert_eq!(conns(), 2);
    assert_nothing_left();
}

/// A heartbeat on a socket that never opens never rings: each attempt ends by its connect
/// timeout, and the socket ends when its attempts run out, leaving nothing behind.
#[test]
fn a_heartbeat_on_a_socket_that_never_opens() {
    fresh();
    let socket = WebSocket::builder("ws://silent")
        .heartbeat(Heartbeat::new(Duration::ZERO, Duration::ZERO))
        .connect_timeout(ms(200))
        .reconnect(quick_reconnect().max_attempts(1))
        .follow_network()
        .connect()
        .unwrap();
    let mut events = socket.events();
    let start = sim::now();
    let first = next_close(&mut events);
    assert_eq!(first.cause, CloseCause::ConnectTimeout);
    assert_eq!(sim::now() - start, 200);
    assert!(matches!(next_event(&mut events), Event::Reconnecting(_)));
    let second = next_close(&mut events);
    assert_eq!(second.cause, CloseCause::ConnectTimeout);
    assert!(ended(&mut events));
    assert_eq!(socket.state(), State::Closed);
    assert_eq!(conns(), 2);
    assert_eq!((sent(0), sent(1)), (vec![], vec![]), "a ping");
    drop(socket);
    assert_nothing_left();
}

/// Offline while connecting closes with cause Offline; offline twice, online without offline,
/// and online twice do nothing more; close() while held is final.
#[test]
fn offline_and_online_in_every_order() {
    fresh();
    let socket = WebSocket::builder("ws://silent")
        .reconnect(quick_reconnect())
        .follow_network()
        .connect()
        .unwrap();
    let mut events = socket.events();
    sim::advance(50);
    assert_eq!(socket.state(), State::Connecting);
    network(&socket, Network::Offline);
    let offline = next_close(&mut events);
    assert_eq!((offline.code, offline.cause), (1006, CloseCause::Offline));
    assert!(released(0));
    network(&socket, Network::Offline);
    sim::advance(500);
    assert_eq!(socket.state(), State::Reconnecting);
    assert_eq!(waiting(&mut events), []);
    socket.close().unwrap();
    let last = next_close(&mut events);
    assert_eq!(last.cause, CloseCause::Application);
    assert!(ended(&mut events));
    network(&socket, Network::Online);
    network(&socket, Network::Online);
    sim::advance(200);
    assert_eq!(socket.state(), State::Closed);
    assert_eq!(conns(), 1);
    drop(socket);
    assert_nothing_left();

    // Online while open, and without offline, changes nothing.
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect())
        .heartbeat(Heartbeat::new(ms(100), ms(500)))
        .follow_network()
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    network(&socket, Network::Online);
    network(&socket, Network::Online);
    for _ in 0..4 {
        sim::advance(100);
        sim::serve();
    }
    assert_eq!(socket.state(), State::Open);
    // The heartbeat's echoes are delivered (no `reply` predicate); nothing else happens.
    let seen = waiting(&mut events);
    assert_eq!(seen, vec![echoed("ping"); 4]);
    assert_eq!(conns(), 1);
    drop(events);
    drop_and_check(socket);
}

/// `should_reconnect` that closes the socket (through a weak handle) makes that close final.
#[test]
fn should_reconnect_that_closes_the_socket() {
    fresh();
    let weak: Rc<RefCell<WeakWebSocket>> = Rc::default();
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect())
        .should_reconnect({
            let weak = weak.clone();
            move |_| {
                if let Some(socket) = weak.borrow().upgrade() {
                    let _ = socket.close();
                    socket.reconnect_now();
                }
                true
            }
        })
        .connect()
        .unwrap();
    *weak.borrow_mut() = socket.downgrade();
    let (socket, mut events) = opened(socket);
    assert!(sim::fail());
    let close = next_close(&mut events);
    assert_eq!(close.code, 1006);
    assert!(ended(&mut events), "no reconnection after close()");
    sim::advance(400);
    assert_eq!(socket.state(), State::Closed);
    assert_eq!(conns(), 1);
    drop(socket);
    assert_nothing_left();
}

/// The last handle dropped while every timer is live (open with heartbeat; held offline;
/// while the async URL is pending) leaves nothing behind. (Whether the browser's listeners go
/// too is the browser copy's.)
#[test]
fn dropping_the_last_handle_with_everything_live() {
    let build = || {
        WebSocket::builder("ws://a")
            .reconnect(quick_reconnect())
            .heartbeat(Heartbeat::new(ms(50), ms(500)))
            .connect_timeout(Duration::from_secs(5))
            .url_provider_async(slow_provider(200, Rc::default()))
            .follow_network()
            .connect()
            .unwrap()
    };
    fresh();
    let (socket, events) = opened(build());
    sim::advance(120);
    assert_eq!(sent(0).len(), 2, "two pings");
    assert!(live_closures() > 0);
    drop((socket, events));
    assert_nothing_left();

    fresh();
    let (socket, mut events) = opened(build());
    network(&socket, Network::Offline);
    assert_eq!(next_close(&mut events).cause, CloseCause::Offline);
    drop((socket, events));
    sim::advance(300);
    assert_eq!(conns(), 1);
    assert_nothing_left();

    // While the async URL is pending.
    fresh();
    let (socket, mut events) = opened(build());
    dropped_by_the_server(&socket, &mut events);
    // The attempt is due within 100 ms; its URL takes 200.
    sim::advance(150);
    assert_eq!(socket.state(), State::Reconnecting, "asking for the URL");
    assert_eq!(sim::tasks(), 1, "the provider's future");
    drop((socket, events));
    sim::advance(300);
    assert_eq!(conns(), 1, "the URL was used");
    assert_nothing_left();
}

/// A heartbeat with a zero interval and timeout does not panic or flood: the connection is
/// found lost at once (nothing is heard within zero ms of a ping), and the socket ends.
#[test]
fn a_heartbeat_of_zero_does_not_break_the_socket() {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .heartbeat(Heartbeat::new(Duration::ZERO, Duration::ZERO))
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    // `sim::advance` fails on a storm of timers.
    sim::advance(2_000);
    let rest = rest(&mut events);
    match rest.last() {
        Some(Event::Close(close)) => assert_eq!(close.cause, CloseCause::HeartbeatLost),
        other => panic!("{other:?}"),
    }
    assert!(sent(0).len() <= 1, "{:?}", sent(0));
    assert_eq!(socket.state(), State::Closed);
    socket.close().unwrap();
    drop(socket);
    assert_nothing_left();
}

/// A server's final code, then `reconnect_now` (again from one), then close(): the causes of
/// each close, with follow_network on.
#[test]
fn final_code_then_reconnect_now_then_close() {
    fresh();
    let (socket, mut events) = opened(final_code_4002());
    socket.send("!close 4002 final").unwrap();
    sim::serve();
    let last = next_close(&mut events);
    assert_eq!(
        (last.code, last.reason.as_str(), last.cause),
        (4002, "final", CloseCause::Remote)
    );
    assert!(ended(&mut events));
    assert_eq!(socket.state(), State::Closed);
    // Offline and online on a finished socket start nothing.
    network(&socket, Network::Offline);
    network(&socket, Network::Online);
    sim::advance(300);
    assert_eq!(socket.state(), State::Closed);
    assert_eq!(conns(), 1);
    socket.reconnect_now();
    let mut events = socket.events();
    sim::settle();
    assert!(sim::open(""));
    assert_eq!(waiting(&mut events), [Event::Open]);
    socket.close_with(4100, "done").unwrap();
    socket.reconnect_now();
    assert!(sim::close(CloseEvent::new(4100, "done", true)));
    let last = next_close(&mut events);
    assert_eq!((last.code, last.cause), (4100, CloseCause::Application));
    assert!(ended(&mut events));
    sim::advance(1_000);
    assert_eq!(conns(), 2);
    drop(socket);
    assert_nothing_left();
}

/// Regression: an attempt that never opens fails with `HandshakeFailed`; but after an
/// offline close the previous connection's open time was still there, and the next failed
/// attempt was taken for a connection that opened and was lost (`Remote`).
#[test]
fn a_failed_attempt_after_an_offline_close_is_a_handshake_failure() {
    fresh();
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect().max_attempts(1))
        .url_provider(|| "ws://unreachable".to_owned())
        .follow_network()
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    network(&socket, Network::Offline);
    assert_eq!(next_close(&mut events).cause, CloseCause::Offline);
    network(&socket, Network::Online);
    // Nothing listens there: each attempt fails.
    for _ in 0..3 {
        sim::advance(1_000);
        sim::fail();
    }
    let causes: Vec<CloseCause> = (rest(&mut events).into_iter())
        .filter_map(|event| match event {
            Event::Close(close) => Some(close.cause),
            _ => None,
        })
        .collect();
    assert_eq!(
        causes,
        [CloseCause::HandshakeFailed, CloseCause::HandshakeFailed]
    );
    assert_eq!(conns(), 3);
    drop_and_check(socket);
}

/// Regression: `online` while the URL of the waiting attempt is being fetched: the same
/// attempt again.
#[test]
fn online_while_the_async_url_is_pending_asks_once() {
    fresh();
    let asked = Rc::new(Cell::new(0));
    let (socket, mut events) = waiting_for_a_url(400, &asked);
    sim::advance(100);
    assert_eq!(asked.get(), 1);
    network(&socket, Network::Online);
    sim::advance(400);
    assert!(sim::open(""));
    assert_eq!(waiting(&mut events), [Event::Open]);
    sim::advance(600);
    assert_eq!(
        asked.get(),
        1,
        "the URL provider was called again for the same attempt"
    );
    assert_eq!(conns(), 2);
    drop(events);
    drop_and_check(socket);
}

/// The only handle, dropped from `on_close` of an offline close (inside the `offline`
/// listener's call, which holds the socket while it runs): no panic, no attempt, nothing
/// left behind.
#[test]
fn the_only_handle_dropped_from_the_close_of_an_offline() {
    fresh();
    let holder: Rc<RefCell<Option<WebSocket>>> = Rc::default();
    let closes = Rc::new(RefCell::new(Vec::new()));
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect())
        .heartbeat(Heartbeat::new(ms(100), ms(500)))
        .follow_network()
        .on_close({
            let holder = holder.clone();
            let closes = closes.clone();
            move |_, close| {
                closes.borrow_mut().push(close.cause);
                drop(holder.borrow_mut().take());
            }
        })
        .connect()
        .unwrap();
    let (socket, events) = opened(socket);
    let weak = socket.downgrade();
    *holder.borrow_mut() = Some(socket);
    drop(events);
    sim::advance(150);
    // As the browser's listener does: a handle for the call, from a weak one.
    if let Some(socket) = weak.upgrade() {
        network(&socket, Network::Offline);
    }
    assert!(
        weak.upgrade().is_none(),
        "the socket outlived its last handle"
    );
    sim::advance(300);
    assert_eq!(*closes.borrow(), [CloseCause::Offline]);
    assert!(holder.borrow().is_none());
    assert_eq!(conns(), 1);
    assert_nothing_left();
}

/// Regression: a socket ended by the server's final code (or by its attempts running out)
/// keeps its callbacks and hooks for `reconnect_now`; the application's close() afterwards is
/// final, and must let them go (in the browser, the `follow_network` listeners with them).
#[test]
fn close_after_a_final_code_lets_the_listeners_go() {
    fresh();
    let held = Rc::new(());
    let socket = WebSocket::builder("ws://a")
        .reconnect(quick_reconnect().final_code(4002))
        .follow_network()
        .on_message({
            let held = held.clone();
            move |_, _| {
                let _ = &held;
            }
        })
        .connect()
        .unwrap();
    let (socket, mut events) = opened(socket);
    socket.send("!close 4002 final").unwrap();
    sim::serve();
    assert_eq!(next_close(&mut events).code, 4002);
    assert!(ended(&mut events));
    assert_eq!(Rc::strong_count(&held), 2, "let go before close()");
    socket.close().unwrap();
    sim::advance(100);
    assert_eq!(
        Rc::strong_count(&held),
        1,
        "held after close(), before the handle is dropped"
    );
    // The socket is over for good: reconnect_now does nothing.
    socket.reconnect_now();
    sim::advance(100);
    assert_eq!(socket.state(), State::Closed);
    assert_eq!(conns(), 1);
    drop_and_check(socket);
}
