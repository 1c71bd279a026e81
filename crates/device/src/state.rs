//! State (ODE) devices: `dx/dt = f(x, v, θ)`, `G = g(x, θ)` (note §1.2, §2.3, §7.3).
//!
//! * [`LinearIonDrift`]: the HP model (Strukov 2008), `dx/dt = μ_v·R_on/D²·i(t)·F(x)` with
//!   `x ∈ [0, 1]`, `M = R_on·x + R_off·(1 − x)`, `i = v/M`, updated only when `v ≥ v_th⁺` or
//!   `v ≤ v_th⁻` (MemTorch `LinearIonDrift`, defaults below).
//! * [`Vteam`]: Kvatinsky 2015, `dx/dt = k_off(v/v_off − 1)^{α_off}·F` for `v ≥ v_off > 0`,
//!   `k_on(v/v_on − 1)^{α_on}·F` for `v ≤ v_on < 0`, else 0; `x ∈ [0, D]`,
//!   `R = R_on + (R_off − R_on)·x/D` (x = 0 is R_on).
//! * [`Window`]s on the normalized state `u`: Joglekar `1 − (2u − 1)^{2p}` (the correct
//!   precedence; MemTorch's `Jogelkar()` computes `(1 − (2u − 1))^{2p}`, a bug not ported),
//!   Biolek `1 − (u − stp(−i))^{2p}`, Prodromakis `j·(1 − ((u − 0.5)² + 0.75)^p)`.
//!
//! # Integration over a pulse
//!
//! A pulse is a constant voltage `v` for `width_s`. Where a closed form exists it is used and is
//! exact up to rounding: HP without window `M² = M0² − 2kvt`, `k = μ_v·R_on(R_off − R_on)/D²`
//! (note §6 validation #6); VTEAM without window `x + ẋ·t` with constant `ẋ` (validation #7).
//! Otherwise [`Integrator`] integrates: adaptive Dormand–Prince 5(4) (default: relative
//! tolerance 1e-10, absolute tolerance 1e-12 of the state range per step) or fixed-step RK4.
//! The state is clipped to its range after every step.

use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::lut::LutDevice;
use crate::{Pulse, check_sigma};

/// A device whose state obeys an ODE in time under an applied voltage.
pub trait StateDevice {
    /// Range `(x_min, x_max)` of the state variable.
    fn state_range(&self) -> (f64, f64);
    /// `dx/dt` (state units per second) at state `x` under voltage `v` (volts); zero between
    /// the thresholds.
    fn dxdt(&self, x: f64, v: f64) -> f64;
    /// Conductance `g(x)` in siemens.
    fn conductance_s(&self, x: f64) -> f64;
    /// Switching thresholds `(v_negative, v_positive)` in volts: `v_negative < v < v_positive`
    /// leaves the state unchanged.
    fn thresholds_v(&self) -> (f64, f64);
    /// The integrator used where no closed form exists.
    fn integrator(&self) -> Integrator;
    /// State after a rectangular pulse of `v` volts for `width_s` seconds from `x`.
    ///
    /// The default integrates [`dxdt`](Self::dxdt) with [`integrator`](Self::integrator);
    /// models with a closed form override it.
    fn apply_pulse(&self, x: f64, v: f64, width_s: f64) -> f64 {
        integrate(self, x, v, width_s, self.integrator())
    }
    /// Read disturb limit (volts): the smaller threshold magnitude; a read voltage must stay
    /// strictly below it.
    fn read_disturb_limit_v(&self) -> f64 {
        let (n, p) = self.thresholds_v();
        n.abs().min(p.abs())
    }
}

/// Numerical integrator for a pulse (used when no closed form exists).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Integrator {
    /// Adaptive Dormand–Prince 5(4): a step is accepted when the local error estimate is below
    /// `rtol·|x| + atol_frac·(x_max − x_min)`.
    Adaptive {
        /// Relative tolerance per step (> 0).
        rtol: f64,
        /// Absolute tolerance per step as a fraction of the state range (> 0).
        atol_frac: f64,
    },
    /// Classic RK4 with `steps` equal steps per pulse.
    Rk4 {
        /// Steps per pulse (≥ 1).
        steps: u32,
    },
}

