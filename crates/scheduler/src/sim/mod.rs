//! Mapping a quantized network onto a design, running it, and costing it.
//!
//! | module | what |
//! | --- | --- |
//! | this one | the mapping ([`Simulation`], [`LayerPlan`]): construction from weights or shapes, the functional run, traces |
//! | `cost` | analytic cycles per layer and pass (DRAM schedule included), per dataset, and energy |
//! | `trials` | the Monte Carlo batch axis: many trials in one pass over the images |
//! | `phases` | [`Simulation::quantize`] and [`Simulation::from_quantized`]: the two construction phases apart, for timing |
//! | `topology` | [`Simulation::from_topology`]: a SCALE-Sim topology file's layers, costed by shape |
//! | `trace_node` | [`Simulation::trace_node`]: the cycle-stepped trace of a layer from all its inputs (a MatMul of two activations, channel by channel) |
//! | `products` | compiling a product layer (grouped convolutions group by group, MatMul of two activations as a shape on an engine that loads activation weights) and the plan entry of every layer |

use std::collections::BTreeMap;

use nacsim_core::counters::Counters;
use nacsim_core::trace::TraceSink;
use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_nn::network::ResolvedLayer;
use nacsim_nn::qnet::{IntGemm, LayerKind, QLayer, QNetwork};
use ndarray::{Array2, ArrayView2};
use serde::Serialize;

use crate::design::{Design, DesignError};
use crate::engine::{Compiled, EngineError, EngineImpl, ShapeLayer};
use crate::memory::LayerDemand;

mod cost;
mod phases;
mod products;
mod topology;
mod trace_node;
mod trials;

pub use products::{LAYERNORM_OPS_PER_ELEMENT, SOFTMAX_OPS_PER_ELEMENT, vector_ops_per_image};
pub use topology::product_kind;

use products::{check_activation_weights, compile_gemm, matmul_shape, param_storage, plan_entry};

/// Errors of building or running a simulation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The design does not load or does not fit the network.
    #[error(transparent)]
    Design(#[from] DesignError),
    /// An engine cannot take a layer.
    #[error("{design}: {source}")]
    Engine {
        /// Design file.
        design: String,
        /// The engine's complaint.
        source: EngineError,
    },
    /// The costs overflow: a count reached 2^64 or an energy is not finite.
    #[error(
        "{design}: {what} overflows ({value}); the design's clock, DRAM or energy figures or the network's size are out of any realistic range"
    )]
    Overflow {
        /// Design file.
        design: String,
        /// Which total (`cycles of fc1`, `energy_pj`).
        what: String,
        /// The value reached.
        value: String,
    },
    /// Quantization failed.
    #[error("quantizing {network}: {msg}")]
    Quantize {
        /// Network name.
        network: String,
        /// What failed.
        msg: String,
    },
    /// The energy table lacks an action the run performed.
    #[error("{design}: {source}")]
    Energy {
        /// Design file.
        design: String,
        /// Which actions are missing.
        source: nacsim_core::energy::EnergyError,
    },
    /// The data do not fit the network.
    #[error("{0}")]
    Data(String),
}

