//! The rerank's helpers: the candidates it takes, and distances as
//! computed and as reported.

use super::topk::{Candidate, Neighbor};
use crate::distance::Kernels;
use crate::types::Metric;

/// The answers of entries that hold ids (binary collections): nothing to read.
pub(super) fn id_answers(metric: Metric, cands: &[Candidate]) -> Vec<Neighbor> {
    cands.iter().map(|c| Neighbor { id: c.id, distance: report_distance(metric, c.distance) }).collect()
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
