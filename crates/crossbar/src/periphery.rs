//! Analog and digital periphery after the array: activation circuits with their ideal
//! counterparts, average pooling as an equal-conductance crossbar, and digital max pooling
//! (note §1.5). The scheduler may use them; they are not part of [`ProgrammedLayer::run`](crate::ProgrammedLayer::run).

use ndarray::{Array3, ArrayView3};
use serde::{Deserialize, Serialize};

/// An activation realized by a circuit as a piecewise-linear transfer curve (op-amp
/// saturation gives hard-tanh and hard-sigmoid, a diode or comparator stage gives ReLU \[I\]),
/// next to the smooth function it approximates ([`ActivationCircuit::ideal`]), so the accuracy
/// gap between the two can be measured. Inputs and outputs are in the same normalized units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ActivationCircuit {
    /// `clamp(gain·x + (y_min+y_max)/2, y_min, y_max)`; ideal: the logistic sigmoid with the same
    /// rails and the same slope at 0, `y_min + (y_max−y_min)·σ(4·gain·x/(y_max−y_min))`.
    HardSigmoid {
        /// Slope at 0 (0.25 matches the logistic sigmoid).
        gain: f32,
        /// Lower rail.
        y_min: f32,
        /// Upper rail.
        y_max: f32,
    },
    /// `clamp(gain·x, −v_sat, v_sat)`; ideal: `v_sat·tanh(gain·x/v_sat)`.
    HardTanh {
        /// Slope at 0.
        gain: f32,
        /// Rail magnitude.
        v_sat: f32,
    },
    /// Diode stage `max(0, gain·(x − v_th))`; ideal: `max(0, gain·x)`.
    Relu {
        /// Slope above threshold.
        gain: f32,
        /// Turn-on threshold (diode drop), ≥ 0; 0 for a comparator-based rectifier.
        v_th: f32,
    },
}

impl ActivationCircuit {
    /// Hard-sigmoid with slope 1/4 between rails 0 and 1 (the logistic sigmoid's slope at 0).
    pub fn hard_sigmoid() -> Self {
        ActivationCircuit::HardSigmoid {
            gain: 0.25,
            y_min: 0.0,
            y_max: 1.0,
        }
    }

    /// Hard-tanh with unit slope and rails ±1.
    pub fn hard_tanh() -> Self {
        ActivationCircuit::HardTanh {
            gain: 1.0,
            v_sat: 1.0,
        }
    }

    /// Ideal rectifier: unit slope, no threshold.
    pub fn relu() -> Self {
        ActivationCircuit::Relu {
            gain: 1.0,
            v_th: 0.0,
        }
    }

    /// The circuit's piecewise-linear transfer curve.
    pub fn apply(&self, x: f32) -> f32 {
        match *self {
            ActivationCircuit::HardSigmoid { gain, y_min, y_max } => {
                (gain * x + 0.5 * (y_min + y_max)).clamp(y_min.min(y_max), y_max.max(y_min))
            }
            ActivationCircuit::HardTanh { gain, v_sat } => {
                let v = v_sat.abs();
                (gain * x).clamp(-v, v)
            }
            ActivationCircuit::Relu { gain, v_th } => (gain * (x - v_th)).max(0.0),
        }
    }

    /// The smooth (or ideal) function the circuit approximates.
    pub fn ideal(&self, x: f32) -> f32 {
        match *self {
            ActivationCircuit::HardSigmoid { gain, y_min, y_max } => {
                let span = y_max - y_min;
                if span == 0.0 {
                    return y_min;
                }
                y_min + span / (1.0 + (-4.0 * gain * x / span).exp())
            }
            ActivationCircuit::HardTanh { gain, v_sat } => {
                if v_sat == 0.0 {
                    return 0.0;
                }
                v_sat * (gain * x / v_sat).tanh()
            }
            ActivationCircuit::Relu { gain, .. } => (gain * x).max(0.0),
        }
    }

    /// Applies the circuit curve to every element.
    pub fn apply_all(&self, xs: &mut [f32]) {
        for x in xs {
            *x = self.apply(*x);
        }
    }
}

/// Average pooling of `p×p` windows as a crossbar column per window: the `p²` inputs drive rows
/// at `V = x·v_read_v` through devices of conductance `g_s[i]` (all `G_p` when built by
/// [`AvgPoolCrossbar::new`]) into a TIA of gain `R_f = 1/(p²·G_p)`, so
/// `y = R_f·Σ G_i·V_i / v_read = mean(x)` for equal conductances (note §1.5).
#[derive(Debug, Clone, PartialEq)]
pub struct AvgPoolCrossbar {
    /// Window side `p`.
    pub p: usize,
    /// Conductance of each of the `p²` devices in siemens, row-major over the window.
    pub g_s: Vec<f64>,
    /// Nominal device conductance `G_p` in siemens (sets the TIA gain).
    pub g_p_s: f64,
    /// Read voltage of a unit input in volts.
    pub v_read_v: f64,
}

impl AvgPoolCrossbar {
    /// A `p×p` pool with every device at `g_p_s`.
    pub fn new(p: usize, g_p_s: f64, v_read_v: f64) -> Self {
        AvgPoolCrossbar {
            p,
            g_s: vec![g_p_s; p * p],
            g_p_s,
            v_read_v,
        }
    }

