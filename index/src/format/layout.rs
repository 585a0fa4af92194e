//! Byte layouts shared by the builder and the searcher: where a posting's
//! bytes sit in `postings.bin`, where a vector row sits in `vectors.bin`, and
//! the binary bodies of `centroids.bin` and `directory.bin`.

use super::PAGE_BYTES;
use crate::error::FormatError;
use std::path::Path;

/// One posting's place in `postings.bin`: absolute byte offset, number of
/// entries and CRC-32 of its bytes: entries block (u32 rows of
/// `vectors.bin`, whose rows hold the ids; or, in binary collections, the
/// u64 ids themselves), then codes block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PostingRef {
    pub offset: u64,
    pub count: u32,
    pub crc: u32,
    /// First row in `vectors.bin` of the vectors whose nearest posting this
    /// is (they are contiguous; the next posting's `first_row` ends them).
    pub first_row: u32,
}

pub const POSTING_REF_BYTES: usize = 20;
/// Bytes of an entry's row (u32) in a float collection's posting.
pub const ENTRY_ROW_BYTES: usize = 4;
/// Bytes of an entry's id (u64) in a binary collection's posting.
pub const ENTRY_ID_BYTES: usize = 8;

/// Bytes of one posting entry of `q`'s postings: its row (u32) or, where
/// entries hold ids, its id (u64), then its code.
pub fn entry_bytes(q: &crate::quant::Quantizer) -> usize {
    let key = if q.entries_hold_ids() { ENTRY_ID_BYTES } else { ENTRY_ROW_BYTES };
    key + q.code_bytes()
}
/// Bytes of the id (u64) that starts every `vectors.bin` row.
pub const VECTOR_ID_BYTES: usize = 8;

impl PostingRef {
    /// Bytes of the posting, given the bytes of one entry (row or id + code).
    pub fn len_bytes(&self, entry_bytes: usize) -> u64 {
        self.count as u64 * entry_bytes as u64
    }
    /// First page and number of pages covering the posting.
    pub fn pages(&self, entry_bytes: usize) -> (u64, u64) {
        let first = self.offset / PAGE_BYTES as u64;
        let end = (self.offset + self.len_bytes(entry_bytes)).div_ceil(PAGE_BYTES as u64);
        (first, end - first)
    }
}

/// Where the next posting of `len` bytes goes, given the write cursor: at the
/// cursor, unless starting on the next page boundary would cover fewer
/// pages (then the gap is padding).
pub fn place_posting(cursor: u64, len: u64) -> u64 {
    let page = PAGE_BYTES as u64;
    if len == 0 {
        return cursor;
    }
    let pages_here = (cursor % page + len).div_ceil(page);
    let pages_aligned = len.div_ceil(page);
    if pages_here > pages_aligned {
        cursor.next_multiple_of(page)
    } else {
        cursor
    }
}

/// Row placement in `vectors.bin`: rows never straddle a page unless a row is
/// larger than a page, in which case each row starts on its own page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorLayout {
    pub row_bytes: usize,
    pub rows_per_page: usize,
    pub pages_per_row: usize,
}

impl VectorLayout {
    pub fn new(row_bytes: usize) -> Self {
        if row_bytes <= PAGE_BYTES {
            VectorLayout { row_bytes, rows_per_page: PAGE_BYTES / row_bytes, pages_per_row: 1 }
        } else {
            VectorLayout { row_bytes, rows_per_page: 1, pages_per_row: row_bytes.div_ceil(PAGE_BYTES) }
        }
    }

    pub fn pages_for(&self, rows: u64) -> u64 {
        rows.div_ceil(self.rows_per_page as u64) * self.pages_per_row as u64
    }

    /// (first page, pages, byte offset of the row within those pages);
    /// pages are counted from the end of the header page.
    pub fn locate(&self, row: u64) -> (u64, usize, usize) {
        let rpp = self.rows_per_page as u64;
        let page = row / rpp * self.pages_per_row as u64;
        (page, self.pages_per_row, (row % rpp) as usize * self.row_bytes)
    }
}

