//! The centroid lookups of a built index, measured over its own centroids:
//! the group scan, the graph from its entry point, and the graph walked
//! from the group scan's best (a graph is built here when the index has
//! none). Recall of the nearest WANT against a scan of every centroid,
//! distances computed and microseconds per lookup, one thread.
//!
//! cargo run --release -p fathom-index --example lookup_hybrid -- INDEX QUERIES.fbin WANT
//!
//! `MAX_GROUP=N` regroups the centroids first (groups of at most ~N);
//! `GRAPH=m0,m,ef_construction` rebuilds the graph with those parameters;
//! `PROFILE=EFFORT` only times the walk from the groups at EFFORT (for perf).
use fathom_index::centroids::graph::{self, GraphParams};
use fathom_index::centroids::{CentroidIndex, CentroidScore, CentroidScratch, LookupCheck};
use fathom_index::distance::kernels;
use fathom_index::input::VectorFile;
use fathom_index::search::{Index, OpenOptions};
use std::path::Path;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let idx = Index::open(Path::new(&a[1]), OpenOptions::default()).unwrap();
    let want: usize = a[3].parse().unwrap();
    let qf = VectorFile::open(Path::new(&a[2])).unwrap();
    let mut q = Vec::new();
    qf.read_f32(0, (qf.count as usize).min(500), &mut q).unwrap();
    let dim = idx.dim();
    let mut groups = idx.centroids().clone();
    groups.graph = None;
    // MAX_GROUP=N regroups the centroids with groups of at most ~N.
    if let Some(max) = std::env::var("MAX_GROUP").ok().and_then(|v| v.parse().ok()) {
        let t = std::time::Instant::now();
        groups = CentroidIndex::build_sized(kernels(), &groups.centroids_f32(), groups.dim, 1, max).0;
        println!("regrouped at most ~{max} in {:?}", t.elapsed());
    }
    let mut both = match &idx.centroids().graph {
        Some(_) if std::env::var("MAX_GROUP").is_err() && std::env::var("GRAPH").is_err() => idx.centroids().clone(),
        _ => groups.clone().with_graph(kernels(), 1),
    };
    // GRAPH=m0,m,ef_construction rebuilds the graph with those parameters.
    if let Ok(p) = std::env::var("GRAPH") {
        let v: Vec<usize> = p.split(',').map(|x| x.parse().unwrap()).collect();
        let params = GraphParams { m0: v[0], m: v[1], ef_construction: v[2] };
        let t = std::time::Instant::now();
        both.graph = Some(graph::build(kernels(), &groups.centroids_f32(), dim, params, 1));
        println!("graph {params:?} built in {:?}", t.elapsed());
    }
    println!("{} postings, {} groups", groups.posting_count(), groups.group_count());
    // PROFILE=EFFORT: only time the hybrid lookup at EFFORT, 200 rounds.
    if let Some(effort) = std::env::var("PROFILE").ok().and_then(|v| v.parse::<usize>().ok()) {
        both.graph_from_groups = true;
        let (mut s, mut out) = (CentroidScratch::default(), Vec::new());
        let t = std::time::Instant::now();
        for _ in 0..200 {
            for x in q.chunks_exact(dim) {
                both.nearest(CentroidScore::L2, x, effort, want, &mut s, &mut out);
            }
        }
        println!("{:.1} us", t.elapsed().as_secs_f64() * 1e6 / (200 * q.len() / dim) as f64);
        return;
    }
    let check = LookupCheck::new(&groups, CentroidScore::L2, &q, want);
    let nq = q.len() / dim;
    let run = |name: &str, ix: &CentroidIndex, effort: usize| {
        let r = check.measure(ix, effort);
        let (mut s, mut out) = (CentroidScratch::default(), Vec::new());
        let t = std::time::Instant::now();
        for x in q.chunks_exact(dim) {
            ix.nearest(CentroidScore::L2, x, effort, want, &mut s, &mut out);
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / nq as f64;
        println!(
            "{name} effort {effort}: recall {:.4} first {:.4} {:.0} distances {us:.1} us",
            r.recall, r.first, r.cost
        );
    };
    for effort in [8usize, 16, 32, 64, 128] {
        run("groups", &groups, effort);
    }
    both.graph_from_groups = false;
    for effort in [8usize, 16, 32, 64, 128] {
        run("graph", &both, effort);
    }
    both.graph_from_groups = true;
    for effort in [8usize, 16, 32, 64, 128] {
        run("hybrid", &both, effort);
    }
    // Groups then a beam of a given width from their best.
    for groups_scanned in [8usize, 16] {
        for ef in [1usize, 2, 4, 8, 16, 32] {
            let r = check.measure_with(dim, |x, s, out| {
                both.nearest_from_groups(x, groups_scanned, ef, want, s, out);
            });
            let (mut s, mut out) = (CentroidScratch::default(), Vec::new());
            let t = std::time::Instant::now();
            for x in q.chunks_exact(dim) {
                both.nearest_from_groups(x, groups_scanned, ef, want, &mut s, &mut out);
            }
            let us = t.elapsed().as_secs_f64() * 1e6 / nq as f64;
            println!(
                "groups {groups_scanned} then ef {ef}: recall {:.4} first {:.4} {:.0} distances {us:.1} us",
                r.recall, r.first, r.cost
            );
        }
    }
}
