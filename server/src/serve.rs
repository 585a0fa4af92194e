//! `serve()`: binds the listeners, opens the index in the background (health
//! says NOT_SERVING until then), serves gRPC with health and reflection, and
//! on SIGTERM/SIGINT (or the given shutdown future) stops taking work,
//! drains in-flight requests within the drain timeout and returns.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::service::{FathomService, Ready};
use crate::validate::Limits;
use crate::workers::Pool;
use anyhow::Context;
use fathom_index::{Index, OpenOptions};
use fathom_proto::v1::fathom_server::FathomServer;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

/// Addresses actually bound (port 0 resolved).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub grpc: SocketAddr,
    pub metrics: Option<SocketAddr>,
}

/// Serves until `shutdown` resolves; `on_bound` learns the bound addresses.
pub async fn serve(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
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
    tracing::info!(%grpc, metrics = ?metrics_addr, "listening");

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_not_serving::<FathomServer<FathomService>>().await;
    let ready: Arc<OnceLock<Ready>> = Arc::new(OnceLock::new());
    let draining = Arc::new(AtomicBool::new(false));

    // Open the index off the runtime; health flips to SERVING when done. A
    // failure ends `serve` with the error (an orchestrator restarts us; a
    // server that can never answer should not look alive).
    let (fail_tx, fail_rx) = tokio::sync::oneshot::channel::<anyhow::Error>();
    {
        let (cfg, ready, metrics, reporter) = (cfg.clone(), ready.clone(), metrics.clone(), reporter.clone());
        tokio::spawn(async move {
            let loader_metrics = metrics.clone();
            let opened = tokio::task::spawn_blocking(move || -> anyhow::Result<Ready> {
                let metrics = loader_metrics;
                let started = std::time::Instant::now();
                let index = Index::open(&cfg.index, OpenOptions { backend: cfg.backend, direct_io: cfg.direct_io })
                    .with_context(|| format!("opening index {}", cfg.index.display()))?;
                let pool = Pool::start(index.clone(), cfg.workers, cfg.queue_depth, metrics.clone())?;
                let m = &index.manifest;
                metrics.index_vectors.set(m.vector_count as i64);
                let _ = metrics.index.set(index.clone());
                metrics.index_resident_bytes.set(index.resident_bytes() as i64);
                metrics.index_disk_bytes.set(m.files.values().map(|f| f.bytes).sum::<u64>() as i64);
                tracing::info!(
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
            })
            .await;
            match opened {
                Ok(Ok(r)) => {
                    let _ = ready.set(r);
                    metrics.ready.set(1);
                    reporter.set_serving::<FathomServer<FathomService>>().await;
                }
                Ok(Err(e)) => {
                    let _ = fail_tx.send(e);
                }
                Err(e) => {
                    let _ = fail_tx.send(anyhow::anyhow!("index loader panicked: {e}"));
                }
            }
        });
    }

    let svc = FathomService {
        ready,
        draining: draining.clone(),
        metrics: metrics.clone(),
        limits: Limits { max_k: cfg.max_k, max_batch: cfg.max_batch },
        defaults: cfg.search,
    };
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fathom_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fathom_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    // Shutdown: stop taking work, report NOT_SERVING, let tonic drain.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    {
        let (reporter, draining, metrics) = (reporter.clone(), draining.clone(), metrics.clone());
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown requested: draining");
            draining.store(true, Ordering::Relaxed);
            metrics.ready.set(0);
            reporter.set_not_serving::<FathomServer<FathomService>>().await;
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
        // TCP_NODELAY: without it Nagle holds back small HTTP/2 frames until
        // the peer's delayed ACK, ~40 ms stalls under concurrency.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async {
            let _ = stop_rx.await;
        });
    let drain = cfg.drain_timeout;
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r.context("gRPC server")?,
        Ok(e) = fail_rx => return Err(e),
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

/// Resolves on SIGTERM or SIGINT.
pub async fn signals() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
