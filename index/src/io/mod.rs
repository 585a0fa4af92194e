//! Positioned page reads behind one trait, with two backends: io_uring (many
//! reads in flight per query, registered files) and portable `pread`. Files
//! are opened with O_DIRECT so reads really reach the disk; every offset,
//! length and buffer is a multiple of [`PAGE_BYTES`].
//!
//! All `unsafe` of the engine's I/O lives in this module: [`aligned`] (the
//! page-aligned buffer) and [`uring`] (handing buffers to the kernel).

mod aligned;
pub mod hugepages;
mod pread;
mod uring;

pub use aligned::AlignedBuf;
pub use pread::PreadReader;
pub use uring::UringReader;

use crate::error::{FormatError, IndexError, IoContext};
pub use crate::format::PAGE_BYTES;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// One read: `len` bytes of file `file` at `offset` into the caller's buffer
/// at `buf_offset`. All three are multiples of [`PAGE_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadReq {
    pub file: usize,
    pub offset: u64,
    pub len: usize,
    pub buf_offset: usize,
}

/// A backend that performs batches of page reads.
pub trait PageReader: Send {
    fn name(&self) -> &'static str;
    /// Performs every request; returns only when none is in flight.
    fn read_all(&mut self, reqs: &[ReadReq], buf: &mut AlignedBuf) -> Result<(), IndexError>;

    /// Like `read_all`, but hands each request's bytes to `on_done` as soon
    /// as that request completes (in completion order), so work on early
    /// reads overlaps the later ones. After an error from `on_done` or a
    /// read, nothing more is delivered; in-flight reads are still drained.
    fn read_each(&mut self, reqs: &[ReadReq], buf: &mut AlignedBuf, on_done: &mut OnDone) -> Result<(), IndexError> {
        self.read_all(reqs, buf)?;
        for (i, r) in reqs.iter().enumerate() {
            on_done(i, &buf.as_slice()[r.buf_offset..r.buf_offset + r.len])?;
        }
        Ok(())
    }

    /// Performs every request and runs `work` once while they are in
    /// flight, so CPU work overlaps the disk's latency. `work` cannot touch
    /// `buf` (it is borrowed here); it sees the bytes only after this
    /// returns. A backend that cannot overlap runs `work` first.
    fn read_during(&mut self, reqs: &[ReadReq], buf: &mut AlignedBuf, work: &mut Work) -> Result<(), IndexError> {
        work()?;
        self.read_all(reqs, buf)
    }
}

/// Callback of [`PageReader::read_each`]: request index and its bytes.
pub type OnDone<'a> = dyn FnMut(usize, &[u8]) -> Result<(), IndexError> + 'a;

/// Work of [`PageReader::read_during`].
pub type Work<'a> = dyn FnMut() -> Result<(), IndexError> + 'a;

/// The files a reader serves, opened once per index and shared.
#[derive(Debug)]
pub struct IoFiles {
    pub files: Vec<(PathBuf, File)>,
    pub direct: bool,
    /// Reads submitted and not yet completed, across all readers (a gauge
    /// for metrics).
    pub in_flight: std::sync::atomic::AtomicI64,
}

impl IoFiles {
    /// Opens `paths` read-only, with O_DIRECT when `direct` is set and the
    /// file system allows it (tmpfs does not: then buffered, and `direct`
    /// reports false).
    pub fn open(paths: &[PathBuf], direct: bool) -> Result<Self, FormatError> {
        let mut files = Vec::new();
        let mut all_direct = direct;
        for p in paths {
            let f = if direct {
                match open_direct(p) {
                    Ok(f) => f,
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        all_direct = false;
                        File::open(p).at(p)?
                    }
                    Err(e) => return Err(FormatError::Io { path: p.clone(), error: e }),
                }
            } else {
                File::open(p).at(p)?
            };
            files.push((p.clone(), f));
        }
        if direct && !all_direct {
            tracing::warn!("O_DIRECT is not supported by this file system; reads go through the page cache");
        }
        Ok(IoFiles { files, direct: all_direct, in_flight: Default::default() })
    }

    pub fn path(&self, file: usize) -> &Path {
        &self.files[file].0
    }
}

fn open_direct(p: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(p)
}

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// io_uring when the kernel allows it, else pread.
    Auto,
    #[serde(alias = "io_uring")]
    Uring,
    Pread,
}

impl FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "uring" | "io_uring" => Ok(BackendChoice::Uring),
            "pread" => Ok(BackendChoice::Pread),
            o => Err(format!("unknown I/O backend {o:?} (expected auto, uring or pread)")),
        }
    }
}

/// Reads in flight per ring.
pub const RING_DEPTH: u32 = 128;

/// Creates a reader for `files`; `Auto` probes io_uring and falls back.
pub fn make_reader(choice: BackendChoice, files: Arc<IoFiles>) -> Result<Box<dyn PageReader>, IndexError> {
    match choice {
        BackendChoice::Pread => Ok(Box::new(PreadReader::new(files))),
        BackendChoice::Uring => UringReader::new(files, RING_DEPTH)
            .map(|r| Box::new(r) as Box<dyn PageReader>)
            .map_err(|e| IndexError::Backend(format!("io_uring unavailable: {e}"))),
        BackendChoice::Auto => match UringReader::new(files.clone(), RING_DEPTH) {
            Ok(r) => Ok(Box::new(r)),
            Err(e) => {
                tracing::debug!("io_uring unavailable ({e}); using pread");
                Ok(Box::new(PreadReader::new(files)))
            }
        },
    }
}

/// Which backend `Auto` resolves to on this machine, and why.
pub fn probe_backend(choice: BackendChoice) -> (BackendChoice, String) {
    match choice {
        BackendChoice::Auto => match io_uring::IoUring::new(8) {
            Ok(_) => (BackendChoice::Uring, "io_uring available".into()),
            Err(e) => (BackendChoice::Pread, format!("io_uring unavailable: {e}")),
        },
        c => (c, "chosen by configuration".into()),
    }
}

pub(crate) fn short_read(files: &IoFiles, r: &ReadReq, got: usize) -> IndexError {
    FormatError::Corrupt {
        path: files.path(r.file).to_path_buf(),
        offset: r.offset + got as u64,
        what: format!("short read: {got} of {} bytes; file truncated?", r.len),
    }
    .into()
}

#[cfg(test)]
mod conformance;
