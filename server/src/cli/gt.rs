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
    /// No progress bar (a terminal gets one with rate and ETA; otherwise one
    /// line when done).
    #[arg(long)]
    quiet: bool,
}

/// Progress of the scan over the base rows (the callback gets rows done so far).
struct Scan {
    bar: crate::progress::StderrProgress,
    seen: std::sync::atomic::AtomicU64,
}

impl Scan {
    fn start(quiet: bool, rows: u64) -> Self {
        use fathom_index::build::ProgressSink;
        let bar = crate::progress::StderrProgress::new(quiet);
        bar.stage("gt", rows);
        Scan { bar, seen: 0.into() }
    }

    fn at(&self, done: u64) {
        use fathom_index::build::ProgressSink;
        let before = self.seen.swap(done, std::sync::atomic::Ordering::Relaxed);
        self.bar.advance(done.saturating_sub(before));
    }

    fn finish(&self) {
        use fathom_index::build::ProgressSink;
        self.bar.finish_stage();
    }
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
        let scan = Scan::start(a.quiet, base.count);
        let rows = super::pool(a.threads)?
            .install(|| fathom_index::gt::ground_truth_bits(&base, &raw, a.k, &|done| scan.at(done)))?;
        scan.finish();
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
    let scan = Scan::start(a.quiet, base.count);
    let rows = super::pool(a.threads)?
        .install(|| fathom_index::gt::ground_truth(&base, &queries, a.k, a.metric, &|done| scan.at(done)))?;
    scan.finish();
    let ids: Vec<Vec<u32>> = rows.iter().map(|r| r.iter().map(|n| n.id as u32).collect()).collect();
    write_ids_ibin(&a.out, a.k, &ids)?;
    eprintln!("wrote {} x {} neighbours to {}", ids.len(), a.k, a.out.display());
    Ok(())
}
