//! `fathom bench`: search over a grid of settings, in-process (`--index`)
//! or against a server (`--addr`, with `--concurrency` requests in flight).
//! One line (or one JSON object) per setting: recall@k, QPS, mean/p99
//! latency, postings, reads and bytes per query.

use crate::ops::sysinfo::{human_bytes, rss_bytes};
use anyhow::Context;
use fathom_index::input::read_ids;
use fathom_index::io::BackendChoice;
use fathom_index::{Index, OpenOptions, Query, SearchSettings, SearchStats};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["index", "addr"])))]
pub struct Args {
    /// Index directory (in-process); or --addr.
    #[arg(long)]
    index: Option<PathBuf>,
    /// Server address (remote), e.g. http://127.0.0.1:7700; or --index.
    #[arg(long)]
    addr: Option<String>,
    /// Remote: requests in flight from one client.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    #[arg(long)]
    queries: PathBuf,
    /// Ground truth (.ibin or .ivecs).
    #[arg(long)]
    gt: PathBuf,
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Search threads, each with its own searcher and I/O ring.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Run the default grid of settings: max_postings 4..128 (12..384 for an
    /// index holding one copy of each vector) x rerank 20 and the default
    /// (fewer rerank reads often win at recall 0.90), at eps2 10 (pruning
    /// nearly off, so that max_postings alone sets the cost; `fathom serve`
    /// prunes at 0.4 unless told otherwise: pass --eps2 0.4 to sweep that)
    #[arg(long)]
    sweep: bool,
    /// Postings read at most (comma list to sweep).
    #[arg(long, value_delimiter = ',')]
    max_postings: Vec<usize>,
    /// Pruning ratio (comma list).
    #[arg(long, value_delimiter = ',')]
    eps2: Vec<f32>,
    /// Rerank depth (comma list).
    #[arg(long, value_delimiter = ',')]
    rerank: Vec<usize>,
    /// Centroid groups probed (comma list).
    #[arg(long, value_delimiter = ',')]
    probe_groups: Vec<usize>,
    /// Pages per aligned read block (comma list).
    #[arg(long, value_delimiter = ',')]
    block_pages: Vec<usize>,
    /// Nearest postings whose own vectors are prefetched (comma list).
    #[arg(long, value_delimiter = ',')]
    prefetch: Vec<usize>,
    /// Fraction of the probed postings scored before the first rerank
    /// reads go out, with resident codes (comma list; 1 = no overlap).
    #[arg(long, value_delimiter = ',')]
    early_rerank: Vec<f32>,
    /// Score only the chosen postings, not their page-mates.
    #[arg(long)]
    no_page_mates: bool,
    /// Use only the first N queries.
    #[arg(long)]
    limit: Option<usize>,
    /// auto, uring or pread.
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    /// Read through the page cache instead of O_DIRECT.
    #[arg(long)]
    buffered: bool,
    /// Leave the resident row codes on disk: score posting codes read from disk.
    #[arg(long)]
    no_resident_codes: bool,
    /// Memory for the posting codes of an index scored from disk: all are
    /// held (no posting reads) when they fit. `auto` = a tenth of the raw
    /// vector bytes less the index's own; a size; 0 = none
    #[arg(long, default_value = "auto", value_parser = crate::ops::sysinfo::parse_memory_budget)]
    memory_budget: fathom_index::MemoryBudget,
    /// One JSON object per line on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
pub(super) struct Row {
    pub(super) recall: f64,
    pub(super) qps: f64,
    pub(super) mean_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) postings: f64,
    pub(super) reads: f64,
    pub(super) bytes: f64,
    pub(super) candidates: f64,
    pub(super) reranked: f64,
    pub(super) centroid_ms: f64,
    pub(super) io_ms: f64,
    pub(super) score_ms: f64,
    pub(super) rerank_ms: f64,
    pub(super) k: usize,
    pub(super) threads: usize,
    pub(super) queries: usize,
    pub(super) settings: SearchSettings,
    pub(super) backend: String,
    /// Remote: what the server says (absent from a server too old to say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) direct_io: Option<bool>,
    pub(super) index_resident_bytes: u64,
    /// In process: this process's; remote: the server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) process_rss_bytes: Option<u64>,
    /// The centroid lookup at these settings against an exhaustive scan
    /// (in-process only; on the first [`CENTROID_CHECK_QUERIES`] queries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) centroid_lookup: Option<fathom_index::centroids::LookupRecall>,
}

/// Queries on which `fathom bench` measures the centroid lookup (each costs
/// a scan of every centroid).
const CENTROID_CHECK_QUERIES: usize = 100;

/// The benchmark's queries: floats, or packed codes for a raw-bit collection.
enum QuerySet {
    Floats(Vec<f32>, usize),
    Codes(Vec<u8>, usize),
}

impl QuerySet {
    /// Raw-bit collections read packed .u8bin queries (rows zero-padded to
    /// the code size); everything else reads floats.
    fn load(path: &std::path::Path, ix: Option<&Index>) -> anyhow::Result<Self> {
        let raw_bits = ix.and_then(|ix| ix.code_space()).filter(|s| s.codec.is_none());
        if let Some(space) = raw_bits {
            let cb = space.code_bytes();
            let (codes, width) = super::read_packed(path, cb)?;
            anyhow::ensure!(
                width == space.dim.div_ceil(8),
                "the index holds {}-bit vectors: queries must be a .u8bin of {} bytes per row ({} has {width})",
                space.dim,
                space.dim.div_ceil(8),
                path.display()
            );
            return Ok(QuerySet::Codes(codes, cb));
        }
        let (qs, dim) = super::read_all_f32(path)?;
        if let Some(ix) = ix {
            anyhow::ensure!(dim == ix.dim(), "queries have dimension {dim}, the index {}", ix.dim());
        }
        Ok(QuerySet::Floats(qs, dim))
    }

