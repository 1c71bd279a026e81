//! A measured look-up-table device: conductance per pulse index for LTP and LTD (NeuroSim
//! `MeasuredDevice`, `formula.cpp` `MeasuredLTP`/`InvMeasuredLTP`; CrossSim V2.0 LUTs; note
//! §5 "accept measured LUT devices").
//!
//! The state is a real-valued pulse position on the curve of the current direction, found by
//! inverse linear interpolation; `n` pulses move it by `n` and the conductance is read back by
//! linear interpolation, `G(x) = (T[⌈x⌉] − T[⌊x⌋])·(x − ⌊x⌋) + T[⌊x⌋]` as in NeuroSim. At a
//! table point the position is exactly its index, so `n` pulses from `T[k]` give exactly
//! `T[k + n]` (clamped to the table's ends).

use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::{Normals, PulseResponse, WritePulses, check_sigma};

/// A measured device as two conductance lists.
///
/// RON: `(ltp_g_s: [1e-6, 2e-6, 2.8e-6], ltd_g_s: [2.8e-6, 1.5e-6, 1e-6])`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LutConfig {
    /// Conductance (siemens) after 0, 1, 2, … potentiation pulses from the low end; strictly
    /// increasing, at least 2 points (required).
    pub ltp_g_s: Vec<f64>,
    /// Conductance (siemens) after 0, 1, 2, … depression pulses from the high end; strictly
    /// decreasing, at least 2 points (required).
    pub ltd_g_s: Vec<f64>,
    /// Cycle-to-cycle σ as a fraction of the conductance range, NeuroSim style
    /// `N(0, σ·(Gmax − Gmin))·sqrt(|n|)` per write (default 0).
    #[serde(default)]
    pub c2c_sigma: f64,
    /// Write pulses and threshold (default [`WritePulses::default`]).
    #[serde(default)]
    pub pulses: WritePulses,
}

fn check_table(c: &mut Checks, name: &str, t: &[f64], increasing: bool) {
    if !c.check(
        t.len() >= 2,
        &format!("{name}.len"),
        t.len(),
        "needs at least 2 conductances (pulse 0 and pulse 1)",
    ) {
        return;
    }
    for (i, &g) in t.iter().enumerate() {
        c.check(
            g.is_finite() && g >= 0.0,
            &format!("{name}[{i}]"),
            g,
            "must be a finite conductance ≥ 0 in siemens",
        );
    }
    for i in 1..t.len() {
        let ok = if increasing {
            t[i] > t[i - 1]
        } else {
            t[i] < t[i - 1]
        };
        if !ok {
            c.push(FieldError::new(
                format!("{name}[{i}]"),
                t[i],
                format!(
                    "must be strictly {} than the previous point {} (the curve must be monotone)",
                    if increasing { "greater" } else { "less" },
                    t[i - 1]
                ),
            ));
            break;
        }
    }
}

impl Validate for LutConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        check_table(&mut c, "ltp_g_s", &self.ltp_g_s, true);
        check_table(&mut c, "ltd_g_s", &self.ltd_g_s, false);
        check_sigma(&mut c, "c2c_sigma", self.c2c_sigma);
        c.nested("pulses", &self.pulses);
        c.finish()
    }
}

impl LutConfig {
    /// The device.
    ///
    /// # Errors
    ///
    /// Every broken rule of [`Validate::validate`].
    pub fn build(&self) -> Result<LutDevice, Vec<FieldError>> {
        self.validate()?;
        Ok(LutDevice::from_tables(
            self.ltp_g_s.clone(),
            self.ltd_g_s.clone(),
            self.c2c_sigma,
        ))
    }
}

/// A look-up-table device.
#[derive(Debug, Clone, PartialEq)]
pub struct LutDevice {
    ltp: Vec<f64>,
    ltd: Vec<f64>,
    g_min_s: f64,
    g_max_s: f64,
    sigma_c2c_s: f64,
}

/// Position of `g` on a strictly increasing table, clamped to `[0, len − 1]`; exactly `k` when
/// `g == t[k]`.
fn position_increasing(t: &[f64], g: f64) -> f64 {
    let last = t.len() - 1;
    let i = t.partition_point(|&v| v <= g);
    if i == 0 {
        return 0.0;
    }
    let i = i - 1;
    if i >= last {
        return last as f64;
    }
    i as f64 + (g - t[i]) / (t[i + 1] - t[i])
}

/// Position of `g` on a strictly decreasing table, clamped; exactly `k` when `g == t[k]`.
fn position_decreasing(t: &[f64], g: f64) -> f64 {
    let last = t.len() - 1;
    let i = t.partition_point(|&v| v >= g);
    if i == 0 {
        return 0.0;
    }
    let i = i - 1;
    if i >= last {
        return last as f64;
    }
    i as f64 + (t[i] - g) / (t[i] - t[i + 1])
}

