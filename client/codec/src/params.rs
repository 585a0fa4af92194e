//! Codec parameters: fitting, encoding, decoding, symmetric distances and
//! the versioned, checksummed byte form.
//!
//! Byte form (little endian): `b"FTHMCODC"`, u32 version (1), u32 dim,
//! u32 bits, f32 mean[dim], f32 rotation[dim * dim] (row-major, orthogonal),
//! f32 scales[bits], u32 CRC-32 of all preceding bytes.

use crate::crc32::crc32;
use crate::pack::{plane_dot, Code};
use fathom_rng::Rng;
use std::fmt;

pub const MAX_BITS: usize = 4;
const MAGIC: &[u8; 8] = b"FTHMCODC";
const VERSION: u32 = 1;
const MAX_DIM: usize = 65_536;

#[derive(Debug, Clone, PartialEq)]
pub enum CodecError {
    BadParam(String),
    Corrupt(String),
    UnsupportedVersion(u32),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::BadParam(s) => write!(f, "invalid codec input: {s}"),
            CodecError::Corrupt(s) => write!(f, "corrupt codec parameters: {s}"),
            CodecError::UnsupportedVersion(v) => {
                write!(f, "codec parameter version {v} is not readable by this build (reads {VERSION})")
            }
        }
    }
}

impl std::error::Error for CodecError {}

#[derive(Debug, Clone, PartialEq)]
pub struct CodecParams {
    pub dim: usize,
    pub bits: usize,
    pub mean: Vec<f32>,
    /// Orthogonal, row-major: x' = rotation * (x - mean).
    pub rotation: Vec<f32>,
    /// Per-level scales a1..au.
    pub scales: Vec<f32>,
}

fn sign(v: f32) -> f32 {
    if v >= 0.0 {
        1.0
    } else {
        -1.0
    }
}

