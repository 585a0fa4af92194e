//! The router's gRPC service: the same API as a server, answered by fanning
//! out to the shards (Search, BatchSearch), summing them (GetIndexInfo) or
//! passing through (GetCodec).

use super::cluster::Cluster;
use super::fanout::{self, Policy};
use super::metrics::RouterMetrics;
use crate::net::validate::{self, Limits};
use fathom_proto::v1::fathom_server::Fathom;
use fathom_proto::v1::{self as pb, BatchSearchRequest};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

pub struct RouterService {
    pub cluster: Arc<Cluster>,
    pub policy: Policy,
    pub limits: Limits,
    pub shard_timeout: Duration,
    pub metrics: Arc<RouterMetrics>,
    pub draining: Arc<AtomicBool>,
}

impl RouterService {
    fn check_open(&self) -> Result<(), Status> {
        if self.draining.load(Ordering::Relaxed) {
            return Err(Status::unavailable("router is shutting down"));
        }
        Ok(())
    }

    /// The request's deadline, no later than the per-shard cap.
    fn deadline_of<T>(&self, r: &Request<T>) -> Instant {
        let timeout = r
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(validate::grpc_timeout)
            .map_or(self.shard_timeout, |t| t.min(self.shard_timeout));
        Instant::now() + timeout
    }

    async fn fan_out(&self, req: BatchSearchRequest, deadline: Instant) -> Result<Vec<pb::SearchResponse>, Status> {
        self.check_open()?;
        // The shards' checks, with the router's caps; settings a request
        // leaves unset are costed at the engine's defaults (each shard
        // checks again with its index's own).
        validate::batch_request(&req, &self.limits, &fathom_index::SearchSettings::default())?;
        let merged = self.cluster.collection().unwrap_or_default();
        if !req.collection_id.is_empty() && req.collection_id != merged {
            return Err(Status::failed_precondition(format!(
                "the router merges collection {merged}, not {}",
                req.collection_id
            )));
        }
        fanout::search(&self.cluster, req, deadline, self.policy, &self.metrics.partial_answers).await
    }

    fn finish<T>(&self, method: &'static str, started: Instant, r: Result<T, Status>) -> Result<Response<T>, Status> {
        crate::net::status::finish(method, started, r, |m, c, d| self.metrics.observe_request(m, c, d))
    }

    /// Shard infos of the merged collection, or why not every shard has one.
    /// The index info of every shard with a usable replica, and the
    /// shards without one. Under `fail` any missing shard is UNAVAILABLE;
    /// under `partial` the known ones answer. Messages name shards by
    /// number only: addresses and causes are in the router's log.
    fn shard_infos(&self) -> Result<(Vec<pb::IndexInfo>, Vec<u32>), Status> {
        let mut infos = Vec::new();
        let mut missing = Vec::new();
        for s in 0..self.cluster.shards.len() {
            match self.cluster.shard_info(s) {
                Some(i) => infos.push(i),
                None => missing.push(s as u32),
            }
        }
        if infos.is_empty() || (self.policy == Policy::Fail && !missing.is_empty()) {
            let public: Vec<String> =
                missing.iter().map(|&s| format!("shard {s}: {}", self.cluster.why_down_public(s as usize))).collect();
            return Err(Status::unavailable(format!("no live replica for {}", public.join("; "))));
        }
        Ok((infos, missing))
    }
}

/// The collection as a whole from the shards that answered: counts and
/// bytes summed, the rest from the first, and which shards are missing.
pub fn collection_info(infos: &[pb::IndexInfo], missing: &[u32]) -> Option<pb::IndexInfo> {
    let first = infos.first()?;
    let total = (infos.len() + missing.len()) as u32;
    Some(pb::IndexInfo {
        coverage: Some(pb::Coverage {
            shards_answered: infos.len() as u32,
            shards_total: total,
            missing_shards: missing.to_vec(),
        }),
        vector_count: infos.iter().map(|i| i.vector_count).sum(),
        posting_count: infos.iter().map(|i| i.posting_count).sum(),
        resident_bytes: infos.iter().map(|i| i.resident_bytes).sum(),
        disk_bytes: infos.iter().map(|i| i.disk_bytes).sum(),
        shard: 0,
        shard_count: total,
        index_version: infos.iter().map(|i| i.index_version.as_str()).collect::<Vec<_>>().join(","),
        io_backend: infos.iter().map(|i| i.io_backend.as_str()).collect::<Vec<_>>().join(","),
        direct_io: infos.iter().all(|i| i.direct_io),
        process_rss_bytes: infos.iter().map(|i| i.process_rss_bytes).sum(),
        ..first.clone()
    })
}

