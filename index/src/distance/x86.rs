//! AVX2+FMA and AVX-512 kernels.
//!
//! Each `unsafe fn` requires its target features; the safe wrappers are only
//! handed out by [`avx2`] / [`avx512`] after runtime detection succeeded.
//! Tails shorter than a vector fall back to scalar code.

use super::hamming_x86::{self, xor_popcount_avx2_safe, xor_popcount_avx512_safe};
use super::{scalar, Kernels};
use std::arch::x86_64::*;

pub(super) fn avx2() -> Option<Kernels> {
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && hamming_x86::has_popcnt() {
        Some(Kernels {
            name: "avx2",
            l2_sq: l2_sq_avx2_safe,
            l2_sq_rows: l2_sq_rows_avx2_safe,
            dot: dot_avx2_safe,
            l2_sq_f16: f16_kernels().0,
            dot_f16: f16_kernels().1,
            l2_sq_rows_f16: f16_kernels().2,
            l2_sq_u8_weighted: l2_u8w_avx2_safe,
            dot_u8: dot_u8_avx2_safe,
            // VPOPCNTDQ where present: 2x the AVX2/POPCNT rate on Zen 4
            // (benches/RESULTS.md, hamming_scan), without the f32 penalty.
            xor_popcount: if hamming_x86::has_avx512_popcount() {
                xor_popcount_avx512_safe
            } else {
                xor_popcount_avx2_safe
            },
            hamming_block: hamming_x86::best_block(),
            nearest_codewords: nearest_codewords_avx2_safe,
            // 512-bit where present: the 256-bit loads and stores are split in
            // halves under our baseline tuning (see posting_table_avx2).
            posting_table: if is_x86_feature_detected!("avx512f") {
                posting_table_avx512_safe
            } else {
                posting_table_avx2_safe
            },
            plane_sums: hamming_x86::best_plane_sums(),
        })
    } else {
        None
    }
}

pub(super) fn avx512() -> Option<Kernels> {
    if is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && hamming_x86::has_popcnt()
    {
        Some(Kernels {
            name: "avx512",
            l2_sq: l2_sq_avx512_safe,
            // Row by row: bit-identical to this set's `l2_sq`.
            l2_sq_rows: l2_sq_rows_avx512_safe,
            dot: dot_avx512_safe,
            l2_sq_f16: f16_kernels().0,
            dot_f16: f16_kernels().1,
            l2_sq_rows_f16: f16_kernels().2,
            // The u8 kernels stay on AVX2: the AVX-512 variants measured 6x
            // slower on GloVe-50 (masked 16-byte loads), see RESULTS.md.
            l2_sq_u8_weighted: l2_u8w_avx2_safe,
            dot_u8: dot_u8_avx2_safe,
            // VPOPCNTDQ where present (Ice Lake, Zen 4 and later).
            xor_popcount: if hamming_x86::has_avx512_popcount() {
                xor_popcount_avx512_safe
            } else {
                xor_popcount_avx2_safe
            },
            hamming_block: hamming_x86::best_block(),
            nearest_codewords: nearest_codewords_avx2_safe,
            posting_table: posting_table_avx512_safe,
            plane_sums: hamming_x86::best_plane_sums(),
        })
    } else {
        None
    }
}

/// The half-float kernels: AVX2 with F16C's conversions where the CPU has
/// them (every AVX2 CPU we know of), else the scalar twins.
type F16Kernels = (fn(&[f32], &[u16]) -> f32, fn(&[f32], &[u16]) -> f32, fn(&[f32], &[u16], &mut [f32]));

fn f16_kernels() -> F16Kernels {
    if is_x86_feature_detected!("f16c") && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        (l2_sq_f16_avx2_safe, dot_f16_avx2_safe, l2_sq_rows_f16_avx2_safe)
    } else {
        (scalar::l2_sq_f16, scalar::dot_f16, scalar::l2_sq_rows_f16)
    }
}

