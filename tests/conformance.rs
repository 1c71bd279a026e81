//! One conformance suite for every engine behind the scheduler's seam, instantiated per engine
//! (as tract does for its kernel families): whatever an engine is, through
//! [`nacsim_scheduler::engine::EngineImpl`] it must
//!
//! 1. step (cycle-stepped model) to the same counters as its analytic cost and to the same
//!    outputs as its functional run;
//! 2. give the same outputs when a batch is split at any row (per-row state such as read noise
//!    is keyed by the row's index in the run, `first_row`);
//! 3. give the same outputs on one thread as on several;
//! 4. cost a layer known by its shape alone exactly as the compiled layer, where it costs from
//!    shapes at all ([`nacsim_scheduler::engine::Engine::shape_cost`]).

use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_nn::qnet::{QLayer, RefGemm};
use nacsim_scheduler::design::Design;
use nacsim_scheduler::engine::{Compiled, ShapeLayer};
use nacsim_scheduler::sim::Simulation;
use ndarray::{Array2, Axis, concatenate, s};

use crate::util::root;

/// Every product layer of `network` on `design`, with its int8 input codes for `images`
/// bundled images (the reference forward pass of the layers before it).
fn layers_with_inputs(
    network: &str,
    design: &str,
    images: usize,
) -> (Simulation, Vec<(usize, Array2<i8>)>) {
    let model = Model::load(&root().join(network)).unwrap();
    let design = Design::load(&root().join(design)).unwrap();
    let data = Dataset::bundled_sample().limit(images);
    let calib = Dataset::bundled_calibration().limit(64);
    let sim = Simulation::new(design, &model, &calib).unwrap();
    let mut h = sim.qnet.quantize_input(data.batch_range(0, images).view());
    let mut out = Vec::new();
    for i in 0..sim.plan.len() {
        if let (QLayer::Gemm(q), Some(_)) = (&sim.qnet.layers[i], sim.plan[i].engine) {
            let cols = match q.kind {
                nacsim_nn::qnet::GemmKind::Dense => h.clone(),
                nacsim_nn::qnet::GemmKind::Conv {
                    kernel,
                    stride,
                    padding,
                    ..
                } => {
                    nacsim_nn::qnet::im2col_i8(h.view(), q.input, q.output, kernel, stride, padding)
                }
            };
            out.push((i, cols));
        }
        h = sim.qnet.layer_forward(&RefGemm, i, h);
    }
    assert!(!out.is_empty(), "{network} has product layers");
    (sim, out)
}

fn stepped_equals_analytic_and_functional(network: &str, design: &str) {
    let (sim, layers) = layers_with_inputs(network, design, 2);
    for (i, x) in &layers {
        let (e, c) = (
            sim.plan[*i].engine.unwrap(),
            sim.plan[*i].compiled.as_ref().unwrap(),
        );
        let name = &sim.plan[*i].name;
        let (y, stepped) = sim.engines[e]
            .run_stepped(c, x.view(), 0, &mut nacsim_core::trace::NullSink)
            .unwrap();
        assert_eq!(
            stepped,
            sim.engines[e].cost(c, x.nrows()),
            "{design} {name}: counters"
        );
        assert_eq!(
            y,
            sim.engines[e].run(c, x.view(), 0),
            "{design} {name}: outputs"
        );
    }
}

fn splitting_a_batch_changes_nothing(network: &str, design: &str) {
    let (sim, layers) = layers_with_inputs(network, design, 24);
    for (i, x) in &layers {
        let (e, c) = (
            sim.plan[*i].engine.unwrap(),
            sim.plan[*i].compiled.as_ref().unwrap(),
        );
        let whole = sim.engines[e].run(c, x.view(), 0);
        let rows = x.nrows();
        for k in [1, rows / 3, rows - 1] {
            let a = sim.engines[e].run(c, x.slice(s![..k, ..]), 0);
            let b = sim.engines[e].run(c, x.slice(s![k.., ..]), k as u64);
            let joined = concatenate(Axis(0), &[a.view(), b.view()]).unwrap();
            assert_eq!(
                joined, whole,
                "{design} {}: split at row {k}",
                sim.plan[*i].name
            );
        }
    }
}

