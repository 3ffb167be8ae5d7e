//! Hostile and careless uses of the liveness features: connect timeout, heartbeat, close
//! causes, `should_reconnect`, `reconnect_now`, `follow_network` and the URL providers.

#![cfg(target_arch = "wasm32")]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wasm_websocket::{
    CloseCause, Error, Event, Events, Heartbeat, State, WeakWebSocket, WebSocket, live_closures,
};

wasm_bindgen_test_configure!(run_in_browser);

mod support;
use support::{
    assert_closures_back_to, dispatch, dropped_by_the_server, finish, next, next_close, next_event,
    open, quick_reconnect, server_url, silent_url, sleep, within,
};

/// Events already waiting in the stream, without waiting for more.
fn waiting(events: &mut Events) -> Vec<Event> {
    let mut seen = Vec::new();
    while let Some(Some(event)) = events.next().now_or_never() {
        seen.push(event);
    }
    seen
}

fn global() -> wasm_bindgen::JsValue {
    js_sys::global().into()
}

fn document() -> wasm_bindgen::JsValue {
    js_sys::Reflect::get(&js_sys::global(), &"document".into()).unwrap()
}

/// An async URL provider that takes `ms` to answer the server's URL, counting its calls.
fn slow_provider(
    ms: i32,
    asked: Rc<Cell<u32>>,
) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = String>>> {
    let base = server_url().to_owned();
    move || {
        asked.set(asked.get() + 1);
        let url = base.clone();
        Box::pin(async move {
            sleep(ms).await;
            url
        })
    }
}

// ---------------------------------------------------------------------------------------
// Bugs
// ---------------------------------------------------------------------------------------

/// Regression (found by this suite, now fixed): `should_reconnect` "decides after each close
/// whether to reconnect": a close for `offline` is one, and `false` must end the socket.
#[wasm_bindgen_test]
async fn should_reconnect_false_ends_an_offline_close_too() {
    let asked = Rc::new(Cell::new(0));
    let socket = WebSocket::builder(server_url())
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
    let (socket, mut events) = open(socket).await;
    dispatch(&global(), "offline");
    let offline = next_close(&mut events).await;
    assert_eq!(offline.cause, CloseCause::Offline);
    let state = socket.state();
    dispatch(&global(), "online");
    sleep(500).await;
    let after = waiting(&mut events);
    let consulted = asked.get();
    finish(socket, events).await;
    assert_eq!(
        consulted, 1,
        "should_reconnect was not asked about the offline close"
    );
    assert_eq!(state, State::Closed);
    assert!(after.is_empty(), "after online: {after:?}");
}

/// Regression (found by this suite, now fixed): "No attempt is made until it is back online": an
/// attempt whose async URL was being fetched when the browser went offline is opened anyway when
/// the URL comes.
#[wasm_bindgen_test]
async fn offline_while_the_async_url_is_pending_holds_the_attempt() {
    let before = live_closures();
    let asked = Rc::new(Cell::new(0));
    let (socket, mut events) = waiting_for_a_url(400, &asked).await;
    sleep(100).await;
    assert_eq!(asked.get(), 1, "the provider is being awaited");
    dispatch(&global(), "offline");
    sleep(800).await;
    let state = socket.state();
    let seen = waiting(&mut events);
    dispatch(&global(), "online");
    finish(socket, events).await;
    assert_closures_back_to(before).await;
    assert_eq!(state, State::Reconnecting, "while offline; events {seen:?}");
    assert!(seen.is_empty(), "while offline: {seen:?}");
}

/// Regression (found by this suite, now fixed): A page shown again should check the connection at
/// once, not give a ping that is already overdue a fresh deadline: a user switching tabs now and
/// then keeps a dead connection "alive" for as long as they do.
#[wasm_bindgen_test]
async fn visibility_changes_do_not_postpone_a_lost_heartbeat() {
    let socket = WebSocket::builder(server_url())
        .heartbeat(Heartbeat::new(
            Duration::from_millis(200),
            Duration::from_millis(400),
        ))
        .follow_network()
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    socket.send("!stall 8000").unwrap();
    // Without the page's events, found within 200 + 400 ms (and some slack).
    let mut lost = None;
    for _ in 0..20 {
        sleep(150).await;
        dispatch(&document(), "visibilitychange");
        if let Some(Event::Close(close)) = waiting(&mut events).into_iter().next() {
            lost = Some(close);
            break;
        }
    }
    finish(socket, events).await;
    let lost = lost.expect("no heartbeat close within 3 s of a stall");
    assert_eq!(lost.cause, CloseCause::HeartbeatLost);
}