/// How one quantized layer is executed.
#[derive(Clone, Debug)]
pub struct LayerPlan {
    /// Layer name (`fc1`, `conv2`, `pool1`, ...).
    pub name: String,
    /// What the layer is (`dense`, `conv2d`, `maxpool`, `avgpool`, `flatten`, `lut`).
    pub kind: LayerKind,
    /// Index of the layer in the network file.
    pub network_index: usize,
    /// Engine (index into [`Simulation::engines`]) for layers with products.
    pub engine: Option<usize>,
    /// The layer compiled for its engine.
    pub compiled: Option<Compiled>,
    /// Input features per image (bytes at int8).
    pub in_features: u64,
    /// Output features per image.
    pub out_features: u64,
    /// Multiply-accumulates per image.
    pub macs_per_image: u64,
    /// Product rows per image: 1 for a Dense layer, output pixels for a convolution (0 for
    /// layers without a product).
    pub rows_per_image: u64,
    /// Independent groups of the product, each costed as the compiled layer (`rows_per_image`
    /// rows per image) and timed in the engine's waves
    /// ([`identical_groups`](crate::engine::identical_groups)): the channels of a depthwise
    /// row of a topology file on an engine that costs shapes, the groups of a grouped
    /// convolution known by its shape, the channels of a MatMul (per image, one after the
    /// other), else 1 (a compiled grouped convolution, [`Compiled::Groups`], costs its groups
    /// itself).
    pub groups: u64,
    /// Weights of the layer (0 for layers without parameters).
    pub weight_count: u64,
    /// Biases of the layer.
    pub bias_count: u64,
    /// Parameter bytes fetched from DRAM per pass: int8 weights, int32 biases, 8-byte
    /// requantization parameters per channel.
    pub param_bytes: u64,
    /// Storage of the parameters in bits (weights as the engine stores them, biases at 32).
    pub storage_bits: u64,
    /// Storage of the weights alone in bits, as the engine stores them (codes).
    pub weight_storage_bits: u64,
    /// Operations per image when the layer runs on the vector unit (`vector_ops`; see
    /// [`vector_ops_per_image`]): one per input element for
    /// pooling, tables, Add, Concat and Transpose, more for Softmax and LayerNorm.
    pub vector_ops_per_image: u64,
}

/// Cost of one layer for one pass of `batch` images.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LayerCost {
    /// Cycles attributed to the layer (compute plus DRAM stalls).
    pub cycles: u64,
    /// Compute cycles (engine or vector unit, SRAM-bandwidth limits included).
    pub compute_cycles: u64,
    /// Cycles waiting for DRAM.
    pub stall_cycles: u64,
    /// Multiply-accumulates.
    pub macs: u64,
    /// Action counts (engine actions, `vector_ops`, `control_cycles`).
    pub counters: Counters,
    /// DRAM bytes read.
    pub dram_read_bytes: u64,
    /// DRAM bytes written.
    pub dram_write_bytes: u64,
    /// Weight-buffer bytes read.
    pub sram_weight_read_bytes: u64,
    /// Weight-buffer bytes written (filled from DRAM).
    pub sram_weight_write_bytes: u64,
    /// Activation-buffer bytes read.
    pub sram_act_read_bytes: u64,
    /// Activation-buffer bytes written.
    pub sram_act_write_bytes: u64,
    /// Energies the engine computed from its own physics, pJ, keyed `component/action`.
    pub physics_pj: BTreeMap<String, f64>,
}

impl LayerCost {
    /// The name of the first count that reached `u64::MAX` (the cost arithmetic saturates
    /// instead of wrapping), if any: such a cost is not a number and must not be reported.
    pub fn saturated(&self) -> Option<&'static str> {
        [
            ("cycles", self.cycles),
            ("macs", self.macs),
            ("dram_read_bytes", self.dram_read_bytes),
            ("dram_write_bytes", self.dram_write_bytes),
            ("sram_weight_read_bytes", self.sram_weight_read_bytes),
            ("sram_act_read_bytes", self.sram_act_read_bytes),
            ("sram_act_write_bytes", self.sram_act_write_bytes),
        ]
        .into_iter()
        .find(|&(_, v)| v == u64::MAX)
        .map(|(n, _)| n)
    }

    /// What the DRAM schedule needs of this cost.
    fn demand(&self) -> LayerDemand {
        LayerDemand {
            compute_cycles: self.compute_cycles,
            dram_read_bytes: self.dram_read_bytes,
            dram_write_bytes: self.dram_write_bytes,
        }
    }

    /// Add `times` copies of `o` (counts saturate at `u64::MAX`, never wrap; see
    /// [`LayerCost::saturated`]).
    pub fn add_scaled(&mut self, o: &LayerCost, times: u64) {
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b.saturating_mul(times));
        add(&mut self.cycles, o.cycles);
        add(&mut self.compute_cycles, o.compute_cycles);
        add(&mut self.stall_cycles, o.stall_cycles);
        add(&mut self.macs, o.macs);
        for (k, v) in o.counters.iter() {
            self.counters.add(k, v.saturating_mul(times));
        }
        add(&mut self.dram_read_bytes, o.dram_read_bytes);
        add(&mut self.dram_write_bytes, o.dram_write_bytes);
        add(&mut self.sram_weight_read_bytes, o.sram_weight_read_bytes);
        add(&mut self.sram_weight_write_bytes, o.sram_weight_write_bytes);
        add(&mut self.sram_act_read_bytes, o.sram_act_read_bytes);
        add(&mut self.sram_act_write_bytes, o.sram_act_write_bytes);
        for (k, v) in &o.physics_pj {
            *self.physics_pj.entry(k.clone()).or_default() += v * times as f64;
        }
    }
}

