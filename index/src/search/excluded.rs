//! Ids a search must not return: deleted, or replaced by a newer vector
//! the index does not hold yet (live collections, `docs/LIVE.md`). The
//! rerank drops them when it reads a candidate's id; the shortlist keeps
//! room for as many candidates as there are excluded ids, so an answer
//! still has k neighbours whenever k others remain.

use crate::topk::IdHasher;
use std::collections::HashSet;
use std::hash::BuildHasherDefault;

#[derive(Debug, Clone, Default)]
pub struct Excluded {
    ids: HashSet<u64, BuildHasherDefault<IdHasher>>,
}

impl Excluded {
    pub fn insert(&mut self, id: u64) -> bool {
        self.ids.insert(id)
    }

    pub fn remove(&mut self, id: u64) -> bool {
        self.ids.remove(&id)
    }

    #[inline]
    pub fn contains(&self, id: u64) -> bool {
        !self.ids.is_empty() && self.ids.contains(&id)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl FromIterator<u64> for Excluded {
    fn from_iter<I: IntoIterator<Item = u64>>(it: I) -> Self {
        Excluded { ids: it.into_iter().collect() }
    }
}
