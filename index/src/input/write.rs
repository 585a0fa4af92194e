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

/// Writes neighbour ids as ground truth: `.u64bin` (u32 n, u32 k, then
/// n*k little-endian u64: user ids of any size) or else `.ibin` (i32 n, i32
/// k, then n*k i32; rows shorter than k are padded with -1), which refuses
/// an id past i32 and names `.u64bin`.
pub fn write_truth(path: &Path, k: usize, rows: &[Vec<u64>]) -> Result<(), FormatError> {
    let bad = |what: String| FormatError::BadInput { path: path.to_path_buf(), what };
    let wide = path.to_string_lossy().to_ascii_lowercase().ends_with(".u64bin");
    if !wide {
        if let Some(id) = rows.iter().flatten().find(|&&id| id > i32::MAX as u64) {
            return Err(bad(format!("id {id} does not fit .ibin's i32 ids: write the truth as .u64bin")));
        }
    }
    let (n, kk) = (u32::try_from(rows.len()), u32::try_from(k));
    let (Ok(n), Ok(kk)) = (n, kk) else { return Err(bad("too many rows or neighbours for the header".into())) };
    let mut out = BufWriter::new(File::create(path).at(path)?);
    out.write_all(&n.to_le_bytes()).at(path)?;
    out.write_all(&kk.to_le_bytes()).at(path)?;
    for r in rows {
        for i in 0..k {
            if wide {
                // A short row (fewer vectors than k) is padded with u64::MAX.
                out.write_all(&r.get(i).copied().unwrap_or(u64::MAX).to_le_bytes()).at(path)?;
            } else {
                let id = r.get(i).map_or(-1, |&v| v as i32);
                out.write_all(&id.to_le_bytes()).at(path)?;
            }
        }
    }
    out.flush().at(path)
}

/// Writes row-number neighbour ids as .ibin (see [`write_truth`]).
pub fn write_ids_ibin(path: &Path, k: usize, rows: &[Vec<u32>]) -> Result<(), FormatError> {
    let rows: Vec<Vec<u64>> = rows.iter().map(|r| r.iter().map(|&v| v as u64).collect()).collect();
    write_truth(path, k, &rows)
}

/// Reads neighbour ids from .ibin, .ivecs or .u64bin (see [`write_truth`]);
/// padding (-1, u64::MAX) is dropped, so a row may be shorter than k.
pub fn read_ids(path: &Path) -> Result<Vec<Vec<u64>>, FormatError> {
    let mut bytes = Vec::new();
    File::open(path).at(path)?.read_to_end(&mut bytes).at(path)?;
    let corrupt = |offset: u64, what: String| FormatError::Corrupt { path: path.to_path_buf(), offset, what };
    let i32_at = |o: usize| i32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let ints = |from: usize, n: usize| {
        (0..n).map(|j| i32_at(from + 4 * j)).filter_map(|v| u64::try_from(v).ok()).collect::<Vec<u64>>()
    };
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".ivecs") {
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
    if name.ends_with(".u64bin") {
        let (n, k) = (i32_at(0) as u32 as u64, i32_at(4) as u32 as u64);
        if k == 0 || 8 + 8 * n * k != bytes.len() as u64 {
            return Err(corrupt(0, format!("header says {n} x {k} ids but the file has {} bytes", bytes.len())));
        }
        let at = |o: usize| {
            u64::from_le_bytes([
                bytes[o],
                bytes[o + 1],
                bytes[o + 2],
                bytes[o + 3],
                bytes[o + 4],
                bytes[o + 5],
                bytes[o + 6],
                bytes[o + 7],
            ])
        };
        let row = |i: usize| (0..k as usize).map(move |j| at(8 + 8 * (i * k as usize + j))).filter(|&v| v != u64::MAX);
        return Ok((0..n as usize).map(|i| row(i).collect()).collect());
    }
    let (n, k) = (i32_at(0), i32_at(4));
    if n < 0 || k <= 0 || 8 + 4 * n as u64 * k as u64 != bytes.len() as u64 {
        return Err(corrupt(0, format!("header says {n} x {k} ids but the file has {} bytes", bytes.len())));
    }
    Ok((0..n as usize).map(|i| ints(8 + 4 * i * k as usize, k as usize)).collect())
}
