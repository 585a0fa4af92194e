//! The router's Prometheus metrics: its own requests, and per shard and
//! replica the calls it made (by code, latency, in flight), retries,
//! partial answers and liveness. Labels: method and code from fixed sets;
//! shard numbers and replica addresses from the configured shard list.

use super::cluster::Cluster;
use crate::metrics::{code_name, Gauge, Histogram};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const METHODS: [&str; 4] = ["Search", "BatchSearch", "GetIndexInfo", "GetCodec"];

#[derive(Default)]
pub struct ReplicaMetrics {
    calls: Mutex<BTreeMap<&'static str, u64>>,
    latency: Histogram,
    pub in_flight: Gauge,
}

impl ReplicaMetrics {
    pub fn observe(&self, code: tonic::Code, d: Duration) {
        *self.calls.lock().entry(code_name(code)).or_default() += 1;
        self.latency.observe(d);
    }
}

pub struct RouterMetrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    request_seconds: [Histogram; 4],
    pub partial_answers: AtomicU64,
    pub in_flight: Gauge,
    pub ready: Gauge,
    cluster: Arc<Cluster>,
}

impl RouterMetrics {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        RouterMetrics {
            requests: Mutex::default(),
            request_seconds: Default::default(),
            partial_answers: AtomicU64::new(0),
            in_flight: Gauge::default(),
            ready: Gauge::default(),
            cluster,
        }
    }

    pub fn observe_request(&self, method: &'static str, code: tonic::Code, d: Duration) {
        *self.requests.lock().entry((method, code_name(code))).or_default() += 1;
        if let Some(i) = METHODS.iter().position(|m| *m == method) {
            self.request_seconds[i].observe(d);
        }
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let head = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(&mut o, "fathom_router_requests_total", "counter", "Router gRPC requests by method and status code.");
        for ((m, c), n) in self.requests.lock().iter() {
            let _ = writeln!(o, "fathom_router_requests_total{{method=\"{m}\",code=\"{c}\"}} {n}");
        }
        head(&mut o, "fathom_router_request_duration_seconds", "histogram", "Router request latency by method.");
        for (m, h) in METHODS.iter().zip(&self.request_seconds) {
            h.render(&mut o, "fathom_router_request_duration_seconds", &format!("method=\"{m}\""));
        }
        let shards = &self.cluster.shards;
        head(&mut o, "fathom_router_shard_requests_total", "counter", "Calls to shard replicas by status code.");
        for s in shards {
            for r in s.replicas() {
                for (c, n) in r.metrics.calls.lock().iter() {
                    let _ = writeln!(
                        o,
                        "fathom_router_shard_requests_total{{shard=\"{}\",replica=\"{}\",code=\"{c}\"}} {n}",
                        s.number, r.addr
                    );
                }
            }
        }
        head(
            &mut o,
            "fathom_router_shard_request_duration_seconds",
            "histogram",
            "Latency of calls to shard replicas.",
        );
        for s in shards {
            for r in s.replicas() {
                let labels = format!("shard=\"{}\",replica=\"{}\"", s.number, r.addr);
                r.metrics.latency.render(&mut o, "fathom_router_shard_request_duration_seconds", &labels);
            }
        }
        head(&mut o, "fathom_router_shard_in_flight", "gauge", "Calls to a shard replica not yet answered.");
        for s in shards {
            for r in s.replicas() {
                let v = r.metrics.in_flight.get();
                let _ =
                    writeln!(o, "fathom_router_shard_in_flight{{shard=\"{}\",replica=\"{}\"}} {v}", s.number, r.addr);
            }
        }
        head(&mut o, "fathom_router_replica_live", "gauge", "1 when the replica is used for answers.");
        for s in shards {
            for r in s.replicas() {
                let v = i64::from(r.is_live());
                let _ = writeln!(o, "fathom_router_replica_live{{shard=\"{}\",replica=\"{}\"}} {v}", s.number, r.addr);
            }
        }
        head(&mut o, "fathom_router_retries_total", "counter", "Calls retried on another replica of the shard.");
        for s in shards {
            let v = s.retries.load(Ordering::Relaxed);
            let _ = writeln!(o, "fathom_router_retries_total{{shard=\"{}\"}} {v}", s.number);
        }
        let partial = self.partial_answers.load(Ordering::Relaxed);
        head(&mut o, "fathom_router_partial_answers_total", "counter", "Answers that left out a shard.");
        let _ = writeln!(o, "fathom_router_partial_answers_total {partial}");
        let gauges = [
            ("fathom_router_shards", "Shards the router fans out to.", shards.len() as i64),
            ("fathom_router_shards_live", "Shards with a usable replica.", self.cluster.live_shards() as i64),
            ("fathom_router_in_flight_requests", "Router requests being handled.", self.in_flight.get()),
            ("fathom_ready", "1 when the router serves (see the policy).", self.ready.get()),
            ("process_resident_memory_bytes", "Resident memory of the process.", crate::sysinfo::rss_bytes() as i64),
        ];
        for (name, help, v) in gauges {
            head(&mut o, name, "gauge", help);
            let _ = writeln!(o, "{name} {v}");
        }
        let _ = writeln!(o, "# HELP fathom_build_info Build of this server.\n# TYPE fathom_build_info gauge");
        let _ = writeln!(o, "fathom_build_info{{version=\"{}\",role=\"router\"}} 1", env!("CARGO_PKG_VERSION"));
        o
    }
}

impl crate::http::Exposition for RouterMetrics {
    fn render(&self) -> String {
        RouterMetrics::render(self)
    }
    fn ready(&self) -> bool {
        self.ready.get() == 1
    }
}
