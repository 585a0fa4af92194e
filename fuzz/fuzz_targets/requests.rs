//! Requests as the server receives them: protobuf bytes decoded into a
//! SearchRequest or BatchSearchRequest, then the server's own validation
//! (`fathom_server::net::validate`, the functions the service calls) and, for
//! what passes, a search of a small index built once.
//! Never a panic: every bad request is an error status.
#![no_main]
use fathom_index::build::NoProgress;
use fathom_index::{BuildParams, Index, OpenOptions, SearchSettings};
use fathom_proto::v1::{BatchSearchRequest, SearchRequest};
use fathom_server::net::validate;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::sync::{Arc, OnceLock};

/// A 2,000 x 8 index in the temporary directory, built on first use.
fn index() -> &'static Arc<Index> {
    static IX: OnceLock<Arc<Index>> = OnceLock::new();
    IX.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fathom-fuzz-requests-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let base = dir.join("base.fbin");
        fathom_index::synth::Mixture { dim: 8, clusters: 10, seed: 1 }.write_fbin(&base, 0, 2_000).unwrap();
        fathom_index::build(&base, &dir.join("idx"), &BuildParams::default(), &NoProgress).unwrap();
        Index::open(&dir.join("idx"), OpenOptions::default()).unwrap()
    })
}

fn search(queries: &[validate::QueryVec], k: usize, s: &SearchSettings) {
    let mut searcher = index().searcher().unwrap();
    for q in queries {
        // Wrong dimensions, NaN, k above the index size: errors, not panics.
        let _ = searcher.search_query(q.as_query(), k, s);
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = validate::Limits::new(100, 64);
    let defaults = SearchSettings::default();
    if let Ok(m) = SearchRequest::decode(data) {
        if let Ok((qs, k, s)) = validate::search_request(&m, &limits, &defaults) {
            search(&qs, k, &s);
        }
    }
    if let Ok(m) = BatchSearchRequest::decode(data) {
        if let Ok((qs, k, s)) = validate::batch_request(&m, &limits, &defaults) {
            search(&qs, k, &s);
        }
    }
});
