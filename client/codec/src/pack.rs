//! The packed code layout — the single definition both sides use.
//!
//! A code of `bits` planes over `dim` dimensions is `bits * W` little-endian
//! u64 words, `W = ceil(dim / 64)`, plane-major: plane p (p = 0 is b1, the
//! sign of x') occupies words `p*W .. (p+1)*W`. Within a plane, dimension j
//! is bit `j % 64` of word `j / 64`; a set bit means +1, a clear bit -1.
//! Padding bits (j >= dim) are zero in every plane. As bytes, each word is
//! little endian: dimension j is bit `j % 8` of byte `j / 8` of the plane.

/// Words per bit-plane for `dim` dimensions.
pub fn words_per_plane(dim: usize) -> usize {
    dim.div_ceil(64)
}

/// A packed code: `bits` planes of [`words_per_plane`] words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub dim: usize,
    pub bits: usize,
    pub words: Vec<u64>,
}

impl Code {
    pub fn zero(dim: usize, bits: usize) -> Self {
        Code { dim, bits, words: vec![0; bits * words_per_plane(dim)] }
    }

    pub fn plane(&self, p: usize) -> &[u64] {
        let w = words_per_plane(self.dim);
        &self.words[p * w..(p + 1) * w]
    }

    /// Sets dimension `j` of plane `p` to +1 (`true`) or -1.
    pub fn set(&mut self, p: usize, j: usize, plus: bool) {
        let w = words_per_plane(self.dim);
        let bit = 1u64 << (j % 64);
        let word = &mut self.words[p * w + j / 64];
        if plus {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    /// +1 or -1 at dimension `j` of plane `p`.
    pub fn get(&self, p: usize, j: usize) -> i32 {
        if self.plane(p)[j / 64] >> (j % 64) & 1 == 1 {
            1
        } else {
            -1
        }
    }

    /// The code as bytes (words little endian), for files and the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// Reads a code; `None` if the length is wrong or padding bits are set.
    pub fn from_bytes(dim: usize, bits: usize, bytes: &[u8]) -> Option<Self> {
        if dim == 0 || bytes.len() != 8 * bits * words_per_plane(dim) {
            return None;
        }
        let words: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        let code = Code { dim, bits, words };
        let tail = dim % 64;
        if tail != 0 && (0..bits).any(|p| code.plane(p).last().is_some_and(|&w| w >> tail != 0)) {
            return None;
        }
        Some(code)
    }
}

/// `<a, b>` of two ±1 planes over `dim` dimensions: dim - 2 popcount(a ^ b)
/// (padding bits are zero in both, so they never count).
pub fn plane_dot(a: &[u64], b: &[u64], dim: usize) -> i64 {
    let diff: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
    dim as i64 - 2 * diff as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_spec_by_example() {
        // dim 70: 2 words per plane; plane 1 starts at word 2.
        let mut c = Code::zero(70, 2);
        c.set(0, 0, true);
        c.set(0, 65, true);
        c.set(1, 3, true);
        assert_eq!(c.words, vec![1, 2, 8, 0]);
        let b = c.to_bytes();
        assert_eq!(b[0], 1);
        assert_eq!(b[8], 2, "dimension 65 is bit 1 of byte 8");
        assert_eq!(b[16], 8);
        assert_eq!(Code::from_bytes(70, 2, &b), Some(c.clone()));
        let mut bad = b.clone();
        bad[15] = 0x80; // a padding bit of plane 0
        assert_eq!(Code::from_bytes(70, 2, &bad), None);
        assert_eq!(Code::from_bytes(70, 2, &b[1..]), None);
        assert_eq!(c.get(0, 65), 1);
        assert_eq!(c.get(0, 64), -1);
    }

    #[test]
    fn plane_dot_counts_agreements_minus_disagreements() {
        let mut a = Code::zero(5, 1);
        let mut b = Code::zero(5, 1);
        for j in 0..5 {
            a.set(0, j, j % 2 == 0);
            b.set(0, j, j < 2);
        }
        // a: + - + - +   b: + + - - -   agree at 0, 3: 2 - 3 = -1
        assert_eq!(plane_dot(a.plane(0), b.plane(0), 5), -1);
    }
}
