//! The block-circulant power-of-two B-MV accelerator (BPCA, Qin et al., Electronics 2019) as an
//! engine: Dense layers only (conv layers go to another engine by the design's mapping).
//!
//! Compiling a layer projects its float weights onto block-circulant matrices of block size
//! `k` ([`BlockCirculant::project`], the identity for a model trained block-circulant with the
//! same `k` and convention) and quantizes the defining vectors to `b`-bit power-of-two codes
//! ([`PotConfig::quantize`], idempotent on a model trained with the same settings). The
//! accumulators are the integer sums `Σ ±(x << e)` of the B-MV datapath, at weight scale
//! `2^n1` (the layer's smallest exponent).
//!
//! The functional path computes those sums as the exact integer product with the expanded
//! matrix of code values `±2^e` (an int8 GEMM when every `|±2^e| ≤ 64`, i.e. `b ≤ 4`), which the
//! circulant crate's property tests prove equal to the shift-add datapath
//! ([`nacsim_circulant::datapath::PreparedLayer`]) for every shape, `k` and `b`; a scheduler
//! test checks it again on this path. Timing is the crate's analytic model per input vector
//! ([`nacsim_circulant::analytic`]), the cycle-stepped model ([`BmvTimingSim`]) for traces.

use nacsim_circulant::{
    ArchConfig, BlockCirculant, BmvTimingSim, Convention, LayerShape, PotConfig, PotLayer,
    ShiftCode, TimingReport,
};
use nacsim_core::config::{Checks, FieldError, Validate};
use nacsim_core::trace::TraceSink;
use nacsim_nn::qnet::GemmKind;
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{CompileResult, Engine, EngineCost, EngineError, LayerSource};

/// The circulant engine of a design: architecture plus the compression it applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CirculantConfig {
    /// The configurable parallel architecture (B-MV units, γ, widths, ports, loop order,
    /// pipeline depth); every field has the crate's default (one B-MV of 16×16 lanes).
    #[serde(default)]
    pub arch: ArchConfig,
    /// Block size k of the block-circulant weight matrices (γ·2^i, at most `arch.bmv.max_k`).
    pub block: usize,
    /// Power-of-two code format of the defining vectors (bits b, rounding, exponent range).
    pub pot: PotConfig,
    /// Convention of the defining vectors (first row, the default, or first column).
    #[serde(default)]
    pub convention: Convention,
}

impl Validate for CirculantConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        if let Err(e) = self.arch.validate() {
            c.push(FieldError::new("arch", "…", e.to_string()));
        }
        let g = self.arch.bmv.gamma;
        c.check(
            self.block >= g && self.block.is_power_of_two() && self.block <= self.arch.bmv.max_k,
            "block",
            self.block,
            &format!(
                "the B-MV needs k = γ·2^i with γ = {g} and k ≤ arch.bmv.max_k = {}: use 16, 32, 64, 128 or 256",
                self.arch.bmv.max_k
            ),
        );
        c.check(
            (2..=8).contains(&self.pot.bits),
            "pot.bits",
            self.pot.bits,
            "must be in 2..=8 (1 sign bit + at least 1 exponent bit)",
        );
        c.finish()
    }
}

/// The circulant engine.
#[derive(Clone, Debug)]
pub struct CirculantEngine {
    /// Parameters.
    pub config: CirculantConfig,
    /// Name in the design.
    pub name: String,
}

/// A Dense layer compiled for the B-MV: its power-of-two codes and their expanded integer
/// values.
#[derive(Clone, Debug)]
pub struct CirculantLayer {
    /// Layer name.
    pub name: String,
    /// The codes as loaded in the weight buffer.
    pub codes: PotLayer,
    /// Shape for the timing model.
    pub shape: LayerShape,
    /// Expanded code values `±2^e` `[out, fan_in]` as int8, when every one fits (b ≤ 4).
    dense_i8: Option<Array2<i8>>,
    /// Expanded code values `[out, fan_in]` (always present; used when `dense_i8` is not).
    dense: Array2<i32>,
    /// Largest `|W − expand(codes)·2^n1| / max|W|` of the compilation (0 for a model trained
    /// with the engine's settings).
    pub relative_change: f64,
}

