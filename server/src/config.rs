//! Server configuration: built-in defaults < TOML file < `FATHOM_*`
//! environment variables < command-line flags. `RawConfig` is what a layer
//! may say (every key optional, unknown keys rejected); `Config` is the
//! validated result the server runs with.

use anyhow::{bail, Context};
use fathom_index::io::BackendChoice;
use fathom_index::SearchSettings;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One layer of configuration; `None` = not said here.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Index directory to serve.
    pub index: Option<PathBuf>,
    /// Or: a directory of index versions and a `CURRENT` file naming one
    /// (swapped on SIGHUP).
    pub index_root: Option<PathBuf>,
    /// With `index_root`: also check `CURRENT` this often (0 = only on SIGHUP).
    pub index_watch_ms: Option<u64>,
    /// gRPC listen address.
    pub listen: Option<String>,
    /// HTTP address for /metrics, /livez, /readyz ("" = off).
    pub metrics_listen: Option<String>,
    /// Search worker threads, each with its own searcher and I/O ring.
    pub workers: Option<usize>,
    /// Requests queued for the workers before new ones get RESOURCE_EXHAUSTED.
    pub queue_depth: Option<usize>,
    /// Most queries in one BatchSearch.
    pub max_batch: Option<usize>,
    /// Largest k a request may ask for.
    pub max_k: Option<usize>,
    /// Most postings one request may read: queries x max_postings.
    pub max_request_postings: Option<usize>,
    /// Most candidates one request may rerank: queries x rerank.
    pub max_request_rerank: Option<usize>,
    /// Largest request message in bytes.
    pub max_message_bytes: Option<usize>,
    /// Connections open at once (lowered to fit the open-file limit).
    pub max_connections: Option<usize>,
    /// A connection that sends nothing for this long is closed.
    pub handshake_timeout_ms: Option<u64>,
    /// Concurrent requests (HTTP/2 streams) per connection.
    pub max_streams_per_connection: Option<u32>,
    /// API keys (one per line, `#` comments, optional scope): every call
    /// then needs `authorization: Bearer KEY`; reflection is off.
    pub api_keys_file: Option<PathBuf>,
    /// TLS on the gRPC port: certificate chain and key (PEM files).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: clients must present a certificate from this CA.
    pub tls_client_ca: Option<PathBuf>,
    /// Serve the metrics port with TLS too (same certificate).
    pub metrics_tls: Option<bool>,
    /// I/O backend: auto, uring or pread.
    pub backend: Option<String>,
    /// Read index data with O_DIRECT.
    pub direct_io: Option<bool>,
    /// Keep the index's resident row codes (`codes.bin`) in memory.
    pub resident_codes: Option<bool>,
    /// How long in-flight requests may finish after SIGTERM.
    pub drain_timeout_ms: Option<u64>,
    /// Defaults for unset per-request search settings.
    pub search: Option<RawSearch>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSearch {
    pub max_postings: Option<usize>,
    pub eps2: Option<f32>,
    pub rerank: Option<usize>,
    pub probe_groups: Option<usize>,
    pub prefetch_postings: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub index: crate::swap::IndexSource,
    #[serde(with = "opt_millis")]
    pub index_watch: Option<Duration>,
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub workers: usize,
    pub queue_depth: usize,
    pub max_batch: usize,
    pub max_k: usize,
    pub max_request_postings: usize,
    pub max_request_rerank: usize,
    pub max_message_bytes: usize,
    pub max_connections: usize,
    #[serde(with = "millis")]
    pub handshake_timeout: Duration,
    pub max_streams_per_connection: u32,
    pub api_keys_file: Option<PathBuf>,
    pub tls: crate::grpc::TlsFiles,
    pub backend: BackendChoice,
    pub direct_io: bool,
    pub resident_codes: bool,
    #[serde(with = "millis")]
    pub drain_timeout: Duration,
    pub search: SearchSettings,
}

mod millis {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

mod opt_millis {
    pub fn serialize<S: serde::Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.map_or(0, |d| d.as_millis() as u64))
    }
}

