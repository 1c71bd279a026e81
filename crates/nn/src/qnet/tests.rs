//! Tests of the quantized network: requantization against an exact reference, the epilogue, the
//! reference product, and whole networks against a direct integer reference.

use super::*;
use crate::data::Dataset;
use crate::model::Model;
use crate::network::{NetworkSpec, Shape};
use crate::quant::{Rounding, round};
use nacsim_core::config::Validate;
use ndarray::Array2;
use proptest::prelude::*;
use std::path::PathBuf;

const MODES: [Rounding; 5] = [
    Rounding::NearestEven,
    Rounding::NearestAway,
    Rounding::TowardZero,
    Rounding::Floor,
    Rounding::Ceil,
];

fn cases() -> u32 {
    nacsim_core::testing::proptest_cases(64)
}

/// Independent exact reference: `p / 2^s` rounded by `mode`, in i128 by comparing the
/// remainder with the half step.
fn ref_shift(p: i128, s: i32, mode: Rounding) -> i128 {
    if s <= 0 {
        return p << (-s).min(64);
    }
    let d = 1i128 << s;
    let fl = p >> s;
    let r = p - fl * d;
    let c = 2 * r - d; // sign of remainder minus half
    match mode {
        Rounding::Floor => fl,
        Rounding::Ceil => fl + i128::from(r > 0),
        Rounding::TowardZero => fl + i128::from(p < 0 && r > 0),
        Rounding::NearestEven => fl + i128::from(c > 0 || (c == 0 && fl % 2 != 0)),
        Rounding::NearestAway => fl + i128::from(c > 0 || (c == 0 && fl >= 0)),
    }
}

