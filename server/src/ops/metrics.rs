//! Prometheus metrics through the `prometheus-client` crate: one registry,
//! label sets as types. A family makes a series for any label value on
//! first use, so a new RPC gets its counters and histogram without being
//! listed anywhere. Labels come from fixed sets only: method names, gRPC
//! codes, stages, swap results.

use fathom_index::{Index, SearchStats};
use parking_lot::RwLock;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whole requests: 50 µs (a refusal) to 2.5 s.
pub const REQUEST_BUCKETS: [f64; 15] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
/// Search stages and queue wait: most take 10-100 µs, so that decade has
/// six buckets.
pub const STAGE_BUCKETS: [f64; 16] = [
    0.000005, 0.00001, 0.00002, 0.00004, 0.00006, 0.00008, 0.0001, 0.00015, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
    0.01, 0.05, 0.25,
];

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}
fn stage_histogram() -> Histogram {
    Histogram::new(STAGE_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    pub method: &'static str,
}

/// The per-query stages, named by the engine.
const SEARCH_STAGES: [&str; 4] = SearchStats::STAGES;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The RPCs of `fathom.proto`, to name requests that failed before a
/// handler ran (the path is the client's: anything else is "unknown", so a
/// client cannot mint series). A test checks the list against the proto.
pub const METHODS: [&str; 4] = ["Search", "BatchSearch", "GetIndexInfo", "GetCodec"];

/// `method` if it is an RPC of ours, else "unknown".
pub fn known_method(method: &str) -> &'static str {
    METHODS.iter().find(|m| **m == method).copied().unwrap_or("unknown")
}

/// gRPC requests by method and code, and their latency by method: the
/// server's and the router's front door.
#[derive(Clone)]
pub struct RequestMetrics {
    count: Family<RequestLabels, Counter>,
    seconds: HistogramFamily<MethodLabel>,
}

impl RequestMetrics {
    /// Registers `{prefix}_requests_total` and `{prefix}_request_duration_seconds`.
    pub fn register(registry: &mut Registry, prefix: &str, what: &str) -> Self {
        let m = RequestMetrics {
            count: Family::default(),
            seconds: Family::new_with_constructor(request_histogram as fn() -> Histogram),
        };
        registry.register(
            format!("{prefix}_requests"),
            format!("{what} requests by method and status code"),
            m.count.clone(),
        );
        registry.register(
            format!("{prefix}_request_duration_seconds"),
            format!("{what} request latency by method"),
            m.seconds.clone(),
        );
        m
    }

    pub fn observe(&self, method: &'static str, code: tonic::Code, d: Duration) {
        self.count.get_or_create(&RequestLabels { method, code: code_name(code) }).inc();
        self.seconds.get_or_create(&MethodLabel { method }).observe(d.as_secs_f64());
    }
}

