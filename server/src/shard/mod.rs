//! One shard's server: its configuration, the gRPC service, the search
//! workers, the served index and its swaps, and `fathom serve`'s run loop.
//! Sits on `net` and `ops`.

pub mod config;
pub mod serve;
pub mod service;
pub mod swap;
pub mod workers;
