//! Blocks of dot products through a matrix multiply (the `matrixmultiply`
//! crate: packed, cache-blocked, runtime-detected AVX2/FMA kernels). Many
//! vectors against many centroids this way cost a fraction of one kernel
//! call per pair, which reloads both rows each time.

/// `out[i * b_rows + j] = a_i . b_j` for the `a_rows` rows of `a` and the
/// `b_rows` rows of `b`, both row-major and `dim` wide.
pub fn dots(a: &[f32], a_rows: usize, b: &[f32], b_rows: usize, dim: usize, out: &mut [f32]) {
    assert!(a.len() >= a_rows * dim && b.len() >= b_rows * dim && out.len() >= a_rows * b_rows, "block shapes");
    if a_rows == 0 || b_rows == 0 {
        return;
    }
    if dim == 0 {
        out[..a_rows * b_rows].fill(0.0);
        return;
    }
    // SAFETY: the assert above keeps every access inside the three slices:
    // a is a_rows x dim (row stride dim, column stride 1), b is read as its
    // transpose dim x b_rows (row stride 1, column stride dim), out is
    // a_rows x b_rows (row stride b_rows). beta = 0, so out's previous
    // contents are never read; out does not alias a or b (&mut).
    unsafe {
        matrixmultiply::sgemm(
            a_rows,
            dim,
            b_rows,
            1.0,
            a.as_ptr(),
            dim as isize,
            1,
            b.as_ptr(),
            1,
            dim as isize,
            0.0,
            out.as_mut_ptr(),
            b_rows as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn dots_equal_the_scalar_kernel() {
        let mut rng = Rng::new(2);
        for (ar, br, dim) in [(1, 1, 1), (7, 13, 96), (33, 5, 17), (64, 250, 96), (3, 0, 4), (0, 3, 4)] {
            let a: Vec<f32> = (0..ar * dim).map(|_| rng.normal()).collect();
            let b: Vec<f32> = (0..br * dim).map(|_| rng.normal()).collect();
            let mut out = vec![f32::NAN; ar * br];
            dots(&a, ar, &b, br, dim, &mut out);
            for i in 0..ar {
                for j in 0..br {
                    let want = super::super::scalar::dot(&a[i * dim..(i + 1) * dim], &b[j * dim..(j + 1) * dim]);
                    assert!((out[i * br + j] - want).abs() <= 1e-4 * (1.0 + want.abs()), "{ar}x{br}x{dim}");
                }
            }
        }
    }
}