fn thread_count_changes_nothing(network: &str, design: &str) {
    let (sim, layers) = layers_with_inputs(network, design, 24);
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    for (i, x) in &layers {
        let (e, c) = (
            sim.plan[*i].engine.unwrap(),
            sim.plan[*i].compiled.as_ref().unwrap(),
        );
        let one = pool(1).install(|| sim.engines[e].run(c, x.view(), 0));
        let three = pool(3).install(|| sim.engines[e].run(c, x.view(), 0));
        assert_eq!(one, three, "{design} {}", sim.plan[*i].name);
    }
}

fn shape_cost_equals_compiled_cost(network: &str, design: &str) {
    let (sim, layers) = layers_with_inputs(network, design, 2);
    for (i, _) in &layers {
        let (e, c) = (
            sim.plan[*i].engine.unwrap(),
            sim.plan[*i].compiled.as_ref().unwrap(),
        );
        let QLayer::Gemm(g) = &sim.qnet.layers[*i] else {
            unreachable!("product layers are Gemm")
        };
        let shape = ShapeLayer {
            name: sim.plan[*i].name.clone(),
            kind: g.kind,
            fan_in: g.weight.ncols(),
            out: g.weight.nrows(),
            weight_bits: sim.design.config.quant.weight_bits,
        };
        let Some(compiled) = sim.engines[e].compile_shape(shape) else {
            continue; // costs with its weights (the crossbar)
        };
        let compiled: Compiled = compiled.unwrap();
        for rows in [1, 5, 64 * sim.plan[*i].rows_per_image as usize] {
            assert_eq!(
                sim.engines[e].cost(&compiled, rows),
                sim.engines[e].cost(c, rows),
                "{design} {}: {rows} rows",
                sim.plan[*i].name
            );
        }
        assert_eq!(
            sim.engines[e].weight_storage_bits(&compiled),
            sim.engines[e].weight_storage_bits(c)
        );
    }
}

/// The suite for one engine on one committed design and network.
macro_rules! conformance {
    ($engine:ident, $network:expr, $design:expr) => {
        mod $engine {
            #[test]
            fn stepped_equals_analytic_and_functional() {
                super::stepped_equals_analytic_and_functional($network, $design);
            }
            #[test]
            fn splitting_a_batch_changes_nothing() {
                super::splitting_a_batch_changes_nothing($network, $design);
            }
            #[test]
            fn thread_count_changes_nothing() {
                super::thread_count_changes_nothing($network, $design);
            }
            #[test]
            fn shape_cost_equals_compiled_cost() {
                super::shape_cost_equals_compiled_cost($network, $design);
            }
        }
    };
}

conformance!(
    systolic_mlp,
    "models/networks/fmnist-mlp.ron",
    "models/designs/systolic-int8.ron"
);
conformance!(
    systolic_cnn,
    "models/networks/fmnist-cnn.ron",
    "models/designs/systolic-int8.ron"
);
conformance!(
    circulant,
    "models/networks/fmnist-mlp-bc16-pot3.ron",
    "models/designs/bpca-qin2019.ron"
);
conformance!(
    circulant_hybrid,
    "models/networks/fmnist-cnn-bc16-pot3.ron",
    "models/designs/bpca-hybrid-cnn.ron"
);
conformance!(
    crossbar_mlp,
    "models/networks/fmnist-mlp.ron",
    "tests/fixtures/conformance/crossbar-noisy.ron"
);
conformance!(
    crossbar_cnn,
    "models/networks/fmnist-mcnn.ron",
    "tests/fixtures/conformance/crossbar-noisy.ron"
);
conformance!(
    sine,
    "models/networks/fmnist-mlp-sine.ron",
    "models/designs/sine-lut.ron"
);
conformance!(
    sine_quarter_square,
    "models/networks/fmnist-mlp-sine.ron",
    "models/designs/sine-quarter-square.ron"
);
