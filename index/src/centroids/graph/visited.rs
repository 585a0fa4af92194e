//! The set of nodes one graph search has scored: open addressing over u32
//! ids, sized to the search rather than to the graph (a per-thread array of
//! every node would cost 120 MB per thread at 3x10^7 centroids).

const EMPTY: u32 = u32::MAX;

#[derive(Debug, Default)]
pub struct Visited {
    slots: Vec<u32>,
    len: usize,
}

impl Visited {
    /// Empties the set, keeping room for about `expected` ids.
    pub fn reset(&mut self, expected: usize) {
        let want = (expected.max(64) * 2).next_power_of_two();
        if self.slots.len() != want {
            self.slots = vec![EMPTY; want];
        } else {
            self.slots.fill(EMPTY);
        }
        self.len = 0;
    }

    /// Adds `id`; false when it was already there.
    #[inline]
    pub fn insert(&mut self, id: u32) -> bool {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = (id.wrapping_mul(0x9E37_79B1) as usize) & mask;
        loop {
            match self.slots[i] {
                EMPTY => {
                    self.slots[i] = id;
                    self.len += 1;
                    return true;
                }
                s if s == id => return false,
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let bigger = vec![EMPTY; (self.slots.len() * 2).max(128)];
        let old = std::mem::replace(&mut self.slots, bigger);
        self.len = 0;
        for id in old.into_iter().filter(|&s| s != EMPTY) {
            self.insert(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_once_and_grows() {
        let mut v = Visited::default();
        v.reset(4);
        for i in 0..10_000u32 {
            assert!(v.insert(i * 7919));
        }
        for i in 0..10_000u32 {
            assert!(!v.insert(i * 7919));
        }
        v.reset(4);
        assert!(v.insert(0));
    }
}
