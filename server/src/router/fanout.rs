//! One request to every shard, in parallel, and the merge of their answers.
//!
//! Each shard gets the whole batch from one of its replicas, within a
//! per-shard deadline cut from the request's own; a replica that answers
//! UNAVAILABLE (or cannot be reached) is taken out of rotation and the
//! call is retried once on another replica if time allows. The top k of
//! each query are merged by distance, ties by smaller id: the router's
//! answer is the best k of the shards' answers.

use super::cluster::Cluster;
use fathom_proto::v1::{self as pb, BatchSearchRequest};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Code, Status};

/// What the router does when a shard has no live replica (or misses the
/// deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Answer UNAVAILABLE (or DEADLINE_EXCEEDED) naming the shard.
    Fail,
    /// Answer from the shards that did, and say which did not (`Coverage`).
    Partial,
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fail" => Ok(Policy::Fail),
            "partial" => Ok(Policy::Partial),
            o => Err(format!("unknown shard policy {o:?} (expected fail or partial)")),
        }
    }
}

/// Time kept back from the request's deadline for merging and replying.
fn reply_margin(remaining: Duration) -> Duration {
    (remaining / 20).clamp(Duration::from_micros(500), Duration::from_millis(20))
}

/// One shard's answer to the batch, or why it has none.
type ShardResult = Result<pb::BatchSearchResponse, Status>;

/// Fans `req` out to every shard and merges; `deadline` is the request's.
pub async fn search(
    cluster: &Arc<Cluster>,
    req: BatchSearchRequest,
    deadline: Instant,
    policy: Policy,
    partial_answers: &prometheus_client::metrics::counter::Counter,
) -> Result<Vec<pb::SearchResponse>, Status> {
    let n = cluster.shards.len();
    let remaining = deadline.saturating_duration_since(Instant::now());
    let shard_deadline = deadline.checked_sub(reply_margin(remaining)).unwrap_or(deadline);
    // Every shard answers for the one collection read here.
    let mut req = req;
    req.collection_id = cluster.collection().unwrap_or_default();
    let req = Arc::new(req);
    let mut calls = tokio::task::JoinSet::new();
    for s in 0..n {
        let (cluster, req) = (cluster.clone(), req.clone());
        calls.spawn(async move { (s, call_shard(&cluster, s, &req, shard_deadline).await) });
    }
    let mut answers: Vec<Option<ShardResult>> = (0..n).map(|_| None).collect();
    while let Some(done) = calls.join_next().await {
        if let Ok((s, r)) = done {
            answers[s] = Some(r);
        }
    }
    let answers: Vec<ShardResult> =
        answers.into_iter().map(|a| a.unwrap_or_else(|| Err(Status::internal("shard call stopped")))).collect();
    // A request error (bad query, damaged data, ...) is the answer, whichever shard says it.
    for (s, a) in answers.iter().enumerate() {
        if let Err(st) = a {
            if !is_missing(st.code()) {
                return Err(Status::new(st.code(), format!("shard {s}: {}", st.message())));
            }
        }
    }
    let missing: Vec<u32> = (0..n as u32).filter(|&s| answers[s as usize].is_err()).collect();
    if !missing.is_empty() && (policy == Policy::Fail || missing.len() == n) {
        let s = missing[0] as usize;
        let st = answers[s].as_ref().err().cloned().unwrap_or_else(|| Status::internal("no answer"));
        let what = format!(
            "{} of {n} shards did not answer (shard policy {}): shard {s}: {}",
            missing.len(),
            if policy == Policy::Fail { "fail" } else { "partial" },
            st.message()
        );
        return Err(Status::new(st.code(), what));
    }
    if !missing.is_empty() {
        partial_answers.inc();
    }
    let queries = req.vectors.len();
    let k = req.k as usize;
    let mut out = Vec::with_capacity(queries);
    for q in 0..queries {
        let mut neighbors = Vec::new();
        let mut stats = fathom_index::SearchStats::default();
        for a in answers.iter().flatten() {
            let Some(r) = a.results.get(q) else {
                return Err(Status::internal(format!("a shard answered {} of {queries} queries", a.results.len())));
            };
            neighbors.extend_from_slice(&r.neighbors);
            if let Some(s) = &r.stats {
                stats.add(&crate::net::stats::from_wire(s));
            }
        }
        merge_top_k(&mut neighbors, k);
        out.push(pb::SearchResponse {
            neighbors,
            stats: Some(crate::net::stats::to_wire(&stats)),
            coverage: Some(pb::Coverage {
                shards_answered: (n - missing.len()) as u32,
                shards_total: n as u32,
                missing_shards: missing.clone(),
            }),
        });
    }
    Ok(out)
}

