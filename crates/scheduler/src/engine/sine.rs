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
//!   the sine crate's [`DenseLayer`] turns the scheduler's int8 activation codes into angle codes
//!   by a 256-entry table (`asin` of the code's value, the same table as the `Arcsin` pixel
//!   encoding, no multiplier) and accumulates the products at `2^-F`; the epilogue requantizes
//!   to int8 as for every engine.
//!
//! This adapter maps the scheduler's layers to those calls and the crate's counters to an
//! [`EngineCost`].
//!
//! Timing: [`nacsim_sine::timing::dense_layer`] (lanes, ROM ports, pipeline), equal to the crate's
//! cycle-stepped model; table reads are counted apart from adds, so their energy is visible.

use nacsim_core::trace::TraceSink;
use nacsim_nn::qnet::GemmKind;
pub use nacsim_sine::SineEngineConfig;
use nacsim_sine::timing::counter;
use nacsim_sine::{Datapath, DenseLayer};
use ndarray::{Array2, ArrayView2};

use super::{CompileResult, Engine, EngineArea, EngineCost, EngineError, LayerSource, ShapeLayer};

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

/// A Dense layer compiled for the sine datapath: the engine crate's [`DenseLayer`] and its
/// name.
#[derive(Clone, Debug)]
pub struct SineLayer {
    /// Layer name.
    pub name: String,
    /// Weight angle codes, input angle table and accumulator shift.
    pub layer: DenseLayer,
}

impl SineEngine {
    fn err(&self, layer: &str, msg: impl std::fmt::Display) -> EngineError {
        EngineError::Unsupported {
            engine: self.name.clone(),
            layer: layer.to_string(),
            msg: msg.to_string(),
        }
    }

    /// The sine datapath takes fully connected layers only.
    fn check_dense(&self, layer: &str, kind: &GemmKind) -> Result<(), EngineError> {
        if matches!(kind, GemmKind::Dense) {
            Ok(())
        } else {
            Err(self.err(
                layer,
                "the sine datapath runs fully connected layers only (the sine network has no convolutions)",
            ))
        }
    }

    fn report(&self, rows: usize, fan_in: usize, out: usize) -> EngineCost {
        let t = nacsim_sine::timing::dense_layer(&self.datapath, rows, fan_in, out);
        let get = |s: &str| t.counters.get(s);
        EngineCost {
            cycles: t.cycles,
            // Weight angle codes at f + 1 bits, rounded up to bytes; int8 activation codes.
            weight_sram_read_bytes: get(counter::OPERAND_READS) / 2
                * u64::from((self.config.numerics.frac_bits + 2).div_ceil(8)),
            act_sram_read_bytes: get(counter::OPERAND_READS) / 2,
            act_sram_write_bytes: get(counter::OUTPUT_WRITES),
            macs: get(counter::PRODUCTS),
            physics_pj: Vec::new(),
            counters: t.counters,
        }
    }
}

impl super::NativeNetwork for nacsim_sine::SineNetwork {
    fn accuracy(&self, data: &nacsim_nn::data::Dataset) -> Result<f64, String> {
        nacsim_sine::SineNetwork::accuracy(self, data).map_err(|e| e.to_string())
    }
}

/// The network's `trained_for` key for the input encoding it was trained with (RON of
/// [`nacsim_sine::InputEncoding`]), written by `nacsim train`.
pub const TRAINED_INPUT: &str = "sine.input";

/// Sine counters priced by the energy table, and their component.
const ACTIONS: [(&str, &str); 5] = [
    (counter::TABLE_READS, "tables"),
    (counter::ADDS, "compute"),
    (counter::ACCUMULATES, "accumulators"),
    (counter::LANE_CYCLES_IDLE, "compute"),
    (counter::OUTPUT_WRITES, "requant"),
];

impl Engine for SineEngine {
    type Compiled = SineLayer;

    fn compile(&self, src: &LayerSource) -> CompileResult<SineLayer> {
        let q = src.q;
        self.check_dense(&q.name, &q.kind)?;
        let (layer, w_scale) =
            DenseLayer::compile(&self.config.numerics, &q.name, src.weight, q.in_scale).map_err(
                |e| match e {
                    nacsim_sine::Error::Unsupported { reason, .. } => self.err(&q.name, reason),
                    other => self.err(&q.name, other),
                },
            )?;
        Ok((
            SineLayer {
                name: q.name.clone(),
                layer,
            },
            Some(vec![w_scale as f32; q.out_channels()]),
        ))
    }

    fn run(&self, c: &SineLayer, x: ArrayView2<i8>, _first_row: u64) -> Array2<i32> {
        c.layer.run(&self.datapath.unit, x)
    }

    fn cost(&self, c: &SineLayer, rows: usize) -> EngineCost {
        let (out, fan_in) = c.layer.weight.dim();
        self.report(rows, fan_in, out)
    }

