//! The circulant engine through the scheduler: the acceptance figures of the BPCA designs
//! (peak, cycles, compression, calibrated energy), accuracy of the committed models and the
//! bit-exactness of the functional path against the shift-add datapath.

use nacsim_circulant::{BmvConfig, PreparedLayer};
use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_scheduler::design::Design;
use nacsim_scheduler::engine::{Compiled, EngineImpl};
use nacsim_scheduler::sim::Simulation;
use ndarray::Array2;

use crate::util::{nacsim, root, text};

fn json(args: &[&str]) -> serde_json::Value {
    let o = nacsim(args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

fn info_fc4096(design: &str) -> serde_json::Value {
    json(&[
        "info",
        "--design",
        &format!("models/designs/{design}.ron"),
        "--network",
        "models/networks/fc4096.ron",
        "--json",
    ])
}

#[test]
fn fc4096_on_bpca_has_the_papers_peak_cycles_and_compression() {
    for (design, ratio) in [
        ("bpca-qin2019", 16.0 * 32.0 / 3.0),
        ("bpca-qin2019-bc256-pot3", 256.0 * 32.0 / 3.0),
        ("bpca-qin2019-bc16-pot4", 16.0 * 32.0 / 4.0),
    ] {
        let v = info_fc4096(design);
        assert!(
            (v["peak_gops"].as_f64().unwrap() - 409.6).abs() < 1e-9,
            "{design}: {v}"
        );
        let layer = v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["kind"] == "dense")
            .unwrap();
        let cycles = layer["cycles"].as_u64().unwrap();
        assert!(
            (65_536..=65_536 + 16).contains(&cycles),
            "{design}: fc4096 takes {cycles} cycles"
        );
        let got = v["compression_ratio"].as_f64().unwrap();
        assert!(
            (got - ratio).abs() < 1e-9 * ratio,
            "{design}: compression {got}, want {ratio}"
        );
        assert!((layer["compression_ratio"].as_f64().unwrap() - ratio).abs() < 1e-9 * ratio);
    }
}

#[test]
fn calibrated_energy_gives_the_papers_efficiency_at_full_utilization() {
    let v = info_fc4096("bpca-qin2019");
    let util = v["utilization"].as_f64().unwrap();
    assert!(util > 0.9999, "utilization {util}");
    let tw = v["tops_per_watt"].as_f64().unwrap();
    assert!((tw - 5.3 * util).abs() < 5e-3, "TOPS/W {tw}");
    // Power at 800 MHz: 409.6 GOPS / 5.3 TOPS/W = 77.28 mW (note §4 item 5, ±0.5 %).
    let seconds = v["cycles"].as_f64().unwrap() / 800e6;
    let mw = v["energy_pj"].as_f64().unwrap() * 1e-12 / seconds * 1e3;
    assert!((mw - 77.28).abs() < 0.005 * 77.28, "power {mw} mW");
    // The per-action preset is a different, derived model: it must not silently equal it.
    let d = info_fc4096("bpca-derived-45nm");
    assert!(d["tops_per_watt"].as_f64().unwrap() < tw);
}

/// A seeded random layer quantized exactly as the engine does, through the datapath.
#[test]
fn engine_products_equal_the_shift_add_datapath() {
    let spec = "(schema_version: 1, name: \"t\", input: (c: 1, h: 8, w: 12), classes: 40, \
                layers: [Flatten, Dense(out: 40)])";
    for (bits, block) in [(3u32, 16usize), (4, 32), (5, 16)] {
        let model = Model::init(ron::from_str(spec).unwrap(), u64::from(bits)).unwrap();
        let text = std::fs::read_to_string(root().join("models/designs/bpca-qin2019.ron"))
            .unwrap()
            .replace("block: 16", &format!("block: {block}"))
            .replace("bits: 3", &format!("bits: {bits}"));
        let energy =
            std::fs::read_to_string(root().join("models/energy/bpca-qin2019-calibrated.ron"))
                .unwrap();
        let design = Design::from_texts(
            &text,
            &energy,
            std::path::Path::new("d.ron"),
            std::path::Path::new("e.ron"),
        )
        .unwrap();
        let calib = Dataset::synthetic(16, 8, 12, 40, 1);
        let sim = Simulation::new(design, &model, &calib).unwrap();
        let i = sim
            .plan
            .iter()
            .position(|p| p.kind == nacsim_nn::qnet::LayerKind::Dense)
            .unwrap();
        let (EngineImpl::Circulant(_), Some(Compiled::Circulant(c))) =
            (&sim.engines[0], &sim.plan[i].compiled)
        else {
            panic!("not compiled for the circulant engine")
        };
        let prepared = PreparedLayer::new(
            &BmvConfig {
                act_bits: 8,
                ..BmvConfig::default()
            },
            &c.layer.codes,
        )
        .unwrap();
        let x = Array2::from_shape_fn((9, 96), |(r, k)| ((r * 37 + k * 11) % 255) as i32 - 127);
        let y = sim.engines[0].run(
            &sim.plan[i].compiled.clone().unwrap(),
            x.mapv(|v| v as i8).view(),
            0,
        );
        for r in 0..x.nrows() {
            let (acc, _) = prepared.forward(x.row(r).as_slice().unwrap()).unwrap();
            let got: Vec<i64> = y.row(r).iter().map(|&v| i64::from(v)).collect();
            assert_eq!(got, acc, "bits {bits}, k {block}, row {r}");
        }
    }
}

#[test]
fn committed_block_circulant_model_runs_on_the_paper_design() {
    let v = json(&[
        "run",
        "--design",
        "models/designs/bpca-qin2019.ron",
        "--network",
        "models/networks/fmnist-mlp-bc16-pot3.ron",
        "--json",
    ]);
    let acc = v["accuracy"].as_f64().unwrap();
    let float = v["float_accuracy"].as_f64().unwrap();
    // Same images (the bundled 2,000): the bit-exact engine stays close to the model's own
    // float (PoT-valued) forward pass; the int8 activations are the only difference.
    assert!((acc - float).abs() <= 0.01, "engine {acc} vs float {float}");
    assert!(v["gops"].as_f64().unwrap() > 300.0, "{v}");
}