// The safe wrappers: only reachable through a `Kernels` built after detection.
macro_rules! safe_wrapper {
    ($safe:ident, $inner:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $safe($($arg: $ty),*) -> f32 {
            // SAFETY: this function pointer is only handed out by `avx2()` /
            // `avx512()`, which checked the CPU supports `$inner`'s features.
            unsafe { $inner($($arg),*) }
        }
    };
}
safe_wrapper!(l2_sq_avx2_safe, l2_sq_avx2, (a: &[f32], b: &[f32]));
safe_wrapper!(dot_avx2_safe, dot_avx2, (a: &[f32], b: &[f32]));
safe_wrapper!(l2_u8w_avx2_safe, l2_u8w_avx2, (q: &[f32], w: &[f32], c: &[u8]));
safe_wrapper!(dot_u8_avx2_safe, dot_u8_avx2, (q: &[f32], c: &[u8]));
safe_wrapper!(l2_sq_avx512_safe, l2_sq_avx512, (a: &[f32], b: &[f32]));

fn l2_sq_rows_avx512_safe(q: &[f32], rows: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len().max(1))) {
        *o = l2_sq_avx512_safe(q, row);
    }
}

fn nearest_codewords_avx2_safe(cols: &[f32], x: &[f32], dsub: usize, out: &mut [u8]) {
    // SAFETY: only handed out by `avx2()` / `avx512()`, which checked AVX2
    // and FMA.
    unsafe { nearest_codewords_avx2(cols, x, dsub, out) }
}

/// [`scalar::nearest_codewords`] compiled for AVX2 (eight codewords a lane).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn nearest_codewords_avx2(cols: &[f32], x: &[f32], dsub: usize, out: &mut [u8]) {
    scalar::nearest_codewords_body(cols, x, dsub, out)
}

fn posting_table_avx2_safe(base: &[f32], cols: &[f32], centroid: &[f32], dsub: usize, out: &mut [f32]) {
    // SAFETY: only handed out by `avx2()` / `avx512()`, which checked AVX2.
    unsafe { posting_table_avx2(base, cols, centroid, dsub, out) }
}

/// [`scalar::posting_table`] with AVX2 intrinsics: eight codewords a
/// register, every dimension of the sub-space added before the one store
/// (compiled from the scalar body, LLVM split the unaligned 256-bit loads
/// and stores in halves and the table took as long as the scan).
/// Multiply then add, unfused, as the scalar body: bit-identical.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn posting_table_avx2(base: &[f32], cols: &[f32], centroid: &[f32], dsub: usize, out: &mut [f32]) {
    const W: usize = scalar::CODEWORDS;
    for (o, b, cols, scales) in scalar::posting_table_rows(base, cols, centroid, dsub, out) {
        for block in (0..W).step_by(8) {
            // SAFETY: block + 8 <= W, the length of `o`, `b` and each column.
            unsafe {
                let mut acc = _mm256_loadu_ps(b.as_ptr().add(block));
                for (col, &c) in cols.iter().zip(scales) {
                    let w = _mm256_loadu_ps(col.as_ptr().add(block));
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(2.0 * c), w));
                }
                _mm256_storeu_ps(o.as_mut_ptr().add(block), acc);
            }
        }
    }
}

fn posting_table_avx512_safe(base: &[f32], cols: &[f32], centroid: &[f32], dsub: usize, out: &mut [f32]) {
    // SAFETY: only handed out by `avx512()`, which checked AVX-512F, or by
    // `avx2()` after checking it.
    unsafe { posting_table_avx512(base, cols, centroid, dsub, out) }
}

