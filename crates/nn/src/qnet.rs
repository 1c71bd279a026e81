//! Int8 network quantization: a float [`Model`] becomes a [`QNetwork`] whose forward pass is exact
//! integer arithmetic, the functional reference every integer engine must equal bit for bit.
//!
//! ## Number formats
//!
//! - **Activations** are signed symmetric `act_bits` codes with zero point 0, in
//!   `−A ..= A`, `A = 2^(act_bits−1) − 1` (so −128 never occurs for 8 bits). One real scale per
//!   tensor: real = scale · code. Scales are calibrated by running the *float* model on the first
//!   [`QuantConfig::calibration_images`] images of a calibration set and taking, at each
//!   quantization point, the [`Calibration`] statistic of |activation|; scale = statistic / A.
//!   The network input (pixels in [0, 1]) is calibrated the same way.
//! - **Weights** are symmetric `weight_bits` codes in `−W ..= W`, `W = 2^(weight_bits−1) − 1`,
//!   with one scale per output channel (`max |w[o, :]| / W`) or one per tensor.
//! - **Biases** are `i32` at scale `s_in · s_w[o]` (rounded with the configured mode, saturated).
//! - **Requantization** multiplies the `i32` accumulator by `M = s_in · s_w[o] / s_out`, held as a
//!   Q31 fixed-point [`Requant`] (`multiplier · 2^−shift`), rounds with the configured
//!   [`Rounding`] and clamps to `−A ..= A` (to `0 ..= A` when a following ReLU is fused).
//!
//! ## Layers
//!
//! Dense and Conv2d become [`QLayer::Gemm`] (a ReLU right after one is fused into its clamp and
//! disappears from the layer list, so [`QNetwork::layers`] can be shorter than the model's
//! layers); max pooling is exact on codes, average pooling sums and divides with the rounding
//! mode, `Flatten` moves no data, and every other activation is a 256-entry lookup table
//! ([`QLayer::Lut`]) built by dequantize → f → requantize. Convolutions are lowered by
//! [`im2col_i8`] with the row and column order of [`crate::forward::im2col`].
//!
//! Every product goes through the [`IntGemm`] seam; [`RefGemm`] is the plain exact reference.
//! Integer sums are exact, so results are bit-identical for any rayon thread count.
//!
//! ## Example
//!
//! ```
//! use nacsim_nn::{data::Dataset, model::Model, network::NetworkSpec};
//! use nacsim_nn::qnet::{QNetwork, QuantConfig, RefGemm};
//! let spec: NetworkSpec = ron::from_str(
//!     "(schema_version: 1, name: \"t\", input: (c: 1, h: 8, w: 8), classes: 4,
//!       layers: [Flatten, Dense(out: 16), Act(ReLU), Dense(out: 4)])",
//! ).unwrap();
//! let model = Model::init(spec, 1).unwrap();
//! let data = Dataset::synthetic(64, 8, 8, 4, 7);
//! let q = QNetwork::quantize(&model, &data, &QuantConfig::default()).unwrap();
//! assert_eq!(q.layers.len(), 3); // Flatten, fc1 with the ReLU fused, fc2
//! let logits = q.forward(&RefGemm, q.quantize_input(data.batch_range(0, 2).view()));
//! assert_eq!(logits.dim(), (2, 4));
//! ```

use std::fmt;

use nacsim_core::config::{Checks, FieldError, Validate};
use ndarray::{Array2, ArrayView2, Axis, Zip};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::forward::{FloatKernel, layer_forward as float_layer_forward};
use crate::model::Model;
use crate::network::{Activation, LayerSpec, ResolvedLayer, Shape};
use crate::quant::{Rounding, round};

/// How the range of a tensor is found from its calibration values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Calibration {
    /// The largest |value| seen: nothing clips on the calibration set, at the cost of resolution.
    MaxAbs,
    /// The given percentile (in (0, 100]) of |value| over every element of the tensor on the
    /// calibration images (the `⌈p/100 · n⌉`-th smallest of the `n` values); larger values clip.
    Percentile(f64),
}

/// Quantization settings (RON; every field is optional).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuantConfig {
    /// Weight code width in bits, 2..=8. Default 8.
    pub weight_bits: u32,
    /// Activation code width in bits, 2..=8. Default 8.
    pub act_bits: u32,
    /// One symmetric weight scale per output channel (true) or one per tensor. Default true.
    pub per_channel_weights: bool,
    /// Range statistic of activations. Default `Percentile(99.9)`: it clips about one value in
    /// 1000 and buys resolution for the rest, the final logits included (fewer tied top codes).
    /// Measured on the full Fashion-MNIST test set, calibrated on the first 512 training images
    /// (int8 − float, points): MLP −0.05 (`MaxAbs` −0.16, `Percentile(99.99)` −0.18), CNN −0.09
    /// (`MaxAbs` −0.09, `Percentile(99.99)` −0.17); with 128 to 4096 calibration images it stays
    /// within −0.17..+0.02 on both.
    pub calibration: Calibration,
    /// Number of calibration images: the first N of the calibration set (all of it if it is
    /// smaller). Default 512. `Percentile` keeps every |value| of each calibrated tensor in
    /// memory (4 bytes each) until the statistic is taken.
    pub calibration_images: usize,
    /// Rounding of inputs, weights, biases, requantization and average pooling. Default
    /// `NearestEven`.
    pub rounding: Rounding,
}

impl Default for QuantConfig {
    fn default() -> Self {
        Self {
            weight_bits: 8,
            act_bits: 8,
            per_channel_weights: true,
            calibration: Calibration::Percentile(99.9),
            calibration_images: 512,
            rounding: Rounding::NearestEven,
        }
    }
}

impl Validate for QuantConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        let bits = "must be in 2..=8 (int8 datapath)";
        c.check(
            (2..=8).contains(&self.weight_bits),
            "weight_bits",
            self.weight_bits,
            bits,
        );
        c.check(
            (2..=8).contains(&self.act_bits),
            "act_bits",
            self.act_bits,
            bits,
        );
        if let Calibration::Percentile(p) = self.calibration {
            c.check(
                p > 0.0 && p <= 100.0,
                "calibration.Percentile",
                p,
                "must be in (0, 100]",
            );
        }
        c.check(
            self.calibration_images >= 1,
            "calibration_images",
            0,
            "must be at least 1",
        );
        c.finish()
    }
}

/// Why a model cannot be quantized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantizeError {
    /// The config breaks a rule.
    #[error("quantization config: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Config(Vec<FieldError>),
    /// The calibration set holds no images.
    #[error("calibration set {0}: holds no images")]
    EmptyCalibration(String),
    /// The calibration images do not have the network's input shape.
    #[error("calibration set {name}: images are {got} but the network takes {expected}")]
    InputShape {
        /// Dataset name.
        name: String,
        /// Network input shape.
        expected: Shape,
        /// Image shape of the dataset.
        got: Shape,
    },
    /// A Dense or Conv2d layer has no parameters.
    #[error("layer {0}: has no parameters to quantize")]
    MissingParams(String),
    /// The float model produced NaN or ±∞ on the calibration images.
    #[error("calibration: {0} holds a non-finite value")]
    NonFinite(String),
    /// A requantization factor is not a positive normal `f64`.
    #[error(
        "layer {layer}: requantization factor of channel {channel} = {value}: must be a positive normal number"
    )]
    Multiplier {
        /// Layer name.
        layer: String,
        /// Output channel.
        channel: usize,
        /// The real factor `s_in · s_w / s_out`.
        value: f64,
    },
}

/// `num / den` rounded to an integer by `mode`, exactly (`den > 0`).
fn div_round(num: i64, den: i64, mode: Rounding) -> i64 {
    debug_assert!(den > 0);
    round_quotient(num.div_euclid(den), num.rem_euclid(den), den, num < 0, mode)
}

/// `num / 2^shift` rounded by `mode`, exactly (`shift` in `0..63`).
fn shift_round(num: i64, shift: u32, mode: Rounding) -> i64 {
    let den = 1i64 << shift;
    round_quotient(num >> shift, num & (den - 1), den, num < 0, mode)
}

