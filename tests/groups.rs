//! Timing of grouped and depthwise convolutions (#16): on the crossbar every group has arrays
//! and converters of its own, so the groups read at the same time (a layer's cycles are one
//! group's, its conversions and energy every group's); on the systolic array they take turns.
//! Checked on a compiled chain (analytic against cycle-stepped), on topology rows, and for
//! ungrouped layers (unchanged).

use nacsim_core::trace::NullSink;
use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_nn::network::NetworkSpec;
use nacsim_nn::qnet::{QLayer, RefGemm};
use nacsim_scheduler::design::Design;
use nacsim_scheduler::engine::{Compiled, EngineCost, combine_groups, gemm_rows};
use nacsim_scheduler::sim::Simulation;
use nacsim_scheduler::topology::parse;

use crate::util::root;

/// A chain with a depthwise 3×3 (16 groups), a grouped (1, 3) convolution (2 groups) and a
/// pointwise 1×1 (ungrouped).
const CHAIN: &str = r#"(schema_version: 1, name: "sepchain", input: (c: 1, h: 28, w: 28), classes: 10, layers: [
    Conv2d(out_channels: 16, kernel: 3, stride: 2, padding: 1),
    Act(ReLU),
    Conv2d(out_channels: 16, kernel: 3, padding: 1, groups: 16),
    Act(ReLU),
    Conv2d(out_channels: 16, kernel: (1, 3), padding: (0, 1), groups: 2),
    Conv2d(out_channels: 16, kernel: 1),
    Act(ReLU),
    MaxPool2d(kernel: 2, stride: 2),
    Flatten,
    Dense(out: 10),
])"#;

fn design(name: &str) -> Design {
    Design::load(&root().join("models/designs").join(name)).unwrap()
}

fn energy_pj(c: &EngineCost) -> f64 {
    c.physics_pj.iter().map(|(_, _, pj)| pj).sum()
}

/// Every product layer of the chain on the crossbar: a grouped layer takes one group's cycles
/// (its groups are identical in shape), exactly `1/groups` of the groups read one after the
/// other, with the same conversions, reads and energy; the cycle-stepped model agrees with the
/// analytic count; an ungrouped layer costs what its programmed arrays say, as before.
#[test]
fn crossbar_groups_read_at_the_same_time_and_the_stepped_model_agrees() {
    let spec: NetworkSpec = ron::from_str(CHAIN).unwrap();
    let m = Model::init(spec, 5).unwrap();
    let calib = Dataset::bundled_calibration().limit(32);
    let sim = Simulation::new(design("crossbar-rram.ron"), &m, &calib).unwrap();
    let mut h = sim
        .qnet
        .quantize_input(Dataset::bundled_sample().limit(1).batch_range(0, 1).view());
    let mut seen = Vec::new();
    for i in 0..sim.plan.len() {
        if let (Some(e), Some(c), QLayer::Gemm(q)) = (
            sim.plan[i].engine,
            &sim.plan[i].compiled,
            &sim.qnet.layers[i],
        ) {
            let engine = &sim.engines[e];
            let rows = gemm_rows(q, 1);
            let analytic = engine.cost(c, rows);
            let (_, stepped) = sim.trace_layer(i, h.clone(), &mut NullSink).unwrap();
            assert_eq!(stepped, analytic, "layer {}", sim.plan[i].name);
            match c {
                Compiled::Groups(v) => {
                    let g = v.len() as u64;
                    let parts: Vec<_> = v.iter().map(|cg| engine.cost(cg, rows)).collect();
                    let one = parts[0].cycles;
                    assert!(parts.iter().all(|p| p.cycles == one), "identical groups");
                    let serial = combine_groups(parts, 1);
                    assert_eq!(analytic.cycles, one);
                    assert_eq!(analytic.cycles * g, serial.cycles);
                    assert_eq!(analytic.counters, serial.counters);
                    assert_eq!(analytic.macs, serial.macs);
                    let (a, s) = (energy_pj(&analytic), energy_pj(&serial));
                    assert!((a - s).abs() <= 1e-12 * s, "{a} vs {s} pJ");
                    seen.push(g);
                }
                Compiled::Crossbar(l) => {
                    assert_eq!(analytic.cycles, l.layer.cost(rows).cycles);
                    seen.push(1);
                }
                _ => panic!("a crossbar layer"),
            }
        }
        h = sim.qnet.layer_forward(&RefGemm, i, h);
    }
    assert_eq!(seen, [1, 16, 2, 1, 1]);
    // Utilization stays a fraction: the slots are every group's arrays, the cycles one group's.
    let costs = sim.pass_cost(4);
    let dw = (0..sim.plan.len())
        .find(|&i| matches!(&sim.plan[i].compiled, Some(Compiled::Groups(v)) if v.len() == 16))
        .unwrap();
    let slots = sim.engines[0].peak_ops_per_cycle_for(sim.plan[dw].compiled.as_ref().unwrap()) / 2;
    let util = costs[dw].macs as f64 / (slots as f64 * costs[dw].compute_cycles as f64);
    assert!(util > 0.0 && util <= 1.0, "{util}");
}

