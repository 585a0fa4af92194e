//! Resident row codes: one binary code per vector (the shared codec, 1..4
//! bits per dimension) and three per-vector factors, small enough to keep
//! every vector's code in memory so the first search stage reads nothing.
//!
//! In the rotated space x' = R (x - mean) the code stands for the direction
//! v = sum_l a_l b_l. Like RaBitQ's estimator, <q', x'> is estimated as
//! f <q', v> with f = |x'|^2 / <v, x'>: exact when q' = x', and unbiased
//! under the random rotation, unlike the raw <q', v> whose scale is global.
//! Per record: the packed planes, then |x'|^2 and f (f32 each), and for
//! inner products <x, mean> (q.x = <q', x'> + q.mean + x.mean - |mean|^2).

use crate::distance::rows::Rows;
use crate::distance::Kernels;
use crate::types::Metric;
use fathom_codec::{words_per_plane, CodecParams};

/// Bytes of the f32 factors after a record's planes: |x'|^2 and f, and
/// <x, mean> for inner products.
pub fn factor_bytes(metric: Metric) -> usize {
    if metric == Metric::Ip {
        12
    } else {
        8
    }
}

/// Bytes of one record: packed planes and factors.
pub fn record_bytes(p: &CodecParams, metric: Metric) -> usize {
    plane_bytes(p) * p.bits + factor_bytes(metric)
}

fn plane_bytes(p: &CodecParams) -> usize {
    8 * words_per_plane(p.dim)
}

/// x' = R (x - mean), a dim x dim product: with SIMD dots, not the codec's
/// scalar loop (0.2 ms at 384-d, most of a query's budget). `rotation` is
/// R, as f32 or (searches) as half floats.
fn rotate(k: &Kernels, p: &CodecParams, rotation: Rows, x: &[f32]) -> Vec<f32> {
    let centred: Vec<f32> = x.iter().zip(&p.mean).map(|(a, m)| a - m).collect();
    (0..p.dim as u32).map(|i| rotation.dot(k, &centred, i)).collect()
}

/// Writes the record of `x` (finite, `p.dim` wide) into `out`
/// (`record_bytes(p, metric)` long).
pub fn encode_row(p: &CodecParams, metric: Metric, x: &[f32], out: &mut [u8]) {
    let xr = rotate(crate::distance::kernels(), p, Rows::F32(&p.rotation), x);
    let pb = plane_bytes(p);
    out.fill(0);
    let mut r = xr.clone();
    let mut v = vec![0f32; p.dim];
    for (level, &a) in p.scales.iter().enumerate() {
        let plane = &mut out[level * pb..(level + 1) * pb];
        for (j, (rj, vj)) in r.iter_mut().zip(v.iter_mut()).enumerate() {
            let plus = *rj >= 0.0;
            if plus {
                plane[j / 8] |= 1 << (j % 8);
            }
            let s = if plus { a } else { -a };
            *rj -= s;
            *vj += s;
        }
    }
    let norm2: f64 = xr.iter().map(|&a| a as f64 * a as f64).sum();
    let vx: f64 = v.iter().zip(&xr).map(|(&a, &b)| a as f64 * b as f64).sum();
    let factor = if vx > 1e-30 { norm2 / vx } else { 0.0 };
    let f = &mut out[p.bits * pb..];
    f[0..4].copy_from_slice(&(norm2 as f32).to_le_bytes());
    f[4..8].copy_from_slice(&(factor as f32).to_le_bytes());
    if metric == Metric::Ip {
        let mean_dot: f64 = x.iter().zip(&p.mean).map(|(&a, &b)| a as f64 * b as f64).sum();
        f[8..12].copy_from_slice(&(mean_dot as f32).to_le_bytes());
    }
}

