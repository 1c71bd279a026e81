//! Graph layer kinds on every engine (#16): grouped, depthwise and rectangular convolutions
//! and the MatMul of two activations on the systolic array (bit-exact against the int8
//! reference, cycles per group), per-group crossbar arrays, the B-MV's refusal of
//! convolutions, the MatMul refusal of engines that hold compiled weights, `mapping.by_name`,
//! and the CLI on the tiny transformer-encoder example.

use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_nn::network::NetworkSpec;
use nacsim_nn::qnet::{LayerKind, RefGemm};
use nacsim_scheduler::design::Design;
use nacsim_scheduler::engine::Compiled;
use nacsim_scheduler::sim::Simulation;

use crate::util::{nacsim, root, text};

/// A separable-CNN-style graph on 28×28 images: a stem, a depthwise 3×3, a grouped (1, 3)
/// convolution, a pointwise 1×1, a residual Add, global average pooling and a classifier.
const SEPARABLE: &str = r#"(schema_version: 1, name: "sep", input: (c: 1, h: 28, w: 28), classes: 10, nodes: [
    (name: "stem", op: Conv2d(out_channels: 16, kernel: 3, stride: 2, padding: 1)),
    (name: "stem_relu", op: Act(ReLU)),
    (name: "dw", op: Conv2d(out_channels: 16, kernel: 3, padding: 1, groups: 16)),
    (name: "dw_relu", op: Act(ReLU6)),
    (name: "gc", op: Conv2d(out_channels: 16, kernel: (1, 3), padding: (0, 1), groups: 2)),
    (name: "pw", op: Conv2d(out_channels: 16, kernel: 1)),
    (name: "sum", op: Add, inputs: ["pw", "stem_relu"]),
    (name: "gap", op: GlobalAvgPool),
    (name: "fc", op: Dense(out: 10)),
])"#;

fn model(text: &str, seed: u64) -> Model {
    // `bare_ops`: the file loaders' rewrite of a bare `MatMul` (ron reads `MatMul()` only).
    let spec: NetworkSpec = ron::from_str(&nacsim_nn::network::bare_ops(text)).unwrap();
    Model::init(spec, seed).unwrap()
}

fn design(name: &str) -> Design {
    Design::load(&root().join("models/designs").join(name)).unwrap()
}

fn position(sim: &Simulation, name: &str) -> usize {
    sim.plan.iter().position(|p| p.name == name).unwrap()
}

#[test]
fn grouped_convolutions_run_bit_exact_on_the_systolic_array_one_gemm_per_group() {
    let m = model(SEPARABLE, 3);
    let calib = Dataset::bundled_calibration().limit(64);
    let sim = Simulation::new(design("systolic-int8.ron"), &m, &calib).unwrap();
    let x = Dataset::bundled_sample().limit(64);
    let x = x.batch_range(0, 64);
    let codes = sim.qnet.quantize_input(x.view());
    assert_eq!(sim.forward(x.view()), sim.qnet.forward(&RefGemm, codes));
    // Cycles: one weight-stationary GEMM per group, one after the other.
    let nacsim_scheduler::design::EngineConfig::Systolic(cfg) =
        &sim.design.config.engines[0].engine
    else {
        panic!("the systolic design's engine")
    };
    let rows = 64 * 14 * 14;
    for (name, groups, k, n) in [("dw", 16, 9, 1), ("gc", 2, 8 * 3, 8), ("pw", 1, 16, 16)] {
        let i = position(&sim, name);
        let p = &sim.plan[i];
        let e = sim.engines[p.engine.unwrap()].cost(p.compiled.as_ref().unwrap(), rows);
        let one = nacsim_systolic::analytic(cfg, rows, k, n);
        assert_eq!(e.cycles, groups * one.cycles, "{name}");
        assert_eq!(e.macs, groups * (rows * k * n) as u64, "{name}");
        if groups > 1 {
            assert!(
                matches!(p.compiled, Some(Compiled::Groups(ref v)) if v.len() == groups as usize)
            );
        }
    }
    // The depthwise layer keeps 9 of the 32 × 32 PEs busy at most (one column, 9 rows).
    let dw = position(&sim, "dw");
    let c = &sim.pass_cost(64)[dw];
    let util = c.macs as f64 / (1024.0 * c.compute_cycles as f64);
    assert!(util < 9.0 / 1024.0, "depthwise utilization {util}");
    // `info` costs the network by its shapes alone, equal to the costs of the weights.
    let shapes = Simulation::from_shapes(design("systolic-int8.ron"), &m.spec, &m.layers)
        .unwrap()
        .unwrap();
    let (a, b) = (shapes.pass_cost(16), sim.pass_cost(16));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            (x.cycles, x.macs, x.dram_read_bytes),
            (y.cycles, y.macs, y.dram_read_bytes),
            "layer {i}"
        );
    }
    let storage = |s: &Simulation| s.plan.iter().map(|p| p.storage_bits).sum::<u64>();
    assert_eq!(storage(&shapes), storage(&sim));
}

