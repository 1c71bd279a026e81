//! Tests of grouped, depthwise and rectangular int8 convolutions and of the int8 MatMul:
//! random networks against the direct integer reference (proptest), against the float forward,
//! and the MatMul against exact integer loops.

use ndarray::Array2;
use proptest::prelude::*;

use super::tests::direct;
use super::*;
use crate::data::Dataset;
use crate::model::Model;
use crate::network::NetworkSpec;

/// A chain: a grouped (or depthwise) rectangular convolution with per-axis stride and padding,
/// then a second grouped convolution, Flatten and Dense; `c` input channels.
fn grouped_chain(c: usize, g1: usize, o1: usize, g2: usize, geo: [usize; 6]) -> String {
    let [kh, kw, sh, sw, ph, pw] = geo;
    format!(
        "(schema_version: 1, name: \"g\", input: (c: {c}, h: 7, w: 6), classes: 3, layers: [
          Conv2d(out_channels: {o1}, kernel: ({kh}, {kw}), stride: ({sh}, {sw}), padding: ({ph}, {pw}), groups: {g1}),
          Act(ReLU),
          Conv2d(out_channels: {o1}, kernel: (1, 2), groups: {g2}, bias: false), Act(Tanh),
          Flatten, Dense(out: 3)])"
    )
}

fn data(c: usize, n: usize, seed: u64) -> Dataset {
    let len = c * 7 * 6;
    let pixels = (0..n * len)
        .map(|i| ((i as u64 + seed).wrapping_mul(2654435761) >> 9) as u8)
        .collect();
    Dataset {
        name: "grouped".into(),
        shape: crate::network::Shape::new(c, 7, 6),
        pixels,
        labels: vec![0; n],
        classes: 3,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(nacsim_core::testing::proptest_cases(24)))]

    /// Every grouped, depthwise or rectangular int8 convolution equals the direct integer loops
    /// (each output channel reading only its group's input channels), bit for bit.
    #[test]
    fn grouped_convolutions_equal_the_direct_integer_reference(
        cg in 1usize..3, g1 in 1usize..4, mult in 1usize..3, g2sel in 0usize..2,
        kh in 1usize..4, kw in 1usize..4, sh in 1usize..3, sw in 1usize..3,
        ph in 0usize..2, pw in 0usize..2, seed in 0u64..1000,
    ) {
        let c = cg * g1;
        let o1 = g1 * mult;
        let g2 = if g2sel == 0 { 1 } else { o1 };
        let spec: NetworkSpec = ron::from_str(&grouped_chain(c, g1, o1, g2, [kh, kw, sh, sw, ph, pw])).unwrap();
        let model = Model::init(spec, seed).unwrap();
        let d = data(c, 24, seed);
        let q = QNetwork::quantize(&model, &d, &QuantConfig::default()).unwrap();
        let QLayer::Gemm(first) = &q.layers[0] else { panic!("a product first") };
        prop_assert_eq!(first.groups(), g1);
        prop_assert_eq!(first.weight.dim(), (o1, cg * kh * kw));
        let x = q.quantize_input(d.batch_range(0, d.len()).view());
        let y = q.forward(&RefGemm, x.clone());
        for s in 0..d.len() {
            let want = direct(&q, x.row(s).as_slice().unwrap());
            prop_assert_eq!(y.row(s).to_vec(), want, "sample {}", s);
        }
    }
}

#[test]
fn one_group_of_a_grouped_layer_is_that_groups_layer() {
    let spec: NetworkSpec = ron::from_str(&grouped_chain(4, 2, 6, 6, [3, 1, 1, 1, 1, 0])).unwrap();
    let model = Model::init(spec, 2).unwrap();
    let d = data(4, 16, 2);
    let q = QNetwork::quantize(&model, &d, &QuantConfig::default()).unwrap();
    let QLayer::Gemm(g) = &q.layers[0] else {
        panic!()
    };
    let x = q.quantize_input(d.batch_range(0, 4).view());
    let whole = q.layer_forward(&RefGemm, 0, x.clone());
    for gi in 0..2 {
        let part = g.group(gi);
        assert_eq!((part.input.c, part.output.c, part.groups()), (2, 3, 1));
        // Group gi reads input channels gi·2.. and writes output channels gi·3..
        let px = g.input.h * g.input.w;
        let xg = x
            .slice(ndarray::s![.., gi * 2 * px..(gi + 1) * 2 * px])
            .to_owned();
        let one = QNetwork {
            layers: vec![QLayer::Gemm(part.clone())],
            inputs: Vec::new(),
            ..q.clone()
        };
        let yg = one.layer_forward(&RefGemm, 0, xg);
        let opx = g.output.h * g.output.w;
        assert_eq!(
            yg,
            whole.slice(ndarray::s![.., gi * 3 * opx..(gi + 1) * 3 * opx]),
            "group {gi}"
        );
    }
}

