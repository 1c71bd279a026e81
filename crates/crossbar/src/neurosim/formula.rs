//! NeuroSim's circuit primitives (`NeuroSim/formula.cpp`): gate and drain capacitance, standard
//! cell and pass-gate layout, on-resistance and the Horowitz delay, for bulk nodes (F ≥ 22 nm).
//!
//! Widths and heights are in m; capacitances in F; resistances in Ω; times in s.

use super::tech::{
    MIN_GAP_BET_FIELD_POLY, MIN_GAP_BET_GATE_POLY, MIN_GAP_BET_P_AND_N_DIFFS, MIN_POLY_EXT_DIFF,
    POLY_WIDTH, Technology,
};

/// Logic gate kinds of `CalculateGateArea` / `CalculateGateCapacitance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Inverter (also used for a transmission gate or a single transistor).
    Inv,
    /// NOR with `n` inputs.
    Nor,
    /// NAND with `n` inputs.
    Nand,
}

/// Transistor polarity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mos {
    /// n-channel.
    N,
    /// p-channel.
    P,
}

/// `CalculateGateCap`: (C_ideal + C_overlap + C_fringe)·W in F (C_polywire is 0).
pub fn gate_cap(width: f64, t: &Technology) -> f64 {
    (t.cap_ideal_gate + t.cap_overlap + t.cap_fringe) * width
}

/// `CalculateOnResistance`: 1.54·V_dd / (I_on·W) in Ω.
pub fn on_resistance(width: f64, mos: Mos, t: &Technology) -> f64 {
    let ion = match mos {
        Mos::N => t.current_on_nmos,
        Mos::P => t.current_on_pmos,
    };
    t.effective_resistance_multiplier * t.vdd_v / (ion * width)
}

/// `horowitz` with NeuroSim's forced β = 0.5 and v_s = 0.5: the delay in s of a stage with time
/// constant `tr` (s) driven by a ramp `ramp_in` (1/s; 1e20 = a step), and the output ramp.
pub fn horowitz(tr: f64, ramp_in: f64) -> (f64, f64) {
    let alpha = 1.0 / ramp_in / tr;
    let vs: f64 = 0.5;
    let beta = 0.5;
    let t = tr * (vs.ln() * vs.ln() + 2.0 * alpha * beta * (1.0 - vs)).sqrt();
    (t, (1.0 - vs) / t)
}

/// Max P and N widths (m) that fit a cell of height `h` without folding, for P/(P+N) `ratio`.
fn max_widths(ratio: f64, h: f64, f: f64) -> (f64, f64) {
    let ext = (MIN_POLY_EXT_DIFF + MIN_GAP_BET_FIELD_POLY / 2.0) * 2.0 * f;
    if ratio == 0.0 {
        (0.0, h - ext)
    } else if ratio == 1.0 {
        (h - ext, 0.0)
    } else {
        let p = ratio * (h - MIN_GAP_BET_P_AND_N_DIFFS * f - ext);
        (p, p / ratio * (1.0 - ratio))
    }
}

/// `CalculateGateArea` (bulk): the (height, width) in m of a gate of `n_in` inputs with NMOS width
/// `wn` and PMOS width `wp` in a cell of height `h` (folding transistors that do not fit).
pub fn gate_area(gate: Gate, n_in: u32, wn: f64, wp: f64, h: f64, t: &Technology) -> (f64, f64) {
    let f = t.f();
    let ratio = wp / (wp + wn);
    let (max_p, max_n) = max_widths(ratio, h, f);
    let pitch = (POLY_WIDTH + MIN_GAP_BET_GATE_POLY) * f;
    let region = |w: f64, max: f64| -> (f64, u32) {
        if w <= 0.0 {
            (0.0, 1)
        } else if w <= max {
            (2.0 * pitch, 1)
        } else {
            let k = (w / max).ceil();
            ((k + 1.0) * pitch, k as u32)
        }
    };
    let (unit_p, fold_p) = region(wp, max_p);
    let (unit_n, fold_n) = region(wn, max_n);
    let n = f64::from(n_in);
    let (wr_p, wr_n) = match gate {
        Gate::Inv => (unit_p, unit_n),
        Gate::Nor | Gate::Nand => {
            if fold_p == 1 && fold_n == 1 {
                (
                    unit_p * n - (n - 1.0) * pitch,
                    unit_n * n - (n - 1.0) * pitch,
                )
            } else {
                (unit_p * n, unit_n * n)
            }
        }
    };
    (h, wr_n.max(wr_p))
}

/// `CalculatePassGateArea` (bulk): (height, width) in m of a pass gate folded `num_fold` times.
pub fn pass_gate_area(wn: f64, wp: f64, num_fold: i64, t: &Technology) -> (f64, f64) {
    let f = t.f();
    let k = num_fold as f64;
    let width = (k + 1.0) * (POLY_WIDTH + MIN_GAP_BET_GATE_POLY) * f;
    let height = wp / k
        + wn / k
        + MIN_GAP_BET_P_AND_N_DIFFS * f
        + (MIN_POLY_EXT_DIFF + MIN_GAP_BET_FIELD_POLY / 2.0) * 2.0 * f;
    (height, width)
}

