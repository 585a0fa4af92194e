//! The `fathom` binary: one subcommand per job, each a thin layer over the
//! libraries.

#![forbid(unsafe_code)]

mod auth;
mod cli;
mod config;
mod grpc;
mod http;
mod listener;
mod metrics;
mod progress;
mod router;
mod serve;
mod service;
mod status;
mod swap;
mod sysinfo;
mod tls;
mod validate;
mod wire_errors;
mod workers;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // A server says what it is doing (config, index, ready, shutdown); the
    // batch commands stay quiet unless asked.
    let default_level =
        if matches!(args.command, cli::Command::Serve(_) | cli::Command::Route(_)) { "info" } else { "warn" };
    init_logging(
        args.log_json || std::env::var("FATHOM_LOG_JSON").is_ok_and(|v| v == "true" || v == "1"),
        default_level,
    );
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether logs are JSON lines (`--log-json`, `FATHOM_LOG_JSON`).
static LOG_JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The line a server prints once it listens (tests and scripts wait for
/// it): `fathom serving on ADDR (metrics ADDR|off)`, or with JSON logs a
/// JSON object, so that stderr is JSON throughout.
pub(crate) fn announce(what: &str, b: serve::Bound) {
    let metrics = b.metrics.map(|m| m.to_string());
    if LOG_JSON.load(std::sync::atomic::Ordering::Relaxed) {
        let line =
            serde_json::json!({ "message": format!("fathom {what}"), "grpc": b.grpc.to_string(), "metrics": metrics });
        eprintln!("{line}");
    } else {
        eprintln!("fathom {what} on {} (metrics {})", b.grpc, metrics.as_deref().unwrap_or("off"));
    }
}

/// Logs go to stderr: stdout carries data (bench rows, search results).
fn init_logging(json: bool, default_level: &str) {
    LOG_JSON.store(json, std::sync::atomic::Ordering::Relaxed);
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FATHOM_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colour only for a person at a terminal: escapes in files and log
    // collectors are noise.
    use std::io::IsTerminal;
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
