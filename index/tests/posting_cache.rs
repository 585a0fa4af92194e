//! Posting codes held in memory under the open's memory budget: the same
//! answers as read from disk, fewer reads, the budget respected, and a
//! corrupt posting refused at open.

mod common;

use common::{mixture_files, read_f32, TempDir};
use fathom_index::build::NoProgress;
use fathom_index::error::{FormatError, IndexError};
use fathom_index::{BuildParams, Index, MemoryBudget, Metric, OpenOptions, SearchSettings};
use std::path::Path;
use std::sync::Arc;

fn open(p: &Path, budget: MemoryBudget) -> Result<Arc<Index>, IndexError> {
    Index::open(p, OpenOptions { memory_budget: budget, ..OpenOptions::default() })
}

fn build(base: &Path, out: &Path, params: BuildParams) {
    fathom_index::build(base, out, &params, &NoProgress).unwrap();
}

/// The index with every posting code held, its rerank rows read by pread.
fn held_by_pread(idx: &Path) -> Arc<Index> {
    let backend = fathom_index::io::BackendChoice::Pread;
    Index::open(idx, OpenOptions { backend, memory_budget: MemoryBudget::Bytes(u64::MAX), ..OpenOptions::default() })
        .unwrap()
}

/// Ids and distances of every query's answer, and the reads made.
fn answers(ix: &Arc<Index>, qs: &[f32], s: &SearchSettings) -> (Vec<Vec<(u64, f32)>>, u32) {
    let mut searcher = ix.searcher().unwrap();
    let mut reads = 0;
    let found = qs
        .chunks_exact(ix.dim())
        .map(|q| {
            let (n, st) = searcher.search(q, 10, s).unwrap();
            reads += st.reads;
            n.iter().map(|n| (n.id, n.distance)).collect()
        })
        .collect();
    (found, reads)
}

#[test]
fn postings_held_in_memory_answer_as_read_from_disk_with_fewer_reads() {
    let dir = TempDir::new("posting-cache");
    let (base, queries) = mixture_files(&dir, 6_000, 30, 24, 40);
    let qs = read_f32(&queries);
    for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
        let idx = dir.join(&format!("idx-{metric}"));
        build(&base, &idx, BuildParams { metric, row_code_bits: Some(0), ..BuildParams::default() });
        let disk = open(&idx, MemoryBudget::Bytes(0)).unwrap();
        let held = open(&idx, MemoryBudget::Bytes(u64::MAX)).unwrap();
        assert!(!disk.posting_codes_held() && held.posting_codes_held());
        assert!(held.resident_bytes() > disk.resident_bytes());
        // Page-mates are free candidates only on disk; without them and
        // without the early round both score the same postings.
        let one_round = SearchSettings { page_mates: false, early_rerank: 1.0, ..SearchSettings::default() };
        let (from_disk, disk_reads) = answers(&disk, &qs, &one_round);
        let (in_memory, held_reads) = answers(&held, &qs, &one_round);
        assert_eq!(from_disk, in_memory, "{metric}");
        // The rerank reads of held codes: pread and io_uring agree.
        let pread = held_by_pread(&idx);
        assert_eq!(answers(&pread, &qs, &SearchSettings::default()), answers(&held, &qs, &SearchSettings::default()));
        assert!(held_reads < disk_reads, "{metric}: {held_reads} reads held against {disk_reads} from disk");
        // The early round only adds reranked rows: never a worse answer.
        let (early, _) = answers(&held, &qs, &SearchSettings { early_rerank: 0.5, ..one_round });
        for (e, o) in early.iter().zip(&in_memory) {
            assert_eq!(e.len(), o.len());
            for (a, b) in e.iter().zip(o) {
                assert!(a.1 <= b.1 + 1e-5 * b.1.abs().max(1.0), "{metric}: {e:?} against {o:?}");
            }
        }
    }
}

#[test]
fn the_budget_decides_and_auto_stays_within_a_tenth_of_the_vectors() {
    let dir = TempDir::new("posting-cache-budget");
    let (base, _) = mixture_files(&dir, 4_000, 1, 24, 30);
    let idx = dir.join("idx");
    build(&base, &idx, BuildParams { row_code_bits: Some(0), ..BuildParams::default() });
    let disk = open(&idx, MemoryBudget::Bytes(0)).unwrap();
    let held = open(&idx, MemoryBudget::Bytes(u64::MAX)).unwrap();
    let need = held.resident_bytes() - disk.resident_bytes();
    assert!(open(&idx, MemoryBudget::Bytes(need)).unwrap().posting_codes_held());
    assert!(!open(&idx, MemoryBudget::Bytes(need - 1)).unwrap().posting_codes_held());
    // PQ codes of several replicas outweigh a tenth of 24-d f32 rows.
    let auto = open(&idx, MemoryBudget::Auto).unwrap();
    assert!(!auto.posting_codes_held());
    assert!(auto.resident_bytes() <= disk.resident_bytes());
}

