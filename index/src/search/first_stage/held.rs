//! The held first stage: posting codes held in memory, with the early
//! rerank round overlapping the farther postings' scoring.

use super::{Scratch, StageOut, StageRun};
use crate::distance::Kernels;
use crate::error::Result;
use crate::format::layout::{entry_bytes, ENTRY_ROW_BYTES};
use crate::quant::QueryCodes;
use crate::search::open::Index;
use crate::search::overlap::{early_count, score_overlapped, MemoryScorer};
use crate::search::posting_cache::PostingCache;
use crate::search::reads::Reads;
use crate::search::score::{enter_posting, score_codes, score_entries};
use crate::search::shortlist::Shortlist;
use crate::search::stats::SearchStats;
use std::time::Instant;

pub(super) fn run(
    r: &StageRun,
    codes: &mut QueryCodes,
    cache: &PostingCache,
    reads: &mut Reads,
    scratch: &mut Scratch,
    list: &mut Shortlist,
    stats: &mut SearchStats,
) -> Result<StageOut> {
    let t = Instant::now();
    let ix = r.ix;
    let m = &ix.manifest;
    let keep = r.probed.len();
    // Entries that hold ids need no rows read, so no early round.
    let early =
        if r.rerank == 0 || m.quantizer.entries_hold_ids() { keep } else { early_count(keep, r.s.early_rerank) };
    let entry_bytes = entry_bytes(&m.quantizer);
    let Scratch { dists, centroid, .. } = scratch;
    let mut scorer = HeldScorer { ix, cache, entry_bytes, kern: r.kern, q: codes, list, dists, centroid, scored: 0 };
    let (first, read) =
        score_overlapped(reads, ix.vector_layout, (r.probed, early), (r.k, f32::INFINITY), &mut scorer, stats);
    read?;
    stats.score_time = t.elapsed();
    Ok(StageOut { early: first, margin: f32::INFINITY })
}

/// Scores posting codes held in memory into the shortlist.
struct HeldScorer<'a> {
    ix: &'a Index,
    cache: &'a PostingCache,
    entry_bytes: usize,
    kern: &'a Kernels,
    q: &'a mut QueryCodes,
    list: &'a mut Shortlist,
    dists: &'a mut Vec<f32>,
    centroid: &'a mut Vec<f32>,
    scored: u32,
}

impl MemoryScorer for HeldScorer<'_> {
    fn shortlist(&self) -> &Shortlist {
        self.list
    }

    fn scored(&self) -> u32 {
        self.scored
    }

    fn score(&mut self, postings: &[(u32, f32)]) {
        for &(p, _) in postings {
            let count = self.ix.postings.get(p as usize).map_or(0, |r| r.count);
            enter_posting(self.ix, self.kern, self.q, p, self.centroid);
            let bytes = self.cache.posting(p);
            if self.cache.implicit_rows() {
                let first = self.ix.home_rows(p).start;
                score_codes(self.kern, self.entry_bytes - ENTRY_ROW_BYTES, bytes, first, self.q, self.list, self.dists);
            } else {
                score_entries(self.kern, self.entry_bytes, bytes, count, self.q, self.list, self.dists);
            }
            self.scored += count;
        }
    }
}
