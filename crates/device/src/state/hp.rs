//! The HP linear ion drift model (Strukov et al., Nature 2008; MemTorch `LinearIonDrift`).

use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use super::{
    Integrator, StateDevice, Window, check_positive, check_resistance_range, check_sigma,
    integrate, window_none,
};

/// HP linear ion drift parameters; defaults are MemTorch's `LinearIonDrift` (note §1.2 table):
/// `R_on 100 Ω, R_off 16 kΩ, D 10 nm, μ_v 1e-14 m²/(V·s), v_th ±0.55 V`, window
/// [`Window::None`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpConfig {
    /// ON resistance `R_on` (ohms), at `x = 1`.
    #[serde(default = "hp_r_on")]
    pub r_on_ohm: f64,
    /// OFF resistance `R_off` (ohms, > R_on), at `x = 0`.
    #[serde(default = "hp_r_off")]
    pub r_off_ohm: f64,
    /// Film thickness `D` (metres).
    #[serde(default = "hp_d")]
    pub d_m: f64,
    /// Dopant mobility `μ_v` in m²/(V·s).
    #[serde(default = "hp_mu")]
    pub mu_v_m2_per_vs: f64,
    /// Positive write threshold (volts, ≥ 0).
    #[serde(default = "hp_vth")]
    pub v_th_pos_v: f64,
    /// Negative write threshold (volts, ≤ 0).
    #[serde(default = "hp_vth_neg")]
    pub v_th_neg_v: f64,
    /// Window function (default none).
    #[serde(default = "window_none")]
    pub window: Window,
    /// Integrator for windowed pulses (default [`Integrator::default`]).
    #[serde(default)]
    pub integrator: Integrator,
}

fn hp_r_on() -> f64 {
    100.0
}
fn hp_r_off() -> f64 {
    16e3
}
fn hp_d() -> f64 {
    10e-9
}
fn hp_mu() -> f64 {
    1e-14
}
fn hp_vth() -> f64 {
    0.55
}
fn hp_vth_neg() -> f64 {
    -0.55
}
impl Default for HpConfig {
    fn default() -> Self {
        HpConfig {
            r_on_ohm: hp_r_on(),
            r_off_ohm: hp_r_off(),
            d_m: hp_d(),
            mu_v_m2_per_vs: hp_mu(),
            v_th_pos_v: hp_vth(),
            v_th_neg_v: hp_vth_neg(),
            window: Window::None,
            integrator: Integrator::default(),
        }
    }
}

impl Validate for HpConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        check_resistance_range(&mut c, self.r_on_ohm, self.r_off_ohm);
        check_positive(&mut c, "d_m", self.d_m, "metres");
        check_positive(&mut c, "mu_v_m2_per_vs", self.mu_v_m2_per_vs, "m²/(V·s)");
        check_sigma(&mut c, "v_th_pos_v", self.v_th_pos_v);
        c.check(
            self.v_th_neg_v.is_finite() && self.v_th_neg_v <= 0.0,
            "v_th_neg_v",
            self.v_th_neg_v,
            "must be a finite voltage ≤ 0",
        );
        c.nested("window", &self.window);
        c.nested("integrator", &self.integrator);
        c.finish()
    }
}

/// The HP linear-ion-drift device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearIonDrift {
    /// Its parameters.
    pub p: HpConfig,
}

impl LinearIonDrift {
    /// The device.
    ///
    /// # Errors
    ///
    /// Every broken rule of [`Validate::validate`].
    pub fn new(p: HpConfig) -> Result<Self, Vec<FieldError>> {
        p.validate()?;
        Ok(LinearIonDrift { p })
    }

    /// `k = μ_v·R_on·(R_off − R_on)/D²` in Ω²/(V·s) (note §6 validation #6).
    pub fn k(&self) -> f64 {
        self.p.mu_v_m2_per_vs * self.p.r_on_ohm * (self.p.r_off_ohm - self.p.r_on_ohm)
            / (self.p.d_m * self.p.d_m)
    }

