//! The in-memory centroid index: posting centroids grouped into groups of at
//! most ~min(sqrt(P), 256) stored contiguously. A lookup finds the nearest
//! groups, scans their centroids and keeps the best. With many groups (more
//! than [`UPPER_LEVEL_MIN_GROUPS`]) the group centers get an index of the same
//! kind, built on load, so a lookup costs ~(sqrt(G) + 2 probe * group size) *
//! dim instead of (G + probe * P / G) * dim: 10^6-10^7 centroids stay fast.
//! Exact when every group is probed.
//!
//! Since format 4 the builder also stores a navigable graph over the
//! centroids ([`graph`]); L2 lookups walk it instead of scanning
//! groups, so their cost grows with log P (groups stay for ip scoring and
//! for indexes written before format 4).
//!
//! Since format 5 a lookup may also start the graph walk from the group
//! scan's best instead of the graph's entry point ([`CentroidIndex::graph_from_groups`]):
//! a few groups find the right region, the graph then finds what the
//! partition cut off. Where clusters sit at independent random places in
//! 96-d (10^7 synthetic rows, 305k centroids) that found 0.97 of the nearest
//! 8 in 124 us, against 0.85 in 221 us for the group scan alone and 0.83 in
//! 140 us for the graph alone.

mod calibration;
pub mod file;
pub mod graph;
mod lookup;

pub use calibration::{flat_scan_beam_ratio, graph_beam, hybrid_beam, hybrid_groups, LookupCheck, LookupRecall};
pub use lookup::CentroidScratch;

use crate::cluster::hierarchy::{self, SplitParams};
use crate::distance::rows::Rows;
use crate::distance::Kernels;
use graph::{CentroidGraph, GraphParams};

#[derive(Debug, Clone)]
pub struct CentroidIndex {
    pub dim: usize,
    /// Posting centroids, row-major, in posting-id order (empty once
    /// [`Self::compact_for_search`] moved them to `compact`).
    pub centroids: Vec<f32>,
    /// The centroids as half floats, for search (see [`Self::rows`]).
    pub compact: Vec<u16>,
    /// Group centers, row-major (empty once compacted, like `centroids`).
    pub group_centers: Vec<f32>,
    /// The group centers as half floats, for search (see [`Self::group_rows`]).
    pub group_compact: Vec<u16>,
    /// Postings of group g are `group_starts[g]..group_starts[g + 1]`.
    pub group_starts: Vec<u32>,
    /// Largest distance from each group center to one of its centroids
    /// (derived on load, not stored).
    pub group_radius: Vec<f32>,
    /// An index over the group centers when there are many groups and no
    /// graph (derived on load, not stored).
    pub upper: Option<Box<UpperIndex>>,
    /// The navigable graph over the centroids (format 4 on).
    pub graph: Option<CentroidGraph>,
    /// Whether l2 lookups walk the graph from the best of a few scanned
    /// groups ([`hybrid_groups`] of the effort) rather than from its entry
    /// point (format 5 on).
    pub graph_from_groups: bool,
}

/// The index over group centers; its rows are the groups in its own order.
#[derive(Debug, Clone)]
pub struct UpperIndex {
    pub index: CentroidIndex,
    /// Group id of each row of `index`.
    pub group_ids: Vec<u32>,
}

impl UpperIndex {
    fn remap(index: CentroidIndex, group_ids: Vec<u32>) -> Self {
        UpperIndex { index, group_ids }
    }
}

/// Groups beyond which the group centers get their own index. Below it a
/// scan of every center is cheaper than the upper index's own two steps
/// and exact: at 10^7 x 96 (4,426 groups) it raised recall@10 at 32 groups
/// from 0.889 to 0.922.
pub const UPPER_LEVEL_MIN_GROUPS: usize = 16_384;
/// Largest target group size.
const MAX_GROUP: usize = 256;

/// How distances to centroids are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CentroidScore {
    /// Squared Euclidean.
    L2,
    /// Negated inner product.
    NegIp,
}

