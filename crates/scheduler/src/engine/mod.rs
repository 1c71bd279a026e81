//! The engine seam: one trait every compute engine implements for the scheduler, and the closed
//! enum over the engines of this build.
//!
//! The trait lives in the scheduler (not in `nn`) so that engine crates stay free of scheduler
//! types: each engine crate exposes its own API (config, datapath, timing) and the scheduler
//! adapts it here, one file per engine. Adding an engine means adding a variant to
//! [`EngineConfig`], [`EngineImpl`] and [`Compiled`], and the
//! compiler checks every `match`.
//!
//! # The numeric contract
//! Activations between layers are the int8 codes of the quantized network
//! ([`nacsim_nn::qnet::QNetwork`]). An engine receives a layer's input codes `x` `[rows,
//! fan_in]` and returns one `i32` accumulator per output, at the scale `in_scale · w_scale[o]`.
//! The int8 systolic array uses the network's own int8 weight codes and scales. An engine with
//! its own weight format (power-of-two codes, analog conductances) compiles the float weights
//! of the layer ([`LayerSource::weight`]) into that format and returns its own `w_scale`; the
//! scheduler then recomputes the layer's bias codes and requantization factors for that scale
//! ([`QGemm::rescaled`]), so the epilogue (bias, ReLU, requantization, clamp) stays the
//! network's.

use std::collections::BTreeMap;

use nacsim_core::counters::Counters;
use nacsim_core::tech::{AreaPower, Technology};
use nacsim_core::trace::TraceSink;
use nacsim_nn::qnet::{GemmKind, QGemm};
use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::design::EngineConfig;

mod circulant;
mod crossbar;
mod groups;
mod sine;
mod systolic;
#[cfg(test)]
pub(crate) mod toy;

pub use circulant::{
    CirculantConfig, CirculantEngine, CirculantLayer, TRAINED_BLOCK, TRAINED_POT_BITS,
};
pub use crossbar::{CrossbarEngine, CrossbarLayer};
pub use groups::{combine_groups, identical_groups};
use groups::{concat_cols, group_cols};
pub use sine::{SineEngine, SineEngineConfig, SineLayer, TRAINED_INPUT};
pub use systolic::{SystolicEngine, SystolicLayer};

/// Cycles and actions of one engine run (one layer, one batch).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineCost {
    /// Cycles from the first operand to the last output written.
    pub cycles: u64,
    /// Action counts, by the engine's own names.
    pub counters: Counters,
    /// Bytes read from the weight buffer.
    pub weight_sram_read_bytes: u64,
    /// Bytes read from the activation buffer.
    pub act_sram_read_bytes: u64,
    /// Bytes written to the activation buffer.
    pub act_sram_write_bytes: u64,
    /// Useful multiply-accumulates.
    pub macs: u64,
    /// Energies the engine computes from its own physics (pJ), as `(component, action, pJ)`;
    /// empty for digital engines, whose counters are priced by the design's energy table.
    pub physics_pj: Vec<(String, String, f64)>,
}

impl EngineCost {
    /// The cost of `n` independent runs of the same layer one after the other (the groups of a
    /// depthwise convolution): every cycle, count, byte and energy times `n`; `self` for `n = 1`.
    #[must_use]
    pub fn times(self, n: u64) -> EngineCost {
        if n == 1 {
            return self;
        }
        let mut counters = nacsim_core::counters::Counters::new();
        for (k, v) in self.counters.iter() {
            counters.add(k, v.saturating_mul(n));
        }
        EngineCost {
            cycles: self.cycles.saturating_mul(n),
            counters,
            weight_sram_read_bytes: self.weight_sram_read_bytes.saturating_mul(n),
            act_sram_read_bytes: self.act_sram_read_bytes.saturating_mul(n),
            act_sram_write_bytes: self.act_sram_write_bytes.saturating_mul(n),
            macs: self.macs.saturating_mul(n),
            physics_pj: self
                .physics_pj
                .into_iter()
                .map(|(c, a, pj)| (c, a, pj * n as f64))
                .collect(),
        }
    }