/// Everything a shard server exports.
pub struct Metrics {
    registry: Registry,
    requests: RequestMetrics,
    /// Handles of the stage histograms (centroids, io, scoring, rerank;
    /// then queue), taken once: the search path does no family lookups.
    stages: [Histogram; 4],
    queue_wait: Histogram,
    postings_read: Counter,
    reads: Counter,
    read_bytes: Counter,
    candidates: Counter,
    searches: Counter,
    swaps: Family<ResultLabel, Counter>,
    pub in_flight: Gauge,
    pub queue_depth: Gauge,
    pub ready: Gauge,
    index_disk_bytes: Gauge,
    index_resident_bytes: Gauge,
    index_vectors: Gauge,
    /// The served index, once open (for what is read at scrape time).
    index: Arc<RwLock<Option<Arc<Index>>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::default();
        let requests = RequestMetrics::register(&mut r, "fathom", "gRPC");
        let stage_seconds: HistogramFamily<StageLabel> = Family::new_with_constructor(stage_histogram);
        r.register(
            "fathom_search_stage_duration_seconds",
            "Time per search stage, per query (queue: waiting for a search worker, per request)",
            stage_seconds.clone(),
        );
        let postings_read: Counter = registered(&mut r, "fathom_postings_read", "Posting lists read");
        let reads: Counter = registered(&mut r, "fathom_reads", "Read requests issued to the disk");
        let read_bytes: Counter = registered(&mut r, "fathom_read_bytes", "Bytes read from the disk");
        let candidates: Counter = registered(&mut r, "fathom_candidates_scored", "Posting entries scored");
        let searches: Counter = registered(&mut r, "fathom_searches", "Queries searched to the end by the workers");
        let swaps = Family::<ResultLabel, Counter>::default();
        r.register("fathom_index_swaps", "Index swaps by result (ok, refused, failed)", swaps.clone());
        let in_flight: Gauge = registered(&mut r, "fathom_in_flight_requests", "Requests being handled");
        let queue_depth: Gauge = registered(&mut r, "fathom_queue_depth", "Jobs waiting for a search worker");
        let ready: Gauge = registered(&mut r, "fathom_ready", "1 when the index is open and requests are served");
        let index_disk_bytes: Gauge =
            registered(&mut r, "fathom_index_disk_bytes", "Bytes of the served index on disk");
        let index_resident_bytes: Gauge =
            registered(&mut r, "fathom_index_resident_bytes", "Bytes held in memory for the index");
        let index_vectors: Gauge = registered(&mut r, "fathom_index_vectors", "Vectors in the served index");
        let index: Arc<RwLock<Option<Arc<Index>>>> = Arc::default();
        r.register_collector(Box::new(IndexCollector(index.clone())));
        register_process(&mut r, "server");
        let stage = |stage: &'static str| stage_seconds.get_or_create(&StageLabel { stage }).clone();
        let (stages, queue_wait) = (SEARCH_STAGES.map(stage), stage("queue"));
        Metrics {
            registry: r,
            requests,
            stages,
            queue_wait,
            postings_read,
            reads,
            read_bytes,
            candidates,
            searches,
            swaps,
            in_flight,
            queue_depth,
            ready,
            index_disk_bytes,
            index_resident_bytes,
            index_vectors,
            index,
        }
    }
}

impl Metrics {
    pub fn observe_request(&self, method: &'static str, code: tonic::Code, d: Duration) {
        self.requests.observe(method, code, d);
    }

    /// Gauges of a newly served index.
    pub fn show_index(&self, index: &Arc<Index>) {
        let m = index.manifest();
        self.index_vectors.set(m.vector_count as i64);
        self.index_resident_bytes.set(index.resident_bytes() as i64);
        self.index_disk_bytes.set(m.files.values().map(|f| f.bytes).sum::<u64>() as i64);
        *self.index.write() = Some(index.clone());
    }

    pub fn count_swap(&self, result: &'static str) {
        self.swaps.get_or_create(&ResultLabel { result }).inc();
    }

    /// How long a job waited in the queue before a worker took it.
    pub fn observe_queue_wait(&self, queued_at: Instant) {
        self.queue_wait.observe(queued_at.elapsed().as_secs_f64());
    }

    pub fn observe_search(&self, s: &SearchStats) {
        self.postings_read.inc_by(s.postings_read as u64);
        self.reads.inc_by(s.reads as u64);
        self.read_bytes.inc_by(s.bytes_read);
        self.candidates.inc_by(s.candidates_scored as u64);
        self.searches.inc();
        for (h, d) in self.stages.iter().zip(s.stage_times()) {
            h.observe(d.as_secs_f64());
        }
    }

    /// Searches run to the end by the workers (one per query).
    pub fn searches(&self) -> u64 {
        self.searches.get()
    }

    pub fn render(&self) -> String {
        encode(&self.registry)
    }
}

/// A new metric, registered under `name`; the handle to update it.
pub fn registered<M: prometheus_client::registry::Metric + Clone + Default>(
    r: &mut Registry,
    name: &str,
    help: &str,
) -> M {
    let m = M::default();
    r.register(name, help, m.clone());
    m
}

/// The registry in the OpenMetrics text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// `fathom_build_info{version, role}` and the process figures.
pub fn register_process(r: &mut Registry, role: &'static str) {
    r.register(
        "fathom_build",
        "Build of this process",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION")), ("role", role)]),
    );
    r.register_collector(Box::new(ProcessCollector));
}

