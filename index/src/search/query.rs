//! Queries as the index takes them: checked (dimension, finite values, k,
//! norm) and prepared (normalised for cosine; encoded for a binary
//! collection) before a search routes them.

use super::open::Index;
use crate::error::QueryError;
use crate::quant::{CodeQuery, CodeSpace, QueryCodes};
use crate::types::{Metric, MAX_NORM_SQ};

/// A query: floats, or a packed code (layout of `fathom_codec::pack`) for a
/// binary collection. An encoded binary collection also takes floats and
/// encodes them with its codec.
#[derive(Debug, Clone, Copy)]
pub enum Query<'a> {
    Floats(&'a [f32]),
    Code(&'a [u8]),
}

impl Index {
    /// Checks a query and prepares it: the floats that route it to
    /// centroids and the form that scores posting codes.
    pub fn prepare(&self, query: Query, k: usize) -> Result<(Vec<f32>, QueryCodes), QueryError> {
        let m = &self.manifest;
        let Some(space) = self.code_space() else {
            let Query::Floats(f) = query else {
                return Err(QueryError::FloatsWanted);
            };
            let q = self.prepare_query(f, k)?;
            let codes = m.quantizer.query(&q, m.metric);
            return Ok((q, codes));
        };
        let code = match query {
            Query::Code(bytes) => {
                self.check_k(k)?;
                space.check(bytes).map_err(QueryError::BadCode)?;
                bytes.to_vec()
            }
            Query::Floats(f) => {
                let Some(codec) = &space.codec else {
                    return Err(QueryError::BitsWanted { bytes: space.code_bytes() });
                };
                let q = self.prepare_query(f, k)?;
                codec.encode(&q).map_err(|e| QueryError::BadCode(e.to_string()))?.to_bytes()
            }
        };
        let (mut words, mut view) = (Vec::new(), Vec::new());
        CodeSpace::words(&code, &mut words);
        space.view(&words, &mut view);
        Ok((view, QueryCodes::Codes(CodeQuery::new(space, &code))))
    }

    fn check_k(&self, k: usize) -> Result<(), QueryError> {
        if k == 0 {
            return Err(QueryError::ZeroK);
        }
        if k as u64 > self.len() {
            return Err(QueryError::KTooLarge { k, count: self.len() });
        }
        Ok(())
    }

    /// Checks a query and returns it prepared for search (normalised for cosine).
    pub fn prepare_query(&self, q: &[f32], k: usize) -> Result<Vec<f32>, QueryError> {
        if q.len() != self.dim() {
            return Err(QueryError::WrongDimension { expected_dim: self.dim(), received_dim: q.len() });
        }
        if let Some((index, &value)) = q.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(QueryError::NotFinite { index, value });
        }
        self.check_k(k)?;
        let mut q = q.to_vec();
        // In f64: a norm past f32's range would make every distance inf.
        let norm = q.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
        if self.metric() == Metric::Cosine {
            if norm == 0.0 {
                return Err(QueryError::ZeroVector);
            }
            q.iter_mut().for_each(|v| *v = (*v as f64 / norm) as f32);
        } else if norm * norm >= MAX_NORM_SQ {
            return Err(QueryError::TooLarge { norm });
        }
        Ok(q)
    }
}