    /// The cost of `self` and then `o` on the same engine (the groups of a grouped
    /// convolution, one after the other): every cycle, count, byte and energy summed.
    #[must_use]
    pub fn then(mut self, o: EngineCost) -> EngineCost {
        self.cycles = self.cycles.saturating_add(o.cycles);
        for (k, v) in o.counters.iter() {
            self.counters.add(k, v);
        }
        self.weight_sram_read_bytes = self
            .weight_sram_read_bytes
            .saturating_add(o.weight_sram_read_bytes);
        self.act_sram_read_bytes = self
            .act_sram_read_bytes
            .saturating_add(o.act_sram_read_bytes);
        self.act_sram_write_bytes = self
            .act_sram_write_bytes
            .saturating_add(o.act_sram_write_bytes);
        self.macs = self.macs.saturating_add(o.macs);
        self.physics_pj.extend(o.physics_pj);
        self
    }
}

/// Hardware of one layer that has its own (a crossbar layer's arrays and periphery).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerArea {
    /// Area (µm²) and leakage (µW) by component.
    pub area: AreaPower,
    /// Units by kind (`arrays`, `adcs`, `dacs`, `tias`, `sample_holds`, `shift_adds`, `cells`).
    pub counts: BTreeMap<String, u64>,
}

/// Area and static power of an engine's hardware (cost layer: counts × a technology file).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineArea {
    /// Area (µm²) and leakage (µW) by component of the whole engine, keys without the
    /// engine's name (`pe_array`, `adcs`).
    pub total: AreaPower,
    /// Units of the whole engine by kind.
    pub counts: BTreeMap<String, u64>,
    /// Per layer with hardware of its own, keyed by the index the caller gave with the layer;
    /// empty for engines whose hardware all layers share.
    pub layers: BTreeMap<usize, LayerArea>,
}

/// Why an engine cannot take a layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The engine's own error.
    #[error("{engine}: layer {layer}: {msg}")]
    Unsupported {
        /// Engine name.
        engine: String,
        /// Layer name.
        layer: String,
        /// What is wrong.
        msg: String,
    },
}

/// Everything an engine may use to compile one Dense or Conv2d layer.
#[derive(Clone, Copy, Debug)]
pub struct LayerSource<'a> {
    /// The int8 quantization of the layer (geometry, codes, scales, epilogue).
    pub q: &'a QGemm,
    /// Float weights `[out, fan_in]` (conv columns in `(c, ky, kx)` order), as trained.
    pub weight: ArrayView2<'a, f32>,
    /// Float bias, when the layer has one.
    pub bias: Option<ArrayView1<'a, f32>>,
    /// Index of the layer in the network file (keys the layer's random streams).
    pub index: usize,
    /// Base seed of the run (stochastic engines draw from it).
    pub seed: u64,
    /// Monte Carlo trial (stochastic engines draw from it).
    pub trial: u32,
    /// Width of the network's int8 weight codes (`quant.weight_bits`).
    pub weight_bits: u32,
    /// The group of a grouped convolution this source is (0 for every other layer): each
    /// group is compiled on its own, and engines with random streams key them by it too.
    pub group: usize,
}

/// A Dense or Conv2d layer known by its shape alone (no weights): what `nacsim info` costs. An
/// engine's analytic cost, storage and peak of it equal those of any compilation of a layer of
/// that shape (tested per engine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeLayer {
    /// Layer name.
    pub name: String,
    /// Dense or convolution (with its kernel, stride, padding).
    pub kind: GemmKind,
    /// Inputs per output (`c·k·k` for a convolution).
    pub fan_in: usize,
    /// Outputs (channels).
    pub out: usize,
    /// Width of the network's int8 weight codes (`quant.weight_bits`).
    pub weight_bits: u32,
}

/// A bit-exact whole-network model of an engine that carries its own activation format between
/// layers (the sine datapath's angle codes), which the run's accuracy then comes from.
pub trait NativeNetwork: Send + Sync + std::fmt::Debug {
    /// Top-1 accuracy over `data`.
    ///
    /// # Errors
    /// The images do not fit the network.
    fn accuracy(&self, data: &nacsim_nn::data::Dataset) -> Result<f64, String>;
}

