//! The resident row codes of `codes.bin`, held in memory: which rows each
//! posting lists and every row's code. With them the first search stage
//! reads nothing from disk; only the rerank does.

use crate::distance::rows::Rows;
use crate::error::FormatError;
use crate::quant::rowcode;
use fathom_codec::CodecParams;
use std::path::Path;
use std::sync::Arc;

pub struct ResidentCodes {
    /// The codec; its `rotation` is empty when `rotation_f16` holds it.
    pub codec: Arc<CodecParams>,
    /// The rotation as half floats (queries only: rows were encoded with
    /// the f32 one at build time): half of a d x d matrix, the largest fixed
    /// cost of resident codes on a small set (0.6 MB at 384-d).
    rotation_f16: Vec<u16>,
    /// `offsets[p]..offsets[p + 1]`: posting p's rows in `rows`.
    offsets: Vec<u64>,
    rows: Vec<u32>,
    records: Vec<u8>,
    pub record_bytes: usize,
}

impl ResidentCodes {
    /// Parses the body of `codes.bin` (its CRC already checked) for an
    /// index of `postings` postings and `vector_count` rows listing `entries`.
    pub fn decode(
        body: &[u8],
        path: &Path,
        postings: usize,
        vector_count: u64,
        entries: u64,
        codec: Arc<CodecParams>,
        metric: crate::types::Metric,
    ) -> Result<Self, FormatError> {
        let corrupt = |offset: u64, what: String| FormatError::Corrupt { path: path.to_path_buf(), offset, what };
        let record_bytes = rowcode::record_bytes(&codec, metric);
        let want = (postings as u64 + 1)
            .checked_mul(8)
            .and_then(|o| o.checked_add(entries.checked_mul(4)?))
            .and_then(|o| o.checked_add(vector_count.checked_mul(record_bytes as u64)?));
        if want != Some(body.len() as u64) {
            return Err(corrupt(
                0,
                format!(
                    "{} body bytes do not hold {postings} postings, {entries} entries and {vector_count} rows",
                    body.len()
                ),
            ));
        }
        let (offs, rest) = body.split_at((postings + 1) * 8);
        let offsets: Vec<u64> =
            offs.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect();
        let sorted = offsets.windows(2).all(|w| w[0] <= w[1]);
        if offsets.first() != Some(&0) || offsets.last() != Some(&entries) || !sorted {
            return Err(corrupt(0, "posting offsets are not an ascending list from 0 to the entry count".into()));
        }
        let (rows_bytes, records) = rest.split_at(entries as usize * 4);
        let rows: Vec<u32> = rows_bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if let Some(i) = rows.iter().position(|&r| r as u64 >= vector_count) {
            return Err(corrupt(
                (postings as u64 + 1) * 8 + 4 * i as u64,
                format!("entry {i} names a row past the end"),
            ));
        }
        let (codec, rotation_f16) = match crate::distance::rows::to_f16(&codec.rotation) {
            Some(h) => (Arc::new(CodecParams { rotation: Vec::new(), ..(*codec).clone() }), h),
            None => (codec, Vec::new()),
        };
        Ok(ResidentCodes {
            codec,
            rotation_f16,
            offsets,
            rows,
            records: crate::io::hugepages::copy_hinted(records),
            record_bytes,
        })
    }

    /// The codec's rotation, for [`rowcode::RowQuery::new`].
    pub fn rotation(&self) -> Rows<'_> {
        if self.rotation_f16.is_empty() {
            Rows::F32(&self.codec.rotation)
        } else {
            Rows::F16(&self.rotation_f16)
        }
    }

    /// Rows listed by posting `p`.
    #[inline]
    pub fn posting_rows(&self, p: u32) -> &[u32] {
        &self.rows[super::posting_cache::span(&self.offsets, p)]
    }

    /// The record of `row`.
    #[inline]
    pub fn record(&self, row: u32) -> &[u8] {
        let at = row as usize * self.record_bytes;
        &self.records[at..at + self.record_bytes]
    }

    pub fn resident_bytes(&self) -> u64 {
        (self.offsets.len() * 8 + self.rows.len() * 4 + self.records.len()) as u64
            + 4 * (self.codec.mean.len() + self.codec.rotation.len()) as u64
            + 2 * self.rotation_f16.len() as u64
    }
}
