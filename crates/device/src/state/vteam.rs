//! The VTEAM model (Kvatinsky et al., IEEE TCAS-II 2015; MemTorch `VTEAM`).

use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use super::{
    Integrator, StateDevice, Window, check_positive, check_resistance_range, integrate, window_none,
};

/// VTEAM parameters; defaults are MemTorch's `VTEAM` (note §1.2 table): `R_off 1 kΩ, R_on 50 Ω,
/// D 3 nm, k_on −10 m/s, k_off 5e-4 m/s, α_on 3, α_off 1, v_on −0.2 V, v_off 0.02 V`, window
/// none.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VteamConfig {
    /// ON resistance (ohms), at `x = 0`.
    #[serde(default = "vt_r_on")]
    pub r_on_ohm: f64,
    /// OFF resistance (ohms, > R_on), at `x = D`.
    #[serde(default = "vt_r_off")]
    pub r_off_ohm: f64,
    /// State range `D` (metres).
    #[serde(default = "vt_d")]
    pub d_m: f64,
    /// `k_on` (m/s, < 0: ON switching lowers x).
    #[serde(default = "vt_k_on")]
    pub k_on_m_per_s: f64,
    /// `k_off` (m/s, > 0).
    #[serde(default = "vt_k_off")]
    pub k_off_m_per_s: f64,
    /// `α_on` (> 0).
    #[serde(default = "vt_a_on")]
    pub alpha_on: f64,
    /// `α_off` (> 0).
    #[serde(default = "vt_a_off")]
    pub alpha_off: f64,
    /// ON threshold `v_on` (volts, < 0).
    #[serde(default = "vt_v_on")]
    pub v_on_v: f64,
    /// OFF threshold `v_off` (volts, > 0).
    #[serde(default = "vt_v_off")]
    pub v_off_v: f64,
    /// Window on `u = x/D` (default none).
    #[serde(default = "window_none")]
    pub window: Window,
    /// Integrator for windowed pulses.
    #[serde(default)]
    pub integrator: Integrator,
}

fn vt_r_on() -> f64 {
    50.0
}
fn vt_r_off() -> f64 {
    1e3
}
fn vt_d() -> f64 {
    3e-9
}
fn vt_k_on() -> f64 {
    -10.0
}
fn vt_k_off() -> f64 {
    5e-4
}
fn vt_a_on() -> f64 {
    3.0
}
fn vt_a_off() -> f64 {
    1.0
}
fn vt_v_on() -> f64 {
    -0.2
}
fn vt_v_off() -> f64 {
    0.02
}

impl Default for VteamConfig {
    fn default() -> Self {
        VteamConfig {
            r_on_ohm: vt_r_on(),
            r_off_ohm: vt_r_off(),
            d_m: vt_d(),
            k_on_m_per_s: vt_k_on(),
            k_off_m_per_s: vt_k_off(),
            alpha_on: vt_a_on(),
            alpha_off: vt_a_off(),
            v_on_v: vt_v_on(),
            v_off_v: vt_v_off(),
            window: Window::None,
            integrator: Integrator::default(),
        }
    }
}

impl Validate for VteamConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        check_resistance_range(&mut c, self.r_on_ohm, self.r_off_ohm);
        check_positive(&mut c, "d_m", self.d_m, "metres");
        c.check(
            self.k_on_m_per_s.is_finite() && self.k_on_m_per_s < 0.0,
            "k_on_m_per_s",
            self.k_on_m_per_s,
            "must be negative (ON switching lowers x)",
        );
        check_positive(&mut c, "k_off_m_per_s", self.k_off_m_per_s, "m/s");
        check_positive(&mut c, "alpha_on", self.alpha_on, "dimensionless");
        check_positive(&mut c, "alpha_off", self.alpha_off, "dimensionless");
        c.check(
            self.v_on_v.is_finite() && self.v_on_v < 0.0,
            "v_on_v",
            self.v_on_v,
            "must be a negative threshold voltage",
        );
        check_positive(&mut c, "v_off_v", self.v_off_v, "volts");
        c.nested("window", &self.window);
        c.nested("integrator", &self.integrator);
        c.finish()
    }
}

