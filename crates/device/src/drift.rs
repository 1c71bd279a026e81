//! Conductance drift and relaxation after programming, for inference at a time `t` after the
//! array was programmed (issue #21; aihwkit's `drift_analog_weights(t_inference)`).
//!
//! | model | law | source |
//! |---|---|---|
//! | [`DriftModel::None`] | `G(t) = G` (the default) | — |
//! | [`DriftModel::PowerLaw`] | `G(t) = G·((t + t0)/t0)^{−ν}`, `ν = |N(ν̄, σ_ν)|` per device | power-law PCM drift (Ielmini et al., IEEE TED 2007); aihwkit's `t = t_inference + t0` convention and folded normal |
//! | [`DriftModel::Pcm`] | as `PowerLaw` with `ν̄(r)`, `σ_ν(r)` of the target `r = G_target/G_on` | aihwkit `PCMLikeNoiseModel` (Nandakumar et al., ICECS 2019), via [`PcmNoiseConfig`] |
//! | [`DriftModel::Relaxation`] | `G(t) = clip(G + m·ln t + (a·ln t + b)·ξ, G_off, G_on)` for `t ≥ 1 s` | aihwkit `ReRamCMONoiseModel` conductance decay (CMO/HfOx RRAM, Falcone et al.) |
//!
//! Every model is a pure function of the programmed conductance, the target conductance, the
//! time and one standard normal draw `ξ` per device ([`DriftModel::apply`]); the caller keys the
//! draws (the crossbar keys them by array, row and column). At `t = 0` every model returns the
//! conductance unchanged, bit for bit, and a power law with `ν = 0` does so at any time.

use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::check_sigma;
use crate::noise::PcmNoiseConfig;

/// aihwkit's PCM drift reference time `t0` in seconds (`PCMLikeNoiseModel(t_0=20.0)`).
pub const AIHWKIT_PCM_T0_S: f64 = 20.0;

/// Power-law drift with one drift-exponent distribution for every device.
///
/// RON: `PowerLaw((nu_mean: 0.06, nu_sigma: 0.02))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerLawDrift {
    /// Mean drift exponent `ν̄` (dimensionless, ≥ 0; required). aihwkit's PCM statistics give
    /// 0.049–0.1 depending on the state (see [`DriftModel::Pcm`]).
    pub nu_mean: f64,
    /// Standard deviation `σ_ν` of the exponent across devices (≥ 0; default 0). The draw is
    /// folded, `ν = |ν̄ + σ_ν·ξ|`, as aihwkit does.
    #[serde(default)]
    pub nu_sigma: f64,
    /// Reference time `t0` in seconds (> 0; default 20 s, aihwkit's PCM `t_0`): the read at
    /// `t = 0` is the programmed conductance and `G(t) = G·((t + t0)/t0)^{−ν}`.
    #[serde(default = "d_t0")]
    pub t0_s: f64,
}

fn d_t0() -> f64 {
    AIHWKIT_PCM_T0_S
}

fn d_one() -> f64 {
    1.0
}

/// aihwkit's PCM drift statistics: the exponent's mean and spread depend on the target state
/// `r = G_target/G_on` ([`PcmNoiseConfig::drift_nu_mean`], [`PcmNoiseConfig::drift_nu_std`]):
/// `ν̄ = clip(−0.0155·ln r + 0.0244, 0.049, 0.1)`, `σ_ν = clip(−0.0125·ln r − 0.0059, 0.008,
/// 0.045)` (Nandakumar et al., ICECS 2019).
///
/// RON: `Pcm(())`, `Pcm((drift_scale: 0.5))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcmDrift {
    /// Reference time `t0` in seconds (default 20 s, aihwkit).
    #[serde(default = "d_t0")]
    pub t0_s: f64,
    /// Scale of the drawn exponent, aihwkit's `drift_scale` (≥ 0; default 1).
    #[serde(default = "d_one")]
    pub drift_scale: f64,
}

impl Default for PcmDrift {
    fn default() -> Self {
        PcmDrift {
            t0_s: AIHWKIT_PCM_T0_S,
            drift_scale: 1.0,
        }
    }
}

