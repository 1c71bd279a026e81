//! aihwkit-style per-pulse step models on a normalized weight `w ∈ [b_min, b_max]` (note §4.2,
//! aihwkit `rpu_pulsed_device.cpp` `populate`, `rpu_linearstep_device.cpp`,
//! `rpu_powstep_device.cpp`, `rpu_expstep_device.cpp`).
//!
//! Each pulse changes `w` by a model-specific step times `(1 + dw_min_std·ξ)` (multiplicative
//! cycle-to-cycle noise, one draw per pulse) and clips to the device's bounds:
//!
//! | model | up step (`n > 0`) | down step (`n < 0`) |
//! |---|---|---|
//! | ConstantStep | `s⁺` | `s⁻` |
//! | LinearStep(γ⁺, γ⁻) | `s⁺·(1 − γ⁺·w/b_max)` | `s⁻·(1 − γ⁻·w/b_min)` |
//! | SoftBounds | LinearStep with γ⁺ = γ⁻ = 1 | |
//! | PowStep(γ) | `s⁺·((b_max − w)/(b_max − b_min))^{γ⁺}` | `s⁻·((w − b_min)/(b_max − b_min))^{γ⁻}` |
//! | ExpStep(a, b, A⁺, A⁻, γ⁺, γ⁻) | `s⁺·max(1 − A⁺·e^{γ⁺z}, 0)` | `s⁻·max(1 − A⁻·e^{−γ⁻z}, 0)`, `z = 2a·w/(b_max − b_min) + b` |
//!
//! Device-to-device variation (drawn once at build, aihwkit `PulsedRPUDevice::populate`):
//! `b_max = w_max(1 + w_max_dtod·ξ)`, `b_min = w_min(1 + w_min_dtod·ξ)`,
//! `gain = 1 + dw_min_dtod·ξ`, `r = up_down_dtod·ξ`, `s⁺ = |up_bias + gain + r|·dw_min`,
//! `s⁻ = |down_bias + gain − r|·dw_min` with `up_bias = min(up_down, 0)`,
//! `down_bias = −max(up_down, 0)`; bounds are made consistent (`b_max ≥ 0 ≥ b_min`), as aihwkit's
//! default `enforce_consistency = true` does.
//!
//! The conductance is the linear map of `w` onto `[g_off_s, g_on_s]` through the *nominal*
//! bounds: `G = g_off_s + (w − w_min)/(w_max − w_min)·(g_on_s − g_off_s)`, so a device whose
//! drawn bounds are narrower than nominal also has a narrower conductance range.

use nacsim_core::Stream;
use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::{Normals, PulseResponse, WritePulses, check_conductance_range, check_sigma};

/// Which step model, with its model-specific parameters (aihwkit names in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum StepModel {
    /// Constant step (aihwkit `ConstantStepDevice`).
    ConstantStep,
    /// Step falling linearly with `w` (aihwkit `LinearStepDevice`, multiplicative noise).
    /// With a (drawn) γ above 1 the step changes sign before the bound, so potentiation
    /// lowers `w` near `b_max`, as in aihwkit; keep γ ≤ 1 for a monotone device.
    LinearStep {
        /// Slope decrease towards `b_max`, `γ⁺` (aihwkit `ls_decrease_up`) (≥ 0).
        gamma_up: f64,
        /// Slope decrease towards `b_min`, `γ⁻` (aihwkit `ls_decrease_down`) (≥ 0).
        gamma_down: f64,
        /// Device-to-device σ of `γ⁺` (absolute) (aihwkit `ls_decrease_up_dtod`).
        gamma_up_dtod: f64,
        /// Device-to-device σ of `γ⁻` (absolute) (aihwkit `ls_decrease_down_dtod`).
        gamma_down_dtod: f64,
    },
    /// Soft bounds: the step vanishes at each bound (aihwkit `SoftBoundsDevice`, LinearStep
    /// with γ = 1).
    SoftBounds,
    /// Power-law step (aihwkit `PowStepDevice`).
    PowStep {
        /// Exponent γ (aihwkit `pow_gamma`) (≥ 0).
        gamma: f64,
        /// Device-to-device relative σ of γ (aihwkit `pow_gamma_dtod`).
        gamma_dtod: f64,
        /// Up/down asymmetry of γ (aihwkit `pow_up_down`).
        up_down: f64,
        /// Device-to-device σ of the asymmetry (aihwkit `pow_up_down_dtod`).
        up_down_dtod: f64,
    },
    /// Exponential step (aihwkit `ExpStepDevice`).
    ExpStep {
        /// `a`, the scale of `z` (aihwkit `es_a`).
        a: f64,
        /// `b` (aihwkit `es_b`).
        b: f64,
        /// `A⁺` (aihwkit `A_up`).
        a_up: f64,
        /// `A⁻` (aihwkit `A_down`).
        a_down: f64,
        /// `γ⁺` (aihwkit `gamma_up`).
        gamma_up: f64,
        /// `γ⁻` (aihwkit `gamma_down`).
        gamma_down: f64,
    },
}

