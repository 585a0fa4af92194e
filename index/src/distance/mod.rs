//! Distance kernels with runtime CPU dispatch.
//!
//! Five kernels cover the engine: f32 squared L2 and dot product (centroids,
//! exact rerank; also against half floats, the centroids' compact form for
//! search), the SQ8 code kernels (weighted squared L2 and dot product
//! of an f32 query against u8 codes) and XOR + popcount over packed bits
//! (binary collections). Each has a scalar twin in
//! [`scalar`] that tests compare against; [`kernels`] picks AVX-512, AVX2+FMA
//! or scalar once per process.

pub mod gemm;
#[cfg(target_arch = "x86_64")]
mod hamming_x86;
pub mod rows;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;

/// `popcount(a ^ b)` over equal-length word slices.
pub type XorPopcount = fn(&[u64], &[u64]) -> u32;

/// `out[i] = popcount(q ^ code_i)` over a block of packed codes of
/// `8 * q.len()` bytes each, unaligned: one call scores a whole posting.
pub type HammingBlock = fn(&[u64], &[u8], &mut [u32]);

/// A set of kernel implementations for one instruction set.
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    pub name: &'static str,
    /// Squared Euclidean distance; slices must have equal length.
    pub l2_sq: fn(&[f32], &[f32]) -> f32,
    /// `l2_sq(q, row)` for each of `out.len()` consecutive rows of
    /// `q.len()` floats (rows scanned in bulk: group centers, a group's
    /// centroids).
    pub l2_sq_rows: fn(q: &[f32], rows: &[f32], out: &mut [f32]),
    /// Dot product; slices must have equal length.
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// `sum_j w[j] * (q[j] - c[j])^2`; all three of equal length.
    pub l2_sq_u8_weighted: fn(&[f32], &[f32], &[u8]) -> f32,
    /// `sum_j q[j] * c[j]`; equal length.
    pub dot_u8: fn(&[f32], &[u8]) -> f32,
    /// Squared Euclidean distance of an f32 query to a row of IEEE half
    /// floats (bit patterns; centroids held compact for search).
    pub l2_sq_f16: fn(&[f32], &[u16]) -> f32,
    /// Dot product of an f32 query with a row of half floats.
    pub dot_f16: fn(&[f32], &[u16]) -> f32,
    /// `l2_sq_f16(q, row)` for each of `out.len()` consecutive rows.
    pub l2_sq_rows_f16: fn(q: &[f32], rows: &[u16], out: &mut [f32]),
    /// `popcount(a ^ b)` over equal-length word slices: Hamming distance of
    /// packed bit codes.
    pub xor_popcount: XorPopcount,
    /// [`HammingBlock`]: a posting's codes against one query code.
    pub hamming_block: HammingBlock,
    /// PQ encoding: [`scalar::nearest_codewords`] (11-14% of the 10^7
    /// assign stage; compiled for AVX2, 5.9 against 7.3 us a 96-d vector).
    pub nearest_codewords: fn(cols: &[f32], x: &[f32], dsub: usize, out: &mut [u8]),
    /// Residual PQ: [`scalar::posting_table`], one per probed posting.
    pub posting_table: scalar::PostingTable,
    /// [`scalar::plane_sums`] in SIMD where the CPU has a vector popcount;
    /// `None` leaves the row-code scorer on its unrolled POPCNT loops.
    pub plane_sums: Option<scalar::PlaneSums>,
}

pub const SCALAR: Kernels = Kernels {
    name: "scalar",
    l2_sq: scalar::l2_sq,
    l2_sq_rows: scalar::l2_sq_rows,
    dot: scalar::dot,
    l2_sq_f16: scalar::l2_sq_f16,
    dot_f16: scalar::dot_f16,
    l2_sq_rows_f16: scalar::l2_sq_rows_f16,
    l2_sq_u8_weighted: scalar::l2_sq_u8_weighted,
    dot_u8: scalar::dot_u8,
    xor_popcount: scalar::xor_popcount,
    hamming_block: scalar::hamming_block,
    nearest_codewords: scalar::nearest_codewords,
    posting_table: scalar::posting_table,
    plane_sums: None,
};

/// The fastest kernels this CPU supports (detected once).
pub fn kernels() -> &'static Kernels {
    static K: OnceLock<Kernels> = OnceLock::new();
    K.get_or_init(detect)
}

/// Every kernel set this CPU can run, scalar first (for tests and benches).
pub fn available() -> Vec<Kernels> {
    let mut v = vec![SCALAR];
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(k) = x86::avx2() {
            v.push(k);
        }
        if let Some(k) = x86::avx512() {
            v.push(k);
        }
    }
    v
}

