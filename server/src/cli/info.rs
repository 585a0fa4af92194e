//! `fathom info DIR`: the manifest in words, sizes, resident memory.

use crate::ops::sysinfo::human_bytes;
use fathom_index::{Index, OpenOptions};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Index directory.
    dir: PathBuf,
    /// Also verify the checksums of the large files (reads them whole).
    #[arg(long)]
    verify: bool,
    /// Print the manifest as JSON (large arrays and hex blobs, such as PQ
    /// centroids and codec parameters, summarised unless --full).
    #[arg(long)]
    json: bool,
    /// With --json: print every field in full.
    #[arg(long, requires = "json")]
    full: bool,
}

/// Arrays longer than this and strings longer than [`BLOB_CHARS`] are
/// summarised in `info --json` (PQ centroids are ~300 KB at 384-d).
const BLOB_ITEMS: usize = 64;
const BLOB_CHARS: usize = 256;

/// Replaces large arrays and strings in `v` by a one-line summary.
fn summarise_blobs(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Array(a) if a.len() > BLOB_ITEMS => {
            *v = Value::String(format!("<{} values; info --json --full prints them>", a.len()));
        }
        Value::String(s) if s.len() > BLOB_CHARS => {
            *v = Value::String(format!("<{} characters; info --json --full prints them>", s.len()));
        }
        Value::Array(a) => a.iter_mut().for_each(summarise_blobs),
        Value::Object(o) => o.values_mut().for_each(summarise_blobs),
        _ => {}
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let ix = Index::open(&a.dir, OpenOptions::default())?;
    let m = ix.manifest();
    if a.json {
        // Written, not println!: `info --json | head` closes the pipe early,
        // and the binary turns that error into a quiet exit.
        use std::io::Write;
        let mut v = serde_json::to_value(m)?;
        if !a.full {
            summarise_blobs(&mut v);
        }
        let text = serde_json::to_string_pretty(&v)?;
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        writeln!(out)?;
    } else {
        let raw = m.vector_count * m.dim as u64 * 4;
        println!("index       {}", a.dir.display());
        println!("format      v{} ({})", m.format_version, m.created_by);
        println!("vectors     {} x {} {} ({})", m.vector_count, m.dim, m.element, m.metric);
        println!(
            "ids         {}; shard {} of {}; collection {}",
            if m.user_ids { "the user's (--ids)" } else { "input row numbers" },
            m.build.shard,
            m.build.shard_count,
            m.collection_id
        );
        println!(
            "postings    {} in {} centroid groups; code {} ({} bytes per vector)",
            m.posting_count,
            m.centroid_group_count,
            m.code,
            m.quantizer.code_bytes()
        );
        println!(
            "entries     {} ({:.2} per vector), mean posting {:.1}, max {}",
            m.stats.posting_entries,
            m.stats.posting_entries as f64 / m.vector_count as f64,
            m.stats.mean_posting_len,
            m.stats.max_posting_len
        );
        if let Some(c) = &m.stats.centroid_lookup {
            let how = match (c.method.as_str(), c.beam_factor) {
                ("hybrid", _) => "graph walked from the group scan".to_string(),
                (_, 0) => "group scan".to_string(),
                (_, f) => format!("graph, beam factor {f}"),
            };
            println!(
                "lookup      {how}: nearest centroid found for {:.1}% of {} sample rows at effort {}",
                100.0 * c.first,
                c.probes,
                c.effort
            );
        }
        if let Some(p) = &m.source {
            println!(
                "source      {} ({}, crc32 {:08x}); kernels {}",
                p.input_name,
                human_bytes(p.input_bytes),
                p.input_crc32,
                p.kernels
            );
        }
        if let Some(r) = &m.resident_codes {
            println!(
                "row codes   {} bits per dimension, {} bytes per vector, in memory (codes.bin: the first stage reads nothing)",
                r.codec.bits,
                fathom_index::quant::rowcode::record_bytes(&r.codec, m.metric)
            );
        }
        for (name, f) in &m.files {
            println!("file        {name:<14} {:>12}  crc32 {:08x}", human_bytes(f.bytes), f.crc32);
        }
        let res = ix.resident_bytes();
        // A binary collection is compared with its codes, not with floats.
        let (raw, what) = match ix.code_bytes() {
            Some(cb) => (m.vector_count * cb as u64, "packed codes"),
            None => (raw, "raw f32 vectors"),
        };
        println!(
            "resident    {} for the index ({:.1}% of {} {what})",
            human_bytes(res),
            100.0 * res as f64 / raw as f64,
            human_bytes(raw)
        );
        match (ix.posting_codes_held(), ix.posting_codes_bytes()) {
            (true, _) => println!("posting codes held in memory (within memory_budget auto): no posting reads"),
            (false, Some(b)) => println!(
                "posting codes {} on disk; held in memory (queries then read only rerank rows) with memory_budget >= {}",
                human_bytes(b),
                human_bytes(b)
            ),
            _ => {}
        }
        println!(
            "build       seed {}, leaf {}, max posting {}, replicas {}, eps1 {}, rng factor {}",
            m.build.seed,
            m.build.leaf_size,
            m.build.max_posting_len(),
            m.build.replicas,
            m.build.eps1,
            m.build.rng_factor
        );
    }
    if a.verify {
        ix.verify()?;
        eprintln!("checksums OK");
    }
    Ok(())
}
