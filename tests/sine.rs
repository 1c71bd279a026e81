//! The sine engine through the scheduler: the committed sine model on the f = 10 table datapath
//! stays with its sine-in-float accuracy, the int8 seam's stepped model equals the analytic one,
//! and models that are not sine networks are refused with a reason.

use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_scheduler::design::Design;
use nacsim_scheduler::sim::Simulation;

use crate::util::{nacsim, root, text};

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
fn int8_seam_stepped_cost_equals_analytic_and_outputs_agree() {
    let model = Model::load(&root().join("models/networks/fmnist-mlp-sine.ron")).unwrap();
    let design = Design::load(&root().join("models/designs/sine-lut.ron")).unwrap();
    let data = Dataset::bundled_sample().limit(2);
    let sim = Simulation::new(design, &model, &data).unwrap();
    let mut h = sim.qnet.quantize_input(data.batch_range(0, 2).view());
    let mut traced = 0;
    for i in 0..sim.plan.len() {
        if let (Some(e), Some(c)) = (sim.plan[i].engine, &sim.plan[i].compiled) {
            let (y, stepped) = sim
                .trace_layer(i, h.clone(), &mut nacsim_core::trace::NullSink)
                .unwrap();
            assert_eq!(
                stepped,
                sim.engines[e].cost(c, 2),
                "layer {}",
                sim.plan[i].name
            );
            assert_eq!(
                y,
                sim.engines[e].run(c, h.view(), 0),
                "layer {}",
                sim.plan[i].name
            );
            traced += 1;
        }
        h = sim.qnet.layer_forward(&nacsim_nn::qnet::RefGemm, i, h);
    }
    assert_eq!(traced, 3);
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