/// A step-model device (aihwkit `PulsedDevice` parameters). Defaults are aihwkit's
/// `PulsedDevice` defaults (note §4.2): `dw_min 0.001, dw_min_dtod 0.3, dw_min_std 0.3,
/// w_max/w_min ±0.6, w_*_dtod 0.3, up_down 0, up_down_dtod 0.01`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDeviceConfig {
    /// The step model (required).
    pub model: StepModel,
    /// Highest conductance, mapped from `w_max` (siemens, required).
    pub g_on_s: f64,
    /// Lowest conductance, mapped from `w_min` (siemens, required).
    pub g_off_s: f64,
    /// Mean step `dw_min` at `w = 0` (default 0.001; > 0).
    #[serde(default = "d_dw_min")]
    pub dw_min: f64,
    /// Device-to-device relative σ of the step (default 0.3).
    #[serde(default = "d_03")]
    pub dw_min_dtod: f64,
    /// Cycle-to-cycle relative σ per pulse (default 0.3).
    #[serde(default = "d_03")]
    pub dw_min_std: f64,
    /// Up/down asymmetry (default 0).
    #[serde(default)]
    pub up_down: f64,
    /// Device-to-device σ of the asymmetry (default 0.01).
    #[serde(default = "d_001")]
    pub up_down_dtod: f64,
    /// Nominal upper weight bound (default 0.6; ≥ 0).
    #[serde(default = "d_06")]
    pub w_max: f64,
    /// Nominal lower weight bound (default −0.6; ≤ 0, < w_max).
    #[serde(default = "d_m06")]
    pub w_min: f64,
    /// Device-to-device relative σ of `w_max` (default 0.3).
    #[serde(default = "d_03")]
    pub w_max_dtod: f64,
    /// Device-to-device relative σ of `w_min` (default 0.3).
    #[serde(default = "d_03")]
    pub w_min_dtod: f64,
    /// Write pulses and threshold (default [`WritePulses::default`]).
    #[serde(default)]
    pub pulses: WritePulses,
}

fn d_dw_min() -> f64 {
    0.001
}
fn d_03() -> f64 {
    0.3
}
fn d_001() -> f64 {
    0.01
}
fn d_06() -> f64 {
    0.6
}
fn d_m06() -> f64 {
    -0.6
}

impl StepDeviceConfig {
    /// `model` between `g_off_s` and `g_on_s` with every other field at aihwkit's default.
    pub fn new(model: StepModel, g_on_s: f64, g_off_s: f64) -> Self {
        StepDeviceConfig {
            model,
            g_on_s,
            g_off_s,
            dw_min: d_dw_min(),
            dw_min_dtod: d_03(),
            dw_min_std: d_03(),
            up_down: 0.0,
            up_down_dtod: d_001(),
            w_max: d_06(),
            w_min: d_m06(),
            w_max_dtod: d_03(),
            w_min_dtod: d_03(),
            pulses: WritePulses::default(),
        }
    }

