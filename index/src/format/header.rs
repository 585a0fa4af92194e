//! The fixed header every data file starts with: magic, format version,
//! header length, body length and body CRC-32. Little endian throughout.
//!
//! | offset | size | field |
//! | ---: | ---: | --- |
//! | 0 | 8 | magic, one per file kind |
//! | 8 | 4 | format version (u32) |
//! | 12 | 4 | header length in bytes (u32): 64, or 4096 for page-aligned files |
//! | 16 | 8 | body length in bytes (u64) |
//! | 24 | 4 | CRC-32 (IEEE) of the body |
//! | 28 | 36 | zero |
//!
//! The zero bytes (to the header length: 64, or 4096) are checked to be
//! zero: no checksum covers the header, and a flipped bit anywhere in it is
//! damage that must not pass unnoticed.

use crate::error::{FormatError, IoContext};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Format 2: 64-bit user ids (vector rows, binary collections' entries),
/// shard fields in the manifest. Format 3 adds the optional `codes.bin`
/// (resident row codes); a format 2 index is read as one without it.
/// Format 4 may store the centroid graph at the end of `centroids.bin`
/// (flagged in its preamble, 0 in older files, read as no graph).
/// Format 5 adds flag 2: the graph is walked from the best of a few scanned
/// groups rather than from its entry point (older readers would misread it).
/// Format 1 (32-bit row ids) is not read: opening one says to rebuild.
pub const FORMAT_VERSION: u32 = 6;
pub const MIN_FORMAT_VERSION: u32 = 2;
pub const MAX_FORMAT_VERSION: u32 = 6;
pub const HEADER_FIXED_BYTES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Centroids,
    Directory,
    Postings,
    Vectors,
    Codes,
}

impl FileKind {
    pub fn magic(self) -> [u8; 8] {
        match self {
            FileKind::Centroids => *b"FTHMCENT",
            FileKind::Directory => *b"FTHMDIRS",
            FileKind::Postings => *b"FTHMPOST",
            FileKind::Vectors => *b"FTHMVECS",
            FileKind::Codes => *b"FTHMCODE",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FileKind::Centroids => "centroids",
            FileKind::Directory => "directory",
            FileKind::Postings => "postings",
            FileKind::Vectors => "vectors",
            FileKind::Codes => "codes",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub kind: FileKind,
    pub version: u32,
    pub header_bytes: u32,
    pub body_bytes: u64,
    pub body_crc: u32,
}

impl FileHeader {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.header_bytes as usize];
        b[0..8].copy_from_slice(&self.kind.magic());
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&self.header_bytes.to_le_bytes());
        b[16..24].copy_from_slice(&self.body_bytes.to_le_bytes());
        b[24..28].copy_from_slice(&self.body_crc.to_le_bytes());
        b
    }

    /// Parses and checks a header: magic, version range, lengths against the
    /// actual file length.
    pub fn decode(bytes: &[u8], kind: FileKind, path: &Path, file_len: u64) -> Result<Self, FormatError> {
        let corrupt = |offset: u64, what: String| FormatError::Corrupt { path: path.to_path_buf(), offset, what };
        if bytes.len() < HEADER_FIXED_BYTES {
            return Err(corrupt(
                0,
                format!("file of {} bytes is shorter than the {HEADER_FIXED_BYTES}-byte header", bytes.len()),
            ));
        }
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&bytes[0..8]);
        if magic != kind.magic() {
            return Err(FormatError::BadMagic { path: path.to_path_buf(), kind: kind.name(), found: magic });
        }
        let u32_at = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let version = u32_at(8);
        if !(MIN_FORMAT_VERSION..=MAX_FORMAT_VERSION).contains(&version) {
            return Err(FormatError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                min: MIN_FORMAT_VERSION,
                max: MAX_FORMAT_VERSION,
            });
        }
        let header_bytes = u32_at(12);
        if header_bytes != HEADER_FIXED_BYTES as u32 && header_bytes != super::PAGE_BYTES as u32 {
            return Err(corrupt(12, format!("header length {header_bytes} is neither 64 nor 4096")));
        }
        let mut body = [0u8; 8];
        body.copy_from_slice(&bytes[16..24]);
        let body_bytes = u64::from_le_bytes(body);
        // A body length near u64::MAX must not wrap around to the file's length.
        let Some(expected_len) = (header_bytes as u64).checked_add(body_bytes) else {
            return Err(corrupt(16, format!("body length {body_bytes} overflows")));
        };
        if expected_len != file_len {
            return Err(corrupt(
                file_len.min(expected_len),
                format!("header says {expected_len} bytes but the file has {file_len}; truncated or overwritten"),
            ));
        }
        check_zero(&bytes[28..bytes.len().min(header_bytes as usize)], 28, path)?;
        Ok(FileHeader { kind, version, header_bytes, body_bytes, body_crc: u32_at(24) })
    }

    /// Reads and checks the header of an open file.
    pub fn read(file: &File, kind: FileKind, path: &Path) -> Result<Self, FormatError> {
        let len = file.metadata().at(path)?.len();
        let mut b = vec![0u8; HEADER_FIXED_BYTES.min(len as usize)];
        file.read_exact_at(&mut b, 0).at(path)?;
        let h = Self::decode(&b, kind, path, len)?;
        // A page-long header: the rest of its page is zero too.
        if h.header_bytes as usize > HEADER_FIXED_BYTES {
            let mut rest = vec![0u8; h.header_bytes as usize - HEADER_FIXED_BYTES];
            file.read_exact_at(&mut rest, HEADER_FIXED_BYTES as u64).at(path)?;
            check_zero(&rest, HEADER_FIXED_BYTES, path)?;
        }
        Ok(h)
    }
}

