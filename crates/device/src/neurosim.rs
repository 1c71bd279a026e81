//! NeuroSim's exponential LTP/LTD device and its write rule (note §4.2, MLP_NeuroSim_V3.0
//! `formula.cpp`, `Cell.cpp` `RealDevice`; manual Eq. 8.1–8.3).
//!
//! The conductance after `P` pulses from `Gmin` is
//!
//! ```text
//! G(P) = B·(1 − e^{−P/A}) + Gmin,    B = (Gmax − Gmin) / (1 − e^{−Pmax/A}),    A = normA(NL)·Pmax
//! ```
//!
//! for LTP (`A > 0`, concave) and LTD (`A < 0`, steep near `Gmax`); `P` counts from the `Gmin`
//! end in both curves, and a depression pulse moves `P` down by one on the LTD curve.
//!
//! # The NL label → normA map
//!
//! NeuroSim reads `normA` from a 900-entry table (`getParamA`, labels 0.01…9.00 in steps of
//! 0.01). The table's generating rule is not in the source; we derived it and check it against
//! the table (note §6 validation #1): on the normalized curve
//! `g(x) = (1 − e^{−x/a}) / (1 − e^{−1/a})`, `x ∈ [0, 1]`, the largest vertical deviation from the
//! straight line is `NL · 0.07·√2` (equivalently, the largest perpendicular distance to the
//! diagonal is `0.07·NL`). Solving that for `a` and rounding to 6 decimals reproduces every
//! table value we compared digit for digit: 26 labels, among them the six validation points
//! and the five labels (of all 900) whose value lies closest to a 6-decimal rounding boundary.
//! [`NlLookup::NeuroSimTable`] also reproduces NeuroSim's index truncation
//! `(int)(|NL|·100) − 1`, under which 53 of the 900 labels (0.29, 0.57, 0.58, 1.13, …) read the
//! neighbouring entry; [`NlLookup::Exact`] solves for the label as given.

use nacsim_core::Stream;
use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::{Normals, PulseResponse, WritePulses, check_conductance_range, check_sigma};

/// Largest deviation of the normalized curve from the line per unit of NL label: `0.07·√2`
/// (derived, see the module docs).
pub const NL_DEVIATION_PER_LABEL: f64 = 0.07 * std::f64::consts::SQRT_2;

/// Smallest and largest NL label magnitude in NeuroSim's table (`formula.cpp` `getParamA`).
pub const NL_TABLE_RANGE: (f64, f64) = (0.01, 9.0);

/// How an NL label becomes `normA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum NlLookup {
    /// NeuroSim parity (the default): truncate `|NL|·100` to an integer index as `getParamA`
    /// does (so 0.29 reads the 0.28 entry), take that label's `normA` rounded to 6 decimals as
    /// printed in the table. Needs `0.01 ≤ |NL| < 9.01`.
    #[default]
    NeuroSimTable,
    /// Solve the defining equation for the label as given (no truncation, no rounding); any
    /// `0 < |NL| ≤ 10`.
    Exact,
}

/// Largest deviation `max_x (g(x) − x)` of the normalized curve with normalized `A = a > 0`.
pub fn max_deviation(a: f64) -> f64 {
    // g'(x*) = 1  ⇔  e^{−x*/a} = a·(1 − e^{−1/a})
    let e1 = -(-1.0 / a).exp_m1();
    let x = -a * (a * e1).ln();
    let g = -(-x / a).exp_m1() / e1;
    g - x
}

/// `a > 0` with `max_deviation(a) = target`, by bisection on `ln a` over `[1e-3, 1e8]` to full
/// double precision (`max_deviation` falls strictly with `a`).
fn solve_norm_a(target: f64) -> f64 {
    let (mut lo, mut hi) = (1e-3f64.ln(), 1e8f64.ln());
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if max_deviation(mid.exp()) > target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-15 {
            break;
        }
    }
    (0.5 * (lo + hi)).exp()
}

/// An NL label outside what a lookup accepts.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{}", nl_message(*nl, *lookup))]
pub struct NlOutOfRange {
    /// The label.
    pub nl: f64,
    /// The lookup that refused it.
    pub lookup: NlLookup,
}

fn nl_message(nl: f64, lookup: NlLookup) -> String {
    match lookup {
        NlLookup::NeuroSimTable => format!(
            "NL label {nl} is outside NeuroSim's table: |NL| must be in 0.01..9.01 (or 0 for a linear device)"
        ),
        NlLookup::Exact => {
            format!("NL label {nl} is outside 0 < |NL| <= 10 (0 means a linear device)")
        }
    }
}

