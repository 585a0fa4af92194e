//! Formats on disk: determinism, corruption and truncation, versions, the
//! atomic build, and both I/O backends agreeing.

mod common;

use common::*;
use fathom_index::build::NoProgress;
use fathom_index::io::BackendChoice;
use fathom_index::{BuildError, BuildParams, FormatError, Index, IndexError, Metric, OpenOptions, SearchSettings};
use std::path::Path;

fn small_index(dir: &TempDir) -> (std::path::PathBuf, Vec<f32>) {
    let (base, queries) = mixture_files(dir, 6_000, 20, 24, 40);
    let idx = dir.join("idx");
    build_index(&base, &idx, Metric::L2);
    (idx, read_f32(&queries))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn open(p: &Path) -> Result<std::sync::Arc<Index>, IndexError> {
    Index::open(p, OpenOptions::default())
}

fn flip_byte(path: &Path, offset: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[offset as usize] ^= 0x5A;
    std::fs::write(path, b).unwrap();
}

#[test]
fn same_seed_gives_byte_identical_index_at_any_thread_count() {
    let dir = TempDir::new("determinism");
    let (base, _) = mixture_files(&dir, 8_000, 1, 16, 30);
    let mut outs = Vec::new();
    for threads in [1, 2, 3] {
        let out = dir.join(&format!("idx-{threads}"));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let params = BuildParams { row_code_bits: Some(2), ..BuildParams::default() };
        pool.install(|| fathom_index::build(&base, &out, &params, &NoProgress)).unwrap();
        outs.push(out);
    }
    for name in ["manifest.json", "centroids.bin", "directory.bin", "postings.bin", "vectors.bin", "codes.bin"] {
        let a = std::fs::read(outs[0].join(name)).unwrap();
        for o in &outs[1..] {
            assert!(a == std::fs::read(o.join(name)).unwrap(), "{name} differs");
        }
    }
    let other = dir.join("idx-seed");
    let params = BuildParams { seed: 99, ..BuildParams::default() };
    fathom_index::build(&base, &other, &params, &NoProgress).unwrap();
    assert_ne!(
        std::fs::read(outs[0].join("postings.bin")).unwrap(),
        std::fs::read(other.join("postings.bin")).unwrap()
    );
}

#[test]
fn truncated_files_are_rejected_on_open_naming_the_file() {
    let dir = TempDir::new("truncate");
    let (idx, _) = small_index(&dir);
    for name in ["centroids.bin", "directory.bin", "postings.bin", "vectors.bin"] {
        let bad = dir.join(&format!("trunc-{name}"));
        copy_dir(&idx, &bad);
        let p = bad.join(name);
        let len = std::fs::metadata(&p).unwrap().len();
        for cut in [0, 10, len / 2, len - 1] {
            std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(cut).unwrap();
            let err = open(&bad).err().expect("truncated file must not open");
            let msg = err.to_string();
            assert!(matches!(err, IndexError::Format(FormatError::Corrupt { .. })), "{msg}");
            assert!(msg.contains(name), "{msg}");
        }
    }
}

#[test]
fn corrupted_small_files_fail_their_checksum() {
    let dir = TempDir::new("flip-small");
    let (idx, _) = small_index(&dir);
    for name in ["centroids.bin", "directory.bin"] {
        let bad = dir.join(&format!("flip-{name}"));
        copy_dir(&idx, &bad);
        flip_byte(&bad.join(name), 100);
        let err = open(&bad).err().expect("corrupt file must not open");
        assert!(matches!(err, IndexError::Format(FormatError::Checksum { .. })), "{err}");
    }
    let bad = dir.join("magic");
    copy_dir(&idx, &bad);
    flip_byte(&bad.join("centroids.bin"), 0);
    assert!(matches!(open(&bad).err().unwrap(), IndexError::Format(FormatError::BadMagic { .. })));
}

#[test]
fn corrupted_postings_and_vectors_give_checksum_errors_not_wrong_answers() {
    let dir = TempDir::new("flip-large");
    let (idx, qs) = small_index(&dir);
    let settings = SearchSettings { max_postings: 100_000, eps2: 100.0, probe_groups: 1000, ..Default::default() };
    for (name, at) in [("postings.bin", 4096 + 10), ("vectors.bin", 4096 + 10)] {
        let bad = dir.join(&format!("flip-{name}"));
        copy_dir(&idx, &bad);
        flip_byte(&bad.join(name), at);
        let ix = open(&bad).unwrap();
        let mut s = ix.searcher().unwrap();
        // Reading everything must hit the corrupt page on some query.
        let errs: Vec<IndexError> = qs.chunks_exact(24).filter_map(|q| s.search(q, 10, &settings).err()).collect();
        assert!(!errs.is_empty(), "{name}: corruption went unnoticed");
        for e in errs {
            assert!(matches!(e, IndexError::Format(FormatError::Checksum { .. })), "{e}");
            assert!(e.to_string().contains(name), "{e}");
        }
        assert!(ix.verify().is_err());
    }
    assert!(open(&idx).unwrap().verify().is_ok());
}

#[test]
fn other_format_versions_are_refused() {
    let dir = TempDir::new("version");
    let (idx, _) = small_index(&dir);
    let bad = dir.join("newer");
    copy_dir(&idx, &bad);
    let (now, next) = (fathom_index::format::FORMAT_VERSION, fathom_index::format::FORMAT_VERSION + 1);
    let m = std::fs::read_to_string(bad.join("manifest.json")).unwrap();
    let m = m.replacen(&format!("\"format_version\": {now}"), &format!("\"format_version\": {next}"), 1);
    std::fs::write(bad.join("manifest.json"), m).unwrap();
    let err = open(&bad).err().unwrap();
    assert!(matches!(err, IndexError::Format(FormatError::UnsupportedVersion { found, .. }) if found == next), "{err}");
    assert!(err.to_string().contains("newer fathom"), "{err}");
    std::fs::write(bad.join("manifest.json"), "{ not json").unwrap();
    assert!(open(&bad).err().unwrap().to_string().contains("manifest.json"));
}

#[test]
fn build_refuses_existing_output_and_leaves_nothing_when_it_fails() {
    let dir = TempDir::new("atomic");
    let (base, _) = mixture_files(&dir, 3_000, 1, 8, 10);
    let out = dir.join("idx");
    std::fs::create_dir(&out).unwrap();
    let err = fathom_index::build(&base, &out, &BuildParams::default(), &NoProgress).unwrap_err();
    assert!(matches!(err, IndexError::Build(BuildError::OutputExists(_))), "{err}");
    std::fs::remove_dir(&out).unwrap();
    // A NaN in the last row fails the build after work has started.
    let mut bytes = std::fs::read(&base).unwrap();
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    let nan = dir.join("nan.fbin");
    std::fs::write(&nan, bytes).unwrap();
    let params = BuildParams { sample_size: 100, ..BuildParams::default() };
    let err = fathom_index::build(&nan, &out, &params, &NoProgress).unwrap_err();
    assert!(matches!(err, IndexError::Build(BuildError::NonFinite { index: 2999 })), "{err}");
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("building"))
        .collect();
    assert!(leftovers.is_empty(), "temporary build directory left behind");
}

