//! Opening an index directory and searching it.

pub mod centroid_file;
pub mod centroids;
pub mod graph;
mod open;
mod posting_cache;
mod query;
mod resident;
mod searcher;
pub mod settings;
pub mod topk;

pub use open::{Index, MemoryBudget, OpenOptions};
pub use query::Query;
pub use searcher::{SearchStats, Searcher};
pub use settings::{SearchOverrides, SearchSettings};
pub use topk::Neighbor;

/// File slots of the shared [`crate::io::IoFiles`].
pub(crate) const POSTINGS_SLOT: usize = 0;
pub(crate) const VECTORS_SLOT: usize = 1;
