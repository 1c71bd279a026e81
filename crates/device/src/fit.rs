//! Fitted models out (issue #21): NeuroSim's exponential model and aihwkit-style SoftBounds,
//! PowStep and ExpStep parameters fitted to mean measured curves, with goodness of fit, and the
//! number of distinguishable levels.
//!
//! Every model is fitted the same way: the fit minimises the squared one-pulse prediction
//! errors over every measured step of every sweep, `Σ (G_{p+1} − f(G_p))²` with `f` one
//! noise-free pulse of the model (LTP steps for the LTP curve, LTD for LTD). With
//! cycle-to-cycle noise this is unbiased where a fit of the mean curve is not (noise bends the
//! mean of noisy sweeps: on Ag:a-Si at 3.5 % a mean-curve fit reads NL_LTP 3.2 for 2.4).
//! Goodness of fit is then reported on the mean curves: the model's noise-free curves are
//! simulated pulse by pulse from the mean first conductance of each direction.
//!
//! | model | free parameters | search |
//! |---|---|---|
//! | NeuroSim exponential | `NL_LTP`, `NL_LTD` (range and pulse counts from the data) | every label of NeuroSim's table, `±0.01 … ±9.00`, and 0 (linear), per direction; the normA rule of [`norm_a`](crate::norm_a) with the table's truncation |
//! | SoftBounds | `dw_min`, `up_down`, and the bounds `g_on_s ≥ max`, `g_off_s ≤ min` | Nelder–Mead on transformed parameters |
//! | PowStep | as SoftBounds plus `γ`, `pow_up_down` | Nelder–Mead |
//! | ExpStep | `dw_min`, `up_down`, `A⁺`, `A⁻`, `γ⁺`, `γ⁻` (`a`, `b` at aihwkit's defaults 0.244, 0.2425; range from the data) | Nelder–Mead |
//!
//! Goodness of fit: RMSE in siemens over every point of both curves, and
//! `R² = 1 − SS_res/SS_tot` with `SS_tot` about the mean of all points. Fitted step devices have
//! no variation (aihwkit's d2d defaults set to 0) and carry the measured cycle-to-cycle spread
//! as `dw_min_std` = c2c σ·range / mean step \[I\].
//!
//! Distinguishable levels ([`distinguishable_levels`]): walking along a mean curve, a new level
//! starts where the conductance has moved at least `2σ` from the last level's (σ the measured
//! cycle-to-cycle spread in siemens; every pulse is a level when σ = 0) \[I\].

use nacsim_core::Stream;
use nacsim_core::config::Validate;
use serde::{Deserialize, Serialize};

use crate::config::PulseDeviceConfig;
use crate::neurosim::{ExpDeviceConfig, NL_TABLE_RANGE, NlLookup, PulseRounding};
use crate::step::{StepDeviceConfig, StepModel};
use crate::{NoNoise, PulseResponse, WritePulses};

/// Goodness of a fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitQuality {
    /// Root mean square error over both curves in siemens.
    pub rmse_s: f64,
    /// Coefficient of determination over both curves (1 is perfect).
    pub r2: f64,
}

/// One fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// Short name (`neurosim`, `softbounds`, `powstep`, `expstep`).
    pub name: &'static str,
    /// The device, ready for a preset file.
    pub device: PulseDeviceConfig,
    /// Its goodness of fit.
    pub quality: FitQuality,
}

/// The noise-free curves of `dev` starting from `ltp0`/`ltd0` with the measured pulse counts.
fn simulate(dev: &dyn PulseResponse, ltp0: f64, n_ltp: usize, ltd0: f64, n_ltd: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n_ltp + n_ltd);
    let mut g = ltp0;
    out.push(g);
    for _ in 1..n_ltp {
        g = dev.apply_pulses(g, 1, &mut NoNoise);
        out.push(g);
    }
    g = ltd0;
    out.push(g);
    for _ in 1..n_ltd {
        g = dev.apply_pulses(g, -1, &mut NoNoise);
        out.push(g);
    }
    out
}

