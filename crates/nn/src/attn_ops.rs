//! Float math of the attention kinds — Softmax, LayerNorm and Transpose — forward and backward
//! on `[batch, features]` batches with channel-major `(c, h, w)` features.
//!
//! A reduction along one axis views a sample as `(outer, n, inner)`: `n` the axis length,
//! `outer`/`inner` the products of the axis lengths before/after it (`C`: `(1, c, h·w)`, `H`:
//! `(c, h, w)`, `W`: `(c·h, w, 1)`). Every sum along the axis is sequential in axis order and
//! every parallel split is over samples, so results do not depend on the thread count.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::model::Param;
use crate::network::{LayerSpec, ResolvedLayer, Shape, TensorAxis};

/// `(outer, n, inner)` of `s` for a reduction along `axis` (see the module doc).
pub fn axis_split(s: Shape, axis: TensorAxis) -> (usize, usize, usize) {
    match axis {
        TensorAxis::C => (1, s.c, s.h * s.w),
        TensorAxis::H => (s.c, s.h, s.w),
        TensorAxis::W => (s.c * s.h, s.w, 1),
    }
}

/// What a Softmax or LayerNorm keeps for its backward pass.
#[derive(Debug)]
pub enum AttnCache {
    /// Softmax: its output `y`.
    Softmax(Array2<f32>),
    /// LayerNorm: `x̂ = (x − μ)/√(σ² + eps)` and `1/√(σ² + eps)` per sample and position
    /// (`[batch, outer·inner]`).
    LayerNorm {
        /// The normalised input.
        xhat: Array2<f32>,
        /// `1/√(σ² + eps)` per position.
        inv_std: Array2<f32>,
    },
}

/// Softmax of one sample along `(outer, n, inner)`: max subtracted, `exp`, divided by the sum.
pub fn softmax_row(x: &[f32], y: &mut [f32], (outer, n, inner): (usize, usize, usize)) {
    for o in 0..outer {
        let base = o * n * inner;
        for i in 0..inner {
            let at = |j: usize| base + j * inner + i;
            let m = (0..n).fold(f32::NEG_INFINITY, |m, j| m.max(x[at(j)]));
            let mut sum = 0.0f32;
            for j in 0..n {
                let e = (x[at(j)] - m).exp();
                y[at(j)] = e;
                sum += e;
            }
            let inv = 1.0 / sum;
            for j in 0..n {
                y[at(j)] *= inv;
            }
        }
    }
}

/// Softmax along `axis` of every sample of `x` (`[batch, shape.len()]`).
pub fn softmax(x: ArrayView2<f32>, shape: Shape, axis: TensorAxis) -> Array2<f32> {
    let split = axis_split(shape, axis);
    let x = x.as_standard_layout();
    let mut y = Array2::<f32>::zeros(x.raw_dim());
    y.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(x.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(mut d, s)| {
            softmax_row(
                s.as_slice().expect("contiguous"),
                d.as_slice_mut().expect("contiguous"),
                split,
            );
        });
    y
}

/// Softmax backward from its output: `dx_j = y_j·(dy_j − Σ_k dy_k·y_k)` along the axis.
pub fn softmax_backward(
    y: &Array2<f32>,
    dy: ArrayView2<f32>,
    shape: Shape,
    axis: TensorAxis,
) -> Array2<f32> {
    let (outer, n, inner) = axis_split(shape, axis);
    let dy = dy.as_standard_layout();
    let mut dx = Array2::<f32>::zeros(y.raw_dim());
    dx.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(y.axis_iter(Axis(0)).into_par_iter())
        .zip(dy.axis_iter(Axis(0)).into_par_iter())
        .for_each(|((mut d, yr), g)| {
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| o * n * inner + j * inner + i;
                    let dot: f32 = (0..n).map(|j| g[at(j)] * yr[at(j)]).sum();
                    for j in 0..n {
                        d[at(j)] = yr[at(j)] * (g[at(j)] - dot);
                    }
                }
            }
        });
    dx
}

