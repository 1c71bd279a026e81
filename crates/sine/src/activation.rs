//! The rectified-sine activation (note §1.5). Only its name is in the paper's abstract; the three
//! variants below are the note's \[INF\] candidates, default (A) [`RectifiedSine::Clamped`].
//!
//! The layer input handed to the next MAC is exactly `sin ẑ`, so the next forward product consumes
//! the *angle* `ẑ` ([`RectifiedSine::angle`]), not `x`. Derivatives are 0 at the kinks (`z = 0`,
//! `z = π/2` for (A)), matching the ReLU convention.

use std::f64::consts::{FRAC_PI_2, PI};

use serde::{Deserialize, Serialize};

/// A rectified-sine activation `φ(z)`, `z` in radians.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum RectifiedSine {
    /// (A), default: `φ(z) = 0` for `z ≤ 0`, `sin z` on `(0, π/2)`, `1` for `z ≥ π/2`;
    /// `φ'(z) = cos z` on `(0, π/2)`, else 0. Monotone, bounded in `[0, 1]`, `≈ z` near 0.
    #[default]
    Clamped,
    /// (B): `φ(z) = max(0, sin z)` (periodic); `φ'(z) = cos z` where `sin z > 0`, else 0.
    /// Non-monotone for `z > π/2`.
    Periodic,
    /// (C): `φ(z) = sin z` for `z > 0`, else 0 (no clamp); `φ'(z) = cos z` for `z > 0`, else 0.
    /// Equal to (B) on `[0, π]`.
    Unclamped,
}

impl RectifiedSine {
    /// `φ(z)`.
    pub fn value(self, z: f64) -> f64 {
        self.angle(z).sin()
    }

    /// `φ'(z)`, 0 at the kinks.
    pub fn derivative(self, z: f64) -> f64 {
        if self.active(z) { z.cos() } else { 0.0 }
    }

    /// Whether `z` is strictly inside the region where `φ(z) = sin z` with derivative `cos z`.
    fn active(self, z: f64) -> bool {
        match self {
            RectifiedSine::Clamped => z > 0.0 && z < FRAC_PI_2,
            RectifiedSine::Periodic => z.sin() > 0.0,
            RectifiedSine::Unclamped => z > 0.0,
        }
    }

    /// The angle `ẑ` with `φ(z) = sin ẑ`, handed to the next MAC: `clamp(z, 0, π/2)` for (A);
    /// `z` where `sin z > 0`, else 0, for (B); `max(z, 0)` for (C).
    pub fn angle(self, z: f64) -> f64 {
        match self {
            RectifiedSine::Clamped => z.clamp(0.0, FRAC_PI_2),
            RectifiedSine::Periodic => {
                if z.sin() > 0.0 {
                    z
                } else {
                    0.0
                }
            }
            RectifiedSine::Unclamped => z.max(0.0),
        }
    }

