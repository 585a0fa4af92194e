//! Index swaps under load: `fathom serve --index-root` moves to the version
//! CURRENT names on SIGHUP with no failed request; an incompatible or
//! missing version is refused and the old one keeps serving.

mod common;

use common::Server;
use fathom_client::{Client, ClientOptions};
use fathom_index::build::NoProgress;
use fathom_index::synth::Mixture;
use fathom_index::BuildParams;
use fathom_proto::v1::fathom_client::FathomClient;
use fathom_proto::v1::{vector, FloatVector, SearchRequest, Vector};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const DIM: usize = 16;
const N: u64 = 4_000;
const V2_IDS: u64 = 1_000_000_000;

fn write_ids(path: &Path, first: u64) {
    let mut b = [(N as u32).to_le_bytes(), 1u32.to_le_bytes()].concat();
    (0..N).for_each(|r| b.extend_from_slice(&(first + r).to_le_bytes()));
    std::fs::write(path, b).unwrap();
}

fn point_to(root: &Path, version: &str) {
    let tmp = root.join("CURRENT.tmp");
    std::fs::write(&tmp, format!("{version}\n")).unwrap();
    std::fs::rename(&tmp, root.join("CURRENT")).unwrap();
}

fn hup(s: &Server) {
    Command::new("sh").args(["-c", &format!("kill -HUP {}", s.child.id())]).status().unwrap();
}

fn metric(s: &Server, prefix: &str) -> Option<u64> {
    let m = s.http_get("/metrics");
    m.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn until_metric(s: &Server, prefix: &str, want: u64) {
    for _ in 0..200 {
        if metric(s, prefix) == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{prefix} never reached {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_under_load_without_failures_and_refuses_what_clients_cannot_use() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("swap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let m = Mixture { dim: DIM, clusters: 30, seed: 5 };
    let base = root.join("base.fbin");
    m.write_fbin(&base, 0, N).unwrap();
    let build = |name: &str, input: &Path, first_id: u64| -> PathBuf {
        let ids = root.join(format!("{name}.u64bin"));
        write_ids(&ids, first_id);
        // v2 holds one copy of each vector: its default settings differ.
        let replicas = if name == "v2" { 1 } else { BuildParams::default().replicas };
        let p = BuildParams { ids_file: Some(ids), replicas, ..BuildParams::default() };
        fathom_index::build(input, &root.join(name), &p, &NoProgress).unwrap();
        root.join(name)
    };
    build("v1", &base, 0);
    build("v2", &base, V2_IDS);
    let narrow = root.join("narrow.fbin");
    Mixture { dim: 8, clusters: 30, seed: 5 }.write_fbin(&narrow, 0, N).unwrap();
    build("v3-narrow", &narrow, 0);
    point_to(&root, "v1");

    let server = Server::serve_root(&root);
    let client = Client::connect(&server.grpc, ClientOptions { retries: 50, ..Default::default() }).await.unwrap();
    let q: Vec<f32> = m.rows(1, 0, 4);
    assert!(client.search(&q[..DIM], 5, None).await.unwrap().neighbors.iter().all(|n| n.id < V2_IDS));
    let info = client.index_info().await.unwrap();
    assert_eq!(info.index_version, "v1");
    let max_postings = |i: &fathom_proto::v1::IndexInfo| i.default_settings.as_ref().and_then(|s| s.max_postings);
    assert_eq!(max_postings(&info), Some(32));

    // Steady load from four clients while the version changes.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for c in 0..4 {
        let (client, stop, q) = (client.clone(), stop.clone(), q[c * DIM..(c + 1) * DIM].to_vec());
        load.push(tokio::spawn(async move {
            let (mut failed, mut new_answers, mut total) = (Vec::new(), 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                match client.search(&q, 5, None).await {
                    Ok(r) => {
                        total += 1;
                        let from_v2 = r.neighbors.iter().all(|n| n.id >= V2_IDS);
                        assert!(from_v2 || r.neighbors.iter().all(|n| n.id < V2_IDS), "one version per answer");
                        new_answers += from_v2 as u64;
                    }
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (failed, new_answers, total)
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    point_to(&root, "v2");
    hup(&server);
    until_metric(&server, "fathom_index_swaps_total{result=\"ok\"}", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for l in load {
        let (failed, new_answers, n) = l.await.unwrap();
        assert!(failed.is_empty(), "{failed:?}");
        assert!(new_answers > 0, "answers come from the new version");
        total += n;
    }
    assert!(total > 40, "{total} requests");
    assert!(client.search(&q[..DIM], 5, None).await.unwrap().neighbors.iter().all(|n| n.id >= V2_IDS));
    let info = client.index_info().await.unwrap();
    assert_eq!(info.index_version, "v2");
    assert_eq!(max_postings(&info), Some(96), "the defaults follow the index served");
    assert!(server.http_get("/metrics").contains("fathom_index_info{version=\"v2\""));
    // The replaced version still answers requests that name its collection
    // (a router mid-rollout); an unknown collection is refused.
    assert_ne!(info.previous_collection_id, info.collection_id);
    let mut raw = FathomClient::connect(server.grpc.clone()).await.unwrap();
    let ask = |collection: &str| SearchRequest {
        vector: Some(Vector { data: Some(vector::Data::Floats(FloatVector { values: q[..DIM].to_vec() })) }),
        k: 5,
        settings: None,
        collection_id: collection.to_string(),
    };
    let old = raw.search(ask(&info.previous_collection_id)).await.unwrap().into_inner();
    assert!(old.neighbors.iter().all(|n| n.id < V2_IDS), "answered by v1");
    let new = raw.search(ask(&info.collection_id)).await.unwrap().into_inner();
    assert!(new.neighbors.iter().all(|n| n.id >= V2_IDS), "answered by v2");
    let st = raw.search(ask("0123456789abcdef")).await.unwrap_err();
    assert_eq!(st.code(), tonic::Code::FailedPrecondition, "{st:?}");

    // Another dimension: refused, v2 keeps serving.
    point_to(&root, "v3-narrow");
    hup(&server);
    until_metric(&server, "fathom_index_swaps_total{result=\"refused\"}", 1).await;
    assert_eq!(client.index_info().await.unwrap().index_version, "v2");
    assert_eq!(client.search(&q[..DIM], 5, None).await.unwrap().neighbors.len(), 5);
    // A version that does not exist: failed, v2 keeps serving.
    point_to(&root, "v9");
    hup(&server);
    until_metric(&server, "fathom_index_swaps_total{result=\"failed\"}", 1).await;
    assert_eq!(client.index_info().await.unwrap().index_version, "v2");
    assert!(server.http_get("/readyz").starts_with("HTTP/1.1 200"));
    assert!(server.terminate().success());
}
