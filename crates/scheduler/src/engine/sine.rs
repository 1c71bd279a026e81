//! The multiplier-free sine datapath (Cai et al., Applied Sciences 2021) as an engine: Dense
//! layers of a network trained with the sine kernel (`Act(RectSine)`, weights stored as
//! `sin(W)`), every product `sin a · sin b` from two table reads and adds
//! ([`nacsim_sine::SineUnit`]).
//!
//! Two functional paths, both bit-exact on their own codes:
//! - the **native** path ([`nacsim_sine::SineNetwork`], what `nacsim run` reports as accuracy):
//!   the sine datapath end to end, activations carried between layers as `f`-bit angle codes,
//!   rectified sine by clamping codes, as the note describes (§1.5, §2.1);
//! - the **int8 seam** ([`Engine::run`], used by traces and [`crate::sim::Simulation::forward`]):
//!   the scheduler's int8 activation codes are turned into angle codes by a 256-entry table
//!   (`asin` of the code's value, the same table as the `Arcsin` pixel encoding, no multiplier)
//!   and the products accumulate at `2^-F`; the epilogue requantizes to int8 as for every engine.
//!
//! Timing: [`nacsim_sine::timing::dense_layer`] (lanes, ROM ports, pipeline), equal to the crate's
//! cycle-stepped model; table reads are counted apart from adds, so their energy is visible.

use nacsim_core::config::{Checks, FieldError, Validate};
use nacsim_core::trace::TraceSink;
use nacsim_nn::qnet::GemmKind;
use nacsim_sine::product::{ProductConfig, SineProduct, SineUnit};
use nacsim_sine::{Datapath, DatapathConfig, RomConfig, SineNetworkConfig};
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{CompileResult, Engine, EngineCost, EngineError, LayerSource};

/// The sine engine of a design: the numerics of the datapath and its parallelism.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SineEngineConfig {
    /// Product unit, formats (`f`, `F`), operand ranges, activation variant, input encoding,
    /// accumulator width and rounding of the bit-exact network.
    pub numerics: SineNetworkConfig,
    /// MAC lanes (products issued per cycle, at most the ROM ports / 2).
    pub lanes: u32,
    /// Table ROM ports and copies (default dual-port, one copy).
    #[serde(default)]
    pub rom: RomConfig,
}

impl SineEngineConfig {
    /// The datapath of these settings.
    ///
    /// # Errors
    /// The sine crate's error naming the broken field.
    pub fn datapath(&self) -> Result<Datapath, nacsim_sine::Error> {
        DatapathConfig {
            product: ProductConfig {
                format: self.numerics.format(),
                kind: self.numerics.product,
            },
            lanes: self.lanes,
            rom: self.rom,
        }
        .build()
    }
}

impl Validate for SineEngineConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.nested("numerics", &self.numerics);
        if self.numerics.validate().is_ok()
            && let Err(e) = self.datapath()
        {
            c.push(FieldError::new(
                "lanes",
                self.lanes,
                format!("with rom {:?}: {e}", self.rom),
            ));
        }
        c.finish()
    }
}

/// The sine engine.
#[derive(Clone, Debug)]
pub struct SineEngine {
    /// Parameters.
    pub config: SineEngineConfig,
    /// Name in the design.
    pub name: String,
    /// The built datapath (tables).
    pub datapath: Datapath,
}

/// A Dense layer compiled for the sine datapath.
#[derive(Clone, Debug)]
pub struct SineLayer {
    /// Layer name.
    pub name: String,
    /// Weight angle codes `[out, fan_in]` at `f` fraction bits (`asin` of the stored sines).
    pub weight: Array2<i32>,
    /// Angle code of each int8 input code (index `code + 128`).
    pub input_angle: Vec<i32>,
    /// Right shift (floor) from the datapath's accumulator to the 32-bit accumulator of the
    /// scheduler's epilogue: 0 unless `F + ⌈log2 fan_in⌉ + 1 > 32` (`|sin a sin b| ≤ 1`).
    pub acc_shift: u32,
}

impl SineEngine {
    fn err(&self, layer: &str, msg: impl std::fmt::Display) -> EngineError {
        EngineError::Unsupported {
            engine: self.name.clone(),
            layer: layer.to_string(),
            msg: msg.to_string(),
        }
    }

    fn unit(&self) -> &SineUnit {
        &self.datapath.unit
    }

    fn report(&self, rows: usize, fan_in: usize, out: usize) -> EngineCost {
        let t = nacsim_sine::timing::dense_layer(&self.datapath, rows, fan_in, out);
        let get = |s: &str| t.counters.get(s);
        EngineCost {
            cycles: t.cycles,
            // Weight angle codes at f + 1 bits, rounded up to bytes; int8 activation codes.
            weight_sram_read_bytes: get("operand_reads") / 2
                * u64::from((self.config.numerics.frac_bits + 2).div_ceil(8)),
            act_sram_read_bytes: get("operand_reads") / 2,
            act_sram_write_bytes: get("output_writes"),
            macs: get("products"),
            physics_pj: Vec::new(),
            counters: t.counters,
        }
    }
}

/// `v` in `i32` (the shift makes it fit; saturating all the same).
fn to_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

/// Sine counters priced by the energy table, and their component.
const ACTIONS: [(&str, &str); 5] = [
    ("table_reads", "tables"),
    ("adds", "compute"),
    ("accumulates", "accumulators"),
    ("lane_cycles_idle", "compute"),
    ("output_writes", "requant"),
];

