//! Building the centroid graph, deterministically for a seed on any number
//! of threads: nodes are inserted in a seeded order, in batches that grow
//! with the graph (at most an eighth of it). Within a batch every node finds
//! its neighbours in parallel on the graph as it stood before the batch; the
//! links are then applied in batch order, and the reverse links are merged
//! per target node (targets in parallel, each target's sources sorted), so
//! the result does not depend on scheduling. Lists may overflow to 1.5x
//! their width before they are pruned with the neighbour heuristic, which
//! keeps pruning cheap; a last pass prunes every list to its width.

use super::{beam, greedy, CentroidGraph, GraphParts, GraphScratch, Layers, Rows, Space, MAX_LEVEL, NONE};
use crate::distance::Kernels;
use crate::rng::Rng;
use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphParams {
    /// Bottom-layer neighbours per node.
    pub m0: usize,
    /// Upper-layer neighbours per node.
    pub m: usize,
    /// Beam width while inserting.
    pub ef_construction: usize,
}

/// Measured on the 10^7 set's 304,851 centroids (clustered, 96-d; nearest
/// 8 of 500 queries, session 9; `lookup_hybrid` with `GRAPH=m0,m,ef`):
/// these defaults find 0.966 at hybrid effort 32 (the graph alone 0.79);
/// [`GraphParams::DENSE`] finds 0.993 (0.95).
impl Default for GraphParams {
    fn default() -> Self {
        GraphParams { m0: 32, m: 16, ef_construction: 64 }
    }
}

impl GraphParams {
    /// The graph for many centroids (the builder's from 100,000 on): at
    /// 10^7 x 96 it finds 0.991 of the nearest 8 in ~88 us walked from 8
    /// groups (the default graph 0.966), for a graph build of 67 s instead
    /// of ~31 s (scored on half floats).
    pub const DENSE: GraphParams = GraphParams { m0: 48, m: 24, ef_construction: 128 };
}

/// Largest insertion batch.
const MAX_BATCH: usize = 1024;

/// The graph under construction: lists with room to overflow.
struct Building<'a> {
    k: &'a Kernels,
    points: &'a [f32],
    /// The rows distances are scored on: `points`, or their half floats
    /// (see [`build_scored`]).
    scored: Rows<'a>,
    dim: usize,
    params: GraphParams,
    levels: Vec<u8>,
    /// Room per list: bottom, upper.
    room: (usize, usize),
    bottom: Vec<u32>,
    bottom_len: Vec<u16>,
    upper: Vec<u32>,
    upper_len: Vec<u16>,
    upper_at: Vec<u32>,
}

impl Layers for Building<'_> {
    fn neighbours(&self, node: u32, level: u8) -> &[u32] {
        let (at, len) = self.slot(node, level);
        let store = if level == 0 { &self.bottom } else { &self.upper };
        &store[at..at + len]
    }
    fn width(&self) -> usize {
        self.room.0.max(self.room.1)
    }
}