/// A compiled layer and, when the engine has its own weight format, the weight scale of its
/// accumulators (one per output channel).
pub type CompileResult<C> = Result<(C, Option<Vec<f32>>), EngineError>;

/// The seam between the scheduler and a compute engine.
pub trait Engine {
    /// The engine's own form of a layer (weights laid out for it, tables, codes).
    type Compiled: Send + Sync;
    /// Compile a Dense/Conv2d layer into the engine's form. Returns the engine's weight scale
    /// when its accumulators are not at the int8 codes' scale (see the module doc).
    ///
    /// # Errors
    /// [`EngineError`] when the engine cannot run the layer.
    fn compile(&self, src: &LayerSource) -> CompileResult<Self::Compiled>;
    /// Run a batch functionally: `x` is `[rows, fan_in]` int8 (rows = batch · output pixels),
    /// the result `[rows, out]` `i32` accumulators. `first_row` is the index of `x`'s first row
    /// in the whole run (keys per-read noise).
    fn run(&self, c: &Self::Compiled, x: ArrayView2<i8>, first_row: u64) -> Array2<i32>;
    /// Cycles and actions of a run over `rows` rows (the analytic fast path).
    fn cost(&self, c: &Self::Compiled, rows: usize) -> EngineCost;
    /// The same run on the cycle-stepped model, tracing to `sink`; returns the result and a
    /// cost equal to [`Engine::cost`].
    ///
    /// # Errors
    /// [`EngineError`] when the stepped model rejects the run.
    fn run_stepped(
        &self,
        c: &Self::Compiled,
        x: ArrayView2<i8>,
        first_row: u64,
        sink: &mut dyn TraceSink,
    ) -> Result<(Array2<i32>, EngineCost), EngineError>;
    /// Peak operations (2 per MAC) per cycle.
    fn peak_ops_per_cycle(&self) -> u64;
    /// The product of two activations (a MatMul node): `x` `[m, k]` times "weights" `w`
    /// `[n, k]` that are themselves an activation, loaded at run time; `None` when the engine
    /// holds compiled weights only (crossbar conductances, circulant blocks, sine tables), so
    /// the mapping must send MatMul elsewhere. Its cost is [`Engine::shape_cost`] of a
    /// `k → n` layer over `m` rows, once per sample and channel. Default: `None`.
    fn run_activation_weights(&self, x: ArrayView2<i8>, w: ArrayView2<i8>) -> Option<Array2<i32>> {
        let _ = (x, w);
        None
    }
    /// Whether [`Engine::run_activation_weights`] is available. Default: false.
    fn takes_activation_weights(&self) -> bool {
        false
    }
    /// [`Engine::run_activation_weights`] on the cycle-stepped model, tracing to `sink`: the
    /// activation `w` `[n, k]` loaded as the weights of a `k → n` layer named `layer`, `x`
    /// `[m, k]` streamed through it. Returns the accumulators and a cost equal to
    /// [`Engine::shape_cost`] of that layer over `m` rows. Default: `None` (as
    /// [`Engine::run_activation_weights`]).
    fn run_activation_weights_stepped(
        &self,
        layer: &str,
        x: ArrayView2<i8>,
        w: ArrayView2<i8>,
        sink: &mut dyn TraceSink,
    ) -> Option<Result<(Array2<i32>, EngineCost), EngineError>> {
        let _ = (layer, x, w, sink);
        None
    }
    /// Peak operations per cycle while running `layer` (default: [`Engine::peak_ops_per_cycle`]);
    /// engines whose size follows the layer (one set of crossbar arrays per layer) override it.
    fn peak_ops_per_cycle_for(&self, layer: &Self::Compiled) -> u64 {
        let _ = layer;
        self.peak_ops_per_cycle()
    }
    /// Actions of the engine while it waits `cycles` cycles with nothing to compute, held up by
    /// a buffer port or DRAM (the scheduler's stall cycles beyond [`EngineCost::cycles`]): its
    /// PEs or lanes stay clocked. Priced by the design's energy table like every action, so a
    /// stalled layer costs more energy per operation than a busy one. An engine whose idle
    /// power is not modelled returns no counters and says so in its docs.
    fn idle_counters(&self, cycles: u64) -> Counters;
    /// A warning when the layer as compiled is not what the network was trained for (its
    /// weights are off the engine's grid: another block size, code width or encoding), so that
    /// a run of a mismatched network does not pass silently. Default: none.
    fn mapping_warning(&self, c: &Self::Compiled) -> Option<String> {
        let _ = c;
        None
    }
    /// How many of the `groups` groups of a grouped convolution ([`Compiled::Groups`]) the
    /// engine reads at the same time; the groups then run in waves of that many, each wave as
    /// long as its slowest group (`groups` module). Default: 1, the groups one after the other
    /// (one shared array takes them in turn).
    fn groups_at_once(&self, groups: usize) -> usize {
        let _ = groups;
        1
    }
    /// Whether the engine keeps a layer's weights in its own arrays (crossbar conductances), so
    /// they take no buffer space and no DRAM traffic. Default: false.
    fn holds_weights(&self) -> bool {
        false
    }
    /// Whether the engine carries its own activation format between layers, so it runs the
    /// whole network on its [`Engine::native_network`] (every product layer must map to it).
    /// Default: false (activations are the network's int8 codes).
    fn carries_own_activations(&self) -> bool {
        false
    }
    /// The engine's bit-exact whole-network model of `model`, for an engine that
    /// [`carries_own_activations`](Engine::carries_own_activations). Default: none.
    ///
    /// # Errors
    /// The network does not fit the engine (its activations, its weights).
    fn native_network(
        &self,
        model: &nacsim_nn::model::Model,
    ) -> Option<Result<Box<dyn NativeNetwork>, EngineError>> {
        let _ = model;
        None
    }
    /// The Monte Carlo batch axis: `layers` (one compilation of one layer per trial, e.g.
    /// differently programmed arrays) run on the same input `x` in one pass, sharing what the
    /// trials have in common (the crossbar's input conversion). Each result equals
    /// [`Engine::run`] of its layer. Default: `None` (the caller runs the trials one by one).
    fn run_trials(
        &self,
        layers: &[&Self::Compiled],
        x: ArrayView2<i8>,
        first_row: u64,
    ) -> Option<Vec<Array2<i32>>> {
        let _ = (layers, x, first_row);
        None
    }
    /// Warnings when the network's record of the hardware it was trained for
    /// ([`nacsim_nn::network::NetworkSpec::trained_for`], keys this engine owns, e.g.
    /// `sine.input`) disagrees with this engine's configuration. Default: none.
    fn network_warnings(&self, trained_for: &BTreeMap<String, String>) -> Vec<String> {
        let _ = trained_for;
        Vec::new()
    }
    /// Counters the design's energy table prices, with the energy component each belongs to
    /// (`compute`, `accumulators`, `requant`, ...).
    fn priced_actions(&self) -> &'static [(&'static str, &'static str)];
    /// Weight storage of a compiled layer in bits (biases excluded), for the compression
    /// report.
    fn weight_storage_bits(&self, c: &Self::Compiled) -> u64;
    /// The analytic cost of `rows` rows through a layer known by its shape only, equal to
    /// [`Engine::cost`] of any compilation of a layer of that shape, after the same checks as
    /// [`Engine::compile`] makes of the shape; `None` when the engine's costs depend on the
    /// weight values (the crossbar's array energy follows the programmed conductances), and
    /// the caller then compiles real or seeded weights.
    fn shape_cost(&self, s: &ShapeLayer, rows: usize) -> Option<Result<EngineCost, EngineError>>;
    /// [`Engine::weight_storage_bits`] of a layer of this shape.
    fn shape_storage_bits(&self, s: &ShapeLayer) -> u64;
    /// Area and static power of the engine's hardware from `tech` (area µm², leakage µW per
    /// unit) when running `layers` (each with the caller's index; engines sized per layer, the
    /// crossbar, count their hardware from them). Default: `None` (area not modelled).
    fn area(&self, tech: &Technology, layers: &[(usize, &Self::Compiled)]) -> Option<EngineArea> {
        let _ = (tech, layers);
        None
    }
}

