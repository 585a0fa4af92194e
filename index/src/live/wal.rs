//! The write-ahead log of a live collection: records appended in order,
//! each acknowledged only once it is on stable storage.
//!
//! **What the media is assumed to do** (as Linux file systems promise for
//! `fdatasync` on a regular file): after `sync_data` returns, every byte
//! written to the file before it survives a crash or a power cut; bytes
//! written after it may survive in part, in any order, or not at all. A
//! new file's name is durable once its directory is synced. Nothing else
//! (no atomic sector writes) is assumed.
//!
//! **The commit point** of a record is the `sync_data` that follows its
//! write: `append` returns only after it, so an acknowledged record
//! survives. Concurrent writers share one sync (group commit): the first
//! writer to find no sync under way becomes the leader, writes every record
//! queued so far in one `write` and syncs once; the others wait and return
//! together.
//!
//! **On disk**: segments `wal/<first lsn, 16 hex digits>.log`, each a run
//! of records `[len u32][crc32 u32][lsn u64][payload: len bytes]` (little
//! endian; the CRC covers the lsn and the payload). LSNs count from 1 and
//! rise by one per record, across segments.
//!
//! **Recovery** reads the segments in order and stops at the first record
//! that is short, fails its CRC, or breaks the LSN sequence. In the last
//! segment that is a torn tail (a crash during the write): it is cut off,
//! and those records were never acknowledged. Anywhere else it is damage,
//! and opening fails naming the segment and byte.
//!
//! | crash during | what is on disk | recovery |
//! | --- | --- | --- |
//! | a leader's write | a prefix of its batch, maybe torn | the torn tail is cut; none of the batch was acknowledged |
//! | its sync | the batch, whole or torn | whole: kept (never acknowledged, now durable); torn: cut |
//! | after the sync, before waking the writers | the batch, whole | kept; the writers saw an error (their connection) and may retry: the payload must make a retry harmless (upserts and deletes by id are) |
//! | a segment roll | the old segment synced; the new one empty or absent | an empty last segment is fine; an absent one was never written to |
//! | `retire_before` | whole segments deleted oldest first | the remaining segments still chain by LSN |

use crate::error::FormatError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Bytes of a record's frame before its payload.
const FRAME_BYTES: usize = 16;

/// The largest payload: a record larger than this is damage, not data.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// A segment is closed and a new one begun past this many bytes.
const SEGMENT_BYTES: u64 = 64 << 20;

/// A record's position in the log (1, 2, ...).
pub type Lsn = u64;

/// An open write-ahead log.
pub struct Wal {
    dir: PathBuf,
    state: Mutex<State>,
    /// Wakes writers waiting for the sync that covers their record.
    synced: Condvar,
}

struct State {
    /// The segment being written, taken by the leader while it writes.
    file: Option<File>,
    /// First LSN of the segment being written, and its bytes so far.
    segment: (Lsn, u64),
    next: Lsn,
    durable: Lsn,
    /// Framed records queued for the next sync, and the last LSN among them.
    queue: Vec<u8>,
    syncing: bool,
    /// A failed write or sync: the file's state is unknown, so the log
    /// takes nothing more until it is opened again (and recovered).
    failed: Option<String>,
    stats: WalStats,
}

/// What the log has done since it was opened: how many records each sync
/// carried (the group-commit size) and what the syncs cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WalStats {
    pub records: u64,
    pub bytes: u64,
    pub syncs: u64,
    /// Time in write + fdatasync, summed over the syncs.
    pub sync_time: std::time::Duration,
}