impl Building<'_> {
    fn point(&self, n: u32) -> &[f32] {
        &self.points[n as usize * self.dim..(n as usize + 1) * self.dim]
    }

    fn dist(&self, a: u32, b: u32) -> f32 {
        self.scored.l2_sq(self.k, self.point(a), b)
    }

    /// (start in its store, length) of a node's list on a layer.
    fn slot(&self, node: u32, level: u8) -> (usize, usize) {
        if level == 0 {
            (node as usize * self.room.0, self.bottom_len[node as usize] as usize)
        } else {
            let list = self.upper_at[node as usize] as usize + level as usize - 1;
            (list * self.room.1, self.upper_len[list] as usize)
        }
    }

    fn set(&mut self, node: u32, level: u8, ids: &[u32]) {
        let (at, _) = self.slot(node, level);
        if level == 0 {
            self.bottom[at..at + ids.len()].copy_from_slice(ids);
            self.bottom_len[node as usize] = ids.len() as u16;
        } else {
            self.upper[at..at + ids.len()].copy_from_slice(ids);
            self.upper_len[self.upper_at[node as usize] as usize + level as usize - 1] = ids.len() as u16;
        }
    }

    fn width_at(&self, level: u8) -> usize {
        if level == 0 {
            self.params.m0
        } else {
            self.params.m
        }
    }

    /// The heuristic: walk candidates nearest first and keep one unless it
    /// is nearer to a node already kept than to the base (it would add a
    /// direction already covered). Fills up with the skipped nearest ones
    /// if fewer than `width` survive, so sparse regions stay connected.
    fn select(&self, cands: &[(f32, u32)], width: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(width);
        let mut skipped = Vec::new();
        for &(d, c) in cands {
            if kept.len() >= width {
                break;
            }
            if kept.iter().all(|&kk| self.dist(c, kk) > d) {
                kept.push(c);
            } else {
                skipped.push(c);
            }
        }
        let missing = width.saturating_sub(kept.len());
        kept.extend(skipped.into_iter().take(missing));
        kept
    }

    /// Neighbour lists of a new node, layer 0 first, on the graph as it is.
    fn links_for(&self, v: u32, entry: u32, top: u8, ef: usize, s: &mut GraphScratch) -> Vec<Vec<u32>> {
        let q = self.point(v);
        let space = Space { k: self.k, points: self.scored, dim: self.dim };
        let mut cur = (space.dist(q, entry), entry);
        let lv = self.levels[v as usize];
        for level in (lv.saturating_add(1)..=top).rev() {
            cur = greedy(self, &space, q, cur, level, &mut s.evaluated);
        }
        let reach = lv.min(top);
        let mut out = vec![Vec::new(); reach as usize + 1];
        let mut starts = vec![cur];
        for level in (0..=reach).rev() {
            beam(self, &space, q, &starts, ef, level, s);
            out[level as usize] = self.select(&s.found, self.width_at(level));
            starts.clone_from(&s.found);
        }
        out
    }

    /// `target`'s list on `level` with `sources` added, pruned to its width
    /// when that overflows the list's room; None when unchanged.
    fn merged(&self, level: u8, target: u32, sources: &[u32], limit: usize) -> Option<Vec<u32>> {
        let current = self.neighbours(target, level);
        let mut ids: Vec<u32> = current.to_vec();
        ids.extend(sources.iter().copied().filter(|s| !current.contains(s)));
        if ids.len() == current.len() {
            return None;
        }
        if ids.len() <= limit {
            return Some(ids);
        }
        let mut cands: Vec<(f32, u32)> = ids.iter().map(|&n| (self.dist(target, n), n)).collect();
        cands.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Some(self.select(&cands, self.width_at(level)))
    }
}

/// Builds the graph over `points` (row-major, `dim` wide); node i is row i.
pub fn build(k: &Kernels, points: &[f32], dim: usize, params: GraphParams, seed: u64) -> CentroidGraph {
    build_with_progress(k, points, dim, params, seed, &|_| {})
}

/// [`build`], calling `inserted` with the nodes of each batch as it lands.
pub fn build_with_progress(
    k: &Kernels,
    points: &[f32],
    dim: usize,
    params: GraphParams,
    seed: u64,
    inserted: &(dyn Fn(u64) + Sync),
) -> CentroidGraph {
    build_scored(k, points, Rows::F32(points), dim, params, seed, inserted)
}

