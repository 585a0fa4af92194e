//! XOR + popcount kernels for packed bit codes: the hardware POPCNT
//! instruction, an AVX2 nibble-table count (for long codes) and AVX-512
//! VPOPCNTDQ. Each `unsafe fn` requires its target features; the safe
//! wrappers are only handed out after runtime detection succeeded.

use std::arch::x86_64::*;

/// POPCNT available (every x86-64 CPU with AVX2 has it).
pub(super) fn has_popcnt() -> bool {
    is_x86_feature_detected!("popcnt")
}

pub(super) fn has_avx512_popcount() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vpopcntdq")
}

/// The kernels this CPU can run (AVX2 implies POPCNT on every CPU we know).
pub(super) fn variants() -> Vec<(&'static str, super::XorPopcount)> {
    let mut v: Vec<(&'static str, super::XorPopcount)> = Vec::new();
    if has_popcnt() && is_x86_feature_detected!("avx2") {
        v.push(("avx2", xor_popcount_avx2_safe));
    }
    if has_avx512_popcount() {
        v.push(("avx512", xor_popcount_avx512_safe));
    }
    v
}

/// The block kernels this CPU can run.
pub(super) fn block_variants() -> Vec<(&'static str, super::HammingBlock)> {
    let mut v: Vec<(&'static str, super::HammingBlock)> = Vec::new();
    if has_popcnt() {
        v.push(("popcnt", hamming_block_popcnt_safe));
    }
    if has_avx512_popcount() {
        v.push(("avx512", hamming_block_avx512_safe));
    }
    v
}

/// The block kernel the searcher uses. VPOPCNTDQ where present: in search
/// (postings just read) it scored 1-bit MiniLM postings in 0.015-0.037 ms
/// against 0.023-0.041 for the POPCNT loop. On a long scan of codes from
/// RAM it is the slower one (5 vs 18 GiB/s, hamming_scan in RESULTS.md).
pub(super) fn best_block() -> super::HammingBlock {
    if has_avx512_popcount() {
        hamming_block_avx512_safe
    } else {
        hamming_block_popcnt_safe
    }
}

fn hamming_block_popcnt_safe(q: &[u64], codes: &[u8], out: &mut [u32]) {
    // SAFETY: only handed out after `has_popcnt()` succeeded.
    unsafe { hamming_block_popcnt(q, codes, out) }
}

fn hamming_block_avx512_safe(q: &[u64], codes: &[u8], out: &mut [u32]) {
    // SAFETY: only handed out after `has_avx512_popcount()` succeeded.
    unsafe { hamming_block_avx512(q, codes, out) }
}

/// # Safety
/// The CPU must support POPCNT.
#[target_feature(enable = "popcnt")]
unsafe fn hamming_block_popcnt(q: &[u64], codes: &[u8], out: &mut [u32]) {
    super::scalar::hamming_block(q, codes, out)
}

/// # Safety
/// The CPU must support AVX-512F and AVX-512 VPOPCNTDQ.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn hamming_block_avx512(q: &[u64], codes: &[u8], out: &mut [u32]) {
    let words = q.len();
    let cb = 8 * words;
    let n = out.len().min(codes.len() / cb.max(1));
    for (i, o) in out[..n].iter_mut().enumerate() {
        let code = &codes[i * cb..(i + 1) * cb];
        let mut acc = _mm512_setzero_si512();
        let mut w = 0;
        while w < words {
            let take = (words - w).min(8);
            let mask: __mmask8 = ((1u32 << take) - 1) as u8;
            // SAFETY: the masks load only the `take` words left in `q` and
            // in this code's `8 * take` bytes; unaligned loads are allowed.
            let x = unsafe {
                _mm512_xor_si512(
                    _mm512_maskz_loadu_epi64(mask, q.as_ptr().add(w) as *const i64),
                    _mm512_maskz_loadu_epi64(mask, code.as_ptr().add(8 * w) as *const i64),
                )
            };
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
            w += take;
        }
        *o = _mm512_reduce_add_epi64(acc) as u32;
    }
}

/// The resident row codes' plane sums with VPOPCNTDQ where present (see
/// [`super::scalar::plane_sums`]): a 384-d plane is one masked 512-bit load
/// and five vector popcounts instead of 30 scalar ones.
pub(super) fn best_plane_sums() -> Option<super::scalar::PlaneSums> {
    has_avx512_popcount().then_some(plane_sums_avx512_safe as super::scalar::PlaneSums)
}

fn plane_sums_avx512_safe(q: &[u64], words: usize, planes: &[u8], out: &mut [u64]) {
    // SAFETY: only handed out after `has_avx512_popcount()` succeeded.
    unsafe { plane_sums_avx512(q, words, planes, out) }
}

/// # Safety
/// The CPU must support AVX-512F and AVX-512 VPOPCNTDQ.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn plane_sums_avx512(q: &[u64], words: usize, planes: &[u8], out: &mut [u64]) {
    out.fill(0);
    let Some(q) = q.get(..4 * words) else { return };
    for (l, o) in out.iter_mut().enumerate() {
        let Some(plane) = planes.get(l * 8 * words..(l + 1) * 8 * words) else { continue };
        let mut acc = _mm512_setzero_si512();
        let mut w = 0;
        while w < words {
            let take = (words - w).min(8);
            let mask: __mmask8 = ((1u32 << take) - 1) as u8;
            // SAFETY: the masks load only the `take` words left in this
            // plane (`8 * words` bytes) and in each of `q`'s four planes
            // (`4 * words` words, checked before the loop); unaligned loads are allowed.
            let (c, q0, q1, q2, q3) = unsafe {
                (
                    _mm512_maskz_loadu_epi64(mask, plane.as_ptr().add(8 * w) as *const i64),
                    _mm512_maskz_loadu_epi64(mask, q.as_ptr().add(w) as *const i64),
                    _mm512_maskz_loadu_epi64(mask, q.as_ptr().add(words + w) as *const i64),
                    _mm512_maskz_loadu_epi64(mask, q.as_ptr().add(2 * words + w) as *const i64),
                    _mm512_maskz_loadu_epi64(mask, q.as_ptr().add(3 * words + w) as *const i64),
                )
            };
            let a0 = _mm512_popcnt_epi64(_mm512_and_si512(q0, c));
            let a1 = _mm512_slli_epi64::<1>(_mm512_popcnt_epi64(_mm512_and_si512(q1, c)));
            let a2 = _mm512_slli_epi64::<2>(_mm512_popcnt_epi64(_mm512_and_si512(q2, c)));
            let a3 = _mm512_slli_epi64::<3>(_mm512_popcnt_epi64(_mm512_and_si512(q3, c)));
            let ones = _mm512_slli_epi64::<32>(_mm512_popcnt_epi64(c));
            acc = _mm512_add_epi64(acc, _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
            acc = _mm512_add_epi64(acc, ones);
            w += take;
        }
        *o = _mm512_reduce_add_epi64(acc) as u64;
    }
}

pub(super) fn xor_popcount_avx2_safe(a: &[u64], b: &[u64]) -> u32 {
    // SAFETY: only handed out (by `x86::avx2()`, `x86::avx512()`,
    // `variants()`) after `has_popcnt()` and AVX2 were detected.
    unsafe { xor_popcount_avx2(a, b) }
}

pub(super) fn xor_popcount_avx512_safe(a: &[u64], b: &[u64]) -> u32 {
    // SAFETY: only handed out after `has_avx512_popcount()` succeeded.
    unsafe { xor_popcount_avx512(a, b) }
}

/// # Safety
/// The CPU must support POPCNT.
#[target_feature(enable = "popcnt")]
unsafe fn xor_popcount_hw(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// Below this many words the scalar POPCNT loop wins (the table count pays
/// a horizontal sum); a 384-bit code is 6 words.
const AVX2_MIN_WORDS: usize = 16;

/// # Safety
/// The CPU must support AVX2 and POPCNT.
#[target_feature(enable = "avx2,popcnt")]
unsafe fn xor_popcount_avx2(a: &[u64], b: &[u64]) -> u32 {
    let n = a.len().min(b.len());
    if n < AVX2_MIN_WORDS {
        // SAFETY: POPCNT is enabled in this function.
        return unsafe { xor_popcount_hw(&a[..n], &b[..n]) };
    }
    // Per-nibble counts by table lookup, summed per 64-bit lane with SAD.
    let table = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
    );
    let low = _mm256_set1_epi8(0x0f);
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    while i + 4 <= n {
        // SAFETY: i + 4 <= n words are in bounds of both slices.
        let x = unsafe {
            _mm256_xor_si256(
                _mm256_loadu_si256(a.as_ptr().add(i) as *const __m256i),
                _mm256_loadu_si256(b.as_ptr().add(i) as *const __m256i),
            )
        };
        let lo = _mm256_shuffle_epi8(table, _mm256_and_si256(x, low));
        let hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(x, 4), low));
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_add_epi8(lo, hi), _mm256_setzero_si256()));
        i += 4;
    }
    let mut lanes = [0u64; 4];
    // SAFETY: an unaligned store of 32 bytes into a 32-byte array.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc) };
    // SAFETY: POPCNT is enabled in this function.
    let tail = unsafe { xor_popcount_hw(&a[i..n], &b[i..n]) };
    (lanes.iter().sum::<u64>() as u32) + tail
}

/// # Safety
/// The CPU must support AVX-512F and AVX-512 VPOPCNTDQ.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn xor_popcount_avx512(a: &[u64], b: &[u64]) -> u32 {
    let n = a.len().min(b.len());
    let mut acc = _mm512_setzero_si512();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n words are in bounds of both slices.
        let x = unsafe {
            _mm512_xor_si512(
                _mm512_loadu_si512(a.as_ptr().add(i) as *const __m512i),
                _mm512_loadu_si512(b.as_ptr().add(i) as *const __m512i),
            )
        };
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
        i += 8;
    }
    if i < n {
        let mask: __mmask8 = ((1u32 << (n - i)) - 1) as u8;
        // SAFETY: masked loads touch only the n - i < 8 remaining words.
        let x = unsafe {
            _mm512_xor_si512(
                _mm512_maskz_loadu_epi64(mask, a.as_ptr().add(i) as *const i64),
                _mm512_maskz_loadu_epi64(mask, b.as_ptr().add(i) as *const i64),
            )
        };
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
    }
    _mm512_reduce_add_epi64(acc) as u32
}
