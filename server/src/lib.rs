//! The `fathom` binary's library: the CLI's subcommands, the gRPC service
//! and its workers, the router, config and metrics. The binary (`main.rs`)
//! only parses arguments and reports errors; tests and the fuzz targets use
//! the service from here, in process.

#![forbid(unsafe_code)]
// Input never panics the process: errors are returned (tests may unwrap).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cli;
pub mod net;
pub mod ops;
pub mod router;
pub mod shard;
