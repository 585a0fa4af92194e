//! Issue 26: what trying Fathom as a new user would, and attacking it on
//! loopback, found. Each test here failed before its fix.

use fathom_client::{Client, ClientOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

mod common;

fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fathom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fathom")).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_fbin(path: &Path, dim: usize, rows: &[f32]) {
    let n = rows.len() / dim;
    let mut b = [(n as u32).to_le_bytes(), (dim as u32).to_le_bytes()].concat();
    rows.iter().for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
    std::fs::write(path, b).unwrap();
}

/// (2) Vectors near 1e20 used to panic the builder (index out of bounds in
/// the assign stage). l2 and ip refuse them naming the row; cosine
/// normalises them in f64 and builds.
#[test]
fn huge_vectors_are_refused_by_row_or_normalised_never_a_panic() {
    let d = dir("huge");
    let dim = 8;
    let mut rng = fathom_index::rng::Rng::new(5);
    let mut rows: Vec<f32> = (0..3000 * dim).map(|_| rng.normal()).collect();
    rows[1234 * dim..1235 * dim].iter_mut().for_each(|v| *v *= 1e20);
    let input = d.join("huge.fbin");
    write_fbin(&input, dim, &rows);
    for metric in ["l2", "ip"] {
        let out = d.join(format!("idx-{metric}"));
        let o = fathom(&[
            "build",
            "--input",
            input.to_str().unwrap(),
            "--metric",
            metric,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        let e = stderr(&o);
        assert!(!o.status.success(), "{metric}: {e}");
        assert!(!e.contains("panicked"), "{metric}: {e}");
        assert!(e.contains("input vector 1234") && e.contains("overflow"), "{metric}: {e}");
    }
    let out = d.join("idx-cos");
    let o = fathom(&[
        "build",
        "--input",
        input.to_str().unwrap(),
        "--metric",
        "cosine",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// (3) An index built with --ids answers in those ids: `fathom gt --ids`
/// writes truth in them (as .u64bin when they pass i32), and bench refuses
/// truth in row numbers instead of printing recall 0.
#[test]
fn truth_in_user_ids_and_bench_refuses_truth_of_other_ids() {
    let d = dir("ids");
    let s = |p: &str| d.join(p).to_str().unwrap().to_string();
    let o =
        fathom(&["synth", "--n", "5000", "--dim", "16", "--clusters", "20", "--queries", "50", "--out", &s("b.fbin")]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Ids past i32, as user ids often are.
    let mut ids = [5000u32.to_le_bytes(), 1u32.to_le_bytes()].concat();
    (0..5000u64).for_each(|r| ids.extend_from_slice(&(10_000_000_000 + 7 * r).to_le_bytes()));
    std::fs::write(d.join("ids.u64bin"), ids).unwrap();
    let o = fathom(&[
        "build",
        "--input",
        &s("b.fbin"),
        "--metric",
        "l2",
        "--out",
        &s("idx"),
        "--ids",
        &s("ids.u64bin"),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let gt = |out: &str, ids: bool| {
        let (b, q, o, i) = (s("b.fbin"), s("b.queries.fbin"), s(out), s("ids.u64bin"));
        let mut a = vec!["gt", "--base", &b, "--queries", &q, "--k", "10", "--metric", "l2", "--quiet", "--out", &o];
        if ids {
            a.extend(["--ids", &i]);
        }
        fathom(&a)
    };
    let bench = |truth: &str| {
        fathom(&[
            "bench",
            "--index",
            &s("idx"),
            "--queries",
            &s("b.queries.fbin"),
            "--gt",
            &s(truth),
            "--k",
            "10",
            "--json",
        ])
    };
    // Row numbers: bench refuses, naming what to do.
    assert!(gt("rows.ibin", false).status.success());
    let o = bench("rows.ibin");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("fathom gt --ids"), "{}", stderr(&o));
    // Ids past i32 do not fit .ibin: refused, naming .u64bin.
    let o = gt("user.ibin", true);
    assert!(!o.status.success() && stderr(&o).contains(".u64bin"), "{}", stderr(&o));
    // .u64bin: recall as it should be.
    let o = gt("user.u64bin", true);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bench("user.u64bin");
    assert!(o.status.success(), "{}", stderr(&o));
    let row: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(row["recall"].as_f64().unwrap() > 0.8, "{row}");
}

/// A small served index: 20,000 x 32 mixture rows, and 100 queries.
fn fixture(name: &str) -> (PathBuf, Vec<f32>) {
    let d = dir(name);
    let m = fathom_index::synth::Mixture { dim: 32, clusters: 60, seed: 3 };
    let base = d.join("base.fbin");
    m.write_fbin(&base, 0, 20_000).unwrap();
    let idx = d.join("idx");
    let params = fathom_index::BuildParams::default();
    fathom_index::build(&base, &idx, &params, &fathom_index::build::NoProgress).unwrap();
    (idx, m.rows(1, 0, 100))
}

/// A copy of the index directory `from` at `to`.
fn copy_index(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Whether the server closed `s` (a read returns 0 or fails) within `wait`.
fn closed_within(s: &mut std::net::TcpStream, wait: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue, // the server's SETTINGS
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// (4) A socket that sends one byte is not a client: it must finish the
/// HTTP/2 preface and SETTINGS within the handshake timeout, and
/// connections that never send a request give their slot up when slots run
/// out. All slots held by such sockets used to lock every client out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_connections_cannot_hold_the_slots() {
    use std::io::Write;
    let (idx, queries) = fixture("slots");
    let env = [("FATHOM_MAX_CONNECTIONS", "16"), ("FATHOM_HANDSHAKE_TIMEOUT_MS", "1500")];
    let server = common::Server::start(&idx, &env);
    let addr = server.addr().to_string();
    let connect = || std::net::TcpStream::connect(&addr).unwrap();
    let search = || async {
        let opts = ClientOptions { request_timeout: Some(Duration::from_secs(3)), retries: 0, ..Default::default() };
        let client = Client::connect(&server.grpc, opts).await.unwrap();
        client.search(&queries[..32], 10, None).await.map(|r| r.neighbors.len())
    };
    // Every slot: one byte each.
    let mut slow: Vec<_> = (0..16)
        .map(|_| {
            let mut s = connect();
            s.write_all(b"P").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(search().await.unwrap(), 10, "a client gets a slot while one-byte sockets hold them all");
    // They are closed once the handshake timeout passes.
    let started = std::time::Instant::now();
    for s in &mut slow {
        assert!(closed_within(s, Duration::from_secs(4)), "a one-byte socket stayed open");
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    // A full preface and SETTINGS, then never a request: handed to the
    // server, yet evicted when a client needs the slot.
    let preface = [&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..], &[0, 0, 0, 4, 0, 0, 0, 0, 0]].concat();
    let mut idle: Vec<_> = (0..16)
        .map(|_| {
            let mut s = connect();
            s.write_all(&preface).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(search().await.unwrap(), 10, "a client gets a slot while request-less connections hold them all");
    assert!(idle.iter_mut().any(|s| closed_within(s, Duration::from_millis(500))), "none was evicted");
    // Garbage instead of a preface is closed at once.
    let mut junk = connect();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n0123456789").unwrap();
    assert!(closed_within(&mut junk, Duration::from_secs(1)));
    assert!(server.terminate().success());
}

/// (6) A FIFO (or a device) where a manifest, CURRENT, a key file or a
/// certificate should be is refused at once, naming the file: a FIFO
/// manifest used to leave the server NOT_SERVING with no log line, and
/// `fathom info --verify` hung.
#[test]
fn fifos_and_devices_are_refused_not_waited_on() {
    let (idx, _) = fixture("fifo");
    let held = idx.with_file_name("held");
    copy_index(&idx, &held);
    std::fs::remove_file(held.join("manifest.json")).unwrap();
    assert!(Command::new("mkfifo").arg(held.join("manifest.json")).status().unwrap().success());
    let started = std::time::Instant::now();
    let o = fathom(&["info", held.to_str().unwrap(), "--verify"]);
    assert!(!o.status.success() && stderr(&o).contains("manifest.json"), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_fathom"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--index"])
        .arg(&held)
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("manifest.json") && stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    // CURRENT as /dev/zero: refused by type, not read until memory runs out.
    let root = held.with_file_name("root");
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink("/dev/zero", root.join("CURRENT")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_fathom"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--index-root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(!o.status.success() && stderr(&o).contains("CURRENT"), "{}", stderr(&o));
    // An API-keys file that is a FIFO: refused before anything listens.
    let keys = root.join("keys.fifo");
    assert!(Command::new("mkfifo").arg(&keys).status().unwrap().success());
    let o = Command::new(env!("CARGO_BIN_EXE_fathom"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--index"])
        .arg(&idx)
        .arg("--api-keys-file")
        .arg(&keys)
        .output()
        .unwrap();
    assert!(!o.status.success() && stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("fathom listening on"), "checked before listening: {}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Resident memory of a process, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
    kb.unwrap_or(0) * 1024
}

/// (5) Keys are checked on the headers, before a body is read: 48 calls of
/// 15 MB without a key used to grow the server by the bodies (200 such
/// calls: 425 MB -> 2.14 GB) before each was answered UNAUTHENTICATED.
/// (9) The key file is reloaded on SIGHUP: a removed key stops working,
/// an added one starts. (16) `Bearer` is case-insensitive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_checked_before_bodies_and_reload_on_sighup() {
    use fathom_proto::v1::{fathom_client::FathomClient, vector, PackedVector, SearchRequest, Vector};
    let (idx, queries) = fixture("keys");
    let keys = idx.with_file_name("keys");
    std::fs::write(&keys, "old-key-0123456789abcdef\n").unwrap();
    let server = common::Server::start(&idx, &[("FATHOM_API_KEYS_FILE", keys.to_str().unwrap())]);
    let pid = server.child.id();
    let before = rss_bytes(pid);
    let big = SearchRequest {
        vector: Some(Vector {
            data: Some(vector::Data::Packed(PackedVector { element_type: 0, data: vec![7u8; 15 << 20] })),
        }),
        k: 10,
        ..Default::default()
    };
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut calls = Vec::new();
    for _ in 0..48 {
        let (addr, req) = (server.grpc.clone(), big.clone());
        calls.push(tokio::spawn(async move {
            let mut c = FathomClient::connect(addr).await.unwrap().max_encoding_message_size(64 << 20);
            c.search(req).await.unwrap_err().code()
        }));
    }
    for c in calls {
        assert_eq!(c.await.unwrap(), tonic::Code::Unauthenticated);
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let grew = peak.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(before);
    eprintln!("48 x 15 MiB without a key: RSS {} MiB -> peak +{} MiB", before >> 20, grew >> 20);
    assert!(grew < 200 << 20, "RSS grew by {} MiB under unauthenticated bodies", grew >> 20);

    let with = |key: &str| ClientOptions {
        retries: 0,
        api_key: Some(fathom_client::ApiKey(key.into())),
        ..Default::default()
    };
    let q = &queries[..32];
    let old = Client::connect(&server.grpc, with("old-key-0123456789abcdef")).await.unwrap();
    assert_eq!(old.search(q, 10, None).await.unwrap().neighbors.len(), 10);
    // The scheme in any case.
    let mut raw = FathomClient::connect(server.grpc.clone()).await.unwrap();
    let floats = fathom_proto::v1::FloatVector { values: q.to_vec() };
    let mut req = tonic::Request::new(SearchRequest {
        vector: Some(Vector { data: Some(vector::Data::Floats(floats)) }),
        k: 10,
        ..Default::default()
    });
    req.metadata_mut().insert("authorization", "bearer old-key-0123456789abcdef".parse().unwrap());
    assert_eq!(raw.search(req).await.unwrap().into_inner().neighbors.len(), 10);
    // Rotate: the old key goes, a new one comes; SIGHUP.
    std::fs::write(&keys, "new-key-0123456789abcdef\n").unwrap();
    Command::new("sh").args(["-c", &format!("kill -HUP {pid}")]).status().unwrap();
    let t = std::time::Instant::now();
    let new = Client::connect(&server.grpc, with("new-key-0123456789abcdef")).await.unwrap();
    while new.search(q, 10, None).await.is_err() {
        assert!(t.elapsed() < Duration::from_secs(5), "the new key never worked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let e = old.search(q, 10, None).await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::Unauthenticated), "{e}");
    // A broken file keeps the current keys.
    std::fs::write(&keys, "short\n").unwrap();
    Command::new("sh").args(["-c", &format!("kill -HUP {pid}")]).status().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(new.search(q, 10, None).await.unwrap().neighbors.len(), 10);
    let m = server.http_get("/metrics");
    assert!(m.contains("fathom_requests_total{method=\"Search\",code=\"UNAUTHENTICATED\"}"), "refusals are counted");
    assert!(server.terminate().success());
}

/// (7, 8) Requests are refused up front when what they could read (pages:
/// block_pages, k and prefetch count, not only postings) or send back (k x
/// queries) is over the caps: the first read 2.3 GB in 5.1 s inside the
/// old caps, the second did 6.7 s of work and then failed OUT_OF_RANGE,
/// counted as OK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costly_requests_and_oversized_answers_are_refused_before_the_work() {
    use fathom_proto::v1::{
        fathom_client::FathomClient, vector, BatchSearchRequest, FloatVector, SearchSettings, Vector,
    };
    let (idx, queries) = fixture("costs");
    let server = common::Server::start(&idx, &[]);
    let mut c = FathomClient::connect(server.grpc.clone()).await.unwrap();
    let batch = |k: u32, settings: Option<SearchSettings>| BatchSearchRequest {
        vectors: (0..1024)
            .map(|i| Vector {
                data: Some(vector::Data::Floats(FloatVector { values: queries[(i % 100) * 32..][..32].to_vec() })),
            })
            .collect(),
        k,
        settings,
        ..Default::default()
    };
    let attack = SearchSettings {
        max_postings: Some(96),
        rerank: Some(128),
        block_pages: Some(32),
        eps2: Some(1e30),
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let e = c.batch_search(batch(1000, Some(attack))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("block_pages") && e.message().contains("max_request_pages"), "{}", e.message());
    let e = c.batch_search(batch(1000, None)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("max_message_bytes") || e.message().contains("max_request_pages"), "{}", e.message());
    assert!(t.elapsed() < Duration::from_secs(2), "refused up front, took {:?}", t.elapsed());
    // The answer cap alone: k = 1,000 for 1,024 queries with the page cap lifted.
    drop(server);
    let server = common::Server::start(&idx, &[("FATHOM_MAX_REQUEST_PAGES", "100000000")]);
    let mut c = FathomClient::connect(server.grpc.clone()).await.unwrap();
    let e = c.batch_search(batch(1000, None)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("max_message_bytes"), "{}", e.message());
    // A batch at the defaults still answers.
    assert_eq!(c.batch_search(batch(10, None)).await.unwrap().into_inner().results.len(), 1024);
    let m = server.http_get("/metrics");
    assert!(m.contains("fathom_requests_total{method=\"BatchSearch\",code=\"RESOURCE_EXHAUSTED\"}"), "counted");
    assert!(server.terminate().success());
}

/// A CA, and a server certificate from it valid (or expired when `expired`).
fn certs(dir: &Path, ca: &(rcgen::Certificate, rcgen::KeyPair), expired: bool) -> (PathBuf, PathBuf) {
    use rcgen::{CertificateParams, KeyPair};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = params.signed_by(&key, &ca.0, &ca.1).unwrap();
    let tag = if expired { "expired" } else { "valid" };
    let (c, k) = (dir.join(format!("{tag}.pem")), dir.join(format!("{tag}.key")));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

/// (10) An expired certificate is warned about at start and refused on
/// reload (the current one keeps serving); it used to be logged as
/// reloaded, and every client then failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificates_are_warned_at_start_and_refused_on_reload() {
    use std::io::BufRead;
    let (idx, queries) = fixture("expired");
    let d = idx.with_file_name("tls");
    std::fs::create_dir_all(&d).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = (ca_params.self_signed(&ca_key).unwrap(), ca_key);
    let (good_cert, good_key) = certs(&d, &ca, false);
    let (old_cert, old_key) = certs(&d, &ca, true);
    // At start: served, with a warning that names the expiry.
    let mut child = Command::new(env!("CARGO_BIN_EXE_fathom"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--index"])
        .arg(&idx)
        .arg("--tls-cert")
        .arg(&old_cert)
        .arg("--tls-key")
        .arg(&old_key)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut warned = false;
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        warned |= line.contains("expired");
        if line.contains("fathom listening on") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(warned, "no warning about the expired certificate at start");
    // On reload: refused, the valid one keeps serving.
    let live_cert = d.join("live.pem");
    let live_key = d.join("live.key");
    std::fs::copy(&good_cert, &live_cert).unwrap();
    std::fs::copy(&good_key, &live_key).unwrap();
    let env = [("FATHOM_TLS_CERT", live_cert.to_str().unwrap()), ("FATHOM_TLS_KEY", live_key.to_str().unwrap())];
    let server = common::Server::start(&idx, &env);
    let addr = server.grpc.replace("http://", "https://");
    let opts = || ClientOptions {
        retries: 0,
        tls_ca_pem: Some(ca.0.pem().into_bytes()),
        request_timeout: Some(Duration::from_secs(3)),
        ..Default::default()
    };
    let works =
        || async { Client::connect(&addr, opts()).await.unwrap().search(&queries[..32], 10, None).await.is_ok() };
    assert!(works().await);
    std::fs::copy(&old_cert, &live_cert).unwrap();
    std::fs::copy(&old_key, &live_key).unwrap();
    Command::new("sh").args(["-c", &format!("kill -HUP {}", server.child.id())]).status().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(works().await, "the expired certificate replaced the valid one");
    assert!(server.terminate().success());
}

/// (15) Connection errors say why (the cause chain), a missing scheme is
/// named, and `--listen` takes host names. (17) An unreadable
/// FATHOM_TLS_CA is an error naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_name_their_cause_and_listen_takes_host_names() {
    let e = Client::connect("127.0.0.1:1", ClientOptions::default()).await.unwrap_err();
    assert!(e.to_string().contains("http://127.0.0.1:1"), "{e}");
    let e =
        Client::connect("http://127.0.0.1:1", ClientOptions { retries: 0, ..Default::default() }).await.unwrap_err();
    assert!(e.to_string().to_lowercase().contains("refused"), "{e}");
    let (idx, queries) = fixture("hostnames");
    let server = common::Server::serve_on(&idx, "localhost:0", &[], &[]);
    let c = Client::connect(&server.grpc, ClientOptions::default()).await.unwrap();
    assert_eq!(c.search(&queries[..32], 10, None).await.unwrap().neighbors.len(), 10);
    let q = idx.with_file_name("q.fbin");
    write_fbin(&q, 32, &queries[..64]);
    let o = Command::new(env!("CARGO_BIN_EXE_fathom"))
        .args(["search", "--addr", &server.grpc.replace("http://", "https://"), "--query"])
        .arg(&q)
        .env("FATHOM_TLS_CA", "/nonexistent/ca.pem")
        .output()
        .unwrap();
    assert!(!o.status.success() && stderr(&o).contains("FATHOM_TLS_CA /nonexistent/ca.pem"), "{}", stderr(&o));
    assert!(server.terminate().success());
}

/// (14) `fathom search` takes search settings, goes on past a query the
/// server refuses (a line with its error; exit non-zero), and prints the
/// coverage a router reports. (16) A batch's error names its query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fathom_search_goes_on_after_errors_and_shows_coverage() {
    let (idx, queries) = fixture("search-cli");
    let server = common::Server::start(&idx, &[]);
    let mut rows = queries[..96].to_vec();
    rows[32 + 5] = f32::NAN;
    let q = idx.with_file_name("q.fbin");
    write_fbin(&q, 32, &rows);
    let search = |addr: &str| {
        Command::new(env!("CARGO_BIN_EXE_fathom"))
            .args(["search", "--addr", addr, "--rerank", "50", "--max-postings", "16", "--query"])
            .arg(&q)
            .output()
            .unwrap()
    };
    let o = search(&server.grpc);
    assert!(!o.status.success());
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "every query has its line");
    assert_eq!(lines[0]["ids"].as_array().unwrap().len(), 10);
    assert_eq!(lines[1]["code"], "InvalidArgument", "{}", lines[1]);
    assert_eq!(lines[2]["ids"].as_array().unwrap().len(), 10);
    assert!(stderr(&o).contains("1 of 3 queries failed"), "{}", stderr(&o));
    // Through a router: coverage on every line.
    let router = common::Server::route(server.addr(), &[]);
    let t = std::time::Instant::now();
    let covered = loop {
        let o = search(&router.grpc);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        if out.lines().next().is_some_and(|l| l.contains("shards_answered")) {
            break out;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no coverage through the router: {out}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(covered.contains("\"shards_total\":1"), "{covered}");
    // A batch names the query the engine refused.
    let c = Client::connect(&server.grpc, ClientOptions::default()).await.unwrap();
    let mut batch: Vec<Vec<f32>> = (0..4).map(|i| queries[i * 32..(i + 1) * 32].to_vec()).collect();
    batch[2].push(1.0);
    let e = c.batch_search(&batch, 10, None).await.unwrap_err();
    assert!(e.to_string().contains("vectors[2]"), "{e}");
    assert!(server.terminate().success());
}

/// (17) The client retries RESOURCE_EXHAUSTED where the server says a retry
/// may succeed (a key's rate), with backoff; never the cost caps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_retries_what_the_server_says_may_succeed() {
    let (idx, queries) = fixture("retry");
    let keys = idx.with_file_name("keys");
    std::fs::write(&keys, "rated-key-0123456789ab read 5/s\n").unwrap();
    let server = common::Server::start(&idx, &[("FATHOM_API_KEYS_FILE", keys.to_str().unwrap())]);
    let opts = |retries| ClientOptions {
        retries,
        backoff: Duration::from_millis(100),
        api_key: Some(fathom_client::ApiKey("rated-key-0123456789ab".into())),
        ..Default::default()
    };
    let q = &queries[..32];
    let patient = Client::connect(&server.grpc, opts(4)).await.unwrap();
    for i in 0..10 {
        let r = patient.search(q, 10, None).await;
        assert!(r.is_ok(), "call {i}: {:?}", r.err());
    }
    let hasty = Client::connect(&server.grpc, opts(0)).await.unwrap();
    let mut failed = 0;
    for _ in 0..10 {
        if let Err(e) = hasty.search(q, 10, None).await {
            assert_eq!(e.code(), Some(fathom_client::Code::ResourceExhausted));
            failed += 1;
        }
    }
    assert!(failed > 0, "without retries the rate shows");
    // A cost cap is not retried: answered at once.
    let costly = fathom_client::SearchSettings { max_postings: Some(100_000), ..Default::default() };
    let t = std::time::Instant::now();
    let e = patient.search(q, 10, Some(costly)).await.unwrap_err();
    assert_eq!(e.code(), Some(fathom_client::Code::ResourceExhausted));
    assert!(t.elapsed() < Duration::from_millis(300), "a cost cap was retried: {:?}", t.elapsed());
    assert!(server.terminate().success());
}

/// (16) Small things a new user meets: an environment variable of the
/// wrong type is named; `info --full` needs `--json`; bench needs --index
/// or --addr; `info --verify` names the damaged page; `swap_verify = full`
/// refuses a damaged version before serving it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_things_a_new_user_meets() {
    let (idx, _) = fixture("small");
    let o = Command::new(env!("CARGO_BIN_EXE_fathom"))
        .args(["serve", "--index"])
        .arg(&idx)
        .env("FATHOM_WORKERS", "abc")
        .output()
        .unwrap();
    assert!(!o.status.success() && stderr(&o).contains("FATHOM_WORKERS"), "{}", stderr(&o));
    let o = fathom(&["info", idx.to_str().unwrap(), "--full"]);
    assert!(!o.status.success() && stderr(&o).contains("--json"), "{}", stderr(&o));
    let o = fathom(&["bench", "--queries", "q.fbin", "--gt", "gt.ibin"]);
    assert!(!o.status.success() && stderr(&o).contains("--index") && stderr(&o).contains("--addr"), "{}", stderr(&o));
    // A damaged vector page, named.
    let root = idx.with_file_name("root");
    let (v1, v2) = (root.join("v1"), root.join("v2"));
    for v in [&v1, &v2] {
        copy_index(&idx, v);
    }
    let vectors = v2.join("vectors.bin");
    let mut bytes = std::fs::read(&vectors).unwrap();
    bytes[4096 * 3 + 100] ^= 0x40;
    std::fs::write(&vectors, bytes).unwrap();
    let o = fathom(&["info", v2.to_str().unwrap(), "--verify"]);
    assert!(!o.status.success() && stderr(&o).contains("vector page 2"), "{}", stderr(&o));
    // swap_verify = full keeps serving v1.
    std::fs::write(root.join("CURRENT"), "v1\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fathom"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--workers", "2"]);
    cmd.arg("--index-root").arg(&root).env("FATHOM_SWAP_VERIFY", "full");
    let server = common::Server::spawn_cmd(cmd, "fathom serving on ");
    let c = Client::connect(&server.grpc, ClientOptions::default()).await.unwrap();
    assert_eq!(c.index_info().await.unwrap().index_version, "v1");
    std::fs::write(root.join("CURRENT"), "v2\n").unwrap();
    Command::new("sh").args(["-c", &format!("kill -HUP {}", server.child.id())]).status().unwrap();
    let t = std::time::Instant::now();
    while !server.http_get("/metrics").contains("fathom_index_swaps_total{result=\"refused\"} 1") {
        assert!(t.elapsed() < Duration::from_secs(10), "the damaged version was not refused");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(c.index_info().await.unwrap().index_version, "v1");
    assert!(server.terminate().success());
}

/// (16) Header bytes 30 and 70 (reserved, zero) were under no checksum: a
/// flipped bit there passed. Now every reserved header byte must be zero.
#[test]
fn reserved_header_bytes_are_checked() {
    let (idx, _) = fixture("header");
    for (file, at) in [("postings.bin", 30usize), ("vectors.bin", 70), ("centroids.bin", 30), ("directory.bin", 40)] {
        let copy = idx.with_file_name(format!("flip-{file}-{at}"));
        copy_index(&idx, &copy);
        let path = copy.join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at] ^= 0x08;
        std::fs::write(&path, bytes).unwrap();
        let e = fathom_index::Index::open(&copy, fathom_index::OpenOptions::default()).err().expect("opened");
        assert!(e.to_string().contains(&format!("header byte {at} is reserved")), "{file}: {e}");
    }
}

/// (16) While requests in flight finish after SIGTERM, a new connection is
/// answered (health NOT_SERVING, searches UNAVAILABLE) rather than reset;
/// the request in flight completes and the server exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_during_drain_are_answered_not_reset() {
    use fathom_proto::v1::{
        fathom_client::FathomClient, vector, BatchSearchRequest, FloatVector, SearchSettings, Vector,
    };
    use tonic_health::pb::health_check_response::ServingStatus;
    let (idx, queries) = fixture("drain");
    let env = [
        ("FATHOM_WORKERS", "1"),
        ("FATHOM_MAX_REQUEST_PAGES", "1000000000"),
        ("FATHOM_MAX_REQUEST_POSTINGS", "1000000000"),
        ("FATHOM_MAX_REQUEST_RERANK", "1000000000"),
        ("FATHOM_MAX_MESSAGE_BYTES", "268435456"),
        ("FATHOM_DRAIN_TIMEOUT_MS", "60000"),
    ];
    let server = common::Server::start(&idx, &env);
    // A long batch: every posting of every query, a deep rerank.
    let slow = BatchSearchRequest {
        vectors: (0..384)
            .map(|i| Vector {
                data: Some(vector::Data::Floats(FloatVector { values: queries[(i % 100) * 32..][..32].to_vec() })),
            })
            .collect(),
        k: 1000,
        settings: Some(SearchSettings {
            max_postings: Some(100_000),
            eps2: Some(1e30),
            rerank: Some(2000),
            ..Default::default()
        }),
        ..Default::default()
    };
    let addr = server.grpc.clone();
    let in_flight = tokio::spawn(async move {
        let mut c = FathomClient::connect(addr).await.unwrap().max_decoding_message_size(256 << 20);
        let t = std::time::Instant::now();
        let r = c.batch_search(slow).await.map(|r| r.into_inner().results.len());
        (r, t.elapsed())
    });
    // SIGTERM once the batch is being served (on a loaded machine it may
    // take a while to arrive).
    let t = std::time::Instant::now();
    while !server.http_get("/metrics").contains("fathom_in_flight_requests 1") {
        assert!(t.elapsed() < Duration::from_secs(20), "the batch never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Command::new("sh").args(["-c", &format!("kill -TERM {}", server.child.id())]).status().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!in_flight.is_finished(), "the batch finished too soon to test the drain");
    let channel = tonic::transport::Endpoint::from_shared(server.grpc.clone()).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
    assert_eq!(status.into_inner().status, ServingStatus::NotServing as i32);
    let floats = FloatVector { values: queries[..32].to_vec() };
    let req = fathom_proto::v1::SearchRequest {
        vector: Some(Vector { data: Some(vector::Data::Floats(floats)) }),
        k: 10,
        ..Default::default()
    };
    let e = FathomClient::new(channel).search(req).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    let (r, took) = in_flight.await.unwrap();
    assert_eq!(r.unwrap(), 384, "the request in flight completes");
    eprintln!("the drained batch took {took:?}");
    let mut server = server;
    let status = server.child.wait().unwrap();
    assert!(status.success());
}

/// (5) Memory is given back after a burst of large authenticated requests
/// (they are decoded, then refused for their dimension): a server used to
/// hold 720 MiB after 200 calls of 15.6 MB (glibc keeps freed large blocks;
/// the server now runs with a fixed mmap threshold, malloc_env.rs), and the
/// bytes being received at once are bounded by decode_budget_bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_is_given_back_after_large_requests() {
    use fathom_proto::v1::{fathom_client::FathomClient, vector, FloatVector, SearchRequest, Vector};
    let (idx, _) = fixture("giveback");
    let server = common::Server::start(&idx, &[]);
    let pid = server.child.id();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(String::from_utf8_lossy(&environ).contains("MALLOC_MMAP_THRESHOLD_=1048576"), "not re-executed");
    let before = rss_bytes(pid);
    let big = SearchRequest {
        vector: Some(Vector { data: Some(vector::Data::Floats(FloatVector { values: vec![1.0; 3_900_000] })) }),
        k: 10,
        ..Default::default()
    };
    let mut calls = Vec::new();
    for _ in 0..100 {
        let (addr, req) = (server.grpc.clone(), big.clone());
        calls.push(tokio::spawn(async move {
            let mut c = FathomClient::connect(addr).await.unwrap().max_encoding_message_size(64 << 20);
            c.search(req).await.unwrap_err().code()
        }));
    }
    for c in calls {
        let code = c.await.unwrap();
        assert!(matches!(code, tonic::Code::InvalidArgument | tonic::Code::ResourceExhausted), "{code:?}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_bytes(pid);
    eprintln!("100 x 15.6 MB decoded: RSS {} MiB before, {} MiB after", before >> 20, after >> 20);
    assert!(after < before + (150 << 20), "held {} MiB after the burst", (after - before) >> 20);
    assert!(server.terminate().success());
}

/// (13) `fathom serve` opens an index under a path that is not UTF-8, as
/// build, info and bench do (the configuration layers carry text; flags'
/// paths now go around them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_opens_non_utf8_paths() {
    use std::os::unix::ffi::OsStrExt;
    let (idx, queries) = fixture("non-utf8");
    let odd = idx.with_file_name(std::ffi::OsStr::from_bytes(b"idx-\xff\xfe"));
    copy_index(&idx, &odd);
    let server = common::Server::start(&odd, &[]);
    let c = Client::connect(&server.grpc, ClientOptions::default()).await.unwrap();
    assert_eq!(c.search(&queries[..32], 10, None).await.unwrap().neighbors.len(), 10);
    assert!(server.terminate().success());
}

/// (16) A `CURRENT` naming a symlink out of the root is refused; a flipped
/// bit in a file's format version is called damage, not a newer release;
/// a build's log (not a terminal) says a stage that counts nothing
/// finished, not `done=0`.
#[test]
fn symlinks_out_of_the_root_flipped_versions_and_progress_lines() {
    let (idx, _) = fixture("misc");
    let root = idx.with_file_name("root-out");
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(&idx, root.join("v1")).unwrap();
    std::fs::write(root.join("CURRENT"), "v1\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_fathom"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--index-root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(!o.status.success() && stderr(&o).contains("leads out of"), "{}", stderr(&o));
    // Version 6 with bit 4 of its second byte flipped: 4102.
    let copy = idx.with_file_name("flipped-version");
    copy_index(&idx, &copy);
    let path = copy.join("postings.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[9] ^= 0x10;
    std::fs::write(&path, bytes).unwrap();
    let e = fathom_index::Index::open(&copy, fathom_index::OpenOptions::default()).err().expect("opened");
    assert!(e.to_string().contains("damaged") && !e.to_string().contains("upgrade"), "{e}");
    // Progress lines of a build whose stderr is not a terminal.
    let base = idx.with_file_name("base.fbin");
    let out = idx.with_file_name("idx-progress");
    let o = fathom(&["build", "--input", base.to_str().unwrap(), "--metric", "l2", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("stage=vectors finished"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("stage=vectors done=0"), "{}", stderr(&o));
}
