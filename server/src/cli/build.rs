//! `fathom build`: vector file -> index directory, with progress and a summary.

use crate::ops::progress::StderrProgress;
use crate::ops::sysinfo::{human_bytes, parse_size, peak_rss_bytes};
use anyhow::Context;
use fathom_index::{BuildParams, CodeKind, Metric};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Vectors: .fbin, .u8bin, .i8bin, .fvecs, .bvecs or .npy.
    #[arg(long)]
    input: PathBuf,
    /// l2, ip, cosine, or hamming (raw bit input, --bits; the default there).
    #[arg(long)]
    metric: Option<Metric>,
    /// Output index directory (must not exist).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Worker threads (0 = all cores). Output is identical for any count.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Working-memory bound, e.g. 2GiB.
    #[arg(long, default_value = "2GiB", value_parser = parse_size)]
    memory_budget: u64,
    /// Target vectors per posting (nearest assignment) [default: 64; 96 for
    /// binary collections and with resident row codes; 256 for one copy of
    /// each vector, see --replicas].
    #[arg(long)]
    leaf_size: Option<usize>,
    /// Entries per posting at most, replicas included (0 = 4 x leaf size)
    /// [default: 0; 768 for binary collections].
    #[arg(long)]
    max_posting_len: Option<usize>,
    /// Postings a vector may be stored in (R) [default: auto: 1 for PQ codes
    /// of f32 vectors of 40..255 dimensions, 100,000 or more (the server's
    /// default memory budget then holds every code: leaf 256, 3 dimensions a
    /// PQ byte); 8 otherwise; 16 for binary collections].
    #[arg(long)]
    replicas: Option<usize>,
    /// Replicate within (1 + eps1) of the nearest centroid distance.
    #[arg(long, default_value_t = BuildParams::default().eps1)]
    eps1: f32,
    /// Disable the RNG rule for replicas.
    #[arg(long)]
    no_rng_rule: bool,
    /// RNG rule factor: 1 strict, larger relaxes it [default: 1.5; 3 for
    /// binary collections].
    #[arg(long)]
    rng_factor: Option<f32>,
    /// Children per hierarchical split.
    #[arg(long, default_value_t = BuildParams::default().branching)]
    branching: usize,
    #[arg(long, default_value_t = BuildParams::default().kmeans_iters)]
    kmeans_iters: usize,
    /// Effort of the assign stage's nearest-centroid lookups: centroid
    /// groups scanned (or the graph's beam width). More finds each vector's
    /// nearest postings more often (head index accuracy), at assign time.
    /// 0 = measured on sample rows: 64, or 32 where the walk from the
    /// groups finds as much there.
    #[arg(long, default_value_t = BuildParams::default().assign_probe_groups)]
    assign_probe_groups: usize,
    /// Centroid lookup kept for the build and for searches: auto (measured
    /// on sample rows: the group scan, the centroid graph, or the graph
    /// walked from a few groups, whichever finds the nearest centroids as
    /// often for the least work), groups, graph or hybrid.
    #[arg(long, default_value = "auto")]
    centroid_lookup: fathom_index::LookupChoice,
    /// Vectors sampled for clustering (0 = as many as the budget allows).
    #[arg(long, default_value_t = 0)]
    sample_size: u64,
    /// Posting code: pq (1 byte per sub-vector), sq8 (1 byte/dim), binary
    /// (1..4 bits/dim), all reranked exactly; or f32 (exact, no rerank).
    #[arg(long, default_value = "pq")]
    code: CodeKind,
    /// PQ sub-vectors (0 = auto: dim / 2, or dim / 3 for one copy of each
    /// vector, see --replicas).
    #[arg(long, default_value_t = 0)]
    pq_subspaces: usize,
    /// Bits per dimension for --code binary (1..=4).
    #[arg(long, default_value_t = 1)]
    binary_bits: usize,
    /// Resume an interrupted build of the same --out from its finished
    /// assign stage (same input, parameters and seed; checked), instead of
    /// starting over. Without a resumable leftover the build starts over.
    #[arg(long)]
    resume: bool,
    /// Resident row codes (codes.bin: every vector's code, kept in the
    /// server's memory so only the rerank reads the disk): bits per
    /// dimension 1..=4, 0 = none, auto = 2 for rows of 1 KiB or more
    /// (256-d f32 and up), none below.
    #[arg(long, default_value = "auto")]
    row_codes: String,
    /// The input .u8bin holds packed bit vectors of this many bits (bit j
    /// is bit j % 8 of byte j / 8): a binary collection searched by Hamming
    /// distance, queried with packed bits.
    #[arg(long, default_value_t = 0)]
    bits: usize,
    /// Encode float input into a binary collection: binary:U with U = 1..4
    /// bits per dimension (codec fitted on the input; only codes are kept).
    #[arg(long, value_parser = parse_encode)]
    encode: Option<usize>,
    /// One u64 id per input row, returned by searches: .npy (uint64 or
    /// int64, shape (n,)) or .u64bin (u32 n, u32 1, n x u64). Default: the
    /// row number in the input.
    #[arg(long)]
    ids: Option<PathBuf>,
    /// Split the collection into this many shards (by a hash of the id)...
    #[arg(long, default_value_t = 1)]
    shards: u32,
    /// ...and build this one (0-based). Every shard reads the whole input.
    #[arg(long, default_value_t = 0)]
    shard: u32,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `binary:U` -> U.
