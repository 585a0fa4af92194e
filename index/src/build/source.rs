//! What the builder reads, row by row: for each vector the bytes stored in
//! `vectors.bin` and the float "view" that clustering and assignment use.
//! Float collections store the input (or the prepared f32 row) and view
//! the prepared floats; binary collections store packed codes (raw bits
//! from a .u8bin, or float input encoded by the codec) and view each code
//! as the vector it stands for (see `quant::codes`).

use super::BuildParams;
use crate::error::{BuildError, FormatError, Result};
use crate::input::{raw_to_f32, VectorFile};
use crate::quant::CodeSpace;
use crate::types::{ElementType, Metric, MAX_NORM_SQ};
use fathom_codec::CodecParams;
use rayon::prelude::*;
use std::sync::Arc;

enum Kind {
    Floats,
    /// Packed bits read from the input, `file.dim` bytes per row.
    Bits,
    /// Floats encoded by this codec.
    Encoded(Arc<CodecParams>),
}

pub(super) struct Source {
    pub file: VectorFile,
    /// Width of the view.
    pub dim: usize,
    pub metric: Metric,
    kind: Kind,
    /// The binary collection's code space.
    pub space: Option<CodeSpace>,
}

impl Source {
    /// Float input as it is.
    pub fn floats(file: VectorFile, metric: Metric) -> Self {
        Source { dim: file.dim, file, metric, kind: Kind::Floats, space: None }
    }

    /// Packed bit vectors of `bits` bits (a .u8bin of ceil(bits / 8) bytes per row).
    pub fn bits(file: VectorFile, bits: usize) -> Result<Self> {
        if file.element != ElementType::U8 || file.dim != bits.div_ceil(8) {
            return Err(BuildError::BadParam {
                name: "bits",
                what: format!(
                    "{} bits are packed in {} bytes per row; {} holds {} x {}",
                    bits,
                    bits.div_ceil(8),
                    file.path().display(),
                    file.dim,
                    file.element
                ),
            }
            .into());
        }
        Ok(Source {
            dim: bits,
            file,
            metric: Metric::Hamming,
            kind: Kind::Bits,
            space: Some(CodeSpace::raw_bits(bits)),
        })
    }

    /// Float input encoded with `codec` (fitted on this input's sample).
    pub fn encoded(file: VectorFile, metric: Metric, codec: Arc<CodecParams>) -> Self {
        Source {
            dim: file.dim,
            file,
            metric,
            space: Some(CodeSpace::encoded(codec.clone())),
            kind: Kind::Encoded(codec),
        }
    }

    /// The source a build reads, fitting the codec first when encoding.
    pub fn for_build(file: VectorFile, p: &BuildParams, progress: &dyn super::ProgressSink) -> Result<Self> {
        if p.input_bits > 0 {
            return Source::bits(file, p.input_bits);
        }
        let floats = Source::floats(file, p.metric);
        if p.encode_bits == 0 {
            return Ok(floats);
        }
        let count = p.sample_count(floats.file.count, floats.dim);
        progress.stage("codec", count);
        let sample = super::stream::read_sample(&floats, count, p.seed, progress)?;
        progress.finish_stage();
        let codec = CodecParams::fit(&sample, floats.dim, p.encode_bits, p.seed ^ 0xB1)
            .map_err(|e| BuildError::BadParam { name: "encode", what: e.to_string() })?;
        Ok(Source::encoded(floats.file, p.metric, Arc::new(codec)))
    }

    pub fn count(&self) -> u64 {
        self.file.count
    }

    /// Bytes per stored row after the 4-byte id.
    pub fn stored_bytes(&self) -> usize {
        match &self.space {
            Some(s) => s.code_bytes(),
            None if self.metric == Metric::Cosine => 4 * self.dim,
            None => self.dim * self.file.element.size_bytes(),
        }
    }