fn ref_requant(acc: i64, r: Requant, mode: Rounding) -> i64 {
    let y = ref_shift(i128::from(acc) * i128::from(r.multiplier), r.shift, mode);
    y.clamp(i32::MIN.into(), i32::MAX.into()) as i64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn requant_is_within_one_lsb_of_f64(log_m in -24.0f64..6.0, acc in -(1i32 << 24)..(1 << 24), mi in 0usize..5) {
        let m = log_m.exp2();
        let r = Requant::from_real(m).unwrap();
        prop_assert!((1 << 30..=i32::MAX).contains(&r.multiplier));
        prop_assert!(((r.real() - m) / m).abs() <= 2f64.powi(-31));
        let want = round(f64::from(acc) * m, MODES[mi]);
        let got = f64::from(r.apply(acc, MODES[mi]));
        prop_assert!((got - want).abs() <= 1.0, "m {m} acc {acc}: {got} vs {want}");
    }

    #[test]
    fn requant_is_exact_on_power_of_two_factors_and_ties(k in -20i32..70, acc: i32, mi in 0usize..5) {
        // acc · 2^-k is exact in f64, so every tie is seen exactly.
        let r = Requant::from_real(2f64.powi(-k)).unwrap();
        prop_assert_eq!(r.multiplier, 1 << 30);
        let want = round(f64::from(acc) * 2f64.powi(-k), MODES[mi]).clamp(i32::MIN.into(), i32::MAX.into());
        prop_assert_eq!(f64::from(r.apply(acc, MODES[mi])), want);
        let half = Requant::from_real(0.5).unwrap();
        prop_assert_eq!(f64::from(half.apply(2 * (acc >> 1) + 1, MODES[mi])), round(f64::from(2 * (acc >> 1) + 1) * 0.5, MODES[mi]));
    }

    #[test]
    fn requant_matches_exact_i128_reference(mult in (1i32 << 30)..=i32::MAX, shift in -40i32..100, acc: i32, mi in 0usize..5) {
        let r = Requant { multiplier: mult, shift };
        prop_assert_eq!(i64::from(r.apply(acc, MODES[mi])), ref_requant(acc.into(), r, MODES[mi]));
    }

    #[test]
    fn fast_epilogue_equals_requantize(
        mult in (1i32 << 30)..=i32::MAX, shift in -3i32..70, bias in proptest::option::of(any::<i32>()),
        relu: bool, act_bits in 2u32..9, mi in 0usize..5, accs in proptest::collection::vec(any::<i32>(), 1..40),
    ) {
        let n = accs.len();
        let q = QGemm {
            name: "t".into(),
            kind: GemmKind::Dense,
            input: Shape { c: 1, h: 1, w: 1 },
            output: Shape { c: 1, h: 1, w: 1 },
            weight: Array2::zeros((1, 1)),
            bias: bias.map(|b| vec![b]).unwrap_or_default(),
            requant: vec![Requant { multiplier: mult, shift }],
            in_scale: 1.0,
            out_scale: 1.0,
            w_scale: vec![1.0],
            relu,
            act_max: (1 << (act_bits - 1)) - 1,
            rounding: MODES[mi],
        };
        // Small accumulators too, so that ties and the clamp bounds are hit.
        let accs: Vec<i32> = accs.iter().enumerate().map(|(i, &a)| if i % 2 == 0 { a >> (a as u32 % 31) } else { a }).collect();
        let acc = Array2::from_shape_vec((n, 1), accs.clone()).unwrap();
        let y = gemm_epilogue(&q, acc.view(), n);
        for (i, &a) in accs.iter().enumerate() {
            prop_assert_eq!(y[[i, 0]], q.requantize(0, a), "acc {}", a);
        }
    }

    /// The vectorized Dense epilogue ([`gemm_epilogue`], one row of many channels, each with its
    /// own bias, multiplier and shift) equals `requantize` channel by channel.
    #[test]
    fn fast_dense_epilogue_equals_requantize_per_channel(
        chans in proptest::collection::vec(((1i32 << 30)..=i32::MAX, 1i32..63, any::<i32>()), 1..70),
        relu: bool, act_bits in 2u32..9, rows in 1usize..4, seed: u64,
    ) {
        let o = chans.len();
        let q = QGemm {
            name: "t".into(),
            kind: GemmKind::Dense,
            input: Shape { c: 1, h: 1, w: 1 },
            output: Shape { c: o, h: 1, w: 1 },
            weight: Array2::zeros((o, 1)),
            bias: chans.iter().map(|c| c.2 >> (c.2 as u32 % 31)).collect(),
            requant: chans.iter().map(|c| Requant { multiplier: c.0, shift: c.1 }).collect(),
            in_scale: 1.0,
            out_scale: 1.0,
            w_scale: vec![1.0; o],
            relu,
            act_max: (1 << (act_bits - 1)) - 1,
            rounding: Rounding::NearestEven,
        };
        // Accumulators of every size, so that ties, saturation and both clamps are hit.
        let acc = Array2::from_shape_fn((rows, o), |(r, c)| {
            let h = seed.wrapping_add((r * o + c) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let a = (h >> 32) as i32;
            a >> ((h as u32) % 32)
        });
        let y = gemm_epilogue(&q, acc.view(), rows);
        for ((r, c), &a) in acc.indexed_iter() {
            prop_assert_eq!(y[[r, c]], q.requantize(c, a), "row {} channel {} acc {}", r, c, a);
        }
    }

    #[test]
    fn ref_gemm_is_the_core_oracle(m in 0usize..70, k in 0usize..50, n in 0usize..20, seed: u64, t in 0usize..2) {
        let code = |i: usize| (seed.wrapping_mul(6364136223846793005).wrapping_add((i as u64).wrapping_mul(1442695040888963407)) >> 56) as u8 as i8;
        let x = Array2::from_shape_fn((m, k), |(a, b)| code(a * k + b));
        let w = Array2::from_shape_fn((n, k), |(a, b)| code(100_000 + a * k + b));
        let want = nacsim_core::gemm::gemm_i8(x.as_slice().unwrap(), w.as_slice().unwrap(), m, k, n);
        // Any layout of x (t = 1: a transposed copy viewed back).
        let xt = x.t().to_owned();
        let xv = if t == 1 { xt.t() } else { x.view() };
        let got = RefGemm.gemm(0, xv, w.view());
        prop_assert_eq!(got.dim(), (m, n));
        prop_assert_eq!(got.into_raw_vec_and_offset().0, want);
    }
}

#[test]
fn requant_ties_follow_each_mode() {
    let half = Requant::from_real(0.5).unwrap();
    let got: Vec<_> = MODES
        .iter()
        .map(|&m| (half.apply(5, m), half.apply(-5, m)))
        .collect();
    assert_eq!(got, [(2, -2), (3, -3), (2, -2), (2, -3), (3, -2)]);
    assert_eq!(
        Requant::from_real(1.0),
        Some(Requant {
            multiplier: 1 << 30,
            shift: 30
        })
    );
    assert_eq!(Requant::from_real(0.0), None);
    assert_eq!(Requant::from_real(f64::NAN), None);
    // Mantissa rounding that carries to 2^31 moves to the next exponent.
    let r = Requant::from_real(1.0 - 1e-12).unwrap();
    assert_eq!(
        r,
        Requant {
            multiplier: 1 << 30,
            shift: 30
        }
    );
}

#[test]
fn config_defaults_and_validation() {
    let c: QuantConfig = ron::from_str("()").unwrap();
    assert_eq!(c, QuantConfig::default());
    assert!(c.validate().is_ok());
    let c: QuantConfig = ron::from_str("(calibration: MaxAbs, act_bits: 6)").unwrap();
    assert_eq!((c.calibration, c.act_bits), (Calibration::MaxAbs, 6));
    let bad = QuantConfig {
        weight_bits: 9,
        calibration: Calibration::Percentile(0.0),
        calibration_images: 0,
        ..c
    };
    let e: Vec<String> = bad
        .validate()
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        e,
        [
            "weight_bits = 9: must be in 2..=8 (int8 datapath)",
            "calibration.Percentile = 0: must be in (0, 100]",
            "calibration_images = 0: must be at least 1"
        ]
    );
    assert!(ron::from_str::<QuantConfig>("(bits: 8)").is_err());
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn float_accuracy(m: &Model, d: &Dataset) -> f64 {
    let mut c = 0;
    for s in (0..d.len()).step_by(500) {
        let p = m.predict(d.batch_range(s, s + 500).view());
        c += p
            .iter()
            .zip(d.labels_range(s, s + 500))
            .filter(|(a, b)| **a == *b)
            .count();
    }
    c as f64 / d.len() as f64
}

#[test]
fn mlp_int8_is_within_one_point_of_float_on_bundled_sample() {
    let m = Model::load(&root().join("models/networks/fmnist-mlp.ron")).unwrap();
    let d = Dataset::bundled_sample();
    let q = QNetwork::quantize(&m, &d, &QuantConfig::default()).unwrap();
    assert_eq!(q.layers.len(), 4);
    assert_eq!(
        q.storage_bits(),
        (784 * 256 + 256 * 128 + 1280) * 8 + (256 + 128 + 10) * 32
    );
    let (fa, qa) = (float_accuracy(&m, &d), q.accuracy(&RefGemm, &d, 500));
    assert!((fa - qa).abs() <= 0.01, "float {fa} int8 {qa}");
    // The table-quantized accuracy counts exactly what `predict` on float batches predicts.
    let x = d.batch_range(0, d.len());
    let hits = q
        .predict(&RefGemm, x.view())
        .iter()
        .zip(d.labels_range(0, d.len()))
        .filter(|(a, b)| **a == *b)
        .count();
    assert_eq!(qa, hits as f64 / d.len() as f64);
}

/// A small network that exercises every layer kind.
fn tiny() -> (Model, Dataset) {
    let spec: NetworkSpec = ron::from_str(
        "(schema_version: 1, name: \"tiny\", input: (c: 2, h: 7, w: 7), classes: 3, layers: [
          Conv2d(out_channels: 4, kernel: 3, stride: 2, padding: 1), Act(ReLU), MaxPool2d(kernel: 2, stride: 1),
          Conv2d(out_channels: 3, kernel: 2, padding: 1, bias: false), Act(Tanh), AvgPool2d(kernel: 2, stride: 2),
          Act(ReLU), Flatten, Dense(out: 5), Act(LeakyReLU(alpha: 0.1)), Dense(out: 3)])",
    )
    .unwrap();
    let model = Model::init(spec, 3).unwrap();
    let n = 100;
    let pixels = (0..n * 98)
        .map(|i: usize| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    let data = Dataset {
        name: "tiny".into(),
        shape: Shape::new(2, 7, 7),
        pixels,
        labels: vec![0; n],
        classes: 3,
    };
    (model, data)
}

