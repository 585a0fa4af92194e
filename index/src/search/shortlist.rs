//! The shortlist: the candidates a first stage keeps for the rerank.
//!
//! Every candidate every first stage scores enters through
//! [`Shortlist::admit`]. That is the one place where a candidate can be
//! turned away for what it is rather than how far it is: a filter on its
//! attributes or a tombstone of a deleted row goes there, and holds for
//! the disk, held and resident first stages alike.

use crate::topk::{Candidate, TopK};

pub(super) struct Shortlist {
    top: TopK,
}

impl Shortlist {
    pub fn new() -> Self {
        Shortlist { top: TopK::new(0) }
    }

    /// Empties the list and sets how many candidates it keeps.
    pub fn reset(&mut self, cap: usize) {
        self.top.reset(cap);
    }

    /// Admits a candidate (`key` its id or, in a float collection's
    /// postings, its row) when it is nearer than the farthest kept.
    #[inline]
    pub fn admit(&mut self, key: u64, row: u32, distance: f32) {
        if distance <= self.top.threshold() {
            self.top.push(key, row, distance);
        }
    }

    /// The candidates so far, nearest first, leaving them in place.
    pub fn sorted_copy(&self, out: &mut Vec<Candidate>) {
        self.top.sorted_copy(out);
    }

    /// The candidates, nearest first; the list is left empty.
    pub fn drain_sorted(&mut self, out: &mut Vec<Candidate>) {
        self.top.into_sorted(out);
    }
}
