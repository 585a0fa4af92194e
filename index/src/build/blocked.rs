//! The assign stage's centroid lookups for a tile of vectors at once, when
//! the index scans groups. Per vector the scan reads ~8,000 centroids (3 MB
//! at 96-d) in a tile-free loop, streaming them from memory again for every
//! vector; here a tile of vectors is scored against every group center in
//! one matrix multiply, each vector keeps its `probe` nearest groups, and
//! each group's centroids are then scored in one multiply against all the
//! tile's vectors that probe it: a group's centroids are read once per tile.
//! Distances are |x|^2 + |c|^2 - 2 x.c. Unlike the per-query scan the
//! groups are chosen exactly (every center is scored).

use crate::distance::gemm;
use crate::search::centroids::CentroidIndex;
use crate::search::topk::Scored;
use rayon::prelude::*;

/// Vectors looked up together.
pub(super) const TILE: usize = 2048;

pub(super) struct BlockedLookup<'a> {
    index: &'a CentroidIndex,
    centroid_norms: Vec<f32>,
    center_norms: Vec<f32>,
}

fn norms(rows: &[f32], dim: usize) -> Vec<f32> {
    rows.par_chunks_exact(dim.max(1)).map(|r| r.iter().map(|v| v * v).sum()).collect()
}

/// The `want` smallest (distance, id) pairs seen (a max-heap); ties by id,
/// so the result does not depend on the order of pushes.
struct Nearest {
    heap: std::collections::BinaryHeap<Scored>,
    want: usize,
    /// The largest distance kept once full (infinite until then): most
    /// pushes stop at this test.
    bound: f32,
}

impl Nearest {
    fn new(want: usize) -> Self {
        Nearest { heap: std::collections::BinaryHeap::with_capacity(want + 1), want, bound: f32::INFINITY }
    }

    #[inline(always)]
    fn push(&mut self, d: f32, id: u32) {
        if d <= self.bound {
            self.insert(Scored(d, id));
        }
    }

    fn insert(&mut self, s: Scored) {
        if self.heap.len() < self.want {
            self.heap.push(s);
        } else if self.heap.peek().is_some_and(|w| s < *w) {
            self.heap.pop();
            self.heap.push(s);
        }
        if self.heap.len() == self.want {
            self.bound = self.heap.peek().map_or(f32::INFINITY, |w| w.0);
        }
    }

    fn clear(&mut self) {
        self.heap.clear();
        self.bound = f32::INFINITY;
    }

    fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.heap.iter().map(|s| s.1)
    }

    fn sorted(self) -> Vec<(u32, f32)> {
        self.heap.into_sorted_vec().into_iter().map(|Scored(d, p)| (p, d)).collect()
    }
}

impl<'a> BlockedLookup<'a> {
    pub(super) fn new(index: &'a CentroidIndex) -> Self {
        BlockedLookup {
            index,
            centroid_norms: norms(&index.centroids, index.dim),
            center_norms: norms(&index.group_centers, index.dim),
        }
    }

    /// For each row of `xs` (row-major), its `want` nearest centroids among
    /// its `probe` nearest groups by squared L2, nearest first, as
    /// (posting, distance).
    pub(super) fn nearest(&self, xs: &[f32], probe: usize, want: usize) -> Vec<Vec<(u32, f32)>> {
        let ix = self.index;
        let dim = ix.dim;
        let n = xs.len() / dim;
        let g = ix.group_count();
        let probe = probe.clamp(1, g);
        let xn = norms(xs, dim);
        // 1. Every vector against every group center.
        let mut s = vec![0f32; n * g];
        gemm::dots(xs, n, &ix.group_centers, g, dim, &mut s);
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); g];
        let mut groups = Nearest::new(probe);
        for (i, row) in s.chunks_exact(g).enumerate() {
            groups.clear();
            // |x|^2 is the same for every center: rank by |c|^2 - 2 x.c.
            for (c, (&d, &cn)) in row.iter().zip(&self.center_norms).enumerate() {
                groups.push(cn - 2.0 * d, c as u32);
            }
            for c in groups.ids() {
                members[c as usize].push(i as u32);
            }
        }
        drop(s);
        // 2. Each probed group's centroids against the vectors probing it.
        let mut best: Vec<Nearest> = (0..n).map(|_| Nearest::new(want)).collect();
        let (mut rows, mut dots) = (Vec::new(), Vec::new());
        for (group, who) in members.iter().enumerate().filter(|(_, w)| !w.is_empty()) {
            let (start, end) = (ix.group_starts[group] as usize, ix.group_starts[group + 1] as usize);
            let count = end - start;
            rows.clear();
            for &i in who {
                rows.extend_from_slice(&xs[i as usize * dim..(i as usize + 1) * dim]);
            }
            dots.resize(who.len() * count, 0.0);
            gemm::dots(&rows, who.len(), &ix.centroids[start * dim..end * dim], count, dim, &mut dots);
            let cnorms = &self.centroid_norms[start..end];
            for (r, &i) in who.iter().enumerate() {
                let top = &mut best[i as usize];
                let x2 = xn[i as usize];
                for (c, (&d, &cn)) in dots[r * count..(r + 1) * count].iter().zip(cnorms).enumerate() {
                    top.push((x2 + cn - 2.0 * d).max(0.0), (start + c) as u32);
                }
            }
        }
        best.into_iter().map(Nearest::sorted).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::kernels;
    use crate::rng::Rng;
    use crate::search::centroids::{CentroidScore, CentroidScratch};

    #[test]
    fn blocked_lookups_find_what_a_full_probe_finds() {
        let mut rng = Rng::new(4);
        let dim = 12;
        let cents: Vec<f32> = (0..3000 * dim).map(|_| rng.normal()).collect();
        let (ix, _) = CentroidIndex::build(kernels(), &cents, dim, 1);
        let xs: Vec<f32> = (0..300 * dim).map(|_| rng.normal()).collect();
        let blocked = BlockedLookup::new(&ix);
        // Every group probed: exactly the nearest 10 (distances to rounding).
        let all = blocked.nearest(&xs, ix.group_count(), 10);
        let (mut s, mut out) = (CentroidScratch::default(), Vec::new());
        let mut same = 0;
        for (x, got) in xs.chunks_exact(dim).zip(&all) {
            ix.nearest(CentroidScore::L2, x, usize::MAX, 10, &mut s, &mut out);
            assert_eq!(got.len(), 10);
            for (a, b) in got.iter().zip(&out) {
                assert!((a.1 - b.1).abs() <= 1e-3 * (1.0 + b.1), "{a:?} {b:?}");
            }
            same += (got[0].0 == out[0].0) as usize;
        }
        assert!(same >= 299, "nearest differs for {} of 300", 300 - same);
        // Few groups probed: the nearest found at least as often as the
        // per-query scan finds it (which picks groups through no index here,
        // but the blocked lookup ranks every center exactly too).
        let few = blocked.nearest(&xs, 8, 10);
        let hits = few.iter().zip(&all).filter(|(a, b)| a[0].0 == b[0].0).count();
        let mut scan_hits = 0;
        for (x, b) in xs.chunks_exact(dim).zip(&all) {
            ix.nearest(CentroidScore::L2, x, 8, 10, &mut s, &mut out);
            scan_hits += (out[0].0 == b[0].0) as usize;
        }
        assert!(hits + 3 >= scan_hits && hits >= 200, "blocked {hits}/300, scan {scan_hits}/300");
    }
}