/// Normalized `A` for NL label `nl` (sign of `nl` = sign of `A`): `A = norm_a(NL)·Pmax`.
///
/// # Errors
///
/// [`NlOutOfRange`] for `nl = 0` (a linear device has no `A`), a non-finite `nl`, or a label
/// outside the lookup's range.
pub fn norm_a(nl: f64, lookup: NlLookup) -> Result<f64, NlOutOfRange> {
    let err = NlOutOfRange { nl, lookup };
    if !nl.is_finite() || nl == 0.0 {
        return Err(err);
    }
    let sign = if nl > 0.0 { 1.0 } else { -1.0 };
    let magnitude = match lookup {
        NlLookup::NeuroSimTable => {
            // getParamA: int index = (int)(fabs(NL) * 100) - 1;
            let index = (nl.abs() * 100.0) as i64 - 1;
            if !(0..900).contains(&index) {
                return Err(err);
            }
            let label = (index + 1) as f64 / 100.0;
            (solve_norm_a(label * NL_DEVIATION_PER_LABEL) * 1e6).round() / 1e6
        }
        NlLookup::Exact => {
            if nl.abs() > 10.0 {
                return Err(err);
            }
            solve_norm_a(nl.abs() * NL_DEVIATION_PER_LABEL)
        }
    };
    Ok(sign * magnitude)
}

/// How a normalized weight change becomes a pulse count (note §4.2 "Write").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum PulseRounding {
    /// NeuroSim parity (the default): `truncate()` rounds `|Δw_n|·Pmax` half-up, divides back by
    /// `Pmax`, and `numPulse = Δw_n'·Pmax` is converted to `int` by truncation, so a count whose
    /// quotient does not round-trip (7 of 97 → 6.999…) loses one pulse: for `Pmax = 97` the
    /// counts 7, 14, 25, 28, 31, 50, 53, 56, 59, 62 become one less; for `Pmax = 100`, 29, 57, 58.
    #[default]
    NeuroSim,
    /// Plain round-half-up of `|Δw_n|·Pmax` (sign restored), without the int-conversion quirk.
    HalfUp,
}

impl PulseRounding {
    /// Signed pulse count for normalized change `dw_n = ΔW/(Wmax − Wmin)` on a curve with
    /// `p_max` pulses.
    pub fn pulses(self, dw_n: f64, p_max: u32) -> i32 {
        let sign = if dw_n < 0.0 { -1.0 } else { 1.0 };
        let p = f64::from(p_max);
        let val = dw_n * p * sign;
        let r = val.trunc();
        let v = if val - r >= 0.5 { r + 1.0 } else { r };
        match self {
            PulseRounding::HalfUp => (sign * v) as i32,
            PulseRounding::NeuroSim => {
                let q = v * sign / p;
                (q * p) as i32
            }
        }
    }
}

/// One write of the parity rule: the new conductance and the pulses spent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteOutcome {
    /// Conductance after the write (siemens).
    pub g_s: f64,
    /// Signed pulse count (`> 0` LTP, `< 0` LTD); write latency is `|n_pulses|·width_s`.
    pub n_pulses: i32,
}

