//! Durable writing: files that checksum what they write, synced files, and
//! the atomic publish of a finished index directory.

use crate::error::{FormatError, IoContext};
use crate::format::header::{FileHeader, FileKind, FORMAT_VERSION};
use crate::format::manifest::FileEntry;
use crate::format::PAGE_BYTES;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A buffered file writer that tracks the CRC-32 and length of the body
/// written after its header.
pub struct BodyWriter {
    path: PathBuf,
    out: BufWriter<File>,
    crc: crc32fast::Hasher,
    pub body_bytes: u64,
}

impl BodyWriter {
    /// Creates `path` and reserves `header_bytes` for the header.
    pub fn create(path: &Path, header_bytes: usize) -> Result<Self, FormatError> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path).at(path)?);
        out.write_all(&vec![0u8; header_bytes]).at(path)?;
        Ok(BodyWriter { path: path.to_path_buf(), out, crc: crc32fast::Hasher::new(), body_bytes: 0 })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<(), FormatError> {
        self.crc.update(bytes);
        self.body_bytes += bytes.len() as u64;
        self.out.write_all(bytes).at(&self.path)
    }

    pub fn pad_to(&mut self, body_offset: u64) -> Result<(), FormatError> {
        let zeros = [0u8; 4096];
        while self.body_bytes < body_offset {
            let n = ((body_offset - self.body_bytes) as usize).min(zeros.len());
            self.write(&zeros[..n])?;
        }
        Ok(())
    }

    /// Finishes a file whose header takes a whole page (postings, vectors).
    pub fn finish_paged(self, kind: FileKind) -> Result<FileEntry, FormatError> {
        let (bytes, crc32) = self.finish(|body_bytes, body_crc| {
            FileHeader { kind, version: FORMAT_VERSION, header_bytes: PAGE_BYTES as u32, body_bytes, body_crc }.encode()
        })?;
        Ok(FileEntry { bytes, crc32 })
    }

    /// Writes the header built from the final CRC and length, syncs, and
    /// returns the whole file's length and the body CRC.
    pub fn finish(self, make_header: impl FnOnce(u64, u32) -> Vec<u8>) -> Result<(u64, u32), FormatError> {
        let BodyWriter { path, out, crc, body_bytes } = self;
        let file = out.into_inner().map_err(|e| FormatError::Io { path: path.clone(), error: e.into_error() })?;
        let crc = crc.finalize();
        let header = make_header(body_bytes, crc);
        use std::os::unix::fs::FileExt;
        file.write_all_at(&header, 0).at(&path)?;
        file.sync_all().at(&path)?;
        Ok((header.len() as u64 + body_bytes, crc))
    }
}

/// Moves a finished build directory into place: rename within the same
/// parent, then sync the parent so the rename is durable.
pub fn publish(tmp: &Path, out: &Path) -> Result<(), FormatError> {
    if out.exists() {
        return Err(FormatError::BadInput { path: out.to_path_buf(), what: "appeared during the build".into() });
    }
    std::fs::rename(tmp, out).at(out)?;
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(parent).and_then(|d| d.sync_all()).at(parent)
}

/// The temporary build directory beside `out`; removed on drop unless kept.
pub struct TempBuildDir {
    pub path: PathBuf,
    keep: bool,
}

impl TempBuildDir {
    /// The temporary directory for building `out`. With `adopt`, a
    /// directory left by an interrupted build of `out` that holds
    /// `checkpoint` is taken over (renamed to this process's name; the
    /// second value says so); other leftovers are removed.
    pub fn create(out: &Path, adopt: bool) -> Result<(Self, bool), FormatError> {
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "index".into());
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let path = parent.join(format!(".{name}.building-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let kept = if adopt { adoptable(parent, &name) } else { None };
        remove_stale(parent, &name, kept.as_deref());
        let adopted = match kept {
            Some(old) => {
                tracing::info!("resuming the interrupted build in {}", old.display());
                std::fs::rename(&old, &path).at(&path)?;
                true
            }
            None => {
                std::fs::create_dir_all(&path).at(&path)?;
                false
            }
        };
        Ok((TempBuildDir { path, keep: false }, adopted))
    }

    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for TempBuildDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Temporary directories left by builds of `name` that were killed: their
/// process no longer exists.
fn leftovers(parent: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!(".{name}.building-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let file_name = e.file_name().to_string_lossy().into_owned();
            file_name
                .strip_prefix(&prefix)
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// The newest leftover holding a checkpoint.
fn adoptable(parent: &Path, name: &str) -> Option<PathBuf> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    leftovers(parent, name)
        .into_iter()
        .filter(|p| p.join(super::checkpoint::FILE).is_file())
        .max_by_key(|p| modified(&p.join(super::checkpoint::FILE)))
}

/// Removes the leftovers of killed builds, but `keep`.
fn remove_stale(parent: &Path, name: &str, keep: Option<&Path>) {
    for p in leftovers(parent, name) {
        if Some(p.as_path()) != keep {
            tracing::info!("removing {} left by an interrupted build", p.display());
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}