impl CodecParams {
    /// Learns the parameters from `sample` (row-major, `dim` wide).
    pub fn fit(sample: &[f32], dim: usize, bits: usize, seed: u64) -> Result<Self, CodecError> {
        if !(1..=MAX_BITS).contains(&bits) {
            return Err(CodecError::BadParam(format!("bits = {bits}, expected 1..={MAX_BITS}")));
        }
        if dim == 0 || dim > MAX_DIM || sample.is_empty() || !sample.len().is_multiple_of(dim) {
            return Err(CodecError::BadParam(format!(
                "{} sample values do not form rows of dimension {dim}",
                sample.len()
            )));
        }
        if let Some(i) = sample.iter().position(|v| !v.is_finite()) {
            return Err(CodecError::BadParam(format!("sample value {i} is not finite")));
        }
        let n = sample.len() / dim;
        let mut mean = vec![0f64; dim];
        for row in sample.chunks_exact(dim) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += *v as f64;
            }
        }
        let mean: Vec<f32> = mean.iter().map(|m| (m / n as f64) as f32).collect();
        let rotation = random_orthogonal(dim, seed);
        let mut p = CodecParams { dim, bits, mean, rotation, scales: Vec::with_capacity(bits) };
        // Each level's scale is the mean magnitude of the residual it codes
        // (the least-squares scale for sign(r)).
        let mut residuals: Vec<Vec<f32>> = sample.chunks_exact(dim).map(|x| p.rotate(x)).collect();
        for _ in 0..bits {
            let total: f64 = residuals.iter().flatten().map(|v| v.abs() as f64).sum();
            let a = (total / (n * dim) as f64) as f32;
            for r in &mut residuals {
                r.iter_mut().for_each(|v| *v -= a * sign(*v));
            }
            p.scales.push(a);
        }
        Ok(p)
    }

    /// x' = R (x - mean): the space the codes live in.
    pub fn rotate(&self, x: &[f32]) -> Vec<f32> {
        let centred: Vec<f32> = x.iter().zip(&self.mean).map(|(v, m)| v - m).collect();
        self.rotate_uncentred(&centred)
    }

    /// R v, without centring (for inner products).
    pub fn rotate_uncentred(&self, v: &[f32]) -> Vec<f32> {
        self.rotation.chunks_exact(self.dim).map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum()).collect()
    }

    /// The packed code of `x`.
    pub fn encode(&self, x: &[f32]) -> Result<Code, CodecError> {
        if x.len() != self.dim {
            return Err(CodecError::BadParam(format!("vector has dimension {}, codec expects {}", x.len(), self.dim)));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(CodecError::BadParam(format!("component {i} is not finite")));
        }
        let mut r = self.rotate(x);
        let mut code = Code::zero(self.dim, self.bits);
        for (level, &a) in self.scales.iter().enumerate() {
            for (j, v) in r.iter_mut().enumerate() {
                let s = sign(*v);
                code.set(level, j, s > 0.0);
                *v -= a * s;
            }
        }
        Ok(code)
    }

    /// The approximate float vector a code stands for.
    pub fn decode(&self, code: &Code) -> Vec<f32> {
        let mut xr = vec![0f32; self.dim];
        for (level, &a) in self.scales.iter().enumerate() {
            for (j, v) in xr.iter_mut().enumerate() {
                *v += a * code.get(level, j) as f32;
            }
        }
        // x = R^T x' + mean.
        let mut x = self.mean.clone();
        for (row, &xv) in self.rotation.chunks_exact(self.dim).zip(&xr) {
            for (o, r) in x.iter_mut().zip(row) {
                *o += r * xv;
            }
        }
        x
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        for v in [VERSION, self.dim as u32, self.bits as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in self.mean.iter().chain(&self.rotation).chain(&self.scales) {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, CodecError> {
        let corrupt = |s: String| Err(CodecError::Corrupt(s));
        if b.len() < 24 {
            return corrupt(format!("{} bytes is shorter than the 20-byte header and checksum", b.len()));
        }
        if &b[..8] != MAGIC {
            return corrupt("not a Fathom codec parameter file (bad magic)".into());
        }
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let version = u32_at(8);
        if version != VERSION {
            return Err(CodecError::UnsupportedVersion(version));
        }
        let (dim, bits) = (u32_at(12) as usize, u32_at(16) as usize);
        if dim == 0 || dim > MAX_DIM || !(1..=MAX_BITS).contains(&bits) {
            return corrupt(format!("dim {dim} / bits {bits} out of range"));
        }
        let want = 20 + 4 * (dim + dim * dim + bits) + 4;
        if b.len() != want {
            return corrupt(format!("{} bytes, expected {want} for dim {dim} and {bits} bits", b.len()));
        }
        let found = crc32(&b[..want - 4]);
        if found != u32_at(want - 4) {
            return corrupt(format!("checksum mismatch (stored {:08x}, computed {found:08x})", u32_at(want - 4)));
        }
        let floats: Vec<f32> =
            b[20..want - 4].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if floats.iter().any(|v| !v.is_finite()) {
            return corrupt("non-finite parameter".into());
        }
        Ok(CodecParams {
            dim,
            bits,
            mean: floats[..dim].to_vec(),
            rotation: floats[dim..dim + dim * dim].to_vec(),
            scales: floats[dim + dim * dim..].to_vec(),
        })
    }
}

/// Approximate inner product of the two (centred, rotated) vectors behind
/// codes `a` and `b`: sum over level pairs of a_i a_j <plane_i(a), plane_j(b)>.
pub fn symmetric_ip(p: &CodecParams, a: &Code, b: &Code) -> f32 {
    let mut s = 0f64;
    for (i, ai) in p.scales.iter().enumerate() {
        for (j, aj) in p.scales.iter().enumerate() {
            s += (*ai as f64) * (*aj as f64) * plane_dot(a.plane(i), b.plane(j), p.dim) as f64;
        }
    }
    s as f32
}

/// Approximate squared L2 distance between the vectors behind two codes,
/// from popcounts only. With one bit it is 4 a1^2 x Hamming distance.
pub fn symmetric_l2(p: &CodecParams, a: &Code, b: &Code) -> f32 {
    symmetric_ip(p, a, a) + symmetric_ip(p, b, b) - 2.0 * symmetric_ip(p, a, b)
}

/// Rows of a dim x dim Gaussian matrix, orthonormalised (modified Gram-Schmidt).
fn random_orthogonal(dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::derive(seed, 0xC0DEC);
    let mut m: Vec<f64> = (0..dim * dim).map(|_| rng.normal() as f64).collect();
    for i in 0..dim {
        for k in 0..i {
            let dot: f64 = (0..dim).map(|j| m[i * dim + j] * m[k * dim + j]).sum();
            for j in 0..dim {
                m[i * dim + j] -= dot * m[k * dim + j];
            }
        }
        let norm: f64 = (0..dim).map(|j| m[i * dim + j] * m[i * dim + j]).sum::<f64>().sqrt().max(1e-12);
        for j in 0..dim {
            m[i * dim + j] /= norm;
        }
    }
    m.into_iter().map(|v| v as f32).collect()
}