/// [`posting_table_avx2`] sixteen codewords a register (512-bit loads and
/// stores are not split as the 256-bit ones are under our baseline CPU
/// tuning). Bit-identical to the scalar body.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn posting_table_avx512(base: &[f32], cols: &[f32], centroid: &[f32], dsub: usize, out: &mut [f32]) {
    const W: usize = scalar::CODEWORDS;
    for (o, b, cols, scales) in scalar::posting_table_rows(base, cols, centroid, dsub, out) {
        for block in (0..W).step_by(16) {
            // SAFETY: block + 16 <= W, the length of `o`, `b` and each column.
            unsafe {
                let mut acc = _mm512_loadu_ps(b.as_ptr().add(block));
                for (col, &c) in cols.iter().zip(scales) {
                    let w = _mm512_loadu_ps(col.as_ptr().add(block));
                    acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_set1_ps(2.0 * c), w));
                }
                _mm512_storeu_ps(o.as_mut_ptr().add(block), acc);
            }
        }
    }
}

fn l2_sq_rows_avx2_safe(q: &[f32], rows: &[f32], out: &mut [f32]) {
    // SAFETY: only handed out by `avx2()` / `avx512()`, which checked AVX2
    // and FMA.
    unsafe { l2_sq_rows_avx2(q, rows, out) }
}
safe_wrapper!(dot_avx512_safe, dot_avx512, (a: &[f32], b: &[f32]));

fn l2_sq_f16_avx2_safe(q: &[f32], c: &[u16]) -> f32 {
    // SAFETY: only handed out by `f16_kernels()`, which checked F16C, AVX2
    // and FMA.
    unsafe { l2_sq_f16_avx2(q, c) }
}

fn dot_f16_avx2_safe(q: &[f32], c: &[u16]) -> f32 {
    // SAFETY: as `l2_sq_f16_avx2_safe`.
    unsafe { dot_f16_avx2(q, c) }
}

fn l2_sq_rows_f16_avx2_safe(q: &[f32], rows: &[u16], out: &mut [f32]) {
    // SAFETY: as `l2_sq_f16_avx2_safe`.
    unsafe { l2_sq_rows_f16_avx2(q, rows, out) }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum256(v: __m256) -> f32 {
    let hi = _mm256_extractf128_ps(v, 1);
    let lo = _mm256_castps256_ps128(v);
    let s = _mm_add_ps(hi, lo);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn l2_sq_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, and n is at most either slice's length.
        unsafe {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)));
            let d1 = _mm256_sub_ps(_mm256_loadu_ps(a.as_ptr().add(i + 8)), _mm256_loadu_ps(b.as_ptr().add(i + 8)));
            acc0 = _mm256_fmadd_ps(d0, d0, acc0);
            acc1 = _mm256_fmadd_ps(d1, d1, acc1);
        }
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)));
            acc0 = _mm256_fmadd_ps(d0, d0, acc0);
        }
        i += 8;
    }
    hsum256(_mm256_add_ps(acc0, acc1)) + scalar::l2_sq(&a[i..n], &b[i..n])
}

