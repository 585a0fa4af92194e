//! Which input rows a build keeps and what their ids are. Ids are the user's
//! (`--ids`) or the row numbers of the input file; a shard build keeps the
//! rows whose id hashes to its shard, so N shard builds of one file split
//! it into N balanced, disjoint parts whose ids are the global ones.

use super::BuildParams;
use crate::error::{BuildError, Result};
use crate::input::IdFile;

/// The shard of `id` among `shards`: a fixed 64-bit mix of the id, so the
/// split is balanced whatever the ids look like (sequential, strided, ...)
/// and the same in every build and every release.
pub fn shard_of(id: u64, shards: u32) -> u32 {
    let mut z = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % shards.max(1) as u64) as u32
}

pub(super) struct Rows {
    ids: Option<IdFile>,
    shard: u32,
    shards: u32,
    /// Rows in the input file.
    pub input_rows: u64,
    /// Rows this build keeps.
    pub kept: u64,
    /// CRC-32 of the id file (0 for row numbers): part of the collection id.
    pub ids_crc: u32,
}

impl Rows {
    /// Opens and checks the id file (if any) and counts the kept rows.
    pub fn open(params: &BuildParams, input_rows: u64) -> Result<Self> {
        let (shard, shards) = (params.shard, params.shard_count);
        let ids = match &params.ids_file {
            Some(p) => {
                let f = IdFile::open(p)?;
                if f.count != input_rows {
                    return Err(BuildError::BadParam {
                        name: "ids",
                        what: format!(
                            "{} holds {} ids but the input has {input_rows} rows; give one id per row",
                            p.display(),
                            f.count
                        ),
                    }
                    .into());
                }
                Some(f)
            }
            None => None,
        };
        let ids_crc = match &ids {
            Some(f) => f.check()?,
            None => 0,
        };
        let mut rows = Rows { ids, shard, shards, input_rows, kept: 0, ids_crc };
        rows.kept = if shards <= 1 {
            input_rows
        } else {
            let (mut kept, mut chunk, mut start) = (0u64, Vec::new(), 0u64);
            while start < input_rows {
                let n = (1usize << 16).min((input_rows - start) as usize);
                rows.ids(start, n, &mut chunk)?;
                kept += chunk.iter().filter(|&&id| rows.keeps(id)).count() as u64;
                start += n as u64;
            }
            kept
        };
        Ok(rows)
    }

    /// Whether every input row is kept (no sharding).
    pub fn keeps_all(&self) -> bool {
        self.shards <= 1
    }

    pub fn shards(&self) -> u32 {
        self.shards.max(1)
    }

    pub fn keeps(&self, id: u64) -> bool {
        self.shards <= 1 || shard_of(id, self.shards) == self.shard
    }

    /// Ids of input rows `start..start + count`.
    pub fn ids(&self, start: u64, count: usize, out: &mut Vec<u64>) -> Result<()> {
        match &self.ids {
            Some(f) => f.read(start, count, out)?,
            None => {
                out.clear();
                out.extend(start..start + count as u64);
            }
        }
        Ok(())
    }

    pub fn user_ids(&self) -> bool {
        self.ids.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_ids_evenly_and_disjointly() {
        let n = 30_000u64;
        let mut sizes = [0u64; 3];
        for id in 0..n {
            sizes[shard_of(id * 1000, 3) as usize] += 1;
        }
        for s in sizes {
            assert!((s as f64 - n as f64 / 3.0).abs() < n as f64 * 0.02, "{sizes:?}");
        }
        assert_eq!(shard_of(12345, 1), 0);
        assert_eq!(shard_of(12345, 7), shard_of(12345, 7), "stable");
    }
}
