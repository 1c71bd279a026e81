//! Float reference forward and backward passes on batches, and the product-kernel seam.
//!
//! Activations are `[batch, features]` matrices (features channel-major, see [`crate::network`]).
//! Every matrix product of a Dense or Conv2d layer goes through a [`ProductKernel`], the first of
//! the training loop's two seams: the float kernel here, and the engines' shift-add or
//! product-to-sum kernels elsewhere. Convolutions are lowered to products by im2col with columns
//! in `(c, ky, kx)` order, matching PyTorch's `[out, in, kh, kw]` weight layout.
//!
//! Determinism: every parallel split is over fixed-size blocks of *outputs* (rows or columns of a
//! product, samples of a batch); no reduction is split across threads. Results are therefore
//! bit-identical for any rayon thread count.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, Zip, linalg::general_mat_mul, s};
use rayon::prelude::*;

use crate::im2col::im2col_hw;
use crate::model::{Model, Param};
use crate::network::{Activation, LayerSpec, ResolvedLayer};

/// Output block width (columns or rows) of one parallel task in [`par_matmul`]. Fixed, so that
/// the partition, and with it every rounding, does not depend on the thread count.
pub const BLOCK: usize = 64;

/// `a · b` with rayon over fixed blocks of the result. `a` is `[m, k]`, `b` is `[k, n]`.
///
/// # Panics
/// If the inner dimensions differ (a caller bug).
pub fn par_matmul(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    assert_eq!(a.ncols(), b.nrows(), "inner dimensions of a product");
    let (m, n) = (a.nrows(), b.ncols());
    let mut c = Array2::<f32>::zeros((m, n));
    par_matmul_into(a, b, c.view_mut());
    c
}

/// `c = a · b` into an existing matrix, parallel over fixed blocks of `c`.
pub fn par_matmul_into(a: ArrayView2<f32>, b: ArrayView2<f32>, mut c: ArrayViewMut2<f32>) {
    let (m, n) = (a.nrows(), b.ncols());
    let work = m * n * a.ncols();
    if work < 1 << 16 {
        general_mat_mul(1.0, &a, &b, 0.0, &mut c);
    } else if n >= m {
        c.axis_chunks_iter_mut(Axis(1), BLOCK)
            .into_par_iter()
            .enumerate()
            .for_each(|(j, mut cc)| {
                let j0 = j * BLOCK;
                let bb = b.slice(s![.., j0..j0 + cc.ncols()]);
                general_mat_mul(1.0, &a, &bb, 0.0, &mut cc);
            });
    } else {
        // Tall products (batches, im2col rows): blocks of at least BLOCK rows and about 2^18
        // MACs each, so that a task is worth scheduling, grown towards 2^25 MACs (at most a
        // quarter of the rows, or one block per thread on more than 4 threads): matrixmultiply
        // packs all of `b` again for every block, which cost ~25 % of the MLP's first layer at
        // 64-row blocks (#20). No block splits a sum, so the bits do not depend on the blocks.
        let kn = (a.ncols() * n).max(1);
        let tasks = rayon::current_num_threads().max(4);
        let rows = (BLOCK.max((1usize << 18) / kn))
            .max(((1usize << 25) / kn).min(m.div_ceil(tasks)))
            .next_multiple_of(BLOCK);
        c.axis_chunks_iter_mut(Axis(0), rows)
            .into_par_iter()
            .enumerate()
            .for_each(|(i, mut cc)| {
                let i0 = i * rows;
                let aa = a.slice(s![i0..i0 + cc.nrows(), ..]);
                general_mat_mul(1.0, &aa, &b, 0.0, &mut cc);
            });
    }
}

