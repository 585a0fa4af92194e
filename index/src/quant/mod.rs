//! Posting codes, behind one [`Quantizer`]: SQ8 (one byte per dimension),
//! PQ (one byte per sub-vector), binary bit-planes (the shared codec,
//! 1..4 bits per dimension) or plain f32 (exact).

mod binary;
mod codes;
mod pq;
pub mod rowcode;
mod sq8;
pub use binary::params_hex;
pub use codes::{CodeQuery, CodeSpace};
pub use pq::{table_distance, Pq, PqQuery};
pub use sq8::{Sq8, Sq8Query};

use crate::distance::{kernels, Kernels};
use crate::types::Metric;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Quantizer {
    Sq8(Sq8),
    Pq(Pq),
    F32 {
        dim: usize,
    },
    /// Packed bit-planes from the shared binary codec.
    Binary {
        #[serde(with = "binary::params_hex")]
        params: std::sync::Arc<fathom_codec::CodecParams>,
    },
    /// A binary collection: postings hold whole codes, scored symmetrically.
    Codes(CodeSpace),
}

impl Quantizer {
    pub fn code_bytes(&self) -> usize {
        match self {
            Quantizer::Sq8(q) => q.min.len(),
            Quantizer::Pq(p) => p.m,
            Quantizer::F32 { dim } => 4 * dim,
            Quantizer::Binary { params } => 8 * params.bits * fathom_codec::words_per_plane(params.dim),
            Quantizer::Codes(s) => s.code_bytes(),
        }
    }

    pub fn dim(&self) -> usize {
        match self {
            Quantizer::Sq8(q) => q.min.len(),
            Quantizer::Pq(p) => p.dim,
            Quantizer::F32 { dim } => *dim,
            Quantizer::Binary { params } => params.dim,
            Quantizer::Codes(s) => s.dim,
        }
    }

    /// Whether posting entries hold vector ids rather than `vectors.bin`
    /// rows: binary collections, whose results need no second read round.
    pub fn entries_hold_ids(&self) -> bool {
        matches!(self, Quantizer::Codes(_))
    }

    /// Whether a posting entry codes x less the posting's centroid
    /// (residual PQ) rather than x.
    pub fn codes_residuals(&self) -> bool {
        matches!(self, Quantizer::Pq(p) if p.residual)
    }

    /// Whether code distances are exact (no rerank needed).
    pub fn is_exact(&self) -> bool {
        matches!(self, Quantizer::F32 { .. } | Quantizer::Codes(_))
    }

    pub fn encode(&self, x: &[f32], out: &mut [u8]) {
        match self {
            Quantizer::Sq8(q) => q.encode(x, out),
            Quantizer::Pq(p) => p.encode(x, out),
            Quantizer::F32 { .. } => {
                for (o, v) in out.chunks_exact_mut(4).zip(x) {
                    o.copy_from_slice(&v.to_le_bytes());
                }
            }
            // Vectors reaching here are finite and of the right dimension
            // (checked when read), so encoding cannot fail.
            Quantizer::Binary { params } => {
                if let Ok(code) = params.encode(x) {
                    out.copy_from_slice(&code.to_bytes());
                }
            }
            // `x` is a code's view; the builder stores codes as read.
            Quantizer::Codes(s) => s.encode_view(x, out),
        }
    }

    /// Prepares `q` for scoring codes under `metric` (internal distances:
    /// squared L2, or -ip). For a binary collection `q` is the query code's view.
    pub fn query(&self, q: &[f32], metric: Metric) -> QueryCodes {
        let ip = metric == Metric::Ip;
        match self {
            Quantizer::Sq8(s) => QueryCodes::Sq8(if ip { s.query_ip(q) } else { s.query_l2(q) }),
            Quantizer::Pq(p) => QueryCodes::Pq(p.query(kernels(), q, ip)),
            Quantizer::F32 { .. } => QueryCodes::F32 { q: q.to_vec(), ip, row: Vec::new() },
            Quantizer::Binary { params } => QueryCodes::Binary(binary::BinaryQuery::new(params, q, ip), params.clone()),
            Quantizer::Codes(s) => {
                let mut code = vec![0u8; s.code_bytes()];
                s.encode_view(q, &mut code);
                QueryCodes::Codes(CodeQuery::new(s, &code))
            }
        }
    }

