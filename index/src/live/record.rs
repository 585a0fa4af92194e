//! The payload of a write-ahead log record: one write request, upserts or
//! deletes, as the log stores it and a replica (or a restart) replays it.
//!
//! ```text
//! upsert: [1u8 kind][1u8 version][u8 element][u32 dim][u32 n][n x u64 id][n x dim elements]
//! delete: [2u8 kind][1u8 version][u32 n][n x u64 id]
//! ```
//! Little endian; element 0 = f32, 1 = u8, 2 = i8; packed bit rows are
//! `dim` bits rounded up to whole bytes. Decoding checks every length, so a
//! record is either exactly what was written or an error (the log's CRC
//! already guards against damage; this guards against a record of another
//! version or kind).

use crate::error::FormatError;
use crate::types::ElementType;
use std::path::Path;

const UPSERT: u8 = 1;
const DELETE: u8 = 2;
const VERSION: u8 = 1;

/// One write request.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Vectors by id; an id already present is replaced.
    Upsert { ids: Vec<u64>, element: ElementType, dim: u32, rows: Vec<u8> },
    /// Ids to remove; an absent id is no error.
    Delete { ids: Vec<u64> },
}

/// Bytes of one row of `dim` elements of `element`.
pub fn row_bytes(element: ElementType, dim: u32) -> usize {
    match element {
        ElementType::Bits => (dim as usize).div_ceil(8),
        e => e.size_bytes() * dim as usize,
    }
}

impl Write {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Write::Upsert { ids, element, dim, rows } => {
                out.extend_from_slice(&[UPSERT, VERSION, element_code(*element)]);
                out.extend_from_slice(&dim.to_le_bytes());
                out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
                ids.iter().for_each(|id| out.extend_from_slice(&id.to_le_bytes()));
                out.extend_from_slice(rows);
            }
            Write::Delete { ids } => {
                out.extend_from_slice(&[DELETE, VERSION]);
                out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
                ids.iter().for_each(|id| out.extend_from_slice(&id.to_le_bytes()));
            }
        }
        out
    }

    /// Decodes a record; `log` names the log in errors.
    pub fn decode(bytes: &[u8], log: &Path) -> Result<Write, FormatError> {
        let bad = |what: String| FormatError::Corrupt { path: log.to_path_buf(), offset: 0, what };
        let mut r = Reader(bytes);
        let (kind, version) = (r.u8(), r.u8());
        if version != Some(VERSION) {
            return Err(bad(format!("write record version {version:?}; this build reads {VERSION}")));
        }
        let w = match kind {
            Some(UPSERT) => {
                let element = r.u8().and_then(element_of).ok_or_else(|| bad("unknown element type".into()))?;
                let (dim, n) = (r.u32(), r.u32());
                let (Some(dim), Some(n)) = (dim, n) else { return Err(bad("short upsert header".into())) };
                if dim == 0 || n == 0 {
                    return Err(bad(format!("an upsert of {n} rows of {dim} dimensions")));
                }
                let ids = r.ids(n).ok_or_else(|| bad("short id list".into()))?;
                let want =
                    row_bytes(element, dim).checked_mul(n as usize).ok_or_else(|| bad("rows too large".into()))?;
                let rows = r.take(want).ok_or_else(|| bad(format!("rows hold fewer than {want} bytes")))?.to_vec();
                Write::Upsert { ids, element, dim, rows }
            }
            Some(DELETE) => {
                let n = r.u32().ok_or_else(|| bad("short delete header".into()))?;
                Write::Delete { ids: r.ids(n).ok_or_else(|| bad("short id list".into()))? }
            }
            k => return Err(bad(format!("unknown write record kind {k:?}"))),
        };
        if !r.0.is_empty() {
            return Err(bad(format!("{} bytes after the record", r.0.len())));
        }
        Ok(w)
    }
}

fn element_code(e: ElementType) -> u8 {
    match e {
        ElementType::F32 => 0,
        ElementType::U8 => 1,
        ElementType::I8 => 2,
        ElementType::Bits => 3,
    }
}

fn element_of(c: u8) -> Option<ElementType> {
    Some(match c {
        0 => ElementType::F32,
        1 => ElementType::U8,
        2 => ElementType::I8,
        3 => ElementType::Bits,
        _ => return None,
    })
}

/// Reads little-endian fields off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn ids(&mut self, n: u32) -> Option<Vec<u64>> {
        let bytes = self.take((n as usize).checked_mul(8)?)?;
        Some(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> &'static Path {
        Path::new("wal")
    }

    #[test]
    fn writes_round_trip_and_every_truncation_or_extension_is_refused() {
        let rows: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let up = Write::Upsert { ids: vec![7, u64::MAX], element: ElementType::F32, dim: 3, rows };
        let del = Write::Delete { ids: vec![1, 2, 3] };
        let bits = Write::Upsert { ids: vec![9], element: ElementType::Bits, dim: 12, rows: vec![0xAB, 0x0C] };
        for w in [up, del, bits] {
            let bytes = w.encode();
            assert_eq!(Write::decode(&bytes, log()).unwrap(), w);
            for cut in 0..bytes.len() {
                assert!(Write::decode(&bytes[..cut], log()).is_err(), "{w:?} cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Write::decode(&longer, log()).is_err());
        }
    }

    #[test]
    fn random_bytes_never_panic_and_empty_writes_are_refused() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..2000usize {
            let bytes: Vec<u8> = (0..len % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = Write::decode(&bytes, log());
        }
        let empty = Write::Upsert { ids: vec![], element: ElementType::U8, dim: 4, rows: vec![] };
        assert!(Write::decode(&empty.encode(), log()).is_err());
        let e = Write::decode(&[9, 1], log()).unwrap_err().to_string();
        assert!(e.contains("kind"), "{e}");
        let e = Write::decode(&[1, 2], log()).unwrap_err().to_string();
        assert!(e.contains("version"), "{e}");
    }
}