impl Wal {
    /// Opens (creating it if needed) the log in `dir`, calling `replay` on
    /// every durable record in order, and cuts a torn tail.
    pub fn open(dir: &Path, mut replay: impl FnMut(Lsn, &[u8])) -> Result<Wal, FormatError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| FormatError::Io { path, error }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let segments = segments(dir)?;
        let mut next: Lsn = segments.first().map_or(1, |&(first, _)| first);
        let mut last = (next, 0u64);
        for (i, (first, path)) in segments.iter().enumerate() {
            if *first != next {
                return Err(FormatError::Corrupt {
                    path: path.clone(),
                    offset: 0,
                    what: format!("segment begins at record {first}, the one before ended at {}", next - 1),
                });
            }
            let bytes = read_all(path)?;
            let (end, n) = scan(&bytes, next, &mut replay);
            next += n;
            if end < bytes.len() {
                if i + 1 < segments.len() {
                    return Err(FormatError::Corrupt {
                        path: path.clone(),
                        offset: end as u64,
                        what: "a damaged record before the log's last segment".into(),
                    });
                }
                // A torn tail: never acknowledged. Cut it so appends follow
                // the last whole record.
                let f = OpenOptions::new().write(true).open(path).map_err(io(path))?;
                f.set_len(end as u64).and_then(|_| f.sync_all()).map_err(io(path))?;
                tracing::warn!(segment = %path.display(), at = end, cut = bytes.len() - end, "cut a torn write-ahead log tail");
            }
            last = (*first, end as u64);
        }
        let path = segment_path(dir, last.0);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        if segments.is_empty() {
            sync_dir(dir)?;
        }
        Ok(Wal {
            dir: dir.to_path_buf(),
            state: Mutex::new(State {
                file: Some(file),
                segment: last,
                next,
                durable: next - 1,
                queue: Vec::new(),
                syncing: false,
                failed: None,
                stats: WalStats::default(),
            }),
            synced: Condvar::new(),
        })
    }

    /// Appends one record and returns its LSN once it is durable.
    pub fn append(&self, payload: &[u8]) -> Result<Lsn, FormatError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(self.error(format!("a record of {} bytes is above {MAX_RECORD_BYTES}", payload.len())));
        }
        let mut st = self.lock();
        if let Some(why) = &st.failed {
            return Err(self.error(why.clone()));
        }
        let lsn = st.next;
        st.next += 1;
        frame(&mut st.queue, lsn, payload);
        loop {
            if st.durable >= lsn {
                return Ok(lsn);
            }
            if let Some(why) = &st.failed {
                return Err(self.error(why.clone()));
            }
            if st.syncing {
                st = self.synced.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            st = self.lead(st);
        }
    }

    /// Records, bytes and syncs since the log was opened.
    pub fn stats(&self) -> WalStats {
        self.lock().stats
    }

    /// The last durable LSN (0 for an empty log).
    pub fn durable(&self) -> Lsn {
        self.lock().durable
    }

    /// Deletes the segments whose records all come before `lsn` (their
    /// effects are durable elsewhere: a checkpoint). The segment being
    /// written stays.
    pub fn retire_before(&self, lsn: Lsn) -> Result<usize, FormatError> {
        let current = self.lock().segment.0;
        let all = segments(&self.dir)?;
        let mut retired = 0;
        for (i, (_, path)) in all.iter().enumerate() {
            let next_first = all.get(i + 1).map_or(current, |s| s.0);
            if next_first > lsn || all[i].0 >= current {
                break;
            }
            std::fs::remove_file(path).map_err(|error| FormatError::Io { path: path.clone(), error })?;
            retired += 1;
        }
        if retired > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(retired)
    }

    /// Writes and syncs everything queued, as the leader of one group
    /// commit; the lock is released during the I/O.
    fn lead<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        st.syncing = true;
        let batch = std::mem::take(&mut st.queue);
        let upto = st.next - 1;
        let (first, bytes) = st.segment;
        let Some(mut file) = st.file.take() else {
            st.failed = Some("the log's file was lost by an earlier failure".into());
            st.syncing = false;
            self.synced.notify_all();
            return st;
        };
        let records = upto - st.durable;
        drop(st);
        let started = std::time::Instant::now();
        let written = file.write_all(&batch).and_then(|_| file.sync_data());
        let took = started.elapsed();
        // Past its size, the segment is closed and a new one begun, named
        // by its first record; its name is made durable before any record
        // in it is acknowledged (the next sync).
        let rolled = match written {
            Ok(()) if bytes + batch.len() as u64 >= SEGMENT_BYTES => {
                let path = segment_path(&self.dir, upto + 1);
                Some(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .and_then(|f| sync_dir_io(&self.dir).map(|_| f)),
                )
            }
            _ => None,
        };
        let mut st = self.lock();
        st.syncing = false;
        if written.is_ok() {
            st.stats.records += records;
            st.stats.bytes += batch.len() as u64;
            st.stats.syncs += 1;
            st.stats.sync_time += took;
        }
        match (written, rolled) {
            (Err(e), _) | (Ok(()), Some(Err(e))) => {
                st.failed = Some(format!("write-ahead log write failed: {e}"));
                tracing::error!(error = %e, "write-ahead log write failed; it takes no more writes until reopened");
            }
            (Ok(()), Some(Ok(next))) => {
                st.durable = upto;
                st.file = Some(next);
                st.segment = (upto + 1, 0);
            }
            (Ok(()), None) => {
                st.durable = upto;
                st.file = Some(file);
                st.segment = (first, bytes + batch.len() as u64);
            }
        }
        self.synced.notify_all();
        st
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn error(&self, what: String) -> FormatError {
        FormatError::BadInput { path: self.dir.clone(), what }
    }
}

