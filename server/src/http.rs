//! A minimal HTTP/1.1 responder for /metrics, /livez and /readyz. Probes and
//! scrapers send one GET per connection; anything else gets 404/405.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the endpoint shows: a server's or a router's metrics and readiness.
pub trait Exposition: Send + Sync + 'static {
    /// Prometheus text format.
    fn render(&self) -> String;
    fn ready(&self) -> bool;
}

impl Exposition for crate::metrics::Metrics {
    fn render(&self) -> String {
        crate::metrics::Metrics::render(self)
    }
    fn ready(&self) -> bool {
        self.ready.get() == 1
    }
}

/// Scrapers and probes at once; more wait in the backlog. Silent
/// connections are closed after a second, or sooner when slots run out
/// (the shared bounded accept loop): probes must not wait behind them.
const LIMITS: crate::listener::ConnectionLimits =
    crate::listener::ConnectionLimits { max_connections: 64, handshake_timeout: std::time::Duration::from_secs(1) };

pub async fn serve<M: Exposition>(listener: TcpListener, metrics: Arc<M>, tls: Option<Arc<crate::tls::ReloadableTls>>) {
    use tokio_stream::StreamExt;
    let limits = crate::listener::ConnectionLimits {
        max_connections: crate::listener::fit_to_fd_limit(LIMITS.max_connections, 48),
        ..LIMITS
    };
    let mut conns = crate::listener::incoming(listener, limits, tls);
    while let Some(Ok(mut sock)) = conns.next().await {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut got = 0;
            // Read the request head (bounded), then answer and close.
            while got < buf.len() {
                match tokio::time::timeout(std::time::Duration::from_secs(2), sock.read(&mut buf[got..])).await {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => got += n,
                }
                if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..got]);
            let mut parts = head.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (status, ctype, body) = match (method, path) {
                ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
                ("GET", "/livez") => ("200 OK", "text/plain", "ok\n".to_string()),
                ("GET", "/readyz") if metrics.ready() => ("200 OK", "text/plain", "ready\n".to_string()),
                ("GET", "/readyz") => ("503 Service Unavailable", "text/plain", "not ready\n".to_string()),
                ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
                _ => ("405 Method Not Allowed", "text/plain", "method not allowed\n".to_string()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
