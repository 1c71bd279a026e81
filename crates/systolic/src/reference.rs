//! Integer GEMM reference: the oracle every other path of this crate is checked against.
//!
//! `y[m, n] = Σ_k x[m, k] · w[n, k]`, i.e. `y = x · wᵀ` with `x` of shape `[M, K]` (batch × fan-in)
//! and `w` of shape `[N, K]` (PyTorch `[out, in]` layout). [`gemm_ref`] is the workspace's one
//! int8 oracle, [`nacsim_core::gemm::gemm_i8`], on `ndarray` views; [`gemm_ref_acc`] adds the
//! array's narrower or saturating adder to it, written as plainly: three loops, one adder, `k` in
//! increasing order.

use nacsim_core::gemm::gemm_i8;
use ndarray::{Array2, ArrayView2};

use crate::config::{AccFormat, Overflow};

/// `x · wᵀ` accumulated in i32 with wrap-around (`acc_bits = 32`, [`Overflow::Wrap`]): the
/// core oracle [`gemm_i8`] on views (any memory layout).
///
/// Exact (no wrap can happen) whenever `K ≤ 131071`. Equals `gemm_ref_acc(x, w, 32, Wrap)`
/// (tested).
///
/// # Panics
///
/// If `x` and `w` disagree on `K` (`x.ncols() != w.ncols()`).
pub fn gemm_ref(x: ArrayView2<i8>, w: ArrayView2<i8>) -> Array2<i32> {
    check_fan_in(x, w);
    let (m, k, n) = (x.nrows(), x.ncols(), w.nrows());
    let (x, w) = (x.as_standard_layout(), w.as_standard_layout());
    let y = gemm_i8(
        x.as_slice().expect("standard layout"),
        w.as_slice().expect("standard layout"),
        m,
        k,
        n,
    );
    Array2::from_shape_vec((m, n), y).expect("gemm_i8 returns m·n sums")
}

fn check_fan_in(x: ArrayView2<i8>, w: ArrayView2<i8>) {
    assert_eq!(
        x.ncols(),
        w.ncols(),
        "gemm_ref: x is [{}, {}] but w is [{}, {}]",
        x.nrows(),
        x.ncols(),
        w.nrows(),
        w.ncols()
    );
}

/// `x · wᵀ` with one `acc_bits`-bit adder per output that adds the products in the order
/// `k = 0, 1, …, K-1`, applying `overflow` after every addition.
///
/// With [`Overflow::Wrap`] the result is the exact sum modulo `2^acc_bits` (sign-extended), so any
/// order of additions gives the same; with [`Overflow::Saturate`] it is this order's result.
///
/// # Panics
///
/// If `x` and `w` disagree on `K`.
pub fn gemm_ref_acc(
    x: ArrayView2<i8>,
    w: ArrayView2<i8>,
    acc_bits: u32,
    overflow: Overflow,
) -> Array2<i32> {
    check_fan_in(x, w);
    let acc = AccFormat::new(acc_bits, overflow);
    Array2::from_shape_fn((x.nrows(), w.nrows()), |(m, n)| {
        let mut sum = 0i32;
        for k in 0..x.ncols() {
            sum = acc.add(sum, i32::from(x[[m, k]]) * i32::from(w[[n, k]]));
        }
        sum
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn small_gemm_by_hand() {
        let x = array![[1i8, 2, 3], [-1, 0, 127]];
        let w = array![[1i8, 1, 1], [-128, 0, 2], [0, 0, 0], [3, -2, 1]];
        let y = gemm_ref(x.view(), w.view());
        assert_eq!(y, array![[6, -122, 0, 2], [126, 382, 0, 124]]);
    }

    #[test]
    fn overflow_wraps_or_saturates_in_order() {
        // 3 × 16384 = 49152 does not fit 16 bits.
        let x = array![[-128i8, -128, -128, 127]];
        let w = array![[-128i8, -128, -128, -128]];
        let exact: i64 = 3 * 16384 - 127 * 128;
        let wrapped = gemm_ref_acc(x.view(), w.view(), 16, Overflow::Wrap)[[0, 0]];
        assert_eq!(i64::from(wrapped), exact - 65536);
        let sat = gemm_ref_acc(x.view(), w.view(), 16, Overflow::Saturate)[[0, 0]];
        assert_eq!(sat, 32767 - 127 * 128);
    }

    #[test]
    fn the_32_bit_wrapping_adder_is_the_core_oracle() {
        use crate::testutil::matrix;
        for (m, k, n) in [(0, 3, 2), (2, 0, 3), (1, 1, 1), (7, 33, 5)] {
            let (x, w) = (matrix(m, k, 7), matrix(n, k, 8));
            assert_eq!(
                gemm_ref_acc(x.view(), w.view(), 32, Overflow::Wrap),
                gemm_ref(x.view(), w.view()),
                "{m}x{k}x{n}"
            );
        }
        // Sums beyond i32 wrap the same way.
        let x = Array2::from_elem((2, 200_000), -128i8);
        assert_eq!(
            gemm_ref_acc(x.view(), x.view(), 32, Overflow::Wrap),
            gemm_ref(x.view(), x.view())
        );
        // Any memory layout.
        let (x, w) = (matrix(4, 9, 1), matrix(3, 9, 2));
        let xt = x.t().to_owned();
        assert_eq!(gemm_ref(xt.t(), w.view()), gemm_ref(x.view(), w.view()));
    }
}
