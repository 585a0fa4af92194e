//! What one search did, for benchmarks and metrics.

use std::time::Duration;

/// What one search did, for benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SearchStats {
    pub postings_read: u32,
    /// I/O requests issued (adjacent pages are merged into one request).
    pub reads: u32,
    pub bytes_read: u64,
    pub candidates_scored: u32,
    pub reranked: u32,
    pub centroid_time: Duration,
    pub io_time: Duration,
    pub score_time: Duration,
    pub rerank_time: Duration,
}

impl SearchStats {
    pub fn add(&mut self, o: &SearchStats) {
        self.postings_read += o.postings_read;
        self.reads += o.reads;
        self.bytes_read += o.bytes_read;
        self.candidates_scored += o.candidates_scored;
        self.reranked += o.reranked;
        self.centroid_time += o.centroid_time;
        self.io_time += o.io_time;
        self.score_time += o.score_time;
        self.rerank_time += o.rerank_time;
    }
}

impl SearchStats {
    /// The stages' names, in the order of [`SearchStats::stage_times`]:
    /// the one list that metrics and reports label stages by.
    pub const STAGES: [&'static str; 4] = ["centroids", "io", "scoring", "rerank"];

    /// Time spent in each of [`SearchStats::STAGES`].
    pub fn stage_times(&self) -> [Duration; 4] {
        [self.centroid_time, self.io_time, self.score_time, self.rerank_time]
    }
}