    /// The same device with every variation (d2d and c2c) set to zero.
    #[must_use]
    pub fn ideal(mut self) -> Self {
        self.dw_min_dtod = 0.0;
        self.dw_min_std = 0.0;
        self.up_down_dtod = 0.0;
        self.w_max_dtod = 0.0;
        self.w_min_dtod = 0.0;
        match &mut self.model {
            StepModel::LinearStep {
                gamma_up_dtod,
                gamma_down_dtod,
                ..
            } => {
                *gamma_up_dtod = 0.0;
                *gamma_down_dtod = 0.0;
            }
            StepModel::PowStep {
                gamma_dtod,
                up_down_dtod,
                ..
            } => {
                *gamma_dtod = 0.0;
                *up_down_dtod = 0.0;
            }
            _ => {}
        }
        self
    }

    /// Nominal number of states `(w_max − w_min)/dw_min`, rounded (aihwkit's granularity; note
    /// §4.1 "Finite levels"). ConstantStep `dw_min = 0.001` over ±0.6 gives 1200.
    pub fn nominal_states(&self) -> u32 {
        ((self.w_max - self.w_min) / self.dw_min).round() as u32
    }

    /// Device `device_index`, drawing its d2d parameters from `d2d` at indices
    /// `8·device_index + k` (k = 0 `w_max`, 1 `w_min`, 2 gain, 3 up/down, 4–7 model γ's).
    ///
    /// # Errors
    ///
    /// Every broken rule of [`Validate::validate`].
    pub fn build(&self, d2d: &Stream, device_index: u64) -> Result<StepDevice, Vec<FieldError>> {
        self.validate()?;
        let z = |k: u64| d2d.normal(8 * device_index + k, 0.0, 1.0);
        let mut b_max = self.w_max * (1.0 + self.w_max_dtod * z(0));
        let mut b_min = self.w_min * (1.0 + self.w_min_dtod * z(1));
        if b_min > b_max {
            std::mem::swap(&mut b_min, &mut b_max);
        }
        b_max = b_max.abs();
        b_min = -b_min.abs();
        let up_bias = self.up_down.min(0.0);
        let down_bias = -self.up_down.max(0.0);
        let gain = 1.0 + self.dw_min_dtod * z(2);
        let r = self.up_down_dtod * z(3);
        let scale_up = ((up_bias + gain + r) * self.dw_min).abs();
        let scale_down = ((down_bias + gain - r) * self.dw_min).abs();
        let kind = match self.model {
            StepModel::ConstantStep => Kind::Linear {
                slope_up: 0.0,
                slope_down: 0.0,
            },
            StepModel::SoftBounds => Kind::linear(1.0, 1.0, b_max, b_min),
            StepModel::LinearStep {
                gamma_up,
                gamma_down,
                gamma_up_dtod,
                gamma_down_dtod,
            } => Kind::linear(
                (gamma_up + gamma_up_dtod * z(4)).abs(),
                (gamma_down + gamma_down_dtod * z(5)).abs(),
                b_max,
                b_min,
            ),
            StepModel::PowStep {
                gamma,
                gamma_dtod,
                up_down,
                up_down_dtod,
            } => {
                let g = 1.0 + gamma_dtod * z(6);
                let r = up_down_dtod * z(7);
                Kind::Pow {
                    gamma_up: ((up_down.min(0.0) + g + r) * gamma).abs(),
                    gamma_down: ((-up_down.max(0.0) + g - r) * gamma).abs(),
                }
            }
            StepModel::ExpStep {
                a,
                b,
                a_up,
                a_down,
                gamma_up,
                gamma_down,
            } => Kind::Exp {
                a,
                b,
                a_up,
                a_down,
                gamma_up,
                gamma_down,
            },
        };
        let span = self.w_max - self.w_min;
        Ok(StepDevice {
            b_max,
            b_min,
            scale_up,
            scale_down,
            dw_min_std: self.dw_min_std,
            kind,
            w_min_nominal: self.w_min,
            g_per_w_s: (self.g_on_s - self.g_off_s) / span,
            g_off_s: self.g_off_s,
            states: self.nominal_states(),
        })
    }
}