/// The VTEAM device (state `x` in metres).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vteam {
    /// Its parameters.
    pub p: VteamConfig,
}

impl Vteam {
    /// The device.
    ///
    /// # Errors
    ///
    /// Every broken rule of [`Validate::validate`].
    pub fn new(p: VteamConfig) -> Result<Self, Vec<FieldError>> {
        p.validate()?;
        Ok(Vteam { p })
    }

    /// Window-free rate `dx/dt` (m/s) at voltage `v`.
    pub fn rate_m_per_s(&self, v: f64) -> f64 {
        let p = &self.p;
        if v >= p.v_off_v {
            p.k_off_m_per_s * (v / p.v_off_v - 1.0).powf(p.alpha_off)
        } else if v <= p.v_on_v {
            p.k_on_m_per_s * (v / p.v_on_v - 1.0).powf(p.alpha_on)
        } else {
            0.0
        }
    }

    /// Voltage of one pulse of `width_s` that moves the window-free state by `dx_m` metres
    /// (note §2.2 (a), "approximately linear update" by model inversion):
    /// `v = v_off·(1 + (Δx/(k_off·t))^{1/α_off})` for `Δx > 0`,
    /// `v = v_on·(1 + (Δx/(k_on·t))^{1/α_on})` for `Δx < 0`. `None` for `Δx = 0`, a
    /// non-positive width or non-finite input. Ignores the window and the clip at `[0, D]`.
    pub fn voltage_for_step(&self, dx_m: f64, width_s: f64) -> Option<f64> {
        let p = &self.p;
        let ok = dx_m != 0.0 && dx_m.is_finite() && width_s.is_finite() && width_s > 0.0;
        if !ok {
            return None;
        }
        let v = if dx_m > 0.0 {
            p.v_off_v * (1.0 + (dx_m / (p.k_off_m_per_s * width_s)).powf(1.0 / p.alpha_off))
        } else {
            p.v_on_v * (1.0 + (dx_m / (p.k_on_m_per_s * width_s)).powf(1.0 / p.alpha_on))
        };
        v.is_finite().then_some(v)
    }

    /// Resistance `R(x) = R_on + (R_off − R_on)·x/D` (ohms).
    pub fn resistance_ohm(&self, x: f64) -> f64 {
        self.p.r_on_ohm + (self.p.r_off_ohm - self.p.r_on_ohm) * x / self.p.d_m
    }
}

impl StateDevice for Vteam {
    fn state_range(&self) -> (f64, f64) {
        (0.0, self.p.d_m)
    }
    fn dxdt(&self, x: f64, v: f64) -> f64 {
        let r = self.rate_m_per_s(v);
        if r == 0.0 {
            return 0.0;
        }
        r * self.p.window.value(x / self.p.d_m, r > 0.0)
    }
    fn conductance_s(&self, x: f64) -> f64 {
        1.0 / self.resistance_ohm(x)
    }
    fn thresholds_v(&self) -> (f64, f64) {
        (self.p.v_on_v, self.p.v_off_v)
    }
    fn integrator(&self) -> Integrator {
        self.p.integrator
    }
    /// Closed form without window: `x + ẋ·t` clipped to `[0, D]`; windowed: [`integrate`].
    fn apply_pulse(&self, x: f64, v: f64, width_s: f64) -> f64 {
        let x = x.clamp(0.0, self.p.d_m);
        match self.p.window {
            Window::None => (x + self.rate_m_per_s(v) * width_s.max(0.0)).clamp(0.0, self.p.d_m),
            _ => integrate(self, x, v, width_s, self.p.integrator),
        }
    }
}
