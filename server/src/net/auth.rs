//! API keys: bearer tokens in the `authorization` metadata, checked against
//! the keys of a file (`api_keys_file`: one key per line, `#` comments, an
//! optional scope after the key: `read`, the default, or `admin`, which
//! includes read; then optionally a rate, `N/s`, the requests per second
//! that key may make, in bursts of up to a second's worth, beyond which it
//! gets RESOURCE_EXHAUSTED). Keys are compared in constant time and never
//! logged.
//! Every Fathom RPC needs `read` (there is no admin RPC yet; the scope is
//! parsed so that key files stay valid when one comes). Health stays open:
//! probes carry no key and learn nothing but serving or not. Keys are
//! checked on a request's headers, before its body is read (`gate.rs`),
//! and the file is reloaded on SIGHUP and when it changes ([`KeyStore`]);
//! a file that fails to load keeps the current keys.

use anyhow::{bail, Context};
use std::path::Path;
use tonic::metadata::MetadataMap;
use tonic::Status;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Admin,
}

pub struct ApiKeys {
    keys: Vec<(Vec<u8>, Scope, Option<parking_lot::Mutex<Bucket>>)>,
}

/// A token bucket: `rate` tokens a second, at most `rate` (at least one) held.
struct Bucket {
    rate: f64,
    tokens: f64,
    last: std::time::Instant,
}

impl Bucket {
    fn new(rate: f64) -> Self {
        Bucket { rate, tokens: rate.max(1.0), last: std::time::Instant::now() }
    }

    fn take(&mut self) -> bool {
        let now = std::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate.max(1.0));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.keys.len())
    }
}

impl ApiKeys {
    /// The keys of `path`, when one is configured.
    pub fn load_optional(path: Option<&Path>) -> anyhow::Result<Option<std::sync::Arc<Self>>> {
        path.map(|p| Self::load(p).map(std::sync::Arc::new)).transpose()
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = fathom_index::format::files::read_regular_text(path, MAX_KEYS_FILE_BYTES)
            .with_context(|| format!("reading api_keys_file {}", path.display()))?;
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace().peekable();
            let key = parts.next().unwrap_or_default();
            let scope = match parts.peek().copied() {
                Some("read") | Some("admin") | None => match parts.next() {
                    Some("admin") => Scope::Admin,
                    _ => Scope::Read,
                },
                Some(o) if o.ends_with("/s") => Scope::Read,
                Some(o) => bail!("{} line {}: unknown scope {o:?} (read or admin)", path.display(), n + 1),
            };
            let rate = match parts.next() {
                None => None,
                Some(r) => match r.strip_suffix("/s").and_then(|v| v.parse::<f64>().ok()) {
                    Some(v) if v.is_finite() && v > 0.0 => Some(parking_lot::Mutex::new(Bucket::new(v))),
                    _ => bail!("{} line {}: {r:?} is not a rate like 100/s", path.display(), n + 1),
                },
            };
            if parts.next().is_some() {
                bail!("{} line {}: expected `KEY [scope] [N/s]`", path.display(), n + 1);
            }
            if key.len() < 16 {
                bail!("{} line {}: a key must have at least 16 characters", path.display(), n + 1);
            }
            keys.push((key.as_bytes().to_vec(), scope, rate));
        }
        if keys.is_empty() {
            bail!("{} holds no key", path.display());
        }
        Ok(ApiKeys { keys })
    }

    /// Whether the request's bearer token is a key of at least `need`.
    pub fn check(&self, md: &MetadataMap, need: Scope) -> Result<(), Status> {
        self.check_token(md.get("authorization").and_then(|v| v.to_str().ok()), need)
    }

    /// [`Self::check`] on an `authorization` value (`Bearer KEY`; the
    /// scheme is case-insensitive, as HTTP says).
    pub fn check_token(&self, authorization: Option<&str>, need: Scope) -> Result<(), Status> {
        let token = authorization
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .ok_or_else(|| Status::unauthenticated("an API key is required"))?;
        // Every key is compared whole, so the time does not tell which matched.
        let mut found = None;
        for (i, (key, _, _)) in self.keys.iter().enumerate() {
            if constant_time_eq(key, token.as_bytes()) {
                found = Some(i);
            }
        }
        let Some((_, scope, rate)) = found.map(|i| &self.keys[i]) else {
            return Err(Status::unauthenticated("invalid API key"));
        };
        if *scope < need {
            return Err(Status::permission_denied("this API key may not do that"));
        }
        match rate {
            Some(bucket) if !bucket.lock().take() => {
                Err(crate::net::status::retry_later("this API key's request rate is exceeded; retry later"))
            }
            _ => Ok(()),
        }
    }
}

/// A key file is a few lines a key: anything far larger is not one.
const MAX_KEYS_FILE_BYTES: u64 = 4 << 20;

