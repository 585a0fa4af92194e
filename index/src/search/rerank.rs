//! The rerank: the shortlist's rows read from `vectors.bin` (those not
//! read before), checked, and scored exactly; the candidates it takes,
//! and distances as computed and as reported.

use super::excluded::Excluded;
use super::open::Index;
use super::reads::{covered, plan_reads, row_pages, Reads};
use super::stats::SearchStats;
use super::VECTORS_SLOT;
use crate::distance::Kernels;
use crate::error::{FormatError, IndexError, Result};
use crate::format::layout::VECTOR_ID_BYTES;
use crate::format::PAGE_BYTES;
use crate::input::raw_to_f32;
use crate::topk::{Candidate, Neighbor, TopK};
use crate::types::Metric;

/// One query's rerank.
pub(super) struct Rerank<'a> {
    pub ix: &'a Index,
    pub kern: &'a Kernels,
    /// The query as prepared (normalised for cosine).
    pub q: &'a [f32],
    pub k: usize,
    /// Exact distances from the rows; else the candidates' code distances
    /// stand and the rows are read only for their ids.
    pub exact: bool,
    /// Ids dropped when their row is read.
    pub excluded: &'a Excluded,
}

impl Rerank<'_> {
    /// Reads the rows of `cands` for their ids and, when exact, their
    /// exact distances; returns the best `k`. `row` is scratch.
    pub fn read_rows(
        &self,
        reads: &mut Reads,
        row: &mut Vec<f32>,
        cands: &[Candidate],
        stats: &mut SearchStats,
    ) -> Result<Vec<Neighbor>> {
        let ix = self.ix;
        let lay = ix.vector_layout;
        let Reads { reader, buf, reqs, prefetched_from, ebuf, ereqs, rbuf, vreqs, pages, missing } = reads;
        row_pages(lay, cands, pages);
        // Pages already read (prefetched with the postings, or in the early
        // rerank round) stay where they are; the rest are read now into a
        // second buffer.
        let pre = &reqs[*prefetched_from..];
        missing.clear();
        missing.extend(
            pages.iter().filter(|&&(pg, n, _)| covered(pre, pg, n).or_else(|| covered(ereqs, pg, n)).is_none()),
        );
        let total = plan_reads(missing, VECTORS_SLOT, 0, vreqs);
        if !vreqs.is_empty() {
            rbuf.ensure(total);
            reader.read_all(vreqs, rbuf)?;
            stats.reads += vreqs.len() as u32;
            stats.bytes_read += total as u64;
        }
        if self.exact {
            stats.reranked += cands.len() as u32;
        }
        let mut top = TopK::new(self.k);
        for &(page, n, i) in pages.iter() {
            let sources = [(pre, &*buf), (&ereqs[..], &*ebuf), (&vreqs[..], &*rbuf)];
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
            let bytes = &buf[page_at + within..page_at + within + lay.row_bytes];
            let (id, elements) = bytes.split_at(VECTOR_ID_BYTES);
            let id = u64::from_le_bytes(id.try_into().map_err(|_| IndexError::Backend("short vector row".into()))?);
            if self.excluded.contains(id) {
                continue;
            }
            let d = if self.exact {
                raw_to_f32(ix.manifest.element, elements, row);
                exact_distance(self.kern, ix.manifest.metric, self.q, row)
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

/// The answers of entries that hold ids (binary collections): nothing to read.
/// The best `k` of them not excluded.
pub(super) fn id_answers(metric: Metric, cands: &[Candidate], k: usize, excluded: &Excluded) -> Vec<Neighbor> {
    cands
        .iter()
        .filter(|c| !excluded.contains(c.id))
        .take(k)
        .map(|c| Neighbor { id: c.id, distance: report_distance(metric, c.distance) })
        .collect()
}

/// Rows read early that fell out of the final list are reranked too:
/// their pages are in memory and exact distances only help.
pub(super) fn add_early(cands: &mut Vec<Candidate>, early: Vec<Candidate>) {
    for c in early {
        if !cands.iter().any(|x| x.row == c.row) {
            cands.push(c);
        }
    }
}

/// Drops candidates past the build-time margin beyond the k-th estimate:
/// they are almost never among the k nearest, so their pages stay unread.
pub(super) fn within_margin(cands: &mut Vec<Candidate>, k: usize, margin: f32) {
    if cands.len() > k && margin.is_finite() {
        let tenth = cands[k - 1].distance;
        let bound = tenth + margin * tenth.abs();
        let keep = k + cands[k..].iter().take_while(|c| c.distance <= bound).count();
        cands.truncate(keep);
    }
}

/// Exact internal distance (smaller is nearer): squared L2, or -ip.
#[inline]
pub(crate) fn exact_distance(k: &Kernels, metric: Metric, q: &[f32], x: &[f32]) -> f32 {
    match metric {
        Metric::L2 | Metric::Cosine | Metric::Hamming => (k.l2_sq)(q, x),
        Metric::Ip => -(k.dot)(q, x),
    }
}

/// The distance reported to callers: squared L2, -ip, 1 - cos, or the
/// Hamming distance (internally 4 x Hamming: squared L2 of +-1 views).
#[inline]
pub(crate) fn report_distance(metric: Metric, internal: f32) -> f32 {
    match metric {
        Metric::Cosine => internal / 2.0,
        Metric::Hamming => internal / 4.0,
        _ => internal,
    }
}
