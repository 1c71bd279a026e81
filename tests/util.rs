//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run the `nacsim` binary with `args` in the workspace root.
pub fn nacsim(args: &[&str]) -> Output {
    nacsim_env(args, &[])
}

/// Run the `nacsim` binary with extra environment variables.
pub fn nacsim_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nacsim"));
    c.args(args).current_dir(root());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the nacsim binary runs")
}

/// stdout and stderr as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The full Fashion-MNIST folder (Debian package `dataset-fashion-mnist`). CI installs it; the
/// tests that need it fail with this message when it is missing rather than pass silently.
pub fn fashion_mnist_dir() -> &'static Path {
    let d = Path::new("/usr/share/datasets/fashion-mnist");
    assert!(
        d.join("train-images-idx3-ubyte.gz").exists(),
        "Fashion-MNIST is not installed: run `apt-get install dataset-fashion-mnist` (.ci/run does)"
    );
    d
}

/// The MNIST sample shipped in the repository (the first 2,000 test images; cut by
/// `scripts/cut_samples.py`, licence note beside it).
pub fn mnist_dir() -> PathBuf {
    root().join("crates/nn/data/mnist-sample")
}

/// Runs `images` bundled images through every engine layer of `network` on `design` with the
/// cycle-stepped model and checks its cost equals the analytic cost and its outputs equal the
/// functional path; returns the number of layers traced.
pub fn assert_stepped_equals_analytic(network: &str, design: &str, images: usize) -> usize {
    use nacsim_nn::data::Dataset;
    use nacsim_nn::model::Model;
    use nacsim_scheduler::design::Design;
    use nacsim_scheduler::sim::Simulation;
    let model = Model::load(&root().join(network)).unwrap();
    let design = Design::load(&root().join(design)).unwrap();
    let data = Dataset::bundled_sample().limit(images);
    let sim = Simulation::new(design, &model, &data).unwrap();
    let mut h = sim.qnet.quantize_input(data.batch_range(0, images).view());
    let mut traced = 0;
    for i in 0..sim.plan.len() {
        if let (Some(e), Some(c)) = (sim.plan[i].engine, &sim.plan[i].compiled) {
            let (y, stepped) = sim
                .trace_layer(i, h.clone(), &mut nacsim_core::trace::NullSink)
                .unwrap();
            let name = &sim.plan[i].name;
            assert_eq!(stepped, sim.engines[e].cost(c, images), "layer {name}");
            assert_eq!(y, sim.engines[e].run(c, h.view(), 0), "layer {name}");
            traced += 1;
        }
        // Any int8 activations do for timing; the reference product keeps them realistic.
        h = sim.qnet.layer_forward(&nacsim_nn::qnet::RefGemm, i, h);
    }
    traced
}
