//! `fathom search`: query a running server with the rows of a vector file;
//! one JSON line per query on stdout.

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
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let (qs, dim) = super::read_all_f32(&a.query)?;
    let n = (qs.len() / dim).min(a.limit.unwrap_or(usize::MAX));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let client = Client::connect(&a.addr, ClientOptions::default()).await?;
        for (i, q) in qs.chunks_exact(dim).take(n).enumerate() {
            let r = client.search(q, a.k, None).await?;
            let ids: Vec<u32> = r.neighbors.iter().map(|n| n.id).collect();
            let d: Vec<f32> = r.neighbors.iter().map(|n| n.distance).collect();
            println!("{}", serde_json::json!({"query": i, "ids": ids, "distances": d}));
        }
        Ok(())
    })
}
