//! The block-circulant power-of-two B-MV accelerator (BPCA, Qin et al., Electronics 2019) as an
//! engine: Dense layers only (conv layers go to another engine by the design's mapping).
//!
//! Compiling and running a layer is the circulant crate's [`DenseLayer`] (projection onto
//! block-circulant matrices, power-of-two codes, the exact integer sums `Σ ±(x << e)` of the
//! B-MV at weight scale `2^n1`), with the systolic crate's fast int8 GEMM for codes that fit
//! int8 (the scheduler is where engines meet); a scheduler test checks it again against the
//! shift-add datapath. Timing is the crate's analytic model per input vector
//! ([`nacsim_circulant::analytic`]), the cycle-stepped model ([`BmvTimingSim`]) for traces.
//! This adapter maps the scheduler's layers to those calls and the crate's counters to an
//! [`EngineCost`].

pub use nacsim_circulant::CirculantConfig;
use nacsim_circulant::timing::counter;
use nacsim_circulant::{BmvTimingSim, DenseLayer, LayerShape, TimingReport};
use nacsim_core::trace::TraceSink;
use nacsim_nn::qnet::GemmKind;
use ndarray::{Array2, ArrayView2};

use super::{CompileResult, Engine, EngineArea, EngineCost, EngineError, LayerSource, ShapeLayer};

/// The circulant engine.
#[derive(Clone, Debug)]
pub struct CirculantEngine {
    /// Parameters.
    pub config: CirculantConfig,
    /// Name in the design.
    pub name: String,
}

/// A Dense layer compiled for the B-MV: the circulant crate's [`DenseLayer`] and its name.
#[derive(Clone, Debug)]
pub struct CirculantLayer {
    /// Layer name.
    pub name: String,
    /// Codes, expanded values and the change compilation made to the weights.
    pub layer: DenseLayer,
}

impl CirculantEngine {
    fn err(&self, layer: &str, msg: impl std::fmt::Display) -> EngineError {
        EngineError::Unsupported {
            engine: self.name.clone(),
            layer: layer.to_string(),
            msg: msg.to_string(),
        }
    }

    /// The B-MV shape of a layer known by its shape only.
    fn shape_of(&self, s: &ShapeLayer) -> LayerShape {
        self.config.shape(s.out, s.fan_in)
    }

    /// What [`Engine::compile`] checks of a layer's shape: fully connected, a shape the B-MV
    /// takes, accumulators that fit the epilogue's 32 bits.
    fn check_shape(
        &self,
        name: &str,
        kind: &GemmKind,
        shape: &LayerShape,
    ) -> Result<(), EngineError> {
        if !matches!(kind, GemmKind::Dense) {
            return Err(self.err(
                name,
                "the B-MV runs fully connected layers only; map convolutions to another engine \
                 (mapping.by_kind: [(Conv2d, \"mac\")])",
            ));
        }
        self.config
            .check_shape(shape)
            .map_err(|e| self.err(name, e))?;
        Ok(())
    }

    fn report(&self, shape: &LayerShape, t: &TimingReport, rows: u64) -> EngineCost {
        let mut counters = nacsim_core::counters::Counters::new();
        for (k, v) in t.counters.iter() {
            counters.add(k, v * rows);
        }
        let get = |s: &str| counters.get(s);
        let bits = u64::from(shape.bits);
        EngineCost {
            cycles: t.cycles * rows,
            weight_sram_read_bytes: (get(counter::CODE_READS) * bits).div_ceil(8),
            act_sram_read_bytes: get(counter::ACT_READS),
            act_sram_write_bytes: get(counter::OUTPUT_WRITES),
            macs: (shape.rows * shape.cols) as u64 * rows,
            physics_pj: Vec::new(),
            counters,
        }
    }
}

/// The network's `trained_for` key for the block size it was trained with.
pub const TRAINED_BLOCK: &str = "circulant.block";
/// The network's `trained_for` key for the power-of-two code width it was trained with.
pub const TRAINED_POT_BITS: &str = "circulant.pot_bits";

/// Largest change of a weight by compilation, relative to the layer's max |w|, that still counts
/// as "on the grid" (float rounding of a network trained for this geometry stays far below).
const MAPPING_TOLERANCE: f64 = 1e-3;

/// Circulant counters priced by the energy table, and their component.
const ACTIONS: [(&str, &str); 8] = [
    (counter::SHIFTS, "compute"),
    (counter::TREE_ADDS, "compute"),
    (counter::ACC_ADDS, "accumulators"),
    (counter::BMV_BUSY_CYCLES, "compute"),
    (counter::BMV_IDLE_CYCLES, "compute"),
    (counter::CODE_READS, "compute"),
    (counter::ACT_READS, "compute"),
    (counter::OUTPUT_WRITES, "requant"),
];

impl Engine for CirculantEngine {
    type Compiled = CirculantLayer;

    fn compile(&self, src: &LayerSource) -> CompileResult<CirculantLayer> {
        let q = src.q;
        if !matches!(q.kind, GemmKind::Dense) {
            // The shape check says why (before projecting a convolution's columns).
            let (out, fan_in) = src.weight.dim();
            self.check_shape(&q.name, &q.kind, &self.config.shape(out, fan_in))?;
        }
        let (layer, scale) =
            DenseLayer::compile(&self.config, src.weight).map_err(|e| self.err(&q.name, e))?;
        Ok((
            CirculantLayer {
                name: q.name.clone(),
                layer,
            },
            Some(vec![scale as f32; src.weight.nrows()]),
        ))
    }

