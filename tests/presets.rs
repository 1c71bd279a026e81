//! Every committed config loads and validates: training configs, designs, networks (with their
//! weights), energy presets and sweeps.

use std::path::PathBuf;

use crate::util::root;

fn files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no RON files in {dir}");
    v
}

#[test]
fn every_committed_config_loads() {
    for p in files("models/training") {
        let _: nacsim_train::TrainConfig =
            nacsim_core::config::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    for p in files("models/designs") {
        nacsim_scheduler::design::Design::load(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    for p in files("models/networks") {
        // Topology-only files (no `weights`, e.g. fc4096.ron for `nacsim info`) load as specs.
        let spec =
            nacsim_nn::model::load_spec(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if spec.weights.is_empty() {
            spec.resolve()
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        } else {
            nacsim_nn::model::Model::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
    for p in files("models/energy") {
        let _: nacsim_core::energy::EnergyTable =
            nacsim_core::config::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    for p in files("models/sweeps") {
        let _: nacsim_scheduler::sweep::SweepConfig =
            nacsim_core::config::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}
