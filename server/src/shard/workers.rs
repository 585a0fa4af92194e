//! Search worker threads. Each owns a searcher (and so its own io_uring
//! ring) and takes jobs from one bounded queue; the async handlers never
//! run a search themselves. A full queue is refused at once.

use crate::ops::metrics::Metrics;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use fathom_index::{Index, IndexError, Neighbor, SearchSettings, SearchStats};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

pub type JobResult = Result<Vec<(Vec<Neighbor>, SearchStats)>, JobError>;

#[derive(Debug)]
pub enum JobError {
    /// The engine refused query `query` (its index in the request).
    Engine { query: usize, error: IndexError },
    /// The deadline passed before the work was done; it was abandoned.
    DeadlineExceeded,
}

pub struct Job {
    pub queries: Vec<crate::net::validate::QueryVec>,
    pub k: usize,
    pub settings: SearchSettings,
    pub deadline: Option<Instant>,
    /// When the job was queued (for the queue-wait metric).
    pub queued_at: Instant,
    pub reply: oneshot::Sender<JobResult>,
}

/// The job queue had no room.
#[derive(Debug)]
pub struct QueueFull;

pub struct Pool {
    tx: Sender<Job>,
    rx: Receiver<Job>,
}

impl Pool {
    /// Starts `workers` threads over `index` with room for `queue_depth` jobs.
    pub fn start(index: Arc<Index>, workers: usize, queue_depth: usize, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let (tx, rx) = bounded::<Job>(queue_depth);
        for w in 0..workers {
            let mut searcher = index.searcher()?;
            let rx = rx.clone();
            let metrics = metrics.clone();
            std::thread::Builder::new().name(format!("fathom-search-{w}")).spawn(move || {
                for job in rx.iter() {
                    metrics.queue_depth.set(rx.len() as i64);
                    metrics.observe_queue_wait(job.queued_at);
                    let result = run(&mut searcher, &job, &metrics);
                    let _ = job.reply.send(result);
                }
            })?;
        }
        Ok(Pool { tx, rx })
    }

    /// Queues a job, or refuses it (dropping it) when the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), QueueFull> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Err(QueueFull),
        }
    }

    pub fn queued(&self) -> usize {
        self.rx.len()
    }
}

fn run(searcher: &mut fathom_index::Searcher, job: &Job, metrics: &Metrics) -> JobResult {
    let mut out = Vec::with_capacity(job.queries.len());
    for (i, q) in job.queries.iter().enumerate() {
        if job.deadline.is_some_and(|d| Instant::now() >= d) || job.reply.is_closed() {
            return Err(JobError::DeadlineExceeded);
        }
        let (found, stats) = searcher
            .search_query(q.as_query(), job.k, &job.settings)
            .map_err(|error| JobError::Engine { query: i, error })?;
        metrics.observe_search(&stats);
        out.push((found, stats));
    }
    Ok(out)
}
