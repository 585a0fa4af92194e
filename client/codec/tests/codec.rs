//! Codec behaviour end to end: error shrinks with bits, symmetric distances
//! equal direct computation on unpacked bits, parameters round-trip and
//! reject corruption, and the fixed packing vectors in tests/data hold.

use fathom_codec::{symmetric_ip, symmetric_l2, CodecError, CodecParams};
use fathom_rng::Rng;

fn sample(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n * dim).map(|_| r.normal() + 0.3).collect()
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

#[test]
fn reconstruction_error_shrinks_as_bits_grow() {
    let dim = 48;
    let data = sample(2000, dim, 1);
    let mut last = f32::INFINITY;
    for bits in 1..=4 {
        let p = CodecParams::fit(&data, dim, bits, 7).unwrap();
        let err: f32 = data.chunks_exact(dim).take(300).map(|x| l2(x, &p.decode(&p.encode(x).unwrap()))).sum();
        assert!(err < 0.75 * last, "bits {bits}: error {err} not well below {last}");
        last = err;
    }
}

#[test]
fn symmetric_distances_equal_direct_computation_on_unpacked_bits() {
    let dim = 70; // a partial last word
    let data = sample(500, dim, 2);
    for bits in 1..=4 {
        let p = CodecParams::fit(&data, dim, bits, 3).unwrap();
        let codes: Vec<_> = data.chunks_exact(dim).take(20).map(|x| p.encode(x).unwrap()).collect();
        for a in &codes {
            for b in &codes {
                // Direct: rebuild x' = sum a_i b_i in rotated space and take products.
                let xr = |c: &fathom_codec::Code| -> Vec<f64> {
                    (0..dim).map(|j| (0..bits).map(|l| p.scales[l] as f64 * c.get(l, j) as f64).sum()).collect()
                };
                let (va, vb) = (xr(a), xr(b));
                let ip: f64 = va.iter().zip(&vb).map(|(x, y)| x * y).sum();
                let d2: f64 = va.iter().zip(&vb).map(|(x, y)| (x - y) * (x - y)).sum();
                assert!((symmetric_ip(&p, a, b) as f64 - ip).abs() < 1e-3 * (1.0 + ip.abs()));
                assert!((symmetric_l2(&p, a, b) as f64 - d2).abs() < 1e-3 * (1.0 + d2));
                if bits == 1 {
                    let hamming: u32 = a.words.iter().zip(&b.words).map(|(x, y)| (x ^ y).count_ones()).sum();
                    let want = 4.0 * (p.scales[0] as f64).powi(2) * hamming as f64;
                    assert!((symmetric_l2(&p, a, b) as f64 - want).abs() < 1e-3 * (1.0 + want));
                }
            }
        }
    }
}

#[test]
fn parameters_round_trip_and_reject_corruption() {
    let dim = 16;
    let p = CodecParams::fit(&sample(300, dim, 4), dim, 2, 5).unwrap();
    let b = p.to_bytes();
    assert_eq!(CodecParams::from_bytes(&b).unwrap(), p);
    for at in [0, 9, 13, 40, b.len() - 1] {
        let mut bad = b.clone();
        bad[at] ^= 0x10;
        assert!(CodecParams::from_bytes(&bad).is_err(), "flip at {at} accepted");
    }
    assert!(matches!(CodecParams::from_bytes(&b[..b.len() - 4]), Err(CodecError::Corrupt(_))));
    let mut v2 = b.clone();
    v2[8] = 2;
    assert_eq!(CodecParams::from_bytes(&v2), Err(CodecError::UnsupportedVersion(2)));
    assert!(CodecParams::fit(&[1.0; 10], 3, 1, 0).is_err());
    assert!(CodecParams::fit(&[1.0; 9], 3, 5, 0).is_err());
    assert!(p.encode(&[0.0; 15]).is_err());
    assert!(p.encode(&[f32::NAN; 16]).is_err());
}

/// tests/data/packing.txt: fixed codes for a fixed input. Each line after
/// the header is `bits <b> hex <bytes>`: the packed code of every input row
/// in order. The engine's tests read the same file.
#[test]
fn fixed_packing_vectors_hold() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/packing.txt")).unwrap();
    let dim = 20;
    let data = sample(64, dim, 11);
    let mut checked = 0;
    for line in text.lines().filter(|l| l.starts_with("bits ")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let bits: usize = parts[1].parse().unwrap();
        let p = CodecParams::fit(&data, dim, bits, 13).unwrap();
        let got: String = data
            .chunks_exact(dim)
            .take(4)
            .flat_map(|x| p.encode(x).unwrap().to_bytes())
            .map(|b| format!("{b:02x}"))
            .collect();
        if std::env::var_os("FATHOM_BLESS").is_some() {
            eprintln!("bits {bits} hex {got}");
        } else {
            assert_eq!(parts[3], got, "bits {bits}");
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
}