/// Configuration of a NeuroSim exponential device (one curve per direction).
///
/// RON: `(g_on_s: 3.8462e-8, g_off_s: 3.0769e-9, pulses_ltp: 97, pulses_ltd: 100, nl_ltp: 2.4,
/// nl_ltd: -4.88, c2c_sigma: 0.035)`; the other fields default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpDeviceConfig {
    /// Highest conductance `Gmax = Gon` in siemens (required).
    pub g_on_s: f64,
    /// Lowest conductance `Gmin = Goff` in siemens (required; `< g_on_s`).
    pub g_off_s: f64,
    /// LTP pulses from `Gmin` to `Gmax`, NeuroSim `maxNumLevelLTP` (required; ≥ 1).
    pub pulses_ltp: u32,
    /// LTD pulses from `Gmax` to `Gmin`, NeuroSim `maxNumLevelLTD` (required; ≥ 1).
    pub pulses_ltd: u32,
    /// LTP nonlinearity label `NL_LTP` (required; 0 = linear, else `0.01 ≤ |NL| ≤ 9`; positive
    /// is the usual concave curve).
    pub nl_ltp: f64,
    /// LTD nonlinearity label `NL_LTD` (required; usually negative; 0 = linear).
    pub nl_ltd: f64,
    /// Cycle-to-cycle σ as a fraction of `Gmax − Gmin`, NeuroSim `sigmaCtoC` (default 0):
    /// each write adds `N(0, σ·(Gmax−Gmin))·sqrt(|n|)`.
    #[serde(default)]
    pub c2c_sigma: f64,
    /// Device-to-device σ added to both NL labels at build, NeuroSim `sigmaDtoD` (absolute, in
    /// label units; default 0). A drawn label is clamped to `0.01 ≤ |NL| ≤ 9` keeping its sign.
    #[serde(default)]
    pub nl_d2d_sigma: f64,
    /// NL → normA lookup (default [`NlLookup::NeuroSimTable`]).
    #[serde(default)]
    pub nl_lookup: NlLookup,
    /// Δw → pulse count rounding (default [`PulseRounding::NeuroSim`]).
    #[serde(default)]
    pub rounding: PulseRounding,
    /// Write pulses and threshold (default [`WritePulses::default`]).
    #[serde(default)]
    pub pulses: WritePulses,
}

impl Validate for ExpDeviceConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        check_conductance_range(&mut c, self.g_on_s, self.g_off_s);
        for (name, p) in [
            ("pulses_ltp", self.pulses_ltp),
            ("pulses_ltd", self.pulses_ltd),
        ] {
            c.check(
                p >= 1,
                name,
                p,
                "must be at least 1 pulse (zero pulses cannot span the conductance range)",
            );
        }
        for (name, nl) in [("nl_ltp", self.nl_ltp), ("nl_ltd", self.nl_ltd)] {
            if nl != 0.0
                && let Err(e) = norm_a(nl, self.nl_lookup)
            {
                c.push(FieldError::new(name, nl, e.to_string()));
            }
        }
        check_sigma(&mut c, "c2c_sigma", self.c2c_sigma);
        check_sigma(&mut c, "nl_d2d_sigma", self.nl_d2d_sigma);
        c.nested("pulses", &self.pulses);
        c.finish()
    }
}

impl ExpDeviceConfig {
    /// The nominal device (no device-to-device draw).
    ///
    /// # Errors
    ///
    /// Every broken rule of [`Validate::validate`].
    pub fn build_nominal(&self) -> Result<ExpDevice, Vec<FieldError>> {
        self.validate()?;
        Ok(self.device_with_labels(self.nl_ltp, self.nl_ltd))
    }

    /// Device `device_index`: NL labels drawn as `NL + nl_d2d_sigma·z` with `z` from `d2d`
    /// at indices `2·device_index` (LTP) and `2·device_index + 1` (LTD).
    ///
    /// # Errors
    ///
    /// Every broken rule of [`Validate::validate`].
    pub fn build(&self, d2d: &Stream, device_index: u64) -> Result<ExpDevice, Vec<FieldError>> {
        self.validate()?;
        if self.nl_d2d_sigma == 0.0 {
            return Ok(self.device_with_labels(self.nl_ltp, self.nl_ltd));
        }
        let draw = |nl: f64, k: u64| {
            let x = d2d.normal(2 * device_index + k, nl, self.nl_d2d_sigma);
            let sign = if x < 0.0 { -1.0 } else { 1.0 };
            sign * x.abs().clamp(NL_TABLE_RANGE.0, NL_TABLE_RANGE.1)
        };
        Ok(self.device_with_labels(draw(self.nl_ltp, 0), draw(self.nl_ltd, 1)))
    }

    fn device_with_labels(&self, nl_ltp: f64, nl_ltd: f64) -> ExpDevice {
        // Labels were validated (or clamped into the table range) before.
        let a = |nl: f64, p: u32| -> Option<f64> {
            if nl == 0.0 {
                None
            } else {
                norm_a(nl, self.nl_lookup).ok().map(|n| n * f64::from(p))
            }
        };
        ExpDevice {
            g_max_s: self.g_on_s,
            g_min_s: self.g_off_s,
            pulses_ltp: self.pulses_ltp,
            pulses_ltd: self.pulses_ltd,
            a_ltp: a(nl_ltp, self.pulses_ltp),
            a_ltd: a(nl_ltd, self.pulses_ltd),
            sigma_c2c_s: self.c2c_sigma * (self.g_on_s - self.g_off_s),
            rounding: self.rounding,
        }
    }
}