    /// Drops the parameters only the disk path's posting codes need (the
    /// PQ codebooks): an index whose resident row codes serve every float
    /// query never builds a PQ table. Afterwards [`Self::scores_postings`]
    /// is false.
    pub fn release_posting_tables(&mut self) {
        if let Quantizer::Pq(p) = self {
            p.release_codebooks();
        }
    }

    /// Whether posting codes can be scored (false once
    /// [`Self::release_posting_tables`] dropped the codebooks).
    pub fn scores_postings(&self) -> bool {
        match self {
            Quantizer::Pq(p) => p.has_codebooks(),
            _ => true,
        }
    }

    /// Bytes of parameters held in memory.
    pub fn resident_bytes(&self) -> usize {
        match self {
            Quantizer::Sq8(q) => 8 * q.min.len(),
            Quantizer::Pq(p) => 4 * p.centroids.len(),
            Quantizer::F32 { .. } => 0,
            Quantizer::Binary { params } => 4 * (params.mean.len() + params.rotation.len() + params.scales.len()),
            Quantizer::Codes(s) => {
                s.codec.as_ref().map_or(0, |p| 4 * (p.mean.len() + p.rotation.len() + p.scales.len()))
            }
        }
    }
}

/// A query prepared for one quantizer.
pub enum QueryCodes {
    Sq8(Sq8Query),
    Pq(PqQuery),
    F32 { q: Vec<f32>, ip: bool, row: Vec<f32> },
    Binary(binary::BinaryQuery, std::sync::Arc<fathom_codec::CodecParams>),
    Codes(CodeQuery),
}

impl QueryCodes {
    /// Whether scoring a posting needs its centroid first
    /// ([`Self::enter_posting`]): residual PQ codes.
    pub fn needs_centroids(&self) -> bool {
        matches!(self, QueryCodes::Pq(t) if t.needs_centroids())
    }

    /// Prepares for the codes of the posting whose centroid (as searches
    /// hold it) is `c`; see [`Pq::enter_posting`].
    pub fn enter_posting(&mut self, quantizer: &Quantizer, k: &Kernels, c: &[f32]) {
        if let (QueryCodes::Pq(t), Quantizer::Pq(p)) = (self, quantizer) {
            p.enter_posting(k, t, c);
        }
    }

    #[inline]
    pub fn distance(&mut self, k: &Kernels, code: &[u8]) -> f32 {
        match self {
            QueryCodes::Sq8(s) => s.distance(k, code),
            QueryCodes::Pq(t) => t.distance(code),
            QueryCodes::F32 { q, ip, row } => {
                row.clear();
                row.extend(code.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                if *ip {
                    -(k.dot)(q, row)
                } else {
                    (k.l2_sq)(q, row)
                }
            }
            QueryCodes::Binary(bq, params) => bq.distance(params, code),
            QueryCodes::Codes(cq) => cq.distance(k, code),
        }
    }

    /// The distances of every code of a posting's block (`code_bytes`
    /// each) into `out`; PQ and single-plane binary codes in one pass.
    pub fn distances(&mut self, k: &Kernels, codes: &[u8], code_bytes: usize, out: &mut Vec<f32>) {
        match self {
            QueryCodes::Pq(t) => t.distances(codes, code_bytes, out),
            QueryCodes::Codes(cq) => cq.distances(k, codes, out),
            _ => {
                out.clear();
                for code in codes.chunks_exact(code_bytes.max(1)) {
                    let d = self.distance(k, code);
                    out.push(d);
                }
            }
        }
    }
}
