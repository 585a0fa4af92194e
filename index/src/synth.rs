//! Deterministic synthetic data: a Gaussian mixture with clusters of varying
//! spread. Every row depends only on (seed, row), so any slice can be
//! generated independently and in parallel. Cluster-based indexes find such
//! data easy: it shows scale, not quality (judge quality on real embeddings).

use crate::error::Result;
use crate::input::BinWriter;
use crate::rng::Rng;
use crate::types::ElementType;
use rayon::prelude::*;
use std::path::Path;

#[derive(Debug, Clone, Copy)]
pub struct Mixture {
    pub dim: usize,
    pub clusters: usize,
    pub seed: u64,
}

impl Mixture {
    fn center(&self, c: usize, out: &mut [f32]) {
        let mut r = Rng::derive(self.seed, c as u64 | 1 << 40);
        out.iter_mut().for_each(|x| *x = r.normal());
    }

    /// Row `i` of the stream named `stream` (0 = base, 1 = queries, ...).
    pub fn row(&self, stream: u64, i: u64, out: &mut [f32]) {
        let mut r = Rng::derive(self.seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F), i);
        let c = r.below(self.clusters as u64) as usize;
        self.center(c, out);
        // Spread varies per cluster between 0.15 and 0.6 of the center scale.
        let spread = 0.15 + 0.45 * Rng::derive(self.seed, c as u64 | 2 << 40).unit_f32();
        out.iter_mut().for_each(|x| *x += spread * r.normal());
    }

    /// Rows `start..start+count` of a stream, row-major.
    pub fn rows(&self, stream: u64, start: u64, count: usize) -> Vec<f32> {
        let mut v = vec![0f32; count * self.dim];
        v.par_chunks_mut(self.dim).enumerate().for_each(|(i, row)| self.row(stream, start + i as u64, row));
        v
    }

    /// Writes `count` rows of a stream to an .fbin file.
    pub fn write_fbin(&self, path: &Path, stream: u64, count: u64) -> Result<()> {
        let mut w = BinWriter::create(path, self.dim, ElementType::F32)?;
        let mut at = 0;
        while at < count {
            let n = (count - at).min(65_536) as usize;
            w.write_f32_rows(&self.rows(stream, at, n))?;
            at += n as u64;
        }
        w.finish()?;
        Ok(())
    }
}
