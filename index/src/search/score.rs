//! Scoring posting codes against a query, one posting at a time.

use super::open::Index;
use super::shortlist::Shortlist;
use crate::distance::Kernels;
use crate::format::layout::{ENTRY_ID_BYTES, ENTRY_ROW_BYTES};
use crate::quant::QueryCodes;

/// Sets `q` up for the codes of posting `p` (residual codes need its
/// centroid; `centroid` is scratch).
pub(super) fn enter_posting(ix: &Index, kern: &Kernels, q: &mut QueryCodes, p: u32, centroid: &mut Vec<f32>) {
    if q.needs_centroids() {
        ix.centroids.searched_centroid(p, centroid);
        q.enter_posting(&ix.manifest.quantizer, kern, centroid);
    }
}

/// Scores one posting's entries (`bytes`, `count` of them, `entry_bytes`
/// each) into `list`; [`enter_posting`] first.
pub(super) fn score_entries(
    kern: &Kernels,
    entry_bytes: usize,
    bytes: &[u8],
    count: u32,
    q: &mut QueryCodes,
    list: &mut Shortlist,
    dists: &mut Vec<f32>,
) {
    // Binary collections' keys are u64 ids; float collections' are u32
    // rows (unique per vector, so replicas dedupe).
    let key_bytes = if let QueryCodes::Codes(_) = q { ENTRY_ID_BYTES } else { ENTRY_ROW_BYTES };
    let (keys, codes) = bytes.split_at((count as usize * key_bytes).min(bytes.len()));
    q.distances(kern, codes, entry_bytes - key_bytes, dists);
    for (key, &d) in keys.chunks_exact(key_bytes).zip(dists.iter()) {
        if key_bytes == ENTRY_ID_BYTES {
            let id = u64::from_le_bytes([key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7]]);
            list.admit(id, 0, d);
        } else {
            let row = u32::from_le_bytes([key[0], key[1], key[2], key[3]]);
            list.admit(row as u64, row, d);
        }
    }
}

/// Scores one posting's codes held without their rows (`codes`, in row
/// order from row `first`) into `list`; [`enter_posting`] first.
pub(super) fn score_codes(
    kern: &Kernels,
    code_bytes: usize,
    codes: &[u8],
    first: u32,
    q: &mut QueryCodes,
    list: &mut Shortlist,
    dists: &mut Vec<f32>,
) {
    q.distances(kern, codes, code_bytes, dists);
    for (row, &d) in (first..).zip(dists.iter()) {
        list.admit(row as u64, row, d);
    }
}
