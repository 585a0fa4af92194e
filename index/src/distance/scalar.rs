//! Portable reference kernels; the SIMD kernels must agree with these.

pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// `out[r] = |q - rows[r]|^2` for the `out.len()` rows of `q.len()` floats.
pub fn l2_sq_rows(q: &[f32], rows: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len().max(1))) {
        *o = l2_sq(q, row);
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The f32 value of a half float's bit pattern.
#[inline]
pub fn f16_value(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

pub fn l2_sq_f16(q: &[f32], c: &[u16]) -> f32 {
    debug_assert_eq!(q.len(), c.len());
    q.iter().zip(c).map(|(&x, &h)| (x - f16_value(h)) * (x - f16_value(h))).sum()
}

/// [`l2_sq_rows`] over half-float rows.
pub fn l2_sq_rows_f16(q: &[f32], rows: &[u16], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len().max(1))) {
        *o = l2_sq_f16(q, row);
    }
}

pub fn dot_f16(q: &[f32], c: &[u16]) -> f32 {
    debug_assert_eq!(q.len(), c.len());
    q.iter().zip(c).map(|(&x, &h)| x * f16_value(h)).sum()
}

pub fn l2_sq_u8_weighted(q: &[f32], w: &[f32], c: &[u8]) -> f32 {
    debug_assert!(q.len() == w.len() && q.len() == c.len());
    q.iter()
        .zip(w)
        .zip(c)
        .map(|((q, w), c)| {
            let d = q - *c as f32;
            w * d * d
        })
        .sum()
}

pub fn dot_u8(q: &[f32], c: &[u8]) -> f32 {
    debug_assert_eq!(q.len(), c.len());
    q.iter().zip(c).map(|(q, c)| q * *c as f32).sum()
}

/// Hamming distance of two packed bit codes (equal length).
pub fn xor_popcount(a: &[u64], b: &[u64]) -> u32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// `out[i] = popcount(q ^ code_i)` for the packed codes of `codes`, each
/// `8 * q.len()` bytes (little-endian words, any alignment).
#[inline]
pub fn hamming_block(q: &[u64], codes: &[u8], out: &mut [u32]) {
    let cb = 8 * q.len();
    for (o, code) in out.iter_mut().zip(codes.chunks_exact(cb)) {
        *o = q
            .iter()
            .zip(code.chunks_exact(8))
            .map(|(w, c)| (w ^ u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).count_ones())
            .sum();
    }
}
