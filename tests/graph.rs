//! Graph networks end to end: a residual CNN with BatchNorm, Add and Concat trained in float,
//! saved and loaded, quantized (BatchNorm folded, Add/Concat scale-aligned) and run on the
//! systolic design through `nacsim run`, `nacsim info` and `nacsim eval`; error messages of bad
//! graph files.

use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_nn::network::NetworkSpec;
use nacsim_nn::train::{FloatKernel, FloatStore, accuracy_net, train_net};
use nacsim_scheduler::design::Design;
use nacsim_scheduler::sim::Simulation;

use crate::util::{nacsim, root, text};

fn tiny_residual() -> NetworkSpec {
    nacsim_core::config::load(&root().join("tests/fixtures/graph/tiny-residual.ron")).unwrap()
}

/// Trains the tiny residual net for 3 epochs on 1,500 bundled images (seed 1); returns it with
/// the other 500 as test set.
fn trained() -> (Model, Dataset) {
    trained_on(1500, 3)
}

fn trained_on(images: usize, epochs: usize) -> (Model, Dataset) {
    let data = Dataset::bundled_sample();
    let (tr, te) = (
        data.subset(&(0..images).collect::<Vec<_>>()),
        data.subset(&(1500..2000).collect::<Vec<_>>()),
    );
    let mut model = Model::init(tiny_residual(), 1).unwrap();
    let settings = crate::util::adam_settings(1, epochs, 32, 3e-3);
    let mut store = FloatStore::new(model.params.clone(), settings.optimizer);
    let mut stats = model.stats.clone();
    let h = train_net(
        &model.layers,
        &FloatKernel,
        &mut store,
        &mut stats,
        &tr,
        Some(&te),
        &settings,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(h.len(), epochs);
    model.params = nacsim_nn::train::WeightStore::export(&store);
    model.stats = stats;
    (model, te)
}

#[test]
fn a_residual_graph_trains_quantizes_and_runs_on_the_systolic_design_within_two_points() {
    let (model, te) = trained();
    let float = accuracy_net(
        &FloatKernel,
        &model.layers,
        &model.params,
        &model.stats,
        &te,
        250,
    );
    assert!(float > 0.6, "float accuracy {float}");
    // Running statistics moved away from their initial values.
    let st = model.stats[1].as_ref().unwrap();
    assert!(st.mean.iter().any(|m| m.abs() > 1e-3), "{:?}", st.mean);
    let design = Design::load(&root().join("models/designs/systolic-int8.ron")).unwrap();
    let sim = Simulation::new(design, &model, &Dataset::bundled_sample().limit(256)).unwrap();
    // BatchNorm is folded: 3 convs (ReLUs fused where a conv feeds one alone), Add, ReLU,
    // Concat, pool, Flatten, Flatten (Dropout), fc.
    let kinds: Vec<String> = sim.plan.iter().map(|p| p.kind.to_string()).collect();
    assert_eq!(
        kinds,
        [
            "conv2d", "conv2d", "conv2d", "add", "lut", "concat", "maxpool", "flatten", "flatten",
            "dense"
        ]
    );
    assert_eq!(sim.unit_name(3), "vector");
    assert_ne!(sim.unit_name(0), "vector", "convolutions run on the array");
    let int8 = sim.accuracy(&te);
    println!("tiny residual: float {float}, int8 on the systolic design {int8}");
    assert!(
        (int8 - float).abs() <= 0.02,
        "int8 {int8} vs float {float}: more than 2 points apart"
    );
    // Vector-unit work of the Add reads both inputs.
    let costs = sim.pass_cost(1);
    assert_eq!(costs[3].sram_act_read_bytes, 2 * 6 * 14 * 14);
}

#[test]
fn a_saved_graph_model_loads_with_its_running_statistics_and_runs_through_the_cli() {
    let (mut model, te) = trained();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("res.ron");
    model.save(&path).unwrap();
    let back = Model::load(&path).unwrap();
    assert_eq!(back.layers, model.layers);
    assert_eq!(back.params, model.params);
    assert_eq!(back.stats, model.stats);
    assert_eq!(
        back.forward(te.batch_range(0, 8).view()),
        model.forward(te.batch_range(0, 8).view())
    );
    let p = path.to_str().unwrap();
    let o = nacsim(&["eval", "--network", p, "--json"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let want = model.float_accuracy(&Dataset::bundled_sample(), 1000);
    assert!(
        (v["accuracy"].as_f64().unwrap() - want).abs() < 1e-12,
        "{v}"
    );
    let o = nacsim(&["run", "--network", p, "--limit", "300", "--json"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (a, f) = (
        v["accuracy"].as_f64().unwrap(),
        v["float_accuracy"].as_f64().unwrap(),
    );
    assert!((a - f).abs() <= 0.03, "int8 {a} vs float {f}");
    let o = nacsim(&[
        "info",
        "--network",
        "tests/fixtures/graph/tiny-residual.ron",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"b1_add") && names.contains(&"cat"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("bn")),
        "BatchNorm folded: {names:?}"
    );
}

#[test]
fn graph_kinds_without_an_int8_path_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("dw.ron");
    std::fs::write(
        &f,
        r#"(schema_version: 1, name: "dw", input: (c: 1, h: 28, w: 28), classes: 10, nodes: [
            (name: "c", op: Conv2d(out_channels: 4, kernel: 3)),
            (name: "dw", op: Conv2d(out_channels: 4, kernel: 3, groups: 4)),
            (name: "f", op: Flatten), (name: "fc", op: Dense(out: 10))])"#,
    )
    .unwrap();
    // A depthwise convolution runs on the array (one GEMM per group, tests/graph_engines.rs);
    // the B-MV, which runs fully connected layers only, refuses it by name with the fix.
    let o = nacsim(&["info", "--network", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = nacsim(&[
        "info",
        "--network",
        f.to_str().unwrap(),
        "--design",
        "models/designs/bpca-qin2019.ron",
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("layer c") && err.contains("mapping.by_kind: [(Conv2d, \"mac\")]"),
        "{err}"
    );
    std::fs::write(
        &f,
        r#"(schema_version: 1, name: "bad", input: (c: 1, h: 28, w: 28), classes: 10, nodes: [
            (name: "c", op: Conv2d(out_channels: 4, kernel: 3)),
            (name: "s", op: Add, inputs: ["c", "input"]),
            (name: "f", op: Flatten), (name: "fc", op: Dense(out: 10))])"#,
    )
    .unwrap();
    let o = nacsim(&["info", "--network", f.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("nodes[1]")
            && err.contains("Add needs inputs of one shape")
            && err.contains("4x26x26"),
        "{err}"
    );
}

/// Graph training (BatchNorm statistics, Dropout masks, fan-out sums) gives the same bits on 1
/// and 2 threads.
#[test]
fn graph_training_is_bit_identical_across_thread_counts() {
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| trained_on(300, 1).0)
    };
    let (a, b) = (run(1), run(2));
    assert_eq!(a.params, b.params);
    assert_eq!(a.stats, b.stats);
}

/// A graph trains with the block-circulant power-of-two kernel on its Dense layers (issue #16's
/// hybrid BPCA run: convolutions on the int8 array, the classifier on the B-MV): the saved
/// classifier is on the B-MV's grid, so the hybrid design compiles it without moving a weight,
/// while the same graph trained in float is flagged. The sine kernel still refuses graphs.
#[test]
fn a_graph_trains_with_the_block_circulant_kernel_and_its_classifier_is_on_the_bmv_grid() {
    let net =
        std::fs::read_to_string(root().join("tests/fixtures/graph/tiny-residual.ron")).unwrap();
    let config = |kernel: &str| {
        format!(
            "(schema_version: 1, name: \"tiny-residual-bc16\", dataset: FashionMnist, network: {net}, \
             output: \"x.ron\", train: (seed: 1, epochs: 1, batch_size: 32, lr: 0.003, \
             optimizer: Adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0), \
             schedule: Constant), kernel: {kernel})"
        )
    };
    let path = std::path::Path::new("inline.ron");
    let cfg: nacsim_train::TrainConfig = nacsim_core::config::parse(
        &config("BlockCirculant(block: 16, pot: Bits(bits: 3))"),
        path,
    )
    .expect("graphs train with the block-circulant kernel");
    let data = Dataset::bundled_sample();
    let (tr, te) = (
        data.subset(&(0..600).collect::<Vec<_>>()),
        data.subset(&(1500..1700).collect::<Vec<_>>()),
    );
    let fitted = nacsim_train::fit(&cfg, &root(), None, &tr, &te, None, &mut |_| {}).unwrap();
    let design = || Design::load(&root().join("models/designs/bpca-hybrid-cnn.ron")).unwrap();
    let calib = Dataset::bundled_calibration().limit(64);
    let off_grid = |sim: &Simulation| sim.warnings.iter().any(|w| w.contains("not on bmv's grid"));
    let sim = Simulation::new(design(), &fitted.model, &calib).unwrap();
    assert!(!off_grid(&sim), "{:?}", sim.warnings);
    // The float-trained graph is off the grid: the check above can fail.
    let (float_model, _) = trained_on(300, 1);
    let sim = Simulation::new(design(), &float_model, &calib).unwrap();
    assert!(off_grid(&sim), "{:?}", sim.warnings);
    let err = nacsim_core::config::parse::<nacsim_train::TrainConfig>(&config("Sine()"), path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("network.nodes"), "{err}");
}
