//! Index versions and swaps. With `--index-root DIR`, DIR holds one
//! directory per index version and a file `CURRENT` naming the one to
//! serve. On SIGHUP (or every `index_watch_ms`, when set) the server reads
//! `CURRENT`; a new version is opened and checked first, new requests go
//! to it, requests in flight finish on the old one. The old one stays open
//! for requests that name its collection (a router mid-rollout) until the
//! next swap, then closes when the last of its requests is done. A version the clients could not use unchanged
//! (another dimension, metric, element type, code, codec or shard) is
//! refused and the old one keeps serving.

use crate::ops::metrics::Metrics;
use crate::shard::config::IndexSource;
use crate::shard::workers::Pool;
use anyhow::Context;
use fathom_index::quant::Quantizer;
use fathom_index::{Index, Manifest, OpenOptions};
use parking_lot::RwLock;
use std::path::Path;
use std::sync::Arc;

/// What exists once the index is open.
pub struct Ready {
    pub index: Arc<Index>,
    pub pool: Pool,
}

/// Why `new` cannot replace `old` under running clients, if it cannot.
pub fn incompatibility(old: &Manifest, new: &Manifest) -> Option<String> {
    let codec = |m: &Manifest| match &m.quantizer {
        Quantizer::Codes(s) => s.codec.as_ref().map(|c| c.to_bytes()),
        _ => None,
    };
    let planes = |m: &Manifest| match &m.quantizer {
        Quantizer::Codes(s) => s.planes,
        _ => 0,
    };
    let checks = [
        ("dimension", old.dim.to_string(), new.dim.to_string()),
        ("metric", old.metric.to_string(), new.metric.to_string()),
        ("element type", old.element.to_string(), new.element.to_string()),
        ("binary collection code", format!("{}/{}", old.code, planes(old)), format!("{}/{}", new.code, planes(new))),
        (
            "shard",
            format!("{} of {}", old.build.shard, old.build.shard_count),
            format!("{} of {}", new.build.shard, new.build.shard_count),
        ),
    ];
    for (what, a, b) in checks {
        if a != b {
            return Some(format!("its {what} is {b}, the served index's is {a}"));
        }
    }
    if codec(old) != codec(new) {
        return Some("its codec differs from the served one (clients encode queries with it)".into());
    }
    None
}

/// Opens `dir` and starts its search workers.
pub fn open_ready(dir: &Path, cfg: &crate::shard::config::Config, metrics: &Arc<Metrics>) -> anyhow::Result<Ready> {
    let started = std::time::Instant::now();
    let index = Index::open(
        dir,
        OpenOptions {
            backend: cfg.backend,
            direct_io: cfg.direct_io,
            resident_codes: cfg.resident_codes,
            memory_budget: cfg.memory_budget()?,
        },
    )
    .with_context(|| format!("opening index {}", dir.display()))?;
    let pool = Pool::start(index.clone(), cfg.workers, cfg.queue_depth, metrics.clone())?;
    let m = index.manifest();
    tracing::info!(
        version = %index.version(),
        vectors = m.vector_count,
        dim = m.dim,
        metric = %m.metric,
        backend = index.backend_name(),
        direct_io = index.direct_io(),
        resident_bytes = index.resident_bytes(),
        seconds = started.elapsed().as_secs_f64(),
        "index ready"
    );
    Ok(Ready { index, pool })
}

/// The index being served, and the one it replaced at the last swap: still
/// open (its memory and workers kept) for requests that name its
/// collection, so that a router rolling a new build across shards answers
/// from one build throughout. Dropped at the next swap.
#[derive(Default)]
pub struct Served(RwLock<Versions>);

#[derive(Default)]
struct Versions {
    current: Option<Arc<Ready>>,
    previous: Option<Arc<Ready>>,
}

impl Served {
    pub fn get(&self) -> Option<Arc<Ready>> {
        self.0.read().current.clone()
    }

    /// The index of `collection` (current or previous), if held.
    pub fn of_collection(&self, collection: &str) -> Option<Arc<Ready>> {
        let v = self.0.read();
        let found =
            [&v.current, &v.previous].into_iter().flatten().find(|r| r.index.manifest().collection_id == collection);
        found.cloned()
    }

    pub fn previous(&self) -> Option<Arc<Ready>> {
        self.0.read().previous.clone()
    }

    /// Serves `r`; the index it replaces becomes the previous one.
    pub fn set(&self, r: Ready, metrics: &Metrics) {
        metrics.show_index(&r.index);
        let mut v = self.0.write();
        v.previous = v.current.take();
        v.current = Some(Arc::new(r));
    }
}

/// Moves to the version `source` names now, unless it is the one served.
/// Blocking: opens the new index on this thread.
pub fn swap(source: &IndexSource, served: &Served, cfg: &crate::shard::config::Config, metrics: &Arc<Metrics>) {
    let Some(old) = served.get() else {
        tracing::warn!("swap requested while the first index is still loading; ignored");
        return;
    };
    let dir = match source.current() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("index swap failed: {e:#}");
            metrics.count_swap("failed");
            return;
        }
    };
    if dir == old.index.dir() {
        tracing::info!(version = %old.index.version(), "index swap: already serving this version");
        return;
    }
    tracing::info!(from = %old.index.version(), to = %dir.display(), "index swap: opening the new version");
    let ready = match open_ready(&dir, cfg, metrics) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("index swap failed, still serving {}: {e:#}", old.index.version());
            metrics.count_swap("failed");
            return;
        }
    };
    if let Some(why) = incompatibility(old.index.manifest(), ready.index.manifest()) {
        tracing::error!(
            "index swap refused, still serving {}: {} cannot replace it: {why}",
            old.index.version(),
            ready.index.version()
        );
        metrics.count_swap("refused");
        return;
    }
    if cfg.swap_verify == crate::shard::config::SwapVerify::Full {
        let t = std::time::Instant::now();
        if let Err(e) = ready.index.verify() {
            tracing::error!("index swap refused, still serving {}: swap_verify = full: {e}", old.index.version());
            metrics.count_swap("refused");
            return;
        }
        tracing::info!(seconds = t.elapsed().as_secs_f64(), "index swap: every page of the new version verified");
    }
    let version = ready.index.version();
    served.set(ready, metrics);
    metrics.count_swap("ok");
    tracing::info!(
        version = %version,
        previous = %old.index.version(),
        "index swapped; the previous version answers requests naming its collection until the next swap"
    );
}
