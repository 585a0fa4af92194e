//! Shards and the router as real processes on loopback: the router's
//! answers equal one index's where the search is exact and keep its recall
//! otherwise; ids are the user's; a dead shard is handled by the policy and
//! comes back without restarting the router; a second replica hides a dead
//! one; a slow shard does not hold answers past the deadline; shards of
//! other builds, misnumbered shards and unreachable addresses are named.

mod common;

use common::Server;
use fathom_client::{Client, ClientOptions, Error};
use fathom_index::build::NoProgress;
use fathom_index::gt::{ground_truth, recall_at};
use fathom_index::input::VectorFile;
use fathom_index::synth::Mixture;
use fathom_index::{BuildParams, CodeKind, Index, OpenOptions, SearchSettings};
use fathom_proto::v1 as pb;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::Code;

const DIM: usize = 16;
const N: u64 = 6_000;
const SHARDS: u32 = 3;

fn user_id(row: u64) -> u64 {
    (1 << 36) + row * 3
}

struct Fixture {
    dir: PathBuf,
    base: PathBuf,
    ids: PathBuf,
    queries: Vec<f32>,
    /// Mixed into every build's seed: each test's shards are their own
    /// collection, so no test's servers can stand in for another's (the
    /// tests run at once on the same data and ports are reused as shards
    /// restart). The CI failures first blamed on that were the router's
    /// empty-collection match (`no_answer_merges_builds_while_the_first_checks_run`).
    salt: u64,
}

