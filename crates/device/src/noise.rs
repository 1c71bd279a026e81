//! Inference noise statistics of programmed devices (note §4.1, §4.2): aihwkit's PCM model and
//! CrossSim's RRAM programming-error fits. Conductances here are in microsiemens (`_us`) because
//! the published fits are polynomials in µS.

use nacsim_core::Stream;
use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

/// aihwkit `PCMLikeNoiseModel` (Nandakumar et al., ICECS 2019; aihwkit
/// `inference/noise/pcm.py`), with `r = g/g_max`:
///
/// * programming: `σ_prog = (c0 + c1·r + c2·r²)·g_max/g_ref`, `g_prog = max(g + σ_prog·ξ, 0)`;
/// * drift: `ν = |N(μ_ν, σ_ν)|`, `μ_ν = clip(−0.0155·ln r + 0.0244, 0.049, 0.1)`,
///   `σ_ν = clip(−0.0125·ln r − 0.0059, 0.008, 0.045)` (r clipped below at 1e-7),
///   `g_d = g_prog·(t/t0)^{−ν}` with `t = t_inf + t0`;
/// * read (accumulated 1/f): `Q = min(0.0088/max(r_prog^0.65, 1e-3), 0.2)`,
///   `g = g_d + |g_d|·Q·sqrt(ln((t + t_r)/(2t_r)))·ξ`, clipped at 0.
///
/// We always scale the programming polynomial by `g_max/g_ref` with `g_ref` given explicitly
/// (aihwkit leaves `prog_coeff_g_max_reference` unset when coefficients are passed explicitly,
/// note §4.2 "apparent bug"; we do not reproduce that).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcmNoiseConfig {
    /// Conductance the largest weight maps to, `g_max` (µS; default 25).
    #[serde(default = "d_gmax")]
    pub g_max_us: f64,
    /// Programming polynomial `c0, c1, c2` in µS at `g_ref` (default 0.26348, 1.9650, −1.1731).
    #[serde(default = "d_coeff")]
    pub prog_coeff_us: [f64; 3],
    /// `g_ref`, the `g_max` the coefficients were fitted at (µS; default 25).
    #[serde(default = "d_gmax")]
    pub prog_coeff_g_max_reference_us: f64,
    /// Drift reference time `t0` (seconds; default 20).
    #[serde(default = "d_t0")]
    pub t0_s: f64,
    /// 1/f fit parameter `t_r` (seconds; default 250 ns).
    #[serde(default = "d_tread")]
    pub t_read_s: f64,
    /// Scale of programming noise (default 1).
    #[serde(default = "d_one")]
    pub prog_noise_scale: f64,
    /// Scale of read noise (default 1).
    #[serde(default = "d_one")]
    pub read_noise_scale: f64,
    /// Scale of the drift exponent (default 1).
    #[serde(default = "d_one")]
    pub drift_scale: f64,
}

fn d_gmax() -> f64 {
    25.0
}
fn d_coeff() -> [f64; 3] {
    [0.26348, 1.9650, -1.1731]
}
fn d_t0() -> f64 {
    20.0
}
fn d_tread() -> f64 {
    250e-9
}
fn d_one() -> f64 {
    1.0
}

impl Default for PcmNoiseConfig {
    fn default() -> Self {
        PcmNoiseConfig {
            g_max_us: d_gmax(),
            prog_coeff_us: d_coeff(),
            prog_coeff_g_max_reference_us: d_gmax(),
            t0_s: d_t0(),
            t_read_s: d_tread(),
            prog_noise_scale: 1.0,
            read_noise_scale: 1.0,
            drift_scale: 1.0,
        }
    }
}

impl Validate for PcmNoiseConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        for (n, v) in [
            ("g_max_us", self.g_max_us),
            (
                "prog_coeff_g_max_reference_us",
                self.prog_coeff_g_max_reference_us,
            ),
            ("t0_s", self.t0_s),
            ("t_read_s", self.t_read_s),
        ] {
            c.check(
                v.is_finite() && v > 0.0,
                n,
                v,
                "must be positive and finite",
            );
        }
        for (i, v) in self.prog_coeff_us.iter().enumerate() {
            c.check(
                v.is_finite(),
                &format!("prog_coeff_us[{i}]"),
                v,
                "must be finite",
            );
        }
        for (n, v) in [
            ("prog_noise_scale", self.prog_noise_scale),
            ("read_noise_scale", self.read_noise_scale),
            ("drift_scale", self.drift_scale),
        ] {
            crate::check_sigma(&mut c, n, v);
        }
        c.finish()
    }
}

