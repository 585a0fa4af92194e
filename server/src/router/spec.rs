//! The shard list a router is given: shards separated by `,`, a shard's
//! replicas by `|`, each replica `host:port`. A host name may resolve to
//! several addresses (a Kubernetes headless Service): each is a replica.

use anyhow::{bail, Context};

/// For each shard, in shard order, its replica entries (`host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec(pub Vec<Vec<String>>);

impl std::str::FromStr for ShardSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let mut shards = Vec::new();
        for (i, shard) in s.split(',').enumerate() {
            let mut replicas = Vec::new();
            for entry in shard.split('|').map(str::trim) {
                let entry = entry.strip_prefix("http://").unwrap_or(entry);
                let (host, port) =
                    entry.rsplit_once(':').with_context(|| format!("shard {i}: {entry:?} is not host:port"))?;
                if host.is_empty() {
                    bail!("shard {i}: {entry:?} has no host");
                }
                port.parse::<u16>().with_context(|| format!("shard {i}: {entry:?} has no valid port"))?;
                replicas.push(entry.to_string());
            }
            shards.push(replicas);
        }
        if shards.is_empty() || shards.len() > 4096 {
            bail!("a router needs 1..=4096 shards, got {}", shards.len());
        }
        Ok(ShardSpec(shards))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shards_and_replicas_and_names_bad_entries() {
        let s: ShardSpec = "h0a:7700|h0b:7700, h1:7701".parse().unwrap();
        assert_eq!(s.0, vec![vec!["h0a:7700".to_string(), "h0b:7700".into()], vec!["h1:7701".into()]]);
        let s: ShardSpec = "http://127.0.0.1:1".parse().unwrap();
        assert_eq!(s.0, vec![vec!["127.0.0.1:1".to_string()]]);
        let e = "a:1,b".parse::<ShardSpec>().unwrap_err().to_string();
        assert!(e.contains("shard 1") && e.contains("host:port"), "{e}");
        assert!("a:x".parse::<ShardSpec>().unwrap_err().to_string().contains("port"));
        assert!("a:1,".parse::<ShardSpec>().is_err());
    }
}
