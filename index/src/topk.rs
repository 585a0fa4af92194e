//! A bounded "keep the k smallest" collector that ignores repeated ids
//! (replicas of one vector found in several postings).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// The vector's id: the user's id given at build time, else its row
    /// number in the input file.
    pub id: u64,
    /// Smaller is nearer: squared L2, -ip, or 1 - cos.
    pub distance: f32,
}

/// A candidate inside a search: its key (the id, or while scoring a float
/// collection's postings its row), its row in `vectors.bin`, distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub id: u64,
    pub row: u32,
    pub distance: f32,
}

#[derive(Clone, Copy, PartialEq)]
struct Entry(f32, u64, u32);
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
    }
}

/// A (distance, id) pair ordered by distance, then id: a max-heap of them
/// drops its farthest, `Reverse` of one pops its nearest, and ties never
/// depend on the order of pushes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scored(pub f32, pub u32);

impl PartialEq for Scored {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scored {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
    }
}

/// Multiplicative hashing for integer keys: ids are not adversarial here and
/// SipHash would dominate the cost of an insert.
#[derive(Default)]
pub struct IdHasher(u64);
impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ *b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (i ^ (i >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub struct TopK {
    cap: usize,
    heap: BinaryHeap<Entry>,
    members: HashSet<u64, BuildHasherDefault<IdHasher>>,
}

impl TopK {
    pub fn new(cap: usize) -> Self {
        TopK { cap, heap: BinaryHeap::with_capacity(cap + 1), members: HashSet::default() }
    }

    pub fn reset(&mut self, cap: usize) {
        self.cap = cap;
        self.heap.clear();
        self.members.clear();
    }

    /// The distance a candidate must beat to enter.
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.cap {
            f32::INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |e| e.0)
        }
    }

    /// Offers a candidate. Ties on distance keep the smaller id, so the
    /// result does not depend on the order candidates arrive in (reads
    /// complete in any order; Hamming distances tie often).
    #[inline]
    pub fn push(&mut self, id: u64, row: u32, distance: f32) {
        if self.cap == 0 || distance > self.threshold() || self.members.contains(&id) {
            return;
        }
        if self.heap.len() >= self.cap && self.heap.peek().is_some_and(|w| Entry(distance, id, row) >= *w) {
            return;
        }
        self.heap.push(Entry(distance, id, row));
        self.members.insert(id);
        if self.heap.len() > self.cap {
            if let Some(Entry(_, gone, _)) = self.heap.pop() {
                self.members.remove(&gone);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The candidates so far, nearest first, leaving them in place.
    pub fn sorted_copy(&self, out: &mut Vec<Candidate>) {
        out.clear();
        out.extend(self.heap.iter().map(|&Entry(distance, id, row)| Candidate { id, row, distance }));
        out.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
    }

    /// Nearest first.
    pub fn into_sorted(&mut self, out: &mut Vec<Candidate>) {
        out.clear();
        out.extend(self.heap.drain().map(|Entry(distance, id, row)| Candidate { id, row, distance }));
        out.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
        self.members.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_k_smallest_without_duplicates() {
        let mut t = TopK::new(3);
        for (id, d) in [(1, 5.0), (2, 1.0), (2, 1.0), (3, 4.0), (4, 0.5), (1, 5.0), (5, 9.0)] {
            t.push(id, 0, d);
        }
        let mut out = Vec::new();
        t.into_sorted(&mut out);
        assert_eq!(out.iter().map(|n| n.id).collect::<Vec<_>>(), vec![4, 2, 3]);
    }

    #[test]
    fn ties_keep_the_smallest_ids_in_any_arrival_order() {
        let mut out = Vec::new();
        for order in [[5u64, 3, 9, 1, 7], [1, 3, 5, 7, 9], [9, 7, 5, 3, 1]] {
            let mut t = TopK::new(3);
            for id in order {
                t.push(id, id as u32, 2.0);
            }
            t.into_sorted(&mut out);
            assert_eq!(out.iter().map(|n| n.id).collect::<Vec<_>>(), vec![1, 3, 5]);
        }
    }
}
