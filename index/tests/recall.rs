//! Recall@10 against exact ground truth at default settings, for every
//! metric, on a generated clustered set of 100k x 64.

mod common;

use common::*;
use fathom_index::build::NoProgress;
use fathom_index::gt::{ground_truth, recall_at};
use fathom_index::input::VectorFile;
use fathom_index::{BuildParams, CodeKind, Index, Metric, OpenOptions, SearchSettings};

const K: usize = 10;

fn recall_for(metric: Metric) -> f64 {
    recall_with(metric, BuildParams { metric, ..BuildParams::default() }, SearchSettings::default(), "default")
}

fn recall_with(metric: Metric, params: BuildParams, settings: SearchSettings, tag: &str) -> f64 {
    let dir = TempDir::new(&format!("recall-{metric}-{tag}"));
    let (base, queries) = mixture_files(&dir, 100_000, 300, 64, 300);
    fathom_index::build(&base, &dir.join("idx"), &params, &NoProgress).unwrap();
    let qs = read_f32(&queries);
    let truth = ground_truth(&VectorFile::open(&base).unwrap(), &qs, K, metric, &|_| {}).unwrap();
    let ix = Index::open(&dir.join("idx"), OpenOptions::default()).unwrap();
    let mut s = ix.searcher().unwrap();
    let mut total = 0.0;
    for (q, t) in qs.chunks_exact(64).zip(&truth) {
        let (found, _) = s.search(q, K, &settings).unwrap();
        let ids: Vec<u64> = found.iter().map(|n| n.id).collect();
        let truth_ids: Vec<i32> = t.iter().map(|n| n.id as i32).collect();
        total += recall_at(&ids, &truth_ids, K);
        // Reported distances are the metric's, nearest first.
        assert!(found.windows(2).all(|w| w[0].distance <= w[1].distance));
    }
    let recall = total / truth.len() as f64;
    eprintln!("{metric} {tag}: recall@10 = {recall:.4}");
    recall
}

#[test]
fn recall_at_default_settings_l2() {
    assert!(recall_for(Metric::L2) >= 0.90);
}

#[test]
fn recall_at_default_settings_ip() {
    assert!(recall_for(Metric::Ip) >= 0.90);
}

#[test]
fn recall_at_default_settings_cosine() {
    assert!(recall_for(Metric::Cosine) >= 0.90);
}

#[test]
fn recall_with_binary_first_stage_codes_and_exact_rerank() {
    for (bits, floor) in [(1usize, 0.6), (2, 0.8), (4, 0.9)] {
        let params = BuildParams { code: CodeKind::Binary, binary_bits: bits, ..BuildParams::default() };
        let settings = SearchSettings { rerank: 100, ..SearchSettings::default() };
        let r = recall_with(Metric::L2, params, settings, &format!("binary{bits}"));
        assert!(r >= floor, "{bits} bits: recall@10 {r}");
    }
}

/// issue 12 (8): a large k gets k neighbours: the search widens when the
/// postings the settings allow hold fewer than k vectors (it used to answer
/// 338 of 1,000).
#[test]
fn a_large_k_gets_k_neighbours() {
    let dir = TempDir::new("large-k");
    let (base, queries) = mixture_files(&dir, 20_000, 3, 16, 200);
    let idx = dir.join("idx");
    build_index(&base, &idx, Metric::L2);
    let ix = fathom_index::Index::open(&idx, fathom_index::OpenOptions::default()).unwrap();
    let mut s = ix.searcher().unwrap();
    let q = read_f32(&queries);
    let narrow = SearchSettings { max_postings: 2, ..SearchSettings::default() };
    for settings in [SearchSettings::default(), narrow] {
        let (found, stats) = s.search(&q[..16], 1000, &settings).unwrap();
        assert_eq!(found.len(), 1000, "{settings:?}: postings read {}", stats.postings_read);
        let ids: std::collections::HashSet<u64> = found.iter().map(|n| n.id).collect();
        assert_eq!(ids.len(), 1000, "no repeats");
        assert!(found.windows(2).all(|w| w[0].distance <= w[1].distance));
    }
}
