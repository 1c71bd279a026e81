//! Float math of the graph kinds (BatchNorm2d, Dropout, GlobalAvgPool, grouped Conv2d, Concat,
//! MatMul), forward and backward, on `[batch, features]` batches with channel-major features.
//! Every parallel split is over samples or channels, never inside a reduction, so results do
//! not depend on the thread count.

use nacsim_core::keyed::Keyed;
use nacsim_core::rng::{Purpose, Stream, unit_f64};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, linalg::general_mat_mul, s};
use rayon::prelude::*;

use crate::forward::{Cache, ProductKernel, channels_to_pixels, col2im, pixels_to_channels};
use crate::graph::BnStats;
use crate::im2col::im2col_hw;
use crate::model::Param;
use crate::network::{LayerSpec, ResolvedLayer, Shape};

/// Pixels per channel of a layer's input.
fn pixels(l: &ResolvedLayer) -> usize {
    l.input.h * l.input.w
}

/// `y[b, c·P + p] = x[b, c·P + p]·scale[c] + shift[c]`.
fn affine(x: Array2<f32>, scale: &[f32], shift: &[f32], px: usize) -> Array2<f32> {
    let mut y = x;
    y.axis_iter_mut(Axis(0)).into_par_iter().for_each(|mut r| {
        let r = r.as_slice_mut().expect("contiguous rows");
        for (c, ch) in r.chunks_exact_mut(px).enumerate() {
            for v in ch {
                *v = *v * scale[c] + shift[c];
            }
        }
    });
    y
}

/// BatchNorm2d at inference: `γ·(x − μ)/√(σ² + eps) + β` with the running statistics.
pub fn bn_infer(
    l: &ResolvedLayer,
    p: &Param,
    st: &BnStats,
    eps: f32,
    x: Array2<f32>,
) -> Array2<f32> {
    let (scale, shift) = bn_affine(p, st, eps);
    affine(
        x.as_standard_layout().into_owned(),
        &scale,
        &shift,
        pixels(l),
    )
}

/// The per-channel `(scale, shift)` of BatchNorm2d at inference: `scale = γ/√(σ² + eps)`,
/// `shift = β − μ·scale` (the numbers folded into a preceding product at quantization).
pub fn bn_affine(p: &Param, st: &BnStats, eps: f32) -> (Vec<f32>, Vec<f32>) {
    let c = st.mean.len();
    let gamma = p.weight.column(0);
    let scale: Vec<f32> = (0..c)
        .map(|k| gamma[k] / (st.var[k] + eps).sqrt())
        .collect();
    let shift: Vec<f32> = (0..c)
        .map(|k| p.bias.as_ref().map_or(0.0, |b| b[k]) - st.mean[k] * scale[k])
        .collect();
    (scale, shift)
}

/// BatchNorm2d in training: normalise by the batch statistics (biased variance, as PyTorch),
/// update the running ones with `momentum` (unbiased variance), return `y` and the cache.
pub fn bn_train(
    l: &ResolvedLayer,
    p: &Param,
    st: &mut BnStats,
    eps: f32,
    momentum: f32,
    x: Array2<f32>,
) -> (Array2<f32>, Cache) {
    let x = x.as_standard_layout().into_owned();
    let (c, px, b) = (l.input.c, pixels(l), x.nrows());
    let n = (b * px) as f64;
    // Per-channel mean and variance, each a sequential f64 sum over (sample, pixel).
    let moments: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|k| {
            let vals = || {
                x.axis_iter(Axis(0))
                    .flat_map(move |r| r.slice_move(s![k * px..(k + 1) * px]).into_iter())
            };
            let mean = vals().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = vals().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
            (mean, var)
        })
        .collect();
    let inv_std: Array1<f32> = moments
        .iter()
        .map(|&(_, v)| (1.0 / (v + f64::from(eps)).sqrt()) as f32)
        .collect();
    let mean: Vec<f32> = moments.iter().map(|&(m, _)| m as f32).collect();
    let neg: Vec<f32> = (0..c).map(|k| -mean[k] * inv_std[k]).collect();
    let xhat = affine(x, inv_std.as_slice().expect("contiguous"), &neg, px);
    let gamma: Vec<f32> = p.weight.column(0).to_vec();
    let beta: Vec<f32> = p.bias.as_ref().map_or_else(|| vec![0.0; c], |b| b.to_vec());
    let y = affine(xhat.clone(), &gamma, &beta, px);
    let unbias = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
    for (k, &(m, v)) in moments.iter().enumerate() {
        st.mean[k] = (1.0 - momentum) * st.mean[k] + momentum * m as f32;
        st.var[k] = (1.0 - momentum) * st.var[k] + momentum * (v * unbias) as f32;
    }
    (y, Cache::Norm { xhat, inv_std })
}

