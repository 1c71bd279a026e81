use super::*;
use crate::design::{DesignConfig, EngineConfig};
use nacsim_nn::network::NetworkSpec;
use nacsim_nn::qnet::RefGemm;
use proptest::prelude::*;

const DESIGN: &str = include_str!("../../../../models/designs/systolic-int8.ron");
const ENERGY: &str = include_str!("../../../../models/energy/horowitz-45nm.ron");

fn design(rows: usize, cols: usize, bw: f64, batch: usize) -> Design {
    let mut d = Design::from_texts(DESIGN, ENERGY, Path::new("d.ron"), Path::new("e.ron")).unwrap();
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

const XBAR: &str = include_str!("../../../../models/designs/crossbar-rram.ron");

/// The crossbar design with d2d variation and read noise (`model` picks the placement).
fn noisy_crossbar(model: nacsim_crossbar::ReadNoiseModel) -> Design {
    let mut d = Design::from_texts(XBAR, ENERGY, Path::new("x.ron"), Path::new("e.ron")).unwrap();
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
        float_accuracy: Some(0.5),
        calibration: crate::report::Calibration {
            data: "d".into(),
            split: nacsim_nn::data::Split::Train,
            images: 64,
        },
        wall_seconds: 0.0,
        timings: None,
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

/// `idle_energy_pj` is exactly the priced idle actions of the engines: more stall cycles
/// (a slower DRAM) leave the useful work alone and raise the idle part, which stays within
/// the total.
#[test]
fn idle_energy_is_the_priced_idle_actions_and_grows_with_stalls() {
    let m = model(16, false, 1);
    let data = Dataset::bundled_sample().limit(64);
    let run = |bytes_per_cycle: f64| {
        let d = design(8, 8, bytes_per_cycle, 64);
        let sim = Simulation::new(d, &m, &data).unwrap();
        crate::report::RunReport::build(&sim, facts()).unwrap()
    };
    let fast = run(64.0);
    let slow = run(0.5);
    for r in [&fast, &slow] {
        let idle: f64 = r
            .energy_by_action_pj
            .iter()
            .filter(|(k, _)| k.ends_with(".pe_cycles_idle"))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(r.idle_energy_pj, idle);
        assert!(r.idle_energy_pj > 0.0 && r.idle_energy_pj < r.energy_pj);
    }
    assert!(
        slow.cycles > fast.cycles,
        "{} vs {}",
        slow.cycles,
        fast.cycles
    );
    assert!(
        slow.idle_energy_pj > fast.idle_energy_pj,
        "{} vs {}",
        slow.idle_energy_pj,
        fast.idle_energy_pj
    );
}
