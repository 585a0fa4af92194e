//! Lloyd's k-means over rows of a shared matrix selected by index, so callers
//! never copy their points. Deterministic for a seed at any thread count:
//! assignment is parallel per point, means are summed sequentially.

use crate::distance::Kernels;
use crate::rng::Rng;
use rayon::prelude::*;

/// Rows of `data` (row-major, `dim` wide) named by `ids`.
pub struct Points<'a> {
    pub data: &'a [f32],
    pub dim: usize,
    pub ids: &'a [u32],
}

impl Points<'_> {
    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        let r = self.ids[i] as usize;
        &self.data[r * self.dim..(r + 1) * self.dim]
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Index of the nearest of `centroids` (row-major) to `x`, and its distance.
#[inline]
pub fn nearest(k: &Kernels, centroids: &[f32], dim: usize, x: &[f32]) -> (u32, f32) {
    let mut best = (0u32, f32::INFINITY);
    for (c, row) in centroids.chunks_exact(dim).enumerate() {
        let d = (k.l2_sq)(x, row);
        if d < best.1 {
            best = (c as u32, d);
        }
    }
    best
}

/// Labels every point with its nearest centroid (parallel).
pub fn assign(k: &Kernels, points: &Points, centroids: &[f32]) -> Vec<u32> {
    (0..points.len())
        .into_par_iter()
        .with_min_len(256)
        .map(|i| nearest(k, centroids, points.dim, points.row(i)).0)
        .collect()
}

/// k-means++ seeding: each next seed drawn with probability proportional to
/// the squared distance to the nearest seed so far.
fn seed_plus_plus(kern: &Kernels, train: &Points, k: usize, rng: &mut Rng) -> Vec<f32> {
    let n = train.len();
    let dim = train.dim;
    let mut seeds = Vec::with_capacity(k * dim);
    seeds.extend_from_slice(train.row(rng.below(n as u64) as usize));
    let mut d2: Vec<f32> = (0..n).map(|i| (kern.l2_sq)(train.row(i), &seeds[..dim])).collect();
    while seeds.len() < k * dim {
        let total: f64 = d2.iter().map(|&d| d as f64).sum();
        let pick = if total > 0.0 {
            let mut target = rng.unit_f32() as f64 * total;
            let mut pick = n - 1;
            for (i, &d) in d2.iter().enumerate() {
                target -= d as f64;
                if target < 0.0 {
                    pick = i;
                    break;
                }
            }
            pick
        } else {
            rng.below(n as u64) as usize
        };
        let start = seeds.len();
        seeds.extend_from_slice(train.row(pick));
        let new = seeds[start..].to_vec();
        d2.par_iter_mut().enumerate().with_min_len(1024).for_each(|(i, d)| {
            *d = d.min((kern.l2_sq)(train.row(i), &new));
        });
    }
    seeds
}

/// Trains `k` centroids on `train` with `iters` Lloyd iterations.
pub fn train(kern: &Kernels, train: &Points, k: usize, iters: usize, rng: &mut Rng) -> Vec<f32> {
    let dim = train.dim;
    let n = train.len();
    let k = k.min(n).max(1);
    let mut centroids = seed_plus_plus(kern, train, k, rng);
    let mut sums = vec![0f64; k * dim];
    let mut counts = vec![0usize; k];
    for _ in 0..iters {
        let labels = assign(kern, train, &centroids);
        sums.iter_mut().for_each(|s| *s = 0.0);
        counts.iter_mut().for_each(|c| *c = 0);
        for (i, &l) in labels.iter().enumerate() {
            let l = l as usize;
            counts[l] += 1;
            for (s, x) in sums[l * dim..(l + 1) * dim].iter_mut().zip(train.row(i)) {
                *s += *x as f64;
            }
        }
        for c in 0..k {
            if counts[c] == 0 {
                // Re-seed an empty cluster at a random point of the largest one.
                let big = (0..k).max_by_key(|&j| (counts[j], usize::MAX - j)).unwrap_or(0);
                let members: Vec<usize> = (0..n).filter(|&i| labels[i] as usize == big).collect();
                let pick = members[rng.below(members.len() as u64) as usize];
                let row = train.row(pick).to_vec();
                centroids[c * dim..(c + 1) * dim].copy_from_slice(&row);
                // Nudge so the two do not coincide exactly.
                centroids[c * dim] += 1e-4 * (1.0 + row[0].abs());
                continue;
            }
            let inv = 1.0 / counts[c] as f64;
            for j in 0..dim {
                centroids[c * dim + j] = (sums[c * dim + j] * inv) as f32;
            }
        }
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::kernels;

    #[test]
    fn separates_well_separated_blobs() {
        let mut rng = Rng::new(1);
        let dim = 4;
        let mut data = Vec::new();
        for b in 0..3 {
            for _ in 0..100 {
                for j in 0..dim {
                    data.push(if j == 0 { b as f32 * 100.0 } else { 0.0 } + rng.normal());
                }
            }
        }
        let ids: Vec<u32> = (0..300).collect();
        let p = Points { data: &data, dim, ids: &ids };
        let c = train(kernels(), &p, 3, 10, &mut Rng::new(2));
        let labels = assign(kernels(), &p, &c);
        for b in 0..3 {
            let l = labels[b * 100];
            assert!(labels[b * 100..(b + 1) * 100].iter().all(|&x| x == l));
        }
    }
}