impl Default for Integrator {
    /// Adaptive, `rtol = 1e-10`, `atol_frac = 1e-12`.
    fn default() -> Self {
        Integrator::Adaptive {
            rtol: 1e-10,
            atol_frac: 1e-12,
        }
    }
}

impl Validate for Integrator {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        match *self {
            Integrator::Adaptive { rtol, atol_frac } => {
                c.check(
                    rtol.is_finite() && rtol > 0.0,
                    "rtol",
                    rtol,
                    "must be a positive tolerance",
                );
                c.check(
                    atol_frac.is_finite() && atol_frac > 0.0,
                    "atol_frac",
                    atol_frac,
                    "must be a positive tolerance",
                );
            }
            Integrator::Rk4 { steps } => {
                c.check(steps >= 1, "steps", steps, "must be at least 1");
            }
        }
        c.finish()
    }
}

/// Most steps the adaptive integrator takes for one pulse before it stops where it is.
pub const MAX_ADAPTIVE_STEPS: u32 = 1_000_000;

/// Integrates `dx/dt = f(x, v)` over `width_s` from `x` with `integrator`, clipping to the state
/// range after every step.
pub fn integrate<D: StateDevice + ?Sized>(
    dev: &D,
    x: f64,
    v: f64,
    width_s: f64,
    integrator: Integrator,
) -> f64 {
    let (lo, hi) = dev.state_range();
    let f = |x: f64| dev.dxdt(x.clamp(lo, hi), v);
    let mut x = x.clamp(lo, hi);
    if width_s <= 0.0 || f(x) == 0.0 && f(lo) == 0.0 && f(hi) == 0.0 {
        return x;
    }
    match integrator {
        Integrator::Rk4 { steps } => {
            let h = width_s / f64::from(steps.max(1));
            for _ in 0..steps.max(1) {
                let k1 = f(x);
                let k2 = f(x + 0.5 * h * k1);
                let k3 = f(x + 0.5 * h * k2);
                let k4 = f(x + h * k3);
                x = (x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)).clamp(lo, hi);
            }
            x
        }
        Integrator::Adaptive { rtol, atol_frac } => {
            let atol = atol_frac * (hi - lo);
            let mut t = 0.0;
            // First guess: the time to cross 1 % of the range at the initial rate.
            let r0 = f(x).abs();
            let mut h = if r0 > 0.0 {
                (0.01 * (hi - lo) / r0).min(width_s)
            } else {
                width_s * 1e-3
            };
            let mut steps = 0;
            while t < width_s && steps < MAX_ADAPTIVE_STEPS {
                steps += 1;
                h = h.min(width_s - t);
                let (x5, err) = dopri_step(&f, x, h);
                let tol = rtol * x.abs().max(x5.abs()) + atol;
                if err <= tol || h <= width_s * 1e-15 {
                    t += h;
                    x = x5.clamp(lo, hi);
                    let grow = if err == 0.0 {
                        5.0
                    } else {
                        (0.9 * (tol / err).powf(0.2)).clamp(0.2, 5.0)
                    };
                    h *= grow;
                } else {
                    h *= (0.9 * (tol / err).powf(0.25)).clamp(0.1, 0.9);
                }
            }
            x
        }
    }
}