impl Engine for SineEngine {
    type Compiled = SineLayer;

    fn compile(&self, src: &LayerSource) -> CompileResult<SineLayer> {
        let q = src.q;
        if !matches!(q.kind, GemmKind::Dense) {
            return Err(self.err(
                &q.name,
                "the sine datapath runs fully connected layers only (the sine network has no convolutions)",
            ));
        }
        let n = &self.config.numerics;
        let fmt = n.format();
        let f = n.frac_bits;
        let mut weight = Array2::<i32>::zeros(src.weight.dim());
        for ((o, k), &w) in src.weight.indexed_iter() {
            if !(-1.0..=1.0).contains(&w) {
                return Err(self.err(
                    &q.name,
                    format!(
                        "weight [{o}, {k}] = {w} is not a sine (|w| > 1): the sine engine runs models trained with `kernel: Sine(...)`, which saves sin(W)"
                    ),
                ));
            }
            let a = f64::from(w).asin();
            if a.abs() > n.weight_max_rad {
                return Err(self.err(
                    &q.name,
                    format!(
                        "weight angle {a:.6} rad exceeds numerics.weight_max_rad = {}; raise it to at least {:.6}",
                        n.weight_max_rad,
                        a.abs()
                    ),
                ));
            }
            weight[[o, k]] = nacsim_sine::quantize(a, f, fmt.max_abs_a, n.rounding);
        }
        let s = f64::from(q.in_scale);
        let input_angle = (-128i32..128)
            .map(|c| {
                let x = (f64::from(c) * s).clamp(0.0, 1.0);
                nacsim_sine::quantize(x.asin(), f, fmt.max_abs_b, n.rounding)
            })
            .collect();
        let fan_in = src.weight.ncols().max(1);
        let need = n.out_frac_bits + fan_in.next_power_of_two().trailing_zeros() + 1;
        let acc_shift = need.saturating_sub(32);
        let w_scale = (f64::from(acc_shift) - f64::from(n.out_frac_bits)).exp2() / s;
        Ok((
            SineLayer {
                name: q.name.clone(),
                weight,
                input_angle,
                acc_shift,
            },
            Some(vec![w_scale as f32; q.out_channels()]),
        ))
    }

    fn run(&self, c: &SineLayer, x: ArrayView2<i8>, _first_row: u64) -> Array2<i32> {
        let unit = self.unit();
        let mut y = Array2::<i32>::zeros((x.nrows(), c.weight.nrows()));
        y.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(x.axis_iter(Axis(0)).into_par_iter())
            .for_each(|(mut yr, xr)| {
                let a: Vec<i32> = xr
                    .iter()
                    .map(|&v| c.input_angle[(i32::from(v) + 128) as usize])
                    .collect();
                for (o, wr) in c.weight.axis_iter(Axis(0)).enumerate() {
                    let acc: i64 = wr.iter().zip(&a).map(|(&w, &j)| unit.product(w, j)).sum();
                    yr[o] = to_i32(acc >> c.acc_shift);
                }
            });
        y
    }

    fn cost(&self, c: &SineLayer, rows: usize) -> EngineCost {
        let (out, fan_in) = c.weight.dim();
        self.report(rows, fan_in, out)
    }

    fn run_stepped(
        &self,
        c: &SineLayer,
        x: ArrayView2<i8>,
        _first_row: u64,
        sink: &mut dyn TraceSink,
    ) -> Result<(Array2<i32>, EngineCost), EngineError> {
        // One dot product per (row, output), in the order the datapath issues them.
        let (out, fan_in) = c.weight.dim();
        let mut a = Vec::with_capacity(x.nrows() * out);
        let mut b = Vec::with_capacity(x.nrows() * out);
        for xr in x.axis_iter(Axis(0)) {
            let angles: Vec<i32> = xr
                .iter()
                .map(|&v| c.input_angle[(i32::from(v) + 128) as usize])
                .collect();
            for wr in c.weight.axis_iter(Axis(0)) {
                a.push(wr.to_vec());
                b.push(angles.clone());
            }
        }
        let (sums, t) = nacsim_sine::run_stepped(&self.datapath, &a, &b);
        if sink.enabled() {
            let track = format!("{}.lanes", self.name);
            sink.span(&c.name, "sine", 0, t.cycles, &track);
        }
        let y = Array2::from_shape_fn((x.nrows(), out), |(r, o)| {
            to_i32(sums[r * out + o] >> c.acc_shift)
        });
        let mut cost = self.report(x.nrows(), fan_in, out);
        cost.cycles = t.cycles;
        cost.counters = t.counters;
        Ok((y, cost))
    }

    fn peak_ops_per_cycle(&self) -> u64 {
        2 * u64::from(self.datapath.issue_width)
    }

    fn idle_counters(&self, _c: &SineLayer, cycles: u64) -> nacsim_core::counters::Counters {
        // Every MAC lane idles (`lane_cycles_idle`, as in the datapath's own timing).
        let lanes = u64::from(self.config.lanes);
        [("lane_cycles_idle", lanes.saturating_mul(cycles))]
            .into_iter()
            .collect()
    }

    fn priced_actions(&self) -> &'static [(&'static str, &'static str)] {
        &ACTIONS
    }

    fn weight_storage_bits(&self, c: &SineLayer) -> u64 {
        // Signed angle codes up to max_abs_a: f + 1 bits (weights |w| < 2 rad).
        c.weight.len() as u64 * u64::from(self.config.numerics.frac_bits + 2)
    }
}
