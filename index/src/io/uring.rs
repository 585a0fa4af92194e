//! The io_uring backend: a ring per reader with the index files registered;
//! a batch is pushed as one submission with up to [`RING_DEPTH`] reads in
//! flight, topped up as completions arrive.
//!
//! Buffer ownership: the kernel writes into the caller's `AlignedBuf` while a
//! read is in flight, so `read_each` and `read_during` never return before
//! every submitted read has completed: not on error, and not while
//! unwinding from a panic in the completion callback or in the work run
//! during the reads (a [`Drain`] guard waits for them as it drops). The
//! `&mut AlignedBuf` borrow keeps the buffer alive and unmoved until then,
//! and keeps the work from reaching it.

use super::{short_read, AlignedBuf, IoFiles, OnDone, PageReader, ReadReq, Work};
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
        self.run(reqs, buf, None, on_done)
    }

    fn read_during(&mut self, reqs: &[ReadReq], buf: &mut AlignedBuf, work: &mut Work) -> Result<(), IndexError> {
        self.run(reqs, buf, Some(work), &mut |_, _| Ok(()))
    }
}

impl UringReader {
    /// Submits `reqs`, runs `work` (if any) once the first submissions are
    /// with the kernel, and hands each completed request to `on_done`.
    fn run(
        &mut self,
        reqs: &[ReadReq],
        buf: &mut AlignedBuf,
        mut work: Option<&mut Work>,
        on_done: &mut OnDone,
    ) -> Result<(), IndexError> {
        // Check 1: every request lies inside the buffer.
        if let Some(r) = reqs.iter().find(|r| r.buf_offset + r.len > buf.capacity()) {
            return Err(IndexError::Backend(format!("read of {} bytes does not fit the buffer", r.len)));
        }
        let base = buf.as_mut_ptr();
        let depth = self.depth;
        let files = &*self.files;
        // Declared after `buf`'s borrow begins and dropped before it ends, on
        // every path out of this function, unwinding included.
        let mut g = Drain { ring: &mut self.ring, files, in_flight: 0 };
        let mut next = 0usize;
        let mut first_error: Option<IndexError> = None;
        while next < reqs.len() || g.in_flight > 0 {
            // Stop submitting after an error, but keep reaping what is in flight.
            while first_error.is_none() && next < reqs.len() && g.in_flight < depth {
                let r = &reqs[next];
                // SAFETY: from check 1 the range is inside the buffer.
                let dst = unsafe { base.add(r.buf_offset) };
                let sqe = opcode::Read::new(types::Fixed(r.file as u32), dst, r.len as u32)
                    .offset(r.offset)
                    .build()
                    .user_data(next as u64);
                // SAFETY: the buffer range stays valid and untouched until the
                // completion is reaped, here or by `Drain`; the fixed file
                // index is one we registered in `new`.
                if unsafe { g.ring.submission().push(&sqe) }.is_err() {
                    break;
                }
                next += 1;
                g.submitted();
            }
            if g.in_flight == 0 {
                break;
            }
            if let Some(work) = work.take() {
                // The reads go to the kernel now; the work runs while they
                // are served (it cannot reach `buf`: only `base` does).
                if let Err(e) = g.ring.submit() {
                    first_error.get_or_insert(IndexError::Backend(format!("io_uring submit: {e}")));
                }
                if let Err(e) = work() {
                    first_error.get_or_insert(e);
                }
            }
            if let Err(e) = g.wait_one() {
                // The kernel may still own buffers: we cannot return safely
                // until they complete, so keep waiting on the completion queue.
                first_error.get_or_insert(IndexError::Backend(format!("io_uring submit: {e}")));
            }
            loop {
                // One entry at a time: the queue's borrow ends with the statement.
                let Some(cqe) = g.ring.completion().next() else { break };
                g.reaped();
                let r = &reqs[cqe.user_data() as usize];
                let res = cqe.result();
                if res < 0 {
                    let error = std::io::Error::from_raw_os_error(-res);
                    first_error.get_or_insert(FormatError::Io { path: files.path(r.file).to_path_buf(), error }.into());
                } else if res as usize != r.len {
                    first_error.get_or_insert(short_read(files, r, res as usize));
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
        drop(g);
        match (first_error, work) {
            (Some(e), _) => Err(e),
            // Nothing was in flight (no requests): the work still runs.
            (None, Some(work)) => work(),
            (None, None) => Ok(()),
        }
    }
}

/// Reads the kernel may still be writing into the caller's buffer. Its drop
/// waits for each to complete (discarding the results), so leaving
/// `read_each` by any path, a panic in the callback included, never frees or
/// hands back a buffer under the kernel, nor leaves stale completions in
/// the ring for the next call.
struct Drain<'a> {
    ring: &'a mut IoUring,
    files: &'a IoFiles,
    in_flight: usize,
}

impl Drain<'_> {
    fn submitted(&mut self) {
        self.in_flight += 1;
        self.files.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn reaped(&mut self) {
        self.in_flight -= 1;
        self.files.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Submits what is queued and waits for at least one completion;
    /// interruptions are retried by the caller's loop.
    fn wait_one(&mut self) -> std::io::Result<()> {
        match self.ring.submit_and_wait(1) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EBUSY)) => Ok(()),
            Err(e) => {
                std::thread::yield_now();
                Err(e)
            }
        }
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        while self.in_flight > 0 {
            let _ = self.wait_one();
            while self.ring.completion().next().is_some() {
                self.reaped();
            }
        }
    }
}
