//! Errors of the engine, one enum per layer, aggregated into [`IndexError`].

use std::path::PathBuf;

/// Problems with an on-disk file: input vectors, index files, manifests.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The I/O error is part of the message, not a `source`: printing a
    /// chain would say it twice.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: not a Fathom {kind} file (magic {found:02x?})")]
    BadMagic { path: PathBuf, kind: &'static str, found: [u8; 8] },
    #[error("{path}: format version {found} is not readable by this build (reads {min}..={max}){}", version_hint(*found, *min, *max))]
    UnsupportedVersion { path: PathBuf, found: u32, min: u32, max: u32 },
    #[error("{path}: corrupt at byte {offset}: {what}")]
    Corrupt { path: PathBuf, offset: u64, what: String },
    #[error("{path}: checksum mismatch in {section} (expected {expected:08x}, found {found:08x})")]
    Checksum { path: PathBuf, section: String, expected: u32, found: u32 },
    #[error("{path}: {what}")]
    BadInput { path: PathBuf, what: String },
}

fn version_hint(found: u32, min: u32, max: u32) -> &'static str {
    if found < min {
        "; it was written by an older fathom: rebuild the index with this version's `fathom build`"
    } else if found <= max.saturating_add(FORMAT_VERSIONS_AHEAD) {
        "; it was written by a newer fathom: upgrade this server"
    } else {
        // A flipped bit in the version field, not a release: formats come
        // one at a time.
        "; no fathom writes a version this far ahead: the file is damaged (restore or rebuild it)"
    }
}

/// How far past its own newest format a reader believes a version number
/// could come from a newer release rather than damage.
const FORMAT_VERSIONS_AHEAD: u32 = 16;

/// Problems with a query or its settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("query has dimension {received_dim}, the index expects {expected_dim}")]
    WrongDimension { expected_dim: usize, received_dim: usize },
    #[error("query component {index} is not finite ({value})")]
    NotFinite { index: usize, value: f32 },
    #[error("k must be at least 1")]
    ZeroK,
    #[error("k = {k} is larger than the {count} vectors in the index")]
    KTooLarge { k: usize, count: u64 },
    #[error("invalid search setting {name}: {what}")]
    BadSetting { name: &'static str, what: String },
    #[error("a cosine query must not be the zero vector")]
    ZeroVector,
    #[error("query norm {norm:e} is too large: distances would overflow (the norm must stay below 1e18)")]
    TooLarge { norm: f64 },
    #[error("this index holds raw bit vectors: send the query as packed bits ({bytes} bytes)")]
    BitsWanted { bytes: usize },
    #[error("this index holds float vectors: send the query as floats, not packed bits")]
    FloatsWanted,
    #[error("packed query: {0}")]
    BadCode(String),
}

/// Problems with build parameters or the build environment.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid build parameter {name}: {what}")]
    BadParam { name: &'static str, what: String },
    #[error("output {0} already exists; remove it or choose another --out")]
    OutputExists(PathBuf),
    #[error("input has {0} vectors; an index needs at least 1")]
    EmptyInput(u64),
    #[error("input vector {index} has a non-finite component")]
    NonFinite { index: u64 },
    #[error("cosine metric: input vector {index} is the zero vector")]
    ZeroVector { index: u64 },
    #[error("input vector {index} has norm {norm:e}: distances would overflow (l2 and ip need norms below 1e18; scale the vectors down, or use cosine)")]
    TooLarge { index: u64, norm: f64 },
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("I/O backend: {0}")]
    Backend(String),
}

pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// Attach a path to an `io::Error` at the I/O boundary.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, FormatError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, FormatError> {
        self.map_err(|error| FormatError::Io { path: path.to_path_buf(), error })
    }
}