/// The rounded quotient from the floor quotient `q` and the remainder `0 <= r < den`.
#[inline]
fn round_quotient(q: i64, r: i64, den: i64, negative: bool, mode: Rounding) -> i64 {
    let up = match mode {
        Rounding::Floor => false,
        Rounding::Ceil => r != 0,
        Rounding::TowardZero => negative && r != 0,
        // r vs den − r compares the fraction with 1/2 without overflow.
        Rounding::NearestEven | Rounding::NearestAway => match r.cmp(&(den - r)) {
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Greater => true,
            // Tie at q + 1/2: even goes to whichever of q, q+1 is even; away goes up iff q >= 0.
            std::cmp::Ordering::Equal => {
                if mode == Rounding::NearestEven {
                    q & 1 == 1
                } else {
                    q >= 0
                }
            }
        },
    };
    q + i64::from(up)
}

/// A real factor `M > 0` in fixed point: `M ≈ multiplier · 2^−shift` with a Q31 `multiplier` in
/// `[2^30, 2^31)` (gemmlowp / TFLite convention), so the relative representation error is at
/// most `2^−31`.
///
/// [`apply`](Self::apply) is exact integer arithmetic: `p = acc · multiplier` in `i64` (never
/// overflows: `|p| < 2^62`), then `p / 2^shift` rounded by the given [`Rounding`]
/// (arithmetic right shift plus a remainder test; ties are exactly the remainders equal to
/// `2^(shift−1)`), then saturated to `i32`. For `shift ≥ 63`, `|p / 2^shift| < 1/2`, so the
/// result is 0, or −1 / +1 under `Floor` / `Ceil` for negative / positive `p`; for `shift ≤ 0`
/// the product is scaled up and saturates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requant {
    /// Q31 mantissa in `[2^30, 2^31)`.
    pub multiplier: i32,
    /// Right shift: `M = multiplier · 2^−shift`.
    pub shift: i32,
}

impl Requant {
    /// The fixed-point form of `m`, the mantissa rounded to nearest (ties even), or `None` when
    /// `m` is not a positive normal `f64`.
    pub fn from_real(m: f64) -> Option<Requant> {
        if !(m.is_normal() && m > 0.0) {
            return None;
        }
        let bits = m.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32; // biased exponent, 1..=2046
        let sig = ((bits & ((1 << 52) - 1)) | (1 << 52)) as i64; // m = sig · 2^(exp − 1075)
        let mut mult = shift_round(sig, 22, Rounding::NearestEven); // in [2^30, 2^31]
        let mut shift = 1053 - exp;
        if mult == 1 << 31 {
            mult = 1 << 30;
            shift -= 1;
        }
        Some(Requant {
            multiplier: i32::try_from(mult).expect("mantissa in [2^30, 2^31)"),
            shift,
        })
    }

    /// The represented factor `multiplier · 2^−shift`.
    pub fn real(&self) -> f64 {
        f64::from(self.multiplier) * 2f64.powi(-self.shift)
    }

    /// `round(acc · multiplier · 2^−shift)` with `rounding`, exact, saturated to `i32` (see the
    /// type's doc for the arithmetic).
    pub fn apply(&self, acc: i32, rounding: Rounding) -> i32 {
        let p = i64::from(acc) * i64::from(self.multiplier);
        let y = if p == 0 {
            0
        } else if self.shift < 0 {
            // |p| >= 2^30, so |p · 2^−shift| >= 2^31: saturates.
            p.signum() << 62
        } else if self.shift < 63 {
            shift_round(p, self.shift.unsigned_abs(), rounding)
        } else {
            // Any value strictly inside (0, 1/2) rounds like 1/4 in every mode.
            div_round(p.signum(), 4, rounding)
        };
        i32::try_from(y).unwrap_or(if y < 0 { i32::MIN } else { i32::MAX })
    }

    /// [`apply`](Self::apply) clamped to `lo ..= hi`.
    pub fn apply_clamped(&self, acc: i32, rounding: Rounding, lo: i32, hi: i32) -> i32 {
        self.apply(acc, rounding).clamp(lo, hi)
    }
}

/// What a [`QGemm`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum GemmKind {
    /// Fully connected: one product row per sample.
    Dense,
    /// Convolution lowered by [`im2col_i8`]: one product row per output pixel.
    Conv {
        /// Kernel side in pixels.
        kernel: usize,
        /// Stride in pixels.
        stride: usize,
        /// Zero padding on each side in pixels.
        padding: usize,
    },
}

/// A quantized Dense or Conv2d layer: `y = clamp(requant[o](Σ x·w[o] + bias[o]))`.
#[derive(Clone, Debug, PartialEq)]
pub struct QGemm {
    /// Parameter name of the float layer (`fc1`, `conv2`, ...).
    pub name: String,
    /// Dense or convolution geometry.
    pub kind: GemmKind,
    /// Input shape of one sample.
    pub input: Shape,
    /// Output shape of one sample.
    pub output: Shape,
    /// Weight codes `[out, fan_in]` (conv columns in `(c, ky, kx)` order).
    pub weight: Array2<i8>,
    /// Bias codes at scale `in_scale · w_scale[o]`; empty when the layer has no bias.
    pub bias: Vec<i32>,
    /// Requantization factor `in_scale · w_scale[o] / out_scale`, one per output channel.
    pub requant: Vec<Requant>,
    /// Scale of the input codes.
    pub in_scale: f32,
    /// Scale of the output codes.
    pub out_scale: f32,
    /// Weight scale per output channel (all equal for per-tensor weights).
    pub w_scale: Vec<f32>,
    /// A following ReLU is fused: the output clamp is `0 ..= act_max`.
    pub relu: bool,
    /// Largest activation code `2^(act_bits−1) − 1`; the clamp is `−act_max ..= act_max`.
    pub act_max: i32,
    /// Rounding of the requantization.
    pub rounding: Rounding,
}

impl QGemm {
    /// Output channels (rows of `weight`).
    pub fn out_channels(&self) -> usize {
        self.weight.nrows()
    }

    /// Product rows per sample: 1 for a Dense layer, output pixels for a convolution.
    pub fn rows_per_sample(&self) -> usize {
        match self.kind {
            GemmKind::Dense => 1,
            GemmKind::Conv { .. } => self.output.h * self.output.w,
        }
    }