impl Validate for StepDeviceConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        check_conductance_range(&mut c, self.g_on_s, self.g_off_s);
        c.check(
            self.dw_min.is_finite() && self.dw_min > 0.0,
            "dw_min",
            self.dw_min,
            "must be a positive step size",
        );
        for (n, v) in [
            ("dw_min_dtod", self.dw_min_dtod),
            ("dw_min_std", self.dw_min_std),
            ("up_down_dtod", self.up_down_dtod),
            ("w_max_dtod", self.w_max_dtod),
            ("w_min_dtod", self.w_min_dtod),
        ] {
            check_sigma(&mut c, n, v);
        }
        c.check(
            self.up_down.is_finite(),
            "up_down",
            self.up_down,
            "must be finite",
        );
        let ok = c.check(
            self.w_max.is_finite() && self.w_max > 0.0,
            "w_max",
            self.w_max,
            "must be positive (aihwkit: [w_min, w_max] must contain 0)",
        ) & c.check(
            self.w_min.is_finite() && self.w_min < 0.0,
            "w_min",
            self.w_min,
            "must be negative (aihwkit: [w_min, w_max] must contain 0)",
        );
        if ok && self.dw_min.is_finite() && self.dw_min > 0.0 {
            c.check(
                (self.w_max - self.w_min) / self.dw_min <= 1e9,
                "dw_min",
                self.dw_min,
                "gives more than 1e9 states; raise dw_min",
            );
        }
        match self.model {
            StepModel::ConstantStep | StepModel::SoftBounds => {}
            StepModel::LinearStep {
                gamma_up,
                gamma_down,
                gamma_up_dtod,
                gamma_down_dtod,
            } => {
                for (n, v) in [
                    ("model.gamma_up", gamma_up),
                    ("model.gamma_down", gamma_down),
                ] {
                    c.check(v.is_finite() && v >= 0.0, n, v, "must be finite and ≥ 0");
                }
                check_sigma(&mut c, "model.gamma_up_dtod", gamma_up_dtod);
                check_sigma(&mut c, "model.gamma_down_dtod", gamma_down_dtod);
            }
            StepModel::PowStep {
                gamma,
                gamma_dtod,
                up_down,
                up_down_dtod,
            } => {
                c.check(
                    gamma.is_finite() && gamma >= 0.0,
                    "model.gamma",
                    gamma,
                    "must be finite and ≥ 0",
                );
                c.check(
                    up_down.is_finite(),
                    "model.up_down",
                    up_down,
                    "must be finite",
                );
                check_sigma(&mut c, "model.gamma_dtod", gamma_dtod);
                check_sigma(&mut c, "model.up_down_dtod", up_down_dtod);
            }
            StepModel::ExpStep {
                a,
                b,
                a_up,
                a_down,
                gamma_up,
                gamma_down,
            } => {
                for (n, v) in [
                    ("model.a", a),
                    ("model.b", b),
                    ("model.a_up", a_up),
                    ("model.a_down", a_down),
                    ("model.gamma_up", gamma_up),
                    ("model.gamma_down", gamma_down),
                ] {
                    c.check(v.is_finite(), n, v, "must be finite");
                }
            }
        }
        c.nested("pulses", &self.pulses);
        c.finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// `step = scale·(1 + slope_dir·w)` per direction (ConstantStep: slopes 0).
    Linear {
        slope_up: f64,
        slope_down: f64,
    },
    Pow {
        gamma_up: f64,
        gamma_down: f64,
    },
    Exp {
        a: f64,
        b: f64,
        a_up: f64,
        a_down: f64,
        gamma_up: f64,
        gamma_down: f64,
    },
}

impl Kind {
    /// LinearStep slopes relative to the device's own bounds (aihwkit `ls_mean_bound_reference
    /// = false`): the up step is `s⁺(1 − γ⁺ w/b_max)`.
    fn linear(g_up: f64, g_down: f64, b_max: f64, b_min: f64) -> Kind {
        Kind::Linear {
            slope_up: if b_max != 0.0 { -g_up / b_max } else { 0.0 },
            slope_down: if b_min != 0.0 { -g_down / b_min } else { 0.0 },
        }
    }
}

