//! Progress reporting hooks. The engine never prints; a front end implements
//! [`ProgressSink`] (a terminal bar, log lines, nothing).

pub trait ProgressSink: Sync {
    /// A new stage with `total` units of work (0 = unknown).
    fn stage(&self, name: &str, total: u64);
    /// `n` more units of the current stage are done.
    fn advance(&self, n: u64);
    /// The current stage is over.
    fn finish_stage(&self);
}

/// Reports nothing.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish_stage(&self) {}
}