#[test]
fn io_uring_and_pread_backends_give_identical_results() {
    let dir = TempDir::new("backends");
    let (idx, qs) = small_index(&dir);
    let results = |backend| {
        let ix = Index::open(&idx, OpenOptions { backend, ..OpenOptions::default() }).unwrap();
        let mut s = ix.searcher().unwrap();
        let name = s.backend_name();
        let r: Vec<_> = qs
            .chunks_exact(24)
            .map(|q| {
                let (found, st) = s.search(q, 10, &SearchSettings::default()).unwrap();
                (found, st.postings_read, st.reads, st.bytes_read, st.candidates_scored)
            })
            .collect();
        (name, r)
    };
    let (pn, p) = results(BackendChoice::Pread);
    let (un, u) = results(BackendChoice::Auto);
    assert_eq!(pn, "pread");
    if un != "io_uring" {
        // CI sets FATHOM_REQUIRE_URING=1: there a missing io_uring fails.
        assert!(
            !std::env::var("FATHOM_REQUIRE_URING").is_ok_and(|v| v == "1"),
            "FATHOM_REQUIRE_URING=1 but the index opened with {un}"
        );
        eprintln!("io_uring unavailable here; compared pread with itself");
    }
    assert_eq!(p, u);
}

#[test]
fn bad_queries_get_clear_errors() {
    let dir = TempDir::new("queries");
    let (idx, qs) = small_index(&dir);
    let ix = open(&idx).unwrap();
    let mut s = ix.searcher().unwrap();
    let d = SearchSettings::default();
    let q = &qs[..24];
    let msg = |r: Result<_, IndexError>| r.err().unwrap().to_string();
    assert!(msg(s.search(&q[..23], 10, &d)).contains("dimension 23, the index expects 24"));
    let mut nan = q.to_vec();
    nan[3] = f32::NAN;
    assert!(msg(s.search(&nan, 10, &d)).contains("component 3 is not finite"));
    assert!(msg(s.search(q, 0, &d)).contains("k must be at least 1"));
    assert!(msg(s.search(q, 7_000, &d)).contains("larger than the 6000 vectors"));
    let bad = SearchSettings { max_postings: 0, ..d };
    assert!(msg(s.search(q, 10, &bad)).contains("max_postings"));
    let bad = SearchSettings { eps2: f32::NAN, ..d };
    assert!(msg(s.search(q, 10, &bad)).contains("eps2"));
    // Still serving after the errors.
    assert_eq!(s.search(q, 10, &d).unwrap().0.len(), 10);
}

