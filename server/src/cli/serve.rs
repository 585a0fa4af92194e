//! `fathom serve`: the gRPC server over one index directory.

use crate::shard::config::Config;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Index directory to serve.
    #[arg(long)]
    index: Option<PathBuf>,
    /// Or: a directory of index versions whose file CURRENT names the one
    /// to serve; SIGHUP swaps to the version CURRENT names then.
    #[arg(long)]
    index_root: Option<PathBuf>,
    /// With --index-root: also check CURRENT every this many milliseconds.
    #[arg(long)]
    index_watch_ms: Option<u64>,
    /// gRPC address (default 127.0.0.1:7700).
    #[arg(long)]
    listen: Option<String>,
    /// HTTP address for /metrics, /livez, /readyz.
    #[arg(long)]
    metrics_listen: Option<String>,
    /// TOML config file (flags and FATHOM_* variables override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Search worker threads (default: two per core, at most 64).
    #[arg(long)]
    workers: Option<usize>,
    /// Queued requests before RESOURCE_EXHAUSTED.
    #[arg(long)]
    queue_depth: Option<usize>,
    /// I/O backend: auto, uring, pread.
    #[arg(long)]
    backend: Option<String>,
    /// API keys file: one key per line (`#` comments, optional scope).
    #[arg(long)]
    api_keys_file: Option<PathBuf>,
    /// TLS certificate chain (PEM) for the gRPC port.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: CA (PEM) that client certificates must chain to.
    #[arg(long)]
    tls_client_ca: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let path = |p: Option<PathBuf>| p.map(|p| p.to_string_lossy().into_owned());
    let cfg = Config::load(a.config.as_deref(), |l| {
        l.set("index", path(a.index.clone()))
            .set("index_root", path(a.index_root.clone()))
            .set("index_watch_ms", a.index_watch_ms.map(|v| v as i64))
            .set("listen", a.listen)
            .set("metrics_listen", a.metrics_listen)
            .set("workers", a.workers.map(|v| v as i64))
            .set("queue_depth", a.queue_depth.map(|v| v as i64))
            .set("backend", a.backend)
            .set("api_keys_file", path(a.api_keys_file))
            .set("tls_cert", path(a.tls_cert))
            .set("tls_key", path(a.tls_key))
            .set("tls_client_ca", path(a.tls_client_ca))
    })?;
    // Paths from flags as given: the config layers carry text, and a path
    // need not be UTF-8.
    let mut cfg = cfg;
    if let Some(p) = a.index {
        cfg.index = Some(p);
    }
    if let Some(p) = a.index_root {
        cfg.index_root = Some(p);
    }
    crate::ops::logging::effective_config("serve", &cfg);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let r = rt.block_on(crate::shard::serve::serve(cfg, crate::shard::serve::signals(), |b| {
        // Listening, index not yet open: `fathom serving on` follows once
        // it is (scripts wait for that line).
        crate::ops::logging::announce("listening", b.grpc, b.metrics);
    }));
    // An index still loading (SIGTERM during the load) must not hold the
    // process: dropping the runtime would wait for the loader thread.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    r
}
