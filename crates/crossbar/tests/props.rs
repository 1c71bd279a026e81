//! Property tests: the stepped model equals the analytic cost and the fast outputs; results do
//! not depend on batching or thread count; bad configs are rejected naming their field.

use nacsim_core::config::Validate;
use nacsim_core::testing::proptest_cases;
use nacsim_core::{CsvSink, Hertz, NullSink, TraceSink};
use nacsim_crossbar::{
    AdcKind, CrossbarConfig, Error, InputEncoding, IrDrop, ProgrammedLayer, ReadNoiseModel,
    SignedScheme,
};
use ndarray::{Array2, s};
use proptest::prelude::*;

fn arb_config() -> impl Strategy<Value = CrossbarConfig> {
    (
        (1usize..40, 2usize..24, 0usize..3, 0u32..4, 1usize..4),
        (prop::bool::ANY, 1u32..12, 1usize..9, prop::bool::ANY),
        (0.0f64..0.1, 0.0f64..0.05, 0.0f64..0.1, 2u32..40),
        (0.5f64..30.0, 0.1f64..3.0, 0.0f64..4.0, prop::bool::ANY),
    )
        .prop_map(
            |(
                (rows, cols, scheme, enc, rep),
                (ideal_adc, adc_bits, cols_per_adc, sh),
                (d2d, read, stuck, levels),
                (integ, conv, settle, out_ref),
            )| {
                let mut c = CrossbarConfig {
                    array_rows: rows,
                    array_cols: cols,
                    replication: rep,
                    ..CrossbarConfig::default()
                };
                c.signed = [
                    SignedScheme::Differential,
                    SignedScheme::Reference,
                    SignedScheme::Bridge,
                ][scheme];
                c.dac.encoding = match enc {
                    0 => InputEncoding::Parallel,
                    e => InputEncoding::BitSerial {
                        bits_per_slice: [1, 3, 8][e as usize - 1],
                    },
                };
                c.adc.kind = if ideal_adc {
                    AdcKind::Ideal
                } else {
                    AdcKind::Uniform
                };
                c.adc.bits = adc_bits;
                c.adc.cols_per_adc = cols_per_adc;
                c.timing.sample_hold = sh;
                c.timing.integration_ns = integ;
                // Below 1.5 ns the conversion follows bits × decision_ns; above, it is given.
                c.adc.decision_ns = conv / 4.0;
                c.adc.conversion_ns = (conv > 1.5).then_some(conv);
                c.dac.settle_ns = settle;
                c.nonideal.d2d_sigma_rel = d2d;
                c.nonideal.read_noise_sigma_rel = read;
                if out_ref {
                    c.nonideal.read_noise_model = ReadNoiseModel::OutputReferred;
                }
                c.nonideal.stuck_off_frac = stuck;
                c.device.levels = levels;
                c
            },
        )
}

fn data(out: usize, fan_in: usize, rows: usize, seed: u64) -> (Array2<f32>, Array2<i8>) {
    let w = Array2::from_shape_fn((out, fan_in), |(o, k)| {
        let h = ((o * 131 + k * 71) as u64 ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        ((h >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    });
    let x = Array2::from_shape_fn((rows, fan_in), |(r, k)| {
        let h = ((r * 31 + k * 17) as u64 ^ seed).wrapping_mul(0x2545_f491_4f6c_dd1d);
        (h >> 56) as u8 as i8
    });
    (w, x)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases(24)))]

    #[test]
    fn stepped_equals_analytic_cost_and_fast_outputs(
        cfg in arb_config(),
        out in 1usize..30,
        fan_in in 1usize..60,
        rows in 0usize..7,
        first_row in 0u64..1000,
        seed: u64,
    ) {
        let (w, x) = data(out, fan_in, rows, seed);
        let layer = ProgrammedLayer::program(&cfg, w.view(), seed, 1, 2).unwrap();
        let (y, cost) = layer.run_stepped(x.view(), first_row, &mut NullSink).unwrap();
        prop_assert_eq!(&cost, &layer.cost(rows));
        prop_assert_eq!(&y, &layer.run(x.view(), first_row));
    }

    #[test]
    fn results_do_not_depend_on_batching(
        cfg in arb_config(),
        out in 1usize..20,
        fan_in in 1usize..50,
        rows in 1usize..300,
        cut in 0usize..300,
        seed: u64,
    ) {
        let (w, x) = data(out, fan_in, rows, seed);
        let layer = ProgrammedLayer::program(&cfg, w.view(), seed, 0, 0).unwrap();
        let whole = layer.run(x.view(), 10);
        let cut = cut.min(rows);
        let a = layer.run(x.slice(s![..cut, ..]), 10);
        let b = layer.run(x.slice(s![cut.., ..]), 10 + cut as u64);
        prop_assert_eq!(whole.slice(s![..cut, ..]), a.view());
        prop_assert_eq!(whole.slice(s![cut.., ..]), b.view());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases(24)))]

    /// The Monte Carlo batch axis: several trials (and a trial whose read noise uses the other
    /// placement, and one with another σ) run together give each trial's own `run`, bit for bit.
    #[test]
    fn run_trials_equals_each_trial_run_alone(
        cfg in arb_config(),
        out in 1usize..20,
        fan_in in 1usize..300,
        rows in 0usize..600,
        first_row in 0u64..1000,
        n_trials in 1u32..5,
        seed: u64,
    ) {
        let (w, x) = data(out, fan_in, rows, seed);
        let mut layers: Vec<ProgrammedLayer> = (0..n_trials)
            .map(|t| ProgrammedLayer::program(&cfg, w.view(), seed, 3, t).unwrap())
            .collect();
        let mut other = cfg.clone();
        other.nonideal.read_noise_model = match cfg.nonideal.read_noise_model {
            ReadNoiseModel::BeforeAdc => ReadNoiseModel::OutputReferred,
            ReadNoiseModel::OutputReferred => ReadNoiseModel::BeforeAdc,
        };
        other.nonideal.read_noise_sigma_rel = 0.03;
        layers.push(ProgrammedLayer::program(&other, w.view(), seed, 3, 7).unwrap());
        let refs: Vec<&ProgrammedLayer> = layers.iter().collect();
        let together = ProgrammedLayer::run_trials(&refs, x.view(), first_row).unwrap();
        prop_assert_eq!(together.len(), layers.len());
        for (l, y) in layers.iter().zip(&together) {
            prop_assert_eq!(y, &l.run(x.view(), first_row));
        }
    }
}

