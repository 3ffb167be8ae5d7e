//! Waiting for one kind of event and skipping the others, for the native tests that follow a
//! socket through reconnections: `deflate.rs`, `http2.rs`, `proxy.rs`. (`support::next_close`
//! wants the close to be the very next event.)

use futures_util::StreamExt;
use wasm_websocket::{CloseEvent, Event, Events};

/// The next close among `events`, skipping the rest.
pub async fn next_close(events: &mut Events) -> CloseEvent {
    loop {
        match events.next().await {
            Some(Event::Close(close)) => return close,
            Some(_) => {}
            None => panic!("the events ended without a close"),
        }
    }
}

/// The next open among `events`, skipping the rest.
pub async fn next_open(events: &mut Events) {
    loop {
        match events.next().await {
            Some(Event::Open) => return,
            Some(_) => {}
            None => panic!("the events ended without an open"),
        }
    }
}
