//! Async client for Fathom's gRPC API.
//!
//! - [`Client::connect`] with [`ClientOptions`] (connect and request
//!   timeouts, retries of `UNAVAILABLE` with exponential backoff);
//! - [`Client::search`] (also [`Client::search_u8`], [`Client::search_i8`],
//!   [`Client::search_code`]), [`Client::batch_search`],
//!   [`Client::index_info`]; [`Client::with_timeout`] for one call's deadline;
//! - retries of `UNAVAILABLE`, and of `RESOURCE_EXHAUSTED` when the server
//!   says a retry may succeed (a full queue, a key's rate), with backoff;
//! - [`Error`]: connection problems (with their causes), or the server's
//!   status [`Code`] and message.
//!
//! `examples/search.rs` connects, reads the index's info and searches.
//!
//! No engine here: applications depend on this crate and the generated
//! protocol types only.

#![forbid(unsafe_code)]
// Input never panics the process: errors are returned (tests may unwrap).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use fathom_proto::v1::fathom_client::FathomClient;
use fathom_proto::v1::{
    vector, BatchSearchRequest, ElementType, FloatVector, GetCodecRequest, GetIndexInfoRequest, PackedVector,
    SearchRequest, Vector,
};
pub use fathom_proto::v1::{Coverage, IndexInfo, Neighbor, SearchResponse, SearchSettings, SearchStats};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
/// The gRPC status code of an [`Error::Status`].
pub use tonic::Code;

#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// Deadline sent with every request (`grpc-timeout`); None = no deadline.
    pub request_timeout: Option<Duration>,
    /// Extra attempts after an `UNAVAILABLE` answer, or a
    /// `RESOURCE_EXHAUSTED` one the server marks as worth retrying.
    pub retries: u32,
    /// First backoff; doubles per retry.
    pub backoff: Duration,
    /// Sent as `authorization: Bearer KEY` with every call. Default: the
    /// `FATHOM_API_KEY` environment variable.
    pub api_key: Option<ApiKey>,
    /// TLS (for `https://` addresses): the CA (PEM) the server's certificate
    /// must chain to. Default: the file named by `FATHOM_TLS_CA` (a file that
    /// cannot be read makes [`Client::connect`] fail, naming it).
    pub tls_ca_pem: Option<Vec<u8>>,
    /// Mutual TLS: this client's certificate chain and key (PEM).
    pub tls_identity_pem: Option<TlsIdentity>,
}

/// A certificate chain and its private key (PEM); `Debug` hides the key.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsIdentity({} bytes of certificate, key hidden)", self.cert_pem.len())
    }
}

/// An API key; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Some(Duration::from_secs(10)),
            retries: 3,
            backoff: Duration::from_millis(50),
            api_key: std::env::var("FATHOM_API_KEY").ok().filter(|k| !k.is_empty()).map(ApiKey),
            tls_ca_pem: std::env::var("FATHOM_TLS_CA").ok().and_then(|p| std::fs::read(p).ok()),
            tls_identity_pem: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid server address {addr:?}: {reason}")]
    InvalidAddress { addr: String, reason: String },
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("FATHOM_TLS_CA {path}: {reason}")]
    TlsCa { path: String, reason: String },
    #[error("server answered {code:?}: {message}")]
    Status { code: Code, message: String },
    #[error("server sent codec parameters this client cannot read: {0}")]
    Codec(fathom_codec::CodecError),
}

impl Error {
    /// The gRPC status code, when the server answered.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        Error::Status { code: s.code(), message: s.message().to_string() }
    }
}

/// A connection to one Fathom server (or router). Cheap to clone; clones
/// share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    inner: FathomClient<Channel>,
    opts: ClientOptions,
}

/// An error and its causes, outermost first ("transport error: tcp connect
/// error: Connection refused (os error 111)").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

