//! Posting codes held in memory under the open's memory budget: every
//! posting's bytes (rows and codes, as in `postings.bin`) packed back to
//! back, each checked against its directory CRC once, at open. With them
//! the first search stage reads nothing; only the rerank does.
//!
//! When every posting lists exactly the vectors it is home to (one copy of
//! each vector: `--replicas 1`), the rows are left out: posting p's codes
//! are held in row order, so entry i is row `first_row(p) + i`. At 50-d
//! with 17-byte codes that is 4 of 21 bytes a vector.

use crate::error::{FormatError, Result};
use crate::format::layout::PostingRef;
use std::fs::File;
use std::ops::Range;
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
    /// Whether postings are held as codes only, in row order (see the
    /// module's notes); else as in `postings.bin`.
    implicit_rows: bool,
}

/// How a posting's entries are keyed in `postings.bin`.
#[derive(Debug, Clone, Copy)]
pub struct EntryShape {
    /// Bytes of one entry: key and code.
    pub entry_bytes: usize,
    /// Bytes of the key: a `vectors.bin` row (u32), or an id.
    pub key_bytes: usize,
    /// Whether keys are rows (not ids) so they may be left out.
    pub keys_are_rows: bool,
}

/// Whether the rows may be left out: every posting lists as many entries
/// as it is home to vectors (`homes(p)`), so it lists exactly those (a
/// posting lists all its home vectors, then replicas).
pub fn rows_implicit(postings: &[PostingRef], shape: EntryShape, homes: &dyn Fn(u32) -> Range<u32>) -> bool {
    shape.keys_are_rows && postings.iter().enumerate().all(|(p, r)| homes(p as u32).len() == r.count as usize)
}

/// Bytes a cache of `postings` would hold (without page padding).
pub fn cached_bytes(postings: &[PostingRef], shape: EntryShape, implicit_rows: bool) -> u64 {
    let per_entry = if implicit_rows { shape.entry_bytes - shape.key_bytes } else { shape.entry_bytes };
    postings.iter().map(|r| r.len_bytes(per_entry)).sum::<u64>() + 8 * (postings.len() as u64 + 1)
}

impl PostingCache {
    /// Reads every posting of `path` (its offsets already checked against
    /// the file by the open) and checks each one's CRC; with `homes`
    /// (see [`rows_implicit`]) keeps codes only, in row order.
    pub fn load(
        path: &Path,
        postings: &[PostingRef],
        shape: EntryShape,
        homes: Option<&dyn Fn(u32) -> Range<u32>>,
    ) -> Result<PostingCache> {
        let io = |error| FormatError::Io { path: path.to_path_buf(), error };
        let file = File::open(path).map_err(io)?;
        let total = cached_bytes(postings, shape, homes.is_some()) - 8 * (postings.len() as u64 + 1);
        let mut bytes = crate::io::hugepages::zeroed_hinted(total as usize);
        let mut offsets = Vec::with_capacity(postings.len() + 1);
        let mut read = Vec::new();
        let mut at = 0usize;
        offsets.push(0);
        for (p, r) in postings.iter().enumerate() {
            let len = r.len_bytes(shape.entry_bytes) as usize;
            read.resize(len, 0);
            file.read_exact_at(&mut read, r.offset).map_err(io)?;
            let found = crc32fast::hash(&read);
            if len > 0 && found != r.crc {
                return Err(FormatError::Checksum {
                    path: path.to_path_buf(),
                    section: format!("posting {p} at byte {}", r.offset),
                    expected: r.crc,
                    found,
                }
                .into());
            }
            let kept = match homes {
                Some(homes) => {
                    let n = r.count as usize;
                    let dst = &mut bytes[at..at + len - n * shape.key_bytes];
                    codes_in_row_order(&read, n, shape, homes(p as u32), dst).ok_or_else(|| FormatError::Corrupt {
                        path: path.to_path_buf(),
                        offset: r.offset,
                        what: format!("posting {p} lists rows other than the vectors it is home to"),
                    })?;
                    dst.len()
                }
                None => {
                    bytes[at..at + len].copy_from_slice(&read);
                    len
                }
            };
            at += kept;
            offsets.push(at as u64);
        }
        Ok(PostingCache { offsets, bytes, implicit_rows: homes.is_some() })
    }

    /// Whether postings are held as codes only, entry i being row
    /// `first_row(p) + i`.
    pub fn implicit_rows(&self) -> bool {
        self.implicit_rows
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

/// The codes of a posting's `n` entries (`read`: rows, then codes) into
/// `dst` in the order of their rows, which must be exactly `home`; `None`
/// when they are not.
fn codes_in_row_order(read: &[u8], n: usize, shape: EntryShape, home: Range<u32>, dst: &mut [u8]) -> Option<()> {
    let code_bytes = shape.entry_bytes - shape.key_bytes;
    let (keys, codes) = read.split_at(n * shape.key_bytes);
    let mut placed = vec![false; n];
    for (key, code) in keys.chunks_exact(shape.key_bytes).zip(codes.chunks_exact(code_bytes.max(1))) {
        let row = u32::from_le_bytes(key.get(..4)?.try_into().ok()?);
        let slot = row.checked_sub(home.start).filter(|_| home.contains(&row))? as usize;
        if std::mem::replace(placed.get_mut(slot)?, true) {
            return None;
        }
        dst.get_mut(slot * code_bytes..(slot + 1) * code_bytes)?.copy_from_slice(code);
    }
    placed.iter().all(|&p| p).then_some(())
}
