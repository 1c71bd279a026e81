//! Quantizers shared by the engines: an explicit [`Rounding`] enum, a uniform N-bit quantizer
//! ([`UniformQuantizer`]: integer codes times a real step) and a power-of-two quantizer
//! ([`PotQuantizer`]: a sign and an exponent, so a product is a shift).
//!
//! All quantizers are per-tensor, deterministic and total: every `f64` input (±∞ and NaN
//! included) gives a code without panicking. Out-of-range inputs saturate; NaN maps to the code
//! of real zero. Constructors and `validate` check parameters and return a [`QuantError`].

use serde::{Deserialize, Serialize};

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

fn check_bits(bits: u32, min: u32, max: u32) -> Result<(), QuantError> {
    if (min..=max).contains(&bits) {
        Ok(())
    } else {
        Err(QuantError::Bits { bits, min, max })
    }
}

/// How a [`PotQuantizer`] picks the level of a magnitude between two powers of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum PotRounding {
    /// Round `log2|x|` to the nearest integer: between `2^e` and `2^(e+1)` the threshold is
    /// `√2 · 2^e` (geometric mean). Magnitudes below `2^(exp_min − 0.5)` = `2^exp_min / √2` become
    /// zero. The thresholds are irrational, so no `f64` input is ever a tie.
    LogDomain,
    /// Nearest level in linear distance, zero included (the rule of INQ, Zhou et al., ICLR 2017,
    /// eq. 4): between `2^e` and `2^(e+1)` the threshold is `1.5 · 2^e`, between 0 and
    /// `2^exp_min` it is `2^(exp_min − 1)`; ties go to the larger magnitude. Unlike INQ (which
    /// zeroes `|x| ≥ 1.5 · 2^exp_max`), large magnitudes saturate to `2^exp_max`.
    LinearNearest,
}

/// A power-of-two level: zero or `±2^exp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PotCode {
    /// The value 0.
    Zero,
    /// The value `−2^exp` if `negative`, else `2^exp`.
    Pow {
        /// Sign.
        negative: bool,
        /// Exponent (a left shift if ≥ 0, a right shift if < 0).
        exp: i32,
    },
}

impl PotCode {
    /// Real value of the code (exact; ±∞ or 0 beyond the `f64` range).
    pub fn value(self) -> f64 {
        match self {
            Self::Zero => 0.0,
            Self::Pow { negative, exp } => {
                let m = pow2(exp);
                if negative { -m } else { m }
            }
        }
    }
}

impl std::ops::Neg for PotCode {
    type Output = Self;
    fn neg(self) -> Self {
        match self {
            Self::Zero => Self::Zero,
            Self::Pow { negative, exp } => Self::Pow {
                negative: !negative,
                exp,
            },
        }
    }
}

/// Exact `2^e` in `f64` (subnormal below −1022, ∞ above 1023, 0 below −1074).
fn pow2(e: i32) -> f64 {
    match e {
        1024.. => f64::INFINITY,
        -1022..=1023 => f64::from_bits(((e + 1023) as u64) << 52),
        -1074..=-1023 => f64::from_bits(1u64 << (e + 1074)),
        _ => 0.0,
    }
}

/// `a = m · 2^k` with `m` in [1, 2), for finite `a` > 0 (exact, subnormals included).
fn split(a: f64) -> (i32, f64) {
    let (a, bias) = if a < f64::MIN_POSITIVE {
        (a * pow2(64), 64)
    } else {
        (a, 0)
    };
    let bits = a.to_bits();
    let k = ((bits >> 52) & 0x7ff) as i32 - 1023 - bias;
    let m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    (k, m)
}

/// Per-tensor power-of-two quantizer with `bits` = b: 1 sign bit and b − 1 exponent-code bits,
/// one code of which means zero. That gives `2^(b−1) − 1` exponents
/// `exp_min ..= exp_max` with `exp_min = exp_max − (2^(b−1) − 2)`, and `2^b − 1` levels
/// `{0} ∪ {±2^e}`. (INQ instead spends a whole bit on zero, giving `2^(b−2)` exponents; only its
/// choice of `exp_max` and its rounding rule are taken from it.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PotQuantizer {
    /// Code width b in bits, 2..=8 (sign included).
    pub bits: u32,
    /// Largest exponent: the largest magnitude is `2^exp_max`.
    pub exp_max: i32,
    /// How magnitudes between levels are rounded.
    pub rounding: PotRounding,
}

