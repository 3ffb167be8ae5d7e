//! Giving memory back to the system once connections close.
//!
//! glibc's malloc keeps what is freed for later use: a server that once held 19,000
//! connections would keep their memory for good. [`give_back`] watches how many WebSocket
//! connections are open and, once that number has fallen well below its peak, asks malloc to
//! return its free pages (`malloc_trim`). It runs once a second at most, off the async threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::Server;

/// Trims when the open connections have fallen by this share of their peak ...
const FALL: usize = 8;
/// ... and by at least this many.
const AT_LEAST: usize = 64;

/// The most WebSocket connections open at once since the last trim.
#[derive(Debug, Default)]
pub struct Peak(AtomicUsize);

impl Peak {
    /// Records that `open` connections are open now.
    pub fn saw(&self, open: usize) {
        self.0.fetch_max(open, Ordering::Relaxed);
    }
}

/// Runs until dropped, checking once a second how many connections are open.
pub async fn give_back(server: Arc<Server>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        let open = server.open_connections();
        let peak = server.peak.0.load(Ordering::Relaxed).max(open);
        if peak - open >= (peak / FALL).max(AT_LEAST) {
            let _ = tokio::task::spawn_blocking(trim).await;
            server.peak.0.store(open, Ordering::Relaxed);
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim has no preconditions; it takes malloc's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators return memory by themselves, or offer no way to ask.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
