//! Hierarchical balanced clustering: split a point set with k-means into at
//! most `branching` parts, recursing until every part holds at most
//! `leaf_size` points. The leaf bound is what makes posting lists balanced;
//! leaves come out in depth-first order, so sibling clusters (which are near
//! each other) get adjacent posting ids and adjacent places on disk.

use super::kmeans::{self, Points};
use crate::distance::Kernels;
use crate::rng::Rng;
use rayon::prelude::*;

#[derive(Debug, Clone, Copy)]
pub struct SplitParams {
    pub leaf_size: usize,
    pub branching: usize,
    pub iters: usize,
    /// Points used to train each split (the rest are only assigned).
    pub train_per_cluster: usize,
}

/// Leaves as lists of row numbers of `data`, in depth-first order.
pub fn leaves(k: &Kernels, data: &[f32], dim: usize, params: SplitParams, seed: u64) -> Vec<Vec<u32>> {
    leaves_with_progress(k, data, dim, params, seed, &|_| {})
}

/// [`leaves`], calling `settled` with the points of each leaf as it is
/// made (they add up to every point: a progress measure for the build).
pub fn leaves_with_progress(
    k: &Kernels,
    data: &[f32],
    dim: usize,
    params: SplitParams,
    seed: u64,
    settled: &(dyn Fn(u64) + Sync),
) -> Vec<Vec<u32>> {
    let all: Vec<u32> = (0..(data.len() / dim) as u32).collect();
    split(&Split { k, data, dim, p: params, settled }, all, seed)
}

/// What every level of the recursion shares.
struct Split<'a> {
    k: &'a Kernels,
    data: &'a [f32],
    dim: usize,
    p: SplitParams,
    settled: &'a (dyn Fn(u64) + Sync),
}

fn split(s: &Split, ids: Vec<u32>, seed: u64) -> Vec<Vec<u32>> {
    let Split { k, data, dim, p, .. } = *s;
    if ids.len() <= p.leaf_size.max(1) {
        (s.settled)(ids.len() as u64);
        return vec![ids];
    }
    let parts = ids.len().div_ceil(p.leaf_size).clamp(2, p.branching.max(2));
    let mut rng = Rng::new(seed);
    let train_count = (parts * p.train_per_cluster).min(ids.len());
    let train_ids: Vec<u32> =
        rng.sample_indices(ids.len() as u64, train_count as u64).into_iter().map(|i| ids[i as usize]).collect();
    let train = Points { data, dim, ids: &train_ids };
    let centroids = kmeans::train(k, &train, parts, p.iters, &mut rng);
    let labels = kmeans::assign(k, &Points { data, dim, ids: &ids }, &centroids);
    let mut groups: Vec<Vec<u32>> = vec![Vec::new(); parts];
    for (&id, &l) in ids.iter().zip(&labels) {
        groups[l as usize].push(id);
    }
    groups.retain(|g| !g.is_empty());
    if groups.len() < 2 {
        // All points coincide (or k-means collapsed): split by position so
        // the recursion still terminates with bounded leaves.
        let chunk = ids.len().div_ceil(parts);
        groups = ids.chunks(chunk).map(|c| c.to_vec()).collect();
    }
    groups
        .into_par_iter()
        .enumerate()
        .map(|(i, g)| split(s, g, Rng::derive(seed, i as u64 + 1).next_u64()))
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect()
}

/// Mean of each leaf's rows.
pub fn leaf_means(data: &[f32], dim: usize, leaves: &[Vec<u32>]) -> Vec<f32> {
    let mut out = vec![0f32; leaves.len() * dim];
    out.par_chunks_mut(dim).zip(leaves).for_each(|(c, leaf)| {
        let mut acc = vec![0f64; dim];
        for &id in leaf {
            for (a, x) in acc.iter_mut().zip(&data[id as usize * dim..(id as usize + 1) * dim]) {
                *a += *x as f64;
            }
        }
        let inv = 1.0 / leaf.len().max(1) as f64;
        for (c, a) in c.iter_mut().zip(acc) {
            *c = (a * inv) as f32;
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::kernels;

    #[test]
    fn leaves_are_bounded_cover_everything_and_are_deterministic() {
        let mut rng = Rng::new(9);
        let dim = 8;
        let data: Vec<f32> = (0..5000 * dim).map(|_| rng.normal()).collect();
        let p = SplitParams { leaf_size: 40, branching: 8, iters: 5, train_per_cluster: 64 };
        let a = leaves(kernels(), &data, dim, p, 1);
        assert!(a.iter().all(|l| !l.is_empty() && l.len() <= 40));
        let mut all: Vec<u32> = a.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..5000).collect::<Vec<u32>>());
        assert_eq!(a, leaves(kernels(), &data, dim, p, 1));
    }

    #[test]
    fn identical_points_still_split() {
        let data = vec![1.0f32; 100 * 2];
        let p = SplitParams { leaf_size: 10, branching: 4, iters: 3, train_per_cluster: 16 };
        let l = leaves(kernels(), &data, 2, p, 0);
        assert!(l.iter().all(|l| l.len() <= 10));
        assert_eq!(l.iter().map(Vec::len).sum::<usize>(), 100);
    }
}
