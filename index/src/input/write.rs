//! Writers for .fbin-family vector files and .ibin ground truth, and the
//! id-file reader (ibin or ivecs).

use crate::error::{FormatError, IoContext};
use crate::types::ElementType;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Streams rows into a .fbin/.u8bin/.i8bin file; the row count is patched in
/// the header by [`BinWriter::finish`].
pub struct BinWriter {
    path: PathBuf,
    out: BufWriter<File>,
    dim: usize,
    element: ElementType,
    rows: u64,
}

impl BinWriter {
    pub fn create(path: &Path, dim: usize, element: ElementType) -> Result<Self, FormatError> {
        let mut out = BufWriter::new(File::create(path).at(path)?);
        out.write_all(&0i32.to_le_bytes()).at(path)?;
        out.write_all(&(dim as i32).to_le_bytes()).at(path)?;
        Ok(BinWriter { path: path.to_path_buf(), out, dim, element, rows: 0 })
    }

    pub fn write_f32_rows(&mut self, rows: &[f32]) -> Result<(), FormatError> {
        debug_assert_eq!(self.element, ElementType::F32);
        for x in rows {
            self.out.write_all(&x.to_le_bytes()).at(&self.path)?;
        }
        self.rows += (rows.len() / self.dim) as u64;
        Ok(())
    }

    pub fn write_raw_rows(&mut self, raw: &[u8]) -> Result<(), FormatError> {
        self.out.write_all(raw).at(&self.path)?;
        self.rows += (raw.len() / (self.dim * self.element.size_bytes())) as u64;
        Ok(())
    }

    pub fn finish(mut self) -> Result<u64, FormatError> {
        let rows = i32::try_from(self.rows).map_err(|_| FormatError::BadInput {
            path: self.path.clone(),
            what: format!("{} rows do not fit the i32 header", self.rows),
        })?;
        self.out.seek(SeekFrom::Start(0)).at(&self.path)?;
        self.out.write_all(&rows.to_le_bytes()).at(&self.path)?;
        self.out.flush().at(&self.path)?;
        self.out.get_ref().sync_all().at(&self.path)?;
        Ok(self.rows)
    }
}

/// Writes neighbour ids as .ibin: i32 n, i32 k, then n*k i32.
pub fn write_ids_ibin(path: &Path, k: usize, rows: &[Vec<u32>]) -> Result<(), FormatError> {
    let mut out = BufWriter::new(File::create(path).at(path)?);
    out.write_all(&(rows.len() as i32).to_le_bytes()).at(path)?;
    out.write_all(&(k as i32).to_le_bytes()).at(path)?;
    for r in rows {
        for i in 0..k {
            let id = r.get(i).map_or(-1, |&v| v as i32);
            out.write_all(&id.to_le_bytes()).at(path)?;
        }
    }
    out.flush().at(path)
}

/// Reads neighbour ids from .ibin or .ivecs.
pub fn read_ids(path: &Path) -> Result<Vec<Vec<i32>>, FormatError> {
    let mut bytes = Vec::new();
    File::open(path).at(path)?.read_to_end(&mut bytes).at(path)?;
    let corrupt = |offset: u64, what: String| FormatError::Corrupt { path: path.to_path_buf(), offset, what };
    let i32_at = |o: usize| i32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let ints = |from: usize, n: usize| (0..n).map(|j| i32_at(from + 4 * j)).collect::<Vec<i32>>();
    if path.to_string_lossy().ends_with(".ivecs") {
        let mut rows = Vec::new();
        let mut o = 0usize;
        while o < bytes.len() {
            if o + 4 > bytes.len() {
                return Err(corrupt(o as u64, "truncated row header".into()));
            }
            let k = i32_at(o);
            if k < 0 || o + 4 + 4 * k as usize > bytes.len() {
                return Err(corrupt(o as u64, format!("row of {k} ids runs past the end")));
            }
            rows.push(ints(o + 4, k as usize));
            o += 4 + 4 * k as usize;
        }
        return Ok(rows);
    }
    if bytes.len() < 8 {
        return Err(corrupt(0, "file is shorter than the 8-byte header".into()));
    }
    let (n, k) = (i32_at(0), i32_at(4));
    if n < 0 || k <= 0 || 8 + 4 * n as u64 * k as u64 != bytes.len() as u64 {
        return Err(corrupt(0, format!("header says {n} x {k} ids but the file has {} bytes", bytes.len())));
    }
    Ok((0..n as usize).map(|i| ints(8 + 4 * i * k as usize, k as usize)).collect())
}