    fn run(&self, c: &CirculantLayer, x: ArrayView2<i8>, _first_row: u64) -> Array2<i32> {
        c.layer.run(x, nacsim_systolic::gemm_fast)
    }

    fn cost(&self, c: &CirculantLayer, rows: usize) -> EngineCost {
        let t = nacsim_circulant::analytic(&self.config.arch, &c.layer.shape)
            .expect("shape checked at compile");
        self.report(&c.layer.shape, &t, rows as u64)
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
            let mut sim = BmvTimingSim::new(&self.config.arch, &c.layer.shape)
                .map_err(|e| self.err(&c.name, e))?;
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
            None => nacsim_circulant::run_stepped(&self.config.arch, &c.layer.shape)
                .map_err(|e| self.err(&c.name, e))?,
        };
        let mut cost = self.report(&c.layer.shape, &t, x.nrows() as u64);
        cost.cycles = t0;
        Ok((self.run(c, x, first_row), cost))
    }

    fn peak_ops_per_cycle(&self) -> u64 {
        self.config.arch.peak_ops_per_cycle()
    }

    fn idle_counters(&self, cycles: u64) -> nacsim_core::counters::Counters {
        // Every B-MV unit idles (`bmv_idle_cycles`, as in the architecture's own timing).
        let units = self.config.arch.num_bmv as u64;
        [(counter::BMV_IDLE_CYCLES, units.saturating_mul(cycles))]
            .into_iter()
            .collect()
    }

    fn mapping_warning(&self, c: &CirculantLayer) -> Option<String> {
        // A network trained for this geometry has its weights on the grid (change 0 up to
        // float rounding); anything visible means another block size, code width or a dense
        // network projected by the engine.
        (c.layer.relative_change > MAPPING_TOLERANCE).then(|| {
            format!(
                "layer {}: its weights are not on {}'s grid (block-circulant, block {}, {}-bit power-of-two codes): compiling moves them by up to {:.1} % of max |w|; the network was trained for another geometry or for dense weights (train it with kernel BlockCirculant(block: {}, pot: Bits(bits: {})))",
                c.name,
                self.name,
                self.config.block,
                self.config.pot.bits,
                100.0 * c.layer.relative_change,
                self.config.block,
                self.config.pot.bits
            )
        })
    }

    fn priced_actions(&self) -> &'static [(&'static str, &'static str)] {
        &ACTIONS
    }

    fn weight_storage_bits(&self, c: &CirculantLayer) -> u64 {
        c.layer.codes.storage_bits()
    }

    fn network_warnings(
        &self,
        trained_for: &std::collections::BTreeMap<String, String>,
    ) -> Vec<String> {
        let cfg = &self.config;
        let mut out = Vec::new();
        for (key, mine, field) in [
            (TRAINED_BLOCK, cfg.block as u64, "block"),
            (TRAINED_POT_BITS, u64::from(cfg.pot.bits), "pot.bits"),
        ] {
            match trained_for.get(key).map(|t| t.trim().parse::<u64>()) {
                None => {}
                Some(Ok(t)) if t == mine => {}
                Some(Ok(t)) => out.push(format!(
                    "the network was trained for {key} = {t} but {} has {field} = {mine}; use a design with {field}: {t} or retrain",
                    self.name
                )),
                Some(Err(e)) => out.push(format!(
                    "the network's trained_for {key:?} is not a whole number ({e}); {} cannot check it",
                    self.name
                )),
            }
        }
        out
    }

    fn shape_cost(&self, s: &ShapeLayer, rows: usize) -> Option<Result<EngineCost, EngineError>> {
        let shape = self.shape_of(s);
        Some(self.check_shape(&s.name, &s.kind, &shape).and_then(|()| {
            let t = nacsim_circulant::analytic(&self.config.arch, &shape)
                .map_err(|e| self.err(&s.name, e))?;
            Ok(self.report(&shape, &t, rows as u64))
        }))
    }

    fn shape_storage_bits(&self, s: &ShapeLayer) -> u64 {
        // One defining vector of k codes per k×k block of the zero-padded matrix.
        let sh = self.shape_of(s);
        (sh.rows.div_ceil(sh.k) * sh.cols.div_ceil(sh.k) * sh.k) as u64 * u64::from(sh.bits)
    }

    /// `num_bmv` B-MV units (`bmv_units`), each the technology's γ = 16 unit scaled by
    /// `(γ/16)²` (shift units and adder-tree inputs grow as γ²) \[I\]; the code and activation
    /// SRAMs are the design's buffers.
    fn area(
        &self,
        tech: &nacsim_core::tech::Technology,
        _layers: &[(usize, &CirculantLayer)],
    ) -> Option<EngineArea> {
        let arch = &self.config.arch;
        let scale = (arch.bmv.gamma as f64 / 16.0).powi(2);
        let (area, leak) = tech.bmv_unit.pair();
        let mut a = EngineArea::default();
        a.total.add(
            "bmv_units",
            arch.num_bmv as f64,
            (area * scale, leak * scale),
        );
        a.counts.insert("bmv_units".into(), arch.num_bmv as u64);
        Some(a)
    }
}
