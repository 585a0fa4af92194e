//! Choosing how the centroids are looked up, by measurement. The graph
//! ([`crate::centroids::graph`]) costs ~log P per lookup and beats the group
//! scan on real data at 10^6 centroids (GloVe-50: the nearest 16 found
//! 0.83 against 0.73, in 72 against 128 us); where clusters sit at
//! independent random places in 96-d (a synthetic mixture) no sublinear
//! lookup does well, and with a few 10^4 centroids the groups find the
//! nearest more often for the same work. So the builder measures both on
//! sample rows against a scan of every centroid ("head index accuracy"),
//! counting distance computations, and keeps the graph only when it is as
//! accurate for no more work. Failing that it tries the graph walked from a
//! few scanned groups ([`CentroidIndex::graph_from_groups`]), which is what
//! finds the nearest on the synthetic mixture (10^7 rows, 305k centroids:
//! nearest 0.918 -> 0.978 at effort 32, for less work), and keeps the groups
//! alone only when neither does as well.

use crate::centroids::graph::{self, GraphParams};
use crate::centroids::{CentroidIndex, CentroidScore, LookupCheck, LookupRecall};
use crate::distance::rows::Rows;
use crate::distance::Kernels;
use crate::format::build_params::LookupChoice;
use crate::format::manifest::CentroidLookupStats;

/// Centroid bytes (f32) beyond which the graph alone is not kept: past a
/// last-level cache, each of its walk's distances is a memory miss and
/// costs ~4x a distance of the group scan's contiguous rows (10^7 x 96, 117
/// MB of centroids: 1,500 walk distances took as long as 6,000 of the walk
/// from the groups). The distance counts the rule compares cannot see that:
/// with the session-9 graph the walk alone won on counts there and ran the
/// assign stage at 4,600 rows/s against 21,600. Deterministic: it depends
/// on sizes only.
pub(super) const GRAPH_ALONE_MAX_BYTES: usize = 32 << 20;

/// Centroids from which the builder makes the denser graph. At 10^6
/// synthetic rows (33k centroids at independent random places) the dense
/// graph walked from the groups was kept on equal head index accuracy
/// (0.945) but searched worse than the groups it replaced (recall@10 0.956
/// against 0.985 at 64 probe groups): below this the default graph, and
/// the builder's choice among groups, graph and hybrid, stay as tuned.
pub(super) const DENSE_GRAPH_MIN_CENTROIDS: usize = 100_000;

/// The graph built: the default for up to ~10^5 centroids (the 384-d
/// and GloVe sets' indexes were tuned with it); from
/// [`DENSE_GRAPH_MIN_CENTROIDS`] on, the denser graph, which finds the
/// nearest in fewer steps where each step is a memory miss (10^7 x 96:
/// 0.991 of the nearest 8 against 0.966, in ~88 us).
fn graph_params(centroids: usize) -> GraphParams {
    if centroids < DENSE_GRAPH_MIN_CENTROIDS {
        GraphParams::default()
    } else {
        GraphParams::DENSE
    }
}

/// The assign effort measured when none is asked for, and the cheaper one
/// kept where the walk from the groups finds as much at it
/// ([`as_accurate_for_assign`]). At 10^7 x 96 with the dense graph the
/// walk from 8 groups found the nearest for all 256 sample rows, as from
/// 16, and the assign stage ran ~8% less CPU; at 10^6 (synthetic, 33k
/// centroids, groups that say little) 8 groups found 0.883 against 0.945.
pub(super) const AUTO_EFFORT: usize = 64;
pub(super) const AUTO_EFFORT_CHEAP: usize = 32;

/// Whether `cheap` finds about as much as `full` for the assign stage: the
/// nearest within [`TOLERANCE`], and the nearest `want` within 0.005. The
/// replicas come from the near end of the `want` (within 1 + eps1 of the
/// nearest), so the search's tighter recall rule is not needed here (at
/// 10^7: 0.961 against 0.964 of the nearest 16, both first 1.000).
fn as_accurate_for_assign(cheap: &LookupRecall, full: &LookupRecall) -> bool {
    cheap.first + TOLERANCE >= full.first && cheap.recall + 0.005 >= full.recall
}

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
fn as_accurate(graph: &LookupRecall, groups: &LookupRecall) -> bool {
    graph.first + TOLERANCE >= groups.first && graph.recall + RECALL_TOLERANCE >= groups.recall
}

/// What [`choose`] measures with: lookups of the nearest `want` at
/// `effort` (0: [`AUTO_EFFORT`], or [`AUTO_EFFORT_CHEAP`] where it finds
/// as much), the graph built for `seed`, and the method asked for.
pub(super) struct Ask {
    pub effort: usize,
    pub want: usize,
    pub seed: u64,
    pub force: LookupChoice,
    /// [`GRAPH_ALONE_MAX_BYTES`] (tests set less).
    pub graph_alone_max_bytes: usize,
}

