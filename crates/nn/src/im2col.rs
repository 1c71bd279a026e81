//! im2col: a convolution's input patches as the rows of a product matrix, for any element type
//! (`f32` in the float passes of [`crate::forward`], `i8` codes in [`crate::qnet`]).
//!
//! `x` is `[b, c·h·w]` (channel-major samples); the result is `[b·oh·ow, c·kh·kw]` with row
//! `s·oh·ow + oy·ow + ox` and column `(c·kh + ky)·kw + kx`, the order of PyTorch's
//! `[out, in, kh, kw]` weights. Taps outside the image (zero padding) are `T::default()`: `0.0`
//! for floats, code 0 (real zero) for int8.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::network::{Hw, Shape};

/// The im2col matrix of a batch (see the module doc): `input` and `output` are the shapes of one
/// sample before and after a `kernel × kernel` convolution with `stride` and `padding`.
/// Parallel over samples; every element is a copy, so the result does not depend on the thread
/// count.
///
/// # Panics
///
/// If `x` rows are not `input.len()` long, or `output` is not the convolution's output shape for
/// `input` (a caller bug: a tap would index outside the sample).
pub fn im2col<T>(
    x: ArrayView2<T>,
    input: Shape,
    output: Shape,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Array2<T>
where
    T: Copy + Default + Send + Sync,
{
    im2col_hw(
        x,
        input,
        output,
        Hw::square(kernel),
        Hw::square(stride),
        Hw::square(padding),
    )
}

/// [`im2col`] with a rectangular kernel and per-axis stride and padding (`(h, w)` each); columns
/// in `(c, ky, kx)` order, `ky < kernel.h`, `kx < kernel.w`.
///
/// # Panics
///
/// As [`im2col`].
pub fn im2col_hw<T>(
    x: ArrayView2<T>,
    input: Shape,
    output: Shape,
    kernel: Hw,
    stride: Hw,
    padding: Hw,
) -> Array2<T>
where
    T: Copy + Default + Send + Sync,
{
    let (ci, h, w) = (input.c, input.h, input.w);
    let (oh, ow) = (output.h, output.w);
    let kk = ci * kernel.h * kernel.w;
    let x = x.as_standard_layout();
    let mut cols = Array2::<T>::default((x.nrows() * oh * ow, kk));
    if cols.is_empty() {
        return cols;
    }
    let cs = cols.as_slice_mut().expect("standard layout");
    cs.par_chunks_mut(oh * ow * kk)
        .zip(
            x.as_slice()
                .expect("standard layout")
                .par_chunks(input.len()),
        )
        .for_each(|(dst, src)| {
            for (r, row) in dst.chunks_exact_mut(kk).enumerate() {
                let (y0, x0) = ((r / ow) * stride.h, (r % ow) * stride.w);
                // Taps kx in lo..hi fall inside the image: padding <= x0 + kx < w + padding.
                let lo = padding.w.saturating_sub(x0).min(kernel.w);
                let hi = (w + padding.w).saturating_sub(x0).clamp(lo, kernel.w);
                if lo == hi {
                    continue;
                }
                for c in 0..ci {
                    for ky in 0..kernel.h {
                        let Some(iy) = (y0 + ky).checked_sub(padding.h).filter(|&iy| iy < h) else {
                            continue;
                        };
                        let d = (c * kernel.h + ky) * kernel.w;
                        let s0 = (c * h + iy) * w + x0 + lo - padding.w;
                        row[d + lo..d + hi].copy_from_slice(&src[s0..s0 + hi - lo]);
                    }
                }
            }
        });
    cols
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, one element at a time.
    fn naive<T: Copy + Default>(
        x: &Array2<T>,
        input: Shape,
        output: Shape,
        k: usize,
        stride: usize,
        padding: usize,
    ) -> Array2<T> {
        let (oh, ow) = (output.h, output.w);
        Array2::from_shape_fn((x.nrows() * oh * ow, input.c * k * k), |(row, col)| {
            let (s, p) = (row / (oh * ow), row % (oh * ow));
            let (oy, ox) = (p / ow, p % ow);
            let (c, ky, kx) = (col / (k * k), col / k % k, col % k);
            let iy = (oy * stride + ky) as isize - padding as isize;
            let ix = (ox * stride + kx) as isize - padding as isize;
            if iy < 0 || ix < 0 || iy >= input.h as isize || ix >= input.w as isize {
                T::default()
            } else {
                x[[s, (c * input.h + iy as usize) * input.w + ix as usize]]
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(nacsim_core::testing::proptest_cases(64)))]

        #[test]
        fn im2col_equals_its_definition_for_floats_and_codes(
            c in 1usize..4, h in 1usize..9, w in 1usize..9, k in 1usize..5,
            stride in 1usize..4, padding in 0usize..3, batch in 0usize..3, seed: u64,
        ) {
            prop_assume!(k <= h + 2 * padding && k <= w + 2 * padding);
            let (oh, ow) = ((h + 2 * padding - k) / stride + 1, (w + 2 * padding - k) / stride + 1);
            let (input, output) = (Shape::new(c, h, w), Shape::new(1, oh, ow));
            let x = Array2::from_shape_fn((batch, c * h * w), |(a, b)| {
                (seed.wrapping_add((a * 1000 + b) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 57) as i8
            });
            let got = im2col(x.view(), input, output, k, stride, padding);
            prop_assert_eq!(&got, &naive(&x, input, output, k, stride, padding));
            // Floats, negative zero included, are copied bit for bit.
            let xf = x.mapv(|v| if v == 0 { -0.0 } else { f32::from(v) / 7.0 });
            let gf = im2col(xf.view(), input, output, k, stride, padding);
            let wf = naive(&xf, input, output, k, stride, padding);
            prop_assert_eq!(gf.mapv(f32::to_bits), wf.mapv(f32::to_bits));
            // Column-major input gives the same rows.
            let xt = xf.t().to_owned();
            prop_assert_eq!(im2col(xt.t(), input, output, k, stride, padding), gf);
        }
    }
}
