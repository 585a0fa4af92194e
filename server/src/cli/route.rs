//! `fathom route`: the shard router (see `router`).

use crate::ops::layers::Layers;
use crate::router::config::{resolve, with_env};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// gRPC address (default 127.0.0.1:7800).
    #[arg(long)]
    listen: Option<String>,
    /// Shards and their replicas: `h0a:7700|h0b:7700,h1a:7700|h1b:7700`
    /// (`,` between shards in shard order, `|` between replicas; a name
    /// resolving to several addresses stands for all of them).
    #[arg(long)]
    shards: Option<String>,
    /// HTTP address for /metrics, /livez, /readyz.
    #[arg(long)]
    metrics_listen: Option<String>,
    /// A shard with no live replica: partial (answer from the others and
    /// say so; the default) or fail (UNAVAILABLE).
    #[arg(long)]
    policy: Option<String>,
    /// Longest wait for one shard's answer, in milliseconds.
    #[arg(long)]
    shard_timeout_ms: Option<i64>,
    /// Health checks and DNS re-resolution every this many milliseconds.
    #[arg(long)]
    health_interval_ms: Option<i64>,
    /// TOML config file (FATHOM_ROUTER_* variables and flags override it).
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let mut layers = Layers::default();
    if let Some(p) = &a.config {
        layers = layers.file(p)?;
    }
    let layers = with_env(layers)
        .set("listen", a.listen)
        .set("shards", a.shards)
        .set("metrics_listen", a.metrics_listen)
        .set("policy", a.policy)
        .set("shard_timeout_ms", a.shard_timeout_ms)
        .set("health_interval_ms", a.health_interval_ms);
    let cfg = resolve(layers)?;
    crate::ops::logging::effective_config("route", &cfg.keys);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(crate::router::route(cfg, crate::shard::serve::signals(), |b| {
        crate::ops::logging::announce("routing", b.grpc, b.metrics);
    }))
}
