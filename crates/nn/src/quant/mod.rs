//! Quantizers shared by the engines: an explicit [`Rounding`] enum, a uniform N-bit quantizer
//! ([`UniformQuantizer`]: integer codes times a real step) and a power-of-two quantizer
//! ([`PotQuantizer`]: a sign and an exponent, so a product is a shift).
//!
//! All quantizers are per-tensor, deterministic and total: every `f64` input (±∞ and NaN
//! included) gives a code without panicking. Out-of-range inputs saturate; NaN maps to the code
//! of real zero. Constructors and `validate` check parameters and return a [`QuantError`].
//!
//! | module | job |
//! |---|---|
//! | this one | [`QuantError`], the [`Rounding`] modes and [`round`] |
//! | `uniform` | [`UniformQuantizer`]: N-bit codes times a step |
//! | `pot` | [`PotQuantizer`], [`PotCode`], [`PotRounding`]: power-of-two levels |

use serde::{Deserialize, Serialize};

mod pot;
#[cfg(test)]
mod tests;
mod uniform;

pub use pot::{PotCode, PotQuantizer, PotRounding};
pub use uniform::UniformQuantizer;

/// Why a quantizer's parameters are impossible. Messages read `<field> = <value>: <rule>`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantError {
    /// The bit width is outside what the quantizer supports.
    #[error("bits = {bits}: must be in {min}..={max}")]
    Bits {
        /// Bits given.
        bits: u32,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// The step of a uniform quantizer is zero, negative, NaN or infinite.
    #[error("scale = {0}: must be finite and > 0")]
    Scale(f64),
    /// The zero point lies outside the code range (signed quantizers need 0).
    #[error("zero_point = {zero_point}: must be in {min}..={max}")]
    ZeroPoint {
        /// Zero point given.
        zero_point: i32,
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// A calibrated range is zero, negative, NaN or infinite.
    #[error("max_abs = {0}: must be finite and > 0")]
    MaxAbs(f64),
    /// The exponents of a power-of-two quantizer leave the normal `f64` range.
    #[error(
        "exponents {exp_min}..={exp_max}: must lie within {}..={}",
        PotQuantizer::EXP_LOWEST,
        PotQuantizer::EXP_HIGHEST
    )]
    Exponent {
        /// Smallest exponent (derived from `exp_max` and `bits`).
        exp_min: i32,
        /// Largest exponent.
        exp_max: i32,
    },
    /// `quantize_slice` got slices of different lengths.
    #[error("quantize_slice: input has {input} values but output has {output}")]
    SliceLen {
        /// Input length.
        input: usize,
        /// Output length.
        output: usize,
    },
    /// `quantize_slice` cannot store the codes in `i32`.
    #[error("quantize_slice: unsigned {bits}-bit codes do not fit i32; use `quantize` (i64)")]
    CodeWidth {
        /// Bit width of the quantizer.
        bits: u32,
    },
}

/// How a real number becomes an integer. Every quantization names one (never a bare `as` cast).
///
/// Precisely: a deterministic map from a real `x` to an integer, the same for every caller:
/// [`round`] applies it to an `f64` (an integer-valued `f64` back; NaN and ±∞ pass through), and
/// the int8 network applies it exactly to integer quotients (requantization `acc · M` in Q31
/// fixed point, average pooling `Σ / k²`; `crate::qnet`), where a tie is a remainder of exactly
/// half the divisor. The two `Nearest` modes differ only on ties; the three directed modes never
/// look at a tie. The uniform quantizer, the int8 network (inputs, weights, biases, tables,
/// requantization, average pooling) and the engines that rescale it take it from their configs
/// as a RON variant name (`NearestEven`, …).
///
/// This is not the rounding of `nacsim_sine::format::Rounding` (which has ties toward +∞,
/// `HalfUp`, and no ties-away or toward-zero mode) nor of `nacsim_insitu`'s pulse-count
/// `Rounding` (half up or stochastic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Rounding {
    /// Nearest integer, ties to even (IEEE 754 default): 2.5 → 2, −2.5 → −2, 0.5 → 0.
    NearestEven,
    /// Nearest integer, ties away from zero (C `round`): 2.5 → 3, −2.5 → −3, 0.5 → 1.
    NearestAway,
    /// Truncation: 2.5 → 2, −2.5 → −2.
    TowardZero,
    /// Toward −∞: 2.5 → 2, −2.5 → −3.
    Floor,
    /// Toward +∞: 2.5 → 3, −2.5 → −2.
    Ceil,
}

/// `x` rounded to an integer-valued `f64` by `mode`. NaN and ±∞ pass through.
pub fn round(x: f64, mode: Rounding) -> f64 {
    match mode {
        Rounding::NearestEven => {
            // Below 2^51, adding and subtracting 1.5·2^52 rounds |x| to the nearest integer, ties
            // to even, exactly (the same bits as `round_ties_even`, without the libm `rint` call
            // that baseline x86-64 makes for it); the sign is put back (−0.3 → −0.0).
            const MAGIC: f64 = 6_755_399_441_055_744.0;
            if x.abs() < 2_251_799_813_685_248.0 {
                ((x.abs() + MAGIC) - MAGIC).copysign(x)
            } else {
                x.round_ties_even()
            }
        }
        Rounding::NearestAway => x.round(),
        Rounding::TowardZero => x.trunc(),
        Rounding::Floor => x.floor(),
        Rounding::Ceil => x.ceil(),
    }
}

/// `Ok` when `min <= bits <= max`, else [`QuantError::Bits`].
pub(crate) fn check_bits(bits: u32, min: u32, max: u32) -> Result<(), QuantError> {
    if (min..=max).contains(&bits) {
        Ok(())
    } else {
        Err(QuantError::Bits { bits, min, max })
    }
}