/// Every XOR + popcount kernel this CPU can run, by name (the kernel sets
/// share them, so tests and benches check each one here).
pub fn xor_popcount_variants() -> Vec<(&'static str, XorPopcount)> {
    let mut v: Vec<(&'static str, XorPopcount)> = vec![("scalar", scalar::xor_popcount)];
    #[cfg(target_arch = "x86_64")]
    v.extend(hamming_x86::variants());
    v
}

/// Every plane-sums kernel this CPU can run, by name.
pub fn plane_sums_variants() -> Vec<(&'static str, scalar::PlaneSums)> {
    let mut v: Vec<(&'static str, scalar::PlaneSums)> = vec![("scalar", scalar::plane_sums)];
    #[cfg(target_arch = "x86_64")]
    v.extend(hamming_x86::best_plane_sums().map(|f| ("avx512", f)));
    v
}

/// Every block Hamming kernel this CPU can run, by name.
pub fn hamming_block_variants() -> Vec<(&'static str, HammingBlock)> {
    let mut v: Vec<(&'static str, HammingBlock)> = vec![("scalar", scalar::hamming_block)];
    #[cfg(target_arch = "x86_64")]
    v.extend(hamming_x86::block_variants());
    v
}

/// `FATHOM_KERNELS=scalar|avx2|avx512` forces a set (for comparisons);
/// otherwise the fastest available.
fn detect() -> Kernels {
    if let Ok(want) = std::env::var("FATHOM_KERNELS") {
        if let Some(k) = available().into_iter().find(|k| k.name == want) {
            return k;
        }
    }
    // AVX2 first: on the AMD EPYC (Zen 4) machines we run on, the AVX-512
    // f32 kernels measured slower (GloVe-50 l2: 9.7 ns vs 6.2 ns; 384-d:
    // 33.8 vs 24.5; benches/benches/hot_paths.rs). FATHOM_KERNELS=avx512
    // picks them where they win.
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(k) = x86::avx2() {
            return k;
        }
        if let Some(k) = x86::avx512() {
            return k;
        }
    }
    SCALAR
}

/// Hints the CPU to bring every cache line of `bytes` in: scoring rows in
/// list order touches records scattered over memory, and a hint a few rows
/// ahead hides most of each miss.
#[inline(always)]
pub fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for at in (0..bytes.len()).step_by(64).chain(bytes.len().checked_sub(1)) {
        // SAFETY: a prefetch never faults and reads nothing the program
        // sees; the pointer is inside a live slice. SSE is baseline on x86_64.
        unsafe { std::arch::x86_64::_mm_prefetch(bytes[at..].as_ptr() as *const i8, std::arch::x86_64::_MM_HINT_T0) };
    }
}

/// [`prefetch`] of the bytes of a slice of plain numbers (f32 rows, half
/// float rows).
#[inline(always)]
pub fn prefetch_values<T: Copy>(xs: &[T]) {
    // SAFETY: a slice of plain numbers viewed as its bytes: same memory,
    // alignment 1, every byte initialized (callers pass f32 / u16).
    prefetch(unsafe { std::slice::from_raw_parts(xs.as_ptr() as *const u8, std::mem::size_of_val(xs)) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-3 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn simd_equals_scalar_on_random_inputs_of_odd_dimensions() {
        let mut rng = Rng::new(3);
        for dim in [1usize, 3, 7, 8, 15, 16, 17, 31, 33, 50, 64, 96, 100, 129, 384, 1023] {
            let a: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
            let b: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
            let w: Vec<f32> = (0..dim).map(|_| rng.unit_f32()).collect();
            let c: Vec<u8> = (0..dim).map(|_| rng.below(256) as u8).collect();
            let q: Vec<f32> = (0..dim).map(|_| rng.unit_f32() * 255.0).collect();
            for k in available() {
                assert!(close((k.l2_sq)(&a, &b), scalar::l2_sq(&a, &b)), "{} l2 d={dim}", k.name);
                assert!(close((k.dot)(&a, &b), scalar::dot(&a, &b)), "{} dot d={dim}", k.name);
                assert!(
                    close((k.l2_sq_u8_weighted)(&q, &w, &c), scalar::l2_sq_u8_weighted(&q, &w, &c)),
                    "{} l2u8 d={dim}",
                    k.name
                );
                assert!(close((k.dot_u8)(&a, &c), scalar::dot_u8(&a, &c)), "{} dotu8 d={dim}", k.name);
                // Half floats: the kernels against their scalar twins, and
                // the twins against f32 arithmetic on the widened values.
                let h: Vec<u16> = b.iter().map(|&x| half::f16::from_f32(x).to_bits()).collect();
                let wide: Vec<f32> = h.iter().map(|&x| scalar::f16_value(x)).collect();
                assert!(close((k.l2_sq_f16)(&a, &h), scalar::l2_sq_f16(&a, &h)), "{} l2f16 d={dim}", k.name);
                assert!(close((k.dot_f16)(&a, &h), scalar::dot_f16(&a, &h)), "{} dotf16 d={dim}", k.name);
                assert!(close(scalar::l2_sq_f16(&a, &h), scalar::l2_sq(&a, &wide)), "l2f16 twin d={dim}");
                assert!(close(scalar::dot_f16(&a, &h), scalar::dot(&a, &wide)), "dotf16 twin d={dim}");
                // Row counts around the four-row step.
                for n in [0usize, 1, 3, 4, 5, 9] {
                    let rows: Vec<f32> = (0..n * dim).map(|_| rng.normal()).collect();
                    let mut out = vec![f32::NAN; n];
                    (k.l2_sq_rows)(&a, &rows, &mut out);
                    for (r, &o) in out.iter().enumerate() {
                        let row = &rows[r * dim..(r + 1) * dim];
                        assert!(close(o, scalar::l2_sq(&a, row)), "{} l2 rows d={dim} n={n} r={r}", k.name);
                        // Bit for bit the set's own one-row kernel: lookups
                        // compare distances from both.
                        assert_eq!(o.to_bits(), (k.l2_sq)(&a, row).to_bits(), "{} d={dim} n={n} r={r}", k.name);
                    }
                    let half: Vec<u16> = rows.iter().map(|&x| half::f16::from_f32(x).to_bits()).collect();
                    (k.l2_sq_rows_f16)(&a, &half, &mut out);
                    for (r, &o) in out.iter().enumerate() {
                        let row = &half[r * dim..(r + 1) * dim];
                        assert!(close(o, scalar::l2_sq_f16(&a, row)), "{} f16 rows d={dim} n={n} r={r}", k.name);
                        assert_eq!(o.to_bits(), (k.l2_sq_f16)(&a, row).to_bits(), "{} f16 d={dim} n={n} r={r}", k.name);
                    }
                }
            }
        }
    }

    #[test]
    fn nearest_codewords_equal_scalar_and_pick_the_first_nearest() {
        let mut rng = Rng::new(11);
        for (dim, dsub) in [(96usize, 2usize), (50, 2), (7, 3), (384, 2), (16, 4)] {
            let m = dim.div_ceil(dsub);
            let cols: Vec<f32> = (0..m * dsub * scalar::CODEWORDS).map(|_| rng.normal()).collect();
            let x: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
            let mut want = vec![0u8; m];
            scalar::nearest_codewords(&cols, &x, dsub, &mut want);
            // Against a plain search (x zero past its end).
            for (s, &w) in want.iter().enumerate() {
                let d = |c: usize| -> f32 {
                    (0..dsub)
                        .map(|j| {
                            let t = x.get(s * dsub + j).copied().unwrap_or(0.0) - cols[(s * dsub + j) * 256 + c];
                            t * t
                        })
                        .sum()
                };
                let best = (0..256).min_by(|&a, &b| d(a).total_cmp(&d(b)).then(a.cmp(&b))).unwrap();
                assert_eq!(w as usize, best, "{dim}/{dsub} sub {s}");
            }
            for k in available() {
                let mut got = vec![0u8; m];
                (k.nearest_codewords)(&cols, &x, dsub, &mut got);
                assert_eq!(got, want, "{} {dim}/{dsub}", k.name);
            }
        }
        // Ties go to the first codeword.
        let mut cols = vec![5.0f32; scalar::CODEWORDS];
        cols[77] = 1.0;
        cols[200] = 1.0;
        for k in available() {
            let mut got = [0u8];
            (k.nearest_codewords)(&cols, &[1.0], 1, &mut got);
            assert_eq!(got[0], 77, "{}", k.name);
        }
    }

    #[test]
    fn posting_tables_equal_their_definition_in_every_kernel_set() {
        let mut rng = Rng::new(12);
        for (dim, dsub) in [(50usize, 3usize), (50, 2), (7, 4), (96, 2), (16, 16)] {
            let m = dim.div_ceil(dsub);
            let cols: Vec<f32> = (0..m * dsub * scalar::CODEWORDS).map(|_| rng.normal()).collect();
            let base: Vec<f32> = (0..m * scalar::CODEWORDS).map(|_| rng.normal()).collect();
            let c: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
            let mut want = vec![0f32; base.len()];
            scalar::posting_table(&base, &cols, &c, dsub, &mut want);
            for s in 0..m {
                for w in 0..scalar::CODEWORDS {
                    let shift: f32 = (0..dsub)
                        .filter(|j| s * dsub + j < dim)
                        .map(|j| 2.0 * c[s * dsub + j] * cols[(s * dsub + j) * 256 + w])
                        .sum();
                    let (got, def) = (want[s * 256 + w], base[s * 256 + w] + shift);
                    assert!((got - def).abs() <= 1e-5 * (1.0 + def.abs()), "{dim}/{dsub} ({s}, {w})");
                }
            }
            for k in available() {
                let mut got = vec![f32::NAN; base.len()];
                (k.posting_table)(&base, &cols, &c, dsub, &mut got);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{} {dim}/{dsub}", k.name);
            }
        }
    }

    #[test]
    fn xor_popcount_equals_scalar_at_every_length() {
        let mut rng = Rng::new(5);
        for words in (0usize..40).chain([63, 64, 65, 127, 128, 200]) {
            let a: Vec<u64> = (0..words).map(|_| rng.next_u64()).collect();
            let b: Vec<u64> = (0..words).map(|_| rng.next_u64()).collect();
            let want: u32 = a.iter().zip(&b).map(|(x, y)| (x ^ y).count_ones()).sum();
            assert_eq!(scalar::xor_popcount(&a, &b), want);
            for (name, f) in xor_popcount_variants() {
                assert_eq!(f(&a, &b), want, "{name} words={words}");
                assert_eq!(f(&a, &a), 0);
                let ones = vec![u64::MAX; words];
                assert_eq!(f(&ones, &vec![0; words]), 64 * words as u32);
            }
        }
    }

    #[test]
    fn plane_sums_equal_their_definition() {
        let mut rng = Rng::new(8);
        for words in [1usize, 2, 6, 7, 8, 9, 12, 16, 24, 25] {
            let q: Vec<u64> = (0..4 * words).map(|_| rng.next_u64()).collect();
            // One byte of offset: records need not be aligned.
            let bytes: Vec<u8> = (0..1 + 4 * 8 * words).map(|_| rng.below(256) as u8).collect();
            let planes = &bytes[1..];
            let mut want = [0u64; 4];
            for (l, w) in want.iter_mut().enumerate() {
                for (i, c) in planes[l * 8 * words..(l + 1) * 8 * words].chunks_exact(8).enumerate() {
                    let c = u64::from_le_bytes(c.try_into().unwrap());
                    for t in 0..4 {
                        *w += ((q[t * words + i] & c).count_ones() as u64) << t;
                    }
                    *w += (c.count_ones() as u64) << 32;
                }
            }
            for (name, f) in plane_sums_variants() {
                for n in 1..=4 {
                    let mut out = vec![7u64; n];
                    f(&q, words, planes, &mut out);
                    assert_eq!(out, want[..n], "{name} words={words} planes={n}");
                }
                // Planes past the end of the bytes give 0, never a panic.
                let mut out = vec![7u64; 4];
                f(&q, words, &planes[..8 * words], &mut out);
                assert_eq!(out, [want[0], 0, 0, 0], "{name} words={words}");
            }
        }
    }

    #[test]
    fn hamming_block_equals_per_code_popcount() {
        let mut rng = Rng::new(6);
        for words in [1usize, 2, 5, 6, 8, 9, 16, 17] {
            let n = 13;
            let q: Vec<u64> = (0..words).map(|_| rng.next_u64()).collect();
            // One byte of offset: codes inside a posting need not be aligned.
            let bytes: Vec<u8> = (0..1 + n * 8 * words).map(|_| rng.below(256) as u8).collect();
            let codes = &bytes[1..];
            let want: Vec<u32> = codes
                .chunks_exact(8 * words)
                .map(|c| {
                    let w: Vec<u64> = c.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap())).collect();
                    scalar::xor_popcount(&q, &w)
                })
                .collect();
            for (name, f) in hamming_block_variants() {
                let mut out = vec![0u32; n];
                f(&q, codes, &mut out);
                assert_eq!(out, want, "{name} words={words}");
            }
        }
    }

    #[test]
    fn detected_set_is_one_of_the_available() {
        let names: Vec<_> = available().iter().map(|k| k.name).collect();
        assert!(names.contains(&kernels().name));
    }
}