impl PotQuantizer {
    /// Smallest supported code width.
    pub const MIN_BITS: u32 = 2;
    /// Largest supported code width (127 exponents already span 2^126).
    pub const MAX_BITS: u32 = 8;
    /// Lowest allowed exponent (smallest normal `f64`).
    pub const EXP_LOWEST: i32 = -1022;
    /// Highest allowed exponent (largest finite power of two in `f64`).
    pub const EXP_HIGHEST: i32 = 1023;

    /// A validated quantizer.
    ///
    /// # Errors
    /// See [`validate`](Self::validate).
    pub fn new(bits: u32, exp_max: i32, rounding: PotRounding) -> Result<Self, QuantError> {
        let q = Self {
            bits,
            exp_max,
            rounding,
        };
        q.validate()?;
        Ok(q)
    }

    /// The quantizer for a tensor with calibrated `max_abs`, with
    /// `exp_max = floor(log2(4 · max_abs / 3))` as in INQ (Zhou et al., "Incremental Network
    /// Quantization", ICLR 2017, §2.1): then `0.75 · 2^exp_max ≤ max_abs < 1.5 · 2^exp_max`, so
    /// the largest magnitude rounds (linearly) to the top level rather than past it.
    ///
    /// # Errors
    /// [`QuantError::MaxAbs`] unless `max_abs` is finite and > 0; [`QuantError::Bits`];
    /// [`QuantError::Exponent`] if the exponents leave the normal `f64` range.
    pub fn for_max_abs(max_abs: f64, bits: u32, rounding: PotRounding) -> Result<Self, QuantError> {
        check_bits(bits, Self::MIN_BITS, Self::MAX_BITS)?;
        let t = 4.0 * max_abs / 3.0;
        if !(max_abs > 0.0 && t.is_finite()) {
            return Err(QuantError::MaxAbs(max_abs));
        }
        Self::new(bits, split(t).0, rounding)
    }

    /// Check the parameters.
    ///
    /// # Errors
    /// [`QuantError::Bits`] unless `bits` is in 2..=8; [`QuantError::Exponent`] unless
    /// `exp_min ..= exp_max` lies within −1022..=1023.
    pub fn validate(&self) -> Result<(), QuantError> {
        check_bits(self.bits, Self::MIN_BITS, Self::MAX_BITS)?;
        let exp_min = self.exp_min();
        if exp_min < Self::EXP_LOWEST || self.exp_max > Self::EXP_HIGHEST {
            return Err(QuantError::Exponent {
                exp_min,
                exp_max: self.exp_max,
            });
        }
        Ok(())
    }

    /// Number of exponents, `2^(b−1) − 1`.
    pub fn exponents(&self) -> u32 {
        (1u32 << (self.bits.clamp(Self::MIN_BITS, Self::MAX_BITS) - 1)) - 1
    }

    /// Smallest exponent, `exp_max − (2^(b−1) − 2)`.
    pub fn exp_min(&self) -> i32 {
        self.exp_max.saturating_sub(self.exponents() as i32 - 1)
    }

    /// All `2^b − 1` level values in ascending order.
    pub fn levels(&self) -> Vec<f64> {
        let pos: Vec<f64> = (self.exp_min()..=self.exp_max).map(pow2).collect();
        pos.iter()
            .rev()
            .map(|v| -v)
            .chain([0.0])
            .chain(pos.iter().copied())
            .collect()
    }

    /// The level of `x` under [`rounding`](Self::rounding), saturating to `±2^exp_max`
    /// (±∞ included). 0, −0 and NaN give [`PotCode::Zero`]. `quantize(−x) = −quantize(x)`.
    pub fn quantize(&self, x: f64) -> PotCode {
        if x.is_nan() || x == 0.0 {
            return PotCode::Zero;
        }
        let (emin, emax) = (self.exp_min(), self.exp_max);
        let a = x.abs();
        let exp = if a.is_infinite() {
            emax
        } else {
            let (k, m) = split(a);
            match self.rounding {
                PotRounding::LogDomain => k + i32::from(m >= std::f64::consts::SQRT_2),
                PotRounding::LinearNearest if k < emin.saturating_sub(1) => return PotCode::Zero,
                PotRounding::LinearNearest => (k + i32::from(m >= 1.5)).max(emin),
            }
        };
        if exp < emin {
            PotCode::Zero
        } else {
            PotCode::Pow {
                negative: x < 0.0,
                exp: exp.min(emax),
            }
        }
    }

