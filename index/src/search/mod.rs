//! Opening an index directory and searching it.

pub mod centroid_file;
pub mod centroids;
mod first_stage;
pub mod graph;
mod open;
mod overlap;
mod posting_cache;
mod probe;
mod query;
mod reads;
mod rerank;
mod resident;
mod score;
mod searcher;
pub mod settings;
mod shortlist;
mod stats;
pub mod topk;

pub use open::{Index, MemoryBudget, OpenOptions};
pub use query::Query;
pub use searcher::Searcher;
pub use settings::{SearchOverrides, SearchSettings};
pub use stats::SearchStats;
pub use topk::Neighbor;

/// File slots of the shared [`crate::io::IoFiles`].
pub(crate) const POSTINGS_SLOT: usize = 0;
pub(crate) const VECTORS_SLOT: usize = 1;
