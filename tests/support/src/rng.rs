//! The one random number generator of the tests: SplitMix64, small and deterministic, so that
//! a failing case replays from the seed its test prints, on any machine. Any seed will do,
//! zero included (xorshift, which the differential test once used, stays at zero forever).

/// SplitMix64 (Steele, Lea and Flood; the seeding generator of Java's `SplittableRandom` and
/// of xoshiro): one addition and two multiplications a number.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The generator that `seed` starts.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number from 0 to `n - 1` (`n` must not be 0). The modulo's bias is far below what a
    /// test could notice for the small `n` tests use.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `true` in `percent` cases out of 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// A generator of its own for a part of a case (a socket's read sizes), seeded from this
    /// one, so that the part draws without shifting the rest of the case's sequence.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_numbers_and_zero_is_a_seed() {
        let (mut a, mut b) = (Rng::new(0), Rng::new(0));
        let first: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        assert_eq!(first, (0..4).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert!(first.iter().all(|n| *n != 0), "{first:x?}");
        // SplitMix64's published first output for seed 0.
        assert_eq!(first[0], 0xe220_a839_7b1d_cdaf);
        let mut rng = Rng::new(7);
        assert!((0..1000).all(|_| rng.below(10) < 10));
        let heads = (0..1000).filter(|_| rng.chance(50)).count();
        assert!((400..600).contains(&heads), "{heads}");
    }
}
