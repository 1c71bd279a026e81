//! Tests of the graph passes: gradients against finite differences for every graph kind, the
//! plain-chain path against the graph path, BatchNorm folding against the unfolded forward.

use ndarray::Array2;

use super::*;
use crate::forward::{FloatKernel, softmax_cross_entropy};
use crate::model::Model;
use crate::network::NetworkSpec;

fn spec(input: (usize, usize, usize), nodes: &str) -> NetworkSpec {
    ron::from_str(&format!(
        "(schema_version: 1, name: \"g\", input: (c: {}, h: {}, w: {}), classes: 3, nodes: [{nodes}])",
        input.0, input.1, input.2
    ))
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A deterministic batch in [0, 1) and labels.
fn batch(b: usize, f: usize, seed: u64) -> (Array2<f32>, Vec<usize>) {
    let s = nacsim_core::rng::Stream::new(seed, nacsim_core::rng::Purpose::Other(7), 0, 0);
    let x = Array2::from_shape_fn((b, f), |(i, j)| s.uniform((i * f + j) as u64) as f32);
    (x, (0..b).map(|i| i % 3).collect())
}

/// Training-mode loss of `m` with parameters `params` (statistics cloned: a pure function).
fn loss(m: &Model, params: &[Option<Param>], x: &Array2<f32>, y: &[usize]) -> f64 {
    let mut stats = m.stats.clone();
    let mut ctx = TrainCtx {
        seed: 5,
        step: 1,
        stats: &mut stats,
    };
    let (h, _) = net_train_forward(&FloatKernel, &m.layers, params, &mut ctx, x.clone());
    f64::from(softmax_cross_entropy(h.view(), y).0)
}

/// `params + t·d`.
fn moved(params: &[Option<Param>], d: &[Option<Param>], t: f32) -> Vec<Option<Param>> {
    params
        .iter()
        .zip(d)
        .map(|(p, d)| {
            let (Some(p), Some(d)) = (p, d) else {
                return p.clone();
            };
            Some(Param {
                weight: &p.weight + &(&d.weight * t),
                bias: p
                    .bias
                    .as_ref()
                    .zip(d.bias.as_ref())
                    .map(|(b, db)| b + &(db * t)),
            })
        })
        .collect()
}

fn dot(a: &[Option<Param>], b: &[Option<Param>]) -> f64 {
    a.iter()
        .zip(b)
        .filter_map(|(a, b)| Some((a.as_ref()?, b.as_ref()?)))
        .map(|(a, b)| {
            let w: f64 = a
                .weight
                .iter()
                .zip(&b.weight)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            let bb: f64 = a.bias.as_ref().zip(b.bias.as_ref()).map_or(0.0, |(x, y)| {
                x.iter()
                    .zip(y)
                    .map(|(x, y)| f64::from(*x) * f64::from(*y))
                    .sum()
            });
            w + bb
        })
        .sum()
}

/// The directional derivative of the loss along three random directions, by central
/// differences, against `grad · d` from [`net_backward`]: relative error below 2 %.
fn check_gradients(m: &Model, batch_size: usize) {
    let (x, y) = batch(batch_size, m.spec.input.len(), 11);
    let mut stats = m.stats.clone();
    let mut ctx = TrainCtx {
        seed: 5,
        step: 1,
        stats: &mut stats,
    };
    let (h, caches) = net_train_forward(&FloatKernel, &m.layers, &m.params, &mut ctx, x.clone());
    let (_, dy, _) = softmax_cross_entropy(h.view(), &y);
    let grads = net_backward(&FloatKernel, &m.layers, &m.params, &caches, dy);
    for (l, (g, p)) in m.layers.iter().zip(grads.iter().zip(&m.params)) {
        assert_eq!(g.is_some(), p.is_some(), "layer {} has a gradient", l.name);
    }
    for trial in 0..3u64 {
        let s = nacsim_core::rng::Stream::new(trial, nacsim_core::rng::Purpose::Other(8), 0, 0);
        let mut k = 0u64;
        let mut draw = || {
            k += 1;
            (2.0 * s.uniform(k) - 1.0) as f32
        };
        let d: Vec<Option<Param>> = m
            .params
            .iter()
            .map(|p| {
                p.as_ref().map(|p| Param {
                    weight: p.weight.mapv(|_| draw()),
                    bias: p.bias.as_ref().map(|b| b.mapv(|_| draw())),
                })
            })
            .collect();
        let t = 2e-3f32;
        let fd = (loss(m, &moved(&m.params, &d, t), &x, &y)
            - loss(m, &moved(&m.params, &d, -t), &x, &y))
            / (2.0 * f64::from(t));
        let an = dot(&grads, &d);
        assert!(
            (fd - an).abs() <= 0.02 * an.abs().max(1e-2),
            "{}: trial {trial}: finite difference {fd} vs backward {an}",
            m.spec.name
        );
    }
}

fn model(input: (usize, usize, usize), nodes: &str) -> Model {
    let mut m = Model::init(spec(input, nodes), 3).unwrap_or_else(|e| panic!("{e}"));
    // Non-trivial BatchNorm parameters and statistics.
    for (i, l) in m.layers.iter().enumerate() {
        if let LayerSpec::BatchNorm2d { .. } = l.spec {
            let p = m.params[i].as_mut().unwrap();
            p.weight.mapv_inplace(|_| 1.3);
            p.bias.as_mut().unwrap().mapv_inplace(|_| -0.2);
            let st = m.stats[i].as_mut().unwrap();
            st.mean
                .iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = 0.1 * k as f32);
            st.var
                .iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = 0.5 + 0.2 * k as f32);
        }
    }
    m
}

