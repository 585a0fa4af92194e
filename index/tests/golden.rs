//! A golden index, checked in (`tests/golden/`): 600 vectors of 8-d f32 and
//! the index built from them with the default parameters, seed 42 and the
//! scalar kernels. A change to the format, the seeded generator or the
//! builder's choices shows here as a failed test, never as a silent change
//! of every index's bytes.
//!
//! - The checked-in index opens, verifies and answers fixed queries as
//!   recorded (`expected.json`): reading old bytes still works. `v4/` and
//!   `v5/` are the same index as formats 4 and 5 wrote it (v5: PQ codes of
//!   x, not residuals), read the same way (not rewritten by a bless).
//! - Rebuilding the checked-in input gives the same bytes, file by file
//!   (the manifest compared without the fathom version and its checksum).
//!
//! A deliberate change: `FATHOM_BLESS=1 cargo test -p fathom-index --test
//! golden` rewrites the files; review the diff and bump FORMAT_VERSION
//! where readers are affected.

use fathom_index::build::NoProgress;
use fathom_index::{BuildParams, Index, OpenOptions, SearchSettings};
use std::path::{Path, PathBuf};

const DIM: usize = 8;
const ROWS: u64 = 600;
const DATA_FILES: [&str; 4] = ["centroids.bin", "directory.bin", "postings.bin", "vectors.bin"];

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn bless() -> bool {
    std::env::var("FATHOM_BLESS").is_ok_and(|v| v == "1")
}

/// The manifest as JSON, without what changes with every release.
fn manifest_sans_version(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("created_by");
    o.remove("manifest_crc32");
    v
}

/// The first rows of the input, as queries: ids and distances of their 10
/// nearest, rounded (kernels may differ in the last bits).
fn answers(ix: &std::sync::Arc<Index>, base: &[f32]) -> serde_json::Value {
    let mut s = ix.searcher().unwrap();
    let rows: Vec<serde_json::Value> = base
        .chunks_exact(DIM)
        .step_by(97)
        .map(|q| {
            let (found, _) = s.search(q, 10, &SearchSettings::default()).unwrap();
            let ids: Vec<u64> = found.iter().map(|n| n.id).collect();
            let d: Vec<f64> = found.iter().map(|n| (n.distance as f64 * 1e4).round() / 1e4).collect();
            serde_json::json!({ "ids": ids, "distances": d })
        })
        .collect();
    serde_json::Value::Array(rows)
}

fn read_base(path: &Path) -> Vec<f32> {
    let b = std::fs::read(path).unwrap();
    b[8..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[test]
fn the_golden_index_reads_and_rebuilds_byte_for_byte() {
    // The scalar kernels round the same on every CPU; set before any
    // distance is computed (this test binary has only this test).
    std::env::set_var("FATHOM_KERNELS", "scalar");
    let g = golden();
    let base_path = g.join("base.fbin");
    let scratch = std::env::temp_dir().join(format!("fathom-golden-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    if bless() {
        std::fs::create_dir_all(&g).unwrap();
        fathom_index::synth::Mixture { dim: DIM, clusters: 12, seed: 7 }.write_fbin(&base_path, 0, ROWS).unwrap();
    }
    let rebuilt = scratch.join("idx");
    fathom_index::build(&base_path, &rebuilt, &BuildParams::default(), &NoProgress).unwrap();
    let index_dir = g.join("idx");
    if bless() {
        let _ = std::fs::remove_dir_all(&index_dir);
        std::fs::rename(&rebuilt, &index_dir)
            .or_else(|_| {
                std::fs::create_dir_all(&index_dir)?;
                for e in std::fs::read_dir(&rebuilt)? {
                    let e = e?;
                    std::fs::copy(e.path(), index_dir.join(e.file_name()))?;
                }
                Ok::<(), std::io::Error>(())
            })
            .unwrap();
        let ix = Index::open(&index_dir, OpenOptions::default()).unwrap();
        let a = serde_json::to_string_pretty(&answers(&ix, &read_base(&base_path))).unwrap();
        std::fs::write(g.join("expected.json"), a + "\n").unwrap();
        return;
    }

    // Reading: the checked-in bytes open, verify and answer as recorded;
    // so does the same index as formats 4 and 5 wrote it (kept as they were).
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(g.join("expected.json")).unwrap()).unwrap();
    for dir in [index_dir.clone(), g.join("v4"), g.join("v5")] {
        let ix = Index::open(&dir, OpenOptions::default()).expect("the golden index opens");
        ix.verify().expect("the golden index verifies");
        assert_eq!(answers(&ix, &read_base(&base_path)), expected, "answers of {} changed", dir.display());
    }

    // Writing: the same input, parameters and seed give the same bytes.
    for f in DATA_FILES {
        let (want, got) = (std::fs::read(index_dir.join(f)).unwrap(), std::fs::read(rebuilt.join(f)).unwrap());
        assert!(want == got, "{f} differs from the golden index ({} vs {} bytes)", got.len(), want.len());
    }
    assert_eq!(manifest_sans_version(&rebuilt), manifest_sans_version(&index_dir), "manifest.json differs");
    let _ = std::fs::remove_dir_all(&scratch);
}
