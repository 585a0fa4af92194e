//! One battery run against every backend: they must return the same bytes
//! and the same errors.

use super::*;

fn fixture(name: &str, pages: usize) -> PathBuf {
    let dir = std::env::current_dir().unwrap().join("target").join("io-conformance");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}-{}", std::process::id()));
    let bytes: Vec<u8> = (0..pages * PAGE_BYTES).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&p, bytes).unwrap();
    p
}

/// One-page reads of the first `n` pages of file 0, in order, each to the
/// same place in the buffer.
fn first_pages(n: usize) -> Vec<ReadReq> {
    (0..n)
        .map(|i| ReadReq { file: 0, offset: (i * PAGE_BYTES) as u64, len: PAGE_BYTES, buf_offset: i * PAGE_BYTES })
        .collect()
}

/// pread, and io_uring where the kernel allows it; with
/// `FATHOM_REQUIRE_URING=1` (CI) a missing io_uring fails the test instead.
fn backends(files: Arc<IoFiles>) -> Vec<Box<dyn PageReader>> {
    let mut v: Vec<Box<dyn PageReader>> = vec![Box::new(PreadReader::new(files.clone()))];
    match UringReader::new(files, 16) {
        Ok(r) => v.push(Box::new(r)),
        Err(e) if std::env::var("FATHOM_REQUIRE_URING").is_ok_and(|v| v == "1") => {
            panic!("FATHOM_REQUIRE_URING=1 but io_uring is unavailable: {e}")
        }
        Err(e) => eprintln!("io_uring not testable here: {e}"),
    }
    v
}

/// Runs `panicking` (a batch whose callback or work panics) on every
/// backend: it unwinds only after every read in flight has completed, so
/// the buffer is not freed under the kernel, and the reader's next batch
/// gets no stale completions.
fn panic_leaves_no_read_in_flight(name: &str, panicking: impl Fn(&mut dyn PageReader, &[ReadReq], &mut AlignedBuf)) {
    let a = fixture(name, 64);
    let expect = std::fs::read(&a).unwrap();
    let files = Arc::new(IoFiles::open(&[a], true).unwrap());
    let reqs = first_pages(48);
    for mut be in backends(files.clone()) {
        let mut buf = AlignedBuf::new();
        buf.ensure(48 * PAGE_BYTES);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| panicking(&mut *be, &reqs, &mut buf)));
        assert!(unwound.is_err(), "{}", be.name());
        drop(buf);
        assert_eq!(files.in_flight.load(std::sync::atomic::Ordering::Relaxed), 0, "{}", be.name());
        let mut buf = AlignedBuf::new();
        buf.ensure(48 * PAGE_BYTES);
        be.read_all(&reqs, &mut buf).unwrap();
        assert_eq!(buf.as_slice()[..48 * PAGE_BYTES], expect[..48 * PAGE_BYTES], "{}", be.name());
    }
}

/// A panic in the completion callback unwinds through `read_each` only
/// after every read in flight has completed.
#[test]
fn a_panicking_callback_leaves_no_read_in_flight() {
    panic_leaves_no_read_in_flight("panic", |be, reqs, buf| {
        let _ = be.read_each(reqs, buf, &mut |_, _| panic!("callback fails"));
    });
}

#[test]
fn backends_return_identical_bytes_for_many_reads_in_flight() {
    let a = fixture("a", 64);
    let b = fixture("b", 8);
    for direct in [true, false] {
        let files = Arc::new(IoFiles::open(&[a.clone(), b.clone()], direct).unwrap());
        let expect_a = std::fs::read(&a).unwrap();
        let expect_b = std::fs::read(&b).unwrap();
        // 40 reads (more than the ring depth of 16), mixed lengths and files.
        let mut reqs = Vec::new();
        let mut at = 0;
        for i in 0..40usize {
            let file = i % 3 / 2;
            let pages = 1 + i % 3;
            let max = if file == 0 { 64 } else { 8 };
            let offset = ((i * 13) % (max - pages + 1) * PAGE_BYTES) as u64;
            reqs.push(ReadReq { file, offset, len: pages * PAGE_BYTES, buf_offset: at });
            at += pages * PAGE_BYTES;
        }
        for mut be in backends(files.clone()) {
            let mut buf = AlignedBuf::new();
            buf.ensure(at);
            be.read_all(&reqs, &mut buf).unwrap();
            assert_eq!(files.in_flight.load(std::sync::atomic::Ordering::Relaxed), 0, "{}", be.name());
            for r in &reqs {
                let src = if r.file == 0 { &expect_a } else { &expect_b };
                assert_eq!(
                    &buf.as_slice()[r.buf_offset..r.buf_offset + r.len],
                    &src[r.offset as usize..r.offset as usize + r.len],
                    "{} direct={direct}",
                    be.name()
                );
            }
        }
    }
}