fn fixture(name: &str) -> Fixture {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("router-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let m = Mixture { dim: DIM, clusters: 40, seed: 11 };
    let base = dir.join("base.fbin");
    m.write_fbin(&base, 0, N).unwrap();
    let ids = dir.join("ids.u64bin");
    let mut b = [(N as u32).to_le_bytes(), 1u32.to_le_bytes()].concat();
    (0..N).for_each(|r| b.extend_from_slice(&user_id(r).to_le_bytes()));
    std::fs::write(&ids, b).unwrap();
    let salt = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    Fixture { queries: m.rows(1, 0, 40), dir, base, ids, salt }
}

impl Fixture {
    fn build(&self, name: &str, p: BuildParams) -> PathBuf {
        let out = self.dir.join(name);
        let p = BuildParams { ids_file: Some(self.ids.clone()), seed: p.seed ^ self.salt, ..p };
        fathom_index::build(&self.base, &out, &p, &NoProgress).unwrap();
        out
    }

    fn shards(&self, prefix: &str, p: &BuildParams) -> Vec<PathBuf> {
        (0..SHARDS)
            .map(|i| self.build(&format!("{prefix}{i}"), BuildParams { shard: i, shard_count: SHARDS, ..p.clone() }))
            .collect()
    }
}

/// Reads every posting: exact where codes are exact.
fn everything() -> pb::SearchSettings {
    pb::SearchSettings {
        max_postings: Some(10_000),
        eps2: Some(1e6),
        probe_groups: Some(100_000),
        rerank: Some(1000),
        ..Default::default()
    }
}

async fn connect(s: &Server) -> Client {
    Client::connect(&s.grpc, ClientOptions { retries: 0, ..Default::default() }).await.unwrap()
}

/// Waits until the router (or server) reports SERVING.
async fn until_serving(s: &Server) {
    let channel = tonic::transport::Endpoint::from_shared(s.grpc.clone()).unwrap().connect().await.unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(channel);
    for _ in 0..300 {
        let r = h.check(tonic_health::pb::HealthCheckRequest { service: "fathom.v1.Fathom".into() }).await;
        if r.is_ok_and(|r| r.into_inner().status == 1) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never became SERVING", s.grpc);
}

async fn health_of(s: &Server) -> i32 {
    let channel = tonic::transport::Endpoint::from_shared(s.grpc.clone()).unwrap().connect().await.unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(channel);
    let r = h.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
    r.into_inner().status
}

fn status(r: Result<impl std::fmt::Debug, Error>) -> (Code, String) {
    match r {
        Err(Error::Status { code, message }) => (code, message),
        other => panic!("expected a status, got {other:?}"),
    }
}

/// One server per index, each SERVING before this returns.
async fn serve_all(indexes: &[PathBuf]) -> Vec<Server> {
    let servers: Vec<Server> = indexes.iter().map(|s| Server::start(s, &[])).collect();
    for s in &servers {
        until_serving(s).await;
    }
    servers
}

/// The router's refusal of a search once it says `needle` (checks run
/// every 100 ms; at most 10 s).
async fn refusal(router: &Server, q: &[f32], needles: &[&str]) -> (Code, String) {
    let client = connect(router).await;
    let mut last = String::new();
    for _ in 0..100 {
        let (c, m) = status(client.search(q, 10, None).await);
        if needles.iter().all(|n| m.contains(n)) {
            return (c, m);
        }
        last = m;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never refused with {needles:?}; last: {last}");
}

fn spec(servers: &[&Server]) -> String {
    servers.iter().map(|s| s.addr().to_string()).collect::<Vec<_>>().join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_behind_a_router_answer_like_one_index() {
    let f = fixture("exact");
    let exact = BuildParams { code: CodeKind::F32, ..BuildParams::default() };
    let whole = f.build("whole", exact.clone());
    let shards = f.shards("s", &exact);
    let servers = serve_all(&shards).await;
    let router = Server::route(&spec(&servers.iter().collect::<Vec<_>>()), &["--policy", "fail"]);
    until_serving(&router).await;
    let client = connect(&router).await;

    // Exact: the same neighbours and distances as one index.
    let ix = Index::open(&whole, OpenOptions::default()).unwrap();
    let mut one = ix.searcher().unwrap();
    let all = SearchSettings { max_postings: 100_000, eps2: 1e6, probe_groups: 100_000, ..Default::default() };
    for q in f.queries.chunks(DIM) {
        let want = one.search(q, 10, &all).unwrap().0;
        let got = client.search(q, 10, Some(everything())).await.unwrap();
        let got: Vec<(u64, f32)> = got.neighbors.iter().map(|n| (n.id, n.distance)).collect();
        assert_eq!(got, want.iter().map(|n| (n.id, n.distance)).collect::<Vec<_>>());
        assert!(got.iter().all(|(id, _)| *id >= 1 << 36), "the user's ids");
    }
    let batch: Vec<Vec<f32>> = f.queries.chunks(DIM).take(5).map(|q| q.to_vec()).collect();
    let rs = client.batch_search(&batch, 10, Some(everything())).await.unwrap();
    for (r, q) in rs.iter().zip(&batch) {
        assert_eq!(r.neighbors, client.search(q, 10, Some(everything())).await.unwrap().neighbors);
        assert_eq!(r.coverage, Some(pb::Coverage { shards_answered: 3, shards_total: 3, missing_shards: vec![] }));
    }
    // The collection as a whole.
    let info = client.index_info().await.unwrap();
    assert_eq!((info.vector_count, info.shard_count, info.dimension), (N, SHARDS, DIM as u32));
    assert!(info.user_ids);
    assert_eq!(info.index_version, "s0,s1,s2");
    // Bad input is the shards' answer, with its code.
    let (c, m) = status(client.search(&f.queries[..DIM - 1], 10, None).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("dimension"), "{m}");
    assert_eq!(status(client.search(&f.queries[..DIM], 0, None).await).0, Code::InvalidArgument);
    let m = router.http_get("/metrics");
    assert!(m.contains("fathom_router_shards_live 3"), "{m}");
    assert!(m.contains("fathom_router_shard_requests_total{shard=\"2\""), "{m}");
    assert!(router.http_get("/readyz").starts_with("HTTP/1.1 200"));
    assert!(router.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_recall_is_that_of_one_index() {
    let f = fixture("recall");
    let whole = f.build("whole", BuildParams::default());
    let shards = f.shards("s", &BuildParams::default());
    let servers = serve_all(&shards).await;
    let router = Server::route(&spec(&servers.iter().collect::<Vec<_>>()), &[]);
    let one = Server::start(&whole, &[]);
    until_serving(&router).await;
    until_serving(&one).await;
    let truth =
        ground_truth(&VectorFile::open(&f.base).unwrap(), &f.queries, 10, fathom_index::Metric::L2, &|_| {}).unwrap();
    let (rc, oc) = (connect(&router).await, connect(&one).await);
    let (mut r_recall, mut o_recall) = (0.0, 0.0);
    for (q, t) in f.queries.chunks(DIM).zip(&truth) {
        let want: Vec<i32> = t.iter().map(|n| n.id as i32).collect();
        let rows = |ids: Vec<u64>| ids.into_iter().map(|id| (id - (1 << 36)) / 3).collect::<Vec<u64>>();
        let r = rc.search(q, 10, None).await.unwrap().neighbors.iter().map(|n| n.id).collect();
        let o = oc.search(q, 10, None).await.unwrap().neighbors.iter().map(|n| n.id).collect();
        r_recall += recall_at(&rows(r), &want, 10);
        o_recall += recall_at(&rows(o), &want, 10);
    }
    let n = truth.len() as f64;
    let (r_recall, o_recall) = (r_recall / n, o_recall / n);
    assert!(o_recall > 0.8, "one index: {o_recall}");
    assert!(r_recall >= o_recall - 0.01, "router {r_recall} vs one index {o_recall}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_shard_is_handled_by_the_policy_and_comes_back() {
    let f = fixture("dead");
    let shards = f.shards("s", &BuildParams::default());
    let mut servers = serve_all(&shards).await;
    let sp = spec(&servers.iter().collect::<Vec<_>>());
    let partial = Server::route(&sp, &["--policy", "partial"]);
    let fail = Server::route(&sp, &["--policy", "fail"]);
    until_serving(&partial).await;
    until_serving(&fail).await;
    let (pc, fc) = (connect(&partial).await, connect(&fail).await);
    let q = &f.queries[..DIM];
    assert_eq!(pc.search(q, 10, None).await.unwrap().coverage.unwrap().shards_answered, 3);

    // Kill shard 1's only replica.
    let port = servers[1].addr().to_string();
    servers.remove(1).kill();
    for _ in 0..20 {
        let t = Instant::now();
        let r = pc.search(q, 10, None).await.unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "answered within its deadline");
        let c = r.coverage.unwrap();
        assert_eq!((c.shards_answered, c.shards_total, c.missing_shards), (2, 3, vec![1]));
        assert_eq!(r.neighbors.len(), 10);
        let (code, m) = status(fc.search(q, 10, None).await);
        assert_eq!(code, Code::Unavailable);
        assert!(m.contains("shard 1"), "{m}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(health_of(&fail).await, 2, "fail policy: NOT_SERVING without shard 1");
    assert_eq!(health_of(&partial).await, 1, "partial policy: still SERVING");
    assert!(partial.http_get("/metrics").contains("fathom_router_partial_answers_total 20"));

    // Restart it on the same port: full answers return, routers untouched.
    let back = Server::serve_on(&shards[1], &port, &[], &[]);
    until_serving(&back).await;
    until_serving(&fail).await;
    let r = fc.search(q, 10, None).await.unwrap();
    assert_eq!(r.coverage.unwrap().shards_answered, 3);
    let mut full = false;
    for _ in 0..50 {
        if pc.search(q, 10, None).await.unwrap().coverage.unwrap().shards_answered == 3 {
            full = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(full, "partial router sees shard 1 again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_hides_a_dead_one() {
    let f = fixture("replica");
    let shards = f.shards("s", &BuildParams::default());
    let a = Server::start(&shards[0], &[]);
    let b = Server::start(&shards[0], &[]);
    let rest = serve_all(&shards[1..]).await;
    until_serving(&a).await;
    until_serving(&b).await;
    // Shard 1 by name: "localhost" resolves (to one or more addresses) when
    // the router starts and at every health check.
    let port1 = rest[0].addr().rsplit(':').next().unwrap().to_string();
    let sp = format!("{}|{},localhost:{port1},{}", a.addr(), b.addr(), rest[1].addr());
    let router = Server::route(&sp, &["--policy", "fail"]);
    until_serving(&router).await;
    let client = connect(&router).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for c in 0..4 {
        let (client, stop, q) = (client.clone(), stop.clone(), f.queries[c * DIM..(c + 1) * DIM].to_vec());
        load.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match client.search(&q, 10, None).await {
                    Ok(r) if r.coverage.as_ref().is_some_and(|c| c.shards_answered == 3) => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.kill();
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for l in load {
        let (ok, failed) = l.await.unwrap();
        assert!(failed.is_empty(), "{failed:?}");
        total += ok;
    }
    assert!(total > 20, "{total} requests");
    drop(b);
}

/// A TCP proxy to `to` that, once `slow` is set, holds every chunk sent
/// towards `to` for `delay`.
async fn slow_proxy(to: String, delay: Duration) -> (String, Arc<AtomicBool>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let slow = Arc::new(AtomicBool::new(false));
    let flag = slow.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = l.accept().await {
            let (to, slow) = (to.clone(), flag.clone());
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await else { return };
                let (mut ri, mut wi) = inbound.split();
                let (mut ro, mut wo) = outbound.split();
                let up = async {
                    let mut buf = vec![0u8; 65536];
                    loop {
                        let n = match tokio::io::AsyncReadExt::read(&mut ri, &mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if slow.load(Ordering::Relaxed) {
                            tokio::time::sleep(delay).await;
                        }
                        if tokio::io::AsyncWriteExt::write_all(&mut wo, &buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let down = tokio::io::copy(&mut ro, &mut wi);
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    (addr, slow)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_shard_does_not_hold_answers_past_the_deadline() {
    let f = fixture("slow");
    let shards = f.shards("s", &BuildParams::default());
    let servers: Vec<Server> = shards.iter().map(|s| Server::start(s, &[])).collect();
    for s in &servers {
        until_serving(s).await;
    }
    // Shard 2 is live when the router checks it, then slows down: every
    // chunk towards it waits 1 s (health checks every 3 s keep it live).
    let (proxy, slow) = slow_proxy(servers[2].addr().to_string(), Duration::from_millis(1000)).await;
    let sp = format!("{},{},{proxy}", servers[0].addr(), servers[1].addr());
    let router = Server::route(&sp, &["--policy", "partial", "--health-interval-ms", "3000"]);
    until_serving(&router).await;
    let opts = ClientOptions { request_timeout: Some(Duration::from_millis(300)), retries: 0, ..Default::default() };
    let client = Client::connect(&router.grpc, opts).await.unwrap();
    assert_eq!(client.search(&f.queries[..DIM], 10, None).await.unwrap().coverage.unwrap().shards_answered, 3);
    slow.store(true, Ordering::Relaxed);
    let q = &f.queries[..DIM];
    for _ in 0..3 {
        let t = Instant::now();
        let r = client.search(q, 10, None).await.unwrap();
        let took = t.elapsed();
        assert!(took < Duration::from_millis(400), "took {took:?} with a 300 ms deadline");
        let c = r.coverage.unwrap();
        assert_eq!(c.missing_shards, vec![2], "{c:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_builds_misnumbered_shards_and_dead_addresses_are_named() {
    let f = fixture("bad");
    let shards = f.shards("s", &BuildParams::default());
    let other = f.build("other1", BuildParams { shard: 1, shard_count: SHARDS, seed: 9, ..BuildParams::default() });
    let s0 = Server::start(&shards[0], &[]);
    let s1 = Server::start(&shards[1], &[]);
    let s2 = Server::start(&shards[2], &[]);
    let o1 = Server::start(&other, &[]);
    until_serving(&s0).await;
    until_serving(&o1).await;
    let q = &f.queries[..DIM];

    // Shard 1 of another build: not merged.
    let mixed = Server::route(&format!("{},{},{}", s0.addr(), o1.addr(), s2.addr()), &["--policy", "fail"]);
    let (c, m) = refusal(&mixed, q, &["shard 1: no live replica", "another build"]).await;
    assert_eq!(c, Code::Unavailable);
    assert!(!m.contains(o1.addr()), "addresses stay in the log: {m}");
    assert_eq!(health_of(&mixed).await, 2, "NOT_SERVING");
    // issue 26 (12): a live replica of another build is not called live.
    let o1_line = format!("fathom_router_replica_live{{shard=\"1\",replica=\"{}\"}} 0", o1.addr());
    let metrics = mixed.http_get("/metrics");
    assert!(metrics.contains(&o1_line), "{o1_line} not in\n{metrics}");

    // Shards listed in the wrong order.
    let swapped = Server::route(&format!("{},{},{}", s1.addr(), s0.addr(), s2.addr()), &["--policy", "fail"]);
    let (c, _) = refusal(&swapped, q, &["serves shard 1 of 3, but the router lists it as shard 0"]).await;
    assert_eq!(c, Code::Unavailable);

    // An address nobody listens on, at start-up.
    let dead = Server::route(&format!("{},127.0.0.1:1,{}", s0.addr(), s2.addr()), &["--policy", "fail"]);
    let (c, m) = refusal(&dead, q, &["shard 1: no live replica: replica 0: unreachable or not serving"]).await;
    assert_eq!(c, Code::Unavailable);
    assert!(!m.contains("127.0.0.1:1"), "addresses stay in the log: {m}");
    assert_eq!(health_of(&dead).await, 2);
    let (c, m) = status(connect(&dead).await.index_info().await);
    assert_eq!(c, Code::Unavailable);
    assert!(!m.contains("127.0.0.1:1"), "addresses stay in the log: {m}");
    assert!(dead.http_get("/readyz").starts_with("HTTP/1.1 503"));
    // issue 26 (11): under `partial`, GetIndexInfo answers with the shards
    // it has and says which are missing (it used to be UNAVAILABLE, which
    // also broke `fathom bench --addr` through the router).
    let part = Server::route(&format!("{},127.0.0.1:1,{}", s0.addr(), s2.addr()), &["--policy", "partial"]);
    until_serving(&part).await;
    let info = connect(&part).await.index_info().await.unwrap();
    let cov = info.coverage.clone().unwrap();
    assert_eq!((cov.shards_answered, cov.shards_total, cov.missing_shards.clone()), (2, 3, vec![1]), "{info:?}");
    assert_eq!(info.shard_count, 3);
    drop(s1);
}

/// Before the router's first checks end it has chosen no collection, and
/// no shard may answer: once, an empty collection matched every checked
/// replica, so a shard of another build was merged with the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_merges_builds_while_the_first_checks_run() {
    let f = fixture("early");
    let shards = f.shards("s", &BuildParams::default());
    let other = f.build("other1", BuildParams { shard: 1, shard_count: SHARDS, seed: 9, ..BuildParams::default() });
    let s0 = Server::start(&shards[0], &[]);
    let o1 = Server::start(&other, &[]);
    until_serving(&s0).await;
    until_serving(&o1).await;
    // Shard 2 accepts connections and never answers: the first checks take
    // the whole check timeout (the health interval, 3 s).
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = format!("{},{},{}", s0.addr(), o1.addr(), mute.local_addr().unwrap());
    let router = Server::route(&spec, &["--policy", "partial", "--health-interval-ms", "3000"]);
    let client = connect(&router).await;
    let q = &f.queries[..DIM];
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        if let Ok(r) = client.search(q, 10, None).await {
            let c = r.coverage.unwrap();
            assert!(c.shards_answered <= 1, "shards of two builds merged: {c:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// issue 12 (security): API keys on shards and router. No key or a wrong
/// one is UNAUTHENTICATED with no detail; the right one answers; health
/// stays open for probes; the router presents its own key to the shards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_guard_servers_and_the_router() {
    let f = fixture("keys");
    let keys = f.dir.join("keys");
    std::fs::write(&keys, "# test keys\nclient-key-0123456789\nrouter-key-0123456789\nslow-key-0123456789 read 3/s\n")
        .unwrap();
    let keys_env = keys.to_str().unwrap();
    let shard = f.build("whole", BuildParams::default());
    let server = Server::serve_on(&shard, "127.0.0.1:0", &[], &[("FATHOM_API_KEYS_FILE", keys_env)]);
    until_serving(&server).await; // health needs no key
    let q = &f.queries[..DIM];
    let with = |key: Option<&str>| ClientOptions {
        retries: 0,
        api_key: key.map(|k| fathom_client::ApiKey(k.into())),
        ..Default::default()
    };
    for (key, want) in [(None, "an API key is required"), (Some("client-key-01234567890"), "invalid API key")] {
        let c = Client::connect(&server.grpc, with(key)).await.unwrap();
        let (code, m) = status(c.search(q, 10, None).await);
        assert_eq!((code, m.as_str()), (Code::Unauthenticated, want));
        assert_eq!(status(c.index_info().await).0, Code::Unauthenticated);
    }
    let ok = Client::connect(&server.grpc, with(Some("client-key-0123456789"))).await.unwrap();
    assert_eq!(ok.search(q, 10, None).await.unwrap().neighbors.len(), 10);
    // A key with a rate (3/s): a burst past it is RESOURCE_EXHAUSTED, for
    // that key only.
    let slow = Client::connect(&server.grpc, with(Some("slow-key-0123456789"))).await.unwrap();
    let mut refused = 0;
    for _ in 0..10 {
        match slow.search(q, 10, None).await {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e}");
                refused += 1;
            }
        }
    }
    assert!((3..=8).contains(&refused), "{refused} of 10 refused at 3/s");
    assert!(ok.search(q, 10, None).await.is_ok(), "other keys are not limited");
    // A router over it: keys for its clients, its own key for the shard.
    let router = Server::route_env(
        server.addr(),
        &["--policy", "fail"],
        &[("FATHOM_ROUTER_API_KEYS_FILE", keys_env), ("FATHOM_API_KEY", "router-key-0123456789")],
    );
    until_serving(&router).await;
    let anon = Client::connect(&router.grpc, with(None)).await.unwrap();
    assert_eq!(status(anon.search(q, 10, None).await).0, Code::Unauthenticated);
    let rc = Client::connect(&router.grpc, with(Some("client-key-0123456789"))).await.unwrap();
    assert_eq!(rc.search(q, 10, None).await.unwrap().neighbors, ok.search(q, 10, None).await.unwrap().neighbors);
    let m = server.http_get("/metrics");
    assert!(m.contains("fathom_requests_total{method=\"Search\",code=\"UNAUTHENTICATED\"}"), "refusals are counted");
}

/// issue 12: the server's certificate is reloaded without a restart: on
/// SIGHUP after the files change, new connections get the new certificate
/// (a client trusting only the new CA connects, one trusting only the old
/// CA no longer can), and a broken file is refused while the current
/// certificate keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificates_reload_on_sighup() {
    let f = fixture("tls-reload");
    let (old_dir, new_dir) = (f.dir.join("old"), f.dir.join("new"));
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::create_dir_all(&new_dir).unwrap();
    let (_, cert, key, _, old_ca) = make_certs(&old_dir);
    let (_, new_cert, new_key, _, new_ca) = make_certs(&new_dir);
    let idx = f.build("whole", BuildParams::default());
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let server = Server::serve_on(&idx, "127.0.0.1:0", &[], &[("FATHOM_TLS_CERT", cert_s), ("FATHOM_TLS_KEY", key_s)]);
    let addr = server.grpc.replace("http://", "https://");
    let q = &f.queries[..DIM];
    let trusting = |ca: &Vec<u8>, retries| ClientOptions {
        retries,
        tls_ca_pem: Some(ca.clone()),
        request_timeout: Some(Duration::from_secs(3)),
        ..Default::default()
    };
    let works = |ca: Vec<u8>| {
        let addr = addr.clone();
        async move {
            match Client::connect(&addr, trusting(&ca, 0)).await {
                Ok(c) => c.search(q, 10, None).await.is_ok(),
                Err(_) => false,
            }
        }
    };
    let c = Client::connect(&addr, trusting(&old_ca, 30)).await.unwrap();
    assert_eq!(c.search(q, 10, None).await.unwrap().neighbors.len(), 10);
    assert!(!works(new_ca.clone()).await, "the new CA does not vouch for the old certificate");
    let hup = |pid: u32| {
        let hup = format!("kill -HUP {pid}");
        assert!(std::process::Command::new("sh").args(["-c", &hup]).status().unwrap().success());
    };
    // A broken certificate file: refused, the old one keeps serving.
    std::fs::write(&cert, "not a certificate").unwrap();
    hup(server.child.id());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(works(old_ca.clone()).await, "a failed reload keeps the previous certificate");
    // The new pair: served after SIGHUP, to new connections.
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    hup(server.child.id());
    let t = Instant::now();
    while !works(new_ca.clone()).await {
        assert!(t.elapsed() < Duration::from_secs(10), "the new certificate was never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!works(old_ca.clone()).await, "the old certificate is no longer served");
}

/// `GET path` over TLS (trusting `ca_pem`), HTTP/1.1; the response text.
async fn https_get(addr: &str, ca_pem: &[u8], path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::{self, pki_types::pem::PemObject, pki_types::CertificateDer, RootCertStore};
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg)).connect(name, tcp).await?;
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await.or_else(|e| if out.is_empty() { Err(e) } else { Ok(0) })?;
    Ok(out)
}

/// issue 12: with `metrics_tls` the metrics port speaks TLS with the same
/// certificate: probes and /metrics answer over https, plaintext gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_port_speaks_tls_when_asked() {
    let f = fixture("metrics-tls");
    let (_, cert, key, _, ca_pem) = make_certs(&f.dir);
    let idx = f.build("whole", BuildParams::default());
    let env = [
        ("FATHOM_TLS_CERT", cert.to_str().unwrap()),
        ("FATHOM_TLS_KEY", key.to_str().unwrap()),
        ("FATHOM_METRICS_TLS", "true"),
    ];
    let server = Server::serve_on(&idx, "127.0.0.1:0", &[], &env);
    let live = https_get(&server.metrics, &ca_pem, "/livez").await.unwrap();
    assert!(live.starts_with("HTTP/1.1 200") && live.ends_with("ok\n"), "{live}");
    let metrics = https_get(&server.metrics, &ca_pem, "/metrics").await.unwrap();
    assert!(metrics.contains("\nfathom_searches_total 0\n"), "{metrics}");
    // Plaintext: the TLS handshake fails and the connection closes.
    let plain = std::panic::catch_unwind(|| server.http_get("/livez"));
    assert!(plain.map_or(true, |r| !r.contains("200")), "plaintext metrics against TLS");
}

/// Certificates made here: a CA, a server certificate for 127.0.0.1 and
/// localhost, a client certificate; PEM files written to `dir`.
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf, fathom_client::TlsIdentity, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let srv_key = KeyPair::generate().unwrap();
    let srv = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&srv_key, &ca, &ca_key)
        .unwrap();
    let cli_key = KeyPair::generate().unwrap();
    let cli = CertificateParams::new(vec!["client".into()]).unwrap().signed_by(&cli_key, &ca, &ca_key).unwrap();
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    (
        write("ca.pem", ca.pem()),
        write("server.pem", srv.pem()),
        write("server.key", srv_key.serialize_pem()),
        fathom_client::TlsIdentity { cert_pem: cli.pem().into_bytes(), key_pem: cli_key.serialize_pem().into_bytes() },
        ca.pem().into_bytes(),
    )
}

/// issue 12 (security): TLS with certificates made in the test: a client
/// trusting the CA searches; a plaintext client fails cleanly; with mutual
/// TLS a client without a certificate is refused and one with it answers;
/// the router speaks TLS to a TLS shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls_handshakes() {
    let f = fixture("tls");
    let (ca, cert, key, client_id, ca_pem) = make_certs(&f.dir);
    let idx = f.build("whole", BuildParams::default());
    let (ca_s, cert_s, key_s) = (ca.to_str().unwrap(), cert.to_str().unwrap(), key.to_str().unwrap());
    let server = Server::serve_on(&idx, "127.0.0.1:0", &[], &[("FATHOM_TLS_CERT", cert_s), ("FATHOM_TLS_KEY", key_s)]);
    let tls_addr = server.grpc.replace("http://", "https://");
    let q = &f.queries[..DIM];
    let opts = |id: Option<fathom_client::TlsIdentity>| ClientOptions {
        retries: 30,
        tls_ca_pem: Some(ca_pem.clone()),
        tls_identity_pem: id,
        request_timeout: Some(Duration::from_secs(3)),
        ..Default::default()
    };
    let c = Client::connect(&tls_addr, opts(None)).await.unwrap();
    assert_eq!(c.search(q, 10, None).await.unwrap().neighbors.len(), 10);
    // Plaintext against TLS: an error, promptly, not a hang.
    let t = Instant::now();
    let plain = Client::connect(&server.grpc, ClientOptions { retries: 0, ..opts(None) }).await;
    let failed = match plain {
        Err(_) => true,
        Ok(p) => p.search(q, 10, None).await.is_err(),
    };
    assert!(failed && t.elapsed() < Duration::from_secs(5), "plaintext client against TLS");
    // A router speaking TLS to it, serving plaintext to its clients.
    let router = Server::route_env(server.addr(), &[], &[("FATHOM_ROUTER_SHARD_TLS_CA", ca_s)]);
    until_serving(&router).await;
    let rc = Client::connect(&router.grpc, ClientOptions { retries: 0, ..Default::default() }).await.unwrap();
    assert_eq!(rc.search(q, 10, None).await.unwrap().neighbors, c.search(q, 10, None).await.unwrap().neighbors);
    drop(router);
    drop(server);

    // Mutual TLS.
    let mtls = Server::serve_on(
        &idx,
        "127.0.0.1:0",
        &[],
        &[("FATHOM_TLS_CERT", cert_s), ("FATHOM_TLS_KEY", key_s), ("FATHOM_TLS_CLIENT_CA", ca_s)],
    );
    let addr = mtls.grpc.replace("http://", "https://");
    let with_cert = Client::connect(&addr, opts(Some(client_id))).await.unwrap();
    assert_eq!(with_cert.search(q, 10, None).await.unwrap().neighbors.len(), 10);
    let without = Client::connect(&addr, ClientOptions { retries: 0, ..opts(None) }).await;
    let refused = match without {
        Err(_) => true,
        Ok(c) => c.search(q, 10, None).await.is_err(),
    };
    assert!(refused, "mutual TLS without a client certificate must be refused");
}

/// A request the client gives up on (its future dropped while a shard is
/// slow) leaves the router's in-flight count where it was: the count was
/// kept by hand around an await and stayed raised, and a drain (which
/// waits for in-flight requests, issue 26) would then wait its whole
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_do_not_hold_the_in_flight_count() {
    let f = fixture("cancelled");
    let idx = f.build("whole", BuildParams::default());
    let server = Server::start(&idx, &[]);
    until_serving(&server).await;
    let (proxy, slow) = slow_proxy(server.addr().to_string(), Duration::from_millis(1500)).await;
    let router = Server::route(&proxy, &["--health-interval-ms", "3000"]);
    until_serving(&router).await;
    slow.store(true, Ordering::Relaxed);
    let opts = ClientOptions { request_timeout: None, retries: 0, ..Default::default() };
    let client = Client::connect(&router.grpc, opts).await.unwrap();
    for _ in 0..3 {
        let gave_up =
            tokio::time::timeout(Duration::from_millis(200), client.search(&f.queries[..DIM], 10, None)).await;
        assert!(gave_up.is_err(), "the slow shard answered within 200 ms");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = router.http_get("/metrics");
    assert!(m.contains("fathom_router_in_flight_requests 0"), "{m}");
    let t = Instant::now();
    assert!(router.terminate().success());
    assert!(t.elapsed() < Duration::from_secs(3), "the drain waited {:?}", t.elapsed());
}

/// The router takes the front door's keys that `fathom serve` takes (one
/// definition, issue 27): its cost caps refuse a request before any shard
/// sees it, and a connection that never speaks HTTP/2 is closed after its
/// handshake timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_takes_the_servers_front_door_keys() {
    let f = fixture("front-door");
    let idx = f.build("whole", BuildParams::default());
    let server = Server::start(&idx, &[]);
    until_serving(&server).await;
    let router = Server::route_env(
        server.addr(),
        &[],
        &[("FATHOM_ROUTER_MAX_REQUEST_PAGES", "200"), ("FATHOM_ROUTER_HANDSHAKE_TIMEOUT_MS", "300")],
    );
    until_serving(&router).await;
    let client = connect(&router).await;
    let q = &f.queries[..DIM];
    assert_eq!(client.search(q, 10, None).await.unwrap().neighbors.len(), 10, "within the caps");
    let costly = pb::SearchSettings { max_postings: Some(500), ..Default::default() };
    let (code, msg) = status(client.search(q, 10, Some(costly)).await);
    assert_eq!(code, Code::ResourceExhausted, "{msg}");
    assert!(msg.contains("max_request_pages"), "{msg}");

    let addr = router.grpc.trim_start_matches("http://").to_string();
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 64];
    use tokio::io::AsyncReadExt;
    let n = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "the silent connection was closed: {n:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "closed after the router's 300 ms, took {:?}", t.elapsed());
}
