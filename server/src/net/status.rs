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

/// The metadata key on a RESOURCE_EXHAUSTED answer that a retry may
/// succeed (a full queue, a key's rate, the decode budget), with the
/// milliseconds to wait at least; the answers over a cost cap carry none
/// (the same request would fail again).
pub const RETRY_AFTER_MS: &str = "fathom-retry-after-ms";

/// RESOURCE_EXHAUSTED that a client may retry after a short wait.
pub fn retry_later(message: impl Into<String>) -> Status {
    let mut st = Status::resource_exhausted(message);
    st.metadata_mut().insert(RETRY_AFTER_MS, tonic::metadata::MetadataValue::from(50u32));
    st
}

/// The last component of a path: what a client may be told of a file.
fn file_name(p: &std::path::Path) -> String {
    p.file_name().map_or_else(|| "an index file".into(), |n| n.to_string_lossy().into_owned())
}

pub fn to_status(e: &IndexError) -> Status {
    match e {
        IndexError::Query(q) => Status::invalid_argument(q.to_string()),
        IndexError::Format(f) => match f {
            // The client learns which file and part, never the server's paths.
            FormatError::Checksum { path, section, .. } => {
                tracing::error!("index data damaged: {f}");
                Status::data_loss(format!(
                    "index data is damaged: checksum mismatch in {section} of {}",
                    file_name(path)
                ))
            }
            FormatError::Corrupt { path, offset, .. } => {
                tracing::error!("index data damaged: {f}");
                Status::data_loss(format!("index data is damaged: {} is corrupt at byte {offset}", file_name(path)))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// issue 12 (6): DATA_LOSS names the file and part, not the server's path.
    #[test]
    fn data_loss_carries_no_server_path() {
        let e = IndexError::Format(FormatError::Checksum {
            path: "/var/lib/fathom/v2/postings.bin".into(),
            section: "posting 7 at byte 8192".into(),
            expected: 1,
            found: 2,
        });
        let st = to_status(&e);
        assert_eq!(st.code(), tonic::Code::DataLoss);
        assert!(!st.message().contains("/var/lib"), "{}", st.message());
        assert!(st.message().contains("posting 7 at byte 8192 of postings.bin"), "{}", st.message());
        let e = IndexError::Format(FormatError::Corrupt {
            path: "/srv/x/vectors.bin".into(),
            offset: 9,
            what: "short".into(),
        });
        assert_eq!(to_status(&e).message(), "index data is damaged: vectors.bin is corrupt at byte 9");
    }
}