pub(crate) fn corrupt(path: &Path, offset: u64, what: String) -> FormatError {
    FormatError::Corrupt { path: path.to_path_buf(), offset, what }
}

pub(crate) fn u32s(b: &[u8]) -> impl Iterator<Item = u32> + '_ {
    b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

pub(crate) fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Body of `directory.bin`: P posting refs (u64 offset, u32 count, u32 crc),
/// then one u32 CRC-32 per page of `vectors.bin`.
pub fn encode_directory(postings: &[PostingRef], vector_page_crcs: &[u32]) -> Vec<u8> {
    let mut b = Vec::with_capacity(postings.len() * POSTING_REF_BYTES + vector_page_crcs.len() * 4);
    for p in postings {
        b.extend_from_slice(&p.offset.to_le_bytes());
        b.extend_from_slice(&p.count.to_le_bytes());
        b.extend_from_slice(&p.crc.to_le_bytes());
        b.extend_from_slice(&p.first_row.to_le_bytes());
    }
    for c in vector_page_crcs {
        b.extend_from_slice(&c.to_le_bytes());
    }
    b
}

pub fn decode_directory(
    body: &[u8],
    path: &Path,
    postings: u32,
    vector_pages: u64,
) -> Result<(Vec<PostingRef>, Vec<u32>), FormatError> {
    let want = postings as u64 * POSTING_REF_BYTES as u64 + vector_pages * 4;
    if body.len() as u64 != want {
        return Err(corrupt(path, 64, format!("body is {} bytes, expected {want}", body.len())));
    }
    let split = postings as usize * POSTING_REF_BYTES;
    let refs = body[..split]
        .chunks_exact(POSTING_REF_BYTES)
        .map(|c| {
            let mut o = [0u8; 8];
            o.copy_from_slice(&c[..8]);
            PostingRef {
                offset: u64::from_le_bytes(o),
                count: u32::from_le_bytes([c[8], c[9], c[10], c[11]]),
                crc: u32::from_le_bytes([c[12], c[13], c[14], c[15]]),
                first_row: u32::from_le_bytes([c[16], c[17], c[18], c[19]]),
            }
        })
        .collect();
    Ok((refs, u32s(&body[split..]).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postings_avoid_needless_page_straddling() {
        assert_eq!(place_posting(0, 100), 0);
        assert_eq!(place_posting(4000, 50), 4000);
        assert_eq!(place_posting(4000, 200), 4096);
        assert_eq!(place_posting(100, 8192), 4096, "two pages fit exactly from the boundary");
        assert_eq!(place_posting(100, 9000), 100, "three pages either way");
        let r = PostingRef { offset: 3900, count: 10, crc: 0, first_row: 0 };
        assert_eq!(r.pages(10), (0, 1));
        let r = PostingRef { offset: 4090, count: 10, crc: 0, first_row: 0 };
        assert_eq!(r.pages(10), (0, 2));
    }

    #[test]
    fn vector_rows_stay_within_pages() {
        let l = VectorLayout::new(200);
        assert_eq!(l.rows_per_page, 20);
        assert_eq!(l.locate(21), (1, 1, 200));
        assert_eq!(l.pages_for(41), 3);
        let big = VectorLayout::new(5000);
        assert_eq!(big.locate(3), (6, 2, 0));
        assert_eq!(big.pages_for(3), 6);
    }

    #[test]
    fn directory_round_trips_and_rejects_wrong_length() {
        let refs = vec![
            PostingRef { offset: 4096, count: 3, crc: 9, first_row: 0 },
            PostingRef { offset: 8192, count: 0, crc: 1, first_row: 7 },
        ];
        let b = encode_directory(&refs, &[5, 6, 7]);
        let (r, c) = decode_directory(&b, Path::new("d"), 2, 3).unwrap();
        assert_eq!((r, c), (refs, vec![5, 6, 7]));
        assert!(decode_directory(&b[..b.len() - 1], Path::new("d"), 2, 3).is_err());
    }
}
