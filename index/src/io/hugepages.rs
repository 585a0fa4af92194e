//! Memory for large read-mostly tables scanned at random (resident codes):
//! asks the kernel for transparent huge pages, so random lookups miss the
//! TLB far less (a 10 MiB table spans 2,600 4 KiB pages, more than the
//! TLB holds). Only a hint: without THP the memory works the same.

const HUGE_PAGE: usize = 2 << 20;

/// A copy of `bytes` in memory advised for huge pages.
pub fn copy_hinted(bytes: &[u8]) -> Vec<u8> {
    let mut v = with_capacity_hinted(bytes.len());
    v.extend_from_slice(bytes);
    v
}

/// `len` zero bytes in memory advised for huge pages (filled in place, so
/// a large table is never held twice).
pub fn zeroed_hinted(len: usize) -> Vec<u8> {
    let mut v = with_capacity_hinted(len);
    v.resize(len, 0);
    v
}

/// An empty vector with room for `len` bytes, advised for huge pages.
fn with_capacity_hinted(len: usize) -> Vec<u8> {
    let v: Vec<u8> = Vec::with_capacity(len);
    if len >= 2 * HUGE_PAGE {
        let start = v.as_ptr() as usize;
        let lo = start.next_multiple_of(HUGE_PAGE);
        let hi = (start + len) / HUGE_PAGE * HUGE_PAGE;
        if hi > lo {
            // SAFETY: [lo, hi) lies inside the allocation `v` owns (its
            // capacity is `len` from `start`); madvise only changes how the
            // kernel backs those pages, never their contents or validity,
            // and failure is harmless (the result is ignored).
            unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE) };
        }
    }
    v
}