/// RRAM conductance relaxation: a mean shift and a spread that both grow with `ln t`,
/// independent of the state (aihwkit `ReRamCMONoiseModel`, "conductance decay", fitted on
/// CMO/HfOx devices; its defaults are the `Default` here, converted from µS to siemens).
///
/// `G(t) = clip(G + m·ln t + (a·ln t + b)·ξ, G_off, G_on)` for `t ≥ 1 s` (t in seconds);
/// `t = 0` leaves `G` unchanged, and `0 < t < 1 s` is read as 1 s \[I\] (aihwkit's fit starts
/// at 1 s and would give a negative spread below it).
///
/// RON: `Relaxation(())` or `Relaxation((mean_s_per_ln_s: -1e-8, sigma_s_per_ln_s: 5e-9,
/// sigma_at_1s_s: 4e-7))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaxationDrift {
    /// Mean shift `m` per unit of `ln(t/1 s)` in siemens (default −8.900206e-8 S, aihwkit
    /// `decay_dict["mean"]`).
    pub mean_s_per_ln_s: f64,
    /// Growth `a` of the spread per unit of `ln(t/1 s)` in siemens (≥ 0; default 4.201137e-8 S,
    /// aihwkit `decay_dict["std"][0]`).
    pub sigma_s_per_ln_s: f64,
    /// Spread `b` at 1 s in siemens (≥ 0; default 4.1183342e-7 S, aihwkit
    /// `decay_dict["std"][1]`).
    pub sigma_at_1s_s: f64,
}

impl Default for RelaxationDrift {
    fn default() -> Self {
        RelaxationDrift {
            mean_s_per_ln_s: -0.089_002_06e-6,
            sigma_s_per_ln_s: 0.042_011_37e-6,
            sigma_at_1s_s: 0.411_833_42e-6,
        }
    }
}

/// How a programmed conductance changes with the time since programming (module docs).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum DriftModel {
    /// No drift (the default).
    #[default]
    None,
    /// Power law with constant statistics.
    PowerLaw(PowerLawDrift),
    /// Power law with aihwkit's state-dependent PCM statistics.
    Pcm(PcmDrift),
    /// RRAM relaxation (log-time mean shift and spread).
    Relaxation(RelaxationDrift),
}

impl Validate for DriftModel {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        let t0 = |c: &mut Checks, field: &str, v: f64| {
            c.check(
                v.is_finite() && v > 0.0,
                field,
                v,
                "must be a positive, finite time in seconds",
            );
        };
        match self {
            DriftModel::None => {}
            DriftModel::PowerLaw(p) => {
                check_sigma(&mut c, "PowerLaw.nu_sigma", p.nu_sigma);
                c.check(
                    p.nu_mean.is_finite() && p.nu_mean >= 0.0,
                    "PowerLaw.nu_mean",
                    p.nu_mean,
                    "must be a finite drift exponent ≥ 0 (0 with nu_sigma 0: no drift)",
                );
                t0(&mut c, "PowerLaw.t0_s", p.t0_s);
            }
            DriftModel::Pcm(p) => {
                check_sigma(&mut c, "Pcm.drift_scale", p.drift_scale);
                t0(&mut c, "Pcm.t0_s", p.t0_s);
            }
            DriftModel::Relaxation(r) => {
                c.check(
                    r.mean_s_per_ln_s.is_finite(),
                    "Relaxation.mean_s_per_ln_s",
                    r.mean_s_per_ln_s,
                    "must be a finite conductance shift in siemens",
                );
                check_sigma(&mut c, "Relaxation.sigma_s_per_ln_s", r.sigma_s_per_ln_s);
                check_sigma(&mut c, "Relaxation.sigma_at_1s_s", r.sigma_at_1s_s);
            }
        }
        c.finish()
    }
}

impl DriftModel {
    /// Whether the model never changes a conductance ([`DriftModel::None`]).
    pub fn is_none(&self) -> bool {
        matches!(self, DriftModel::None)
    }

    /// Whether the model uses its draw `ξ` (a power law with `σ_ν = 0` does not).
    pub fn is_random(&self) -> bool {
        match self {
            DriftModel::None => false,
            DriftModel::PowerLaw(p) => p.nu_sigma > 0.0,
            DriftModel::Pcm(_) | DriftModel::Relaxation(_) => true,
        }
    }

    /// The drift exponent of a device with target `g_target_s` on a `[g_off_s, g_on_s]` array
    /// and draw `z`; `None` for models that are not power laws.
    pub fn nu(&self, g_target_s: f64, g_on_s: f64, z: f64) -> Option<f64> {
        match self {
            DriftModel::PowerLaw(p) => Some((p.nu_mean + p.nu_sigma * z).abs()),
            DriftModel::Pcm(p) => Some(
                PcmNoiseConfig {
                    g_max_us: 1.0,
                    drift_scale: p.drift_scale,
                    ..PcmNoiseConfig::default()
                }
                .drift_nu(g_target_s / g_on_s, z),
            ),
            DriftModel::None | DriftModel::Relaxation(_) => None,
        }
    }

