//! The layers of a [`QNetwork`](super::QNetwork): what each is ([`LayerKind`]) and its integer
//! parameters.

use std::fmt;

use nacsim_core::config::FieldError;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::quantize::{bias_codes, requant_factors};
use super::{QuantizeError, Requant};
use crate::network::{Activation, Hw, LayerSpec, ResolvedLayer, Shape, TensorAxis};
use crate::quant::Rounding;

/// What a [`QGemm`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum GemmKind {
    /// Fully connected: one product row per sample.
    Dense,
    /// Convolution lowered by [`im2col`](crate::im2col::im2col_hw): one product row per output
    /// pixel. With `groups > 1` the product is one GEMM per group: group `g` reads im2col
    /// columns `g·K_g .. (g+1)·K_g` (its input channels, `K_g = c_in/groups · kh · kw`) and
    /// writes output channels `g·o_g .. (g+1)·o_g` (`o_g = c_out/groups`).
    Conv {
        /// Kernel size in pixels `(h, w)`.
        kernel: Hw,
        /// Stride in pixels `(h, w)`.
        stride: Hw,
        /// Zero padding on each side in pixels `(h, w)`.
        padding: Hw,
        /// Channel groups (1: an ordinary convolution; `c_in`: depthwise).
        #[serde(default = "one", skip_serializing_if = "is_one")]
        groups: usize,
    },
}

fn one() -> usize {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_one(n: &usize) -> bool {
    *n == 1
}

impl GemmKind {
    /// Channel groups of the product (1 for Dense and ungrouped convolutions).
    pub const fn groups(&self) -> usize {
        match self {
            GemmKind::Dense => 1,
            GemmKind::Conv { groups, .. } => *groups,
        }
    }
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
    /// Weight codes `[out, fan_in]` (conv columns in `(c, ky, kx)` order; for a grouped
    /// convolution `fan_in` is one group's, `c_in/groups · kh · kw`).
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

    /// Channel groups (see [`GemmKind::Conv`]).
    pub fn groups(&self) -> usize {
        self.kind.groups()
    }

    /// Group `g` of a grouped convolution as a layer of its own (one group, its input
    /// channels, its output channels, weights, biases, scales and requantization factors);
    /// `self` for an ungrouped layer.
    ///
    /// # Panics
    /// If `g >= self.groups()`.
    pub fn group(&self, g: usize) -> QGemm {
        let n = self.groups();
        assert!(g < n, "group {g} of {} ({n} groups)", self.name);
        if n == 1 {
            return self.clone();
        }
        let og = self.out_channels() / n;
        let r = g * og..(g + 1) * og;
        let kind = match self.kind {
            GemmKind::Conv {
                kernel,
                stride,
                padding,
                ..
            } => GemmKind::Conv {
                kernel,
                stride,
                padding,
                groups: 1,
            },
            GemmKind::Dense => GemmKind::Dense,
        };
        QGemm {
            name: self.name.clone(),
            kind,
            input: Shape::new(self.input.c / n, self.input.h, self.input.w),
            output: Shape::new(og, self.output.h, self.output.w),
            weight: self.weight.slice(ndarray::s![r.clone(), ..]).to_owned(),
            bias: self
                .bias
                .get(r.clone())
                .map_or_else(Vec::new, <[i32]>::to_vec),
            requant: self.requant[r.clone()].to_vec(),
            w_scale: self.w_scale[r].to_vec(),
            ..self.clone()
        }
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
    /// [`QNetwork::quantize`](super::QNetwork::quantize) computes them. `weight` is kept (the
    /// int8 reference codes).
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
        let bias = bias.map_or_else(Vec::new, |b| {
            bias_codes(b.iter(), self.in_scale, &w_scale, self.rounding)
        });
        let requant = requant_factors(&self.name, self.in_scale, &w_scale, self.out_scale)?;
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
    /// Batch normalisation (float only: folded into the product before it at quantization).
    BatchNorm,
    /// Mean of each channel on the vector unit.
    GlobalAvgPool,
    /// Element-wise sum of two or more activations on the vector unit.
    Add,
    /// Channel concatenation (a copy) on the vector unit.
    Concat,
    /// Product of two activations.
    MatMul,
    /// Softmax along one axis, in float on the vector unit.
    Softmax,
    /// Layer normalisation along one axis, in float on the vector unit.
    LayerNorm,
    /// A swap of two axes (a copy) on the vector unit.
    Transpose,
}

impl LayerKind {
    /// The name reports print: `dense`, `conv2d`, `maxpool`, `avgpool`, `flatten`, `lut`,
    /// `batchnorm`, `globalavgpool`, `add`, `concat`, `matmul`, `softmax`, `layernorm`,
    /// `transpose`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LayerKind::Dense => "dense",
            LayerKind::Conv2d => "conv2d",
            LayerKind::MaxPool => "maxpool",
            LayerKind::AvgPool => "avgpool",
            LayerKind::Flatten => "flatten",
            LayerKind::Lut => "lut",
            LayerKind::BatchNorm => "batchnorm",
            LayerKind::GlobalAvgPool => "globalavgpool",
            LayerKind::Add => "add",
            LayerKind::Concat => "concat",
            LayerKind::MatMul => "matmul",
            LayerKind::Softmax => "softmax",
            LayerKind::LayerNorm => "layernorm",
            LayerKind::Transpose => "transpose",
        }
    }

    /// True for the layers with a product (Dense, Conv2d).
    pub const fn is_gemm(self) -> bool {
        matches!(self, LayerKind::Dense | LayerKind::Conv2d)
    }

    /// The kind of the quantized layer [`QNetwork::quantize`](super::QNetwork::quantize) makes
    /// of a float layer, if it makes one (a ReLU fused into the product before it has none; see
    /// [`fused_relus`]).
    pub fn of_spec(spec: &LayerSpec) -> Self {
        match spec {
            LayerSpec::Dense { .. } => LayerKind::Dense,
            LayerSpec::Conv2d { .. } => LayerKind::Conv2d,
            LayerSpec::MaxPool2d { .. } => LayerKind::MaxPool,
            LayerSpec::AvgPool2d { .. } => LayerKind::AvgPool,
            LayerSpec::Flatten | LayerSpec::Dropout { .. } => LayerKind::Flatten,
            LayerSpec::Act(_) => LayerKind::Lut,
            LayerSpec::BatchNorm2d { .. } => LayerKind::BatchNorm,
            LayerSpec::GlobalAvgPool => LayerKind::GlobalAvgPool,
            LayerSpec::Add => LayerKind::Add,
            LayerSpec::Concat => LayerKind::Concat,
            LayerSpec::MatMul { .. } => LayerKind::MatMul,
            LayerSpec::Softmax { .. } => LayerKind::Softmax,
            LayerSpec::LayerNorm { .. } => LayerKind::LayerNorm,
            LayerSpec::Transpose { .. } => LayerKind::Transpose,
        }
    }
}

impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `fused[i]`: float layer `i` is a ReLU folded into the product (Dense, Conv2d) it reads,
/// which no other layer reads, so [`QNetwork::quantize`](super::QNetwork::quantize) makes no
/// layer of it. Every other float layer becomes one quantized layer, in order. In a chain: a
/// ReLU right after a product.
pub fn fused_relus(layers: &[ResolvedLayer]) -> Vec<bool> {
    let mut fused = vec![false; layers.len()];
    for r in relu_fusions(layers).into_iter().flatten() {
        fused[r] = true;
    }
    fused
}

/// `fusions[i] = Some(r)`: the ReLU `r` is fused into product `i` (see [`fused_relus`]).
pub fn relu_fusions(layers: &[ResolvedLayer]) -> Vec<Option<usize>> {
    let mut readers = vec![0usize; layers.len()];
    for l in layers {
        for j in l.inputs.iter().flatten() {
            readers[*j] += 1;
        }
    }
    let mut by = vec![None; layers.len()];
    for (r, l) in layers.iter().enumerate() {
        if let (LayerSpec::Act(Activation::ReLU), [Some(j)]) = (&l.spec, l.inputs.as_slice())
            && layers[*j].has_product()
            && readers[*j] == 1
        {
            by[*j] = Some(r);
        }
    }
    by
}

/// The product geometry of a Dense or Conv2d layer (`None` for other layers).
pub fn gemm_kind_of(spec: &LayerSpec) -> Option<GemmKind> {
    match *spec {
        LayerSpec::Dense { .. } => Some(GemmKind::Dense),
        LayerSpec::Conv2d {
            kernel,
            stride,
            padding,
            groups,
            ..
        } => Some(GemmKind::Conv {
            kernel,
            stride,
            padding,
            groups,
        }),
        _ => None,
    }
}

