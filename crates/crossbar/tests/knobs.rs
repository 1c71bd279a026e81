//! One test per non-ideality knob: the output changes when the knob is non-zero and is
//! bit-identical to the ideal mapping when it is zero; output std grows ∝ σ (validation #14);
//! knobs draw from separate streams.

use nacsim_crossbar::reference::ideal_output;
use nacsim_crossbar::{
    CrossbarConfig, D2dDistribution, InputEncoding, IrDrop, ProgrammedLayer, ReadNoiseModel,
    SignedScheme, VoltageErrorScope,
};
use ndarray::Array2;

fn weights(out: usize, fan_in: usize) -> Array2<f32> {
    Array2::from_shape_fn((out, fan_in), |(o, k)| {
        let h = ((o * 7919 + k * 104_729) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        ((h >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    })
}

fn inputs(rows: usize, fan_in: usize) -> Array2<i8> {
    Array2::from_shape_fn((rows, fan_in), |(r, k)| {
        let h = ((r * 31 + k * 17) as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
        (h >> 56) as u8 as i8
    })
}

type Knob = (&'static str, fn(&mut CrossbarConfig, f64));
type Variant = (&'static str, fn(&mut CrossbarConfig));

/// Every knob with a setter; `v = 0` must be the ideal crossbar.
const KNOBS: [Knob; 11] = [
    ("d2d_sigma_rel", |c, v| c.nonideal.d2d_sigma_rel = v),
    ("d2d lognormal", |c, v| {
        c.nonideal.d2d_distribution = D2dDistribution::LogNormal;
        c.nonideal.d2d_sigma_rel = v;
    }),
    ("programming_sigma_rel", |c, v| {
        c.nonideal.programming_sigma_rel = v
    }),
    ("programming_voltage_sigma_rel", |c, v| {
        c.nonideal.programming_voltage_sigma_rel = v
    }),
    ("programming_voltage per row driver", |c, v| {
        c.nonideal.programming_voltage_scope = VoltageErrorScope::RowDriver;
        c.nonideal.programming_voltage_sigma_rel = v;
    }),
    ("read_noise_sigma_rel", |c, v| {
        c.nonideal.read_noise_sigma_rel = v
    }),
    ("read noise output-referred", |c, v| {
        c.nonideal.read_noise_model = ReadNoiseModel::OutputReferred;
        c.nonideal.read_noise_sigma_rel = v;
    }),
    ("stuck_on_frac", |c, v| c.nonideal.stuck_on_frac = v),
    ("stuck_off_frac", |c, v| c.nonideal.stuck_off_frac = v),
    ("drift_nu", |c, v| {
        c.nonideal.drift_nu = v;
        c.nonideal.drift_time_s = 3600.0;
    }),
    ("drift_nu_sigma", |c, v| {
        c.nonideal.drift_nu_sigma = v;
        c.nonideal.drift_time_s = 3600.0;
    }),
];

#[test]
fn every_knob_changes_the_output_when_set_and_nothing_when_zero() {
    let w = weights(24, 150);
    let x = inputs(6, 150);
    for scheme in [
        SignedScheme::Differential,
        SignedScheme::Reference,
        SignedScheme::Bridge,
    ] {
        let mut base = CrossbarConfig::ideal();
        base.signed = scheme;
        base.array_rows = 64;
        base.array_cols = 32;
        let ideal_layer = ProgrammedLayer::program(&base, w.view(), 11, 2, 0).unwrap();
        let ideal = ideal_output(&base, ideal_layer.ideal_codes(), x.view());
        for (name, set) in KNOBS {
            let mut zero = base.clone();
            set(&mut zero, 0.0);
            let layer = ProgrammedLayer::program(&zero, w.view(), 11, 2, 0).unwrap();
            let y = layer.run(x.view(), 0).mapv(i64::from);
            assert_eq!(y, ideal, "{scheme:?} {name} = 0 is not the ideal mapping");
            let mut on = base.clone();
            set(&mut on, 0.05);
            let layer = ProgrammedLayer::program(&on, w.view(), 11, 2, 0).unwrap();
            let y = layer.run(x.view(), 0).mapv(i64::from);
            if scheme == SignedScheme::Bridge && name == "drift_nu" {
                // The bridge is ratiometric: a drift common to its four devices cancels.
                assert_eq!(y, ideal, "bridge under uniform drift");
                continue;
            }
            assert_ne!(y, ideal, "{scheme:?} {name} = 0.05 changes nothing");
        }
    }
}

#[test]
fn ir_drop_knob_changes_the_output_and_grows_with_resistance() {
    let w = weights(16, 64);
    let x = inputs(4, 64);
    for scheme in [SignedScheme::Differential, SignedScheme::Reference] {
        let mut cfg = CrossbarConfig::ideal();
        cfg.signed = scheme;
        cfg.array_rows = 32;
        cfg.array_cols = 32;
        let ideal = ProgrammedLayer::program(&cfg, w.view(), 0, 0, 0).unwrap();
        let y0 = ideal.run(x.view(), 0);
        let mut last = 0.0;
        for ohm in [1.0, 20.0, 200.0] {
            cfg.nonideal.ir_drop = IrDrop::Lines { segment_ohm: ohm };
            let layer = ProgrammedLayer::program(&cfg, w.view(), 0, 0, 0).unwrap();
            // IR drop shrinks every effective weight towards 0.
            let eff = layer.effective_weights();
            let dev: f64 = eff
                .iter()
                .zip(ideal.ideal_codes().t().iter())
                .map(|(e, &q)| (e - f64::from(q)).abs())
                .sum();
            assert!(dev > last, "{scheme:?} {ohm} Ω: deviation {dev} <= {last}");
            last = dev;
            if ohm >= 20.0 {
                assert_ne!(layer.run(x.view(), 0), y0, "{scheme:?} {ohm} Ω");
            }
        }
    }
}

#[test]
fn adc_dac_and_tia_knobs_change_the_output() {
    let w = weights(16, 100);
    let x = inputs(8, 100);
    let mut base = CrossbarConfig::ideal();
    base.array_rows = 50;
    let ideal = ProgrammedLayer::program(&base, w.view(), 0, 0, 0)
        .unwrap()
        .run(x.view(), 0);
    let variants: [Variant; 5] = [
        ("6-bit ADC", |c| {
            c.adc.kind = nacsim_crossbar::AdcKind::Uniform;
            c.adc.bits = 6;
        }),
        ("4-bit DAC", |c| c.dac.bits = 4),
        ("TIA rails at 10 % of full scale", |c| c.tia.v_sat_v = 0.1),
        ("ADC full scale 5 % of worst case", |c| {
            c.adc.kind = nacsim_crossbar::AdcKind::Uniform;
            c.adc.bits = 12;
            c.adc.range = nacsim_crossbar::AdcRange::WorstCase { frac: 0.05 };
        }),
        ("16 levels", |c| c.device.levels = 16),
    ];
    for (name, set) in variants {
        let mut cfg = base.clone();
        set(&mut cfg);
        let y = ProgrammedLayer::program(&cfg, w.view(), 0, 0, 0)
            .unwrap()
            .run(x.view(), 0);
        assert_ne!(y, ideal, "{name}");
    }
    // Bit-serial slices with an ideal ADC stay exact.
    let mut cfg = base.clone();
    cfg.dac.encoding = InputEncoding::BitSerial { bits_per_slice: 2 };
    let y = ProgrammedLayer::program(&cfg, w.view(), 0, 0, 0)
        .unwrap()
        .run(x.view(), 0);
    assert_eq!(y, ideal);
}

fn output_std(cfg: &CrossbarConfig, w: &Array2<f32>, x: &Array2<i8>, trials: u32) -> f64 {
    let ideal = ProgrammedLayer::program(&CrossbarConfig::ideal(), w.view(), 0, 0, 0)
        .unwrap()
        .run(x.view(), 0);
    let mut sum2 = 0.0;
    let mut n = 0.0;
    for trial in 0..trials {
        let y = ProgrammedLayer::program(cfg, w.view(), 5, 1, trial)
            .unwrap()
            .run(x.view(), 0);
        for (a, b) in y.iter().zip(ideal.iter()) {
            let d = f64::from(*a - *b);
            sum2 += d * d;
            n += 1.0;
        }
    }
    (sum2 / n).sqrt()
}

#[test]
fn validation_14_output_std_grows_in_proportion_to_sigma() {
    let w = weights(32, 128);
    let x = inputs(16, 128);
    let setters: [Knob; 4] = [
        ("d2d", |c, v| c.nonideal.d2d_sigma_rel = v),
        ("read noise", |c, v| c.nonideal.read_noise_sigma_rel = v),
        ("read noise output-referred", |c, v| {
            c.nonideal.read_noise_model = ReadNoiseModel::OutputReferred;
            c.nonideal.read_noise_sigma_rel = v;
        }),
        ("programming", |c, v| c.nonideal.programming_sigma_rel = v),
    ];
    for (name, set) in setters {
        let stds: Vec<f64> = [0.02, 0.04, 0.08]
            .iter()
            .map(|&s| {
                let mut cfg = CrossbarConfig::ideal();
                set(&mut cfg, s);
                output_std(&cfg, &w, &x, 3)
            })
            .collect();
        assert!(stds[0] > 0.0, "{name}: {stds:?}");
        for pair in stds.windows(2) {
            let ratio = pair[1] / pair[0];
            // Doubling σ doubles the output std (small-σ regime), within sampling error.
            assert!((1.7..2.3).contains(&ratio), "{name}: {stds:?}");
        }
    }
}

#[test]
fn knobs_draw_from_separate_streams() {
    let w = weights(8, 40);
    let mut a = CrossbarConfig::ideal();
    a.nonideal.d2d_sigma_rel = 0.1;
    let mut b = a.clone();
    b.nonideal.read_noise_sigma_rel = 0.2;
    b.nonideal.stuck_on_frac = 0.0;
    let la = ProgrammedLayer::program(&a, w.view(), 3, 0, 0).unwrap();
    let lb = ProgrammedLayer::program(&b, w.view(), 3, 0, 0).unwrap();
    // Read noise is per read: the static conductances are untouched.
    assert_eq!(la.effective_weights(), lb.effective_weights());
    // A different trial, layer or seed redraws the static variation.
    for (seed, layer, trial) in [(4, 0, 0), (3, 1, 0), (3, 0, 1)] {
        let lc = ProgrammedLayer::program(&a, w.view(), seed, layer, trial).unwrap();
        assert_ne!(la.effective_weights(), lc.effective_weights());
    }
    // Changing the array size does not reshuffle device draws (keys are per weight).
    let mut small = a.clone();
    small.array_rows = 16;
    small.array_cols = 8;
    let ls = ProgrammedLayer::program(&small, w.view(), 3, 0, 0).unwrap();
    let (ea, es) = (la.effective_weights(), ls.effective_weights());
    let diff = ea
        .iter()
        .zip(es.iter())
        .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
    assert!(diff < 1e-3, "{diff}");
}

#[test]
fn huge_variation_never_produces_nan_or_panics() {
    let w = weights(8, 40);
    let x = inputs(3, 40);
    for scheme in [
        SignedScheme::Differential,
        SignedScheme::Reference,
        SignedScheme::Bridge,
    ] {
        let mut cfg = CrossbarConfig {
            signed: scheme,
            ..CrossbarConfig::default()
        };
        cfg.nonideal.d2d_sigma_rel = 3.0; // many conductances clamp at 0 S
        cfg.nonideal.programming_sigma_rel = 1.0;
        cfg.nonideal.read_noise_sigma_rel = 1.0;
        let layer = ProgrammedLayer::program(&cfg, w.view(), 1, 0, 0).unwrap();
        assert!(
            layer.effective_weights().iter().all(|v| v.is_finite()),
            "{scheme:?}"
        );
        let y = layer.run(x.view(), 0);
        let (y2, _) = layer
            .run_stepped(x.view(), 0, &mut nacsim_core::NullSink)
            .unwrap();
        assert_eq!(y, y2);
    }
}
