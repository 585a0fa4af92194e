//! Engine errors -> gRPC status, in one exhaustive match.

use fathom_index::{BuildError, FormatError, IndexError};
use std::time::{Duration, Instant};
use tonic::{Response, Status};

/// Ends a request: counts it (`observe` gets method, code, latency), logs
/// a failure at debug, wraps the answer.
pub fn finish<T>(
    method: &'static str,
    started: Instant,
    r: Result<T, Status>,
    observe: impl FnOnce(&'static str, tonic::Code, Duration),
) -> Result<Response<T>, Status> {
    let code = r.as_ref().map_or_else(|s| s.code(), |_| tonic::Code::Ok);
    observe(method, code, started.elapsed());
    if let Err(s) = &r {
        tracing::debug!(method, code = ?s.code(), message = s.message(), "request failed");
    }
    r.map(Response::new)
}

pub fn to_status(e: &IndexError) -> Status {
    match e {
        IndexError::Query(q) => Status::invalid_argument(q.to_string()),
        IndexError::Format(f) => match f {
            FormatError::Checksum { .. } | FormatError::Corrupt { .. } => {
                tracing::error!("index data damaged: {f}");
                Status::data_loss(format!("index data is damaged: {f}"))
            }
            FormatError::BadMagic { .. } | FormatError::UnsupportedVersion { .. } | FormatError::BadInput { .. } => {
                tracing::error!("index file problem: {f}");
                Status::internal("index file problem; see server log")
            }
            FormatError::Io { .. } => {
                tracing::error!("I/O error: {f}");
                Status::internal("I/O error; see server log")
            }
        },
        IndexError::Backend(b) => {
            tracing::error!("I/O backend: {b}");
            Status::internal("I/O backend error; see server log")
        }
        IndexError::Build(b) => {
            let b: &BuildError = b;
            tracing::error!("unexpected build error in server: {b}");
            Status::internal("internal error; see server log")
        }
    }
}
