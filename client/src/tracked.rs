//! A count of the JavaScript closures this crate holds, so that tests (and applications that
//! worry) can check that none are leaked.

use std::cell::Cell;
use std::ops::Deref;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
}

/// How many JavaScript closures the crate holds right now, across all sockets: four for
/// each connection on the browser's `WebSocket` (seven on `WebSocketStream`; natively, one
/// task) and one for each pending timer. It returns to zero once every
/// socket has closed or been dropped.
pub fn live_closures() -> usize {
    LIVE.with(Cell::get)
}

/// A value counted in [`live_closures`] while it exists.
pub(crate) struct Tracked<T>(T);

impl<T> Tracked<T> {
    pub(crate) fn new(value: T) -> Self {
        // `try_with`: `with` would carry the panic for a thread-local used after its
        // destruction, and this one, with nothing to destroy, is never gone.
        let _ = LIVE.try_with(|live| live.set(live.get() + 1));
        Tracked(value)
    }
}

impl<T> Deref for Tracked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Drop for Tracked<T> {
    fn drop(&mut self) {
        let _ = LIVE.try_with(|live| live.set(live.get() - 1));
    }
}
