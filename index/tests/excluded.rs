//! Excluded ids (deletes of a live collection, issue 28): never returned
//! by any setting or first stage, and answers still hold k neighbours and,
//! where the search is exact, equal brute force over the rows that remain.

mod common;

use common::*;
use fathom_index::build::NoProgress;
use fathom_index::{BuildParams, CodeKind, Excluded, Index, MemoryBudget, Metric, OpenOptions, Query, SearchSettings};
use std::collections::HashSet;

fn brute(rows: &[f32], dim: usize, q: &[f32], k: usize, excluded: &HashSet<u64>) -> Vec<u64> {
    let mut d: Vec<(f32, u64)> = rows
        .chunks_exact(dim)
        .enumerate()
        .filter(|(i, _)| !excluded.contains(&(*i as u64)))
        .map(|(i, r)| (r.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(), i as u64))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.iter().take(k).map(|x| x.1).collect()
}

#[test]
fn excluded_ids_never_come_back_and_answers_stay_full() {
    let dim = 16;
    let dir = TempDir::new("excluded");
    let (base, _) = mixture_files(&dir, 12_000, 1, dim, 30);
    let rows = read_f32(&base);
    let n = rows.len() / dim;
    let queries: Vec<&[f32]> = rows.chunks_exact(dim).step_by(397).take(25).collect();
    // A third of the rows, and every query's own row (its nearest).
    let mut x = 0x9E37_79B9u64;
    // The test's own set: the checks below must not lean on `Excluded`.
    let gone: HashSet<u64> = (0..n as u64)
        .filter(|i| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33).is_multiple_of(3) || i.is_multiple_of(397)
        })
        .collect();
    let excluded: Excluded = gone.iter().copied().collect();
    let exact = BuildParams { code: CodeKind::F32, ..BuildParams::default() };
    for (name, params) in [("pq", BuildParams::default()), ("f32", exact)] {
        let idx = dir.join(name);
        fathom_index::build(&base, &idx, &BuildParams { metric: Metric::L2, ..params }, &NoProgress).unwrap();
        for budget in [MemoryBudget::Bytes(0), MemoryBudget::Auto] {
            let ix = Index::open(&idx, OpenOptions { memory_budget: budget, ..OpenOptions::default() }).unwrap();
            let postings = ix.manifest().posting_count as usize;
            let mut s = ix.searcher().unwrap();
            for (max_postings, k, rerank) in [(8, 10, 30), (1, 10, 0), (postings, 50, 200), (2, 500, 30)] {
                let all = max_postings >= postings;
                let settings = SearchSettings {
                    max_postings,
                    rerank,
                    eps2: if all { f32::MAX } else { 0.4 },
                    probe_groups: if all { 100_000 } else { 32 },
                    ..SearchSettings::default()
                };
                for (i, q) in queries.iter().enumerate() {
                    let (found, _) = s.search_excluding(Query::Floats(q), k, &settings, &excluded).unwrap();
                    let what = format!("{name} {budget:?} query {i}: max_postings {max_postings}, k {k}");
                    assert_eq!(found.len(), k, "{what}");
                    assert!(found.iter().all(|f| !gone.contains(&f.id)), "{what}: an excluded id came back");
                    if name == "f32" && all {
                        let got: Vec<u64> = found.iter().map(|f| f.id).collect();
                        assert_eq!(got, brute(&rows, dim, q, k, &gone), "{what}: exact");
                    }
                }
            }
            // No exclusions: the same answers as a plain search.
            let settings = SearchSettings::default();
            for q in &queries {
                let plain = s.search(q, 10, &settings).unwrap().0;
                assert_eq!(s.search_excluding(Query::Floats(q), 10, &settings, &Excluded::default()).unwrap().0, plain);
            }
        }
    }
}

/// A binary collection's postings hold ids, not rows: exclusions apply
/// where the ids are answered, with no row read.
#[test]
fn excluded_ids_never_come_back_from_a_binary_collection() {
    let dim = 32;
    let dir = TempDir::new("excluded-binary");
    let (base, _) = mixture_files(&dir, 6_000, 1, dim, 20);
    let rows = read_f32(&base);
    let idx = dir.join("bin");
    let params = BuildParams { metric: Metric::L2, encode_bits: 2, ..BuildParams::default() };
    fathom_index::build(&base, &idx, &params, &NoProgress).unwrap();
    let ix = Index::open(&idx, OpenOptions::default()).unwrap();
    let mut s = ix.searcher().unwrap();
    let queries: Vec<&[f32]> = rows.chunks_exact(dim).step_by(251).take(20).collect();
    let settings = SearchSettings::default();
    for (i, q) in queries.iter().enumerate() {
        // Exclude whatever a plain search finds first, then search again.
        let plain: Vec<u64> = s.search(q, 10, &settings).unwrap().0.iter().map(|n| n.id).collect();
        let gone: HashSet<u64> = plain.iter().copied().collect();
        let excluded: Excluded = plain.iter().copied().collect();
        let found = s.search_excluding(Query::Floats(q), 10, &settings, &excluded).unwrap().0;
        assert_eq!(found.len(), 10, "query {i}");
        assert!(found.iter().all(|n| !gone.contains(&n.id)), "query {i}: an excluded id came back");
    }
}