/// Fails at the first byte of `bytes` (at file offset `from`) that is not zero.
fn check_zero(bytes: &[u8], from: usize, path: &Path) -> Result<(), FormatError> {
    match bytes.iter().position(|&b| b != 0) {
        None => Ok(()),
        Some(i) => Err(FormatError::Corrupt {
            path: path.to_path_buf(),
            offset: (from + i) as u64,
            what: format!("header byte {} is reserved and must be 0", from + i),
        }),
    }
}

/// Reads a small file whole, checks its header and body CRC; returns the body.
pub fn read_checked(path: &Path, kind: FileKind) -> Result<Vec<u8>, FormatError> {
    // Only a regular file (a FIFO would block); as large as an index's
    // small files get (the centroids of 10^9 vectors are a few GiB).
    let bytes = super::files::read_regular(path, u64::MAX / 2).at(path)?;
    let h = FileHeader::decode(&bytes, kind, path, bytes.len() as u64)?;
    let body = bytes[h.header_bytes as usize..].to_vec();
    let found = crc32fast::hash(&body);
    if found != h.body_crc {
        return Err(FormatError::Checksum {
            path: path.to_path_buf(),
            section: "body".into(),
            expected: h.body_crc,
            found,
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FileHeader {
        FileHeader {
            kind: FileKind::Postings,
            version: FORMAT_VERSION,
            header_bytes: 64,
            body_bytes: 10,
            body_crc: 0xdead_beef,
        }
    }

    #[test]
    fn header_round_trips() {
        let h = sample();
        let b = h.encode();
        assert_eq!(FileHeader::decode(&b, FileKind::Postings, Path::new("p"), 74).unwrap(), h);
    }

    /// Found by the index_files fuzz target: the length sum overflowed.
    #[test]
    fn a_huge_body_length_is_rejected_not_wrapped() {
        let mut b = sample().encode();
        b[16..24].copy_from_slice(&(u64::MAX - 10).to_le_bytes());
        let err = FileHeader::decode(&b, FileKind::Postings, Path::new("p"), 53).unwrap_err();
        assert!(matches!(err, FormatError::Corrupt { offset: 16, .. }), "{err}");
    }

    #[test]
    fn every_other_version_is_rejected() {
        for v in [2u32, 3, 4, 5, 6] {
            let mut b = sample().encode();
            b[8..12].copy_from_slice(&v.to_le_bytes());
            assert!(FileHeader::decode(&b, FileKind::Postings, Path::new("p"), 74).is_ok(), "version {v} is read");
        }
        for v in [0u32, 1, 7, 100, u32::MAX] {
            let mut b = sample().encode();
            b[8..12].copy_from_slice(&v.to_le_bytes());
            let err = FileHeader::decode(&b, FileKind::Postings, Path::new("p"), 74).unwrap_err();
            assert!(matches!(err, FormatError::UnsupportedVersion { found, .. } if found == v));
        }
    }

    #[test]
    fn wrong_magic_short_header_and_length_mismatch_are_rejected() {
        let b = sample().encode();
        assert!(matches!(
            FileHeader::decode(&b, FileKind::Vectors, Path::new("p"), 74),
            Err(FormatError::BadMagic { .. })
        ));
        assert!(matches!(
            FileHeader::decode(&b[..20], FileKind::Postings, Path::new("p"), 20),
            Err(FormatError::Corrupt { offset: 0, .. })
        ));
        let err = FileHeader::decode(&b, FileKind::Postings, Path::new("p"), 70).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
