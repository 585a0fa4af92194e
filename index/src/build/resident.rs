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

/// Writes `codes.bin` at `out`; returns its entry and the number of
/// posting entries it lists.
pub fn write_codes(
    src: &CodeSources,
    codec: &CodecParams,
    out: &Path,
    progress: &dyn ProgressSink,
) -> Result<(FileEntry, u64)> {
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
    let (mut pages, mut recs) = (Vec::new(), Vec::new());
    let mut row = 0u64;
    while row < src.rows {
        let n = rows_per_chunk.min(src.rows - row);
        let (first, _, _) = lay.locate(row);
        let page_count = lay.pages_for(n);
        pages.resize(page_count as usize * PAGE_BYTES, 0);
        vectors.read_exact_at(&mut pages, (first + 1) * PAGE_BYTES as u64).at(src.vectors_path)?;
        recs.resize(n as usize * rec_bytes, 0);
        recs.par_chunks_mut(rec_bytes).enumerate().for_each_init(Vec::new, |x: &mut Vec<f32>, (i, rec)| {
            let (page, _, within) = lay.locate(row + i as u64);
            let at = (page - first) as usize * PAGE_BYTES + within + VECTOR_ID_BYTES;
            raw_to_f32(src.element, &pages[at..at + lay.row_bytes - VECTOR_ID_BYTES], x);
            rowcode::encode_row(codec, src.metric, x, rec);
        });
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
    Ok((FileEntry { bytes, crc32 }, at))
}