    /// The same layer for an engine whose accumulators are at scale `in_scale · w_scale[o]`
    /// with its own `w_scale` (e.g. power-of-two weight codes, or analog outputs): the bias
    /// codes and requantization factors are recomputed from the float `bias` exactly as
    /// [`QNetwork::quantize`] computes them. `weight` is kept (the int8 reference codes).
    ///
    /// # Errors
    /// [`QuantizeError::Multiplier`] when a new factor is not representable, or
    /// [`QuantizeError::Config`] when `w_scale` does not have one entry per output channel.
    pub fn rescaled(
        &self,
        w_scale: Vec<f32>,
        bias: Option<&[f32]>,
    ) -> Result<QGemm, QuantizeError> {
        if w_scale.len() != self.out_channels() {
            return Err(QuantizeError::Config(vec![FieldError::new(
                format!("{}.w_scale", self.name),
                w_scale.len(),
                format!(
                    "needs one weight scale per output channel ({})",
                    self.out_channels()
                ),
            )]));
        }
        let acc_scale = |o: usize| f64::from(self.in_scale) * f64::from(w_scale[o]);
        let bias = bias.map_or_else(Vec::new, |b| {
            b.iter()
                .enumerate()
                .map(|(o, &v)| quantize_value(v.into(), acc_scale(o), i32::MAX, self.rounding))
                .collect()
        });
        let requant = (0..w_scale.len())
            .map(|o| {
                let m = acc_scale(o) / f64::from(self.out_scale);
                Requant::from_real(m).ok_or_else(|| QuantizeError::Multiplier {
                    layer: self.name.clone(),
                    channel: o,
                    value: m,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(QGemm {
            bias,
            requant,
            w_scale,
            ..self.clone()
        })
    }

    /// The output code of channel `o` for accumulator `acc` (bias not yet added).
    pub fn requantize(&self, o: usize, acc: i32) -> i8 {
        let acc = acc.saturating_add(self.bias.get(o).copied().unwrap_or(0));
        let lo = if self.relu { 0 } else { -self.act_max };
        let y = self.requant[o].apply_clamped(acc, self.rounding, lo, self.act_max);
        i8::try_from(y).expect("act_max <= 127")
    }
}

/// What a quantized layer is, without its numbers: the closed set of kinds the scheduler maps
/// (no string comparisons: adding a kind makes the compiler find every `match`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// A fully connected product ([`GemmKind::Dense`]).
    Dense,
    /// A convolution as a product over im2col rows ([`GemmKind::Conv`]).
    Conv2d,
    /// Max pooling on the vector unit.
    MaxPool,
    /// Average pooling on the vector unit.
    AvgPool,
    /// A reshape: moves no data.
    Flatten,
    /// An activation by table on the vector unit.
    Lut,
}

impl LayerKind {
    /// The name reports print: `dense`, `conv2d`, `maxpool`, `avgpool`, `flatten`, `lut`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LayerKind::Dense => "dense",
            LayerKind::Conv2d => "conv2d",
            LayerKind::MaxPool => "maxpool",
            LayerKind::AvgPool => "avgpool",
            LayerKind::Flatten => "flatten",
            LayerKind::Lut => "lut",
        }
    }

    /// True for the layers with a product (Dense, Conv2d).
    pub const fn is_gemm(self) -> bool {
        matches!(self, LayerKind::Dense | LayerKind::Conv2d)
    }

    /// The kind of the quantized layer [`QNetwork::quantize`] makes of a float layer, if it makes
    /// one (a ReLU fused into the product before it has none; see [`fused_relus`]).
    pub fn of_spec(spec: &LayerSpec) -> Self {
        match spec {
            LayerSpec::Dense { .. } => LayerKind::Dense,
            LayerSpec::Conv2d { .. } => LayerKind::Conv2d,
            LayerSpec::MaxPool2d { .. } => LayerKind::MaxPool,
            LayerSpec::AvgPool2d { .. } => LayerKind::AvgPool,
            LayerSpec::Flatten => LayerKind::Flatten,
            LayerSpec::Act(_) => LayerKind::Lut,
        }
    }
}

impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `fused[i]`: float layer `i` is a ReLU folded into the product (Dense, Conv2d) before it, so
/// [`QNetwork::quantize`] makes no layer of it. Every other float layer becomes one quantized
/// layer, in order.
pub fn fused_relus(layers: &[ResolvedLayer]) -> Vec<bool> {
    let relu = |i: usize| matches!(layers[i].spec, LayerSpec::Act(Activation::ReLU));
    (0..layers.len())
        .map(|i| i > 0 && relu(i) && layers[i - 1].has_params())
        .collect()
}

/// The product geometry of a Dense or Conv2d layer (`None` for other layers).
pub fn gemm_kind_of(spec: &LayerSpec) -> Option<GemmKind> {
    match *spec {
        LayerSpec::Dense { .. } => Some(GemmKind::Dense),
        LayerSpec::Conv2d {
            kernel,
            stride,
            padding,
            ..
        } => Some(GemmKind::Conv {
            kernel,
            stride,
            padding,
        }),
        _ => None,
    }
}

/// One layer of a [`QNetwork`].
#[derive(Clone, Debug, PartialEq)]
pub enum QLayer {
    /// Dense or Conv2d (with a fused ReLU if one followed).
    Gemm(QGemm),
    /// Max pooling on codes (exact; the scale passes through).
    MaxPool {
        /// Window side.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Input shape of one sample.
        input: Shape,
        /// Output shape of one sample.
        output: Shape,
    },
    /// Average pooling: the `i32` sum of the window divided by `kernel²` with `rounding` (the
    /// scale passes through).
    AvgPool {
        /// Window side.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Input shape of one sample.
        input: Shape,
        /// Output shape of one sample.
        output: Shape,
        /// Rounding of the division.
        rounding: Rounding,
    },
    /// Moves no data.
    Flatten,
    /// Element-wise activation by table: `y = table[x + 128]`, where
    /// `table[c + 128] = clamp(round(f(c · in_scale) / out_scale))`.
    Lut {
        /// The float activation.
        act: Activation,
        /// 256 output codes, indexed by input code + 128.
        table: Vec<i8>,
        /// Scale of the input codes.
        in_scale: f32,
        /// Scale of the output codes (the input scale for ReLU).
        out_scale: f32,
    },
}

impl QLayer {
    /// The layer's kind.
    pub fn kind(&self) -> LayerKind {
        match self {
            QLayer::Gemm(q) => match q.kind {
                GemmKind::Dense => LayerKind::Dense,
                GemmKind::Conv { .. } => LayerKind::Conv2d,
            },
            QLayer::MaxPool { .. } => LayerKind::MaxPool,
            QLayer::AvgPool { .. } => LayerKind::AvgPool,
            QLayer::Flatten => LayerKind::Flatten,
            QLayer::Lut { .. } => LayerKind::Lut,
        }
    }
}

/// The product seam of the integer forward pass.
pub trait IntGemm: Sync {
    /// `y[n, o] = Σ_k x[n, k] · w[o, k]` exactly in `i32` (x `[m, fan_in]`, w `[out, fan_in]`,
    /// result `[m, out]`). `layer` is the index into [`QNetwork::layers`].
    fn gemm(&self, layer: usize, x: ArrayView2<i8>, w: ArrayView2<i8>) -> Array2<i32>;