/// One Dormand–Prince 5(4) step: the 5th-order value and the error estimate `|x5 − x4|`.
fn dopri_step(f: &dyn Fn(f64) -> f64, x: f64, h: f64) -> (f64, f64) {
    let k1 = f(x);
    let k2 = f(x + h * (k1 / 5.0));
    let k3 = f(x + h * (3.0 / 40.0 * k1 + 9.0 / 40.0 * k2));
    let k4 = f(x + h * (44.0 / 45.0 * k1 - 56.0 / 15.0 * k2 + 32.0 / 9.0 * k3));
    let k5 = f(x + h
        * (19372.0 / 6561.0 * k1 - 25360.0 / 2187.0 * k2 + 64448.0 / 6561.0 * k3
            - 212.0 / 729.0 * k4));
    let k6 = f(x + h
        * (9017.0 / 3168.0 * k1 - 355.0 / 33.0 * k2 + 46732.0 / 5247.0 * k3 + 49.0 / 176.0 * k4
            - 5103.0 / 18656.0 * k5));
    let x5 = x + h
        * (35.0 / 384.0 * k1 + 500.0 / 1113.0 * k3 + 125.0 / 192.0 * k4 - 2187.0 / 6784.0 * k5
            + 11.0 / 84.0 * k6);
    let k7 = f(x5);
    let x4 = x + h
        * (5179.0 / 57600.0 * k1 + 7571.0 / 16695.0 * k3 + 393.0 / 640.0 * k4
            - 92097.0 / 339200.0 * k5
            + 187.0 / 2100.0 * k6
            + 1.0 / 40.0 * k7);
    (x5, (x5 - x4).abs())
}

/// Window function `F(u)` on the normalized state `u ∈ [0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Window {
    /// `F = 1` (closed-form pulses).
    None,
    /// Joglekar & Wolf 2009: `1 − (2u − 1)^{2p}`. Zero at both bounds: a state exactly at a
    /// bound never moves (boundary lock).
    Joglekar {
        /// Exponent `p` (≥ 1).
        p: u32,
    },
    /// Biolek 2009: `1 − (u − stp(−i))^{2p}` with `stp(s) = 1` for `s ≥ 0`: zero only at the
    /// bound the state moves towards.
    Biolek {
        /// Exponent `p` (≥ 1).
        p: u32,
    },
    /// Prodromakis 2011: `j·(1 − ((u − 0.5)² + 0.75)^p)`. Zero at both bounds.
    Prodromakis {
        /// Exponent `p` (≥ 1).
        p: u32,
        /// Scale `j` (> 0; 1 in the paper's default).
        j: f64,
    },
}

impl Window {
    /// `F(u)` for a state moving up (`moving_up`, positive current) or down.
    pub fn value(&self, u: f64, moving_up: bool) -> f64 {
        match *self {
            Window::None => 1.0,
            Window::Joglekar { p } => 1.0 - (2.0 * u - 1.0).powi(2 * p as i32),
            Window::Biolek { p } => {
                let stp = if moving_up { 0.0 } else { 1.0 };
                1.0 - (u - stp).powi(2 * p as i32)
            }
            Window::Prodromakis { p, j } => j * (1.0 - ((u - 0.5).powi(2) + 0.75).powi(p as i32)),
        }
    }

    /// Whether the window is zero at both bounds, so a state exactly at a bound never moves.
    pub fn locks_bounds(&self) -> bool {
        matches!(self, Window::Joglekar { .. } | Window::Prodromakis { .. })
    }
}

impl Validate for Window {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        match *self {
            Window::None => {}
            Window::Joglekar { p } | Window::Biolek { p } => {
                c.check((1..=64).contains(&p), "p", p, "must be in 1..=64");
            }
            Window::Prodromakis { p, j } => {
                c.check((1..=64).contains(&p), "p", p, "must be in 1..=64");
                c.check(j.is_finite() && j > 0.0, "j", j, "must be positive");
            }
        }
        c.finish()
    }
}

fn check_positive(c: &mut Checks, field: &str, x: f64, unit: &str) -> bool {
    c.check(
        x.is_finite() && x > 0.0,
        field,
        x,
        &format!("must be positive and finite ({unit})"),
    )
}

/// `r_on_ohm` and `r_off_ohm` positive and finite, and `r_off_ohm > r_on_ohm` (so Gon > Goff).
fn check_resistance_range(c: &mut Checks, r_on_ohm: f64, r_off_ohm: f64) {
    let on = check_positive(c, "r_on_ohm", r_on_ohm, "ohms");
    let off = check_positive(c, "r_off_ohm", r_off_ohm, "ohms");
    if on && off {
        c.check(
            r_off_ohm > r_on_ohm,
            "r_off_ohm",
            r_off_ohm,
            &format!("must exceed r_on_ohm = {r_on_ohm} Ω (Gon ≤ Goff otherwise)"),
        );
    }
}

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
fn window_none() -> Window {
    Window::None
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

/// Which state model (serde choice for configs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum StateModelConfig {
    /// HP linear ion drift.
    Hp(HpConfig),
    /// VTEAM.
    Vteam(VteamConfig),
}

