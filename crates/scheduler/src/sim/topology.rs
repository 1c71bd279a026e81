//! Shape-only simulation of a topology file ([`crate::topology`]): each row becomes one
//! [`LayerPlan`] costed by its engine from its shape, or, for an engine whose costs follow the
//! weight values (the crossbar's conductances), from seeded weights.

use nacsim_core::keyed::{Keyed, Seq};
use nacsim_core::rng::{Purpose, Stream, unit_f64};
use nacsim_nn::network::{Hw, Shape};
use nacsim_nn::qnet::{GemmKind, LayerKind, QGemm, QNetwork, Requant};
use nacsim_nn::quant::UniformQuantizer;
use ndarray::Array2;

use super::{
    LayerPlan, SimError, Simulation, build_engines, check_resident, check_resident_bytes,
    param_storage,
};
use crate::design::{Design, ProductKind};
use crate::engine::{Compiled, EngineImpl, LayerSource, ShapeLayer};
use crate::topology::{TopoLayer, Topology, TopologyFormat};

/// The product kind the design's mapping sees: a GEMM row, or a convolution whose filter covers
/// its whole map (a fully connected layer in the convolution format), is `dense`; any other row
/// is `conv2d`.
#[must_use]
pub fn product_kind(format: TopologyFormat, t: &TopoLayer) -> ProductKind {
    if format == TopologyFormat::Gemm || t.filter == t.ifmap {
        ProductKind::Dense
    } else {
        ProductKind::Conv2d
    }
}

/// Seeded float weights `[N, K]` of group `group` of a row, uniform in `±1/√K` as
/// [`nacsim_nn::model::Model::init`] scales a layer's, drawn from the cheap keyed hash of stream
/// `(seed, WeightInit, layer + group · 2^20, 0)` (element `i`: `unit_f64` of
/// [`Seq::word`]`(i)`; a ChaCha stream per element made ResNet-50's crossbar costing take
/// seconds; group 0, every row but a depthwise one, is the row's index alone), and their int8
/// quantization: per-tensor symmetric codes, unit input and output scales.
fn seeded_layer(
    t: &TopoLayer,
    kind: GemmKind,
    (index, group): (usize, usize),
    seed: u64,
    design: &Design,
) -> (QGemm, Array2<f32>) {
    let (k, n) = (t.k(), t.n());
    let bound = 1.0 / (k as f64).sqrt();
    let s = Stream::new(
        seed,
        Purpose::WeightInit,
        u32::try_from(index + (group << 20)).unwrap_or(u32::MAX),
        0,
    );
    let seq: Seq = Keyed::of(&s).at(0);
    let weight = Array2::from_shape_fn((n, k), |(o, i)| {
        ((2.0 * unit_f64(seq.word((o * k + i) as u64)) - 1.0) * bound) as f32
    });
    let q = design.config.quant;
    // The network quantizer's per-tensor rule (`UniformQuantizer::for_max_abs`), on seeded
    // weights that are never all zero (K ≥ 1 draws of a continuous uniform).
    let absmax = weight
        .iter()
        .fold(0.0_f64, |m, w| m.max(f64::from(w.abs())));
    let quantizer = UniformQuantizer::for_max_abs(
        absmax.max(f64::MIN_POSITIVE),
        q.weight_bits,
        true,
        q.rounding,
    )
    .unwrap_or_else(|e| unreachable!("weight_bits is validated with the design: {e}"));
    let w_scale = quantizer.scale as f32;
    let codes = weight.mapv(|w| quantizer.quantize(f64::from(w)) as i8);
    let requant = Requant::from_real(quantizer.scale).unwrap_or(Requant {
        multiplier: 1 << 30,
        shift: 31,
    });
    let [oh, ow] = t.ofmap();
    let qg = QGemm {
        name: t.name.clone(),
        kind,
        input: Shape {
            c: t.channels,
            h: t.ifmap[0],
            w: t.ifmap[1],
        },
        output: Shape { c: n, h: oh, w: ow },
        weight: codes,
        bias: Vec::new(),
        requant: vec![requant; n],
        in_scale: 1.0,
        out_scale: 1.0,
        w_scale: vec![w_scale; n],
        relu: false,
        act_max: (1 << (q.act_bits - 1)) - 1,
        rounding: q.rounding,
    };
    (qg, weight)
}

