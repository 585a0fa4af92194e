//! The early rerank round of the in-memory first stages: reads of the
//! best candidates so far go out while the farther postings are scored.

use super::reads::{plan_row_reads, Reads};
use super::rerank::within_margin;
use super::shortlist::Shortlist;
use super::stats::SearchStats;
use crate::error::Result;
use crate::format::layout::VectorLayout;
use crate::topk::Candidate;

/// A first stage that scores postings in memory.
pub(super) trait MemoryScorer {
    fn score(&mut self, postings: &[(u32, f32)]);
    fn shortlist(&self) -> &Shortlist;
    /// Candidates scored so far.
    fn scored(&self) -> u32;
}

/// Scores the nearest `early` of `probed` postings, then reads the best
/// candidates so far (within `margin` of the k-th) while the farther
/// postings are scored: the rerank's disk latency overlaps the scoring
/// instead of following it. Returns the candidates read early and the
/// reads' result (the scoring always completes). Nothing else is read: the
/// rerank finds rows only in the early round's buffer.
pub(super) fn score_overlapped(
    reads: &mut Reads,
    lay: VectorLayout,
    (probed, early): (&[(u32, f32)], usize),
    (k, margin): (usize, f32),
    scorer: &mut dyn MemoryScorer,
    stats: &mut SearchStats,
) -> (Vec<Candidate>, Result<()>) {
    stats.postings_read = probed.len() as u32;
    let Reads { reader, pages, ereqs, ebuf, reqs, prefetched_from, .. } = reads;
    reqs.clear();
    *prefetched_from = 0;
    scorer.score(&probed[..early]);
    ereqs.clear();
    let mut first = Vec::new();
    if early >= probed.len() {
        stats.candidates_scored = scorer.scored();
        return (first, Ok(()));
    }
    scorer.shortlist().sorted_copy(&mut first);
    within_margin(&mut first, k, margin);
    let total = plan_row_reads(lay, &first, pages, ereqs);
    ebuf.ensure(total);
    let read = reader.read_during(ereqs, ebuf, &mut || {
        scorer.score(&probed[early..]);
        Ok(())
    });
    stats.reads += ereqs.len() as u32;
    stats.bytes_read += total as u64;
    stats.candidates_scored = scorer.scored();
    (first, read)
}

/// Postings that must remain to be scored after the early rerank reads go
/// out for the round to pay: with fewer, their scoring hides too little
/// of the reads' latency to repay the late arrivals' second round
/// (MiniLM-384, max_postings 4: -11% QPS with it, 8: equal, 16: +4%).
pub(super) const MIN_OVERLAPPED_POSTINGS: usize = 8;

/// Of `n` probed postings, those scored before the early rerank reads go
/// out: at least one, and all of them (no early round) when fewer than
/// [`MIN_OVERLAPPED_POSTINGS`] would remain.
pub(super) fn early_count(n: usize, early_rerank: f32) -> usize {
    let early = ((n as f32 * early_rerank).ceil() as usize).clamp(1, n.max(1));
    if n.saturating_sub(early) < MIN_OVERLAPPED_POSTINGS {
        n
    } else {
        early
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_early_round_goes_out_only_with_enough_postings_left_to_score() {
        assert_eq!(early_count(32, 0.5), 16);
        assert_eq!(early_count(16, 0.5), 8, "8 left: overlapped");
        assert_eq!(early_count(14, 0.5), 14, "7 left: no early round");
        assert_eq!(early_count(32, 1.0), 32);
        assert_eq!(early_count(32, 0.01), 1, "at least one posting first");
        assert_eq!(early_count(0, 0.5), 0);
    }
}