impl Validate for StateModelConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        match self {
            StateModelConfig::Hp(c) => c.validate(),
            StateModelConfig::Vteam(c) => c.validate(),
        }
    }
}

impl StateModelConfig {
    /// The window of either model.
    pub fn window(&self) -> Window {
        match self {
            StateModelConfig::Hp(c) => c.window,
            StateModelConfig::Vteam(c) => c.window,
        }
    }

    /// The device as a trait object.
    ///
    /// # Errors
    ///
    /// Every broken rule of [`Validate::validate`].
    pub fn build(&self) -> Result<Box<dyn StateDevice + Send + Sync>, Vec<FieldError>> {
        Ok(match *self {
            StateModelConfig::Hp(c) => Box::new(LinearIonDrift::new(c)?),
            StateModelConfig::Vteam(c) => Box::new(Vteam::new(c)?),
        })
    }
}

/// How to tabulate a [`StateDevice`] into a look-up-table pulse device.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TabulateConfig {
    /// The state model (required).
    pub model: StateModelConfig,
    /// The fixed potentiation (conductance-increasing) pulse (required).
    pub ltp: Pulse,
    /// The fixed depression pulse (required).
    pub ltd: Pulse,
    /// Most pulses tabulated per direction (default 4096; 1..=1_000_000). Tabulation also stops
    /// when a pulse no longer raises (LTP) or lowers (LTD) the conductance.
    #[serde(default = "d_max_pulses")]
    pub max_pulses: u32,
    /// Start each curve this fraction of the state range inside the bound (default 0; must be
    /// > 0 for windows that lock the bounds, Joglekar and Prodromakis).
    #[serde(default)]
    pub start_margin: f64,
}

fn d_max_pulses() -> u32 {
    4096
}

impl Validate for TabulateConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.nested("model", &self.model);
        c.nested("ltp", &self.ltp);
        c.nested("ltd", &self.ltd);
        c.check(
            (1..=1_000_000).contains(&self.max_pulses),
            "max_pulses",
            self.max_pulses,
            "must be in 1..=1000000",
        );
        if c.check(
            self.start_margin.is_finite() && (0.0..0.5).contains(&self.start_margin),
            "start_margin",
            self.start_margin,
            "must be in [0, 0.5)",
        ) && self.model.window().locks_bounds()
        {
            c.check(
                self.start_margin > 0.0,
                "start_margin",
                self.start_margin,
                "must be > 0: the window is zero at both bounds, so a state starting there never moves",
            );
        }
        c.finish()
    }
}

/// A tabulated state device: the look-up table plus the states it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Tabulated {
    /// The pulse device.
    pub lut: LutDevice,
    /// State after each LTP pulse (index = pulse count).
    pub ltp_states: Vec<f64>,
    /// State after each LTD pulse.
    pub ltd_states: Vec<f64>,
}

