//! Opening an index directory and searching it.

mod excluded;
mod first_stage;
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

pub use crate::topk::Neighbor;
pub use excluded::Excluded;
pub use open::{Index, MemoryBudget, NoCodec, OpenOptions};
pub use query::Query;
pub use searcher::Searcher;
pub use settings::{SearchOverrides, SearchSettings};
pub use stats::SearchStats;

/// File slots of the shared [`crate::io::IoFiles`].
pub(crate) const POSTINGS_SLOT: usize = 0;
pub(crate) const VECTORS_SLOT: usize = 1;