/// Regression (found by this suite, now fixed): One attempt, one URL: `reconnect_now` (or `online`)
/// while the URL of the attempt is being fetched starts another fetch, and a second attempt behind
/// the first.
#[wasm_bindgen_test]
async fn reconnect_now_while_the_async_url_is_pending_asks_once() {
    let before = live_closures();
    let asked = Rc::new(Cell::new(0));
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect().initial_delay(Duration::from_millis(10)))
        .url_provider_async(slow_provider(400, asked.clone()))
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    dropped_by_the_server(&socket, &mut events).await;
    sleep(100).await;
    assert_eq!(asked.get(), 1);
    socket.reconnect_now();
    socket.reconnect_now();
    assert_eq!(next_event(&mut events).await, Event::Open);
    sleep(600).await;
    let asked_now = asked.get();
    let extra = waiting(&mut events);
    finish(socket, events).await;
    assert_closures_back_to(before).await;
    assert!(extra.is_empty(), "{extra:?}");
    assert_eq!(
        asked_now, 1,
        "the URL provider was called again for the same attempt"
    );
}

/// Regression (found by this suite, now fixed): A final code is final: but a close that comes while
/// the socket thinks the browser offline (offline, then `reconnect_now`, which connects) is taken
/// as an offline close and waits for `online`, ignoring the final code.
#[wasm_bindgen_test]
async fn a_final_code_is_final_while_offline() {
    let before = live_closures();
    let (socket, mut events) = open(final_code_4002()).await;
    dispatch(&global(), "offline");
    assert_eq!(next_close(&mut events).await.cause, CloseCause::Offline);
    socket.reconnect_now();
    assert_eq!(next_event(&mut events).await, Event::Open);
    socket.send("!close 4002 go away").unwrap();
    let last = next_close(&mut events).await;
    assert_eq!((last.code, last.cause), (4002, CloseCause::Remote));
    sleep(50).await;
    let state = socket.state();
    dispatch(&global(), "online");
    sleep(300).await;
    let after = waiting(&mut events);
    finish(socket, events).await;
    assert_closures_back_to(before).await;
    assert_eq!(state, State::Closed, "after a final code");
    assert!(after.is_empty(), "after online: {after:?}");
}

/// A socket that follows the network and reconnects, except after close code 4002.
fn final_code_4002() -> WebSocket {
    WebSocket::builder(server_url())
        .reconnect(quick_reconnect().final_code(4002))
        .follow_network()
        .connect()
        .unwrap()
}

/// A socket that follows the network, whose server dropped it: its next attempt is waiting for
/// a URL that `slow_provider(ms, asked)` takes `ms` to give.
async fn waiting_for_a_url(ms: i32, asked: &Rc<Cell<u32>>) -> (WebSocket, Events) {
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect().initial_delay(Duration::from_millis(10)))
        .url_provider_async(slow_provider(ms, asked.clone()))
        .follow_network()
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    dropped_by_the_server(&socket, &mut events).await;
    (socket, events)
}

// ---------------------------------------------------------------------------------------
// Probes that pass, kept as regression tests
// ---------------------------------------------------------------------------------------

/// close() while the async URL provider is pending is final: the URL goes unused, the close
/// is reported with the application's cause, and nothing is left behind.
#[wasm_bindgen_test]
async fn close_while_the_async_url_is_pending_is_final() {
    let before = live_closures();
    let asked = Rc::new(Cell::new(0));
    let (socket, mut events) = waiting_for_a_url(300, &asked).await;
    sleep(60).await;
    assert_eq!(asked.get(), 1);
    socket.close_with(4100, "bye").unwrap();
    socket.reconnect_now();
    let last = next_close(&mut events).await;
    assert_eq!(
        (last.code, last.cause),
        (4100, CloseCause::Application),
        "{last:?}"
    );
    assert_eq!(next(&mut events).await, None);
    sleep(500).await;
    assert_eq!(socket.state(), State::Closed);
    assert_eq!(asked.get(), 1);
    dispatch(&global(), "online");
    assert_eq!(socket.state(), State::Closed);
    drop(socket);
    assert_closures_back_to(before).await;
}