/// Straightforward integer forward on one sample: direct convolution loops, no im2col.
pub(super) fn direct(q: &QNetwork, x: &[i8]) -> Vec<i8> {
    let mut h: Vec<i64> = x.iter().map(|&v| v.into()).collect();
    for l in &q.layers {
        h = match l {
            QLayer::Gemm(g) => {
                let (i, o) = (g.input, g.output);
                let one = crate::network::Hw::square(1);
                let (k, st, pad, groups) = match g.kind {
                    GemmKind::Dense => (one, one, crate::network::Hw::square(0), 1),
                    GemmKind::Conv {
                        kernel,
                        stride,
                        padding,
                        groups,
                    } => (kernel, stride, padding, groups),
                };
                let (cg, og) = (i.c / groups, o.c / groups);
                let mut y = vec![0; o.len()];
                for oc in 0..o.c {
                    for oy in 0..o.h {
                        for ox in 0..o.w {
                            let mut acc = g.bias.get(oc).copied().map_or(0, i64::from);
                            // Output channel oc reads the input channels of its group.
                            for cl in 0..cg {
                                let c = (oc / og) * cg + cl;
                                for ky in 0..k.h {
                                    for kx in 0..k.w {
                                        let (iy, ix) = (
                                            (oy * st.h + ky) as i64 - pad.h as i64,
                                            (ox * st.w + kx) as i64 - pad.w as i64,
                                        );
                                        if iy >= 0
                                            && ix >= 0
                                            && (iy as usize) < i.h
                                            && (ix as usize) < i.w
                                        {
                                            let xv = h[(c * i.h + iy as usize) * i.w + ix as usize];
                                            acc += xv
                                                * i64::from(
                                                    g.weight[[oc, (cl * k.h + ky) * k.w + kx]],
                                                );
                                        }
                                    }
                                }
                            }
                            let lo = if g.relu { 0 } else { -127 };
                            y[(oc * o.h + oy) * o.w + ox] =
                                ref_requant(acc, g.requant[oc], g.rounding).clamp(lo, 127);
                        }
                    }
                }
                y
            }
            QLayer::MaxPool {
                kernel,
                stride,
                input,
                output,
            }
            | QLayer::AvgPool {
                kernel,
                stride,
                input,
                output,
                ..
            } => {
                let mut y = vec![0; output.len()];
                for c in 0..output.c {
                    for oy in 0..output.h {
                        for ox in 0..output.w {
                            let win: Vec<i64> = (0..kernel * kernel)
                                .map(|t| {
                                    h[(c * input.h + oy * stride + t / kernel) * input.w
                                        + ox * stride
                                        + t % kernel]
                                })
                                .collect();
                            y[(c * output.h + oy) * output.w + ox] =
                                if matches!(l, QLayer::MaxPool { .. }) {
                                    *win.iter().max().unwrap()
                                } else {
                                    round(
                                        win.iter().sum::<i64>() as f64 / win.len() as f64,
                                        Rounding::NearestEven,
                                    ) as i64
                                };
                        }
                    }
                }
                y
            }
            QLayer::Flatten => h,
            QLayer::GlobalAvgPool { .. }
            | QLayer::Add { .. }
            | QLayer::Concat { .. }
            | QLayer::MatMul { .. }
            | QLayer::Softmax { .. }
            | QLayer::LayerNorm { .. }
            | QLayer::Transpose { .. } => {
                unreachable!("the networks of this test are chains without these layers")
            }
            QLayer::Lut {
                act,
                in_scale,
                out_scale,
                ..
            } => h
                .iter()
                .map(|&c| {
                    let y = act.apply(c as f32 * in_scale);
                    (round(f64::from(y) / f64::from(*out_scale), Rounding::NearestEven) as i64)
                        .clamp(-127, 127)
                })
                .collect(),
        };
    }
    h.iter().map(|&v| i8::try_from(v).unwrap()).collect()
}

