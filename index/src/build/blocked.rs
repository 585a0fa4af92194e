//! The assign stage's centroid lookups for a tile of vectors at once, when
//! the index scans groups. Per vector the scan reads ~8,000 centroids (3 MB
//! at 96-d) in a tile-free loop, streaming them from memory again for every
//! vector; here a tile of vectors is scored against every group center in
//! one matrix multiply, each vector keeps its `probe` nearest groups, and
//! each group's centroids are then scored in one multiply against all the
//! tile's vectors that probe it: a group's centroids are read once per tile.
//! Distances are |x|^2 + |c|^2 - 2 x.c. Unlike the per-query scan the
//! groups are chosen exactly (every center is scored).
//!
//! Sizes (10^7 x 96, 4,426 groups, 8 probed): a tile of 2,048 vectors left
//! ~4 vectors per group, so the multiply's packing of each group's
//! centroids cost as much as the products (perf: packing 13%, products
//! 16% of the assign stage), and its 36 MB matrix of center distances,
//! allocated per tile, took 46 M page faults per build. Tiles are now
//! 8x larger (~30 vectors per group) and the center distances are taken
//! [`CENTER_BLOCK`] rows at a time into one buffer.

use crate::centroids::CentroidIndex;
use crate::distance::gemm;
use crate::topk::Scored;
use rayon::prelude::*;

/// Vectors looked up together.
pub(super) const TILE: usize = 16_384;
/// Vectors whose distances to every group center are held at once (512 x
/// 4,426 centers at 10^7: 9 MB); the multiply packs the centers once per
/// block, ~5% of the block's products at this size.
const CENTER_BLOCK: usize = 512;

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

    /// Pushes (`values[j]`, `first + j`) for every j, eight at a time:
    /// once full, most eights hold none within the bound and cost one
    /// (vectorised) comparison instead of eight branches.
    fn push_all(&mut self, values: &[f32], first: usize) {
        let eights = values.chunks_exact(8);
        let tail = eights.remainder();
        for (e, v8) in eights.enumerate() {
            let bound = self.bound;
            if v8.iter().fold(false, |hit, &v| hit | (v <= bound)) {
                for (j, &v) in v8.iter().enumerate() {
                    self.push(v, (first + e * 8 + j) as u32);
                }
            }
        }
        let at = values.len() - tail.len();
        for (j, &v) in tail.iter().enumerate() {
            self.push(v, (first + at + j) as u32);
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
        // 1. Every vector against every group center, a block of vectors at a time.
        let mut s = vec![0f32; n.min(CENTER_BLOCK) * g];
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); g];
        let mut groups = Nearest::new(probe);
        for (b, block) in xs.chunks(CENTER_BLOCK * dim).enumerate() {
            let rows = block.len() / dim;
            gemm::dots(block, rows, &ix.group_centers, g, dim, &mut s[..rows * g]);
            for (i, row) in s[..rows * g].chunks_exact_mut(g).enumerate() {
                groups.clear();
                // |x|^2 is the same for every center: rank by |c|^2 - 2 x.c.
                for (v, &cn) in row.iter_mut().zip(&self.center_norms) {
                    *v = cn - 2.0 * *v;
                }
                groups.push_all(row, 0);
                for c in groups.ids() {
                    members[c as usize].push((b * CENTER_BLOCK + i) as u32);
                }
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
                let x2 = xn[i as usize];
                let row = &mut dots[r * count..(r + 1) * count];
                for (v, &cn) in row.iter_mut().zip(cnorms) {
                    let d = x2 + cn - 2.0 * *v;
                    *v = if d > 0.0 { d } else { 0.0 };
                }
                best[i as usize].push_all(row, start);
            }
        }
        best.into_iter().map(Nearest::sorted).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::centroids::{CentroidScore, CentroidScratch};
    use crate::distance::kernels;
    use crate::rng::Rng;

    #[test]
    fn pushing_eight_at_a_time_keeps_what_one_at_a_time_keeps() {
        let mut rng = Rng::new(8);
        for (len, want) in [(0, 3), (5, 8), (8, 1), (37, 4), (300, 16)] {
            // Few distinct values, so ties (broken by id) are common.
            let values: Vec<f32> = (0..len).map(|_| rng.below(20) as f32).collect();
            let (mut all, mut one) = (Nearest::new(want), Nearest::new(want));
            all.push_all(&values, 7);
            for (j, &v) in values.iter().enumerate() {
                one.push(v, 7 + j as u32);
            }
            assert_eq!(all.sorted(), one.sorted(), "{len} values, want {want}");
        }
    }

    #[test]
    fn blocked_lookups_find_what_a_full_probe_finds() {
        let mut rng = Rng::new(4);
        let dim = 12;
        let cents: Vec<f32> = (0..3000 * dim).map(|_| rng.normal()).collect();
        let (ix, _) = CentroidIndex::build(kernels(), &cents, dim, 1);
        // More rows than a center block, so the blocks' row numbers are checked.
        let rows = CENTER_BLOCK + 300;
        let xs: Vec<f32> = (0..rows * dim).map(|_| rng.normal()).collect();
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
        assert!(same + 1 >= rows, "nearest differs for {} of {rows}", rows - same);
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
        assert!(hits + 3 >= scan_hits && hits * 3 >= rows * 2, "blocked {hits}/{rows}, scan {scan_hits}/{rows}");
    }
}
