//! What a router knows of its shards: each shard's replicas (addresses,
//! re-resolved from their names), whether each is live (passively on
//! errors, actively through grpc.health.v1 and GetIndexInfo), and which
//! collection answers are merged from.
//!
//! Shards of different builds are never merged: every replica reports its
//! collection id, and only replicas of the chosen collection are used. The
//! chosen collection is kept while every shard has a live replica of it;
//! when it no longer has and another collection has, the router moves to
//! that one. A server keeps the index it swapped away from for requests
//! naming its collection, so a new build rolled out shard by shard is
//! answered from the old build until every shard holds the new one, then
//! from the new one: never a mix.

use super::metrics::ReplicaMetrics;
use fathom_proto::v1::fathom_client::FathomClient;
use fathom_proto::v1::{GetIndexInfoRequest, IndexInfo};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// The service name whose health a replica reports.
const FATHOM_SERVICE: &str = "fathom.v1.Fathom";

pub struct Replica {
    pub addr: SocketAddr,
    /// The spec entry it was resolved from.
    pub entry: String,
    pub client: FathomClient<Channel>,
    health: HealthClient<Channel>,
    live: AtomicBool,
    state: Mutex<ReplicaState>,
    pub metrics: ReplicaMetrics,
}

#[derive(Default)]
struct ReplicaState {
    info: Option<IndexInfo>,
    /// Why it is not live (empty when live).
    problem: String,
}

impl Replica {
    fn new(entry: &str, addr: SocketAddr, opts: &ClusterOptions) -> anyhow::Result<Self> {
        let endpoint = match &opts.shard_tls_ca {
            // Verified against the CA, under the name the shard list gives.
            Some(ca) => {
                let host = entry.rsplit_once(':').map_or(entry, |(h, _)| h);
                let tls = tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(ca))
                    .domain_name(host);
                Endpoint::from_shared(format!("https://{addr}"))?.tls_config(tls)?
            }
            None => Endpoint::from_shared(format!("http://{addr}"))?,
        };
        let channel = endpoint.connect_timeout(opts.connect_timeout).tcp_nodelay(true).connect_lazy();
        Ok(Replica {
            addr,
            entry: entry.to_string(),
            client: FathomClient::new(channel.clone()).max_decoding_message_size(64 << 20),
            health: HealthClient::new(channel),
            live: AtomicBool::new(false),
            state: Mutex::new(ReplicaState::default()),
            metrics: ReplicaMetrics::default(),
        })
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    pub fn info(&self) -> Option<IndexInfo> {
        self.state.lock().info.clone()
    }

    pub fn problem(&self) -> String {
        self.state.lock().problem.clone()
    }

    /// Takes the replica out of rotation until a health check brings it
    /// back. Logged when it was live or its problem is new (so a replica
    /// refused from the start is named once, not every check).
    pub fn mark_down(&self, why: &str) {
        let was_live = self.live.swap(false, Ordering::Relaxed);
        let mut st = self.state.lock();
        if was_live || st.problem != why {
            tracing::warn!(replica = %self.addr, entry = %self.entry, "replica not used: {why}");
        }
        st.problem = why.to_string();
    }

    /// Asks the replica's health service and index info; `Ok(info)` when it
    /// serves, `Err(why)` when not.
    async fn check(&self, timeout: Duration, key: Option<&str>) -> Result<IndexInfo, String> {
        let mut req = tonic::Request::new(HealthCheckRequest { service: FATHOM_SERVICE.into() });
        req.set_timeout(timeout);
        let health = tokio::time::timeout(timeout, self.health.clone().check(req)).await;
        match health {
            Err(_) => return Err(format!("health check timed out after {timeout:?}")),
            Ok(Err(s)) => return Err(format!("health check failed: {}", s.message())),
            Ok(Ok(r)) if r.get_ref().status != ServingStatus::Serving as i32 => {
                return Err("not serving (loading, draining or swapping its index)".into())
            }
            Ok(Ok(_)) => {}
        }
        let mut req = tonic::Request::new(GetIndexInfoRequest {});
        req.set_timeout(timeout);
        crate::net::auth::attach(req.metadata_mut(), key);
        match tokio::time::timeout(timeout, self.client.clone().get_index_info(req)).await {
            Err(_) => Err(format!("GetIndexInfo timed out after {timeout:?}")),
            Ok(Err(s)) => Err(format!("GetIndexInfo failed: {}", s.message())),
            Ok(Ok(r)) => Ok(r.into_inner()),
        }
    }
}