fn parse_encode(s: &str) -> Result<usize, String> {
    let bits = s.strip_prefix("binary:").ok_or_else(|| format!("--encode {s:?}: expected binary:U (U = 1..4)"))?;
    match bits.parse::<usize>() {
        Ok(u) if (1..=4).contains(&u) => Ok(u),
        _ => Err(format!("--encode {s:?}: U must be 1, 2, 3 or 4")),
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let metric = match (a.metric, a.bits) {
        (Some(m), _) => m,
        (None, b) if b > 0 => Metric::Hamming,
        (None, _) => anyhow::bail!("--metric is required (l2, ip or cosine; hamming with --bits)"),
    };
    let encode_bits = a.encode.unwrap_or(0);
    let base = if a.bits > 0 || encode_bits > 0 {
        BuildParams::binary_collection(metric, a.bits, encode_bits)
    } else {
        BuildParams { metric, ..BuildParams::default() }
    };
    let params = BuildParams {
        seed: a.seed,
        threads: a.threads,
        memory_budget_bytes: a.memory_budget,
        leaf_size: a.leaf_size.unwrap_or(base.leaf_size),
        max_posting_len: a.max_posting_len.unwrap_or(base.max_posting_len),
        replicas: a.replicas.unwrap_or(base.replicas),
        eps1: a.eps1,
        rng_factor: if a.no_rng_rule { 0.0 } else { a.rng_factor.unwrap_or(base.rng_factor) },
        branching: a.branching,
        kmeans_iters: a.kmeans_iters,
        assign_probe_groups: a.assign_probe_groups,
        centroid_lookup: a.centroid_lookup,
        sample_size: a.sample_size,
        code: a.code,
        pq_subspaces: a.pq_subspaces,
        binary_bits: a.binary_bits,
        row_code_bits: parse_row_codes(&a.row_codes).map_err(anyhow::Error::msg)?,
        shard: a.shard,
        shard_count: a.shards,
        ids_file: a.ids.clone(),
        resume: a.resume,
        ..base
    };
    let progress = StderrProgress::new(a.quiet);
    let report = super::pool(a.threads)?
        .install(|| fathom_index::build(&a.input, &a.out, &params, &progress))
        .with_context(|| format!("building {} from {}", a.out.display(), a.input.display()))?;
    let m = &report.manifest;
    let disk: u64 = m.files.values().map(|f| f.bytes).sum();
    let peak = peak_rss_bytes();
    if a.json {
        let v = serde_json::json!({
            "vectors": m.vector_count, "dim": m.dim, "postings": m.posting_count,
            "posting_entries": m.stats.posting_entries, "mean_posting_len": m.stats.mean_posting_len,
            "max_posting_len": m.stats.max_posting_len, "replica_histogram": m.stats.replica_histogram,
            "dropped_replicas": m.stats.dropped_replicas, "disk_bytes": disk,
            "stage_seconds": report.stage_seconds, "total_seconds": report.total_seconds,
            "peak_rss_bytes": peak, "collection_id": m.collection_id,
            "shard": m.build.shard, "shard_count": m.build.shard_count, "user_ids": m.user_ids,
            "centroid_lookup": m.stats.centroid_lookup,
        });
        println!("{v}");
    } else if !a.quiet {
        let s = &m.stats;
        eprintln!("built {} ({} vectors x {}, {})", a.out.display(), m.vector_count, m.dim, m.metric);
        if m.build.shard_count > 1 {
            eprintln!("  shard {} of {}  collection {}", m.build.shard, m.build.shard_count, m.collection_id);
        }
        eprintln!(
            "  postings {}  mean length {:.1}  max {}  entries {} ({:.2} per vector)  dropped replicas {}",
            m.posting_count,
            s.mean_posting_len,
            s.max_posting_len,
            s.posting_entries,
            s.posting_entries as f64 / m.vector_count as f64,
            s.dropped_replicas
        );
        let hist: Vec<String> = s.replica_histogram.iter().enumerate().map(|(i, c)| format!("{}:{c}", i + 1)).collect();
        eprintln!("  replicas per vector  {}", hist.join(" "));
        if let Some(c) = &s.centroid_lookup {
            eprintln!(
                "  centroid lookup {} at effort {}: nearest found for {:.1}% of {} sample rows, {:.1}% of their \
                 nearest {}, {:.0} distances each (graph {:.1}%{}, groups {:.1}% in {:.0}{})",
                c.method,
                c.effort,
                100.0 * c.first,
                c.probes,
                100.0 * c.recall,
                c.want,
                c.cost,
                100.0 * c.graph_first,
                if c.beam_factor > 0 { format!(" at beam factor {}", c.beam_factor) } else { String::new() },
                100.0 * c.groups_first,
                c.groups_cost,
                c.hybrid_first.map(|h| format!(", graph from groups {:.1}%", 100.0 * h)).unwrap_or_default()
            );
        }
        eprintln!("  on disk {}  peak RSS {}", human_bytes(disk), human_bytes(peak));
        let stages: Vec<String> = report.stage_seconds.iter().map(|(k, v)| format!("{k} {v:.1}s")).collect();
        eprintln!("  time {:.1}s ({})", report.total_seconds, stages.join(", "));
    }
    Ok(())
}

fn parse_row_codes(s: &str) -> Result<Option<usize>, String> {
    match s {
        "auto" => Ok(None),
        n => n.parse::<usize>().map(Some).map_err(|_| format!("{n:?}: expected auto or bits 0..=4")),
    }
}
