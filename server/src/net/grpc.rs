//! What `fathom serve` and `fathom route` share: the gRPC server with
//! health and reflection, TCP_NODELAY and message limits, and the shutdown
//! sequence (NOT_SERVING, stop accepting, let requests in flight finish
//! within the drain timeout).

use anyhow::Context;
use fathom_proto::v1::fathom_server::{Fathom, FathomServer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic_health::server::{HealthReporter, HealthService};
use tonic_health::ServingStatus;

/// Binds the gRPC listener and, when asked, the HTTP endpoint showing
/// `exposition` (/metrics, /livez, /readyz).
pub async fn bind<E: crate::net::http::Exposition>(
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    exposition: Arc<E>,
    tls: &crate::net::tls::TlsFiles,
) -> anyhow::Result<(TcpListener, Bound)> {
    let metrics_tls = match tls.metrics {
        true => {
            let t = crate::net::tls::ReloadableTls::load(tls, crate::net::tls::HTTP1)?;
            anyhow::ensure!(t.is_some(), "metrics_tls needs tls_cert and tls_key");
            t
        }
        false => None,
    };
    let listener = TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let grpc = listener.local_addr()?;
    let metrics = match metrics_listen {
        Some(a) => {
            let l = TcpListener::bind(a).await.with_context(|| format!("binding metrics {a}"))?;
            let bound = l.local_addr()?;
            if let Some(t) = &metrics_tls {
                tokio::spawn(crate::ops::reload::watch(t.clone(), "metrics TLS files"));
            }
            tokio::spawn(crate::net::http::serve(l, exposition, metrics_tls));
            Some(bound)
        }
        None => None,
    };
    Ok((listener, Bound { grpc, metrics }))
}

/// The service names whose health is reported: the whole server ("") and
/// the Fathom service, always together.
pub async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status("fathom.v1.Fathom", status).await;
}

/// Connection limits and HTTP/2 settings of a listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connections: crate::net::listener::ConnectionLimits,
    /// Concurrent requests (HTTP/2 streams) per connection.
    pub max_streams_per_connection: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: crate::net::listener::ConnectionLimits {
                max_connections: 1024,
                handshake_timeout: Duration::from_secs(5),
                protocol: crate::net::listener::Protocol::Http2,
            },
            max_streams_per_connection: 128,
        }
    }
}

/// How a server serves.
pub struct Options {
    pub max_message_bytes: usize,
    pub limits: Limits,
    /// Counts the errors tonic makes before a handler runs.
    pub observe: crate::net::wire_errors::Observe,
    /// Serve reflection (off when API keys guard the service).
    pub reflection: bool,
    /// TLS on the gRPC port, when configured (reloaded on SIGHUP and on change).
    pub tls: Option<std::sync::Arc<crate::net::tls::ReloadableTls>>,
    /// API keys, when configured (checked on headers; reloaded likewise).
    pub auth: Option<std::sync::Arc<crate::net::auth::KeyStore>>,
    /// Request body bytes received and not yet decoded, across requests.
    pub decode_budget_bytes: usize,
}

/// Addresses actually bound (port 0 resolved).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub grpc: SocketAddr,
    pub metrics: Option<SocketAddr>,
}

/// How a server stops.
pub struct Stopping<S, B, F> {
    /// Resolves when the process is asked to stop (SIGTERM, SIGINT, a test).
    pub shutdown: S,
    /// Runs when it is: stop taking work, say not ready.
    pub on_shutdown: B,
    /// Resolves with an error that ends the server (an index that cannot open).
    pub fatal: F,
    /// How long requests in flight may finish.
    pub drain: Duration,
    /// Whether requests are still in flight: while they are, the server
    /// keeps accepting connections and answers them NOT_SERVING (health) or
    /// UNAVAILABLE, instead of resetting them.
    pub busy: Box<dyn Fn() -> bool + Send + Sync>,
}

/// Serves `svc` with health (from `reporter`) and reflection on `listener`
/// until stopped.
pub async fn run<T, S, B, F>(
    listener: TcpListener,
    svc: T,
    opts: Options,
    reporter: HealthReporter,
    stopping: Stopping<S, B, F>,
) -> anyhow::Result<()>
where
    T: Fathom,
    S: Future<Output = ()> + Send + 'static,
    B: FnOnce() + Send + 'static,
    F: Future<Output = anyhow::Error>,
{
    let Stopping { shutdown, on_shutdown, fatal, drain, busy } = stopping;
    let Options { max_message_bytes, limits, observe, reflection, tls, auth, decode_budget_bytes } = opts;
    let health =
        tonic_health::pb::health_server::HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fathom_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fathom_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    // Descriptors beyond connections: index files, rings, metrics, stdio.
    let connections = crate::net::listener::ConnectionLimits {
        max_connections: crate::net::listener::fit_to_fd_limit(limits.connections.max_connections, 48),
        ..limits.connections
    };
    let (incoming, idle) = crate::net::listener::incoming(listener, connections, tls.clone());

    // Shutdown: stop taking work, report NOT_SERVING, wait for the
    // requests in flight (new connections meanwhile are answered, not
    // reset), then let tonic close the connections. The drain timeout
    // bounds the whole.
    let gate = crate::net::gate::GateLayer::new(auth.clone(), decode_budget_bytes, observe.clone());
    // Busy while a handler runs or its answer is still being written.
    let answers = gate.open_answers();
    let busy = move || busy() || answers.load(std::sync::atomic::Ordering::Relaxed) > 0;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested: draining");
        on_shutdown();
        set_health(&reporter, ServingStatus::NotServing).await;
        let _ = stopped_tx.send(());
        while busy() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop_tx.send(());
        idle.close_all();
    });
    if let Some(tls) = &tls {
        tokio::spawn(crate::ops::reload::watch(tls.clone(), "TLS files"));
    }
    if let Some(keys) = &auth {
        tokio::spawn(crate::ops::reload::watch(keys.clone(), "api_keys_file"));
    }
    let server = tonic::transport::Server::builder()
        .max_concurrent_streams(limits.max_streams_per_connection)
        // Find peers that vanished without closing.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(crate::net::wire_errors::WireErrorsLayer(observe.clone()))
        .layer(gate)
        .add_service(health)
        // Reflection describes the API to anyone: off when keys guard it.
        .add_optional_service(reflection.then_some(reflection_v1))
        .add_optional_service(reflection.then_some(reflection_v1alpha))
        .add_service(
            FathomServer::new(svc)
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        )
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        });
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r.context("gRPC server")?,
        e = fatal => return Err(e),
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
