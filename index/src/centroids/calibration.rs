//! How well lookups find the exact best centroids, and the beam and
//! group counts calibrated from such measurements.

use super::{CentroidIndex, CentroidScore, CentroidScratch};

/// How well lookups find the exact best centroids (see [`LookupCheck`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LookupRecall {
    /// Share of the exact best `want` that a lookup returns.
    pub recall: f64,
    /// Share of lookups whose best is the exact best.
    pub first: f64,
    pub lookups: usize,
    pub want: usize,
    pub effort: usize,
    /// Mean distances computed per lookup.
    pub cost: f64,
}

/// The exact best centroids of a set of queries, found by scanning every
/// centroid once, against which lookups are then measured.
pub struct LookupCheck<'a> {
    queries: &'a [f32],
    how: CentroidScore,
    want: usize,
    /// Per query: the exact best score and the `want`-th best.
    exact: Vec<(f32, f32)>,
}

impl<'a> LookupCheck<'a> {
    /// Scans `index`'s centroids for each of `queries` (row-major), in
    /// parallel. Lookups of other indexes over the same centroids (with or
    /// without a graph) can then be measured against it.
    pub fn new(index: &CentroidIndex, how: CentroidScore, queries: &'a [f32], want: usize) -> Self {
        use rayon::prelude::*;
        let k = crate::distance::kernels();
        let want = want.clamp(1, index.posting_count());
        let exact = queries
            .par_chunks_exact(index.dim)
            .map(|q| {
                let mut all: Vec<f32> = (0..index.posting_count() as u32).map(|p| index.score(k, how, q, p)).collect();
                all.select_nth_unstable_by(want - 1, f32::total_cmp);
                let bound = all[want - 1];
                (all[..want].iter().copied().fold(f32::MAX, f32::min), bound)
            })
            .collect();
        LookupCheck { queries, how, want, exact }
    }

    /// Recall of `index`'s lookups at `effort` (ties at the boundary count
    /// as found).
    pub fn measure(&self, index: &CentroidIndex, effort: usize) -> LookupRecall {
        let mut m = self.measure_with(index.dim, |q, s, out| index.nearest(self.how, q, effort, self.want, s, out));
        m.effort = effort;
        m
    }

    /// Recall of any lookup `find(query, scratch, out)` returning the best
    /// `want` (its cost read from the scratch's `evaluated`).
    pub fn measure_with(
        &self,
        dim: usize,
        find: impl Fn(&[f32], &mut CentroidScratch, &mut Vec<(u32, f32)>) + Sync,
    ) -> LookupRecall {
        use rayon::prelude::*;
        let (hits, firsts, cost) = self
            .queries
            .par_chunks_exact(dim)
            .zip(&self.exact)
            .map_init(
                || (CentroidScratch::default(), Vec::new()),
                |(s, out), (q, &(best, bound))| {
                    find(q, s, out);
                    let hits = out.iter().filter(|&&(_, d)| d <= bound).count().min(self.want);
                    (hits, out.first().is_some_and(|&(_, d)| d <= best) as usize, s.evaluated)
                },
            )
            .reduce(|| (0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
        let lookups = self.exact.len();
        let n = lookups.max(1) as f64;
        LookupRecall {
            recall: hits as f64 / (n * self.want as f64),
            first: firsts as f64 / n,
            lookups,
            want: self.want,
            effort: 0,
            cost: cost as f64 / n,
        }
    }
}

/// A search scans every centroid instead of walking the graph when the
/// beam is at least 1/ratio of the centroids. A walk computes ~8 distances
/// per beam slot, each dearer than one in a contiguous scan by a fixed
/// overhead (visited set, neighbour lists, heap) of about 384 dimensions'
/// work: twice a scan distance at 384-d, ~9 times at 50-d. Measured:
/// MiniLM-384 (1,613 / 1,018 centroids; ratio 16): the scan takes 80 / 50
/// us, the walk 65 / 59 us at beam 64 and 110 / 92 us at beam 128
/// (session 8); GloVe-50 (4,700 centroids; ratio 69): the scan 88 us, the
/// walk 114 / 143 us at beam 192 / 256 (benches/RESULTS.md, session 11).
pub fn flat_scan_beam_ratio(dim: usize) -> usize {
    8 * (dim.max(1) + 384) / dim.max(1)
}

/// Groups a lookup that starts the graph walk from the group scan
/// ([`CentroidIndex::graph_from_groups`]) scans at `effort`: a quarter, so
/// the default effort (32) scans 8 (10^7 x 96 synthetic rows, 305k
/// centroids, nearest 8: 0.954 / 0.970 / 0.980 found at 4 / 8 / 16 groups,
/// in 109 / 124 / 161 us).
pub fn hybrid_groups(effort: usize) -> usize {
    effort.div_ceil(4).max(1)
}

/// The beam width of the walk from the groups for `want` centroids: at
/// least 16 (10^7 synthetic rows: the nearest found 0.966 / 0.978 / 0.982
/// with beams of 8 / 16 / 32 after 8 groups, for ~100 / 300 / 750 more
/// distances; the builder asks for 16, the searcher for max_postings).
pub fn hybrid_beam(want: usize) -> usize {
    want.max(16)
}

/// The graph's beam width for a lookup of `want` centroids at `effort`
/// (already scaled by the graph's beam factor): at least twice `want`, which
/// keeps recall@16 at 0.97 on GloVe-50's centroids.
pub fn graph_beam(effort: usize, want: usize) -> usize {
    effort.max(2 * want)
}