    fn len(&self) -> usize {
        match self {
            QuerySet::Floats(q, w) => q.len() / w,
            QuerySet::Codes(q, w) => q.len() / w,
        }
    }

    fn get(&self, i: usize) -> Query<'_> {
        match self {
            QuerySet::Floats(q, w) => Query::Floats(&q[i * w..(i + 1) * w]),
            QuerySet::Codes(q, w) => Query::Code(&q[i * w..(i + 1) * w]),
        }
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let opened = std::time::Instant::now();
    let ix = match &a.index {
        Some(dir) => Some(
            Index::open(
                dir,
                OpenOptions {
                    backend: a.backend,
                    direct_io: !a.buffered,
                    resident_codes: !a.no_resident_codes,
                    memory_budget: a.memory_budget,
                },
            )
            .with_context(|| format!("opening {}", dir.display()))?,
        ),
        None => None,
    };
    let open_ms = opened.elapsed().as_secs_f64() * 1e3;
    let qs = QuerySet::load(&a.queries, ix.as_deref())?;
    let gt = read_ids(&a.gt)?;
    let mut nq = qs.len();
    anyhow::ensure!(gt.len() >= nq, "ground truth has {} rows for {nq} queries", gt.len());
    anyhow::ensure!(gt.first().is_some_and(|r| r.len() >= a.k), "ground truth has fewer than k = {} ids per row", a.k);
    if let Some(l) = a.limit {
        nq = nq.min(l);
    }
    anyhow::ensure!(a.threads >= 1, "--threads must be at least 1");
    // The index's own defaults (more postings for one copy of each vector),
    // or the server's; the sweep's postings scale with them.
    let d = match (&ix, &a.addr) {
        (Some(ix), _) => ix.default_settings(),
        (None, Some(addr)) => super::bench_remote::server_defaults(addr)?,
        (None, None) => SearchSettings::default(),
    };
    let scale = d.max_postings.div_ceil(SearchSettings::default().max_postings).max(1);
    let sweep_postings: Vec<usize> = [4, 8, 16, 32, 48, 64, 96, 128].iter().map(|m| m * scale).collect();
    let or = |v: &Vec<usize>, sweep: &[usize], def: usize| {
        if !v.is_empty() {
            v.clone()
        } else if a.sweep {
            sweep.to_vec()
        } else {
            vec![def]
        }
    };
    let mps = or(&a.max_postings, &sweep_postings, d.max_postings);
    let sweep_reranks: Vec<usize> = if d.rerank == 20 { vec![20] } else { vec![20, d.rerank] };
    let rrs = or(&a.rerank, &sweep_reranks, d.rerank);
    let pgs = or(&a.probe_groups, &[d.probe_groups], d.probe_groups);
    let bps = or(&a.block_pages, &[d.block_pages], d.block_pages);
    let eps = if a.eps2.is_empty() { vec![if a.sweep { 10.0 } else { d.eps2 }] } else { a.eps2.clone() };
    let pfs = or(&a.prefetch, &[d.prefetch_postings], d.prefetch_postings);
    let ers = if a.early_rerank.is_empty() { vec![d.early_rerank] } else { a.early_rerank.clone() };
    let mut grid = Vec::new();
    let mut last_remote: Option<Row> = None;
    for (&block_pages, &early_rerank) in bps.iter().flat_map(|b| ers.iter().map(move |e| (b, e))) {
        for &prefetch_postings in &pfs {
            for &probe_groups in &pgs {
                for &eps2 in &eps {
                    for &rerank in &rrs {
                        for &max_postings in &mps {
                            grid.push(SearchSettings {
                                max_postings,
                                eps2,
                                rerank,
                                probe_groups,
                                page_mates: !a.no_page_mates,
                                block_pages,
                                prefetch_postings,
                                early_rerank,
                            });
                        }
                    }
                }
            }
        }
    }
    for s in grid {
        let row = match (&ix, &a.addr, &qs) {
            (Some(ix), _, _) => {
                let mut row = measure(ix, &qs, nq, &gt, a.k, a.threads, s)?;
                if let QuerySet::Floats(f, dim) = &qs {
                    let n = nq.min(CENTROID_CHECK_QUERIES);
                    row.centroid_lookup = Some(ix.centroid_recall(&f[..n * dim], &s)?);
                }
                row
            }
            (None, Some(addr), QuerySet::Floats(f, dim)) => {
                super::bench_remote::measure(addr, &f[..nq * dim], *dim, &gt, a.k, a.concurrency, s)?
            }
            (None, Some(_), QuerySet::Codes(..)) => anyhow::bail!("remote bench sends float queries only"),
            (None, None, _) => anyhow::bail!("pass --index or --addr"),
        };
        check_truth_matches(&row, ix.as_deref().map(|i| i.manifest().user_ids), &a.gt)?;
        if a.json {
            println!("{}", serde_json::to_string(&row)?);
        } else {
            println!(
                "mp={:<4} eps2={:<4} rr={:<3} er={:<4} pg={:<3} bp={} pf={:<2} recall@{}={:.4} qps={:>7.1} mean={:.3}ms p99={:.3}ms postings={:.1} reads={:.1} bytes={} cands={:.0} [cent {:.3} io {:.3} score {:.3} rerank {:.3} ms]{}",
                s.max_postings, s.eps2, s.rerank, s.early_rerank, s.probe_groups, s.block_pages, s.prefetch_postings, a.k,
                row.recall, row.qps, row.mean_ms, row.p99_ms, row.postings, row.reads,
                human_bytes(row.bytes as u64), row.candidates, row.centroid_ms, row.io_ms, row.score_ms, row.rerank_ms,
                row.centroid_lookup.map(|c| format!(" centroids found {:.3}", c.recall)).unwrap_or_default()
            );
        }
        if ix.is_none() {
            last_remote = Some(row);
        }
    }
    // What the server said of itself (remote), as the in-process line below.
    if let (Some(row), false) = (&last_remote, a.json) {
        let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "not reported".into());
        eprintln!(
            "{}; direct_io {}; index resident {}; server RSS {}",
            row.backend,
            or_unknown(row.direct_io.map(|d| d.to_string())),
            human_bytes(row.index_resident_bytes),
            or_unknown(row.process_rss_bytes.map(human_bytes))
        );
    }
    if let (Some(ix), false) = (&ix, a.json) {
        eprintln!(
            "opened in {open_ms:.0} ms; backend {} direct_io {}; index resident {}; process RSS {}",
            ix.backend_name(),
            ix.direct_io(),
            human_bytes(ix.resident_bytes()),
            human_bytes(rss_bytes())
        );
    }
    Ok(())
}

