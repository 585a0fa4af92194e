//! `fathom gt`: exact neighbours by blocked brute force, written as .ibin.

use fathom_index::input::{write_truth, IdFile, VectorFile};
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
    /// Output: .ibin (i32 n, i32 k, i32 ids) or .u64bin (u32 n, u32 k, u64
    /// ids: any user id).
    #[arg(long)]
    out: PathBuf,
    /// The base rows' ids (the file given to `fathom build --ids`: .u64bin
    /// or .npy): the truth then names those ids instead of row numbers, as
    /// an index built with them answers.
    #[arg(long)]
    ids: Option<PathBuf>,
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
    bar: crate::ops::progress::StderrProgress,
    seen: std::sync::atomic::AtomicU64,
}

impl Scan {
    fn start(quiet: bool, rows: u64) -> Self {
        use fathom_index::build::ProgressSink;
        let bar = crate::ops::progress::StderrProgress::new(quiet);
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

/// The base rows' user ids, checked against the base's row count.
fn user_ids(path: &std::path::Path, rows: u64) -> anyhow::Result<Vec<u64>> {
    let f = IdFile::open(path)?;
    anyhow::ensure!(f.count == rows, "{} holds {} ids but the base has {rows} rows", path.display(), f.count);
    let mut ids = Vec::new();
    f.read(0, rows as usize, &mut ids)?;
    Ok(ids)
}

/// Writes the truth, in user ids when given.
fn write(a: &Args, rows: &[Vec<fathom_index::Neighbor>], ids: Option<&[u64]>) -> anyhow::Result<()> {
    let name = |row: u64| ids.map_or(row, |ids| ids[row as usize]);
    let out: Vec<Vec<u64>> = rows.iter().map(|r| r.iter().map(|n| name(n.id)).collect()).collect();
    write_truth(&a.out, a.k, &out)?;
    let kind = if ids.is_some() { "user ids" } else { "row numbers" };
    eprintln!("wrote {} x {} neighbours ({kind}) to {}", out.len(), a.k, a.out.display());
    Ok(())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let base = VectorFile::open(&a.base)?;
    anyhow::ensure!(a.k >= 1 && a.k as u64 <= base.count, "k must be in 1..={}", base.count);
    let ids = a.ids.as_deref().map(|p| user_ids(p, base.count)).transpose()?;
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
        return write(&a, &rows, ids.as_deref());
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
    write(&a, &rows, ids.as_deref())
}