/// One layer of a [`QNetwork`](super::QNetwork).
// A network holds one `QLayer` per layer, built once: the size of the Gemm variant (its
// geometry, scales and weight array header) does not matter, and boxing it would add an
// indirection to every match over the layers.
#[allow(clippy::large_enum_variant)]
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
    /// Mean of each channel's pixels: the `i32` sum divided by the pixel count with `rounding`
    /// (the scale passes through).
    GlobalAvgPool {
        /// Input shape of one sample.
        input: Shape,
        /// Rounding of the division.
        rounding: Rounding,
    },
    /// Element-wise sum with scale alignment: input `k`'s codes times `factors[k]` (its scale ×
    /// 256 / the output scale) are summed exactly, divided by 256 with `rounding` and clamped to
    /// `±act_max` (one rounding per output, after the exact sum).
    Add {
        /// Alignment factor of each input, `256 · s_k / s_out`.
        factors: Vec<Requant>,
        /// Largest output code.
        act_max: i32,
        /// Rounding of the terms and the sum.
        rounding: Rounding,
    },
    /// Channel concatenation at a common scale, the largest input scale: an input at that
    /// scale is copied, any other requantized by `s_k / s_out ≤ 1` (never clamps).
    Concat {
        /// Alignment factor of each input (`None`: already at the output scale).
        factors: Vec<Option<Requant>>,
        /// Rounding of the alignment.
        rounding: Rounding,
    },
    /// Product of two activations per channel, `a (c, m, k) · b (c, k, n)` (or `b (c, n, k)`
    /// read transposed): both operands are int8 codes at their own per-tensor scales, the
    /// `i32` product goes through the [`IntGemm`](super::IntGemm) seam with `b` as the
    /// "weights" `[n, k]` (one GEMM per sample and channel), and one factor
    /// `s_a · s_b / s_out` requantizes it (rounded with `rounding`, clamped to `±act_max`).
    MatMul {
        /// `b` is read transposed (stored `(c, n, k)`).
        transpose_b: bool,
        /// Shape of `a` of one sample, `(c, m, k)`.
        a: Shape,
        /// Columns `n` of the result.
        n: usize,
        /// Requantization factor `s_a · s_b / s_out`.
        requant: Requant,
        /// Scales of the codes of `a` and `b`.
        in_scales: (f32, f32),
        /// Scale of the output codes.
        out_scale: f32,
        /// Largest output code.
        act_max: i32,
        /// Rounding of the requantization.
        rounding: Rounding,
    },
    /// Softmax along `axis` in float (the vector unit's float datapath): codes dequantized by
    /// `in_scale`, the float softmax of [`crate::attn_ops`], requantized at the calibrated
    /// `out_scale` with `rounding` (clamped to `±act_max`).
    Softmax {
        /// The axis the probabilities sum to 1 along.
        axis: TensorAxis,
        /// Shape of one sample.
        input: Shape,
        /// Scale of the input codes.
        in_scale: f32,
        /// Scale of the output codes.
        out_scale: f32,
        /// Largest output code.
        act_max: i32,
        /// Rounding of the requantization.
        rounding: Rounding,
    },
    /// LayerNorm along `axis` in float, as [`QLayer::Softmax`]: dequantize, normalise with the
    /// float γ and β, requantize at the calibrated `out_scale`.
    LayerNorm {
        /// The normalised axis.
        axis: TensorAxis,
        /// Shape of one sample.
        input: Shape,
        /// Added to the variance.
        eps: f32,
        /// γ, one per element of the axis.
        gamma: Vec<f32>,
        /// β, one per element of the axis.
        beta: Vec<f32>,
        /// Scale of the input codes.
        in_scale: f32,
        /// Scale of the output codes.
        out_scale: f32,
        /// Largest output code.
        act_max: i32,
        /// Rounding of the requantization.
        rounding: Rounding,
    },
    /// Swap of axes `a` and `b` on codes (exact; the scale passes through).
    Transpose {
        /// Shape of one input sample.
        input: Shape,
        /// One axis.
        a: TensorAxis,
        /// The other.
        b: TensorAxis,
    },
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
            QLayer::GlobalAvgPool { .. } => LayerKind::GlobalAvgPool,
            QLayer::Add { .. } => LayerKind::Add,
            QLayer::Concat { .. } => LayerKind::Concat,
            QLayer::MatMul { .. } => LayerKind::MatMul,
            QLayer::Softmax { .. } => LayerKind::Softmax,
            QLayer::LayerNorm { .. } => LayerKind::LayerNorm,
            QLayer::Transpose { .. } => LayerKind::Transpose,
        }
    }
}
