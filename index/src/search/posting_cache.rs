//! Posting codes held in memory under the open's memory budget: every
//! posting's bytes (rows and codes, as in `postings.bin`) packed back to
//! back, each checked against its directory CRC once, at open. With them
//! the first search stage reads nothing; only the rerank does.

use crate::error::{FormatError, Result};
use crate::format::layout::PostingRef;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Item `p`'s range in a list cut by `offsets` (`offsets[p]..offsets[p + 1]`;
/// empty past the end).
pub(super) fn span(offsets: &[u64], p: u32) -> std::ops::Range<usize> {
    let p = p as usize;
    match (offsets.get(p), offsets.get(p + 1)) {
        (Some(&a), Some(&b)) => a as usize..b as usize,
        _ => 0..0,
    }
}

pub struct PostingCache {
    /// `offsets[p]..offsets[p + 1]`: posting p's bytes in `bytes`.
    offsets: Vec<u64>,
    bytes: Vec<u8>,
}

/// Bytes a cache of `postings` would hold (without page padding).
pub fn cached_bytes(postings: &[PostingRef], entry_bytes: usize) -> u64 {
    postings.iter().map(|r| r.len_bytes(entry_bytes)).sum::<u64>() + 8 * (postings.len() as u64 + 1)
}

impl PostingCache {
    /// Reads every posting of `path` (its offsets already checked against
    /// the file by the open) and checks each one's CRC.
    pub fn load(path: &Path, postings: &[PostingRef], entry_bytes: usize) -> Result<PostingCache> {
        let io = |error| FormatError::Io { path: path.to_path_buf(), error };
        let file = File::open(path).map_err(io)?;
        let total = postings.iter().map(|r| r.len_bytes(entry_bytes)).sum::<u64>();
        let mut bytes = crate::io::hugepages::zeroed_hinted(total as usize);
        let mut offsets = Vec::with_capacity(postings.len() + 1);
        let mut at = 0usize;
        offsets.push(0);
        for (p, r) in postings.iter().enumerate() {
            let len = r.len_bytes(entry_bytes) as usize;
            let dst = &mut bytes[at..at + len];
            file.read_exact_at(dst, r.offset).map_err(io)?;
            let found = crc32fast::hash(dst);
            if len > 0 && found != r.crc {
                return Err(FormatError::Checksum {
                    path: path.to_path_buf(),
                    section: format!("posting {p} at byte {}", r.offset),
                    expected: r.crc,
                    found,
                }
                .into());
            }
            at += len;
            offsets.push(at as u64);
        }
        Ok(PostingCache { offsets, bytes })
    }

    /// Posting `p`'s bytes (empty past the end).
    #[inline]
    pub fn posting(&self, p: u32) -> &[u8] {
        &self.bytes[span(&self.offsets, p)]
    }

    pub fn resident_bytes(&self) -> u64 {
        (self.bytes.len() + 8 * self.offsets.len()) as u64
    }
}