    /// [`gemm`](Self::gemm) for rows that start at row `first_row` of the whole run (image
    /// index × product rows per image): engines with per-read noise key their draws by it, so
    /// results do not depend on how the run is batched. The default ignores it.
    fn gemm_at(
        &self,
        layer: usize,
        first_row: u64,
        x: ArrayView2<i8>,
        w: ArrayView2<i8>,
    ) -> Array2<i32> {
        let _ = first_row;
        self.gemm(layer, x, w)
    }
}

/// Rows of `x` per parallel task of [`RefGemm`].
pub const GEMM_ROWS: usize = 16;

/// The reference integer product: exact `i32` dot products (operands widened to `i16`, four rows
/// of `x` per pass over a weight row), parallel over fixed blocks of [`GEMM_ROWS`] rows. Exact
/// while `fan_in < 2^17` (every product is at most `2^14` in magnitude).
#[derive(Clone, Copy, Debug, Default)]
pub struct RefGemm;

impl IntGemm for RefGemm {
    fn gemm(&self, _layer: usize, x: ArrayView2<i8>, w: ArrayView2<i8>) -> Array2<i32> {
        assert_eq!(x.ncols(), w.ncols(), "fan_in of x and w");
        let (m, k, n) = (x.nrows(), x.ncols(), w.nrows());
        let mut out = Array2::<i32>::zeros((m, n));
        if k == 0 {
            return out;
        }
        let wt: Vec<i16> = w.iter().map(|&v| i16::from(v)).collect();
        out.axis_chunks_iter_mut(Axis(0), GEMM_ROWS)
            .into_par_iter()
            .enumerate()
            .for_each(|(bi, mut blk)| {
                let rows = blk.nrows();
                let xs = x.slice(ndarray::s![bi * GEMM_ROWS..bi * GEMM_ROWS + rows, ..]);
                let xb: Vec<i16> = xs.iter().map(|&v| i16::from(v)).collect();
                // Four rows at a time share each weight load; the rest one by one.
                let mut quads = xb.chunks_exact(4 * k);
                for (qi, xq) in quads.by_ref().enumerate() {
                    let (x0, rest) = xq.split_at(k);
                    let (x1, rest) = rest.split_at(k);
                    let (x2, x3) = rest.split_at(k);
                    for (o, wr) in wt.chunks_exact(k).enumerate() {
                        let mut a = [0i32; 4];
                        for ((((&w, &v0), &v1), &v2), &v3) in
                            wr.iter().zip(x0).zip(x1).zip(x2).zip(x3)
                        {
                            let w = i32::from(w);
                            a[0] += i32::from(v0) * w;
                            a[1] += i32::from(v1) * w;
                            a[2] += i32::from(v2) * w;
                            a[3] += i32::from(v3) * w;
                        }
                        for (u, &au) in a.iter().enumerate() {
                            blk[[4 * qi + u, o]] = au;
                        }
                    }
                }
                let done = rows - quads.remainder().len() / k;
                for (u, xr) in quads.remainder().chunks_exact(k).enumerate() {
                    for (o, wr) in wt.chunks_exact(k).enumerate() {
                        blk[[done + u, o]] = wr
                            .iter()
                            .zip(xr)
                            .map(|(&a, &b)| i32::from(a) * i32::from(b))
                            .sum();
                    }
                }
            });
        out
    }
}

/// im2col of int8 codes: `x` is `[b, c·h·w]`, the result `[b·oh·ow, c·k·k]` with row
/// `s·oh·ow + oy·ow + ox` and column `(c·k + ky)·k + kx`, as [`crate::forward::im2col`];
/// out-of-image taps are 0 (the code of real zero).
pub fn im2col_i8(
    x: ArrayView2<i8>,
    input: Shape,
    output: Shape,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Array2<i8> {
    let (ci, h, w) = (input.c, input.h, input.w);
    let (oh, ow) = (output.h, output.w);
    let kk = ci * kernel * kernel;
    let x = x.as_standard_layout();
    let mut cols = Array2::<i8>::zeros((x.nrows() * oh * ow, kk));
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
                let (y0, x0) = ((r / ow) * stride, (r % ow) * stride);
                // Taps kx in lo..hi fall inside the image: padding <= x0 + kx < w + padding.
                let lo = padding.saturating_sub(x0).min(kernel);
                let hi = (w + padding).saturating_sub(x0).clamp(lo, kernel);
                if lo == hi {
                    continue;
                }
                for c in 0..ci {
                    for ky in 0..kernel {
                        let Some(iy) = (y0 + ky).checked_sub(padding).filter(|&iy| iy < h) else {
                            continue;
                        };
                        let d = (c * kernel + ky) * kernel;
                        let s0 = (c * h + iy) * w + x0 + lo - padding;
                        row[d + lo..d + hi].copy_from_slice(&src[s0..s0 + hi - lo]);
                    }
                }
            }
        });
    cols
}

/// The epilogue of a Gemm layer: bias add, requantization and clamp per output channel, and the
/// layout change from one row per output pixel (`acc` `[batch·oh·ow, out]`) to channel-major
/// samples (`[batch, out·oh·ow]`; for Dense, `[batch, out]` unchanged).
///
/// # Panics
/// If `acc` is not `[batch · oh · ow, out]`.
pub fn gemm_epilogue(q: &QGemm, acc: ArrayView2<i32>, batch: usize) -> Array2<i8> {
    let p = q.output.h * q.output.w;
    let o = q.out_channels();
    assert_eq!(acc.dim(), (batch * p, o), "accumulator shape of {}", q.name);
    let mut y = Array2::<i8>::zeros((batch, o * p));
    if y.is_empty() {
        return y;
    }
    let acc = acc.as_standard_layout();
    let acc = acc.as_slice().expect("standard layout");
    let fast = FastRequant::new(q);
    y.as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(o * p)
        .zip(acc.par_chunks(o * p))
        .with_min_len(16)
        .for_each(|(row, a)| {
            for (pi, ap) in a.chunks_exact(o).enumerate() {
                match &fast {
                    Some(f) if p == 1 => {
                        for ((y, &v), &c) in row.iter_mut().zip(ap).zip(&f.chan) {
                            *y = f.apply(c, v);
                        }
                    }
                    Some(f) => {
                        for ((oc, &v), &c) in ap.iter().enumerate().zip(&f.chan) {
                            row[oc * p + pi] = f.apply(c, v);
                        }
                    }
                    None => {
                        for (oc, &v) in ap.iter().enumerate() {
                            row[oc * p + pi] = q.requantize(oc, v);
                        }
                    }
                }
            }
        });
    y
}

/// The epilogue of a layer with [`Rounding::NearestEven`] and every shift in `1..63` (the usual
/// case), branch-free: `(p + 2^(s−1) − 1 + ((p >> s) & 1)) >> s` is `p / 2^s` rounded to
/// nearest, ties to even, for any `p` with `|p| ≤ 2^62` (the sum stays below 2^63), and clamping
/// the unsaturated quotient to the activation range equals saturating to `i32` first. Equal to
/// [`QGemm::requantize`] for every accumulator (tested); data-dependent branches (tie tests,
/// clamps) cost more than the arithmetic on random accumulators.
struct FastRequant {
    /// Per channel: bias code, multiplier, shift.
    chan: Vec<(i32, i64, u32)>,
    lo: i64,
    hi: i64,
}

impl FastRequant {
    fn new(q: &QGemm) -> Option<Self> {
        if q.rounding != Rounding::NearestEven
            || q.requant.len() != q.out_channels()
            || !(0..=127).contains(&q.act_max)
        {
            return None;
        }
        let chan = q
            .requant
            .iter()
            .enumerate()
            .map(|(o, r)| {
                (1..63).contains(&r.shift).then(|| {
                    (
                        q.bias.get(o).copied().unwrap_or(0),
                        i64::from(r.multiplier),
                        r.shift.unsigned_abs(),
                    )
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(FastRequant {
            chan,
            lo: if q.relu { 0 } else { -i64::from(q.act_max) },
            hi: i64::from(q.act_max),
        })
    }

    #[inline(always)]
    fn apply(&self, (b, m, s): (i32, i64, u32), acc: i32) -> i8 {
        let p = i64::from(acc.saturating_add(b)) * m;
        let y = (p + (1i64 << (s - 1)) - 1 + ((p >> s) & 1)) >> s;
        // |y| ≤ act_max ≤ 127 after the clamp.
        y.clamp(self.lo, self.hi) as i8
    }
}

fn pool_i8(
    x: ArrayView2<i8>,
    input: Shape,
    output: Shape,
    kernel: usize,
    stride: usize,
    avg: Option<Rounding>,
) -> Array2<i8> {
    let (h, w) = (input.h, input.w);
    let (oh, ow) = (output.h, output.w);
    let area = i64::try_from(kernel * kernel).expect("small kernel");
    let mut y = Array2::<i8>::zeros((x.nrows(), output.len()));
    y.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(x.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(mut d, s)| {
            for ch in 0..input.c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let (mut best, mut sum) = (i8::MIN, 0i64);
                        for ky in 0..kernel {
                            for kx in 0..kernel {
                                let v = s[(ch * h + oy * stride + ky) * w + ox * stride + kx];
                                best = best.max(v);
                                sum += i64::from(v);
                            }
                        }
                        d[(ch * oh + oy) * ow + ox] = match avg {
                            None => best,
                            Some(mode) => i8::try_from(div_round(sum, area, mode))
                                .expect("a mean of codes is a code"),
                        };
                    }
                }
            }
        });
    y
}

/// Index of the first largest code of each row (the predicted class of each logit row, as
/// [`QNetwork::accuracy`] counts it).
fn argmax_rows(y: &Array2<i8>) -> Vec<usize> {
    y.rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(0, |b, (i, &v)| if v > r[b] { i } else { b })
        })
        .collect()
}

/// A quantized network: integer layers and the scale of the input codes.
#[derive(Clone, Debug, PartialEq)]
pub struct QNetwork {
    /// Network name.
    pub name: String,
    /// Scale of the input codes (real pixel = scale · code).
    pub input_scale: f32,
    /// Integer layers in order (fused ReLUs removed).
    pub layers: Vec<QLayer>,
    /// Number of classes (length of the logits).
    pub classes: usize,
    /// The settings it was made with.
    pub config: QuantConfig,
}