/// Tabulates `cfg.model` under the fixed LTP/LTD pulses into a [`LutDevice`]: the LTP curve
/// starts at the low-conductance end of the state range (moved in by `start_margin`), the LTD
/// curve at the high end, each applying [`StateDevice::apply_pulse`] until the conductance stops
/// moving or `max_pulses` is reached. At the table points the adapter equals exact integration
/// bit for bit (the same pulse map produced them).
///
/// # Errors
///
/// Every broken rule of [`Validate::validate`], and an error on `ltp.amplitude_v` /
/// `ltd.amplitude_v` when the first pulse does not move the conductance the right way (below
/// threshold or wrong polarity).
pub fn tabulate(cfg: &TabulateConfig) -> Result<Tabulated, Vec<FieldError>> {
    cfg.validate()?;
    let dev = cfg.model.build()?;
    let (lo, hi) = dev.state_range();
    let margin = cfg.start_margin * (hi - lo);
    let (x_low_g, x_high_g) = if dev.conductance_s(lo) < dev.conductance_s(hi) {
        (lo + margin, hi - margin)
    } else {
        (hi - margin, lo + margin)
    };
    let run = |x0: f64, pulse: &Pulse, up: bool| {
        let mut xs = vec![x0];
        let mut gs = vec![dev.conductance_s(x0)];
        let mut x = x0;
        for _ in 0..cfg.max_pulses {
            let xn = dev.apply_pulse(x, pulse.amplitude_v, pulse.width_s);
            let g = dev.conductance_s(xn);
            let last = gs[gs.len() - 1];
            if (up && g <= last) || (!up && g >= last) {
                break;
            }
            xs.push(xn);
            gs.push(g);
            x = xn;
        }
        (xs, gs)
    };
    let (ltp_states, ltp) = run(x_low_g, &cfg.ltp, true);
    let (ltd_states, ltd) = run(x_high_g, &cfg.ltd, false);
    let mut c = Checks::new();
    c.check(
        ltp.len() >= 2,
        "ltp.amplitude_v",
        cfg.ltp.amplitude_v,
        "the LTP pulse does not raise the conductance (below threshold or wrong polarity)",
    );
    c.check(
        ltd.len() >= 2,
        "ltd.amplitude_v",
        cfg.ltd.amplitude_v,
        "the LTD pulse does not lower the conductance (below threshold or wrong polarity)",
    );
    c.finish()?;
    Ok(Tabulated {
        lut: LutDevice::from_tables(ltp, ltd, 0.0),
        ltp_states,
        ltd_states,
    })
}

