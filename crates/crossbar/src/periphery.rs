//! Analog and digital periphery after the array: activation circuits with their ideal
//! counterparts, average pooling as an equal-conductance crossbar, and digital max pooling
//! (note §1.5). The scheduler may use them; they are not part of [`ProgrammedLayer::run`](crate::ProgrammedLayer::run).
//!
//! Also the forward periphery of in-situ training ([`TrainingPeriphery`], used by
//! `nacsim-insitu`'s crossbar kernel): DAC, read noise and ADC on float products, normalized by
//! each sample's largest input.

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

/// The forward periphery of a crossbar during in-situ training: aihwkit's analog forward with
/// noise management `AbsMax` (`docs/engines/notes/crossbar.md` §4.1), a normalized model of
/// its own next to the inference datapath's code-level DAC/TIA/ADC
/// ([`DacConfig`](crate::DacConfig), [`AdcConfig`](crate::AdcConfig)): the training loop's
/// products are floats, so inputs and outputs are scaled by each sample's largest input
/// magnitude `a = max|x|` instead of mapped to integer codes.
///
/// 1. DAC ([`dac_row`](Self::dac_row)): inputs rounded to `2^dac_bits − 1` steps of `a`;
/// 2. read noise: `y += σ·w_max·a·ξ` per output, output-referred (aihwkit `out_noise`; the
///    caller draws `ξ`, [`read_noise_scale`](Self::read_noise_scale) gives the factor);
/// 3. ADC ([`adc_row`](Self::adc_row)): `y` clipped to `±adc_bound·w_max·a` and rounded to
///    `2^adc_bits` levels over that range.
///
/// Rounding is half away from zero ([`round_half_away`]). The read settings (`read_v`,
/// `read_width_s`) are those of read-before-write verification. Every field has a default;
/// `nacsim-insitu` names this type `Periphery` in its settings (`periphery: (…)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Periphery")]
pub struct TrainingPeriphery {
    /// Output-referred read noise per MVM (aihwkit `out_noise` convention, whose default is
    /// 0.06): each output gets `σ·w_max·max|x|·ξ`, i.e. σ in units of one full-scale weight at
    /// the largest input of the sample. Default 0.
    pub read_noise_sigma: f64,
    /// ADC bits (0 = no quantization, default): outputs are clipped to
    /// `±adc_bound·w_max·max|x|` and rounded to `2^bits` levels over that range.
    pub adc_bits: u32,
    /// ADC range in full-scale weights at the largest input (aihwkit `out_bound` 12, default 12).
    pub adc_bound: f64,
    /// DAC bits of the inputs (0 = analog, default): inputs rounded to `2^bits − 1` steps of
    /// `max|x|` per sample.
    pub dac_bits: u32,
    /// Read voltage in volts for read-before-write (default 0.1 V, CrossSim's `Vread`); must be
    /// below the device threshold (checked by the user, who knows the device).
    pub read_v: f64,
    /// Read pulse width in seconds (default 10 ns \[I\]).
    pub read_width_s: f64,
}

impl Default for TrainingPeriphery {
    fn default() -> Self {
        TrainingPeriphery {
            read_noise_sigma: 0.0,
            adc_bits: 0,
            adc_bound: 12.0,
            dac_bits: 0,
            read_v: 0.1,
            read_width_s: 10e-9,
        }
    }
}

impl nacsim_core::config::Validate for TrainingPeriphery {
    /// Every rule but `read_v`'s (which needs the device's threshold), with paths relative to
    /// the periphery.
    fn validate(&self) -> Result<(), Vec<nacsim_core::config::FieldError>> {
        let mut c = nacsim_core::config::Checks::new();
        c.check(
            self.read_noise_sigma.is_finite() && self.read_noise_sigma >= 0.0,
            "read_noise_sigma",
            self.read_noise_sigma,
            "must be a finite standard deviation ≥ 0 (a fraction; 0 disables it)",
        );
        c.check(
            self.adc_bits <= 24,
            "adc_bits",
            self.adc_bits,
            "must be in 0..=24 (0 = no ADC quantization)",
        );
        c.check(
            self.dac_bits <= 24,
            "dac_bits",
            self.dac_bits,
            "must be in 0..=24 (0 = analog inputs)",
        );
        c.check(
            self.adc_bound.is_finite() && self.adc_bound > 0.0,
            "adc_bound",
            self.adc_bound,
            "must be a positive number of full-scale weights",
        );
        c.check(
            self.read_width_s.is_finite() && self.read_width_s > 0.0,
            "read_width_s",
            self.read_width_s,
            "must be a positive pulse width in seconds",
        );
        c.finish()
    }
}

impl TrainingPeriphery {
    /// True when the forward product passes unchanged (no read noise, ADC or DAC).
    pub fn is_ideal(&self) -> bool {
        self.read_noise_sigma == 0.0 && self.adc_bits == 0 && self.dac_bits == 0
    }