/// Appends the frame of one record to `out`.
fn frame(out: &mut Vec<u8>, lsn: Lsn, payload: &[u8]) {
    let mut h = crc32fast::Hasher::new();
    h.update(&lsn.to_le_bytes());
    h.update(payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reads whole records from `bytes`, the first expected to be `next`;
/// returns where the whole records end and how many there were.
fn scan(bytes: &[u8], next: Lsn, replay: &mut impl FnMut(Lsn, &[u8])) -> (usize, u64) {
    let (mut at, mut n) = (0usize, 0u64);
    while let Some(head) = bytes.get(at..at + FRAME_BYTES) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let lsn = u64::from_le_bytes([head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15]]);
        if len > MAX_RECORD_BYTES || lsn != next + n {
            break;
        }
        let Some(payload) = bytes.get(at + FRAME_BYTES..at + FRAME_BYTES + len) else { break };
        let mut h = crc32fast::Hasher::new();
        h.update(&lsn.to_le_bytes());
        h.update(payload);
        if h.finalize() != crc {
            break;
        }
        replay(lsn, payload);
        at += FRAME_BYTES + len;
        n += 1;
    }
    (at, n)
}

fn segment_path(dir: &Path, first: Lsn) -> PathBuf {
    dir.join(format!("{first:016x}.log"))
}

