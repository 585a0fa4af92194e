//! `codes.bin`: the resident row codes, written from the finished
//! `postings.bin` (which rows each posting lists) and `vectors.bin` (the
//! stored vectors), so it mirrors them exactly and costs one sequential
//! pass over each.
//!
//! Body: (postings + 1) u64 entry offsets; the u32 rows of every posting,
//! in posting order; then one record per row (`quant::rowcode`).

use super::writer::BodyWriter;
use super::ProgressSink;
use crate::error::{IoContext, Result};
use crate::format::header::FileKind;
use crate::format::header::HEADER_FIXED_BYTES;
use crate::format::layout::{PostingRef, VectorLayout, ENTRY_ROW_BYTES, VECTOR_ID_BYTES};
use crate::format::manifest::FileEntry;
use crate::format::PAGE_BYTES;
use crate::input::raw_to_f32;
use crate::quant::rowcode;
use crate::types::{ElementType, Metric};
use fathom_codec::CodecParams;
use rayon::prelude::*;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Where the codes come from.
pub struct CodeSources<'a> {
    pub postings_path: &'a Path,
    pub vectors_path: &'a Path,
    pub refs: &'a [PostingRef],
    pub layout: VectorLayout,
    pub element: ElementType,
    pub metric: Metric,
    pub rows: u64,
}

/// What writing `codes.bin` produced.
pub struct WrittenCodes {
    pub file: FileEntry,
    /// Posting entries listed.
    pub entries: u64,
    /// The rerank margin measured over every row (see [`MarginProbes`]).
    pub rerank_margin: f32,
}

/// Writes `codes.bin` at `out`. `probes` (row-major queries, e.g. sample
/// rows) measure the rerank margin against every row as it is encoded.
pub fn write_codes(
    src: &CodeSources,
    codec: &CodecParams,
    probes: &[f32],
    out: &Path,
    progress: &dyn ProgressSink,
) -> Result<WrittenCodes> {
    let mut w = BodyWriter::create(out, HEADER_FIXED_BYTES)?;
    let mut at = 0u64;
    w.write(&at.to_le_bytes())?;
    for r in src.refs {
        at += r.count as u64;
        w.write(&at.to_le_bytes())?;
    }
    let postings = File::open(src.postings_path).at(src.postings_path)?;
    let mut buf = Vec::new();
    for r in src.refs {
        buf.resize(r.count as usize * ENTRY_ROW_BYTES, 0);
        postings.read_exact_at(&mut buf, r.offset).at(src.postings_path)?;
        w.write(&buf)?;
    }
    let vectors = File::open(src.vectors_path).at(src.vectors_path)?;
    let rec_bytes = rowcode::record_bytes(codec, src.metric);
    let lay = src.layout;
    let rows_per_chunk = (lay.rows_per_page * 256) as u64;
    let (mut pages, mut recs, mut floats) = (Vec::new(), Vec::new(), Vec::new());
    let mut margins = MarginProbes::new(codec, src.metric, probes);
    let mut row = 0u64;
    while row < src.rows {
        let n = rows_per_chunk.min(src.rows - row);
        let (first, _, _) = lay.locate(row);
        let page_count = lay.pages_for(n);
        pages.resize(page_count as usize * PAGE_BYTES, 0);
        vectors.read_exact_at(&mut pages, (first + 1) * PAGE_BYTES as u64).at(src.vectors_path)?;
        recs.resize(n as usize * rec_bytes, 0);
        floats.resize(n as usize * codec.dim, 0.0);
        recs.par_chunks_mut(rec_bytes).zip(floats.par_chunks_mut(codec.dim)).enumerate().for_each_init(
            Vec::new,
            |x: &mut Vec<f32>, (i, (rec, out))| {
                let (page, _, within) = lay.locate(row + i as u64);
                let at = (page - first) as usize * PAGE_BYTES + within + VECTOR_ID_BYTES;
                raw_to_f32(src.element, &pages[at..at + lay.row_bytes - VECTOR_ID_BYTES], x);
                rowcode::encode_row(codec, src.metric, x, rec);
                out.copy_from_slice(x);
            },
        );
        margins.observe(&floats, &recs, rec_bytes);
        w.write(&recs)?;
        progress.advance(n);
        row += n;
    }
    let (bytes, crc32) = w.finish(|body_bytes, body_crc| {
        crate::format::FileHeader {
            kind: FileKind::Codes,
            version: crate::format::FORMAT_VERSION,
            header_bytes: HEADER_FIXED_BYTES as u32,
            body_bytes,
            body_crc,
        }
        .encode()
    })?;
    Ok(WrittenCodes { file: FileEntry { bytes, crc32 }, entries: at, rerank_margin: margins.margin() })
}

