//! The power-of-two quantizer: a sign and an exponent, so a product is a shift.

use serde::{Deserialize, Serialize};

use super::{QuantError, check_bits};

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
