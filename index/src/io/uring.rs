//! The io_uring backend: a ring per reader with the index files registered;
//! a batch is pushed as one submission with up to [`RING_DEPTH`] reads in
//! flight, topped up as completions arrive.
//!
//! Buffer ownership: the kernel writes into the caller's `AlignedBuf` while a
//! read is in flight, so `read_all` never returns (not even on error) before
//! every submitted read has completed; the `&mut AlignedBuf` borrow keeps the
//! buffer alive and unmoved for that whole time.

use super::{short_read, AlignedBuf, IoFiles, OnDone, PageReader, ReadReq};
use crate::error::{FormatError, IndexError};
use io_uring::{opcode, types, IoUring};
use std::os::fd::AsRawFd;
use std::sync::Arc;

pub struct UringReader {
    ring: IoUring,
    files: Arc<IoFiles>,
    depth: usize,
}

impl UringReader {
    pub fn new(files: Arc<IoFiles>, depth: u32) -> std::io::Result<Self> {
        let ring = IoUring::new(depth)?;
        let fds: Vec<i32> = files.files.iter().map(|(_, f)| f.as_raw_fd()).collect();
        ring.submitter().register_files(&fds)?;
        Ok(UringReader { ring, files, depth: depth as usize })
    }
}

impl PageReader for UringReader {
    fn name(&self) -> &'static str {
        "io_uring"
    }

    fn read_all(&mut self, reqs: &[ReadReq], buf: &mut AlignedBuf) -> Result<(), IndexError> {
        self.read_each(reqs, buf, &mut |_, _| Ok(()))
    }

    fn read_each(&mut self, reqs: &[ReadReq], buf: &mut AlignedBuf, on_done: &mut OnDone) -> Result<(), IndexError> {
        // Check 1: every request lies inside the buffer.
        if let Some(r) = reqs.iter().find(|r| r.buf_offset + r.len > buf.capacity()) {
            return Err(IndexError::Backend(format!("read of {} bytes does not fit the buffer", r.len)));
        }
        let base = buf.as_mut_ptr();
        let mut next = 0usize;
        let mut in_flight = 0usize;
        let mut first_error: Option<IndexError> = None;
        while next < reqs.len() || in_flight > 0 {
            // Stop submitting after an error, but keep reaping what is in flight.
            while first_error.is_none() && next < reqs.len() && in_flight < self.depth {
                let r = &reqs[next];
                // SAFETY: from check 1 the range is inside the buffer.
                let dst = unsafe { base.add(r.buf_offset) };
                let sqe = opcode::Read::new(types::Fixed(r.file as u32), dst, r.len as u32)
                    .offset(r.offset)
                    .build()
                    .user_data(next as u64);
                // SAFETY: the buffer range stays valid and untouched until the
                // completion is reaped below; the fixed file index is one we
                // registered in `new`.
                if unsafe { self.ring.submission().push(&sqe) }.is_err() {
                    break;
                }
                next += 1;
                in_flight += 1;
                self.files.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if in_flight == 0 {
                break;
            }
            if let Err(e) = self.ring.submit_and_wait(1) {
                if e.raw_os_error() == Some(libc::EINTR) || e.raw_os_error() == Some(libc::EBUSY) {
                    continue;
                }
                // The kernel may still own buffers: we cannot return safely
                // until they complete, so keep waiting on the completion queue.
                first_error.get_or_insert(IndexError::Backend(format!("io_uring submit: {e}")));
                std::thread::yield_now();
            }
            for cqe in self.ring.completion() {
                in_flight -= 1;
                self.files.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                let r = &reqs[cqe.user_data() as usize];
                let res = cqe.result();
                if res < 0 {
                    let error = std::io::Error::from_raw_os_error(-res);
                    first_error
                        .get_or_insert(FormatError::Io { path: self.files.path(r.file).to_path_buf(), error }.into());
                } else if res as usize != r.len {
                    first_error.get_or_insert(short_read(&self.files, r, res as usize));
                } else if first_error.is_none() {
                    // SAFETY: from check 1 the range is inside the buffer; its
                    // read has completed, so the kernel no longer writes it,
                    // and no Rust reference to it exists (the buffer is only
                    // reached through `base` while reads are in flight).
                    let region = unsafe { std::slice::from_raw_parts(base.add(r.buf_offset), r.len) };
                    if let Err(e) = on_done(cqe.user_data() as usize, region) {
                        first_error = Some(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
