//! `fathom search`: query a running server with the rows of a vector file;
//! one JSON line per query on stdout: ids, distances and, through a router
//! that answered without some shards, the coverage; a query the server
//! refuses gets a line with its error and the rest still run (the exit
//! status is then non-zero).

use fathom_client::{Client, ClientOptions};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Server address, e.g. http://127.0.0.1:7700.
    #[arg(long)]
    addr: String,
    /// Query vectors (.fbin, .npy, ...).
    #[arg(long)]
    query: PathBuf,
    #[arg(long, default_value_t = 10)]
    k: u32,
    /// Only the first N rows.
    #[arg(long)]
    limit: Option<usize>,
    /// The query file (.u8bin) holds packed bits for a binary collection:
    /// each row is sent as a BITS code, zero-padded to whole 64-bit words.
    #[arg(long)]
    packed: bool,
    /// Search settings (unset: the server's defaults; see docs/TUNING.md).
    #[arg(long)]
    max_postings: Option<u32>,
    #[arg(long)]
    eps2: Option<f32>,
    #[arg(long)]
    rerank: Option<u32>,
    #[arg(long)]
    probe_groups: Option<u32>,
    #[arg(long)]
    block_pages: Option<u32>,
    #[arg(long)]
    prefetch_postings: Option<u32>,
    #[arg(long)]
    early_rerank: Option<f32>,
    /// Deadline of each query, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
}

impl Args {
    /// The settings flags given, or None for the server's defaults.
    fn settings(&self) -> Option<fathom_client::SearchSettings> {
        let s = fathom_client::SearchSettings {
            max_postings: self.max_postings,
            eps2: self.eps2,
            rerank: self.rerank,
            probe_groups: self.probe_groups,
            block_pages: self.block_pages,
            prefetch_postings: self.prefetch_postings,
            early_rerank: self.early_rerank,
            ..Default::default()
        };
        (s != fathom_client::SearchSettings::default()).then_some(s)
    }
}

/// A query file's rows: floats, or packed codes.
enum Rows {
    Floats(Vec<f32>, usize),
    Codes(Vec<Vec<u8>>),
}

fn read_rows(a: &Args) -> anyhow::Result<Rows> {
    if !a.packed {
        let (qs, dim) = super::read_all_f32(&a.query)?;
        return Ok(Rows::Floats(qs, dim));
    }
    let width = fathom_index::input::VectorFile::open(&a.query)?.dim;
    let cb = width.next_multiple_of(8);
    let (codes, _) = super::read_packed(&a.query, cb)?;
    Ok(Rows::Codes(codes.chunks_exact(cb).map(<[u8]>::to_vec).collect()))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let rows = read_rows(&a)?;
    let total = match &rows {
        Rows::Floats(q, dim) => q.len() / dim,
        Rows::Codes(c) => c.len(),
    };
    let n = total.min(a.limit.unwrap_or(usize::MAX));
    let settings = a.settings();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let failed = rt.block_on(async {
        let opts = ClientOptions {
            request_timeout: Some(std::time::Duration::from_millis(a.timeout_ms)),
            ..ClientOptions::default()
        };
        let client = Client::connect(&a.addr, opts).await?;
        let mut failed = 0usize;
        for i in 0..n {
            let r = match &rows {
                Rows::Floats(q, dim) => client.search(&q[i * dim..(i + 1) * dim], a.k, settings).await,
                Rows::Codes(c) => client.search_code(&c[i], a.k, settings).await,
            };
            let line = match r {
                Ok(r) => {
                    let ids: Vec<u64> = r.neighbors.iter().map(|n| n.id).collect();
                    let d: Vec<f32> = r.neighbors.iter().map(|n| n.distance).collect();
                    let mut line = serde_json::json!({"query": i, "ids": ids, "distances": d});
                    if let Some(c) = r.coverage {
                        line["coverage"] = serde_json::json!({
                            "shards_answered": c.shards_answered,
                            "shards_total": c.shards_total,
                            "missing_shards": c.missing_shards,
                        });
                    }
                    line
                }
                Err(e) => {
                    failed += 1;
                    let code = e.code().map(|c| format!("{c:?}"));
                    serde_json::json!({"query": i, "error": e.to_string(), "code": code})
                }
            };
            println!("{line}");
        }
        anyhow::Ok(failed)
    })?;
    anyhow::ensure!(failed == 0, "{failed} of {n} queries failed (their lines say why)");
    Ok(())
}
