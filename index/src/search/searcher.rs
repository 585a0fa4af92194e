//! One query, start to end: nearest centroids -> query-aware pruning ->
//! one batch of posting reads -> code scoring with replica dedupe -> one
//! batch of full-vector reads -> exact rerank -> top-k.

use super::open::Index;
use super::overlap::{early_count, score_overlapped, EarlyReads, MemoryScorer};
use super::probe::prune;
use super::query::Query;
use super::reads::{covered, plan_reads, row_pages};
use super::rerank::{add_early, exact_distance, id_answers, report_distance, within_margin};
use super::score::{enter_posting, score_codes, score_entries};
use super::settings::SearchSettings;
use super::stats::SearchStats;
use super::topk::{Candidate, Neighbor, TopK};
use super::{POSTINGS_SLOT, VECTORS_SLOT};
use crate::distance::{kernels, Kernels};
use crate::error::{FormatError, IndexError, Result};
use crate::format::layout::{ENTRY_ROW_BYTES, VECTOR_ID_BYTES};
use crate::format::PAGE_BYTES;
use crate::input::raw_to_f32;
use crate::io::{AlignedBuf, PageReader, ReadReq};
use crate::quant::QueryCodes;
use std::sync::Arc;
use std::time::Instant;

/// Rows ahead whose resident record is prefetched while one is scored.
const PREFETCH_AHEAD: usize = 6;

/// Per-thread search state: an I/O backend and reusable buffers.
pub struct Searcher {
    index: Arc<Index>,
    reader: Box<dyn PageReader>,
    kern: &'static Kernels,
    buf: AlignedBuf,
    rbuf: AlignedBuf,
    /// The early rerank round: reads of the best candidates so far, issued
    /// while the first stage is still running.
    ebuf: AlignedBuf,
    ereqs: Vec<ReadReq>,
    reqs: Vec<ReadReq>,
    vreqs: Vec<ReadReq>,
    missing: Vec<(u64, u64, u32)>,
    scratch: crate::search::centroids::CentroidScratch,
    nearest: Vec<(u32, f32)>,
    pages: Vec<(u64, u64, u32)>,
    chosen: std::collections::BTreeSet<u32>,
    top: TopK,
    row: Vec<f32>,
    /// Code distances of the posting being scored.
    dists: Vec<f32>,
    /// The centroid of the posting being scored (residual codes).
    centroid: Vec<f32>,
    /// Resident scoring: the rows scored for the current query (see
    /// [`RowScorer::seen`]).
    seen: Vec<u64>,
    /// Resident scoring: the rows left to score ([`RowScorer::todo`]).
    todo: Vec<u32>,
}

impl Searcher {
    pub(super) fn new(index: Arc<Index>, reader: Box<dyn PageReader>) -> Result<Self> {
        Ok(Searcher {
            index,
            reader,
            kern: kernels(),
            buf: AlignedBuf::new(),
            rbuf: AlignedBuf::new(),
            ebuf: AlignedBuf::new(),
            ereqs: Vec::new(),
            reqs: Vec::new(),
            vreqs: Vec::new(),
            missing: Vec::new(),
            scratch: Default::default(),
            nearest: Vec::new(),
            pages: Vec::new(),
            chosen: Default::default(),
            top: TopK::new(0),
            row: Vec::new(),
            dists: Vec::new(),
            centroid: Vec::new(),
            seen: Vec::new(),
            todo: Vec::new(),
        })
    }

