//! TLS for the gRPC port (rustls through tokio-rustls): certificate chain,
//! key and, for mutual TLS, the client CA, all from PEM files and reloaded
//! on SIGHUP or when a file changes (checked every few seconds), so an
//! operator (or cert-manager) rotates certificates without a restart. A
//! reload that fails (a half-written file, a key that does not match) is
//! logged and the previous configuration keeps serving. tonic's own TLS
//! builds its configuration once, hence this module.

use anyhow::Context;
use parking_lot::RwLock;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;
use tokio_rustls::rustls::{self, server::WebPkiClientVerifier, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Files of a TLS setup: certificate chain and key (PEM), and for mutual
/// TLS the CA that client certificates must chain to.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TlsFiles {
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
    pub client_ca: Option<std::path::PathBuf>,
    /// Serve the metrics port with TLS too (same certificate; probes and
    /// scrapers then use https).
    pub metrics: bool,
}

/// ALPN of the gRPC port (HTTP/2 only) and of the metrics port (HTTP/1.1).
pub const H2: &[&[u8]] = &[b"h2"];
pub const HTTP1: &[&[u8]] = &[b"http/1.1"];

pub struct ReloadableTls {
    files: TlsFiles,
    alpn: &'static [&'static [u8]],
    current: RwLock<(TlsAcceptor, Vec<Option<SystemTime>>)>,
}

impl ReloadableTls {
    /// The server's TLS from `files`, or None when no certificate is set.
    /// An expired certificate is served (an operator may be replacing it)
    /// with a warning; a reload refuses one.
    pub fn load(files: &TlsFiles, alpn: &'static [&'static [u8]]) -> anyhow::Result<Option<Arc<Self>>> {
        if files.cert.is_none() && files.key.is_none() {
            anyhow::ensure!(files.client_ca.is_none(), "tls_client_ca needs tls_cert and tls_key");
            return Ok(None);
        }
        let (acceptor, expiry) = acceptor(files, alpn)?;
        if let Expiry::Expired(why) = expiry {
            tracing::warn!("tls_cert {}: {why}: clients will refuse it; replace it", show(&files.cert));
        }
        let stamps = stamps(files);
        Ok(Some(Arc::new(ReloadableTls { files: files.clone(), alpn, current: RwLock::new((acceptor, stamps)) })))
    }

    /// The acceptor for a new connection (connections keep theirs).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current.read().0.clone()
    }
}

impl crate::ops::reload::Reloadable for ReloadableTls {
    fn changed(&self) -> bool {
        stamps(&self.files) != self.current.read().1
    }

    /// On failure, or when the new certificate has expired, keeps the
    /// current one.
    fn reload(&self, why: &str) {
        let stamps = stamps(&self.files);
        let loaded = acceptor(&self.files, self.alpn).and_then(|(a, expiry)| match expiry {
            Expiry::Expired(e) => Err(anyhow::anyhow!("tls_cert {}: {e}", show(&self.files.cert))),
            Expiry::Valid => Ok(a),
        });
        match loaded {
            Ok(a) => {
                *self.current.write() = (a, stamps);
                tracing::info!("{why}: TLS certificate and key reloaded");
            }
            Err(e) => {
                // Do not retry the same files every few seconds.
                self.current.write().1 = stamps;
                tracing::error!("{why}: TLS reload failed, keeping the previous certificate: {e:#}");
            }
        }
    }
}

fn paths(files: &TlsFiles) -> impl Iterator<Item = &PathBuf> {
    [&files.cert, &files.key, &files.client_ca].into_iter().flatten()
}

fn stamps(files: &TlsFiles) -> Vec<Option<SystemTime>> {
    paths(files).map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).collect()
}

/// Whether a certificate is past its notAfter.
enum Expiry {
    Valid,
    Expired(String),
}

fn show(p: &Option<PathBuf>) -> String {
    p.as_ref().map_or_else(String::new, |p| p.display().to_string())
}

/// A PEM file, read only as a small regular file (a FIFO or a device is
/// refused, not waited on).
fn pem(path: &std::path::Path, key: &str) -> anyhow::Result<Vec<u8>> {
    fathom_index::format::files::read_regular(path, MAX_PEM_BYTES)
        .map_err(|e| anyhow::anyhow!("reading {key} {}: {e}", path.display()))
}

/// Certificates and keys are a few KiB; a chain with a CA bundle tens.
const MAX_PEM_BYTES: u64 = 1 << 20;

fn acceptor(files: &TlsFiles, alpn: &[&[u8]]) -> anyhow::Result<(TlsAcceptor, Expiry)> {
    let (Some(cert), Some(key)) = (&files.cert, &files.key) else {
        anyhow::bail!("tls_cert and tls_key go together");
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem(cert, "tls_cert")?)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("reading tls_cert {}: {e}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "tls_cert {} holds no certificate", cert.display());
    let expiry = match crate::net::x509_time::not_after(&chain[0]) {
        Some(t) => {
            let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
            if t < now {
                Expiry::Expired(format!("the certificate expired {} hours ago", (now - t) / 3600))
            } else {
                Expiry::Valid
            }
        }
        None => Expiry::Valid,
    };
    let key = PrivateKeyDer::from_pem_slice(&pem(key, "tls_key")?)
        .map_err(|e| anyhow::anyhow!("reading tls_key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&pem(ca, "tls_client_ca")?) {
                roots.add(c.map_err(|e| anyhow::anyhow!("tls_client_ca {}: {e}", ca.display()))?)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("tls_client_ca")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder.with_single_cert(chain, key).context("tls_cert and tls_key do not make a key pair")?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok((TlsAcceptor::from(Arc::new(cfg)), expiry))
}
