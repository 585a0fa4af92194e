//! The first stage of a search: score the probed postings' candidates by
//! their compact codes into the [`Shortlist`] the rerank reads.
//!
//! An index has one first stage, chosen when it opens:
//! - [`FirstStage::Resident`]: every row's code in memory (row codes);
//!   each row scores once however many postings list it.
//! - [`FirstStage::Held`]: every posting's codes in memory, as on disk.
//! - [`FirstStage::Disk`]: postings read from `postings.bin` and scored as
//!   each read completes.
//!
//! The searcher runs the same steps around each (probe, this stage, the
//! rerank, top-k); a stage only fills the shortlist, through
//! [`Shortlist::admit`], and says which rows it has read already.

mod disk;
mod held;
mod resident;

use super::open::Index;
use super::posting_cache::PostingCache;
use super::query::Query;
use super::reads::Reads;
use super::resident::ResidentCodes;
use super::settings::SearchSettings;
use super::shortlist::Shortlist;
use super::stats::SearchStats;
use crate::distance::Kernels;
use crate::error::{IndexError, QueryError, Result};
use crate::quant::QueryCodes;
use crate::topk::Candidate;
use std::collections::BTreeSet;

/// Where an index's first stage scores from; what it holds in memory.
pub(crate) enum FirstStage {
    /// Postings read from disk for every query.
    Disk,
    /// Every posting's codes held in memory (they fit the memory budget).
    Held(PostingCache),
    /// Every row's code held in memory.
    Resident(ResidentCodes),
}

/// A query as the first stage takes it: the floats that route it to
/// centroids (and that the rerank compares rows with), and, for stages
/// that score posting codes, the form that scores them.
pub(in crate::search) struct Prepared {
    pub floats: Vec<f32>,
    pub codes: Option<QueryCodes>,
}

/// What one query's first stage is asked to do.
pub(in crate::search) struct StageRun<'a> {
    pub ix: &'a Index,
    pub kern: &'static Kernels,
    pub q: &'a [f32],
    /// The probed postings, nearest first, with their centroid scores.
    pub probed: &'a [(u32, f32)],
    pub k: usize,
    /// Candidates the rerank takes (0: none, the codes' order stands).
    pub rerank: usize,
    pub s: &'a SearchSettings,
}

/// What a first stage leaves for the rerank besides the shortlist.
pub(in crate::search) struct StageOut {
    /// Candidates whose rows the early rerank round read: reranked too.
    pub early: Vec<Candidate>,
    /// Candidates farther than this fraction past the k-th are dropped
    /// before the rerank (infinite: none).
    pub margin: f32,
}

/// Scratch the stages reuse from query to query.
#[derive(Default)]
pub(in crate::search) struct Scratch {
    /// Code distances of the posting being scored.
    dists: Vec<f32>,
    /// The centroid of the posting being scored (residual codes).
    centroid: Vec<f32>,
    /// The postings chosen to be read (disk; the rest are page-mates).
    chosen: BTreeSet<u32>,
    /// Resident scoring: a bit per row, set once it scored this query.
    seen: Vec<u64>,
    /// Resident scoring: the rows left to score.
    todo: Vec<u32>,
}

impl FirstStage {
    pub fn name(&self) -> &'static str {
        match self {
            FirstStage::Disk => "disk",
            FirstStage::Held(_) => "held",
            FirstStage::Resident(_) => "resident",
        }
    }

    /// Checks and prepares a query for this stage.
    pub(in crate::search) fn prepare(&self, ix: &Index, query: Query, k: usize) -> Result<Prepared> {
        match self {
            FirstStage::Resident(_) => {
                // Resident codes are built for float collections only.
                let Query::Floats(f) = query else {
                    return Err(QueryError::FloatsWanted.into());
                };
                Ok(Prepared { floats: ix.prepare_query(f, k)?, codes: None })
            }
            FirstStage::Disk if !ix.manifest.quantizer.scores_postings() => {
                // Unreachable (the codebooks are released only under
                // resident codes), kept so a future query kind cannot
                // index an empty codebook.
                Err(IndexError::Backend("posting codebooks are not loaded (resident codes serve)".into()))
            }
            FirstStage::Disk | FirstStage::Held(_) => {
                let (floats, codes) = ix.prepare(query, k)?;
                Ok(Prepared { floats, codes: Some(codes) })
            }
        }
    }

    /// Candidates the rerank takes at settings `s`: none when the posting
    /// codes are exact.
    pub(in crate::search) fn rerank_depth(&self, ix: &Index, s: &SearchSettings) -> usize {
        match self {
            FirstStage::Resident(_) => s.rerank,
            _ if ix.manifest.quantizer.is_exact() => 0,
            _ => s.rerank,
        }
    }

    /// Whether the shortlist's keys are the ids (binary collections'
    /// postings hold ids): then no row needs reading.
    pub(in crate::search) fn keys_are_ids(&self, ix: &Index) -> bool {
        !matches!(self, FirstStage::Resident(_)) && ix.manifest.quantizer.entries_hold_ids()
    }

    /// Scores the probed postings' candidates into `list`.
    pub(in crate::search) fn run(
        &self,
        r: &StageRun,
        codes: Option<&mut QueryCodes>,
        reads: &mut Reads,
        scratch: &mut Scratch,
        list: &mut Shortlist,
        stats: &mut SearchStats,
    ) -> Result<StageOut> {
        let no_codes = || IndexError::Backend("the query was not prepared for posting codes".into());
        match self {
            FirstStage::Resident(rc) => resident::run(r, rc, reads, scratch, list, stats),
            FirstStage::Held(cache) => held::run(r, codes.ok_or_else(no_codes)?, cache, reads, scratch, list, stats),
            FirstStage::Disk => disk::run(r, codes.ok_or_else(no_codes)?, reads, scratch, list, stats),
        }
    }
}
