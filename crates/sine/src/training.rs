//! The sine plugs of the training loop (`nacsim_nn::train`): a [`ProductKernel`] whose three
//! products go through the sine substitution in float ("sine-in-float", note §1.2), and a
//! [`WeightStore`] wrapper that makes the learning rate a power of two (a shift).
//!
//! | pass | textbook | [`SineKernel`] (f32) |
//! |---|---|---|
//! | forward | `y = Σ w·x` | `Σ sin(w)·x`, `x` a sine already (`Act(RectSine)`, or the encoded pixel) |
//! | backward error | `e = Σ w·δ` | `sin(Σ sin(w)·sin(δ))`; the following `Act(RectSine)` multiplies by `cos z` (I2: `sin e · cos z`) |
//! | weight gradient | `Σ δ·x` | `Σ sin(δ)·x` |
//! | update | `−η·g` | the loop's optimiser; with [`ShiftRate`] `η = 2^-k` |
//!
//! The forward pass is exactly a float network with weights `sin(W)`
//! ([`SineKernel::effective_weight`]), so a model saved with `sin(W)` as its weights evaluates to
//! the sine-in-float accuracy under the plain float kernel; the bit-exact
//! [`SineNetwork`](crate::SineNetwork) takes `asin` of those weights back to angles (any angle with
//! the same sine gives the same products).
//!
//! The bit-exact datapath is the inference [`SineNetwork`](crate::SineNetwork); the separation of
//! errors is: float (`Float` kernel) → sine-in-float (this kernel: approximation error only) →
//! fixed point (datapath error only, against sine-in-float).
//!
//! Determinism: every step is element-wise or a [`par_matmul`] (fixed output blocks), so results
//! are bit-identical for any thread count.

use std::sync::{Arc, Mutex};

use nacsim_nn::forward::{ProductKernel, par_matmul};
use nacsim_nn::model::Param;
use nacsim_nn::train::WeightStore;
use ndarray::{Array2, ArrayView2, Zip};
use rayon::prelude::*;

use crate::activation::InputEncoding;

/// Cached `sin(W)` of one layer, with the weights it was computed from.
type SinCache = Option<(Array2<f32>, Arc<Array2<f32>>)>;

/// The sine-in-float product kernel (see the module docs).
///
/// `sin(W)` is computed once per training step: the forward product computes and caches it, and
/// the backward product of the same step reuses it when the weights are unchanged (checked by
/// comparing them, so a stale cache can never be used).
#[derive(Debug)]
pub struct SineKernel {
    /// First-layer input encoding.
    input: InputEncoding,
    /// Index (in the network's layers) of the first layer with parameters, whose inputs are the
    /// pixels.
    first: usize,
    /// Per-layer `(W, sin W)` cache.
    cache: Mutex<Vec<SinCache>>,
}

/// `sin x` in f32: for `|x| ≤ 1` the Taylor polynomial to `x^11` by Horner's rule (truncation
/// `≤ 1/13! ≈ 1.6e-10`, far below the f32 half-ulp of `sin x`; rounding within 2 ulp of libm,
/// tested), which the compiler vectorises; elsewhere libm's `sinf`. About 10× faster than libm on
/// the small weights and errors of training, which matters because `sin(W)` is recomputed every
/// step.
#[inline]
pub fn sin_f32(x: f32) -> f32 {
    if x.abs() <= 1.0 { sin_poly(x) } else { x.sin() }
}

/// The polynomial branch of [`sin_f32`], valid for `|x| ≤ 1`; branch-free so that loops over it
/// vectorise.
#[inline(always)]
fn sin_poly(x: f32) -> f32 {
    // Below 2^-12, sin x rounds to x in f32 (x²/6 < 2^-25); zeroing the polynomial's input
    // there also keeps x³ out of the subnormal range, which is slow on x86.
    let xs = if x.abs() < SIN_TINY { 0.0 } else { x };
    let x2 = xs * xs;
    // Plain multiply-adds, not `mul_add`: without the FMA target feature that is a libm call.
    let p = 1.0 / 362_880.0 - x2 * (1.0 / 39_916_800.0f32);
    let p = 1.0 / 5040.0 - x2 * p;
    let p = 1.0 / 120.0 - x2 * p;
    let p = 1.0 / 6.0 - x2 * p;
    // x − x³·p
    x - xs * x2 * p
}

/// `2^-12`: below it `sin x` rounds to `x` in f32.
const SIN_TINY: f32 = 1.0 / 4096.0;

