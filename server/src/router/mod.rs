//! `fathom route`: a stateless router in front of shard servers. It speaks
//! the same gRPC API, fans every search out to one replica of each shard,
//! merges their top k, and tracks replica health. It holds no index.
//!
//! - `spec`: the shard list; `config`: layered configuration;
//! - `cluster`: replicas, health, the collection merged;
//! - `fanout`: parallel calls with deadlines and one retry, the merge;
//! - `service`: the gRPC handlers; `metrics`: per shard and replica.

pub mod cluster;
pub mod config;
pub mod fanout;
pub mod metrics;
pub mod service;
pub mod spec;

use crate::net::grpc::Bound;
use cluster::{Cluster, ClusterOptions};
use config::RouterConfig;
use fanout::Policy;
use metrics::RouterMetrics;
use service::RouterService;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tonic_health::ServingStatus;

/// Routes until `shutdown` resolves; `on_bound` learns the bound addresses.
pub async fn route(
    cfg: RouterConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    // Configuration errors first, before anything listens.
    let auth = crate::net::auth::KeyStore::load_optional(cfg.front.api_keys_file.as_deref())?;
    let tls = crate::net::tls::ReloadableTls::load(&cfg.front.tls(), crate::net::tls::H2)?;
    let cluster = Arc::new(Cluster::new(
        &cfg.shards,
        ClusterOptions {
            connect_timeout: cfg.connect_timeout,
            check_timeout: cfg.health_interval.min(cfg.connect_timeout),
            shard_tls_ca: match &cfg.shard_tls_ca {
                Some(p) => {
                    Some(std::fs::read(p).map_err(|e| anyhow::anyhow!("reading shard_tls_ca {}: {e}", p.display()))?)
                }
                None => None,
            },
            shard_key: std::env::var("FATHOM_API_KEY").ok().filter(|k| !k.is_empty()),
        },
    ));
    let metrics = Arc::new(RouterMetrics::new(cluster.clone()));
    let (listener, bound) =
        crate::net::grpc::bind(cfg.listen, cfg.metrics_listen, metrics.clone(), &cfg.front.tls()).await?;
    on_bound(bound);
    let metrics_addr = bound.metrics.map_or("off".into(), |m| m.to_string());
    tracing::info!(grpc = %bound.grpc, metrics = %metrics_addr, shards = cluster.shards.len(), policy = ?cfg.policy, "routing");

    let reporter = tonic_health::server::HealthReporter::new();
    let draining = Arc::new(AtomicBool::new(false));
    crate::net::grpc::set_health(&reporter, ServingStatus::NotServing).await;

    // Health checks and re-resolution; readiness follows the policy.
    {
        let (cluster, metrics, reporter, draining) =
            (cluster.clone(), metrics.clone(), reporter.clone(), draining.clone());
        let (interval, policy) = (cfg.health_interval, cfg.policy);
        tokio::spawn(async move {
            let mut was = None;
            loop {
                cluster.refresh().await;
                let live = cluster.live_shards();
                let total = cluster.shards.len();
                let serving = !draining.load(Ordering::Relaxed)
                    && match policy {
                        Policy::Fail => live == total,
                        Policy::Partial => live > 0,
                    };
                if was != Some(serving) {
                    if serving {
                        tracing::info!(live, total, "router serving");
                    } else {
                        for s in (0..total).filter(|&s| cluster.pick(s, &[]).is_none()) {
                            tracing::warn!(shard = s, "no live replica: {}", cluster.why_down(s));
                        }
                        tracing::warn!(live, total, ?policy, "router not serving");
                    }
                    crate::net::grpc::set_health(
                        &reporter,
                        if serving { ServingStatus::Serving } else { ServingStatus::NotServing },
                    )
                    .await;
                    metrics.ready.set(i64::from(serving));
                    was = Some(serving);
                }
                tokio::time::sleep(interval).await;
            }
        });
    }

    let reflection = auth.is_none();
    let svc = RouterService {
        cluster,
        policy: cfg.policy,
        limits: cfg.front.request_limits("router"),
        shard_timeout: cfg.shard_timeout,
        metrics: metrics.clone(),
        draining: draining.clone(),
    };
    let metrics_for_wire = metrics.clone();
    let metrics_for_drain = metrics.clone();
    let stopping = crate::net::grpc::Stopping {
        shutdown,
        on_shutdown: move || {
            draining.store(true, Ordering::Relaxed);
            metrics.ready.set(0);
        },
        fatal: std::future::pending(),
        drain: cfg.front.drain_timeout(),
        busy: Box::new(move || metrics_for_drain.in_flight.get() > 0),
    };
    let observe: crate::net::wire_errors::Observe = Arc::new(move |method, code, took| {
        metrics_for_wire.observe_request(crate::ops::metrics::known_method(method), code, took);
    });
    let opts = crate::net::grpc::Options {
        max_message_bytes: cfg.front.max_message_bytes,
        limits: cfg.front.connection_limits(),
        observe,
        reflection,
        tls,
        auth,
        decode_budget_bytes: cfg.front.decode_budget(),
    };
    crate::net::grpc::run(listener, svc, opts, reporter, stopping).await
}