#[tonic::async_trait]
impl Fathom for RouterService {
    async fn search(&self, req: Request<pb::SearchRequest>) -> Result<Response<pb::SearchResponse>, Status> {
        let started = Instant::now();
        let in_flight = crate::ops::metrics::GaugeGuard::new(&self.metrics.in_flight);
        let deadline = self.deadline_of(&req);
        let m = req.into_inner();
        let batch = BatchSearchRequest {
            vectors: m.vector.into_iter().collect(),
            k: m.k,
            settings: m.settings,
            collection_id: m.collection_id,
        };
        let r = if batch.vectors.is_empty() {
            Err(Status::invalid_argument("vector is required"))
        } else {
            self.fan_out(batch, deadline)
                .await
                .and_then(|mut v| v.pop().ok_or_else(|| Status::internal("empty result")))
        };
        drop(in_flight);
        self.finish("Search", started, r)
    }

    async fn batch_search(
        &self,
        req: Request<pb::BatchSearchRequest>,
    ) -> Result<Response<pb::BatchSearchResponse>, Status> {
        let started = Instant::now();
        let in_flight = crate::ops::metrics::GaugeGuard::new(&self.metrics.in_flight);
        let deadline = self.deadline_of(&req);
        let r = self.fan_out(req.into_inner(), deadline).await.map(|results| pb::BatchSearchResponse { results });
        drop(in_flight);
        self.finish("BatchSearch", started, r)
    }

    async fn get_index_info(&self, _req: Request<pb::GetIndexInfoRequest>) -> Result<Response<pb::IndexInfo>, Status> {
        let started = Instant::now();
        let r = self.check_open().and_then(|()| self.shard_infos()).and_then(|(infos, missing)| {
            collection_info(&infos, &missing).ok_or_else(|| Status::unavailable("no shards"))
        });
        self.finish("GetIndexInfo", started, r)
    }

    async fn get_codec(&self, req: Request<pb::GetCodecRequest>) -> Result<Response<pb::CodecParams>, Status> {
        let started = Instant::now();
        let r = async {
            self.check_open()?;
            // Shards of one build share the codec of an encoded collection.
            let replica = (0..self.cluster.shards.len())
                .find_map(|s| self.cluster.pick(s, &[]))
                .ok_or_else(|| Status::unavailable("no shard has a live replica"))?;
            let mut call = Request::new(req.into_inner());
            call.set_timeout(self.shard_timeout);
            crate::net::auth::attach(call.metadata_mut(), self.cluster.shard_key());
            replica.client.clone().get_codec(call).await.map(Response::into_inner)
        }
        .await;
        self.finish("GetCodec", started, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_info_sums_counts_and_joins_versions() {
        let i = |n, v: &str| pb::IndexInfo {
            vector_count: n,
            disk_bytes: 10,
            shard_count: 2,
            index_version: v.into(),
            metric: "l2".into(),
            ..Default::default()
        };
        let c = collection_info(&[i(5, "a"), i(7, "b")], &[]).unwrap();
        assert_eq!((c.vector_count, c.disk_bytes, c.shard_count, c.index_version.as_str()), (12, 20, 2, "a,b"));
        assert_eq!(c.metric, "l2");
        let c = collection_info(&[i(5, "a")], &[1]).unwrap();
        assert_eq!((c.vector_count, c.shard_count), (5, 2));
        assert_eq!(c.coverage.unwrap().missing_shards, vec![1]);
    }
}
