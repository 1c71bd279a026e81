//! Mapping a quantized network onto a design, running it, and costing it.

use std::collections::BTreeMap;

use nacsim_core::counters::Counters;
use nacsim_core::energy::EnergyTable;
use nacsim_core::trace::TraceSink;
use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_nn::network::ResolvedLayer;
use nacsim_nn::qnet::{IntGemm, LayerKind, QLayer, QNetwork};
use ndarray::{Array2, ArrayView2};
use serde::Serialize;

use crate::design::{Design, DesignError};
use crate::engine::{Compiled, EngineError, EngineImpl, LayerSource, ShapeLayer};
use crate::memory::{DramTiming, LayerDemand, schedule};

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
    /// between layers (the sine datapath's angle codes); when present, [`Simulation::accuracy`]
    /// uses it instead of the int8 path.
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

    /// Monte Carlo batch: one simulation per trial of `trials` (base seed `seed`), sharing one
    /// quantization (calibration on `calib`); the trials are programmed in parallel. Each
    /// result equals [`Simulation::with_trial`]`(design, model, calib, seed, trial)` (the
    /// quantization is deterministic). Evaluate them together with
    /// [`Simulation::accuracy_trials`].
    ///
    /// # Errors
    /// As [`Simulation::new`] (the first failing trial's error).
    pub fn with_trials(
        design: Design,
        model: &Model,
        calib: &Dataset,
        seed: u64,
        trials: &[u32],
    ) -> Result<Vec<Self>, SimError> {
        use rayon::prelude::*;
        let qnet = QNetwork::quantize(model, calib, &design.config.quant).map_err(|e| {
            SimError::Quantize {
                network: model.spec.name.clone(),
                msg: e.to_string(),
            }
        })?;
        trials
            .par_iter()
            .map(|&t| Self::build(design.clone(), qnet.clone(), model, seed, t))
            .collect()
    }

    /// Top-1 accuracy of every simulation of `sims` over `data` in one pass over the images
    /// (the Monte Carlo batch axis): per batch of 1,000 images the input codes are computed
    /// once, the layers before the first product and the first product's input conversion
    /// are shared when the trials agree on them (crossbar layers through
    /// [`crate::engine::Engine::run_trials`]), and every trial runs on the batch
    /// before the next batch is read. Result `t` is bit-identical to `sims[t].accuracy(data)`
    /// (tested); trials that cannot share (different networks, designs with a native sine
    /// model) are simply evaluated one by one.
    ///
    /// # Panics
    /// As [`Simulation::accuracy`]: if the images do not have the network's input size.
    pub fn accuracy_trials(sims: &[Simulation], data: &Dataset) -> Vec<f64> {
        const BATCH: usize = 1000;
        let Some(first) = sims.first() else {
            return Vec::new();
        };
        let shareable = sims.iter().all(|s| {
            s.native.is_none()
                && s.qnet.layers.len() == first.qnet.layers.len()
                && s.qnet.input_scale == first.qnet.input_scale
                && s.qnet.config == first.qnet.config
        });
        if !shareable {
            return sims.iter().map(|s| s.accuracy(data)).collect();
        }
        first.qnet.accuracy_of(data, BATCH, sims.len(), |x, s| {
            first.forward_trials(sims, x, s)
        })
    }

    /// Int8 logits of every trial of `sims` (which share `self`'s quantized input) for the
    /// input codes `x` of images `first_image..`: the shared prefix of the network is run
    /// once, the first product is run for all trials together when they are crossbar layers
    /// that share their input conversion, and the rest per trial.
    fn forward_trials(
        &self,
        sims: &[Simulation],
        x: Array2<i8>,
        first_image: usize,
    ) -> Vec<Array2<i8>> {
        let n_layers = self.qnet.layers.len();
        let mut i = 0;
        let mut shared = x;
        // Layers without products that every trial has alike: run once.
        while i < n_layers
            && !matches!(self.qnet.layers[i], QLayer::Gemm(_))
            && sims.iter().all(|s| s.qnet.layers[i] == self.qnet.layers[i])
        {
            shared = self
                .qnet
                .layer_forward_at(&EngineGemm { sim: self }, i, shared, first_image);
            i += 1;
        }
        let mut hs: Vec<Array2<i8>> = match self.shared_product(sims, i, &shared, first_image) {
            Some(hs) => {
                i += 1;
                hs
            }
            None => vec![shared; sims.len()],
        };
        // The rest per trial, trials in parallel (each trial's result does not depend on the
        // thread count).
        use rayon::prelude::*;
        hs.par_iter_mut().zip(sims).for_each(|(h, sim)| {
            for l in i..n_layers {
                let x = std::mem::take(h);
                *h = sim
                    .qnet
                    .layer_forward_at(&EngineGemm { sim }, l, x, first_image);
            }
        });
        hs
    }

    /// Layer `i` of every trial on the shared input `x`, when it is a crossbar product whose
    /// programmings share their input conversion; `None` otherwise.
    fn shared_product(
        &self,
        sims: &[Simulation],
        i: usize,
        x: &Array2<i8>,
        first_image: usize,
    ) -> Option<Vec<Array2<i8>>> {
        let mut layers = Vec::with_capacity(sims.len());
        let mut gemms = Vec::with_capacity(sims.len());
        let e = self.plan.get(i)?.engine?;
        for s in sims {
            let (QLayer::Gemm(q), Some(c)) = (s.qnet.layers.get(i)?, &s.plan.get(i)?.compiled)
            else {
                return None;
            };
            // The trials share the design: the same engine runs layer i in each.
            if s.plan[i].engine != Some(e) {
                return None;
            }
            layers.push(c);
            gemms.push(q);
        }
        let q0 = gemms[0];
        if gemms
            .iter()
            .any(|q| q.kind != q0.kind || q.input != q0.input)
        {
            return None;
        }
        let b = x.nrows();
        let cols;
        let input = match q0.kind {
            nacsim_nn::qnet::GemmKind::Dense => x.view(),
            nacsim_nn::qnet::GemmKind::Conv {
                kernel,
                stride,
                padding,
            } => {
                cols = nacsim_nn::qnet::im2col_i8(
                    x.view(),
                    q0.input,
                    q0.output,
                    kernel,
                    stride,
                    padding,
                );
                cols.view()
            }
        };
        let row0 = (first_image * q0.rows_per_sample()) as u64;
        let accs = self.engines[e].run_trials(&layers, input, row0)?;
        Some(
            gemms
                .iter()
                .zip(&accs)
                .map(|(q, acc)| nacsim_nn::qnet::gemm_epilogue(q, acc.view(), b))
                .collect(),
        )
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
    /// (tested per engine). `Ok(None)` when an engine's costs depend on weight values (the
    /// crossbar) or the design runs a native whole-network model (the sine datapath): build a
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
        let fused = nacsim_nn::qnet::fused_relus(layers);
        let mut plan = Vec::with_capacity(layers.len());
        for (fi, fl) in layers.iter().enumerate() {
            if fused[fi] {
                continue;
            }
            let kind = LayerKind::of_spec(&fl.spec);
            let engine = design.engine_for(layers, fi)?;
            let compiled = match (nacsim_nn::qnet::gemm_kind_of(&fl.spec), engine) {
                (Some(gk), Some(e)) => {
                    let shape = ShapeLayer {
                        name: fl.name.clone(),
                        kind: gk,
                        fan_in: fl.weight_shape().map_or(0, |w| w[1..].iter().product()),
                        out: fl.weight_shape().map_or(0, |w| w[0]),
                        weight_bits: design.config.quant.weight_bits,
                    };
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
            plan.push(plan_entry(&engines, fl, fi, kind, engine, compiled));
        }
        design.engine_for(layers, 0)?;
        check_resident(&design, &plan)?;
        let warnings = network_warnings(&engines, &plan, &spec.trained_for);
        let qnet = QNetwork {
            name: spec.name.clone(),
            input_scale: 1.0,
            layers: Vec::new(),
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
                    let src = LayerSource {
                        q: g,
                        weight: p.weight.view(),
                        bias: p.bias.as_ref().map(|b| b.view()),
                        index: fi,
                        seed,
                        trial,
                        weight_bits: wbits,
                    };
                    let (c, w_scale) =
                        engines[e]
                            .compile(&src)
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
                            msg: "this engine carries its own activation format between layers (the sine datapath's angle codes), so it runs the whole network: map every layer to it".into(),
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
    /// size follows the layer (crossbar arrays) counts the largest of its layers.
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

    /// Cost of every layer for one pass of `batch` images (analytic; data-independent).
    pub fn pass_cost(&self, batch: usize) -> Vec<LayerCost> {
        let cfg = &self.design.config;
        let b = batch as u64;
        let cap = cfg.sram.activations.capacity_bytes;
        let last = self.plan.len().saturating_sub(1);
        // Does the tensor entering layer i (i ≥ 1) stay on chip?
        let fits: Vec<bool> = self
            .plan
            .iter()
            .map(|p| {
                let need = if p.kind == LayerKind::Flatten {
                    p.in_features
                } else {
                    p.in_features + p.out_features
                };
                need.saturating_mul(b) <= cap
            })
            .collect();
        let io = cfg.resident.io;
        // The network's input enters at the first layer that moves data (a leading Flatten only
        // renames it), its output leaves at the last: those come from and go to DRAM unless
        // `resident.io` keeps them on chip.
        let first = self
            .plan
            .iter()
            .position(|p| p.kind != LayerKind::Flatten)
            .unwrap_or(0);
        let spilled_in = |i: usize| {
            if i <= first {
                !io
            } else {
                !(fits[i] && fits[i - 1])
            }
        };
        let spilled_out = |i: usize| {
            if i == last {
                !io
            } else {
                !(fits[i] && fits[i + 1])
            }
        };
        // Cycles the engine itself needs per layer (its stall cycles are priced as idle below).
        let mut engine_cycles: Vec<Option<u64>> = vec![None; self.plan.len()];
        let mut costs = Vec::with_capacity(self.plan.len());
        let act_bw = cfg.sram.activations.bytes_per_cycle();
        let w_bw = cfg.sram.weights.bytes_per_cycle();
        for (i, p) in self.plan.iter().enumerate() {
            let mut c = LayerCost::default();
            let in_bytes = p.in_features.saturating_mul(b);
            let out_bytes = p.out_features.saturating_mul(b);
            match (p.kind, p.engine, &p.compiled) {
                (_, Some(e), Some(comp)) => {
                    let ec = self.engines[e].cost(comp, batch * p.rows_per_image as usize);
                    engine_cycles[i] = Some(ec.cycles);
                    c.macs = ec.macs;
                    c.sram_weight_read_bytes = ec.weight_sram_read_bytes;
                    c.sram_act_read_bytes = ec.act_sram_read_bytes;
                    c.sram_act_write_bytes = ec.act_sram_write_bytes;
                    if !cfg.resident.weights {
                        c.sram_weight_write_bytes = p.param_bytes;
                        c.dram_read_bytes += p.param_bytes;
                    }
                    for (component, action, pj) in ec.physics_pj {
                        *c.physics_pj
                            .entry(format!("{component}/{action}"))
                            .or_default() += pj;
                    }
                    let sram_cycles = (c.sram_act_read_bytes + c.sram_act_write_bytes)
                        .div_ceil(act_bw)
                        .max(c.sram_weight_read_bytes.div_ceil(w_bw));
                    c.compute_cycles = ec.cycles.max(sram_cycles);
                    c.counters = ec.counters;
                }
                (LayerKind::Flatten, _, _) => {}
                _ => {
                    // Vector unit: pooling reads every input element, tables every element.
                    let elems = in_bytes;
                    c.counters.add("vector_ops", elems);
                    c.sram_act_read_bytes = in_bytes;
                    c.sram_act_write_bytes = out_bytes;
                    let vec_cycles = elems.div_ceil(cfg.vector_unit.lanes);
                    c.compute_cycles = vec_cycles.max((in_bytes + out_bytes).div_ceil(act_bw));
                }
            }
            if p.kind != LayerKind::Flatten {
                if spilled_in(i) {
                    c.dram_read_bytes += in_bytes;
                }
                if spilled_out(i) {
                    c.dram_write_bytes += out_bytes;
                }
            }
            costs.push(c);
        }
        let demands: Vec<LayerDemand> = costs.iter().map(LayerCost::demand).collect();
        for (i, (c, t)) in costs
            .iter_mut()
            .zip(schedule(&demands, &self.dram_timing()))
            .enumerate()
        {
            c.cycles = t.cycles;
            c.stall_cycles = t.stall_cycles;
            c.counters.add("control_cycles", t.cycles);
            // The engine waits for its buffer ports or DRAM: its idle actions, priced.
            if let (Some(ec), Some(e)) = (engine_cycles[i], self.plan[i].engine)
                && t.cycles > ec
            {
                for (k, v) in self.engines[e].idle_counters(t.cycles - ec).iter() {
                    c.counters.add(k, v);
                }
            }
        }
        costs
    }

    fn dram_timing(&self) -> DramTiming {
        let cfg = &self.design.config;
        DramTiming {
            bytes_per_cycle: cfg.dram.bytes_per_cycle_at(cfg.clock_mhz),
            latency_cycles: cfg.dram.latency_cycles,
            chunk_bytes: (cfg.sram.weights.capacity_bytes / 2).max(1),
        }
    }

    /// The DRAM/compute chunk timeline of one pass of `batch` images (for traces).
    pub fn pass_timeline(&self, batch: usize) -> Vec<crate::memory::Chunk> {
        let demands: Vec<LayerDemand> = self
            .pass_cost(batch)
            .iter()
            .map(LayerCost::demand)
            .collect();
        crate::memory::timeline(&demands, &self.dram_timing())
    }

    /// Cost of every layer for `images` images processed in passes of the design's batch.
    pub fn dataset_cost(&self, images: usize) -> Vec<LayerCost> {
        let b = self.design.config.batch.max(1);
        let (full, rem) = (images / b, images % b);
        let mut total: Vec<LayerCost> = vec![LayerCost::default(); self.plan.len()];
        if full > 0 {
            for (t, c) in total.iter_mut().zip(self.pass_cost(b)) {
                t.add_scaled(&c, full as u64);
            }
        }
        if rem > 0 {
            for (t, c) in total.iter_mut().zip(self.pass_cost(rem)) {
                t.add_scaled(&c, 1);
            }
        }
        total
    }

    /// `costs` if every count of every layer, and their sums over the layers (cycles, ops =
    /// 2·MACs, DRAM and SRAM bytes), fit in a u64: a saturated or overflowing total is refused
    /// rather than reported as a number.
    ///
    /// # Errors
    /// [`SimError::Overflow`] naming the total and the layer.
    pub fn check_costs(&self, costs: Vec<LayerCost>) -> Result<Vec<LayerCost>, SimError> {
        let overflow = |what: String, value: String| SimError::Overflow {
            design: self.design.path.display().to_string(),
            what,
            value,
        };
        let mut sums = [0u64; 5];
        for (p, c) in self.plan.iter().zip(&costs) {
            if let Some(what) = c.saturated() {
                return Err(overflow(
                    format!("{what} of layer {}", p.name),
                    "2^64 or more".into(),
                ));
            }
            let parts = [
                ("cycles", c.cycles),
                ("ops", c.macs.saturating_mul(2)),
                (
                    "DRAM bytes",
                    c.dram_read_bytes.saturating_add(c.dram_write_bytes),
                ),
                (
                    "SRAM read bytes",
                    c.sram_weight_read_bytes
                        .saturating_add(c.sram_act_read_bytes),
                ),
                (
                    "SRAM write bytes",
                    c.sram_weight_write_bytes
                        .saturating_add(c.sram_act_write_bytes),
                ),
            ];
            for (sum, (what, v)) in sums.iter_mut().zip(parts) {
                match sum.checked_add(v) {
                    Some(t) if t < u64::MAX => *sum = t,
                    _ => {
                        return Err(overflow(
                            format!("the total {what} (at layer {})", p.name),
                            "2^64 or more".into(),
                        ));
                    }
                }
            }
        }
        Ok(costs)
    }

    /// `pj` if it is a finite energy.
    ///
    /// # Errors
    /// [`SimError::Overflow`] naming `what` (e.g. `energy_pj`) when `pj` is infinite or NaN.
    pub fn check_energy(&self, what: &str, pj: f64) -> Result<f64, SimError> {
        if pj.is_finite() {
            Ok(pj)
        } else {
            Err(SimError::Overflow {
                design: self.design.path.display().to_string(),
                what: what.to_string(),
                value: format!("{pj} pJ"),
            })
        }
    }

    /// Energy of a layer cost.
    ///
    /// # Errors
    /// An action the run performed is missing from the energy table; [`SimError::Overflow`]
    /// when the energy is not finite.
    pub fn energy(&self, c: &LayerCost, engine: Option<usize>) -> Result<Energy, SimError> {
        let cfg = &self.design.config;
        let table: &EnergyTable = &self.design.energy;
        let mut e = Energy::default();
        let mut add = |component: &str, action: String, pj: f64| {
            *e.by_component_pj.entry(component.to_string()).or_default() += pj;
            *e.by_action_pj.entry(action).or_default() += pj;
            e.total_pj += pj;
        };
        let unit = engine.map_or("vector".to_string(), |i| self.engines[i].name().to_string());
        let actions: &[(&str, &str)] = engine.map_or(&[], |i| self.engines[i].priced_actions());
        let mut priced = Counters::new();
        for (name, _) in actions {
            if c.counters.get(name) > 0 {
                priced.add(name, c.counters.get(name));
            }
        }
        for name in ["vector_ops", "control_cycles"] {
            if c.counters.get(name) > 0 {
                priced.add(name, c.counters.get(name));
            }
        }
        let rep = table.cost(&priced).map_err(|source| SimError::Energy {
            design: self.design.path.display().to_string(),
            source,
        })?;
        for (action, pj) in &rep.by_action {
            let component = actions
                .iter()
                .find(|(a, _)| a == action)
                .map(|(_, c)| *c)
                .unwrap_or(if action == "vector_ops" {
                    "vector"
                } else {
                    "control"
                });
            let who = if component == "control" {
                "control"
            } else {
                unit.as_str()
            };
            add(component, format!("{who}.{action}"), pj.0);
        }
        for (key, pj) in &c.physics_pj {
            let (component, action) = key.split_once('/').unwrap_or(("compute", key));
            add(component, format!("{unit}.{action}"), *pj);
        }
        let (sw, sa) = (&cfg.sram.weights, &cfg.sram.activations);
        for (action, bytes, pj) in [
            (
                "sram.weights.read_bytes",
                c.sram_weight_read_bytes,
                sw.read_pj_per_byte,
            ),
            (
                "sram.weights.write_bytes",
                c.sram_weight_write_bytes,
                sw.write_pj_per_byte,
            ),
            (
                "sram.activations.read_bytes",
                c.sram_act_read_bytes,
                sa.read_pj_per_byte,
            ),
            (
                "sram.activations.write_bytes",
                c.sram_act_write_bytes,
                sa.write_pj_per_byte,
            ),
        ] {
            add("sram", action.into(), bytes as f64 * pj);
        }
        add(
            "dram",
            "dram.read_bytes".into(),
            c.dram_read_bytes as f64 * 8.0 * cfg.dram.pj_per_bit,
        );
        add(
            "dram",
            "dram.write_bytes".into(),
            c.dram_write_bytes as f64 * 8.0 * cfg.dram.pj_per_bit,
        );
        self.check_energy("energy_pj", e.total_pj)?;
        Ok(e)
    }

    /// Int8 logits of a batch of float images through the engines (functional).
    pub fn forward(&self, x: ArrayView2<f32>) -> Array2<i8> {
        self.qnet
            .forward(&EngineGemm { sim: self }, self.qnet.quantize_input(x))
    }

    /// Top-1 accuracy over `data` through the engines (functional), in batches of 1,000 (the
    /// result does not depend on the batch: every engine is exact per row).
    ///
    /// A design with a sine engine reports its native bit-exact network instead
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
                "layer {} ({}) runs on the vector unit, which has no cycle-stepped model; pick a dense or conv layer",
                index, self.plan[index].name
            )));
        };
        let cols = match q.kind {
            nacsim_nn::qnet::GemmKind::Dense => x,
            nacsim_nn::qnet::GemmKind::Conv {
                kernel,
                stride,
                padding,
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
/// network on its native model (the sine datapath's angle codes), if the design has one.
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
    if design.config.resident.weights {
        let need: u64 = plan.iter().map(|p| p.param_bytes).sum();
        let have = design.config.sram.weights.capacity_bytes;
        if need > have {
            return Err(SimError::Design(DesignError::Mapping {
                path: design.path.clone(),
                error: nacsim_core::config::FieldError::new(
                    "resident.weights",
                    "true",
                    format!(
                        "the network's parameters take {need} bytes but sram.weights.capacity_bytes is {have}; raise the capacity or set resident.weights: false"
                    ),
                ),
            }));
        }
    }
    Ok(())
}

/// The plan entry of the quantized layer `kind` made of float layer `fl` (index `fi`), run by
/// `engine` as `compiled` (products) or by the vector unit.
fn plan_entry(
    engines: &[EngineImpl],
    fl: &ResolvedLayer,
    fi: usize,
    kind: LayerKind,
    engine: Option<usize>,
    compiled: Option<Compiled>,
) -> LayerPlan {
    use nacsim_nn::network::LayerSpec as S;
    let (outs, has_bias) = match fl.spec {
        S::Dense { out, bias, .. } => (out as u64, bias),
        S::Conv2d {
            out_channels, bias, ..
        } => (out_channels as u64, bias),
        _ => (0, false),
    };
    let weight_count = fl
        .weight_shape()
        .map_or(0, |s| s.iter().map(|&d| d as u64).product());
    let bias_count = if has_bias { outs } else { 0 };
    let (param_bytes, storage_bits, weight_storage_bits) = match (engine, &compiled) {
        (Some(e), Some(c)) => {
            let wb = engines[e].weight_storage_bits(c);
            // Codes as stored (whole bytes; none for an engine that holds its weights in its
            // arrays), int32 biases, 8-byte requantization parameters per channel.
            let code_bytes = if engines[e].holds_weights() {
                0
            } else {
                wb.div_ceil(8)
            };
            (
                code_bytes + 4 * bias_count + 8 * outs,
                wb + 32 * bias_count,
                wb,
            )
        }
        _ => (0, 0, 0),
    };
    LayerPlan {
        name: fl.name.clone(),
        kind,
        network_index: fi,
        engine,
        compiled,
        in_features: fl.input.len() as u64,
        out_features: fl.output.len() as u64,
        macs_per_image: fl.macs(),
        rows_per_image: match kind {
            LayerKind::Dense => 1,
            LayerKind::Conv2d => (fl.output.h * fl.output.w) as u64,
            _ => 0,
        },
        weight_count,
        bias_count,
        param_bytes,
        storage_bits,
        weight_storage_bits,
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
        _w: ArrayView2<i8>,
    ) -> Array2<i32> {
        let p = &self.sim.plan[layer];
        match (p.engine, &p.compiled) {
            (Some(e), Some(c)) => self.sim.engines[e].run(c, x, first_row),
            _ => unreachable!("products only on layers with an engine"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::{DesignConfig, EngineConfig};
    use nacsim_nn::network::NetworkSpec;
    use nacsim_nn::qnet::RefGemm;
    use proptest::prelude::*;

    const DESIGN: &str = include_str!("../../../models/designs/systolic-int8.ron");
    const ENERGY: &str = include_str!("../../../models/energy/horowitz-45nm.ron");

    fn design(rows: usize, cols: usize, bw: f64, batch: usize) -> Design {
        let mut d =
            Design::from_texts(DESIGN, ENERGY, Path::new("d.ron"), Path::new("e.ron")).unwrap();
        let EngineConfig::Systolic(s) = &mut d.config.engines[0].engine else {
            unreachable!("the baseline design has a systolic engine")
        };
        s.rows = rows;
        s.cols = cols;
        d.config.dram.bytes_per_cycle = Some(bw);
        d.config.batch = batch;
        d
    }

    fn model(hidden: usize, conv: bool, seed: u64) -> Model {
        let layers = if conv {
            "[Conv2d(out_channels: 3, kernel: 3, padding: 1), Act(ReLU), MaxPool2d(kernel: 2, stride: 2), Flatten, Dense(out: HID), Act(ReLU), Dense(out: 10)]"
        } else {
            "[Flatten, Dense(out: HID), Act(ReLU), Dense(out: 10)]"
        }
        .replace("HID", &hidden.to_string());
        let spec: NetworkSpec = ron::from_str(&format!(
            "(schema_version: 1, name: \"p\", input: (c: 1, h: 28, w: 28), classes: 10, layers: {layers})"
        ))
        .unwrap();
        Model::init(spec, seed).unwrap()
    }

    fn cycles(sim: &Simulation, images: usize) -> u64 {
        sim.dataset_cost(images).iter().map(|c| c.cycles).sum()
    }

    use std::path::Path;

    fn cases() -> ProptestConfig {
        ProptestConfig::with_cases(nacsim_core::testing::proptest_cases(24))
    }

    proptest! {
        #![proptest_config(cases())]

        #[test]
        fn doubling_dram_bandwidth_never_increases_cycles(
            rows in 1usize..40, cols in 1usize..40, bw in 0.5f64..64.0, batch in 1usize..80,
            hidden in 1usize..300, conv: bool, images in 1usize..200,
        ) {
            let m = model(hidden, conv, 1);
            let calib = Dataset::bundled_sample().limit(16);
            let slow = Simulation::new(design(rows, cols, bw, batch), &m, &calib).unwrap();
            let fast = Simulation::new(design(rows, cols, 2.0 * bw, batch), &m, &calib).unwrap();
            prop_assert!(cycles(&fast, images) <= cycles(&slow, images));
        }

        #[test]
        fn halving_the_array_never_decreases_cycles(
            rows in 2usize..40, cols in 2usize..40, bw in 0.5f64..64.0, batch in 1usize..80,
            hidden in 1usize..300, conv: bool, images in 1usize..200, halve_rows: bool,
        ) {
            let m = model(hidden, conv, 2);
            let calib = Dataset::bundled_sample().limit(16);
            let big = Simulation::new(design(rows, cols, bw, batch), &m, &calib).unwrap();
            let (r2, c2) = if halve_rows { (rows / 2, cols) } else { (rows, cols / 2) };
            let small = Simulation::new(design(r2, c2, bw, batch), &m, &calib).unwrap();
            prop_assert!(cycles(&small, images) >= cycles(&big, images));
        }
    }

    #[test]
    fn engine_forward_equals_the_integer_reference() {
        let calib = Dataset::bundled_sample().limit(32);
        for conv in [false, true] {
            let m = model(37, conv, 3);
            let sim = Simulation::new(design(8, 8, 16.0, 64), &m, &calib).unwrap();
            let x = calib.batch_range(0, 32);
            let reference = sim
                .qnet
                .forward(&RefGemm, sim.qnet.quantize_input(x.view()));
            assert_eq!(sim.forward(x.view()), reference);
        }
    }

    #[test]
    fn engine_accuracy_equals_the_reference_path() {
        let data = Dataset::bundled_sample().limit(700);
        let m = model(50, true, 6);
        let sim = Simulation::new(design(8, 8, 16.0, 64), &m, &data).unwrap();
        assert_eq!(sim.accuracy(&data), sim.qnet.accuracy(&RefGemm, &data, 256));
    }

    #[test]
    fn peak_gops_is_two_r_c_f() {
        let m = model(10, false, 4);
        let calib = Dataset::bundled_sample().limit(8);
        let sim = Simulation::new(design(16, 8, 16.0, 64), &m, &calib).unwrap();
        assert!((sim.peak_gops() - 2.0 * 16.0 * 8.0 * 500e6 / 1e9).abs() < 1e-9);
    }

    #[test]
    fn stepped_trace_cost_equals_the_analytic_cost() {
        let m = model(20, true, 5);
        let calib = Dataset::bundled_sample().limit(8);
        let sim = Simulation::new(design(4, 4, 16.0, 1), &m, &calib).unwrap();
        let mut h = sim.qnet.quantize_input(calib.batch_range(0, 1).view());
        for i in 0..sim.plan.len() {
            if let (Some(e), Some(c)) = (sim.plan[i].engine, &sim.plan[i].compiled) {
                let QLayer::Gemm(q) = &sim.qnet.layers[i] else {
                    unreachable!()
                };
                let (_, stepped) = sim
                    .trace_layer(i, h.clone(), &mut nacsim_core::trace::NullSink)
                    .unwrap();
                let analytic = sim.engines[e].cost(c, crate::engine::gemm_rows(q, 1));
                assert_eq!(stepped, analytic, "layer {}", sim.plan[i].name);
            }
            h = sim.qnet.layer_forward(&RefGemm, i, h);
        }
    }

    const XBAR: &str = include_str!("../../../models/designs/crossbar-rram.ron");

    /// The crossbar design with d2d variation and read noise (`model` picks the placement).
    fn noisy_crossbar(model: nacsim_crossbar::ReadNoiseModel) -> Design {
        let mut d =
            Design::from_texts(XBAR, ENERGY, Path::new("x.ron"), Path::new("e.ron")).unwrap();
        let EngineConfig::Crossbar(x) = &mut d.config.engines[0].engine else {
            unreachable!("crossbar-rram has a crossbar engine")
        };
        x.nonideal.d2d_sigma_rel = 0.2;
        x.nonideal.read_noise_sigma_rel = 0.05;
        x.nonideal.read_noise_model = model;
        d
    }

    #[test]
    fn batched_trials_equal_separate_trials_bit_for_bit() {
        use nacsim_crossbar::ReadNoiseModel::{BeforeAdc, OutputReferred};
        // 1,300 images: two batches of the 1,000-image pass, the second partial.
        let data = Dataset::bundled_sample().limit(1300);
        let calib = data.clone().limit(64);
        let trials = [1u32, 2, 5];
        for (conv, noise) in [
            (false, BeforeAdc),
            (false, OutputReferred),
            (true, BeforeAdc),
        ] {
            let m = model(40, conv, 7);
            let design = noisy_crossbar(noise);
            let sims = Simulation::with_trials(design.clone(), &m, &calib, 3, &trials).unwrap();
            let batched = Simulation::accuracy_trials(&sims, &data);
            let x = sims[0].qnet.quantize_input(data.batch_range(0, 50).view());
            let logits = sims[0].forward_trials(&sims, x, 0);
            let mut separate = Vec::new();
            for (t, &trial) in trials.iter().enumerate() {
                let one = Simulation::with_trial(design.clone(), &m, &calib, 3, trial).unwrap();
                separate.push(one.accuracy(&data));
                assert_eq!(logits[t], one.forward(data.batch_range(0, 50).view()));
            }
            assert_eq!(batched, separate, "conv {conv} {noise:?}");
            // The trials really differ (so the comparison above could fail).
            assert_ne!(logits[0], logits[1], "conv {conv} {noise:?}");
        }
        assert!(Simulation::accuracy_trials(&[], &data).is_empty());
    }

    #[test]
    fn a_crossbar_design_takes_a_device_preset_by_name() {
        let explicit = "device: (g_on_s: 1e-5, g_off_s: 1e-6, levels: 128),";
        assert!(
            XBAR.contains(explicit),
            "the committed design lists its device range"
        );
        let text = XBAR.replace(explicit, "device: (preset: \"EpiRAM\"),");
        let d = Design::from_texts(&text, ENERGY, Path::new("x.ron"), Path::new("e.ron")).unwrap();
        let EngineConfig::Crossbar(x) = &d.config.engines[0].engine else {
            unreachable!("crossbar-rram has a crossbar engine")
        };
        // EpiRAM (NeuroSim V3.0 Table II): R_on 81 kΩ, 64 states.
        assert_eq!(x.device.g_on_s, 1.0 / 81e3);
        assert_eq!(x.device.levels, 64);
        let bad = XBAR.replace(explicit, "device: (preset: \"unobtainium\"),");
        let e = Design::from_texts(&bad, ENERGY, Path::new("x.ron"), Path::new("e.ron"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("device.preset") && e.contains("\"AlOx/HfO2\""),
            "{e}"
        );
    }

    #[test]
    fn a_design_round_trips_through_ron() {
        let d = design(8, 8, 16.0, 64);
        let text = nacsim_core::config::ron_pretty(&d.config).unwrap();
        let back: DesignConfig = nacsim_core::config::parse(&text, Path::new("x.ron")).unwrap();
        assert_eq!(back, d.config);
    }

    fn facts() -> crate::report::RunFacts {
        crate::report::RunFacts {
            network: "n".into(),
            data: "d".into(),
            images: 64,
            accuracy: 0.5,
            float_accuracy: 0.5,
            calibration: crate::report::Calibration {
                data: "d".into(),
                split: "train".into(),
                images: 64,
            },
            wall_seconds: 0.0,
        }
    }

    /// Figures that pass no validation (set in code) must still never give a wrapped count or
    /// an infinite energy in a report: the saturated totals are refused.
    #[test]
    fn overflowing_cycles_and_infinite_energy_are_refused_not_reported() {
        let m = model(16, false, 1);
        let data = Dataset::bundled_sample().limit(64);
        let mut d = design(8, 8, 16.0, 64);
        d.config.dram.latency_cycles = u64::MAX;
        let sim = Simulation::new(d, &m, &data).unwrap();
        let e = crate::report::RunReport::build(&sim, facts()).unwrap_err();
        assert!(matches!(e, SimError::Overflow { .. }), "{e}");
        assert!(e.to_string().contains("overflows"), "{e}");
        let e = crate::report::InfoReport::build(&sim, "n").unwrap_err();
        assert!(matches!(e, SimError::Overflow { .. }), "{e}");

        let mut d = design(8, 8, 16.0, 64);
        d.config.dram.pj_per_bit = 1e308;
        let sim = Simulation::new(d, &m, &data).unwrap();
        let e = crate::report::RunReport::build(&sim, facts()).unwrap_err();
        assert!(
            e.to_string().contains("energy_pj overflows (inf pJ)"),
            "{e}"
        );
    }
}
