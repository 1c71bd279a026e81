//! Exact integer rounding of quotients by a [`Rounding`] mode, and [`Requant`], the fixed-point
//! requantization factor.

use serde::{Deserialize, Serialize};

use crate::quant::Rounding;

/// `num / den` rounded to an integer by `mode`, exactly (`den > 0`).
pub(super) fn div_round(num: i64, den: i64, mode: Rounding) -> i64 {
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
