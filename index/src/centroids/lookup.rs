//! Finding a query's nearest centroids: by the graph walk, the group
//! scan, or the walk started from the group scan's best.

use super::graph::GraphScratch;
use super::{flat_scan_beam_ratio, graph_beam, hybrid_beam, hybrid_groups, CentroidIndex, CentroidScore};
use crate::distance::rows::Rows;
use crate::distance::Kernels;

/// Reusable per-thread lookup state.
#[derive(Debug, Default)]
pub struct CentroidScratch {
    pairs: Vec<(f32, u32)>,
    graph: GraphScratch,
    starts: Vec<(f32, u32)>,
    dists: Vec<f32>,
    /// Distances the last lookup computed (its cost, in any method).
    pub evaluated: usize,
}

impl CentroidIndex {
    /// The `want` best postings, sorted best first, as (posting, score).
    /// `effort` is the number of groups scanned, or with a graph (l2) the
    /// beam width over the graph's beam factor (see [`graph_beam`]).
    /// `scratch` is reused between calls.
    pub fn nearest(
        &self,
        how: CentroidScore,
        q: &[f32],
        effort: usize,
        want: usize,
        scratch: &mut CentroidScratch,
        out: &mut Vec<(u32, f32)>,
    ) {
        let k = crate::distance::kernels();
        match (&self.graph, how) {
            (Some(_), CentroidScore::L2) if self.graph_from_groups => {
                self.nearest_from_groups(q, hybrid_groups(effort), hybrid_beam(want), want, scratch, out)
            }
            (Some(g), CentroidScore::L2) => {
                let ef = graph_beam(effort.saturating_mul(g.beam_factor as usize), want);
                g.search(k, self.rows(), self.dim, q, ef, want, &mut scratch.graph, out);
                scratch.evaluated = scratch.graph.evaluated;
            }
            _ => scratch.evaluated = self.scan_groups(k, how, q, effort, want, scratch, out),
        }
    }

    /// The searcher's lookup: [`Self::nearest`], except where the graph's
    /// beam would visit a large share of the centroids anyway: then one
    /// exact scan of them all (contiguous rows, four at a time) costs less
    /// than the walk's scattered distances, and finds every one.
    pub fn nearest_for_search(
        &self,
        how: CentroidScore,
        q: &[f32],
        effort: usize,
        want: usize,
        scratch: &mut CentroidScratch,
        out: &mut Vec<(u32, f32)>,
    ) {
        if let (Some(g), CentroidScore::L2, false) = (&self.graph, how, self.graph_from_groups) {
            let ef = graph_beam(effort.saturating_mul(g.beam_factor as usize), want);
            if ef.saturating_mul(flat_scan_beam_ratio(self.dim)) >= self.posting_count() {
                let k = crate::distance::kernels();
                scratch.evaluated = self.scan_groups(k, how, q, self.group_count(), want, scratch, out);
                return;
            }
        }
        self.nearest(how, q, effort, want, scratch, out)
    }

    /// The group scan's best `want` among `probe_groups` groups (l2), then,
    /// with a graph, [`Self::refine_on_graph`] with a beam of width `ef`.
    pub fn nearest_from_groups(
        &self,
        q: &[f32],
        probe_groups: usize,
        ef: usize,
        want: usize,
        scratch: &mut CentroidScratch,
        out: &mut Vec<(u32, f32)>,
    ) {
        let k = crate::distance::kernels();
        let scanned = self.scan_groups(k, CentroidScore::L2, q, probe_groups, want, scratch, out);
        self.refine_on_graph(q, ef, want, scratch, out);
        scratch.evaluated += scanned;
    }

