//! Fathom's engine: a SPANN-style disk-resident vector index.
//!
//! - [`build::build`] turns a vector file into an index directory: balanced
//!   hierarchical clustering into posting lists, closure assignment with
//!   replicas, SQ8 codes in page-packed postings, full vectors for rerank.
//! - [`centroids`] holds the posting centroids in memory and finds a
//!   vector's nearest (groups, graph, calibration, file); the builder and
//!   the searcher both sit on it.
//! - [`search::Index`] opens a directory (only centroids and the posting
//!   directory stay in memory); a [`search::Searcher`] per thread answers
//!   queries with one batch of posting reads and one batch of rerank reads.
//! - [`io`] holds the page readers (io_uring, pread) and all I/O `unsafe`;
//!   [`distance`] the SIMD kernels with scalar twins.
//! - [`input`] reads fbin/u8bin/i8bin, fvecs/bvecs, npy and ibin/ivecs;
//!   [`gt`] computes exact ground truth; [`synth`] generates test data.
//! - [`format`] is the on-disk layout (see `index/FORMAT.md`).
//!
//! No async runtime here: the service wraps this crate in its own threads.

#![deny(unsafe_op_in_unsafe_fn)]
// Input never panics the process: errors are returned (tests may unwrap).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod build;
pub mod centroids;
pub mod cluster;
pub mod distance;
pub mod error;
pub mod format;
pub mod gt;
pub mod input;
pub mod io;
pub mod live;
pub mod quant;
pub mod rng;
pub mod search;
pub mod synth;
pub mod topk;
pub mod types;

pub use build::{build, BuildParams, BuildReport};
pub use error::{BuildError, FormatError, IndexError, QueryError, Result};
pub use format::build_params::LookupChoice;
pub use format::manifest::CodeKind;
pub use format::Manifest;
pub use search::{
    Excluded, Index, MemoryBudget, Neighbor, OpenOptions, Query, SearchOverrides, SearchSettings, SearchStats, Searcher,
};
pub use types::{ElementType, Metric};