/// issue 12 (2): an edit of any manifest field is refused at open (its own
/// CRC), never a changed answer; `files` may only name the four data files.
#[test]
fn every_manifest_edit_is_refused() {
    let dir = TempDir::new("manifest-edits");
    let (idx, _) = small_index(&dir);
    let text = std::fs::read_to_string(idx.join("manifest.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<String> = value.as_object().unwrap().keys().filter(|k| *k != "manifest_crc32").cloned().collect();
    assert!(keys.len() >= 15, "{keys:?}");
    let bad = dir.join("edited");
    copy_dir(&idx, &bad);
    for key in &keys {
        // Change the first character of the field's value, in place.
        let at = text.find(&format!("\n  \"{key}\": ")).unwrap() + key.len() + 7;
        let mut edited = text.clone().into_bytes();
        let c = edited[at];
        edited[at] = match c {
            b'0'..=b'8' => c + 1,
            b'9' => b'1',
            b'"' if edited[at + 1] != b'"' => {
                edited[at + 1] ^= 0x01;
                c
            }
            b't' | b'f' => {
                edited.splice(
                    at..at + if c == b't' { 4 } else { 5 },
                    if c == b't' { b"false".to_vec() } else { b"true".to_vec() },
                );
                edited[at]
            }
            _ => {
                // Objects and arrays: change the first digit or letter inside.
                let j = at + edited[at..].iter().position(|b| b.is_ascii_alphanumeric()).unwrap();
                edited[j] = if edited[j] == b'1' { b'2' } else { b'1' };
                c
            }
        };
        assert_ne!(edited, text.as_bytes(), "{key}");
        std::fs::write(bad.join("manifest.json"), &edited).unwrap();
        let err = open(&bad).err().unwrap_or_else(|| panic!("editing {key} went unnoticed"));
        assert!(err.to_string().contains("manifest"), "{key}: {err}");
    }
    // A manifest rewritten whole (valid CRC) still cannot point outside the
    // directory or leave a file out (`info --verify` used to panic on that).
    let mut m = fathom_index::Manifest::read(&idx).unwrap();
    let entry = m.files.remove("postings.bin").unwrap();
    m.files.insert("../postings.bin".into(), entry);
    m.write(&bad).unwrap();
    let err = open(&bad).err().unwrap().to_string();
    assert!(err.contains("files lists"), "{err}");
    m.files.remove("../postings.bin");
    m.write(&bad).unwrap();
    assert!(open(&bad).err().unwrap().to_string().contains("files lists"));
}

/// issue 12 (10): a flipped body-CRC field in a large file's header is
/// refused at open, not only by a full verify.
#[test]
fn a_flipped_header_crc_field_is_refused() {
    let dir = TempDir::new("header-crc");
    let (idx, _) = small_index(&dir);
    for name in ["postings.bin", "vectors.bin"] {
        let bad = dir.join(&format!("bad-{name}"));
        copy_dir(&idx, &bad);
        flip_byte(&bad.join(name), 25);
        let err = open(&bad).err().unwrap().to_string();
        assert!(err.contains("header body CRC field") && err.contains(name), "{err}");
    }
}

/// issue 12 (7): queries whose distances would overflow are refused (l2,
/// ip); a huge cosine query is normalised in f64 and answered as its
/// direction, not with every distance 0.5.
#[test]
fn overflowing_queries_are_refused_or_normalised() {
    let dir = TempDir::new("overflow");
    let (base, queries) = mixture_files(&dir, 3_000, 5, 8, 20);
    let q = read_f32(&queries);
    for metric in [Metric::L2, Metric::Ip] {
        let idx = dir.join(&format!("idx-{metric}"));
        build_index(&base, &idx, metric);
        let ix = open(&idx).unwrap();
        let mut s = ix.searcher().unwrap();
        for scale in [1e19f32, 3e38] {
            let big: Vec<f32> = q[..8].iter().map(|v| v.signum() * scale).collect();
            let err = s.search(&big, 10, &SearchSettings::default()).unwrap_err();
            assert!(err.to_string().contains("too large"), "{metric}: {err}");
        }
    }
    let idx = dir.join("idx-cosine");
    build_index(&base, &idx, Metric::Cosine);
    let ix = open(&idx).unwrap();
    let mut s = ix.searcher().unwrap();
    let small = s.search(&q[..8], 10, &SearchSettings::default()).unwrap().0;
    let big: Vec<f32> = q[..8].iter().map(|v| v * 1e19).collect();
    let found = s.search(&big, 10, &SearchSettings::default()).unwrap().0;
    assert_eq!(found.iter().map(|n| n.id).collect::<Vec<_>>(), small.iter().map(|n| n.id).collect::<Vec<_>>());
    assert!(found.iter().any(|n| (n.distance - 0.5).abs() > 1e-3), "{found:?}");
}

/// issue 12 (9): ground truth refuses NaN and inf, in the base and in the
/// queries, as build does (it used to drop base rows and give ids -1).
#[test]
fn ground_truth_refuses_non_finite_values() {
    let dir = TempDir::new("gt-nan");
    let (base, queries) = mixture_files(&dir, 1_000, 3, 8, 10);
    let mut q = read_f32(&queries);
    let file = fathom_index::input::VectorFile::open(&base).unwrap();
    q[9] = f32::NAN;
    let e = fathom_index::gt::ground_truth(&file, &q, 5, Metric::L2, &|_| {}).unwrap_err().to_string();
    assert!(e.contains("query row 1"), "{e}");
    let mut bytes = std::fs::read(&base).unwrap();
    let at = 8 + (500 * 8 + 3) * 4;
    bytes[at..at + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    let inf = dir.join("inf.fbin");
    std::fs::write(&inf, bytes).unwrap();
    let file = fathom_index::input::VectorFile::open(&inf).unwrap();
    let e = fathom_index::gt::ground_truth(&file, &q[..8], 5, Metric::L2, &|_| {}).unwrap_err().to_string();
    assert!(e.contains("row 500 has a non-finite"), "{e}");
}

/// Format 3's resident codes: checked at open (CRC, length), optional
/// (an index opened without them searches from disk and finds nearly the
/// same neighbours at full probing), and a format 2 index without them
/// still opens.
#[test]
fn resident_codes_are_checked_and_optional() {
    let dir = TempDir::new("resident");
    let (base, queries) = mixture_files(&dir, 6_000, 20, 24, 40);
    let qs = read_f32(&queries);
    let idx = dir.join("idx");
    let params = BuildParams { row_code_bits: Some(2), ..BuildParams::default() };
    let m = fathom_index::build(&base, &idx, &params, &NoProgress).unwrap().manifest;
    assert!(m.resident_codes.is_some() && idx.join("codes.bin").exists());
    let all =
        SearchSettings { max_postings: 100_000, eps2: 1e6, probe_groups: 1000, rerank: 6_000, ..Default::default() };
    let answers = |o: OpenOptions| {
        let ix = Index::open(&idx, o).unwrap();
        assert_eq!(ix.resident_codes().is_some(), o.resident_codes);
        // While resident codes serve, the PQ codebooks are not held.
        let fathom_index::quant::Quantizer::Pq(p) = &ix.manifest().quantizer else { panic!("PQ is the default code") };
        assert_eq!(ix.manifest().quantizer.scores_postings(), !o.resident_codes);
        let codebook = 4 * 256 * p.dsub * p.m;
        assert_eq!(ix.manifest().quantizer.resident_bytes(), if o.resident_codes { 0 } else { codebook });
        // ... and the codes' rotation is held once, as half floats.
        if let Some(rc) = ix.resident_codes() {
            let fathom_index::distance::rows::Rows::F16(h) = rc.rotation() else { panic!("f32 rotation") };
            assert!(h.len() == 24 * 24 && rc.codec.rotation.is_empty());
            assert!(ix.manifest().resident_codes.as_ref().unwrap().codec.rotation.is_empty());
        }
        let mut s = ix.searcher().unwrap();
        qs.chunks_exact(24).map(|q| s.search(q, 10, &all).unwrap().0).collect::<Vec<_>>()
    };
    let on = answers(OpenOptions::default());
    let off = answers(OpenOptions { resident_codes: false, ..OpenOptions::default() });
    let ids = |a: &Vec<Vec<fathom_index::Neighbor>>| {
        a.iter().map(|r| r.iter().map(|n| n.id).collect::<Vec<_>>()).collect::<Vec<_>>()
    };
    // Exhaustive from disk; in memory the rerank skips candidates past the
    // build-measured margin, so a few neighbours may differ.
    let (a, b) = (ids(&on), ids(&off));
    let same: usize = a.iter().zip(&b).map(|(x, y)| x.iter().filter(|i| y.contains(i)).count()).sum();
    assert!(same as f64 >= 0.95 * (10 * a.len()) as f64, "{same} of {} neighbours agree", 10 * a.len());

    let bad = dir.join("flip-codes");
    copy_dir(&idx, &bad);
    flip_byte(&bad.join("codes.bin"), 200);
    let err = open(&bad).err().expect("a corrupt codes.bin must not be loaded");
    assert!(
        matches!(err, IndexError::Format(FormatError::Checksum { .. })) && err.to_string().contains("codes.bin"),
        "{err}"
    );
    let ix = Index::open(&bad, OpenOptions { resident_codes: false, ..OpenOptions::default() }).unwrap();
    assert!(ix.verify().is_err(), "verify checks codes.bin even when not loaded");

    let short = dir.join("trunc-codes");
    copy_dir(&idx, &short);
    std::fs::OpenOptions::new().write(true).open(short.join("codes.bin")).unwrap().set_len(100).unwrap();
    assert!(open(&short).err().unwrap().to_string().contains("codes.bin"));

    // A format 2 index (no codes.bin) opens and searches.
    let v2 = dir.join("v2");
    let params = BuildParams { row_code_bits: Some(0), ..BuildParams::default() };
    fathom_index::build(&base, &v2, &params, &NoProgress).unwrap();
    let mut m = fathom_index::Manifest::read(&v2).unwrap();
    m.format_version = 2;
    m.write(&v2).unwrap();
    let ix = open(&v2).unwrap();
    assert!(ix.resident_codes().is_none());
    assert_eq!(ix.searcher().unwrap().search(&qs[..24], 10, &SearchSettings::default()).unwrap().0.len(), 10);
}
