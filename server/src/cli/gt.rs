//! `fathom gt`: exact neighbours by blocked brute force, written as .ibin.

use fathom_index::input::{write_ids_ibin, VectorFile};
use fathom_index::Metric;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    base: PathBuf,
    #[arg(long)]
    queries: PathBuf,
    #[arg(long, default_value_t = 100)]
    k: usize,
    #[arg(long)]
    metric: Metric,
    /// Output .ibin (i32 n, i32 k, ids).
    #[arg(long)]
    out: PathBuf,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let base = VectorFile::open(&a.base)?;
    anyhow::ensure!(a.k >= 1 && a.k as u64 <= base.count, "k must be in 1..={}", base.count);
    if a.metric == Metric::Hamming {
        // Packed bits: .u8bin base and queries of the same width.
        let q = VectorFile::open(&a.queries)?;
        anyhow::ensure!(
            q.dim == base.dim && q.element == base.element,
            "hamming: queries and base must be packed bits of the same width ({} holds {} x {}, the base {} x {})",
            a.queries.display(),
            q.dim,
            q.element,
            base.dim,
            base.element
        );
        let mut raw = Vec::new();
        q.read_raw(0, q.count as usize, &mut raw)?;
        let rows =
            super::pool(a.threads)?.install(|| fathom_index::gt::ground_truth_bits(&base, &raw, a.k, &|_| {}))?;
        let ids: Vec<Vec<u32>> = rows.iter().map(|r| r.iter().map(|n| n.id as u32).collect()).collect();
        write_ids_ibin(&a.out, a.k, &ids)?;
        eprintln!("wrote {} x {} neighbours (hamming) to {}", ids.len(), a.k, a.out.display());
        return Ok(());
    }
    let (queries, dim) = super::read_all_f32(&a.queries)?;
    anyhow::ensure!(
        dim == base.dim,
        "queries have dimension {dim} but the base has {} ({})",
        base.dim,
        a.queries.display()
    );
    let total = base.count;
    let rows = super::pool(a.threads)?.install(|| {
        fathom_index::gt::ground_truth(&base, &queries, a.k, a.metric, &|done| {
            tracing::info!("ground truth: {done}/{total} base rows");
        })
    })?;
    let ids: Vec<Vec<u32>> = rows.iter().map(|r| r.iter().map(|n| n.id as u32).collect()).collect();
    write_ids_ibin(&a.out, a.k, &ids)?;
    eprintln!("wrote {} x {} neighbours to {}", ids.len(), a.k, a.out.display());
    Ok(())
}
