//! Giving memory back to the system once connections close, or go idle after traffic.
//!
//! glibc's malloc keeps what is freed for later use: a server that once held 19,000
//! connections would keep their memory for good, and so would one whose connections once
//! passed large messages and then went idle (each frees the buffers those grew, `echo`'s
//! `renew`, in the middle of malloc's heap). [`give_back`] watches how many WebSocket
//! connections are open and, once that number has fallen well below its peak, or once idle
//! connections have freed their grown buffers, or once a second without a compressed message
//! has let it drop permessage-deflate's spare zlib states (`deflate::release_unused_spares`),
//! asks malloc to return its free pages (`malloc_trim`). It runs once a second at most, off
//! the async threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::Server;
use crate::deflate;

/// Trims when the open connections have fallen by this share of their peak ...
const FALL: usize = 8;
/// ... and by at least this many.
const AT_LEAST: usize = 64;

/// What tells [`give_back`] that a trim may pay.
#[derive(Debug, Default)]
pub struct Usage {
    /// The most WebSocket connections open at once since the last trim.
    peak: AtomicUsize,
    /// A connection freed its grown buffers since the last trim.
    renewed: AtomicBool,
}

impl Usage {
    /// Records that `open` connections are open now.
    pub fn saw(&self, open: usize) {
        self.peak.fetch_max(open, Ordering::Relaxed);
    }

    /// Records that a connection freed the buffers a large message grew.
    pub fn renewed(&self) {
        self.renewed.store(true, Ordering::Relaxed);
    }
}

/// Runs until dropped, checking once a second how many connections are open.
pub async fn give_back(server: Arc<Server>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let usage = &server.memory;
    loop {
        ticks.tick().await;
        let open = server.open_connections();
        let peak = usage.peak.load(Ordering::Relaxed).max(open);
        let fallen = peak - open >= (peak / FALL).max(AT_LEAST);
        // permessage-deflate's spare zlib states, if no message asked for one this second.
        let released = deflate::release_unused_spares();
        if usage.renewed.swap(false, Ordering::Relaxed) || fallen || released {
            let _ = tokio::task::spawn_blocking(trim).await;
            usage.peak.store(open, Ordering::Relaxed);
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