/// `CalculateGateCapacitance` (bulk): (input, output) capacitance in F of a gate in a cell of
/// height `h`. Reproduces NeuroSim's INV branch, whose N side uses the P fold count.
pub fn gate_caps(gate: Gate, n_in: u32, wn: f64, wp: f64, h: f64, t: &Technology) -> (f64, f64) {
    let f = t.f();
    let ratio = wp / (wp + wn);
    let (max_p, max_n) = max_widths(ratio, h, f);
    let gap = f * MIN_GAP_BET_GATE_POLY;
    // (drain unit width, source unit width, drain height, folds)
    let side = |w: f64, max: f64| -> (f64, f64, f64, i64) {
        if w <= 0.0 {
            (0.0, 0.0, 0.0, 1)
        } else if w <= max {
            (gap, gap, w, 1)
        } else {
            let k = (w / max).ceil() as i64;
            let drain = ((k + 1) as f64 / 2.0).ceil() * gap;
            let source = ((k + 1) as f64 / 2.0).floor() * gap;
            (drain, source, max, k)
        }
    };
    let (ud_p, us_p, hd_p, fold_p) = side(wp, max_p);
    let (ud_n, us_n, hd_n, fold_n) = side(wn, max_n);
    let n = i64::from(n_in);
    let nf = n as f64;
    let odd = |k: i64| ((k + 1) % 2) as f64; // (k+1)%2
    let (mut wd_p, mut wd_n, mut sw_p, mut sw_n) = (0.0, 0.0, 0.0, 0.0);
    match gate {
        Gate::Inv => {
            if wp > 0.0 {
                wd_p = ud_p;
                sw_p = wd_p * 2.0 + hd_p * (1.0 + odd(fold_p));
            }
            if wn > 0.0 {
                wd_n = ud_n;
                sw_n = wd_n * 2.0 + hd_n * (1.0 + odd(fold_p));
            }
        }
        Gate::Nor => {
            if fold_p == 1 && fold_n == 1 {
                if wp > 0.0 {
                    wd_p = ud_p * nf;
                    sw_p = wd_p * 2.0 + hd_p;
                }
                if wn > 0.0 {
                    wd_n = ud_n * ((nf + 1.0) / 2.0).floor();
                    sw_n = wd_n * 2.0 + hd_n * (1.0 - ((n + 1) % 2) as f64);
                }
            } else {
                if wp > 0.0 {
                    wd_p = ud_p * nf + (nf - 1.0) * us_p;
                    sw_p = wd_p * 2.0
                        + hd_p * (1.0 + odd(fold_p)) * nf
                        + hd_p * (1.0 - odd(fold_p)) * (nf - 1.0);
                }
                if wn > 0.0 {
                    wd_n = ud_n * nf;
                    sw_n = wd_n * 2.0 + hd_n * (1.0 + odd(fold_n)) * nf;
                }
            }
        }
        Gate::Nand => {
            if fold_p == 1 && fold_n == 1 {
                if wp > 0.0 {
                    wd_p = ud_p * ((nf + 1.0) / 2.0).floor();
                    sw_p = wd_p * 2.0 + hd_p * (1.0 - ((n + 1) % 2) as f64);
                }
                if wn > 0.0 {
                    wd_n = ud_n * nf;
                    sw_n = wd_n * 2.0 + hd_n;
                }
            } else {
                if wp > 0.0 {
                    wd_p = ud_p * nf;
                    sw_p = wd_p * 2.0 + hd_p * (1.0 + odd(fold_p)) * nf;
                }
                if wn > 0.0 {
                    wd_n = ud_n * nf + (nf - 1.0) * us_n;
                    sw_n = wd_n * 2.0
                        + hd_n * (1.0 + odd(fold_n)) * nf
                        + hd_n * (1.0 - odd(fold_n)) * (nf - 1.0);
                }
            }
        }
    }
    let bottom = (wd_n * hd_n + wd_p * hd_p) * t.cap_junction;
    let sidewall = (sw_n + sw_p) * t.cap_sidewall;
    let channel = (fold_n as f64 * hd_n + fold_p as f64 * hd_p) * t.cap_drain_to_channel;
    (
        gate_cap(wn, t) + gate_cap(wp, t),
        bottom + sidewall + channel,
    )
}

/// `CalculateDrainCap`: the drain capacitance in F of one transistor of width `w` in a cell of
/// height `h`.
pub fn drain_cap(w: f64, mos: Mos, h: f64, t: &Technology) -> f64 {
    match mos {
        Mos::N => gate_caps(Gate::Inv, 1, w, 0.0, h, t).1,
        Mos::P => gate_caps(Gate::Inv, 1, 0.0, w, h, t).1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_match_the_note_values() {
        let t = Technology::ptm32_hp(301);
        let f = t.f();
        // (1.2 x 0.3767721 + 0.4713762) fF/um = 0.9235 fF/um of gate width.
        assert!((gate_cap(1e-6, &t) / 0.923503e-15 - 1.0).abs() < 1e-5);
        // R_n(F) = 1.54 * 0.9 / (1407 * 32 nm) = 30 784 ohm.
        assert!((on_resistance(f, Mos::N, &t) - 30_784.0).abs() < 1.0);
        // A step input gives tau * ln 2.
        let (d, _) = horowitz(1e-9, 1e20);
        assert!((d - 1e-9 * std::f64::consts::LN_2).abs() < 1e-15);
        let pn = t.pn_size_ratio;
        let h = 28.0 * f;
        let w = |g, n, wn: f64, wp: f64| gate_area(g, n, wn * f, wp * f, h, &t).1 / f;
        assert!((w(Gate::Inv, 1, 2.0, 2.0 * pn) - 7.6).abs() < 1e-9);
        assert!((w(Gate::Nand, 2, 4.0, 2.0 * pn) - 11.4).abs() < 1e-9);
        assert!((w(Gate::Nor, 5, 2.0, 5.0 * 2.0 * pn) - 22.8).abs() < 1e-9);
        // A wide transistor folds: 2.052F in a 0.4F-tall region folds 6 times.
        let c6 = drain_cap(2.052 * f, Mos::N, 4.0 * f, &t);
        let c1 = drain_cap(2.052 * f, Mos::N, 28.0 * f, &t);
        assert!(c6 > c1);
    }
}