    /// Memristance `M(x) = R_on·x + R_off·(1 − x)` (ohms).
    pub fn memristance_ohm(&self, x: f64) -> f64 {
        self.p.r_on_ohm * x + self.p.r_off_ohm * (1.0 - x)
    }

    /// State of memristance `m` (ohms).
    pub fn state_of(&self, m_ohm: f64) -> f64 {
        (self.p.r_off_ohm - m_ohm) / (self.p.r_off_ohm - self.p.r_on_ohm)
    }

    fn active(&self, v: f64) -> bool {
        v >= self.p.v_th_pos_v || v <= self.p.v_th_neg_v
    }

    /// Voltage of one pulse of `width_s` that takes the window-free device from memristance
    /// `m0_ohm` to `m1_ohm` (note §2.2 (a), model inversion of `M² = M0² − 2kvt`):
    /// `v = (M0² − M1²)/(2kt)`. `None` when that voltage is below the write threshold (the change
    /// is too small for this width: shorten the pulse), for equal memristances, a non-positive
    /// width, or targets outside `[R_on, R_off]`.
    pub fn voltage_for_memristance(&self, m0_ohm: f64, m1_ohm: f64, width_s: f64) -> Option<f64> {
        let range = self.p.r_on_ohm..=self.p.r_off_ohm;
        let ok = m0_ohm != m1_ohm
            && width_s.is_finite()
            && width_s > 0.0
            && range.contains(&m0_ohm)
            && range.contains(&m1_ohm);
        if !ok {
            return None;
        }
        let v = (m0_ohm * m0_ohm - m1_ohm * m1_ohm) / (2.0 * self.k() * width_s);
        self.active(v).then_some(v)
    }

    /// Time (seconds) for the window-free device to switch fully (R_off → R_on for `v > 0`)
    /// at constant `v`: `(R_off² − R_on²)/(2k|v|)`; infinite below threshold.
    pub fn full_switch_time_s(&self, v: f64) -> f64 {
        if !self.active(v) || v == 0.0 {
            return f64::INFINITY;
        }
        (self.p.r_off_ohm.powi(2) - self.p.r_on_ohm.powi(2)) / (2.0 * self.k() * v.abs())
    }
}

impl StateDevice for LinearIonDrift {
    fn state_range(&self) -> (f64, f64) {
        (0.0, 1.0)
    }
    fn dxdt(&self, x: f64, v: f64) -> f64 {
        if !self.active(v) {
            return 0.0;
        }
        let i = v / self.memristance_ohm(x);
        self.p.mu_v_m2_per_vs * self.p.r_on_ohm / (self.p.d_m * self.p.d_m)
            * i
            * self.p.window.value(x, i > 0.0)
    }
    fn conductance_s(&self, x: f64) -> f64 {
        1.0 / self.memristance_ohm(x)
    }
    fn thresholds_v(&self) -> (f64, f64) {
        (self.p.v_th_neg_v, self.p.v_th_pos_v)
    }
    fn integrator(&self) -> Integrator {
        self.p.integrator
    }
    /// Closed form without window: `M² = M0² − 2kvt`, clipped to `[R_on, R_off]` (exact since
    /// `dM/dt` keeps its sign); windowed: [`integrate`].
    fn apply_pulse(&self, x: f64, v: f64, width_s: f64) -> f64 {
        let x = x.clamp(0.0, 1.0);
        if !self.active(v) || width_s <= 0.0 {
            return x;
        }
        match self.p.window {
            Window::None => {
                let m0 = self.memristance_ohm(x);
                let m2 = m0 * m0 - 2.0 * self.k() * v * width_s;
                let m = m2
                    .clamp(self.p.r_on_ohm.powi(2), self.p.r_off_ohm.powi(2))
                    .sqrt();
                self.state_of(m).clamp(0.0, 1.0)
            }
            _ => integrate(self, x, v, width_s, self.p.integrator),
        }
    }
}