impl CirculantEngine {
    fn err(&self, layer: &str, msg: impl std::fmt::Display) -> EngineError {
        EngineError::Unsupported {
            engine: self.name.clone(),
            layer: layer.to_string(),
            msg: msg.to_string(),
        }
    }

    fn report(&self, c: &CirculantLayer, t: &TimingReport, rows: u64) -> EngineCost {
        let mut counters = nacsim_core::counters::Counters::new();
        for (k, v) in t.counters.iter() {
            counters.add(k, v * rows);
        }
        let get = |s: &str| counters.get(s);
        let bits = u64::from(c.shape.bits);
        EngineCost {
            cycles: t.cycles * rows,
            weight_sram_read_bytes: (get("code_reads") * bits).div_ceil(8),
            act_sram_read_bytes: get("act_reads"),
            act_sram_write_bytes: get("output_writes"),
            macs: (c.shape.rows * c.shape.cols) as u64 * rows,
            physics_pj: Vec::new(),
            counters,
        }
    }
}

/// Largest change of a weight by compilation, relative to the layer's max |w|, that still counts
/// as "on the grid" (float rounding of a network trained for this geometry stays far below).
const MAPPING_TOLERANCE: f64 = 1e-3;

/// Circulant counters priced by the energy table, and their component.
const ACTIONS: [(&str, &str); 8] = [
    ("shifts", "compute"),
    ("tree_adds", "compute"),
    ("acc_adds", "accumulators"),
    ("bmv_busy_cycles", "compute"),
    ("bmv_idle_cycles", "compute"),
    ("code_reads", "compute"),
    ("act_reads", "compute"),
    ("output_writes", "requant"),
];

impl Engine for CirculantEngine {
    type Compiled = CirculantLayer;

    fn compile(&self, src: &LayerSource) -> CompileResult<CirculantLayer> {
        let q = src.q;
        let cfg = &self.config;
        if !matches!(q.kind, GemmKind::Dense) {
            return Err(self.err(
                &q.name,
                "the B-MV runs fully connected layers only; map convolutions to another engine \
                 (mapping.by_kind: [(Conv2d, \"mac\")])",
            ));
        }
        let w = src.weight.mapv(f64::from);
        let bc = BlockCirculant::project(w.view(), cfg.block, cfg.convention)
            .map_err(|e| self.err(&q.name, format!("block: {e}")))?;
        let codes = cfg
            .pot
            .quantize(&bc)
            .map_err(|e| self.err(&q.name, format!("pot: {e}")))?;
        cfg.arch
            .bmv
            .check_layer(&codes)
            .map_err(|e| self.err(&q.name, e))?;
        // The epilogue takes i32 accumulators: int8 activations times ±2^e over the fan-in
        // must fit.
        let (out, fan_in) = src.weight.dim();
        let need = nacsim_circulant::BmvConfig {
            act_bits: 8,
            ..cfg.arch.bmv
        }
        .required_acc_bits(fan_in, cfg.pot.bits);
        if need > 32 {
            return Err(self.err(
                &q.name,
                format!(
                    "{}-bit power-of-two codes over fan-in {fan_in} need {need}-bit accumulators, more than the 32 bits the scheduler's epilogue takes; use pot.bits ≤ 5",
                    cfg.pot.bits
                ),
            ));
        }
        let dense64 = codes.codes.to_dense_with(ShiftCode::int_value);
        let dense = dense64.mapv(|v| i32::try_from(v).expect("|±2^e| < 2^31 checked above"));
        let dense_i8 = dense
            .iter()
            .all(|&v| v.abs() <= 64)
            .then(|| dense.mapv(|v| i8::try_from(v).expect("|v| ≤ 64")));
        let scale = 2f64.powi(codes.quantizer.exp_min());
        let max_abs = src.weight.iter().fold(0f32, |m, v| m.max(v.abs()));
        let relative_change = if max_abs > 0.0 {
            src.weight
                .iter()
                .zip(dense.iter())
                .map(|(&a, &b)| (f64::from(a) - f64::from(b) * scale).abs())
                .fold(0.0, f64::max)
                / f64::from(max_abs)
        } else {
            0.0
        };
        debug_assert_eq!(dense.dim(), (out, fan_in));
        let shape = LayerShape::of(&codes);
        Ok((
            CirculantLayer {
                name: q.name.clone(),
                codes,
                shape,
                dense_i8,
                dense,
                relative_change,
            },
            Some(vec![scale as f32; out]),
        ))
    }

