//! Closure assignment (SPANN): a vector goes to its nearest posting and to up
//! to `replicas - 1` more whose centroid is within `(1 + eps1)` of the nearest
//! centroid's distance (Euclidean, not squared). The RNG rule skips a
//! candidate centroid c that is closer to an already chosen centroid c' than
//! to the vector, `factor * |c - c'| < |x - c|`: it lies "behind" c', so a
//! replica there adds little. `factor` 1 is the strict rule; larger values
//! relax it (on GloVe-50 the strict rule kept only 1.1 copies per vector).

use crate::distance::Kernels;

#[derive(Debug, Clone, Copy)]
pub struct ClosureParams {
    pub replicas: usize,
    pub eps1: f32,
    /// RNG rule factor (0 = rule off, 1 = strict, > 1 relaxed).
    pub rng_factor: f32,
}

/// Picks postings for one vector from `candidates` (id, squared distance),
/// sorted nearest first. Returns (posting, squared distance) pairs.
pub fn choose(
    k: &Kernels,
    params: &ClosureParams,
    centroids: &[f32],
    dim: usize,
    candidates: &[(u32, f32)],
    out: &mut Vec<(u32, f32)>,
) {
    out.clear();
    let Some(&first) = candidates.first() else {
        return;
    };
    out.push(first);
    let bound = (1.0 + params.eps1) * (1.0 + params.eps1) * first.1;
    for &(c, d) in &candidates[1..] {
        if out.len() >= params.replicas {
            break;
        }
        if d > bound {
            break;
        }
        let row = |c: u32| &centroids[c as usize * dim..(c as usize + 1) * dim];
        let f2 = params.rng_factor * params.rng_factor;
        let behind = f2 > 0.0 && out.iter().any(|&(chosen, _)| f2 * (k.l2_sq)(row(c), row(chosen)) < d);
        if !behind {
            out.push((c, d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::kernels;

    #[test]
    fn bound_and_rng_rule_limit_replicas() {
        // Centroids on a line: 0 at x=0, 1 at x=2, 2 at x=4, 3 at x=-2.
        let cents = [0.0f32, 2.0, 4.0, -2.0];
        // Vector at x=1: distances^2 0:1, 1:1, 3:9, 2:9.
        let cands = [(0u32, 1.0f32), (1, 1.0), (3, 9.0), (2, 9.0)];
        let mut out = Vec::new();
        let p = ClosureParams { replicas: 8, eps1: 10.0, rng_factor: 1.0 };
        choose(kernels(), &p, &cents, 1, &cands, &mut out);
        // 3 (x=-2) is behind 0 (dist 4 < 9); 2 (x=4) is behind 1.
        assert_eq!(out, vec![(0, 1.0), (1, 1.0)]);
        let p = ClosureParams { replicas: 8, eps1: 10.0, rng_factor: 0.0 };
        choose(kernels(), &p, &cents, 1, &cands, &mut out);
        assert_eq!(out.len(), 4);
        // Relaxed 3x: |c3 - c0| = 2, 3 * 2 = 6 > 3 = |x - c3|, so c3 stays.
        let p = ClosureParams { replicas: 8, eps1: 10.0, rng_factor: 3.0 };
        choose(kernels(), &p, &cents, 1, &cands, &mut out);
        assert_eq!(out.len(), 4);
        let p = ClosureParams { replicas: 8, eps1: 0.5, rng_factor: 0.0 };
        choose(kernels(), &p, &cents, 1, &cands, &mut out);
        assert_eq!(out.len(), 2, "distance 3 > 1.5 * 1");
        let p = ClosureParams { replicas: 1, eps1: 10.0, rng_factor: 0.0 };
        choose(kernels(), &p, &cents, 1, &cands, &mut out);
        assert_eq!(out.len(), 1);
    }
}