/// A small random graph with a depthwise 3×1 convolution, a grouped 1×3 one, a residual Add
/// and a Concat: its int8 logits track the float forward.
#[test]
fn a_random_grouped_graph_in_int8_tracks_its_float_forward() {
    let spec: NetworkSpec = ron::from_str(
        r#"(schema_version: 1, name: "sep", input: (c: 1, h: 8, w: 8), classes: 4, nodes: [
            (name: "stem", op: Conv2d(out_channels: 8, kernel: 3, padding: 1)),
            (name: "bn", op: BatchNorm2d()),
            (name: "r0", op: Act(ReLU6)),
            (name: "dw", op: Conv2d(out_channels: 8, kernel: (3, 1), padding: (1, 0), groups: 8)),
            (name: "r1", op: Act(ReLU)),
            (name: "gc", op: Conv2d(out_channels: 8, kernel: (1, 3), padding: (0, 1), groups: 2)),
            (name: "s", op: Add, inputs: ["gc", "r0"]),
            (name: "pw", op: Conv2d(out_channels: 4, kernel: 1, groups: 4)),
            (name: "cat", op: Concat, inputs: ["s", "pw"]),
            (name: "gap", op: GlobalAvgPool),
            (name: "fc", op: Dense(out: 4)),
        ])"#,
    )
    .unwrap();
    let model = Model::init(spec, 11).unwrap();
    let data = Dataset::synthetic(96, 8, 8, 4, 13);
    let q = QNetwork::quantize(&model, &data, &QuantConfig::default()).unwrap();
    let groups: Vec<usize> = q
        .layers
        .iter()
        .filter_map(|l| match l {
            QLayer::Gemm(g) => Some(g.groups()),
            _ => None,
        })
        .collect();
    assert_eq!(groups, [1, 8, 2, 4, 1]);
    let x = data.batch_range(0, 96);
    let float = model.forward(x.view());
    let QLayer::Gemm(fc) = q.layers.last().unwrap() else {
        panic!()
    };
    let codes = q.forward(&RefGemm, q.quantize_input(x.view()));
    let deq: Array2<f32> = codes.mapv(|c| f32::from(c) * fc.out_scale);
    let range = float.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let max = (&deq - &float).iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(max <= 0.05 * range, "max |Δ| = {max}, range {range}");
    let agree = (0..96)
        .filter(|&s| {
            let am = |r: ndarray::ArrayView1<f32>| {
                r.iter()
                    .enumerate()
                    .fold(0, |b, (i, &v)| if v > r[b] { i } else { b })
            };
            am(float.row(s)) == am(deq.row(s))
        })
        .count();
    assert!(
        agree >= 86,
        "int8 and float agree on {agree} of 96 top-1 classes"
    );
}

/// The int8 MatMul (plain and transposed) equals exact integer loops on the codes, requantized
/// by `s_a·s_b/s_out`, and tracks the float product.
#[test]
fn int8_matmul_equals_integer_loops_and_tracks_float() {
    for tb in [false, true] {
        let spec: NetworkSpec = ron::from_str(&format!(
            r#"(schema_version: 1, name: "mm", input: (c: 1, h: 8, w: 8), classes: 4, nodes: [
                (name: "q", op: Conv2d(out_channels: 2, kernel: 1), inputs: ["input"]),
                (name: "k", op: Conv2d(out_channels: 2, kernel: 1), inputs: ["input"]),
                (name: "s", op: MatMul(transpose_b: {tb}), inputs: ["q", "k"]),
                (name: "f", op: Flatten),
                (name: "fc", op: Dense(out: 4)),
            ])"#
        ))
        .unwrap();
        let model = Model::init(spec, 5).unwrap();
        let data = Dataset::synthetic(48, 8, 8, 4, 3);
        let q = QNetwork::quantize(&model, &data, &QuantConfig::default()).unwrap();
        let mi = q
            .layers
            .iter()
            .position(|l| matches!(l, QLayer::MatMul { .. }))
            .expect("a MatMul layer");
        let QLayer::MatMul {
            a,
            n,
            requant,
            in_scales,
            out_scale,
            ..
        } = q.layers[mi].clone()
        else {
            unreachable!()
        };
        assert_eq!((a.c, a.h, a.w, n), (2, 8, 8, 8));
        let x = q.quantize_input(data.batch_range(0, 8).view());
        let xa = q.layer_forward(&RefGemm, 0, x.clone());
        let xb = q.layer_forward(&RefGemm, 1, x.clone());
        let y = q.node_forward_at(&RefGemm, mi, vec![xa.clone(), xb.clone()], 0);
        let (c, m, k) = (a.c, a.h, a.w);
        let mut worst = 0.0f64;
        for s in 0..8 {
            for ch in 0..c {
                for i in 0..m {
                    for j in 0..n {
                        let acc: i32 = (0..k)
                            .map(|t| {
                                let av = i32::from(xa[[s, (ch * m + i) * k + t]]);
                                let bv = if tb {
                                    xb[[s, (ch * n + j) * k + t]]
                                } else {
                                    xb[[s, (ch * k + t) * n + j]]
                                };
                                av * i32::from(bv)
                            })
                            .sum();
                        let want = requant.apply_clamped(
                            acc,
                            crate::quant::Rounding::NearestEven,
                            -127,
                            127,
                        );
                        let got = y[[s, (ch * m + i) * n + j]];
                        assert_eq!(i32::from(got), want, "tb {tb} s {s} ch {ch} ({i}, {j})");
                        let real = f64::from(acc) * f64::from(in_scales.0) * f64::from(in_scales.1);
                        if got.unsigned_abs() < 127 {
                            // Unclamped: one rounding of the real product.
                            worst = worst.max(
                                (f64::from(got) * f64::from(out_scale) - real).abs()
                                    - 0.5 * f64::from(out_scale),
                            );
                        }
                    }
                }
            }
        }
        assert!(
            worst <= 1e-3 * f64::from(out_scale),
            "beyond one rounding: {worst}"
        );
    }
}
