//! The NeuroSim-parity preset (issue #17): its `neurosim` block is MLP_NeuroSim V3.0's default
//! run, and `nacsim info` reports the figures re-derived from NeuroSim's formulas (not
//! NeuroSim's printed output; docs/engines/crossbar.md, "NeuroSim parity").

use nacsim::cmd::info::{InfoArgs, report};
use nacsim_crossbar::neurosim::NeuroSimConfig;
use nacsim_scheduler::design::Design;

use crate::util::root;

const PRESET: &str = "models/designs/neurosim-mlp-agasi.ron";

#[test]
fn the_preset_is_mlp_neurosims_default_run() {
    let d = Design::load(&root().join(PRESET)).unwrap();
    let mut n = d
        .config
        .neurosim
        .clone()
        .expect("the preset has a neurosim block");
    let want = NeuroSimConfig::mlp_v3_default();
    n.source = want.source.clone();
    assert_eq!(n, want);
}

#[test]
fn info_reports_the_neurosim_figures_and_only_for_designs_that_ask() {
    let args = InfoArgs {
        design: Some(root().join(PRESET)),
        network: Some(root().join("models/networks/neurosim-agasi-fmnist20.ron")),
        ..InfoArgs::default()
    };
    let r = report(&args).unwrap();
    let n = r.neurosim.as_ref().expect("neurosim figures");
    let near = |a: f64, b: f64, tol: f64| (a - b).abs() / b <= tol;
    // Re-derived from NeuroSim's formulas: total 6.292e-9 m², core 5.084e-9, neuron 1.208e-9;
    // read latency 5.127e-6 s per image, 4.10e-2 s per epoch.
    assert!(near(n.total_area_m2, 6.292e-9, 5e-4), "{}", n.total_area_m2);
    assert!(near(n.core_area_m2, 5.084e-9, 5e-4), "{}", n.core_area_m2);
    assert!(
        near(n.neuron_area_m2, 1.208e-9, 5e-4),
        "{}",
        n.neuron_area_m2
    );
    assert!(near(n.read_latency_per_image_s, 5.127e-6, 1e-3));
    assert!(near(n.read_latency_per_epoch_s, 4.10e-2, 2e-3));
    // ≈ 4.13e-10 J static + ~6.7e-14 J per active pixel + ~2.7e-15 J per active hidden unit.
    assert!(near(
        n.read_energy_per_image_j,
        4.13e-10 + 100.0 * 6.66e-14 + 50.0 * 2.69e-15,
        3e-3
    ));
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["neurosim"]["total_area_m2"].is_f64());
    assert!(json["neurosim"]["layers"][0]["core_area"]["bl_switch_matrix_m2"].is_f64());
    let other = InfoArgs {
        design: Some(root().join("models/designs/crossbar-rram.ron")),
        ..InfoArgs::default()
    };
    let json = serde_json::to_value(report(&other).unwrap()).unwrap();
    assert!(json.get("neurosim").is_none());
}

/// `nacsim train` of the committed NeuroSim setting on the first `limit` images, optionally
/// with `--neurosim DESIGN`, into `out`; the report as JSON and the trained weights' bytes.
fn train(
    out: &std::path::Path,
    neurosim: Option<&str>,
    limit: usize,
) -> (serde_json::Value, Vec<u8>) {
    use nacsim::cmd::train::{TrainArgs, report};
    let args = TrainArgs {
        config: root().join("models/training/neurosim-agasi-fmnist20.ron"),
        out: Some(out.to_path_buf()),
        data: Some(crate::util::fashion_mnist_dir().to_path_buf()),
        epochs: Some(2),
        limit: Some(limit),
        eval_limit: Some(20),
        quiet: true,
        force: true,
        neurosim: neurosim.map(|d| root().join(d)),
        ..TrainArgs::default()
    };
    let r = report(&args).unwrap();
    let w = std::fs::read(out.join("neurosim-agasi-fmnist20.safetensors")).unwrap();
    (serde_json::to_value(&r).unwrap(), w)
}

#[test]
fn train_reports_neurosim_write_and_read_per_epoch_without_changing_training() {
    let d = tempfile::tempdir().unwrap();
    let (on, w_on) = train(&d.path().join("on"), Some(PRESET), 12);
    let (off, w_off) = train(&d.path().join("off"), None, 12);
    // The accounting only reads what the programmer did.
    assert_eq!(w_on, w_off);
    assert_eq!(on["insitu"], off["insitu"]);
    assert_eq!(on["accuracy"], off["accuracy"]);
    assert!(off.get("neurosim").is_none());
    let n = &on["neurosim"];
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    let epochs = n["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    let static_s = NeuroSimConfig::mlp_v3_default()
        .evaluate()
        .unwrap()
        .write_latency_static_per_image_s;
    for e in epochs {
        assert_eq!(e["images"], 12);
        // 12 images: 12 × (decode + WL select) of periphery latency; read = 12 × one image.
        let per = f(&e["write_periphery_latency_s"]) / 12.0;
        assert!(
            (per - static_s).abs() <= 1e-9 * static_s,
            "{per} vs {static_s}"
        );
        assert!(f(&e["write_pulse_latency_s"]) > 0.0);
        let sum = f(&e["write_array_energy_j"]) + f(&e["write_periphery_energy_j"]);
        assert!((f(&e["write_energy_j"]) - sum).abs() <= 1e-12 * sum);
        let rl = f(&n["read_latency_per_image_s"]) * 12.0;
        assert!((f(&e["read_latency_s"]) - rl).abs() <= 1e-12 * rl);
        let layers = e["layers"].as_array().unwrap();
        assert_eq!(
            (layers[0]["rows"].clone(), layers[1]["cols"].clone()),
            (400.into(), 10.into())
        );
        let by_layer: f64 = layers.iter().map(|l| f(&l["write_energy_j"])).sum();
        assert!((by_layer - f(&e["write_energy_j"])).abs() <= 1e-12 * by_layer);
    }
    let total: f64 = epochs.iter().map(|e| f(&e["write_energy_j"])).sum();
    assert!((f(&n["total"]["write_energy_j"]) - total).abs() <= 1e-12 * total);
    assert_eq!(n["total"]["images"], 24);
}

#[test]
fn train_neurosim_bad_input_names_the_file_and_field() {
    use nacsim::cmd::train::{TrainArgs, report};
    let d = tempfile::tempdir().unwrap();
    let args = |config: &str, design: &str| TrainArgs {
        config: root().join(config),
        out: Some(d.path().to_path_buf()),
        data: Some(crate::util::fashion_mnist_dir().to_path_buf()),
        epochs: Some(1),
        limit: Some(4),
        eval_limit: Some(4),
        quiet: true,
        force: true,
        neurosim: Some(root().join(design)),
        ..TrainArgs::default()
    };
    // A design without a neurosim block.
    let e = report(&args(
        "models/training/neurosim-agasi-fmnist20.ron",
        "models/designs/crossbar-rram.ron",
    ))
    .err()
    .expect("an error")
    .to_string();
    assert!(
        e.contains("crossbar-rram.ron") && e.contains("`neurosim` block"),
        "{e}"
    );
    // A float training run.
    let e = report(&args("models/training/fmnist-mlp.ron", PRESET))
        .err()
        .expect("an error")
        .to_string();
    assert!(e.contains("store = Float"), "{e}");
    // Batches of 16 and the fixed-voltage scheme.
    let e = report(&args("tests/fixtures/sweeps/tiny-insitu-train.ron", PRESET))
        .err()
        .expect("an error")
        .to_string();
    assert!(e.contains("train.batch_size = 16"), "{e}");
}