/// The closed set of engines.
#[derive(Clone, Debug)]
pub enum EngineImpl {
    /// The int8 systolic array.
    Systolic(SystolicEngine),
    /// The block-circulant power-of-two B-MV accelerator.
    Circulant(CirculantEngine),
    /// Memristor crossbar arrays.
    Crossbar(CrossbarEngine),
    /// The multiplier-free sine datapath.
    Sine(SineEngine),
    /// The test-only toy engine (`engine/toy.rs`).
    #[cfg(test)]
    Toy(toy::ToyEngine),
}

/// A layer compiled for one of the engines.
#[derive(Clone, Debug)]
pub enum Compiled {
    /// For [`EngineImpl::Systolic`].
    Systolic(SystolicLayer),
    /// For [`EngineImpl::Circulant`].
    Circulant(CirculantLayer),
    /// For [`EngineImpl::Crossbar`].
    Crossbar(CrossbarLayer),
    /// For [`EngineImpl::Sine`].
    Sine(SineLayer),
    /// For the test-only toy engine.
    #[cfg(test)]
    Toy(toy::ToyLayer),
    /// A layer known by its shape only, for any engine whose costs need no weights
    /// ([`EngineImpl::compile_shape`]): it is costed, never run.
    Shape(ShapeLayer),
    /// A grouped convolution: one compiled layer per group, in group order. Run on im2col
    /// columns split into equal group slices (group `g` writes its outputs after group
    /// `g − 1`'s), costed in waves of [`Engine::groups_at_once`] groups (`groups` module).
    Groups(Vec<Compiled>),
}

