//! A server's zlib states between messages, shared by the worker threads, and given back to the
//! system once no message needs them.
//!
//! Without context takeover no compression state outlives a message, so a connection needs
//! none of its own: a message takes a spare and gives it back reset. Making one costs more
//! than deflating or inflating a small message (zlib-rs's deflate state is 371 KiB at 15
//! bits, its inflate state 46 KiB, both zeroed when made), so spares are kept while messages
//! come, about one of each per worker thread. Once a whole tick of `memory::give_back` (a
//! second) passes in which none was asked for, [`release_unused`] drops them all: a server
//! whose connections have gone quiet holds no zlib state. Kept in thread-locals, as they once
//! were, nothing could free them: 417 KiB a worker thread, 0.2 KiB of each of 2,000 idle
//! connections on one thread (benchmark scenario 4b).

use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use flate2::{Compress, Compression, Decompress};

/// The zlib level for outgoing messages. 1 is zlib-rs's fastest (its own quick strategy): an
/// echo server pays the compression for every reply, and level 6 shrank a 16 KiB JSON-like
/// message only a little more for several times the CPU.
const LEVEL: u32 = 1;

/// What waits between messages.
struct Spares {
    /// Compressors, each with the window bits it was made for.
    compressors: Vec<(u8, Compress)>,
    inflaters: Vec<Decompress>,
    /// Whether a spare was asked for since the last [`Spares::release_unused`].
    asked: bool,
    /// How many of each kind are kept: as many as can be busy at once on the worker threads
    /// (tokio starts one per core); more are made only while a burst lasts.
    most: usize,
}

impl Spares {
    fn new(most: usize) -> Spares {
        Spares {
            compressors: Vec::new(),
            inflaters: Vec::new(),
            asked: false,
            most,
        }
    }

    fn take_compressor(&mut self, window_bits: u8) -> Option<Compress> {
        self.asked = true;
        let at = (self.compressors.iter()).rposition(|(bits, _)| *bits == window_bits)?;
        Some(self.compressors.swap_remove(at).1)
    }

    fn keep_compressor(&mut self, window_bits: u8, compressor: Compress) {
        if self.compressors.len() < self.most {
            self.compressors.push((window_bits, compressor));
        }
    }

    fn take_inflater(&mut self) -> Option<Decompress> {
        self.asked = true;
        self.inflaters.pop()
    }

    fn keep_inflater(&mut self, decompress: Decompress) {
        if self.inflaters.len() < self.most {
            self.inflaters.push(decompress);
        }
    }

    /// Everything kept, if nothing was asked for since the last call (the caller drops it,
    /// after letting go of the lock); nothing otherwise.
    fn release_unused(&mut self) -> (Vec<(u8, Compress)>, Vec<Decompress>) {
        if std::mem::take(&mut self.asked) {
            return (Vec::new(), Vec::new());
        }
        let compressors = std::mem::take(&mut self.compressors);
        (compressors, std::mem::take(&mut self.inflaters))
    }
}

static SPARES: LazyLock<Mutex<Spares>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    Mutex::new(Spares::new(cores))
});

fn spares() -> MutexGuard<'static, Spares> {
    // Nothing panics while holding the lock; if anything did, the spares are still sound.
    SPARES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A reset compressor for a window of `window_bits`: a spare, or a new one.
pub(super) fn take_compressor(window_bits: u8) -> Compress {
    let spare = spares().take_compressor(window_bits);
    spare.unwrap_or_else(|| new_compressor(window_bits))
}

/// A new compressor for a window of `window_bits`, at the level every message is compressed
/// with.
pub(super) fn new_compressor(window_bits: u8) -> Compress {
    // `negotiate` never agrees on less than 9 bits, and `Compressor` compresses nothing with
    // fewer; the clamp keeps flate2 from panicking all the same.
    let bits = window_bits.clamp(9, 15);
    Compress::new_with_window_bits(Compression::new(LEVEL), false, bits)
}

/// Keeps `compressor` as a spare, reset, unless there are enough.
pub(super) fn give_back_compressor(window_bits: u8, mut compressor: Compress) {
    compressor.reset();
    spares().keep_compressor(window_bits, compressor);
}

/// A reset inflater: a spare, or a new one.
pub(super) fn take_inflater() -> Decompress {
    let spare = spares().take_inflater();
    // 15 bits read a stream made with any smaller window.
    spare.unwrap_or_else(|| Decompress::new_with_window_bits(false, 15))
}

/// Keeps `decompress` as a spare, reset, unless there are enough.
pub(super) fn give_back_inflater(mut decompress: Decompress) {
    decompress.reset(false);
    spares().keep_inflater(decompress);
}

/// Drops every spare if none was asked for since the last call; whether any was dropped (a
/// trim then gives their memory back). `memory::give_back` calls it once a second.
pub fn release_unused() -> bool {
    let (compressors, inflaters) = spares().release_unused();
    !(compressors.is_empty() && inflaters.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spares_are_kept_while_asked_for_and_dropped_after_a_tick_without() {
        let mut spares = Spares::new(2);
        assert!(spares.take_inflater().is_none());
        for _ in 0..3 {
            spares.keep_inflater(Decompress::new(false));
        }
        assert_eq!(spares.inflaters.len(), 2, "no more than `most`");
        let compressor = || Compress::new(Compression::fast(), false);
        spares.keep_compressor(9, compressor());
        spares.keep_compressor(15, compressor());
        assert!(
            spares.take_compressor(12).is_none(),
            "only for its own window"
        );
        assert!(spares.take_compressor(9).is_some());
        spares.keep_compressor(9, compressor());
        // Asked for since the last tick: kept.
        let (compressors, inflaters) = spares.release_unused();
        assert!(compressors.is_empty() && inflaters.is_empty());
        // A tick with no message: all dropped, once.
        let (compressors, inflaters) = spares.release_unused();
        assert_eq!((compressors.len(), inflaters.len()), (2, 2));
        assert!(spares.compressors.is_empty() && spares.inflaters.is_empty());
        let (compressors, inflaters) = spares.release_unused();
        assert!(compressors.is_empty() && inflaters.is_empty());
    }
}