/// LayerNorm of one sample along `(outer, n, inner)`: writes `x̂` into `xhat` and `1/√(σ² + eps)`
/// per position into `inv_std` (mean and biased variance summed in f64).
fn layer_norm_row(
    x: &[f32],
    xhat: &mut [f32],
    inv_std: &mut [f32],
    (outer, n, inner): (usize, usize, usize),
    eps: f32,
) {
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| o * n * inner + j * inner + i;
            let mean = (0..n).map(|j| f64::from(x[at(j)])).sum::<f64>() / n as f64;
            let var = (0..n)
                .map(|j| (f64::from(x[at(j)]) - mean).powi(2))
                .sum::<f64>()
                / n as f64;
            let r = 1.0 / (var + f64::from(eps)).sqrt();
            inv_std[o * inner + i] = r as f32;
            for j in 0..n {
                xhat[at(j)] = ((f64::from(x[at(j)]) - mean) * r) as f32;
            }
        }
    }
}

/// `y = γ_j·x̂ + β_j` along the axis (index `j` of each element).
fn affine_along(
    xhat: &Array2<f32>,
    p: &Param,
    (_, n, inner): (usize, usize, usize),
) -> Array2<f32> {
    let gamma = p.weight.column(0);
    let mut y = xhat.clone();
    y.axis_iter_mut(Axis(0)).into_par_iter().for_each(|mut r| {
        for (k, v) in r.iter_mut().enumerate() {
            let j = (k / inner) % n;
            *v = *v * gamma[j] + p.bias.as_ref().map_or(0.0, |b| b[j]);
        }
    });
    y
}

/// LayerNorm forward along `axis` with γ = `p.weight[:, 0]`, β = `p.bias`: the output and
/// (for the backward pass) `x̂` and the inverse deviations.
pub fn layer_norm(
    x: ArrayView2<f32>,
    shape: Shape,
    axis: TensorAxis,
    eps: f32,
    p: &Param,
) -> (Array2<f32>, AttnCache) {
    let split = axis_split(shape, axis);
    let (outer, _, inner) = split;
    let x = x.as_standard_layout();
    let mut xhat = Array2::<f32>::zeros(x.raw_dim());
    let mut inv_std = Array2::<f32>::zeros((x.nrows(), outer * inner));
    xhat.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(inv_std.axis_iter_mut(Axis(0)).into_par_iter())
        .zip(x.axis_iter(Axis(0)).into_par_iter())
        .for_each(|((mut h, mut r), s)| {
            layer_norm_row(
                s.as_slice().expect("contiguous"),
                h.as_slice_mut().expect("contiguous"),
                r.as_slice_mut().expect("contiguous"),
                split,
                eps,
            );
        });
    let y = affine_along(&xhat, p, split);
    (y, AttnCache::LayerNorm { xhat, inv_std })
}

/// LayerNorm backward: with `g = dy·γ` along the axis,
/// `dx = r/n·(n·g − Σ g − x̂·Σ g·x̂)`, `dγ_j = Σ dy_j·x̂_j`, `dβ_j = Σ dy_j` (sums over samples
/// and positions; the per-sample partial sums are added in sample order).
pub fn layer_norm_backward(
    xhat: &Array2<f32>,
    inv_std: &Array2<f32>,
    dy: ArrayView2<f32>,
    shape: Shape,
    axis: TensorAxis,
    p: &Param,
) -> (Array2<f32>, Param) {
    let (outer, n, inner) = axis_split(shape, axis);
    let dy = dy.as_standard_layout();
    let gamma = p.weight.column(0);
    let mut dx = Array2::<f32>::zeros(xhat.raw_dim());
    let partials: Vec<Vec<f64>> = dx
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(dy.axis_iter(Axis(0)).into_par_iter())
        .zip(xhat.axis_iter(Axis(0)).into_par_iter())
        .zip(inv_std.axis_iter(Axis(0)).into_par_iter())
        .map(|(((mut d, g), h), r)| {
            let mut part = vec![0.0f64; 2 * n];
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| o * n * inner + j * inner + i;
                    let (mut sg, mut sgx) = (0.0f64, 0.0f64);
                    for j in 0..n {
                        let gj = f64::from(g[at(j)]) * f64::from(gamma[j]);
                        sg += gj;
                        sgx += gj * f64::from(h[at(j)]);
                        part[j] += f64::from(g[at(j)]) * f64::from(h[at(j)]);
                        part[n + j] += f64::from(g[at(j)]);
                    }
                    let ri = f64::from(r[o * inner + i]) / n as f64;
                    for j in 0..n {
                        let gj = f64::from(g[at(j)]) * f64::from(gamma[j]);
                        d[at(j)] = (ri * (n as f64 * gj - sg - f64::from(h[at(j)]) * sgx)) as f32;
                    }
                }
            }
            part
        })
        .collect();
    let mut sums = vec![0.0f64; 2 * n];
    for part in &partials {
        for (s, v) in sums.iter_mut().zip(part) {
            *s += v;
        }
    }
    let dgamma = Array2::from_shape_fn((n, 1), |(j, _)| sums[j] as f32);
    let dbeta = p
        .bias
        .as_ref()
        .map(|_| Array1::from_iter(sums[n..].iter().map(|&v| v as f32)));
    (
        dx,
        Param {
            weight: dgamma,
            bias: dbeta,
        },
    )
}