/// BatchNorm2d backward from the batch statistics: `dβ = Σ dy`, `dγ = Σ dy·x̂`,
/// `dx = γ/(N·σ)·(N·dy − Σ dy − x̂·Σ dy·x̂)` with `N` = samples × pixels.
pub fn bn_backward(
    l: &ResolvedLayer,
    p: &Param,
    xhat: &Array2<f32>,
    inv_std: &Array1<f32>,
    dy: Array2<f32>,
) -> (Array2<f32>, Param) {
    let (c, px, b) = (l.input.c, pixels(l), dy.nrows());
    let dy = dy.as_standard_layout().into_owned();
    let n = (b * px) as f64;
    let sums: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|k| {
            let mut sd = 0.0f64;
            let mut sdx = 0.0f64;
            for (r, h) in dy.axis_iter(Axis(0)).zip(xhat.axis_iter(Axis(0))) {
                for (g, xh) in r
                    .slice(s![k * px..(k + 1) * px])
                    .iter()
                    .zip(h.slice(s![k * px..(k + 1) * px]))
                {
                    sd += f64::from(*g);
                    sdx += f64::from(*g) * f64::from(*xh);
                }
            }
            (sd, sdx)
        })
        .collect();
    let gamma = p.weight.column(0);
    let mut dx = Array2::<f32>::zeros(dy.raw_dim());
    dx.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(dy.axis_iter(Axis(0)).into_par_iter())
        .zip(xhat.axis_iter(Axis(0)).into_par_iter())
        .for_each(|((mut d, g), h)| {
            for k in 0..c {
                let (sd, sdx) = sums[k];
                let f = f64::from(gamma[k]) * f64::from(inv_std[k]) / n;
                for j in k * px..(k + 1) * px {
                    d[j] = (f * (n * f64::from(g[j]) - sd - f64::from(h[j]) * sdx)) as f32;
                }
            }
        });
    let dgamma = Array2::from_shape_fn((c, 1), |(k, _)| sums[k].1 as f32);
    let dbeta = p
        .bias
        .as_ref()
        .map(|_| Array1::from_iter(sums.iter().map(|s| s.0 as f32)));
    (
        dx,
        Param {
            weight: dgamma,
            bias: dbeta,
        },
    )
}

/// Dropout mask `[rows, cols]`: `0` with probability `p`, else `1/(1 − p)`; element `(r, c)`
/// draws word `r·cols + c` of the keyed stream `(seed, Dropout, layer, step)`.
pub fn dropout_mask(
    seed: u64,
    step: u64,
    layer: usize,
    rows: usize,
    cols: usize,
    p: f32,
) -> Array2<f32> {
    let s = Stream::new(
        seed,
        Purpose::Dropout,
        u32::try_from(layer).unwrap_or(u32::MAX),
        step as u32,
    );
    let seq = Keyed::of(&s).at(0);
    let keep = 1.0 / (1.0 - p);
    Array2::from_shape_fn((rows, cols), |(r, c)| {
        if unit_f64(seq.word((r * cols + c) as u64)) < f64::from(p) {
            0.0
        } else {
            keep
        }
    })
}

/// GlobalAvgPool: the mean of each channel's pixels, `[b, c·h·w]` → `[b, c]`.
pub fn global_avg_pool(l: &ResolvedLayer, x: ArrayView2<f32>) -> Array2<f32> {
    let (c, px) = (l.input.c, pixels(l));
    let inv = 1.0 / px as f32;
    Array2::from_shape_fn((x.nrows(), c), |(b, k)| {
        x.slice(s![b, k * px..(k + 1) * px]).iter().sum::<f32>() * inv
    })
}

/// GlobalAvgPool backward: each pixel gets its channel's error divided by the pixel count.
pub fn global_avg_pool_backward(l: &ResolvedLayer, dy: ArrayView2<f32>) -> Array2<f32> {
    let px = pixels(l);
    let inv = 1.0 / px as f32;
    Array2::from_shape_fn((dy.nrows(), l.input.len()), |(b, j)| dy[[b, j / px]] * inv)
}

