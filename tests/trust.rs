//! Numbers a user can trust: DRAM traffic of the network input, idle and stalled cycles priced,
//! where the energies come from, time versus latency, calibration on training images, `info`
//! from shapes, and warnings for a network trained for another engine geometry.

use std::path::{Path, PathBuf};

use crate::util::{nacsim, root, text};

fn json(args: &[&str]) -> serde_json::Value {
    let o = nacsim(args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

/// A copy of the committed design `name` in `dir` with `edit` applied to its text and its
/// energy and technology presets made absolute (so the copy loads from anywhere).
fn design_copy(dir: &Path, name: &str, edit: &dyn Fn(String) -> String) -> PathBuf {
    let text = crate::util::committed_design_text(name);
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit of {name} changed nothing");
    let p = dir.join(name);
    std::fs::write(&p, edited).unwrap();
    p
}

fn f(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} is not a number in {v}"))
}

fn u(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} is not a count in {v}"))
}

/// Parameter bytes one pass of the default MLP fetches: int8 weights, int32 biases, 8 bytes of
/// requantization parameters per output channel (784-256-128-10).
fn mlp_param_bytes() -> u64 {
    [(784u64, 256u64), (256, 128), (128, 10)]
        .iter()
        .map(|&(i, o)| i * o + 4 * o + 8 * o)
        .sum()
}

#[test]
fn the_network_input_is_read_from_dram_unless_io_is_resident() {
    let images = 300u64;
    let lim = images.to_string();
    let v = json(&["run", "--limit", &lim, "--json"]);
    let passes = images.div_ceil(64);
    // The MLP starts with Flatten: its input enters at fc1 and is read from DRAM once per image.
    assert_eq!(
        u(&v, "dram_read_bytes"),
        mlp_param_bytes() * passes + images * 784,
        "weights × passes + images × input bytes"
    );
    let dir = tempfile::tempdir().unwrap();
    let resident = design_copy(dir.path(), "systolic-int8.ron", &|t| {
        t.replace(
            "    batch: 64,",
            "    resident: (io: true),\n    batch: 64,",
        )
    });
    let r = json(&[
        "run",
        "--design",
        resident.to_str().unwrap(),
        "--limit",
        &lim,
        "--json",
    ]);
    assert_eq!(u(&r, "dram_read_bytes"), mlp_param_bytes() * passes);
    assert_eq!(u(&r, "dram_write_bytes"), 0, "outputs stay on chip too");
    assert_eq!(u(&v, "dram_write_bytes"), images * 10);
}