/// `T(x)` by linear interpolation, `x` clamped to the table (NeuroSim `MeasuredLTP`).
fn interpolate(t: &[f64], x: f64) -> f64 {
    let x = x.clamp(0.0, (t.len() - 1) as f64);
    let x1 = x.floor();
    let x2 = x.ceil();
    let (i1, i2) = (x1 as usize, x2 as usize);
    (t[i2] - t[i1]) * (x - x1) + t[i1]
}

impl LutDevice {
    /// A device from validated tables (see [`LutConfig`] for the rules) and a c2c σ as a
    /// fraction of the range.
    ///
    /// # Panics
    ///
    /// If either table has fewer than 2 points (validate with [`LutConfig`] first).
    pub fn from_tables(ltp: Vec<f64>, ltd: Vec<f64>, c2c_sigma: f64) -> Self {
        assert!(
            ltp.len() >= 2 && ltd.len() >= 2,
            "LUT tables need ≥ 2 points"
        );
        let g_min_s = ltp[0].min(ltd[ltd.len() - 1]);
        let g_max_s = ltp[ltp.len() - 1].max(ltd[0]);
        LutDevice {
            sigma_c2c_s: c2c_sigma * (g_max_s - g_min_s),
            ltp,
            ltd,
            g_min_s,
            g_max_s,
        }
    }

    /// The LTP table (siemens per pulse index).
    pub fn ltp_g_s(&self) -> &[f64] {
        &self.ltp
    }

    /// The LTD table (siemens per pulse index).
    pub fn ltd_g_s(&self) -> &[f64] {
        &self.ltd
    }
}

impl PulseResponse for LutDevice {
    fn g_min_s(&self) -> f64 {
        self.g_min_s
    }
    fn g_max_s(&self) -> f64 {
        self.g_max_s
    }
    fn pulses_ltp(&self) -> u32 {
        (self.ltp.len() - 1) as u32
    }
    fn pulses_ltd(&self) -> u32 {
        (self.ltd.len() - 1) as u32
    }
    /// Potentiation never lowers `G` and depression never raises it (a conductance beyond a
    /// curve's end stays where it is), before noise.
    fn apply_pulses(&self, g_s: f64, n: i32, noise: &mut dyn Normals) -> f64 {
        let g_s = g_s.clamp(self.g_min_s, self.g_max_s);
        if n == 0 {
            return g_s;
        }
        let mut g = if n > 0 {
            let x = position_increasing(&self.ltp, g_s);
            interpolate(&self.ltp, x + f64::from(n)).max(g_s)
        } else {
            let x = position_decreasing(&self.ltd, g_s);
            interpolate(&self.ltd, x + f64::from(n.unsigned_abs())).min(g_s)
        };
        if self.sigma_c2c_s != 0.0 {
            g += noise.next_normal() * self.sigma_c2c_s * f64::from(n.unsigned_abs()).sqrt();
        }
        g.clamp(self.g_min_s, self.g_max_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoNoise;

    #[test]
    fn table_points_map_exactly_and_clamp_at_the_ends() {
        let d = LutConfig {
            ltp_g_s: vec![1.0, 2.0, 4.0, 7.0],
            ltd_g_s: vec![7.0, 3.0, 1.0],
            c2c_sigma: 0.0,
            pulses: WritePulses::default(),
        }
        .build()
        .unwrap();
        assert_eq!(d.apply_pulses(2.0, 1, &mut NoNoise), 4.0);
        assert_eq!(d.apply_pulses(1.0, 10, &mut NoNoise), 7.0);
        assert_eq!(d.apply_pulses(7.0, -1, &mut NoNoise), 3.0);
        assert_eq!(d.apply_pulses(3.0, -5, &mut NoNoise), 1.0);
        // Between points: 3.0 is halfway from pulse 1 to 2 on LTP → +1 pulse is 5.5.
        assert_eq!(d.apply_pulses(3.0, 1, &mut NoNoise), 5.5);
        assert_eq!((d.pulses_ltp(), d.pulses_ltd()), (3, 2));
    }

    #[test]
    fn non_monotone_tables_are_rejected_with_the_index() {
        let errs = LutConfig {
            ltp_g_s: vec![1.0, 2.0, 2.0],
            ltd_g_s: vec![1.0],
            c2c_sigma: -0.1,
            pulses: WritePulses::default(),
        }
        .validate()
        .unwrap_err();
        let s: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            s.iter()
                .any(|e| e.starts_with("ltp_g_s[2] = 2: must be strictly greater")),
            "{s:?}"
        );
        assert!(s.iter().any(|e| e.starts_with("ltd_g_s.len = 1")), "{s:?}");
        assert!(s.iter().any(|e| e.starts_with("c2c_sigma = -0.1")), "{s:?}");
    }
}
