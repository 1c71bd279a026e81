//! The uniform N-bit quantizer.

use serde::{Deserialize, Serialize};

use super::{QuantError, Rounding, check_bits, round};

/// Uniform N-bit quantizer: the real value of code `q` is `scale · (q − zero_point)`.
///
/// Codes are two's-complement `−2^(N−1) ..= 2^(N−1) − 1` when `signed` (zero point 0, so the
/// range is symmetric except for the one extra negative code) or `0 ..= 2^N − 1` when unsigned.
/// [`quantize`](Self::quantize) divides by `scale`, rounds with `rounding` and saturates to the
/// code range. The directed modes (`Floor`, `Ceil`, `TowardZero`) are exact with respect to the
/// level values: `Floor` gives the largest code whose [`dequantize`](Self::dequantize) is ≤ x,
/// `Ceil` the smallest whose value is ≥ x (before saturation), so levels map to themselves.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniformQuantizer {
    /// Code width N in bits, 1..=32.
    pub bits: u32,
    /// Two's-complement codes (true) or unsigned codes (false).
    pub signed: bool,
    /// Real value of one LSB (the step), in the unit of the quantized tensor; finite and > 0.
    pub scale: f64,
    /// Code that represents real 0: must be 0 when `signed`, within `0..=2^N − 1` when unsigned.
    pub zero_point: i32,
    /// Rounding of `x / scale` to a code.
    pub rounding: Rounding,
}

impl UniformQuantizer {
    /// Largest supported code width.
    pub const MAX_BITS: u32 = 32;

    /// A validated quantizer.
    ///
    /// # Errors
    /// See [`validate`](Self::validate).
    pub fn new(
        bits: u32,
        signed: bool,
        scale: f64,
        zero_point: i32,
        rounding: Rounding,
    ) -> Result<Self, QuantError> {
        let q = Self {
            bits,
            signed,
            scale,
            zero_point,
            rounding,
        };
        q.validate()?;
        Ok(q)
    }

    /// The quantizer whose largest positive level equals a calibrated `max_abs` (zero point 0).
    /// Signed: `scale = max_abs / (2^(N−1) − 1)` (`max_abs` for N = 1), so ±`max_abs` are both
    /// levels. Unsigned (for non-negative tensors such as post-ReLU activations):
    /// `scale = max_abs / (2^N − 1)`.
    ///
    /// # Errors
    /// [`QuantError::MaxAbs`] unless `max_abs` is finite and > 0; [`QuantError::Bits`].
    pub fn for_max_abs(
        max_abs: f64,
        bits: u32,
        signed: bool,
        rounding: Rounding,
    ) -> Result<Self, QuantError> {
        check_bits(bits, 1, Self::MAX_BITS)?;
        if !(max_abs.is_finite() && max_abs > 0.0) {
            return Err(QuantError::MaxAbs(max_abs));
        }
        let steps = if signed {
            ((1i64 << (bits - 1)) - 1).max(1)
        } else {
            (1i64 << bits) - 1
        };
        Self::new(bits, signed, max_abs / steps as f64, 0, rounding)
    }