    /// Replaces `found` (l2, nearest first, as (posting, distance)) with the
    /// best `want` of a beam of width `ef` (at least `want`) over the graph
    /// started from all of them; the beam keeps a start unless it finds
    /// nearer. Without a graph, leaves `found` as it is. Sets
    /// `scratch.evaluated` to the distances the walk computed.
    pub fn refine_on_graph(
        &self,
        q: &[f32],
        ef: usize,
        want: usize,
        scratch: &mut CentroidScratch,
        found: &mut Vec<(u32, f32)>,
    ) {
        scratch.evaluated = 0;
        let Some(g) = &self.graph else { return };
        let k = crate::distance::kernels();
        scratch.starts.clear();
        scratch.starts.extend(found.iter().map(|&(p, d)| (d, p)));
        g.search_from(k, self.rows(), self.dim, q, &scratch.starts, ef, want, &mut scratch.graph, found);
        scratch.evaluated = scratch.graph.evaluated;
    }

    /// The group scan: the `want` best among the `probe_groups` best groups.
    /// Returns the distances computed.
    #[allow(clippy::too_many_arguments)]
    fn scan_groups(
        &self,
        k: &Kernels,
        how: CentroidScore,
        q: &[f32],
        probe_groups: usize,
        want: usize,
        cs: &mut CentroidScratch,
        out: &mut Vec<(u32, f32)>,
    ) -> usize {
        cs.pairs.clear();
        let mut evaluated = 0;
        let groups: Vec<u32> = match (&self.upper, how) {
            // Many groups (l2): the nearest group centers from their own index;
            // `upper` holds group ids in its rows' order (see UpperIndex).
            (Some(up), CentroidScore::L2) => {
                let mut near = Vec::new();
                evaluated += up.index.scan_groups(k, how, q, probe_groups, probe_groups, cs, &mut near);
                near.iter().map(|&(row, _)| up.group_ids[row as usize]).collect()
            }
            _ => {
                evaluated += self.group_count();
                if how == CentroidScore::L2 {
                    // Every center in one pass (the bound is the distance).
                    cs.dists.resize(self.group_count(), 0.0);
                    match self.group_rows() {
                        Rows::F32(c) => (k.l2_sq_rows)(q, c, &mut cs.dists),
                        Rows::F16(h) => (k.l2_sq_rows_f16)(q, h, &mut cs.dists),
                    }
                    cs.pairs.extend(cs.dists.iter().zip(0u32..).map(|(&d, g)| (d, g)));
                } else {
                    let q_norm = (k.dot)(q, q).sqrt();
                    for g in 0..self.group_count() {
                        cs.pairs.push((self.group_bound(k, how, q, q_norm, g), g as u32));
                    }
                }
                let probe = probe_groups.clamp(1, cs.pairs.len());
                if probe < cs.pairs.len() {
                    cs.pairs.select_nth_unstable_by(probe - 1, |a, b| a.0.total_cmp(&b.0));
                    cs.pairs.truncate(probe);
                }
                cs.pairs.iter().map(|&(_, g)| g).collect()
            }
        };
        let scratch = &mut cs.pairs;
        scratch.clear();
        for g in groups {
            let (s, e) = (self.group_starts[g as usize], self.group_starts[g as usize + 1]);
            evaluated += (e - s) as usize;
            if how == CentroidScore::L2 {
                // A group's centroids are contiguous: one pass over them.
                cs.dists.resize((e - s) as usize, 0.0);
                let (a, b) = (s as usize * self.dim, e as usize * self.dim);
                match self.rows() {
                    Rows::F32(c) => (k.l2_sq_rows)(q, &c[a..b], &mut cs.dists),
                    Rows::F16(h) => (k.l2_sq_rows_f16)(q, &h[a..b], &mut cs.dists),
                }
                scratch.extend(cs.dists.iter().copied().zip(s..e));
            } else {
                for p in s..e {
                    scratch.push((self.score(k, how, q, p), p));
                }
            }
        }
        let want = want.min(scratch.len());
        if want == 0 {
            out.clear();
            return evaluated;
        }
        if want < scratch.len() {
            scratch.select_nth_unstable_by(want - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            scratch.truncate(want);
        }
        scratch.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        out.clear();
        out.extend(scratch.iter().map(|&(d, p)| (p, d)));
        evaluated
    }
}
