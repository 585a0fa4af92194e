//! The binary index files: the common header of every kind, and the bodies
//! of centroids.bin and directory.bin (sizes taken from the input's first
//! bytes, as a manifest would give them).
#![no_main]
use fathom_index::format::header::{FileHeader, FileKind};
use fathom_index::format::layout::decode_directory;
use fathom_index::centroids::file::decode_centroids;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let p = Path::new("file.bin");
    for kind in [FileKind::Centroids, FileKind::Directory, FileKind::Postings, FileKind::Vectors] {
        let _ = FileHeader::decode(data, kind, p, data.len() as u64);
    }
    if data.len() < 4 {
        return;
    }
    let dim = 1 + data[0] as usize % 64;
    let postings = 1 + u16::from_le_bytes([data[1], data[2]]) as u32 % 4096;
    let pages = data[3] as u64 * 3;
    let body = &data[4..];
    let _ = decode_centroids(body, p, dim, postings);
    let _ = decode_directory(body, p, postings, pages);
});