const RESIDUAL: &str = r#"
    (name: "c1", op: Conv2d(out_channels: 4, kernel: 3, padding: 1)),
    (name: "bn1", op: BatchNorm2d()),
    (name: "t1", op: Act(Tanh)),
    (name: "c2", op: Conv2d(out_channels: 4, kernel: 3, padding: 1, bias: false)),
    (name: "sum", op: Add, inputs: ["c2", "c1"]),
    (name: "gap", op: GlobalAvgPool),
    (name: "fc", op: Dense(out: 3)),
"#;

#[test]
fn residual_add_batchnorm_and_global_pool_gradients_match_finite_differences() {
    check_gradients(&model((2, 5, 5), RESIDUAL), 6);
}

#[test]
fn concat_of_rectangular_convs_gradients_match_finite_differences() {
    let m = model(
        (2, 5, 6),
        r#"
        (name: "a", op: Conv2d(out_channels: 3, kernel: (1, 3), padding: (0, 1)), inputs: ["input"]),
        (name: "b", op: Conv2d(out_channels: 2, kernel: (3, 1), padding: (1, 0), stride: (1, 1)), inputs: ["input"]),
        (name: "cat", op: Concat, inputs: ["a", "b"]),
        (name: "t", op: Act(Tanh)),
        (name: "flat", op: Flatten),
        (name: "fc", op: Dense(out: 3)),
    "#,
    );
    assert_eq!(m.layers[2].output, crate::network::Shape::new(5, 5, 6));
    check_gradients(&m, 4);
}

#[test]
fn grouped_and_depthwise_conv_gradients_match_finite_differences() {
    let m = model(
        (4, 6, 5),
        r#"
        (name: "g", op: Conv2d(out_channels: 6, kernel: 3, groups: 2, stride: (2, 1), padding: 1)),
        (name: "t", op: Act(Tanh)),
        (name: "dw", op: Conv2d(out_channels: 6, kernel: (3, 2), groups: 6)),
        (name: "flat", op: Flatten),
        (name: "fc", op: Dense(out: 3)),
    "#,
    );
    assert_eq!(m.layers[0].output, crate::network::Shape::new(6, 3, 5));
    assert_eq!(m.layers[0].weight_shape(), Some(vec![6, 2, 3, 3]));
    assert_eq!(m.layers[2].weight_shape(), Some(vec![6, 1, 3, 2]));
    check_gradients(&m, 3);
}

