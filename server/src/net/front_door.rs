//! The front door's keys, one definition for `fathom serve` and `fathom
//! route`: request limits and cost caps, connection limits, the decode
//! budget, API keys, TLS and the drain. Each configuration flattens
//! [`FrontDoor`] into its own keys (`max_k`, not `front.max_k`), so files,
//! `FATHOM_*` / `FATHOM_ROUTER_*` variables and flags name them as before;
//! `ops::layers` refuses unknown keys (serde cannot beside a flatten).

use crate::net::grpc;
use crate::net::listener::{ConnectionLimits, Protocol};
use crate::net::tls::TlsFiles;
use crate::net::validate::Limits;
use anyhow::bail;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Every front-door key, with its default.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct FrontDoor {
    /// Most queries in one BatchSearch.
    pub max_batch: usize,
    /// Largest k a request may ask for.
    pub max_k: usize,
    /// Most postings one request may read: queries x max_postings.
    pub max_request_postings: usize,
    /// Most candidates one request may rerank: queries x rerank.
    pub max_request_rerank: usize,
    /// Most 4 KiB pages one request may read at most: queries x
    /// (max_postings x block_pages + max(rerank, k) + prefetch_postings x 48).
    pub max_request_pages: usize,
    /// Largest request and answer message in bytes (an answer that could
    /// be larger is refused before the work); at least 1024.
    pub max_message_bytes: usize,
    /// Request bytes received and not yet decoded, across all requests at
    /// once (at least `max_message_bytes`); past it RESOURCE_EXHAUSTED.
    pub decode_budget_bytes: usize,
    /// Connections open at once (lowered to fit the open-file limit).
    pub max_connections: usize,
    /// A connection that has not sent the HTTP/2 preface and SETTINGS (after
    /// TLS) within this long is closed.
    pub handshake_timeout_ms: u64,
    /// Concurrent requests (HTTP/2 streams) per connection.
    pub max_streams_per_connection: u32,
    /// API keys (one per line, `#` comments, optional scope): every call
    /// then needs `authorization: Bearer KEY`; reflection is off.
    pub api_keys_file: Option<PathBuf>,
    /// TLS on the gRPC port: certificate chain and key (PEM files).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: clients must present a certificate from this CA.
    pub tls_client_ca: Option<PathBuf>,
    /// Serve the metrics port with TLS too (same certificate).
    pub metrics_tls: bool,
    /// How long in-flight requests may finish after SIGTERM.
    pub drain_timeout_ms: u64,
}

impl Default for FrontDoor {
    fn default() -> Self {
        let limits = Limits::new(1000, 1024);
        FrontDoor {
            max_batch: limits.max_batch,
            max_k: limits.max_k,
            max_request_postings: limits.max_request_postings,
            max_request_rerank: limits.max_request_rerank,
            max_request_pages: limits.max_request_pages,
            max_message_bytes: 16 << 20,
            decode_budget_bytes: crate::net::gate::DEFAULT_DECODE_BUDGET_BYTES,
            max_connections: 1024,
            handshake_timeout_ms: 5_000,
            max_streams_per_connection: 128,
            api_keys_file: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            metrics_tls: false,
            drain_timeout_ms: 10_000,
        }
    }
}

impl FrontDoor {
    /// Checks the keys; a path given as "" (a file or variable that
    /// clears it) means none.
    pub fn check(mut self) -> anyhow::Result<FrontDoor> {
        for p in [&mut self.api_keys_file, &mut self.tls_cert, &mut self.tls_key, &mut self.tls_client_ca] {
            if p.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                *p = None;
            }
        }
        for (name, v) in [
            ("max_batch", self.max_batch),
            ("max_k", self.max_k),
            ("max_request_postings", self.max_request_postings),
            ("max_request_rerank", self.max_request_rerank),
            ("max_request_pages", self.max_request_pages),
            ("decode_budget_bytes", self.decode_budget_bytes),
            ("max_connections", self.max_connections),
            ("handshake_timeout_ms", self.handshake_timeout_ms as usize),
            ("max_streams_per_connection", self.max_streams_per_connection as usize),
        ] {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if self.max_message_bytes < 1024 {
            bail!("max_message_bytes must be at least 1024, got {}", self.max_message_bytes);
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("tls_cert and tls_key go together: give both or neither");
        }
        Ok(self)
    }

    /// What a request may ask for; `role` ("server", "router") names who
    /// refuses in messages.
    pub fn request_limits(&self, role: &'static str) -> Limits {
        Limits {
            max_request_postings: self.max_request_postings,
            max_request_rerank: self.max_request_rerank,
            max_request_pages: self.max_request_pages,
            max_answer_bytes: self.max_message_bytes,
            role,
            ..Limits::new(self.max_k, self.max_batch)
        }
    }

    /// Connections and streams.
    pub fn connection_limits(&self) -> grpc::Limits {
        grpc::Limits {
            connections: ConnectionLimits {
                max_connections: self.max_connections,
                handshake_timeout: Duration::from_millis(self.handshake_timeout_ms),
                protocol: Protocol::Http2,
            },
            max_streams_per_connection: self.max_streams_per_connection,
        }
    }

    /// The decode budget, never below one message.
    pub fn decode_budget(&self) -> usize {
        self.decode_budget_bytes.max(self.max_message_bytes)
    }

    pub fn tls(&self) -> TlsFiles {
        TlsFiles {
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            client_ca: self.tls_client_ca.clone(),
            metrics: self.metrics_tls,
        }
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }
}
