//! The write-ahead log under kill -9: a child process appends from four
//! threads and prints each record as `append` acknowledges it; the parent
//! kills it at a random moment, reopens the log and checks that every
//! acknowledged record is there, whole, in LSN order, and that nothing
//! but whole records of the child's own making is (issue 28).

use fathom_index::live::wal::Wal;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "FATHOM_WAL_CRASH_CHILD";

/// The payload of thread `t`'s `i`-th record: sizes vary, so torn writes
/// fall at many offsets.
fn payload(t: u64, i: u64) -> Vec<u8> {
    let n = 1 + ((t * 7919 + i * 104_729) % 3000) as usize;
    let mut v = format!("{t}:{i}:").into_bytes();
    v.resize(n.max(v.len()), (t * 31 + i) as u8);
    v
}

fn parse(p: &[u8]) -> (u64, u64) {
    let s = String::from_utf8_lossy(p);
    let mut it = s.split(':');
    (it.next().unwrap().parse().unwrap(), it.next().unwrap().parse().unwrap())
}

/// Runs only as the child: appends until killed.
#[test]
fn child_appends_until_killed() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let wal = std::sync::Arc::new(Wal::open(std::path::Path::new(&dir), |_, _| {}).unwrap());
    let start = wal.durable();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let wal = wal.clone();
            s.spawn(move || {
                for i in 0.. {
                    let lsn = wal.append(&payload(t, start * 10 + i)).unwrap();
                    println!("ack {lsn} {t} {}", start * 10 + i);
                }
            });
        }
    });
}

#[test]
fn every_acknowledged_record_survives_kill_9() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("fathom-wal-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exe = std::env::current_exe().unwrap();
    let mut acked: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let (mut beyond, mut cut) = (0usize, 0usize);
    for round in 0..24 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let run_for = Duration::from_millis(5 + rng % 150);
        let mut child = Command::new(&exe)
            .args(["child_appends_until_killed", "--exact", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("ack ") {
                    let v: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
                    lines.push((v[0], (v[1], v[2])));
                }
            }
            lines
        });
        let t = Instant::now();
        while t.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for (lsn, rec) in reader.join().unwrap() {
            assert!(acked.insert(lsn, rec).is_none_or(|old| old == rec), "round {round}: lsn {lsn} acknowledged twice");
        }
        let before_open: u64 = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        // Reopen: every acknowledged record, whole and in order.
        let mut back = Vec::new();
        let wal = Wal::open(&dir, |lsn, p| back.push((lsn, parse(p), p.to_vec()))).unwrap();
        assert!(back.iter().zip(1..).all(|((l, _, _), want)| *l == want), "round {round}: LSNs in order from 1");
        for (lsn, (t, i), bytes) in &back {
            assert_eq!(bytes, &payload(*t, *i), "round {round}: record {lsn} is whole");
            if let Some(&want) = acked.get(lsn) {
                assert_eq!((*t, *i), want, "round {round}: record {lsn} is the one acknowledged");
            }
        }
        let last = acked.keys().next_back().copied().unwrap_or(0);
        beyond += back.len().saturating_sub(last as usize);
        let seg_bytes: u64 = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        cut += usize::from(seg_bytes < before_open);
        assert!(back.len() as u64 >= last, "round {round}: {} records back, {last} acknowledged", back.len());
        drop(wal);
    }
    assert!(acked.len() > 100, "the child acknowledged only {} records in 24 rounds", acked.len());
    eprintln!(
        "{} records acknowledged over 24 kills; {beyond} more were durable but unacknowledged; {cut} reopens cut a torn tail",
        acked.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
