//! Product quantization: the vector is cut into `m` sub-vectors of `dsub`
//! dimensions (the last zero-padded), each coded by the nearest of 256
//! centroids learned by k-means on a sample. A query builds an m x 256 table
//! of partial distances once; a code then costs m table lookups.
//!
//! Residual codes (format 6 on) code x - c_p for the posting p an entry
//! sits in, c_p its centroid as searches hold it; the codebooks are learned
//! on such residuals. Residuals are smaller than the vectors, so the same
//! bytes rank better (GloVe-50, 17 bytes, nearest 128 postings: the true
//! 10 within the best 30 estimates 0.96 against 0.93). A query's one table
//! of |q_s - w|^2 becomes each posting's table by adding 2 <c_p,s, w>
//! ([`Pq::posting_table`]); for inner products one table serves every
//! posting and only a constant changes. Earlier indexes code x itself.

use crate::cluster::kmeans::{self, Points};
use crate::distance::Kernels;
use crate::rng::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub const PQ_CENTROIDS: usize = crate::distance::scalar::CODEWORDS;

/// Sub-vectors shorter than a SIMD register: their table entries are
/// summed inline (the kernels would only run their scalar tails).
const SMALL_SUB: usize = 8;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pq {
    pub dim: usize,
    pub m: usize,
    pub dsub: usize,
    /// m x 256 x dsub, subspace-major.
    pub centroids: Vec<f32>,
    /// Codes are residuals of the posting centroid (format 6 on).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub residual: bool,
    /// The codebooks transposed (m x dsub x 256, the last sub-vector's
    /// padding as zero rows), for encoding: derived on first use.
    #[serde(skip)]
    columns: std::sync::OnceLock<Vec<f32>>,
}

impl PartialEq for Pq {
    fn eq(&self, o: &Self) -> bool {
        (self.dim, self.m, self.dsub, &self.centroids, self.residual) == (o.dim, o.m, o.dsub, &o.centroids, o.residual)
    }
}

impl Pq {
    /// Learns `m` codebooks from `sample` (row-major, `dim` wide); codes
    /// of x itself.
    pub fn fit(k: &Kernels, sample: &[f32], dim: usize, m: usize, seed: u64) -> Self {
        let dsub = dim.div_ceil(m.clamp(1, dim.max(1)));
        // Only sub-vectors holding a dimension: 16 of 4 would overrun 50-d
        // (the last three wholly padding), so 50-d asked for 16 gets 13.
        let m = dim.div_ceil(dsub.max(1));
        let rows = sample.len() / dim;
        let train_rows = rows.min(64 * PQ_CENTROIDS);
        let pick = Rng::derive(seed, 0x9F).sample_indices(rows as u64, train_rows as u64);
        let books: Vec<Vec<f32>> = (0..m)
            .into_par_iter()
            .map(|s| {
                let mut sub = vec![0f32; train_rows * dsub];
                for (r, &i) in pick.iter().enumerate() {
                    for j in 0..dsub {
                        let d = s * dsub + j;
                        if d < dim {
                            sub[r * dsub + j] = sample[i as usize * dim + d];
                        }
                    }
                }
                let ids: Vec<u32> = (0..train_rows as u32).collect();
                let mut c = kmeans::train(
                    k,
                    &Points { data: &sub, dim: dsub, ids: &ids },
                    PQ_CENTROIDS,
                    10,
                    &mut Rng::derive(seed, s as u64),
                );
                // Fewer training rows than centroids: repeat the last so codes stay valid.
                while c.len() < PQ_CENTROIDS * dsub {
                    let last = c[c.len() - dsub..].to_vec();
                    c.extend_from_slice(&last);
                }
                c
            })
            .collect();
        Pq { dim, m, dsub, centroids: books.concat(), residual: false, columns: Default::default() }
    }

    /// As [`Self::fit`], for residual codes: `sample` holds residuals
    /// x - c (each row less its nearest centroid).
    pub fn fit_residual(k: &Kernels, residuals: &[f32], dim: usize, m: usize, seed: u64) -> Self {
        Pq { residual: true, ..Self::fit(k, residuals, dim, m, seed) }
    }

