//! The `fathom` binary's library: the CLI's subcommands, the gRPC service
//! and its workers, the router, config and metrics. The binary (`main.rs`)
//! only parses arguments and reports errors; tests and the fuzz targets use
//! the service from here, in process.

#![forbid(unsafe_code)]
// Input never panics the process: errors are returned (tests may unwrap).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod auth;
pub mod cli;
pub mod config;
pub mod gate;
pub mod grpc;
pub mod http;
pub mod layers;
pub mod listener;
pub mod logging;
pub mod malloc_env;
pub mod metrics;
pub mod progress;
pub mod reload;
pub mod router;
pub mod serve;
pub mod service;
pub mod status;
pub mod swap;
pub mod sysinfo;
pub mod tls;
pub mod validate;
pub mod wire_errors;
pub mod workers;
pub mod x509_time;