/// [`build_with_progress`], scoring each distance from a point (f32) to the
/// row of `scored` (the same points, e.g. as the half floats an open index
/// searches: half the memory traffic of a build whose walks are cache
/// misses).
pub fn build_scored(
    k: &Kernels,
    points: &[f32],
    scored: Rows,
    dim: usize,
    params: GraphParams,
    seed: u64,
    inserted: &(dyn Fn(u64) + Sync),
) -> CentroidGraph {
    let p = points.len() / dim;
    assert_eq!(scored.count(dim), p, "scored rows are the points");
    assert!(p > 0 && p < NONE as usize, "a centroid graph needs 1..2^32-1 points");
    let mut rng = Rng::derive(seed, 0x6A);
    let ml = 1.0 / (params.m.max(2) as f64).ln();
    let levels: Vec<u8> = (0..p)
        .map(|_| {
            let u = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            ((-u.ln() * ml).floor() as u64).min(MAX_LEVEL as u64) as u8
        })
        .collect();
    let mut order: Vec<u32> = (0..p as u32).collect();
    for i in (1..p).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let room = (params.m0 + params.m0 / 2, params.m + params.m / 2);
    let mut upper_at = Vec::with_capacity(p);
    let mut lists = 0usize;
    for &l in &levels {
        upper_at.push(lists as u32);
        lists += l as usize;
    }
    let mut g = Building {
        k,
        points,
        scored,
        dim,
        params,
        room,
        bottom: vec![NONE; p * room.0],
        bottom_len: vec![0; p],
        upper: vec![NONE; lists * room.1],
        upper_len: vec![0; lists],
        upper_at,
        levels,
    };
    let mut entry = order[0];
    let mut top = g.levels[entry as usize];
    let mut done = 1;
    inserted(1);
    while done < p {
        let size = (done / 8).clamp(1, MAX_BATCH).min(p - done);
        let batch = &order[done..done + size];
        let links: Vec<Vec<Vec<u32>>> = batch
            .par_iter()
            .map_init(GraphScratch::default, |s, &v| g.links_for(v, entry, top, params.ef_construction, s))
            .collect();
        let mut back: Vec<(u8, u32, u32)> = Vec::new();
        for (&v, per_level) in batch.iter().zip(&links) {
            for (level, ids) in per_level.iter().enumerate() {
                g.set(v, level as u8, ids);
                back.extend(ids.iter().map(|&n| (level as u8, n, v)));
            }
        }
        for &v in batch {
            if g.levels[v as usize] > top {
                top = g.levels[v as usize];
                entry = v;
            }
        }
        back.sort_unstable();
        let groups: Vec<&[(u8, u32, u32)]> = back.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)).collect();
        let updates: Vec<(u8, u32, Vec<u32>)> = groups
            .par_iter()
            .filter_map(|grp| {
                let (level, target) = (grp[0].0, grp[0].1);
                let sources: Vec<u32> = grp.iter().map(|x| x.2).collect();
                let limit = if level == 0 { room.0 } else { room.1 };
                g.merged(level, target, &sources, limit).map(|ids| (level, target, ids))
            })
            .collect();
        for (level, target, ids) in updates {
            g.set(target, level, &ids);
        }
        done += size;
        inserted(size as u64);
    }
    finish(&g, entry)
}

/// Prunes every list to its width and packs the lists into fixed slots.
fn finish(g: &Building, entry: u32) -> CentroidGraph {
    let p = g.levels.len();
    let (m0, m) = (g.params.m0, g.params.m);
    let pruned = |node: u32, level: u8| -> Vec<u32> {
        let ids = g.neighbours(node, level);
        let width = g.width_at(level);
        if ids.len() <= width {
            return ids.to_vec();
        }
        let mut cands: Vec<(f32, u32)> = ids.iter().map(|&n| (g.dist(node, n), n)).collect();
        cands.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        g.select(&cands, width)
    };
    let mut bottom = vec![NONE; p * m0];
    bottom.par_chunks_mut(m0).enumerate().for_each(|(node, slot)| {
        let ids = pruned(node as u32, 0);
        slot[..ids.len()].copy_from_slice(&ids);
    });
    let mut upper = Vec::new();
    for node in 0..p as u32 {
        for level in 1..=g.levels[node as usize] {
            let ids = pruned(node, level);
            upper.extend_from_slice(&ids);
            upper.extend(std::iter::repeat_n(NONE, m - ids.len()));
        }
    }
    // Consistent by construction; the centroid_file tests decode built
    // graphs through the checking `from_parts`.
    CentroidGraph::assemble(GraphParts { m0, m, entry, levels: g.levels.clone(), bottom, upper })
}