impl CentroidIndex {
    pub fn posting_count(&self) -> usize {
        self.rows().count(self.dim)
    }

    /// The centroids lookups score: half floats once compacted (or beside
    /// the f32 rows, see [`Self::add_f16_copy`]), else f32.
    pub fn rows(&self) -> Rows<'_> {
        if self.compact.is_empty() {
            Rows::F32(&self.centroids)
        } else {
            Rows::F16(&self.compact)
        }
    }

    /// The group centers lookups score: half floats once compacted.
    pub fn group_rows(&self) -> Rows<'_> {
        if self.group_compact.is_empty() {
            Rows::F32(&self.group_centers)
        } else {
            Rows::F16(&self.group_compact)
        }
    }

    /// Keeps the centroids and group centers as half floats from now on (an
    /// open index: the builder's lookups stay f32), when every value fits;
    /// returns whether they were compacted. Halves their memory and the
    /// bytes a scan of them reads (at 10^7, the scan of 4,426 group centers
    /// streams 1.7 MB a lookup as f32).
    pub fn compact_for_search(&mut self) -> bool {
        let (Some(c), Some(g)) =
            (crate::distance::rows::to_f16(&self.centroids), crate::distance::rows::to_f16(&self.group_centers))
        else {
            return false;
        };
        if self.centroids.is_empty() {
            return false;
        }
        (self.compact, self.group_compact) = (c, g);
        (self.centroids, self.group_centers) = (Vec::new(), Vec::new());
        if let Some(u) = &mut self.upper {
            u.index.compact_for_search();
        }
        true
    }

    /// Adds a half-float copy of the centroids beside the f32 ones, when
    /// every value fits; lookups ([`Self::rows`]) then score the copy while
    /// exact uses keep the f32 rows. For the builder's assign stage, whose
    /// graph walks are memory misses (a 96-d centroid is 3 cache lines
    /// instead of 6); [`Self::drop_f16_copy`] undoes it. Returns whether
    /// the copy was made.
    pub fn add_f16_copy(&mut self) -> bool {
        match crate::distance::rows::to_f16(&self.centroids) {
            Some(c) if !self.centroids.is_empty() => {
                self.compact = c;
                true
            }
            _ => false,
        }
    }

    /// Drops the copy [`Self::add_f16_copy`] made (f32 rows stay).
    pub fn drop_f16_copy(&mut self) {
        if !self.centroids.is_empty() {
            self.compact = Vec::new();
        }
    }

    pub fn group_count(&self) -> usize {
        self.group_starts.len() - 1
    }

    /// Every centroid as f32, widened from the half floats once compacted.
    pub fn centroids_f32(&self) -> std::borrow::Cow<'_, [f32]> {
        match self.rows() {
            Rows::F32(c) => c.into(),
            Rows::F16(h) => h.iter().map(|&b| crate::distance::scalar::f16_value(b)).collect::<Vec<_>>().into(),
        }
    }

    /// Centroid `p` as searches hold it, into `out`: widened from the half
    /// floats when there are some (after [`Self::compact_for_search`], or
    /// the builder's [`Self::add_f16_copy`], which succeed alike), else
    /// f32. Residual PQ codes are residuals of exactly these values.
    pub fn searched_centroid(&self, p: u32, out: &mut Vec<f32>) {
        let (a, b) = (p as usize * self.dim, (p as usize + 1) * self.dim);
        out.clear();
        if let Some(h) = self.compact.get(a..b) {
            out.extend(h.iter().map(|&v| crate::distance::scalar::f16_value(v)));
        } else if let Some(c) = self.centroids.get(a..b) {
            out.extend_from_slice(c);
        }
    }

    /// Centroid `p` as f32 (before [`Self::compact_for_search`] only).
    pub fn centroid(&self, p: u32) -> &[f32] {
        &self.centroids[p as usize * self.dim..(p as usize + 1) * self.dim]
    }

    /// Groups `centroids` (P rows); returns the index and, for each new
    /// posting id, the old row it came from.
    pub fn build(k: &Kernels, centroids: &[f32], dim: usize, seed: u64) -> (Self, Vec<u32>) {
        Self::build_sized(k, centroids, dim, seed, MAX_GROUP)
    }

    /// [`Self::build`] with groups of at most ~`max_group` centroids.
    pub fn build_sized(k: &Kernels, centroids: &[f32], dim: usize, seed: u64, max_group: usize) -> (Self, Vec<u32>) {
        let p = centroids.len() / dim;
        // Groups are the leaves of the same bounded hierarchical split the
        // postings come from: plain k-means made groups up to 14x the mean
        // on clustered data, and probing one of those costs 14 groups.
        let target = ((p as f64).sqrt().ceil() as usize).clamp(1, max_group);
        let split = SplitParams { leaf_size: target, branching: 16, iters: 8, train_per_cluster: 64 };
        let groups = hierarchy::leaves(k, centroids, dim, split, seed);
        let centers = hierarchy::leaf_means(centroids, dim, &groups);
        let mut order = Vec::with_capacity(p);
        let mut starts = vec![0u32];
        for g in &groups {
            order.extend_from_slice(g);
            starts.push(order.len() as u32);
        }
        let mut reordered = Vec::with_capacity(centroids.len());
        for &o in &order {
            reordered.extend_from_slice(&centroids[o as usize * dim..(o as usize + 1) * dim]);
        }
        (CentroidIndex::new(dim, reordered, centers, starts, None), order)
    }

    /// Adds the navigable graph (seeded: the same graph on every build).
    pub fn with_graph(mut self, k: &Kernels, seed: u64) -> Self {
        self.graph = Some(graph::build(k, &self.centroids_f32(), self.dim, GraphParams::default(), seed));
        self.upper = None;
        self
    }

    /// Bytes held in memory: centroids, group centers and the graph.
    pub fn resident_bytes(&self) -> usize {
        4 * (self.centroids.len() + self.group_centers.len() + 2 * self.group_starts.len())
            + 2 * (self.compact.len() + self.group_compact.len())
            + self.graph.as_ref().map_or(0, CentroidGraph::resident_bytes)
            + self.upper.as_ref().map_or(0, |u| u.index.resident_bytes() + 4 * u.group_ids.len())
    }

    pub fn new(
        dim: usize,
        centroids: Vec<f32>,
        group_centers: Vec<f32>,
        group_starts: Vec<u32>,
        graph: Option<CentroidGraph>,
    ) -> Self {
        Self::with_upper_from(dim, centroids, group_centers, group_starts, graph, UPPER_LEVEL_MIN_GROUPS)
    }

    /// [`Self::new`], giving the group centers their own index from
    /// `upper_from` groups on.
    fn with_upper_from(
        dim: usize,
        centroids: Vec<f32>,
        group_centers: Vec<f32>,
        group_starts: Vec<u32>,
        graph: Option<CentroidGraph>,
        upper_from: usize,
    ) -> Self {
        let k = crate::distance::kernels();
        let group_radius = (0..group_starts.len() - 1)
            .map(|g| {
                let c = &group_centers[g * dim..(g + 1) * dim];
                (group_starts[g]..group_starts[g + 1])
                    .map(|p| (k.l2_sq)(c, &centroids[p as usize * dim..(p as usize + 1) * dim]))
                    .fold(0f32, f32::max)
                    .sqrt()
            })
            .collect();
        let g = group_starts.len() - 1;
        let upper = (g > upper_from && graph.is_none()).then(|| {
            // Seeded by the group count: the same index on every load.
            let (ix, order) = CentroidIndex::build(k, &group_centers, dim, g as u64);
            Box::new(UpperIndex::remap(ix, order))
        });
        CentroidIndex {
            dim,
            centroids,
            compact: Vec::new(),
            group_centers,
            group_compact: Vec::new(),
            group_starts,
            group_radius,
            upper,
            graph,
            graph_from_groups: false,
        }
    }

    /// How promising a group is. For ip, the optimistic bound q.g + |q| r
    /// (the center alone misranks groups whose members have large norms);
    /// for L2 the center distance, which measured better than the ball
    /// bound (GloVe-50: recall@10 0.87 vs 0.73 at 16 groups).
    #[inline]
    fn group_bound(&self, k: &Kernels, how: CentroidScore, q: &[f32], q_norm: f32, g: usize) -> f32 {
        let (rows, g32) = (self.group_rows(), g as u32);
        match how {
            CentroidScore::L2 => rows.l2_sq(k, q, g32),
            CentroidScore::NegIp => -(rows.dot(k, q, g32) + q_norm * self.group_radius[g]),
        }
    }

    #[inline]
    fn score(&self, k: &Kernels, how: CentroidScore, q: &[f32], p: u32) -> f32 {
        match how {
            CentroidScore::L2 => self.rows().l2_sq(k, q, p),
            CentroidScore::NegIp => -self.rows().dot(k, q, p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::kernels;
    use crate::rng::Rng;

    #[test]
    fn many_groups_get_an_upper_level_that_still_finds_the_nearest() {
        let mut rng = Rng::new(6);
        let dim = 4;
        let n = 300_000; // ~1200 groups of <= 256
        let cents: Vec<f32> = (0..n * dim).map(|_| rng.normal()).collect();
        let (plain, _) = CentroidIndex::build(kernels(), &cents, dim, 1);
        assert!(plain.upper.is_none(), "{} groups are scanned", plain.group_count());
        let idx =
            CentroidIndex::with_upper_from(dim, plain.centroids, plain.group_centers, plain.group_starts, None, 1024);
        assert!(idx.group_count() > 1024, "{} groups", idx.group_count());
        assert!(idx.upper.is_some());
        let (mut s, mut out) = (CentroidScratch::default(), Vec::new());
        let mut hits = 0;
        for _ in 0..20 {
            let q: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
            idx.nearest(CentroidScore::L2, &q, 32, 1, &mut s, &mut out);
            let best = (0..n as u32).min_by(|&a, &b| {
                (kernels().l2_sq)(&q, idx.centroid(a)).total_cmp(&(kernels().l2_sq)(&q, idx.centroid(b)))
            });
            hits += (Some(out[0].0) == best) as usize;
        }
        assert!(hits >= 18, "nearest centroid found {hits}/20 times");
    }

    /// A search whose graph beam covers a large share of the centroids
    /// scans them all: exact, and the distances it reports are all of them.
    #[test]
    fn compacted_centroids_halve_their_memory_and_find_the_same_nearest() {
        let mut rng = Rng::new(12);
        let (dim, n) = (24, 900);
        let cents: Vec<f32> = (0..n * dim).map(|_| rng.normal()).collect();
        let wide = CentroidIndex::build(kernels(), &cents, dim, 1).0.with_graph(kernels(), 1);
        let mut half = wide.clone();
        assert!(half.compact_for_search());
        assert!(half.centroids.is_empty() && half.posting_count() == n);
        let groups = wide.group_count();
        assert!(half.group_centers.is_empty() && half.group_rows().count(dim) == groups);
        assert_eq!(wide.resident_bytes() - half.resident_bytes(), 2 * (n + groups) * dim);
        let (mut s, mut a, mut b) = (CentroidScratch::default(), Vec::new(), Vec::new());
        let (mut same, mut total) = (0, 0);
        for _ in 0..20 {
            let q: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
            // Both the scan (beam 64 x 16 >= 900) and the graph walk.
            for effort in [64, 8] {
                wide.nearest_for_search(CentroidScore::L2, &q, effort, 16, &mut s, &mut a);
                half.nearest_for_search(CentroidScore::L2, &q, effort, 16, &mut s, &mut b);
                same += b.iter().filter(|x| a.iter().any(|y| y.0 == x.0)).count();
                total += a.len();
                for (x, y) in a.iter().zip(&b).filter(|(x, y)| x.0 == y.0) {
                    assert!((x.1 - y.1).abs() <= 2e-3 * (1.0 + x.1), "{x:?} vs {y:?}");
                }
            }
            half.nearest(CentroidScore::NegIp, &q, 4, 8, &mut s, &mut b);
            assert_eq!(b.len(), 8);
        }
        assert!(same as f64 >= 0.98 * total as f64, "{same} of {total}");
        // A copy beside the f32 rows (the builder's): lookups score it as
        // the compacted index does; exact rows stay until it is dropped.
        let mut both = wide.clone();
        assert!(both.add_f16_copy());
        assert!(matches!(both.rows(), Rows::F16(_)) && both.centroid(3) == wide.centroid(3));
        let q: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
        half.nearest(CentroidScore::L2, &q, 8, 16, &mut s, &mut a);
        both.nearest(CentroidScore::L2, &q, 8, 16, &mut s, &mut b);
        assert_eq!(a, b);
        both.drop_f16_copy();
        assert!(matches!(both.rows(), Rows::F32(_)) && both.compact.is_empty());
        // Values half floats cannot hold keep the f32 rows.
        let mut big = CentroidIndex::build(kernels(), &vec![1e6f32; 4 * dim], dim, 1).0;
        assert!(!big.add_f16_copy() && big.compact.is_empty());
        assert!(!big.compact_for_search() && big.compact.is_empty() && big.posting_count() == 4);
    }

    #[test]
    fn a_search_beam_near_the_centroid_count_scans_them_all_exactly() {
        assert_eq!((flat_scan_beam_ratio(384), flat_scan_beam_ratio(50)), (16, 69));
        let mut rng = Rng::new(9);
        let dim = 128; // a beam of 1/32 of the centroids or more scans them
        let n = 600;
        let cents: Vec<f32> = (0..n * dim).map(|_| rng.normal()).collect();
        let idx = CentroidIndex::build(kernels(), &cents, dim, 1).0.with_graph(kernels(), 1);
        let (mut s, mut out) = (CentroidScratch::default(), Vec::new());
        for _ in 0..10 {
            let q: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
            let mut brute: Vec<(f32, u32)> =
                (0..n as u32).map(|p| ((kernels().l2_sq)(&q, idx.centroid(p)), p)).collect();
            brute.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            // Beam 64 x 32 >= 600: the scan.
            idx.nearest_for_search(CentroidScore::L2, &q, 64, 32, &mut s, &mut out);
            assert_eq!(
                out.iter().map(|x| x.0).collect::<Vec<_>>(),
                brute[..32].iter().map(|x| x.1).collect::<Vec<_>>()
            );
            assert_eq!(s.evaluated, n + idx.group_count());
            // Beam 16 (x 32 < 600): the walk, fewer distances.
            idx.nearest_for_search(CentroidScore::L2, &q, 16, 4, &mut s, &mut out);
            assert!(s.evaluated < n, "{} distances", s.evaluated);
        }
    }

    #[test]
    fn full_probe_is_exact_and_reorder_is_a_permutation() {
        let mut rng = Rng::new(4);
        let dim = 6;
        let cents: Vec<f32> = (0..500 * dim).map(|_| rng.normal()).collect();
        let (idx, order) = CentroidIndex::build(kernels(), &cents, dim, 1);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..500).collect::<Vec<u32>>());
        let q: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
        let (mut s, mut out) = (CentroidScratch::default(), Vec::new());
        idx.nearest(CentroidScore::L2, &q, usize::MAX, 10, &mut s, &mut out);
        let mut brute: Vec<(f32, u32)> = (0..500u32).map(|p| ((kernels().l2_sq)(&q, idx.centroid(p)), p)).collect();
        brute.sort_by(|a, b| a.0.total_cmp(&b.0));
        let want: Vec<u32> = brute[..10].iter().map(|x| x.1).collect();
        assert_eq!(out.iter().map(|x| x.0).collect::<Vec<_>>(), want);
    }
}
