//! Topology files (#16): SCALE-Sim CSVs costed by shape, with SCALE-Sim's compute formula on a
//! 32×32 weight-stationary array without double buffering.

use std::path::Path;

use nacsim_scheduler::design::Design;
use nacsim_scheduler::sim::Simulation;
use nacsim_scheduler::topology::{Topology, parse};
use proptest::prelude::*;

use crate::util::{nacsim, root, text};

/// A 32×32 WS array, no double buffering, batch 1 (SCALE-Sim runs one image), all weights
/// resident so that no DRAM traffic enters the compute cycles compared here.
fn scale_sim_design() -> Design {
    let text = std::fs::read_to_string(root().join("models/designs/systolic-int8.ron"))
        .unwrap()
        .replace("dataflow: WS)", "dataflow: WS, double_buffer: false)")
        .replace("batch: 64", "batch: 1");
    let energy = std::fs::read_to_string(root().join("models/energy/horowitz-45nm.ron")).unwrap();
    Design::from_texts(&text, &energy, Path::new("ws32.ron"), Path::new("e.ron")).unwrap()
}

/// The engine's compute cycles of each layer for one image.
fn engine_cycles(design: Design, topo: &Topology) -> Vec<u64> {
    let sim = Simulation::from_topology(design, topo, 0).unwrap();
    sim.plan
        .iter()
        .map(|p| {
            let e = p.engine.unwrap();
            sim.engines[e]
                .cost(p.compiled.as_ref().unwrap(), p.rows_per_image as usize)
                .times(p.groups)
                .cycles
        })
        .collect()
}

const HEADER: &str = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Full folds (K and N multiples of 32): every fold takes SCALE-Sim's `2R + C + M − 2`
    /// cycles (R = C = 32, M the layer's output pixels), for convolutions with rectangular
    /// filters and per-axis strides, and for GEMM rows.
    #[test]
    fn full_folds_take_scale_sims_cycles(
        fh in 1usize..4, fw in 1usize..4, kc in 1usize..5, nf in 1usize..4,
        h in 0usize..9, w in 0usize..9, sh in 1usize..3, sw in 1usize..3,
        gm in 1usize..300, gk in 1usize..4, gn in 1usize..4,
    ) {
        // K = fh·fw·C is a multiple of 32 when C is.
        let c = 32 * kc;
        let (ih, iw) = (fh + h, fw + w);
        let conv = format!("{HEADER}\nl0, {ih}, {iw}, {fh}, {fw}, {c}, {}, {sh}, {sw},\n", 32 * nf);
        let topo = parse("p.csv", "p", &conv).unwrap();
        let l = &topo.layers[0];
        let folds = (l.k() / 32) * (l.n() / 32);
        let m = ((ih - fh) / sh + 1) * ((iw - fw) / sw + 1);
        prop_assert_eq!(l.m(), m);
        prop_assert_eq!(engine_cycles(scale_sim_design(), &topo), vec![(folds * (2 * 32 + 32 + m - 2)) as u64]);

        let gemm = format!("Layer, M, N, K,\ng0, {gm}, {}, {},\n", 32 * gn, 32 * gk);
        let topo = parse("g.csv", "g", &gemm).unwrap();
        prop_assert_eq!(engine_cycles(scale_sim_design(), &topo), vec![(gk * gn * (2 * 32 + 32 + gm - 2)) as u64]);
    }

    /// Partial folds: SCALE-Sim pads a fold to the whole array (`2R + C + M − 2` each); nacsim
    /// counts the fold's own `a` rows and `c` columns, `2a + c + M − 2`, so it is never slower
    /// and equal exactly when every fold is full.
    #[test]
    fn partial_folds_count_their_own_rows_and_columns(m in 1usize..200, k in 1usize..100, n in 1usize..100) {
        let topo = parse("g.csv", "g", &format!("Layer, M, N, K,\ng, {m}, {n}, {k},\n")).unwrap();
        let ours = engine_cycles(scale_sim_design(), &topo)[0];
        let sizes = |len: usize| (0..len.div_ceil(32)).map(move |i| (len - 32 * i).min(32));
        let expect: usize = sizes(n).flat_map(|c| sizes(k).map(move |a| 2 * a + c + m - 2)).sum();
        let scale_sim = k.div_ceil(32) * n.div_ceil(32) * (2 * 32 + 32 + m - 2);
        prop_assert_eq!(ours, expect as u64);
        prop_assert!(ours <= scale_sim as u64);
        prop_assert_eq!(ours == scale_sim as u64, k % 32 == 0 && n % 32 == 0);
    }
}