/// The segments in `dir`, oldest first, by the first LSN in their names.
fn segments(dir: &Path) -> Result<Vec<(Lsn, PathBuf)>, FormatError> {
    let io = |error| FormatError::Io { path: dir.to_path_buf(), error };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        let path = e.map_err(io)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some(hex) = name.strip_suffix(".log").filter(|h| h.len() == 16) {
            if let Ok(first) = u64::from_str_radix(hex, 16) {
                out.push((first, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read_all(path: &Path) -> Result<Vec<u8>, FormatError> {
    let io = |error| FormatError::Io { path: path.to_path_buf(), error };
    crate::format::files::check_regular(path).map_err(io)?;
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io)?;
    Ok(bytes)
}

fn sync_dir_io(dir: &Path) -> std::io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

fn sync_dir(dir: &Path) -> Result<(), FormatError> {
    sync_dir_io(dir).map_err(|error| FormatError::Io { path: dir.to_path_buf(), error })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fathom-wal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn replayed(dir: &Path) -> Vec<(Lsn, Vec<u8>)> {
        let mut out = Vec::new();
        Wal::open(dir, |l, p| out.push((l, p.to_vec()))).unwrap();
        out
    }

    #[test]
    fn records_come_back_in_order_and_appends_continue_after_a_reopen() {
        let dir = temp("order");
        let wal = Wal::open(&dir, |_, _| panic!("empty")).unwrap();
        assert_eq!(wal.append(b"one").unwrap(), 1);
        assert_eq!(wal.append(b"").unwrap(), 2);
        drop(wal);
        let wal = Wal::open(&dir, |_, _| {}).unwrap();
        assert_eq!(wal.append(b"three").unwrap(), 3);
        drop(wal);
        assert_eq!(replayed(&dir), vec![(1, b"one".to_vec()), (2, vec![]), (3, b"three".to_vec())]);
    }

    #[test]
    fn a_torn_tail_is_cut_and_damage_before_it_is_an_error() {
        let dir = temp("torn");
        let wal = Wal::open(&dir, |_, _| {}).unwrap();
        for i in 0..5u8 {
            wal.append(&[i; 10]).unwrap();
        }
        drop(wal);
        let seg = segment_path(&dir, 1);
        let whole = std::fs::read(&seg).unwrap();
        // Every cut inside the last record leaves the first four.
        for cut in whole.len() - 25..whole.len() {
            std::fs::write(&seg, &whole[..cut]).unwrap();
            assert_eq!(replayed(&dir).len(), 4, "cut at {cut}");
            assert_eq!(std::fs::metadata(&seg).unwrap().len() as usize, 4 * 26, "the tail is cut");
            let wal = Wal::open(&dir, |_, _| {}).unwrap();
            assert_eq!(wal.append(b"after").unwrap(), 5);
            drop(wal);
            std::fs::write(&seg, &whole).unwrap();
        }
        // A flipped byte in record 2 ends the log there (it is the last segment).
        let mut bad = whole.clone();
        bad[26 + 20] ^= 1;
        std::fs::write(&seg, &bad).unwrap();
        assert_eq!(replayed(&dir).len(), 1);
        // In a segment before the last, the same is an error naming it.
        std::fs::write(&seg, &bad).unwrap();
        std::fs::write(segment_path(&dir, 6), []).unwrap();
        let e = Wal::open(&dir, |_, _| {}).err().unwrap().to_string();
        assert!(e.contains(&format!("{:016x}.log", 1)), "{e}");
    }

    #[test]
    fn concurrent_writers_share_syncs_and_every_lsn_is_unique() {
        let dir = temp("group");
        let wal = std::sync::Arc::new(Wal::open(&dir, |_, _| {}).unwrap());
        let lsns: Vec<Lsn> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|t| {
                    let wal = wal.clone();
                    s.spawn(move || (0..50).map(|i| wal.append(&[t, i]).unwrap()).collect::<Vec<_>>())
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = lsns.clone();
        sorted.sort();
        assert_eq!(sorted, (1..=400).collect::<Vec<_>>());
        assert_eq!(wal.durable(), 400);
        let st = wal.stats();
        assert_eq!(st.records, 400);
        assert!(st.syncs >= 1 && st.syncs <= 400, "{st:?}");
        drop(wal);
        let back = replayed(&dir);
        assert_eq!(back.len(), 400);
        assert!(back.iter().zip(1..).all(|((l, _), want)| *l == want));
    }

    #[test]
    fn retired_segments_go_and_the_rest_still_chain() {
        let dir = temp("retire");
        std::fs::create_dir_all(&dir).unwrap();
        // Three segments by hand: records 1-2, 3-4, 5.
        let mut next = 1;
        for n in [2, 2, 1] {
            let mut bytes = Vec::new();
            for i in 0..n {
                frame(&mut bytes, next + i, b"x");
            }
            std::fs::write(segment_path(&dir, next), bytes).unwrap();
            next += n;
        }
        let wal = Wal::open(&dir, |_, _| {}).unwrap();
        assert_eq!(wal.durable(), 5);
        assert_eq!(wal.retire_before(4).unwrap(), 1, "records 1-2 are all before 4; 3-4 are not");
        assert_eq!(wal.append(b"y").unwrap(), 6);
        drop(wal);
        assert_eq!(replayed(&dir).iter().map(|r| r.0).collect::<Vec<_>>(), vec![3, 4, 5, 6]);
    }
}
