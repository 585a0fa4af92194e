//! The remote twin of the in-process bench: one tokio client driving
//! `concurrency` requests in flight against a server.

use super::bench::Row;
use fathom_client::{Client, ClientOptions};
use fathom_index::SearchSettings;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The search settings the server answers with when a request sets none
/// (its `[search]` keys over its index's defaults, from GetIndexInfo).
pub(super) fn server_defaults(addr: &str) -> anyhow::Result<SearchSettings> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let info = Client::connect(addr, ClientOptions::default()).await?.index_info().await?;
        crate::net::validate::settings(info.default_settings.as_ref(), &SearchSettings::default())
            .map_err(|e| anyhow::anyhow!("the server's default settings: {}", e.message()))
    })
}

pub(super) fn measure(
    addr: &str,
    qs: &[f32],
    dim: usize,
    gt: &[Vec<u64>],
    k: usize,
    concurrency: usize,
    s: SearchSettings,
) -> anyhow::Result<Row> {
    anyhow::ensure!(concurrency >= 1, "--concurrency must be at least 1");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let client = Client::connect(addr, ClientOptions::default()).await?;
        let info = client.index_info().await?;
        anyhow::ensure!(
            info.dimension as usize == dim,
            "queries have dimension {dim}, the server's index {}",
            info.dimension
        );
        let settings = crate::net::validate::to_pb_settings(&s);
        let qs = Arc::new(qs.to_vec());
        let nq = qs.len() / dim;
        // Warm-up, untimed.
        for q in qs.chunks_exact(dim).take(100) {
            client.search(q, k as u32, Some(settings)).await?;
        }
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, qs, next) = (client.clone(), qs.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= nq {
                        break;
                    }
                    let t = Instant::now();
                    let r = client.search(&qs[i * dim..(i + 1) * dim], k as u32, Some(settings)).await?;
                    out.push((i, r, t.elapsed()));
                }
                anyhow::Ok(out)
            }));
        }
        let mut lat = Vec::with_capacity(nq);
        let (mut recall, mut postings, mut reads, mut bytes, mut cands) = (0.0, 0u64, 0u64, 0u64, 0u64);
        let (mut reranked, mut stage_ns) = (0u64, [0u64; 4]);
        for t in tasks {
            for (i, r, d) in t.await?? {
                let ids: Vec<u64> = r.neighbors.iter().map(|n| n.id).collect();
                recall += fathom_index::gt::recall_at(&ids, &gt[i], k);
                lat.push(d.as_secs_f64() * 1e3);
                if let Some(st) = r.stats {
                    postings += st.postings_read as u64;
                    reads += st.reads as u64;
                    bytes += st.bytes_read;
                    cands += st.candidates_scored as u64;
                    reranked += st.reranked as u64;
                    for (sum, ns) in stage_ns.iter_mut().zip([st.centroid_ns, st.io_ns, st.score_ns, st.rerank_ns]) {
                        *sum += ns;
                    }
                }
            }
        }
        let wall = started.elapsed().as_secs_f64();
        let (mean_ms, p99_ms) = super::latency_mean_p99(&mut lat);
        let n = nq as f64;
        // What the server says of itself after the run: its backend, its
        // memory. An older server leaves these unset, and so does the row.
        let after = client.index_info().await?;
        let ms = |ns: u64| ns as f64 / 1e6 / n;
        Ok(Row {
            recall: recall / n,
            qps: n / wall,
            mean_ms,
            p99_ms,
            postings: postings as f64 / n,
            reads: reads as f64 / n,
            bytes: bytes as f64 / n,
            candidates: cands as f64 / n,
            reranked: reranked as f64 / n,
            centroid_ms: ms(stage_ns[0]),
            io_ms: ms(stage_ns[1]),
            score_ms: ms(stage_ns[2]),
            rerank_ms: ms(stage_ns[3]),
            k,
            threads: concurrency,
            queries: nq,
            settings: s,
            backend: match after.io_backend.as_str() {
                "" => format!("remote {addr}"),
                b => format!("remote {addr} ({b})"),
            },
            direct_io: (!after.io_backend.is_empty()).then_some(after.direct_io),
            index_resident_bytes: after.resident_bytes,
            process_rss_bytes: (after.process_rss_bytes > 0).then_some(after.process_rss_bytes),
            centroid_lookup: None,
        })
    })
}
