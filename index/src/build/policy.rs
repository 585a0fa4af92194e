//! Build policy: what the auto parameters resolve to for a given input
//! (replicas, leaf size, PQ sub-vectors, row codes, one copy of each
//! vector) and how the memory budget is split. `BuildParams` itself is
//! part of the format (the manifest records it); these choices are the
//! builder's.

use crate::format::build_params::BuildParams;
use crate::format::manifest::CodeKind;
use crate::types::Metric;

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