#[test]
fn matmul_gradients_match_finite_differences_plain_and_transposed() {
    for tb in [false, true] {
        let m = model(
            (2, 4, 4),
            &format!(
                r#"
            (name: "q", op: Conv2d(out_channels: 2, kernel: 3, padding: 1), inputs: ["input"]),
            (name: "k", op: Conv2d(out_channels: 2, kernel: 3, padding: 1), inputs: ["input"]),
            (name: "s", op: MatMul(transpose_b: {tb}), inputs: ["q", "k"]),
            (name: "flat", op: Flatten),
            (name: "fc", op: Dense(out: 3)),
        "#
            ),
        );
        check_gradients(&m, 3);
    }
}

#[test]
fn dropout_and_flat_batchnorm_gradients_match_finite_differences() {
    let m = model(
        (1, 4, 4),
        r#"
        (name: "fc1", op: Dense(out: 8)),
        (name: "bn", op: BatchNorm2d(momentum: 0.2)),
        (name: "r", op: Act(ReLU6)),
        (name: "drop", op: Dropout(p: 0.25)),
        (name: "fc2", op: Dense(out: 3)),
    "#,
    );
    check_gradients(&m, 8);
}

#[test]
fn relu6_is_the_clamp_to_zero_six_with_its_derivative() {
    let a = crate::network::Activation::ReLU6;
    for (x, y, d) in [
        (-1.0, 0.0, 0.0),
        (0.0, 0.0, 0.0),
        (2.5, 2.5, 1.0),
        (6.0, 6.0, 0.0),
        (9.0, 6.0, 0.0),
    ] {
        assert_eq!((a.apply(x), a.derivative(x)), (y, d), "x = {x}");
    }
}

#[test]
fn dropout_is_the_identity_at_inference_and_keyed_by_seed_and_step_in_training() {
    let mask = |seed, step| crate::ops::dropout_mask(seed, step, 2, 16, 64, 0.5);
    assert_eq!(mask(1, 1), mask(1, 1));
    assert_ne!(mask(1, 1), mask(1, 2));
    assert_ne!(mask(1, 1), mask(2, 1));
    let m = mask(1, 1);
    let kept = m.iter().filter(|v| **v > 0.0).count() as f64 / m.len() as f64;
    assert!((kept - 0.5).abs() < 0.08, "{kept}");
    assert!(m.iter().all(|v| *v == 0.0 || *v == 2.0));
    let spec = spec(
        (1, 2, 2),
        r#"(name: "d", op: Dropout(p: 0.9)), (name: "fc", op: Dense(out: 3))"#,
    );
    let model = Model::init(spec, 1).unwrap();
    let (x, _) = batch(4, 4, 2);
    let want = x.dot(&model.params[1].as_ref().unwrap().weight.t())
        + model.params[1].as_ref().unwrap().bias.as_ref().unwrap();
    let got = model.forward(x.view());
    assert!((got - want).iter().all(|v| v.abs() < 1e-6));
}

#[test]
fn a_chain_written_as_nodes_runs_the_same_numbers_as_the_layers_file() {
    let chain: NetworkSpec = ron::from_str(
        "(schema_version: 1, name: \"c\", input: (c: 1, h: 6, w: 6), classes: 3, layers: [Conv2d(out_channels: 2, kernel: 3), Act(ReLU), MaxPool2d(kernel: 2, stride: 2), Flatten, Dense(out: 3)])",
    )
    .unwrap();
    let nodes = spec(
        (1, 6, 6),
        r#"(name: "conv1", op: Conv2d(out_channels: 2, kernel: 3)), (name: "relu1", op: Act(ReLU)),
           (name: "pool1", op: MaxPool2d(kernel: 2, stride: 2)), (name: "flatten3", op: Flatten),
           (name: "fc1", op: Dense(out: 3))"#,
    );
    let a = Model::init(chain, 9).unwrap();
    let b = Model::init(nodes, 9).unwrap();
    assert_eq!(a.layers, b.layers);
    assert_eq!(a.params, b.params);
    let (x, _) = batch(5, 36, 3);
    assert_eq!(a.forward(x.view()), b.forward(x.view()));
    // The graph pass over a chain gives the chain's numbers bit for bit.
    let mut pass = Pass::new(&a.layers, x.clone());
    for (i, l) in a.layers.iter().enumerate() {
        let xs = pass.take_inputs(i);
        let y = node_forward(&FloatKernel, i, l, a.params[i].as_ref(), xs, None).0;
        pass.put(i, y);
    }
    assert_eq!(pass.output(), a.forward(x.view()));
}

