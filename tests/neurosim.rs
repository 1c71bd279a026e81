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
