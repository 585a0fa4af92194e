//! Portable reference kernels; the SIMD kernels must agree with these.

pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// `out[r] = |q - rows[r]|^2` for the `out.len()` rows of `q.len()` floats.
pub fn l2_sq_rows(q: &[f32], rows: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len().max(1))) {
        *o = l2_sq(q, row);
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The f32 value of a half float's bit pattern.
#[inline]
pub fn f16_value(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

pub fn l2_sq_f16(q: &[f32], c: &[u16]) -> f32 {
    debug_assert_eq!(q.len(), c.len());
    q.iter().zip(c).map(|(&x, &h)| (x - f16_value(h)) * (x - f16_value(h))).sum()
}

/// [`l2_sq_rows`] over half-float rows.
pub fn l2_sq_rows_f16(q: &[f32], rows: &[u16], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len().max(1))) {
        *o = l2_sq_f16(q, row);
    }
}

pub fn dot_f16(q: &[f32], c: &[u16]) -> f32 {
    debug_assert_eq!(q.len(), c.len());
    q.iter().zip(c).map(|(&x, &h)| x * f16_value(h)).sum()
}

pub fn l2_sq_u8_weighted(q: &[f32], w: &[f32], c: &[u8]) -> f32 {
    debug_assert!(q.len() == w.len() && q.len() == c.len());
    q.iter()
        .zip(w)
        .zip(c)
        .map(|((q, w), c)| {
            let d = q - *c as f32;
            w * d * d
        })
        .sum()
}

pub fn dot_u8(q: &[f32], c: &[u8]) -> f32 {
    debug_assert_eq!(q.len(), c.len());
    q.iter().zip(c).map(|(q, c)| q * *c as f32).sum()
}

/// Hamming distance of two packed bit codes (equal length).
pub fn xor_popcount(a: &[u64], b: &[u64]) -> u32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// `out[i] = popcount(q ^ code_i)` for the packed codes of `codes`, each
/// `8 * q.len()` bytes (little-endian words, any alignment).
#[inline]
pub fn hamming_block(q: &[u64], codes: &[u8], out: &mut [u32]) {
    let cb = 8 * q.len();
    for (o, code) in out.iter_mut().zip(codes.chunks_exact(cb)) {
        *o = q
            .iter()
            .zip(code.chunks_exact(8))
            .map(|(w, c)| (w ^ u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).count_ones())
            .sum();
    }
}

/// For each plane `l < out.len()` of `planes` (`8 * words` bytes each,
/// little-endian words) against a 4-bit query held as four bit-planes
/// (`q[t * words..]`: bit t of every query value): `sum_t 2^t popcount(q_t &
/// c) | popcount(c) << 32`, the query values summed over the plane's set
/// bits and the set bits themselves (resident row codes). Planes missing
/// from `planes` give 0.
pub fn plane_sums(q: &[u64], words: usize, planes: &[u8], out: &mut [u64]) {
    out.fill(0);
    let Some(q) = q.get(..4 * words) else { return };
    for (l, o) in out.iter_mut().enumerate() {
        let Some(plane) = planes.get(l * 8 * words..(l + 1) * 8 * words) else { continue };
        let (mut weighted, mut ones) = (0u64, 0u64);
        for (i, c) in plane.chunks_exact(8).enumerate() {
            let c = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            ones += c.count_ones() as u64;
            for t in 0..4 {
                weighted += ((q[t * words + i] & c).count_ones() as u64) << t;
            }
        }
        *o = weighted | ones << 32;
    }
}

/// The signature of [`posting_table`] and its SIMD twins.
pub type PostingTable = fn(base: &[f32], cols: &[f32], centroid: &[f32], dsub: usize, out: &mut [f32]);

/// A residual PQ code's table for one posting: `out[s * 256 + c] =
/// base[s * 256 + c] + sum_j 2 centroid[s * dsub + j] cols[(s * dsub + j) *
/// 256 + c]` for the `base.len() / 256` sub-spaces (dimensions past the end
/// of `centroid` are padding and add nothing). With `base` the query's
/// table of |q_s - w|^2, entry (s, c) is |q_s - centroid_s - w_c|^2 less
/// the posting's constant |centroid_s|^2 - 2 <centroid_s, q_s>. Products
/// and sums are not fused, so the SIMD twin is bit-identical.
pub fn posting_table(base: &[f32], cols: &[f32], centroid: &[f32], dsub: usize, out: &mut [f32]) {
    posting_table_body(base, cols, centroid, dsub, out)
}

