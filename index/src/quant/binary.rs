//! Binary first-stage codes from the shared codec (`fathom-codec`): the
//! postings hold packed bit-planes; a float query is scored against them
//! asymmetrically (exact in the query, approximate in the vector), then
//! reranked exactly with the full vectors.
//!
//! In the rotated space x' = R (x - mean) ~ sum_i a_i b_i, so for a query q
//! with q' = R (q - mean): |q - x|^2 ~ |q'|^2 - 2 <q', x'> + |x'|^2, where
//! <q', b_i> = 2 (sum of q'_j over set bits) - sum_j q'_j and |x'|^2 comes
//! from the code's own plane popcounts. For ip, q.x ~ <R q, x'> + q.mean.

use fathom_codec::pack::plane_dot;
use fathom_codec::{words_per_plane, CodecParams};

/// A query prepared for binary codes.
pub struct BinaryQuery {
    qr_sum: f32,
    qr_norm2: f32,
    /// q.mean for ip; 0 for l2.
    ip_bias: f32,
    ip: bool,
    /// The code being scored, as words (reused: no allocation per entry).
    words: Vec<u64>,
    /// `lut[256 * b + v]`: the sum of qr over the set bits of byte value `v`
    /// at byte `b` of a plane, so a plane's set-bit sum is one lookup per
    /// byte (48 for 384 dimensions) instead of one step per set bit.
    lut: Vec<f32>,
}

impl BinaryQuery {
    pub fn new(p: &CodecParams, q: &[f32], ip: bool) -> Self {
        let qr = if ip { p.rotate_uncentred(q) } else { p.rotate(q) };
        let ip_bias = if ip { q.iter().zip(&p.mean).map(|(a, m)| a * m).sum() } else { 0.0 };
        let plane_bytes = 8 * words_per_plane(p.dim);
        let mut lut = vec![0f32; 256 * plane_bytes];
        for (b, table) in lut.chunks_exact_mut(256).enumerate() {
            for v in 1..256usize {
                // v's lowest set bit plus the table entry without it.
                let low = v.trailing_zeros() as usize;
                let x = qr.get(8 * b + low).copied().unwrap_or(0.0);
                table[v] = table[v & (v - 1)] + x;
            }
        }
        BinaryQuery {
            lut,
            qr_sum: qr.iter().sum(),
            qr_norm2: qr.iter().map(|v| v * v).sum(),
            ip_bias,
            ip,
            words: Vec::with_capacity(p.bits * words_per_plane(p.dim)),
        }
    }

    /// Internal distance (squared L2, or -ip) to the vector behind `bytes`.
    pub fn distance(&mut self, p: &CodecParams, bytes: &[u8]) -> f32 {
        let w_per = words_per_plane(p.dim);
        if bytes.len() != 8 * p.bits * w_per {
            // A code of the wrong size cannot be near anything; the posting
            // CRC already passed, so this only guards against a codec mismatch.
            return f32::INFINITY;
        }
        self.words.clear();
        self.words.extend(
            bytes.chunks_exact(8).map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
        );
        let words = &self.words;
        let plane = |l: usize| &words[l * w_per..(l + 1) * w_per];
        let mut dot = 0f32;
        for (level, &a) in p.scales.iter().enumerate() {
            let mut set_sum = 0f32;
            for (w, &word) in plane(level).iter().enumerate() {
                let tables = &self.lut[w * 2048..(w + 1) * 2048];
                for (k, table) in tables.chunks_exact(256).enumerate() {
                    set_sum += table[(word >> (8 * k)) as usize & 0xff];
                }
            }
            dot += a * (2.0 * set_sum - self.qr_sum);
        }
        if self.ip {
            return -(dot + self.ip_bias);
        }
        // |x'|^2 from the code's own planes (fathom_codec::symmetric_ip of x with itself).
        let mut norm2 = 0f64;
        for (i, ai) in p.scales.iter().enumerate() {
            for (j, aj) in p.scales.iter().enumerate() {
                norm2 += (*ai as f64) * (*aj as f64) * plane_dot(plane(i), plane(j), p.dim) as f64;
            }
        }
        self.qr_norm2 - 2.0 * dot + norm2 as f32
    }
}

/// Serde for codec parameters inside the manifest: their own checksummed
/// byte form, as hex.
pub mod params_hex {
    use fathom_codec::CodecParams;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::sync::Arc;

    pub fn serialize<S: Serializer>(p: &Arc<CodecParams>, s: S) -> Result<S::Ok, S::Error> {
        let hex: String = p.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&hex)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<CodecParams>, D::Error> {
        from_hex(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }

    /// Parameters from their hex form, checked.
    pub fn from_hex(hex: &str) -> Result<Arc<CodecParams>, String> {
        if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
            return Err("codec parameters: odd or non-ASCII hex".into());
        }
        let bytes = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| format!("codec parameters: {e}"))?;
        CodecParams::from_bytes(&bytes).map(Arc::new).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn asymmetric_distance_equals_distance_to_the_decoded_vector() {
        let dim = 30;
        let mut r = Rng::new(3);
        let data: Vec<f32> = (0..500 * dim).map(|_| r.normal()).collect();
        for bits in [1, 2, 4] {
            let p = CodecParams::fit(&data, dim, bits, 1).unwrap();
            let q: Vec<f32> = (0..dim).map(|_| r.normal()).collect();
            let (mut l2q, mut ipq) = (BinaryQuery::new(&p, &q, false), BinaryQuery::new(&p, &q, true));
            for x in data.chunks_exact(dim).take(50) {
                let code = p.encode(x).unwrap();
                let dec = p.decode(&code);
                let want: f32 = q.iter().zip(&dec).map(|(a, b)| (a - b) * (a - b)).sum();
                let got = l2q.distance(&p, &code.to_bytes());
                assert!((got - want).abs() < 1e-2 * (1.0 + want), "bits {bits}: {got} vs {want}");
                let want_ip: f32 = -q.iter().zip(&dec).map(|(a, b)| a * b).sum::<f32>();
                let got_ip = ipq.distance(&p, &code.to_bytes());
                assert!((got_ip - want_ip).abs() < 1e-2 * (1.0 + want_ip.abs()), "ip bits {bits}");
            }
        }
    }
}