#[test]
fn a_corrupt_posting_is_refused_when_held_and_found_by_its_query_when_read() {
    let dir = TempDir::new("posting-cache-corrupt");
    let (base, queries) = mixture_files(&dir, 4_000, 20, 24, 30);
    let idx = dir.join("idx");
    build(&base, &idx, BuildParams { row_code_bits: Some(0), ..BuildParams::default() });
    let postings = idx.join("postings.bin");
    let mut bytes = std::fs::read(&postings).unwrap();
    bytes[4096 + 100] ^= 0x5A; // inside the first posting (page 0 is the header)
    std::fs::write(&postings, bytes).unwrap();
    let err = open(&idx, MemoryBudget::Bytes(u64::MAX)).err().expect("a corrupt posting must not be held");
    assert!(matches!(err, IndexError::Format(FormatError::Checksum { .. })), "{err}");
    assert!(err.to_string().contains("posting 0"), "{err}");
    // Left on disk, the index opens; only queries reading that posting fail.
    let ix = open(&idx, MemoryBudget::Bytes(0)).unwrap();
    let all = SearchSettings { max_postings: 1_000, eps2: 1_000.0, ..SearchSettings::default() };
    let qs = read_f32(&queries);
    assert!(ix.searcher().unwrap().search(&qs[..24], 10, &all).is_err());
}

#[test]
fn an_encoded_binary_collection_held_in_memory_answers_as_from_disk() {
    let dir = TempDir::new("posting-cache-binary");
    let (base, queries) = mixture_files(&dir, 4_000, 20, 64, 30);
    let idx = dir.join("idx");
    build(&base, &idx, BuildParams { encode_bits: 2, ..BuildParams::default() });
    let qs = read_f32(&queries);
    let disk = open(&idx, MemoryBudget::Bytes(0)).unwrap();
    let held = open(&idx, MemoryBudget::Bytes(u64::MAX)).unwrap();
    assert!(held.posting_codes_held());
    let s = SearchSettings { page_mates: false, ..SearchSettings::default() };
    let (a, disk_reads) = answers(&disk, &qs, &s);
    let (b, held_reads) = answers(&held, &qs, &s);
    assert_eq!(a, b);
    assert!(disk_reads > 0 && held_reads == 0, "entries hold ids: nothing to read ({held_reads})");
}

#[test]
fn one_copy_of_each_vector_is_held_without_rows_and_answers_as_from_disk() {
    let dir = TempDir::new("posting-cache-implicit");
    let (base, queries) = mixture_files(&dir, 6_000, 30, 24, 40);
    let qs = read_f32(&queries);
    let one_round = SearchSettings { page_mates: false, early_rerank: 1.0, ..SearchSettings::default() };
    for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
        let idx = dir.join(&format!("idx-{metric}"));
        build(&base, &idx, BuildParams { metric, replicas: 1, row_code_bits: Some(0), ..BuildParams::default() });
        let disk = open(&idx, MemoryBudget::Bytes(0)).unwrap();
        let held = open(&idx, MemoryBudget::Bytes(u64::MAX)).unwrap();
        let cache = held.held_posting_codes().expect("held");
        assert!(cache.implicit_rows(), "{metric}: one copy of each vector needs no rows");
        // Codes and the posting offsets only: no 4-byte row per entry.
        let codes = held.manifest().quantizer.code_bytes() as u64 * held.len();
        let offsets = 8 * (held.manifest().posting_count as u64 + 1);
        assert_eq!(held.resident_bytes() - disk.resident_bytes(), codes + offsets, "{metric}");
        assert_eq!(held.posting_codes_bytes(), Some(codes + offsets));
        assert_eq!(answers(&disk, &qs, &one_round).0, answers(&held, &qs, &one_round).0, "{metric}");
        // The rerank reads: pread and io_uring agree.
        let pread = held_by_pread(&idx);
        let s = SearchSettings::default();
        assert_eq!(answers(&pread, &qs, &s).0, answers(&held, &qs, &s).0, "{metric}");
        // Shorter postings per vector: more of them probed by default.
        let d = held.default_settings();
        assert_eq!((d.max_postings, d.rerank), (96, SearchSettings::default().rerank));
    }
    // Replicas: a vector's entries are in several postings, rows are kept.
    let idx = dir.join("idx-replicas");
    build(&base, &idx, BuildParams { row_code_bits: Some(0), ..BuildParams::default() });
    let held = open(&idx, MemoryBudget::Bytes(u64::MAX)).unwrap();
    assert!(!held.held_posting_codes().expect("held").implicit_rows());
    assert_eq!(held.default_settings(), SearchSettings::default());
}
