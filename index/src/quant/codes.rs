//! Binary collections: the stored vectors *are* packed codes (raw bits, or
//! float vectors encoded by the shared codec at build time). Postings hold
//! the whole code and distances are symmetric, computed from XOR + popcount
//! of bit-plane pairs: exact for the collection, so there is no rerank.
//!
//! A code of u planes stands for v = sum_i a_i b_i with b_i in {-1, +1}^d
//! (raw bits: u = 1, a_1 = 1). Then <v, w> = sum_ij a_i a_j (d - 2 h(b_i, c_j))
//! with h the Hamming distance, and |v - w|^2 = |v|^2 + |w|^2 - 2 <v, w>;
//! for raw bits |v - w|^2 = 4 h(v, w). Clustering and centroid routing work
//! on v itself (the code's "view"), in the same metric as the postings.
//! The byte layout is the codec's (`fathom_codec::pack`).

use crate::distance::Kernels;
use fathom_codec::{words_per_plane, CodecParams};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What the codes of a binary collection are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CodeSpace {
    /// Bits per plane (the dimension of the view).
    pub dim: usize,
    /// Bit-planes per code (bits per dimension).
    pub planes: usize,
    /// Per-plane scales a_1..a_u.
    pub scales: Vec<f32>,
    /// The codec that encoded float input (and encodes float queries);
    /// `None` for raw bit input.
    #[serde(with = "opt_params_hex")]
    pub codec: Option<Arc<CodecParams>>,
}

impl CodeSpace {
    /// Raw bits: one plane, scale 1 (distances are 4 x Hamming).
    pub fn raw_bits(dim: usize) -> Self {
        CodeSpace { dim, planes: 1, scales: vec![1.0], codec: None }
    }

    /// Codes produced by `codec` from float vectors.
    pub fn encoded(codec: Arc<CodecParams>) -> Self {
        CodeSpace { dim: codec.dim, planes: codec.bits, scales: codec.scales.clone(), codec: Some(codec) }
    }

    pub fn words_per_plane(&self) -> usize {
        words_per_plane(self.dim)
    }

    pub fn code_bytes(&self) -> usize {
        8 * self.planes * self.words_per_plane()
    }

    /// Checks a packed code: its length and that padding bits are clear.
    pub fn check(&self, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() != self.code_bytes() {
            return Err(format!(
                "a code of {} bits x {} planes is {} bytes, got {}",
                self.dim,
                self.planes,
                self.code_bytes(),
                bytes.len()
            ));
        }
        match fathom_codec::pack::Code::from_bytes(self.dim, self.planes, bytes) {
            Some(_) => Ok(()),
            None => Err(format!(
                "bits past dimension {} are set (padding must be zero; bit j is bit j % 8 of byte j / 8)",
                self.dim
            )),
        }
    }

    /// The code's words (little endian), into `out`.
    pub fn words(bytes: &[u8], out: &mut Vec<u64>) {
        out.clear();
        out.extend(bytes.chunks_exact(8).map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])));
    }

    /// The vector v = sum_i a_i b_i a code stands for, into `out`.
    pub fn view(&self, words: &[u64], out: &mut Vec<f32>) {
        let w = self.words_per_plane();
        out.clear();
        out.resize(self.dim, 0.0);
        for (plane, &a) in words.chunks_exact(w).zip(&self.scales) {
            for (j, o) in out.iter_mut().enumerate() {
                *o += if plane[j / 64] >> (j % 64) & 1 == 1 { a } else { -a };
            }
        }
    }

    /// Packs the code nearest `v` plane by plane (recurrent binarization:
    /// b_1 = sign(v), b_2 = sign(v - a_1 b_1), ...); the inverse of
    /// [`view`](Self::view) when each scale exceeds the sum of the later ones.
    pub fn encode_view(&self, v: &[f32], out: &mut [u8]) {
        let w = self.words_per_plane();
        let mut words = vec![0u64; self.planes * w];
        let mut r = v.to_vec();
        for (p, &a) in self.scales.iter().enumerate() {
            for (j, x) in r.iter_mut().enumerate() {
                let plus = *x >= 0.0;
                if plus {
                    words[p * w + j / 64] |= 1 << (j % 64);
                }
                *x -= if plus { a } else { -a };
            }
        }
        for (o, word) in out.chunks_exact_mut(8).zip(&words) {
            o.copy_from_slice(&word.to_le_bytes());
        }
    }

    /// <v, w> of two codes (as words) from plane-pair popcounts.
    pub fn ip(&self, k: &Kernels, a: &[u64], b: &[u64]) -> f32 {
        let w = self.words_per_plane();
        let d = self.dim as f32;
        let mut s = 0f32;
        for (i, ai) in self.scales.iter().enumerate() {
            for (j, aj) in self.scales.iter().enumerate() {
                let h = (k.xor_popcount)(&a[i * w..(i + 1) * w], &b[j * w..(j + 1) * w]);
                s += ai * aj * (d - 2.0 * h as f32);
            }
        }
        s
    }

    /// |v|^2 of a code (as words): sum_i a_i^2 d + 2 sum_{i<j} a_i a_j
    /// <b_i, b_j>, half the plane pairs of `ip(a, a)`.
    pub fn norm2(&self, k: &Kernels, a: &[u64]) -> f32 {
        let w = self.words_per_plane();
        let d = self.dim as f32;
        let plane = |i: usize| &a[i * w..(i + 1) * w];
        let mut s = 0f32;
        for (i, ai) in self.scales.iter().enumerate() {
            s += ai * ai * d;
            for (j, aj) in self.scales.iter().enumerate().skip(i + 1) {
                s += 2.0 * ai * aj * (d - 2.0 * (k.xor_popcount)(plane(i), plane(j)) as f32);
            }
        }
        s
    }

    /// |v - w|^2 of two codes (as words).
    pub fn l2(&self, k: &Kernels, a: &[u64], b: &[u64]) -> f32 {
        if self.planes == 1 {
            // One plane: 4 a^2 h, without the self terms.
            let a1 = self.scales[0];
            return 4.0 * a1 * a1 * (k.xor_popcount)(a, b) as f32;
        }
        self.norm2(k, a) + self.norm2(k, b) - 2.0 * self.ip(k, a, b)
    }
}

