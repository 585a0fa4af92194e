//! The streaming passes over the input: reading the sample, and assigning
//! every vector (closure assignment, encoding, spilling, full-vector write).

use super::progress::ProgressSink;
use super::rows::Rows;
use super::source::Source;
use super::spill::Spill;
use super::writer::BodyWriter;
use super::{blocked, BuildParams};
use crate::centroids::{hybrid_beam, hybrid_groups, CentroidIndex, CentroidScore, CentroidScratch};
use crate::cluster::assign::{self, ClosureParams};
use crate::distance::kernels;
use crate::error::Result;
use crate::format::header::FileKind;
use crate::format::layout::VectorLayout;
use crate::format::manifest::FileEntry;
use crate::format::PAGE_BYTES;
use crate::quant::Quantizer;
use crate::rng::Rng;
use rayon::prelude::*;
use std::path::Path;

/// Reads about `count` of the kept rows, chosen uniformly (seeded): their
/// views, row-major. A shard samples `shards` times as many input rows and
/// keeps its own, so it needs no map from its rows to the input's.
pub(super) fn read_kept_sample(
    src: &Source,
    rows: &Rows,
    count: u64,
    seed: u64,
    progress: &dyn ProgressSink,
) -> Result<Vec<f32>> {
    if rows.keeps_all() {
        return read_sample(src, count, seed, progress);
    }
    let wanted = (count * rows.shards() as u64).min(src.count());
    let picks = Rng::derive(seed, 0x5A).sample_indices(src.count(), wanted);
    let mut out = Vec::with_capacity(count as usize * src.dim);
    let (mut stored, mut view, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    // The stage's total is `count`; the rows kept only approach it, so
    // progress is the input read, scaled to it.
    let mut reported = 0u64;
    let mut read = 0u64;
    for (start, n) in contiguous_runs(&picks) {
        src.read(start, n, &mut stored, &mut view)?;
        rows.ids(start, n, &mut ids)?;
        for (r, id) in ids.iter().enumerate() {
            if rows.keeps(*id) {
                out.extend_from_slice(&view[r * src.dim..(r + 1) * src.dim]);
            }
        }
        read += n as u64;
        let due = (read * count / wanted.max(1)).min(count);
        progress.advance(due - reported);
        reported = due;
    }
    progress.advance(count - reported);
    Ok(out)
}

/// Sorted row numbers as (first, length) runs of consecutive rows, each
/// read in one call (the whole file when sampling all), at most 65,536 long.
fn contiguous_runs(rows: &[u64]) -> impl Iterator<Item = (u64, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        if i >= rows.len() {
            return None;
        }
        let mut j = i + 1;
        while j < rows.len() && rows[j] == rows[j - 1] + 1 && j - i < 65_536 {
            j += 1;
        }
        let run = (rows[i], j - i);
        i = j;
        Some(run)
    })
}

/// Reads `count` rows chosen uniformly (seeded): their views, row-major.
pub(super) fn read_sample(src: &Source, count: u64, seed: u64, progress: &dyn ProgressSink) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(count as usize * src.dim);
    let (mut stored, mut view) = (Vec::new(), Vec::new());
    let picks = Rng::derive(seed, 0x5A).sample_indices(src.count(), count);
    for (start, n) in contiguous_runs(&picks) {
        src.read(start, n, &mut stored, &mut view)?;
        out.extend_from_slice(&view);
        progress.advance(n as u64);
    }
    Ok(out)
}

pub(super) struct AssignContext<'a> {
    pub params: &'a BuildParams,
    pub cindex: &'a CentroidIndex,
    pub quantizer: &'a Quantizer,
    /// The lookups' effort (the one asked for, or the measured choice).
    pub effort: usize,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Assigned {
    pub replica_histogram: Vec<u64>,
    /// Vectors whose nearest posting is p (they are stored together).
    pub primaries: Vec<u32>,
    /// CRC-32 of every input row's stored bytes (kept or not): the same for
    /// every shard of one input, part of the collection id.
    pub input_crc: u32,
}

/// One vector's output from the parallel step.
struct Placed {
    postings: Vec<(u32, f32)>,
    /// The entry's payload; residual codes: one per posting, in order.
    code: Vec<u8>,
}