impl Client {
    /// Connects to `addr` (e.g. `http://127.0.0.1:7700`, or `https://` for
    /// TLS).
    pub async fn connect(addr: &str, mut opts: ClientOptions) -> Result<Self, Error> {
        if !addr.contains("://") {
            return Err(Error::InvalidAddress {
                addr: addr.into(),
                reason: format!("no scheme: write http://{addr} (or https://{addr} for TLS)"),
            });
        }
        if opts.tls_ca_pem.is_none() && addr.starts_with("https://") {
            if let Some(path) = std::env::var("FATHOM_TLS_CA").ok().filter(|p| !p.is_empty()) {
                let pem =
                    std::fs::read(&path).map_err(|e| Error::TlsCa { path: path.clone(), reason: e.to_string() })?;
                opts.tls_ca_pem = Some(pem);
            }
        }
        let mut endpoint = Endpoint::from_shared(addr.to_string())
            .map_err(|e| Error::InvalidAddress { addr: addr.into(), reason: e.to_string() })?
            .connect_timeout(opts.connect_timeout)
            .tcp_nodelay(true);
        if addr.starts_with("https://") {
            let mut tls = tonic::transport::ClientTlsConfig::new();
            if let Some(ca) = &opts.tls_ca_pem {
                tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(ca));
            }
            if let Some(id) = &opts.tls_identity_pem {
                tls = tls.identity(tonic::transport::Identity::from_pem(&id.cert_pem, &id.key_pem));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| Error::InvalidAddress { addr: addr.into(), reason: format!("TLS: {e}") })?;
        }
        let channel = endpoint.connect().await.map_err(|e| Error::Connect { addr: addr.into(), reason: chain(&e) })?;
        let inner = FathomClient::new(channel).max_decoding_message_size(64 << 20).max_encoding_message_size(64 << 20);
        Ok(Client { inner, opts })
    }

    /// This client with another deadline for its calls (`None`: none);
    /// shares the connection.
    pub fn with_timeout(&self, timeout: Option<Duration>) -> Client {
        let mut c = self.clone();
        c.opts.request_timeout = timeout;
        c
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(t) = self.opts.request_timeout {
            r.set_timeout(t);
        }
        if let Some(v) = self.opts.api_key.as_ref().and_then(|k| format!("Bearer {}", k.0).parse().ok()) {
            r.metadata_mut().insert("authorization", v);
        }
        r
    }

    /// Runs `call` until it succeeds, fails with something other than
    /// `UNAVAILABLE` or a retryable `RESOURCE_EXHAUSTED` (the server sets
    /// `fathom-retry-after-ms` on those: a full queue, a key's rate), or
    /// the retries are spent.
    async fn retrying<T, F, Fut>(&self, mut call: F) -> Result<T, Error>
    where
        F: FnMut(FathomClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut backoff = self.opts.backoff;
        let mut attempt = 0;
        loop {
            match call(self.inner.clone()).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s) if attempt < self.opts.retries && retryable(&s).is_some() => {
                    attempt += 1;
                    tokio::time::sleep(backoff.max(retryable(&s).unwrap_or_default())).await;
                    backoff *= 2;
                }
                Err(s) => return Err(s.into()),
            }
        }
    }

    /// The `k` nearest neighbours of `vector`, nearest first.
    pub async fn search(
        &self,
        vector: &[f32],
        k: u32,
        settings: Option<SearchSettings>,
    ) -> Result<SearchResponse, Error> {
        self.search_vector(floats(vector), k, settings).await
    }

    /// The `k` nearest neighbours of a packed binary code (binary
    /// collections; layout of `fathom_codec::pack`, e.g.
    /// `CodecParams::encode(x)?.to_bytes()`), nearest first.
    pub async fn search_code(
        &self,
        code: &[u8],
        k: u32,
        settings: Option<SearchSettings>,
    ) -> Result<SearchResponse, Error> {
        self.search_vector(packed(ElementType::Bits, code.to_vec()), k, settings).await
    }

    /// The `k` nearest neighbours of a query of u8 elements (an index built
    /// from .u8bin/.bvecs), nearest first.
    pub async fn search_u8(
        &self,
        vector: &[u8],
        k: u32,
        settings: Option<SearchSettings>,
    ) -> Result<SearchResponse, Error> {
        self.search_vector(packed(ElementType::U8, vector.to_vec()), k, settings).await
    }

    /// The `k` nearest neighbours of a query of i8 elements (an index built
    /// from .i8bin), nearest first.
    pub async fn search_i8(
        &self,
        vector: &[i8],
        k: u32,
        settings: Option<SearchSettings>,
    ) -> Result<SearchResponse, Error> {
        let data = vector.iter().map(|&v| v as u8).collect();
        self.search_vector(packed(ElementType::I8, data), k, settings).await
    }

    async fn search_vector(
        &self,
        vector: Vector,
        k: u32,
        settings: Option<SearchSettings>,
    ) -> Result<SearchResponse, Error> {
        let req = SearchRequest { vector: Some(vector), k, settings, ..Default::default() };
        self.retrying(|mut c| {
            let r = self.request(req.clone());
            async move { c.search(r).await }
        })
        .await
    }

    /// One result per query, in order.
    pub async fn batch_search(
        &self,
        vectors: &[Vec<f32>],
        k: u32,
        settings: Option<SearchSettings>,
    ) -> Result<Vec<SearchResponse>, Error> {
        let req = BatchSearchRequest {
            vectors: vectors.iter().map(|v| floats(v)).collect(),
            k,
            settings,
            ..Default::default()
        };
        let resp = self
            .retrying(|mut c| {
                let r = self.request(req.clone());
                async move { c.batch_search(r).await }
            })
            .await?;
        Ok(resp.results)
    }

    /// The binary codec the index was built with, to encode queries alike.
    pub async fn codec(&self) -> Result<fathom_codec::CodecParams, Error> {
        let p = self
            .retrying(|mut c| {
                let r = self.request(GetCodecRequest {});
                async move { c.get_codec(r).await }
            })
            .await?;
        fathom_codec::CodecParams::from_bytes(&p.params).map_err(Error::Codec)
    }

    pub async fn index_info(&self) -> Result<IndexInfo, Error> {
        self.retrying(|mut c| {
            let r = self.request(GetIndexInfoRequest {});
            async move { c.get_index_info(r).await }
        })
        .await
    }
}

/// How long to wait before retrying `s`, if it may be retried.
fn retryable(s: &tonic::Status) -> Option<Duration> {
    match s.code() {
        Code::Unavailable => Some(Duration::ZERO),
        Code::ResourceExhausted => s
            .metadata()
            .get("fathom-retry-after-ms")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map(Duration::from_millis),
        _ => None,
    }
}

/// A query of packed elements (`data` in `element_type`'s layout).
fn packed(element_type: ElementType, data: Vec<u8>) -> Vector {
    Vector { data: Some(vector::Data::Packed(PackedVector { element_type: element_type as i32, data })) }
}

fn floats(v: &[f32]) -> Vector {
    Vector { data: Some(vector::Data::Floats(FloatVector { values: v.to_vec() })) }
}