/// One step-model device (d2d drawn).
#[derive(Debug, Clone, PartialEq)]
pub struct StepDevice {
    /// Upper weight bound of this device.
    pub b_max: f64,
    /// Lower weight bound of this device.
    pub b_min: f64,
    /// Up step `s⁺` at `w = 0`.
    pub scale_up: f64,
    /// Down step `s⁻` at `w = 0`.
    pub scale_down: f64,
    /// Cycle-to-cycle relative σ per pulse.
    pub dw_min_std: f64,
    kind: Kind,
    w_min_nominal: f64,
    g_per_w_s: f64,
    g_off_s: f64,
    states: u32,
}

impl StepDevice {
    /// Conductance (siemens) of weight `w`.
    pub fn conductance_of(&self, w: f64) -> f64 {
        self.g_off_s + (w - self.w_min_nominal) * self.g_per_w_s
    }

    /// Weight of conductance `g_s`.
    pub fn weight_of(&self, g_s: f64) -> f64 {
        self.w_min_nominal + (g_s - self.g_off_s) / self.g_per_w_s
    }

    /// One pulse on weight `w` (`up`: potentiation), with the noise factor `1 + σξ`.
    pub fn pulse_w(&self, w: f64, up: bool, noise: &mut dyn Normals) -> f64 {
        let factor = if self.dw_min_std != 0.0 {
            1.0 + self.dw_min_std * noise.next_normal()
        } else {
            1.0
        };
        let w_new = match self.kind {
            Kind::Linear {
                slope_up,
                slope_down,
            } => {
                if up {
                    w + (slope_up * self.scale_up * w + self.scale_up) * factor
                } else {
                    w - (slope_down * self.scale_down * w + self.scale_down) * factor
                }
            }
            Kind::Pow {
                gamma_up,
                gamma_down,
            } => {
                let range = self.b_max - self.b_min;
                if range <= 0.0 {
                    return w;
                }
                if up {
                    w + self.scale_up * ((self.b_max - w) / range).powf(gamma_up) * factor
                } else {
                    w - self.scale_down * ((w - self.b_min) / range).powf(gamma_down) * factor
                }
            }
            Kind::Exp {
                a,
                b,
                a_up,
                a_down,
                gamma_up,
                gamma_down,
            } => {
                let range = self.b_max - self.b_min;
                if range <= 0.0 {
                    return w;
                }
                let z = 2.0 * w / range * a + b;
                if up {
                    let y = (1.0 - a_up * (gamma_up * z).exp()).max(0.0);
                    w + y * factor * self.scale_up
                } else {
                    let y = (1.0 - a_down * (-gamma_down * z).exp()).max(0.0);
                    w - y * factor * self.scale_down
                }
            }
        };
        w_new.clamp(self.b_min, self.b_max)
    }

    /// `n` pulses on weight `w` (sign of `n` = direction).
    pub fn pulses_w(&self, mut w: f64, n: i32, noise: &mut dyn Normals) -> f64 {
        for _ in 0..n.unsigned_abs() {
            w = self.pulse_w(w, n > 0, noise);
        }
        w
    }
}

impl PulseResponse for StepDevice {
    fn g_min_s(&self) -> f64 {
        self.conductance_of(self.b_min)
    }
    fn g_max_s(&self) -> f64 {
        self.conductance_of(self.b_max)
    }
    fn pulses_ltp(&self) -> u32 {
        self.states
    }
    fn pulses_ltd(&self) -> u32 {
        self.states
    }
    fn apply_pulses(&self, g_s: f64, n: i32, noise: &mut dyn Normals) -> f64 {
        let g_s = g_s.clamp(self.g_min_s(), self.g_max_s());
        if n == 0 {
            return g_s;
        }
        let w = self.weight_of(g_s).clamp(self.b_min, self.b_max);
        let w = self.pulses_w(w, n, noise);
        self.conductance_of(w).clamp(self.g_min_s(), self.g_max_s())
    }
}

