//! Time, chance and tasks, per platform: in the browser on `setTimeout`, `Date.now()`,
//! `Math.random()` and the microtask queue; natively on tokio's timers and local tasks; in the
//! crate's own unit tests, on the simulated clock of `tests/sim.rs`. The rest of the crate sees one
//! interface: a one-shot [`Timeout`] owned by Rust and cancelled when dropped, a [`sleep`]
//! future, [`spawn`], [`now`] and [`seed`].

#[cfg(all(not(target_arch = "wasm32"), any(test, feature = "fuzzing")))]
pub(crate) use crate::tests::sim::{Timeout, now, seed, sleep, spawn};
#[cfg(target_arch = "wasm32")]
pub(crate) use browser::*;
#[cfg(all(not(target_arch = "wasm32"), not(any(test, feature = "fuzzing"))))]
pub(crate) use native::*;

#[cfg(target_arch = "wasm32")]
mod browser {
    use std::cell::Cell;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::*;

    use crate::tracked::Tracked;

    /// A timeout's callback: the type of the connection's handlers (`connection.rs`; the
    /// argument, which a timeout does not pass, is ignored), so that a program carries one
    /// closure type's glue for both.
    type Callback = Closure<dyn FnMut(JsValue)>;

    /// A pending `setTimeout` callback. Dropping it cancels the timeout and frees the closure.
    pub(crate) struct Timeout {
        id: i32,
        _callback: Tracked<Callback>,
    }

    impl Timeout {
        /// Calls `callback` once after `delay`.
        pub(crate) fn new(delay: Duration, callback: impl FnOnce() + 'static) -> Timeout {
            let mut callback = Some(callback);
            let closure = Callback::new(move |_| {
                if let Some(callback) = callback.take() {
                    callback();
                }
            });
            let id = set_timeout(closure.as_ref().unchecked_ref(), millis(delay));
            Timeout {
                id,
                _callback: Tracked::new(closure),
            }
        }
    }

    impl Drop for Timeout {
        fn drop(&mut self) {
            clear_timeout(self.id);
        }
    }

    /// Resolves after `delay`: a `setTimeout` whose callback wakes the task, cleared if the
    /// future is dropped first. Its closure is of [`Timeout`]'s type, and not counted in
    /// `live_closures` (it lives only while its future is awaited). A promise awaited as a
    /// `JsFuture` did the same with machinery of its own, which every program with a sink
    /// carried.
    pub(crate) fn sleep(delay: Duration) -> Sleep {
        Sleep {
            delay: millis(delay),
            timer: None,
            alarm: Rc::default(),
        }
    }

    /// See [`sleep`].
    pub(crate) struct Sleep {
        delay: i32,
        /// The pending `setTimeout`, once polled.
        timer: Option<(i32, Callback)>,
        alarm: Rc<Alarm>,
    }

    /// What the timeout's callback tells the future.
    #[derive(Default)]
    struct Alarm {
        rung: Cell<bool>,
        waker: Cell<Option<Waker>>,
    }

    impl Future for Sleep {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let this = &mut *self;
            if this.alarm.rung.get() {
                return Poll::Ready(());
            }
            drop(this.alarm.waker.replace(Some(cx.waker().clone())));
            if this.timer.is_none() {
                let alarm = this.alarm.clone();
                let closure = Callback::new(move |_| {
                    alarm.rung.set(true);
                    if let Some(waker) = alarm.waker.take() {
                        waker.wake();
                    }
                });
                let id = set_timeout(closure.as_ref().unchecked_ref(), this.delay);
                this.timer = Some((id, closure));
            }
            Poll::Pending
        }
    }

    impl Drop for Sleep {
        fn drop(&mut self) {
            if let Some((id, _)) = &self.timer {
                clear_timeout(*id);
            }
        }
    }

    /// Runs `future` to completion on the page's event loop.
    pub(crate) fn spawn(future: impl Future<Output = ()> + 'static) {
        wasm_bindgen_futures::spawn_local(future);
    }

    /// Milliseconds since the epoch (`Date.now()`).
    pub(crate) fn now() -> u64 {
        js_sys::Date::now() as u64
    }

    /// A seed for the backoff's jitter (`Math.random()`).
    pub(crate) fn seed() -> u64 {
        (js_sys::Math::random() * (1u64 << 53) as f64) as u64
    }

    fn millis(delay: Duration) -> i32 {
        delay.as_millis().try_into().unwrap_or(i32::MAX)
    }

    // The global functions, so that timers work in a window and in a worker alike.
    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_name = setTimeout)]
        fn set_timeout(handler: &js_sys::Function, timeout: i32) -> i32;
        #[wasm_bindgen(js_name = clearTimeout)]
        fn clear_timeout(id: i32);
    }
}

#[cfg(all(not(target_arch = "wasm32"), not(any(test, feature = "fuzzing"))))]
mod native {
    use std::hash::{BuildHasher, Hasher};
    use std::panic::AssertUnwindSafe;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use tokio::task::JoinHandle;

    use crate::tracked::Tracked;

    /// A local task that calls a callback after a delay. Dropping it aborts the task.
    pub(crate) struct Timeout {
        task: Option<Tracked<JoinHandle<()>>>,
    }

    impl Timeout {
        /// Calls `callback` once after `delay`, on the current `LocalSet`.
        pub(crate) fn new(delay: Duration, callback: impl FnOnce() + 'static) -> Timeout {
            let task = spawn_local(async move {
                tokio::time::sleep(delay).await;
                callback();
            });
            Timeout {
                task: task.map(Tracked::new),
            }
        }
    }

    impl Drop for Timeout {
        fn drop(&mut self) {
            // Aborting the task that is running this very drop (a timer dropped from its own
            // callback) is allowed: it ends when the callback returns.
            if let Some(task) = &self.task {
                task.abort();
            }
        }
    }

    pub(crate) async fn sleep(delay: Duration) {
        tokio::time::sleep(delay).await;
    }

    /// Runs `future` to completion as a local task.
    pub(crate) fn spawn(future: impl Future<Output = ()> + 'static) {
        drop(spawn_local(future));
    }

    /// `tokio::task::spawn_local`, or `None` outside a `LocalSet`, where tokio panics (it has
    /// no query for one): the panic is caught so that the public API can return
    /// [`Error::NoLocalSet`](crate::Error::NoLocalSet) instead. The panic hook still reports
    /// it, once, on stderr: a program that gets this error has a bug to fix.
    pub(crate) fn spawn_local<F>(future: F) -> Option<JoinHandle<F::Output>>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        tokio::runtime::Handle::try_current().ok()?;
        std::panic::catch_unwind(AssertUnwindSafe(|| tokio::task::spawn_local(future))).ok()
    }

    /// Milliseconds since the epoch.
    pub(crate) fn now() -> u64 {
        let since = SystemTime::now().duration_since(UNIX_EPOCH);
        u64::try_from(since.unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
    }

    /// A seed for the backoff's jitter, from the standard library's randomly seeded hasher:
    /// enough for jitter, and no dependency for it.
    pub(crate) fn seed() -> u64 {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    }
}
