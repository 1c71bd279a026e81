//! Tests of the opt-in NeuroSim write accounting: the per-epoch figures against a hand
//! computation through `SubArray::write_image` from what the store shows (conductances and
//! pulse counters before and after each step), training unchanged by the accounting, and field
//! errors.

use super::*;
use nacsim_crossbar::neurosim::{NeuroSimConfig, SubArray, SubArrayConfig, Technology, WriteCost};
use std::path::Path;

const SGD: Optimizer = Optimizer::Sgd {
    momentum: 0.0,
    weight_decay: 0.0,
};

/// An 8-8-3 MLP (no biases) in the NeuroSim setting; `c2c` keeps or removes Ag:a-Si's
/// cycle-to-cycle noise.
fn store(c2c: bool) -> CrossbarStore {
    let device = if c2c {
        "Preset((preset: AgASi))"
    } else {
        "Preset((preset: AgASi, overrides: (c2c_sigma: 0.0)))"
    };
    store_with(&format!(
        "(device: {device}, scheme: NeuroSim, mapping: Reference)"
    ))
}

fn store_with(settings: &str) -> CrossbarStore {
    let cfg: InSituConfig =
        nacsim_core::config::parse(settings, Path::new("t.ron")).expect("settings");
    let w = |o: usize, i: usize, s: usize| {
        Array2::from_shape_fn((o, i), |(a, b)| {
            ((a * 7 + b * 3 + s) % 11) as f32 / 20.0 - 0.25
        })
    };
    let params = vec![
        Some(Param {
            weight: w(8, 8, 0),
            bias: None,
        }),
        None, // an activation
        Some(Param {
            weight: w(3, 8, 4),
            bias: None,
        }),
    ];
    CrossbarStore::new(cfg, params, SGD, 5).expect("store")
}

/// NeuroSim's default block cut to the 8-8-3 MLP (the smallest arrays its switch matrices can
/// be laid out for), 3 cells per write driver.
fn small_cfg() -> NeuroSimConfig {
    let mut c = NeuroSimConfig::mlp_v3_default();
    c.num_write_col_muxed = 3;
    c.layers = vec![
        SubArrayConfig {
            rows: 8,
            cols: 8,
            relax_cell_width: false,
            mean_active_inputs: 3.0,
        },
        SubArrayConfig {
            rows: 8,
            cols: 3,
            relax_cell_width: true,
            mean_active_inputs: 2.0,
        },
    ];
    c
}

/// Gradients of step `t`: mixed signs, some zero, large enough for several pulses.
fn grads(s: &CrossbarStore, t: usize) -> Vec<Option<Param>> {
    s.params()
        .iter()
        .map(|p| {
            p.as_ref().map(|p| {
                let mut i = 0usize;
                Param {
                    weight: p.weight.mapv(|_| {
                        i += 1;
                        match (i * 5 + t * 3) % 7 {
                            0 => 0.0,
                            r => (r as f32 - 3.5) * 0.3,
                        }
                    }),
                    bias: None,
                }
            })
        })
        .collect()
}

