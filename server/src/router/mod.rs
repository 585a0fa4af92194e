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

use crate::serve::Bound;
use crate::validate::Limits;
use anyhow::Context;
use cluster::{Cluster, ClusterOptions};
use config::RouterConfig;
use fanout::Policy;
use fathom_proto::v1::fathom_server::FathomServer;
use metrics::RouterMetrics;
use service::RouterService;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

/// Routes until `shutdown` resolves; `on_bound` learns the bound addresses.
pub async fn route(
    cfg: RouterConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    let cluster = Arc::new(Cluster::new(
        &cfg.shards,
        ClusterOptions {
            connect_timeout: cfg.connect_timeout,
            check_timeout: cfg.health_interval.min(cfg.connect_timeout),
        },
    ));
    let metrics = Arc::new(RouterMetrics::new(cluster.clone()));
    let listener = TcpListener::bind(cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
    let grpc = listener.local_addr()?;
    let metrics_addr = match cfg.metrics_listen {
        Some(a) => {
            let l = TcpListener::bind(a).await.with_context(|| format!("binding metrics {a}"))?;
            let bound = l.local_addr()?;
            tokio::spawn(crate::http::serve(l, metrics.clone()));
            Some(bound)
        }
        None => None,
    };
    on_bound(Bound { grpc, metrics: metrics_addr });
    tracing::info!(%grpc, metrics = ?metrics_addr, shards = cluster.shards.len(), policy = ?cfg.policy, "routing");

    let (reporter, health) = tonic_health::server::health_reporter();
    let draining = Arc::new(AtomicBool::new(false));
    set_health(&reporter, ServingStatus::NotServing).await;

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
                    set_health(&reporter, if serving { ServingStatus::Serving } else { ServingStatus::NotServing })
                        .await;
                    metrics.ready.set(i64::from(serving));
                    was = Some(serving);
                }
                tokio::time::sleep(interval).await;
            }
        });
    }

    let svc = RouterService {
        cluster,
        policy: cfg.policy,
        limits: Limits { max_k: cfg.max_k, max_batch: cfg.max_batch },
        shard_timeout: cfg.shard_timeout,
        metrics: metrics.clone(),
        draining: draining.clone(),
    };
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fathom_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fathom_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    {
        let (reporter, draining, metrics) = (reporter.clone(), draining.clone(), metrics.clone());
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown requested: draining");
            draining.store(true, Ordering::Relaxed);
            metrics.ready.set(0);
            set_health(&reporter, ServingStatus::NotServing).await;
            let _ = stop_tx.send(());
            let _ = stopped_tx.send(());
        });
    }
    let server = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            FathomServer::new(svc)
                .max_decoding_message_size(cfg.max_message_bytes)
                .max_encoding_message_size(cfg.max_message_bytes),
        )
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async {
            let _ = stop_rx.await;
        });
    let drain = cfg.drain_timeout;
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r.context("gRPC server")?,
        _ = async {
            if stopped_rx.await.is_ok() {
                tokio::time::sleep(drain).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => tracing::warn!("drain timeout of {drain:?} passed; closing remaining connections"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Health of the whole server ("") and of the Fathom service, together.
async fn set_health(reporter: &tonic_health::server::HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status("fathom.v1.Fathom", status).await;
}
