//! Readers for vector files: fbin/u8bin/i8bin, fvecs/bvecs, npy; ground truth
//! as ibin/ivecs. Every format is a header plus fixed-stride rows, so one
//! [`VectorFile`] reads them all with positioned reads, streaming in chunks;
//! the header is validated against the file size on open.

mod ids;
mod npy;
mod write;

pub use ids::IdFile;
pub use write::{read_ids, write_ids_ibin, write_truth, BinWriter};

use crate::error::{FormatError, IoContext};
use crate::types::ElementType;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// big-ann-benchmarks: i32 n, i32 d, then n*d elements.
    Bin,
    /// TEXMEX: per row i32 d then d elements.
    Vecs,
    /// NumPy .npy, C order, 2-D.
    Npy,
}

/// An open vector file: format, element type, count and dimension.
#[derive(Debug)]
pub struct VectorFile {
    path: PathBuf,
    file: File,
    pub format: InputFormat,
    pub element: ElementType,
    pub count: u64,
    pub dim: usize,
    data_offset: u64,
    row_prefix_bytes: u64,
    /// .npy of f16 or f64: stored at that width, read as f32.
    widen: Option<npy::Widen>,
}

impl VectorFile {
    /// Opens `path`, inferring the format and element type from its extension.
    pub fn open(path: &Path) -> Result<Self, FormatError> {
        let name = path.to_string_lossy().to_ascii_lowercase();
        let bad = |what: String| FormatError::BadInput { path: path.to_path_buf(), what };
        let (format, element) = if name.ends_with(".fbin") {
            (InputFormat::Bin, Some(ElementType::F32))
        } else if name.ends_with(".u8bin") {
            (InputFormat::Bin, Some(ElementType::U8))
        } else if name.ends_with(".i8bin") {
            (InputFormat::Bin, Some(ElementType::I8))
        } else if name.ends_with(".fvecs") {
            (InputFormat::Vecs, Some(ElementType::F32))
        } else if name.ends_with(".bvecs") {
            (InputFormat::Vecs, Some(ElementType::U8))
        } else if name.ends_with(".npy") {
            (InputFormat::Npy, None)
        } else {
            return Err(bad(
                "unknown vector file extension (expected .fbin, .u8bin, .i8bin, .fvecs, .bvecs or .npy)".into()
            ));
        };
        let file = File::open(path).at(path)?;
        let file_len = file.metadata().at(path)?.len();
        let read_i32 = |off: u64| -> Result<i32, FormatError> {
            let mut b = [0u8; 4];
            file.read_exact_at(&mut b, off).map_err(|_| FormatError::Corrupt {
                path: path.to_path_buf(),
                offset: off,
                what: format!("file of {file_len} bytes is too short for its header"),
            })?;
            Ok(i32::from_le_bytes(b))
        };
        let mut widen = None;
        let (element, count, dim, data_offset, row_prefix_bytes) = match format {
            InputFormat::Bin => {
                let (n, d) = (read_i32(0)?, read_i32(4)?);
                if n < 0 || d <= 0 {
                    return Err(bad(format!("header says n = {n}, d = {d}")));
                }
                (element.unwrap_or(ElementType::F32), n as u64, d as usize, 8, 0)
            }
            InputFormat::Vecs => {
                let element = element.unwrap_or(ElementType::F32);
                if file_len == 0 {
                    (element, 0, 1, 0, 4)
                } else {
                    let d = read_i32(0)?;
                    if d <= 0 {
                        return Err(bad(format!("first row says d = {d}")));
                    }
                    let stride = 4 + d as u64 * element.size_bytes() as u64;
                    if file_len % stride != 0 {
                        return Err(FormatError::Corrupt {
                            path: path.to_path_buf(),
                            offset: file_len - file_len % stride,
                            what: format!(
                                "file length {file_len} is not a multiple of the row size {stride} (d = {d}); truncated?"
                            ),
                        });
                    }
                    (element, file_len / stride, d as usize, 0, 4)
                }
            }
            InputFormat::Npy => {
                let h = npy::parse_header(&file, path)?;
                widen = h.widen;
                (h.element, h.rows, h.cols, h.data_offset, 0)
            }
        };
        let stored = widen.map_or(element.size_bytes(), |w| w.bytes());
        let row_bytes = row_prefix_bytes + dim as u64 * stored as u64;
        let expected = count
            .checked_mul(row_bytes)
            .and_then(|b| b.checked_add(data_offset))
            .ok_or_else(|| bad(format!("header says {count} x {dim}, which overflows")))?;
        if expected != file_len {
            return Err(FormatError::Corrupt {
                path: path.to_path_buf(),
                offset: file_len.min(expected),
                what: format!(
                    "header says {count} vectors of dimension {dim} ({expected} bytes) but the file has {file_len} bytes"
                ),
            });
        }
        Ok(VectorFile {
            path: path.to_path_buf(),
            file,
            format,
            element,
            count,
            dim,
            data_offset,
            row_prefix_bytes,
            widen,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn row_stride(&self) -> u64 {
        let stored = self.widen.map_or(self.element.size_bytes(), |w| w.bytes());
        self.row_prefix_bytes + self.dim as u64 * stored as u64
    }

    /// Raw element bytes of rows `start..start+count` (row prefixes removed).
    pub fn read_raw(&self, start: u64, count: usize, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let stride = self.row_stride();
        let row_bytes = self.dim * self.element.size_bytes();
        let offset = self.data_offset + start * stride;
        let mut buf = vec![0u8; count * stride as usize];
        self.file.read_exact_at(&mut buf, offset).at(&self.path)?;
        out.clear();
        if let Some(w) = self.widen {
            out.reserve(count * row_bytes);
            w.to_f32_bytes(&buf, out);
            return Ok(());
        }
        if self.row_prefix_bytes == 0 {
            *out = buf;
            return Ok(());
        }
        out.reserve(count * row_bytes);
        for (r, row) in buf.chunks_exact(stride as usize).enumerate() {
            let d = i32::from_le_bytes([row[0], row[1], row[2], row[3]]);
            if d as i64 != self.dim as i64 {
                return Err(FormatError::Corrupt {
                    path: self.path.clone(),
                    offset: offset + r as u64 * stride,
                    what: format!("row {} says d = {d}, expected {}", start + r as u64, self.dim),
                });
            }
            out.extend_from_slice(&row[4..]);
        }
        Ok(())
    }

    /// Rows `start..start+count` converted to f32, row-major.
    pub fn read_f32(&self, start: u64, count: usize, out: &mut Vec<f32>) -> Result<(), FormatError> {
        let mut raw = Vec::new();
        self.read_raw(start, count, &mut raw)?;
        raw_to_f32(self.element, &raw, out);
        Ok(())
    }
}

/// Converts little-endian element bytes to f32.
pub fn raw_to_f32(element: ElementType, raw: &[u8], out: &mut Vec<f32>) {
    out.clear();
    match element {
        ElementType::F32 => out.extend(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        ElementType::U8 => out.extend(raw.iter().map(|&b| b as f32)),
        ElementType::I8 => out.extend(raw.iter().map(|&b| b as i8 as f32)),
        // Codes have no per-element floats (their views need the scales).
        ElementType::Bits => {}
    }
}

#[cfg(test)]
mod tests;
