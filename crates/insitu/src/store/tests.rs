//! Unit tests of the store: the zero-pulse filter, the vector builds of pass 1 and the
//! incremental conductance sum.

use super::accounting::sum_f64;
use super::*;
use std::path::Path;

fn store(settings: &str, baseline_scan: bool, exact_only: bool) -> CrossbarStore {
    let sgd = Optimizer::Sgd {
        momentum: 0.0,
        weight_decay: 0.0,
    };
    store_with(settings, sgd, baseline_scan, exact_only)
}

fn store_with(
    settings: &str,
    opt: Optimizer,
    baseline_scan: bool,
    exact_only: bool,
) -> CrossbarStore {
    let cfg: InSituConfig =
        nacsim_core::config::parse(settings, Path::new("t.ron")).expect("settings");
    // 40 outputs × (300 inputs + bias): several row blocks per layer.
    let w = Array2::from_shape_fn((40, 300), |(o, k)| {
        ((o * 31 + k * 7) % 97) as f32 / 97.0 - 0.5
    });
    let b = Array1::from_shape_fn(40, |o| o as f32 / 80.0 - 0.25);
    let params = vec![Some(Param {
        weight: w,
        bias: Some(b),
    })];
    let mut s = CrossbarStore::new(cfg, params, opt, 3).expect("store");
    s.baseline_scan = baseline_scan;
    s.exact_only = exact_only;
    s
}

/// Weight and conductance bits and pulse counts after `steps` updates with varied gradients
/// (many small, some large, some zero).
fn run(mut s: CrossbarStore, steps: usize, lr: f32) -> (Vec<u32>, Vec<u64>, Vec<u32>, WriteStats) {
    for t in 0..steps {
        let grads: Vec<Option<Param>> = s
            .params()
            .iter()
            .map(|p| {
                p.as_ref().map(|p| {
                    let mut i = t as u64 * 1_000_003;
                    let mut g = || {
                        i = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        let x = (i >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                        match (i >> 20) % 5 {
                            0 => 0.0,
                            1 => x * 2.0,
                            _ => x * 0.02,
                        }
                    };
                    Param {
                        weight: p.weight.mapv(|_| g()),
                        bias: p.bias.as_ref().map(|b| b.mapv(|_| g())),
                    }
                })
            })
            .collect();
        s.update(&grads, lr);
    }
    let bits = s
        .params()
        .iter()
        .flatten()
        .flat_map(|p| {
            p.weight
                .iter()
                .chain(p.bias.iter().flatten())
                .map(|x| x.to_bits())
        })
        .collect();
    let g = s
        .conductances(0)
        .expect("layer")
        .iter()
        .map(|x| x.to_bits())
        .collect();
    let pulses = s.pulse_counts(0).expect("layer").to_vec();
    (bits, g, pulses, s.stats())
}

const SCHEMES: [&str; 4] = [
    "(device: Preset((preset: AgASi)), scheme: FixedVoltage(magnitude: Count, rounding: Stochastic))",
    "(device: Preset((preset: AgASi)), scheme: FixedVoltage(magnitude: Count, rounding: Nearest))",
    "(device: Preset((preset: AgASi)), scheme: Stochastic(bit_length: 10))",
    "(device: Preset((preset: AgASi)), scheme: FixedVoltage(magnitude: Count, rounding: Stochastic), mapping: Reference)",
];

#[test]
fn zero_pulse_filter_never_drops_a_pulse() {
    for settings in SCHEMES {
        let fast = run(store(settings, false, false), 12, 0.05);
        let exact = run(store(settings, false, true), 12, 0.05);
        assert!(fast.3.pulses > 100, "{settings}: {:?}", fast.3);
        assert_eq!(fast.0, exact.0, "{settings}");
        assert_eq!(fast.1, exact.1, "{settings}");
        assert_eq!(fast.2, exact.2, "{settings}");
        assert_eq!(fast.3, exact.3, "{settings}");
    }
}

#[test]
fn vector_paths_give_the_same_bits_as_the_baseline() {
    // The run-time pick (AVX-512 or AVX2 where the machine has them) against the build
    // without extra target features.
    for settings in SCHEMES {
        let base = run(store(settings, true, false), 8, 0.05);
        let v = run(store(settings, false, false), 8, 0.05);
        assert_eq!(base.0, v.0, "{settings}");
        assert_eq!(base.1, v.1, "{settings}");
        assert_eq!(base.2, v.2, "{settings}");
        assert_eq!(base.3, v.3, "{settings}");
    }
}

#[test]
fn momentum_and_adam_take_the_same_bits_through_filter_and_vector_builds() {
    // Momentum and Adam write ΔW into a buffer in pass 1 (plain SGD recomputes it).
    let opts = [
        Optimizer::Sgd {
            momentum: 0.9,
            weight_decay: 1e-3,
        },
        Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-3,
        },
    ];
    for opt in opts {
        for settings in [SCHEMES[0], SCHEMES[2]] {
            let fast = run(store_with(settings, opt, false, false), 6, 0.02);
            let exact = run(store_with(settings, opt, false, true), 6, 0.02);
            let base = run(store_with(settings, opt, true, false), 6, 0.02);
            assert!(fast.3.pulses > 100, "{opt:?} {settings}: {:?}", fast.3);
            assert_eq!(fast, exact, "{opt:?} {settings}: filter");
            assert_eq!(fast, base, "{opt:?} {settings}: vector build");
        }
    }
}

#[test]
fn incremental_conductance_sum_tracks_the_full_sum() {
    let mut s = store(SCHEMES[0], false, false);
    for _ in 0..3 {
        let grads = vec![s.params()[0].as_ref().map(|p| Param {
            weight: p.weight.mapv(|w| w - 0.1),
            bias: p.bias.as_ref().map(|b| b.mapv(|w| w + 0.3)),
        })];
        s.update(&grads, 0.5);
    }
    let l = s.layers[0].as_ref().expect("layer");
    let full = sum_f64(&l.g);
    assert!(s.stats().pulses > 0);
    assert!(
        (l.g_sum - full).abs() <= 1e-12 * full.abs(),
        "{} vs {full}",
        l.g_sum
    );
}
