//! Assignments spilled to disk by posting range, so the builder's memory does
//! not grow with the number of vectors. A record is
//! `posting u32 | vector u32 | squared distance f32 | rank u32 | home u32 |
//! slot u32 | payload` (rank 0 = the vector's nearest posting; home/slot =
//! where its full vector goes: the `slot`-th primary of posting `home`). Buckets are read back one at a
//! time, in posting order.

use crate::error::{FormatError, IoContext};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

pub const RECORD_HEADER_BYTES: usize = 24;

pub struct Spill {
    dir: PathBuf,
    writers: Vec<BufWriter<File>>,
    buckets: u32,
    postings_per_bucket: u32,
    pub code_bytes: usize,
    pub records: u64,
}

/// What reopens a finished spill (kept in the build's checkpoint).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpillShape {
    pub buckets: u32,
    pub postings_per_bucket: u32,
    pub code_bytes: usize,
    pub records: u64,
}

/// One record read back.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub posting: u32,
    pub vector: u32,
    pub dist: f32,
    pub rank: u32,
    pub home: u32,
    pub slot: u32,
    /// Offset of the code in the bucket's byte buffer.
    pub code_at: usize,
}

impl Spill {
    pub fn create(dir: &Path, postings: u32, buckets: u32, code_bytes: usize) -> Result<Self, FormatError> {
        std::fs::create_dir_all(dir).at(dir)?;
        let buckets = buckets.clamp(1, postings.max(1));
        let postings_per_bucket = postings.div_ceil(buckets).max(1);
        let buckets = postings.div_ceil(postings_per_bucket).max(1);
        let writers = (0..buckets)
            .map(|b| {
                let p = dir.join(format!("bucket-{b:05}"));
                File::create(&p).at(&p).map(|f| BufWriter::with_capacity(1 << 16, f))
            })
            .collect::<Result<_, _>>()?;
        Ok(Spill { dir: dir.to_path_buf(), writers, buckets, postings_per_bucket, code_bytes, records: 0 })
    }

    /// A finished spill in `dir`, for reading; every bucket file must be
    /// there.
    pub fn reopen(dir: &Path, shape: SpillShape) -> Result<Self, FormatError> {
        for b in 0..shape.buckets {
            let p = dir.join(format!("bucket-{b:05}"));
            std::fs::metadata(&p).at(&p)?;
        }
        Ok(Spill {
            dir: dir.to_path_buf(),
            writers: Vec::new(),
            buckets: shape.buckets,
            postings_per_bucket: shape.postings_per_bucket,
            code_bytes: shape.code_bytes,
            records: shape.records,
        })
    }

    pub fn shape(&self) -> SpillShape {
        SpillShape {
            buckets: self.buckets,
            postings_per_bucket: self.postings_per_bucket,
            code_bytes: self.code_bytes,
            records: self.records,
        }
    }

    pub fn bucket_count(&self) -> u32 {
        self.buckets
    }

    /// Postings of bucket `b`.
    pub fn bucket_range(&self, b: u32, postings: u32) -> std::ops::Range<u32> {
        let s = b * self.postings_per_bucket;
        s..(s + self.postings_per_bucket).min(postings)
    }

    fn bucket_path(&self, b: u32) -> PathBuf {
        self.dir.join(format!("bucket-{b:05}"))
    }

    pub fn push(
        &mut self,
        posting: u32,
        vector: u32,
        dist: f32,
        rank: u32,
        home: (u32, u32),
        code: &[u8],
    ) -> Result<(), FormatError> {
        let b = (posting / self.postings_per_bucket) as usize;
        let w = &mut self.writers[b];
        let mut h = [0u8; RECORD_HEADER_BYTES];
        h[0..4].copy_from_slice(&posting.to_le_bytes());
        h[4..8].copy_from_slice(&vector.to_le_bytes());
        h[8..12].copy_from_slice(&dist.to_le_bytes());
        h[12..16].copy_from_slice(&rank.to_le_bytes());
        h[16..20].copy_from_slice(&home.0.to_le_bytes());
        h[20..24].copy_from_slice(&home.1.to_le_bytes());
        let path = &self.dir;
        w.write_all(&h).at(path)?;
        w.write_all(code).at(path)?;
        self.records += 1;
        Ok(())
    }

    /// Flushes and syncs every bucket: a checkpoint may name this spill.
    pub fn finish_writing(&mut self) -> Result<(), FormatError> {
        for w in &mut self.writers {
            w.flush().at(&self.dir)?;
            w.get_ref().sync_all().at(&self.dir)?;
        }
        self.writers.clear();
        Ok(())
    }

    /// Reads bucket `b` whole: its bytes and its records (unsorted).
    pub fn read_bucket(&self, b: u32) -> Result<(Vec<u8>, Vec<Record>), FormatError> {
        let path = self.bucket_path(b);
        let mut bytes = Vec::new();
        File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes)).at(&path)?;
        let rec = RECORD_HEADER_BYTES + self.code_bytes;
        if bytes.len() % rec != 0 {
            return Err(FormatError::Corrupt {
                path,
                offset: (bytes.len() - bytes.len() % rec) as u64,
                what: "spill bucket ends mid-record".into(),
            });
        }
        let u32_at = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let records = (0..bytes.len() / rec)
            .map(|i| {
                let o = i * rec;
                Record {
                    posting: u32_at(o),
                    vector: u32_at(o + 4),
                    dist: f32::from_bits(u32_at(o + 8)),
                    rank: u32_at(o + 12),
                    home: u32_at(o + 16),
                    slot: u32_at(o + 20),
                    code_at: o + RECORD_HEADER_BYTES,
                }
            })
            .collect();
        Ok((bytes, records))
    }

    pub fn remove_bucket(&self, b: u32) {
        let _ = std::fs::remove_file(self.bucket_path(b));
    }
}