    /// `quantize(x).value()`: the level `x` is represented by.
    pub fn fake_quantize(&self, x: f64) -> f64 {
        self.quantize(x).value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: [Rounding; 5] = [
        Rounding::NearestEven,
        Rounding::NearestAway,
        Rounding::TowardZero,
        Rounding::Floor,
        Rounding::Ceil,
    ];
    const POT: [PotRounding; 2] = [PotRounding::LogDomain, PotRounding::LinearNearest];

    /// Proptest cases: 64 unless `PROPTEST_CASES` says otherwise.
    fn cases() -> u32 {
        nacsim_core::testing::proptest_cases(64)
    }

    #[test]
    fn rounding_modes_match_hand_values() {
        // x, NearestEven, NearestAway, TowardZero, Floor, Ceil
        let table: [(f64, [f64; 5]); 8] = [
            (2.5, [2.0, 3.0, 2.0, 2.0, 3.0]),
            (-2.5, [-2.0, -3.0, -2.0, -3.0, -2.0]),
            (0.5, [0.0, 1.0, 0.0, 0.0, 1.0]),
            (-0.5, [0.0, -1.0, 0.0, -1.0, 0.0]),
            (1.5, [2.0, 2.0, 1.0, 1.0, 2.0]),
            (2.4, [2.0, 2.0, 2.0, 2.0, 3.0]),
            (-2.6, [-3.0, -3.0, -2.0, -3.0, -2.0]),
            (3.0, [3.0, 3.0, 3.0, 3.0, 3.0]),
        ];
        for (x, want) in table {
            for (mode, w) in ALL.iter().zip(want) {
                assert_eq!(round(x, *mode), w, "round({x}, {mode:?})");
            }
        }
    }

    #[test]
    fn uniform_levels_are_exhaustive_idempotent_and_monotonic() {
        for bits in 1..=6 {
            for signed in [true, false] {
                for mode in ALL {
                    let q = UniformQuantizer::new(bits, signed, 0.37, 0, mode).unwrap();
                    let codes: Vec<i64> = (q.code_min()..=q.code_max()).collect();
                    assert_eq!(codes.len() as u64, q.levels());
                    assert_eq!(q.levels(), 1 << bits);
                    for &c in &codes {
                        assert_eq!(q.quantize(q.dequantize(c)), c, "{q:?} code {c}");
                    }
                    let (lo, hi) = (q.min_value() - 3.0, q.max_value() + 3.0);
                    let mut prev = i64::MIN;
                    for i in 0..=4000 {
                        let x = lo + (hi - lo) * f64::from(i) / 4000.0;
                        let c = q.quantize(x);
                        assert!(c >= prev, "{q:?} not monotonic at {x}");
                        assert_eq!(
                            q.quantize(q.fake_quantize(x)),
                            c,
                            "{q:?} idempotence at {x}"
                        );
                        prev = c;
                    }
                    assert_eq!(q.quantize(1e300), q.code_max());
                    assert_eq!(q.quantize(f64::INFINITY), q.code_max());
                    assert_eq!(q.quantize(-1e300), q.code_min());
                    assert_eq!(q.quantize(f64::NEG_INFINITY), q.code_min());
                    assert_eq!(q.quantize(f64::NAN), 0);
                }
            }
        }
    }

    #[test]
    fn uniform_symmetry_inside_the_range() {
        for bits in 2..=6 {
            let q = |mode| UniformQuantizer::new(bits, true, 0.25, 0, mode).unwrap();
            let top = q(Rounding::Floor).max_value();
            for i in 0..=1000 {
                let x = top * f64::from(i) / 1000.0;
                for mode in [
                    Rounding::NearestEven,
                    Rounding::NearestAway,
                    Rounding::TowardZero,
                ] {
                    assert_eq!(
                        q(mode).quantize(-x),
                        -q(mode).quantize(x),
                        "{mode:?} at {x}"
                    );
                }
                assert_eq!(
                    q(Rounding::Floor).quantize(-x),
                    -q(Rounding::Ceil).quantize(x)
                );
            }
        }
    }

    #[test]
    fn uniform_ties_and_zero_point() {
        let q = |mode| UniformQuantizer::new(8, false, 0.5, 10, mode).unwrap();
        // x = 1.25 is 2.5 steps above zero: code 10 + round(2.5).
        assert_eq!(q(Rounding::NearestEven).quantize(1.25), 12);
        assert_eq!(q(Rounding::NearestAway).quantize(1.25), 13);
        assert_eq!(q(Rounding::NearestEven).quantize(-1.25), 8);
        assert_eq!(q(Rounding::NearestAway).quantize(-1.25), 7);
        assert_eq!(q(Rounding::TowardZero).quantize(-1.25), 8);
        assert_eq!(q(Rounding::Floor).quantize(-1.25), 7);
        assert_eq!(q(Rounding::NearestEven).quantize(-100.0), 0);
        assert_eq!(q(Rounding::NearestEven).quantize(f64::NAN), 10);
        assert_eq!(q(Rounding::NearestEven).dequantize(10), 0.0);
        assert_eq!(q(Rounding::NearestEven).max_value(), 0.5 * 245.0);
    }

    #[test]
    fn uniform_for_max_abs_puts_max_on_the_top_level() {
        let q = UniformQuantizer::for_max_abs(3.0, 8, true, Rounding::NearestEven).unwrap();
        assert_eq!((q.quantize(3.0), q.quantize(-3.0)), (127, -127));
        assert_eq!(q.max_value(), 3.0);
        let u = UniformQuantizer::for_max_abs(3.0, 4, false, Rounding::NearestEven).unwrap();
        assert_eq!((u.quantize(3.0), u.scale), (15, 0.2));
        let one = UniformQuantizer::for_max_abs(3.0, 1, true, Rounding::NearestEven).unwrap();
        assert_eq!((one.quantize(-3.0), one.quantize(3.0)), (-1, 0));
        let w = UniformQuantizer::for_max_abs(1.0, 32, true, Rounding::NearestEven).unwrap();
        assert_eq!(w.quantize(1.0), i64::from(i32::MAX));
    }

    #[test]
    fn uniform_validation_errors() {
        let e = |r: Result<UniformQuantizer, QuantError>| r.unwrap_err();
        let ne = Rounding::NearestEven;
        assert_eq!(
            e(UniformQuantizer::new(0, true, 1.0, 0, ne)),
            QuantError::Bits {
                bits: 0,
                min: 1,
                max: 32
            }
        );
        assert!(matches!(
            e(UniformQuantizer::new(33, true, 1.0, 0, ne)),
            QuantError::Bits { .. }
        ));
        for s in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                e(UniformQuantizer::new(8, true, s, 0, ne)),
                QuantError::Scale(_)
            ));
        }
        assert!(matches!(
            e(UniformQuantizer::new(8, true, 1.0, 3, ne)),
            QuantError::ZeroPoint { .. }
        ));
        assert!(matches!(
            e(UniformQuantizer::new(4, false, 1.0, 16, ne)),
            QuantError::ZeroPoint { max: 15, .. }
        ));
        assert!(matches!(
            e(UniformQuantizer::for_max_abs(0.0, 8, true, ne)),
            QuantError::MaxAbs(_)
        ));
        let msg = e(UniformQuantizer::new(8, true, 0.0, 0, ne)).to_string();
        assert_eq!(msg, "scale = 0: must be finite and > 0");
        // Invalid quantizers still never panic.
        let bad = UniformQuantizer {
            bits: 0,
            signed: false,
            scale: 0.0,
            zero_point: -5,
            rounding: Rounding::Floor,
        };
        let _ = (
            bad.quantize(1.0),
            bad.quantize(0.0),
            bad.quantize(-1.0),
            bad.levels(),
        );
    }

    #[test]
    fn quantize_slice_matches_scalar_path() {
        let x: Vec<f32> = (-50..50)
            .map(|i| i as f32 * 0.173)
            .chain([f32::NAN, f32::INFINITY])
            .collect();
        for mode in ALL {
            let q = UniformQuantizer::for_max_abs(4.0, 5, true, mode).unwrap();
            let mut out = vec![0; x.len()];
            q.quantize_slice(&x, &mut out).unwrap();
            for (&v, &c) in x.iter().zip(&out) {
                assert_eq!(i64::from(c), q.quantize(f64::from(v)));
            }
        }
        let q = UniformQuantizer::for_max_abs(1.0, 8, true, Rounding::Floor).unwrap();
        assert_eq!(
            q.quantize_slice(&x, &mut [0; 3]),
            Err(QuantError::SliceLen {
                input: 102,
                output: 3
            })
        );
        let u = UniformQuantizer::for_max_abs(1.0, 32, false, Rounding::Floor).unwrap();
        assert_eq!(
            u.quantize_slice(&x, &mut [0; 102]),
            Err(QuantError::CodeWidth { bits: 32 })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// The branch-free ties-to-even rounding gives `round_ties_even`'s bits for any f64
        /// (any bit pattern: subnormals, ±0, ±∞, NaN, halves near 2^51 and 2^52).
        #[test]
        fn nearest_even_equals_round_ties_even(bits: u64, half in -(1i64 << 53)..(1i64 << 53)) {
            for x in [f64::from_bits(bits), half as f64 + 0.5, half as f64 / 2.0] {
                let want = x.round_ties_even();
                let got = round(x, Rounding::NearestEven);
                prop_assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{x}: {got} vs {want}");
            }
        }

        #[test]
        fn uniform_round_trip_error_is_within_half_a_step(
            bits in 1u32..=32,
            signed: bool,
            log_scale in -20.0f64..20.0,
            frac in 0.0f64..=1.0,
            mode_i in 0usize..5,
        ) {
            let mode = ALL[mode_i];
            let q = UniformQuantizer::new(bits, signed, log_scale.exp2(), 0, mode).unwrap();
            let x = q.min_value() + frac * (q.max_value() - q.min_value());
            let err = (q.fake_quantize(x) - x).abs();
            let bound = match mode {
                Rounding::NearestEven | Rounding::NearestAway => 0.5,
                _ => 1.0,
            } * q.scale * (1.0 + 1e-9);
            prop_assert!(err <= bound, "{q:?}: x = {x}, error {err} > {bound}");
            let code = q.quantize(x);
            prop_assert!((q.code_min()..=q.code_max()).contains(&code));
        }
    }

    #[test]
    fn pot_levels_count_and_exponent_range() {
        for bits in 2..=8 {
            let q = PotQuantizer::new(bits, 0, PotRounding::LogDomain).unwrap();
            let lv = q.levels();
            assert_eq!(lv.len(), (1 << bits) - 1);
            assert!(lv.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(q.exp_min(), -((1 << (bits - 1)) - 2));
            assert_eq!(lv[lv.len() - 1], 1.0);
        }
        assert_eq!(
            PotQuantizer::new(3, 1, PotRounding::LogDomain)
                .unwrap()
                .levels(),
            [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]
        );
    }

    #[test]
    fn pot_exhaustive_small_bits() {
        for bits in 2..=6 {
            for exp_max in [-7, 0, 3] {
                for rounding in POT {
                    let q = PotQuantizer::new(bits, exp_max, rounding).unwrap();
                    let levels = q.levels();
                    // Every level is representable and maps to itself.
                    for &v in &levels {
                        assert_eq!(q.fake_quantize(v), v, "{q:?} level {v}");
                    }
                    // Monotonic, idempotent, odd; saturating at both ends.
                    let top = 4.0 * levels[levels.len() - 1];
                    let mut prev = f64::NEG_INFINITY;
                    for i in -20000..=20000 {
                        let s = f64::from(i) / 20000.0;
                        let x = top * s.signum() * s.abs().powi(6);
                        let y = q.fake_quantize(x);
                        assert!(y >= prev, "{q:?} not monotonic at {x}");
                        assert!(levels.contains(&y));
                        assert_eq!(q.fake_quantize(y), y, "{q:?} idempotence at {x}");
                        assert_eq!(q.quantize(-x), -q.quantize(x), "{q:?} symmetry at {x}");
                        prev = y;
                    }
                    let big = PotCode::Pow {
                        negative: false,
                        exp: exp_max,
                    };
                    assert_eq!(q.quantize(1e300), big);
                    assert_eq!(q.quantize(f64::INFINITY), big);
                    assert_eq!(q.quantize(f64::NEG_INFINITY), -big);
                    assert_eq!(q.quantize(f64::MIN_POSITIVE / 1e10), PotCode::Zero);
                    assert_eq!(q.quantize(f64::NAN), PotCode::Zero);
                    assert_eq!(q.quantize(-0.0), PotCode::Zero);
                }
            }
        }
    }

    #[test]
    fn pot_thresholds() {
        let log = PotQuantizer::new(3, 0, PotRounding::LogDomain).unwrap(); // 0, ±¼, ±½, ±1
        let lin = PotQuantizer::new(3, 0, PotRounding::LinearNearest).unwrap();
        // Between 2^-2 and 2^-1: log threshold √2/4 ≈ 0.35355, linear threshold 0.375 (tie up).
        assert_eq!(log.fake_quantize(0.3535), 0.25);
        assert_eq!(log.fake_quantize(0.3536), 0.5);
        assert_eq!(lin.fake_quantize(0.3536), 0.25);
        assert_eq!(lin.fake_quantize(0.375), 0.5);
        assert_eq!(lin.fake_quantize(0.374_999_999), 0.25);
        // Zero thresholds: log 2^-2/√2 ≈ 0.17678, linear 2^-3 = 0.125 (tie to 2^-2).
        assert_eq!(log.fake_quantize(0.1767), 0.0);
        assert_eq!(log.fake_quantize(0.1768), 0.25);
        assert_eq!(lin.fake_quantize(0.125), 0.25);
        assert_eq!(lin.fake_quantize(0.124_999_999), 0.0);
        assert_eq!(lin.fake_quantize(-0.125), -0.25);
        // Saturation above the top level.
        assert_eq!(log.fake_quantize(1.9), 1.0);
        assert_eq!(lin.fake_quantize(-1.9), -1.0);
        assert_eq!(
            PotCode::Pow {
                negative: true,
                exp: -3
            }
            .value(),
            -0.125
        );
        assert_eq!(
            PotCode::Pow {
                negative: false,
                exp: -1074
            }
            .value(),
            f64::from_bits(1)
        );
        assert_eq!(
            PotCode::Pow {
                negative: false,
                exp: 1024
            }
            .value(),
            f64::INFINITY
        );
    }

    #[test]
    fn pot_for_max_abs_follows_inq() {
        let q = |m| PotQuantizer::for_max_abs(m, 5, PotRounding::LinearNearest).unwrap();
        assert_eq!(q(1.0).exp_max, 0); // floor(log2(4/3))
        assert_eq!(q(0.75).exp_max, 0); // 4·0.75/3 = 1
        assert_eq!(q(0.74).exp_max, -1);
        assert_eq!(q(1.49).exp_max, 0);
        assert_eq!(q(1.5).exp_max, 1);
        assert_eq!(q(1.0).exp_min(), -14);
        for m in [0.01, 0.3, 0.75, 1.0, 1.4999, 7.0] {
            assert_eq!(
                q(m).fake_quantize(m),
                q(m).levels().last().copied().unwrap(),
                "max_abs {m}"
            );
        }
    }

    #[test]
    fn pot_validation_errors() {
        let r = PotRounding::LogDomain;
        assert_eq!(
            PotQuantizer::new(1, 0, r),
            Err(QuantError::Bits {
                bits: 1,
                min: 2,
                max: 8
            })
        );
        assert!(matches!(
            PotQuantizer::new(9, 0, r),
            Err(QuantError::Bits { .. })
        ));
        assert_eq!(
            PotQuantizer::new(4, 1024, r),
            Err(QuantError::Exponent {
                exp_min: 1018,
                exp_max: 1024
            })
        );
        assert!(matches!(
            PotQuantizer::new(4, -1020, r),
            Err(QuantError::Exponent { .. })
        ));
        for m in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::MAX] {
            assert!(
                matches!(
                    PotQuantizer::for_max_abs(m, 4, r),
                    Err(QuantError::MaxAbs(_))
                ),
                "{m}"
            );
        }
        assert_eq!(
            PotQuantizer::new(4, 1024, r).unwrap_err().to_string(),
            "exponents 1018..=1024: must lie within -1022..=1023"
        );
        let bad = PotQuantizer {
            bits: 0,
            exp_max: i32::MIN,
            rounding: PotRounding::LinearNearest,
        };
        let _ = (bad.quantize(1.0), bad.quantize(1e-300), bad.levels().len());
    }
}