/// The keys in force, reloaded from their file on SIGHUP and when the
/// file's modification time changes. A reload that fails (a half-written
/// file, a FIFO) is logged and the current keys stay; rate buckets start
/// full again after a reload.
pub struct KeyStore {
    path: std::path::PathBuf,
    current: parking_lot::RwLock<(std::sync::Arc<ApiKeys>, Option<std::time::SystemTime>)>,
}

impl KeyStore {
    /// The keys of `path`, when one is configured; an error names the file.
    pub fn load_optional(path: Option<&Path>) -> anyhow::Result<Option<std::sync::Arc<Self>>> {
        let Some(path) = path else { return Ok(None) };
        let stamp = stamp(path);
        let keys = std::sync::Arc::new(ApiKeys::load(path)?);
        Ok(Some(std::sync::Arc::new(KeyStore { path: path.to_path_buf(), current: (keys, stamp).into() })))
    }

    pub fn keys(&self) -> std::sync::Arc<ApiKeys> {
        self.current.read().0.clone()
    }

    /// Checks the `authorization` header of a request (read scope).
    pub fn check_headers(&self, headers: &tonic::codegen::http::HeaderMap) -> Result<(), Status> {
        let value = headers.get("authorization").and_then(|v| v.to_str().ok());
        self.keys().check_token(value, Scope::Read)
    }
}

impl crate::ops::reload::Reloadable for KeyStore {
    fn changed(&self) -> bool {
        stamp(&self.path) != self.current.read().1
    }

    /// On failure keeps the current keys.
    fn reload(&self, why: &str) {
        let stamp = stamp(&self.path);
        match ApiKeys::load(&self.path) {
            Ok(k) => {
                let n = k.keys.len();
                *self.current.write() = (std::sync::Arc::new(k), stamp);
                tracing::info!(keys = n, "{why}: API keys reloaded");
            }
            Err(e) => {
                self.current.write().1 = stamp;
                tracing::error!("{why}: API key reload failed, keeping the current keys: {e:#}");
            }
        }
    }
}

fn stamp(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Equal bytes, in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Adds `authorization: Bearer KEY` for an outgoing call (the router to
/// its shards), when a key is set.
pub fn attach(md: &mut MetadataMap, key: Option<&str>) {
    if let Some(v) = key.and_then(|k| format!("Bearer {k}").parse().ok()) {
        md.insert("authorization", v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(v: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", v.parse().unwrap());
        m
    }

    #[test]
    fn keys_scopes_and_refusals() {
        let dir = std::env::temp_dir().join(format!("fathom-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("keys");
        std::fs::write(&p, "# ops\nreader-0123456789abcdef\nadmin-0123456789abcdef admin # root\n").unwrap();
        let k = ApiKeys::load(&p).unwrap();
        assert!(k.check(&md("Bearer reader-0123456789abcdef"), Scope::Read).is_ok());
        assert_eq!(
            k.check(&md("Bearer reader-0123456789abcdef"), Scope::Admin).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        assert!(k.check(&md("Bearer admin-0123456789abcdef"), Scope::Admin).is_ok());
        assert_eq!(
            k.check(&md("Bearer reader-0123456789abcdeX"), Scope::Read).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(k.check(&MetadataMap::new(), Scope::Read).unwrap_err().code(), tonic::Code::Unauthenticated);
        // A rate: 5 requests at once pass, the 6th is refused; tokens refill.
        std::fs::write(&p, "limited-0123456789abcdef 5/s\nboth-0123456789abcdef admin 1000/s\n").unwrap();
        let k = ApiKeys::load(&p).unwrap();
        let limited = md("Bearer limited-0123456789abcdef");
        for _ in 0..5 {
            assert!(k.check(&limited, Scope::Read).is_ok());
        }
        assert_eq!(k.check(&limited, Scope::Read).unwrap_err().code(), tonic::Code::ResourceExhausted);
        std::thread::sleep(std::time::Duration::from_millis(400));
        assert!(k.check(&limited, Scope::Read).is_ok(), "refilled after 0.4 s at 5/s");
        assert!(k.check(&md("Bearer both-0123456789abcdef"), Scope::Admin).is_ok());
        for bad in ["k-0123456789abcdef0 fast", "k-0123456789abcdef0 read 0/s", "k-0123456789abcdef0 read 5/s x"] {
            std::fs::write(&p, bad).unwrap();
            assert!(ApiKeys::load(&p).is_err(), "{bad}");
        }
        assert!(!format!("{k:?}").contains("reader"), "keys never printed");
        std::fs::write(&p, "short\n").unwrap();
        assert!(ApiKeys::load(&p).unwrap_err().to_string().contains("16 characters"));
        std::fs::write(&p, "reader-0123456789abcdef root\n").unwrap();
        assert!(ApiKeys::load(&p).unwrap_err().to_string().contains("unknown scope"));
        assert!(
            constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"abc", b"ab")
        );
    }
}