#[test]
fn stalled_cycles_cost_energy_in_the_calibrated_bpca_table() {
    let full = json(&[
        "info",
        "--design",
        "models/designs/bpca-qin2019.ron",
        "--network",
        "models/networks/fc4096.ron",
        "--json",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let narrow = design_copy(dir.path(), "bpca-qin2019.ron", &|t| {
        t.replace(
            "weights: (capacity_bytes: 2097152, width_bytes: 8,",
            "weights: (capacity_bytes: 2097152, width_bytes: 3,",
        )
    });
    let half = json(&[
        "info",
        "--design",
        narrow.to_str().unwrap(),
        "--network",
        "models/networks/fc4096.ron",
        "--json",
    ]);
    // The paper's example: 65,536 busy B-MV cycles; the 3-byte port halves the utilization.
    assert!((f(&full, "utilization") - 1.0).abs() < 1e-3, "{full}");
    assert!((f(&half, "utilization") - 0.5).abs() < 1e-2, "{half}");
    let (t_full, t_half) = (f(&full, "tops_per_watt"), f(&half, "tops_per_watt"));
    assert!(
        (t_full - 5.3).abs() < 0.01,
        "calibrated headline at 100 %: {t_full}"
    );
    assert!(
        t_half < 0.9 * t_full,
        "50 % utilization must cost energy: {t_half} vs {t_full} TOPS/W"
    );
}

#[test]
fn every_committed_energy_table_prices_idle_cycles() {
    // Whatever an engine does while it waits must cost something: its idle action, or the
    // design's control cycles, priced above zero in every committed table.
    for entry in std::fs::read_dir(root().join("models/energy")).unwrap() {
        let p = entry.unwrap().path();
        let t: nacsim_core::energy::EnergyTable = nacsim_core::config::load(&p).unwrap();
        let idle = [
            "pe_cycles_idle",
            "bmv_idle_cycles",
            "lane_cycles_idle",
            "control_cycles",
        ];
        let priced: Vec<&str> = idle
            .iter()
            .copied()
            .filter(|a| t.energy_pj.get(*a).is_some_and(|&e| e > 0.0))
            .collect();
        assert!(
            !priced.is_empty(),
            "{}: no idle or control action has a price",
            p.display()
        );
    }
}

#[test]
fn reports_name_their_energy_table_and_whether_it_is_calibrated() {
    let run = json(&[
        "run",
        "--design",
        "models/designs/bpca-qin2019.ron",
        "--network",
        "models/networks/fmnist-mlp-bc16-pot3.ron",
        "--limit",
        "100",
        "--json",
    ]);
    let t = &run["energy_table"];
    assert_eq!(t["name"], "bpca-qin2019-calibrated");
    assert_eq!(t["calibrated"], true);
    assert_eq!(t["technology_nm"], 40);
    assert!(t["source"].as_str().unwrap().contains("Qin"));
    let info = json(&["info", "--json"]);
    assert_eq!(info["energy_table"]["name"], "horowitz-45nm");
    assert_eq!(info["energy_table"]["calibrated"], false);
    assert_eq!(info["energy_table"]["technology_nm"], 45);
    // The text says it too, and explains a zero SRAM row.
    let o = nacsim(&[
        "run",
        "--design",
        "models/designs/bpca-qin2019.ron",
        "--network",
        "models/networks/fmnist-mlp-bc16-pot3.ron",
        "--limit",
        "100",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("CALIBRATED"), "{out}");
    assert!(out.contains("folded into the calibrated table"), "{out}");
}

#[test]
fn time_and_latency_are_different_figures() {
    let v = json(&["run", "--limit", "200", "--json"]);
    let hz = f(&v, "clock_hz");
    let (time, batch, image) = (
        f(&v, "time_s"),
        f(&v, "batch_latency_s"),
        f(&v, "image_latency_s"),
    );
    assert!((time - u(&v, "cycles") as f64 / hz).abs() <= 1e-12 * time);
    assert!(
        image > 0.0 && image < batch && batch < time,
        "{image} {batch} {time}"
    );
    assert!((f(&v, "images_per_s") - 200.0 / time).abs() <= 1e-9 * f(&v, "images_per_s"));
    // One image alone is what `info` gives for a design of batch 1 (one pass).
    let dir = tempfile::tempdir().unwrap();
    let b1 = design_copy(dir.path(), "systolic-int8.ron", &|t| {
        t.replace("batch: 64,", "batch: 1,")
    });
    let i = json(&["info", "--design", b1.to_str().unwrap(), "--json"]);
    assert!(
        (image * hz - u(&i, "cycles") as f64).abs() < 0.5,
        "image latency {image} s vs one pass of batch 1: {} cycles",
        i["cycles"]
    );
    let one = json(&["run", "--limit", "1", "--json"]);
    assert!((f(&one, "image_latency_s") - f(&one, "time_s")).abs() < 1e-15);
}

#[test]
fn the_default_run_calibrates_on_training_images() {
    let v = json(&["run", "--limit", "100", "--json"]);
    let c = &v["calibration"];
    assert_eq!(c["split"], "train", "{c}");
    assert_eq!(
        c["images"], 512,
        "quant.calibration_images of the default design"
    );
    assert!(v["warnings"].as_array().unwrap().is_empty(), "{v}");
    // A folder without a training split calibrates on the evaluation images and says so.
    let dir = tempfile::tempdir().unwrap();
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(
            root().join("crates/nn/data/mnist-sample").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    let m = json(&[
        "run",
        "--data",
        dir.path().to_str().unwrap(),
        "--limit",
        "100",
        "--json",
    ]);
    assert_eq!(m["calibration"]["split"], "test");
    let w = m["warnings"].as_array().unwrap();
    assert!(
        w.iter()
            .any(|w| w.as_str().unwrap().contains("evaluation images")),
        "{w:?}"
    );
    // A training split that is there but damaged is an error, not a silent fallback.
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), [0u8; 7]).unwrap();
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), [0u8; 7]).unwrap();
    let o = nacsim(&[
        "run",
        "--data",
        dir.path().to_str().unwrap(),
        "--limit",
        "10",
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("train-"), "{err}");
}

#[test]
fn a_network_trained_for_another_block_size_is_flagged() {
    let args = |design: &'static str| {
        [
            "run",
            "--design",
            design,
            "--network",
            "models/networks/fmnist-mlp-bc16-pot3.ron",
            "--limit",
            "50",
            "--json",
        ]
    };
    let wrong = json(&args("models/designs/bpca-qin2019-bc256-pot3.ron"));
    let w = wrong["warnings"].as_array().unwrap();
    assert!(
        w.iter().any(|w| {
            let w = w.as_str().unwrap();
            w.contains("block 256") && w.contains("fc1")
        }),
        "{w:?}"
    );
    let right = json(&args("models/designs/bpca-qin2019.ron"));
    assert!(
        right["warnings"].as_array().unwrap().is_empty(),
        "{}",
        right["warnings"]
    );
    // The text report prints it.
    let o = nacsim(&args("models/designs/bpca-qin2019-bc256-pot3.ron")[..7]);
    let (out, _) = text(&o);
    assert!(out.contains("warning: layer fc1"), "{out}");
}