/// `n` pulses of `v` volts, `width_s` seconds each, applied by exact per-pulse integration.
pub fn apply_pulses_exact<D: StateDevice + ?Sized>(
    dev: &D,
    mut x: f64,
    v: f64,
    width_s: f64,
    n: u32,
) -> f64 {
    for _ in 0..n {
        x = dev.apply_pulse(x, v, width_s);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PulseResponse;

    fn hp(window: Window, integrator: Integrator) -> LinearIonDrift {
        LinearIonDrift::new(HpConfig {
            window,
            integrator,
            ..HpConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn adaptive_and_rk4_agree_on_windowed_pulses() {
        // Biolek p = 2 over 0.2 s at 1 V from x = 0.1: a reference with 20000 RK4 steps.
        let reference = hp(Window::Biolek { p: 2 }, Integrator::Rk4 { steps: 20_000 })
            .apply_pulse(0.1, 1.0, 0.2);
        let adaptive =
            hp(Window::Biolek { p: 2 }, Integrator::default()).apply_pulse(0.1, 1.0, 0.2);
        let coarse =
            hp(Window::Biolek { p: 2 }, Integrator::Rk4 { steps: 20 }).apply_pulse(0.1, 1.0, 0.2);
        assert!(reference > 0.1 && reference < 1.0, "{reference}");
        assert!(
            (adaptive - reference).abs() < 1e-9,
            "{adaptive} vs {reference}"
        );
        assert!((coarse - reference).abs() < 1e-4, "{coarse} vs {reference}");
        // Without a window the integrator reproduces the closed form.
        let closed = hp(Window::None, Integrator::default()).apply_pulse(0.1, 1.0, 0.2);
        let numeric = integrate(
            &hp(Window::None, Integrator::default()),
            0.1,
            1.0,
            0.2,
            Integrator::default(),
        );
        assert!((closed - numeric).abs() < 1e-9, "{closed} vs {numeric}");
    }

    #[test]
    fn windows_have_their_textbook_values() {
        assert_eq!(Window::Joglekar { p: 1 }.value(0.0, true), 0.0);
        assert_eq!(Window::Joglekar { p: 1 }.value(0.5, true), 1.0);
        assert_eq!(Window::Biolek { p: 1 }.value(0.0, true), 1.0);
        assert_eq!(Window::Biolek { p: 1 }.value(1.0, true), 0.0);
        assert_eq!(Window::Biolek { p: 1 }.value(0.0, false), 0.0);
        assert_eq!(Window::Prodromakis { p: 1, j: 1.0 }.value(0.5, true), 0.25);
        assert!(Window::Prodromakis { p: 1, j: 1.0 }.value(0.0, true).abs() < 1e-15);
        // Boundary lock: a Joglekar device at x = 0 never moves.
        assert_eq!(
            hp(Window::Joglekar { p: 1 }, Integrator::default()).apply_pulse(0.0, 1.0, 1.0),
            0.0
        );
    }

    #[test]
    fn tabulation_rules_are_reported() {
        let cfg = TabulateConfig {
            model: StateModelConfig::Hp(HpConfig {
                window: Window::Joglekar { p: 1 },
                ..HpConfig::default()
            }),
            ltp: Pulse {
                amplitude_v: 1.0,
                width_s: 0.01,
            },
            ltd: Pulse {
                amplitude_v: -1.0,
                width_s: 0.01,
            },
            max_pulses: 0,
            start_margin: 0.0,
        };
        let e: Vec<String> = tabulate(&cfg)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(e.iter().any(|s| s.starts_with("max_pulses = 0")), "{e:?}");
        assert!(
            e.iter()
                .any(|s| s.starts_with("start_margin = 0: must be > 0")),
            "{e:?}"
        );
        let bad = HpConfig {
            r_off_ohm: 50.0,
            integrator: Integrator::Rk4 { steps: 0 },
            ..HpConfig::default()
        };
        let e: Vec<String> = bad
            .validate()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            e.iter()
                .any(|s| s.starts_with("r_off_ohm = 50: must exceed r_on_ohm")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|s| s.starts_with("integrator.steps = 0")),
            "{e:?}"
        );
    }

    #[test]
    fn model_inversion_round_trips() {
        let v = Vteam::new(VteamConfig::default()).unwrap();
        for (x0, dx, t) in [
            (0.5e-9, 1e-9, 50e-9),
            (2.5e-9, -1e-9, 1e-12),
            (1e-9, 0.3e-9, 5e-9),
        ] {
            let volts = v.voltage_for_step(dx, t).unwrap();
            let x1 = v.apply_pulse(x0, volts, t);
            assert!(
                (x1 - (x0 + dx)).abs() < 1e-12 * 3e-9 + 1e-22,
                "{x0} {dx}: {x1}"
            );
            assert!(volts >= v.p.v_off_v || volts <= v.p.v_on_v);
        }
        assert_eq!(v.voltage_for_step(0.0, 1e-9), None);
        let h = hp(Window::None, Integrator::default());
        let volts = h.voltage_for_memristance(16e3, 8e3, 0.3).unwrap();
        let m = h.memristance_ohm(h.apply_pulse(h.state_of(16e3), volts, 0.3));
        assert!((m - 8e3).abs() < 1e-6, "{m}");
        // A tiny change needs a sub-threshold voltage at this width: not writable.
        assert_eq!(h.voltage_for_memristance(16e3, 15_999.0, 1.0), None);
        assert!(h.voltage_for_memristance(8e3, 16e3, 0.3).unwrap() < -0.55);
    }

    #[test]
    fn hp_table_saturates_at_full_swing() {
        let tab = tabulate(&TabulateConfig {
            model: StateModelConfig::Hp(HpConfig::default()),
            ltp: Pulse {
                amplitude_v: 1.0,
                width_s: 0.1,
            },
            ltd: Pulse {
                amplitude_v: -1.0,
                width_s: 0.1,
            },
            max_pulses: 100,
            start_margin: 0.0,
        })
        .unwrap();
        // 0.805 s full switch in 0.1 s pulses: 8 moving pulses, the 9th reaches R_on.
        assert_eq!(tab.ltp_states.len(), 10);
        assert_eq!(*tab.ltp_states.last().unwrap(), 1.0);
        assert_eq!(tab.lut.g_max_s(), 1.0 / 100.0);
    }
}