    fn run_stepped(
        &self,
        c: &SineLayer,
        x: ArrayView2<i8>,
        _first_row: u64,
        sink: &mut dyn TraceSink,
    ) -> Result<(Array2<i32>, EngineCost), EngineError> {
        let (out, fan_in) = c.layer.weight.dim();
        let (y, t) = c.layer.run_stepped(&self.datapath, x);
        if sink.enabled() {
            let track = format!("{}.lanes", self.name);
            sink.span(&c.name, "sine", 0, t.cycles, &track);
        }
        let mut cost = self.report(x.nrows(), fan_in, out);
        cost.cycles = t.cycles;
        cost.counters = t.counters;
        Ok((y, cost))
    }

    fn peak_ops_per_cycle(&self) -> u64 {
        2 * u64::from(self.datapath.issue_width)
    }

    fn idle_counters(&self, cycles: u64) -> nacsim_core::counters::Counters {
        // Every MAC lane idles (`lane_cycles_idle`, as in the datapath's own timing).
        let lanes = u64::from(self.config.lanes);
        [(counter::LANE_CYCLES_IDLE, lanes.saturating_mul(cycles))]
            .into_iter()
            .collect()
    }

    fn priced_actions(&self) -> &'static [(&'static str, &'static str)] {
        &ACTIONS
    }

    fn weight_storage_bits(&self, c: &SineLayer) -> u64 {
        DenseLayer::storage_bits(&self.config.numerics, c.layer.weight.len())
    }

    fn carries_own_activations(&self) -> bool {
        true
    }

    fn native_network(
        &self,
        model: &nacsim_nn::model::Model,
    ) -> Option<Result<Box<dyn super::NativeNetwork>, EngineError>> {
        Some(
            nacsim_sine::SineNetwork::new(&self.config.numerics, model)
                .map(|n| Box::new(n) as Box<dyn super::NativeNetwork>)
                .map_err(|e| self.err("-", e)),
        )
    }

    fn network_warnings(
        &self,
        trained_for: &std::collections::BTreeMap<String, String>,
    ) -> Vec<String> {
        let Some(text) = trained_for.get(TRAINED_INPUT) else {
            return Vec::new();
        };
        let mine = self.config.numerics.input;
        match ron::from_str::<nacsim_sine::InputEncoding>(text) {
            Ok(trained) if trained == mine => Vec::new(),
            Ok(trained) => vec![format!(
                "the network was trained for the sine input encoding {trained:?} ({TRAINED_INPUT}) but {} encodes inputs as {mine:?} (numerics.input); set numerics.input: {trained:?} in the design or retrain",
                self.name
            )],
            Err(e) => vec![format!(
                "the network's trained_for {TRAINED_INPUT:?} = {text:?} is not a sine input encoding ({e}); {} cannot check it",
                self.name
            )],
        }
    }

    fn shape_cost(&self, s: &ShapeLayer, rows: usize) -> Option<Result<EngineCost, EngineError>> {
        Some(
            self.check_dense(&s.name, &s.kind)
                .map(|()| self.report(rows, s.fan_in, s.out)),
        )
    }

    fn shape_storage_bits(&self, s: &ShapeLayer) -> u64 {
        DenseLayer::storage_bits(&self.config.numerics, s.fan_in * s.out)
    }

    /// `lanes` datapath lanes (`lanes`: adders and accumulator) and the product unit's table ROM
    /// (`tables`: entries × entry width × `rom.copies`, priced per ROM bit; extra ports per copy
    /// are not priced \[I\]; CORDIC has no table).
    fn area(
        &self,
        tech: &nacsim_core::tech::Technology,
        _layers: &[(usize, &SineLayer)],
    ) -> Option<EngineArea> {
        let lanes = u64::from(self.config.lanes);
        let bits = table_bits(&self.datapath.unit) * u64::from(self.config.rom.copies);
        let mut a = EngineArea::default();
        a.total.add("lanes", lanes as f64, tech.sine_lane.pair());
        a.total.add("tables", bits as f64, tech.lut_bit.pair());
        a.counts.insert("lanes".into(), lanes);
        a.counts.insert("table_bits".into(), bits);
        Some(a)
    }
}

/// Bits of a product unit's table: entries × the width of the widest entry (a sign bit when
/// any entry is negative); 0 for CORDIC.
fn table_bits(unit: &nacsim_sine::SineUnit) -> u64 {
    use nacsim_sine::SineUnit;
    let bits = |e: &[i64]| -> u64 {
        let max = e.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
        let width = 64 - max.leading_zeros() + u32::from(e.iter().any(|v| *v < 0));
        e.len() as u64 * u64::from(width.max(1))
    };
    match unit {
        SineUnit::Versine(u) => bits(u.entries()),
        SineUnit::CosLiteral(u) => bits(u.entries()),
        SineUnit::QuarterSquare(u) => bits(u.entries()),
        SineUnit::CoarseVersine(u) => bits(u.entries()),
        SineUnit::Cordic(_) => 0,
    }
}