/// The product seam of the training loop: the three matrix products of a Dense (or lowered
/// Conv2d) layer. `layer` is the index of the layer in the network, so a kernel may keep
/// per-layer state (codes, tables).
pub trait ProductKernel: Sync {
    /// Forward product `y[n, o] = Σ_k x[n, k] · w[o, k]` (x `[n, k]`, w `[o, k]`).
    fn forward(&self, layer: usize, x: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32>;
    /// Error to the input `dx[n, k] = Σ_o dy[n, o] · w[o, k]`.
    fn backward_input(&self, layer: usize, dy: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32>;
    /// Weight gradient `dw[o, k] = Σ_n dy[n, o] · x[n, k]`.
    fn weight_grad(&self, layer: usize, dy: ArrayView2<f32>, x: ArrayView2<f32>) -> Array2<f32>;
}

/// The float product kernel: f32 products by `matrixmultiply`, blocked over rayon.
#[derive(Clone, Copy, Debug, Default)]
pub struct FloatKernel;

impl ProductKernel for FloatKernel {
    fn forward(&self, _layer: usize, x: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32> {
        par_matmul(x, w.t())
    }
    fn backward_input(
        &self,
        _layer: usize,
        dy: ArrayView2<f32>,
        w: ArrayView2<f32>,
    ) -> Array2<f32> {
        par_matmul(dy, w)
    }
    fn weight_grad(&self, _layer: usize, dy: ArrayView2<f32>, x: ArrayView2<f32>) -> Array2<f32> {
        par_matmul(dy.t(), x)
    }
}

/// SELU scale λ = 1.0507009873554805 rounded to f32 (Klambauer et al., NeurIPS 2017, eq. 2).
pub const SELU_LAMBDA: f32 = 1.050_701;
/// SELU α = 1.6732632423543772 rounded to f32 (Klambauer et al., NeurIPS 2017, eq. 2).
pub const SELU_ALPHA: f32 = 1.673_263_2;

/// `sin x` on `[0, π/2]` (the rectified sine's range) by its Taylor polynomial to `x^15`
/// (truncation ≤ (π/2)^17/17! ≈ 6e-12), Horner in f32: within a few f32 ulps of libm and several
/// times faster, which matters because the activation runs on every hidden value of every step.
#[inline]
fn rect_sine_sin(x: f32) -> f32 {
    let x2 = x * x;
    let mut p = -1.0 / 1_307_674_368_000.0f32;
    for c in [
        1.0 / 6_227_020_800.0,
        -1.0 / 39_916_800.0,
        1.0 / 362_880.0,
        -1.0 / 5040.0,
        1.0 / 120.0,
        -1.0 / 6.0,
    ] {
        p = p * x2 + c;
    }
    x + x * x2 * p
}

/// `cos x` on `[0, π/2]` by its Taylor polynomial to `x^16` (truncation ≤ (π/2)^18/18! ≈ 5e-13).
#[inline]
fn rect_sine_cos(x: f32) -> f32 {
    let x2 = x * x;
    let mut p = 1.0 / 20_922_789_888_000.0f32;
    for c in [
        -1.0 / 87_178_291_200.0,
        1.0 / 479_001_600.0,
        -1.0 / 3_628_800.0,
        1.0 / 40_320.0,
        -1.0 / 720.0,
        1.0 / 24.0,
        -0.5,
    ] {
        p = p * x2 + c;
    }
    1.0 + x2 * p
}

impl Activation {
    /// f(x).
    #[inline]
    pub fn apply(&self, x: f32) -> f32 {
        match *self {
            Activation::ReLU => x.max(0.0),
            Activation::LeakyReLU { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Activation::HardTanh { min, max } => x.clamp(min, max),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha * x.exp_m1()
                }
            }
            Activation::Selu => SELU_LAMBDA * if x > 0.0 { x } else { SELU_ALPHA * x.exp_m1() },
            Activation::ReLU6 => x.clamp(0.0, 6.0),
            Activation::RectSine => {
                if x >= std::f32::consts::FRAC_PI_2 {
                    1.0
                } else {
                    rect_sine_sin(x.max(0.0))
                }
            }
        }
    }
    /// f'(x), taking the derivative 0 at the kinks of ReLU, HardTanh and RectSine (as PyTorch
    /// does for ReLU).
    #[inline]
    pub fn derivative(&self, x: f32) -> f32 {
        match *self {
            Activation::ReLU => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyReLU { alpha } => {
                if x > 0.0 {
                    1.0
                } else {
                    alpha
                }
            }
            Activation::HardTanh { min, max } => {
                if x > min && x < max {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Tanh => 1.0 - x.tanh().powi(2),
            Activation::Sigmoid => {
                let s = 1.0 / (1.0 + (-x).exp());
                s * (1.0 - s)
            }
            Activation::Elu { alpha } => {
                if x > 0.0 {
                    1.0
                } else {
                    alpha * x.exp()
                }
            }
            Activation::Selu => SELU_LAMBDA * if x > 0.0 { 1.0 } else { SELU_ALPHA * x.exp() },
            Activation::ReLU6 => {
                if x > 0.0 && x < 6.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::RectSine => {
                if x > 0.0 && x < std::f32::consts::FRAC_PI_2 {
                    rect_sine_cos(x)
                } else {
                    0.0
                }
            }
        }
    }
}

/// What a layer keeps from the forward pass for its backward pass.
#[derive(Debug)]
pub enum Cache {
    /// Nothing needed.
    None,
    /// The layer input (Dense) or the im2col matrix (Conv2d), `[rows, fan_in]`.
    Input(Array2<f32>),
    /// For max pooling: flat input index of the winner of each output, `[batch, out_features]`.
    ArgMax(Vec<u32>),
    /// For activations: the pre-activation input.
    PreAct(Array2<f32>),
    /// A grouped Conv2d: the im2col matrix of each group.
    Groups(Vec<Array2<f32>>),
    /// BatchNorm2d in training: the normalised input `x̂` `[batch, features]` and `1/√(σ² + eps)`
    /// per channel.
    Norm {
        /// `(x − μ)/√(σ² + eps)`.
        xhat: Array2<f32>,
        /// `1/√(σ² + eps)` per channel.
        inv_std: Array1<f32>,
    },
    /// Dropout in training: the mask, `0` or `1/(1 − p)` per value.
    Mask(Array2<f32>),
    /// MatMul: both inputs.
    Inputs(Vec<Array2<f32>>),
    /// Concat: the features per sample of each input, in order.
    Split(Vec<usize>),
    /// Softmax or LayerNorm in training (see [`crate::attn_ops`]).
    Attn(crate::attn_ops::AttnCache),
}

pub use crate::im2col::im2col;

mod layout;
pub use layout::col2im;
use layout::{avgpool_backward, pool_forward};
pub(crate) use layout::{channels_to_pixels, pixels_to_channels};

/// Forward through one layer. With `keep`, returns the cache its backward pass needs.
pub fn layer_forward<K: ProductKernel + ?Sized>(
    kernel: &K,
    index: usize,
    l: &ResolvedLayer,
    p: Option<&Param>,
    x: Array2<f32>,
    keep: bool,
) -> (Array2<f32>, Cache) {
    match &l.spec {
        LayerSpec::Dense { .. } => {
            let p = p.expect("dense layer has parameters");
            let mut y = kernel.forward(index, x.view(), p.weight.view());
            if let Some(b) = &p.bias {
                y.axis_iter_mut(Axis(0))
                    .into_par_iter()
                    .for_each(|mut r| r += b);
            }
            (y, if keep { Cache::Input(x) } else { Cache::None })
        }
        LayerSpec::Conv2d {
            kernel: k,
            stride,
            padding,
            groups,
            ..
        } => {
            let p = p.expect("conv layer has parameters");
            if *groups > 1 {
                return crate::ops::grouped_conv_forward(kernel, index, l, p, x, keep);
            }
            let cols = im2col_hw(x.view(), l.input, l.output, *k, *stride, *padding);
            let yr = kernel.forward(index, cols.view(), p.weight.view());
            let y = pixels_to_channels(
                yr.view(),
                x.nrows(),
                l.output.h * l.output.w,
                p.bias.as_ref(),
            );
            (
                y,
                if keep {
                    Cache::Input(cols)
                } else {
                    Cache::None
                },
            )
        }
        LayerSpec::MaxPool2d { kernel: k, stride } => {
            let (y, arg) = pool_forward(l, x.view(), *k, *stride, true);
            (
                y,
                if keep {
                    Cache::ArgMax(arg)
                } else {
                    Cache::None
                },
            )
        }
        LayerSpec::AvgPool2d { kernel: k, stride } => {
            (pool_forward(l, x.view(), *k, *stride, false).0, Cache::None)
        }
        LayerSpec::Flatten | LayerSpec::Dropout { .. } => (x, Cache::None),
        LayerSpec::GlobalAvgPool => (crate::ops::global_avg_pool(l, x.view()), Cache::None),
        LayerSpec::Softmax { .. } | LayerSpec::LayerNorm { .. } | LayerSpec::Transpose { .. } => {
            let (y, c) = crate::attn_ops::forward(l, p, x, keep);
            (y, c.map_or(Cache::None, Cache::Attn))
        }
        LayerSpec::BatchNorm2d { .. }
        | LayerSpec::Add
        | LayerSpec::Concat
        | LayerSpec::MatMul { .. } => panic!(
            "layer {index} ({}) runs only through crate::graph (it needs several inputs or running statistics)",
            l.name
        ),
        LayerSpec::Act(a) => {
            if keep {
                let y = x.mapv(|v| a.apply(v));
                (y, Cache::PreAct(x))
            } else {
                let mut y = x;
                y.par_mapv_inplace(|v| a.apply(v));
                (y, Cache::None)
            }
        }
    }
}

/// Backward through one layer: returns the error to its input and, for layers with parameters,
/// the gradients (`weight` `[out, fan_in]`, `bias` `[out]`). `need_dx` = false skips the input
/// error (first layer).
pub fn layer_backward<K: ProductKernel + ?Sized>(
    kernel: &K,
    index: usize,
    l: &ResolvedLayer,
    p: Option<&Param>,
    cache: &Cache,
    dy: Array2<f32>,
    need_dx: bool,
) -> (Option<Array2<f32>>, Option<Param>) {
    match (&l.spec, cache) {
        (LayerSpec::Dense { .. }, Cache::Input(x)) => {
            let p = p.expect("dense layer has parameters");
            let dw = kernel.weight_grad(index, dy.view(), x.view());
            let db = p.bias.as_ref().map(|_| dy.sum_axis(Axis(0)));
            let dx = need_dx.then(|| kernel.backward_input(index, dy.view(), p.weight.view()));
            (
                dx,
                Some(Param {
                    weight: dw,
                    bias: db,
                }),
            )
        }
        (LayerSpec::Conv2d { .. }, Cache::Groups(cols)) => {
            let p = p.expect("conv layer has parameters");
            crate::ops::grouped_conv_backward(kernel, index, l, p, cols, dy, need_dx)
        }
        (
            LayerSpec::Conv2d {
                kernel: k,
                stride,
                padding,
                ..
            },
            Cache::Input(cols),
        ) => {
            let p = p.expect("conv layer has parameters");
            let pix = l.output.h * l.output.w;
            let dyr = channels_to_pixels(dy.view(), l.output.c, pix);
            let dw = kernel.weight_grad(index, dyr.view(), cols.view());
            let db = p.bias.as_ref().map(|_| dyr.sum_axis(Axis(0)));
            let dx = need_dx.then(|| {
                let dcols = kernel.backward_input(index, dyr.view(), p.weight.view());
                col2im(l.input, l.output, dcols.view(), *k, *stride, *padding)
            });
            (
                dx,
                Some(Param {
                    weight: dw,
                    bias: db,
                }),
            )
        }
        (LayerSpec::MaxPool2d { .. }, Cache::ArgMax(arg)) => {
            let of = l.output.len();
            let mut dx = Array2::<f32>::zeros((dy.nrows(), l.input.len()));
            dx.axis_iter_mut(Axis(0))
                .into_par_iter()
                .zip(dy.axis_iter(Axis(0)).into_par_iter())
                .zip(arg.par_chunks(of))
                .for_each(|((mut d, g), a)| {
                    for (o, &i) in a.iter().enumerate() {
                        d[i as usize] += g[o];
                    }
                });
            (Some(dx), None)
        }
        (LayerSpec::AvgPool2d { kernel: k, stride }, _) => {
            (Some(avgpool_backward(l, dy.view(), *k, *stride)), None)
        }
        (LayerSpec::Flatten | LayerSpec::Dropout { .. }, _) => (Some(dy), None),
        (LayerSpec::GlobalAvgPool, _) => (
            Some(crate::ops::global_avg_pool_backward(l, dy.view())),
            None,
        ),
        (
            LayerSpec::Softmax { .. } | LayerSpec::LayerNorm { .. } | LayerSpec::Transpose { .. },
            c,
        ) => {
            let c = if let Cache::Attn(a) = c {
                Some(a)
            } else {
                None
            };
            let (dx, g) = crate::attn_ops::backward(l, p, c, dy);
            (Some(dx), g)
        }
        (LayerSpec::Act(a), Cache::PreAct(x)) => {
            let mut dx = dy;
            Zip::from(&mut dx)
                .and(x)
                .par_for_each(|d, &v| *d *= a.derivative(v));
            (Some(dx), None)
        }
        _ => panic!(
            "layer {index} ({}) has no cache for its backward pass: forward was run without keep",
            l.name
        ),
    }
}

/// Softmax probabilities below this are flushed to zero (see [`softmax_cross_entropy`]).
pub const PROB_FLOOR: f32 = 1e-30;

/// Mean softmax cross-entropy over the batch and its gradient with respect to the logits.
/// Returns `(loss, dlogits, correct)` where `correct` counts argmax hits.
pub fn softmax_cross_entropy(
    logits: ArrayView2<f32>,
    labels: &[usize],
) -> (f32, Array2<f32>, usize) {
    let b = logits.nrows();
    let mut grad = Array2::<f32>::zeros(logits.raw_dim());
    let inv_b = 1.0 / b as f32;
    let mut loss = 0.0f64;
    let mut correct = 0;
    for ((row, mut g), &y) in logits
        .axis_iter(Axis(0))
        .zip(grad.axis_iter_mut(Axis(0)))
        .zip(labels)
    {
        let m = row.fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        let mut z = 0.0f32;
        for (gi, &v) in g.iter_mut().zip(row.iter()) {
            *gi = (v - m).exp();
            z += *gi;
        }
        let inv_z = 1.0 / z;
        for gi in g.iter_mut() {
            // Probabilities below PROB_FLOOR are flushed to zero: once a network is confident,
            // exp(v − max) lands in the f32 subnormal range, and subnormal operands make every
            // backward product several times slower on x86 (measured: epoch time 2.6 s → 4.5 s
            // for the MLP). The gradient changes by less than 1e-30 per logit.
            let p = *gi * inv_z;
            *gi = if p < PROB_FLOOR { 0.0 } else { p };
        }
        loss -= f64::from((g[y].max(1e-30)).ln());
        if argmax(row.as_slice().expect("logits are standard layout")) == y {
            correct += 1;
        }
        g[y] -= 1.0;
        g *= inv_b;
    }
    ((loss / b as f64) as f32, grad, correct)
}

/// Index of the largest value (the first one on ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut bi = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[bi] {
            bi = i;
        }
    }
    bi
}

impl Model {
    /// Float logits `[batch, classes]` for a batch `[batch, input features]` (pixels in [0, 1]).
    pub fn forward(&self, x: ArrayView2<f32>) -> Array2<f32> {
        crate::graph::net_forward(
            &FloatKernel,
            &self.layers,
            &self.params,
            &self.stats,
            x.to_owned(),
        )
    }

    /// Float top-1 accuracy (fraction) over `data` in batches of `batch`, BatchNorm2d on the
    /// model's running statistics ([`crate::train::accuracy_net`]); MLPs by the fused pass of
    /// [`crate::fused`] (the same bits).
    pub fn float_accuracy(&self, data: &crate::data::Dataset, batch: usize) -> f64 {
        if let Some(acc) = crate::fused::float_accuracy(&self.layers, &self.params, data, batch) {
            return acc;
        }
        crate::train::accuracy_net(
            &FloatKernel,
            &self.layers,
            &self.params,
            &self.stats,
            data,
            batch,
        )
    }

    /// Predicted class of each sample.
    pub fn predict(&self, x: ArrayView2<f32>) -> Vec<usize> {
        let y = self.forward(x);
        y.axis_iter(Axis(0))
            .map(|r| argmax(r.as_slice().expect("contiguous")))
            .collect()
    }
}

/// Forward a batch through all layers with a given kernel and parameter set (no caches).
pub fn forward_with<K: ProductKernel + ?Sized>(
    kernel: &K,
    layers: &[ResolvedLayer],
    params: &[Option<Param>],
    x: Array2<f32>,
) -> Array2<f32> {
    let mut h = x;
    for (i, (l, p)) in layers.iter().zip(params).enumerate() {
        h = layer_forward(kernel, i, l, p.as_ref(), h, false).0;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocked product has the bits of one `dot` for every block split (tall and wide
    /// shapes, k across matrixmultiply's 256-term blocks), under one, two and eight threads.
    #[test]
    fn par_matmul_equals_dot() {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            f32::from(!s.is_multiple_of(3)) * ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.4)
        };
        let shapes = [
            (1000, 300, 40),
            (700, 20, 10),
            (64, 300, 256),
            (300, 600, 3),
        ];
        for (m, k, n) in shapes {
            let a = Array2::from_shape_fn((m, k), |_| next());
            let w = Array2::from_shape_fn((n, k), |_| next());
            let want = a.dot(&w.t());
            for threads in [1, 2, 8] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let got = pool.install(|| par_matmul(a.view(), w.t()));
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{m}x{k}x{n}, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn rect_sine_is_the_clamped_sine_with_cosine_derivative() {
        let a = Activation::RectSine;
        let half_pi = std::f32::consts::FRAC_PI_2;
        assert_eq!(a.apply(-0.5), 0.0);
        assert_eq!(a.apply(0.0), 0.0);
        assert!((a.apply(0.5) - 0.5f32.sin()).abs() <= 6e-8);
        assert_eq!(a.apply(half_pi), 1.0);
        assert_eq!(a.apply(3.0), 1.0);
        // 0 at the kinks and outside, cos inside.
        for x in [-1.0, 0.0, half_pi, 2.0] {
            assert_eq!(a.derivative(x), 0.0, "x = {x}");
        }
        for i in 0..=1571 {
            let x = i as f32 * 1e-3;
            assert!((a.apply(x) - x.sin()).abs() <= 2.5e-7, "sin at {x}");
            if x > 0.0 && x < half_pi {
                assert!((a.derivative(x) - x.cos()).abs() <= 2.5e-7, "cos at {x}");
            }
        }
        let h = 1e-3f32;
        for i in 1..15 {
            let x = i as f32 * 0.1;
            let fd = (a.apply(x + h) - a.apply(x - h)) / (2.0 * h);
            assert!((fd - a.derivative(x)).abs() < 1e-3, "x = {x}: {fd}");
        }
    }
}
