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

/// Fewest dimensions and vectors of a [`BuildParams::one_copy`] build.
pub const ONE_COPY_MIN_DIM: usize = 40;
pub const ONE_COPY_MIN_VECTORS: u64 = 100_000;

impl BuildParams {
    /// Defaults for a binary collection (`input_bits` or `encode_bits` set).
    /// Codes are small and distances between them concentrate, so every
    /// vector lies near many centroids: larger, more replicated postings
    /// (RNG rule relaxed to 3) recall far more per posting read. MiniLM-384
    /// 1-bit, 100k: recall@10 0.95 at ~2,500 QPS instead of ~1,000 with the
    /// float defaults, for 4x the disk (benches/RESULTS.md). Leaf 96 keeps
    /// the in-memory centroids near the size of the codes.
    pub fn binary_collection(metric: Metric, input_bits: usize, encode_bits: usize) -> Self {
        BuildParams {
            metric,
            input_bits,
            encode_bits,
            leaf_size: 96,
            replicas: 16,
            rng_factor: 3.0,
            max_posting_len: 768,
            ..BuildParams::default()
        }
    }

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

    /// Nearest centroids looked up per vector in the assign stage; closure
    /// assignment picks its postings among them.
    pub fn assign_candidates(&self) -> usize {
        (self.replicas * 2).max(8)
    }

    /// Whether the auto parameters (replicas, leaf size, PQ sub-vectors
    /// left at 0) build one copy of each vector in postings of ~256, coded
    /// 3 dimensions a byte: PQ codes of f32 vectors of 40..256 dimensions
    /// without resident row codes, 100,000 or more. The codes then take
    /// ~8.5% of the raw vectors and the server's default memory budget
    /// holds them all (with replicas it cannot), so a query reads only its
    /// rerank rows. GloVe-50: 2x the QPS of 8 replicas read from disk at
    /// recall@10 0.90-0.95 (benches/RESULTS.md, session 13). Below 40
    /// dimensions or 100,000 vectors the index's own memory (centroids,
    /// codebooks) leaves the codes too little of a tenth.
    pub fn one_copy(&self, dim: usize, f32_rows: bool, resident_codes: bool, vectors: u64) -> bool {
        self.replicas == 0
            && self.code == CodeKind::Pq
            && !self.is_binary_collection()
            && f32_rows
            && !resident_codes
            && (ONE_COPY_MIN_DIM..256).contains(&dim)
            && vectors >= ONE_COPY_MIN_VECTORS
    }

    /// Replicas: as set, else 1 for [`Self::one_copy`] builds, else 8.
    pub fn replicas_for(&self, one_copy: bool) -> usize {
        match (self.replicas, one_copy) {
            (0, true) => 1,
            (0, false) => 8,
            (r, _) => r,
        }
    }

    /// PQ sub-vectors as set, else 3 dimensions a byte for
    /// [`Self::one_copy`] builds (0, resolved by [`Self::pq_subspaces_for`],
    /// otherwise).
    pub fn pq_subspaces_auto(&self, dim: usize, one_copy: bool) -> usize {
        match (self.pq_subspaces, one_copy) {
            (0, true) => dim.div_ceil(3),
            (m, _) => m,
        }
    }

    pub fn pq_subspaces_for(&self, dim: usize) -> usize {
        if self.pq_subspaces == 0 {
            dim.div_ceil(2)
        } else {
            self.pq_subspaces.min(dim)
        }
    }

    /// Resident row-code bits for rows of `row_bytes` stored bytes: 2 bits
    /// when the codes stay under ~8% of the stored vectors (rows of at least
    /// 1 KiB, e.g. 256-d f32 and up), none below, where posting codes read
    /// from disk already win (GloVe-50, benches/RESULTS.md) and the codes
    /// would cost more memory than they save time. Binary collections: none.
    pub fn row_code_bits_for(&self, row_bytes: usize) -> usize {
        if self.is_binary_collection() {
            return 0;
        }
        self.row_code_bits.unwrap_or(if row_bytes >= 1024 { 2 } else { 0 })
    }

    /// The leaf size: as set, or by default 64, and 96 with resident row
    /// codes. 64 rather than 32: ~10% fewer pages read at equal recall on
    /// GloVe-50 and half the index memory; 1M x 96: +20-28% QPS at 0.95
    /// (benches/RESULTS.md, session 2). With resident codes longer postings
    /// cost only memory scans, and fewer centroids keep the index within
    /// 10% of the vectors (MiniLM-384: 14.7 MiB at 96 against 16.2 at 64,
    /// QPS at equal recall unchanged or better; RESULTS.md, session 4).
    pub fn leaf_size_for(&self, resident_codes: bool, one_copy: bool) -> usize {
        match (self.leaf_size, resident_codes, one_copy) {
            (0, _, true) => 256,
            (0, true, _) => 96,
            (0, false, _) => 64,
            (n, _, _) => n,
        }
    }

    pub fn max_posting_len(&self) -> usize {
        if self.max_posting_len == 0 {
            4 * self.leaf_size_for(false, false)
        } else {
            self.max_posting_len
        }
    }

    /// Whether the index is a binary collection (codes, not floats).
    pub fn is_binary_collection(&self) -> bool {
        self.input_bits > 0 || self.encode_bits > 0
    }

    /// Vectors to sample: all if they fit a third of the budget.
    pub fn sample_count(&self, n: u64, dim: usize) -> u64 {
        let fit = self.memory_budget_bytes / 3 / (dim as u64 * 4).max(1);
        let want = if self.sample_size == 0 { fit } else { self.sample_size.min(fit) };
        want.clamp(1, n)
    }

    /// Vectors read per streaming chunk.
    pub fn chunk_rows(&self, dim: usize) -> usize {
        let fit = (self.memory_budget_bytes / 16 / (dim as u64 * 8).max(1)) as usize;
        fit.clamp(1024, 65_536)
    }
}