/// Refuses a ground truth that names none of the answers' ids: recall 0
/// over every query is not a slow index but truth in other ids (row numbers
/// against an index built with `--ids`, or another collection's).
fn check_truth_matches(row: &Row, user_ids: Option<bool>, gt: &std::path::Path) -> anyhow::Result<()> {
    if row.recall > 0.0 || row.queries == 0 {
        return Ok(());
    }
    let hint = match user_ids {
        Some(true) => {
            "this index was built with --ids: write its truth in those ids with \
             `fathom gt --ids FILE --out gt.u64bin`"
        }
        _ => "write the truth from this index's input (`fathom gt --base ... --ids FILE` if it was built with --ids)",
    };
    anyhow::bail!(
        "none of the {} answers' ids is in the ground truth {} (recall 0 at {:?}): the truth cannot belong \
         to this index; {hint}",
        row.queries,
        gt.display(),
        row.settings
    )
}

fn measure(
    ix: &Arc<Index>,
    qs: &QuerySet,
    nq: usize,
    gt: &[Vec<u64>],
    k: usize,
    threads: usize,
    s: SearchSettings,
) -> anyhow::Result<Row> {
    // Warm-up (CPU caches, allocations); not timed.
    let mut warm = ix.searcher()?;
    for i in 0..nq.min(100) {
        warm.search_query(qs.get(i), k, &s)?;
    }
    let backend = warm.backend_name().to_string();
    drop(warm);
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    type Out = (Vec<(usize, Vec<u64>, Duration)>, SearchStats);
    let results: Vec<anyhow::Result<Out>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<Out> {
                    let mut se = ix.searcher()?;
                    let mut out = Vec::new();
                    let mut st = SearchStats::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= nq {
                            break;
                        }
                        let t = Instant::now();
                        let (res, stats) = se.search_query(qs.get(i), k, &s)?;
                        out.push((i, res.iter().map(|n| n.id).collect(), t.elapsed()));
                        st.add(&stats);
                    }
                    Ok((out, st))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("search thread panicked"))))
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let mut lat = Vec::with_capacity(nq);
    let mut total = SearchStats::default();
    let mut recall = 0.0;
    for r in results {
        let (out, st) = r?;
        total.add(&st);
        for (i, ids, t) in out {
            recall += fathom_index::gt::recall_at(&ids, &gt[i], k);
            lat.push(t.as_secs_f64() * 1e3);
        }
    }
    let (mean_ms, p99_ms) = super::latency_mean_p99(&mut lat);
    let n = nq as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1e3 / n;
    Ok(Row {
        recall: recall / n,
        qps: n / wall,
        mean_ms,
        p99_ms,
        postings: total.postings_read as f64 / n,
        reads: total.reads as f64 / n,
        bytes: total.bytes_read as f64 / n,
        candidates: total.candidates_scored as f64 / n,
        reranked: total.reranked as f64 / n,
        centroid_ms: ms(total.centroid_time),
        io_ms: ms(total.io_time),
        score_ms: ms(total.score_time),
        rerank_ms: ms(total.rerank_time),
        k,
        threads,
        queries: nq,
        settings: s,
        backend,
        direct_io: Some(ix.direct_io()),
        index_resident_bytes: ix.resident_bytes(),
        process_rss_bytes: Some(rss_bytes()),
        centroid_lookup: None,
    })
}
