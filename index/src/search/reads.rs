//! Read planning: pages of postings and rows turned into merged,
//! page-aligned reads, and finding pages already read.

use super::VECTORS_SLOT;
use crate::format::layout::VectorLayout;
use crate::format::PAGE_BYTES;
use crate::io::{AlignedBuf, PageReader, ReadReq};
use crate::topk::Candidate;

/// One searcher's reads: its I/O backend and the buffers that each round
/// of reads of a query fills. The rerank looks for a row's pages in all
/// three before it reads them.
pub(super) struct Reads {
    pub reader: Box<dyn PageReader>,
    /// The first stage's reads: postings read from disk, then, from
    /// request `prefetched_from` on, rows read speculatively with them.
    pub buf: AlignedBuf,
    pub reqs: Vec<ReadReq>,
    pub prefetched_from: usize,
    /// The early rerank round: rows of the best candidates so far, read
    /// while the first stage is still scoring.
    pub ebuf: AlignedBuf,
    pub ereqs: Vec<ReadReq>,
    /// The rerank's own reads of the rows not read before.
    pub rbuf: AlignedBuf,
    pub vreqs: Vec<ReadReq>,
    /// Planned (first page, pages, tag) runs, and those not yet read.
    pub pages: Vec<(u64, u64, u32)>,
    pub missing: Vec<(u64, u64, u32)>,
}

impl Reads {
    pub fn new(reader: Box<dyn PageReader>) -> Self {
        Reads {
            reader,
            buf: AlignedBuf::new(),
            reqs: Vec::new(),
            prefetched_from: 0,
            ebuf: AlignedBuf::new(),
            ereqs: Vec::new(),
            rbuf: AlignedBuf::new(),
            vreqs: Vec::new(),
            pages: Vec::new(),
            missing: Vec::new(),
        }
    }
}

/// Largest single read after merging adjacent pages.
pub(super) const MAX_MERGED_READ_BYTES: u64 = 128 * 1024;

/// The pages of `cands`' rows in `vectors.bin` as sorted (first page,
/// pages, candidate index).
pub(super) fn row_pages(lay: VectorLayout, cands: &[Candidate], pages: &mut Vec<(u64, u64, u32)>) {
    pages.clear();
    for (i, c) in cands.iter().enumerate() {
        let (page, n, _) = lay.locate(c.row as u64);
        pages.push((page + 1, n as u64, i as u32)); // + 1: the header page
    }
    pages.sort_unstable();
}

/// Plans the page reads of `cands`' rows (merged when adjacent); returns
/// the buffer bytes they need.
pub(super) fn plan_row_reads(
    lay: VectorLayout,
    cands: &[Candidate],
    pages: &mut Vec<(u64, u64, u32)>,
    reqs: &mut Vec<ReadReq>,
) -> usize {
    row_pages(lay, cands, pages);
    plan_reads(pages, VECTORS_SLOT, 0, reqs)
}

/// Where `n` pages from `page` sit in the buffer of `reqs` (sorted by offset).
pub(super) fn covered(reqs: &[ReadReq], page: u64, n: u64) -> Option<usize> {
    let (lo, hi) = (page * PAGE_BYTES as u64, (page + n) * PAGE_BYTES as u64);
    let i = reqs.partition_point(|r| r.offset + r.len as u64 <= lo);
    let r = reqs.get(i)?;
    (r.offset <= lo && hi <= r.offset + r.len as u64).then(|| r.buf_offset + (lo - r.offset) as usize)
}

/// Turns sorted (first page, pages, tag) runs into merged page-aligned
/// reads placed in the buffer from `base`; returns the buffer bytes needed.
pub(super) fn plan_reads(pages: &[(u64, u64, u32)], file: usize, base: usize, reqs: &mut Vec<ReadReq>) -> usize {
    reqs.clear();
    let page = PAGE_BYTES as u64;
    let mut at = base;
    let mut cur: Option<(u64, u64)> = None; // [start, end) in pages
    let flush = |s: u64, e: u64, reqs: &mut Vec<ReadReq>, at: &mut usize| {
        let len = ((e - s) * page) as usize;
        reqs.push(ReadReq { file, offset: s * page, len, buf_offset: *at });
        *at += len;
    };
    for &(first, n, _) in pages {
        let end = first + n;
        cur = match cur {
            Some((s, e)) if first <= e && (end.max(e) - s) * page <= MAX_MERGED_READ_BYTES => Some((s, e.max(end))),
            Some((s, e)) => {
                flush(s, e, reqs, &mut at);
                Some((first, end))
            }
            None => Some((first, end)),
        };
    }
    if let Some((s, e)) = cur {
        flush(s, e, reqs, &mut at);
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_merge_adjacent_and_shared_pages() {
        let mut reqs = Vec::new();
        let pages = [(1, 1, 0), (1, 1, 1), (2, 2, 2), (10, 1, 3)];
        let total = plan_reads(&pages, 0, 0, &mut reqs);
        assert_eq!(reqs.len(), 2);
        assert_eq!((reqs[0].offset, reqs[0].len), (4096, 3 * 4096));
        assert_eq!((reqs[1].offset, reqs[1].buf_offset), (40960, 3 * 4096));
        assert_eq!(total, 4 * 4096);
    }
}