#[inline(always)]
pub(super) fn posting_table_body(base: &[f32], cols: &[f32], centroid: &[f32], dsub: usize, out: &mut [f32]) {
    for (o, b, cols, scales) in posting_table_rows(base, cols, centroid, dsub, out) {
        // Eight codewords at a time in registers, dimensions innermost:
        // one pass over the table instead of one per dimension.
        let (o8, _) = o.as_chunks_mut::<8>();
        let (b8, _) = b.as_chunks::<8>();
        for (block, (o, b)) in o8.iter_mut().zip(b8).enumerate() {
            let mut acc = *b;
            for (col, &c) in cols.iter().zip(scales) {
                let a = 2.0 * c;
                for (l, acc) in acc.iter_mut().enumerate() {
                    *acc += a * col[block * 8 + l];
                }
            }
            *o = acc;
        }
    }
}

/// One sub-space of a posting table: its output row, its base row, and the
/// columns and centroid values of its real dimensions.
pub(super) type TableRow<'a> = (&'a mut [f32; CODEWORDS], &'a [f32; CODEWORDS], &'a [[f32; CODEWORDS]], &'a [f32]);

/// The sub-spaces of [`posting_table`], shared by its SIMD twins.
/// Dimensions past the centroid or the columns (the last sub-space's
/// padding; whole sub-spaces of an old layout) contribute nothing.
#[inline(always)]
pub(super) fn posting_table_rows<'a>(
    base: &'a [f32],
    cols: &'a [f32],
    centroid: &'a [f32],
    dsub: usize,
    out: &'a mut [f32],
) -> impl Iterator<Item = TableRow<'a>> {
    let (outs, _) = out.as_chunks_mut::<CODEWORDS>();
    let (bases, _) = base.as_chunks::<CODEWORDS>();
    let (columns, _) = cols.as_chunks::<CODEWORDS>();
    outs.iter_mut().zip(bases).enumerate().map(move |(s, (o, b))| {
        let (a, z) = (s * dsub, (s + 1) * dsub);
        let dims = z.min(centroid.len()).min(columns.len()).saturating_sub(a);
        (o, b, columns.get(a..a + dims).unwrap_or(&[]), centroid.get(a..a + dims).unwrap_or(&[]))
    })
}

/// The signature of [`plane_sums`] and its SIMD twins.
pub type PlaneSums = fn(q: &[u64], words: usize, planes: &[u8], out: &mut [u64]);

/// Codewords per PQ sub-space (one byte per code).
pub const CODEWORDS: usize = 256;

/// For each sub-vector s of `x` (`dsub` wide, zero past the end of `x`),
/// the first nearest of 256 codewords into `out[s]`, over the codebooks
/// stored column by column: `cols[(s * dsub + j) * 256 + c]` is dimension j
/// of codeword c of sub-space s. The SIMD kernels compile this same body
/// with their features (no FMA contraction: results are bit-identical).
pub fn nearest_codewords(cols: &[f32], x: &[f32], dsub: usize, out: &mut [u8]) {
    nearest_codewords_body(cols, x, dsub, out)
}

#[inline(always)]
pub(super) fn nearest_codewords_body(cols: &[f32], x: &[f32], dsub: usize, out: &mut [u8]) {
    for (s, o) in out.iter_mut().enumerate() {
        // Eight lanes keep their own first minimum over blocks of eight
        // codewords (no distance array: each block is scored and compared
        // in registers), then the lanes are merged (smallest, then index).
        let mut best = [f32::INFINITY; 8];
        let mut at = [0u32; 8];
        for block in 0..CODEWORDS / 8 {
            let mut d = [0f32; 8];
            for j in 0..dsub {
                let xj = x.get(s * dsub + j).copied().unwrap_or(0.0);
                let col = &cols[(s * dsub + j) * CODEWORDS + block * 8..][..8];
                for (d, &c) in d.iter_mut().zip(col) {
                    let t = xj - c;
                    *d += t * t;
                }
            }
            for l in 0..8 {
                let better = d[l] < best[l];
                best[l] = if better { d[l] } else { best[l] };
                at[l] = if better { (block * 8 + l) as u32 } else { at[l] };
            }
        }
        let mut win = 0;
        for l in 1..8 {
            if best[l] < best[win] || (best[l] == best[win] && at[l] < at[win]) {
                win = l;
            }
        }
        *o = at[win] as u8;
    }
}