#[test]
fn text_reports_use_one_number_format() {
    for args in [
        &["run", "--limit", "100"][..],
        &["info"][..],
        &[
            "info",
            "--design",
            "models/designs/bpca-qin2019.ron",
            "--network",
            "models/networks/fc4096.ron",
        ][..],
    ] {
        let o = nacsim(args);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{err}");
        // No scientific notation (1.2e-5, 3.4e+06) beside the engineering figures.
        let sci = out.split_whitespace().find(|w| {
            let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            w.contains("e-") || w.contains("e+") || {
                let (m, e) = w.split_once('e').unwrap_or(("", ""));
                !m.is_empty() && m.parse::<f64>().is_ok() && e.parse::<i32>().is_ok()
            }
        });
        assert!(sci.is_none(), "{args:?}: scientific {sci:?} in:\n{out}");
    }
}

#[test]
fn dram_bandwidth_can_be_given_in_gbytes_per_second_independent_of_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let cycles_of = |clock: &str, dram: &str| -> (f64, u64) {
        let (clock, dram) = (clock.to_string(), dram.to_string());
        let p = design_copy(dir.path(), "systolic-int8.ron", &move |t| {
            t.replace("clock_mhz: 500.0", &clock)
                .replace("bytes_per_cycle: 16.0", &dram)
        });
        let v = json(&["info", "--design", p.to_str().unwrap(), "--json"]);
        (f(&v, "clock_hz"), u(&v, "cycles"))
    };
    // 16 B/cycle at 500 MHz is 8 GB/s: the same schedule.
    assert_eq!(
        cycles_of("clock_mhz: 500.0", "gbytes_per_s: 8.0").1,
        cycles_of("clock_mhz: 500.00", "bytes_per_cycle: 16.0").1
    );
    // Doubling the clock: bytes per cycle keeps its cycles, GB/s halves the bytes per cycle,
    // so the DRAM-bound default MLP takes more cycles.
    let fixed = cycles_of("clock_mhz: 1000.0", "gbytes_per_s: 8.0");
    let scaled = cycles_of("clock_mhz: 1000.0", "bytes_per_cycle: 16.0");
    assert_eq!(fixed.0, 1e9);
    assert!(fixed.1 > scaled.1, "{fixed:?} vs {scaled:?}");
    // Exactly one of the two.
    let both = design_copy(dir.path(), "systolic-int8.ron", &|t| {
        t.replace(
            "bytes_per_cycle: 16.0",
            "bytes_per_cycle: 16.0, gbytes_per_s: 8.0",
        )
    });
    let o = nacsim(&["info", "--design", both.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("dram") && err.contains("not both"), "{err}");
}