/// Concatenation of per-sample feature vectors in input order (channel-major features, so
/// this is concatenation along channels).
pub fn concat(xs: &[Array2<f32>]) -> Array2<f32> {
    let b = xs.first().map_or(0, |x| x.nrows());
    let width: usize = xs.iter().map(|x| x.ncols()).sum();
    let mut y = Array2::<f32>::zeros((b, width));
    let mut at = 0;
    for x in xs {
        y.slice_mut(s![.., at..at + x.ncols()]).assign(x);
        at += x.ncols();
    }
    y
}

/// The `(c, rows, cols)` matrices of one sample as a view of matrix `k`.
fn mat(v: &[f32], k: usize, rows: usize, cols: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((rows, cols), &v[k * rows * cols..(k + 1) * rows * cols])
        .expect("sizes from the resolved shapes")
}

fn mat_mut(v: &mut [f32], k: usize, rows: usize, cols: usize) -> ArrayViewMut2<'_, f32> {
    ArrayViewMut2::from_shape((rows, cols), &mut v[k * rows * cols..(k + 1) * rows * cols])
        .expect("sizes from the resolved shapes")
}

/// The shapes `(a, b)` of a MatMul node's inputs: `a (c, m, k)`, `b (c, k, n)` (or
/// `(c, n, k)` transposed).
fn mm_dims(l: &ResolvedLayer, tb: bool) -> (usize, usize, usize, usize, (usize, usize)) {
    let (c, m, k, n) = (l.input.c, l.input.h, l.input.w, l.output.w);
    (c, m, k, n, if tb { (n, k) } else { (k, n) })
}

/// MatMul forward, per sample and channel: `y = a·b` (or `a·bᵀ`).
pub fn matmul(l: &ResolvedLayer, a: ArrayView2<f32>, b: ArrayView2<f32>, tb: bool) -> Array2<f32> {
    let (c, m, k, n, (br, bc)) = mm_dims(l, tb);
    let (a, b) = (a.as_standard_layout(), b.as_standard_layout());
    let mut y = Array2::<f32>::zeros((a.nrows(), c * m * n));
    y.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(s, mut row)| {
            let out = row.as_slice_mut().expect("contiguous");
            let (ar, brw) = (a.row(s), b.row(s));
            let (av, bv) = (
                ar.as_slice().expect("contiguous"),
                brw.as_slice().expect("contiguous"),
            );
            for ch in 0..c {
                let am = mat(av, ch, m, k);
                let bm = mat(bv, ch, br, bc);
                let mut ym = mat_mut(out, ch, m, n);
                if tb {
                    general_mat_mul(1.0, &am, &bm.t(), 0.0, &mut ym);
                } else {
                    general_mat_mul(1.0, &am, &bm, 0.0, &mut ym);
                }
            }
        });
    y
}

/// MatMul backward: `da = dy·bᵀ`, `db = aᵀ·dy` (transposed: `da = dy·b'`, `db' = dyᵀ·a`).
pub fn matmul_backward(
    l: &ResolvedLayer,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    tb: bool,
) -> (Array2<f32>, Array2<f32>) {
    let (c, m, k, n, (br, bc)) = mm_dims(l, tb);
    let (a, b, dy) = (
        a.as_standard_layout(),
        b.as_standard_layout(),
        dy.as_standard_layout(),
    );
    let mut da = Array2::<f32>::zeros(a.raw_dim());
    let mut db = Array2::<f32>::zeros(b.raw_dim());
    da.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(db.axis_iter_mut(Axis(0)).into_par_iter())
        .enumerate()
        .for_each(|(s, (mut dar, mut dbr))| {
            let dav = dar.as_slice_mut().expect("contiguous");
            let dbv = dbr.as_slice_mut().expect("contiguous");
            let (ar, brw, gr) = (a.row(s), b.row(s), dy.row(s));
            let av = ar.as_slice().expect("contiguous");
            let bv = brw.as_slice().expect("contiguous");
            let gv = gr.as_slice().expect("contiguous");
            for ch in 0..c {
                let (am, bm, gm) = (mat(av, ch, m, k), mat(bv, ch, br, bc), mat(gv, ch, m, n));
                let mut dam = mat_mut(dav, ch, m, k);
                let mut dbm = mat_mut(dbv, ch, br, bc);
                if tb {
                    general_mat_mul(1.0, &gm, &bm, 0.0, &mut dam);
                    general_mat_mul(1.0, &gm.t(), &am, 0.0, &mut dbm);
                } else {
                    general_mat_mul(1.0, &gm, &bm.t(), 0.0, &mut dam);
                    general_mat_mul(1.0, &am.t(), &gm, 0.0, &mut dbm);
                }
            }
        });
    (da, db)
}

