//! On-disk formats of an index directory; `index/FORMAT.md` is the spec.

pub mod build_params;
pub mod check;
pub mod files;
pub mod header;
pub mod layout;
pub mod manifest;

pub use header::{FileHeader, FileKind, FORMAT_VERSION, MAX_FORMAT_VERSION, MIN_FORMAT_VERSION};
pub use manifest::{FileEntry, Manifest};

/// O_DIRECT needs offsets, lengths and buffers aligned to the device's
/// logical block size; 4096 covers every device we run on and equals the
/// page we lay postings out against.
pub const PAGE_BYTES: usize = 4096;

/// Names of the files in an index directory.
pub const MANIFEST_FILE: &str = "manifest.json";
pub const CENTROIDS_FILE: &str = "centroids.bin";
pub const DIRECTORY_FILE: &str = "directory.bin";
pub const POSTINGS_FILE: &str = "postings.bin";
pub const VECTORS_FILE: &str = "vectors.bin";
pub const CODES_FILE: &str = "codes.bin";
