//! Drift at inference time (issue #21): zero drift changes nothing at any time; global drift
//! compensation restores each array's mean column sum exactly without noise; accuracy falls
//! with time without compensation; draws do not depend on the thread count.

use nacsim_core::testing::proptest_cases;
use nacsim_crossbar::{AdcKind, CrossbarConfig, DriftCompensation, ProgrammedLayer, SignedScheme};
use nacsim_device::{DriftModel, PcmDrift, PowerLawDrift};
use ndarray::{Array2, ArrayView2};
use proptest::prelude::*;

/// A deterministic pseudo-random weight matrix `[out, fan_in]` in [−1, 1).
fn weights(out: usize, fan_in: usize, salt: u64) -> Array2<f32> {
    Array2::from_shape_fn((out, fan_in), |(o, k)| {
        let h = nacsim_core::keyed::mix64(salt ^ ((o as u64) << 32 | k as u64));
        (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    })
}

/// Int8 inputs `[n, fan_in]`.
fn inputs(n: usize, fan_in: usize, salt: u64) -> Array2<i8> {
    Array2::from_shape_fn((n, fan_in), |(r, k)| {
        (nacsim_core::keyed::mix64(salt ^ 0xabcd ^ ((r as u64) << 32 | k as u64)) >> 56) as u8 as i8
    })
}

fn power_law(nu_mean: f64, nu_sigma: f64) -> DriftModel {
    DriftModel::PowerLaw(PowerLawDrift {
        nu_mean,
        nu_sigma,
        t0_s: 20.0,
    })
}

/// Mean over the arrays' columns of |column sum| of `w` `[fan_in, out]`, per array.
fn array_means(cfg: &CrossbarConfig, w: ArrayView2<f64>) -> Vec<f64> {
    let (fan_in, out) = w.dim();
    let opa = cfg.outputs_per_array();
    let mut means = Vec::new();
    for k0 in (0..fan_in).step_by(cfg.array_rows) {
        for o0 in (0..out).step_by(opa) {
            let k1 = (k0 + cfg.array_rows).min(fan_in);
            let o1 = (o0 + opa).min(out);
            let s: f64 = (o0..o1)
                .map(|o| (k0..k1).map(|k| w[[k, o]]).sum::<f64>().abs())
                .sum();
            means.push(s / (o1 - o0) as f64);
        }
    }
    means
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases(24)))]

    /// ν = 0 (and σ_ν = 0) leaves every output and effective weight unchanged at any time, with
    /// or without compensation, on top of other static noise.
    #[test]
    fn zero_nu_changes_nothing_at_any_time(
        t in prop_oneof![Just(0.0f64), 1e-3f64..1e9],
        seed in 0u64..1000,
        comp in prop::bool::ANY,
        reference in prop::bool::ANY,
        d2d in prop_oneof![Just(0.0f64), 0.0f64..0.1],
    ) {
        let mut base = CrossbarConfig { array_rows: 16, array_cols: 12, ..CrossbarConfig::default() };
        base.nonideal.d2d_sigma_rel = d2d;
        if reference {
            base.signed = SignedScheme::Reference;
        }
        let w = weights(9, 40, seed);
        let x = inputs(5, 40, seed);
        let plain = ProgrammedLayer::program(&base, w.view(), seed, 0, 0).unwrap();
        let mut cfg = base.clone();
        cfg.device.drift = power_law(0.0, 0.0);
        cfg.inference_time_s = t;
        if comp {
            cfg.drift_compensation = DriftCompensation::Global;
        }
        let drifted = ProgrammedLayer::program(&cfg, w.view(), seed, 0, 0).unwrap();
        prop_assert_eq!(plain.effective_weights(), drifted.effective_weights());
        prop_assert_eq!(plain.run(x.view(), 0), drifted.run(x.view(), 0));
        prop_assert_eq!(plain.mean_conductance_s(), drifted.mean_conductance_s());
    }

    /// Without noise (one ν for every device), global compensation restores each array's mean
    /// absolute column sum to the programmed one (to 1e-9); without it the sums shrink by
    /// the drift factor.
    #[test]
    fn compensation_restores_the_mean_column_sum(
        nu in 0.005f64..0.1,
        t in 1.0f64..3.2e7,
        seed in 0u64..1000,
        reference in prop::bool::ANY,
    ) {
        let mut cfg = CrossbarConfig { array_rows: 16, array_cols: 12, ..CrossbarConfig::ideal() };
        if reference {
            cfg.signed = SignedScheme::Reference;
        }
        let w = weights(13, 37, seed);
        let ideal = ProgrammedLayer::program(&cfg, w.view(), seed, 0, 0).unwrap();
        let want = array_means(&cfg, ideal.effective_weights().view());
        cfg.device.drift = power_law(nu, 0.0);
        cfg.inference_time_s = t;
        let factor = ((t + 20.0) / 20.0).powf(-nu);
        let raw = ProgrammedLayer::program(&cfg, w.view(), seed, 0, 0).unwrap();
        cfg.drift_compensation = DriftCompensation::Global;
        let comp = ProgrammedLayer::program(&cfg, w.view(), seed, 0, 0).unwrap();
        let got_raw = array_means(&cfg, raw.effective_weights().view());
        let got = array_means(&cfg, comp.effective_weights().view());
        for ((w0, r), c) in want.iter().zip(&got_raw).zip(&got) {
            prop_assert!((c - w0).abs() <= 1e-9 * w0.max(1.0), "compensated {} vs {}", c, w0);
            // The drifted weights are stored in f32: |w| ≤ 127 units, 2^-24 relative, 16 rows.
            prop_assert!((r - w0 * factor).abs() <= 16.0 * 127.0 * 2f64.powi(-23), "raw {} vs {}", r, w0 * factor);
        }
        // The physical conductances stay drifted: compensation is a read-out gain.
        prop_assert_eq!(raw.device_conductance_s(0, 0, 0), comp.device_conductance_s(0, 0, 0));
    }
}