#[test]
fn grouped_convolutions_program_one_set_of_crossbar_arrays_per_group() {
    let m = model(SEPARABLE, 3);
    let calib = Dataset::bundled_calibration().limit(64);
    let sim = Simulation::new(design("crossbar-rram.ron"), &m, &calib).unwrap();
    let dw = position(&sim, "dw");
    let Some(Compiled::Groups(groups)) = &sim.plan[dw].compiled else {
        panic!("per-group arrays")
    };
    assert_eq!(groups.len(), 16);
    let area = nacsim_scheduler::area::design_area(&sim).expect("the crossbar models its area");
    assert_eq!(
        area.layers[&dw].counts["arrays"], 16,
        "one array per depthwise channel"
    );
    // The crossbar's int8 result tracks the exact int8 network on the same codes.
    let data = Dataset::bundled_sample().limit(200);
    let exact = sim.qnet.accuracy(&RefGemm, &data, 200);
    let analog = sim.accuracy(&data);
    println!("separable graph, random weights: int8 {exact}, crossbar {analog}");
    assert!(sim.pass_cost(1).iter().all(|c| c.saturated().is_none()));
}

#[test]
fn the_bmv_refuses_convolutions_by_name_with_the_mapping_fix_and_the_hybrid_maps_them() {
    let m = model(SEPARABLE, 3);
    let calib = Dataset::bundled_calibration().limit(64);
    let err = Simulation::new(design("bpca-qin2019.ron"), &m, &calib)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stem") && err.contains("mapping.by_kind: [(Conv2d"),
        "{err}"
    );
    let sim = Simulation::new(design("bpca-hybrid-cnn.ron"), &m, &calib).unwrap();
    assert_eq!(sim.unit_name(position(&sim, "dw")), "mac");
    assert_eq!(sim.unit_name(position(&sim, "fc")), "bmv");
}

const ATTENTION: &str = r#"(schema_version: 1, name: "att", input: (c: 1, h: 8, w: 8), classes: 4, nodes: [
    (name: "q", op: Conv2d(out_channels: 2, kernel: (1, 8)), inputs: ["input"]),
    (name: "k", op: Conv2d(out_channels: 2, kernel: (1, 8)), inputs: ["input"]),
    (name: "qk", op: MatMul(transpose_b: true), inputs: ["q", "k"]),
    (name: "s", op: Conv2d(out_channels: 1, kernel: 1)),
    (name: "p", op: Act(Sigmoid)),
    (name: "ctx", op: MatMul, inputs: ["p", "input"]),
    (name: "f", op: Flatten),
    (name: "fc", op: Dense(out: 4)),
])"#;