/// Running statistic of |value| at one quantization point.
#[derive(Default)]
struct Stat {
    max: f32,
    values: Vec<f32>,
    nonfinite: bool,
}

impl Stat {
    fn observe(&mut self, a: &Array2<f32>, keep: bool) {
        // Non-finite values are flagged (and make the calibration fail), so the order-free
        // maximum over the finite ones is the running maximum of before; two plain passes
        // vectorize.
        self.nonfinite |= a.iter().any(|v| !v.is_finite());
        self.max = a.iter().fold(self.max, |m, &v| m.max(v.abs()));
        if keep {
            self.values.extend(a.iter().map(|v| v.abs()));
        }
    }

    fn range(mut self, cal: Calibration) -> f32 {
        match cal {
            Calibration::MaxAbs => self.max,
            Calibration::Percentile(p) => {
                let n = self.values.len();
                if n == 0 {
                    return 0.0;
                }
                let k = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n);
                *self.values.select_nth_unstable_by(k - 1, f32::total_cmp).1
            }
        }
    }
}

fn quantize_value(v: f64, scale: f64, max: i32, mode: Rounding) -> i32 {
    let q = round(v / scale, mode);
    if q.is_nan() {
        0
    } else {
        q.clamp(-f64::from(max), f64::from(max)) as i32
    }
}