/// Which of the two curves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Potentiation (conductance up).
    Ltp,
    /// Depression (conductance down).
    Ltd,
}

/// One NeuroSim exponential device (device-to-device draw done).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpDevice {
    /// `Gmax` (siemens).
    pub g_max_s: f64,
    /// `Gmin` (siemens).
    pub g_min_s: f64,
    /// `Pmax` of the LTP curve.
    pub pulses_ltp: u32,
    /// `Pmax` of the LTD curve.
    pub pulses_ltd: u32,
    /// `A` of the LTP curve in pulses (`None`: linear).
    pub a_ltp: Option<f64>,
    /// `A` of the LTD curve in pulses (`None`: linear).
    pub a_ltd: Option<f64>,
    /// Absolute cycle-to-cycle σ in siemens, `sigmaCtoC·(Gmax − Gmin)`.
    pub sigma_c2c_s: f64,
    /// Δw → pulse rounding used by [`write`](Self::write).
    pub rounding: PulseRounding,
}

impl ExpDevice {
    fn curve_params(&self, dir: Direction) -> (Option<f64>, u32) {
        match dir {
            Direction::Ltp => (self.a_ltp, self.pulses_ltp),
            Direction::Ltd => (self.a_ltd, self.pulses_ltd),
        }
    }

    /// `G(x)` on the `dir` curve at pulse position `x` (counted from `Gmin`), unclipped; the
    /// operations follow `formula.cpp` `NonlinearWeight` in order so results match bit for bit.
    pub fn conductance_at(&self, dir: Direction, x: f64) -> f64 {
        let (a, p) = self.curve_params(dir);
        let range = self.g_max_s - self.g_min_s;
        match a {
            Some(a) => {
                let b = range / (1.0 - (-f64::from(p) / a).exp());
                b * (1.0 - (-x / a).exp()) + self.g_min_s
            }
            None => x / f64::from(p) * range + self.g_min_s,
        }
    }

    /// Pulse position of conductance `g_s` on the `dir` curve (`InvNonlinearWeight`).
    pub fn position_of(&self, dir: Direction, g_s: f64) -> f64 {
        let (a, p) = self.curve_params(dir);
        let range = self.g_max_s - self.g_min_s;
        match a {
            Some(a) => {
                let b = range / (1.0 - (-f64::from(p) / a).exp());
                -a * (1.0 - (g_s - self.g_min_s) / b).ln()
            }
            None => (g_s - self.g_min_s) / range * f64::from(p),
        }
    }

    fn move_by(&self, g_s: f64, n: i32, noise: &mut dyn Normals) -> f64 {
        let dir = if n > 0 {
            Direction::Ltp
        } else {
            Direction::Ltd
        };
        let x = self.position_of(dir, g_s);
        let mut g = self.conductance_at(dir, x + f64::from(n));
        if self.sigma_c2c_s != 0.0 && n != 0 {
            g += noise.next_normal() * self.sigma_c2c_s * f64::from(n.unsigned_abs()).sqrt();
        }
        g.clamp(self.g_min_s, self.g_max_s)
    }

    /// NeuroSim's write rule (`RealDevice::Write`, note §4.2): `Δw_n = ΔW/(Wmax − Wmin)`,
    /// pulse count by [`PulseRounding`], `x_P` from the inverse curve, `G' = G(x_P + n)`,
    /// `G' += N(0, σ)·sqrt(|n|)` when `n ≠ 0`, clip to `[Gmin, Gmax]`.
    ///
    /// As in NeuroSim, `ΔW > 0` uses the LTP curve and `ΔW ≤ 0` the LTD curve (so a zero
    /// change still re-evaluates `G(x_P)` on the LTD curve, which may move `G` by an ulp).
    pub fn write(
        &self,
        g_s: f64,
        delta_w: f64,
        w_min: f64,
        w_max: f64,
        noise: &mut dyn Normals,
    ) -> WriteOutcome {
        let g_s = g_s.clamp(self.g_min_s, self.g_max_s);
        let dw_n = delta_w / (w_max - w_min);
        let p = if delta_w > 0.0 {
            self.pulses_ltp
        } else {
            self.pulses_ltd
        };
        let n = self.rounding.pulses(dw_n, p);
        let dir = if delta_w > 0.0 {
            Direction::Ltp
        } else {
            Direction::Ltd
        };
        let x = self.position_of(dir, g_s);
        let mut g = self.conductance_at(dir, x + f64::from(n));
        if self.sigma_c2c_s != 0.0 && n != 0 {
            g += noise.next_normal() * self.sigma_c2c_s * f64::from(n.unsigned_abs()).sqrt();
        }
        WriteOutcome {
            g_s: g.clamp(self.g_min_s, self.g_max_s),
            n_pulses: n,
        }
    }
}

