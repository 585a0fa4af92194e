use super::*;
use crate::error::FormatError;
use std::io::Write;

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("fathom-input-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::File::create(path).unwrap().write_all(bytes).unwrap();
}

#[test]
fn fbin_round_trips() {
    let d = tmpdir("fbin");
    let p = d.join("x.fbin");
    let rows: Vec<f32> = (0..30).map(|i| i as f32 * 0.5).collect();
    let mut w = BinWriter::create(&p, 3, ElementType::F32).unwrap();
    w.write_f32_rows(&rows).unwrap();
    assert_eq!(w.finish().unwrap(), 10);
    let f = VectorFile::open(&p).unwrap();
    assert_eq!((f.count, f.dim, f.element), (10, 3, ElementType::F32));
    let mut out = Vec::new();
    f.read_f32(2, 3, &mut out).unwrap();
    assert_eq!(out, rows[6..15]);
}

#[test]
fn u8bin_and_i8bin_convert_to_f32() {
    let d = tmpdir("u8");
    let p = d.join("x.u8bin");
    let mut bytes = vec![2, 0, 0, 0, 2, 0, 0, 0];
    bytes.extend_from_slice(&[1, 2, 255, 4]);
    write(&p, &bytes);
    let mut out = Vec::new();
    VectorFile::open(&p).unwrap().read_f32(0, 2, &mut out).unwrap();
    assert_eq!(out, vec![1.0, 2.0, 255.0, 4.0]);
    let p = d.join("x.i8bin");
    write(&p, &bytes);
    VectorFile::open(&p).unwrap().read_f32(1, 1, &mut out).unwrap();
    assert_eq!(out, vec![-1.0, 4.0]);
}

#[test]
fn fvecs_and_bvecs_strip_row_headers() {
    let d = tmpdir("vecs");
    let p = d.join("x.fvecs");
    let mut bytes = Vec::new();
    for r in 0..4 {
        bytes.extend_from_slice(&2i32.to_le_bytes());
        bytes.extend_from_slice(&(r as f32).to_le_bytes());
        bytes.extend_from_slice(&(r as f32 + 0.5).to_le_bytes());
    }
    write(&p, &bytes);
    let f = VectorFile::open(&p).unwrap();
    assert_eq!((f.count, f.dim), (4, 2));
    let mut out = Vec::new();
    f.read_f32(1, 2, &mut out).unwrap();
    assert_eq!(out, vec![1.0, 1.5, 2.0, 2.5]);

    let p = d.join("x.bvecs");
    let mut bytes = Vec::new();
    for r in 0..3u8 {
        bytes.extend_from_slice(&3i32.to_le_bytes());
        bytes.extend_from_slice(&[r, r + 1, r + 2]);
    }
    write(&p, &bytes);
    let f = VectorFile::open(&p).unwrap();
    f.read_f32(2, 1, &mut out).unwrap();
    assert_eq!(out, vec![2.0, 3.0, 4.0]);
}

#[test]
fn vecs_row_with_wrong_dimension_is_corrupt() {
    let d = tmpdir("vecsbad");
    let p = d.join("x.fvecs");
    let mut bytes = Vec::new();
    for dim in [1i32, 1, 7] {
        bytes.extend_from_slice(&dim.to_le_bytes());
        bytes.extend_from_slice(&1f32.to_le_bytes());
    }
    write(&p, &bytes);
    let f = VectorFile::open(&p).unwrap();
    let mut out = Vec::new();
    let err = f.read_f32(0, 3, &mut out).unwrap_err();
    assert!(matches!(err, FormatError::Corrupt { offset: 16, .. }), "{err}");
}

fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

#[test]
fn npy_float32_and_uint8_are_read() {
    let d = tmpdir("npy");
    let p = d.join("x.npy");
    let data: Vec<u8> = [1f32, 2., 3., 4., 5., 6.].iter().flat_map(|x| x.to_le_bytes()).collect();
    write(&p, &npy_bytes("<f4", "(3, 2)", &data));
    let f = VectorFile::open(&p).unwrap();
    assert_eq!((f.count, f.dim, f.element), (3, 2, ElementType::F32));
    let mut out = Vec::new();
    f.read_f32(1, 2, &mut out).unwrap();
    assert_eq!(out, vec![3., 4., 5., 6.]);
    write(&p, &npy_bytes("|u1", "(2, 2)", &[9, 8, 7, 6]));
    let f = VectorFile::open(&p).unwrap();
    assert_eq!(f.element, ElementType::U8);
    f.read_f32(0, 2, &mut out).unwrap();
    assert_eq!(out, vec![9., 8., 7., 6.]);
}