#[test]
fn run_trials_rejects_layers_that_cannot_share_inputs() {
    let cfg = CrossbarConfig::default();
    let (w, x) = data(8, 20, 5, 1);
    let a = ProgrammedLayer::program(&cfg, w.view(), 1, 0, 0).unwrap();
    let mut serial = cfg.clone();
    serial.dac.encoding = InputEncoding::BitSerial { bits_per_slice: 2 };
    let b = ProgrammedLayer::program(&serial, w.view(), 1, 0, 1).unwrap();
    let err = ProgrammedLayer::run_trials(&[&a, &b], x.view(), 0).unwrap_err();
    assert!(matches!(err, Error::IncompatibleTrials(_)), "{err}");
    let (w2, _) = data(8, 21, 5, 1);
    let c = ProgrammedLayer::program(&cfg, w2.view(), 1, 0, 1).unwrap();
    let err = ProgrammedLayer::run_trials(&[&a, &c], x.view(), 0).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    assert!(
        ProgrammedLayer::run_trials(&[], x.view(), 0)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let mut cfg = CrossbarConfig::default();
    cfg.nonideal.d2d_sigma_rel = 0.05;
    cfg.nonideal.read_noise_sigma_rel = 0.02;
    let (w, x) = data(40, 300, 700, 9);
    let layer = ProgrammedLayer::program(&cfg, w.view(), 1, 0, 0).unwrap();
    cfg.nonideal.read_noise_model = ReadNoiseModel::OutputReferred;
    let out_ref = ProgrammedLayer::program(&cfg, w.view(), 1, 0, 0).unwrap();
    let run_out_ref = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| out_ref.run(x.view(), 0))
    };
    assert_eq!(run_out_ref(1), run_out_ref(3));
    let run_in = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| layer.run(x.view(), 0))
    };
    let one = run_in(1);
    assert_eq!(one, run_in(2));
    assert_eq!(one, run_in(3));
    // Row by row through the stepped path too.
    let (y, _) = layer
        .run_stepped(x.slice(s![..5, ..]), 0, &mut NullSink)
        .unwrap();
    assert_eq!(y, one.slice(s![..5, ..]));
}

#[test]
fn stepped_trace_shows_the_pipeline() {
    let mut cfg = CrossbarConfig {
        array_rows: 8,
        array_cols: 8,
        ..CrossbarConfig::default()
    };
    cfg.dac.encoding = InputEncoding::BitSerial { bits_per_slice: 4 };
    let (w, x) = data(4, 10, 2, 1);
    let layer = ProgrammedLayer::program(&cfg, w.view(), 0, 0, 0).unwrap();
    let mut sink = CsvSink::new(Vec::new(), Hertz::from_mhz(1000.0), "test");
    let (_, cost) = layer.run_stepped(x.view(), 0, &mut sink).unwrap();
    sink.finish().unwrap();
    let text = String::from_utf8(sink.into_inner()).unwrap();
    // 2 rows × 2 slices = 4 reads and 4 conversions, each a span.
    assert_eq!(text.matches(",crossbar,read_").count(), 4, "{text}");
    assert_eq!(text.matches(",crossbar.adc,adc_").count(), 4, "{text}");
    assert!(text.contains(",crossbar,out_valid,0x1"), "{text}");
    assert_eq!(cost, layer.cost(2));
}

