//! The metrics and probe endpoint (/metrics, /livez, /readyz) on axum and
//! hyper, behind the same bounded accept loop as the gRPC port (and its
//! TLS). GET and HEAD are answered, query strings ignored; other paths are
//! 404 and other methods 405.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// What the endpoint shows: a server's or a router's metrics and readiness.
pub trait Exposition: Send + Sync + 'static {
    /// OpenMetrics text format.
    fn render(&self) -> String;
    fn ready(&self) -> bool;
}

impl Exposition for crate::ops::metrics::Metrics {
    fn render(&self) -> String {
        crate::ops::metrics::Metrics::render(self)
    }
    fn ready(&self) -> bool {
        self.ready.get() == 1
    }
}

/// Scrapers and probes at once; more wait in the backlog. Silent
/// connections are closed after a second, or sooner when slots run out
/// (the shared bounded accept loop): probes must not wait behind them.
const LIMITS: crate::net::listener::ConnectionLimits = crate::net::listener::ConnectionLimits {
    max_connections: 64,
    handshake_timeout: Duration::from_secs(1),
    protocol: crate::net::listener::Protocol::Http1,
};

/// A connection that has not finished its request head by then is closed.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// The routes, for any exposition.
pub fn router<M: Exposition>(metrics: Arc<M>) -> Router {
    Router::new()
        .route("/metrics", get(render::<M>))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(ready::<M>))
        .with_state(metrics)
}

async fn render<M: Exposition>(State(m): State<Arc<M>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, crate::ops::metrics::CONTENT_TYPE)], m.render())
}

async fn ready<M: Exposition>(State(m): State<Arc<M>>) -> (StatusCode, &'static str) {
    if m.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

pub async fn serve<M: Exposition>(
    listener: TcpListener,
    metrics: Arc<M>,
    tls: Option<Arc<crate::net::tls::ReloadableTls>>,
) {
    use tokio_stream::StreamExt;
    let limits = crate::net::listener::ConnectionLimits {
        max_connections: crate::net::listener::fit_to_fd_limit(LIMITS.max_connections, 48),
        ..LIMITS
    };
    let app = router(metrics);
    let (mut conns, _) = crate::net::listener::incoming(listener, limits, tls);
    while let Some(Ok(sock)) = conns.next().await {
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            if let Err(e) = http.serve_connection(TokioIo::new(sock), service).await {
                tracing::debug!("metrics connection ended: {e}");
            }
        });
    }
}