/// Energy of a cost, in pJ, by component and by action.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Energy {
    /// Total in pJ.
    pub total_pj: f64,
    /// By component: `compute`, `accumulators`, `requant`, `vector`, `sram`, `dram`, `control`.
    pub by_component_pj: BTreeMap<String, f64>,
    /// By action, `<unit>.<action>` (e.g. `mac.macs`, `sram.activations.read_bytes`).
    pub by_action_pj: BTreeMap<String, f64>,
}

/// A network mapped onto a design.
#[derive(Debug)]
pub struct Simulation {
    /// The design.
    pub design: Design,
    /// The quantized network.
    pub qnet: QNetwork,
    /// Engines of the design, in the design's order.
    pub engines: Vec<EngineImpl>,
    /// One plan per quantized layer.
    pub plan: Vec<LayerPlan>,
    /// The bit-exact whole-network model of an engine that carries its own activation format
    /// between layers
    /// ([`Engine::carries_own_activations`](crate::engine::Engine::carries_own_activations));
    /// when present, [`Simulation::accuracy`] uses it instead of the int8 path.
    pub native: Option<Box<dyn crate::engine::NativeNetwork>>,
    /// What the mapping noticed and the user should know (a network trained for another engine
    /// geometry, ...); reports print them.
    pub warnings: Vec<String>,
}

impl Simulation {
    /// Quantize `model` (calibrating on `calib`) and map it onto `design`.
    ///
    /// # Errors
    /// Quantization, mapping (layer index out of range) and engine errors.
    pub fn new(design: Design, model: &Model, calib: &Dataset) -> Result<Self, SimError> {
        let qnet = QNetwork::quantize(model, calib, &design.config.quant).map_err(|e| {
            SimError::Quantize {
                network: model.spec.name.clone(),
                msg: e.to_string(),
            }
        })?;
        Self::from_qnet(design, qnet, model, 0)
    }

    /// [`Simulation::new`] for Monte Carlo trial `trial` of base seed `seed`: stochastic
    /// engines (device variation) draw their static noise from these.
    ///
    /// # Errors
    /// As [`Simulation::new`].
    pub fn with_trial(
        design: Design,
        model: &Model,
        calib: &Dataset,
        seed: u64,
        trial: u32,
    ) -> Result<Self, SimError> {
        let qnet = QNetwork::quantize(model, calib, &design.config.quant).map_err(|e| {
            SimError::Quantize {
                network: model.spec.name.clone(),
                msg: e.to_string(),
            }
        })?;
        Self::build(design, qnet, model, seed, trial)
    }

    /// Map an already quantized network (quantized from `model`) onto `design`, trial 0 of
    /// seed 0.
    ///
    /// # Errors
    /// Mapping and engine errors.
    pub fn from_qnet(
        design: Design,
        qnet: QNetwork,
        model: &Model,
        trial: u32,
    ) -> Result<Self, SimError> {
        Self::build(design, qnet, model, 0, trial)
    }