impl PcmNoiseConfig {
    /// Programming σ (µS) for target `g_target_us`.
    pub fn prog_sigma_us(&self, g_target_us: f64) -> f64 {
        let r = g_target_us / self.g_max_us;
        let [c0, c1, c2] = self.prog_coeff_us;
        (c0 + c1 * r + c2 * r * r) * self.g_max_us / self.prog_coeff_g_max_reference_us
    }

    /// Programmed conductance for draw `z ~ N(0,1)`: `max(g + scale·σ_prog·z, 0)`.
    pub fn program_us(&self, g_target_us: f64, z: f64) -> f64 {
        (g_target_us + self.prog_noise_scale * self.prog_sigma_us(g_target_us) * z).max(0.0)
    }

    fn r_clipped(&self, g_us: f64) -> f64 {
        (g_us / self.g_max_us).abs().max(1e-7)
    }

    /// Mean drift exponent `μ_ν` for target `g_target_us`.
    pub fn drift_nu_mean(&self, g_target_us: f64) -> f64 {
        (-0.0155 * self.r_clipped(g_target_us).ln() + 0.0244).clamp(0.049, 0.1)
    }

    /// Standard deviation `σ_ν` of the drift exponent.
    pub fn drift_nu_std(&self, g_target_us: f64) -> f64 {
        (-0.0125 * self.r_clipped(g_target_us).ln() - 0.0059).clamp(0.008, 0.045)
    }

    /// Drift exponent for draw `z`: `|μ_ν + σ_ν·z|·drift_scale`.
    pub fn drift_nu(&self, g_target_us: f64, z: f64) -> f64 {
        (self.drift_nu_mean(g_target_us) + self.drift_nu_std(g_target_us) * z).abs()
            * self.drift_scale
    }

    /// Drift factor `((t_inf + t0)/t0)^{−ν}` at `t_inf_s` seconds after programming (1 at 0).
    pub fn drift_factor(&self, nu: f64, t_inf_s: f64) -> f64 {
        let t = t_inf_s + self.t0_s;
        if t > self.t0_s {
            (t / self.t0_s).powf(-nu)
        } else {
            1.0
        }
    }

    /// 1/f coefficient `Q` for programmed conductance `g_prog_us`.
    pub fn read_q(&self, g_prog_us: f64) -> f64 {
        (0.0088 / (g_prog_us.abs() / self.g_max_us).powf(0.65).max(1e-3)).min(0.2)
    }

    /// Relative read σ of the drifted conductance at `t_inf_s`:
    /// `read_noise_scale·Q·sqrt(ln((t + t_r)/(2t_r)))`.
    pub fn read_rel_sigma(&self, g_prog_us: f64, t_inf_s: f64) -> f64 {
        let t = t_inf_s + self.t0_s;
        self.read_noise_scale
            * self.read_q(g_prog_us)
            * ((t + self.t_read_s) / (2.0 * self.t_read_s)).ln().sqrt()
    }

    /// Conductance read at `t_inf_s` after programming target `g_target_us`: programming draw
    /// from `prog` (a `Purpose::ProgrammingError` stream), drift exponent from `drift`
    /// (`Purpose::Drift`), read noise from `read` (`Purpose::ReadNoise`), all at `index`.
    pub fn sample_us(
        &self,
        g_target_us: f64,
        t_inf_s: f64,
        index: u64,
        prog: &Stream,
        drift: &Stream,
        read: &Stream,
    ) -> f64 {
        let g_prog = self.program_us(g_target_us, prog.normal(index, 0.0, 1.0));
        let nu = self.drift_nu(g_target_us, drift.normal(index, 0.0, 1.0));
        let g_d = g_prog * self.drift_factor(nu, t_inf_s);
        let sigma = self.read_rel_sigma(g_prog, t_inf_s);
        (g_d + g_d.abs() * sigma * read.normal(index, 0.0, 1.0)).max(0.0)
    }
}

/// CrossSim `RRAM_Milo.py` programming σ (µS) at conductance `g_us`:
/// `max(−0.009107·G + 4.782321, 0)`; fitted for 50–225 µS.
pub fn rram_milo_sigma_us(g_us: f64) -> f64 {
    (-0.009107 * g_us + 4.782321).max(0.0)
}

/// CrossSim `RRAM_Wan.py` programming σ (µS) at conductance `g_us`:
/// `max(1.536e-4·G³ − 1.167e-2·G² + 0.2374·G + 1.053, 0)`; fitted for `G ≤ 39.26` µS.
pub fn rram_wan_sigma_us(g_us: f64) -> f64 {
    (1.536e-4 * g_us.powi(3) - 1.167e-2 * g_us.powi(2) + 0.2374 * g_us + 1.053).max(0.0)
}

/// Fitted range (µS) of [`rram_milo_sigma_us`].
pub const RRAM_MILO_RANGE_US: (f64, f64) = (50.0, 225.0);
/// Largest conductance (µS) of [`rram_wan_sigma_us`]'s fit.
pub const RRAM_WAN_G_MAX_US: f64 = 39.26;

