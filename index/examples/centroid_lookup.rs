//! The centroid lookups (group scan and graph) over the first N rows of a
//! vector file, as if they were centroids, queried with another file: recall
//! of the nearest 16 against a full scan, and microseconds per lookup.
//!
//! cargo run --release -p fathom-index --example centroid_lookup -- BASE.fbin QUERIES.fbin N
use fathom_index::centroids::{CentroidIndex, CentroidScore};
use fathom_index::distance::kernels;
use fathom_index::input::VectorFile;
use std::path::Path;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let base = VectorFile::open(Path::new(&a[1])).unwrap();
    let n: usize = a[3].parse().unwrap();
    let mut pts = Vec::new();
    base.read_f32(0, n.min(base.count as usize), &mut pts).unwrap();
    let qf = VectorFile::open(Path::new(&a[2])).unwrap();
    let mut q = Vec::new();
    qf.read_f32(0, (qf.count as usize).min(300), &mut q).unwrap();
    let dim = base.dim;
    let t = std::time::Instant::now();
    let (groups, _) = CentroidIndex::build(kernels(), &pts, dim, 1);
    println!("groups built in {:?} ({} groups)", t.elapsed(), groups.group_count());
    let t = std::time::Instant::now();
    let graph = groups.clone().with_graph(kernels(), 1);
    println!("graph built in {:?}", t.elapsed());
    let nq = q.len() / dim;
    for (name, c) in [("groups", &groups), ("graph", &graph)] {
        for effort in [16usize, 32, 64, 128] {
            let r = fathom_index::centroids::LookupCheck::new(c, CentroidScore::L2, &q, 16).measure(c, effort);
            let (mut s, mut out) = (Default::default(), Vec::new());
            let t = std::time::Instant::now();
            for x in q.chunks_exact(dim) {
                c.nearest(CentroidScore::L2, x, effort, 16, &mut s, &mut out);
            }
            let us = t.elapsed().as_secs_f64() * 1e6 / nq as f64;
            println!("{name} effort {effort}: recall@16 {:.4} first {:.4} {us:.1} us/lookup", r.recall, r.first);
        }
    }
}