    /// The design's mapping of a network known by its layers' shapes alone (no weights, no
    /// calibration): what `nacsim info` needs, in time and memory that do not grow with the
    /// weights. Products are [`Compiled::Shape`] layers, costed exactly as compiled ones
    /// (tested per engine). `Ok(None)` when an engine's costs depend on weight values
    /// ([`Engine::shape_cost`](crate::engine::Engine::shape_cost) is `None`) or the design
    /// runs a native whole-network model
    /// ([`Engine::native_network`](crate::engine::Engine::native_network)): build a
    /// [`Simulation`] from weights then.
    ///
    /// The result has no quantized layers (`qnet.layers` is empty) and no native model: cost
    /// it ([`Simulation::pass_cost`], [`Simulation::energy`], the info report); do not run it.
    ///
    /// # Errors
    /// Mapping and engine errors, as [`Simulation::new`].
    pub fn from_shapes(
        design: Design,
        spec: &nacsim_nn::network::NetworkSpec,
        layers: &[ResolvedLayer],
    ) -> Result<Option<Self>, SimError> {
        let engines = build_engines(&design)?;
        if native_engine(&engines).is_some() {
            // Its whole-network model checks the activations against the weights' encoding.
            return Ok(None);
        }
        let folded;
        let layers = if has_batch_norm(layers) {
            folded = nacsim_nn::fold::folded_layers(layers).0;
            &folded[..]
        } else {
            layers
        };
        let fused = nacsim_nn::qnet::fused_relus(layers);
        let mut plan = Vec::with_capacity(layers.len());
        for (fi, fl) in layers.iter().enumerate() {
            if fused[fi] {
                continue;
            }
            if let Some(msg) = no_int8_path(fl) {
                return Err(SimError::Engine {
                    design: design.path.display().to_string(),
                    source: EngineError::Unsupported {
                        engine: "vector".into(),
                        layer: fl.name.clone(),
                        msg,
                    },
                });
            }
            let kind = LayerKind::of_spec(&fl.spec);
            let engine = design.engine_for(layers, fi)?;
            let wbits = design.config.quant.weight_bits;
            let mut groups = 1;
            let shape = match (nacsim_nn::qnet::gemm_kind_of(&fl.spec), engine) {
                (Some(gk), Some(_)) => {
                    // A grouped convolution is costed as `groups ×` one group.
                    groups = gk.groups();
                    Some(ShapeLayer {
                        name: fl.name.clone(),
                        kind: gk,
                        fan_in: fl.weight_shape().map_or(0, |w| w[1..].iter().product()),
                        out: fl.weight_shape().map_or(0, |w| w[0]) / groups,
                        weight_bits: wbits,
                    })
                }
                (None, Some(e)) if kind == LayerKind::MatMul => {
                    check_activation_weights(&design, &engines[e], &fl.name)?;
                    Some(matmul_shape(fl, wbits))
                }
                _ => None,
            };
            let compiled = match (shape, engine) {
                (Some(shape), Some(e)) => {
                    let Some(c) = engines[e].compile_shape(shape) else {
                        return Ok(None);
                    };
                    Some(c.map_err(|source| SimError::Engine {
                        design: design.path.display().to_string(),
                        source,
                    })?)
                }
                _ => None,
            };
            let mut entry = plan_entry(&engines, fl, fi, kind, engine, compiled);
            if kind != LayerKind::MatMul && groups > 1 {
                entry.groups = groups as u64;
                entry.storage_bits += entry.weight_storage_bits * (groups as u64 - 1);
                entry.param_bytes += entry.weight_storage_bits.div_ceil(8)
                    * (groups as u64 - 1)
                    * u64::from(!engines[engine.unwrap_or(0)].holds_weights());
                entry.weight_storage_bits *= groups as u64;
            }
            plan.push(entry);
        }
        design.engine_for(layers, 0)?;
        check_resident(&design, &plan)?;
        let warnings = network_warnings(&engines, &plan, &spec.trained_for);
        let qnet = QNetwork {
            name: spec.name.clone(),
            input_scale: 1.0,
            layers: Vec::new(),
            inputs: Vec::new(),
            classes: spec.classes,
            config: design.config.quant,
        };
        Ok(Some(Self {
            design,
            qnet,
            engines,
            plan,
            native: None,
            warnings,
        }))
    }

