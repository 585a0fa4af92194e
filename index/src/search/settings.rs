//! Per-call search settings.

use crate::error::QueryError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchSettings {
    /// Most postings read for one query.
    pub max_postings: usize,
    /// Query-aware pruning: a posting is read only if its centroid's
    /// distance to the query is within (1 + eps2) of the nearest centroid's.
    /// Distance is Euclidean (not squared) for l2 and cosine; for ip it is
    /// the negated inner product d, and the bound is d0 + eps2 * |d0|.
    pub eps2: f32,
    /// Candidates reranked with full-precision vectors (0 = return code
    /// distances; ignored when postings hold exact f32 vectors).
    pub rerank: usize,
    /// Effort of the centroid lookup: groups scanned; with the centroid
    /// graph its beam width (x the index's beam factor; a beam of 1/16 of
    /// the postings or more at 384-d, 1/69 at 50-d, scans them all instead,
    /// [`crate::centroids::flat_scan_beam_ratio`]); walking the graph
    /// from the groups, a quarter of it in groups ([`crate::centroids::hybrid_groups`]).
    pub probe_groups: usize,
    /// Also score the postings that share the pages read (free candidates).
    pub page_mates: bool,
    /// Read whole aligned blocks of this many pages around each chosen
    /// posting (1 = only its own pages). A 16 KiB read costs far less than
    /// four 4 KiB reads, and the neighbouring postings it brings in are
    /// neighbouring clusters.
    pub block_pages: usize,
    /// The nearest this many postings also have their own vectors' pages
    /// read in the first round, so most rerank candidates need no second
    /// round trip (0 = off).
    pub prefetch_postings: usize,
    /// With resident codes: the fraction of the probed postings scored
    /// before the rerank reads of the best candidates so far go out; the
    /// rest (when at least 8) are scored while those reads are in flight,
    /// and candidates that arrive later are read in a short second round
    /// (1 = read only after every posting is scored).
    pub early_rerank: f32,
}

impl Default for SearchSettings {
    /// Tuned on GloVe-50 (recall@10 ~0.90, see benches/RESULTS.md).
    fn default() -> Self {
        SearchSettings {
            max_postings: 32,
            eps2: 0.4,
            // 20 is as good on GloVe-50 at fewer reads, but PQ's inner
            // products need 30 for recall 0.9 on the ip test set.
            rerank: 30,
            probe_groups: 32,
            page_mates: true,
            block_pages: 1,
            // Measured no gain on GloVe-50 (the rerank candidates' rows are
            // rarely those of the nearest postings); kept as a knob.
            prefetch_postings: 0,
            // MiniLM-384: +15-20% QPS at equal recall against 1.0; 0.35 to
            // 0.65 measured alike (benches/RESULTS.md, session 8).
            early_rerank: 0.5,
        }
    }
}

/// Postings an index holding one copy of each vector probes by default,
/// against [`SearchSettings::default`]'s 32 for replicated postings: its
/// postings list ~4.6x fewer entries for the vectors they are home to
/// (GloVe-50, 17-byte codes held: 96 gives recall@10 0.93 at rerank 30,
/// benches/RESULTS.md).
pub const ONE_COPY_MAX_POSTINGS: usize = 96;

/// Search settings as a configuration gives them: each key set overrides
/// the defaults of the index served ([`crate::Index::default_settings`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_postings: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eps2: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_groups: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_mates: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_pages: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefetch_postings: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_rerank: Option<f32>,
}

impl SearchOverrides {
    /// `base` with every key set here replaced.
    pub fn apply(&self, base: SearchSettings) -> SearchSettings {
        SearchSettings {
            max_postings: self.max_postings.unwrap_or(base.max_postings),
            eps2: self.eps2.unwrap_or(base.eps2),
            rerank: self.rerank.unwrap_or(base.rerank),
            probe_groups: self.probe_groups.unwrap_or(base.probe_groups),
            page_mates: self.page_mates.unwrap_or(base.page_mates),
            block_pages: self.block_pages.unwrap_or(base.block_pages),
            prefetch_postings: self.prefetch_postings.unwrap_or(base.prefetch_postings),
            early_rerank: self.early_rerank.unwrap_or(base.early_rerank),
        }
    }
}

pub const MAX_POSTINGS_LIMIT: usize = 100_000;
pub const MAX_RERANK: usize = 100_000;

impl SearchSettings {
    pub fn validate(&self) -> Result<(), QueryError> {
        let bad = |name: &'static str, what: String| Err(QueryError::BadSetting { name, what });
        if self.max_postings == 0 || self.max_postings > MAX_POSTINGS_LIMIT {
            return bad("max_postings", format!("{} is outside 1..={MAX_POSTINGS_LIMIT}", self.max_postings));
        }
        if !(self.eps2.is_finite() && self.eps2 >= 0.0) {
            return bad("eps2", format!("{} is not a finite number >= 0", self.eps2));
        }
        if self.rerank > MAX_RERANK {
            return bad("rerank", format!("{} is above {MAX_RERANK}", self.rerank));
        }
        if !(1..=32).contains(&self.block_pages) {
            return bad("block_pages", format!("{} is outside 1..=32", self.block_pages));
        }
        if !(self.early_rerank > 0.0 && self.early_rerank <= 1.0) {
            return bad("early_rerank", format!("{} is outside (0, 1]", self.early_rerank));
        }
        if self.probe_groups == 0 {
            return bad("probe_groups", "must be at least 1".into());
        }
        Ok(())
    }
}