/// SoftBounds closed form without noise (note §6 validation #11): after `n` up pulses of step
/// `dw` from `w0`, `b_max − w_n = (b_max − w0)·(1 − dw/b_max)^n`.
pub fn soft_bounds_after_up(w0: f64, n: u32, dw: f64, b_max: f64) -> f64 {
    b_max - (b_max - w0) * (1.0 - dw / b_max).powf(f64::from(n))
}

/// Up pulses SoftBounds needs from `w0` to reach `w_target < b_max` (real-valued; take the
/// ceiling for a pulse count): `ln((b_max − w_t)/(b_max − w0)) / ln(1 − dw/b_max)`.
pub fn soft_bounds_pulses_to(w0: f64, w_target: f64, dw: f64, b_max: f64) -> f64 {
    ((b_max - w_target) / (b_max - w0)).ln() / (1.0 - dw / b_max).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NoNoise, StreamNormals};
    use nacsim_core::Purpose;

    #[test]
    fn c2c_noise_has_the_configured_relative_spread() {
        let mut c = StepDeviceConfig::new(StepModel::ConstantStep, 1e-5, 1e-6).ideal();
        c.dw_min_std = 0.3;
        let d = c
            .build(&Stream::new(0, Purpose::DeviceToDevice, 0, 0), 0)
            .unwrap();
        let s = Stream::new(4, Purpose::CycleToCycle, 0, 0);
        let n = 20_000;
        let steps: Vec<f64> = (0..n)
            .map(|i| d.pulse_w(0.0, true, &mut StreamNormals::new(&s, i)) / 0.001)
            .collect();
        let mean = steps.iter().sum::<f64>() / n as f64;
        let sd = (steps.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        assert!(
            (mean - 1.0).abs() < 0.01 && (sd - 0.3).abs() < 0.01,
            "{mean} {sd}"
        );
    }

    #[test]
    fn d2d_draws_follow_aihwkit_populate() {
        let mut c = StepDeviceConfig::new(StepModel::ConstantStep, 1e-5, 1e-6).ideal();
        c.up_down = 0.2; // down steps are (1 − 0.2)·dw_min, up steps dw_min
        let d = c
            .build(&Stream::new(0, Purpose::DeviceToDevice, 0, 0), 0)
            .unwrap();
        assert!((d.scale_up - 0.001).abs() < 1e-15 && (d.scale_down - 0.0008).abs() < 1e-15);
        c.w_max_dtod = 0.3;
        c.dw_min_dtod = 0.3;
        let s = Stream::new(8, Purpose::DeviceToDevice, 0, 0);
        let devs: Vec<StepDevice> = (0..2000).map(|i| c.build(&s, i).unwrap()).collect();
        let mean_bmax = devs.iter().map(|d| d.b_max).sum::<f64>() / 2000.0;
        assert!((mean_bmax - 0.6).abs() < 0.02, "{mean_bmax}");
        assert!(
            devs.iter()
                .all(|d| d.b_max >= 0.0 && d.b_min <= 0.0 && d.scale_up >= 0.0)
        );
        assert_ne!(devs[0], devs[1]);
        assert_eq!(devs[5], c.build(&s, 5).unwrap());
    }

    #[test]
    fn soft_bounds_pulse_count_inverts_the_closed_form() {
        let n = soft_bounds_pulses_to(-0.6, 0.3, 0.001, 0.6);
        let w = soft_bounds_after_up(-0.6, n.ceil() as u32, 0.001, 0.6);
        let w_before = soft_bounds_after_up(-0.6, n.ceil() as u32 - 1, 0.001, 0.6);
        assert!(w >= 0.3 && w_before < 0.3, "{n}: {w_before} {w}");
        // PowStep with γ = 0 is a constant step.
        let d = StepDeviceConfig::new(
            StepModel::PowStep {
                gamma: 0.0,
                gamma_dtod: 0.0,
                up_down: 0.0,
                up_down_dtod: 0.0,
            },
            1e-5,
            1e-6,
        )
        .ideal()
        .build(&Stream::new(0, Purpose::DeviceToDevice, 0, 0), 0)
        .unwrap();
        assert!((d.pulses_w(0.0, 10, &mut NoNoise) - 0.01).abs() < 1e-12);
    }
}
