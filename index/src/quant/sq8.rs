//! Scalar quantization to u8 with a per-dimension offset and step, fitted
//! from a sample: `x[j] ~ min[j] + scale[j] * code[j]`.
//!
//! Scoring never decodes: for L2 the query is moved into code space once,
//! `q'[j] = (q[j] - min[j]) / scale[j]`, and the distance is
//! `sum scale[j]^2 (q'[j] - code[j])^2`; for inner product
//! `q.x ~ q.min + sum (q[j] scale[j]) code[j]`.

use crate::distance::Kernels;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sq8 {
    pub min: Vec<f32>,
    pub scale: Vec<f32>,
}

impl Sq8 {
    /// Fits offsets and steps to the range of `sample` (row-major, `dim` wide).
    pub fn fit(sample: &[f32], dim: usize) -> Self {
        let mut lo = vec![f32::INFINITY; dim];
        let mut hi = vec![f32::NEG_INFINITY; dim];
        for row in sample.chunks_exact(dim) {
            for (j, &x) in row.iter().enumerate() {
                lo[j] = lo[j].min(x);
                hi[j] = hi[j].max(x);
            }
        }
        let scale = lo.iter().zip(&hi).map(|(l, h)| if h > l { (h - l) / 255.0 } else { 1.0 }).collect();
        let min = lo.into_iter().map(|l| if l.is_finite() { l } else { 0.0 }).collect();
        Sq8 { min, scale }
    }

    pub fn encode(&self, x: &[f32], out: &mut [u8]) {
        for j in 0..x.len() {
            let c = ((x[j] - self.min[j]) / self.scale[j]).round();
            out[j] = c.clamp(0.0, 255.0) as u8;
        }
    }

    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        for j in 0..code.len() {
            out[j] = self.min[j] + self.scale[j] * code[j] as f32;
        }
    }

    /// Prepares a query for scoring codes under L2 (or cosine on unit vectors).
    pub fn query_l2(&self, q: &[f32]) -> Sq8Query {
        Sq8Query {
            q: q.iter().zip(&self.min).zip(&self.scale).map(|((q, m), s)| (q - m) / s).collect(),
            w: self.scale.iter().map(|s| s * s).collect(),
            bias: 0.0,
            ip: false,
        }
    }

    /// Prepares a query for scoring codes under inner product.
    pub fn query_ip(&self, q: &[f32]) -> Sq8Query {
        Sq8Query {
            q: q.iter().zip(&self.scale).map(|(q, s)| q * s).collect(),
            w: Vec::new(),
            bias: q.iter().zip(&self.min).map(|(q, m)| q * m).sum(),
            ip: true,
        }
    }
}

/// A query moved into code space; [`Sq8Query::distance`] scores one code.
#[derive(Debug, Clone)]
pub struct Sq8Query {
    q: Vec<f32>,
    w: Vec<f32>,
    bias: f32,
    ip: bool,
}

impl Sq8Query {
    /// Approximate distance (smaller is better): squared L2, or -ip.
    #[inline]
    pub fn distance(&self, k: &Kernels, code: &[u8]) -> f32 {
        if self.ip {
            -(self.bias + (k.dot_u8)(&self.q, code))
        } else {
            (k.l2_sq_u8_weighted)(&self.q, &self.w, code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::{kernels, scalar};
    use crate::rng::Rng;

    #[test]
    fn code_distances_track_exact_distances() {
        let mut rng = Rng::new(5);
        let dim = 37;
        let data: Vec<f32> = (0..200 * dim).map(|_| rng.normal()).collect();
        let q = Sq8::fit(&data, dim);
        let query: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
        let ql2 = q.query_l2(&query);
        let qip = q.query_ip(&query);
        let mut code = vec![0u8; dim];
        let mut dec = vec![0f32; dim];
        for x in data.chunks_exact(dim) {
            q.encode(x, &mut code);
            q.decode(&code, &mut dec);
            let exact_dec = scalar::l2_sq(&query, &dec);
            assert!((ql2.distance(kernels(), &code) - exact_dec).abs() < 1e-2 * (1.0 + exact_dec));
            let ip_dec = -scalar::dot(&query, &dec);
            assert!((qip.distance(kernels(), &code) - ip_dec).abs() < 1e-2 * (1.0 + ip_dec.abs()));
            let err = scalar::l2_sq(x, &dec);
            assert!(err < 0.01 * dim as f32, "reconstruction error {err}");
        }
    }
}