#[test]
fn bad_configs_and_inputs_are_errors_naming_the_field() {
    let (w, x) = data(3, 4, 2, 0);
    type Case = (&'static str, fn(&mut CrossbarConfig));
    let cases: [Case; 9] = [
        ("device.g_on_s", |c| c.device.g_on_s = c.device.g_off_s),
        ("nonideal.d2d_sigma_rel", |c| {
            c.nonideal.d2d_sigma_rel = -0.01
        }),
        ("nonideal.read_noise_sigma_rel", |c| {
            c.nonideal.read_noise_sigma_rel = f64::NAN
        }),
        ("adc.bits", |c| c.adc.bits = 0),
        ("adc.bits", |c| c.adc.bits = 17),
        ("array_rows", |c| c.array_rows = 0),
        ("array_cols", |c| c.array_cols = 0),
        ("dac.v_read_v", |c| c.dac.v_read_v = 0.6),
        ("nonideal.ir_drop.segment_ohm", |c| {
            c.nonideal.ir_drop = IrDrop::Lines { segment_ohm: 0.0 }
        }),
    ];
    for (field, set) in cases {
        let mut cfg = CrossbarConfig::default();
        set(&mut cfg);
        let errs = cfg.validate().unwrap_err();
        assert!(errs.iter().any(|e| e.field == field), "{field}: {errs:?}");
        match ProgrammedLayer::program(&cfg, w.view(), 0, 0, 0) {
            Err(Error::InvalidConfig(e)) => {
                assert!(e.iter().any(|e| e.field == field));
                let msg = Error::InvalidConfig(e).to_string();
                assert!(msg.contains(field), "{msg}");
            }
            other => panic!("{field}: expected InvalidConfig, got {other:?}"),
        }
    }
    let cfg = CrossbarConfig::default();
    let empty = Array2::<f32>::zeros((0, 4));
    assert!(matches!(
        ProgrammedLayer::program(&cfg, empty.view(), 0, 0, 0),
        Err(Error::EmptyWeight { .. })
    ));
    let mut nan = w.clone();
    nan[[1, 2]] = f32::NAN;
    let err = ProgrammedLayer::program(&cfg, nan.view(), 0, 0, 0).unwrap_err();
    assert!(err.to_string().contains("weight[1, 2] = NaN"), "{err}");
    let layer = ProgrammedLayer::program(&cfg, w.view(), 0, 0, 0).unwrap();
    let wrong = Array2::<i8>::zeros((2, 5));
    assert!(matches!(
        layer.run_stepped(wrong.view(), 0, &mut NullSink),
        Err(Error::ShapeMismatch { cols: 5, fan_in: 4 })
    ));
    let _ = x;
}

#[test]
fn programmed_layers_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<ProgrammedLayer>();
    send_sync::<CrossbarConfig>();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases(48)))]

    #[test]
    fn out_of_range_values_are_rejected_naming_their_field(
        which in 0usize..8,
        negative in -10.0f64..-1e-12,
        bits in prop_oneof![Just(0u32), 17u32..64],
        ratio in 0.0f64..=1.0,
        over in 1e-6f64..5.0,
    ) {
        let mut cfg = CrossbarConfig::default();
        let field = match which {
            0 => { cfg.nonideal.d2d_sigma_rel = negative; "nonideal.d2d_sigma_rel" }
            1 => { cfg.nonideal.read_noise_sigma_rel = negative; "nonideal.read_noise_sigma_rel" }
            2 => { cfg.nonideal.programming_sigma_rel = negative; "nonideal.programming_sigma_rel" }
            3 => {
                cfg.nonideal.programming_voltage_sigma_rel = negative;
                "nonideal.programming_voltage_sigma_rel"
            }
            4 => { cfg.adc.bits = bits; "adc.bits" }
            5 => { cfg.dac.bits = bits; "dac.bits" }
            6 => { cfg.device.g_on_s = cfg.device.g_off_s * ratio; "device.g_on_s" }
            _ => { cfg.dac.v_read_v = cfg.read_disturb_v + over; "dac.v_read_v" }
        };
        let errs = cfg.validate().unwrap_err();
        prop_assert!(errs.iter().any(|e| e.field == field), "{}: {:?}", field, errs);
        prop_assert_eq!(errs.len(), 1, "{:?}", errs);
    }
}
