//! The Fathom gRPC service: validate -> hand to a search worker -> map the
//! result. Until the index is open (and while draining) every call answers
//! UNAVAILABLE.

use crate::net::status::to_status;
use crate::net::validate::{self, Limits};
use crate::ops::metrics::Metrics;
use crate::shard::swap::Ready;
use crate::shard::workers::{Job, JobError};
use fathom_index::{Index, SearchOverrides, SearchSettings};
use fathom_proto::v1::fathom_server::Fathom;
use fathom_proto::v1::{self as pb, ElementType};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

pub struct FathomService {
    pub served: Arc<crate::shard::swap::Served>,
    pub draining: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    /// The configured search settings, over the served index's defaults.
    pub defaults: SearchOverrides,
}

impl FathomService {
    /// The settings a request to `st` starts from: the configured keys over
    /// that index's own defaults (the plain defaults while no index is
    /// served: the request then fails as unavailable, after its own checks).
    /// The same looked-up index then runs the request: a swap in between
    /// cannot check settings against one index and run them on another.
    fn search_defaults(&self, st: &Result<Arc<Ready>, Status>) -> SearchSettings {
        let base = st.as_ref().map_or_else(|_| SearchSettings::default(), |st| st.index.default_settings());
        self.defaults.apply(base)
    }

    /// The index served now; a request keeps it (and its workers) until it
    /// is answered, even if a swap replaces it meanwhile.
    fn state(&self) -> Result<Arc<Ready>, Status> {
        self.state_of("")
    }

    /// The index of `collection` ("" = the one served now).
    fn state_of(&self, collection: &str) -> Result<Arc<Ready>, Status> {
        if self.draining.load(Ordering::Relaxed) {
            return Err(Status::unavailable("server is shutting down"));
        }
        let current = self.served.get().ok_or_else(|| Status::unavailable("index is still loading; retry shortly"))?;
        if collection.is_empty() || current.index.manifest().collection_id == collection {
            return Ok(current);
        }
        self.served.of_collection(collection).ok_or_else(|| {
            Status::failed_precondition(format!(
                "this server holds collection {} (and the one it replaced), not {collection}",
                current.index.manifest().collection_id
            ))
        })
    }

    /// Runs queries on the worker pool of `st`, honouring the client's
    /// deadline.
    async fn run(
        &self,
        st: Arc<Ready>,
        queries: Vec<validate::QueryVec>,
        k: usize,
        settings: SearchSettings,
        timeout: Option<Duration>,
    ) -> Result<Vec<pb::SearchResponse>, Status> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let (reply, rx) = oneshot::channel();
        let batch = queries.len() > 1;
        let job = Job { queries, k, settings, deadline, queued_at: Instant::now(), reply };
        if st.pool.submit(job).is_err() {
            return Err(crate::net::status::retry_later(format!(
                "search queue is full ({} waiting); retry with backoff",
                st.pool.queued()
            )));
        }
        let result = match timeout {
            Some(t) => tokio::time::timeout(t, rx).await.map_err(|_| deadline_exceeded())?,
            None => rx.await,
        };
        let result = result.map_err(|_| Status::internal("search worker stopped"))?;
        match result {
            Ok(rows) => Ok(rows
                .into_iter()
                .map(|(found, s)| pb::SearchResponse {
                    neighbors: found.iter().map(|n| pb::Neighbor { id: n.id, distance: n.distance }).collect(),
                    stats: Some(crate::net::stats::to_wire(&s)),
                    coverage: None,
                })
                .collect()),
            Err(JobError::DeadlineExceeded) => Err(deadline_exceeded()),
            Err(JobError::Engine { query, error }) => {
                let st = to_status(&error);
                // A batch names the query (vectors[i]); a single search has one.
                Err(if batch { Status::new(st.code(), format!("vectors[{query}]: {}", st.message())) } else { st })
            }
        }
    }

    fn finish<T>(&self, method: &'static str, started: Instant, r: Result<T, Status>) -> Result<Response<T>, Status> {
        crate::net::status::finish(method, started, r, |m, c, d| self.metrics.observe_request(m, c, d))
    }
}

fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("deadline passed before the search finished; the work was abandoned")
}

fn timeout_of<T>(r: &Request<T>) -> Option<Duration> {
    r.metadata().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(validate::grpc_timeout)
}