impl RawConfig {
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config {}", path.display()))
    }

    /// The `FATHOM_*` variables that are set.
    pub fn from_env() -> anyhow::Result<Self> {
        fn var<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>>
        where
            T::Err: std::fmt::Display,
        {
            match std::env::var(name) {
                Ok(v) => v.parse().map(Some).map_err(|e| anyhow::anyhow!("{name}={v:?}: {e}")),
                Err(_) => Ok(None),
            }
        }
        Ok(RawConfig {
            index: var("FATHOM_INDEX")?,
            index_root: var("FATHOM_INDEX_ROOT")?,
            index_watch_ms: var("FATHOM_INDEX_WATCH_MS")?,
            listen: var("FATHOM_LISTEN")?,
            metrics_listen: var("FATHOM_METRICS_LISTEN")?,
            workers: var("FATHOM_WORKERS")?,
            queue_depth: var("FATHOM_QUEUE_DEPTH")?,
            max_batch: var("FATHOM_MAX_BATCH")?,
            max_k: var("FATHOM_MAX_K")?,
            max_request_postings: var("FATHOM_MAX_REQUEST_POSTINGS")?,
            max_request_rerank: var("FATHOM_MAX_REQUEST_RERANK")?,
            max_message_bytes: var("FATHOM_MAX_MESSAGE_BYTES")?,
            max_connections: var("FATHOM_MAX_CONNECTIONS")?,
            handshake_timeout_ms: var("FATHOM_HANDSHAKE_TIMEOUT_MS")?,
            max_streams_per_connection: var("FATHOM_MAX_STREAMS_PER_CONNECTION")?,
            api_keys_file: var("FATHOM_API_KEYS_FILE")?,
            tls_cert: var("FATHOM_TLS_CERT")?,
            tls_key: var("FATHOM_TLS_KEY")?,
            tls_client_ca: var("FATHOM_TLS_CLIENT_CA")?,
            metrics_tls: var("FATHOM_METRICS_TLS")?,
            backend: var("FATHOM_BACKEND")?,
            direct_io: var("FATHOM_DIRECT_IO")?,
            resident_codes: var("FATHOM_RESIDENT_CODES")?,
            drain_timeout_ms: var("FATHOM_DRAIN_TIMEOUT_MS")?,
            search: None,
        })
    }

    /// `self` with every key `over` sets replaced.
    pub fn overlay(self, over: RawConfig) -> RawConfig {
        let s = self.search.unwrap_or_default();
        let o = over.search.unwrap_or_default();
        RawConfig {
            index: over.index.or(self.index),
            index_root: over.index_root.or(self.index_root),
            index_watch_ms: over.index_watch_ms.or(self.index_watch_ms),
            listen: over.listen.or(self.listen),
            metrics_listen: over.metrics_listen.or(self.metrics_listen),
            workers: over.workers.or(self.workers),
            queue_depth: over.queue_depth.or(self.queue_depth),
            max_batch: over.max_batch.or(self.max_batch),
            max_k: over.max_k.or(self.max_k),
            max_request_postings: over.max_request_postings.or(self.max_request_postings),
            max_request_rerank: over.max_request_rerank.or(self.max_request_rerank),
            max_message_bytes: over.max_message_bytes.or(self.max_message_bytes),
            max_connections: over.max_connections.or(self.max_connections),
            handshake_timeout_ms: over.handshake_timeout_ms.or(self.handshake_timeout_ms),
            max_streams_per_connection: over.max_streams_per_connection.or(self.max_streams_per_connection),
            api_keys_file: over.api_keys_file.or(self.api_keys_file),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
            tls_client_ca: over.tls_client_ca.or(self.tls_client_ca),
            metrics_tls: over.metrics_tls.or(self.metrics_tls),
            backend: over.backend.or(self.backend),
            direct_io: over.direct_io.or(self.direct_io),
            resident_codes: over.resident_codes.or(self.resident_codes),
            drain_timeout_ms: over.drain_timeout_ms.or(self.drain_timeout_ms),
            search: Some(RawSearch {
                max_postings: o.max_postings.or(s.max_postings),
                eps2: o.eps2.or(s.eps2),
                rerank: o.rerank.or(s.rerank),
                probe_groups: o.probe_groups.or(s.probe_groups),
                prefetch_postings: o.prefetch_postings.or(s.prefetch_postings),
            }),
        }
    }

    /// Fills defaults and checks everything.
    pub fn resolve(self) -> anyhow::Result<Config> {
        let RawConfig {
            index,
            index_root,
            index_watch_ms,
            listen,
            metrics_listen,
            workers,
            queue_depth,
            max_batch,
            max_k,
            max_request_postings,
            max_request_rerank,
            max_message_bytes,
            max_connections,
            handshake_timeout_ms,
            max_streams_per_connection,
            api_keys_file,
            tls_cert,
            tls_key,
            tls_client_ca,
            metrics_tls,
            backend,
            direct_io,
            resident_codes,
            drain_timeout_ms,
            search,
        } = self;
        let index = match (index, index_root) {
            (Some(_), Some(_)) => {
                bail!("give either an index directory (index) or an index root (index_root), not both")
            }
            (Some(d), None) => crate::swap::IndexSource::Dir(d),
            (None, Some(r)) => crate::swap::IndexSource::Root(r),
            (None, None) => bail!(
                "no index: pass --index DIR (or --index-root DIR), set FATHOM_INDEX (FATHOM_INDEX_ROOT) or `index` \
                 (`index_root`) in the config"
            ),
        };
        let index_watch = index_watch_ms.filter(|&ms| ms > 0).map(Duration::from_millis);
        let listen: SocketAddr = listen
            .as_deref()
            .unwrap_or("127.0.0.1:7700")
            .parse()
            .context("listen must be an address like 0.0.0.0:7700")?;
        let metrics_listen = match metrics_listen.as_deref() {
            None | Some("") => None,
            Some(a) => Some(a.parse().context("metrics_listen must be an address like 0.0.0.0:9100")?),
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workers = workers.unwrap_or(cores);
        if workers == 0 || workers > 1024 {
            bail!("workers must be in 1..=1024, got {workers}");
        }
        let queue_depth = queue_depth.unwrap_or(256);
        if queue_depth == 0 {
            bail!("queue_depth must be at least 1");
        }
        let d = SearchSettings::default();
        let s = search.unwrap_or_default();
        let search = SearchSettings {
            max_postings: s.max_postings.unwrap_or(d.max_postings),
            eps2: s.eps2.unwrap_or(d.eps2),
            rerank: s.rerank.unwrap_or(d.rerank),
            probe_groups: s.probe_groups.unwrap_or(d.probe_groups),
            prefetch_postings: s.prefetch_postings.unwrap_or(d.prefetch_postings),
            ..d
        };
        search.validate().context("search defaults")?;
        let backend: BackendChoice = backend.as_deref().unwrap_or("auto").parse().map_err(anyhow::Error::msg)?;
        Ok(Config {
            index,
            index_watch,
            listen,
            metrics_listen,
            workers,
            queue_depth,
            max_batch: max_batch.unwrap_or(1024).max(1),
            max_k: max_k.unwrap_or(1000).max(1),
            max_request_postings: max_request_postings
                .unwrap_or(crate::validate::Limits::new(1, 1).max_request_postings),
            max_request_rerank: max_request_rerank.unwrap_or(crate::validate::Limits::new(1, 1).max_request_rerank),
            max_message_bytes: max_message_bytes.unwrap_or(16 << 20),
            max_connections: max_connections.unwrap_or(1024).max(1),
            handshake_timeout: Duration::from_millis(handshake_timeout_ms.unwrap_or(5_000).max(1)),
            max_streams_per_connection: max_streams_per_connection.unwrap_or(128).max(1),
            api_keys_file,
            tls: crate::grpc::TlsFiles {
                cert: tls_cert,
                key: tls_key,
                client_ca: tls_client_ca,
                metrics: metrics_tls.unwrap_or(false),
            },
            backend,
            direct_io: direct_io.unwrap_or(true),
            resident_codes: resident_codes.unwrap_or(true),
            drain_timeout: Duration::from_millis(drain_timeout_ms.unwrap_or(10_000)),
            search,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_win_and_unknown_keys_are_rejected() {
        let file: RawConfig = toml::from_str("index = \"a\"\nworkers = 3\n[search]\nrerank = 50\n").unwrap();
        let flags = RawConfig { workers: Some(5), ..Default::default() };
        let c = RawConfig::default().overlay(file).overlay(flags).resolve().unwrap();
        assert!(matches!(&c.index, crate::swap::IndexSource::Dir(d) if d == Path::new("a")));
        assert_eq!((c.workers, c.search.rerank), (5, 50));
        let both = RawConfig { index: Some("a".into()), index_root: Some("r".into()), ..Default::default() };
        assert!(both.resolve().unwrap_err().to_string().contains("not both"));
        assert!(toml::from_str::<RawConfig>("wrokers = 3").is_err());
        let bad = RawConfig { index: Some("a".into()), listen: Some("nope".into()), ..Default::default() };
        assert!(bad.resolve().unwrap_err().to_string().contains("listen"));
        assert!(RawConfig::default().resolve().unwrap_err().to_string().contains("no index"));
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/fathom.example.toml");
        RawConfig::from_file(&example).unwrap().resolve().expect("the example config is valid");
    }
}
