use super::*;
use crate::distance::kernels;
use crate::rng::Rng;

/// Points around `clusters` random centers (centroids of real data are
/// clustered, not uniform).
fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let centers: Vec<f32> = (0..clusters * dim).map(|_| rng.normal() * 4.0).collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.below(clusters as u64) as usize;
        out.extend((0..dim).map(|j| centers[c * dim + j] + rng.normal()));
    }
    out
}

fn brute(points: &[f32], dim: usize, q: &[f32], want: usize) -> Vec<u32> {
    let mut all: Vec<(f32, u32)> =
        points.chunks_exact(dim).enumerate().map(|(i, p)| ((kernels().l2_sq)(q, p), i as u32)).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(want).map(|x| x.1).collect()
}

/// Recall of the nearest 16 (walked at beam 64 over `rows`) against a
/// scan of `points`, and how many of the 200 queries found the nearest;
/// checks each answer is sorted nearest first.
fn nearest_16(g: &CentroidGraph, rows: Rows, points: &[f32], dim: usize, queries: &[f32]) -> (f64, usize) {
    let (mut s, mut out) = (GraphScratch::default(), Vec::new());
    let (mut hits, mut first) = (0, 0);
    for q in queries.chunks_exact(dim) {
        g.search(kernels(), rows, dim, q, 64, 16, &mut s, &mut out);
        let exact = brute(points, dim, q, 16);
        hits += out.iter().filter(|(n, _)| exact.contains(n)).count();
        first += (out[0].0 == exact[0]) as usize;
        assert!(out.windows(2).all(|w| w[0].1 <= w[1].1), "sorted nearest first");
    }
    (hits as f64 / (queries.len() / dim * 16) as f64, first)
}

#[test]
fn finds_the_nearest_centroids() {
    let dim = 24;
    let points = clustered(20_000, dim, 200, 1);
    let g = build(kernels(), &points, dim, GraphParams::default(), 7);
    assert!(g.top_level() >= 2, "levels: {}", g.top_level());
    let queries: Vec<f32> = clustered(200, dim, 200, 1).iter().map(|x| x + 0.3).collect();
    let (recall, first) = nearest_16(&g, Rows::F32(&points), &points, dim, &queries);
    assert!(recall >= 0.98, "recall@16 {recall}");
    assert!(first >= 198, "nearest found {first}/200");
}

/// The graph scored on half floats (the builder's) and walked on them (an
/// open index's) finds what the f32 graph finds; the dense parameters too.
#[test]
fn a_graph_scored_on_half_floats_finds_the_nearest_centroids() {
    let dim = 24;
    let points = clustered(12_000, dim, 150, 4);
    let half = crate::distance::rows::to_f16(&points).expect("fits half floats");
    let queries: Vec<f32> = clustered(200, dim, 150, 4).iter().map(|x| x + 0.3).collect();
    for params in [GraphParams::default(), GraphParams::DENSE] {
        let g = build_scored(kernels(), &points, Rows::F16(&half), dim, params, 7, &|_| {});
        assert_eq!(g.m0, params.m0);
        let (recall, first) = nearest_16(&g, Rows::F16(&half), &points, dim, &queries);
        assert!(recall >= 0.97 && first >= 196, "{params:?}: recall@16 {recall}, nearest {first}/200");
    }
}

#[test]
fn same_graph_on_one_thread_and_on_many() {
    let dim = 8;
    let points = clustered(5_000, dim, 50, 2);
    let on = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| build(kernels(), &points, dim, GraphParams::default(), 3))
    };
    assert_eq!(on(1), on(3));
}

#[test]
fn tiny_and_degenerate_sets() {
    let (mut s, mut out) = (GraphScratch::default(), Vec::new());
    let one = build(kernels(), &[1.0, 2.0], 2, GraphParams::default(), 1);
    one.search(kernels(), Rows::F32(&[1.0, 2.0]), 2, &[0.0, 0.0], 8, 4, &mut s, &mut out);
    assert_eq!(out, vec![(0, 5.0)]);
    // Identical points (a collapsed clustering): all ties, still answered.
    let same = vec![0.5f32; 300 * 3];
    let g = build(kernels(), &same, 3, GraphParams::default(), 1);
    g.search(kernels(), Rows::F32(&same), 3, &[0.5, 0.5, 0.5], 64, 32, &mut s, &mut out);
    assert_eq!(out.len(), 32);
    assert!(out.iter().all(|&(_, d)| d == 0.0));
}

#[test]
fn stored_parts_are_checked() {
    // Two nodes linked both ways; node 0 also on level 1. Each case spoils
    // one part of it.
    let parts =
        |entry: u32, bottom: Vec<u32>| GraphParts { m0: 2, m: 1, entry, levels: vec![1, 0], bottom, upper: vec![NONE] };
    assert!(CentroidGraph::from_parts(parts(0, vec![1, NONE, 0, NONE])).is_ok());
    let bad_id = CentroidGraph::from_parts(parts(0, vec![5, NONE, 0, NONE]));
    assert!(bad_id.unwrap_err().contains("neighbour id"));
    let bad_entry = CentroidGraph::from_parts(parts(1, vec![1, NONE, 0, NONE]));
    assert!(bad_entry.unwrap_err().contains("entry"));
    assert!(CentroidGraph::from_parts(parts(0, vec![1, NONE, 0])).is_err(), "a short bottom layer");
}