/// A query prepared for scoring row codes (internal distances: squared L2,
/// or -ip). q' is quantized to 4 bits per dimension (q'_j ~ lo + delta u_j),
/// stored as four bit-planes, so a plane's sum over set bits is
/// sum_t 2^t popcount(u_t & b): ~5 POPCNTs per 64 dimensions per plane
/// instead of a table lookup per 8 (RaBitQ's query quantization; its error
/// is far below the code's own).
pub struct RowQuery {
    /// Bit t of every u_j, plane by plane: 4 planes of `words` words.
    qbits: Vec<u64>,
    words: usize,
    lo: f32,
    delta: f32,
    scales: Vec<f32>,
    plane_bytes: usize,
    /// sum_j of the quantized q'_j.
    q_sum: f32,
    qr_norm2: f32,
    ip: bool,
    /// q.mean - |mean|^2 (inner products only).
    ip_bias: f32,
    /// The SIMD plane sums, where the CPU has a vector popcount.
    simd: Option<crate::distance::scalar::PlaneSums>,
}

impl RowQuery {
    /// `rotation` is `p`'s rotation (`p.rotation` itself may be empty: an
    /// open index holds it as half floats; the query is quantized to 4 bits
    /// after the product, far coarser than their rounding).
    pub fn new(k: &Kernels, p: &CodecParams, rotation: Rows, q: &[f32], metric: Metric) -> Self {
        let qr = rotate(k, p, rotation, q);
        let words = words_per_plane(p.dim);
        let lo = qr.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = qr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let delta = if hi > lo { (hi - lo) / 15.0 } else { 1.0 };
        let mut qbits = vec![0u64; 4 * words];
        let mut u_sum = 0u32;
        for (j, &v) in qr.iter().enumerate() {
            let u = (((v - lo) / delta).round() as u32).min(15);
            u_sum += u;
            for t in 0..4 {
                qbits[t * words + j / 64] |= ((u >> t) as u64 & 1) << (j % 64);
            }
        }
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum::<f64>();
        RowQuery {
            qbits,
            lo,
            delta,
            words,
            scales: p.scales.clone(),
            plane_bytes: plane_bytes(p),
            q_sum: p.dim as f32 * lo + delta * u_sum as f32,
            qr_norm2: dot(&qr, &qr) as f32,
            ip: metric == Metric::Ip,
            ip_bias: (dot(q, &p.mean) - dot(&p.mean, &p.mean)) as f32,
            simd: k.plane_sums,
        }
    }

    /// Estimated internal distance to the vector of record `rec`.
    #[inline]
    pub fn distance(&self, rec: &[u8]) -> f32 {
        // Without a vector popcount, common widths get a copy of the loop
        // with the word count fixed, fully unrolled without bounds checks:
        // 2x the generic loop.
        match (self.simd, self.words) {
            (None, 2) => self.distance_w::<2>(rec),
            (None, 4) => self.distance_w::<4>(rec),
            (None, 6) => self.distance_w::<6>(rec),
            (None, 8) => self.distance_w::<8>(rec),
            (None, 12) => self.distance_w::<12>(rec),
            (None, 16) => self.distance_w::<16>(rec),
            (None, 24) => self.distance_w::<24>(rec),
            (simd, _) => {
                let mut sums = [0u64; 4];
                let planes = self.scales.len().min(4);
                simd.unwrap_or(crate::distance::scalar::plane_sums)(&self.qbits, self.words, rec, &mut sums[..planes]);
                self.finish(rec, |l, _| {
                    let s = sums.get(l).copied().unwrap_or(0);
                    (s as u32, (s >> 32) as u32)
                })
            }
        }
    }

