//! The layout helpers of the float passes: col2im (the adjoint of im2col), the
//! pixel-major ↔ channel-major moves of a lowered convolution's products, and pooling forward
//! and backward.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::network::{Hw, ResolvedLayer, Shape};

/// col2im, the adjoint of [`im2col`](crate::im2col::im2col_hw): sums the column gradients
/// (`[b·oh·ow, c·kh·kw]`) back onto `[b, c·h·w]` for one sample `input` and `output` shape.
pub fn col2im(
    input: Shape,
    output: Shape,
    dcols: ArrayView2<f32>,
    kernel: Hw,
    stride: Hw,
    padding: Hw,
) -> Array2<f32> {
    let (ci, h, w) = (input.c, input.h, input.w);
    let (oh, ow) = (output.h, output.w);
    let b = dcols.nrows() / (oh * ow);
    let (kh, kw) = (kernel.h, kernel.w);
    let mut dx = Array2::<f32>::zeros((b, ci * h * w));
    dx.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(dcols.axis_chunks_iter(Axis(0), oh * ow).into_par_iter())
        .for_each(|(mut dst, src)| {
            let dst = dst.as_slice_mut().expect("contiguous rows");
            for oy in 0..oh {
                for ox in 0..ow {
                    let row = src.row(oy * ow + ox);
                    for c in 0..ci {
                        for ky in 0..kh {
                            let iy = (oy * stride.h + ky) as isize - padding.h as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            let base = (c * h + iy as usize) * w;
                            let rbase = (c * kh + ky) * kw;
                            for kx in 0..kw {
                                let ix = (ox * stride.w + kx) as isize - padding.w as isize;
                                if ix >= 0 && ix < w as isize {
                                    dst[base + ix as usize] += row[rbase + kx];
                                }
                            }
                        }
                    }
                }
            }
        });
    dx
}

/// `[b·p, o]` (row per output pixel) → `[b, o·p]` (channel-major per sample), adding `bias[o]`.
pub(crate) fn pixels_to_channels(
    yr: ArrayView2<f32>,
    b: usize,
    p: usize,
    bias: Option<&Array1<f32>>,
) -> Array2<f32> {
    let o = yr.ncols();
    let mut y = Array2::<f32>::zeros((b, o * p));
    y.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(sidx, mut row)| {
            let row = row.as_slice_mut().expect("contiguous rows");
            for pi in 0..p {
                let src = yr.row(sidx * p + pi);
                for (oc, v) in src.iter().enumerate() {
                    row[oc * p + pi] = v + bias.map_or(0.0, |bb| bb[oc]);
                }
            }
        });
    y
}

/// `[b, o·p]` → `[b·p, o]`, the inverse layout change of the conv output (for its gradient).
pub(crate) fn channels_to_pixels(dy: ArrayView2<f32>, o: usize, p: usize) -> Array2<f32> {
    let b = dy.nrows();
    let mut r = Array2::<f32>::zeros((b * p, o));
    r.axis_chunks_iter_mut(Axis(0), p)
        .into_par_iter()
        .zip(dy.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(mut dst, src)| {
            for pi in 0..p {
                for oc in 0..o {
                    dst[[pi, oc]] = src[oc * p + pi];
                }
            }
        });
    r
}

pub(super) fn pool_forward(
    l: &ResolvedLayer,
    x: ArrayView2<f32>,
    kernel: usize,
    stride: usize,
    max: bool,
) -> (Array2<f32>, Vec<u32>) {
    let (c, h, w) = (l.input.c, l.input.h, l.input.w);
    let (oh, ow) = (l.output.h, l.output.w);
    let b = x.nrows();
    let of = c * oh * ow;
    let mut y = Array2::<f32>::zeros((b, of));
    let mut arg = vec![0u32; if max { b * of } else { 0 }];
    let inv = 1.0 / (kernel * kernel) as f32;
    let body = |src: &[f32], dst: &mut [f32], mut am: Option<&mut [u32]>| {
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let o = (ch * oh + oy) * ow + ox;
                    let mut best = f32::NEG_INFINITY;
                    let mut bi = 0usize;
                    let mut sum = 0.0f32;
                    for ky in 0..kernel {
                        for kx in 0..kernel {
                            let i = (ch * h + oy * stride + ky) * w + ox * stride + kx;
                            let v = src[i];
                            if v > best {
                                best = v;
                                bi = i;
                            }
                            sum += v;
                        }
                    }
                    if let Some(a) = am.as_deref_mut() {
                        dst[o] = best;
                        a[o] = bi as u32;
                    } else {
                        dst[o] = sum * inv;
                    }
                }
            }
        }
    };
    if max {
        y.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(x.axis_iter(Axis(0)).into_par_iter())
            .zip(arg.par_chunks_mut(of))
            .for_each(|((mut d, s), a)| {
                body(
                    s.as_slice().expect("contiguous"),
                    d.as_slice_mut().expect("contiguous"),
                    Some(a),
                )
            });
    } else {
        y.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(x.axis_iter(Axis(0)).into_par_iter())
            .for_each(|(mut d, s)| {
                body(
                    s.as_slice().expect("contiguous"),
                    d.as_slice_mut().expect("contiguous"),
                    None,
                )
            });
    }
    (y, arg)
}

pub(super) fn avgpool_backward(
    l: &ResolvedLayer,
    dy: ArrayView2<f32>,
    kernel: usize,
    stride: usize,
) -> Array2<f32> {
    let (c, h, w) = (l.input.c, l.input.h, l.input.w);
    let (oh, ow) = (l.output.h, l.output.w);
    let inv = 1.0 / (kernel * kernel) as f32;
    let mut dx = Array2::<f32>::zeros((dy.nrows(), c * h * w));
    dx.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(dy.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(mut d, s)| {
            for ch in 0..c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let g = s[(ch * oh + oy) * ow + ox] * inv;
                        for ky in 0..kernel {
                            for kx in 0..kernel {
                                d[(ch * h + oy * stride + ky) * w + ox * stride + kx] += g;
                            }
                        }
                    }
                }
            }
        });
    dx
}