#[test]
fn epoch_figures_equal_write_image_of_each_step() {
    let cfg = small_cfg();
    let t = Technology::ptm32_hp(cfg.temperature_k);
    let subs: Vec<SubArray> = cfg
        .layers
        .iter()
        .map(|l| SubArray::new(&t, &cfg, l))
        .collect();
    let mut s = store(false);
    s.enable_neurosim(&cfg, 2).expect("matching block");
    // Three images at 2 per epoch: epochs of 2 and 1 steps.
    let mut want = vec![vec![WriteCost::default(); 2]; 2];
    let (mut ltp, mut ltd) = (0, 0);
    for step in 0..3 {
        let before: Vec<(Vec<f64>, Vec<u32>)> = [0, 2]
            .iter()
            .map(|&li| {
                (
                    s.conductances(li).unwrap().to_vec(),
                    s.pulse_counts(li).unwrap().to_vec(),
                )
            })
            .collect();
        let g = grads(&s, step);
        s.update(&g, 0.1);
        for (i, &li) in [0usize, 2].iter().enumerate() {
            let (rows, cols) = (cfg.layers[i].rows, cfg.layers[i].cols);
            let (g0, c0) = &before[i];
            let (g1, c1) = (s.conductances(li).unwrap(), s.pulse_counts(li).unwrap());
            // NeuroSim's layout: row = input k, column = output o; the store's device is
            // o·rows + k (one device per weight, no bias).
            let mut p = vec![0i32; rows * cols];
            let mut gm = vec![0.0f64; rows * cols];
            for o in 0..cols {
                for k in 0..rows {
                    let d = o * rows + k;
                    let n = (c1[d] - c0[d]) as i32;
                    if n == 0 {
                        continue;
                    }
                    assert_ne!(g1[d], g0[d], "no c2c noise: a pulse moves the conductance");
                    let signed = if g1[d] > g0[d] { n } else { -n };
                    if signed > 0 {
                        ltp += 1;
                    } else {
                        ltd += 1;
                    }
                    p[k * cols + o] = signed;
                    gm[k * cols + o] = 0.5 * (g0[d] + g1[d]);
                }
            }
            let c = subs[i].write_image(&t, &cfg, &p, &gm, i == 0);
            want[step / 2][i].add(&c);
        }
    }
    assert!(
        ltp > 3 && ltd > 3,
        "both directions written: {ltp} LTP, {ltd} LTD"
    );
    let log = s.neurosim_write().expect("enabled");
    assert_eq!(log.steps_per_epoch, 2);
    assert_eq!(log.epochs.len(), 2);
    assert_eq!(log.epochs[0].steps, 2);
    assert_eq!(log.epochs[1].steps, 1);
    for (e, w) in want.iter().enumerate() {
        assert!(
            w.iter()
                .all(|c| c.changed_batches > 0 && c.pulse_latency_s > 0.0)
        );
        assert_eq!(&log.epochs[e].layers, w, "epoch {e}");
    }
}

/// Weight and conductance bits, pulse counters and write totals after `steps` updates.
fn outcome(mut s: CrossbarStore, steps: usize) -> (Vec<u32>, Vec<u64>, Vec<u32>, WriteStats) {
    for t in 0..steps {
        let g = grads(&s, t);
        s.update(&g, 0.07);
    }
    let w = s
        .params()
        .iter()
        .flatten()
        .flat_map(|p| p.weight.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        .collect();
    let g = [0, 2]
        .iter()
        .flat_map(|&l| s.conductances(l).unwrap().iter().map(|x| x.to_bits()))
        .collect();
    let p = [0, 2]
        .iter()
        .flat_map(|&l| s.pulse_counts(l).unwrap().to_vec())
        .collect();
    (w, g, p, s.stats())
}

#[test]
fn accounting_leaves_training_bit_identical() {
    // With Ag:a-Si's c2c noise on, so the normals' order matters too.
    let off = outcome(store(true), 6);
    let mut on = store(true);
    on.enable_neurosim(&small_cfg(), 4).expect("matching block");
    let on = outcome(on, 6);
    assert!(off.3.pulses > 20, "{:?}", off.3);
    assert_eq!(off, on);
}

#[test]
fn mismatched_blocks_and_settings_are_field_errors() {
    let mut cfg = small_cfg();
    cfg.layers[1].rows = 9;
    cfg.layers[0].cols = 7;
    let msg = store(false)
        .enable_neurosim(&cfg, 1)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("neurosim.layers[1].rows = 9"), "{msg}");
    assert!(msg.contains("neurosim.layers[0].cols = 7"), "{msg}");
    let msg = store_with(
        "(device: Preset((preset: AgASi)), scheme: FixedVoltage(magnitude: Count, rounding: Nearest))",
    )
    .enable_neurosim(&small_cfg(), 1)
    .unwrap_err()
    .to_string();
    assert!(msg.contains("scheme = FixedVoltage"), "{msg}");
    assert!(msg.contains("mapping = Differential"), "{msg}");
    let mut short = small_cfg();
    short.layers.pop();
    let msg = store(false)
        .enable_neurosim(&short, 0)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("neurosim.layers = 1 sub-arrays"), "{msg}");
    assert!(msg.contains("steps_per_epoch = 0"), "{msg}");
    let mut bad = small_cfg();
    bad.node_nm = 45;
    let msg = store(false)
        .enable_neurosim(&bad, 1)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("neurosim.node_nm"), "{msg}");
}