#[tonic::async_trait]
impl Fathom for FathomService {
    async fn search(&self, req: Request<pb::SearchRequest>) -> Result<Response<pb::SearchResponse>, Status> {
        let started = Instant::now();
        let _g = crate::ops::metrics::GaugeGuard::new(&self.metrics.in_flight);
        let timeout = timeout_of(&req);
        let r = async {
            let m = req.into_inner();
            let st = self.state_of(&m.collection_id);
            let (qs, k, s) = validate::search_request(&m, &self.limits, &self.search_defaults(&st))?;
            let mut out = self.run(st?, qs, k, s, timeout).await?;
            out.pop().ok_or_else(|| Status::internal("empty result"))
        }
        .await;
        self.finish("Search", started, r)
    }

    async fn batch_search(
        &self,
        req: Request<pb::BatchSearchRequest>,
    ) -> Result<Response<pb::BatchSearchResponse>, Status> {
        let started = Instant::now();
        let _g = crate::ops::metrics::GaugeGuard::new(&self.metrics.in_flight);
        let timeout = timeout_of(&req);
        let r = async {
            let m = req.into_inner();
            let st = self.state_of(&m.collection_id);
            let (qs, k, s) = validate::batch_request(&m, &self.limits, &self.search_defaults(&st))?;
            let results = self.run(st?, qs, k, s, timeout).await?;
            Ok(pb::BatchSearchResponse { results })
        }
        .await;
        self.finish("BatchSearch", started, r)
    }

    async fn get_codec(&self, _req: Request<pb::GetCodecRequest>) -> Result<Response<pb::CodecParams>, Status> {
        let started = Instant::now();
        use fathom_index::search::NoCodec;
        let r = self.state().and_then(|st| {
            let params = st.index.binary_codec().map_err(|why| match why {
                NoCodec::RawBits => Status::failed_precondition(
                    "the index holds raw bit vectors, not encoded floats: there is no codec; send queries as packed bits",
                ),
                NoCodec::NotBinary(code) => Status::failed_precondition(format!(
                    "the index uses {code} codes; binary codec parameters exist only for an index built with \
                     --code binary or --encode binary:U"
                )),
            })?;
            Ok(pb::CodecParams { dimension: params.dim as u32, bits: params.bits as u32, params: params.to_bytes() })
        });
        self.finish("GetCodec", started, r)
    }

    async fn get_index_info(&self, _req: Request<pb::GetIndexInfoRequest>) -> Result<Response<pb::IndexInfo>, Status> {
        let started = Instant::now();
        let r = self.state().map(|st| pb::IndexInfo {
            previous_collection_id: self
                .served
                .previous()
                .map(|p| p.index.manifest().collection_id.clone())
                .unwrap_or_default(),
            ..index_info(&st.index, &self.defaults.apply(st.index.default_settings()))
        });
        self.finish("GetIndexInfo", started, r)
    }
}

/// What GetIndexInfo says of one open index.
pub fn index_info(index: &Index, defaults: &SearchSettings) -> pb::IndexInfo {
    let m = index.manifest();
    pb::IndexInfo {
        metric: m.metric.to_string(),
        dimension: m.dim as u32,
        element_type: match m.element {
            fathom_index::ElementType::F32 => ElementType::F32,
            fathom_index::ElementType::U8 => ElementType::U8,
            fathom_index::ElementType::I8 => ElementType::I8,
            fathom_index::ElementType::Bits => ElementType::Bits,
        } as i32,
        bits_per_dimension: index.code_space().map_or(0, |s| s.planes as u32),
        code_bytes: index.code_bytes().unwrap_or(0) as u32,
        vector_count: m.vector_count,
        posting_count: m.posting_count,
        format_version: m.format_version,
        code: m.code.to_string(),
        build_params_json: serde_json::to_string(&m.build).unwrap_or_default(),
        resident_bytes: index.resident_bytes(),
        disk_bytes: m.files.values().map(|f| f.bytes).sum(),
        default_settings: Some(validate::to_pb_settings(defaults)),
        collection_id: m.collection_id.clone(),
        shard: m.build.shard,
        shard_count: m.build.shard_count,
        user_ids: m.user_ids,
        index_version: index.version(),
        previous_collection_id: String::new(),
        coverage: None,
        io_backend: index.backend_name().into(),
        direct_io: index.direct_io(),
        process_rss_bytes: crate::ops::sysinfo::rss_bytes(),
    }
}
