//! `serve()`: binds the listeners, opens the index in the background (health
//! says NOT_SERVING until then), serves gRPC with health and reflection,
//! swaps to a new index version on SIGHUP (see `swap`), and on
//! SIGTERM/SIGINT (or the given shutdown future) stops taking work, drains
//! in-flight requests within the drain timeout and returns.

use crate::net::grpc;
use crate::net::grpc::Bound;
use crate::ops::metrics::Metrics;
use crate::shard::config::Config;
use crate::shard::config::IndexSource;
use crate::shard::service::FathomService;
use crate::shard::swap::Served;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// Serves until `shutdown` resolves; `on_bound` learns the bound addresses.
pub async fn serve(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    // Configuration errors first, before anything listens.
    let auth = crate::net::auth::KeyStore::load_optional(cfg.front.api_keys_file.as_deref())?;
    let tls = crate::net::tls::ReloadableTls::load(&cfg.front.tls(), crate::net::tls::H2)?;
    let metrics = Arc::new(Metrics::default());
    let (listener, bound) =
        grpc::bind(cfg.listen_addr()?, cfg.metrics_addr()?, metrics.clone(), &cfg.front.tls()).await?;
    on_bound(bound);
    tracing::info!(grpc = %bound.grpc, metrics = %bound.metrics.map_or("off".into(), |m| m.to_string()), "listening");

    let reporter = HealthReporter::new();
    grpc::set_health(&reporter, ServingStatus::NotServing).await;
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
                // A test hook: hold the load so that tests see the server
                // listening and NOT_SERVING meanwhile.
                if let Some(ms) = std::env::var("FATHOM_TEST_LOAD_DELAY_MS").ok().and_then(|v| v.parse().ok()) {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                let dir = loader_cfg.index_source().current()?;
                let ready = crate::shard::swap::open_ready(&dir, &loader_cfg, &loader_metrics)?;
                loader_served.set(ready, &loader_metrics);
                Ok(())
            })
            .await;
            match opened {
                Ok(Ok(())) => {
                    metrics.ready.set(1);
                    grpc::set_health(&reporter, ServingStatus::Serving).await;
                    crate::ops::logging::announce("serving", bound.grpc, bound.metrics);
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

    let reflection = auth.is_none();
    let svc = FathomService {
        served,
        draining: draining.clone(),
        metrics: metrics.clone(),
        limits: cfg.front.request_limits("server"),
        defaults: cfg.search,
    };
    let metrics_for_wire = metrics.clone();
    let metrics_for_drain = metrics.clone();
    let stopping = grpc::Stopping {
        shutdown,
        on_shutdown: move || {
            draining.store(true, Ordering::Relaxed);
            metrics.ready.set(0);
        },
        // An index that cannot open ends the server; without one, never.
        fatal: async move {
            match fail_rx.await {
                Ok(e) => e,
                Err(_) => std::future::pending().await,
            }
        },
        drain: cfg.front.drain_timeout(),
        busy: Box::new(move || metrics_for_drain.in_flight.get() > 0),
    };
    let limits = cfg.front.connection_limits();
    let observe: crate::net::wire_errors::Observe = Arc::new(move |method, code, took| {
        metrics_for_wire.observe_request(crate::ops::metrics::known_method(method), code, took);
    });
    let opts = grpc::Options {
        max_message_bytes: cfg.front.max_message_bytes,
        limits,
        observe,
        reflection,
        tls,
        auth,
        decode_budget_bytes: cfg.front.decode_budget(),
    };
    grpc::run(listener, svc, opts, reporter, stopping).await
}

/// Swaps index versions on SIGHUP and, when `index_watch_ms` is set, when
/// `CURRENT` changes. Runs for the life of the server.
async fn swaps(cfg: Config, served: Arc<Served>, metrics: Arc<Metrics>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: index swaps are off");
        return;
    };
    let watch = cfg.index_watch();
    loop {
        tokio::select! {
            _ = hup.recv() => tracing::info!("SIGHUP: checking the index version"),
            _ = async {
                match watch {
                    Some(every) => tokio::time::sleep(every).await,
                    None => std::future::pending::<()>().await,
                }
            } => {
                let current = served.get().map(|r| r.index.dir().to_path_buf());
                // Off the runtime: CURRENT is a file on a volume.
                let source = cfg.index_source();
                let now = tokio::task::spawn_blocking(move || source.current().ok()).await.ok().flatten();
                if now == current {
                    continue;
                }
            }
        }
        if matches!(cfg.index_source(), IndexSource::Dir(_)) {
            tracing::warn!("serving one --index directory: nothing to swap (use --index-root)");
            continue;
        }
        let (cfg, served, metrics) = (cfg.clone(), served.clone(), metrics.clone());
        let _ =
            tokio::task::spawn_blocking(move || crate::shard::swap::swap(&cfg.index_source(), &served, &cfg, &metrics))
                .await;
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
