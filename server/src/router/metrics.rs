//! The router's Prometheus metrics: its own requests, and per shard and
//! replica the calls it made (by code, latency, in flight), retries,
//! partial answers and liveness. Labels: method and code from fixed sets;
//! shard numbers and replica addresses from the configured shard list,
//! read from the cluster at scrape time.

use super::cluster::Cluster;
use crate::ops::metrics::{code_name, register_process, registered, RequestMetrics, REQUEST_BUCKETS};
use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Calls one replica has answered, by code, and their latency.
pub struct ReplicaMetrics {
    calls: Mutex<BTreeMap<&'static str, u64>>,
    latency: Histogram,
    pub in_flight: Gauge,
}

impl Default for ReplicaMetrics {
    fn default() -> Self {
        ReplicaMetrics {
            calls: Mutex::default(),
            latency: Histogram::new(REQUEST_BUCKETS),
            in_flight: Gauge::default(),
        }
    }
}

impl ReplicaMetrics {
    pub fn observe(&self, code: tonic::Code, d: Duration) {
        *self.calls.lock().entry(code_name(code)).or_default() += 1;
        self.latency.observe(d.as_secs_f64());
    }
}

pub struct RouterMetrics {
    registry: Registry,
    requests: RequestMetrics,
    pub partial_answers: Counter,
    pub in_flight: Gauge,
    pub ready: Gauge,
}

impl RouterMetrics {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        let mut r = Registry::default();
        let requests = RequestMetrics::register(&mut r, "fathom_router", "Router gRPC");
        let partial_answers: Counter =
            registered(&mut r, "fathom_router_partial_answers", "Answers that left out a shard");
        let in_flight: Gauge = registered(&mut r, "fathom_router_in_flight_requests", "Router requests being handled");
        let ready: Gauge = registered(&mut r, "fathom_ready", "1 when the router serves (see the policy)");
        r.register_collector(Box::new(ShardCollector(cluster)));
        register_process(&mut r, "router");
        RouterMetrics { registry: r, requests, partial_answers, in_flight, ready }
    }

    pub fn observe_request(&self, method: &'static str, code: tonic::Code, d: Duration) {
        self.requests.observe(method, code, d);
    }

    pub fn render(&self) -> String {
        crate::ops::metrics::encode(&self.registry)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    shard: u32,
    replica: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    shard: u32,
    replica: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShardLabel {
    shard: u32,
}

/// Per shard and replica figures, read from the cluster at scrape time.
struct ShardCollector(Arc<Cluster>);

impl std::fmt::Debug for ShardCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShardCollector({} shards)", self.0.shards.len())
    }
}

impl Collector for ShardCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shards = &self.0.shards;
        let replicas: Vec<_> = shards
            .iter()
            .flat_map(|s| {
                s.replicas()
                    .into_iter()
                    .map(move |r| (ReplicaLabels { shard: s.number, replica: r.addr.to_string() }, r))
            })
            .collect();
        let mut m = enc.encode_descriptor(
            "fathom_router_shard_requests",
            "Calls to shard replicas by status code",
            None,
            MetricType::Counter,
        )?;
        for (l, r) in &replicas {
            for (code, n) in r.metrics.calls.lock().iter() {
                let labels = CallLabels { shard: l.shard, replica: l.replica.clone(), code };
                ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "fathom_router_shard_request_duration_seconds",
            "Latency of calls to shard replicas",
            None,
            MetricType::Histogram,
        )?;
        for (l, r) in &replicas {
            r.metrics.latency.encode(m.encode_family(l)?)?;
        }
        let mut m = enc.encode_descriptor(
            "fathom_router_shard_in_flight",
            "Calls to a shard replica not yet answered",
            None,
            MetricType::Gauge,
        )?;
        for (l, r) in &replicas {
            ConstGauge::new(r.metrics.in_flight.get()).encode(m.encode_family(l)?)?;
        }
        let mut m = enc.encode_descriptor(
            "fathom_router_replica_live",
            "1 when the replica is used for answers",
            None,
            MetricType::Gauge,
        )?;
        for (l, r) in &replicas {
            ConstGauge::new(i64::from(self.0.usable(r))).encode(m.encode_family(l)?)?;
        }
        let mut m = enc.encode_descriptor(
            "fathom_router_retries",
            "Calls retried on another replica of the shard",
            None,
            MetricType::Counter,
        )?;
        for s in shards {
            ConstCounter::new(s.retries.load(Ordering::Relaxed))
                .encode(m.encode_family(&ShardLabel { shard: s.number })?)?;
        }
        let gauges = [
            ("fathom_router_shards", "Shards the router fans out to", shards.len() as i64),
            ("fathom_router_shards_live", "Shards with a usable replica", self.0.live_shards() as i64),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v);
            g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

impl crate::net::http::Exposition for RouterMetrics {
    fn render(&self) -> String {
        RouterMetrics::render(self)
    }
    fn ready(&self) -> bool {
        self.ready.get() == 1
    }
}
