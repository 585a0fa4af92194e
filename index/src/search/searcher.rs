//! One query, start to end, the same for every first stage: nearest
//! centroids -> query-aware pruning -> the index's first stage fills the
//! shortlist -> the rerank reads the shortlist's rows -> top-k. When the
//! postings the settings allow hold too few vectors, the search widens.

use super::excluded::Excluded;
use super::first_stage::{Scratch, StageRun};
use super::open::Index;
use super::probe::prune;
use super::query::Query;
use super::reads::Reads;
use super::rerank::{add_early, id_answers, within_margin, Rerank};
use super::settings::SearchSettings;
use super::shortlist::Shortlist;
use super::stats::SearchStats;
use crate::distance::{kernels, Kernels};
use crate::error::Result;
use crate::io::PageReader;
use crate::topk::Neighbor;
use std::sync::Arc;
use std::time::Instant;

/// Per-thread search state: an I/O backend and reusable buffers.
pub struct Searcher {
    index: Arc<Index>,
    kern: &'static Kernels,
    reads: Reads,
    scratch: crate::centroids::CentroidScratch,
    nearest: Vec<(u32, f32)>,
    shortlist: Shortlist,
    stage_scratch: Scratch,
    /// A row decoded for the rerank.
    row: Vec<f32>,
}

impl Searcher {
    pub(super) fn new(index: Arc<Index>, reader: Box<dyn PageReader>) -> Result<Self> {
        Ok(Searcher {
            index,
            kern: kernels(),
            reads: Reads::new(reader),
            scratch: Default::default(),
            nearest: Vec::new(),
            shortlist: Shortlist::new(),
            stage_scratch: Scratch::default(),
            row: Vec::new(),
        })
    }

    pub fn backend_name(&self) -> &'static str {
        self.reads.reader.name()
    }

    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// The `k` nearest neighbours of a float query, nearest first.
    pub fn search(&mut self, query: &[f32], k: usize, s: &SearchSettings) -> Result<(Vec<Neighbor>, SearchStats)> {
        self.search_query(Query::Floats(query), k, s)
    }

    /// The `k` nearest neighbours of `query` (floats, or a packed code for a
    /// binary collection), nearest first. When the postings the settings
    /// allow hold fewer than `k` vectors, the search widens (4x the
    /// postings and groups, no eps2 pruning, up to three times, then every
    /// posting), so an answer has `k` neighbours whenever the index holds
    /// `k` vectors, whatever the settings.
    pub fn search_query(&mut self, query: Query, k: usize, s: &SearchSettings) -> Result<(Vec<Neighbor>, SearchStats)> {
        self.search_excluding(query, k, s, &Excluded::default())
    }

    /// [`Self::search_query`] that never returns an id of `excluded`, and
    /// still returns `k` neighbours whenever `k` others remain: the
    /// shortlist keeps room for excluded candidates (up to its own depth
    /// more; every excluded id more in the last, widest round).
    pub fn search_excluding(
        &mut self,
        query: Query,
        k: usize,
        s: &SearchSettings,
        excluded: &Excluded,
    ) -> Result<(Vec<Neighbor>, SearchStats)> {
        let (mut out, mut stats) = self.search_once(query, k, s, excluded, false)?;
        let postings = self.index.manifest.posting_count as usize;
        let groups = (self.index.manifest.centroid_group_count as usize).max(1);
        let mut wider = *s;
        let mut all_room = excluded.is_empty();
        for round in 0..5 {
            let widest = wider.max_postings >= postings && wider.probe_groups >= groups && wider.eps2 == f32::MAX;
            if out.len() >= k || (widest && all_room) {
                break;
            }
            // The last round takes every posting: the three before it were
            // not enough, which only tiny postings, a huge k or many
            // excluded ids can cause.
            let last = round >= 3 || widest;
            let grow = if last { usize::MAX } else { 4 };
            wider.max_postings = wider.max_postings.saturating_mul(grow).min(postings);
            wider.probe_groups = wider.probe_groups.saturating_mul(grow).min(groups);
            wider.eps2 = f32::MAX;
            all_room |= last;
            let (o, st) = self.search_once(query, k, &wider, excluded, last)?;
            stats.add(&st);
            out = o;
        }
        Ok((out, stats))
    }

    /// Probe, first stage, rerank: the one path of every search.
    /// `all_room`: room in the shortlist for every excluded id.
    fn search_once(
        &mut self,
        query: Query,
        k: usize,
        s: &SearchSettings,
        excluded: &Excluded,
        all_room: bool,
    ) -> Result<(Vec<Neighbor>, SearchStats)> {
        s.validate()?;
        let ix = self.index.clone();
        let stage = &ix.first_stage;
        let mut prepared = stage.prepare(&ix, query, k)?;
        let q = &prepared.floats;
        let rerank = stage.rerank_depth(&ix, s);
        let mut stats = SearchStats::default();
        let keep = self.probe(&ix, q, s, &mut stats);

        let depth = if rerank > 0 { rerank.max(k) } else { k };
        let room = if all_room { excluded.len() } else { excluded.len().min(depth) };
        self.shortlist.reset(depth + room);
        let run = StageRun { ix: &ix, kern: self.kern, q, probed: &self.nearest[..keep], k, rerank, s };
        let first = stage.run(
            &run,
            prepared.codes.as_mut(),
            &mut self.reads,
            &mut self.stage_scratch,
            &mut self.shortlist,
            &mut stats,
        )?;
        let t = Instant::now();
        let mut cands = Vec::new();
        self.shortlist.drain_sorted(&mut cands);
        stats.score_time += t.elapsed();

        // Rerank (or, with exact codes or rerank 0, only read the ids of the
        // top k: rows hold the ids, and rows of one posting share pages).
        // Binary collections' entries are ids already: no second round.
        let t = Instant::now();
        if rerank == 0 {
            cands.truncate(k + room);
        }
        within_margin(&mut cands, k + room, first.margin);
        let out = if stage.keys_are_ids(&ix) {
            id_answers(ix.manifest.metric, &cands, k, excluded)
        } else {
            add_early(&mut cands, first.early);
            let rr = Rerank { ix: &ix, kern: self.kern, q, k, exact: rerank > 0, excluded };
            rr.read_rows(&mut self.reads, &mut self.row, &cands, &mut stats)?
        };
        stats.rerank_time = t.elapsed();
        Ok((out, stats))
    }

    /// The nearest centroids (into `self.nearest`) and how many of them
    /// survive the eps2 pruning.
    fn probe(&mut self, ix: &Index, q: &[f32], s: &SearchSettings, stats: &mut SearchStats) -> usize {
        let t = Instant::now();
        let how = ix.centroid_score();
        ix.centroids.nearest_for_search(how, q, s.probe_groups, s.max_postings, &mut self.scratch, &mut self.nearest);
        let keep = prune(&self.nearest, how, s.eps2);
        stats.centroid_time = t.elapsed();
        keep
    }
}
