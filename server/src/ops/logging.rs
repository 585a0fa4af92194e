//! Logs go to stderr (stdout carries data: bench rows, search results), as
//! plain lines for a person or JSON lines for a collector.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether logs are JSON lines (`--log-json`, `FATHOM_LOG_JSON`).
static LOG_JSON: AtomicBool = AtomicBool::new(false);

/// Whether `FATHOM_LOG_JSON` asks for JSON lines.
pub fn json_from_env() -> bool {
    std::env::var("FATHOM_LOG_JSON").is_ok_and(|v| v == "true" || v == "1")
}

/// Installs the subscriber: `FATHOM_LOG` filters (default `default_level`);
/// colour only for a person at a terminal, since escapes in files and log
/// collectors are noise.
pub fn init(json: bool, default_level: &str) {
    LOG_JSON.store(json, Ordering::Relaxed);
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FATHOM_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

/// The line a server prints once it listens (tests and scripts wait for
/// it): `fathom serving on ADDR (metrics ADDR|off)`, or with JSON logs a
/// JSON object, so that stderr is JSON throughout.
pub fn announce(what: &str, grpc: std::net::SocketAddr, metrics: Option<std::net::SocketAddr>) {
    let metrics = metrics.map(|m| m.to_string());
    if LOG_JSON.load(Ordering::Relaxed) {
        let line =
            serde_json::json!({ "message": format!("fathom {what}"), "grpc": grpc.to_string(), "metrics": metrics });
        eprintln!("{line}");
    } else {
        eprintln!("fathom {what} on {} (metrics {})", grpc, metrics.as_deref().unwrap_or("off"));
    }
}

/// Logs the configuration a process runs with (`config`: its keys, named
/// as in the file). With JSON logs it is a nested object, which tracing's
/// JSON layer would write as a string; otherwise one plain line.
pub fn effective_config(role: &str, config: &impl serde::Serialize) {
    let value = serde_json::to_value(config).unwrap_or_default();
    if LOG_JSON.load(Ordering::Relaxed) {
        let line = serde_json::json!({
            "level": "INFO",
            "fields": { "message": "effective configuration", "config": value },
            "target": format!("fathom::{role}"),
        });
        eprintln!("{line}");
    } else {
        tracing::info!(config = %value, "effective configuration");
    }
}