const HEADER: &str = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,";

/// A depthwise topology row on the crossbar is one seeded layer per channel, each on arrays of
/// its own (the area counts them) and all read at once: the row takes the cycles of one
/// single-channel row, with `channels ×` its conversions. On the systolic array the channels
/// take turns (`channels ×` the cycles), as SCALE-Sim counts them.
#[test]
fn depthwise_topology_rows_read_every_channel_at_once_on_the_crossbar() {
    let topo = parse(
        "dw.csv",
        "dw",
        &format!("{HEADER}\ndw_DP, 16, 16, 3, 3, 8, 1, 1,\none, 16, 16, 3, 3, 1, 1, 1,\n"),
    )
    .unwrap();
    let sim = Simulation::from_topology(design("crossbar-rram.ron"), &topo, 0).unwrap();
    let Some(Compiled::Groups(v)) = &sim.plan[0].compiled else {
        panic!("one layer per channel")
    };
    assert_eq!((v.len(), sim.plan[0].groups), (8, 1));
    let area = nacsim_scheduler::area::design_area(&sim).unwrap();
    assert_eq!(
        (
            area.layers[&0].counts["arrays"],
            area.layers[&1].counts["arrays"]
        ),
        (8, 1)
    );
    let b = sim.design.config.batch;
    let c = sim.pass_cost(b);
    let one = sim.engines[0].cost(sim.plan[1].compiled.as_ref().unwrap(), b * 14 * 14);
    let dw = sim.engines[0].cost(sim.plan[0].compiled.as_ref().unwrap(), b * 14 * 14);
    assert_eq!(dw.cycles, one.cycles);
    assert_eq!(c[0].macs, 8 * c[1].macs);
    assert_eq!(
        dw.counters.get("adc_conversions"),
        8 * one.counters.get("adc_conversions")
    );
    assert_eq!(
        sim.plan[0].storage_bits,
        8 * sim.plan[1].storage_bits,
        "every channel's weights and requantization parameters"
    );
    // The same rows on the systolic array: the channels one after the other.
    let sys = Simulation::from_topology(design("systolic-int8.ron"), &topo, 0).unwrap();
    assert_eq!(sys.plan[0].groups, 8);
    let rows = sys.design.config.batch * 14 * 14;
    let cost = |i: usize| {
        let p = &sys.plan[i];
        sys.engines[0]
            .cost(p.compiled.as_ref().unwrap(), rows)
            .cycles
    };
    let s = sys.pass_cost(sys.design.config.batch);
    assert!(
        s[0].compute_cycles >= 8 * cost(0),
        "{} vs 8 × {}",
        s[0].compute_cycles,
        cost(0)
    );
    assert_eq!(cost(0), cost(1));
}
