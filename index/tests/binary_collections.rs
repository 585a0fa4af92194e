//! Binary collections end to end: raw bit vectors (.u8bin + bits) searched
//! by Hamming distance, float vectors encoded by the codec searched by
//! symmetric distance; brute force at full probing, recall at defaults,
//! float and packed queries alike, and the codec's fixed packing vectors.

mod common;

use common::*;
use fathom_index::build::NoProgress;
use fathom_index::gt::ground_truth_bits;
use fathom_index::input::{BinWriter, VectorFile};
use fathom_index::rng::Rng;
use fathom_index::{BuildParams, ElementType, Index, Metric, OpenOptions, Query, QueryError, SearchSettings};
use std::path::Path;

/// Clustered random bits: `centers` random vectors, each row one of them
/// with every bit flipped with probability `flip`. Returns the packed rows.
fn clustered_bits(n: usize, bits: usize, centers: usize, flip: f32, seed: u64) -> Vec<u8> {
    let bytes = bits.div_ceil(8);
    let mut r = Rng::new(seed);
    let c: Vec<Vec<bool>> = (0..centers).map(|_| (0..bits).map(|_| r.below(2) == 1).collect()).collect();
    let mut out = vec![0u8; n * bytes];
    for row in out.chunks_exact_mut(bytes) {
        let center = &c[r.below(centers as u64) as usize];
        for (j, &b) in center.iter().enumerate() {
            if b != (r.unit_f32() < flip) {
                row[j / 8] |= 1 << (j % 8);
            }
        }
    }
    out
}

fn write_u8bin(path: &Path, width: usize, rows: &[u8]) {
    let mut w = BinWriter::create(path, width, ElementType::U8).unwrap();
    w.write_raw_rows(rows).unwrap();
    w.finish().unwrap();
}

/// The settings that read every posting.
fn full_probe() -> SearchSettings {
    SearchSettings { max_postings: 100_000, eps2: 1e9, probe_groups: 100_000, ..SearchSettings::default() }
}

/// A query's packed code (the index's layout) from packed input bytes.
fn code_of(row: &[u8], code_bytes: usize) -> Vec<u8> {
    let mut c = vec![0u8; code_bytes];
    c[..row.len()].copy_from_slice(row);
    c
}

#[test]
fn hamming_search_equals_brute_force_at_full_probing_and_recalls_at_defaults() {
    let dir = TempDir::new("hamming");
    let (bits, width) = (250usize, 32usize); // 250 bits: padding in the last byte stays clear
                                             // The last 200 rows are the queries (same centres, not in the base).
    let all = clustered_bits(30_200, bits, 200, 0.3, 1);
    let (base, queries) = all.split_at(30_000 * width);
    write_u8bin(&dir.join("base.u8bin"), width, base);
    let params = BuildParams::binary_collection(Metric::Hamming, bits, 0);
    let report = fathom_index::build(&dir.join("base.u8bin"), &dir.join("idx"), &params, &NoProgress).unwrap();
    assert_eq!(report.manifest.element, ElementType::Bits);
    let truth = ground_truth_bits(&VectorFile::open(&dir.join("base.u8bin")).unwrap(), queries, 10, &|_| {}).unwrap();
    let ix = Index::open(&dir.join("idx"), OpenOptions::default()).unwrap();
    let cb = ix.code_bytes().unwrap();
    assert_eq!(cb, 32);
    let mut s = ix.searcher().unwrap();
    let mut found_within = 0usize;
    for (q, t) in queries.chunks_exact(width).zip(&truth) {
        let code = code_of(q, cb);
        // Full probing: the same distances as brute force (ties may swap ids).
        let (all, stats) = s.search_query(Query::Code(&code), 10, &full_probe()).unwrap();
        let got: Vec<f32> = all.iter().map(|n| n.distance).collect();
        let want: Vec<f32> = t.iter().map(|n| n.distance).collect();
        assert_eq!(got, want);
        assert_eq!(stats.reranked, 0, "codes are exact: no rerank");
        // Defaults: tie-aware recall (a result counts if it is no farther
        // than the true 10th neighbour).
        let (found, _) = s.search_query(Query::Code(&code), 10, &SearchSettings::default()).unwrap();
        let kth = t[9].distance;
        found_within += found.iter().filter(|n| n.distance <= kth).count();
    }
    let recall = found_within as f64 / (10 * truth.len()) as f64;
    eprintln!("hamming 30k x 250 bits: recall@10 at defaults = {recall:.4}");
    assert!(recall >= 0.95, "recall {recall}");

    // Floats are refused (raw bits have no codec), as are bad codes.
    assert!(matches!(
        s.search(&[0.0; 250], 10, &SearchSettings::default()),
        Err(fathom_index::IndexError::Query(QueryError::BitsWanted { bytes: 32 }))
    ));
    let mut padded = code_of(&queries[..width], cb);
    padded[31] |= 0x80; // bit 255 > 250
    assert!(matches!(
        s.search_query(Query::Code(&padded), 10, &SearchSettings::default()),
        Err(fathom_index::IndexError::Query(QueryError::BadCode(_)))
    ));
    assert!(s.search_query(Query::Code(&padded[..8]), 10, &SearchSettings::default()).is_err());
}