/// The body of the four-rows-at-a-time squared L2 kernels, for rows of
/// f32 or of half floats: `$load` widens 8 values at a pointer, `$tail`
/// scores the last < 8 dimensions, `$one` scores one row.
macro_rules! l2_sq_rows_body {
    ($q:ident, $rows:ident, $out:ident, $load:ident, $tail:path, $one:ident) => {{
        let (q, rows, out) = ($q, $rows, $out);
        let dim = q.len();
        let n = out.len().min(rows.len() / dim.max(1));
        let mut r = 0;
        while r + 4 <= n {
            let base = &rows[r * dim..(r + 4) * dim];
            let mut acc0 = [_mm256_setzero_ps(); 4];
            let mut acc1 = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            while i + 16 <= dim {
                // SAFETY: i + 16 <= dim, so q[i..i + 16] is in q and row j's
                // [i..i + 16] lies in `base` (4 rows of dim values).
                unsafe {
                    let q0 = _mm256_loadu_ps(q.as_ptr().add(i));
                    let q1 = _mm256_loadu_ps(q.as_ptr().add(i + 8));
                    for j in 0..4 {
                        let row = base.as_ptr().add(j * dim + i);
                        let d0 = _mm256_sub_ps(q0, $load(row));
                        let d1 = _mm256_sub_ps(q1, $load(row.add(8)));
                        acc0[j] = _mm256_fmadd_ps(d0, d0, acc0[j]);
                        acc1[j] = _mm256_fmadd_ps(d1, d1, acc1[j]);
                    }
                }
                i += 16;
            }
            if i + 8 <= dim {
                // SAFETY: i + 8 <= dim, as above.
                unsafe {
                    let q0 = _mm256_loadu_ps(q.as_ptr().add(i));
                    for (j, a) in acc0.iter_mut().enumerate() {
                        let d0 = _mm256_sub_ps(q0, $load(base.as_ptr().add(j * dim + i)));
                        *a = _mm256_fmadd_ps(d0, d0, *a);
                    }
                }
                i += 8;
            }
            for j in 0..4 {
                let row = &base[j * dim..(j + 1) * dim];
                // No call for an empty tail (most dimensions are multiples of 8):
                // a call per row was 5-7% of a 10^7 lookup. `x + 0.0 == x`,
                // so the sums stay those of the one-row kernel.
                let tail = if i < dim { $tail(&q[i..], &row[i..]) } else { 0.0 };
                out[r + j] = hsum256(_mm256_add_ps(acc0[j], acc1[j])) + tail;
            }
            r += 4;
        }
        while r < n {
            // SAFETY: the caller's CPU has the features of the function this
            // body is expanded in, which `$one` needs too.
            out[r] = unsafe { $one(q, &rows[r * dim..(r + 1) * dim]) };
            r += 1;
        }
    }};
}

/// `out[r] = |q - rows[r]|^2` for the `out.len()` rows of `q.len()` floats:
/// four rows share each load of `q` and run independent FMA chains (one row
/// at a time waits on its own chain). Each row's sums are formed in the
/// order of [`l2_sq_avx2`], so the results are bit-identical to it.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn l2_sq_rows_avx2(q: &[f32], rows: &[f32], out: &mut [f32]) {
    l2_sq_rows_body!(q, rows, out, _mm256_loadu_ps, scalar::l2_sq, l2_sq_avx2)
}

/// [`l2_sq_rows_avx2`] over half-float rows.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn l2_sq_rows_f16_avx2(q: &[f32], rows: &[u16], out: &mut [f32]) {
    l2_sq_rows_body!(q, rows, out, load_f16x8, scalar::l2_sq_f16, l2_sq_f16_avx2)
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        unsafe {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)), acc0);
            acc1 =
                _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i + 8)), _mm256_loadu_ps(b.as_ptr().add(i + 8)), acc1);
        }
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)), acc0);
        }
        i += 8;
    }
    hsum256(_mm256_add_ps(acc0, acc1)) + scalar::dot(&a[i..n], &b[i..n])
}

/// Loads 8 half floats and widens them to 8 f32 lanes.
///
/// # Safety
/// F16C and AVX required; `p` must be valid for reading 8 u16.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_f16x8(p: *const u16) -> __m256 {
    // SAFETY: the caller guarantees 16 readable bytes at p.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(p as *const __m128i) })
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn l2_sq_f16_avx2(q: &[f32], c: &[u16]) -> f32 {
    let n = q.len().min(c.len());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, so 16 elements of each slice are readable.
        unsafe {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(q.as_ptr().add(i)), load_f16x8(c.as_ptr().add(i)));
            let d1 = _mm256_sub_ps(_mm256_loadu_ps(q.as_ptr().add(i + 8)), load_f16x8(c.as_ptr().add(i + 8)));
            acc0 = _mm256_fmadd_ps(d0, d0, acc0);
            acc1 = _mm256_fmadd_ps(d1, d1, acc1);
        }
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe {
            let d = _mm256_sub_ps(_mm256_loadu_ps(q.as_ptr().add(i)), load_f16x8(c.as_ptr().add(i)));
            acc0 = _mm256_fmadd_ps(d, d, acc0);
        }
        i += 8;
    }
    hsum256(_mm256_add_ps(acc0, acc1)) + if i < n { scalar::l2_sq_f16(&q[i..n], &c[i..n]) } else { 0.0 }
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_avx2(q: &[f32], c: &[u16]) -> f32 {
    let n = q.len().min(c.len());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        unsafe {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q.as_ptr().add(i)), load_f16x8(c.as_ptr().add(i)), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q.as_ptr().add(i + 8)), load_f16x8(c.as_ptr().add(i + 8)), acc1);
        }
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q.as_ptr().add(i)), load_f16x8(c.as_ptr().add(i)), acc0);
        }
        i += 8;
    }
    hsum256(_mm256_add_ps(acc0, acc1)) + if i < n { scalar::dot_f16(&q[i..n], &c[i..n]) } else { 0.0 }
}