/// Fraction of rows whose arg-max output equals that of the ideal codes.
fn agreement(layer: &ProgrammedLayer, ideal: &Array2<i32>, x: ArrayView2<i8>) -> f64 {
    let y = layer.run(x, 0);
    let argmax = |r: ndarray::ArrayView1<i32>| {
        r.iter()
            .enumerate()
            .max_by_key(|&(i, &v)| (v, std::cmp::Reverse(i)))
            .map(|(i, _)| i)
    };
    let hits = (0..y.nrows())
        .filter(|&n| argmax(y.row(n)) == argmax(ideal.row(n)))
        .count();
    hits as f64 / y.nrows() as f64
}

#[test]
fn accuracy_does_not_rise_with_time_without_compensation() {
    // A 10-class linear classifier on 64 inputs with aihwkit's PCM drift statistics; the label
    // of each input is the ideal crossbar's arg-max. Mean over 8 trials (device populations).
    let mut cfg = CrossbarConfig {
        array_rows: 32,
        array_cols: 20,
        ..CrossbarConfig::default()
    };
    cfg.adc.kind = AdcKind::Uniform;
    cfg.adc.bits = 6;
    cfg.device.drift = DriftModel::Pcm(PcmDrift::default());
    let w = weights(10, 64, 7);
    let x = inputs(400, 64, 7);
    let ideal = ProgrammedLayer::program(&cfg, w.view(), 3, 0, 0)
        .unwrap()
        .run(x.view(), 0);
    let times = [0.0, 1.0, 3600.0, 86_400.0, 2.592e6, 3.1536e7];
    let trials = 8;
    let mean: Vec<f64> = times
        .iter()
        .map(|&t| {
            cfg.inference_time_s = t;
            (0..trials)
                .map(|trial| {
                    let l = ProgrammedLayer::program(&cfg, w.view(), 3, 0, trial).unwrap();
                    agreement(&l, &ideal, x.view())
                })
                .sum::<f64>()
                / f64::from(trials)
        })
        .collect();
    assert_eq!(mean[0], 1.0, "{mean:?}");
    for pair in mean.windows(2) {
        assert!(pair[1] <= pair[0], "accuracy rose with time: {mean:?}");
    }
    assert!(
        mean[5] < 0.95,
        "a year of PCM drift should cost accuracy: {mean:?}"
    );
}

#[test]
fn drift_draws_do_not_depend_on_the_thread_count() {
    let mut cfg = CrossbarConfig {
        array_rows: 24,
        array_cols: 16,
        ..CrossbarConfig::default()
    };
    cfg.device.drift = DriftModel::Pcm(PcmDrift::default());
    cfg.inference_time_s = 86_400.0;
    cfg.drift_compensation = DriftCompensation::Global;
    let w = weights(20, 70, 11);
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                ProgrammedLayer::program(&cfg, w.view(), 5, 2, 1)
                    .unwrap()
                    .effective_weights()
            })
    };
    assert_eq!(run(1), run(3));
}