/// The geometry of a grouped Conv2d: groups, and one group's input and output shapes.
fn group_shapes(l: &ResolvedLayer) -> (usize, Shape, Shape) {
    let LayerSpec::Conv2d { groups, .. } = l.spec else {
        unreachable!("grouped conv geometry of a non-conv layer {}", l.name)
    };
    let g = groups.max(1);
    (
        g,
        Shape::new(l.input.c / g, l.input.h, l.input.w),
        Shape::new(l.output.c / g, l.output.h, l.output.w),
    )
}

/// Grouped Conv2d forward: group `g` convolves input channels `g·cg ..` with weight rows
/// `g·og ..` (PyTorch's `groups`), each group one product through `kernel`.
pub fn grouped_conv_forward<K: ProductKernel + ?Sized>(
    kernel: &K,
    index: usize,
    l: &ResolvedLayer,
    p: &Param,
    x: Array2<f32>,
    keep: bool,
) -> (Array2<f32>, Cache) {
    let LayerSpec::Conv2d {
        kernel: k,
        stride,
        padding,
        ..
    } = l.spec
    else {
        unreachable!("grouped conv forward of {}", l.name)
    };
    let (g, gin, gout) = group_shapes(l);
    let (inw, outw, pix) = (gin.len(), gout.len(), gout.h * gout.w);
    let b = x.nrows();
    let mut y = Array2::<f32>::zeros((b, l.output.len()));
    let mut caches = Vec::with_capacity(if keep { g } else { 0 });
    for gi in 0..g {
        let xg = x.slice(s![.., gi * inw..(gi + 1) * inw]);
        let cols = im2col_hw(xg, gin, gout, k, stride, padding);
        let og = gout.c;
        let wg = p.weight.slice(s![gi * og..(gi + 1) * og, ..]);
        let yr = kernel.forward(index, cols.view(), wg);
        let bias = p
            .bias
            .as_ref()
            .map(|bb| bb.slice(s![gi * og..(gi + 1) * og]).to_owned());
        let yg = pixels_to_channels(yr.view(), b, pix, bias.as_ref());
        y.slice_mut(s![.., gi * outw..(gi + 1) * outw]).assign(&yg);
        if keep {
            caches.push(cols);
        }
    }
    (
        y,
        if keep {
            Cache::Groups(caches)
        } else {
            Cache::None
        },
    )
}

/// Grouped Conv2d backward, group by group (see [`grouped_conv_forward`]).
pub fn grouped_conv_backward<K: ProductKernel + ?Sized>(
    kernel: &K,
    index: usize,
    l: &ResolvedLayer,
    p: &Param,
    cols: &[Array2<f32>],
    dy: Array2<f32>,
    need_dx: bool,
) -> (Option<Array2<f32>>, Option<Param>) {
    let LayerSpec::Conv2d {
        kernel: k,
        stride,
        padding,
        ..
    } = l.spec
    else {
        unreachable!("grouped conv backward of {}", l.name)
    };
    let (g, gin, gout) = group_shapes(l);
    let (inw, outw, pix, og) = (gin.len(), gout.len(), gout.h * gout.w, gout.c);
    let mut dw = Array2::<f32>::zeros(p.weight.raw_dim());
    let mut db = p.bias.as_ref().map(|b| Array1::<f32>::zeros(b.len()));
    let mut dx = need_dx.then(|| Array2::<f32>::zeros((dy.nrows(), l.input.len())));
    for (gi, cols) in cols.iter().enumerate().take(g) {
        let dyr = channels_to_pixels(dy.slice(s![.., gi * outw..(gi + 1) * outw]), og, pix);
        let dwg = kernel.weight_grad(index, dyr.view(), cols.view());
        dw.slice_mut(s![gi * og..(gi + 1) * og, ..]).assign(&dwg);
        if let Some(db) = &mut db {
            db.slice_mut(s![gi * og..(gi + 1) * og])
                .assign(&dyr.sum_axis(Axis(0)));
        }
        if let Some(dx) = &mut dx {
            let wg = p.weight.slice(s![gi * og..(gi + 1) * og, ..]);
            let dcols = kernel.backward_input(index, dyr.view(), wg);
            let dxg = col2im(gin, gout, dcols.view(), k, stride, padding);
            dx.slice_mut(s![.., gi * inw..(gi + 1) * inw]).assign(&dxg);
        }
    }
    (
        dx,
        Some(Param {
            weight: dw,
            bias: db,
        }),
    )
}
