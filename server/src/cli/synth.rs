//! `fathom synth`: a deterministic Gaussian-mixture data set and queries.

use fathom_index::synth::Mixture;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Base vectors to write.
    #[arg(long, default_value_t = 1_000_000)]
    n: u64,
    #[arg(long, default_value_t = 96)]
    dim: usize,
    #[arg(long, default_value_t = 1000)]
    clusters: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Base output (.fbin).
    #[arg(long)]
    out: PathBuf,
    /// Query count, written beside the base unless --queries-out is given.
    #[arg(long, default_value_t = 10_000)]
    queries: u64,
    #[arg(long)]
    queries_out: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let m = Mixture { dim: a.dim, clusters: a.clusters, seed: a.seed };
    m.write_fbin(&a.out, 0, a.n)?;
    let qpath = a.queries_out.unwrap_or_else(|| a.out.with_extension("queries.fbin"));
    m.write_fbin(&qpath, 1, a.queries)?;
    eprintln!("wrote {} x {} to {} and {} queries to {}", a.n, a.dim, a.out.display(), a.queries, qpath.display());
    Ok(())
}