/// Elements per parallel task of [`sin_of`] (fixed; the map is element-wise anyway).
const SIN_CHUNK: usize = 16_384;

/// [`sin_f32`] of every element, in parallel over fixed chunks (element-wise, so deterministic).
fn sin_of(x: ArrayView2<f32>) -> Array2<f32> {
    let x = x.as_standard_layout();
    let src = x.as_slice().expect("standard layout");
    let mut out = vec![0f32; src.len()];
    out.par_chunks_mut(SIN_CHUNK)
        .zip(src.par_chunks(SIN_CHUNK))
        .for_each(|(d, s)| {
            // A branch-free (vectorised) pass, then libm for the rare |x| > 1.
            let mut big = false;
            for (d, &v) in d.iter_mut().zip(s) {
                *d = sin_poly(v.clamp(-1.0, 1.0));
                big |= v.abs() > 1.0;
            }
            if big {
                for (d, &v) in d.iter_mut().zip(s) {
                    if v.abs() > 1.0 {
                        *d = v.sin();
                    }
                }
            }
        });
    Array2::from_shape_vec(x.raw_dim(), out).expect("same shape")
}

impl SineKernel {
    /// A kernel for a network whose first parameter layer has index `first`, with first-layer
    /// input encoding `input`.
    pub fn new(first: usize, input: InputEncoding) -> Self {
        SineKernel {
            input,
            first,
            cache: Mutex::new(Vec::new()),
        }
    }

    /// The first-layer encoding.
    pub fn input(&self) -> InputEncoding {
        self.input
    }

    /// The weights the forward pass effectively multiplies by: `sin(W)` (element-wise).
    pub fn effective_weight(&self, w: ArrayView2<f32>) -> Array2<f32> {
        sin_of(w)
    }

    /// `sin(W)` for layer `layer`, from the cache when `w` equals the cached weights.
    fn sin_weight(&self, layer: usize, w: ArrayView2<f32>, store: bool) -> Arc<Array2<f32>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Some((cw, sw))) = cache.get(layer)
            && cw.view() == w
        {
            return Arc::clone(sw);
        }
        drop(cache);
        let sw = Arc::new(sin_of(w));
        if store {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() <= layer {
                cache.resize(layer + 1, None);
            }
            cache[layer] = Some((w.to_owned(), Arc::clone(&sw)));
        }
        sw
    }

    /// The layer input as the sine the product consumes: unchanged except for the first layer
    /// under [`InputEncoding::Scale`], where pixel `x0` becomes `sin(x0 · 2^-shift)`. Under
    /// [`InputEncoding::Arcsin`], `sin(arcsin x0) = x0`.
    fn encoded<'a>(&self, layer: usize, x: ArrayView2<'a, f32>) -> Option<Array2<f32>> {
        match self.input {
            InputEncoding::Scale { shift } if layer == self.first => {
                let s = (-(shift as f32)).exp2();
                let mut y = Array2::<f32>::zeros(x.raw_dim());
                Zip::from(&mut y)
                    .and(&x)
                    .par_for_each(|d, &v| *d = sin_f32(v * s));
                Some(y)
            }
            _ => None,
        }
    }
}

