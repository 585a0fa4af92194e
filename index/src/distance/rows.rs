//! Row-major point sets scored against an f32 query: f32 as built, or IEEE
//! half floats, the compact form an open index keeps for search (its
//! centroids and the resident codes' rotation: half the memory and half
//! the bytes a scan streams; the error, about 1e-3 of a distance, is far
//! below the codes' own).

use super::Kernels;

/// Largest magnitude kept as a half float: above it a value would round to
/// infinity (f16's largest finite value is 65,504).
const F16_LIMIT: f32 = 65_000.0;

/// A borrowed set of `dim`-wide rows.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    F32(&'a [f32]),
    /// Half-float bit patterns.
    F16(&'a [u16]),
}

impl Rows<'_> {
    /// Rows held, at `dim` values each.
    pub fn count(self, dim: usize) -> usize {
        match self {
            Rows::F32(v) => v.len() / dim.max(1),
            Rows::F16(v) => v.len() / dim.max(1),
        }
    }

    /// Squared L2 from `q` to row `n`.
    #[inline]
    pub fn l2_sq(self, k: &Kernels, q: &[f32], n: u32) -> f32 {
        let at = span(n, q.len());
        match self {
            Rows::F32(v) => (k.l2_sq)(q, &v[at]),
            Rows::F16(v) => (k.l2_sq_f16)(q, &v[at]),
        }
    }

    /// `q . row n`.
    #[inline]
    pub fn dot(self, k: &Kernels, q: &[f32], n: u32) -> f32 {
        let at = span(n, q.len());
        match self {
            Rows::F32(v) => (k.dot)(q, &v[at]),
            Rows::F16(v) => (k.dot_f16)(q, &v[at]),
        }
    }

    /// Hints row `n`'s cache lines in.
    #[inline]
    pub fn prefetch(self, n: u32, dim: usize) {
        let at = span(n, dim);
        match self {
            Rows::F32(v) => super::prefetch_values(&v[at]),
            Rows::F16(v) => super::prefetch_values(&v[at]),
        }
    }
}

/// The values of row `n`, `dim` wide.
#[inline]
fn span(n: u32, dim: usize) -> std::ops::Range<usize> {
    n as usize * dim..(n as usize + 1) * dim
}

/// `values` as half floats, when every one is finite and small enough to
/// stay finite; `None` keeps them f32.
pub fn to_f16(values: &[f32]) -> Option<Vec<u16>> {
    if values.iter().any(|v| !v.is_finite() || v.abs() > F16_LIMIT) {
        return None;
    }
    Some(values.iter().map(|&v| half::f16::from_f32(v).to_bits()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::{available, scalar};

    #[test]
    fn half_rows_score_like_their_f32_values() {
        let dim = 37;
        let vals: Vec<f32> = (0..5 * dim).map(|i| ((i * 7919) % 201) as f32 / 50.0 - 2.0).collect();
        let h = to_f16(&vals).unwrap();
        let q: Vec<f32> = (0..dim).map(|i| i as f32 / 20.0 - 0.9).collect();
        for k in available() {
            assert_eq!(Rows::F16(&h).count(dim), 5);
            for n in 0..5u32 {
                let row = &vals[n as usize * dim..(n as usize + 1) * dim];
                let (l2, dot) = (scalar::l2_sq(&q, row), scalar::dot(&q, row));
                let (hl2, hdot) = (Rows::F16(&h).l2_sq(&k, &q, n), Rows::F16(&h).dot(&k, &q, n));
                assert!((hl2 - l2).abs() <= 1e-3 * (1.0 + l2.abs()), "{} l2 {hl2} vs {l2}", k.name);
                assert!((hdot - dot).abs() <= 1e-3 * (1.0 + dot.abs()), "{} dot {hdot} vs {dot}", k.name);
                assert_eq!(Rows::F32(&vals).l2_sq(&k, &q, n), (k.l2_sq)(&q, row));
            }
        }
    }

    #[test]
    fn values_out_of_half_range_stay_f32() {
        assert!(to_f16(&[1.0, 70_000.0]).is_none());
        assert!(to_f16(&[1.0, f32::NAN]).is_none());
        assert_eq!(to_f16(&[1.5, -0.25]).unwrap().len(), 2);
    }
}