/// What the served index shows at scrape time: reads in flight, the I/O
/// backend, the version and collection served.
struct IndexCollector(Arc<RwLock<Option<Arc<Index>>>>);

impl std::fmt::Debug for IndexCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexCollector")
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabel {
    backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IndexLabels {
    version: String,
    collection: String,
}

impl Collector for IndexCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(ix) = self.0.read().clone() else { return Ok(()) };
        let reads = ConstGauge::new(ix.reads_in_flight());
        reads.encode(enc.encode_descriptor(
            "fathom_reads_in_flight",
            "Disk reads submitted and not yet completed",
            None,
            reads.metric_type(),
        )?)?;
        let one = ConstGauge::new(1i64);
        let mut m = enc.encode_descriptor(
            "fathom_io_backend",
            "Disk reads go through this backend (io_uring or pread)",
            None,
            one.metric_type(),
        )?;
        one.encode(m.encode_family(&BackendLabel { backend: ix.backend_name() })?)?;
        let mut m = enc.encode_descriptor("fathom_index_info", "The index version served", None, one.metric_type())?;
        let labels = IndexLabels { version: ix.version(), collection: ix.manifest().collection_id.clone() };
        one.encode(m.encode_family(&labels)?)?;
        Ok(())
    }
}

/// The standard `process_*` figures, read from /proc at scrape time.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let p = crate::ops::sysinfo::process_figures();
        let cpu = ConstCounter::new(p.cpu_seconds);
        cpu.encode(enc.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges: [(&str, &str, f64); 4] = [
            ("process_resident_memory_bytes", "Resident memory", crate::ops::sysinfo::rss_bytes() as f64),
            ("process_start_time_seconds", "Start time since the Unix epoch", p.start_time_seconds),
            ("process_open_fds", "Open file descriptors", p.open_fds as f64),
            ("process_max_fds", "Limit of open file descriptors", p.max_fds as f64),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v);
            g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
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

/// A gauge raised for as long as this lives: in-flight counts that a
/// cancelled request (its future dropped at an await) cannot leave raised.
pub struct GaugeGuard(prometheus_client::metrics::gauge::Gauge);

impl GaugeGuard {
    pub fn new(g: &prometheus_client::metrics::gauge::Gauge) -> Self {
        g.inc();
        GaugeGuard(g.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_rpc_of_the_proto_is_known() {
        let proto = include_str!("../../../proto/fathom.proto");
        let rpcs: Vec<&str> = proto
            .lines()
            .filter_map(|l| l.trim().strip_prefix("rpc "))
            .filter_map(|l| l.split('(').next())
            .map(str::trim)
            .collect();
        assert!(!rpcs.is_empty());
        let mut sorted = super::METHODS.to_vec();
        sorted.sort_unstable();
        let mut want = rpcs.clone();
        want.sort_unstable();
        assert_eq!(sorted, want, "METHODS must list every rpc of fathom.proto");
    }

    #[test]
    fn exposition_is_openmetrics_with_the_new_series() {
        let m = super::Metrics::default();
        m.observe_request("Search", tonic::Code::Ok, std::time::Duration::from_micros(70));
        m.observe_request("SomeNewRpc", tonic::Code::Ok, std::time::Duration::from_micros(70));
        m.observe_queue_wait(std::time::Instant::now());
        let text = m.render();
        assert!(text.contains("fathom_requests_total{method=\"Search\",code=\"OK\"} 1"), "{text}");
        // A method nobody listed still gets its histogram.
        assert!(text.contains("fathom_request_duration_seconds_count{method=\"SomeNewRpc\"} 1"), "{text}");
        assert!(text.contains("fathom_request_duration_seconds_bucket{le=\"0.0001\",method=\"Search\"} 1"), "{text}");
        assert!(text.contains("fathom_search_stage_duration_seconds_bucket{le=\"0.00001\",stage=\"queue\"}"), "{text}");
        for name in ["process_cpu_seconds_total", "process_start_time_seconds", "process_open_fds", "fathom_build_info"]
        {
            assert!(text.contains(name), "{name} missing: {text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