/// A connect timeout of zero fails every attempt with its own cause, and `open` with it.
#[wasm_bindgen_test]
async fn a_connect_timeout_of_zero_fails_open_with_its_cause() {
    let before = live_closures();
    let result = WebSocket::builder(&silent_url())
        .connect_timeout(Duration::ZERO)
        .reconnect(quick_reconnect().max_attempts(1))
        .open()
        .await;
    match result {
        Err(Error::ConnectFailed(close)) => {
            assert_eq!(
                (close.code, close.cause),
                (1006, CloseCause::ConnectTimeout)
            );
        }
        other => panic!("expected a connect timeout, got {other:?}"),
    }
    assert_closures_back_to(before).await;
}

/// A heartbeat on a socket that never opens never rings: each attempt ends by its connect
/// timeout, and the socket ends when its attempts run out, leaving nothing behind.
#[wasm_bindgen_test]
async fn a_heartbeat_on_a_socket_that_never_opens() {
    let before = live_closures();
    let socket = WebSocket::builder(&silent_url())
        .heartbeat(Heartbeat::new(Duration::ZERO, Duration::ZERO))
        .connect_timeout(Duration::from_millis(200))
        .reconnect(quick_reconnect().max_attempts(1))
        .follow_network()
        .connect()
        .unwrap();
    let mut events = socket.events();
    let first = next_close(&mut events).await;
    assert_eq!(first.cause, CloseCause::ConnectTimeout);
    assert!(matches!(
        next_event(&mut events).await,
        Event::Reconnecting(_)
    ));
    let second = next_close(&mut events).await;
    assert_eq!(second.cause, CloseCause::ConnectTimeout);
    assert_eq!(next(&mut events).await, None);
    assert_eq!(socket.state(), State::Closed);
    drop(socket);
    assert_closures_back_to(before).await;
}

/// Offline while connecting closes with cause Offline; offline twice, online without offline,
/// and online twice do nothing more; close() while held is final.
#[wasm_bindgen_test]
async fn offline_and_online_in_every_order() {
    let before = live_closures();
    let socket = WebSocket::builder(&silent_url())
        .reconnect(quick_reconnect())
        .follow_network()
        .connect()
        .unwrap();
    let mut events = socket.events();
    sleep(50).await;
    assert_eq!(socket.state(), State::Connecting);
    dispatch(&global(), "offline");
    let offline = next_close(&mut events).await;
    assert_eq!((offline.code, offline.cause), (1006, CloseCause::Offline));
    dispatch(&global(), "offline");
    sleep(500).await;
    assert_eq!(socket.state(), State::Reconnecting);
    assert_eq!(waiting(&mut events), vec![]);
    socket.close().unwrap();
    let last = next_close(&mut events).await;
    assert_eq!(last.cause, CloseCause::Application);
    assert_eq!(next(&mut events).await, None);
    dispatch(&global(), "online");
    dispatch(&global(), "online");
    sleep(200).await;
    assert_eq!(socket.state(), State::Closed);
    drop(socket);
    assert_closures_back_to(before).await;

    // Online while open, and without offline, changes nothing.
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect())
        .heartbeat(Heartbeat::new(
            Duration::from_millis(100),
            Duration::from_millis(500),
        ))
        .follow_network()
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    dispatch(&global(), "online");
    dispatch(&global(), "online");
    sleep(400).await;
    assert_eq!(socket.state(), State::Open);
    // The heartbeat's echoes are delivered (no `reply` predicate); nothing else happens.
    let seen = waiting(&mut events);
    assert!(
        seen.iter().all(|event| matches!(event, Event::Message(_))),
        "{seen:?}"
    );
    finish(socket, events).await;
    assert_closures_back_to(before).await;
}

