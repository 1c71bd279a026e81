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
//!
//! | module | what |
//! | --- | --- |
//! | this one | the [`StateDevice`] trait, the integrators, the [`Window`]s |
//! | `hp` | [`HpConfig`], [`LinearIonDrift`] |
//! | `vteam` | [`VteamConfig`], [`Vteam`] |
//! | `tabulate` | [`StateModelConfig`], [`tabulate`] into a look-up-table device, [`apply_pulses_exact`] |

use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::check_sigma;

mod hp;
mod tabulate;
#[cfg(test)]
mod tests;
mod vteam;

pub use hp::{HpConfig, LinearIonDrift};
pub use tabulate::{StateModelConfig, TabulateConfig, Tabulated, apply_pulses_exact, tabulate};
pub use vteam::{Vteam, VteamConfig};

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

/// The default window of the state models: none.
fn window_none() -> Window {
    Window::None
}
