//! `nacsim run`, `info` and `trace` end to end, and bad designs.

use crate::util::{nacsim, text};

fn json(args: &[&str]) -> serde_json::Value {
    let o = nacsim(args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

#[test]
fn default_run_reports_the_documented_keys_consistently() {
    let v = json(&["run", "--json"]);
    for k in [
        "accuracy",
        "images",
        "clock_hz",
        "cycles",
        "time_s",
        "batch_latency_s",
        "image_latency_s",
        "images_per_s",
        "ops",
        "gops",
        "energy_pj",
        "energy_breakdown_pj",
        "tops_per_watt",
        "energy_table",
        "calibration",
        "warnings",
        "layers",
    ] {
        assert!(!v[k].is_null(), "missing key {k}");
    }
    let (ops, lat, gops) = (
        v["ops"].as_f64().unwrap(),
        v["time_s"].as_f64().unwrap(),
        v["gops"].as_f64().unwrap(),
    );
    assert!(ops > 0.0 && lat > 0.0 && gops > 0.0);
    assert!(
        (gops - ops / lat / 1e9).abs() <= 1e-9 * gops,
        "gops {gops} != ops/time_s/1e9"
    );
    let e = v["energy_pj"].as_f64().unwrap();
    let split: f64 = v["energy_breakdown_pj"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_f64().unwrap())
        .sum();
    assert!(
        (split - e).abs() <= 1e-9 * e,
        "energy split {split} != energy {e}"
    );
    assert!((v["tops_per_watt"].as_f64().unwrap() - ops / e).abs() <= 1e-9 * ops / e);
    let layer_cycles: u64 = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["cycles"].as_u64().unwrap())
        .sum();
    assert_eq!(layer_cycles, v["cycles"].as_u64().unwrap());
    for l in v["layers"].as_array().unwrap() {
        for k in [
            "name",
            "engine",
            "cycles",
            "time_s",
            "ops",
            "gops",
            "energy_pj",
            "energy_breakdown_pj",
            "tops_per_watt",
        ] {
            assert!(!l[k].is_null(), "layer missing key {k}: {l}");
        }
    }
    // The int8 run stays close to the float model on the same images.
    let (a, f) = (
        v["accuracy"].as_f64().unwrap(),
        v["float_accuracy"].as_f64().unwrap(),
    );
    assert!((a - f).abs() <= 0.01, "int8 {a} vs float {f}");
}

#[test]
fn default_run_table_shows_the_main_figures() {
    let o = nacsim(&[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for k in [
        "accuracy",
        "cycles",
        "latency",
        "OPS",
        "OPS/W",
        "energy table",
        "calibration",
        "energy split",
        "dram",
        "sram",
    ] {
        assert!(out.contains(k), "{k} missing from:\n{out}");
    }
}

#[test]
fn info_json_has_peak_and_per_layer_cycles() {
    let v = json(&[
        "info",
        "--design",
        "models/designs/systolic-int8.ron",
        "--network",
        "models/networks/fmnist-cnn.ron",
        "--json",
    ]);
    // 2·R·C·f = 2·32·32·500 MHz.
    assert!((v["peak_gops"].as_f64().unwrap() - 1024.0).abs() < 1e-9);
    assert_eq!(v["clock_hz"].as_f64().unwrap(), 5e8);
    assert!(v["storage_bits"].as_u64().unwrap() > 0);
    let layers = v["layers"].as_array().unwrap();
    assert!(layers.iter().any(|l| l["name"] == "conv1"
        && l["engine"] == "mac"
        && l["cycles"].as_u64().unwrap() > 0));
    for l in layers {
        for k in ["name", "engine", "cycles", "ops", "storage_bits"] {
            assert!(!l[k].is_null(), "{k} missing in {l}");
        }
    }
}

#[test]
fn info_works_on_a_topology_only_network() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("topo.ron");
    std::fs::write(
        &p,
        "(schema_version: 1, name: \"t\", input: (c: 1, h: 28, w: 28), classes: 10, \
         layers: [Flatten, Dense(out: 100), Act(ReLU), Dense(out: 10)])",
    )
    .unwrap();
    let v = json(&["info", "--network", p.to_str().unwrap(), "--json"]);
    assert_eq!(v["layers"].as_array().unwrap().len(), 3);
}

/// Every `tests/fixtures/bad-designs/<name>.ron` is rejected by `nacsim info` (exit status 2,
/// no panic) with the message of the snapshot `<name>.snap`.
#[test]
fn bad_designs_are_rejected_with_file_field_value_and_rule() {
    let all = crate::util::fixtures("tests/fixtures/bad-designs");
    for p in &all {
        let o = nacsim(&["info", "--design", p.to_str().unwrap()]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{}: {err}", p.display());
        assert!(!err.contains("panicked"), "{err}");
        crate::util::assert_message_snapshot(p, &err);
    }
    assert!(all.len() >= 5, "fixtures: {}", all.len());
}

#[test]
fn trace_writes_a_vcd_that_parses_and_perfetto_json() {
    let dir = tempfile::tempdir().unwrap();
    let vcd = dir.path().join("t.vcd");
    let pf = dir.path().join("t.json");
    let o = nacsim(&[
        "trace",
        "--layer",
        "fc3",
        "--vcd",
        vcd.to_str().unwrap(),
        "--perfetto",
        pf.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let mut parser = vcd::Parser::new(std::io::BufReader::new(std::fs::File::open(&vcd).unwrap()));
    let header = parser.parse_header().expect("VCD header parses");
    assert!(!header.items.is_empty(), "VCD declares signals");
    let mut changes = 0;
    for cmd in parser {
        if let vcd::Command::ChangeScalar(..) | vcd::Command::ChangeVector(..) =
            cmd.expect("VCD body parses")
        {
            changes += 1;
        }
    }
    assert!(changes > 10, "value changes: {changes}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&pf).unwrap()).expect("Perfetto JSON parses");
    let ev = v["traceEvents"].as_array().expect("traceEvents array");
    assert!(
        ev.iter().any(|e| e["ph"] == "X" && e["name"] == "fc1"),
        "a span for layer fc1"
    );
    for e in ev {
        assert!(e["ph"].is_string() && e["pid"].is_number(), "{e}");
    }
}

/// Issue 3 acceptance: the int8 baseline on the full Fashion-MNIST test set stays within 0.5
/// points of the float model (calibrated on the training split, never on test images).
#[test]
fn full_test_set_int8_mlp_is_within_half_a_point_of_float() {
    let d = crate::util::fashion_mnist_dir();
    let v = json(&[
        "run",
        "--design",
        "models/designs/systolic-int8.ron",
        "--network",
        "models/networks/fmnist-mlp.ron",
        "--data",
        d.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(v["images"], 10_000);
    let (a, f) = (
        v["accuracy"].as_f64().unwrap(),
        v["float_accuracy"].as_f64().unwrap(),
    );
    assert!((a - f).abs() <= 0.005, "int8 {a} vs float {f}");
    assert!(f >= 0.885, "float MLP accuracy {f}");
}