    pub fn stored_element(&self) -> ElementType {
        match (&self.space, self.metric) {
            (Some(_), _) => ElementType::Bits,
            (None, Metric::Cosine) => ElementType::F32,
            (None, _) => self.file.element,
        }
    }

    /// Rows `start..start + count`: the stored bytes (`stored_bytes` each)
    /// and the views (`dim` floats each). Float views are checked (finite)
    /// and, for cosine, normalised.
    pub fn read(&self, start: u64, count: usize, stored: &mut Vec<u8>, view: &mut Vec<f32>) -> Result<()> {
        let mut raw = Vec::new();
        self.file.read_raw(start, count, &mut raw)?;
        match (&self.kind, &self.space) {
            (Kind::Bits, Some(space)) => {
                let in_bytes = self.file.dim;
                let cb = space.code_bytes();
                stored.clear();
                stored.resize(count * cb, 0);
                for (r, (out, row)) in stored.chunks_exact_mut(cb).zip(raw.chunks_exact(in_bytes)).enumerate() {
                    out[..in_bytes].copy_from_slice(row);
                    space.check(out).map_err(|what| FormatError::BadInput {
                        path: self.file.path().to_path_buf(),
                        what: format!("row {}: {what}", start + r as u64),
                    })?;
                }
                views(space, stored, view);
            }
            (Kind::Encoded(codec), Some(space)) => {
                raw_to_f32(self.file.element, &raw, view);
                prepare_rows(view, self.dim, self.metric, start)?;
                let cb = space.code_bytes();
                stored.clear();
                stored.resize(count * cb, 0);
                stored.par_chunks_mut(cb).zip(view.par_chunks(self.dim)).try_for_each(|(out, x)| {
                    let code =
                        codec.encode(x).map_err(|e| BuildError::BadParam { name: "encode", what: e.to_string() })?;
                    out.copy_from_slice(&code.to_bytes());
                    Ok::<_, BuildError>(())
                })?;
                views(space, stored, view);
            }
            _ => {
                raw_to_f32(self.file.element, &raw, view);
                prepare_rows(view, self.dim, self.metric, start)?;
                if self.metric == Metric::Cosine {
                    stored.clear();
                    stored.extend(view.iter().flat_map(|v| v.to_le_bytes()));
                } else {
                    *stored = raw;
                }
            }
        }
        Ok(())
    }
}

/// The views of packed codes, row-major.
fn views(space: &CodeSpace, codes: &[u8], out: &mut Vec<f32>) {
    let dim = space.dim;
    out.clear();
    out.resize(codes.len() / space.code_bytes() * dim, 0.0);
    out.par_chunks_mut(dim).zip(codes.par_chunks(space.code_bytes())).for_each_init(
        || (Vec::new(), Vec::new()),
        |(words, v), (o, code)| {
            CodeSpace::words(code, words);
            space.view(words, v);
            o.copy_from_slice(v);
        },
    );
}

/// Checks every row is finite and of a norm whose distances cannot
/// overflow, and, for cosine, normalises it. Norms are taken in f64: in
/// f32, components near 1e20 square to inf (and the row would normalise to
/// zeros) and components near 1e-30 square to 0.
fn prepare_rows(f: &mut [f32], dim: usize, metric: Metric, start: u64) -> Result<(), BuildError> {
    f.par_chunks_mut(dim).enumerate().try_for_each(|(r, x)| {
        let index = start + r as u64;
        if x.iter().any(|v| !v.is_finite()) {
            return Err(BuildError::NonFinite { index });
        }
        let norm_sq = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>();
        if metric == Metric::Cosine {
            if norm_sq == 0.0 {
                return Err(BuildError::ZeroVector { index });
            }
            let norm = norm_sq.sqrt();
            x.iter_mut().for_each(|v| *v = (*v as f64 / norm) as f32);
        } else if norm_sq >= MAX_NORM_SQ {
            return Err(BuildError::TooLarge { index, norm: norm_sq.sqrt() });
        }
        Ok(())
    })
}
