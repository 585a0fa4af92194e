//! `serve()`: binds the listeners, opens the index in the background (health
//! says NOT_SERVING until then), serves gRPC with health and reflection,
//! swaps to a new index version on SIGHUP (see `swap`), and on
//! SIGTERM/SIGINT (or the given shutdown future) stops taking work, drains
//! in-flight requests within the drain timeout and returns.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::service::FathomService;
use crate::swap::{IndexSource, Served};
use crate::validate::Limits;
use anyhow::Context;
use fathom_proto::v1::fathom_server::FathomServer;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    let served = Arc::new(Served::default());
    let draining = Arc::new(AtomicBool::new(false));

    // Open the index off the runtime; health flips to SERVING when done. A
    // failure ends `serve` with the error (an orchestrator restarts us; a
    // server that can never answer should not look alive).
    let (fail_tx, fail_rx) = tokio::sync::oneshot::channel::<anyhow::Error>();
    {
        let (cfg, served, metrics, reporter) = (cfg.clone(), served.clone(), metrics.clone(), reporter.clone());
        tokio::spawn(async move {
            let (loader_served, loader_metrics) = (served.clone(), metrics.clone());
            let loader_cfg = cfg.clone();
            let opened = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let dir = loader_cfg.index.current()?;
                let ready = crate::swap::open_ready(&dir, &loader_cfg, &loader_metrics)?;
                loader_served.set(ready, &loader_metrics);
                Ok(())
            })
            .await;
            match opened {
                Ok(Ok(())) => {
                    metrics.ready.set(1);
                    reporter.set_serving::<FathomServer<FathomService>>().await;
                    swaps(cfg, served, metrics).await;
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
        served,
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

/// Swaps index versions on SIGHUP and, when `index_watch_ms` is set, when
/// `CURRENT` changes. Runs for the life of the server.
async fn swaps(cfg: Config, served: Arc<Served>, metrics: Arc<Metrics>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: index swaps are off");
        return;
    };
    let watch = cfg.index_watch;
    loop {
        tokio::select! {
            _ = hup.recv() => tracing::info!("SIGHUP: checking the index version"),
            _ = async {
                match watch {
                    Some(every) => tokio::time::sleep(every).await,
                    None => std::future::pending::<()>().await,
                }
            } => {
                let current = served.get().map(|r| r.index.dir.clone());
                if cfg.index.current().ok() == current {
                    continue;
                }
            }
        }
        if matches!(cfg.index, IndexSource::Dir(_)) {
            tracing::warn!("serving one --index directory: nothing to swap (use --index-root)");
            continue;
        }
        let (cfg, served, metrics) = (cfg.clone(), served.clone(), metrics.clone());
        let _ = tokio::task::spawn_blocking(move || crate::swap::swap(&cfg.index, &served, &cfg, &metrics)).await;
    }
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
