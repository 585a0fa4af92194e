//! Router configuration: defaults < TOML file < `FATHOM_ROUTER_*`
//! environment variables < flags. Each layer is a TOML table merged key by
//! key over the one below, and the result is read into one serde struct, so
//! every key is listed once (here) and unknown keys are refused.

use super::fanout::Policy;
use super::spec::ShardSpec;
use crate::net::front_door::FrontDoor;
use crate::ops::layers::Layers;
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// Every key a layer may set.
#[derive(Debug, Clone, Deserialize, Serialize)]
// Unknown keys are refused by `Layers::read` (serde cannot beside a flatten).
#[serde(default)]
pub struct RawRouterConfig {
    /// gRPC listen address.
    listen: String,
    /// HTTP address for /metrics, /livez, /readyz ("" = off).
    metrics_listen: String,
    /// Shards and replicas: `h0a:7700|h0b:7700,h1a:7700|h1b:7700`.
    shards: String,
    /// A shard with no live replica: `fail` or `partial`.
    policy: String,
    /// Longest wait for one shard, also when a request has no deadline.
    shard_timeout_ms: u64,
    /// Active health checks and DNS re-resolution, every this often.
    health_interval_ms: u64,
    connect_timeout_ms: u64,
    /// Request limits, cost caps, connections, API keys (its clients'; the
    /// router's own calls to the shards carry `FATHOM_API_KEY`), TLS on its
    /// port, the drain: the keys `fathom serve` has.
    #[serde(flatten)]
    pub front: FrontDoor,
    /// Speak TLS to the shards, verifying them with this CA (PEM file).
    shard_tls_ca: String,
}

impl Default for RawRouterConfig {
    fn default() -> Self {
        RawRouterConfig {
            listen: default_listen(),
            metrics_listen: String::new(),
            shards: String::new(),
            policy: default_policy(),
            shard_timeout_ms: default_shard_timeout_ms(),
            health_interval_ms: default_health_interval_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            front: FrontDoor::default(),
            shard_tls_ca: String::new(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:7800".into()
}
fn default_policy() -> String {
    "partial".into()
}
fn default_shard_timeout_ms() -> u64 {
    10_000
}
fn default_health_interval_ms() -> u64 {
    1_000
}
fn default_connect_timeout_ms() -> u64 {
    1_000
}

/// The validated configuration a router runs with.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// The keys as given (after defaults and layers), for the log.
    pub keys: RawRouterConfig,
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub shards: ShardSpec,
    pub shard_list: String,
    pub policy: Policy,
    pub shard_timeout: Duration,
    pub health_interval: Duration,
    pub connect_timeout: Duration,
    pub front: FrontDoor,
    pub shard_tls_ca: Option<std::path::PathBuf>,
}

/// The `FATHOM_ROUTER_<KEY>` variables over `layers`.
pub fn with_env(layers: Layers) -> Layers {
    layers.env::<RawRouterConfig>("FATHOM_ROUTER_")
}

/// The merged layers, read and checked.
pub fn resolve(layers: Layers) -> anyhow::Result<RouterConfig> {
    RouterConfig::from_raw(layers.read().context("router configuration")?)
}

impl RouterConfig {
    fn from_raw(raw: RawRouterConfig) -> anyhow::Result<RouterConfig> {
        if raw.shards.trim().is_empty() {
            bail!("no shards: pass --shards, set FATHOM_ROUTER_SHARDS or `shards` in the config");
        }
        let shards: ShardSpec = raw.shards.parse().context("shards")?;
        let listen =
            crate::net::listener::resolve_listen(&raw.listen).context("listen must be an address like 0.0.0.0:7800")?;
        let metrics_listen = match raw.metrics_listen.as_str() {
            "" => None,
            a => Some(
                crate::net::listener::resolve_listen(a)
                    .context("metrics_listen must be an address like 0.0.0.0:9100")?,
            ),
        };
        let policy = raw.policy.parse().map_err(anyhow::Error::msg)?;
        for (name, v) in [
            ("shard_timeout_ms", raw.shard_timeout_ms),
            ("health_interval_ms", raw.health_interval_ms),
            ("connect_timeout_ms", raw.connect_timeout_ms),
        ] {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        Ok(RouterConfig {
            keys: raw.clone(),
            listen,
            metrics_listen,
            shards,
            shard_list: raw.shards,
            policy,
            shard_timeout: Duration::from_millis(raw.shard_timeout_ms),
            health_interval: Duration::from_millis(raw.health_interval_ms),
            connect_timeout: Duration::from_millis(raw.connect_timeout_ms),
            front: raw.front.clone().check()?,
            shard_tls_ca: path(raw.shard_tls_ca),
        })
    }
}

/// A path key: "" = not set.
fn path(s: String) -> Option<std::path::PathBuf> {
    Some(s).filter(|p| !p.is_empty()).map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_in_order_and_unknown_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("fathom-router-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("r.toml");
        std::fs::write(&f, "shards = \"a:1,b:2\"\npolicy = \"fail\"\nshard_timeout_ms = 50\n").unwrap();
        let c = resolve(Layers::default().file(&f).unwrap().set("policy", Some("partial"))).unwrap();
        assert_eq!((c.policy, c.shard_timeout, c.shards.0.len()), (Policy::Partial, Duration::from_millis(50), 2));
        std::fs::write(&f, "shards = \"a:1\"\nshard_timout_ms = 5\n").unwrap();
        let e = format!("{:#}", resolve(Layers::default().file(&f).unwrap()).unwrap_err());
        assert!(e.contains("shard_timout_ms"), "{e}");
        let e = format!("{:#}", resolve(Layers::default()).unwrap_err());
        assert!(e.contains("no shards"), "{e}");
        let e = format!(
            "{:#}",
            resolve(Layers::default().set("shards", Some("a:1")).set("policy", Some("maybe"))).unwrap_err()
        );
        assert!(e.contains("fail or partial"), "{e}");
        let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/router.example.toml");
        let c = resolve(Layers::default().file(&example).unwrap()).unwrap();
        assert_eq!((c.shards.0.len(), c.policy), (2, Policy::Partial), "the example config is valid");
        assert_eq!(c.front, FrontDoor::default(), "the example shows the front door's defaults");
        let text = std::fs::read_to_string(&example).unwrap();
        for k in crate::ops::layers::keys::<RawRouterConfig>() {
            assert!(text.contains(&format!("\n{k} = ")), "deploy/router.example.toml shows `{k}`");
        }
    }
}