/// A query code prepared for scoring postings of codes.
pub struct CodeQuery {
    space: CodeSpace,
    q: Vec<u64>,
    /// |v_q|^2, computed once.
    q_norm2: f32,
    x: Vec<u64>,
    /// Hamming distances of one block (single-plane codes).
    block: Vec<u32>,
}

impl CodeQuery {
    pub fn new(space: &CodeSpace, code: &[u8]) -> Self {
        let mut q = Vec::new();
        CodeSpace::words(code, &mut q);
        let q_norm2 = space.norm2(crate::distance::kernels(), &q);
        CodeQuery { space: space.clone(), q, q_norm2, x: Vec::new(), block: Vec::new() }
    }

    /// The distances of every code in `codes` (a posting's code block),
    /// into `out`. Single-plane codes go through one block kernel call.
    pub fn distances(&mut self, k: &Kernels, codes: &[u8], out: &mut Vec<f32>) {
        out.clear();
        let cb = self.space.code_bytes();
        if self.space.planes == 1 && codes.len().is_multiple_of(cb) {
            self.block.clear();
            self.block.resize(codes.len() / cb, 0);
            (k.hamming_block)(&self.q, codes, &mut self.block);
            let a = self.space.scales[0];
            out.extend(self.block.iter().map(|&h| 4.0 * a * a * h as f32));
            return;
        }
        for code in codes.chunks_exact(cb) {
            let d = self.distance(k, code);
            out.push(d);
        }
    }

    /// Squared L2 between the query's and the entry's views (4 x Hamming
    /// for raw bits).
    #[inline]
    pub fn distance(&mut self, k: &Kernels, code: &[u8]) -> f32 {
        if code.len() != 8 * self.q.len() {
            return f32::INFINITY; // cannot happen past the posting CRC; never near
        }
        CodeSpace::words(code, &mut self.x);
        let s = &self.space;
        if s.planes == 1 {
            return s.l2(k, &self.q, &self.x);
        }
        self.q_norm2 + s.norm2(k, &self.x) - 2.0 * s.ip(k, &self.q, &self.x)
    }
}

/// The optional codec inside the manifest: its own checksummed byte form as
/// hex, or an empty string for raw bits.
mod opt_params_hex {
    use fathom_codec::CodecParams;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::sync::Arc;

    pub fn serialize<S: Serializer>(p: &Option<Arc<CodecParams>>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => super::super::binary::params_hex::serialize(p, s),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<CodecParams>>, D::Error> {
        let hex = String::deserialize(d)?;
        if hex.is_empty() {
            return Ok(None);
        }
        super::super::binary::params_hex::from_hex(&hex).map(Some).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::available;
    use crate::rng::Rng;

    fn random_code(r: &mut Rng, s: &CodeSpace) -> Vec<u8> {
        let mut v: Vec<f32> = (0..s.dim).map(|_| r.normal()).collect();
        v.iter_mut().for_each(|x| *x *= 2.0);
        let mut out = vec![0u8; s.code_bytes()];
        s.encode_view(&v, &mut out);
        out
    }

    #[test]
    fn symmetric_distance_equals_l2_of_the_views_on_every_kernel_set() {
        let mut r = Rng::new(9);
        for (dim, scales) in [(70, vec![1.0]), (384, vec![1.0]), (50, vec![0.8, 0.3]), (130, vec![0.9, 0.4, 0.2, 0.1])]
        {
            let s = CodeSpace { dim, planes: scales.len(), scales, codec: None };
            for _ in 0..20 {
                let (a, b) = (random_code(&mut r, &s), random_code(&mut r, &s));
                s.check(&a).unwrap();
                let (mut wa, mut wb, mut va, mut vb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                CodeSpace::words(&a, &mut wa);
                CodeSpace::words(&b, &mut wb);
                s.view(&wa, &mut va);
                s.view(&wb, &mut vb);
                let want: f32 = va.iter().zip(&vb).map(|(x, y)| (x - y) * (x - y)).sum();
                for k in available() {
                    let got = CodeQuery::new(&s, &a).distance(&k, &b);
                    assert!((got - want).abs() <= 1e-3 * (1.0 + want), "{} d={dim}: {got} vs {want}", k.name);
                }
                // The view encodes back to the same code.
                let mut again = vec![0u8; s.code_bytes()];
                s.encode_view(&va, &mut again);
                assert_eq!(again, a);
            }
        }
    }

    #[test]
    fn raw_bits_distance_is_four_times_hamming_and_padding_is_rejected() {
        let s = CodeSpace::raw_bits(70);
        let mut a = vec![0u8; 16];
        let mut b = vec![0u8; 16];
        a[0] = 0b1011;
        b[8] = 0b11; // dims 64, 65
        assert_eq!(CodeQuery::new(&s, &a).distance(crate::distance::kernels(), &b), 4.0 * 5.0);
        b[8] = 0x80; // dim 71: padding
        assert!(s.check(&b).unwrap_err().contains("padding"));
        assert!(s.check(&b[..8]).is_err());
    }
}