impl QNetwork {
    /// Quantizes `model`, calibrating activation scales on the first
    /// `cfg.calibration_images` images of `calib` (see the module doc).
    ///
    /// # Errors
    /// A [`QuantizeError`] for an invalid config, an empty or mis-shaped calibration set, a
    /// layer without parameters, non-finite calibration activations or an unrepresentable
    /// requantization factor.
    pub fn quantize(
        model: &Model,
        calib: &Dataset,
        cfg: &QuantConfig,
    ) -> Result<QNetwork, QuantizeError> {
        cfg.validate().map_err(QuantizeError::Config)?;
        if calib.is_empty() {
            return Err(QuantizeError::EmptyCalibration(calib.name.clone()));
        }
        if calib.shape.len() != model.spec.input.len() {
            return Err(QuantizeError::InputShape {
                name: calib.name.clone(),
                expected: model.spec.input,
                got: calib.shape,
            });
        }
        let layers = &model.layers;
        let n = layers.len();
        // fused[i]: layer i is a ReLU folded into the Gemm before it.
        let fused = fused_relus(layers);
        let need: Vec<bool> = (0..n)
            .map(|i| match layers[i].spec {
                LayerSpec::Dense { .. } | LayerSpec::Conv2d { .. } => !(i + 1 < n && fused[i + 1]),
                LayerSpec::Act(Activation::ReLU) => fused[i],
                LayerSpec::Act(_) => true,
                _ => false,
            })
            .collect();

        // Calibration: float forward over the first N images in chunks, statistics at each point.
        let keep = matches!(cfg.calibration, Calibration::Percentile(_));
        let mut stats: Vec<Stat> = (0..=n).map(|_| Stat::default()).collect(); // [0] = input
        let images = cfg.calibration_images.min(calib.len());
        for start in (0..images).step_by(256) {
            let mut h = calib.batch_range(start, (start + 256).min(images));
            stats[0].observe(&h, keep);
            for (i, l) in layers.iter().enumerate() {
                h = float_layer_forward(&FloatKernel, i, l, model.params[i].as_ref(), h, false).0;
                if need[i] {
                    stats[i + 1].observe(&h, keep);
                }
            }
        }
        let amax = (1i32 << (cfg.act_bits - 1)) - 1;
        let mut scales = Vec::with_capacity(n + 1);
        for (i, s) in stats.into_iter().enumerate() {
            if (i == 0 || need[i - 1]) && s.nonfinite {
                let what = if i == 0 {
                    "the input".to_string()
                } else {
                    format!("the output of {}", layers[i - 1].name)
                };
                return Err(QuantizeError::NonFinite(what));
            }
            let r = if i == 0 || need[i - 1] {
                s.range(cfg.calibration)
            } else {
                0.0
            };
            // An all-zero tensor may take any scale; use range 1.
            scales.push(if r > 0.0 {
                r / amax as f32
            } else {
                1.0 / amax as f32
            });
        }

        let wmax = (1i32 << (cfg.weight_bits - 1)) - 1;
        let mut cur = scales[0];
        let mut out = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            if fused[i] {
                continue;
            }
            let q = match &l.spec {
                LayerSpec::Dense { .. } | LayerSpec::Conv2d { .. } => {
                    let p = model.params[i]
                        .as_ref()
                        .ok_or_else(|| QuantizeError::MissingParams(l.name.clone()))?;
                    let relu = i + 1 < n && fused[i + 1];
                    let out_scale = scales[if relu { i + 2 } else { i + 1 }];
                    let kind = gemm_kind_of(&l.spec).unwrap_or(GemmKind::Dense);
                    let row_max: Vec<f32> = p
                        .weight
                        .rows()
                        .into_iter()
                        .map(|r| r.fold(0f32, |a, &v| a.max(v.abs())))
                        .collect();
                    let tensor_max = row_max.iter().fold(0f32, |a, &v| a.max(v));
                    let w_scale: Vec<f32> = row_max
                        .iter()
                        .map(|&m| {
                            let m = if cfg.per_channel_weights {
                                m
                            } else {
                                tensor_max
                            };
                            if m > 0.0 {
                                m / wmax as f32
                            } else {
                                1.0 / wmax as f32
                            }
                        })
                        .collect();
                    let mut weight = Array2::<i8>::zeros(p.weight.dim());
                    Zip::from(weight.rows_mut())
                        .and(p.weight.rows())
                        .and(&w_scale[..])
                        .par_for_each(|mut q_row, w_row, &s| {
                            for (q, &w) in q_row.iter_mut().zip(w_row) {
                                let v = quantize_value(w.into(), s.into(), wmax, cfg.rounding);
                                *q = i8::try_from(v).expect("weight code within ±127");
                            }
                        });
                    let acc_scale = |o: usize| f64::from(cur) * f64::from(w_scale[o]);
                    let bias = p.bias.as_ref().map_or_else(Vec::new, |b| {
                        b.iter()
                            .enumerate()
                            .map(|(o, &v)| {
                                quantize_value(v.into(), acc_scale(o), i32::MAX, cfg.rounding)
                            })
                            .collect()
                    });
                    let requant = (0..w_scale.len())
                        .map(|o| {
                            let m = acc_scale(o) / f64::from(out_scale);
                            Requant::from_real(m).ok_or_else(|| QuantizeError::Multiplier {
                                layer: l.name.clone(),
                                channel: o,
                                value: m,
                            })
                        })
                        .collect::<Result<_, _>>()?;
                    let g = QGemm {
                        name: l.name.clone(),
                        kind,
                        input: l.input,
                        output: l.output,
                        weight,
                        bias,
                        requant,
                        in_scale: cur,
                        out_scale,
                        w_scale,
                        relu,
                        act_max: amax,
                        rounding: cfg.rounding,
                    };
                    cur = out_scale;
                    QLayer::Gemm(g)
                }
                &LayerSpec::MaxPool2d { kernel, stride } => QLayer::MaxPool {
                    kernel,
                    stride,
                    input: l.input,
                    output: l.output,
                },
                &LayerSpec::AvgPool2d { kernel, stride } => QLayer::AvgPool {
                    kernel,
                    stride,
                    input: l.input,
                    output: l.output,
                    rounding: cfg.rounding,
                },
                LayerSpec::Flatten => QLayer::Flatten,
                &LayerSpec::Act(act) => {
                    let out_scale = if act == Activation::ReLU {
                        cur
                    } else {
                        scales[i + 1]
                    };
                    let table = (-128i32..=127)
                        .map(|c| {
                            let y = act.apply(c as f32 * cur);
                            let v = quantize_value(y.into(), out_scale.into(), amax, cfg.rounding);
                            i8::try_from(v).expect("activation code within ±127")
                        })
                        .collect();
                    let lut = QLayer::Lut {
                        act,
                        table,
                        in_scale: cur,
                        out_scale,
                    };
                    cur = out_scale;
                    lut
                }
            };
            out.push(q);
        }
        Ok(QNetwork {
            name: model.spec.name.clone(),
            input_scale: scales[0],
            layers: out,
            classes: model.spec.classes,
            config: *cfg,
        })
    }

    /// Input codes `[batch, features]` for float inputs: `clamp(round(x / input_scale))` with the
    /// configured rounding, NaN → 0.
    pub fn quantize_input(&self, x: ArrayView2<f32>) -> Array2<i8> {
        let amax = (1i32 << (self.config.act_bits - 1)) - 1;
        let s = f64::from(self.input_scale);
        let mut y = Array2::<i8>::zeros(x.raw_dim());
        ndarray::Zip::from(&mut y).and(&x).par_for_each(|d, &v| {
            *d = i8::try_from(quantize_value(v.into(), s, amax, self.config.rounding))
                .expect("code within ±127");
        });
        y
    }

    /// Runs layer `index` on codes `x` `[batch, input features]`.
    ///
    /// # Panics
    /// If `index` is out of range or `x` does not have the layer's input width.
    pub fn layer_forward<G: IntGemm + ?Sized>(
        &self,
        g: &G,
        index: usize,
        x: Array2<i8>,
    ) -> Array2<i8> {
        self.layer_forward_at(g, index, x, 0)
    }

    /// [`layer_forward`](Self::layer_forward) for a batch whose first image is image
    /// `first_image` of the run (passed to [`IntGemm::gemm_at`]).
    ///
    /// # Panics
    /// As [`layer_forward`](Self::layer_forward).
    pub fn layer_forward_at<G: IntGemm + ?Sized>(
        &self,
        g: &G,
        index: usize,
        x: Array2<i8>,
        first_image: usize,
    ) -> Array2<i8> {
        match &self.layers[index] {
            QLayer::Gemm(q) => {
                let b = x.nrows();
                let row0 = (first_image * q.rows_per_sample()) as u64;
                let acc = match q.kind {
                    GemmKind::Dense => g.gemm_at(index, row0, x.view(), q.weight.view()),
                    GemmKind::Conv {
                        kernel,
                        stride,
                        padding,
                    } => {
                        let cols = im2col_i8(x.view(), q.input, q.output, kernel, stride, padding);
                        g.gemm_at(index, row0, cols.view(), q.weight.view())
                    }
                };
                gemm_epilogue(q, acc.view(), b)
            }
            &QLayer::MaxPool {
                kernel,
                stride,
                input,
                output,
            } => pool_i8(x.view(), input, output, kernel, stride, None),
            &QLayer::AvgPool {
                kernel,
                stride,
                input,
                output,
                rounding,
            } => pool_i8(x.view(), input, output, kernel, stride, Some(rounding)),
            QLayer::Flatten => x,
            QLayer::Lut { table, .. } => {
                let mut y = x;
                y.par_mapv_inplace(|v| table[(i16::from(v) + 128) as usize]);
                y
            }
        }
    }

    /// Int8 logits `[batch, classes]` for input codes `x` `[batch, input features]`.
    pub fn forward<G: IntGemm + ?Sized>(&self, g: &G, x: Array2<i8>) -> Array2<i8> {
        self.forward_at(g, x, 0)
    }

    /// [`forward`](Self::forward) for a batch whose first image is image `first_image` of the
    /// run (see [`IntGemm::gemm_at`]).
    pub fn forward_at<G: IntGemm + ?Sized>(
        &self,
        g: &G,
        x: Array2<i8>,
        first_image: usize,
    ) -> Array2<i8> {
        (0..self.layers.len()).fold(x, |h, i| self.layer_forward_at(g, i, h, first_image))
    }

    /// Predicted class of each float input (the first largest logit code).
    pub fn predict<G: IntGemm + ?Sized>(&self, g: &G, x: ArrayView2<f32>) -> Vec<usize> {
        argmax_rows(&self.forward(g, self.quantize_input(x)))
    }

    /// Input codes of pixel bytes: `table[b]` is the code [`QNetwork::quantize_input`] gives
    /// `b / 255` (exactly what [`Dataset::batch`] feeds it), so a dataset is quantized by table
    /// lookup with identical codes and no pixel rounded twice.
    pub fn pixel_codes(&self) -> Vec<i8> {
        let levels = Array2::from_shape_fn((1, 256), |(_, p)| p as f32 / 255.0);
        self.quantize_input(levels.view())
            .into_raw_vec_and_offset()
            .0
    }

    /// Top-1 accuracy over `data`, in batches of `batch` images (pixels quantized through
    /// [`QNetwork::pixel_codes`]).
    pub fn accuracy<G: IntGemm + ?Sized>(&self, g: &G, data: &Dataset, batch: usize) -> f64 {
        self.accuracy_of(data, batch, 1, |x, first| {
            vec![self.forward_at(g, x, first)]
        })[0]
    }

    /// Top-1 accuracy of `passes` forward passes over `data` (e.g. Monte Carlo trials of one
    /// quantized network), in batches of `batch` images with pixels quantized through
    /// [`QNetwork::pixel_codes`]: `forward(x, first_image)` returns the int8 logits of every
    /// pass for the input codes `x` of images `first_image..`.
    ///
    /// # Panics
    /// If `forward` does not return `passes` logit matrices.
    pub fn accuracy_of(
        &self,
        data: &Dataset,
        batch: usize,
        passes: usize,
        mut forward: impl FnMut(Array2<i8>, usize) -> Vec<Array2<i8>>,
    ) -> Vec<f64> {
        let batch = batch.max(1);
        let table = self.pixel_codes();
        let il = data.image_len();
        let mut correct = vec![0usize; passes];
        for s in (0..data.len()).step_by(batch) {
            let e = (s + batch).min(data.len());
            let codes = data.pixels[s * il..e * il]
                .iter()
                .map(|&b| table[usize::from(b)]);
            let x = Array2::from_shape_vec((e - s, il), codes.collect()).expect("whole images");
            let logits = forward(x, s);
            assert_eq!(logits.len(), passes, "one logit matrix per pass");
            let labels = data.labels_range(s, e);
            for (c, y) in correct.iter_mut().zip(&logits) {
                *c += argmax_rows(y)
                    .iter()
                    .zip(&labels)
                    .filter(|(a, b)| **a == **b)
                    .count();
            }
        }
        correct
            .iter()
            .map(|&c| {
                if data.is_empty() {
                    0.0
                } else {
                    c as f64 / data.len() as f64
                }
            })
            .collect()
    }

    /// Parameter storage: weights · `weight_bits` + biases · 32.
    pub fn storage_bits(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| match l {
                QLayer::Gemm(q) => {
                    q.weight.len() as u64 * u64::from(self.config.weight_bits)
                        + q.bias.len() as u64 * 32
                }
                _ => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::NetworkSpec;
    use proptest::prelude::*;
    use std::path::PathBuf;

    const MODES: [Rounding; 5] = [
        Rounding::NearestEven,
        Rounding::NearestAway,
        Rounding::TowardZero,
        Rounding::Floor,
        Rounding::Ceil,
    ];

    fn cases() -> u32 {
        nacsim_core::testing::proptest_cases(64)
    }

    /// Independent exact reference: `p / 2^s` rounded by `mode`, in i128 by comparing the
    /// remainder with the half step.
    fn ref_shift(p: i128, s: i32, mode: Rounding) -> i128 {
        if s <= 0 {
            return p << (-s).min(64);
        }
        let d = 1i128 << s;
        let fl = p >> s;
        let r = p - fl * d;
        let c = 2 * r - d; // sign of remainder minus half
        match mode {
            Rounding::Floor => fl,
            Rounding::Ceil => fl + i128::from(r > 0),
            Rounding::TowardZero => fl + i128::from(p < 0 && r > 0),
            Rounding::NearestEven => fl + i128::from(c > 0 || (c == 0 && fl % 2 != 0)),
            Rounding::NearestAway => fl + i128::from(c > 0 || (c == 0 && fl >= 0)),
        }
    }

    fn ref_requant(acc: i64, r: Requant, mode: Rounding) -> i64 {
        let y = ref_shift(i128::from(acc) * i128::from(r.multiplier), r.shift, mode);
        y.clamp(i32::MIN.into(), i32::MAX.into()) as i64
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn requant_is_within_one_lsb_of_f64(log_m in -24.0f64..6.0, acc in -(1i32 << 24)..(1 << 24), mi in 0usize..5) {
            let m = log_m.exp2();
            let r = Requant::from_real(m).unwrap();
            prop_assert!((1 << 30..=i32::MAX).contains(&r.multiplier));
            prop_assert!(((r.real() - m) / m).abs() <= 2f64.powi(-31));
            let want = round(f64::from(acc) * m, MODES[mi]);
            let got = f64::from(r.apply(acc, MODES[mi]));
            prop_assert!((got - want).abs() <= 1.0, "m {m} acc {acc}: {got} vs {want}");
        }

        #[test]
        fn requant_is_exact_on_power_of_two_factors_and_ties(k in -20i32..70, acc: i32, mi in 0usize..5) {
            // acc · 2^-k is exact in f64, so every tie is seen exactly.
            let r = Requant::from_real(2f64.powi(-k)).unwrap();
            prop_assert_eq!(r.multiplier, 1 << 30);
            let want = round(f64::from(acc) * 2f64.powi(-k), MODES[mi]).clamp(i32::MIN.into(), i32::MAX.into());
            prop_assert_eq!(f64::from(r.apply(acc, MODES[mi])), want);
            let half = Requant::from_real(0.5).unwrap();
            prop_assert_eq!(f64::from(half.apply(2 * (acc >> 1) + 1, MODES[mi])), round(f64::from(2 * (acc >> 1) + 1) * 0.5, MODES[mi]));
        }

        #[test]
        fn requant_matches_exact_i128_reference(mult in (1i32 << 30)..=i32::MAX, shift in -40i32..100, acc: i32, mi in 0usize..5) {
            let r = Requant { multiplier: mult, shift };
            prop_assert_eq!(i64::from(r.apply(acc, MODES[mi])), ref_requant(acc.into(), r, MODES[mi]));
        }

        #[test]
        fn fast_epilogue_equals_requantize(
            mult in (1i32 << 30)..=i32::MAX, shift in -3i32..70, bias in proptest::option::of(any::<i32>()),
            relu: bool, act_bits in 2u32..9, mi in 0usize..5, accs in proptest::collection::vec(any::<i32>(), 1..40),
        ) {
            let n = accs.len();
            let q = QGemm {
                name: "t".into(),
                kind: GemmKind::Dense,
                input: Shape { c: 1, h: 1, w: 1 },
                output: Shape { c: 1, h: 1, w: 1 },
                weight: Array2::zeros((1, 1)),
                bias: bias.map(|b| vec![b]).unwrap_or_default(),
                requant: vec![Requant { multiplier: mult, shift }],
                in_scale: 1.0,
                out_scale: 1.0,
                w_scale: vec![1.0],
                relu,
                act_max: (1 << (act_bits - 1)) - 1,
                rounding: MODES[mi],
            };
            // Small accumulators too, so that ties and the clamp bounds are hit.
            let accs: Vec<i32> = accs.iter().enumerate().map(|(i, &a)| if i % 2 == 0 { a >> (a as u32 % 31) } else { a }).collect();
            let acc = Array2::from_shape_vec((n, 1), accs.clone()).unwrap();
            let y = gemm_epilogue(&q, acc.view(), n);
            for (i, &a) in accs.iter().enumerate() {
                prop_assert_eq!(y[[i, 0]], q.requantize(0, a), "acc {}", a);
            }
        }

        #[test]
        fn ref_gemm_equals_naive_triple_loop(m in 0usize..40, k in 0usize..50, n in 0usize..20, seed: u64) {
            let code = |i: usize| (seed.wrapping_mul(6364136223846793005).wrapping_add((i as u64).wrapping_mul(1442695040888963407)) >> 56) as u8 as i8;
            let x = Array2::from_shape_fn((m, k), |(a, b)| code(a * k + b));
            let w = Array2::from_shape_fn((n, k), |(a, b)| code(100_000 + a * k + b));
            let got = RefGemm.gemm(0, x.view(), w.view());
            for i in 0..m {
                for o in 0..n {
                    let mut s = 0i32;
                    for j in 0..k {
                        s += i32::from(x[[i, j]]) * i32::from(w[[o, j]]);
                    }
                    prop_assert_eq!(got[[i, o]], s);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn im2col_i8_matches_float_im2col(
            c in 1usize..4, h in 1usize..9, w in 1usize..9, k in 1usize..5,
            stride in 1usize..4, padding in 0usize..3, batch in 0usize..3, seed: u64,
        ) {
            prop_assume!(k <= h + 2 * padding && k <= w + 2 * padding);
            let (oh, ow) = ((h + 2 * padding - k) / stride + 1, (w + 2 * padding - k) / stride + 1);
            let spec = NetworkSpec {
                schema_version: 1, name: "c".into(), input: Shape::new(c, h, w), classes: oh * ow,
                layers: vec![LayerSpec::Conv2d { out_channels: 1, kernel: k, stride, padding, bias: true, name: String::new() }],
                weights: String::new(), notes: String::new(), trained_for: Default::default(),
            };
            let l = &spec.resolve().unwrap()[0];
            let x = Array2::from_shape_fn((batch, c * h * w), |(a, b)| {
                (seed.wrapping_add((a * 1000 + b) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 57) as i8
            });
            let got = im2col_i8(x.view(), l.input, l.output, k, stride, padding);
            let want = crate::forward::im2col(l, x.mapv(f32::from).view(), k, stride, padding);
            prop_assert_eq!(got.mapv(f32::from), want);
        }
    }

    #[test]
    fn requant_ties_follow_each_mode() {
        let half = Requant::from_real(0.5).unwrap();
        let got: Vec<_> = MODES
            .iter()
            .map(|&m| (half.apply(5, m), half.apply(-5, m)))
            .collect();
        assert_eq!(got, [(2, -2), (3, -3), (2, -2), (2, -3), (3, -2)]);
        assert_eq!(
            Requant::from_real(1.0),
            Some(Requant {
                multiplier: 1 << 30,
                shift: 30
            })
        );
        assert_eq!(Requant::from_real(0.0), None);
        assert_eq!(Requant::from_real(f64::NAN), None);
        // Mantissa rounding that carries to 2^31 moves to the next exponent.
        let r = Requant::from_real(1.0 - 1e-12).unwrap();
        assert_eq!(
            r,
            Requant {
                multiplier: 1 << 30,
                shift: 30
            }
        );
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: QuantConfig = ron::from_str("()").unwrap();
        assert_eq!(c, QuantConfig::default());
        assert!(c.validate().is_ok());
        let c: QuantConfig = ron::from_str("(calibration: MaxAbs, act_bits: 6)").unwrap();
        assert_eq!((c.calibration, c.act_bits), (Calibration::MaxAbs, 6));
        let bad = QuantConfig {
            weight_bits: 9,
            calibration: Calibration::Percentile(0.0),
            calibration_images: 0,
            ..c
        };
        let e: Vec<String> = bad
            .validate()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            e,
            [
                "weight_bits = 9: must be in 2..=8 (int8 datapath)",
                "calibration.Percentile = 0: must be in (0, 100]",
                "calibration_images = 0: must be at least 1"
            ]
        );
        assert!(ron::from_str::<QuantConfig>("(bits: 8)").is_err());
    }

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn float_accuracy(m: &Model, d: &Dataset) -> f64 {
        let mut c = 0;
        for s in (0..d.len()).step_by(500) {
            let p = m.predict(d.batch_range(s, s + 500).view());
            c += p
                .iter()
                .zip(d.labels_range(s, s + 500))
                .filter(|(a, b)| **a == *b)
                .count();
        }
        c as f64 / d.len() as f64
    }

    #[test]
    fn mlp_int8_is_within_one_point_of_float_on_bundled_sample() {
        let m = Model::load(&root().join("models/networks/fmnist-mlp.ron")).unwrap();
        let d = Dataset::bundled_sample();
        let q = QNetwork::quantize(&m, &d, &QuantConfig::default()).unwrap();
        assert_eq!(q.layers.len(), 4);
        assert_eq!(
            q.storage_bits(),
            (784 * 256 + 256 * 128 + 1280) * 8 + (256 + 128 + 10) * 32
        );
        let (fa, qa) = (float_accuracy(&m, &d), q.accuracy(&RefGemm, &d, 500));
        assert!((fa - qa).abs() <= 0.01, "float {fa} int8 {qa}");
        // The table-quantized accuracy counts exactly what `predict` on float batches predicts.
        let x = d.batch_range(0, d.len());
        let hits = q
            .predict(&RefGemm, x.view())
            .iter()
            .zip(d.labels_range(0, d.len()))
            .filter(|(a, b)| **a == *b)
            .count();
        assert_eq!(qa, hits as f64 / d.len() as f64);
    }

    /// A small network that exercises every layer kind.
    fn tiny() -> (Model, Dataset) {
        let spec: NetworkSpec = ron::from_str(
            "(schema_version: 1, name: \"tiny\", input: (c: 2, h: 7, w: 7), classes: 3, layers: [
              Conv2d(out_channels: 4, kernel: 3, stride: 2, padding: 1), Act(ReLU), MaxPool2d(kernel: 2, stride: 1),
              Conv2d(out_channels: 3, kernel: 2, padding: 1, bias: false), Act(Tanh), AvgPool2d(kernel: 2, stride: 2),
              Act(ReLU), Flatten, Dense(out: 5), Act(LeakyReLU(alpha: 0.1)), Dense(out: 3)])",
        )
        .unwrap();
        let model = Model::init(spec, 3).unwrap();
        let n = 100;
        let pixels = (0..n * 98)
            .map(|i: usize| (i.wrapping_mul(2654435761) >> 7) as u8)
            .collect();
        let data = Dataset {
            name: "tiny".into(),
            shape: Shape::new(2, 7, 7),
            pixels,
            labels: vec![0; n],
            classes: 3,
        };
        (model, data)
    }

    /// Straightforward integer forward on one sample: direct convolution loops, no im2col.
    fn direct(q: &QNetwork, x: &[i8]) -> Vec<i8> {
        let mut h: Vec<i64> = x.iter().map(|&v| v.into()).collect();
        for l in &q.layers {
            h = match l {
                QLayer::Gemm(g) => {
                    let (i, o) = (g.input, g.output);
                    let (k, st, pad) = match g.kind {
                        GemmKind::Dense => (1, 1, 0),
                        GemmKind::Conv {
                            kernel,
                            stride,
                            padding,
                        } => (kernel, stride, padding),
                    };
                    let mut y = vec![0; o.len()];
                    for oc in 0..o.c {
                        for oy in 0..o.h {
                            for ox in 0..o.w {
                                let mut acc = g.bias.get(oc).copied().map_or(0, i64::from);
                                for c in 0..i.c {
                                    for ky in 0..k {
                                        for kx in 0..k {
                                            let (iy, ix) = (
                                                (oy * st + ky) as i64 - pad as i64,
                                                (ox * st + kx) as i64 - pad as i64,
                                            );
                                            if iy >= 0
                                                && ix >= 0
                                                && (iy as usize) < i.h
                                                && (ix as usize) < i.w
                                            {
                                                let xv =
                                                    h[(c * i.h + iy as usize) * i.w + ix as usize];
                                                acc += xv
                                                    * i64::from(
                                                        g.weight[[oc, (c * k + ky) * k + kx]],
                                                    );
                                            }
                                        }
                                    }
                                }
                                let lo = if g.relu { 0 } else { -127 };
                                y[(oc * o.h + oy) * o.w + ox] =
                                    ref_requant(acc, g.requant[oc], g.rounding).clamp(lo, 127);
                            }
                        }
                    }
                    y
                }
                QLayer::MaxPool {
                    kernel,
                    stride,
                    input,
                    output,
                }
                | QLayer::AvgPool {
                    kernel,
                    stride,
                    input,
                    output,
                    ..
                } => {
                    let mut y = vec![0; output.len()];
                    for c in 0..output.c {
                        for oy in 0..output.h {
                            for ox in 0..output.w {
                                let win: Vec<i64> = (0..kernel * kernel)
                                    .map(|t| {
                                        h[(c * input.h + oy * stride + t / kernel) * input.w
                                            + ox * stride
                                            + t % kernel]
                                    })
                                    .collect();
                                y[(c * output.h + oy) * output.w + ox] =
                                    if matches!(l, QLayer::MaxPool { .. }) {
                                        *win.iter().max().unwrap()
                                    } else {
                                        round(
                                            win.iter().sum::<i64>() as f64 / win.len() as f64,
                                            Rounding::NearestEven,
                                        ) as i64
                                    };
                            }
                        }
                    }
                    y
                }
                QLayer::Flatten => h,
                QLayer::Lut {
                    act,
                    in_scale,
                    out_scale,
                    ..
                } => h
                    .iter()
                    .map(|&c| {
                        let y = act.apply(c as f32 * in_scale);
                        (round(f64::from(y) / f64::from(*out_scale), Rounding::NearestEven) as i64)
                            .clamp(-127, 127)
                    })
                    .collect(),
            };
        }
        h.iter().map(|&v| i8::try_from(v).unwrap()).collect()
    }

    #[test]
    fn tiny_conv_network_equals_direct_integer_reference() {
        let (m, d) = tiny();
        let q = QNetwork::quantize(&m, &d, &QuantConfig::default()).unwrap();
        assert_eq!(q.layers.len(), 10, "the first ReLU is fused");
        assert!(matches!(&q.layers[0], QLayer::Gemm(g) if g.relu && g.bias.len() == 4));
        assert!(matches!(&q.layers[2], QLayer::Gemm(g) if !g.relu && g.bias.is_empty()));
        let x = q.quantize_input(d.batch_range(0, d.len()).view());
        let y = q.forward(&RefGemm, x.clone());
        assert_eq!(y.dim(), (d.len(), 3));
        let mut distinct = std::collections::BTreeSet::new();
        for s in 0..d.len() {
            let want = direct(&q, x.row(s).as_slice().unwrap());
            assert_eq!(y.row(s).to_vec(), want, "sample {s}");
            distinct.insert(want);
        }
        assert!(distinct.len() > 10, "the logits vary with the input");
    }

    #[test]
    fn forward_is_bit_identical_for_one_and_two_threads() {
        let (m, d) = tiny();
        let q = QNetwork::quantize(&m, &d, &QuantConfig::default()).unwrap();
        let mlp = Model::load(&root().join("models/networks/fmnist-mlp.ron")).unwrap();
        let s = Dataset::bundled_sample().limit(300);
        let qm = QNetwork::quantize(&mlp, &s, &QuantConfig::default()).unwrap();
        let run = |t: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap();
            pool.install(|| {
                let a = q.forward(&RefGemm, q.quantize_input(d.batch_range(0, d.len()).view()));
                let b = qm.forward(
                    &RefGemm,
                    qm.quantize_input(s.batch_range(0, s.len()).view()),
                );
                (
                    a,
                    b,
                    QNetwork::quantize(&mlp, &s, &QuantConfig::default()).unwrap(),
                )
            })
        };
        assert_eq!(run(1), run(2));
    }
}
