//! The int8 product oracle: `y = x · wᵀ` over int8 codes with a 32-bit accumulator, written as
//! plainly as possible so that it is obviously right.
//!
//! Every integer GEMM of the workspace is tested against [`gemm_i8`]: the systolic crate's
//! reference and its fast kernels (one test per instruction set), and the integer forward pass's
//! `nacsim_nn::qnet::RefGemm`. It lives here, at the bottom of the crate map, because those
//! crates do not depend on each other.
//!
//! Layout: `x` is `[m, k]` (batch × fan-in), `w` is `[n, k]` (PyTorch `[out, in]`), both
//! row-major slices; the result is `[m, n]` row-major.

/// `y[i, j] = Σ_l x[i, l] · w[j, l]` modulo 2³² (the sum of an `i32` adder that wraps), for
/// row-major `x` `[m, k]` and `w` `[n, k]`; the result is row-major `[m, n]`.
///
/// Exact (no wrap can happen) whenever `k ≤ 131071`: every product lies in `[-16256, 16384]`.
/// Three loops, one wrapping adder, `l` in increasing order (with a wrapping adder any order
/// gives the same result).
///
/// # Panics
///
/// If `x.len() != m · k` or `w.len() != n · k`.
pub fn gemm_i8(x: &[i8], w: &[i8], m: usize, k: usize, n: usize) -> Vec<i32> {
    assert_eq!(
        x.len(),
        m * k,
        "gemm_i8: x holds {} codes, not {m}·{k}",
        x.len()
    );
    assert_eq!(
        w.len(),
        n * k,
        "gemm_i8: w holds {} codes, not {n}·{k}",
        w.len()
    );
    let mut y = vec![0i32; m * n];
    for i in 0..m {
        let xr = &x[i * k..(i + 1) * k];
        for j in 0..n {
            let wr = &w[j * k..(j + 1) * k];
            let mut sum = 0i32;
            for (&a, &b) in xr.iter().zip(wr) {
                sum = sum.wrapping_add(i32::from(a) * i32::from(b));
            }
            y[i * n + j] = sum;
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_product_by_hand() {
        // x [2, 3], w [4, 3].
        let x = [1i8, 2, 3, -1, 0, 127];
        let w = [1i8, 1, 1, -128, 0, 2, 0, 0, 0, 3, -2, 1];
        let y = gemm_i8(&x, &w, 2, 3, 4);
        assert_eq!(y, [6, -122, 0, 2, 126, 382, 0, 124]);
    }

    #[test]
    fn empty_shapes() {
        assert_eq!(gemm_i8(&[], &[], 2, 0, 3), [0; 6]);
        assert!(gemm_i8(&[], &[1, 2], 0, 2, 1).is_empty());
        assert!(gemm_i8(&[1, 2], &[], 1, 2, 0).is_empty());
    }

    #[test]
    fn sums_wrap_modulo_two_to_the_32() {
        // 200000 products of 16384 = 3.2768e9, beyond i32.
        let k = 200_000;
        let x = vec![-128i8; k];
        let w = vec![-128i8; k];
        let exact = 200_000i64 * 16384;
        let wrapped = gemm_i8(&x, &w, 1, k, 1)[0];
        assert_eq!(i64::from(wrapped), exact - (1i64 << 32));
    }

    #[test]
    #[should_panic(expected = "gemm_i8: w holds")]
    fn mismatched_fan_in_panics() {
        gemm_i8(&[1, 2], &[1, 2, 3], 1, 2, 1);
    }
}
