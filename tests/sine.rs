//! The sine engine through the scheduler: the committed sine model on the f = 10 table datapath
//! stays with its sine-in-float accuracy, the int8 seam's stepped model equals the analytic one,
//! and models that are not sine networks are refused with a reason.

use crate::util::{nacsim, text};

fn run_json(args: &[&str]) -> serde_json::Value {
    let o = nacsim(args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn sine_model_on_the_f10_table_stays_within_half_a_point_of_sine_in_float() {
    let v = run_json(&[
        "run",
        "--design",
        "models/designs/sine-lut.ron",
        "--network",
        "models/networks/fmnist-mlp-sine.ron",
        "--json",
    ]);
    let (acc, float) = (
        v["accuracy"].as_f64().unwrap(),
        v["float_accuracy"].as_f64().unwrap(),
    );
    assert!(
        (acc - float).abs() <= 0.005,
        "bit-exact {acc} vs sine-in-float {float}"
    );
    assert!(v["energy_pj"].as_f64().unwrap() > 0.0);
    // Table reads are priced apart from adds, so their cost is visible.
    let by_action = &v["energy_by_action_pj"];
    assert!(
        by_action.to_string().contains("table_reads"),
        "energy split names the table reads: {by_action}"
    );
}

#[test]
fn a_relu_model_is_refused_by_the_sine_engine() {
    let o = nacsim(&[
        "run",
        "--design",
        "models/designs/sine-lut.ron",
        "--limit",
        "10",
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("sine"), "{err}");
}