#[test]
fn matmul_runs_on_the_systolic_array_and_engines_with_compiled_weights_refuse_it() {
    let m = model(ATTENTION, 4);
    let calib = Dataset::synthetic(64, 8, 8, 4, 1);
    let sim = Simulation::new(design("systolic-int8.ron"), &m, &calib).unwrap();
    let x = calib.batch_range(0, 32);
    let codes = sim.qnet.quantize_input(x.view());
    assert_eq!(sim.forward(x.view()), sim.qnet.forward(&RefGemm, codes));
    let (qk, ctx) = (position(&sim, "qk"), position(&sim, "ctx"));
    assert_eq!(sim.plan[qk].kind, LayerKind::MatMul);
    assert_eq!(sim.unit_name(ctx), "mac");
    let costs = sim.pass_cost(4);
    // qk: 2 channels of (8 × 1)·(1 × 8); ctx: one (8 × 8)·(8 × 8); per image.
    assert_eq!(costs[qk].macs, 4 * 2 * 8 * 8);
    assert_eq!(costs[ctx].macs, 4 * 8 * 8 * 8);
    assert_eq!(
        costs[ctx].sram_weight_read_bytes, 0,
        "the operand is an activation"
    );
    assert_eq!(sim.plan[ctx].param_bytes, 0);
    let err = Simulation::new(design("crossbar-rram.ron"), &m, &calib)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("qk") && err.contains("MatMul") && err.contains("int8 systolic"),
        "{err}"
    );
    let mut hybrid = design("bpca-hybrid-cnn.ron");
    hybrid
        .config
        .mapping
        .by_kind
        .push((nacsim_scheduler::design::ProductKind::MatMul, "bmv".into()));
    let err = Simulation::new(hybrid, &m, &calib).unwrap_err().to_string();
    assert!(err.contains("(MatMul, \"mac\")"), "{err}");
}

#[test]
fn by_name_maps_layers_by_their_names_and_lists_the_names_when_one_is_unknown() {
    // tiny-residual's BatchNorm layers are folded: by_index counts differ from the file's.
    let spec: NetworkSpec =
        nacsim_core::config::load(&root().join("tests/fixtures/graph/tiny-residual.ron")).unwrap();
    let m = Model::init(spec, 1).unwrap();
    let calib = Dataset::bundled_calibration().limit(64);
    let mut d = design("bpca-hybrid-cnn.ron");
    d.config.mapping.by_kind.clear();
    d.config.mapping.by_name = vec![
        ("fc".into(), "bmv".into()),
        ("b1_conv2".into(), "mac".into()),
    ];
    let sim = Simulation::new(d.clone(), &m, &calib).unwrap();
    assert_eq!(sim.unit_name(position(&sim, "fc")), "bmv");
    assert_eq!(sim.unit_name(position(&sim, "b1_conv2")), "mac");
    // ResNet-8's fc is node 29 of its file, after 9 BatchNorm2d nodes: index 20 as mapped
    // (docs/workloads.md).
    let r8 = Model::load(&root().join("models/networks/fmnist-resnet8.ron")).unwrap();
    let mut by_index = design("bpca-hybrid-cnn.ron");
    by_index.config.mapping.by_kind.clear();
    by_index.config.mapping.by_index = vec![(20, "bmv".into())];
    let s8 = Simulation::new(by_index, &r8, &calib).unwrap();
    assert_eq!(s8.unit_name(position(&s8, "fc")), "bmv");
    assert_eq!(r8.spec.nodes.iter().position(|n| n.name == "fc"), Some(29));
    d.config.mapping.by_name = vec![("b1_bn2".into(), "mac".into())];
    let err = Simulation::new(d, &m, &calib).unwrap_err().to_string();
    assert!(
        err.contains("mapping.by_name[0]")
            && err.contains("b1_bn2")
            && err.contains("stem, stem_relu, b1_conv1"),
        "{err}"
    );
}

#[test]
fn a_mapping_entry_for_a_layer_without_products_is_refused_not_ignored() {
    let spec: NetworkSpec =
        nacsim_core::config::load(&root().join("tests/fixtures/graph/tiny-residual.ron")).unwrap();
    let m = Model::init(spec, 1).unwrap();
    let calib = Dataset::bundled_calibration().limit(64);
    let mut d = design("bpca-hybrid-cnn.ron");
    d.config.mapping.by_name = vec![("b1_add".into(), "bmv".into())];
    let err = Simulation::new(d.clone(), &m, &calib)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mapping.by_name[0] = \"b1_add\"")
            && err.contains("\"b1_add\" (add) has no weight or activation product")
            && err.contains("remove this entry"),
        "{err}"
    );
    // by_index the same: layer 1 is stem_relu (the BatchNorm is folded away).
    d.config.mapping.by_name.clear();
    d.config.mapping.by_index = vec![(1, "mac".into())];
    let err = Simulation::new(d, &m, &calib).unwrap_err().to_string();
    assert!(
        err.contains("mapping.by_index[0] = 1") && err.contains("\"stem_relu\""),
        "{err}"
    );
}