/// Loads 8 bytes and widens them to 8 f32 lanes.
///
/// # Safety
/// AVX2 required; `p` must be valid for reading 8 bytes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load_u8x8(p: *const u8) -> __m256 {
    // SAFETY: the caller guarantees 8 readable bytes at p.
    let bytes = unsafe { _mm_loadl_epi64(p as *const __m128i) };
    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes))
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn l2_u8w_avx2(q: &[f32], w: &[f32], c: &[u8]) -> f32 {
    let n = q.len().min(w.len()).min(c.len());
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, so 8 elements of each slice are readable.
        unsafe {
            let d = _mm256_sub_ps(_mm256_loadu_ps(q.as_ptr().add(i)), load_u8x8(c.as_ptr().add(i)));
            let wd = _mm256_mul_ps(_mm256_loadu_ps(w.as_ptr().add(i)), d);
            acc = _mm256_fmadd_ps(wd, d, acc);
        }
        i += 8;
    }
    hsum256(acc) + scalar::l2_sq_u8_weighted(&q[i..n], &w[i..n], &c[i..n])
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_u8_avx2(q: &[f32], c: &[u8]) -> f32 {
    let n = q.len().min(c.len());
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe {
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(q.as_ptr().add(i)), load_u8x8(c.as_ptr().add(i)), acc);
        }
        i += 8;
    }
    hsum256(acc) + scalar::dot_u8(&q[i..n], &c[i..n])
}

/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn l2_sq_avx512(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = _mm512_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        unsafe {
            let d = _mm512_sub_ps(_mm512_loadu_ps(a.as_ptr().add(i)), _mm512_loadu_ps(b.as_ptr().add(i)));
            acc = _mm512_fmadd_ps(d, d, acc);
        }
        i += 16;
    }
    if i < n {
        let mask: __mmask16 = (1u32 << (n - i)) as u16 - 1;
        // SAFETY: masked loads touch only the n - i < 16 remaining elements.
        unsafe {
            let d = _mm512_sub_ps(
                _mm512_maskz_loadu_ps(mask, a.as_ptr().add(i)),
                _mm512_maskz_loadu_ps(mask, b.as_ptr().add(i)),
            );
            acc = _mm512_fmadd_ps(d, d, acc);
        }
    }
    _mm512_reduce_add_ps(acc)
}

/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = _mm512_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        unsafe {
            acc = _mm512_fmadd_ps(_mm512_loadu_ps(a.as_ptr().add(i)), _mm512_loadu_ps(b.as_ptr().add(i)), acc);
        }
        i += 16;
    }
    if i < n {
        let mask: __mmask16 = (1u32 << (n - i)) as u16 - 1;
        // SAFETY: masked loads touch only the remaining elements.
        unsafe {
            acc = _mm512_fmadd_ps(
                _mm512_maskz_loadu_ps(mask, a.as_ptr().add(i)),
                _mm512_maskz_loadu_ps(mask, b.as_ptr().add(i)),
                acc,
            );
        }
    }
    _mm512_reduce_add_ps(acc)
}
