//! A navigable graph over the posting centroids, in layers (the HNSW
//! scheme of Malkov and Yashunin): every centroid is on the bottom layer
//! with up to `m0` neighbours; a geometric few also sit on upper layers with
//! up to `m` each. A lookup descends greedily from the entry point and
//! ends with a beam search of width `ef` on the bottom layer, so its cost
//! grows with log P instead of sqrt P as the group scan does: 10^4 to 10^8
//! centroids answer in tens of microseconds. Built deterministically for a
//! seed (see [`build`]), stored in `centroids.bin`.

mod build;
mod visited;

pub use build::{build, build_scored, build_with_progress, GraphParams};

pub use crate::distance::rows::Rows;
use crate::distance::Kernels;
use crate::topk::Scored;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use visited::Visited;

/// Pads neighbour lists.
pub const NONE: u32 = u32::MAX;
/// Highest layer a node may reach.
pub const MAX_LEVEL: u8 = 15;

#[derive(Debug, Clone, PartialEq)]
pub struct CentroidGraph {
    /// Neighbours per node on the bottom layer.
    pub m0: usize,
    /// Neighbours per node on each upper layer.
    pub m: usize,
    /// Where every search starts: a node of the highest level.
    pub entry: u32,
    /// Highest layer of each node (0 = bottom only).
    pub levels: Vec<u8>,
    /// `m0` neighbour ids per node, padded with [`NONE`].
    pub bottom: Vec<u32>,
    /// `m` ids per (node, layer >= 1), node by node, layers upwards.
    pub upper: Vec<u32>,
    /// Where each node's upper lists start in `upper`, in lists (derived).
    upper_at: Vec<u32>,
    /// Beam width per unit of lookup effort, measured by the builder so that
    /// the graph finds the nearest centroid as often as the group scan does
    /// at the same effort (1..=[`MAX_BEAM_FACTOR`]).
    pub beam_factor: u32,
}

/// Largest stored [`CentroidGraph::beam_factor`].
pub const MAX_BEAM_FACTOR: u32 = 64;

/// Reusable per-thread search state.
#[derive(Debug, Default)]
pub struct GraphScratch {
    visited: Visited,
    /// Candidates to expand, nearest on top.
    frontier: BinaryHeap<Reverse<Scored>>,
    /// The beam, farthest on top (dropped first).
    best: BinaryHeap<Scored>,
    found: Vec<(f32, u32)>,
    /// Neighbours of the node being expanded not seen before.
    fresh: Vec<u32>,
    /// Distances computed by the last search (its cost).
    pub evaluated: usize,
}

/// A graph's stored parts: list widths, entry node, node levels, and the
/// neighbour lists (bottom layer, then each node's upper layers).
pub struct GraphParts {
    pub m0: usize,
    pub m: usize,
    pub entry: u32,
    pub levels: Vec<u8>,
    pub bottom: Vec<u32>,
    pub upper: Vec<u32>,
}

impl CentroidGraph {
    /// Assembles a graph from stored parts, checking that they fit together
    /// (every id in range, list lengths as the levels say).
    pub fn from_parts(parts: GraphParts) -> Result<Self, String> {
        let GraphParts { m0, m, entry, ref levels, ref bottom, ref upper } = parts;
        let p = levels.len();
        if p == 0 || m0 == 0 || m == 0 {
            return Err(format!("{p} nodes, m0 {m0}, m {m}: an empty graph"));
        }
        if bottom.len() != p * m0 {
            return Err(format!("bottom layer has {} ids, expected {}", bottom.len(), p * m0));
        }
        if levels.iter().any(|&l| l > MAX_LEVEL) {
            return Err(format!("a node level is above {MAX_LEVEL}"));
        }
        let lists: u64 = levels.iter().map(|&l| l as u64).sum();
        if lists > u32::MAX as u64 || upper.len() as u64 != lists * m as u64 {
            return Err(format!("upper layers have {} ids, expected {}", upper.len(), lists * m as u64));
        }
        if bottom.iter().chain(upper).any(|&n| n != NONE && n as usize >= p) {
            return Err(format!("a neighbour id is not below the node count {p}"));
        }
        let top = levels.iter().copied().max().unwrap_or(0);
        if entry as usize >= p || levels[entry as usize] != top {
            return Err(format!("entry {entry} is not a node of the top level {top}"));
        }
        Ok(Self::assemble(parts))
    }

    /// The graph of parts known to be consistent (built here, or checked by
    /// [`from_parts`](Self::from_parts)).
    pub(super) fn assemble(parts: GraphParts) -> Self {
        let GraphParts { m0, m, entry, levels, bottom, upper } = parts;
        let mut upper_at = Vec::with_capacity(levels.len());
        let mut lists = 0u32;
        for &l in &levels {
            upper_at.push(lists);
            lists = lists.saturating_add(l as u32);
        }
        CentroidGraph { m0, m, entry, levels, bottom, upper, upper_at, beam_factor: 1 }
    }

    pub fn node_count(&self) -> usize {
        self.levels.len()
    }

    pub fn top_level(&self) -> u8 {
        self.levels[self.entry as usize]
    }

    /// Bytes held in memory beyond the centroids themselves.
    pub fn resident_bytes(&self) -> usize {
        self.levels.len() + 4 * (self.bottom.len() + self.upper.len() + self.upper_at.len())
    }

