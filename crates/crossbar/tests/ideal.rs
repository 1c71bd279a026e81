//! The ideal crossbar: every knob at zero equals the ideal mapping exactly; the mapping error
//! bound; validation #12 (Kirchhoff MVM vs f64, differential mapping recovers W).

use nacsim_crossbar::reference::{ideal_mapping, ideal_output, kirchhoff_currents};
use nacsim_crossbar::{AdcKind, CrossbarConfig, InputEncoding, ProgrammedLayer, SignedScheme};
use ndarray::{Array2, ArrayView2};

fn weights(out: usize, fan_in: usize, seed: u64) -> Array2<f32> {
    Array2::from_shape_fn((out, fan_in), |(o, k)| {
        let h = ((o * 7919 + k * 104_729) as u64 ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        ((h >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    })
}

fn inputs(rows: usize, fan_in: usize, seed: u64) -> Array2<i8> {
    Array2::from_shape_fn((rows, fan_in), |(r, k)| {
        let h = ((r * 31 + k * 17) as u64 ^ seed).wrapping_mul(0x2545_f491_4f6c_dd1d);
        (h >> 56) as u8 as i8
    })
}

fn to_i64(y: ArrayView2<i32>) -> Array2<i64> {
    y.mapv(i64::from)
}

#[test]
fn all_knobs_zero_equals_the_ideal_mapping_exactly() {
    let w = weights(70, 300, 1);
    let x = inputs(9, 300, 2);
    for scheme in [
        SignedScheme::Differential,
        SignedScheme::Reference,
        SignedScheme::Bridge,
    ] {
        for encoding in [
            InputEncoding::Parallel,
            InputEncoding::BitSerial { bits_per_slice: 1 },
            InputEncoding::BitSerial { bits_per_slice: 3 },
        ] {
            for (rows, cols) in [(128, 128), (64, 16), (300, 200)] {
                let mut cfg = CrossbarConfig::ideal();
                cfg.signed = scheme;
                cfg.dac.encoding = encoding;
                cfg.array_rows = rows;
                cfg.array_cols = cols;
                let layer = ProgrammedLayer::program(&cfg, w.view(), 7, 3, 0).unwrap();
                let map = ideal_mapping(&cfg, w.view());
                assert_eq!(layer.ideal_codes(), map.q.view());
                assert_eq!(layer.out_w_scale(), &map.out_w_scale[..]);
                let y = layer.run(x.view(), 0);
                let expect = ideal_output(&cfg, map.q.view(), x.view());
                assert_eq!(
                    to_i64(y.view()),
                    expect,
                    "{scheme:?} {encoding:?} {rows}x{cols}"
                );
                // The exact DAC makes it the integer product q·x.
                let exact = ideal_output(&CrossbarConfig::ideal(), map.q.view(), x.view());
                assert_eq!(expect, exact);
            }
        }
    }
}

#[test]
fn a_wide_uniform_adc_is_as_good_as_the_ideal_one() {
    // 16-bit ADC: worst case 128 rows · 127 · 128 ≈ 2^21 fits 2^15 codes of LSB 2^6 — not exact;
    // with 16 rows and 15 levels the worst case (16·14·128 = 28672) fits LSB 1.
    let w = weights(20, 50, 3);
    let x = inputs(5, 50, 4);
    let mut cfg = CrossbarConfig {
        array_rows: 16,
        ..CrossbarConfig::default()
    };
    cfg.device.levels = 15;
    cfg.adc.bits = 16;
    let layer = ProgrammedLayer::program(&cfg, w.view(), 1, 0, 0).unwrap();
    assert_eq!(layer.adc_lsb_units(0), Some(1));
    let expect = ideal_output(&cfg, layer.ideal_codes(), x.view());
    assert_eq!(to_i64(layer.run(x.view(), 0).view()), expect);
    // An 8-bit ADC on the same layer quantizes: LSB > 1 and a different result.
    cfg.adc.bits = 8;
    let coarse = ProgrammedLayer::program(&cfg, w.view(), 1, 0, 0).unwrap();
    assert!(coarse.adc_lsb_units(0).unwrap() > 1);
    assert_ne!(to_i64(coarse.run(x.view(), 0).view()), expect);
}

#[test]
fn many_levels_approach_the_float_product_within_the_mapping_bound() {
    let (out, fan_in) = (16, 200);
    let w = weights(out, fan_in, 5);
    let x = inputs(6, fan_in, 6);
    let mut cfg = CrossbarConfig::ideal();
    cfg.device.levels = 1 << 16;
    let layer = ProgrammedLayer::program(&cfg, w.view(), 0, 0, 0).unwrap();
    assert!(layer.uses_f64(), "128·65535·128 > 2^24 needs the f64 path");
    let y = layer.run(x.view(), 0);
    let scale = layer.out_w_scale();
    for n in 0..x.nrows() {
        let l1: f64 = x.row(n).iter().map(|&c| f64::from(c).abs()).sum();
        for o in 0..out {
            let real: f64 = (0..fan_in)
                .map(|k| f64::from(w[[o, k]]) * f64::from(x[[n, k]]))
                .sum();
            let s = f64::from(scale[o]);
            // Each weight is off by at most half a level: |Σ (w − q·s)·x| ≤ s/2·Σ|x|.
            let err = (f64::from(y[[n, o]]) * s - real).abs();
            assert!(err <= 0.5 * s * l1 + 1e-9, "row {n} col {o}: err {err}");
            let rounded = (real / s).round();
            assert!((f64::from(y[[n, o]]) - rounded).abs() <= 0.5 * l1 + 1.0);
            // Relative to the output's own scale the error is tiny.
            assert!(err <= 1e-3 * l1 * f64::from(w.iter().fold(0f32, |m, v| m.max(v.abs()))));
        }
    }
}

#[test]
fn validation_12_kirchhoff_and_differential_recovery() {
    let (out, fan_in) = (12, 40);
    let w = weights(out, fan_in, 8);
    let x = inputs(3, fan_in, 9);
    let cfg = CrossbarConfig::ideal();
    let layer = ProgrammedLayer::program(&cfg, w.view(), 0, 0, 0).unwrap();
    let d = &cfg.device;
    let dg = (d.g_on_s - d.g_off_s) / f64::from(d.levels - 1);
    // G⁺ and G⁻ as [fan_in, out] matrices.
    let gp = Array2::from_shape_fn((fan_in, out), |(k, o)| {
        layer.device_conductance_s(o, k, 0).unwrap()
    });
    let gm = Array2::from_shape_fn((fan_in, out), |(k, o)| {
        layer.device_conductance_s(o, k, 1).unwrap()
    });
    // (G⁺ − G⁻)/(g_on − g_off)·w_max recovers W within half a quantization step.
    let w_max = f64::from(w.iter().fold(0f32, |m, v| m.max(v.abs())));
    let step = w_max / f64::from(d.levels - 1);
    for k in 0..fan_in {
        for o in 0..out {
            assert!(gp[[k, o]] >= d.g_off_s - 1e-18 && gp[[k, o]] <= d.g_on_s + 1e-18);
            let rec = (gp[[k, o]] - gm[[k, o]]) / (d.g_on_s - d.g_off_s) * w_max;
            assert!(
                (rec - f64::from(w[[o, k]])).abs() <= 0.5 * step + 1e-9,
                "w[{o},{k}] = {}, recovered {rec}",
                w[[o, k]]
            );
        }
    }
    // I = GᵀV: the engine's integer output times the unit current equals the f64 Kirchhoff
    // currents I⁺ − I⁻, and rounds back to it exactly.
    let y = layer.run(x.view(), 0);
    let unit = layer.unit_current_a();
    assert!((unit - dg * cfg.dac.v_read_v / 128.0).abs() < 1e-30);
    for n in 0..x.nrows() {
        let v: Vec<f64> = x
            .row(n)
            .iter()
            .map(|&c| f64::from(c) * cfg.dac.v_read_v / 128.0)
            .collect();
        let ip = kirchhoff_currents(gp.view(), &v);
        let im = kirchhoff_currents(gm.view(), &v);
        for o in 0..out {
            let i = ip[o] - im[o];
            assert_eq!((i / unit).round() as i64, i64::from(y[[n, o]]));
            assert!((i - f64::from(y[[n, o]]) * unit).abs() <= 1e-9 * ip[o].abs().max(1e-12));
        }
    }
}

#[test]
fn ideal_adc_kind_is_ignored_by_nothing_else() {
    // The ideal config differs from the default only in the ADC kind.
    let mut c = CrossbarConfig::default();
    c.adc.kind = AdcKind::Ideal;
    assert_eq!(c, CrossbarConfig::ideal());
}

#[test]
fn statistical_adc_range_beats_the_worst_case_range_at_8_bits() {
    let (out, fan_in) = (32, 784);
    let w = weights(out, fan_in, 10);
    // Post-ReLU-like inputs 0..=127.
    let x = inputs(32, fan_in, 11).mapv(|c| (c as u8 >> 1) as i8);
    let real = x.mapv(f32::from).dot(&w.t());
    let rel_err = |cfg: &CrossbarConfig| {
        let layer = ProgrammedLayer::program(cfg, w.view(), 0, 0, 0).unwrap();
        let y = layer.run(x.view(), 0);
        let s = f64::from(layer.out_w_scale()[0]);
        let (mut e2, mut r2) = (0.0, 0.0);
        for (a, b) in y.iter().zip(real.iter()) {
            e2 += (f64::from(*a) * s - f64::from(*b)).powi(2);
            r2 += f64::from(*b).powi(2);
        }
        (e2 / r2).sqrt()
    };
    let stat = rel_err(&CrossbarConfig::default());
    let mut worst_cfg = CrossbarConfig::default();
    worst_cfg.adc.range = nacsim_crossbar::AdcRange::WorstCase { frac: 1.0 };
    let worst = rel_err(&worst_cfg);
    let ideal = rel_err(&CrossbarConfig::ideal());
    assert!(ideal < 0.01, "ideal mapping error {ideal}");
    assert!(
        stat < 0.1 && stat < worst / 3.0,
        "statistical {stat}, worst case {worst}"
    );
}
