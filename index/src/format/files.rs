//! Writing an index's small files: whole, synced, with their header; and
//! reading files a server reads while it serves (manifest, CURRENT, keys,
//! certificates) without hanging on a FIFO or filling memory from a device.

use crate::error::{FormatError, IoContext};
use crate::format::header::{FileHeader, FileKind, FORMAT_VERSION, HEADER_FIXED_BYTES};
use crate::format::FileEntry;
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Reads `path` whole when it is a regular file of at most `cap` bytes.
/// Opened with O_NONBLOCK, so a FIFO is refused instead of blocking the
/// caller until a writer appears, and `/dev/zero` (no end) is refused by
/// its type, not read until memory runs out.
pub fn read_regular(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file (a FIFO, device or directory?)"));
    }
    if meta.len() > cap {
        return Err(Error::new(ErrorKind::InvalidData, format!("{} bytes is over the {cap}-byte limit", meta.len())));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file that grows while read stops at the cap too.
    (&mut f).take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(Error::new(ErrorKind::InvalidData, format!("over the {cap}-byte limit")));
    }
    Ok(bytes)
}

/// Fails unless `path` is a regular file, without blocking on a FIFO:
/// checked before a file is opened the usual (blocking) way.
pub fn check_regular(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, device or directory?)",
        ));
    }
    Ok(())
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_text(path: &Path, cap: u64) -> std::io::Result<String> {
    String::from_utf8(read_regular(path, cap)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

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