    fn sub<'a>(&self, x: &'a [f32], s: usize, pad: &'a mut Vec<f32>) -> &'a [f32] {
        // Clamped: an index written before `fit` dropped wholly padded
        // sub-vectors still has them (their table rows are all distance 0).
        let b = ((s + 1) * self.dsub).min(self.dim);
        let a = (s * self.dsub).min(b);
        if b - a == self.dsub {
            return &x[a..b];
        }
        pad.clear();
        pad.extend_from_slice(&x[a..b]);
        pad.resize(self.dsub, 0.0);
        pad
    }

    fn book(&self, s: usize) -> &[f32] {
        &self.centroids[s * PQ_CENTROIDS * self.dsub..(s + 1) * PQ_CENTROIDS * self.dsub]
    }

    /// Codes `x`: the nearest centroid of each sub-vector (the first on
    /// ties). Distances to the 256 centroids are computed column by column
    /// and the minimum kept per lane, loops the compiler vectorises: with
    /// 2-d sub-vectors a kernel call per centroid cost ~50 us per vector.
    pub fn encode(&self, x: &[f32], out: &mut [u8]) {
        let cols = self.columns.get_or_init(|| self.transposed());
        let m = self.m.min(out.len());
        (crate::distance::kernels().nearest_codewords)(cols, x, self.dsub, &mut out[..m]);
    }

    fn transposed(&self) -> Vec<f32> {
        let mut cols = vec![0f32; self.m * self.dsub * PQ_CENTROIDS];
        for s in 0..self.m {
            for (c, row) in self.book(s).chunks_exact(self.dsub).enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    cols[(s * self.dsub + j) * PQ_CENTROIDS + c] = v;
                }
            }
        }
        cols
    }

    /// Frees the codebooks (see `Quantizer::release_posting_tables`);
    /// encoding and tables are then unavailable.
    pub fn release_codebooks(&mut self) {
        self.centroids = Vec::new();
        self.columns = std::sync::OnceLock::new();
    }

    pub fn has_codebooks(&self) -> bool {
        self.centroids.len() == self.m * PQ_CENTROIDS * self.dsub
    }

    /// The lookup table for a query: squared L2 per sub-vector, or the
    /// negated partial inner product when `ip`.
    pub fn table(&self, k: &Kernels, q: &[f32], ip: bool) -> Vec<f32> {
        let mut t = Vec::with_capacity(self.m * PQ_CENTROIDS);
        let mut pad = Vec::new();
        for s in 0..self.m {
            let qs = self.sub(q, s, &mut pad).to_vec();
            if self.dsub < SMALL_SUB {
                // Inline: a kernel call per 2-d centroid was 8% of a GloVe-50
                // query held in memory.
                for c in self.book(s).chunks_exact(self.dsub) {
                    let pairs = qs.iter().zip(c);
                    t.push(if ip {
                        -pairs.map(|(a, b)| a * b).sum::<f32>()
                    } else {
                        pairs.map(|(a, b)| (a - b) * (a - b)).sum()
                    });
                }
                continue;
            }
            for c in self.book(s).chunks_exact(self.dsub) {
                t.push(if ip { -(k.dot)(&qs, c) } else { (k.l2_sq)(&qs, c) });
            }
        }
        t
    }

    /// A query prepared for this quantizer's codes.
    pub fn query(&self, k: &Kernels, q: &[f32], ip: bool) -> PqQuery {
        let table = self.table(k, q, ip);
        PqQuery { residual: self.residual, ip, q: q.to_vec(), posting: Vec::new(), offset: 0.0, table }
    }

    /// Sets `query` up for the codes of the posting whose centroid is `c`
    /// (as searches hold it): for residual l2 codes the posting's table
    /// and constant |c|^2 - 2 <c, q>, for residual ip codes the constant
    /// -<q, c>. Codes of x itself need nothing.
    pub fn enter_posting(&self, k: &Kernels, query: &mut PqQuery, c: &[f32]) {
        if !query.residual || c.len() != self.dim {
            return;
        }
        if query.ip {
            query.offset = -(k.dot)(&query.q, c);
            return;
        }
        let cols = self.columns.get_or_init(|| self.transposed());
        query.posting.resize(query.table.len(), 0.0);
        (k.posting_table)(&query.table, cols, c, self.dsub, &mut query.posting);
        query.offset = (k.dot)(c, c) - 2.0 * (k.dot)(c, &query.q);
    }

    pub fn decode(&self, code: &[u8], out: &mut Vec<f32>) {
        out.clear();
        for (s, &c) in code.iter().enumerate() {
            out.extend_from_slice(&self.book(s)[c as usize * self.dsub..(c as usize + 1) * self.dsub]);
        }
        out.truncate(self.dim);
    }
}