/// A static programming-error model (note §3.2, CrossSim `generic_device.py` and `custom/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ProgrammingError {
    /// None: `G` as targeted.
    Ideal,
    /// `G + σ·G_max·ξ` (CrossSim `Independent`, σ normalized to `G_max`).
    Independent {
        /// Relative σ (fraction of `G_max`).
        sigma: f64,
    },
    /// `G·(1 + σ·ξ)` (CrossSim `Proportional`).
    Proportional {
        /// Relative σ.
        sigma: f64,
    },
    /// CrossSim RRAM Milo fit.
    RramMilo,
    /// CrossSim RRAM Wan fit.
    RramWan,
    /// aihwkit PCM programming noise.
    Pcm(PcmNoiseConfig),
}

impl Validate for ProgrammingError {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        match self {
            ProgrammingError::Independent { sigma } | ProgrammingError::Proportional { sigma } => {
                crate::check_sigma(&mut c, "sigma", *sigma);
            }
            ProgrammingError::Pcm(p) => c.nested("Pcm", p),
            _ => {}
        }
        c.finish()
    }
}

impl ProgrammingError {
    /// Programmed conductance (µS) for target `g_us` with draw `z ~ N(0, 1)`, clipped at 0;
    /// `g_max_us` is the array's largest conductance.
    pub fn apply_us(&self, g_us: f64, g_max_us: f64, z: f64) -> f64 {
        let g = match self {
            ProgrammingError::Ideal => g_us,
            ProgrammingError::Independent { sigma } => g_us + sigma * g_max_us * z,
            ProgrammingError::Proportional { sigma } => g_us * (1.0 + sigma * z),
            ProgrammingError::RramMilo => g_us + rram_milo_sigma_us(g_us) * z,
            ProgrammingError::RramWan => g_us + rram_wan_sigma_us(g_us) * z,
            ProgrammingError::Pcm(p) => p.program_us(g_us, z),
        };
        g.max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacsim_core::Purpose;

    #[test]
    fn drift_only_sampling_matches_the_folded_normal_expectation() {
        // E[(181)^{−|ν|}], ν ~ N(0.049, 0.008) at r = 1, 1 h: 0.77580 by quadrature
        // (0.77513 at the mean ν). Standard error over 20000 draws ≈ 2.3e-4.
        let m = PcmNoiseConfig {
            prog_noise_scale: 0.0,
            read_noise_scale: 0.0,
            ..PcmNoiseConfig::default()
        };
        let s = |p| Stream::new(21, p, 0, 0);
        let (prog, drift, read) = (
            s(Purpose::ProgrammingError),
            s(Purpose::Drift),
            s(Purpose::ReadNoise),
        );
        let n = 20_000;
        let mean = (0..n)
            .map(|i| m.sample_us(25.0, 3600.0, i, &prog, &drift, &read) / 25.0)
            .sum::<f64>()
            / n as f64;
        assert!((mean - 0.77580).abs() < 1e-3, "{mean}");
        // Read noise on its own has zero mean and the relative σ of the model.
        let m = PcmNoiseConfig {
            prog_noise_scale: 0.0,
            drift_scale: 0.0,
            ..PcmNoiseConfig::default()
        };
        let xs: Vec<f64> = (0..n)
            .map(|i| m.sample_us(25.0, 3600.0, i, &prog, &drift, &read) / 25.0 - 1.0)
            .collect();
        let sd = (xs.iter().map(|x| x * x).sum::<f64>() / n as f64).sqrt();
        assert!(
            (sd / m.read_rel_sigma(25.0, 3600.0) - 1.0).abs() < 0.03,
            "{sd}"
        );
    }

    #[test]
    fn programming_error_models() {
        assert_eq!(ProgrammingError::Ideal.apply_us(10.0, 25.0, 3.0), 10.0);
        assert_eq!(
            ProgrammingError::Independent { sigma: 0.1 }.apply_us(10.0, 25.0, 1.0),
            12.5
        );
        assert_eq!(
            ProgrammingError::Proportional { sigma: 0.1 }.apply_us(10.0, 25.0, 1.0),
            11.0
        );
        assert_eq!(
            ProgrammingError::RramMilo.apply_us(100.0, 225.0, -1.0),
            100.0 - rram_milo_sigma_us(100.0)
        );
        assert_eq!(
            ProgrammingError::Proportional { sigma: 0.5 }.apply_us(10.0, 25.0, -3.0),
            0.0
        );
        let e = ProgrammingError::Independent { sigma: -1.0 }
            .validate()
            .unwrap_err();
        assert_eq!(e[0].field, "sigma");
    }
}
