//! Writing an index's small files: whole, synced, with their header.

use crate::error::{FormatError, IoContext};
use crate::format::header::{FileHeader, FileKind, FORMAT_VERSION, HEADER_FIXED_BYTES};
use crate::format::FileEntry;
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Writes a whole small file and syncs it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), FormatError> {
    let mut f = File::create(path).at(path)?;
    f.write_all(bytes).at(path)?;
    f.sync_all().at(path)
}

/// Writes `dir/name`: a 64-byte header of `kind` (CRC and length of `body`)
/// then `body`, synced.
pub fn write_small(dir: &Path, name: &str, kind: FileKind, body: &[u8]) -> Result<FileEntry, FormatError> {
    let crc = crc32fast::hash(body);
    let header = FileHeader {
        kind,
        version: FORMAT_VERSION,
        header_bytes: HEADER_FIXED_BYTES as u32,
        body_bytes: body.len() as u64,
        body_crc: crc,
    };
    let mut bytes = header.encode();
    bytes.extend_from_slice(body);
    write_synced(&dir.join(name), &bytes)?;
    Ok(FileEntry { bytes: bytes.len() as u64, crc32: crc })
}
