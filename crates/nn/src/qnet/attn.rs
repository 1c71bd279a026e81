//! The attention kinds on codes: Softmax and LayerNorm dequantize, run the float math of
//! [`crate::attn_ops`] and requantize (the vector unit's float datapath); Transpose moves codes.

use ndarray::{Array1, Array2, Zip};

use super::QLayer;
use super::quantize::quantize_value;
use crate::attn_ops::{layer_norm, softmax, transpose};
use crate::model::Param;
use crate::quant::Rounding;

/// Float values of codes `x` at `scale`.
fn dequantize(x: &Array2<i8>, scale: f32) -> Array2<f32> {
    x.mapv(|v| f32::from(v) * scale)
}

/// Codes of `y` at `scale`: `clamp(round(y / scale), ±act_max)`.
fn requantize(y: &Array2<f32>, scale: f32, act_max: i32, mode: Rounding) -> Array2<i8> {
    let mut q = Array2::<i8>::zeros(y.raw_dim());
    Zip::from(&mut q).and(y).par_for_each(|d, &v| {
        *d = i8::try_from(quantize_value(v.into(), scale.into(), act_max, mode))
            .expect("clamped to a code");
    });
    q
}

/// Runs a [`QLayer::Softmax`], [`QLayer::LayerNorm`] or [`QLayer::Transpose`] on codes `x`.
///
/// # Panics
/// For another layer (a caller bug).
pub(super) fn forward_codes(q: &QLayer, x: Array2<i8>) -> Array2<i8> {
    match q {
        &QLayer::Softmax {
            axis,
            input,
            in_scale,
            out_scale,
            act_max,
            rounding,
        } => {
            let y = softmax(dequantize(&x, in_scale).view(), input, axis);
            requantize(&y, out_scale, act_max, rounding)
        }
        QLayer::LayerNorm {
            axis,
            input,
            eps,
            gamma,
            beta,
            in_scale,
            out_scale,
            act_max,
            rounding,
        } => {
            let p = Param {
                weight: Array2::from_shape_vec((gamma.len(), 1), gamma.clone())
                    .expect("one γ per element"),
                bias: Some(Array1::from_vec(beta.clone())),
            };
            let (y, _) = layer_norm(dequantize(&x, *in_scale).view(), *input, *axis, *eps, &p);
            requantize(&y, *out_scale, *act_max, *rounding)
        }
        &QLayer::Transpose { input, a, b } => transpose(x.view(), input, a, b),
        _ => unreachable!("qnet::attn::forward_codes of another layer"),
    }
}