/// Swap axes `a` and `b` of every `(c, h, w)` sample in `x` (`[batch, input.len()]`), for any
/// element type (float activations, int8 codes). Swapping is its own inverse: the backward
/// pass swaps the same axes of the output shape.
pub fn transpose<T: Copy + Default + Send + Sync>(
    x: ArrayView2<T>,
    input: Shape,
    a: TensorAxis,
    b: TensorAxis,
) -> Array2<T> {
    let d = [input.c, input.h, input.w];
    let mut od = d;
    od.swap(a.index(), b.index());
    // Strides of the input, permuted to the output's axis order.
    let st = [input.h * input.w, input.w, 1];
    let mut ost = st;
    ost.swap(a.index(), b.index());
    let x = x.as_standard_layout();
    let mut y = Array2::<T>::default(x.raw_dim());
    y.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(x.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(mut dst, src)| {
            let (dst, src) = (
                dst.as_slice_mut().expect("contiguous"),
                src.as_slice().expect("contiguous"),
            );
            let mut k = 0;
            for u0 in 0..od[0] {
                for u1 in 0..od[1] {
                    for u2 in 0..od[2] {
                        dst[k] = src[u0 * ost[0] + u1 * ost[1] + u2 * ost[2]];
                        k += 1;
                    }
                }
            }
        });
    y
}

/// Forward of a Softmax, LayerNorm or Transpose layer (the dispatch target of
/// [`crate::forward::layer_forward`]); with `keep`, the cache its backward pass needs.
///
/// # Panics
/// For another kind, or a LayerNorm without parameters (caller bugs).
pub fn forward(
    l: &ResolvedLayer,
    p: Option<&Param>,
    x: Array2<f32>,
    keep: bool,
) -> (Array2<f32>, Option<AttnCache>) {
    match l.spec {
        LayerSpec::Softmax { axis } => {
            let y = softmax(x.view(), l.input, axis);
            let c = keep.then(|| AttnCache::Softmax(y.clone()));
            (y, c)
        }
        LayerSpec::LayerNorm { axis, eps, .. } => {
            let p = p.expect("layer norm has parameters");
            let (y, c) = layer_norm(x.view(), l.input, axis, eps, p);
            (y, keep.then_some(c))
        }
        LayerSpec::Transpose { a, b } => (transpose(x.view(), l.input, a, b), None),
        _ => unreachable!("attn_ops::forward of {}", l.name),
    }
}

/// Backward of a Softmax, LayerNorm or Transpose layer: the error to its input and (LayerNorm)
/// the gradients of γ and β.
///
/// # Panics
/// For another kind, or a Softmax/LayerNorm whose forward kept no cache (caller bugs).
pub fn backward(
    l: &ResolvedLayer,
    p: Option<&Param>,
    cache: Option<&AttnCache>,
    dy: Array2<f32>,
) -> (Array2<f32>, Option<Param>) {
    match (&l.spec, cache) {
        (&LayerSpec::Softmax { axis }, Some(AttnCache::Softmax(y))) => {
            (softmax_backward(y, dy.view(), l.input, axis), None)
        }
        (&LayerSpec::LayerNorm { axis, .. }, Some(AttnCache::LayerNorm { xhat, inv_std })) => {
            let p = p.expect("layer norm has parameters");
            let (dx, g) = layer_norm_backward(xhat, inv_std, dy.view(), l.input, axis, p);
            (dx, Some(g))
        }
        (&LayerSpec::Transpose { a, b }, _) => (transpose(dy.view(), l.output, a, b), None),
        _ => panic!(
            "layer {} has no cache for its backward pass: forward was run without keep",
            l.name
        ),
    }
}

#[cfg(test)]
#[path = "attn_ops_tests.rs"]
mod tests;