/// Whether a replica answers for `collection` (served, or replaced at its
/// last swap). No collection is held by none: before the router has chosen
/// one (its first checks still running) a request's empty collection once
/// matched every checked replica's empty `previous_collection_id`, and a
/// shard of another build was merged.
fn holds(info: &IndexInfo, collection: &str) -> bool {
    !collection.is_empty() && (info.collection_id == collection || info.previous_collection_id == collection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_chosen_collection_is_held() {
        let info = IndexInfo { collection_id: "a".into(), ..Default::default() };
        assert!(holds(&info, "a"));
        assert!(!holds(&info, "b"));
        assert!(!holds(&info, ""), "no collection chosen yet: no replica may answer");
        let swapped = IndexInfo { previous_collection_id: "b".into(), ..info };
        assert!(holds(&swapped, "b") && holds(&swapped, "a") && !holds(&swapped, ""));
    }
}

pub struct Shard {
    pub number: u32,
    entries: Vec<String>,
    replicas: RwLock<Vec<Arc<Replica>>>,
    next: AtomicUsize,
    pub retries: AtomicU64,
    /// Why the shard's names did not resolve (empty when they did).
    resolve_problem: Mutex<String>,
}

impl Shard {
    pub fn replicas(&self) -> Vec<Arc<Replica>> {
        self.replicas.read().clone()
    }
}

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub connect_timeout: Duration,
    pub check_timeout: Duration,
    /// Speak TLS to the shards, verifying them with this CA (PEM).
    pub shard_tls_ca: Option<Vec<u8>>,
    /// The key the router presents to its shards (`FATHOM_API_KEY`).
    pub shard_key: Option<String>,
}

pub struct Cluster {
    pub shards: Vec<Shard>,
    collection: RwLock<Option<String>>,
    opts: ClusterOptions,
    /// The last warning about shards of different builds, said once until
    /// it changes.
    mixed_warning: Mutex<String>,
}

impl Cluster {
    pub fn new(spec: &super::spec::ShardSpec, opts: ClusterOptions) -> Self {
        let shards = spec
            .0
            .iter()
            .enumerate()
            .map(|(i, entries)| Shard {
                number: i as u32,
                entries: entries.clone(),
                replicas: RwLock::new(Vec::new()),
                next: AtomicUsize::new(0),
                retries: AtomicU64::new(0),
                resolve_problem: Mutex::new(String::new()),
            })
            .collect();
        Cluster { shards, collection: RwLock::new(None), opts, mixed_warning: Mutex::default() }
    }

    /// The key presented to the shards, if any.
    pub fn shard_key(&self) -> Option<&str> {
        self.opts.shard_key.as_deref()
    }

    /// The collection answers are merged from.
    pub fn collection(&self) -> Option<String> {
        self.collection.read().clone()
    }

    /// Re-resolves every shard's names, checks every replica, and picks the
    /// collection. Replicas found again keep their connection.
    pub async fn refresh(self: &Arc<Self>) {
        for shard in &self.shards {
            self.resolve(shard).await;
        }
        let mut checks = tokio::task::JoinSet::new();
        for shard in &self.shards {
            for r in shard.replicas() {
                let (me, n, timeout) = (self.clone(), shard.number, self.opts.check_timeout);
                checks.spawn(async move {
                    let verdict = r
                        .check(timeout, me.opts.shard_key.as_deref())
                        .await
                        .and_then(|info| me.admit(n, &info).map(|()| info));
                    match verdict {
                        Ok(info) => {
                            let mut st = r.state.lock();
                            st.info = Some(info);
                            st.problem.clear();
                            if !r.live.swap(true, Ordering::Relaxed) {
                                tracing::info!(shard = n, replica = %r.addr, entry = %r.entry, "replica live");
                            }
                        }
                        Err(why) => r.mark_down(&why),
                    }
                });
            }
        }
        while checks.join_next().await.is_some() {}
        self.choose_collection();
    }