#[test]
fn batchnorm_folding_matches_the_unfolded_float_forward() {
    // Conv → BN and Dense → BN fold; the residual BN whose conv is read twice does not.
    let m = model(
        (2, 6, 6),
        r#"
        (name: "c1", op: Conv2d(out_channels: 3, kernel: 3, padding: 1, bias: false)),
        (name: "bn1", op: BatchNorm2d()),
        (name: "r1", op: Act(ReLU)),
        (name: "c2", op: Conv2d(out_channels: 3, kernel: 3, padding: 1)),
        (name: "bn2", op: BatchNorm2d(eps: 1e-3)),
        (name: "flat", op: Flatten),
        (name: "fc1", op: Dense(out: 5)),
        (name: "bn3", op: BatchNorm2d()),
        (name: "fc2", op: Dense(out: 3)),
    "#,
    );
    let f = m.fold_batch_norm();
    assert_eq!(f.layers.len(), m.layers.len() - 3);
    assert!(crate::network::is_chain(&f.layers));
    assert!(
        !f.layers
            .iter()
            .any(|l| matches!(l.spec, LayerSpec::BatchNorm2d { .. }))
    );
    assert_eq!(
        f.spec.resolve().unwrap(),
        f.layers,
        "the folded spec resolves to its layers"
    );
    let (x, _) = batch(16, 72, 4);
    let (a, b) = (m.forward(x.view()), f.forward(x.view()));
    let max = (&a - &b).iter().fold(0.0f32, |s, v| s.max(v.abs()));
    assert!(max <= 1e-5, "max |Δ| = {max}");
    // Not foldable: the conv feeds the BN and the Add.
    let r = model((2, 5, 5), RESIDUAL);
    let rf = r.fold_batch_norm();
    assert!(
        rf.layers
            .iter()
            .any(|l| matches!(l.spec, LayerSpec::BatchNorm2d { .. }))
    );
    assert_eq!(
        r.forward(x.slice(ndarray::s![.., ..50]).view()),
        rf.forward(x.slice(ndarray::s![.., ..50]).view())
    );
}

#[test]
fn batchnorm_training_uses_batch_statistics_and_updates_the_running_ones() {
    let m = model(
        (1, 2, 2),
        r#"(name: "fc", op: Dense(out: 3)), (name: "bn", op: BatchNorm2d(momentum: 0.5))"#,
    );
    let (x, _) = batch(7, 4, 6);
    let mut stats = m.stats.clone();
    let mut ctx = TrainCtx {
        seed: 0,
        step: 1,
        stats: &mut stats,
    };
    let (y, _) = net_train_forward(&FloatKernel, &m.layers, &m.params, &mut ctx, x.clone());
    // Batch-normalised then γ = 1.3, β = −0.2: each channel's mean is β and its (biased)
    // standard deviation γ (up to eps).
    for c in 0..3 {
        let col = y.column(c);
        let mean = col.mean().unwrap();
        let sd = (col.mapv(|v| (v - mean).powi(2)).mean().unwrap()).sqrt();
        assert!(
            (mean + 0.2).abs() < 1e-5 && (sd - 1.3).abs() < 1e-3,
            "{mean} {sd}"
        );
    }
    let h = net_forward(&FloatKernel, &m.layers[..1], &m.params[..1], &[], x);
    let st = stats[1].as_ref().unwrap();
    let old = m.stats[1].as_ref().unwrap();
    for c in 0..3 {
        let col = h.column(c);
        let mean = col.mean().unwrap();
        let var = col.mapv(|v| (v - mean).powi(2)).sum() / 6.0;
        assert!((st.mean[c] - (0.5 * old.mean[c] + 0.5 * mean)).abs() < 1e-6);
        assert!((st.var[c] - (0.5 * old.var[c] + 0.5 * var)).abs() < 1e-5);
    }
}