    pub fn backend_name(&self) -> &'static str {
        self.reader.name()
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
        let (mut out, mut stats) = self.search_once(query, k, s)?;
        let postings = self.index.manifest.posting_count as usize;
        let groups = (self.index.manifest.centroid_group_count as usize).max(1);
        let mut wider = *s;
        for round in 0..4 {
            let widest = wider.max_postings >= postings && wider.probe_groups >= groups && wider.eps2 == f32::MAX;
            if out.len() >= k || widest {
                break;
            }
            // The last round takes every posting: the three before it were
            // not enough, which only tiny postings or a huge k can cause.
            let grow = if round == 3 { usize::MAX } else { 4 };
            wider.max_postings = wider.max_postings.saturating_mul(grow).min(postings);
            wider.probe_groups = wider.probe_groups.saturating_mul(grow).min(groups);
            wider.eps2 = f32::MAX;
            let (o, st) = self.search_once(query, k, &wider)?;
            stats.add(&st);
            out = o;
        }
        Ok((out, stats))
    }

    fn search_once(&mut self, query: Query, k: usize, s: &SearchSettings) -> Result<(Vec<Neighbor>, SearchStats)> {
        s.validate()?;
        if let (Some(_), Query::Floats(f)) = (&self.index.resident, query) {
            return self.search_resident(f, k, s);
        }
        if self.index.posting_cache.is_some() {
            return self.search_cached(query, k, s);
        }
        if !self.index.manifest.quantizer.scores_postings() {
            // Unreachable through `prepare` (a PQ index takes only floats),
            // kept so a future query kind cannot index an empty codebook.
            return Err(IndexError::Backend("posting codebooks are not loaded (resident codes serve)".into()));
        }
        let (q, mut codes_q) = self.index.prepare(query, k)?;
        let mut stats = SearchStats::default();
        let ix = self.index.clone();
        let m = &ix.manifest;
        let exact_codes = m.quantizer.is_exact();
        let rerank = if exact_codes { 0 } else { s.rerank };

        let keep = self.probe(&ix, &q, s, &mut stats);

        // Posting reads: pages of all kept postings, merged when adjacent.
        let t = Instant::now();
        let entry_bytes = crate::format::layout::entry_bytes(&m.quantizer);
        self.pages.clear();
        for &(p, _) in &self.nearest[..keep] {
            let r = &ix.postings[p as usize];
            if r.count > 0 {
                let (first, n) = r.pages(entry_bytes);
                let b = s.block_pages as u64;
                let start = first - first % b;
                let end = (first + n).next_multiple_of(b).min(ix.postings_file_pages).max(first + n);
                self.pages.push((start, end - start, p));
                stats.postings_read += 1;
            }
        }
        self.pages.sort_unstable();
        self.chosen.clear();
        self.chosen.extend(self.pages.iter().map(|x| x.2));
        let posting_bytes = plan_reads(&self.pages, POSTINGS_SLOT, 0, &mut self.reqs);
        let posting_reqs = self.reqs.len();
        // Speculative: the vector pages of the nearest postings' own vectors.
        self.pages.clear();
        let lay = ix.vector_layout;
        for &(p, _) in self.nearest[..keep].iter().take(if rerank > 0 { s.prefetch_postings } else { 0 }) {
            let rows = ix.home_rows(p);
            if rows.is_empty() {
                continue;
            }
            let (first, _, _) = lay.locate(rows.start as u64);
            let (last, n, _) = lay.locate(rows.end as u64 - 1);
            self.pages.push((first + 1, last + n as u64 - first, p)); // + 1: header page
        }
        self.pages.sort_unstable();
        let total = plan_reads(&self.pages, VECTORS_SLOT, posting_bytes, &mut self.vreqs);
        self.reqs.append(&mut self.vreqs);
        self.buf.ensure(total);
        // Score each posting read as soon as its read completes, so scoring
        // overlaps the reads still in flight. Every posting that lies
        // wholly inside the pages read is scored, not only the chosen ones:
        // neighbouring postings on disk are neighbouring clusters, so
        // page-mates are useful candidates that cost no extra I/O.
        self.top.reset(if rerank > 0 { rerank.max(k) } else { k });
        let mut score_time = std::time::Duration::ZERO;
        let mut scored = 0u32;
        // No early rerank round here: these reads are bound by the disk's
        // IOPS (30-50 a query), and reading candidates before every posting
        // is scored only added reads (GloVe-50: -10-15% QPS at early_rerank
        // 0.5, equal at 0.9; session 8).
        self.ereqs.clear();
        {
            let Searcher { reader, reqs, buf, top, chosen, kern, dists, centroid, .. } = self;
            let cx = ScoreContext { ix: &ix, entry_bytes, page_mates: s.page_mates, chosen, kern };
            reader.read_each(reqs, buf, &mut |i, region| {
                if i >= posting_reqs {
                    return Ok(());
                }
                let t = Instant::now();
                scored += cx.score_region(&reqs[i], region, &mut codes_q, top, (dists, centroid))?;
                score_time += t.elapsed();
                Ok(())
            })?;
        }
        stats.reads += self.reqs.len() as u32;
        stats.bytes_read += total as u64;
        stats.candidates_scored += scored;
        stats.io_time = t.elapsed().saturating_sub(score_time);
        let t = Instant::now();
        let mut cands = Vec::new();
        self.top.into_sorted(&mut cands);
        stats.score_time = score_time + t.elapsed();

        // Rerank (or, with exact codes or rerank 0, only read the ids of the
        // top k: rows hold the ids, and rows of one posting share pages).
        // Binary collections' entries are ids already: no second round.
        let t = Instant::now();
        if rerank == 0 {
            cands.truncate(k);
        }
        let out = if m.quantizer.entries_hold_ids() {
            id_answers(m.metric, &cands)
        } else {
            self.read_rows(&q, &cands, k, rerank > 0, posting_reqs, &mut stats)?
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

    /// The first stage from the posting codes held in memory (see
    /// [`Index::posting_cache`]), with the resident codes' overlapped
    /// rerank round.
    fn search_cached(&mut self, query: Query, k: usize, s: &SearchSettings) -> Result<(Vec<Neighbor>, SearchStats)> {
        let ix = self.index.clone();
        let Some(cache) = ix.posting_cache.as_ref() else {
            return Err(IndexError::Backend("posting codes are not held in memory".into()));
        };
        let (q, mut codes_q) = ix.prepare(query, k)?;
        let m = &ix.manifest;
        let rerank = if m.quantizer.is_exact() { 0 } else { s.rerank };
        let mut stats = SearchStats::default();
        let keep = self.probe(&ix, &q, s, &mut stats);

        let t = Instant::now();
        self.top.reset(if rerank > 0 { rerank.max(k) } else { k });
        let probed = &self.nearest[..keep];
        // Entries that hold ids need no rows read, so no early round.
        let early =
            if rerank == 0 || m.quantizer.entries_hold_ids() { keep } else { early_count(keep, s.early_rerank) };
        let entry_bytes = crate::format::layout::entry_bytes(&m.quantizer);
        let Searcher { reader, pages, ereqs, ebuf, top, dists, centroid, kern, .. } = self;
        let mut scorer =
            CachedScorer { ix: &ix, cache, entry_bytes, kern, q: &mut codes_q, top, dists, centroid, scored: 0 };
        let (first, read) = score_overlapped(
            &mut **reader,
            ix.vector_layout,
            (probed, early),
            (k, f32::INFINITY),
            &mut scorer,
            EarlyReads { pages, reqs: ereqs, buf: ebuf },
            &mut stats,
        );
        stats.candidates_scored = scorer.scored;
        stats.postings_read = probed.len() as u32;
        read?;
        self.reqs.clear();
        let mut cands = Vec::new();
        self.top.into_sorted(&mut cands);
        stats.score_time = t.elapsed();

        let t = Instant::now();
        if rerank == 0 {
            cands.truncate(k);
        }
        let out = if m.quantizer.entries_hold_ids() {
            id_answers(m.metric, &cands)
        } else {
            add_early(&mut cands, first);
            self.read_rows(&q, &cands, k, rerank > 0, 0, &mut stats)?
        };
        stats.rerank_time = t.elapsed();
        Ok((out, stats))
    }

    /// The first stage in memory: the resident codes of every row the
    /// nearest postings list, then one batch of rerank reads.
    fn search_resident(&mut self, query: &[f32], k: usize, s: &SearchSettings) -> Result<(Vec<Neighbor>, SearchStats)> {
        let ix = self.index.clone();
        let Some(rc) = ix.resident.as_ref() else {
            return Err(IndexError::Backend("resident codes are not loaded".into()));
        };
        let q = ix.prepare_query(query, k)?;
        let mut stats = SearchStats::default();
        let keep = self.probe(&ix, &q, s, &mut stats);

        let t = Instant::now();
        let rq = crate::quant::rowcode::RowQuery::new(self.kern, &rc.codec, rc.rotation(), &q, ix.manifest.metric);
        let words = (ix.manifest.vector_count as usize).div_ceil(64);
        if self.seen.len() != words {
            self.seen = vec![0; words];
        }
        self.top.reset(s.rerank.max(k));
        let margin = ix.manifest.resident_codes.as_ref().map_or(f32::MAX, |r| r.rerank_margin);
        let probed = &self.nearest[..keep];
        let early = match s.rerank {
            0 => keep,
            _ => early_count(keep, s.early_rerank),
        };
        let Searcher { reader, pages, ereqs, ebuf, seen, todo, top, .. } = self;
        let mut scorer = RowScorer { rc, rq: &rq, seen, todo, top, scored: 0 };
        let (first, read) = score_overlapped(
            &mut **reader,
            ix.vector_layout,
            (probed, early),
            (k, margin),
            &mut scorer,
            EarlyReads { pages, reqs: ereqs, buf: ebuf },
            &mut stats,
        );
        stats.candidates_scored = scorer.scored;
        stats.postings_read = probed.len() as u32;
        self.reqs.clear();
        // Cleared whether or not the reads succeeded: a failed query must
        // not leave rows marked as scored for the searcher's next one.
        for &(p, _) in probed {
            for &row in rc.posting_rows(p) {
                self.seen[row as usize / 64] = 0;
            }
        }
        read?;
        let mut cands = Vec::new();
        self.top.into_sorted(&mut cands);
        stats.score_time = t.elapsed();

        let t = Instant::now();
        if s.rerank == 0 {
            cands.truncate(k);
        }
        within_margin(&mut cands, k, margin);
        add_early(&mut cands, first);
        let out = self.read_rows(&q, &cands, k, s.rerank > 0, 0, &mut stats)?;
        stats.rerank_time = t.elapsed();
        Ok((out, stats))
    }

    /// Reads the rows of `cands` from `vectors.bin` for their ids and, when
    /// `exact`, their exact distances; returns the best `k`.
    fn read_rows(
        &mut self,
        q: &[f32],
        cands: &[Candidate],
        k: usize,
        exact: bool,
        prefetched_from: usize,
        stats: &mut SearchStats,
    ) -> Result<Vec<Neighbor>> {
        let ix = self.index.clone();
        let lay = ix.vector_layout;
        row_pages(lay, cands, &mut self.pages);
        // Pages already read (prefetched with the postings, or in the early
        // rerank round) stay where they are; the rest are read now into a
        // second buffer.
        let pre = &self.reqs[prefetched_from..];
        let early = &self.ereqs;
        self.missing.clear();
        self.missing.extend(
            self.pages.iter().filter(|&&(pg, n, _)| covered(pre, pg, n).or_else(|| covered(early, pg, n)).is_none()),
        );
        let total = plan_reads(&self.missing, VECTORS_SLOT, 0, &mut self.vreqs);
        if !self.vreqs.is_empty() {
            self.rbuf.ensure(total);
            self.reader.read_all(&self.vreqs, &mut self.rbuf)?;
            stats.reads += self.vreqs.len() as u32;
            stats.bytes_read += total as u64;
        }
        if exact {
            stats.reranked += cands.len() as u32;
        }
        let mut top = TopK::new(k);
        for &(page, n, i) in &self.pages {
            let sources = [(pre, &self.buf), (&self.ereqs[..], &self.ebuf), (&self.vreqs[..], &self.rbuf)];
            let Some((buf, page_at)) =
                sources.iter().find_map(|(reqs, buf)| covered(reqs, page, n).map(|at| (buf.as_slice(), at)))
            else {
                return Err(IndexError::Backend("rerank page was not read".into()));
            };
            for pg in 0..n as usize {
                let idx = (page - 1) as usize + pg;
                let bytes = &buf[page_at + pg * PAGE_BYTES..page_at + (pg + 1) * PAGE_BYTES];
                let found = crc32fast::hash(bytes);
                if found != ix.vector_page_crcs[idx] {
                    return Err(IndexError::Format(FormatError::Checksum {
                        path: ix.files.path(VECTORS_SLOT).to_path_buf(),
                        section: format!("vector page {idx}"),
                        expected: ix.vector_page_crcs[idx],
                        found,
                    }));
                }
            }
            let c = cands[i as usize];
            let (_, _, within) = lay.locate(c.row as u64);
            let row = &buf[page_at + within..page_at + within + lay.row_bytes];
            let (id, elements) = row.split_at(VECTOR_ID_BYTES);
            let id = u64::from_le_bytes(id.try_into().map_err(|_| IndexError::Backend("short vector row".into()))?);
            let d = if exact {
                raw_to_f32(ix.manifest.element, elements, &mut self.row);
                exact_distance(self.kern, ix.manifest.metric, q, &self.row)
            } else {
                c.distance
            };
            top.push(id, c.row, d);
        }
        let mut out = Vec::new();
        top.into_sorted(&mut out);
        Ok(out
            .iter()
            .map(|c| Neighbor { id: c.id, distance: report_distance(ix.manifest.metric, c.distance) })
            .collect())
    }
}

/// What scoring a read region needs besides the query.
struct ScoreContext<'a> {
    ix: &'a Index,
    /// Bytes of one entry: its key (row or id) and its code.
    entry_bytes: usize,
    page_mates: bool,
    chosen: &'a std::collections::BTreeSet<u32>,
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
        top: &mut TopK,
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
                score_entries(self.kern, self.entry_bytes, bytes, r.count, q, top, dists);
                scored += r.count;
            }
            p += 1;
        }
        Ok(scored)
    }
}

