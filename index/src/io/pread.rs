//! The portable backend: one positioned read after another.

use super::{short_read, AlignedBuf, IoFiles, PageReader, ReadReq};
use crate::error::{FormatError, IndexError};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

pub struct PreadReader {
    files: Arc<IoFiles>,
}

impl PreadReader {
    pub fn new(files: Arc<IoFiles>) -> Self {
        PreadReader { files }
    }
}

impl PageReader for PreadReader {
    fn name(&self) -> &'static str {
        "pread"
    }

    fn read_all(&mut self, reqs: &[ReadReq], buf: &mut AlignedBuf) -> Result<(), IndexError> {
        let slice = buf.as_mut_slice();
        for r in reqs {
            let (path, file) = &self.files.files[r.file];
            let dst = &mut slice[r.buf_offset..r.buf_offset + r.len];
            // One read in flight at a time in this backend.
            self.files.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _done = InFlightGuard(&self.files.in_flight);
            let mut got = 0;
            while got < r.len {
                match file.read_at(&mut dst[got..], r.offset + got as u64) {
                    Ok(0) => return Err(short_read(&self.files, r, got)),
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(FormatError::Io { path: path.clone(), error: e }.into()),
                }
            }
        }
        Ok(())
    }
}

/// Decrements the in-flight gauge however the read ends.
struct InFlightGuard<'a>(&'a std::sync::atomic::AtomicI64);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
