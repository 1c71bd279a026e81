//! Int8 network quantization: a float [`Model`](crate::model::Model) becomes a [`QNetwork`] whose forward pass is exact
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
//!   [`Rounding`](crate::quant::Rounding) and clamps to `−A ..= A` (to `0 ..= A` when a following ReLU is fused).
//!
//! ## Layers
//!
//! Dense and Conv2d become [`QLayer::Gemm`] (a ReLU right after one is fused into its clamp and
//! disappears from the layer list, so [`QNetwork::layers`] can be shorter than the model's
//! layers); max pooling is exact on codes, average pooling sums and divides with the rounding
//! mode, `Flatten` moves no data, and every other activation is a 256-entry lookup table
//! ([`QLayer::Lut`]) built by dequantize → f → requantize. Convolutions are lowered by the
//! float passes' [`im2col`](crate::im2col::im2col) on codes.
//!
//! Graphs: BatchNorm2d is folded into the product it reads ([`crate::fold`]) before
//! calibration; [`QNetwork::inputs`] wires the layers; [`QLayer::Add`] aligns its inputs to the
//! calibrated output scale (exact sum of `256·s_k/s_out`-scaled terms, one rounding),
//! [`QLayer::Concat`] to the largest input scale, [`QLayer::GlobalAvgPool`] divides the channel
//! sum with the rounding mode. Convolutions take rectangular kernels, per-axis strides and
//! padding, and `groups` (one GEMM per group through [`IntGemm::gemm_grouped_at`]; depthwise
//! is `groups = c_in`). [`QLayer::MatMul`] multiplies two activations, both int8 codes at
//! their own per-tensor scales, through the same seam with the second operand as the
//! "weights"; one factor `s_a·s_b/s_out` requantizes it. [`QLayer::Softmax`] and
//! [`QLayer::LayerNorm`] run in float on the vector unit (dequantize, the float math of
//! [`crate::attn_ops`], requantize at a calibrated scale); [`QLayer::Transpose`] moves codes.
//!
//! Every product goes through the [`IntGemm`] seam; [`RefGemm`] is the workspace's int8 oracle,
//! [`nacsim_core::gemm::gemm_i8`], run over fixed blocks of rows. Integer sums are exact, so
//! results are bit-identical for any rayon thread count.
//!
//! ## Modules
//!
//! | module | job |
//! |---|---|
//! | `config` | [`QuantConfig`], [`Calibration`], [`QuantizeError`] |
//! | `requant` | exact integer rounding of quotients, [`Requant`]: the Q31 requantization factor |
//! | `layer` | the quantized layers: [`QLayer`], [`QGemm`], [`GemmKind`], [`LayerKind`] |
//! | `gemm` | the product seam [`IntGemm`], its reference [`RefGemm`], the [`gemm_epilogue`] |
//! | `quantize` | [`QNetwork::quantize`]: calibration, then each float layer to its integer layer |
//! | `forward` | the integer forward pass, pooling, predictions and accuracy |
//! | `attn` | Softmax and LayerNorm on codes (dequantize, float, requantize), Transpose of codes |
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

mod attn;
mod config;
mod forward;
mod gemm;
#[cfg(test)]
mod graph_tests;
#[cfg(test)]
mod grouped_tests;
mod layer;
mod quantize;
mod requant;
#[cfg(test)]
mod tests;

pub use config::{Calibration, QuantConfig, QuantizeError};
pub use forward::matmul_operands;
pub use gemm::{GEMM_ROWS, IntGemm, RefGemm, gemm_epilogue, grouped_by};
pub use layer::{GemmKind, LayerKind, QGemm, QLayer, fused_relus, gemm_kind_of, relu_fusions};
pub use requant::Requant;

/// im2col of int8 codes: the one generic [`im2col_hw`](crate::im2col::im2col_hw) with the
/// `(h, w)` kernel, stride and padding of [`GemmKind::Conv`] (out-of-image taps are code 0,
/// the code of real zero).
pub use crate::im2col::im2col_hw as im2col_i8;

/// A quantized network: integer layers and the scale of the input codes.
#[derive(Clone, Debug, PartialEq)]
pub struct QNetwork {
    /// Network name.
    pub name: String,
    /// Scale of the input codes (real pixel = scale · code).
    pub input_scale: f32,
    /// Integer layers in order (fused ReLUs removed; BatchNorm2d folded).
    pub layers: Vec<QLayer>,
    /// What each layer reads, for a graph: `Some(k)` is layer `k`'s output, `None` the input
    /// codes. Empty for a chain (layer `k` reads layer `k − 1`).
    pub inputs: Vec<Vec<Option<usize>>>,
    /// Number of classes (length of the logits).
    pub classes: usize,
    /// The settings it was made with.
    pub config: QuantConfig,
}
