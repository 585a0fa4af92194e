//! A growable byte buffer whose start is aligned to [`PAGE_BYTES`], as
//! O_DIRECT requires.

use super::PAGE_BYTES;
use std::alloc::{self, Layout};
use std::ptr::NonNull;

pub struct AlignedBuf {
    ptr: NonNull<u8>,
    cap: usize,
}

// SAFETY: the buffer exclusively owns its allocation, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}

impl Default for AlignedBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl AlignedBuf {
    pub fn new() -> Self {
        AlignedBuf { ptr: NonNull::dangling(), cap: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Makes room for at least `len` bytes (contents are not kept).
    pub fn ensure(&mut self, len: usize) {
        if len <= self.cap {
            return;
        }
        let cap = len.next_multiple_of(PAGE_BYTES).max(self.cap * 2);
        let Ok(layout) = Layout::from_size_align(cap, PAGE_BYTES) else {
            alloc::handle_alloc_error(Layout::new::<u8>());
        };
        // SAFETY: layout has a non-zero size (len > cap >= 0, rounded up).
        let p = unsafe { alloc::alloc_zeroed(layout) };
        let Some(p) = NonNull::new(p) else { alloc::handle_alloc_error(layout) };
        self.free();
        self.ptr = p;
        self.cap = cap;
    }

    fn free(&mut self) {
        if self.cap > 0 {
            // SAFETY: ptr was allocated by `ensure` with exactly this layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), Layout::from_size_align_unchecked(self.cap, PAGE_BYTES)) };
            self.cap = 0;
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.cap == 0 {
            return &[];
        }
        // SAFETY: ptr is valid for cap initialised (zeroed at allocation) bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.cap) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.cap == 0 {
            return &mut [];
        }
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.cap) }
    }

    /// Raw pointer for handing to the kernel; valid while `self` lives and
    /// is not grown.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        self.free();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_aligned_and_grows() {
        let mut b = AlignedBuf::new();
        assert!(b.as_slice().is_empty());
        b.ensure(10);
        assert_eq!(b.as_mut_ptr() as usize % PAGE_BYTES, 0);
        assert!(b.capacity() >= PAGE_BYTES);
        b.as_mut_slice()[5] = 7;
        b.ensure(3 * PAGE_BYTES + 1);
        assert_eq!(b.as_mut_ptr() as usize % PAGE_BYTES, 0);
        assert!(b.capacity() >= 4 * PAGE_BYTES);
    }
}