    fn build(
        design: Design,
        mut qnet: QNetwork,
        model: &Model,
        seed: u64,
        trial: u32,
    ) -> Result<Self, SimError> {
        // The quantized network has BatchNorm2d folded into its products: walk (and compile
        // from) the folded float model.
        let folded;
        let model = if has_batch_norm(&model.layers) {
            folded = model.fold_batch_norm();
            &folded
        } else {
            model
        };
        let layers: &[ResolvedLayer] = &model.layers;
        let engines = build_engines(&design)?;
        // Walk float and quantized layers together: a quantized layer is the next float layer
        // of the same kind (fused ReLUs and the like have no quantized layer).
        let mut fi = 0usize;
        let mut plan = Vec::with_capacity(qnet.layers.len());
        let mut warnings = Vec::new();
        let wbits = design.config.quant.weight_bits;
        for qi in 0..qnet.layers.len() {
            let q = &qnet.layers[qi];
            let kind = q.kind();
            while fi < layers.len() && LayerKind::of_spec(&layers[fi].spec) != kind {
                fi += 1;
            }
            let Some(fl) = layers.get(fi) else {
                return Err(SimError::Quantize {
                    network: qnet.name.clone(),
                    msg: format!("quantized layer {kind} has no float counterpart"),
                });
            };
            let engine = design.engine_for(layers, fi)?;
            let mut rescaled = None;
            let compiled = match (q, engine) {
                (QLayer::Gemm(g), Some(e)) => {
                    let Some(Some(p)) = model.params.get(fi) else {
                        return Err(SimError::Quantize {
                            network: qnet.name.clone(),
                            msg: format!("layer {} has no parameters", fl.name),
                        });
                    };
                    let (c, w_scale) = compile_gemm(&engines[e], g, p, (fi, seed, trial, wbits))
                        .map_err(|source| SimError::Engine {
                            design: design.path.display().to_string(),
                            source,
                        })?;
                    if let Some(ws) = w_scale {
                        let bias = p.bias.as_ref().map(|b| b.to_vec());
                        rescaled = Some(g.rescaled(ws, bias.as_deref()).map_err(|e| {
                            SimError::Quantize {
                                network: qnet.name.clone(),
                                msg: e.to_string(),
                            }
                        })?);
                    }
                    Some(c)
                }
                (QLayer::MatMul { .. }, Some(e)) => {
                    check_activation_weights(&design, &engines[e], &fl.name)?;
                    let shape = matmul_shape(fl, wbits);
                    engines[e]
                        .compile_shape(shape)
                        .transpose()
                        .map_err(|source| SimError::Engine {
                            design: design.path.display().to_string(),
                            source,
                        })?
                }
                _ => None,
            };
            if let Some(r) = rescaled {
                qnet.layers[qi] = QLayer::Gemm(r);
            }
            if let (Some(c), Some(e)) = (&compiled, engine)
                && let Some(w) = engines[e].mapping_warning(c)
            {
                warnings.push(w);
            }
            plan.push(plan_entry(&engines, fl, fi, kind, engine, compiled));
            fi += 1;
        }
        design.engine_for(layers, 0)?; // checks by_index ranges even for networks without products
        check_resident(&design, &plan)?;
        warnings.extend(network_warnings(&engines, &plan, &model.spec.trained_for));
        let native = match native_engine(&engines) {
            Some(si) => {
                if let Some(p) = plan
                    .iter()
                    .find(|p| p.compiled.is_some() && p.engine != Some(si))
                {
                    return Err(SimError::Engine {
                        design: design.path.display().to_string(),
                        source: EngineError::Unsupported {
                            engine: engines[si].name().to_string(),
                            layer: p.name.clone(),
                            msg: "this engine carries its own activation format between layers, so it runs the whole network: map every layer to it".into(),
                        },
                    });
                }
                engines[si]
                    .native_network(model)
                    .transpose()
                    .map_err(|source| SimError::Engine {
                        design: design.path.display().to_string(),
                        source,
                    })?
            }
            None => None,
        };
        Ok(Self {
            design,
            qnet,
            engines,
            plan,
            native,
            warnings,
        })
    }