    /// Conductance in siemens `t_s` seconds after programming: `g_s` is the programmed
    /// conductance (after programming noise), `g_target_s` the state it was programmed to (the
    /// PCM statistics depend on it), the array spans `[g_off_s, g_on_s]`, `z ~ N(0, 1)` is the
    /// device's draw. `t_s ≤ 0` returns `g_s` unchanged.
    pub fn apply(
        &self,
        g_s: f64,
        g_target_s: f64,
        (g_off_s, g_on_s): (f64, f64),
        t_s: f64,
        z: f64,
    ) -> f64 {
        if t_s <= 0.0 {
            return g_s;
        }
        match self {
            DriftModel::None => g_s,
            DriftModel::PowerLaw(PowerLawDrift { t0_s, .. })
            | DriftModel::Pcm(PcmDrift { t0_s, .. }) => {
                let nu = self.nu(g_target_s, g_on_s, z).unwrap_or(0.0);
                g_s * ((t_s + t0_s) / t0_s).powf(-nu)
            }
            DriftModel::Relaxation(r) => {
                let l = t_s.max(1.0).ln();
                let g =
                    g_s + r.mean_s_per_ln_s * l + (r.sigma_s_per_ln_s * l + r.sigma_at_1s_s) * z;
                g.clamp(g_off_s, g_on_s)
            }
        }
    }

    /// The expected factor `E[((t + t0)/t0)^{−ν}]` of a power law at `t_s` by quadrature
    /// over the device draw (a 2001-point trapezoid on `ξ ∈ [−8, 8]`); `None` for other models.
    /// For tests and docs (the mean decay a compensation has to undo).
    pub fn mean_factor(&self, g_target_s: f64, g_on_s: f64, t_s: f64) -> Option<f64> {
        if !matches!(self, DriftModel::PowerLaw(_) | DriftModel::Pcm(_)) {
            return None;
        }
        let n = 2001;
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..n {
            let z = -8.0 + 16.0 * i as f64 / (n - 1) as f64;
            let w = (-0.5 * z * z).exp();
            num += w * self.apply(1.0, g_target_s, (0.0, g_on_s), t_s, z);
            den += w;
        }
        Some(num / den)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_time_and_zero_nu_leave_the_conductance_alone() {
        let p = DriftModel::Pcm(PcmDrift::default());
        assert_eq!(p.apply(3.3e-6, 4e-6, (1e-6, 1e-5), 0.0, 2.0), 3.3e-6);
        let z = DriftModel::PowerLaw(PowerLawDrift {
            nu_mean: 0.0,
            nu_sigma: 0.0,
            t0_s: 20.0,
        });
        assert_eq!(z.apply(3.3e-6, 4e-6, (1e-6, 1e-5), 3.15e7, 1.7), 3.3e-6);
        let r = DriftModel::Relaxation(RelaxationDrift::default());
        assert_eq!(r.apply(3.3e-6, 4e-6, (1e-6, 1e-5), 0.0, 1.7), 3.3e-6);
    }

    #[test]
    fn pcm_statistics_follow_aihwkit() {
        // r = 1: ν̄ = 0.049 (clipped), σ = 0.008 (clipped); r = 0.1: ν̄ = 0.0601, σ = 0.0229.
        let p = DriftModel::Pcm(PcmDrift::default());
        assert!((p.nu(1e-5, 1e-5, 0.0).unwrap() - 0.049).abs() < 1e-12);
        assert!((p.nu(1e-5, 1e-5, 1.0).unwrap() - 0.057).abs() < 1e-12);
        let m = -0.0155 * 0.1f64.ln() + 0.0244;
        let s = -0.0125 * 0.1f64.ln() - 0.0059;
        assert!((p.nu(1e-6, 1e-5, 1.0).unwrap() - (m + s)).abs() < 1e-12);
        // One hour at ν = 0.049: (3620/20)^−0.049.
        let g = p.apply(1e-5, 1e-5, (0.0, 1e-5), 3600.0, 0.0);
        assert!((g / 1e-5 - 181f64.powf(-0.049)).abs() < 1e-12);
        // The expected factor at r = 1, 1 h agrees with the folded-normal value of noise.rs.
        let f = p.mean_factor(1e-5, 1e-5, 3600.0).unwrap();
        assert!((f - 0.77580).abs() < 2e-5, "{f}");
    }

    #[test]
    fn relaxation_clips_to_the_range_and_grows_with_log_time() {
        let r = DriftModel::Relaxation(RelaxationDrift::default());
        let g1 = r.apply(5e-6, 5e-6, (1e-6, 1e-5), 1.0, 1.0);
        assert!((g1 - (5e-6 + 0.411_833_42e-6)).abs() < 1e-15);
        let day = r.apply(5e-6, 5e-6, (1e-6, 1e-5), 86400.0, 0.0);
        assert!((day - (5e-6 - 0.089_002_06e-6 * 86400f64.ln())).abs() < 1e-15);
        assert_eq!(r.apply(9.9e-6, 9.9e-6, (1e-6, 1e-5), 86400.0, 10.0), 1e-5);
        let bad = DriftModel::Relaxation(RelaxationDrift {
            sigma_at_1s_s: -1.0,
            ..RelaxationDrift::default()
        })
        .validate()
        .unwrap_err();
        assert_eq!(bad[0].field, "Relaxation.sigma_at_1s_s");
    }
}