/// Scores posting codes held in memory into a top list.
struct CachedScorer<'a> {
    ix: &'a Index,
    cache: &'a super::posting_cache::PostingCache,
    entry_bytes: usize,
    kern: &'a Kernels,
    q: &'a mut QueryCodes,
    top: &'a mut TopK,
    dists: &'a mut Vec<f32>,
    centroid: &'a mut Vec<f32>,
    scored: u32,
}

impl MemoryScorer for CachedScorer<'_> {
    fn top(&self) -> &TopK {
        self.top
    }

    fn score(&mut self, postings: &[(u32, f32)]) {
        for &(p, _) in postings {
            let count = self.ix.postings.get(p as usize).map_or(0, |r| r.count);
            enter_posting(self.ix, self.kern, self.q, p, self.centroid);
            let bytes = self.cache.posting(p);
            if self.cache.implicit_rows() {
                let first = self.ix.home_rows(p).start;
                score_codes(self.kern, self.entry_bytes - ENTRY_ROW_BYTES, bytes, first, self.q, self.top, self.dists);
            } else {
                score_entries(self.kern, self.entry_bytes, bytes, count, self.q, self.top, self.dists);
            }
            self.scored += count;
        }
    }
}

/// Scores resident row codes into a top list, each row once per query.
struct RowScorer<'a> {
    rc: &'a super::resident::ResidentCodes,
    rq: &'a crate::quant::rowcode::RowQuery,
    /// Bit `row` is set once the row was scored for the current query
    /// (rows listed by several postings score once). A bitset stays in
    /// cache where a stamp per row would not; the caller clears it by
    /// walking the same lists after the query.
    seen: &'a mut [u64],
    /// The rows of the postings being scored that were not seen before.
    todo: &'a mut Vec<u32>,
    top: &'a mut TopK,
    scored: u32,
}

impl MemoryScorer for RowScorer<'_> {
    fn top(&self) -> &TopK {
        self.top
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
            if d <= self.top.threshold() {
                self.top.push(row as u64, row, d);
            }
        }
        self.scored += self.todo.len() as u32;
    }
}