/// A query's tables (see [`Pq::query`], [`Pq::enter_posting`]).
pub struct PqQuery {
    /// |q_s - w|^2 per sub-space and codeword, or -<q_s, w> for `ip`.
    table: Vec<f32>,
    residual: bool,
    ip: bool,
    q: Vec<f32>,
    /// The current posting's table (residual l2 codes).
    posting: Vec<f32>,
    /// Added to every estimate of the current posting.
    offset: f32,
}

impl PqQuery {
    fn current(&self) -> &[f32] {
        if self.residual && !self.ip {
            &self.posting
        } else {
            &self.table
        }
    }

    /// Whether codes need [`Pq::enter_posting`] before each posting.
    pub fn needs_centroids(&self) -> bool {
        self.residual
    }

    /// The estimate of one code of the current posting.
    #[inline]
    pub fn distance(&self, code: &[u8]) -> f32 {
        table_distance(self.current(), code) + self.offset
    }

    /// The estimates of every code of a block of the current posting.
    pub fn distances(&self, codes: &[u8], code_bytes: usize, out: &mut Vec<f32>) {
        table_distances(self.current(), codes, code_bytes, out);
        if self.offset != 0.0 {
            out.iter_mut().for_each(|d| *d += self.offset);
        }
    }
}

/// Sum of table entries picked by a code.
#[inline]
pub fn table_distance(table: &[f32], code: &[u8]) -> f32 {
    let (tables, _) = table.as_chunks::<PQ_CENTROIDS>();
    code_sum(tables, code)
}

/// The distances of every code in `codes` (`code_bytes` each, a posting's
/// block) into `out`: as [`table_distance`], with the tables viewed as
/// 256-wide rows once, so a u8 index needs no bounds check.
pub fn table_distances(table: &[f32], codes: &[u8], code_bytes: usize, out: &mut Vec<f32>) {
    let (tables, _) = table.as_chunks::<PQ_CENTROIDS>();
    out.clear();
    out.extend(codes.chunks_exact(code_bytes.max(1)).map(|code| code_sum(tables, code)));
}