impl ProductKernel for SineKernel {
    fn forward(&self, layer: usize, x: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32> {
        let sw = self.sin_weight(layer, w, true);
        match self.encoded(layer, x) {
            Some(xe) => par_matmul(xe.view(), sw.t()),
            None => par_matmul(x, sw.t()),
        }
    }

    fn backward_input(&self, layer: usize, dy: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32> {
        let sw = self.sin_weight(layer, w, false);
        let mut e = par_matmul(sin_of(dy).view(), sw.view());
        e.par_mapv_inplace(sin_f32);
        e
    }

    fn weight_grad(&self, layer: usize, dy: ArrayView2<f32>, x: ArrayView2<f32>) -> Array2<f32> {
        let sdy = sin_of(dy);
        match self.encoded(layer, x) {
            Some(xe) => par_matmul(sdy.t(), xe.view()),
            None => par_matmul(sdy.t(), x),
        }
    }
}

/// `2^round(log2 lr)`: the power of two nearest to `lr` in the log domain (ties up). Non-positive
/// or non-finite rates are returned unchanged.
pub fn power_of_two_rate(lr: f32) -> f32 {
    if !(lr.is_finite() && lr > 0.0) {
        return lr;
    }
    lr.log2().round().exp2()
}

/// A weight store whose learning rate is rounded to a power of two ([`power_of_two_rate`]), so
/// that `−η · g` is an arithmetic shift.
#[derive(Debug, Clone)]
pub struct ShiftRate<S>(pub S);

impl<S: WeightStore> WeightStore for ShiftRate<S> {
    fn params(&self) -> &[Option<Param>] {
        self.0.params()
    }
    fn update(&mut self, grads: &[Option<Param>], lr: f32) {
        self.0.update(grads, power_of_two_rate(lr));
    }
    fn export(&self) -> Vec<Option<Param>> {
        self.0.export()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacsim_nn::forward::FloatKernel;
    use ndarray::array;

    #[test]
    fn forward_is_float_forward_with_sine_weights() {
        let k = SineKernel::new(1, InputEncoding::Arcsin);
        let x = array![[0.5f32, 0.25, 1.0], [0.0, 0.75, 0.125]];
        let w = array![[0.3f32, -0.2, 0.1], [1.2, 0.05, -0.7]];
        let got = k.forward(1, x.view(), w.view());
        let want = FloatKernel.forward(1, x.view(), k.effective_weight(w.view()).view());
        assert_eq!(got, want);
        assert!(
            (got[[0, 0]] - (0.3f32.sin() * 0.5 - 0.2f32.sin() * 0.25 + 0.1f32.sin())).abs() < 1e-6
        );
    }

    #[test]
    fn backward_uses_sines_of_errors_and_weights() {
        let k = SineKernel::new(0, InputEncoding::Arcsin);
        let dy = array![[0.9f32, -0.4]];
        let w = array![[0.3f32, -0.2], [1.2, 0.05]];
        let e = k.backward_input(0, dy.view(), w.view());
        let want0 = (0.9f32.sin() * 0.3f32.sin() + (-0.4f32).sin() * 1.2f32.sin()).sin();
        assert!((e[[0, 0]] - want0).abs() < 1e-6, "{e}");
        let x = array![[0.5f32, 0.25]];
        let g = k.weight_grad(0, dy.view(), x.view());
        assert!((g[[1, 0]] - (-0.4f32).sin() * 0.5).abs() < 1e-7);
        // The cache never serves stale weights.
        let _ = k.forward(0, x.view(), w.view());
        let w2 = &w * 2.0;
        let e2 = k.backward_input(0, dy.view(), w2.view());
        let want = (0.9f32.sin() * 0.6f32.sin() + (-0.4f32).sin() * 2.4f32.sin()).sin();
        assert!((e2[[0, 0]] - want).abs() < 1e-6);
    }

    #[test]
    fn scale_encoding_takes_the_sine_of_shifted_pixels_in_the_first_layer_only() {
        let k = SineKernel::new(1, InputEncoding::Scale { shift: 1 });
        let x = array![[1.0f32, 0.5]];
        let w = array![[0.4f32, 0.4]];
        let y = k.forward(1, x.view(), w.view());
        let want = 0.4f32.sin() * (0.5f32.sin() + 0.25f32.sin());
        assert!((y[[0, 0]] - want).abs() < 1e-6);
        let y3 = k.forward(3, x.view(), w.view());
        assert!((y3[[0, 0]] - 0.4f32.sin() * 1.5).abs() < 1e-6);
    }

    #[test]
    fn fast_sine_is_within_two_ulp_of_libm() {
        let mut worst = 0u32;
        for k in -300_000..=300_000 {
            let x = k as f32 * 1e-5 * 4.0; // [-12, 12], dense near 0 too
            let (a, b) = (sin_f32(x), x.sin());
            let ulps = (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32;
            if a != b {
                worst = worst.max(ulps);
            }
            assert!(ulps <= 2 || (a - b).abs() <= 1e-45, "x = {x}: {a} vs {b}");
        }
        assert!(worst <= 2);
        assert_eq!(sin_f32(0.0), 0.0);
        assert_eq!(sin_f32(-0.5), -sin_f32(0.5));
    }

    #[test]
    fn rates_round_to_powers_of_two() {
        assert_eq!(power_of_two_rate(0.001), 1.0 / 1024.0);
        assert_eq!(power_of_two_rate(0.0015), 1.0 / 512.0);
        assert_eq!(power_of_two_rate(0.25), 0.25);
        assert_eq!(power_of_two_rate(0.0), 0.0);
    }
}