    #[inline(always)]
    fn distance_w<const W: usize>(&self, rec: &[u8]) -> f32 {
        let q = |t: usize| -> &[u64; W] { self.qbits[t * W..(t + 1) * W].try_into().unwrap_or(&[0; W]) };
        let (q0, q1, q2, q3) = (q(0), q(1), q(2), q(3));
        self.finish(rec, |_, plane| {
            let Some(plane) = plane.first_chunk::<W>() else { return (0, 0) };
            let (mut a0, mut a1, mut a2, mut a3, mut ones) = (0u32, 0u32, 0u32, 0u32, 0u32);
            for i in 0..W {
                let c = u64::from_le_bytes(plane[i]);
                ones += c.count_ones();
                a0 += (q0[i] & c).count_ones();
                a1 += (q1[i] & c).count_ones();
                a2 += (q2[i] & c).count_ones();
                a3 += (q3[i] & c).count_ones();
            }
            (a0 + 2 * a1 + 4 * a2 + 8 * a3, ones)
        })
    }

    /// The estimate from each plane's `(weighted, ones)` sums.
    #[inline(always)]
    fn finish(&self, rec: &[u8], sums: impl Fn(usize, &[[u8; 8]]) -> (u32, u32)) -> f32 {
        let pb = self.plane_bytes;
        let (planes, f) = rec.split_at(self.scales.len() * pb);
        let (words, _) = planes.as_chunks::<8>();
        let mut dot = 0f32;
        for (l, (plane, &a)) in words.chunks_exact(pb / 8).zip(&self.scales).enumerate() {
            let (weighted, ones) = sums(l, plane);
            let set_sum = self.lo * ones as f32 + self.delta * weighted as f32;
            dot += a * (2.0 * set_sum - self.q_sum);
        }
        let est = f32::from_le_bytes([f[4], f[5], f[6], f[7]]) * dot;
        if self.ip {
            -(est + self.ip_bias + f32::from_le_bytes([f[8], f[9], f[10], f[11]]))
        } else {
            let norm2 = f32::from_le_bytes([f[0], f[1], f[2], f[3]]);
            (self.qr_norm2 + norm2 - 2.0 * est).max(0.0)
        }
    }
}

/// How well codes rank a sample of the data, measured at build time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodeCheck {
    /// The fraction of the exact 10 nearest found among the 20 best by
    /// estimate (what a rerank of 20 could recover).
    pub ranking: f64,
}