impl Simulation {
    /// Map a topology file's layers onto `design` and compile them for costing only (the
    /// result is for [`Simulation::pass_cost`] and reports, never for a functional run).
    ///
    /// Each row is one product layer (`dense` or `conv2d` by [`product_kind`], mapped by the
    /// design's `by_index`, `by_kind` and `default` as a network's layers are). A depthwise row
    /// is `groups` single-channel layers: engines that cost a shape without weights cost it as
    /// `groups ×` one ([`LayerPlan::groups`]); the others get weights seeded from `seed` for
    /// each group (see `seeded_layer`), compiled as a grouped convolution and timed by the
    /// engine ([`Engine::groups_at_once`](crate::engine::Engine::groups_at_once)). Feature counts include the file's padding (IFMAP sizes are padded).
    ///
    /// # Errors
    /// The design's engines or mapping are invalid, an engine cannot take a layer (named in
    /// the error), or the weights of the resident layers do not fit the weight buffer.
    pub fn from_topology(design: Design, topo: &Topology, seed: u64) -> Result<Self, SimError> {
        let engines = build_engines(&design)?;
        let count = topo.layers.len();
        let weight_bits = design.config.quant.weight_bits;
        // Every layer keeps 8 bytes of requantization parameters per output channel whatever
        // its engine: refuse a workload that cannot be resident before programming any array.
        let requant_bytes: u64 = topo
            .layers
            .iter()
            .map(|t| 8 * t.n() as u64 * t.groups as u64)
            .sum();
        check_resident_bytes(&design, requant_bytes, "at least ")?;
        let mut plan = Vec::with_capacity(count);
        let names: Vec<&str> = topo.layers.iter().map(|t| t.name.as_str()).collect();
        for (i, t) in topo.layers.iter().enumerate() {
            let pk = product_kind(topo.format, t);
            let Some(e) = design.engine_for_named(&names, i, Some(pk))? else {
                return Err(SimError::Data(format!(
                    "{}: layer {} (line {}) maps to no engine of design {}",
                    topo.name,
                    t.name,
                    t.line,
                    design.path.display()
                )));
            };
            let (kind, gemm) = match pk {
                // `product_kind` makes Dense or Conv2d of every row.
                ProductKind::Dense | ProductKind::MatMul => (LayerKind::Dense, GemmKind::Dense),
                ProductKind::Conv2d => (
                    LayerKind::Conv2d,
                    GemmKind::Conv {
                        kernel: Hw::new(t.filter[0], t.filter[1]),
                        stride: Hw::new(t.stride[0], t.stride[1]),
                        padding: Hw::square(0),
                        groups: 1,
                    },
                ),
            };
            let engine_err = |source| SimError::Engine {
                design: design.path.display().to_string(),
                source,
            };
            let shape = ShapeLayer {
                name: t.name.clone(),
                kind: gemm,
                fan_in: t.k(),
                out: t.n(),
                weight_bits,
            };
            // An engine that costs shapes costs a depthwise row as `groups ×` one group
            // (`LayerPlan::groups`); the others get one seeded layer per group, compiled as a
            // grouped convolution ([`Compiled::Groups`]) so that every group brings its own
            // hardware (the crossbar's arrays) and the engine times the groups itself.
            let (compiled, plan_groups) = match engines[e].compile_shape(shape) {
                Some(c) => (c.map_err(engine_err)?, t.groups),
                None => {
                    let mut parts = (0..t.groups.max(1))
                        .map(|g| {
                            let (q, w) = seeded_layer(t, gemm, (i, g), seed, &design);
                            let src = LayerSource {
                                q: &q,
                                weight: w.view(),
                                bias: None,
                                index: i,
                                seed,
                                trial: 0,
                                weight_bits,
                                group: g,
                            };
                            Ok(engines[e].compile(&src).map_err(engine_err)?.0)
                        })
                        .collect::<Result<Vec<_>, SimError>>()?;
                    let c = if parts.len() == 1 {
                        parts.pop().expect("one group")
                    } else {
                        Compiled::Groups(parts)
                    };
                    (c, 1)
                }
            };
            plan.push(topology_plan(
                &engines[e],
                t,
                (i, plan_groups),
                kind,
                e,
                compiled,
            ));
        }
        check_resident(&design, &plan)?;
        let qnet = QNetwork {
            name: topo.name.clone(),
            input_scale: 1.0,
            layers: Vec::new(),
            inputs: Vec::new(),
            classes: 0,
            config: design.config.quant,
        };
        Ok(Self {
            design,
            qnet,
            engines,
            plan,
            native: None,
            warnings: Vec::new(),
        })
    }
}

/// The plan entry of one topology row: features of the (padded) maps, MACs, weights and
/// parameter bytes over all groups (int8 codes unless the engine holds its weights, 8-byte
/// requantization parameters per output channel, no biases). `plan_groups` is the row's groups
/// when `compiled` is one group ([`LayerPlan::groups`]), 1 when it holds every group.
fn topology_plan(
    engine: &EngineImpl,
    t: &TopoLayer,
    (index, plan_groups): (usize, usize),
    kind: LayerKind,
    e: usize,
    compiled: Compiled,
) -> LayerPlan {
    let g = t.groups as u64;
    let [oh, ow] = t.ofmap();
    let wb = engine.weight_storage_bits(&compiled) * plan_groups as u64;
    let (param_bytes, storage_bits) = param_storage(engine, wb, t.n() as u64 * g, 0);
    LayerPlan {
        name: t.name.clone(),
        kind,
        network_index: index,
        engine: Some(e),
        compiled: Some(compiled),
        in_features: (t.ifmap[0] * t.ifmap[1] * t.channels) as u64 * g,
        out_features: (oh * ow * t.n()) as u64 * g,
        macs_per_image: t.macs(),
        rows_per_image: t.m() as u64,
        groups: plan_groups as u64,
        weight_count: t.weights(),
        bias_count: 0,
        param_bytes,
        storage_bits,
        weight_storage_bits: wb,
        vector_ops_per_image: (t.ifmap[0] * t.ifmap[1] * t.channels) as u64 * g,
    }
}
