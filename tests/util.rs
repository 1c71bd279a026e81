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

/// The text of the committed design `models/designs/<name>` with its energy and technology
/// presets made absolute, so that a copy of it loads from any folder.
pub fn committed_design_text(name: &str) -> String {
    let r = root();
    std::fs::read_to_string(r.join("models/designs").join(name))
        .unwrap()
        .replace(
            "Preset(\"../energy/",
            &format!("Preset(\"{}/", r.join("models/energy").display()),
        )
        .replace(
            "Preset(\"../tech/",
            &format!("Preset(\"{}/", r.join("models/tech").display()),
        )
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

/// The `.ron` fixtures of `dir` (relative to the workspace root), sorted, as relative paths.
pub fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| Path::new(dir).join(e.unwrap().file_name()))
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    v.sort();
    v
}

/// Asserts `message` equals the insta snapshot `<dir>/<name>.snap` beside the fixture
/// `<dir>/<name>.ron` (review a change with `cargo insta review`, docs/style.md §2.7).
pub fn assert_message_snapshot(fixture: &Path, message: &str) {
    let dir = fixture.parent().unwrap();
    let name = fixture.file_stem().unwrap().to_str().unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join(dir));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_input_file(root().join(fixture));
    settings.bind(|| insta::assert_snapshot!(name, message));
}

/// Float training settings with PyTorch's Adam defaults (β = 0.9, 0.999, ε = 1e-8, no weight
/// decay), a constant rate and no augmentation: the set-up the graph, attention and MNIST tests
/// share.
pub fn adam_settings(
    seed: u64,
    epochs: usize,
    batch_size: usize,
    lr: f32,
) -> nacsim_nn::train::TrainSettings {
    nacsim_nn::train::TrainSettings {
        seed,
        epochs,
        batch_size,
        lr,
        optimizer: nacsim_nn::train::Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        },
        schedule: nacsim_nn::train::Schedule::Constant,
        augment: None,
    }
}
