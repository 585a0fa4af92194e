//! Prometheus metrics, kept by hand with atomics (a handful of series do not
//! earn a registry crate), and rendered in the text exposition format.
//! Labels come from fixed sets only: method names and gRPC codes.

use fathom_index::SearchStats;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

pub const METHODS: [&str; 4] = ["Search", "BatchSearch", "GetIndexInfo", "GetCodec"];
pub const BUCKETS_SECONDS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default)]
pub struct Gauge(AtomicI64);
impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn add(&self, v: i64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_SECONDS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (b, le) in self.buckets.iter().zip(BUCKETS_SECONDS) {
            if s <= le {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, le) in self.buckets.iter().zip(BUCKETS_SECONDS) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}", b.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9);
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    request_seconds: [Histogram; 4],
    stage_seconds: [Histogram; 4],
    postings_read: AtomicU64,
    reads: AtomicU64,
    read_bytes: AtomicU64,
    candidates: AtomicU64,
    pub in_flight: Gauge,
    pub queue_depth: Gauge,
    pub index_disk_bytes: Gauge,
    pub index_resident_bytes: Gauge,
    pub index_vectors: Gauge,
    pub ready: Gauge,
    /// The served index, once open (for gauges read at scrape time).
    index: parking_lot::RwLock<Option<std::sync::Arc<fathom_index::Index>>>,
    /// Index swaps by result: ok, refused, failed.
    swaps: Mutex<BTreeMap<&'static str, u64>>,
}

const STAGES: [&str; 4] = ["centroids", "io", "scoring", "rerank"];

impl Metrics {
    pub fn observe_request(&self, method: &'static str, code: tonic::Code, d: Duration) {
        let code = code_name(code);
        *self.requests.lock().entry((method, code)).or_default() += 1;
        if let Some(i) = METHODS.iter().position(|m| *m == method) {
            self.request_seconds[i].observe(d);
        }
    }

    /// Gauges of a newly served index.
    pub fn show_index(&self, index: &std::sync::Arc<fathom_index::Index>) {
        let m = &index.manifest;
        self.index_vectors.set(m.vector_count as i64);
        self.index_resident_bytes.set(index.resident_bytes() as i64);
        self.index_disk_bytes.set(m.files.values().map(|f| f.bytes).sum::<u64>() as i64);
        *self.index.write() = Some(index.clone());
    }

    pub fn count_swap(&self, result: &'static str) {
        *self.swaps.lock().entry(result).or_default() += 1;
    }

    pub fn observe_search(&self, s: &SearchStats) {
        self.postings_read.fetch_add(s.postings_read as u64, Ordering::Relaxed);
        self.reads.fetch_add(s.reads as u64, Ordering::Relaxed);
        self.read_bytes.fetch_add(s.bytes_read, Ordering::Relaxed);
        self.candidates.fetch_add(s.candidates_scored as u64, Ordering::Relaxed);
        for (h, d) in self.stage_seconds.iter().zip([s.centroid_time, s.io_time, s.score_time, s.rerank_time]) {
            h.observe(d);
        }
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "# HELP fathom_requests_total gRPC requests by method and status code.");
        let _ = writeln!(o, "# TYPE fathom_requests_total counter");
        for ((m, c), n) in self.requests.lock().iter() {
            let _ = writeln!(o, "fathom_requests_total{{method=\"{m}\",code=\"{c}\"}} {n}");
        }
        let _ = writeln!(o, "# HELP fathom_request_duration_seconds gRPC request latency by method.");
        let _ = writeln!(o, "# TYPE fathom_request_duration_seconds histogram");
        for (m, h) in METHODS.iter().zip(&self.request_seconds) {
            h.render(&mut o, "fathom_request_duration_seconds", &format!("method=\"{m}\""));
        }
        let _ = writeln!(o, "# HELP fathom_search_stage_duration_seconds Time per search stage, per query.");
        let _ = writeln!(o, "# TYPE fathom_search_stage_duration_seconds histogram");
        for (s, h) in STAGES.iter().zip(&self.stage_seconds) {
            h.render(&mut o, "fathom_search_stage_duration_seconds", &format!("stage=\"{s}\""));
        }
        let counters = [
            ("fathom_postings_read_total", "Posting lists read.", &self.postings_read),
            ("fathom_reads_total", "Read requests issued to the disk.", &self.reads),
            ("fathom_read_bytes_total", "Bytes read from the disk.", &self.read_bytes),
            ("fathom_candidates_scored_total", "Posting entries scored.", &self.candidates),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Ordering::Relaxed));
        }
        let gauges = [
            ("fathom_in_flight_requests", "Requests being handled.", self.in_flight.get()),
            ("fathom_queue_depth", "Jobs waiting for a search worker.", self.queue_depth.get()),
            ("fathom_index_disk_bytes", "Bytes of the served index on disk.", self.index_disk_bytes.get()),
            ("fathom_index_resident_bytes", "Bytes held in memory for the index.", self.index_resident_bytes.get()),
            ("fathom_index_vectors", "Vectors in the served index.", self.index_vectors.get()),
            ("fathom_ready", "1 when the index is open and requests are served.", self.ready.get()),
            (
                "fathom_reads_in_flight",
                "Disk reads submitted and not yet completed.",
                self.index.read().as_ref().map_or(0, |ix| ix.reads_in_flight()),
            ),
            ("process_resident_memory_bytes", "Resident memory of the process.", crate::sysinfo::rss_bytes() as i64),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let _ = writeln!(o, "# HELP fathom_index_swaps_total Index swaps by result (ok, refused, failed).");
        let _ = writeln!(o, "# TYPE fathom_index_swaps_total counter");
        for (r, n) in self.swaps.lock().iter() {
            let _ = writeln!(o, "fathom_index_swaps_total{{result=\"{r}\"}} {n}");
        }
        if let Some(ix) = self.index.read().as_ref() {
            let _ = writeln!(o, "# HELP fathom_io_backend Disk reads go through this backend (io_uring or pread).");
            let _ =
                writeln!(o, "# TYPE fathom_io_backend gauge\nfathom_io_backend{{backend=\"{}\"}} 1", ix.backend_name());
            let _ = writeln!(o, "# HELP fathom_index_info The index version served.\n# TYPE fathom_index_info gauge");
            let (v, c) = (ix.version().replace(['"', '\\', '\n'], "_"), &ix.manifest.collection_id);
            let _ = writeln!(o, "fathom_index_info{{version=\"{v}\",collection=\"{c}\"}} 1");
        }
        let _ = writeln!(o, "# HELP fathom_build_info Build of this server.\n# TYPE fathom_build_info gauge");
        let _ = writeln!(o, "fathom_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        o
    }
}

pub fn code_name(c: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match c {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