    /// Name of the unit that runs plan entry `i`: its engine, or `vector`.
    pub fn unit_name(&self, i: usize) -> String {
        self.plan[i]
            .engine
            .map_or("vector".into(), |e| self.engines[e].name().to_string())
    }

    /// Peak operations per second of the design's engines together, in GOPS. An engine whose
    /// size follows the layer
    /// ([`Engine::peak_ops_per_cycle_for`](crate::engine::Engine::peak_ops_per_cycle_for))
    /// counts the largest of its layers.
    pub fn peak_gops(&self) -> f64 {
        self.peak_ops_per_cycle() as f64 * self.design.clock_hz() / 1e9
    }

    /// Peak operations per cycle of the design's engines together (see [`Self::peak_gops`]).
    pub fn peak_ops_per_cycle(&self) -> u64 {
        self.engines
            .iter()
            .enumerate()
            .map(|(i, e)| {
                if e.holds_weights() {
                    self.plan
                        .iter()
                        .filter(|p| p.engine == Some(i))
                        .filter_map(|p| p.compiled.as_ref())
                        .map(|c| e.peak_ops_per_cycle_for(c))
                        .max()
                        .unwrap_or_else(|| e.peak_ops_per_cycle())
                } else {
                    e.peak_ops_per_cycle()
                }
            })
            .sum()
    }

    /// Int8 logits of a batch of float images through the engines (functional).
    pub fn forward(&self, x: ArrayView2<f32>) -> Array2<i8> {
        self.qnet
            .forward(&EngineGemm { sim: self }, self.qnet.quantize_input(x))
    }

    /// Top-1 accuracy over `data` through the engines (functional), in batches of 1,000 (the
    /// result does not depend on the batch: every engine is exact per row).
    ///
    /// A design with an engine that carries its own activations reports its native bit-exact
    /// network instead
    /// ([`Simulation::native`]).
    ///
    /// # Panics
    /// If the images do not have the network's input size (callers check it first).
    pub fn accuracy(&self, data: &Dataset) -> f64 {
        match &self.native {
            Some(n) => n
                .accuracy(data)
                .unwrap_or_else(|e| panic!("data do not fit the network: {e}")),
            None => self.qnet.accuracy(&EngineGemm { sim: self }, data, 1000),
        }
    }

    /// Run layer `index` of one batch on the cycle-stepped engine, tracing to `sink`. Returns
    /// the accumulators and the stepped cost (equal to the analytic one).
    ///
    /// # Errors
    /// The layer has no engine, or the stepped model rejects it.
    pub fn trace_layer(
        &self,
        index: usize,
        x: Array2<i8>,
        sink: &mut dyn TraceSink,
    ) -> Result<(Array2<i32>, crate::engine::EngineCost), SimError> {
        let (QLayer::Gemm(q), Some(e), Some(c)) = (
            &self.qnet.layers[index],
            self.plan[index].engine,
            &self.plan[index].compiled,
        ) else {
            return Err(SimError::Data(format!(
                "layer {} ({}) has no cycle-stepped trace: it runs on the vector unit (or, a MatMul of two activations, needs both its inputs); pick a dense, conv or matmul layer",
                index, self.plan[index].name
            )));
        };
        let cols = match q.kind {
            nacsim_nn::qnet::GemmKind::Dense => x,
            nacsim_nn::qnet::GemmKind::Conv {
                kernel,
                stride,
                padding,
                ..
            } => nacsim_nn::qnet::im2col_i8(x.view(), q.input, q.output, kernel, stride, padding),
        };
        self.engines[e]
            .run_stepped(c, cols.view(), 0, sink)
            .map_err(|source| SimError::Engine {
                design: self.design.path.display().to_string(),
                source,
            })
    }
}

/// The engines of a design, in its order.
fn build_engines(design: &Design) -> Result<Vec<EngineImpl>, SimError> {
    design
        .config
        .engines
        .iter()
        .map(|s| EngineImpl::build(&s.name, &s.engine))
        .collect::<Result<_, _>>()
        .map_err(|source| SimError::Engine {
            design: design.path.display().to_string(),
            source,
        })
}

