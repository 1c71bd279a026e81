//! `nacsim run`'s phase timings (`timings`, `wall_seconds`) and `--no-float-reference` (#20).

use crate::util::{nacsim, text};

fn json(args: &[&str]) -> serde_json::Value {
    let o = nacsim(args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

const PHASES: [&str; 5] = [
    "load_s",
    "calibrate_s",
    "compile_s",
    "simulate_s",
    "float_reference_s",
];

/// Every phase is a non-negative number and together they fit in `wall_seconds`.
fn check_timings(v: &serde_json::Value) -> f64 {
    let wall = v["wall_seconds"].as_f64().expect("wall_seconds");
    let t = &v["timings"];
    let mut sum = 0.0;
    for k in PHASES {
        let x = t[k]
            .as_f64()
            .unwrap_or_else(|| panic!("timings.{k} missing: {t}"));
        assert!(x >= 0.0 && x.is_finite(), "timings.{k} = {x}");
        sum += x;
    }
    assert!(
        sum <= wall,
        "phases sum to {sum} s, more than wall_seconds {wall} s"
    );
    assert!(t["simulate_s"].as_f64().unwrap() > 0.0, "{t}");
    sum
}

#[test]
fn run_json_times_its_phases_within_the_wall_time() {
    let v = json(&["run", "--json"]);
    check_timings(&v);
    assert!(v["timings"]["float_reference_s"].as_f64().unwrap() > 0.0);
    assert!(v["float_accuracy"].as_f64().is_some());
}

#[test]
fn skipping_the_float_reference_keeps_every_simulated_number() {
    let design = crate::util::root().join("models/designs/crossbar-rram.ron");
    let design = design.to_str().unwrap();
    for args in [
        vec!["run", "--json"],
        vec![
            "run", "--json", "--design", design, "--seed", "3", "--trial", "2",
        ],
    ] {
        let with = json(&args);
        let mut skip_args = args.clone();
        skip_args.push("--no-float-reference");
        let skip = json(&skip_args);
        assert!(
            skip["float_accuracy"].is_null(),
            "{}",
            skip["float_accuracy"]
        );
        assert_eq!(skip["timings"]["float_reference_s"].as_f64(), Some(0.0));
        check_timings(&skip);
        // Everything but the wall-clock figures and the float accuracy is the same.
        let strip = |v: &serde_json::Value| {
            let mut v = v.clone();
            let o = v.as_object_mut().unwrap();
            for k in ["wall_seconds", "timings", "float_accuracy"] {
                assert!(o.remove(k).is_some(), "{k} missing");
            }
            v
        };
        assert_eq!(strip(&with), strip(&skip), "{args:?}");
    }
}

#[test]
fn run_table_prints_the_phases_and_a_skipped_float_model() {
    let o = nacsim(&["run", "--no-float-reference"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("float model not run"), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("wall time: load"))
        .unwrap_or_else(|| panic!("no timing line: {out}"));
    for k in ["calibrate", "compile", "simulate", "float reference"] {
        assert!(line.contains(k), "{line}");
    }
}