#[test]
fn a_copied_design_whose_energy_preset_does_not_resolve_names_the_field_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("copied.ron");
    std::fs::copy(root().join("models/designs/systolic-int8.ron"), &p).unwrap();
    let o = nacsim(&["info", "--design", p.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("copied.ron"), "names the design: {err}");
    assert!(err.contains("energy"), "names the field: {err}");
    let resolved = dir.path().join("../energy/horowitz-45nm.ron");
    assert!(
        err.contains(&resolved.display().to_string()),
        "names the resolved path {}: {err}",
        resolved.display()
    );
}

#[test]
fn train_refuses_to_overwrite_an_existing_network_without_force() {
    let committed = root().join("models/networks/fmnist-mlp.ron");
    let before = std::fs::read(&committed).unwrap();
    let o = nacsim(&[
        "train",
        "models/training/fmnist-mlp.ron",
        "--data",
        "crates/nn/data/fmnist-sample",
        "--epochs",
        "1",
        "--limit",
        "64",
        "--eval-limit",
        "64",
        "--quiet",
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--force") && err.contains("--out"), "{err}");
    assert_eq!(
        std::fs::read(&committed).unwrap(),
        before,
        "the committed model is untouched"
    );
    // With --force into a copy it overwrites.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fmnist-mlp.ron");
    std::fs::write(&out, "old").unwrap();
    let o = nacsim(&[
        "train",
        "models/training/fmnist-mlp.ron",
        "--data",
        "crates/nn/data/fmnist-sample",
        "--epochs",
        "1",
        "--limit",
        "64",
        "--eval-limit",
        "64",
        "--quiet",
        "--out",
        dir.path().to_str().unwrap(),
        "--force",
    ]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_ne!(std::fs::read(&out).unwrap(), b"old");
}

/// `info` answers from shapes: the shape-only mapping costs every pass exactly as the mapping
/// of the trained weights does, on every committed design whose engines cost from shapes (the
/// engines' shape costs layer by layer are in the conformance suite).
#[test]
fn shape_only_costs_equal_compiled_costs() {
    use nacsim_nn::data::Dataset;
    use nacsim_nn::model::Model;
    use nacsim_scheduler::design::Design;
    use nacsim_scheduler::report::InfoReport;
    use nacsim_scheduler::sim::Simulation;
    let calib = Dataset::bundled_calibration().limit(64);
    let mut shape_sims = 0;
    for (design, network) in [
        ("systolic-int8.ron", "fmnist-mlp.ron"),
        ("systolic-int8.ron", "fmnist-cnn.ron"),
        ("systolic-int8.ron", "fmnist-mcnn.ron"),
        ("bpca-qin2019.ron", "fmnist-mlp-bc16-pot3.ron"),
        ("bpca-qin2019-bc64-pot4.ron", "fmnist-mlp-bc64-pot4.ron"),
        ("bpca-hybrid-cnn.ron", "fmnist-cnn-bc16-pot3.ron"),
        ("bpca-derived-45nm.ron", "fmnist-mlp-bc16-pot3.ron"),
        ("sine-lut.ron", "fmnist-mlp-sine.ron"),
        ("sine-quarter-square.ron", "fmnist-mlp-sine.ron"),
        ("crossbar-rram.ron", "fmnist-mlp.ron"),
    ] {
        let d = Design::load(&root().join("models/designs").join(design)).unwrap();
        let m = Model::load(&root().join("models/networks").join(network)).unwrap();
        let full = Simulation::new(d.clone(), &m, &calib).unwrap();
        // The whole mapping, where the design has no native model and no crossbar.
        let layers = m.spec.resolve().unwrap();
        if let Some(shapes) = Simulation::from_shapes(d, &m.spec, &layers).unwrap() {
            shape_sims += 1;
            let a = serde_json::to_value(InfoReport::build(&full, "n").unwrap()).unwrap();
            let b = serde_json::to_value(InfoReport::build(&shapes, "n").unwrap()).unwrap();
            for k in a.as_object().unwrap().keys().filter(|k| *k != "warnings") {
                assert_eq!(a[k], b[k], "{design} {network}: {k}");
            }
            for images in [1, 63, 64, 130] {
                let (x, y) = (full.dataset_cost(images), shapes.dataset_cost(images));
                assert_eq!(
                    format!("{x:?}"),
                    format!("{y:?}"),
                    "{design} {network}: {images} images"
                );
            }
        }
    }
    assert_eq!(
        shape_sims, 7,
        "systolic and circulant designs map from shapes"
    );
}

#[test]
fn info_answers_from_shapes_for_networks_too_big_to_hold() {
    let dir = tempfile::tempdir().unwrap();
    // 1e10 weights (40 GB at fp32): info needs none of them.
    let p = dir.path().join("huge.ron");
    std::fs::write(
        &p,
        "(schema_version: 1, name: \"huge\", input: (c: 1, h: 316, w: 316), classes: 100000, \
         layers: [Flatten, Dense(out: 100000, bias: false)])",
    )
    .unwrap();
    let v = json(&["info", "--network", p.to_str().unwrap(), "--json"]);
    // One pass of the design's batch.
    assert_eq!(u(&v, "ops"), u(&v, "batch") * 2 * 316 * 316 * 100_000);
    assert!(u(&v, "cycles") > 0);
    // The BPCA timing example, from shapes: 65,536 B-MV cycles plus the pipeline.
    let i = json(&[
        "info",
        "--design",
        "models/designs/bpca-qin2019.ron",
        "--network",
        "models/networks/fc4096.ron",
        "--json",
    ]);
    assert!(
        (65_536..65_600).contains(&u(&i, "cycles")),
        "{}",
        i["cycles"]
    );
    assert!((f(&i, "compression_ratio") - 170.67).abs() < 0.01);
}

#[test]
fn info_on_a_weight_dependent_engine_synthesizes_images_of_the_network_input() {
    // The crossbar costs with conductances, so info gives a topology-only network seeded
    // weights and calibration images: of the network's channels, not one.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("wide.ron");
    std::fs::write(
        &p,
        "(schema_version: 1, name: \"wide\", input: (c: 300, h: 1, w: 1), classes: 10, \
         layers: [Flatten, Dense(out: 32), Act(ReLU), Dense(out: 10)])",
    )
    .unwrap();
    let v = json(&[
        "info",
        "--design",
        "models/designs/crossbar-rram.ron",
        "--network",
        p.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(u(&v, "ops"), u(&v, "batch") * 2 * (300 * 32 + 32 * 10));
    assert!(f(&v, "energy_pj") > 0.0);
}

#[test]
fn a_network_trained_for_another_sine_encoding_is_flagged_and_train_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let scale = design_copy(dir.path(), "sine-lut.ron", &|t| {
        t.replace(
            "rounding: HalfEven)",
            "rounding: HalfEven, input: Scale(shift: 2))",
        )
    });
    let run = |design: &str| {
        json(&[
            "run",
            "--design",
            design,
            "--network",
            "models/networks/fmnist-mlp-sine.ron",
            "--limit",
            "50",
            "--json",
        ])
    };
    let v = run(scale.to_str().unwrap());
    let w = v["warnings"].as_array().unwrap();
    assert!(
        w.iter().any(|w| {
            let w = w.as_str().unwrap();
            w.contains("Arcsin") && w.contains("Scale") && w.contains("numerics.input")
        }),
        "{w:?}"
    );
    let ok = run("models/designs/sine-lut.ron");
    assert!(
        ok["warnings"].as_array().unwrap().is_empty(),
        "{}",
        ok["warnings"]
    );
    // `nacsim train` writes the record the engines read.
    let o = nacsim(&[
        "train",
        "models/training/fmnist-mlp-sine.ron",
        "--data",
        "crates/nn/data/fmnist-sample",
        "--epochs",
        "1",
        "--limit",
        "64",
        "--eval-limit",
        "64",
        "--quiet",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let spec: nacsim_nn::network::NetworkSpec =
        nacsim_core::config::load(&dir.path().join("fmnist-mlp-sine.ron")).unwrap();
    assert_eq!(spec.trained_for["sine.input"], "Arcsin");
}
