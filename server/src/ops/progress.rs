//! Build progress for people and for machines: a redrawn bar with ETA on a
//! terminal; otherwise `key=value` lines: one every [`LOG_EVERY_SECS`] with
//! rate and ETA while a stage runs (a Job's log shows a 10^7 build moving),
//! and one per finished stage.

use fathom_index::build::ProgressSink;
use parking_lot::Mutex;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Seconds between progress lines when stderr is not a terminal.
const LOG_EVERY_SECS: u64 = 30;

pub struct StderrProgress {
    tty: bool,
    quiet: bool,
    state: Mutex<Stage>,
    done: AtomicU64,
}

struct Stage {
    name: String,
    total: u64,
    started: Instant,
    last_draw: Instant,
}

impl StderrProgress {
    pub fn new(quiet: bool) -> Self {
        StderrProgress {
            tty: std::io::stderr().is_terminal(),
            quiet,
            state: Mutex::new(Stage {
                name: String::new(),
                total: 0,
                started: Instant::now(),
                last_draw: Instant::now(),
            }),
            done: AtomicU64::new(0),
        }
    }

    fn draw(&self, st: &Stage, done: u64) {
        let secs = st.started.elapsed().as_secs_f64();
        let line = if st.total > 0 {
            let frac = (done as f64 / st.total as f64).min(1.0);
            let eta = if frac > 0.0 { secs / frac - secs } else { 0.0 };
            let bar: String = (0..30).map(|i| if (i as f64) < frac * 30.0 { '#' } else { '-' }).collect();
            format!("{:<9} [{bar}] {:>5.1}% {done}/{} {secs:.0}s eta {eta:.0}s", st.name, frac * 100.0, st.total)
        } else {
            format!("{:<9} ... {secs:.0}s", st.name)
        };
        eprint!("\r\x1b[2K{line}");
        let _ = std::io::stderr().flush();
    }
}

impl ProgressSink for StderrProgress {
    fn stage(&self, name: &str, total: u64) {
        // For tests of resumed builds: die like a killed process the moment
        // a stage starts (FATHOM_TEST_ABORT_AT_STAGE=vectors).
        if std::env::var("FATHOM_TEST_ABORT_AT_STAGE").is_ok_and(|s| s == name) {
            std::process::abort();
        }
        let mut st = self.state.lock();
        *st = Stage { name: name.to_string(), total, started: Instant::now(), last_draw: Instant::now() };
        self.done.store(0, Ordering::Relaxed);
        if self.tty && !self.quiet {
            self.draw(&st, 0);
        }
    }

    fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if self.quiet {
            return;
        }
        let mut st = self.state.lock();
        if !self.tty {
            if st.last_draw.elapsed().as_secs() >= LOG_EVERY_SECS {
                st.last_draw = Instant::now();
                let secs = st.started.elapsed().as_secs_f64();
                let rate = done as f64 / secs.max(1e-9);
                let eta = if st.total > done && rate > 0.0 { (st.total - done) as f64 / rate } else { 0.0 };
                eprintln!(
                    "stage={} done={done} total={} seconds={secs:.0} rate={rate:.0}/s eta={eta:.0}s",
                    st.name, st.total
                );
            }
            return;
        }
        if st.last_draw.elapsed().as_millis() >= 200 {
            st.last_draw = Instant::now();
            self.draw(&st, done);
        }
    }

    fn finish_stage(&self) {
        let st = self.state.lock();
        let done = self.done.load(Ordering::Relaxed);
        if self.quiet {
            return;
        }
        if self.tty {
            self.draw(&st, done.max(st.total));
            eprintln!();
        } else if st.total == 0 && done == 0 {
            // A stage that counts nothing (writing the vectors file): no
            // `done=0` that reads like no work.
            eprintln!("stage={} finished seconds={:.2}", st.name, st.started.elapsed().as_secs_f64());
        } else {
            eprintln!("stage={} done={} seconds={:.2}", st.name, done, st.started.elapsed().as_secs_f64());
        }
    }
}
