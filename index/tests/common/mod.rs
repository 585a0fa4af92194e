//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use fathom_index::build::NoProgress;
use fathom_index::synth::Mixture;
use fathom_index::{BuildParams, Metric};
use std::path::{Path, PathBuf};

/// A fresh directory under target/, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn join(&self, s: &str) -> PathBuf {
        self.0.join(s)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `n` mixture rows (and `nq` queries) and returns their paths.
pub fn mixture_files(dir: &TempDir, n: u64, nq: u64, dim: usize, clusters: usize) -> (PathBuf, PathBuf) {
    let m = Mixture { dim, clusters, seed: 7 };
    let base = dir.join("base.fbin");
    let queries = dir.join("queries.fbin");
    m.write_fbin(&base, 0, n).unwrap();
    m.write_fbin(&queries, 1, nq).unwrap();
    (base, queries)
}

pub fn build_index(input: &Path, out: &Path, metric: Metric) -> fathom_index::Manifest {
    let params = BuildParams { metric, ..BuildParams::default() };
    fathom_index::build(input, out, &params, &NoProgress).unwrap().manifest
}

pub fn read_f32(path: &Path) -> Vec<f32> {
    let f = fathom_index::input::VectorFile::open(path).unwrap();
    let mut v = Vec::new();
    f.read_f32(0, f.count as usize, &mut v).unwrap();
    v
}