    async fn resolve(&self, shard: &Shard) {
        let mut found: Vec<(String, SocketAddr)> = Vec::new();
        let mut problems = Vec::new();
        for e in &shard.entries {
            match tokio::net::lookup_host(e.as_str()).await {
                Ok(addrs) => found.extend(addrs.map(|a| (e.clone(), a))),
                Err(err) => problems.push(format!("{e}: {err}")),
            }
        }
        found.sort_by_key(|(_, a)| *a);
        found.dedup_by_key(|(_, a)| *a);
        *shard.resolve_problem.lock() = problems.join("; ");
        if found.is_empty() && !problems.is_empty() {
            // Keep what we had: a DNS hiccup should not drop live replicas.
            tracing::warn!(shard = shard.number, "cannot resolve: {}", problems.join("; "));
            return;
        }
        let old = shard.replicas();
        let mut next = Vec::with_capacity(found.len());
        for (entry, addr) in found {
            match old.iter().find(|r| r.addr == addr) {
                Some(r) => next.push(r.clone()),
                None => match Replica::new(&entry, addr, &self.opts) {
                    Ok(r) => next.push(Arc::new(r)),
                    Err(e) => problems.push(format!("{entry} ({addr}): {e}")),
                },
            }
        }
        *shard.replicas.write() = next;
    }

    /// Whether a replica's index may stand for shard `n`.
    fn admit(&self, n: u32, info: &IndexInfo) -> Result<(), String> {
        let total = self.shards.len() as u32;
        if info.shard != n || info.shard_count != total {
            return Err(format!(
                "serves shard {} of {}, but the router lists it as shard {n} of {total}",
                info.shard, info.shard_count
            ));
        }
        Ok(())
    }

    /// Keeps the current collection while every shard has a live replica of
    /// it; else moves to one that has; else keeps the best covered.
    fn choose_collection(&self) {
        // Shards on which a collection is served now, and on which it is
        // held (served, or kept since the last swap).
        let mut served: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
        let mut held: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
        for s in &self.shards {
            for r in s.replicas().iter().filter(|r| r.is_live()) {
                if let Some(i) = r.info() {
                    served.entry(i.collection_id.clone()).or_default().insert(s.number);
                    held.entry(i.collection_id).or_default().insert(s.number);
                    if !i.previous_collection_id.is_empty() {
                        held.entry(i.previous_collection_id).or_default().insert(s.number);
                    }
                }
            }
        }
        let n = self.shards.len();
        let full = |m: &BTreeMap<String, BTreeSet<u32>>, c: &String| m.get(c).is_some_and(|s| s.len() == n);
        let current = self.collection();
        let keep = |m: &BTreeMap<String, BTreeSet<u32>>| current.clone().filter(|c| full(m, c));
        // A build served everywhere wins (the end of a rollout); then the
        // one in use while every shard still holds it; then any complete
        // one; else the best covered.
        let next = keep(&served)
            .or_else(|| served.keys().find(|c| full(&served, c)).cloned())
            .or_else(|| keep(&held))
            .or_else(|| held.keys().find(|c| full(&held, c)).cloned())
            .or_else(|| {
                let best = held.values().map(BTreeSet::len).max().unwrap_or(0);
                match &current {
                    Some(c) if held.get(c).is_some_and(|s| s.len() == best) => current.clone(),
                    _ => held.iter().find(|(_, s)| s.len() == best).map(|(c, _)| c.clone()),
                }
            });
        let warning = match next.as_ref().filter(|c| !full(&held, c) && held.len() > 1) {
            Some(c) => {
                let parts: Vec<String> = held.iter().map(|(c, s)| format!("collection {c} on shards {s:?}")).collect();
                format!("shards of different builds: {}; answers merge only collection {c}", parts.join(", "))
            }
            None => String::new(),
        };
        let mut last = self.mixed_warning.lock();
        if *last != warning {
            if !warning.is_empty() {
                tracing::warn!("{warning}");
            }
            *last = warning;
        }
        if next != current {
            tracing::info!(collection = next.as_deref().unwrap_or("-"), "router merges answers of this collection");
            *self.collection.write() = next;
        }
    }

