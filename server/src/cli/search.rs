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
    /// The query file (.u8bin) holds packed bits for a binary collection:
    /// each row is sent as a BITS code, zero-padded to whole 64-bit words.
    #[arg(long)]
    packed: bool,
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
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let client = Client::connect(&a.addr, ClientOptions::default()).await?;
        for i in 0..n {
            let r = match &rows {
                Rows::Floats(q, dim) => client.search(&q[i * dim..(i + 1) * dim], a.k, None).await?,
                Rows::Codes(c) => client.search_code(&c[i], a.k, None).await?,
            };
            let ids: Vec<u64> = r.neighbors.iter().map(|n| n.id).collect();
            let d: Vec<f32> = r.neighbors.iter().map(|n| n.distance).collect();
            println!("{}", serde_json::json!({"query": i, "ids": ids, "distances": d}));
        }
        Ok(())
    })
}
