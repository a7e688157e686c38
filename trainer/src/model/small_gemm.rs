//! Products of the small matrices inside attention (sequence × head size,
//! 64 × 64 in small-12), which are too small for the `gemm` crate's packing
//! and threading to pay off: a 4 × 16 block of the result is kept in
//! registers while the shared dimension is walked once.
//!
//! `#[inline(always)]`: the callers are compiled for AVX2 (see
//! `attention.rs`), and this code is vectorised for whatever they are compiled for.

const MR: usize = 4;
const NR: usize = 16;

/// A row-major matrix view: `rows` rows of which row `r` starts at `r * stride`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub stride: usize,
}

/// `c = a · b` for `a` (m × k) and `b` (k × n); `c`'s rows are `ldc` apart.
#[inline(always)]
pub(crate) fn gemm(m: usize, k: usize, n: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize) {
    product::<false>(m, k, n, a, b, c, ldc)
}

/// `c = aᵀ · b` for `a` stored as (k × m): no transposed copy of `a` needed,
/// the MR values broadcast at each step are adjacent in a row of `a`.
#[inline(always)]
pub(crate) fn gemm_tn(m: usize, k: usize, n: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize) {
    product::<true>(m, k, n, a, b, c, ldc)
}

/// Element (row `r`, column `p`) of `a`, or of `aᵀ` when `T`.
#[inline(always)]
fn at<const T: bool>(a: Mat, r: usize, p: usize) -> f32 {
    if T {
        a.data[p * a.stride + r]
    } else {
        a.data[r * a.stride + p]
    }
}

#[inline(always)]
fn product<const T: bool>(m: usize, k: usize, n: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize) {
    for i in (0..m).step_by(MR) {
        for j in (0..n).step_by(NR) {
            if i + MR <= m && j + NR <= n {
                block::<T>(k, i, j, a, b, c, ldc);
            } else {
                edge::<T>(k, (i, (m - i).min(MR)), (j, (n - j).min(NR)), a, b, c, ldc);
            }
        }
    }
}

/// A full MR × NR block: MR·NR/8 accumulators, two loads of `b` and MR
/// broadcasts of `a` per step of the shared dimension. Index loops over
/// fixed sizes, which the compiler unrolls into registers.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn block<const T: bool>(k: usize, i: usize, j: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize) {
    let mut acc = [[0f32; NR]; MR];
    for p in 0..k {
        let bp: &[f32; NR] = b.data[p * b.stride + j..][..NR].try_into().unwrap();
        for r in 0..MR {
            let av = at::<T>(a, i + r, p);
            for q in 0..NR {
                acc[r][q] += av * bp[q];
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        c[(i + r) * ldc + j..][..NR].copy_from_slice(acc);
    }
}

/// The blocks at the right and bottom edges, element by element.
#[inline(always)]
fn edge<const T: bool>(k: usize, (i, rows): (usize, usize), (j, cols): (usize, usize), a: Mat, b: Mat, c: &mut [f32], ldc: usize) {
    for r in i..i + rows {
        for q in j..j + cols {
            let mut sum = 0f32;
            for p in 0..k {
                sum += at::<T>(a, r, p) * b.data[p * b.stride + q];
            }
            c[r * ldc + q] = sum;
        }
    }
}

/// `out` (cols × rows, row-major) = the transpose of `m` (rows × cols).
#[inline(always)]
pub(crate) fn transpose(rows: usize, cols: usize, m: Mat, out: &mut [f32]) {
    for r in 0..rows {
        for (q, v) in m.data[r * m.stride..][..cols].iter().enumerate() {
            out[q * rows + r] = *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn the_product_matches_the_textbook_one_for_shapes_with_and_without_edges() {
        for (m, k, n) in [(8, 5, 32), (7, 3, 19), (64, 64, 64), (1, 1, 1), (5, 16, 17)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 4.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0).collect();
            let mut c = vec![f32::NAN; m * n];
            gemm(m, k, n, Mat { data: &a, stride: k }, Mat { data: &b, stride: n }, &mut c, n);
            let want = naive(m, k, n, &a, &b);
            let d = c.iter().zip(&want).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(d < 1e-4, "{m}x{k}x{n}: differs by {d}");
            // The same with a stored transposed.
            let mut at = vec![0f32; k * m];
            transpose(m, k, Mat { data: &a, stride: k }, &mut at);
            let mut c2 = vec![f32::NAN; m * n];
            gemm_tn(m, k, n, Mat { data: &at, stride: m }, Mat { data: &b, stride: n }, &mut c2, n);
            assert_eq!(c, c2, "{m}x{k}x{n}, aᵀ stored");
        }
    }

    #[test]
    fn strided_operands_and_output_rows() {
        // a is the left 3 columns of a 3 × 5 buffer, c the right 4 columns of 2 × 6.
        let a = [1., 2., 3., 9., 9., 4., 5., 6., 9., 9.];
        let b = [1., 0., 0., 1., 0., 1., 0., 1., 1., 1., 1., 0.];
        let mut c = [0f32; 12];
        gemm(2, 3, 4, Mat { data: &a, stride: 5 }, Mat { data: &b, stride: 4 }, &mut c[2..], 6);
        assert_eq!(&c[2..6], &[4., 5., 3., 3.]);
        assert_eq!(&c[8..12], &[10., 11., 6., 9.]);
        let mut t = [0f32; 6];
        transpose(2, 3, Mat { data: &a, stride: 5 }, &mut t);
        assert_eq!(t, [1., 4., 2., 5., 3., 6.]);
    }
}
