//! The server's own deadline path, in process (issue 13): a client's 1 µs
//! timeout used to pass on the client alone, so the worker's check never
//! ran. Here the service and the worker pool run without a network, and
//! the worker's search counter shows what it did.

use fathom_index::build::NoProgress;
use fathom_index::{BuildParams, Index, OpenOptions, SearchSettings};
use fathom_proto::v1::fathom_server::Fathom;
use fathom_proto::v1::{self as pb};
use fathom_server::net::validate::{Limits, QueryVec};
use fathom_server::ops::metrics::Metrics;
use fathom_server::shard::service::FathomService;
use fathom_server::shard::swap::Ready;
use fathom_server::shard::workers::{Job, JobError, Pool};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const DIM: usize = 16;

fn index(name: &str) -> Arc<Index> {
    let dir = std::env::temp_dir().join(format!("fathom-deadline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("base.fbin");
    fathom_index::synth::Mixture { dim: DIM, clusters: 20, seed: 3 }.write_fbin(&base, 0, 5_000).unwrap();
    fathom_index::build(&base, &dir.join("idx"), &BuildParams::default(), &NoProgress).unwrap();
    Index::open(&dir.join("idx"), OpenOptions::default()).unwrap()
}

fn job(n: usize, deadline: Instant) -> (Job, oneshot::Receiver<fathom_server::shard::workers::JobResult>) {
    let (reply, rx) = oneshot::channel();
    let q: Vec<f32> = (0..DIM).map(|i| i as f32 / DIM as f32).collect();
    let job = Job {
        queries: vec![QueryVec::Floats(q); n],
        k: 10,
        settings: SearchSettings::default(),
        deadline: Some(deadline),
        queued_at: Instant::now(),
        reply,
    };
    (job, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_abandons_work_past_its_deadline() {
    let ix = index("pool");
    let metrics = Arc::new(Metrics::default());
    let pool = Pool::start(ix, 1, 8, metrics.clone()).unwrap();

    // Already late when the worker takes it: nothing is searched.
    let (j, rx) = job(1, Instant::now());
    assert!(pool.submit(j).is_ok());
    assert!(matches!(rx.await.unwrap(), Err(JobError::DeadlineExceeded)));
    assert_eq!(metrics.searches(), 0, "a late job is not searched");

    // A batch far longer than its deadline (seconds of work against 200 ms):
    // the worker stops between queries. The deadline is set once the job is
    // built, so that building it does not eat into it.
    let n = 200_000;
    let (mut j, rx) = job(n, Instant::now());
    j.deadline = Some(Instant::now() + Duration::from_millis(200));
    assert!(pool.submit(j).is_ok());
    assert!(matches!(rx.await.unwrap(), Err(JobError::DeadlineExceeded)));
    let searched = metrics.searches();
    assert!(searched > 0 && searched < n as u64, "searched {searched} of {n}");

    // In time: answered in full.
    let (j, rx) = job(3, Instant::now() + Duration::from_secs(60));
    assert!(pool.submit(j).is_ok());
    assert_eq!(rx.await.unwrap().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_is_deadline_exceeded_and_not_searched() {
    let ix = index("service");
    let metrics = Arc::new(Metrics::default());
    let pool = Pool::start(ix.clone(), 1, 8, metrics.clone()).unwrap();
    let served = Arc::new(fathom_server::shard::swap::Served::default());
    served.set(Ready { index: ix, pool }, &metrics);
    let svc = FathomService {
        served,
        draining: Arc::new(AtomicBool::new(false)),
        metrics: metrics.clone(),
        limits: Limits::new(1000, 1024),
        defaults: fathom_index::SearchOverrides::default(),
    };
    let vector = |v: Vec<f32>| pb::Vector { data: Some(pb::vector::Data::Floats(pb::FloatVector { values: v })) };
    let request = || pb::SearchRequest { vector: Some(vector(vec![0.5; DIM])), k: 10, ..Default::default() };

    let mut late = tonic::Request::new(request());
    late.metadata_mut().insert("grpc-timeout", "1u".parse().unwrap());
    let e = svc.search(late).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::DeadlineExceeded, "{e:?}");
    // The worker saw the job after its deadline and did not search it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(metrics.searches(), 0);

    let mut in_time = tonic::Request::new(request());
    in_time.metadata_mut().insert("grpc-timeout", "10S".parse().unwrap());
    assert_eq!(svc.search(in_time).await.unwrap().into_inner().neighbors.len(), 10);
    assert_eq!(metrics.searches(), 1);
}
