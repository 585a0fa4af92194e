//! Write-ahead log throughput: N writer threads append records the size of
//! a 384-d f32 upsert (id + vector) for a few seconds each; prints records
//! per second, the mean group-commit size and the mean cost of a sync.
//!
//!   cargo run --release -p fathom-index --example wal_throughput -- DIR [SECONDS] [DIM]
//!
//! DIR should be on the disk the index lives on (each run makes and then
//! removes a `wal-bench-*` folder in it).

use fathom_index::live::wal::Wal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = std::path::PathBuf::from(args.get(1).map_or("/tmp", String::as_str));
    let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let dim: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(384);
    let record = vec![7u8; 8 + 4 * dim];
    println!("| writers | records/s | MB/s | records per sync | sync ms (mean) |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for writers in [1usize, 4, 16, 64] {
        let dir = root.join(format!("wal-bench-{}-{writers}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let wal = Wal::open(&dir, |_, _| {}).expect("open");
        let stop = AtomicBool::new(false);
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..writers {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        wal.append(&record).expect("append");
                    }
                });
            }
            std::thread::sleep(Duration::from_secs_f64(secs));
            stop.store(true, Ordering::Relaxed);
        });
        let took = t.elapsed().as_secs_f64();
        let st = wal.stats();
        println!(
            "| {writers} | {:.0} | {:.1} | {:.1} | {:.3} |",
            st.records as f64 / took,
            st.bytes as f64 / took / 1e6,
            st.records as f64 / st.syncs.max(1) as f64,
            st.sync_time.as_secs_f64() * 1e3 / st.syncs.max(1) as f64
        );
        drop(wal);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