/// Dispatch `$body` on the engine alone.
macro_rules! dispatch_engine {
    ($self:expr, |$e:ident| $body:expr) => {
        match $self {
            EngineImpl::Systolic($e) => $body,
            EngineImpl::Circulant($e) => $body,
            EngineImpl::Crossbar($e) => $body,
            EngineImpl::Sine($e) => $body,
            #[cfg(test)]
            EngineImpl::Toy($e) => $body,
        }
    };
}

/// Dispatch `$body` on the engine alone, with `$own(&Compiled)` picking the layers compiled
/// for it (`None` for another engine's layer or a shape layer).
macro_rules! dispatch_own {
    ($self:expr, |$e:ident, $own:ident| $body:expr) => {
        match $self {
            EngineImpl::Systolic($e) => {
                fn $own(c: &Compiled) -> Option<&SystolicLayer> {
                    match c {
                        Compiled::Systolic(l) => Some(l),
                        _ => None,
                    }
                }
                $body
            }
            EngineImpl::Circulant($e) => {
                fn $own(c: &Compiled) -> Option<&CirculantLayer> {
                    match c {
                        Compiled::Circulant(l) => Some(l),
                        _ => None,
                    }
                }
                $body
            }
            EngineImpl::Crossbar($e) => {
                fn $own(c: &Compiled) -> Option<&CrossbarLayer> {
                    match c {
                        Compiled::Crossbar(l) => Some(l),
                        _ => None,
                    }
                }
                $body
            }
            EngineImpl::Sine($e) => {
                fn $own(c: &Compiled) -> Option<&SineLayer> {
                    match c {
                        Compiled::Sine(l) => Some(l),
                        _ => None,
                    }
                }
                $body
            }
            #[cfg(test)]
            EngineImpl::Toy($e) => {
                fn $own(c: &Compiled) -> Option<&toy::ToyLayer> {
                    match c {
                        Compiled::Toy(l) => Some(l),
                        _ => None,
                    }
                }
                $body
            }
        }
    };
}