/// A depthwise (`DP`) row costs `groups ×` one single-channel row, in cycles and in energy.
#[test]
fn a_depthwise_row_costs_its_channels_times_one_channel() {
    let dw = parse(
        "d.csv",
        "d",
        &format!("{HEADER}\ndw_DP, 58, 58, 3, 3, 48, 1, 2,\n"),
    )
    .unwrap();
    let one = parse(
        "o.csv",
        "o",
        &format!("{HEADER}\none, 58, 58, 3, 3, 1, 1, 2,\n"),
    )
    .unwrap();
    assert_eq!(dw.layers[0].groups, 48);
    assert_eq!(dw.layers[0].macs(), 48 * one.layers[0].macs());
    let cd = engine_cycles(scale_sim_design(), &dw);
    let co = engine_cycles(scale_sim_design(), &one);
    assert_eq!(cd, vec![48 * co[0]]);
    let e = |t: &Topology| {
        let sim = Simulation::from_topology(scale_sim_design(), t, 0).unwrap();
        let c = &sim.pass_cost(1)[0];
        (c.macs, sim.energy(c, Some(0)).unwrap().total_pj)
    };
    let ((md, ed), (mo, eo)) = (e(&dw), e(&one));
    assert_eq!(md, 48 * mo);
    assert!(ed > 40.0 * eo, "{ed} vs {eo}");
}

/// `nacsim info --topology` on the shipped ResNet-50: the file's layer names in order, every
/// MAC counted (ops = 2 · 4,089,184,256 per image times the batch), no accuracy.
#[test]
fn info_runs_a_shipped_workload_with_its_layer_names() {
    let o = nacsim(&[
        "info",
        "--topology",
        "models/workloads/resnet50.csv",
        "--json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 54);
    assert_eq!(layers[0]["name"], "conv1");
    assert_eq!(layers[4]["name"], "conv2_1_proj");
    assert_eq!(layers[53]["name"], "fc");
    let batch = v["batch"].as_u64().unwrap();
    assert_eq!(v["ops"].as_u64().unwrap(), 2 * 4_089_184_256 * batch);
    assert!(v.get("accuracy").is_none());
    for l in layers {
        let u = l["utilization"].as_f64().unwrap();
        assert!(u > 0.0 && u <= 1.0, "{l}");
    }
}

/// A bad topology file is refused with its path, line, column and the fix.
#[test]
fn info_refuses_a_bad_topology_naming_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.csv");
    std::fs::write(
        &p,
        format!("{HEADER}\nc1, 30, 30, 3, 3, 3, 8, 1,\nc2, 2, 30, 3, 3, 8, 8, 1,\n"),
    )
    .unwrap();
    let o = nacsim(&["info", "--topology", p.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains(&format!(
            "{}:3: column `Filter Height`: the filter (3) is larger than the input map (2)",
            p.display()
        )),
        "{err}"
    );
    let o = nacsim(&[
        "info",
        "--topology",
        "models/workloads/resnet50.csv",
        "--network",
        "x.ron",
    ]);
    assert!(!o.status.success());
}

/// An engine that runs only fully connected layers refuses a convolution by name, with the
/// mapping that fixes it.
#[test]
fn fc_only_engines_refuse_convolutions_by_name() {
    let o = nacsim(&[
        "info",
        "--design",
        "models/designs/bpca-qin2019.ron",
        "--topology",
        "models/workloads/mobilenet_v1.csv",
    ]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("layer conv0") && err.contains("mapping.by_kind"),
        "{err}"
    );
}

/// The crossbar, whose read energy follows the programmed conductances, is costed with seeded
/// weights: the same seed gives the same energy bit for bit, another seed another energy; and
/// a workload whose parameters cannot be resident is refused before any array is programmed.
#[test]
fn crossbar_topologies_use_seeded_weights_reproducibly() {
    let design = || Design::load(&root().join("models/designs/crossbar-rram.ron")).unwrap();
    let topo = parse(
        "g.csv",
        "g",
        "Layer, M, N, K,\nq, 16, 40, 300,\nk, 16, 20, 40,\n",
    )
    .unwrap();
    let energy = |seed: u64| {
        let sim = Simulation::from_topology(design(), &topo, seed).unwrap();
        let b = sim.design.config.batch;
        sim.pass_cost(b)
            .iter()
            .zip(&sim.plan)
            .map(|(c, p)| sim.energy(c, p.engine).unwrap().total_pj)
            .sum::<f64>()
    };
    assert_eq!(energy(3).to_bits(), energy(3).to_bits());
    assert_ne!(energy(3).to_bits(), energy(4).to_bits());
    let big =
        nacsim_scheduler::topology::load(&root().join("models/workloads/resnet50.csv")).unwrap();
    let err = Simulation::from_topology(design(), &big, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("take at least 220480 bytes"), "{err}");
}
