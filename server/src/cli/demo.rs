//! `fathom demo`: the whole job on an embedded default, nothing to download.
//! Generates a clustered data set, builds an index in a temporary directory,
//! computes exact ground truth, searches it and prints recall and speed.

use crate::sysinfo::human_bytes;
use fathom_index::build::NoProgress;
use fathom_index::gt::{ground_truth, recall_at};
use fathom_index::input::VectorFile;
use fathom_index::synth::Mixture;
use fathom_index::{BuildParams, Index, Metric, OpenOptions, SearchSettings};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Base vectors to generate.
    #[arg(long, default_value_t = 100_000)]
    n: u64,
    #[arg(long, default_value_t = 64)]
    dim: usize,
    #[arg(long, default_value_t = 1000)]
    queries: u64,
    /// Keep the generated files and index in this directory.
    #[arg(long)]
    keep: Option<std::path::PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let dir = match &a.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => std::env::temp_dir().join(format!("fathom-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let result = demo(&a, &dir);
    if a.keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn demo(a: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let k = 10;
    let mix = Mixture { dim: a.dim, clusters: (a.n / 300).max(4) as usize, seed: 1 };
    let base = dir.join("base.fbin");
    let queries = dir.join("queries.fbin");
    let idx = dir.join("index");
    println!("fathom demo: {} x {} clustered vectors, {} queries, k = {k}", a.n, a.dim, a.queries);
    let t = Instant::now();
    mix.write_fbin(&base, 0, a.n)?;
    mix.write_fbin(&queries, 1, a.queries)?;
    println!("  generated data in {:.1}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let report =
        fathom_index::build(&base, &idx, &BuildParams { metric: Metric::L2, ..Default::default() }, &NoProgress)?;
    let m = &report.manifest;
    println!(
        "  built {} postings ({:.2} entries per vector) in {:.1}s",
        m.posting_count,
        m.stats.posting_entries as f64 / m.vector_count as f64,
        t.elapsed().as_secs_f64()
    );
    let (qs, _) = super::read_all_f32(&queries)?;
    let truth = ground_truth(&VectorFile::open(&base)?, &qs, k, Metric::L2, &|_| {})?;
    let ix = Index::open(&idx, OpenOptions::default())?;
    let mut s = ix.searcher()?;
    let settings = SearchSettings::default();
    let mut lat = Vec::new();
    let mut recall = 0.0;
    let mut reads = 0u64;
    let t = Instant::now();
    for (q, tr) in qs.chunks_exact(a.dim).zip(&truth) {
        let t1 = Instant::now();
        let (found, st) = s.search(q, k, &settings)?;
        lat.push(t1.elapsed().as_secs_f64() * 1e3);
        reads += st.reads as u64;
        let ids: Vec<u32> = found.iter().map(|n| n.id).collect();
        let tids: Vec<i32> = tr.iter().map(|n| n.id as i32).collect();
        recall += recall_at(&ids, &tids, k);
    }
    let wall = t.elapsed().as_secs_f64();
    let n = lat.len() as f64;
    lat.sort_by(f64::total_cmp);
    println!(
        "  search ({}, direct I/O {}): recall@10 {:.4}  QPS {:.0}  mean {:.3} ms  p99 {:.3} ms  reads/query {:.1}",
        s.backend_name(),
        ix.direct_io(),
        recall / n,
        n / wall,
        lat.iter().sum::<f64>() / n,
        lat[((n * 0.99) as usize).min(lat.len() - 1)],
        reads as f64 / n
    );
    println!("  index memory {} (vectors stay on disk)", human_bytes(ix.resident_bytes()));
    Ok(())
}