/// issue 13: float64 (numpy's default) and float16 (what embedding
/// pipelines write) are converted to f32 as they are read.
#[test]
fn npy_float64_and_float16_are_converted() {
    let d = tmpdir("npywide");
    let p = d.join("x.npy");
    let vals = [1.5f64, -2.25, 1e-3, 65504.0, 0.0, -0.0];
    let data: Vec<u8> = vals.iter().flat_map(|x| x.to_le_bytes()).collect();
    write(&p, &npy_bytes("<f8", "(3, 2)", &data));
    let f = VectorFile::open(&p).unwrap();
    assert_eq!((f.count, f.dim, f.element), (3, 2, ElementType::F32));
    let mut out = Vec::new();
    f.read_f32(0, 3, &mut out).unwrap();
    assert_eq!(out, vals.iter().map(|&v| v as f32).collect::<Vec<_>>());
    // Halves: 1.5, -2.25, the smallest subnormal, the largest finite, inf, -0.
    let halves: [u16; 6] = [0x3e00, 0xc080, 0x0001, 0x7bff, 0x7c00, 0x8000];
    let data: Vec<u8> = halves.iter().flat_map(|x| x.to_le_bytes()).collect();
    write(&p, &npy_bytes("<f2", "(2, 3)", &data));
    let f = VectorFile::open(&p).unwrap();
    f.read_f32(1, 1, &mut out).unwrap();
    assert_eq!(out, vec![65504.0, f32::INFINITY, -0.0]);
    f.read_f32(0, 1, &mut out).unwrap();
    assert_eq!(out, vec![1.5, -2.25, 2f32.powi(-24)]);
    // A truncated f16 file is caught by its length, as for every format.
    write(&p, &npy_bytes("<f2", "(2, 3)", &data[..10]));
    assert!(VectorFile::open(&p).is_err());
}

#[test]
fn npy_rejects_other_dtypes_and_fortran_order() {
    let d = tmpdir("npybad");
    let p = d.join("x.npy");
    write(&p, &npy_bytes(">f4", "(1, 1)", &[0; 4]));
    let err = VectorFile::open(&p).unwrap_err().to_string();
    assert!(err.contains(">f4") && err.contains("not supported"), "{err}");
    let mut b: Vec<u8> = npy_bytes("<f4", "(1, 1)", &[0; 4]);
    let at = b.windows(5).position(|w| w == b"False").unwrap();
    b[at..at + 5].copy_from_slice(b"True ");
    write(&p, &b);
    assert!(VectorFile::open(&p).unwrap_err().to_string().contains("Fortran"));
}

#[test]
fn header_that_disagrees_with_file_size_is_rejected() {
    let d = tmpdir("trunc");
    let p = d.join("x.fbin");
    let mut bytes = vec![10, 0, 0, 0, 4, 0, 0, 0];
    bytes.extend_from_slice(&[0u8; 4 * 4 * 9]);
    write(&p, &bytes);
    let err = VectorFile::open(&p).unwrap_err();
    assert!(matches!(err, FormatError::Corrupt { .. }));
    assert!(err.to_string().contains("header says 10 vectors of dimension 4"), "{err}");
    write(&p, &[1, 0]);
    assert!(VectorFile::open(&p).unwrap_err().to_string().contains("too short"));
    assert!(VectorFile::open(&d.join("x.txt")).unwrap_err().to_string().contains("extension"));
}

#[test]
fn ids_round_trip_as_ibin() {
    let d = tmpdir("ibin");
    let p = d.join("gt.ibin");
    write_ids_ibin(&p, 2, &[vec![1, 2], vec![3, 4]]).unwrap();
    assert_eq!(read_ids(&p).unwrap(), vec![vec![1, 2], vec![3, 4]]);
    write(&p, &[2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0]);
    assert!(matches!(read_ids(&p).unwrap_err(), FormatError::Corrupt { .. }));
}
