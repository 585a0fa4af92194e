//! The disk first stage: one batch of posting reads (with the rows of the
//! nearest postings prefetched beside them), each posting scored as soon
//! as its read completes.

use super::{Scratch, StageOut, StageRun};
use crate::distance::Kernels;
use crate::error::{FormatError, IndexError, Result};
use crate::format::layout::entry_bytes;
use crate::io::ReadReq;
use crate::quant::QueryCodes;
use crate::search::open::Index;
use crate::search::reads::{plan_reads, Reads};
use crate::search::score::{enter_posting, score_entries};
use crate::search::shortlist::Shortlist;
use crate::search::stats::SearchStats;
use crate::search::{POSTINGS_SLOT, VECTORS_SLOT};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

pub(super) fn run(
    r: &StageRun,
    codes: &mut QueryCodes,
    reads: &mut Reads,
    scratch: &mut Scratch,
    list: &mut Shortlist,
    stats: &mut SearchStats,
) -> Result<StageOut> {
    let (ix, s) = (r.ix, r.s);
    // Posting reads: pages of all kept postings, merged when adjacent.
    let t = Instant::now();
    let entry_bytes = entry_bytes(&ix.manifest.quantizer);
    reads.pages.clear();
    for &(p, _) in r.probed {
        let rf = &ix.postings[p as usize];
        if rf.count > 0 {
            let (first, n) = rf.pages(entry_bytes);
            let b = s.block_pages as u64;
            let start = first - first % b;
            let end = (first + n).next_multiple_of(b).min(ix.postings_file_pages).max(first + n);
            reads.pages.push((start, end - start, p));
            stats.postings_read += 1;
        }
    }
    reads.pages.sort_unstable();
    scratch.chosen.clear();
    scratch.chosen.extend(reads.pages.iter().map(|x| x.2));
    let posting_bytes = plan_reads(&reads.pages, POSTINGS_SLOT, 0, &mut reads.reqs);
    let posting_reqs = reads.reqs.len();
    // Speculative: the vector pages of the nearest postings' own vectors.
    reads.pages.clear();
    let lay = ix.vector_layout;
    for &(p, _) in r.probed.iter().take(if r.rerank > 0 { s.prefetch_postings } else { 0 }) {
        let rows = ix.home_rows(p);
        if rows.is_empty() {
            continue;
        }
        let (first, _, _) = lay.locate(rows.start as u64);
        let (last, n, _) = lay.locate(rows.end as u64 - 1);
        reads.pages.push((first + 1, last + n as u64 - first, p)); // + 1: header page
    }
    reads.pages.sort_unstable();
    let total = plan_reads(&reads.pages, VECTORS_SLOT, posting_bytes, &mut reads.vreqs);
    reads.reqs.append(&mut reads.vreqs);
    reads.buf.ensure(total);
    reads.prefetched_from = posting_reqs;
    // Score each posting read as soon as its read completes, so scoring
    // overlaps the reads still in flight. Every posting that lies
    // wholly inside the pages read is scored, not only the chosen ones:
    // neighbouring postings on disk are neighbouring clusters, so
    // page-mates are useful candidates that cost no extra I/O.
    let mut score_time = Duration::ZERO;
    let mut scored = 0u32;
    // No early rerank round here: these reads are bound by the disk's
    // IOPS (30-50 a query), and reading candidates before every posting
    // is scored only added reads (GloVe-50: -10-15% QPS at early_rerank
    // 0.5, equal at 0.9; session 8).
    reads.ereqs.clear();
    {
        let Reads { reader, reqs, buf, .. } = reads;
        let Scratch { chosen, dists, centroid, .. } = scratch;
        let cx = ScoreContext { ix, entry_bytes, page_mates: s.page_mates, chosen, kern: r.kern };
        reader.read_each(reqs, buf, &mut |i, region| {
            if i >= posting_reqs {
                return Ok(());
            }
            let t = Instant::now();
            scored += cx.score_region(&reqs[i], region, codes, list, (dists, centroid))?;
            score_time += t.elapsed();
            Ok(())
        })?;
    }
    stats.reads += reads.reqs.len() as u32;
    stats.bytes_read += total as u64;
    stats.candidates_scored += scored;
    stats.io_time = t.elapsed().saturating_sub(score_time);
    stats.score_time = score_time;
    Ok(StageOut { early: Vec::new(), margin: f32::INFINITY })
}

/// What scoring a read region needs besides the query.
struct ScoreContext<'a> {
    ix: &'a Index,
    /// Bytes of one entry: its key (row or id) and its code.
    entry_bytes: usize,
    page_mates: bool,
    chosen: &'a BTreeSet<u32>,
    kern: &'a Kernels,
}

impl ScoreContext<'_> {
    /// Scores the postings lying wholly inside one read (`region` holds the
    /// bytes of `rq`); returns the entries scored.
    fn score_region(
        &self,
        rq: &ReadReq,
        region: &[u8],
        q: &mut QueryCodes,
        list: &mut Shortlist,
        (dists, centroid): (&mut Vec<f32>, &mut Vec<f32>),
    ) -> Result<u32> {
        let postings = &self.ix.postings;
        let (lo, hi) = (rq.offset, rq.offset + rq.len as u64);
        let mut scored = 0;
        let mut p = postings.partition_point(|r| r.offset < lo);
        while p < postings.len() && postings[p].offset < hi {
            let r = &postings[p];
            let len = r.len_bytes(self.entry_bytes);
            let wanted = self.page_mates || self.chosen.contains(&(p as u32));
            if r.count > 0 && r.offset + len <= hi && wanted {
                let start = (r.offset - lo) as usize;
                let bytes = &region[start..start + len as usize];
                let found = crc32fast::hash(bytes);
                if found != r.crc {
                    return Err(IndexError::Format(FormatError::Checksum {
                        path: self.ix.files.path(POSTINGS_SLOT).to_path_buf(),
                        section: format!("posting {p} at byte {}", r.offset),
                        expected: r.crc,
                        found,
                    }));
                }
                enter_posting(self.ix, self.kern, q, p as u32, centroid);
                score_entries(self.kern, self.entry_bytes, bytes, r.count, q, list, dists);
                scored += r.count;
            }
            p += 1;
        }
        Ok(scored)
    }
}