#[test]
fn the_tiny_encoder_example_runs_through_info_run_and_trace_on_the_systolic_design() {
    let net = "models/networks/fmnist-tiny-encoder.ron";
    let o = nacsim(&["info", "--network", net, "--json"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<&str> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "matmul").count(),
        2,
        "{kinds:?}"
    );
    let o = nacsim(&["run", "--network", net, "--limit", "200", "--json"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (a, f) = (
        v["accuracy"].as_f64().unwrap(),
        v["float_accuracy"].as_f64().unwrap(),
    );
    assert!(f > 0.5 && (a - f).abs() <= 0.05, "int8 {a} vs float {f}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.vcd");
    let o = nacsim(&[
        "trace",
        "--network",
        net,
        "--layer",
        "q",
        "--vcd",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    // The score MatMul steps channel by channel: one scope per channel of q and k (16).
    let o = nacsim(&[
        "trace",
        "--network",
        net,
        "--layer",
        "qk",
        "--vcd",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(text(&o).0.contains("traced layer 2 (qk)"), "{}", text(&o).0);
    let vcd = std::fs::read_to_string(&out).unwrap();
    assert!(
        vcd.contains("$scope module ch0") && vcd.contains("$scope module ch15"),
        "{}",
        &vcd[..vcd.len().min(2000)]
    );
}

#[test]
fn every_product_layer_of_the_tiny_encoder_steps_at_its_analytic_cost_matmuls_included() {
    use nacsim_core::trace::NullSink;
    use nacsim_nn::qnet::QLayer;
    let m = Model::load(&root().join("models/networks/fmnist-tiny-encoder.ron")).unwrap();
    let calib = Dataset::bundled_calibration().limit(64);
    let sim = Simulation::new(design("systolic-int8.ron"), &m, &calib).unwrap();
    let img = Dataset::bundled_sample().limit(3);
    let x = sim.qnet.quantize_input(img.batch(&[2]).view());
    let mut matmuls = 0;
    for i in 0..sim.plan.len() {
        let (Some(e), Some(c)) = (sim.plan[i].engine, &sim.plan[i].compiled) else {
            continue;
        };
        let xs = sim.qnet.inputs_of(&RefGemm, x.clone(), i);
        let (acc, stepped) = sim.trace_node(i, xs.clone(), &mut NullSink).unwrap();
        let analytic = match &sim.qnet.layers[i] {
            QLayer::Gemm(q) => sim.engines[e].cost(c, nacsim_scheduler::engine::gemm_rows(q, 1)),
            &QLayer::MatMul {
                a, n, transpose_b, ..
            } => {
                matmuls += 1;
                // The stepped accumulators are the functional product's, channel by channel.
                for ch in 0..a.c {
                    let (am, w) = nacsim_nn::qnet::matmul_operands(
                        (&xs[0], &xs[1]),
                        0,
                        ch,
                        (a, n, transpose_b),
                    );
                    let y = sim.engines[e].run_activation_weights(am, w.view()).unwrap();
                    assert_eq!(
                        acc.slice(ndarray::s![.., ch * n..(ch + 1) * n]),
                        y,
                        "{} channel {ch}",
                        sim.plan[i].name
                    );
                }
                sim.engines[e]
                    .cost(c, sim.plan[i].rows_per_image as usize)
                    .times(sim.plan[i].groups)
            }
            other => panic!("{}: {other:?} has an engine", sim.plan[i].name),
        };
        assert_eq!(stepped, analytic, "layer {}", sim.plan[i].name);
    }
    assert_eq!(matmuls, 2);
    // A MatMul given one input is refused by name, not a panic.
    let qk = position(&sim, "qk");
    let one = sim.qnet.input_of(&RefGemm, x, qk);
    let err = sim.trace_node(qk, vec![one], &mut NullSink).unwrap_err();
    assert!(err.to_string().contains("qk"), "{err}");
}