/// RMSE and R² of `pred` against `meas`.
pub fn quality(meas: &[f64], pred: &[f64]) -> FitQuality {
    let n = meas.len() as f64;
    let mean = meas.iter().sum::<f64>() / n;
    let ss_res: f64 = meas.iter().zip(pred).map(|(m, p)| (m - p) * (m - p)).sum();
    let ss_tot: f64 = meas.iter().map(|m| (m - mean) * (m - mean)).sum();
    FitQuality {
        rmse_s: (ss_res / n).sqrt(),
        r2: if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else {
            1.0
        },
    }
}

/// Measured sweeps to fit (see [`measured`](crate::measured)).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// LTP sweeps (siemens per pulse index), at least one, all the same length.
    pub ltp: Vec<Vec<f64>>,
    /// LTD sweeps.
    pub ltd: Vec<Vec<f64>>,
    /// Cycle-to-cycle σ as a fraction of the range (carried into the fitted devices).
    pub c2c_sigma: f64,
    /// Write pulses of the fitted devices.
    pub pulses: WritePulses,
}

impl Target {
    /// Mean LTP curve.
    pub fn ltp_mean(&self) -> Vec<f64> {
        crate::measured::mean_curve(&self.ltp)
    }
    /// Mean LTD curve.
    pub fn ltd_mean(&self) -> Vec<f64> {
        crate::measured::mean_curve(&self.ltd)
    }
    fn means(&self) -> Vec<f64> {
        let mut a = self.ltp_mean();
        a.extend(self.ltd_mean());
        a
    }
    /// Lowest and highest measured conductance over every point (siemens).
    pub fn range(&self) -> (f64, f64) {
        let all = self.ltp.iter().chain(&self.ltd).flatten().copied();
        all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), g| {
            (lo.min(g), hi.max(g))
        })
    }
    /// Sum of squared one-pulse prediction errors over the measured steps of the LTP (`ltp`)
    /// or LTD sweeps: `Σ (G_{p+1} − f(G_p))²` with `f` one noise-free pulse of `dev`. Unlike a
    /// fit of the mean curve this is not biased by cycle-to-cycle noise, which bends the mean
    /// of noisy sweeps. Steps that start within `3σ` plus two end steps of the bound they move
    /// towards are left out (σ the c2c spread in siemens): the device clips them, and keeping
    /// only the unclipped ones would bias the steps there \[I\]. Without noise every step counts.
    fn step_sse(&self, dev: &dyn PulseResponse, ltp: bool) -> f64 {
        let (lo, hi) = self.range();
        let (sweeps, n) = if ltp { (&self.ltp, 1) } else { (&self.ltd, -1) };
        let band = if self.c2c_sigma > 0.0 {
            let m = crate::measured::mean_curve(sweeps);
            let end_step = (m[m.len() - 1] - m[m.len() - 2]).abs();
            3.0 * self.c2c_sigma * (hi - lo) + 2.0 * end_step
        } else {
            0.0
        };
        let mut s = 0.0;
        for sw in sweeps {
            for w in sw.windows(2) {
                if (ltp && w[0] > hi - band) || (!ltp && w[0] < lo + band) {
                    continue;
                }
                let e = w[1] - dev.apply_pulses(w[0], n, &mut NoNoise);
                s += e * e;
            }
        }
        s
    }
    fn quality(&self, dev: &dyn PulseResponse) -> FitQuality {
        let (ltp, ltd) = (self.ltp_mean(), self.ltd_mean());
        let pred = simulate(dev, ltp[0], ltp.len(), ltd[0], ltd.len());
        quality(&self.means(), &pred)
    }
}