/// Assigns every kept vector; spills posting entries to `spill` and full
/// vectors to `vectors`, both keyed by the vector's home (nearest) posting
/// and its slot among that posting's primaries (in input order). A vector
/// row is its u64 id then its stored bytes; a binary collection's entry
/// payload is its u64 id then its code.
pub(super) fn assign_all(
    src: &Source,
    rows: &Rows,
    cx: &AssignContext,
    spill: &mut Spill,
    vectors: &mut Spill,
    progress: &dyn ProgressSink,
) -> Result<Assigned> {
    let kern = kernels();
    let dim = src.dim;
    let p = cx.params;
    let closure = ClosureParams { replicas: p.replicas, eps1: p.eps1, rng_factor: p.rng_factor };
    let chunk = p.chunk_rows(dim);
    let mut histogram = vec![0u64; p.replicas];
    let mut primaries = vec![0u32; cx.cindex.posting_count()];
    let (mut stored, mut f, mut row) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ids, mut kept) = (Vec::new(), Vec::new());
    let mut crc = crc32fast::Hasher::new();
    let want = p.assign_candidates();
    let entry_ids = cx.quantizer.entries_hold_ids();
    let residual = cx.quantizer.codes_residuals();
    // A group-scanning index is looked up a tile at a time (see blocked.rs);
    // one that walks the graph from the groups then refines each row's.
    let from_groups = cx.cindex.graph.is_some() && cx.cindex.graph_from_groups;
    let blocked = (cx.cindex.graph.is_none() || from_groups).then(|| blocked::BlockedLookup::new(cx.cindex));
    let probe_groups = if from_groups { hybrid_groups(cx.effort) } else { cx.effort };
    let mut local = 0u32;
    let mut start = 0u64;
    while start < src.count() {
        let n = chunk.min((src.count() - start) as usize);
        src.read(start, n, &mut stored, &mut f)?;
        crc.update(&stored);
        rows.ids(start, n, &mut ids)?;
        kept.clear();
        kept.extend((0..n).filter(|&r| rows.keeps(ids[r])));
        let sb = src.stored_bytes();
        let near = match &blocked {
            Some(b) => {
                let xs: Vec<f32> = kept.iter().flat_map(|&r| f[r * dim..(r + 1) * dim].iter().copied()).collect();
                let tiles: Vec<Vec<Vec<(u32, f32)>>> = xs
                    .par_chunks(blocked::TILE * dim)
                    .map(|t| {
                        let mut found = b.nearest(t, probe_groups, want);
                        if from_groups {
                            let mut scratch = CentroidScratch::default();
                            for (x, near) in t.chunks_exact(dim).zip(&mut found) {
                                cx.cindex.refine_on_graph(x, hybrid_beam(want), want, &mut scratch, near);
                            }
                        }
                        progress.advance(found.len() as u64);
                        found
                    })
                    .collect();
                tiles.into_iter().flatten().collect()
            }
            None => graph_lookups(cx.cindex, &f, dim, &kept, cx.effort, want, progress),
        };
        let placed: Vec<Placed> = kept
            .par_iter()
            .zip(near)
            .with_min_len(64)
            .map_init(
                || (Vec::new(), Vec::new()),
                |(chosen, residual_of), (&r, cands)| {
                    let x = &f[r * dim..(r + 1) * dim];
                    assign::choose(kern, &closure, &cx.cindex.centroids, dim, &cands, chosen);
                    let code = if entry_ids {
                        // The code is the stored vector; the entry names the id.
                        [&ids[r].to_le_bytes()[..], &stored[r * sb..(r + 1) * sb]].concat()
                    } else if residual {
                        // One code per posting: x less that posting's centroid.
                        let cb = cx.quantizer.code_bytes();
                        let mut codes = vec![0u8; cb * chosen.len()];
                        for (&(p, _), out) in chosen.iter().zip(codes.chunks_exact_mut(cb)) {
                            // The centroid, then x less it, in one scratch row.
                            cx.cindex.searched_centroid(p, residual_of);
                            residual_of.iter_mut().zip(x).for_each(|(c, a)| *c = a - *c);
                            cx.quantizer.encode(residual_of, out);
                        }
                        codes
                    } else {
                        let mut code = vec![0u8; cx.quantizer.code_bytes()];
                        cx.quantizer.encode(x, &mut code);
                        code
                    };
                    Placed { postings: chosen.clone(), code }
                },
            )
            .collect();
        for (&r, pl) in kept.iter().zip(&placed) {
            let id = local;
            local += 1;
            let home = pl.postings[0].0;
            let slot = primaries[home as usize];
            primaries[home as usize] += 1;
            for (rank, &(posting, dist)) in pl.postings.iter().enumerate() {
                let code = if residual { &pl.code[rank * spill.code_bytes..][..spill.code_bytes] } else { &pl.code };
                spill.push(posting, id, dist, rank as u32, (home, slot), code)?;
            }
            histogram[pl.postings.len().saturating_sub(1)] += 1;
            row.clear();
            row.extend_from_slice(&ids[r].to_le_bytes());
            row.extend_from_slice(&stored[r * sb..(r + 1) * sb]);
            vectors.push(home, id, 0.0, 0, (home, slot), &row)?;
        }
        start += n as u64;
    }
    spill.finish_writing()?;
    vectors.finish_writing()?;
    Ok(Assigned { replica_histogram: histogram, primaries, input_crc: crc.finalize() })
}