#[test]
fn read_each_delivers_every_request_once_with_its_bytes() {
    let a = fixture("each", 32);
    let expect = std::fs::read(&a).unwrap();
    let files = Arc::new(IoFiles::open(&[a], true).unwrap());
    let reqs: Vec<ReadReq> = (0..30)
        .map(|i| ReadReq {
            file: 0,
            offset: ((i * 7) % 32 * PAGE_BYTES) as u64,
            len: PAGE_BYTES,
            buf_offset: i * PAGE_BYTES,
        })
        .collect();
    for mut be in backends(files.clone()) {
        let mut buf = AlignedBuf::new();
        buf.ensure(30 * PAGE_BYTES);
        let mut seen = vec![0; reqs.len()];
        be.read_each(&reqs, &mut buf, &mut |i, bytes| {
            seen[i] += 1;
            let r = &reqs[i];
            assert_eq!(bytes, &expect[r.offset as usize..r.offset as usize + r.len]);
            Ok(())
        })
        .unwrap();
        assert!(seen.iter().all(|&n| n == 1), "{}: {seen:?}", be.name());
        // An error from the callback stops delivery and is returned.
        let mut calls = 0;
        let err = be.read_each(&reqs, &mut buf, &mut |_, _| {
            calls += 1;
            Err(IndexError::Backend("stop".into()))
        });
        assert!(err.is_err() && calls == 1, "{}", be.name());
    }
}

#[test]
fn reads_past_the_end_are_short_read_errors_in_every_backend() {
    let a = fixture("short", 2);
    let files = Arc::new(IoFiles::open(&[a], true).unwrap());
    for mut be in backends(files.clone()) {
        let mut buf = AlignedBuf::new();
        buf.ensure(4 * PAGE_BYTES);
        let reqs = [
            ReadReq { file: 0, offset: 0, len: PAGE_BYTES, buf_offset: 0 },
            ReadReq { file: 0, offset: PAGE_BYTES as u64, len: 2 * PAGE_BYTES, buf_offset: PAGE_BYTES },
        ];
        let err = be.read_all(&reqs, &mut buf).unwrap_err().to_string();
        assert!(err.contains("short read") && err.contains("truncated"), "{}: {err}", be.name());
        assert_eq!(files.in_flight.load(std::sync::atomic::Ordering::Relaxed), 0, "{}", be.name());
    }
}

/// `read_during` runs its work exactly once, delivers the same bytes as
/// `read_all`, runs the work with no requests too, and hands back the
/// work's error with no read left in flight.
#[test]
fn read_during_runs_the_work_once_and_reads_every_request() {
    let a = fixture("during", 32);
    let expect = std::fs::read(&a).unwrap();
    let files = Arc::new(IoFiles::open(&[a], true).unwrap());
    let reqs = first_pages(24);
    for mut be in backends(files.clone()) {
        let mut buf = AlignedBuf::new();
        buf.ensure(24 * PAGE_BYTES);
        let mut runs = 0;
        be.read_during(&reqs, &mut buf, &mut || {
            runs += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(runs, 1, "{}", be.name());
        assert_eq!(buf.as_slice()[..24 * PAGE_BYTES], expect[..24 * PAGE_BYTES], "{}", be.name());

        let mut runs = 0;
        be.read_during(&[], &mut buf, &mut || {
            runs += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(runs, 1, "{}: no requests", be.name());

        let err = be.read_during(&reqs, &mut buf, &mut || Err(IndexError::Backend("work failed".into())));
        assert!(matches!(err, Err(IndexError::Backend(m)) if m == "work failed"), "{}", be.name());
        assert_eq!(files.in_flight.load(std::sync::atomic::Ordering::Relaxed), 0, "{}", be.name());
        be.read_all(&reqs, &mut buf).unwrap();
        assert_eq!(buf.as_slice()[..24 * PAGE_BYTES], expect[..24 * PAGE_BYTES], "{}", be.name());
    }
}

/// A panic in `read_during`'s work unwinds only after every read in flight
/// has completed, as with a panicking completion callback.
#[test]
fn a_panicking_work_leaves_no_read_in_flight() {
    panic_leaves_no_read_in_flight("panic-work", |be, reqs, buf| {
        let _ = be.read_during(reqs, buf, &mut || panic!("work fails"));
    });
}