/// Measures how far past the k-th best estimate the exact k nearest lie,
/// at the index's full density (a sample is sparser: its neighbours are
/// farther apart, and a margin measured there was 2-3x too small on
/// MiniLM-384). Each probe keeps its exact 10 nearest rows (with their
/// estimates) and its 10 best estimates; rows at distance 0 (the probe
/// itself) are skipped.
struct MarginProbes<'a> {
    metric: Metric,
    queries: Vec<(&'a [f32], rowcode::RowQuery)>,
    state: Vec<ProbeState>,
}

/// One probe's exact 10 nearest as (exact, estimate), and its 10 best estimates.
type ProbeState = (Vec<(f32, f32)>, Vec<f32>);

const K: usize = 10;

impl<'a> MarginProbes<'a> {
    fn new(codec: &CodecParams, metric: Metric, probes: &'a [f32]) -> Self {
        let k = crate::distance::kernels();
        let queries: Vec<_> = probes
            .chunks_exact(codec.dim)
            .map(|q| {
                (q, rowcode::RowQuery::new(k, codec, crate::distance::rows::Rows::F32(&codec.rotation), q, metric))
            })
            .collect();
        let state = vec![(Vec::new(), Vec::new()); queries.len()];
        MarginProbes { metric, queries, state }
    }

    fn observe(&mut self, floats: &[f32], recs: &[u8], rec_bytes: usize) {
        let k = crate::distance::kernels();
        let metric = self.metric;
        self.queries.par_iter().zip(self.state.par_iter_mut()).for_each(|((q, rq), (near, best))| {
            let dim = q.len();
            for (x, rec) in floats.chunks_exact(dim).zip(recs.chunks_exact(rec_bytes)) {
                let exact = if metric == Metric::Ip { -(k.dot)(q, x) } else { (k.l2_sq)(q, x) };
                let est = rq.distance(rec);
                if metric != Metric::Ip && exact <= 1e-12 {
                    continue;
                }
                keep_smallest(near, (exact, est), |a, b| a.0.total_cmp(&b.0));
                keep_smallest(best, est, f32::total_cmp);
            }
        });
    }

    /// The largest (est - est_k) / |est_k| over probes and neighbours (0
    /// when within): every neighbour seen would have been reranked. (The
    /// 99th percentile drops ~1% of neighbours: recall@10 -0.012 on
    /// MiniLM-384.) f32::MAX without probes (the rerank setting alone caps).
    fn margin(&self) -> f32 {
        let mut needed: Vec<f32> = Vec::new();
        for (near, best) in &self.state {
            let Some(&kth) = best.get(K - 1) else { continue };
            needed.extend(near.iter().map(|&(_, est)| ((est - kth) / kth.abs().max(1e-30)).max(0.0)));
        }
        if needed.is_empty() {
            return f32::MAX;
        }
        needed.iter().copied().fold(0.0, f32::max)
    }
}

/// Keeps the K smallest items of `v`, sorted.
fn keep_smallest<T: Copy>(v: &mut Vec<T>, item: T, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) {
    if v.len() == K && cmp(&item, &v[K - 1]) != std::cmp::Ordering::Less {
        return;
    }
    let at = v.partition_point(|x| cmp(x, &item) == std::cmp::Ordering::Less);
    v.insert(at, item);
    v.truncate(K);
}