    /// A live replica of shard `s` serving the chosen collection, not in
    /// `tried`, in turn.
    pub fn pick(&self, s: usize, tried: &[SocketAddr]) -> Option<Arc<Replica>> {
        self.pick_for(s, &self.collection()?, tried)
    }

    /// A live replica of shard `s` answering for `collection`, not in
    /// `tried`, in turn. One request reads the collection once and asks
    /// every shard for it, so a switch mid-request cannot mix builds.
    pub fn pick_for(&self, s: usize, collection: &str, tried: &[SocketAddr]) -> Option<Arc<Replica>> {
        let shard = &self.shards[s];
        let all = shard.replicas.read();
        let usable: Vec<&Arc<Replica>> = all
            .iter()
            .filter(|r| r.is_live() && !tried.contains(&r.addr) && r.info().is_some_and(|i| holds(&i, collection)))
            .collect();
        if usable.is_empty() {
            return None;
        }
        let i = shard.next.fetch_add(1, Ordering::Relaxed) % usable.len();
        Some(usable[i].clone())
    }

    /// The index info of shard `s` (from a usable replica).
    pub fn shard_info(&self, s: usize) -> Option<IndexInfo> {
        self.pick(s, &[]).and_then(|r| r.info())
    }

    /// Whether `r` is used for answers: live and holding the chosen
    /// collection (a live replica of another build is not).
    pub fn usable(&self, r: &Replica) -> bool {
        r.is_live() && self.collection().is_some_and(|c| r.info().is_some_and(|i| holds(&i, &c)))
    }

    /// Why shard `s` has no usable replica, for clients: each replica's
    /// reason without its address (another build, another shard number, or
    /// unreachable / not serving; the log has the addresses and causes).
    pub fn why_down_public(&self, s: usize) -> String {
        let replicas = self.shards[s].replicas();
        if replicas.is_empty() {
            return "its address does not resolve".into();
        }
        let collection = self.collection();
        let parts: Vec<String> = replicas
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let p = r.problem();
                let why = match (r.info(), &collection) {
                    _ if p.starts_with("serves ") => p,
                    _ if !p.is_empty() => "unreachable or not serving".into(),
                    (Some(info), Some(c)) if !holds(&info, c) => {
                        format!("serves collection {}, not {c} (a shard of another build)", info.collection_id)
                    }
                    _ => "not checked yet".into(),
                };
                format!("replica {i}: {why}")
            })
            .collect();
        parts.join("; ")
    }

    /// Shards with a usable replica.
    pub fn live_shards(&self) -> usize {
        (0..self.shards.len()).filter(|&s| self.pick(s, &[]).is_some()).count()
    }

    /// Why shard `s` has no usable replica, for errors and logs.
    pub fn why_down(&self, s: usize) -> String {
        let shard = &self.shards[s];
        let replicas = shard.replicas();
        if replicas.is_empty() {
            let p = shard.resolve_problem.lock().clone();
            return if p.is_empty() { "no replica address".into() } else { format!("cannot resolve {p}") };
        }
        let collection = self.collection();
        let parts: Vec<String> = replicas
            .iter()
            .map(|r| {
                let p = r.problem();
                let why = match (r.info(), &collection) {
                    _ if !p.is_empty() => p,
                    (Some(i), Some(c)) if !holds(&i, c) => {
                        format!("serves collection {}, not {c} (a shard of another build)", i.collection_id)
                    }
                    _ => "not checked yet".into(),
                };
                format!("{} ({}): {why}", r.entry, r.addr)
            })
            .collect();
        parts.join("; ")
    }
}