/// The engine that carries its own activation format between layers and so runs the whole
/// network on its native model
/// ([`Engine::native_network`](crate::engine::Engine::native_network)), if the design has one.
fn native_engine(engines: &[EngineImpl]) -> Option<usize> {
    engines.iter().position(EngineImpl::carries_own_activations)
}

/// What the engines that run layers of `plan` say of the network's `trained_for` record.
fn network_warnings(
    engines: &[EngineImpl],
    plan: &[LayerPlan],
    trained_for: &BTreeMap<String, String>,
) -> Vec<String> {
    engines
        .iter()
        .enumerate()
        .filter(|(i, _)| plan.iter().any(|p| p.engine == Some(*i)))
        .flat_map(|(_, e)| e.network_warnings(trained_for))
        .collect()
}

/// With `resident.weights`, the parameters must fit the weight buffer.
fn check_resident(design: &Design, plan: &[LayerPlan]) -> Result<(), SimError> {
    check_resident_bytes(design, plan.iter().map(|p| p.param_bytes).sum(), "")
}

/// [`check_resident`] for `need` parameter bytes (`qualifier`: `"at least "` for a lower bound
/// checked before compiling).
fn check_resident_bytes(design: &Design, need: u64, qualifier: &str) -> Result<(), SimError> {
    if design.config.resident.weights {
        let have = design.config.sram.weights.capacity_bytes;
        if need > have {
            return Err(SimError::Design(DesignError::Mapping {
                path: design.path.clone(),
                error: nacsim_core::config::FieldError::new(
                    "resident.weights",
                    "true",
                    format!(
                        "the network's parameters take {qualifier}{need} bytes but sram.weights.capacity_bytes is {have}; raise the capacity or set resident.weights: false"
                    ),
                ),
            }));
        }
    }
    Ok(())
}

/// True when some layer is a BatchNorm2d (folded before mapping).
fn has_batch_norm(layers: &[ResolvedLayer]) -> bool {
    layers
        .iter()
        .any(|l| matches!(l.spec, nacsim_nn::network::LayerSpec::BatchNorm2d { .. }))
}

/// Why no unit of a design runs float layer `fl` in int8, if none does: a BatchNorm2d left
/// after folding.
fn no_int8_path(fl: &ResolvedLayer) -> Option<String> {
    use nacsim_nn::network::LayerSpec as S;
    match fl.spec {
        S::BatchNorm2d { .. } => Some(
            "a BatchNorm2d that cannot be folded (its input is not a Dense or Conv2d read by it alone)".into(),
        ),
        _ => None,
    }
}

/// The engines as the integer product of the quantized forward pass.
struct EngineGemm<'a> {
    sim: &'a Simulation,
}

impl IntGemm for EngineGemm<'_> {
    fn gemm(&self, layer: usize, x: ArrayView2<i8>, w: ArrayView2<i8>) -> Array2<i32> {
        self.gemm_at(layer, 0, x, w)
    }

    fn gemm_at(
        &self,
        layer: usize,
        first_row: u64,
        x: ArrayView2<i8>,
        w: ArrayView2<i8>,
    ) -> Array2<i32> {
        let p = &self.sim.plan[layer];
        match (p.engine, &p.compiled) {
            (Some(e), Some(_)) if p.kind == LayerKind::MatMul => self.sim.engines[e]
                .run_activation_weights(x, w)
                .expect("the mapping sends MatMul to an engine that takes activation weights"),
            (Some(e), Some(c)) => self.sim.engines[e].run(c, x, first_row),
            _ => unreachable!("products only on layers with an engine"),
        }
    }

    /// The engine runs the groups itself ([`Compiled::Groups`]).
    fn gemm_grouped_at(
        &self,
        layer: usize,
        first_row: u64,
        x: ArrayView2<i8>,
        w: ArrayView2<i8>,
        _groups: usize,
    ) -> Array2<i32> {
        self.gemm_at(layer, first_row, x, w)
    }
}

#[cfg(test)]
mod tests;