/// Dispatch `$body` on the engine and its compiled layer.
macro_rules! dispatch {
    ($self:expr, $c:expr, |$e:ident, $l:ident| $body:expr) => {
        match ($self, $c) {
            (EngineImpl::Systolic($e), Compiled::Systolic($l)) => $body,
            (EngineImpl::Circulant($e), Compiled::Circulant($l)) => $body,
            (EngineImpl::Crossbar($e), Compiled::Crossbar($l)) => $body,
            (EngineImpl::Sine($e), Compiled::Sine($l)) => $body,
            #[cfg(test)]
            (EngineImpl::Toy($e), Compiled::Toy($l)) => $body,
            (e, _) => unreachable!("layer compiled for another engine than {}", e.name()),
        }
    };
}

impl EngineImpl {
    /// Build the engine of a design slot.
    ///
    /// # Errors
    /// An engine whose tables cannot be built (checked by design validation first).
    pub fn build(name: &str, cfg: &EngineConfig) -> Result<Self, EngineError> {
        Ok(match cfg {
            EngineConfig::Systolic(c) => EngineImpl::Systolic(SystolicEngine {
                config: c.clone(),
                name: name.to_string(),
            }),
            EngineConfig::Circulant(c) => EngineImpl::Circulant(CirculantEngine {
                config: c.clone(),
                name: name.to_string(),
            }),
            EngineConfig::Crossbar(c) => EngineImpl::Crossbar(CrossbarEngine {
                config: c.clone(),
                name: name.to_string(),
            }),
            EngineConfig::Sine(c) => EngineImpl::Sine(SineEngine {
                datapath: c.datapath().map_err(|e| EngineError::Unsupported {
                    engine: name.to_string(),
                    layer: "-".into(),
                    msg: e.to_string(),
                })?,
                config: c.clone(),
                name: name.to_string(),
            }),
            #[cfg(test)]
            EngineConfig::Toy(c) => EngineImpl::Toy(toy::ToyEngine {
                config: c.clone(),
                name: name.to_string(),
            }),
        })
    }

    /// Name of the engine in the design.
    pub fn name(&self) -> &str {
        dispatch_engine!(self, |e| &e.name)
    }

    /// See [`Engine::compile`].
    ///
    /// # Errors
    /// As [`Engine::compile`].
    pub fn compile(&self, src: &LayerSource) -> CompileResult<Compiled> {
        match self {
            EngineImpl::Systolic(e) => e.compile(src).map(|(c, s)| (Compiled::Systolic(c), s)),
            EngineImpl::Circulant(e) => e.compile(src).map(|(c, s)| (Compiled::Circulant(c), s)),
            EngineImpl::Crossbar(e) => e.compile(src).map(|(c, s)| (Compiled::Crossbar(c), s)),
            EngineImpl::Sine(e) => e.compile(src).map(|(c, s)| (Compiled::Sine(c), s)),
            #[cfg(test)]
            EngineImpl::Toy(e) => e.compile(src).map(|(c, s)| (Compiled::Toy(c), s)),
        }
    }

    /// A layer known by its shape only ([`Compiled::Shape`]), when the engine can cost it
    /// without weights ([`Engine::shape_cost`]); `None` when it cannot.
    ///
    /// # Errors
    /// The engine cannot take a layer of this shape.
    pub fn compile_shape(&self, s: ShapeLayer) -> Option<Result<Compiled, EngineError>> {
        let checked = dispatch_engine!(self, |e| e.shape_cost(&s, 1))?;
        Some(checked.map(|_| Compiled::Shape(s)))
    }

    /// See [`Engine::run`].
    ///
    /// # Panics
    /// On a [`Compiled::Shape`] layer: those are costed, never run.
    pub fn run(&self, c: &Compiled, x: ArrayView2<i8>, first_row: u64) -> Array2<i32> {
        if let Compiled::Groups(v) = c {
            let parts: Vec<_> = v
                .iter()
                .enumerate()
                .map(|(g, cg)| self.run(cg, group_cols(x, g, v.len()), first_row))
                .collect();
            return concat_cols(&parts);
        }
        dispatch!(self, c, |e, l| e.run(l, x, first_row))
    }