#[test]
fn encoded_collection_equals_brute_force_and_floats_match_packed_queries() {
    let dir = TempDir::new("encoded");
    let (base, queries) = mixture_files(&dir, 20_000, 100, 48, 100);
    for bits in [1usize, 2] {
        let out = dir.join(&format!("idx{bits}"));
        let params = BuildParams::binary_collection(Metric::L2, 0, bits);
        fathom_index::build(&base, &out, &params, &NoProgress).unwrap();
        let ix = Index::open(&out, OpenOptions::default()).unwrap();
        let space = ix.code_space().unwrap().clone();
        let codec = space.codec.clone().unwrap();
        // Brute force over every base vector's code.
        let kern = fathom_index::distance::kernels();
        let words = |v: &[f32]| {
            let mut w = Vec::new();
            fathom_index::quant::CodeSpace::words(&codec.encode(v).unwrap().to_bytes(), &mut w);
            w
        };
        let base_f = read_f32(&base);
        let base_w: Vec<Vec<u64>> = base_f.chunks_exact(48).map(words).collect();
        let mut s = ix.searcher().unwrap();
        for q in read_f32(&queries).chunks_exact(48).take(40) {
            let qw = words(q);
            let mut want: Vec<f32> = base_w.iter().map(|x| space.l2(kern, &qw, x)).collect();
            want.sort_by(f32::total_cmp);
            let (found, _) = s.search(q, 10, &full_probe()).unwrap();
            let got: Vec<f32> = found.iter().map(|n| n.distance).collect();
            for (g, w) in got.iter().zip(&want[..10]) {
                assert!((g - w).abs() <= 1e-3 * (1.0 + w.abs()), "bits {bits}: {got:?} vs {:?}", &want[..10]);
            }
            // The same query sent packed gives the same answer.
            let code = codec.encode(q).unwrap().to_bytes();
            let (packed, _) = s.search_query(Query::Code(&code), 10, &full_probe()).unwrap();
            assert_eq!(packed, found);
            let (a, _) = s.search(q, 10, &SearchSettings::default()).unwrap();
            let (b, _) = s.search_query(Query::Code(&code), 10, &SearchSettings::default()).unwrap();
            assert_eq!(a, b);
        }
        assert!(matches!(
            s.search(&[f32::NAN; 48], 10, &SearchSettings::default()),
            Err(fathom_index::IndexError::Query(QueryError::NotFinite { .. }))
        ));
    }
}

/// client/codec/tests/data/packing.txt, the codec's fixed vectors: an index
/// built from the same input with the same codec seed stores exactly those
/// codes (each packed line's code finds its own row at distance 0).
#[test]
fn the_engine_stores_the_codec_fixed_packing_vectors() {
    let text = include_str!("../../client/codec/tests/data/packing.txt");
    let dir = TempDir::new("packing");
    let dim = 20;
    let mut r = Rng::new(11);
    let data: Vec<f32> = (0..64 * dim).map(|_| r.normal() + 0.3).collect();
    let path = dir.join("fixed.fbin");
    let mut w = BinWriter::create(&path, dim, ElementType::F32).unwrap();
    w.write_f32_rows(&data).unwrap();
    w.finish().unwrap();
    let mut checked = 0;
    for line in text.lines().filter(|l| l.starts_with("bits ")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let bits: usize = parts[1].parse().unwrap();
        let hex = parts[3];
        let bytes: Vec<u8> =
            (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
        // The builder fits the codec with seed ^ 0xB1 on all 64 rows; the
        // fixed vectors used seed 13.
        let params = BuildParams {
            metric: Metric::L2,
            encode_bits: bits,
            seed: 13 ^ 0xB1,
            leaf_size: 4,
            ..BuildParams::default()
        };
        let out = dir.join(&format!("idx{bits}"));
        fathom_index::build(&path, &out, &params, &NoProgress).unwrap();
        let ix = Index::open(&out, OpenOptions::default()).unwrap();
        let cb = ix.code_bytes().unwrap();
        let mut s = ix.searcher().unwrap();
        for (row, code) in bytes.chunks_exact(cb).enumerate() {
            let (found, _) = s.search_query(Query::Code(code), 64, &full_probe()).unwrap();
            let at_zero: Vec<u64> = found.iter().filter(|n| n.distance.abs() < 1e-4).map(|n| n.id).collect();
            assert!(at_zero.contains(&(row as u64)), "bits {bits} row {row}: {found:?}");
            // And the float row encodes (server side) to that code.
            let (by_float, _) = s.search(&data[row * dim..(row + 1) * dim], 64, &full_probe()).unwrap();
            assert_eq!(by_float, found);
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
}