/// Eight running sums: 25 lookups (GloVe-50) in chains of 3-4 adds, so
/// the loads, not the add latency, bound a code.
#[inline(always)]
fn code_sum(tables: &[[f32; PQ_CENTROIDS]], code: &[u8]) -> f32 {
    let mut acc = [0f32; 8];
    let (octs, rest) = code.as_chunks::<8>();
    let (toct, trest) = tables.as_chunks::<8>();
    for (c, t) in octs.iter().zip(toct) {
        for j in 0..8 {
            acc[j] += t[j][c[j] as usize];
        }
    }
    for (j, (&c, t)) in rest.iter().zip(trest).enumerate() {
        acc[j] += t[c as usize];
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::{kernels, scalar};

    #[test]
    fn table_distance_equals_distance_to_the_decoded_vector() {
        let mut rng = Rng::new(8);
        let dim = 10; // 4 subspaces of 3: the last one padded
        let data: Vec<f32> = (0..2000 * dim).map(|_| rng.normal()).collect();
        let pq = Pq::fit(kernels(), &data, dim, 4, 1);
        let q: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
        let t2 = pq.table(kernels(), &q, false);
        let tip = pq.table(kernels(), &q, true);
        let (mut code, mut dec) = (vec![0u8; 4], Vec::new());
        let mut err = 0.0;
        for x in data.chunks_exact(dim).take(200) {
            pq.encode(x, &mut code);
            pq.decode(&code, &mut dec);
            let want = scalar::l2_sq(&q, &dec);
            assert!((table_distance(&t2, &code) - want).abs() < 1e-3 * (1.0 + want));
            let want_ip = -scalar::dot(&q, &dec);
            assert!((table_distance(&tip, &code) - want_ip).abs() < 1e-3 * (1.0 + want_ip.abs()));
            err += scalar::l2_sq(x, &dec);
        }
        let energy: f32 = data[..200 * dim].iter().map(|v| v * v).sum();
        assert!(err < 0.5 * energy, "PQ should capture most of the energy: {err} vs {energy}");
    }

    #[test]
    fn residual_estimates_are_distances_to_the_centroid_plus_the_decoded_residual() {
        let mut rng = Rng::new(21);
        let dim = 10; // 4 sub-spaces of 3, the last padded
        let data: Vec<f32> = (0..2000 * dim).map(|_| 0.3 * rng.normal()).collect();
        let pq = Pq::fit_residual(kernels(), &data, dim, 4, 3);
        assert!(pq.residual);
        let q: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
        for k in crate::distance::available() {
            for ip in [false, true] {
                let mut query = pq.query(&k, &q, ip);
                assert!(query.needs_centroids());
                for p in 0..3 {
                    let c: Vec<f32> = (0..dim).map(|_| 2.0 * rng.normal()).collect();
                    pq.enter_posting(&k, &mut query, &c);
                    let (mut code, mut dec, mut got) = (vec![0u8; 4], Vec::new(), Vec::new());
                    for r in data.chunks_exact(dim).skip(p * 50).take(50) {
                        pq.encode(r, &mut code);
                        pq.decode(&code, &mut dec);
                        let x: Vec<f32> = c.iter().zip(&dec).map(|(a, b)| a + b).collect();
                        let want = if ip { -scalar::dot(&q, &x) } else { scalar::l2_sq(&q, &x) };
                        let est = query.distance(&code);
                        assert!((est - want).abs() <= 1e-4 * (1.0 + want.abs()), "{} ip {ip}: {est} vs {want}", k.name);
                        query.distances(&code, 4, &mut got);
                        assert_eq!(got[0].to_bits(), est.to_bits());
                    }
                }
            }
        }
        // Codes of x itself need no centroid.
        let plain = Pq::fit(kernels(), &data, dim, 4, 3);
        assert!(!plain.query(kernels(), &q, false).needs_centroids());
    }

    #[test]
    fn sub_vectors_past_the_dimension_are_dropped_or_read_as_padding() {
        let mut rng = Rng::new(3);
        let dim = 50;
        let data: Vec<f32> = (0..600 * dim).map(|_| rng.normal()).collect();
        // 16 sub-vectors of 4 would end at 64: the last three hold nothing.
        let pq = Pq::fit(kernels(), &data, dim, 16, 1);
        assert_eq!((pq.m, pq.dsub), (13, 4));
        let q: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
        let mut code = vec![0u8; pq.m];
        pq.encode(&data[..dim], &mut code);
        assert!(table_distance(&pq.table(kernels(), &q, false), &code).is_finite());
        // An index written before: 16 sub-vectors, three of them all padding.
        let mut centroids = pq.centroids.clone();
        centroids.resize(16 * PQ_CENTROIDS * 4, 0.0);
        let old = Pq { m: 16, centroids, ..pq.clone() };
        let t = old.table(kernels(), &q, false);
        assert_eq!(t.len(), 16 * PQ_CENTROIDS);
        assert!(t[13 * PQ_CENTROIDS..].iter().all(|&d| d == 0.0), "zero padding against zero rows");
    }

    #[test]
    fn encode_picks_the_first_nearest_centroid_as_a_scan_does() {
        let mut rng = Rng::new(9);
        for (dim, m) in [(10, 4), (96, 48), (17, 17), (33, 5)] {
            let data: Vec<f32> = (0..1500 * dim).map(|_| rng.normal()).collect();
            let pq = Pq::fit(kernels(), &data, dim, m, 2);
            let mut code = vec![0u8; pq.m];
            let mut pad = Vec::new();
            for x in data.chunks_exact(dim).take(300) {
                pq.encode(x, &mut code);
                for (s, &c) in code.iter().enumerate() {
                    let xs = pq.sub(x, s, &mut pad).to_vec();
                    let want = kmeans::nearest(&crate::distance::SCALAR, pq.book(s), pq.dsub, &xs);
                    let got = scalar::l2_sq(&xs, &pq.book(s)[c as usize * pq.dsub..][..pq.dsub]);
                    // The same centroid, or one exactly as near (rounding).
                    assert!(c as u32 == want.0 || (got - want.1).abs() <= 1e-5 * (1.0 + want.1), "{dim}/{m}");
                }
            }
        }
    }
}