/// Each kept row's nearest `want` centroids, one graph lookup per row, in
/// `kept` order (sorting rows by a guess of their nearest centroid first,
/// for cache reuse, measured no faster on GloVe-50). Progress advances every
/// TICK rows.
fn graph_lookups(
    cindex: &CentroidIndex,
    f: &[f32],
    dim: usize,
    kept: &[usize],
    effort: usize,
    want: usize,
    progress: &dyn ProgressSink,
) -> Vec<Vec<(u32, f32)>> {
    const TICK: u64 = 1024;
    let ticked = std::sync::atomic::AtomicU64::new(0);
    let found = kept
        .par_iter()
        .with_min_len(64)
        .map_init(
            || (CentroidScratch::default(), Vec::new()),
            |(scratch, cands), &r| {
                if ticked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % TICK == TICK - 1 {
                    progress.advance(TICK);
                }
                cindex.nearest(CentroidScore::L2, &f[r * dim..(r + 1) * dim], effort, want, scratch, cands);
                cands.clone()
            },
        )
        .collect();
    progress.advance(kept.len() as u64 % TICK);
    found
}

/// The CRC-32 of every input row's stored bytes, as [`assign_all`]
/// computes it (a resumed build checks its input with it).
pub(super) fn input_crc(src: &Source, progress: &dyn ProgressSink) -> Result<u32> {
    progress.stage("verify", src.count());
    let (mut stored, mut view) = (Vec::new(), Vec::new());
    let mut crc = crc32fast::Hasher::new();
    let chunk = 65_536u64;
    let mut start = 0u64;
    while start < src.count() {
        let n = chunk.min(src.count() - start) as usize;
        src.read(start, n, &mut stored, &mut view)?;
        crc.update(&stored);
        progress.advance(n as u64);
        start += n as u64;
    }
    progress.finish_stage();
    Ok(crc.finalize())
}

/// Writes `vectors.bin` from the vector spill: rows in (home posting, slot)
/// order, so the vectors of one posting sit on the same pages.
pub(super) fn write_vectors(vectors: &Spill, layout: VectorLayout, path: &Path) -> Result<(FileEntry, Vec<u32>)> {
    let mut w = BodyWriter::create(path, PAGE_BYTES)?;
    let mut page = vec![0u8; layout.pages_per_row * PAGE_BYTES];
    let mut page_rows = 0usize;
    let mut page_crcs = Vec::new();
    for b in 0..vectors.bucket_count() {
        let (bytes, mut recs) = vectors.read_bucket(b)?;
        recs.sort_unstable_by_key(|r| (r.home, r.slot));
        for r in &recs {
            let at = page_rows * layout.row_bytes;
            page[at..at + layout.row_bytes].copy_from_slice(&bytes[r.code_at..r.code_at + layout.row_bytes]);
            page_rows += 1;
            if page_rows == layout.rows_per_page {
                flush_page(&mut w, &mut page, &mut page_crcs)?;
                page_rows = 0;
            }
        }
        vectors.remove_bucket(b);
    }
    if page_rows > 0 {
        flush_page(&mut w, &mut page, &mut page_crcs)?;
    }
    Ok((w.finish_paged(FileKind::Vectors)?, page_crcs))
}

fn flush_page(w: &mut BodyWriter, page: &mut [u8], crcs: &mut Vec<u32>) -> Result<()> {
    for p in page.chunks(PAGE_BYTES) {
        crcs.push(crc32fast::hash(p));
    }
    w.write(page)?;
    page.fill(0);
    Ok(())
}