    /// Check the parameters.
    ///
    /// # Errors
    /// [`QuantError::Bits`] unless `bits` is in 1..=32, [`QuantError::Scale`] unless `scale` is
    /// finite and > 0, [`QuantError::ZeroPoint`] if the zero point is not a code (or non-zero
    /// for a signed quantizer).
    pub fn validate(&self) -> Result<(), QuantError> {
        check_bits(self.bits, 1, Self::MAX_BITS)?;
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(QuantError::Scale(self.scale));
        }
        let (min, max) = if self.signed {
            (0, 0)
        } else {
            (0, self.code_max())
        };
        let zp = i64::from(self.zero_point);
        if !(min..=max).contains(&zp) {
            return Err(QuantError::ZeroPoint {
                zero_point: self.zero_point,
                min,
                max,
            });
        }
        Ok(())
    }

    fn width(&self) -> u32 {
        self.bits.clamp(1, Self::MAX_BITS)
    }

    /// Smallest code: `−2^(N−1)` signed, 0 unsigned.
    pub fn code_min(&self) -> i64 {
        if self.signed {
            -(1i64 << (self.width() - 1))
        } else {
            0
        }
    }

    /// Largest code: `2^(N−1) − 1` signed, `2^N − 1` unsigned.
    pub fn code_max(&self) -> i64 {
        if self.signed {
            (1i64 << (self.width() - 1)) - 1
        } else {
            (1i64 << self.width()) - 1
        }
    }

    /// Number of levels, `2^N`.
    pub fn levels(&self) -> u64 {
        1u64 << self.width()
    }

    /// Real value of the smallest code.
    pub fn min_value(&self) -> f64 {
        self.dequantize(self.code_min())
    }

    /// Real value of the largest code.
    pub fn max_value(&self) -> f64 {
        self.dequantize(self.code_max())
    }

    /// Real value `scale · (code − zero_point)` of any code (not clamped to the range).
    pub fn dequantize(&self, code: i64) -> f64 {
        self.scale * code.saturating_sub(i64::from(self.zero_point)) as f64
    }

    /// The code of `x`: `round(x / scale) + zero_point` saturated to
    /// [`code_min`](Self::code_min)`..=`[`code_max`](Self::code_max); NaN gives the zero point.
    #[inline]
    pub fn quantize(&self, x: f64) -> i64 {
        let zp = i64::from(self.zero_point);
        let (lo, hi) = (self.code_min(), self.code_max());
        let t = x / self.scale;
        if t.is_nan() {
            return zp.clamp(lo, hi);
        }
        // Clamp with one code of margin, so the cast below is exact and saturation still happens
        // after the directed-mode correction.
        let t = t.clamp((lo - zp - 1) as f64, (hi - zp + 1) as f64);
        let n = round(t, self.rounding) as i64; // integral and bounded: exact
        let level = |n: i64| self.scale * n as f64;
        // `x / scale` may be one ulp off a level; correct the directed modes on the levels.
        let floor = |n: i64| {
            if level(n + 1) <= x {
                n + 1
            } else if level(n) > x {
                n - 1
            } else {
                n
            }
        };
        let ceil = |n: i64| {
            if level(n - 1) >= x {
                n - 1
            } else if level(n) < x {
                n + 1
            } else {
                n
            }
        };
        let n = match self.rounding {
            Rounding::NearestEven | Rounding::NearestAway => n,
            Rounding::Floor => floor(n),
            Rounding::Ceil => ceil(n),
            Rounding::TowardZero if x >= 0.0 => floor(n),
            Rounding::TowardZero => ceil(n),
        };
        (n + zp).clamp(lo, hi)
    }

    /// `dequantize(quantize(x))`: the level `x` is represented by ("fake quantization").
    pub fn fake_quantize(&self, x: f64) -> f64 {
        self.dequantize(self.quantize(x))
    }

    /// Quantize a tensor into `i32` codes, `out[i] = quantize(x[i])`.
    ///
    /// # Errors
    /// [`QuantError::SliceLen`] if the lengths differ; [`QuantError::CodeWidth`] for unsigned
    /// 32-bit codes, which do not fit `i32`.
    pub fn quantize_slice(&self, x: &[f32], out: &mut [i32]) -> Result<(), QuantError> {
        if x.len() != out.len() {
            return Err(QuantError::SliceLen {
                input: x.len(),
                output: out.len(),
            });
        }
        if self.code_max() > i64::from(i32::MAX) {
            return Err(QuantError::CodeWidth { bits: self.bits });
        }
        for (o, &v) in out.iter_mut().zip(x) {
            *o = self.quantize(f64::from(v)) as i32; // within the code range checked above
        }
        Ok(())
    }
}