impl PulseResponse for ExpDevice {
    fn g_min_s(&self) -> f64 {
        self.g_min_s
    }
    fn g_max_s(&self) -> f64 {
        self.g_max_s
    }
    fn pulses_ltp(&self) -> u32 {
        self.pulses_ltp
    }
    fn pulses_ltd(&self) -> u32 {
        self.pulses_ltd
    }
    fn apply_pulses(&self, g_s: f64, n: i32, noise: &mut dyn Normals) -> f64 {
        let g_s = g_s.clamp(self.g_min_s, self.g_max_s);
        if n == 0 {
            return g_s;
        }
        self.move_by(g_s, n, noise)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoNoise;

    #[test]
    fn table_quirk_hits_53_labels_and_reads_the_lower_entry() {
        let quirky: Vec<u32> = (1..=900u32)
            .filter(|&k| ((f64::from(k) / 100.0) * 100.0) as i64 != i64::from(k))
            .collect();
        assert_eq!(quirky.len(), 53);
        assert_eq!(&quirky[..4], &[29, 57, 58, 113]);
        let q = norm_a(0.29, NlLookup::NeuroSimTable).unwrap();
        let lower = norm_a(0.28, NlLookup::NeuroSimTable).unwrap();
        assert_eq!(q, lower);
        let exact = norm_a(0.29, NlLookup::Exact).unwrap();
        assert!(exact < lower, "{exact} vs {lower}");
    }

    #[test]
    fn norm_a_rejects_out_of_range_labels() {
        assert!(norm_a(0.0, NlLookup::Exact).is_err());
        assert!(norm_a(0.005, NlLookup::NeuroSimTable).is_err());
        assert!(norm_a(9.5, NlLookup::NeuroSimTable).is_err());
        assert!(norm_a(f64::NAN, NlLookup::Exact).is_err());
        assert!(norm_a(-4.88, NlLookup::NeuroSimTable).unwrap() < 0.0);
    }

    #[test]
    fn neurosim_rounding_quirk_loses_one_pulse() {
        let p = 97;
        assert_eq!(PulseRounding::HalfUp.pulses(7.0 / 97.0, p), 7);
        assert_eq!(PulseRounding::NeuroSim.pulses(7.0 / 97.0, p), 6);
        assert_eq!(PulseRounding::NeuroSim.pulses(8.0 / 97.0, p), 8);
        assert_eq!(PulseRounding::NeuroSim.pulses(-8.0 / 97.0, p), -8);
        // Half-up: 2.5 → 3, 2.49 → 2, −2.5 → −3.
        assert_eq!(PulseRounding::HalfUp.pulses(2.5 / 97.0, p), 3);
        assert_eq!(PulseRounding::HalfUp.pulses(2.49 / 97.0, p), 2);
        assert_eq!(PulseRounding::HalfUp.pulses(-2.5 / 97.0, p), -3);
    }

    #[test]
    fn linear_device_steps_evenly() {
        let cfg = ExpDeviceConfig {
            g_on_s: 5e-6,
            g_off_s: 1e-7,
            pulses_ltp: 64,
            pulses_ltd: 64,
            nl_ltp: 0.0,
            nl_ltd: 0.0,
            c2c_sigma: 0.0,
            nl_d2d_sigma: 0.0,
            nl_lookup: NlLookup::NeuroSimTable,
            rounding: PulseRounding::HalfUp,
            pulses: WritePulses::default(),
        };
        let d = cfg.build_nominal().unwrap();
        let step = (5e-6 - 1e-7) / 64.0;
        let g = d.apply_pulses(1e-7, 3, &mut NoNoise);
        assert!((g - (1e-7 + 3.0 * step)).abs() < 1e-18);
        let g2 = d.apply_pulses(g, -1, &mut NoNoise);
        assert!((g2 - (1e-7 + 2.0 * step)).abs() < 1e-18);
    }
}