/// Codes that mean "this shard has no answer now" rather than "this request is wrong".
fn is_missing(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown)
}

/// The replica could not be reached or its connection broke (a status made
/// on this side carries its cause; one decoded from a server does not).
fn unreachable(st: &Status) -> bool {
    st.code() == Code::Unavailable || (st.code() == Code::Unknown && std::error::Error::source(st).is_some())
}

/// The best `k` by distance, ties by smaller id.
pub fn merge_top_k(neighbors: &mut Vec<pb::Neighbor>, k: usize) {
    neighbors.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
    neighbors.truncate(k);
}

/// The batch on one replica of shard `s`, retried once on another replica
/// after UNAVAILABLE.
async fn call_shard(cluster: &Cluster, s: usize, req: &BatchSearchRequest, deadline: Instant) -> ShardResult {
    let mut tried = Vec::new();
    let mut last: Option<Status> = None;
    for attempt in 0..2 {
        let Some(replica) = cluster.pick_for(s, &req.collection_id, &tried) else {
            return Err(
                last.unwrap_or_else(|| Status::unavailable(format!("no live replica: {}", cluster.why_down_public(s))))
            );
        };
        tried.push(replica.addr);
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining < Duration::from_micros(200) {
            return Err(Status::deadline_exceeded("the request's deadline passed before the shard answered"));
        }
        // A shard holding fewer than k vectors is asked for all of them.
        let mut body = req.clone();
        if let Some(info) = replica.info() {
            body.k = body.k.min(info.vector_count.min(u32::MAX as u64) as u32).max(1);
        }
        let mut call = tonic::Request::new(body);
        call.set_timeout(remaining);
        crate::net::auth::attach(call.metadata_mut(), cluster.shard_key());
        let started = Instant::now();
        let in_flight = crate::ops::metrics::GaugeGuard::new(&replica.metrics.in_flight);
        let result = tokio::time::timeout(remaining, replica.client.clone().batch_search(call)).await;
        drop(in_flight);
        let result = match result {
            Ok(r) => r.map(tonic::Response::into_inner),
            Err(_) => {
                tracing::debug!(shard = s, replica = %replica.addr, "no answer within the per-shard deadline");
                Err(Status::deadline_exceeded(format!(
                    "shard {s} did not answer within the per-shard deadline of {remaining:?}"
                )))
            }
        };
        replica.metrics.observe(result.as_ref().map_or_else(Status::code, |_| Code::Ok), started.elapsed());
        match result {
            Err(st) if unreachable(&st) => {
                replica.mark_down(&format!("unreachable: {}", st.message()));
                if attempt == 0 {
                    cluster.shards[s].retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                // The cause names the address: the log has it (mark_down),
                // the client learns only that the replica is unreachable.
                last = Some(Status::unavailable(format!("a replica of shard {s} is unreachable")));
            }
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| Status::unavailable("no replica answered")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_the_best_k_with_ties_by_id() {
        let n = |id: u64, distance: f32| pb::Neighbor { id, distance };
        let mut v = vec![n(9, 1.0), n(4, 0.5), n(2, 1.0), n(7, 3.0), n(1, 1.0)];
        merge_top_k(&mut v, 3);
        assert_eq!(v, vec![n(4, 0.5), n(1, 1.0), n(2, 1.0)]);
    }

    #[test]
    fn the_reply_margin_is_small_and_bounded() {
        assert_eq!(reply_margin(Duration::from_secs(10)), Duration::from_millis(20));
        assert_eq!(reply_margin(Duration::from_millis(100)), Duration::from_millis(5));
        assert_eq!(reply_margin(Duration::ZERO), Duration::from_micros(500));
    }
}