/// Checks codes on `sample` (row-major, `dim` wide) for `metric`: the first
/// `queries` rows ask for their 10 nearest among the rest (up to 10,000 rows).
pub fn check_codes(k: &Kernels, p: &CodecParams, sample: &[f32], metric: Metric, queries: usize) -> CodeCheck {
    let dim = p.dim;
    let rows = (sample.len() / dim).min(10_000);
    if rows <= queries + 20 {
        return CodeCheck { ranking: 1.0 };
    }
    let rb = record_bytes(p, metric);
    let base = &sample[queries * dim..rows * dim];
    let mut recs = vec![0u8; base.len() / dim * rb];
    for (x, rec) in base.chunks_exact(dim).zip(recs.chunks_exact_mut(rb)) {
        encode_row(p, metric, x, rec);
    }
    let exact = |q: &[f32], x: &[f32]| match metric {
        Metric::Ip => -(k.dot)(q, x),
        _ => (k.l2_sq)(q, x),
    };
    let mut found = 0usize;
    for q in sample[..queries * dim].chunks_exact(dim) {
        let rq = RowQuery::new(k, p, Rows::F32(&p.rotation), q, metric);
        let mut by_exact: Vec<(f32, usize)> = base.chunks_exact(dim).map(|x| exact(q, x)).zip(0..).collect();
        let mut by_code: Vec<(f32, usize)> = recs.chunks_exact(rb).map(|r| rq.distance(r)).zip(0..).collect();
        by_exact.select_nth_unstable_by(9, |a, b| a.0.total_cmp(&b.0));
        by_code.select_nth_unstable_by(19, |a, b| a.0.total_cmp(&b.0));
        let top20: std::collections::HashSet<usize> = by_code[..20].iter().map(|c| c.1).collect();
        found += by_exact[..10].iter().filter(|e| top20.contains(&e.1)).count();
    }
    CodeCheck { ranking: found as f64 / (10 * queries) as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn data(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut r = Rng::new(seed);
        (0..n * dim).map(|i| r.normal() + (i % dim) as f32 * 0.01).collect()
    }

    #[test]
    fn a_vector_scores_itself_nearly_exactly() {
        // Exact but for the query's 4-bit quantization.
        let dim = 70;
        let d = data(300, dim, 1);
        for bits in 1..=4 {
            let p = CodecParams::fit(&d, dim, bits, 7).unwrap();
            let mut rec = vec![0u8; record_bytes(&p, Metric::Ip)];
            for x in d.chunks_exact(dim).take(20) {
                let k = crate::distance::kernels();
                encode_row(&p, Metric::L2, x, &mut rec[..record_bytes(&p, Metric::L2)]);
                let l2 = RowQuery::new(k, &p, Rows::F32(&p.rotation), x, Metric::L2)
                    .distance(&rec[..record_bytes(&p, Metric::L2)]);
                let n2: f32 = x.iter().map(|v| v * v).sum();
                assert!(l2.abs() < 0.1 * n2, "bits {bits}: {l2} of {n2}");
                encode_row(&p, Metric::Ip, x, &mut rec);
                let ip = RowQuery::new(k, &p, Rows::F32(&p.rotation), x, Metric::Ip).distance(&rec);
                assert!((ip + n2).abs() < 0.1 * n2, "bits {bits}: ip {ip} vs {}", -n2);
            }
        }
    }

    #[test]
    fn simd_plane_sums_give_the_unrolled_loops_estimates() {
        // Integer sums, the same float tail: equal to the bit.
        let k = crate::distance::kernels();
        for dim in [50, 64, 128, 384, 700] {
            let d = data(120, dim, 4);
            for bits in 1..=4 {
                let p = CodecParams::fit(&d, dim, bits, 5).unwrap();
                let mut rec = vec![0u8; record_bytes(&p, Metric::Ip)];
                let q = &d[..dim];
                for sums in crate::distance::plane_sums_variants() {
                    let mut simd = RowQuery::new(k, &p, Rows::F32(&p.rotation), q, Metric::Ip);
                    simd.simd = Some(sums.1);
                    let mut plain = RowQuery::new(k, &p, Rows::F32(&p.rotation), q, Metric::Ip);
                    plain.simd = None;
                    for x in d.chunks_exact(dim).skip(1).take(30) {
                        encode_row(&p, Metric::Ip, x, &mut rec);
                        assert_eq!(simd.distance(&rec), plain.distance(&rec), "{} dim {dim} bits {bits}", sums.0);
                    }
                }
            }
        }
    }

    #[test]
    fn estimates_rank_neighbours_better_with_more_bits() {
        // The estimate's error shrinks with bits: compare the mean relative
        // error of squared L2 against exact over random pairs.
        let dim = 128;
        let d = data(2000, dim, 2);
        let mut errs = Vec::new();
        for bits in [1, 2, 4] {
            let p = CodecParams::fit(&d, dim, bits, 3).unwrap();
            let mut rec = vec![0u8; record_bytes(&p, Metric::L2)];
            let mut err = 0f64;
            for (i, x) in d.chunks_exact(dim).take(200).enumerate() {
                encode_row(&p, Metric::L2, x, &mut rec);
                let q = &d[(i + 500) * dim..(i + 501) * dim];
                let exact: f32 = q.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum();
                let est =
                    RowQuery::new(crate::distance::kernels(), &p, Rows::F32(&p.rotation), q, Metric::L2).distance(&rec);
                err += ((est - exact) / exact).abs() as f64;
            }
            errs.push(err / 200.0);
        }
        assert!(errs[0] > errs[1] && errs[1] > errs[2], "{errs:?}");
        assert!(errs[1] < 0.1, "2-bit relative error {}", errs[1]);
    }
}
