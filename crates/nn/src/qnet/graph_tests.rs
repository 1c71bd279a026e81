//! Tests of the int8 graph layers: Add and Concat scale alignment on hand-made codes, and a
//! quantized residual graph against its float forward.

use ndarray::{Array2, array};

use super::*;
use crate::data::Dataset;
use crate::model::Model;
use crate::network::NetworkSpec;
use crate::quant::Rounding;

fn net(layers: Vec<QLayer>, inputs: Vec<Vec<Option<usize>>>) -> QNetwork {
    QNetwork {
        name: "t".into(),
        input_scale: 1.0,
        layers,
        inputs,
        classes: 1,
        config: QuantConfig::default(),
    }
}

#[test]
fn add_aligns_each_input_exactly_and_rounds_once() {
    // 10 codes at 0.5 plus −3 codes at 0.25 is 4.25, at output scale 0.1 the code 42.5.
    let f = |s: f64| Requant::from_real(256.0 * s / 0.1).unwrap();
    for (mode, want) in [
        (Rounding::NearestEven, 42),
        (Rounding::NearestAway, 43),
        (Rounding::Floor, 42),
    ] {
        let q = net(
            vec![QLayer::Add {
                factors: vec![f(0.5), f(0.25)],
                act_max: 127,
                rounding: mode,
            }],
            vec![vec![None, None]],
        );
        let y = q.node_forward_at(
            &RefGemm,
            0,
            vec![array![[10i8, 100]], array![[-3i8, 100]]],
            0,
        );
        assert_eq!(y[[0, 0]], want, "{mode:?}");
        assert_eq!(y[[0, 1]], 127, "clamped: 50 + 25 = 75 is code 750");
    }
}

#[test]
fn concat_copies_inputs_at_the_common_scale_and_requantizes_the_others() {
    let q = net(
        vec![QLayer::Concat {
            factors: vec![None, Some(Requant::from_real(0.5).unwrap())],
            rounding: Rounding::NearestEven,
        }],
        vec![vec![None, None]],
    );
    let y = q.node_forward_at(
        &RefGemm,
        0,
        vec![array![[7i8, -7]], array![[-3i8, 5, 127]]],
        0,
    );
    assert_eq!(y, array![[7i8, -7, -2, 2, 64]]);
}

#[test]
fn a_quantized_residual_graph_tracks_its_float_forward() {
    let spec: NetworkSpec = ron::from_str(
        r#"(schema_version: 1, name: "g", input: (c: 1, h: 8, w: 8), classes: 4, nodes: [
            (name: "c1", op: Conv2d(out_channels: 4, kernel: 3, padding: 1)),
            (name: "bn", op: BatchNorm2d()),
            (name: "r1", op: Act(ReLU)),
            (name: "c2", op: Conv2d(out_channels: 4, kernel: 3, padding: 1)),
            (name: "s", op: Add, inputs: ["c2", "r1"]),
            (name: "cat", op: Concat, inputs: ["s", "r1"]),
            (name: "gap", op: GlobalAvgPool),
            (name: "fc", op: Dense(out: 4)),
        ])"#,
    )
    .unwrap();
    let model = Model::init(spec, 3).unwrap();
    let data = Dataset::synthetic(64, 8, 8, 4, 5);
    let q = QNetwork::quantize(&model, &data, &QuantConfig::default()).unwrap();
    let kinds: Vec<LayerKind> = q.layers.iter().map(QLayer::kind).collect();
    assert_eq!(
        kinds,
        [
            LayerKind::Conv2d,
            LayerKind::Conv2d,
            LayerKind::Add,
            LayerKind::Concat,
            LayerKind::GlobalAvgPool,
            LayerKind::Dense
        ]
    );
    assert_eq!(
        q.inputs[2],
        vec![Some(1), Some(0)],
        "the Add reads c2 and the fused c1+bn+r1"
    );
    let x = data.batch_range(0, 32);
    let float = model.forward(x.view());
    let QLayer::Gemm(fc) = &q.layers[5] else {
        panic!()
    };
    let codes = q.forward(&RefGemm, q.quantize_input(x.view()));
    let deq: Array2<f32> = codes.mapv(|c| f32::from(c) * fc.out_scale);
    let range = float.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let max = (&deq - &float).iter().fold(0.0f32, |m, v| m.max(v.abs()));
    // int8 through five requantizations: within 5 % of the logit range.
    assert!(max <= 0.05 * range, "max |Δ| = {max}, range {range}");
}