    /// Neighbours of `node` on `level` (padding excluded).
    #[inline]
    pub fn neighbours(&self, node: u32, level: u8) -> &[u32] {
        let list = if level == 0 {
            &self.bottom[node as usize * self.m0..(node as usize + 1) * self.m0]
        } else {
            let at = (self.upper_at[node as usize] as usize + level as usize - 1) * self.m;
            &self.upper[at..at + self.m]
        };
        let len = list.iter().position(|&n| n == NONE).unwrap_or(list.len());
        &list[..len]
    }

    /// The `want` nearest of `points` (row-major, `dim` wide, in node order)
    /// to `q` by squared L2, nearest first, as (node, distance). `ef` (at
    /// least `want`) is the bottom layer's beam width: larger is more exact.
    #[allow(clippy::too_many_arguments)]
    pub fn search(
        &self,
        k: &Kernels,
        points: Rows<'_>,
        dim: usize,
        q: &[f32],
        ef: usize,
        want: usize,
        s: &mut GraphScratch,
        out: &mut Vec<(u32, f32)>,
    ) {
        let space = Space { k, points, dim };
        let mut cur = (space.dist(q, self.entry), self.entry);
        s.evaluated = 1;
        for level in (1..=self.top_level()).rev() {
            cur = greedy(self, &space, q, cur, level, &mut s.evaluated);
        }
        let ef = ef.max(want).max(1);
        beam(self, &space, q, &[cur], ef, 0, s);
        out.clear();
        out.extend(s.found.iter().take(want).map(|&(d, n)| (n, d)));
    }

    /// [`Self::search`] on the bottom layer only, from `starts` (found by
    /// another lookup, as (distance, node)) instead of the entry point.
    #[allow(clippy::too_many_arguments)]
    pub fn search_from(
        &self,
        k: &Kernels,
        points: Rows<'_>,
        dim: usize,
        q: &[f32],
        starts: &[(f32, u32)],
        ef: usize,
        want: usize,
        s: &mut GraphScratch,
        out: &mut Vec<(u32, f32)>,
    ) {
        let space = Space { k, points, dim };
        s.evaluated = 0;
        let ef = ef.max(want).max(1);
        beam(self, &space, q, starts, ef, 0, s);
        out.clear();
        out.extend(s.found.iter().take(want).map(|&(d, n)| (n, d)));
    }
}

/// Neighbour lists by layer: the stored graph, or one being built.
trait Layers {
    fn neighbours(&self, node: u32, level: u8) -> &[u32];
    /// The widest list (sizes the visited set).
    fn width(&self) -> usize;
}

impl Layers for CentroidGraph {
    fn neighbours(&self, node: u32, level: u8) -> &[u32] {
        CentroidGraph::neighbours(self, node, level)
    }
    fn width(&self) -> usize {
        self.m0.max(self.m)
    }
}

/// The points a graph links, row-major, node i at row i.
struct Space<'a> {
    k: &'a Kernels,
    points: Rows<'a>,
    dim: usize,
}

impl Space<'_> {
    #[inline]
    fn dist(&self, q: &[f32], n: u32) -> f32 {
        self.points.l2_sq(self.k, q, n)
    }

    /// Asks for a row's cache lines ahead of scoring it: rows are scattered
    /// over tens of MB, and a lookup is mostly waiting on memory otherwise.
    #[inline]
    fn prefetch(&self, n: u32) {
        self.points.prefetch(n, self.dim);
    }
}

/// Walks to ever nearer neighbours on one layer until none is nearer.
fn greedy(
    layers: &impl Layers,
    space: &Space,
    q: &[f32],
    mut cur: (f32, u32),
    level: u8,
    evaluated: &mut usize,
) -> (f32, u32) {
    loop {
        let mut moved = false;
        let list = layers.neighbours(cur.1, level);
        *evaluated += list.len();
        for &n in list {
            let d = space.dist(q, n);
            if d < cur.0 || (d == cur.0 && n < cur.1) {
                cur = (d, n);
                moved = true;
            }
        }
        if !moved {
            return cur;
        }
    }
}

/// Beam search on one layer from `starts`; leaves the best `ef` in
/// `s.found`, nearest first.
fn beam(
    layers: &impl Layers,
    space: &Space,
    q: &[f32],
    starts: &[(f32, u32)],
    ef: usize,
    level: u8,
    s: &mut GraphScratch,
) {
    s.visited.reset(ef * layers.width() * 2);
    s.frontier.clear();
    s.best.clear();
    for &(d, n) in starts {
        if s.visited.insert(n) {
            s.frontier.push(Reverse(Scored(d, n)));
            s.best.push(Scored(d, n));
        }
    }
    while s.best.len() > ef {
        s.best.pop();
    }
    while let Some(Reverse(Scored(d, n))) = s.frontier.pop() {
        if s.best.len() >= ef && s.best.peek().is_some_and(|w| d > w.0) {
            break;
        }
        s.fresh.clear();
        for &nb in layers.neighbours(n, level) {
            if s.visited.insert(nb) {
                space.prefetch(nb);
                s.fresh.push(nb);
            }
        }
        s.evaluated += s.fresh.len();
        for &nb in &s.fresh {
            let dn = space.dist(q, nb);
            let worst = s.best.peek().map_or(f32::INFINITY, |w| w.0);
            if s.best.len() < ef || dn < worst {
                s.frontier.push(Reverse(Scored(dn, nb)));
                s.best.push(Scored(dn, nb));
                if s.best.len() > ef {
                    s.best.pop();
                }
            }
        }
    }
    s.found.clear();
    s.found.extend(s.best.drain().map(|Scored(d, n)| (d, n)));
    s.found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
}

#[cfg(test)]
mod tests;
