//! The seeded generator (SplitMix64) behind every random choice of an index
//! build (samples, k-means seeds, rotations, graph levels) and of the codec's
//! rotation. It is deterministic across platforms and thread counts, so a
//! build is reproducible for a seed.
//!
//! Its stream fixes index bytes: a change here changes every index built
//! after it. It lives in its own crate, apart from the client and the
//! engine, and a test pins its first outputs.

#![forbid(unsafe_code)]
// Input never panics the process: errors are returned (tests may unwrap).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// A generator for the `stream`-th independent task derived from `seed`.
    pub fn derive(seed: u64, stream: u64) -> Self {
        let mut r = Rng::new(seed.wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03)));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in [0, 1).
    pub fn unit_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    /// `count` distinct indices from `0..n`, sorted (Floyd's algorithm).
    pub fn sample_indices(&mut self, n: u64, count: u64) -> Vec<u64> {
        let count = count.min(n);
        if count == n {
            return (0..n).collect();
        }
        let mut chosen = std::collections::HashSet::with_capacity(count as usize);
        for j in (n - count)..n {
            let t = self.below(j + 1);
            if !chosen.insert(t) {
                chosen.insert(j);
            }
        }
        let mut v: Vec<u64> = chosen.into_iter().collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_distinct_sorted_and_deterministic() {
        let a = Rng::new(7).sample_indices(1000, 100);
        let b = Rng::new(7).sample_indices(1000, 100);
        assert_eq!(a, b);
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Rng::new(1).sample_indices(10, 20).len(), 10);
    }

    const PINNED_SEED_42: [u64; 3] = [0x28ef_e333_b266_f103, 0x4752_6757_130f_9f52, 0x581c_e1ff_0e4a_e394];
    const PINNED_DERIVED_42_7: u64 = 0x0f90_5150_8834_3993;
    const PINNED_SAMPLE_9: [u64; 5] = [16, 249, 451, 581, 898];

    /// Every index byte depends on this stream: a change must be deliberate
    /// (and come with a format version), never a side effect.
    #[test]
    fn stream_is_pinned() {
        let mut r = Rng::new(42);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(got, PINNED_SEED_42);
        let mut d = Rng::derive(42, 7);
        assert_eq!(d.next_u64(), PINNED_DERIVED_42_7);
        assert_eq!(Rng::new(9).sample_indices(1_000, 5), PINNED_SAMPLE_9);
    }
}
