//! User ids for a build: one u64 per input row, from a `.npy` (uint64 or
//! int64, shape (n,) or (n, 1)) or a `.u64bin` (the fbin family's layout:
//! u32 n, u32 1, then n little-endian u64). Checked whole before a build
//! writes anything: the count matches the input, no int64 id is negative,
//! no id repeats.

use super::npy;
use crate::error::{FormatError, IoContext};
use rayon::slice::ParallelSliceMut;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Ids read per positioned read while scanning.
const CHUNK_IDS: usize = 1 << 16;

#[derive(Debug)]
pub struct IdFile {
    path: PathBuf,
    file: File,
    pub count: u64,
    data_offset: u64,
    signed: bool,
}

impl IdFile {
    /// Opens `path` and checks its header against the file length.
    pub fn open(path: &Path) -> Result<Self, FormatError> {
        let bad = |what: String| FormatError::BadInput { path: path.to_path_buf(), what };
        let file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        let name = path.to_string_lossy().to_ascii_lowercase();
        let (count, signed, data_offset) = if name.ends_with(".npy") {
            npy::parse_ids_header(&file, path)?
        } else if name.ends_with(".u64bin") {
            let mut h = [0u8; 8];
            file.read_exact_at(&mut h, 0).map_err(|_| bad(format!("file of {len} bytes has no 8-byte header")))?;
            let (n, d) = (u32::from_le_bytes([h[0], h[1], h[2], h[3]]), u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
            if d != 1 {
                return Err(bad(format!("header says {d} values per row; an id file has 1")));
            }
            (n as u64, false, 8)
        } else {
            return Err(bad("unknown id file extension (expected .npy of uint64/int64, or .u64bin)".into()));
        };
        let expected = count.checked_mul(8).and_then(|b| b.checked_add(data_offset));
        if expected != Some(len) {
            return Err(FormatError::Corrupt {
                path: path.to_path_buf(),
                offset: len.min(expected.unwrap_or(len)),
                what: format!("header says {count} ids but the file has {len} bytes"),
            });
        }
        Ok(IdFile { path: path.to_path_buf(), file, count, data_offset, signed })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ids of rows `start..start + count`.
    pub fn read(&self, start: u64, count: usize, out: &mut Vec<u64>) -> Result<(), FormatError> {
        let mut bytes = vec![0u8; count * 8];
        self.file.read_exact_at(&mut bytes, self.data_offset + start * 8).at(&self.path)?;
        out.clear();
        out.extend(bytes.chunks_exact(8).map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])));
        Ok(())
    }

    /// Checks every id (no negative int64, no repeat) and returns a CRC-32
    /// of the ids. Holds all ids in memory for the duplicate check: 8 bytes
    /// per input row.
    pub fn check(&self) -> Result<u32, FormatError> {
        let bad = |what: String| FormatError::BadInput { path: self.path.clone(), what };
        let mut all = Vec::with_capacity(self.count as usize);
        let mut crc = crc32fast::Hasher::new();
        let mut chunk = Vec::new();
        let mut start = 0u64;
        while start < self.count {
            let n = CHUNK_IDS.min((self.count - start) as usize);
            self.read(start, n, &mut chunk)?;
            if self.signed {
                if let Some(i) = chunk.iter().position(|&id| (id as i64) < 0) {
                    return Err(bad(format!(
                        "row {}: id {} is negative; ids are 0..2^63",
                        start + i as u64,
                        chunk[i] as i64
                    )));
                }
            }
            chunk.iter().for_each(|id| crc.update(&id.to_le_bytes()));
            all.extend_from_slice(&chunk);
            start += n as u64;
        }
        all.par_sort_unstable();
        let repeated: HashSet<u64> = all.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
        drop(all);
        if repeated.is_empty() {
            return Ok(crc.finalize());
        }
        // Name the first row (in file order) whose id an earlier row holds.
        let mut first_seen: HashMap<u64, u64> = HashMap::new();
        let mut start = 0u64;
        while start < self.count {
            let n = CHUNK_IDS.min((self.count - start) as usize);
            self.read(start, n, &mut chunk)?;
            for (i, id) in chunk.iter().enumerate() {
                if repeated.contains(id) {
                    let row = start + i as u64;
                    if let Some(first) = first_seen.insert(*id, row) {
                        return Err(bad(format!("row {row}: id {id} repeats row {first}; ids must be unique")));
                    }
                }
            }
            start += n as u64;
        }
        Err(bad("ids repeat".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, header: &[u8], ids: &[u64]) {
        let mut b = header.to_vec();
        ids.iter().for_each(|i| b.extend_from_slice(&i.to_le_bytes()));
        std::fs::write(path, b).unwrap();
    }

    fn u64bin(n: u32) -> Vec<u8> {
        [n.to_le_bytes(), 1u32.to_le_bytes()].concat()
    }

    fn npy(descr: &str, n: usize) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({n},), }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b
    }

    #[test]
    fn reads_u64bin_and_npy_ids() {
        let dir = tempdir();
        let p = dir.join("a.u64bin");
        write(&p, &u64bin(3), &[7, 1 << 40, 9]);
        let f = IdFile::open(&p).unwrap();
        f.check().unwrap();
        let mut out = Vec::new();
        f.read(1, 2, &mut out).unwrap();
        assert_eq!(out, vec![1 << 40, 9]);
        let p = dir.join("b.npy");
        write(&p, &npy("<i8", 2), &[5, 6]);
        let f = IdFile::open(&p).unwrap();
        assert_eq!(f.count, 2);
        f.check().unwrap();
    }

    #[test]
    fn rejects_duplicates_negatives_and_bad_files_naming_the_row() {
        let dir = tempdir();
        let p = dir.join("d.u64bin");
        write(&p, &u64bin(5), &[4, 8, 15, 8, 4]);
        let e = IdFile::open(&p).unwrap().check().unwrap_err().to_string();
        assert!(e.contains("row 3: id 8 repeats row 1"), "{e}");
        let p = dir.join("n.npy");
        write(&p, &npy("<i8", 3), &[1, (-2i64) as u64, 3]);
        let e = IdFile::open(&p).unwrap().check().unwrap_err().to_string();
        assert!(e.contains("row 1: id -2 is negative"), "{e}");
        let p = dir.join("f.npy");
        write(&p, &npy("<f8", 1), &[1]);
        assert!(IdFile::open(&p).unwrap_err().to_string().contains("uint64 or int64"));
        let p = dir.join("t.u64bin");
        write(&p, &u64bin(4), &[1, 2]);
        assert!(IdFile::open(&p).unwrap_err().to_string().contains("header says 4 ids"));
        let p = dir.join("x.txt");
        std::fs::write(&p, b"1\n").unwrap();
        assert!(IdFile::open(&p).unwrap_err().to_string().contains("extension"));
    }

    fn tempdir() -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("fathom-ids-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
