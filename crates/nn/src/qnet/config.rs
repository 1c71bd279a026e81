//! Quantization settings and errors.

use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::network::Shape;
use crate::quant::Rounding;

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
    #[error("quantization config: {}", nacsim_core::config::FieldError::join(.0))]
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
    /// A layer the int8 network does not run: a BatchNorm2d that cannot be folded into the
    /// product it reads.
    #[error("layer {layer}: {what} has no int8 path; {fix}")]
    Unsupported {
        /// Layer name.
        layer: String,
        /// What it is.
        what: String,
        /// What to do instead.
        fix: String,
    },
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