    /// [`RectifiedSine::angle`] on an operand code with `frac_bits` fraction bits, for the
    /// bit-exact path: (A) clamps to `[0, round(π/2 · 2^f)]` ([`half_pi_code`](crate::format::half_pi_code));
    /// (B) keeps `k` when `(k mod round(2π · 2^f))` lies in `(0, round(π · 2^f))`; (C) is `max(k, 0)`.
    pub fn angle_code(self, k: i32, frac_bits: u32) -> i32 {
        let scale = (frac_bits as f64).exp2();
        match self {
            RectifiedSine::Clamped => k.clamp(0, crate::format::half_pi_code(frac_bits) as i32),
            RectifiedSine::Periodic => {
                let pi = (PI * scale).round_ties_even() as i64;
                let r = (k as i64).rem_euclid(2 * pi);
                if r > 0 && r < pi { k } else { 0 }
            }
            RectifiedSine::Unclamped => k.max(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_encodings_give_back_the_pixel() {
        for f in [8u32, 10, 12] {
            let q = (-(f as f64)).exp2();
            let t = InputEncoding::Arcsin.table(f);
            assert_eq!(t[0], 0);
            assert_eq!(t[255], crate::format::half_pi_code(f) as i32);
            for (p, &c) in t.iter().enumerate() {
                // |sin θ̂ − x| ≤ |cos θ| · ½ LSB ≤ ½ LSB.
                assert!(((c as f64 * q).sin() - p as f64 / 255.0).abs() <= q / 2.0 + 1e-15);
            }
            let s = InputEncoding::Scale { shift: 2 }.table(f);
            assert_eq!(s[255], 1 << (f - 2));
            assert!(s.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn variants_match_their_definitions() {
        let a = RectifiedSine::Clamped;
        assert_eq!(a.value(-0.3), 0.0);
        assert_eq!(a.value(2.0), 1.0);
        assert_eq!(a.value(0.5), 0.5f64.sin());
        assert_eq!(a.derivative(0.0), 0.0);
        assert_eq!(a.derivative(FRAC_PI_2), 0.0);
        assert_eq!(a.derivative(2.0), 0.0);
        assert_eq!(a.derivative(0.5), 0.5f64.cos());
        let b = RectifiedSine::Periodic;
        assert_eq!(b.value(4.0), 0.0);
        assert_eq!(b.value(2.0), 2.0f64.sin());
        assert_eq!(b.derivative(2.0), 2.0f64.cos());
        assert_eq!(b.value(7.0), 7.0f64.sin());
        let c = RectifiedSine::Unclamped;
        assert_eq!(c.value(4.0), 4.0f64.sin());
        assert_eq!(c.derivative(-1.0), 0.0);
        for z in [-1.0, 0.0, 0.3, 1.0, 2.0, 3.0, 3.1] {
            assert_eq!(b.value(z), c.value(z), "B = C on [0, π] at {z}");
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let h = 1e-6;
        for v in [
            RectifiedSine::Clamped,
            RectifiedSine::Periodic,
            RectifiedSine::Unclamped,
        ] {
            for n in -40..80 {
                let z = n as f64 * 0.1 + 0.05;
                let fd = (v.value(z + h) - v.value(z - h)) / (2.0 * h);
                assert!((fd - v.derivative(z)).abs() < 1e-6, "{v:?} z={z}");
            }
        }
    }

    #[test]
    fn angle_codes_follow_the_real_angle() {
        let f = 8;
        for v in [
            RectifiedSine::Clamped,
            RectifiedSine::Periodic,
            RectifiedSine::Unclamped,
        ] {
            for k in -2000..2000 {
                let z = k as f64 / 256.0;
                let want = v.angle(z);
                let got = v.angle_code(k, f) as f64 / 256.0;
                // Differs only within one LSB of a boundary (π/2, π, 2π rounded to codes).
                assert!(
                    (want - got).abs() <= 1.0 / 256.0 || near_boundary(z),
                    "{v:?} k={k}"
                );
            }
        }
    }

    fn near_boundary(z: f64) -> bool {
        // Code boundaries drift by up to ½ LSB per multiple of π.
        (1..=8).any(|m| (z.abs() - m as f64 * PI).abs() < (m + 1) as f64 / 256.0)
    }
}

/// How first-layer inputs (pixels in `[0, 1]`, which are not small angles) become operand angles
/// (note §1.2 "First-layer inputs", options \[INF\]; the paper's choice is unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum InputEncoding {
    /// (a), default: `θ0 = arcsin(x0)` precomputed offline (a 256-entry table for 8-bit pixels), so
    /// the layer input is `sin θ0 ≈ x0` to within the angle's rounding. Needs angles up to `π/2`
    /// (`max_abs_b ≥ round(π/2 · 2^f)`).
    #[default]
    Arcsin,
    /// (b): `θ0 = x0 · 2^-shift` (a wired shift), so that `sin θ0 ≈ θ0` for small `θ0`; the
    /// network absorbs the scale. Relative error of `sin θ0` vs `θ0` is `≤ θ0²/6`.
    Scale {
        /// Right shift `s` (0..=8), `θ0 = x0 · 2^-s`.
        shift: u32,
    },
}

impl InputEncoding {
    /// The angle code (`frac_bits` fraction bits) of the 8-bit pixel `p` (`x0 = p / 255`), rounded
    /// half-even.
    pub fn angle_code(self, p: u8, frac_bits: u32) -> i32 {
        let x = p as f64 / 255.0;
        let theta = match self {
            InputEncoding::Arcsin => x.asin(),
            InputEncoding::Scale { shift } => x * (-(shift as f64)).exp2(),
        };
        (theta * (frac_bits as f64).exp2()).round_ties_even() as i32
    }

    /// The 256-entry pixel → angle-code table of this encoding.
    pub fn table(self, frac_bits: u32) -> Vec<i32> {
        (0..=255u8).map(|p| self.angle_code(p, frac_bits)).collect()
    }
}