#[test]
fn tiny_conv_network_equals_direct_integer_reference() {
    let (m, d) = tiny();
    let q = QNetwork::quantize(&m, &d, &QuantConfig::default()).unwrap();
    assert_eq!(q.layers.len(), 10, "the first ReLU is fused");
    assert!(matches!(&q.layers[0], QLayer::Gemm(g) if g.relu && g.bias.len() == 4));
    assert!(matches!(&q.layers[2], QLayer::Gemm(g) if !g.relu && g.bias.is_empty()));
    let x = q.quantize_input(d.batch_range(0, d.len()).view());
    let y = q.forward(&RefGemm, x.clone());
    assert_eq!(y.dim(), (d.len(), 3));
    let mut distinct = std::collections::BTreeSet::new();
    for s in 0..d.len() {
        let want = direct(&q, x.row(s).as_slice().unwrap());
        assert_eq!(y.row(s).to_vec(), want, "sample {s}");
        distinct.insert(want);
    }
    assert!(distinct.len() > 10, "the logits vary with the input");
}

#[test]
fn forward_is_bit_identical_for_one_and_two_threads() {
    let (m, d) = tiny();
    let q = QNetwork::quantize(&m, &d, &QuantConfig::default()).unwrap();
    let mlp = Model::load(&root().join("models/networks/fmnist-mlp.ron")).unwrap();
    let s = Dataset::bundled_sample().limit(300);
    let qm = QNetwork::quantize(&mlp, &s, &QuantConfig::default()).unwrap();
    let run = |t: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap();
        pool.install(|| {
            let a = q.forward(&RefGemm, q.quantize_input(d.batch_range(0, d.len()).view()));
            let b = qm.forward(
                &RefGemm,
                qm.quantize_input(s.batch_range(0, s.len()).view()),
            );
            (
                a,
                b,
                QNetwork::quantize(&mlp, &s, &QuantConfig::default()).unwrap(),
            )
        })
    };
    assert_eq!(run(1), run(2));
}