/// The index the build uses and stores, and what was measured. `auto`:
/// the graph with the smallest beam factor that is as accurate as the group
/// scan at `effort` ([`as_accurate`]) at no more distance computations;
/// else the graph walked from the groups under the same rule; else the
/// groups. A forced method is kept as asked (the graph at the last beam
/// factor tried).
pub(super) fn choose(
    k: &Kernels,
    groups: CentroidIndex,
    probes: &[f32],
    ask: Ask,
    built: &(dyn Fn(u64) + Sync),
) -> (CentroidIndex, CentroidLookupStats) {
    let Ask { effort, want, seed, force, graph_alone_max_bytes } = ask;
    let (mut effort, cheaper) = match effort {
        0 => (AUTO_EFFORT, Some(AUTO_EFFORT_CHEAP)),
        e => (e, None),
    };
    let check = LookupCheck::new(&groups, CentroidScore::L2, probes, want);
    let on_groups = check.measure(&groups, effort);
    // One index throughout (no copy of the centroids): l2 lookups walk the
    // graph while it is attached, and the groups once it is taken off.
    let mut index = groups;
    let mut on_graph = None;
    let graph_alone_fits = 4 * index.centroids.len() <= graph_alone_max_bytes;
    if force != LookupChoice::Groups {
        let params = graph_params(index.posting_count());
        // Scored on half floats, as searches and the assign stage walk it.
        let half = crate::distance::rows::to_f16(&index.centroids);
        let scored = half.as_deref().map_or(Rows::F32(&index.centroids), Rows::F16);
        index.graph = Some(graph::build_scored(k, &index.centroids, scored, index.dim, params, seed, built));
    }
    if matches!(force, LookupChoice::Auto | LookupChoice::Graph) {
        for factor in BEAM_FACTORS {
            if let Some(g) = index.graph.as_mut() {
                g.beam_factor = factor;
            }
            let m = check.measure(&index, effort);
            if m.cost > on_groups.cost && on_graph.is_some() {
                break;
            }
            let good = as_accurate(&m, &on_groups);
            on_graph = Some((factor, m));
            if good {
                break;
            }
        }
        // The factor measured last within the cost (the loop may have set one more).
        if let (Some(g), Some((factor, _))) = (index.graph.as_mut(), on_graph) {
            g.beam_factor = factor;
        }
    }
    let on_graph = on_graph.map(|(_, m)| m);
    // Measured (the build summary reports it) but not kept past the cache-sized bound.
    let graph_ok = on_graph.filter(|m| graph_alone_fits && as_accurate(m, &on_groups) && m.cost <= on_groups.cost);
    // The graph walked from the groups' best, when the graph alone is not kept.
    let mut on_hybrid = None;
    if force == LookupChoice::Hybrid || (force == LookupChoice::Auto && graph_ok.is_none()) {
        index.graph_from_groups = true;
        on_hybrid = Some(check.measure(&index, effort));
        index.graph_from_groups = false;
    }
    let hybrid_ok = on_hybrid.filter(|m| as_accurate(m, &on_groups) && m.cost <= on_groups.cost);
    let method = match force {
        LookupChoice::Auto if graph_ok.is_some() => LookupChoice::Graph,
        LookupChoice::Auto if hybrid_ok.is_some() => LookupChoice::Hybrid,
        LookupChoice::Auto => LookupChoice::Groups,
        forced => forced,
    };
    let factor = index.graph.as_ref().map_or(0, |g| g.beam_factor);
    let mut m = match method {
        LookupChoice::Graph => on_graph,
        LookupChoice::Hybrid => on_hybrid,
        _ => None,
    }
    .unwrap_or(on_groups);
    match method {
        // The group centers' own index is never used beside the graph.
        LookupChoice::Graph | LookupChoice::Hybrid => index.upper = None,
        _ => index.graph = None,
    }
    if method == LookupChoice::Hybrid {
        index.graph_from_groups = true;
        if let Some(g) = index.graph.as_mut() {
            g.beam_factor = 1;
        }
        // No effort asked for: the cheaper one where it finds as much.
        if let Some(cheap) = cheaper {
            let c = check.measure(&index, cheap);
            if as_accurate_for_assign(&c, &m) {
                (effort, m) = (cheap, c);
            }
        }
    }
    let stats = CentroidLookupStats {
        method: method.as_str().to_string(),
        first: m.first,
        recall: m.recall,
        graph_first: on_graph.map_or(0.0, |g| g.first),
        groups_first: on_groups.first,
        hybrid_first: on_hybrid.map(|h| h.first),
        want: m.want,
        effort,
        probes: m.lookups,
        beam_factor: if method == LookupChoice::Graph { factor } else { 0 },
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

    fn ask(effort: usize, force: LookupChoice) -> Ask {
        Ask { effort, want: 16, seed: 5, force, graph_alone_max_bytes: GRAPH_ALONE_MAX_BYTES }
    }

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
        let (ix, stats) = choose(kernels(), groups.clone(), &probes, ask(32, LookupChoice::Auto), &|_| {});
        assert_eq!(stats.method, "graph", "{stats:?}");
        assert!(ix.graph.is_some() && stats.beam_factor >= 1);
        assert!(stats.first >= 0.98 && stats.cost < stats.groups_cost, "{stats:?}");
        // Measured again, the stored index does what the stats say.
        let again = LookupCheck::new(&groups, CentroidScore::L2, &probes, 16).measure(&ix, 32);
        assert_eq!((again.first, again.recall), (stats.first, stats.recall));
        // Centroids past the cache-sized bound: the graph alone is not
        // tried (its walk would be memory misses), the walk from the groups is.
        let small = Ask { graph_alone_max_bytes: 4 * cents.len() - 4, ..ask(32, LookupChoice::Auto) };
        let (ix, stats) = choose(kernels(), groups.clone(), &probes, small, &|_| {});
        assert_ne!(stats.method, "graph", "{stats:?}");
        assert!(stats.graph_first > 0.0, "measured all the same");
        assert!(stats.hybrid_first.is_some() && ix.graph.is_some() == (stats.method == "hybrid"), "{stats:?}");
    }

    /// Clusters at independent random places in 96-d, each split into a few
    /// postings whose centroids sit inside it (the 10^7 synthetic mixture
    /// in small), with the walk from the groups asked for: it is kept, it
    /// finds more than the groups it starts from, and the stats say what
    /// the kept index does.
    #[test]
    fn the_graph_walked_from_the_groups_finds_more_than_its_groups() {
        let mut rng = Rng::new(9);
        let (dim, clusters) = (96, 2_000);
        let centers: Vec<f32> = (0..clusters * dim).map(|_| rng.normal()).collect();
        let spread: Vec<f32> = (0..clusters).map(|_| 0.15 + 0.45 * rng.unit_f32()).collect();
        let point = |rng: &mut Rng, c: usize, scale: f32| -> Vec<f32> {
            (0..dim).map(|j| centers[c * dim + j] + scale * spread[c] * rng.normal()).collect()
        };
        let cents: Vec<f32> = (0..clusters * 6).flat_map(|i| point(&mut rng, i / 6, 0.5)).collect();
        let probes: Vec<f32> = (0..256)
            .flat_map(|_| {
                let c = rng.below(clusters as u64) as usize;
                point(&mut rng, c, 1.0)
            })
            .collect();
        let (groups, _) = CentroidIndex::build(kernels(), &cents, dim, 1);
        let (ix, stats) = choose(kernels(), groups.clone(), &probes, ask(16, LookupChoice::Hybrid), &|_| {});
        assert_eq!(stats.method, "hybrid", "{stats:?}");
        assert!(ix.graph.is_some() && ix.graph_from_groups && ix.upper.is_none());
        assert_eq!(stats.hybrid_first, Some(stats.first));
        let check = LookupCheck::new(&groups, CentroidScore::L2, &probes, 16);
        let again = check.measure(&ix, 16);
        assert_eq!((again.first, again.recall), (stats.first, stats.recall));
        // The walk only adds to the groups it starts from.
        let scanned = check.measure(&groups, crate::centroids::hybrid_groups(16));
        assert!(again.recall > scanned.recall && again.first >= scanned.first, "{stats:?} vs {scanned:?}");
        assert!(stats.first >= 0.95, "{stats:?}");
        // The graph alone asked for: kept at the factor its stats report.
        let (alone, gs) = choose(kernels(), groups.clone(), &probes, ask(16, LookupChoice::Graph), &|_| {});
        assert_eq!(gs.method, "graph", "{gs:?}");
        assert_eq!(alone.graph.as_ref().map(|g| g.beam_factor), Some(gs.beam_factor));
        let m = check.measure(&alone, 16);
        assert_eq!((m.first, m.recall), (gs.first, gs.recall));
        // No effort asked for: 64, or 32 where the walk finds as much there;
        // the stats name the effort kept and measure what it does.
        let (auto, a) = choose(kernels(), groups.clone(), &probes, ask(0, LookupChoice::Hybrid), &|_| {});
        assert!(a.effort == AUTO_EFFORT || a.effort == AUTO_EFFORT_CHEAP, "{a:?}");
        let m = check.measure(&auto, a.effort);
        assert_eq!((m.first, m.recall), (a.first, a.recall));
        let full = check.measure(&auto, AUTO_EFFORT);
        assert_eq!(a.effort == AUTO_EFFORT_CHEAP, as_accurate_for_assign(&m, &full), "{a:?} {full:?}");
        // The graph alone kept: the effort measured, not the cheaper one.
        let (_, g) = choose(kernels(), groups.clone(), &probes, ask(0, LookupChoice::Graph), &|_| {});
        assert_eq!(g.effort, AUTO_EFFORT, "{g:?}");
        // Groups asked for: no graph is built or kept.
        let (plain, s) = choose(kernels(), groups, &probes, ask(16, LookupChoice::Groups), &|_| {});
        assert!(plain.graph.is_none() && s.method == "groups" && s.graph_first == 0.0, "{s:?}");
    }
}