/// `should_reconnect` that closes the socket (through a weak handle) makes that close final.
#[wasm_bindgen_test]
async fn should_reconnect_that_closes_the_socket() {
    let before = live_closures();
    let weak: Rc<RefCell<WeakWebSocket>> = Rc::default();
    let socket = WebSocket::builder(server_url())
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
    let (socket, mut events) = open(socket).await;
    socket.send("!drop").unwrap();
    let close = next_close(&mut events).await;
    assert_eq!(close.code, 1006);
    assert_eq!(
        next(&mut events).await,
        None,
        "no reconnection after close()"
    );
    sleep(400).await;
    assert_eq!(socket.state(), State::Closed);
    drop(socket);
    assert_closures_back_to(before).await;
}

/// The last handle dropped while every listener and timer is live (open with heartbeat and
/// listeners; held offline) leaves no closure behind.
#[wasm_bindgen_test]
async fn dropping_the_last_handle_with_everything_live() {
    let before = live_closures();
    let build = || {
        WebSocket::builder(server_url())
            .reconnect(quick_reconnect())
            .heartbeat(Heartbeat::new(
                Duration::from_millis(50),
                Duration::from_millis(500),
            ))
            .connect_timeout(Duration::from_secs(5))
            .url_provider_async(slow_provider(200, Rc::default()))
            .follow_network()
            .connect()
            .unwrap()
    };
    let (socket, events) = open(build()).await;
    sleep(120).await;
    assert!(live_closures() > before);
    drop((socket, events));
    sleep(0).await;
    assert_eq!(live_closures(), before, "dropped while open");

    let (socket, mut events) = open(build()).await;
    dispatch(&global(), "offline");
    assert_eq!(next_close(&mut events).await.cause, CloseCause::Offline);
    drop((socket, events));
    dispatch(&global(), "online");
    sleep(300).await;
    assert_eq!(live_closures(), before, "dropped while held offline");

    // While the async URL is pending.
    let (socket, mut events) = open(build()).await;
    dropped_by_the_server(&socket, &mut events).await;
    sleep(150).await;
    drop((socket, events));
    sleep(300).await;
    assert_eq!(live_closures(), before, "dropped while the URL was pending");
}

/// A heartbeat with a zero interval and timeout does not panic or flood: the socket stays
/// usable and closes normally.
#[wasm_bindgen_test]
async fn a_heartbeat_of_zero_does_not_break_the_socket() {
    let before = live_closures();
    let socket = WebSocket::builder(server_url())
        .heartbeat(Heartbeat::new(Duration::ZERO, Duration::ZERO))
        .connect()
        .unwrap();
    let mut events = socket.events();
    assert_eq!(next_event(&mut events).await, Event::Open);
    let rest = within(2_000, async {
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            let end = matches!(event, Event::Close(_));
            seen.push(event);
            if end {
                break;
            }
        }
        seen
    })
    .await;
    // Nothing is heard within zero ms of a ping: the connection is declared lost.
    match rest.last() {
        Some(Event::Close(close)) => assert_eq!(close.cause, CloseCause::HeartbeatLost),
        other => panic!("{other:?}"),
    }
    assert_eq!(socket.state(), State::Closed);
    socket.close().unwrap();
    drop(socket);
    assert_closures_back_to(before).await;
}

/// A server's final code, then `reconnect_now` (again from one), then close(): the causes of
/// each close, with follow_network on.
#[wasm_bindgen_test]
async fn final_code_then_reconnect_now_then_close() {
    let before = live_closures();
    let (socket, mut events) = open(final_code_4002()).await;
    socket.send("!close 4002 final").unwrap();
    let last = next_close(&mut events).await;
    assert_eq!(
        (last.code, last.reason.as_str(), last.cause),
        (4002, "final", CloseCause::Remote)
    );
    assert_eq!(next(&mut events).await, None);
    assert_eq!(socket.state(), State::Closed);
    // Offline and online on a finished socket start nothing.
    dispatch(&global(), "offline");
    dispatch(&global(), "online");
    sleep(300).await;
    assert_eq!(socket.state(), State::Closed);
    socket.reconnect_now();
    let mut events = socket.events();
    assert_eq!(next_event(&mut events).await, Event::Open);
    socket.close_with(4100, "done").unwrap();
    socket.reconnect_now();
    let last = next_close(&mut events).await;
    assert_eq!((last.code, last.cause), (4100, CloseCause::Application));
    assert_eq!(next(&mut events).await, None);
    drop(socket);
    assert_closures_back_to(before).await;
}