/// The NeuroSim exponential device with the labels that fit best (module docs).
pub fn fit_neurosim(t: &Target) -> Fitted {
    let (lo, hi) = t.range();
    let base = ExpDeviceConfig {
        g_on_s: hi,
        g_off_s: lo,
        pulses_ltp: (t.ltp[0].len() - 1) as u32,
        pulses_ltd: (t.ltd[0].len() - 1) as u32,
        nl_ltp: 0.0,
        nl_ltd: 0.0,
        c2c_sigma: t.c2c_sigma,
        nl_d2d_sigma: 0.0,
        nl_lookup: NlLookup::NeuroSimTable,
        rounding: PulseRounding::NeuroSim,
        pulses: t.pulses,
    };
    let max = (NL_TABLE_RANGE.1 * 100.0).round() as i32;
    let labels: Vec<f64> = std::iter::once(0.0)
        .chain((1..=max).flat_map(|k| [f64::from(k) / 100.0, -f64::from(k) / 100.0]))
        .collect();
    // The two curves are independent: fit each label on its own curve.
    let curve_sse = |cfg: &ExpDeviceConfig, ltp: bool| -> f64 {
        match cfg.build_nominal() {
            Ok(dev) => t.step_sse(&dev, ltp),
            Err(_) => f64::INFINITY,
        }
    };
    let best = |ltp: bool| -> f64 {
        let mut best = (f64::INFINITY, 0.0);
        for &nl in &labels {
            let mut c = base.clone();
            if ltp {
                c.nl_ltp = nl;
            } else {
                c.nl_ltd = nl;
            }
            let s = curve_sse(&c, ltp);
            if s < best.0 {
                best = (s, nl);
            }
        }
        best.1
    };
    let cfg = ExpDeviceConfig {
        nl_ltp: best(true),
        nl_ltd: best(false),
        ..base
    };
    let dev = cfg.build_nominal().expect("fitted labels are in the table");
    Fitted {
        name: "neurosim",
        quality: t.quality(&dev),
        device: PulseDeviceConfig::Exponential(cfg),
    }
}

/// Nelder–Mead minimisation of `f` from `x0` with initial steps `step` (standard coefficients
/// 1, 2, 0.5, 0.5; Nelder & Mead, Comput. J. 1965), `iters` iterations.
pub fn nelder_mead(f: &dyn Fn(&[f64]) -> f64, x0: &[f64], step: &[f64], iters: usize) -> Vec<f64> {
    let n = x0.len();
    let mut pts: Vec<(Vec<f64>, f64)> = (0..=n)
        .map(|i| {
            let mut x = x0.to_vec();
            if i > 0 {
                x[i - 1] += step[i - 1];
            }
            let v = f(&x);
            (x, v)
        })
        .collect();
    let nan_last = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
    for _ in 0..iters {
        pts.sort_by(|a, b| nan_last(a.1).total_cmp(&nan_last(b.1)));
        let centroid: Vec<f64> = (0..n)
            .map(|j| pts[..n].iter().map(|p| p.0[j]).sum::<f64>() / n as f64)
            .collect();
        let along = |c: f64| -> Vec<f64> {
            (0..n)
                .map(|j| centroid[j] + c * (pts[n].0[j] - centroid[j]))
                .collect()
        };
        let xr = along(-1.0);
        let fr = nan_last(f(&xr));
        if fr < pts[0].1 {
            let xe = along(-2.0);
            let fe = nan_last(f(&xe));
            pts[n] = if fe < fr { (xe, fe) } else { (xr, fr) };
        } else if fr < pts[n - 1].1 {
            pts[n] = (xr, fr);
        } else {
            let xc = along(0.5);
            let fc = nan_last(f(&xc));
            if fc < pts[n].1 {
                pts[n] = (xc, fc);
            } else {
                let best = pts[0].0.clone();
                for p in pts.iter_mut().skip(1) {
                    p.0 = (0..n).map(|j| best[j] + 0.5 * (p.0[j] - best[j])).collect();
                    p.1 = nan_last(f(&p.0));
                }
            }
        }
    }
    pts.sort_by(|a, b| nan_last(a.1).total_cmp(&nan_last(b.1)));
    pts.swap_remove(0).0
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Which aihwkit step model to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// SoftBounds.
    SoftBounds,
    /// PowStep.
    PowStep,
    /// ExpStep.
    ExpStep,
}

/// aihwkit `ExpStepDevice` defaults of `es_a` and `es_b`.
const ES_A: f64 = 0.244;
const ES_B: f64 = 0.2425;

