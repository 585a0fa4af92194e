//! Build parameters: defaults, validation, and what they derive.

use crate::error::BuildError;
use crate::format::manifest::CodeKind;
use crate::types::Metric;
use serde::{Deserialize, Serialize};

/// Fields missing from an older manifest take their defaults (a minor,
/// compatible addition); unknown fields are ignored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct BuildParams {
    pub metric: Metric,
    pub seed: u64,
    /// Worker threads (0 = all cores). Not recorded: the output is the same
    /// for any count.
    #[serde(skip)]
    pub threads: usize,
    /// Bound on the builder's working memory (sample, chunks, spill buckets).
    pub memory_budget_bytes: u64,
    /// Target number of nearest-assigned vectors per posting (leaf size);
    /// 0 = auto ([`Self::leaf_size_for`]; the manifest records the result).
    pub leaf_size: usize,
    /// Hard bound on entries per posting, replicas included (0 = 4 x leaf).
    pub max_posting_len: usize,
    /// Postings a vector may be stored in (R), the nearest included; 0 =
    /// auto ([`Self::replicas_for`]; the manifest records the result).
    pub replicas: usize,
    /// Closure bound: replicate into centroids within (1 + eps1) of the
    /// nearest centroid's Euclidean distance.
    pub eps1: f32,
    /// RNG rule on replicas: skip a centroid c behind a chosen c' when
    /// `rng_factor * |c - c'| < |x - c|` (0 = off, 1 = strict).
    pub rng_factor: f32,
    /// Children per split of the hierarchical clustering.
    pub branching: usize,
    pub kmeans_iters: usize,
    /// Vectors sampled for clustering (0 = as many as the budget allows).
    pub sample_size: u64,
    pub code: CodeKind,
    /// PQ sub-vectors (0 = auto: dim / 2, two dimensions per byte, or
    /// dim / 3 for [`Self::one_copy`] builds; the manifest records it).
    pub pq_subspaces: usize,
    /// Bits per dimension of binary codes (1..=4).
    pub binary_bits: usize,
    /// Bits per dimension of the resident row codes (`codes.bin`, every
    /// vector's code for an in-memory first stage): 0 = none, 1..=4, or
    /// `None` = by the data ([`Self::row_code_bits_for`]).
    pub row_code_bits: Option<usize>,
    /// Effort of the assign stage's centroid lookups: groups scanned, or
    /// the graph's beam width (accuracy of the assignment). 0 = measured by
    /// the builder (64, or 32 where that finds as much; the effort used is
    /// in the build stats).
    pub assign_probe_groups: usize,
    /// How centroids are looked up (build and search): measured by the
    /// builder (`auto`), or forced.
    pub centroid_lookup: LookupChoice,
    /// Binary collection of raw bits: the input (.u8bin) holds packed bit
    /// vectors of this many bits (0 = the input is float/int vectors).
    pub input_bits: usize,
    /// Binary collection from floats: encode the input with the codec at
    /// this many bits per dimension (0 = keep floats).
    pub encode_bits: usize,
    /// This build is shard `shard` of `shard_count` (1 = unsharded): it
    /// keeps the input rows whose id hashes to it (`build::shard_of`).
    pub shard: u32,
    pub shard_count: u32,
    /// One u64 id per input row (`input::IdFile`); none = row numbers. The
    /// path is not recorded (the bytes are, through the collection id).
    #[serde(skip)]
    pub ids_file: Option<std::path::PathBuf>,
    /// Resume an interrupted build of the same output from its finished
    /// assign stage (see `build::checkpoint`); not part of the index.
    #[serde(skip)]
    pub resume: bool,
}

/// The centroid lookup a build keeps: `auto` measures the group scan, the
/// graph and the graph walked from the groups on sample rows and keeps the
/// best (`build/lookup.rs`); the others force one (l2 and cosine; ip
/// indexes always scan groups).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LookupChoice {
    #[default]
    Auto,
    Groups,
    Graph,
    Hybrid,
}

impl LookupChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            LookupChoice::Auto => "auto",
            LookupChoice::Groups => "groups",
            LookupChoice::Graph => "graph",
            LookupChoice::Hybrid => "hybrid",
        }
    }
}

impl std::str::FromStr for LookupChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        use LookupChoice::*;
        [Auto, Groups, Graph, Hybrid]
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown centroid lookup {s:?} (expected auto, groups, graph or hybrid)"))
    }
}

impl Default for BuildParams {
    fn default() -> Self {
        BuildParams {
            metric: Metric::L2,
            seed: 42,
            threads: 0,
            memory_budget_bytes: 2 << 30,
            // Auto (`leaf_size_for`).
            leaf_size: 0,
            max_posting_len: 0,
            // Auto (`replicas_for`).
            replicas: 0,
            eps1: 0.2,
            rng_factor: 1.5,
            branching: 16,
            kmeans_iters: 8,
            sample_size: 0,
            code: CodeKind::Pq,
            pq_subspaces: 0,
            binary_bits: 1,
            row_code_bits: None,
            assign_probe_groups: 0,
            centroid_lookup: LookupChoice::Auto,
            input_bits: 0,
            encode_bits: 0,
            shard: 0,
            shard_count: 1,
            ids_file: None,
            resume: false,
        }
    }
}

impl BuildParams {
    pub fn validate(&self) -> Result<(), BuildError> {
        let bad = |name: &'static str, what: &str| Err(BuildError::BadParam { name, what: what.into() });
        if self.replicas > 64 {
            return bad("replicas", "must be in 1..=64 (0 = auto)");
        }
        if !(self.eps1.is_finite() && self.eps1 >= 0.0) {
            return bad("eps1", "must be a finite number >= 0");
        }
        if !(self.rng_factor.is_finite() && self.rng_factor >= 0.0) {
            return bad("rng_factor", "must be a finite number >= 0");
        }
        if self.branching < 2 {
            return bad("branching", "must be at least 2");
        }
        if self.kmeans_iters == 0 {
            return bad("kmeans_iters", "must be at least 1");
        }
        if self.memory_budget_bytes < 64 << 20 {
            return bad("memory_budget", "must be at least 64 MiB");
        }
        if !(1..=fathom_codec::MAX_BITS).contains(&self.binary_bits) {
            return bad("binary_bits", "must be in 1..=4");
        }
        if self.row_code_bits.is_some_and(|b| b > fathom_codec::MAX_BITS) {
            return bad("row_codes", "bits per dimension must be in 0..=4 (0 = none)");
        }
        if self.shard_count == 0 || self.shard_count > 4096 {
            return bad("shards", "must be in 1..=4096");
        }
        if self.shard >= self.shard_count {
            return bad("shard", "must be below the shard count (shards are numbered from 0)");
        }
        if self.input_bits > 0 && self.encode_bits > 0 {
            return bad("encode", "input that is already bits (--bits) cannot be encoded again");
        }
        if self.encode_bits > fathom_codec::MAX_BITS {
            return bad("encode", "bits per dimension must be in 1..=4");
        }
        if (self.input_bits > 0) != (self.metric == Metric::Hamming) {
            return bad("metric", "hamming is the metric of raw bit input (--bits), and only of it");
        }
        if self.encode_bits > 0 && self.metric == Metric::Ip {
            return bad(
                "metric",
                "an encoded binary collection supports l2 and cosine; for ip use --code binary (exact rerank)",
            );
        }
        Ok(())
    }

    /// Whether the index is a binary collection (codes, not floats).
    pub fn is_binary_collection(&self) -> bool {
        self.input_bits > 0 || self.encode_bits > 0
    }
}
