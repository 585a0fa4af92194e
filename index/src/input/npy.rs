//! The .npy header: magic, version, a Python-dict header naming dtype,
//! order and shape. We accept 2-D C-order float32, uint8 and int8 vectors
//! (float16 and float64, numpy's default, converted to float32 as they are
//! read), and 1-D (or n x 1) uint64 / int64 ids.

use crate::error::{FormatError, IoContext};
use crate::types::ElementType;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Floats stored wider or narrower than f32: converted while streaming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Widen {
    F16,
    F64,
}

impl Widen {
    pub fn bytes(self) -> usize {
        match self {
            Widen::F16 => 2,
            Widen::F64 => 8,
        }
    }

    /// Appends the f32 little-endian bytes of the stored values in `raw`.
    pub fn to_f32_bytes(self, raw: &[u8], out: &mut Vec<u8>) {
        match self {
            Widen::F16 => {
                for b in raw.chunks_exact(2) {
                    out.extend_from_slice(&f16_to_f32(u16::from_le_bytes([b[0], b[1]])).to_le_bytes());
                }
            }
            // Values beyond f32's range become infinite, which the builder
            // then refuses naming the row.
            Widen::F64 => {
                for b in raw.chunks_exact(8) {
                    let v = f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                    out.extend_from_slice(&(v as f32).to_le_bytes());
                }
            }
        }
    }
}

/// IEEE 754 half to single precision (exact: every half is a float).
pub(super) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        // Subnormal: frac x 2^-24.
        (0, f) => return f32::from_bits(sign) + (f as f32) * 2f32.powi(-24) * if sign != 0 { -1.0 } else { 1.0 },
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, f) => sign | 0x7fc0_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

pub(super) struct NpyHeader {
    pub element: ElementType,
    /// Set when the file holds f16 or f64 (then `element` is F32).
    pub widen: Option<Widen>,
    pub rows: u64,
    pub cols: usize,
    pub data_offset: u64,
}

const MAX_HEADER_BYTES: usize = 1 << 16;

/// The header's fields as written: dtype descr, shape, where data starts.
struct RawHeader {
    descr: String,
    dims: Vec<u64>,
    shape: String,
    data_offset: u64,
}

pub(super) fn parse_header(file: &File, path: &Path) -> Result<NpyHeader, FormatError> {
    let bad = |what: String| FormatError::BadInput { path: path.to_path_buf(), what };
    let RawHeader { descr, dims, shape: inner, data_offset } = parse_raw(file, path)?;
    let descr = descr.as_str();
    let (element, widen) = if descr.starts_with("<f4") {
        (ElementType::F32, None)
    } else if descr.starts_with("<f2") {
        (ElementType::F32, Some(Widen::F16))
    } else if descr.starts_with("<f8") {
        (ElementType::F32, Some(Widen::F64))
    } else if descr.starts_with("|u1") || descr.starts_with("<u1") {
        (ElementType::U8, None)
    } else if descr.starts_with("|i1") || descr.starts_with("<i1") {
        (ElementType::I8, None)
    } else {
        return Err(bad(format!(
            "dtype {descr} is not supported (float32, float16 or float64, converted to float32; uint8; int8; little endian)"
        )));
    };
    let (rows, cols) = match dims.as_slice() {
        [r, c] if *c > 0 => (*r, *c as usize),
        _ => return Err(bad(format!("shape ({inner}) is not 2-D (n, d) with d > 0"))),
    };
    Ok(NpyHeader { element, widen, rows, cols, data_offset })
}

/// An id array: (rows, signed, data offset). uint64 or int64, shape (n,) or (n, 1).
pub(crate) fn parse_ids_header(file: &File, path: &Path) -> Result<(u64, bool, u64), FormatError> {
    let bad = |what: String| FormatError::BadInput { path: path.to_path_buf(), what };
    let RawHeader { descr, dims, shape, data_offset } = parse_raw(file, path)?;
    let signed = match descr.as_str() {
        "<u8" => false,
        "<i8" => true,
        d => return Err(bad(format!("ids must be uint64 or int64 (little endian), not dtype {d}"))),
    };
    match dims.as_slice() {
        [n] | [n, 1] => Ok((*n, signed, data_offset)),
        _ => Err(bad(format!("ids must have shape (n,) or (n, 1), not ({shape})"))),
    }
}

fn parse_raw(file: &File, path: &Path) -> Result<RawHeader, FormatError> {
    let bad = |what: String| FormatError::BadInput { path: path.to_path_buf(), what };
    let mut pre = [0u8; 12];
    let len = file.metadata().at(path)?.len();
    if len < 10 {
        return Err(bad(format!("file of {len} bytes is too short for a .npy header")));
    }
    let got = file.read_at(&mut pre, 0).at(path)?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(bad("missing .npy magic \\x93NUMPY".into()));
    }
    let (header_len, start) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as usize, 10u64),
        2 | 3 if got >= 12 => (u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as usize, 12u64),
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    if header_len > MAX_HEADER_BYTES || start + header_len as u64 > len {
        return Err(bad(format!("implausible .npy header length {header_len}")));
    }
    let mut h = vec![0u8; header_len];
    file.read_exact_at(&mut h, start).at(path)?;
    let h = String::from_utf8_lossy(&h);
    let value_of = |key: &str| -> Option<String> {
        let at = h.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = h[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest.to_string())
    };
    let descr = value_of("descr").ok_or_else(|| bad("header has no 'descr'".into()))?;
    let descr: String = descr.trim_start_matches('\'').chars().take_while(|c| *c != '\'').collect();
    let fortran = value_of("fortran_order").ok_or_else(|| bad("header has no 'fortran_order'".into()))?;
    if fortran.starts_with("True") {
        return Err(bad("Fortran-order arrays are not supported; save with C order".into()));
    }
    let shape = value_of("shape").ok_or_else(|| bad("header has no 'shape'".into()))?;
    let inner: String = shape.trim_start_matches('(').chars().take_while(|c| *c != ')').collect();
    let dims: Vec<u64> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad(format!("cannot parse shape ({inner})")))?;
    Ok(RawHeader { descr, dims, shape: inner, data_offset: start + header_len as u64 })
}
