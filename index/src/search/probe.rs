//! Which postings a query probes: the eps2 bound over the nearest centroids.

use crate::centroids::CentroidScore;

/// How many of the sorted `nearest` centroids survive the eps2 bound. The
/// nearest always does: its distance can be 0 or, for l2 summed from half
/// floats, slightly below 0, where a bound that scales it would keep none
/// (and an infinite factor times 0 is NaN). eps2 = f32::MAX keeps all.
pub(super) fn prune(nearest: &[(u32, f32)], how: CentroidScore, eps2: f32) -> usize {
    let Some(&(_, d0)) = nearest.first() else {
        return 0;
    };
    if eps2 == f32::MAX {
        return nearest.len();
    }
    let slack = match how {
        CentroidScore::L2 => (1.0 + eps2) * (1.0 + eps2) - 1.0,
        CentroidScore::NegIp => eps2,
    };
    let bound = d0 + slack * d0.abs();
    if !bound.is_finite() {
        return nearest.len();
    }
    1 + nearest[1..].iter().take_while(|&&(_, d)| d <= bound).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_centroids_within_the_bound() {
        let n = [(0u32, 1.0f32), (1, 2.0), (2, 2.3), (3, 9.0)];
        assert_eq!(prune(&n, CentroidScore::L2, 0.5), 2, "bound 2.25 on squared distances");
        assert_eq!(prune(&n, CentroidScore::L2, 0.0), 1);
        let ip = [(0u32, -10.0f32), (1, -9.0), (2, -5.0)];
        assert_eq!(prune(&ip, CentroidScore::NegIp, 0.2), 2);
    }

    /// issue 26 (1): a query on a centroid kept no posting (bound below d0).
    #[test]
    fn pruning_always_keeps_the_nearest_and_max_eps2_keeps_all() {
        let below = [(0u32, -1e-4f32), (1, 0.5)];
        assert_eq!(prune(&below, CentroidScore::L2, 0.4), 1);
        let zero = [(0u32, 0.0f32), (1, 0.0), (2, 0.5)];
        assert_eq!(prune(&zero, CentroidScore::L2, 0.4), 2);
        assert_eq!(prune(&zero, CentroidScore::L2, f32::MAX), 3, "inf x 0 is NaN: keep all");
        assert_eq!(prune(&zero, CentroidScore::NegIp, f32::MAX), 3);
        assert_eq!(prune(&[], CentroidScore::L2, 0.4), 0);
    }
}
