//! `fathom demo`: the whole job on an embedded default, nothing to download.
//! Generates a clustered data set, builds an index in a temporary directory,
//! computes exact ground truth, serves the index on loopback, queries it
//! through the client crate and prints recall and speed.

use crate::ops::sysinfo::human_bytes;
use crate::shard::config::Config;
use fathom_client::{Client, ClientOptions};
use fathom_index::build::NoProgress;
use fathom_index::gt::{ground_truth, recall_at};
use fathom_index::input::VectorFile;
use fathom_index::synth::Mixture;
use fathom_index::{BuildParams, Metric};
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
    let truth: Vec<Vec<i32>> = truth.iter().map(|r| r.iter().map(|n| n.id as i32).collect()).collect();

    // Serve it on loopback and query through the client crate.
    let cfg = Config { index: Some(idx.clone()), listen: "127.0.0.1:0".into(), ..Config::default() }.check()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(crate::shard::serve::serve(
            cfg,
            async {
                let _ = stop_rx.await;
            },
            move |b| {
                let _ = addr_tx.send(b.grpc);
            },
        ));
        let addr = format!("http://{}", addr_rx.await?);
        let client = Client::connect(&addr, ClientOptions::default()).await?;
        // The index opens in the background: UNAVAILABLE is retried.
        let info = client.index_info().await?;
        println!(
            "  serving on {addr}: {} vectors, {} in memory for the index",
            info.vector_count,
            human_bytes(info.resident_bytes)
        );
        let mut lat = Vec::new();
        let (mut recall, mut reads) = (0.0, 0u64);
        let t = Instant::now();
        for (q, tr) in qs.chunks_exact(a.dim).zip(&truth) {
            let t1 = Instant::now();
            let r = client.search(q, k as u32, None).await?;
            lat.push(t1.elapsed().as_secs_f64() * 1e3);
            reads += r.stats.map_or(0, |s| s.reads as u64);
            let ids: Vec<u64> = r.neighbors.iter().map(|n| n.id).collect();
            recall += recall_at(&ids, tr, k);
        }
        let wall = t.elapsed().as_secs_f64();
        let n = lat.len() as f64;
        let (mean, p99) = super::latency_mean_p99(&mut lat);
        println!(
            "  gRPC search, one request at a time: recall@10 {:.4}  QPS {:.0}  mean {mean:.3} ms  p99 {p99:.3} ms  reads/query {:.1}",
            recall / n,
            n / wall,
            reads as f64 / n
        );
        let _ = stop_tx.send(());
        server.await??;
        anyhow::Ok(())
    })
}
