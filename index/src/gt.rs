//! Exact k-NN ground truth, blocked over the base file so it streams: the
//! base is read one block at a time and every query keeps its own top-k.

use crate::distance::kernels;
use crate::error::{FormatError, Result};
use crate::input::VectorFile;
use crate::topk::{Neighbor, TopK};
use crate::types::Metric;
use rayon::prelude::*;

/// Rows of base read per block.
const BLOCK_ROWS: usize = 32_768;

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// The `k` nearest base rows of each query (row-major `queries`), nearest
/// first. `progress` is called with the rows of base done so far.
pub fn ground_truth(
    base: &VectorFile,
    queries: &[f32],
    k: usize,
    metric: Metric,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Vec<Neighbor>>> {
    let dim = base.dim;
    let kern = kernels();
    // Non-finite values have no nearest neighbours: refuse them, as build does.
    if let Some(i) = queries.iter().position(|v| !v.is_finite()) {
        return Err(FormatError::BadInput {
            path: "queries".into(),
            what: format!("query row {} has a non-finite component", i / dim.max(1)),
        }
        .into());
    }
    let mut qs = queries.to_vec();
    if metric == Metric::Cosine {
        qs.chunks_exact_mut(dim).for_each(normalize);
    }
    let nq = qs.len() / dim;
    let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
    let mut block = Vec::new();
    let mut start = 0u64;
    while start < base.count {
        let rows = BLOCK_ROWS.min((base.count - start) as usize);
        base.read_f32(start, rows, &mut block)?;
        if let Some(i) = block.iter().position(|v| !v.is_finite()) {
            return Err(FormatError::BadInput {
                path: base.path().to_path_buf(),
                what: format!("row {} has a non-finite component", start + (i / dim) as u64),
            }
            .into());
        }
        if metric == Metric::Cosine {
            block.par_chunks_mut(dim).for_each(normalize);
        }
        tops.par_iter_mut().zip(qs.par_chunks(dim)).for_each(|(top, q)| {
            for (r, x) in block.chunks_exact(dim).enumerate() {
                let d = match metric {
                    Metric::Ip => -(kern.dot)(q, x),
                    _ => (kern.l2_sq)(q, x),
                };
                if d < top.threshold() {
                    top.push(start + r as u64, 0, d);
                }
            }
        });
        start += rows as u64;
        progress(start);
    }
    Ok(sorted(tops))
}

/// The `k` nearest base rows by Hamming distance, for packed bit vectors
/// (`base` a .u8bin, `queries` rows of the same width), nearest first.
pub fn ground_truth_bits(
    base: &VectorFile,
    queries: &[u8],
    k: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Vec<Neighbor>>> {
    let kern = kernels();
    let width = base.dim;
    let words = |rows: &[u8]| -> Vec<u64> {
        let per = width.div_ceil(8);
        let mut out = vec![0u64; rows.len() / width * per];
        for (o, row) in out.chunks_exact_mut(per).zip(rows.chunks_exact(width)) {
            for (i, b) in row.iter().enumerate() {
                o[i / 8] |= (*b as u64) << (8 * (i % 8));
            }
        }
        out
    };
    let per = width.div_ceil(8);
    let qs = words(queries);
    let mut tops: Vec<TopK> = (0..qs.len() / per).map(|_| TopK::new(k)).collect();
    let mut raw = Vec::new();
    let mut start = 0u64;
    while start < base.count {
        let rows = BLOCK_ROWS.min((base.count - start) as usize);
        base.read_raw(start, rows, &mut raw)?;
        let block = words(&raw);
        tops.par_iter_mut().zip(qs.par_chunks(per)).for_each(|(top, q)| {
            for (r, x) in block.chunks_exact(per).enumerate() {
                let d = (kern.xor_popcount)(q, x) as f32;
                if d < top.threshold() {
                    top.push(start + r as u64, 0, d);
                }
            }
        });
        start += rows as u64;
        progress(start);
    }
    Ok(sorted(tops))
}

/// Every query's neighbours, nearest first.
fn sorted(mut tops: Vec<TopK>) -> Vec<Vec<Neighbor>> {
    tops.iter_mut()
        .map(|t| {
            let mut v = Vec::new();
            t.into_sorted(&mut v);
            v.into_iter().map(|c| Neighbor { id: c.id, distance: c.distance }).collect()
        })
        .collect()
}

/// recall@k: the fraction of the true top-k found in `found`'s first k.
/// Truth ids may be row numbers (i32 from .ibin, u32) or user ids (u64);
/// negative ones (padding) are no neighbour.
pub fn recall_at<T: Copy + TryInto<u64>>(found: &[u64], truth: &[T], k: usize) -> f64 {
    let truth: std::collections::HashSet<u64> = truth.iter().take(k).filter_map(|&t| t.try_into().ok()).collect();
    let hits = found.iter().take(k).filter(|&&id| truth.contains(&id)).count();
    hits as f64 / k.min(truth.len()).max(1) as f64
}
