//! The resident first stage: every row's code in memory, each row scored
//! once per query however many probed postings list it, with the early
//! rerank round overlapping the farther postings' scoring.

use super::{Scratch, StageOut, StageRun};
use crate::error::Result;
use crate::quant::rowcode::RowQuery;
use crate::search::overlap::{early_count, score_overlapped, MemoryScorer};
use crate::search::reads::Reads;
use crate::search::resident::ResidentCodes;
use crate::search::shortlist::Shortlist;
use crate::search::stats::SearchStats;
use std::time::Instant;

/// Rows ahead whose resident record is prefetched while one is scored.
const PREFETCH_AHEAD: usize = 6;

pub(super) fn run(
    r: &StageRun,
    rc: &ResidentCodes,
    reads: &mut Reads,
    scratch: &mut Scratch,
    list: &mut Shortlist,
    stats: &mut SearchStats,
) -> Result<StageOut> {
    let t = Instant::now();
    let ix = r.ix;
    let rq = RowQuery::new(r.kern, &rc.codec, rc.rotation(), r.q, ix.manifest.metric);
    let words = (ix.manifest.vector_count as usize).div_ceil(64);
    if scratch.seen.len() != words {
        scratch.seen = vec![0; words];
    }
    let margin = ix.manifest.resident_codes.as_ref().map_or(f32::MAX, |r| r.rerank_margin);
    let keep = r.probed.len();
    let early = match r.rerank {
        0 => keep,
        _ => early_count(keep, r.s.early_rerank),
    };
    let Scratch { seen, todo, .. } = scratch;
    let mut scorer = RowScorer { rc, rq: &rq, seen, todo, list, scored: 0 };
    let (first, read) = score_overlapped(reads, ix.vector_layout, (r.probed, early), (r.k, margin), &mut scorer, stats);
    // Cleared whether or not the reads succeeded: a failed query must
    // not leave rows marked as scored for the searcher's next one.
    for &(p, _) in r.probed {
        for &row in rc.posting_rows(p) {
            scratch.seen[row as usize / 64] = 0;
        }
    }
    read?;
    stats.score_time = t.elapsed();
    Ok(StageOut { early: first, margin })
}

/// Scores resident row codes into the shortlist, each row once per query.
struct RowScorer<'a> {
    rc: &'a ResidentCodes,
    rq: &'a RowQuery,
    /// Bit `row` is set once the row was scored for the current query
    /// (rows listed by several postings score once). A bitset stays in
    /// cache where a stamp per row would not; the caller clears it by
    /// walking the same lists after the query.
    seen: &'a mut [u64],
    /// The rows of the postings being scored that were not seen before.
    todo: &'a mut Vec<u32>,
    list: &'a mut Shortlist,
    scored: u32,
}

impl MemoryScorer for RowScorer<'_> {
    fn shortlist(&self) -> &Shortlist {
        self.list
    }

    fn scored(&self) -> u32 {
        self.scored
    }

    fn score(&mut self, postings: &[(u32, f32)]) {
        // First the rows not yet scored, postings' lists end to end; then
        // their records with a prefetch that runs ahead across posting
        // boundaries (within one list, the first rows of every posting
        // waited on memory: the record load was a third of the scoring).
        self.todo.clear();
        for &(p, _) in postings {
            for &row in self.rc.posting_rows(p) {
                let (word, bit) = (row as usize / 64, 1u64 << (row % 64));
                if let Some(w) = self.seen.get_mut(word) {
                    if *w & bit == 0 {
                        *w |= bit;
                        self.todo.push(row);
                    }
                }
            }
        }
        for &row in self.todo.iter().take(PREFETCH_AHEAD) {
            crate::distance::prefetch(self.rc.record(row));
        }
        for (i, &row) in self.todo.iter().enumerate() {
            if let Some(&ahead) = self.todo.get(i + PREFETCH_AHEAD) {
                crate::distance::prefetch(self.rc.record(ahead));
            }
            let d = self.rq.distance(self.rc.record(row));
            self.list.admit(row as u64, row, d);
        }
        self.scored += self.todo.len() as u32;
    }
}