    /// TIA feedback resistance in ohms, `1/(p²·G_p)`.
    pub fn r_f_ohm(&self) -> f64 {
        1.0 / ((self.p * self.p) as f64 * self.g_p_s)
    }

    /// Pools `x` `[C, H, W]` with stride `p` (no padding: `⌊H/p⌋ × ⌊W/p⌋` outputs), computing
    /// each output as a column current through the TIA, in f64.
    pub fn pool(&self, x: ArrayView3<f32>) -> Array3<f32> {
        let (c, h, w) = x.dim();
        let p = self.p.max(1);
        let r_f = self.r_f_ohm();
        Array3::from_shape_fn((c, h / p, w / p), |(ch, oy, ox)| {
            let mut i_a = 0.0f64;
            for dy in 0..p {
                for dx in 0..p {
                    let v = f64::from(x[[ch, oy * p + dy, ox * p + dx]]) * self.v_read_v;
                    i_a += self.g_s[dy * p + dx] * v;
                }
            }
            (r_f * i_a / self.v_read_v) as f32
        })
    }
}

/// Max pooling of `p×p` windows with stride `p`, done digitally (comparator/WTA circuits are
/// not modelled; note §1.5). No padding.
pub fn max_pool_digital(x: ArrayView3<f32>, p: usize) -> Array3<f32> {
    let (c, h, w) = x.dim();
    let p = p.max(1);
    Array3::from_shape_fn((c, h / p, w / p), |(ch, oy, ox)| {
        let mut m = f32::NEG_INFINITY;
        for dy in 0..p {
            for dx in 0..p {
                m = m.max(x[[ch, oy * p + dy, ox * p + dx]]);
            }
        }
        m
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circuits_match_their_ideal_at_the_origin_and_the_rails() {
        for a in [
            ActivationCircuit::hard_sigmoid(),
            ActivationCircuit::hard_tanh(),
            ActivationCircuit::relu(),
        ] {
            assert!((a.apply(0.0) - a.ideal(0.0)).abs() < 1e-6, "{a:?}");
            let h = 1e-3;
            let slope_c = (a.apply(h) - a.apply(-h)) / (2.0 * h);
            let slope_i = (a.ideal(h) - a.ideal(-h)) / (2.0 * h);
            if !matches!(a, ActivationCircuit::Relu { .. }) {
                assert!(
                    (slope_c - slope_i).abs() < 1e-2,
                    "{a:?}: {slope_c} vs {slope_i}"
                );
            }
            assert!((a.apply(50.0) - a.ideal(50.0)).abs() < 1e-3, "{a:?}");
            assert!((a.apply(-50.0) - a.ideal(-50.0)).abs() < 1e-3, "{a:?}");
        }
        // The piecewise curves differ from the smooth ones near the knees.
        let hs = ActivationCircuit::hard_sigmoid();
        let gap = (hs.apply(2.0) - hs.ideal(2.0)).abs();
        assert!(gap > 0.05 && gap < 0.2, "gap {gap}");
        let ht = ActivationCircuit::hard_tanh();
        assert_eq!(ht.apply(3.0), 1.0);
        assert_eq!(ht.apply(-0.5), -0.5);
        let diode = ActivationCircuit::Relu {
            gain: 2.0,
            v_th: 0.3,
        };
        assert_eq!(diode.apply(0.2), 0.0);
        assert!((diode.apply(1.3) - 2.0).abs() < 1e-6);
        assert_eq!(diode.ideal(1.0), 2.0);
        let mut v = [-1.0, 0.5];
        ActivationCircuit::relu().apply_all(&mut v);
        assert_eq!(v, [0.0, 0.5]);
    }

    #[test]
    fn equal_conductance_crossbar_averages_and_max_pool_is_exact() {
        let x = Array3::from_shape_fn((2, 4, 6), |(c, y, xx)| {
            ((c * 7 + y * 5 + xx * 3) % 11) as f32 / 10.0 - 0.5
        });
        let pool = AvgPoolCrossbar::new(2, 5e-6, 0.2);
        let y = pool.pool(x.view());
        assert_eq!(y.dim(), (2, 2, 3));
        for ((c, oy, ox), &v) in y.indexed_iter() {
            let mean: f32 = (0..2)
                .flat_map(|dy| (0..2).map(move |dx| (dy, dx)))
                .map(|(dy, dx)| x[[c, oy * 2 + dy, ox * 2 + dx]])
                .sum::<f32>()
                / 4.0;
            assert!((v - mean).abs() < 1e-6, "{v} vs {mean}");
        }
        // A mismatched device shifts the average.
        let mut bad = pool.clone();
        bad.g_s[0] *= 1.5;
        assert_ne!(bad.pool(x.view()), y);
        let m = max_pool_digital(x.view(), 2);
        assert_eq!(m[[1, 1, 2]], {
            let mut best = f32::NEG_INFINITY;
            for dy in 0..2 {
                for dx in 0..2 {
                    best = best.max(x[[1, 2 + dy, 4 + dx]]);
                }
            }
            best
        });
    }
}