    /// DAC: rounds the inputs `row` of one sample, whose largest magnitude is `a`, to
    /// `2^dac_bits − 1` steps of `a` (`round(x/a·steps)·a/steps`); no change for analog inputs
    /// (`dac_bits = 0`) or a sample whose `a` is not positive.
    pub fn dac_row<'a>(&self, row: impl IntoIterator<Item = &'a mut f32>, a: f32) {
        if self.dac_bits > 0 && a > 0.0 {
            let steps = ((1u64 << self.dac_bits) - 1) as f32;
            for v in row {
                *v = round_half_away(*v / a * steps) * a / steps;
            }
        }
    }

    /// The standard deviation of the read noise of one output of a sample whose full-scale
    /// output is `full = w_max·max|x|`: `σ·full` (f32, as applied).
    pub fn read_noise_scale(&self, full: f32) -> f32 {
        self.read_noise_sigma as f32 * full
    }

    /// ADC: clips the outputs `row` of one sample to `±adc_bound·full` (`full = w_max·max|x|`)
    /// and rounds them to `2^adc_bits` levels over that range; no change without an ADC
    /// (`adc_bits = 0`) or for a sample whose `full` is not positive.
    pub fn adc_row<'a>(&self, row: impl IntoIterator<Item = &'a mut f32>, full: f32) {
        if self.adc_bits > 0 && full > 0.0 {
            let levels = (1u64 << self.adc_bits) as f32;
            let top = self.adc_bound as f32 * full;
            let step = 2.0 * top / levels;
            for v in row {
                *v = (round_half_away(v.clamp(-top, top) / step) * step).clamp(-top, top);
            }
        }
    }
}

/// `x.round()` (half away from zero), bit for bit, without the libm call baseline x86-64 makes
/// for it: for `|x| < 2^22` the integer part `t` is exact, `x − t` is exact, and the result is
/// `t ± 1` when that fraction reaches one half.
#[inline(always)]
pub fn round_half_away(x: f32) -> f32 {
    if x.abs() < 4_194_304.0 {
        let t = x as i32 as f32;
        let r = x - t;
        let y = t + f32::from(u8::from(r >= 0.5)) - f32::from(u8::from(r <= -0.5));
        // Keep the sign of zero as `round` does (−0.3 → −0.0).
        if y == 0.0 { 0.0f32.copysign(x) } else { y }
    } else {
        x.round()
    }
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

    #[test]
    fn fast_round_is_round_bit_for_bit() {
        let mut xs = vec![
            0.0f32,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.49999997,
            -0.49999997,
        ];
        xs.extend([
            4_194_303.5,
            -4_194_303.5,
            4_194_304.0,
            1e9,
            f32::NAN,
            f32::INFINITY,
        ]);
        let mut w = 0x1234_5678u32;
        for _ in 0..100_000 {
            w = w.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            xs.push((w as i32) as f32 / 65_536.0 / 8.0);
            xs.push(f32::from_bits(w & 0x4B7F_FFFF));
        }
        for x in xs {
            assert_eq!(round_half_away(x).to_bits(), x.round().to_bits(), "{x}");
        }
    }

    #[test]
    fn training_dac_and_adc_land_on_their_grids() {
        let p = TrainingPeriphery {
            dac_bits: 2,
            adc_bits: 3,
            adc_bound: 1.0,
            ..TrainingPeriphery::default()
        };
        assert!(!p.is_ideal() && TrainingPeriphery::default().is_ideal());
        // DAC: 3 steps of a = 0.75 (half away from zero: −1.5 steps → −2).
        let mut x = [0.75f32, -0.375, 0.1, 0.0];
        p.dac_row(&mut x, 0.75);
        assert_eq!(x, [0.75, -0.5, 0.0, 0.0]);
        // ADC: full scale 2, 8 levels of 0.5 over [−2, 2], clipped.
        let mut y = [0.3f32, -0.2, 5.0, -7.0, 1.26];
        p.adc_row(&mut y, 2.0);
        assert_eq!(y, [0.5, -0.0, 2.0, -2.0, 1.5]);
        // No ADC, or an all-zero sample: unchanged.
        let mut z = [0.3f32];
        TrainingPeriphery::default().adc_row(&mut z, 2.0);
        p.adc_row(&mut z, 0.0);
        assert_eq!(z, [0.3]);
        assert_eq!(p.read_noise_scale(2.0), 0.0);
    }

    #[test]
    fn training_periphery_rules_name_the_field() {
        use nacsim_core::config::Validate;
        let p = TrainingPeriphery {
            adc_bits: 40,
            read_noise_sigma: -1.0,
            ..TrainingPeriphery::default()
        };
        let e: Vec<String> = p
            .validate()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("read_noise_sigma = -1: must be a finite"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("adc_bits = 40: must be in 0..=24"),
            "{e:?}"
        );
    }
}