    fn run(&self, c: &CirculantLayer, x: ArrayView2<i8>, _first_row: u64) -> Array2<i32> {
        if let Some(w) = &c.dense_i8 {
            return nacsim_systolic::gemm_fast(x, w.view());
        }
        let (m, n) = (x.nrows(), c.dense.nrows());
        let mut y = Array2::<i32>::zeros((m, n));
        y.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(x.axis_iter(Axis(0)).into_par_iter())
            .for_each(|(mut yr, xr)| {
                for (o, wr) in c.dense.axis_iter(Axis(0)).enumerate() {
                    yr[o] = wr
                        .iter()
                        .zip(xr.iter())
                        .map(|(&w, &v)| w * i32::from(v))
                        .sum();
                }
            });
        y
    }

    fn cost(&self, c: &CirculantLayer, rows: usize) -> EngineCost {
        let t = nacsim_circulant::analytic(&self.config.arch, &c.shape)
            .expect("shape checked at compile");
        self.report(c, &t, rows as u64)
    }

    fn run_stepped(
        &self,
        c: &CirculantLayer,
        x: ArrayView2<i8>,
        first_row: u64,
        sink: &mut dyn TraceSink,
    ) -> Result<(Array2<i32>, EngineCost), EngineError> {
        let track = format!("{}.bmv", self.name);
        let vector = sink
            .enabled()
            .then(|| sink.declare_signal(&track, "vector", 32));
        let mut t0 = 0u64;
        let mut one = None;
        for r in 0..x.nrows() {
            let mut sim =
                BmvTimingSim::new(&self.config.arch, &c.shape).map_err(|e| self.err(&c.name, e))?;
            if let Some(id) = vector {
                sink.change(t0, id, first_row + r as u64);
            }
            while !sim.is_idle() {
                sim.tick();
            }
            let cycles = sim.cycle();
            if sink.enabled() {
                sink.span(
                    &format!("{} row {r}", c.name),
                    "bmv",
                    t0,
                    t0 + cycles,
                    &track,
                );
            }
            t0 += cycles;
            one = Some(sim.run());
        }
        let t = match one {
            Some(t) => t,
            None => nacsim_circulant::run_stepped(&self.config.arch, &c.shape)
                .map_err(|e| self.err(&c.name, e))?,
        };
        let mut cost = self.report(c, &t, x.nrows() as u64);
        cost.cycles = t0;
        Ok((self.run(c, x, first_row), cost))
    }

    fn peak_ops_per_cycle(&self) -> u64 {
        self.config.arch.peak_ops_per_cycle()
    }

    fn idle_counters(&self, _c: &CirculantLayer, cycles: u64) -> nacsim_core::counters::Counters {
        // Every B-MV unit idles (`bmv_idle_cycles`, as in the architecture's own timing).
        let units = self.config.arch.num_bmv as u64;
        [("bmv_idle_cycles", units.saturating_mul(cycles))]
            .into_iter()
            .collect()
    }

    fn mapping_warning(&self, c: &CirculantLayer) -> Option<String> {
        // A network trained for this geometry has its weights on the grid (change 0 up to
        // float rounding); anything visible means another block size, code width or a dense
        // network projected by the engine.
        (c.relative_change > MAPPING_TOLERANCE).then(|| {
            format!(
                "layer {}: its weights are not on {}'s grid (block-circulant, block {}, {}-bit power-of-two codes): compiling moves them by up to {:.1} % of max |w|; the network was trained for another geometry or for dense weights (train it with kernel BlockCirculant(block: {}, pot: Bits(bits: {})))",
                c.name,
                self.name,
                self.config.block,
                self.config.pot.bits,
                100.0 * c.relative_change,
                self.config.block,
                self.config.pot.bits
            )
        })
    }

    fn priced_actions(&self) -> &'static [(&'static str, &'static str)] {
        &ACTIONS
    }

    fn weight_storage_bits(&self, c: &CirculantLayer) -> u64 {
        c.codes.storage_bits()
    }
}