    /// See [`Engine::run_activation_weights`].
    pub fn run_activation_weights(
        &self,
        x: ArrayView2<i8>,
        w: ArrayView2<i8>,
    ) -> Option<Array2<i32>> {
        dispatch_engine!(self, |e| e.run_activation_weights(x, w))
    }

    /// See [`Engine::takes_activation_weights`].
    pub fn takes_activation_weights(&self) -> bool {
        dispatch_engine!(self, |e| e.takes_activation_weights())
    }

    /// See [`Engine::run_activation_weights_stepped`].
    pub fn run_activation_weights_stepped(
        &self,
        layer: &str,
        x: ArrayView2<i8>,
        w: ArrayView2<i8>,
        sink: &mut dyn TraceSink,
    ) -> Option<Result<(Array2<i32>, EngineCost), EngineError>> {
        dispatch_engine!(self, |e| e
            .run_activation_weights_stepped(layer, x, w, sink))
    }

    /// See [`Engine::cost`] (and [`Engine::shape_cost`] for a [`Compiled::Shape`] layer).
    pub fn cost(&self, c: &Compiled, rows: usize) -> EngineCost {
        if let Compiled::Shape(s) = c {
            return dispatch_engine!(self, |e| e.shape_cost(s, rows))
                .and_then(Result::ok)
                .unwrap_or_else(|| {
                    unreachable!("{}: shape layers are made by compile_shape", self.name())
                });
        }
        if let Compiled::Groups(v) = c {
            let costs = v.iter().map(|cg| self.cost(cg, rows)).collect();
            return combine_groups(costs, self.groups_at_once(v.len()));
        }
        dispatch!(self, c, |e, l| e.cost(l, rows))
    }

    /// See [`Engine::run_stepped`].
    ///
    /// # Errors
    /// As [`Engine::run_stepped`].
    pub fn run_stepped(
        &self,
        c: &Compiled,
        x: ArrayView2<i8>,
        first_row: u64,
        sink: &mut dyn TraceSink,
    ) -> Result<(Array2<i32>, EngineCost), EngineError> {
        if let Compiled::Shape(s) = c {
            return Err(EngineError::Unsupported {
                engine: self.name().to_string(),
                layer: s.name.clone(),
                msg: "the layer is known by its shape only (no weights); load the network's weights to step it".into(),
            });
        }
        if let Compiled::Groups(v) = c {
            let mut parts = Vec::with_capacity(v.len());
            let mut costs = Vec::with_capacity(v.len());
            for (g, cg) in v.iter().enumerate() {
                let (y, k) = self.run_stepped(cg, group_cols(x, g, v.len()), first_row, sink)?;
                parts.push(y);
                costs.push(k);
            }
            let cost = combine_groups(costs, self.groups_at_once(v.len()));
            return Ok((concat_cols(&parts), cost));
        }
        dispatch!(self, c, |e, l| e.run_stepped(l, x, first_row, sink))
    }

    /// See [`Engine::peak_ops_per_cycle`].
    pub fn peak_ops_per_cycle(&self) -> u64 {
        dispatch_engine!(self, |e| e.peak_ops_per_cycle())
    }

    /// See [`Engine::peak_ops_per_cycle_for`] (the engine's peak for a shape layer: only
    /// engines whose size does not follow the layer cost shapes).
    pub fn peak_ops_per_cycle_for(&self, c: &Compiled) -> u64 {
        match c {
            Compiled::Shape(_) => return self.peak_ops_per_cycle(),
            // Groups held in arrays of their own are all there at once; on a shared array
            // they take turns.
            Compiled::Groups(v) if self.holds_weights() => {
                return v.iter().map(|cg| self.peak_ops_per_cycle_for(cg)).sum();
            }
            Compiled::Groups(v) => {
                return v.first().map_or_else(
                    || self.peak_ops_per_cycle(),
                    |cg| self.peak_ops_per_cycle_for(cg),
                );
            }
            _ => {}
        }
        dispatch!(self, c, |e, l| e.peak_ops_per_cycle_for(l))
    }

