//! Choosing how the centroids are looked up, by measurement. The graph
//! ([`crate::search::graph`]) costs ~log P per lookup and beats the group
//! scan on real data at 10^6 centroids (GloVe-50: the nearest 16 found
//! 0.83 against 0.73, in 72 against 128 us); where clusters sit at
//! independent random places in 96-d (a synthetic mixture) no sublinear
//! lookup does well, and with a few 10^4 centroids the groups find the
//! nearest more often for the same work. So the builder measures both on
//! sample rows against a scan of every centroid ("head index accuracy"),
//! counting distance computations, and keeps the graph only when it is as
//! accurate for no more work.

use crate::distance::Kernels;
use crate::format::manifest::CentroidLookupStats;
use crate::search::centroids::{CentroidIndex, CentroidScore, LookupCheck};
use crate::search::graph::{self, GraphParams};

/// Beam factors tried, cheapest first.
const BEAM_FACTORS: [u32; 6] = [1, 2, 3, 4, 6, 8];
/// How much less often than the groups the graph may find the nearest.
const TOLERANCE: f64 = 0.005;
/// How much less of the nearest `want` the graph may find.
const RECALL_TOLERANCE: f64 = 0.002;

/// Whether the graph finds the nearest centroid, and the nearest `want`,
/// about as often as the groups. Matching only the nearest cost recall@10
/// 0.005-0.01 on GloVe-50 and MiniLM at equal search settings (replicas
/// come from the rest of the `want`).
fn as_accurate(
    graph: &crate::search::centroids::LookupRecall,
    groups: &crate::search::centroids::LookupRecall,
) -> bool {
    graph.first + TOLERANCE >= groups.first && graph.recall + RECALL_TOLERANCE >= groups.recall
}

/// The index the build uses and stores, and what was measured: the graph
/// with the smallest beam factor that is as accurate as the group scan at
/// `effort` ([`as_accurate`]), at no more distance computations; the groups
/// when no factor is.
pub(super) fn choose(
    k: &Kernels,
    groups: CentroidIndex,
    probes: &[f32],
    effort: usize,
    want: usize,
    seed: u64,
    built: &(dyn Fn(u64) + Sync),
) -> (CentroidIndex, CentroidLookupStats) {
    let check = LookupCheck::new(&groups, CentroidScore::L2, probes, want);
    let on_groups = check.measure(&groups, effort);
    // One index throughout (no copy of the centroids): l2 lookups walk the
    // graph while it is attached, and the groups once it is taken off.
    let mut index = groups;
    index.graph = Some(graph::build_with_progress(k, &index.centroids, index.dim, GraphParams::default(), seed, built));
    let mut on_graph = None;
    for factor in BEAM_FACTORS {
        if let Some(g) = index.graph.as_mut() {
            g.beam_factor = factor;
        }
        let m = check.measure(&index, effort);
        if m.cost > on_groups.cost {
            break;
        }
        let good = as_accurate(&m, &on_groups);
        on_graph = Some(m);
        if good {
            break;
        }
    }
    let chosen = on_graph.filter(|m| as_accurate(m, &on_groups) && m.cost <= on_groups.cost);
    let factor = index.graph.as_ref().map_or(0, |g| g.beam_factor);
    match chosen {
        // The group centers' own index is never used beside the graph.
        Some(_) => index.upper = None,
        None => index.graph = None,
    }
    let m = chosen.unwrap_or(on_groups);
    let stats = CentroidLookupStats {
        method: if chosen.is_some() { "graph" } else { "groups" }.to_string(),
        first: m.first,
        recall: m.recall,
        graph_first: on_graph.map_or(0.0, |g| g.first),
        groups_first: on_groups.first,
        want: m.want,
        effort,
        probes: m.lookups,
        beam_factor: if chosen.is_some() { factor } else { 0 },
        cost: m.cost,
        groups_cost: on_groups.cost,
    };
    (index, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::kernels;
    use crate::rng::Rng;

    #[test]
    fn the_graph_is_kept_where_it_finds_as_much_for_less_work() {
        let mut rng = Rng::new(3);
        let dim = 8;
        let centers: Vec<f32> = (0..100 * dim).map(|_| rng.normal() * 5.0).collect();
        let point = |rng: &mut Rng| -> Vec<f32> {
            let c = rng.below(100) as usize;
            (0..dim).map(|j| centers[c * dim + j] + rng.normal()).collect()
        };
        let cents: Vec<f32> = (0..20_000).flat_map(|_| point(&mut rng)).collect();
        let probes: Vec<f32> = (0..256).flat_map(|_| point(&mut rng)).collect();
        let (groups, _) = CentroidIndex::build(kernels(), &cents, dim, 1);
        let (ix, stats) = choose(kernels(), groups.clone(), &probes, 32, 16, 5, &|_| {});
        assert_eq!(stats.method, "graph", "{stats:?}");
        assert!(ix.graph.is_some() && stats.beam_factor >= 1);
        assert!(stats.first >= 0.98 && stats.cost < stats.groups_cost, "{stats:?}");
        // Measured again, the stored index does what the stats say.
        let again = LookupCheck::new(&groups, CentroidScore::L2, &probes, 16).measure(&ix, 32);
        assert_eq!((again.first, again.recall), (stats.first, stats.recall));
    }
}