/// A step device from the search vector `x` of [`fit_step`].
fn step_config(kind: StepKind, t: &Target, x: &[f64]) -> StepDeviceConfig {
    let (lo, hi) = t.range();
    let span = hi - lo;
    // Soft-bounded models approach their bounds asymptotically: fit the bounds too.
    let (g_on, g_off, rest) = match kind {
        StepKind::SoftBounds | StepKind::PowStep => {
            (hi + span * x[2].exp(), lo * sigmoid(x[3]), &x[4..])
        }
        StepKind::ExpStep => (hi, lo, &x[2..]),
    };
    let model = match kind {
        StepKind::SoftBounds => StepModel::SoftBounds,
        StepKind::PowStep => StepModel::PowStep {
            gamma: rest[0].exp(),
            gamma_dtod: 0.0,
            up_down: rest[1],
            up_down_dtod: 0.0,
        },
        StepKind::ExpStep => StepModel::ExpStep {
            a: ES_A,
            b: ES_B,
            a_up: rest[0],
            a_down: rest[1],
            gamma_up: rest[2],
            gamma_down: rest[3],
        },
    };
    let mut c = StepDeviceConfig::new(model, g_on, g_off).ideal();
    c.dw_min = x[0].exp();
    c.up_down = x[1];
    c.pulses = t.pulses;
    c
}

/// The aihwkit step model `kind` fitted to `t` (module docs).
pub fn fit_step(kind: StepKind, t: &Target) -> Fitted {
    let (lo, hi) = t.range();
    let span = hi - lo;
    let d2d = Stream::new(0, nacsim_core::Purpose::DeviceToDevice, 0, 0);
    let pulses = ((t.ltp[0].len() + t.ltd[0].len()) / 2).max(1) as f64;
    let dw0 = (1.2 / pulses).ln();
    let (x0, step): (Vec<f64>, Vec<f64>) = match kind {
        StepKind::SoftBounds => (vec![dw0, 0.0, -1.0, 2.0], vec![0.5, 0.2, 1.0, 1.0]),
        StepKind::PowStep => (
            vec![dw0, 0.0, -1.0, 2.0, 0.0, 0.0],
            vec![0.5, 0.2, 1.0, 1.0, 0.5, 0.2],
        ),
        StepKind::ExpStep => (
            vec![dw0, 0.0, 0.1, 0.1, 2.0, 2.0],
            vec![0.5, 0.2, 0.3, 0.3, 2.0, 2.0],
        ),
    };
    let f = |x: &[f64]| -> f64 {
        let c = step_config(kind, t, x);
        if c.validate().is_err() {
            return f64::INFINITY;
        }
        match c.build(&d2d, 0) {
            Ok(dev) => (t.step_sse(&dev, true) + t.step_sse(&dev, false)) / (span * span),
            Err(_) => f64::INFINITY,
        }
    };
    // Two restarts from the best point (Nelder–Mead stalls on flat valleys).
    let mut x = x0;
    for _ in 0..3 {
        x = nelder_mead(&f, &x, &step, 600);
    }
    let mut c = step_config(kind, t, &x);
    // Cycle-to-cycle spread as a relative step σ: σ_G per pulse / mean step in siemens.
    let mean_step_s = c.dw_min * (c.g_on_s - c.g_off_s) / (c.w_max - c.w_min);
    c.dw_min_std = if mean_step_s > 0.0 {
        t.c2c_sigma * span / mean_step_s
    } else {
        0.0
    };
    let dev = c.build(&d2d, 0).expect("validated in the search");
    Fitted {
        name: match kind {
            StepKind::SoftBounds => "softbounds",
            StepKind::PowStep => "powstep",
            StepKind::ExpStep => "expstep",
        },
        quality: t.quality(&dev),
        device: PulseDeviceConfig::Step(c),
    }
}

/// Levels along `curve` that are at least `2·sigma_s` apart (module docs); every point when
/// `sigma_s` is 0 and the curve is strictly monotone.
pub fn distinguishable_levels(curve: &[f64], sigma_s: f64) -> usize {
    let Some(&first) = curve.first() else {
        return 0;
    };
    let mut levels = 1;
    let mut last = first;
    for &g in &curve[1..] {
        let moved = (g - last).abs();
        if (sigma_s > 0.0 && moved >= 2.0 * sigma_s) || (sigma_s == 0.0 && moved > 0.0) {
            levels += 1;
            last = g;
        }
    }
    levels
}

/// Every fit of [`fit_neurosim`] and [`fit_step`], in that order.
pub fn fit_all(t: &Target) -> Vec<Fitted> {
    vec![
        fit_neurosim(t),
        fit_step(StepKind::SoftBounds, t),
        fit_step(StepKind::PowStep, t),
        fit_step(StepKind::ExpStep, t),
    ]
}
