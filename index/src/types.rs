//! Metric, element type and id newtypes shared by build and search.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Largest squared norm of a stored vector or an l2/ip query: distances
/// (sums of squares and products of two such vectors) stay far inside
/// f32's range (3.4e38). Checked in f64, where the norm itself cannot
/// overflow.
pub const MAX_NORM_SQ: f64 = 1e36;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Squared Euclidean distance (reported squared).
    L2,
    /// Inner product; reported as the negated product so smaller is better.
    Ip,
    /// Cosine; vectors are normalised, reported as 1 - cos.
    Cosine,
    /// Hamming distance between packed bit vectors (binary collections).
    Hamming,
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "l2" | "euclidean" => Ok(Metric::L2),
            "ip" | "dot" | "inner_product" => Ok(Metric::Ip),
            "cosine" | "cos" | "angular" => Ok(Metric::Cosine),
            "hamming" => Ok(Metric::Hamming),
            other => Err(format!("unknown metric {other:?} (expected l2, ip, cosine or hamming)")),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metric::L2 => "l2",
            Metric::Ip => "ip",
            Metric::Cosine => "cosine",
            Metric::Hamming => "hamming",
        })
    }
}

/// Element type of stored full-precision vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementType {
    F32,
    U8,
    I8,
    /// Packed bit codes (binary collections; layout in `fathom_codec::pack`).
    Bits,
}

impl ElementType {
    /// Bytes per element; packed bits are sized per code, not per element,
    /// and input files never hold them (a `.u8bin` of bits reads as u8).
    pub fn size_bytes(self) -> usize {
        match self {
            ElementType::F32 => 4,
            ElementType::U8 | ElementType::I8 => 1,
            ElementType::Bits => 0,
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElementType::F32 => "f32",
            ElementType::U8 => "u8",
            ElementType::I8 => "i8",
            ElementType::Bits => "bits",
        })
    }
}

/// Row number of a vector in the input file.
pub type VectorId = u32;
/// Index of a posting list (and of its centroid).
pub type PostingId = u32;