/// Regression (found by this suite, now fixed): An attempt that never opens fails with
/// `HandshakeFailed`; but after an offline close the previous connection's open time is still
/// there, and the next failed attempt is taken for a connection that opened and was lost
/// (`Remote`).
#[wasm_bindgen_test]
async fn a_failed_attempt_after_an_offline_close_is_a_handshake_failure() {
    let before = live_closures();
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect().max_attempts(1))
        // Port 9 (discard) is closed on the loopback of a test machine.
        .url_provider(|| "ws://127.0.0.1:9/".to_owned())
        .follow_network()
        .connect()
        .unwrap();
    let (socket, mut events) = open(socket).await;
    dispatch(&global(), "offline");
    assert_eq!(next_close(&mut events).await.cause, CloseCause::Offline);
    dispatch(&global(), "online");
    let mut causes = Vec::new();
    while let Some(event) = next(&mut events).await {
        if let Event::Close(close) = event {
            causes.push(close.cause);
        }
    }
    assert_eq!(
        causes,
        vec![CloseCause::HandshakeFailed, CloseCause::HandshakeFailed]
    );
    drop(socket);
    assert_closures_back_to(before).await;
}

/// Regression (found by this suite, now fixed): `online` while the URL of the waiting attempt is
/// being fetched: the same attempt again.
#[wasm_bindgen_test]
async fn online_while_the_async_url_is_pending_asks_once() {
    let asked = Rc::new(Cell::new(0));
    let (socket, mut events) = waiting_for_a_url(400, &asked).await;
    sleep(100).await;
    assert_eq!(asked.get(), 1);
    dispatch(&global(), "online");
    assert_eq!(next_event(&mut events).await, Event::Open);
    sleep(600).await;
    let asked_now = asked.get();
    finish(socket, events).await;
    assert_eq!(
        asked_now, 1,
        "the URL provider was called again for the same attempt"
    );
}

/// The only handle, dropped from `on_close` of an offline close (inside the browser's
/// `offline` listener, which goes with the socket): no panic, nothing left behind.
#[wasm_bindgen_test]
async fn the_only_handle_dropped_from_the_close_of_an_offline() {
    let before = live_closures();
    let holder: Rc<RefCell<Option<WebSocket>>> = Rc::default();
    let closes = Rc::new(RefCell::new(Vec::new()));
    let socket = WebSocket::builder(server_url())
        .reconnect(quick_reconnect())
        .heartbeat(Heartbeat::new(
            Duration::from_millis(100),
            Duration::from_millis(500),
        ))
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
    let mut events = socket.events();
    assert_eq!(next_event(&mut events).await, Event::Open);
    *holder.borrow_mut() = Some(socket);
    drop(events);
    sleep(150).await;
    dispatch(&global(), "offline");
    dispatch(&global(), "online");
    sleep(300).await;
    assert_eq!(*closes.borrow(), vec![CloseCause::Offline]);
    assert!(holder.borrow().is_none());
    assert_eq!(live_closures(), before);
}

/// Regression (found by this suite, now fixed): A socket ended by the server's final code (or by
/// its attempts running out) keeps its `follow_network` listeners for `reconnect_now`; the
/// application's close() afterwards is final, and must let them go.
#[wasm_bindgen_test]
async fn close_after_a_final_code_lets_the_listeners_go() {
    let before = live_closures();
    let (socket, mut events) = open(final_code_4002()).await;
    socket.send("!close 4002 final").unwrap();
    assert_eq!(next_close(&mut events).await.code, 4002);
    assert_eq!(next(&mut events).await, None);
    socket.close().unwrap();
    sleep(100).await;
    let live = live_closures();
    // The socket is over for good: reconnect_now does nothing.
    socket.reconnect_now();
    sleep(100).await;
    assert_eq!(socket.state(), State::Closed);
    drop(socket);
    assert_eq!(
        live, before,
        "held after close(), before the handle is dropped"
    );
}