    /// See [`Engine::groups_at_once`].
    pub fn groups_at_once(&self, groups: usize) -> usize {
        dispatch_engine!(self, |e| e.groups_at_once(groups))
    }

    /// See [`Engine::holds_weights`].
    pub fn holds_weights(&self) -> bool {
        dispatch_engine!(self, |e| e.holds_weights())
    }

    /// See [`Engine::carries_own_activations`].
    pub fn carries_own_activations(&self) -> bool {
        dispatch_engine!(self, |e| e.carries_own_activations())
    }

    /// See [`Engine::native_network`].
    ///
    /// # Errors
    /// As [`Engine::native_network`].
    pub fn native_network(
        &self,
        model: &nacsim_nn::model::Model,
    ) -> Option<Result<Box<dyn NativeNetwork>, EngineError>> {
        dispatch_engine!(self, |e| e.native_network(model))
    }

    /// See [`Engine::run_trials`]: `None` also when a layer was compiled for another engine or
    /// is a shape layer.
    pub fn run_trials(
        &self,
        layers: &[&Compiled],
        x: ArrayView2<i8>,
        first_row: u64,
    ) -> Option<Vec<Array2<i32>>> {
        dispatch_own!(self, |e, own| {
            let own: Option<Vec<_>> = layers.iter().map(|c| own(c)).collect();
            e.run_trials(&own?, x, first_row)
        })
    }

    /// See [`Engine::idle_counters`].
    pub fn idle_counters(&self, cycles: u64) -> Counters {
        dispatch_engine!(self, |e| e.idle_counters(cycles))
    }

    /// See [`Engine::network_warnings`].
    pub fn network_warnings(&self, trained_for: &BTreeMap<String, String>) -> Vec<String> {
        dispatch_engine!(self, |e| e.network_warnings(trained_for))
    }

    /// See [`Engine::mapping_warning`].
    pub fn mapping_warning(&self, c: &Compiled) -> Option<String> {
        match c {
            Compiled::Shape(_) => return None,
            Compiled::Groups(v) => return v.iter().find_map(|cg| self.mapping_warning(cg)),
            _ => {}
        }
        dispatch!(self, c, |e, l| e.mapping_warning(l))
    }

    /// See [`Engine::priced_actions`].
    pub fn priced_actions(&self) -> &'static [(&'static str, &'static str)] {
        dispatch_engine!(self, |e| e.priced_actions())
    }

    /// See [`Engine::area`]; shape layers ([`Compiled::Shape`]) and layers compiled for another
    /// engine are left out (an engine sized per layer never costs shapes).
    pub fn area(&self, tech: &Technology, layers: &[(usize, &Compiled)]) -> Option<EngineArea> {
        // A grouped layer's groups each bring their hardware, under the layer's index.
        let mut flat = Vec::with_capacity(layers.len());
        for &(i, c) in layers {
            match c {
                Compiled::Groups(v) => flat.extend(v.iter().map(|cg| (i, cg))),
                _ => flat.push((i, c)),
            }
        }
        dispatch_own!(self, |e, own| {
            let own: Vec<_> = flat
                .iter()
                .filter_map(|(i, c)| own(c).map(|l| (*i, l)))
                .collect();
            e.area(tech, &own)
        })
    }

    /// See [`Engine::weight_storage_bits`].
    pub fn weight_storage_bits(&self, c: &Compiled) -> u64 {
        match c {
            Compiled::Shape(s) => return dispatch_engine!(self, |e| e.shape_storage_bits(s)),
            Compiled::Groups(v) => return v.iter().map(|cg| self.weight_storage_bits(cg)).sum(),
            _ => {}
        }
        dispatch!(self, c, |e, l| e.weight_storage_bits(l))
    }
}

/// Rows of the product for a layer over `batch` samples (`batch · output pixels` for a conv).
pub fn gemm_rows(q: &QGemm, batch: usize) -> usize {
    match q.kind {
        GemmKind::Dense => batch,
        GemmKind::Conv { .. } => batch * q.output.h * q.output.w,
    }
}
