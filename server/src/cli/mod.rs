//! Subcommands of the `fathom` binary.

mod bench;
mod bench_remote;
mod build;
mod demo;
mod gt;
mod info;
mod route;
mod search;
mod serve;
mod synth;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "fathom", version, about = "Disk-resident vector search: build, query and serve SPANN-style indexes")]
pub struct Cli {
    /// Logs as JSON lines (on stderr).
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build an index directory from a vector file.
    Build(build::Args),
    /// Exact k-NN ground truth (.ibin) of queries against a base file.
    Gt(gt::Args),
    /// In-process search benchmark: recall@k, QPS, latency, I/O per query.
    Bench(bench::Args),
    /// Serve an index over gRPC (health, reflection, Prometheus metrics).
    Serve(serve::Args),
    /// Route searches across shard servers and merge their answers.
    Route(route::Args),
    /// Query a running server with the rows of a vector file.
    Search(search::Args),
    /// What an index directory holds.
    Info(info::Args),
    /// The whole job on a generated data set: build, search, report recall.
    Demo(demo::Args),
    /// Generate a deterministic clustered synthetic data set (.fbin).
    Synth(synth::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(a) => build::run(a),
        Command::Gt(a) => gt::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Info(a) => info::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Route(a) => route::run(a),
        Command::Search(a) => search::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Demo(a) => demo::run(a),
    }
}

/// A rayon pool of `threads` workers (0 = all cores).
pub fn pool(threads: usize) -> anyhow::Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new().num_threads(threads).build()?)
}

/// Mean and 99th percentile of latencies in milliseconds (sorts them).
pub fn latency_mean_p99(lat_ms: &mut [f64]) -> (f64, f64) {
    if lat_ms.is_empty() {
        return (0.0, 0.0);
    }
    lat_ms.sort_by(f64::total_cmp);
    let n = lat_ms.len();
    (lat_ms.iter().sum::<f64>() / n as f64, lat_ms[(n * 99 / 100).min(n - 1)])
}

/// Reads every row of a vector file as f32.
/// The rows of a .u8bin of packed bits, each zero-padded to `code_bytes`
/// (a whole number of 64-bit words, the code layout); returns them
/// concatenated with the row width of the file.
pub fn read_packed(path: &std::path::Path, code_bytes: usize) -> anyhow::Result<(Vec<u8>, usize)> {
    let f = fathom_index::input::VectorFile::open(path)?;
    anyhow::ensure!(
        f.element == fathom_index::ElementType::U8 && f.dim <= code_bytes,
        "packed queries come from a .u8bin of at most {code_bytes} bytes per row; {} holds {} x {}",
        path.display(),
        f.dim,
        f.element
    );
    let mut raw = Vec::new();
    f.read_raw(0, f.count as usize, &mut raw)?;
    let mut codes = vec![0u8; f.count as usize * code_bytes];
    for (c, r) in codes.chunks_exact_mut(code_bytes).zip(raw.chunks_exact(f.dim)) {
        c[..f.dim].copy_from_slice(r);
    }
    Ok((codes, f.dim))
}

pub fn read_all_f32(path: &std::path::Path) -> anyhow::Result<(Vec<f32>, usize)> {
    let f = fathom_index::input::VectorFile::open(path)?;
    let mut v = Vec::new();
    f.read_f32(0, f.count as usize, &mut v)?;
    Ok((v, f.dim))
}
