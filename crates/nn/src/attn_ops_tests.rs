//! Tests of Softmax, LayerNorm and Transpose: backward passes against central finite
//! differences (per op on every axis, and through a whole encoder block), the forward math
//! against its definition, shape rules and field errors.

use ndarray::{Array1, Array2};
use proptest::prelude::*;

use super::*;
use crate::forward::{FloatKernel, softmax_cross_entropy};
use crate::graph::{TrainCtx, net_backward, net_train_forward};
use crate::model::Model;
use crate::network::NetworkSpec;

const AXES: [TensorAxis; 3] = [TensorAxis::C, TensorAxis::H, TensorAxis::W];

/// Deterministic values in `[-scale, scale)`.
fn values(rows: usize, cols: usize, seed: u64, scale: f32) -> Array2<f32> {
    let s = nacsim_core::rng::Stream::new(seed, nacsim_core::rng::Purpose::Other(31), 0, 0);
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((2.0 * s.uniform((i * cols + j) as u64) - 1.0) as f32) * scale
    })
}

/// `Σ w·y` in f64.
fn weighted(y: &Array2<f32>, w: &Array2<f32>) -> f64 {
    y.iter()
        .zip(w)
        .map(|(a, b)| f64::from(*a) * f64::from(*b))
        .sum()
}

/// Checks `analytic` (the gradient of `L(x) = Σ w·f(x)` from a backward pass) against central
/// differences of `f` at every element of `x`.
fn check_input_grad(
    x: &Array2<f32>,
    w: &Array2<f32>,
    f: &dyn Fn(&Array2<f32>) -> Array2<f32>,
    analytic: &Array2<f32>,
    what: &str,
) {
    let h = 1e-2f32;
    for idx in 0..x.len() {
        let (r, c) = (idx / x.ncols(), idx % x.ncols());
        let mut xp = x.clone();
        xp[[r, c]] += h;
        let mut xm = x.clone();
        xm[[r, c]] -= h;
        let fd = (weighted(&f(&xp), w) - weighted(&f(&xm), w)) / (2.0 * f64::from(h));
        let an = f64::from(analytic[[r, c]]);
        assert!(
            (fd - an).abs() <= 2e-3 + 1e-2 * an.abs(),
            "{what}: element ({r}, {c}): finite difference {fd} vs backward {an}"
        );
    }
}

#[test]
fn softmax_backward_matches_finite_differences_on_every_axis() {
    let shape = Shape::new(3, 4, 5);
    let x = values(2, shape.len(), 1, 2.0);
    let w = values(2, shape.len(), 2, 1.0);
    for axis in AXES {
        let y = softmax(x.view(), shape, axis);
        let dx = softmax_backward(&y, w.view(), shape, axis);
        let f = |x: &Array2<f32>| softmax(x.view(), shape, axis);
        check_input_grad(&x, &w, &f, &dx, &format!("softmax {axis}"));
    }
}

fn ln_param(n: usize, seed: u64) -> Param {
    Param {
        weight: values(n, 1, seed, 1.0).mapv(|v| v + 1.2),
        bias: Some(Array1::from_iter(values(1, n, seed + 1, 0.5))),
    }
}

#[test]
fn layer_norm_backward_matches_finite_differences_on_every_axis() {
    let shape = Shape::new(4, 3, 5);
    let x = values(3, shape.len(), 3, 1.5);
    let w = values(3, shape.len(), 4, 1.0);
    for axis in AXES {
        let n = axis.len_in(shape);
        let p = ln_param(n, 7);
        let (_, c) = layer_norm(x.view(), shape, axis, 1e-5, &p);
        let AttnCache::LayerNorm { xhat, inv_std } = c else {
            panic!("a layer norm cache")
        };
        let (dx, g) = layer_norm_backward(&xhat, &inv_std, w.view(), shape, axis, &p);
        let f = |x: &Array2<f32>| layer_norm(x.view(), shape, axis, 1e-5, &p).0;
        check_input_grad(&x, &w, &f, &dx, &format!("layer norm {axis}"));
        // γ and β: central differences of each parameter.
        let h = 1e-2f32;
        for j in 0..n {
            for beta in [false, true] {
                let bump = |t: f32| {
                    let mut q = p.clone();
                    if beta {
                        q.bias.as_mut().unwrap()[j] += t;
                    } else {
                        q.weight[[j, 0]] += t;
                    }
                    weighted(&layer_norm(x.view(), shape, axis, 1e-5, &q).0, &w)
                };
                let fd = (bump(h) - bump(-h)) / (2.0 * f64::from(h));
                let an = f64::from(if beta {
                    g.bias.as_ref().unwrap()[j]
                } else {
                    g.weight[[j, 0]]
                });
                assert!(
                    (fd - an).abs() <= 1e-3 + 1e-3 * an.abs(),
                    "{axis}: d{}[{j}]: {fd} vs {an}",
                    if beta { "β" } else { "γ" }
                );
            }
        }
    }
}

#[test]
fn transpose_backward_is_the_adjoint() {
    let shape = Shape::new(2, 3, 4);
    let x = values(2, shape.len(), 5, 1.0);
    let w = values(2, shape.len(), 6, 1.0);
    for (a, b) in [
        (TensorAxis::C, TensorAxis::W),
        (TensorAxis::H, TensorAxis::W),
        (TensorAxis::C, TensorAxis::H),
    ] {
        let mut d = [2, 3, 4];
        d.swap(a.index(), b.index());
        let out = Shape::new(d[0], d[1], d[2]);
        let y = transpose(x.view(), shape, a, b);
        // Element (c, h, w) of x lands at the swapped coordinates of y.
        for (c, hh, ww) in [(0, 0, 0), (1, 2, 3), (1, 0, 2), (0, 2, 1)] {
            let mut u = [c, hh, ww];
            u.swap(a.index(), b.index());
            let at = (u[0] * out.h + u[1]) * out.w + u[2];
            assert_eq!(y[[1, at]], x[[1, (c * 3 + hh) * 4 + ww]], "{a}<->{b}");
        }
        let dx = transpose(w.view(), out, a, b);
        let f = |x: &Array2<f32>| transpose(x.view(), shape, a, b);
        check_input_grad(&x, &w, &f, &dx, &format!("transpose {a} {b}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Softmax sums to 1 along its axis, is in [0, 1], does not change when a constant is added
    /// along the axis, and stays finite for inputs far beyond exp's range.
    #[test]
    fn softmax_is_a_stable_distribution(
        c in 1usize..4, h in 1usize..5, w in 2usize..6, seed in 0u64..1000, big in prop::bool::ANY,
    ) {
        let shape = Shape::new(c, h, w);
        let scale = if big { 1e4 } else { 3.0 };
        let x = values(2, shape.len(), seed, scale);
        for axis in AXES {
            let y = softmax(x.view(), shape, axis);
            prop_assert!(y.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
            let (outer, n, inner) = axis_split(shape, axis);
            for r in 0..2 {
                for o in 0..outer {
                    for i in 0..inner {
                        let s: f32 = (0..n).map(|j| y[[r, o * n * inner + j * inner + i]]).sum();
                        prop_assert!((s - 1.0).abs() < 1e-5, "{axis}: sum {s}");
                    }
                }
            }
            let shifted = softmax(x.mapv(|v| v + 50.0).view(), shape, axis);
            if !big {
                for (a, b) in y.iter().zip(&shifted) {
                    prop_assert!((a - b).abs() < 1e-5);
                }
            }
        }
    }

    /// With γ = 1 and β = 0, LayerNorm's output has mean 0 and variance 1/(1 + eps/σ²) along
    /// its axis; transposing twice is the identity.
    #[test]
    fn layer_norm_standardises_and_transpose_is_an_involution(
        c in 2usize..5, h in 2usize..5, w in 2usize..5, seed in 0u64..1000,
    ) {
        let shape = Shape::new(c, h, w);
        let x = values(2, shape.len(), seed, 4.0);
        for axis in AXES {
            let n = axis.len_in(shape);
            let p = Param { weight: Array2::ones((n, 1)), bias: Some(Array1::zeros(n)) };
            let (y, _) = layer_norm(x.view(), shape, axis, 1e-5, &p);
            let (outer, n, inner) = axis_split(shape, axis);
            for o in 0..outer {
                for i in 0..inner {
                    let moments = |t: &Array2<f32>| {
                        let v: Vec<f64> = (0..n)
                            .map(|j| f64::from(t[[0, o * n * inner + j * inner + i]]))
                            .collect();
                        let m = v.iter().sum::<f64>() / n as f64;
                        (m, v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / n as f64)
                    };
                    let (m, var) = moments(&y);
                    let (_, s2) = moments(&x);
                    let want = s2 / (s2 + 1e-5);
                    prop_assert!(m.abs() < 1e-5 && (var - want).abs() < 1e-4, "{axis}: {m} {var} {want}");
                }
            }
            for b in AXES {
                if b != axis {
                    let mut d = [c, h, w];
                    d.swap(axis.index(), b.index());
                    let t = transpose(x.view(), shape, axis, b);
                    let back = transpose(t.view(), Shape::new(d[0], d[1], d[2]), axis, b);
                    prop_assert_eq!(&back, &x);
                }
            }
        }
    }
}

/// One post-norm transformer encoder block (the layout of `models/training/
/// fmnist-encoder-softmax.ron`, smaller): tokens `(d, T, 1)`, attention on `(1, T, d)`.
pub(crate) const BLOCK: &str = r#"
    (name: "embed", op: Conv2d(out_channels: 6, kernel: (1, 5)), inputs: ["input"]),
    (name: "q", op: Conv2d(out_channels: 6, kernel: 1), inputs: ["embed"]),
    (name: "k", op: Conv2d(out_channels: 6, kernel: 1), inputs: ["embed"]),
    (name: "v", op: Conv2d(out_channels: 6, kernel: 1), inputs: ["embed"]),
    (name: "qt", op: Transpose(a: C, b: W), inputs: ["q"]),
    (name: "kt", op: Transpose(a: C, b: W), inputs: ["k"]),
    (name: "vt", op: Transpose(a: C, b: W), inputs: ["v"]),
    (name: "scores", op: MatMul(transpose_b: true), inputs: ["qt", "kt"]),
    (name: "attn", op: Softmax),
    (name: "ctx", op: MatMul, inputs: ["attn", "vt"]),
    (name: "ctx_t", op: Transpose(a: C, b: W)),
    (name: "o", op: Conv2d(out_channels: 6, kernel: 1)),
    (name: "res1", op: Add, inputs: ["o", "embed"]),
    (name: "ln1", op: LayerNorm),
    (name: "ffn1", op: Conv2d(out_channels: 8, kernel: 1)),
    (name: "ffn_act", op: Act(Tanh)),
    (name: "ffn2", op: Conv2d(out_channels: 6, kernel: 1)),
    (name: "res2", op: Add, inputs: ["ffn2", "ln1"]),
    (name: "ln2", op: LayerNorm(eps: 1e-5)),
    (name: "flat", op: Flatten),
    (name: "fc", op: Dense(out: 3)),
"#;

pub(crate) fn block_spec(nodes: &str) -> Result<NetworkSpec, String> {
    let text = format!(
        "(schema_version: 1, name: \"enc\", input: (c: 1, h: 4, w: 5), classes: 3, nodes: [{nodes}])"
    );
    let text = crate::network::bare_ops(&text);
    let spec: NetworkSpec = ron::from_str(&text).map_err(|e| e.to_string())?;
    spec.resolve().map_err(|e| e.to_field_error().to_string())?;
    Ok(spec)
}

fn block_loss(m: &Model, params: &[Option<Param>], x: &Array2<f32>, y: &[usize]) -> f64 {
    let mut stats = m.stats.clone();
    let mut ctx = TrainCtx {
        seed: 1,
        step: 1,
        stats: &mut stats,
    };
    let (h, _) = net_train_forward(&FloatKernel, &m.layers, params, &mut ctx, x.clone());
    f64::from(softmax_cross_entropy(h.view(), y).0)
}

#[test]
fn encoder_block_shapes_and_every_parameter_gradient_match_finite_differences() {
    let mut m = Model::init(block_spec(BLOCK).unwrap(), 4).unwrap();
    let shape_of = |n: &str| m.layers.iter().find(|l| l.name == n).unwrap().output;
    assert_eq!(shape_of("embed"), Shape::new(6, 4, 1));
    assert_eq!(shape_of("qt"), Shape::new(1, 4, 6));
    assert_eq!(shape_of("scores"), Shape::new(1, 4, 4));
    assert_eq!(shape_of("ctx_t"), Shape::new(6, 4, 1));
    let ln = m.layers.iter().position(|l| l.name == "ln1").unwrap();
    assert_eq!(m.layers[ln].weight_shape(), Some(vec![6]));
    // Non-trivial γ, β.
    for (l, p) in m.layers.iter().zip(m.params.iter_mut()) {
        if let LayerSpec::LayerNorm { .. } = l.spec {
            *p = Some(ln_param(6, 9));
        }
    }
    let x = values(5, 20, 8, 1.0).mapv(|v| v + 0.5);
    let y: Vec<usize> = (0..5).map(|i| i % 3).collect();
    let mut stats = m.stats.clone();
    let mut ctx = TrainCtx {
        seed: 1,
        step: 1,
        stats: &mut stats,
    };
    let (h, caches) = net_train_forward(&FloatKernel, &m.layers, &m.params, &mut ctx, x.clone());
    let (_, dy, _) = softmax_cross_entropy(h.view(), &y);
    let grads = net_backward(&FloatKernel, &m.layers, &m.params, &caches, dy);
    let h = 1e-2f32;
    for (i, l) in m.layers.iter().enumerate() {
        let Some(g) = &grads[i] else {
            assert!(m.params[i].is_none(), "{} has no gradient", l.name);
            continue;
        };
        // A few elements of each weight and bias.
        let p = m.params[i].clone().unwrap();
        for k in [0, p.weight.len() / 2, p.weight.len() - 1] {
            for bias in [false, true] {
                if bias && p.bias.is_none() {
                    continue;
                }
                let bump = |t: f32| {
                    let mut ps = m.params.clone();
                    let q = ps[i].as_mut().unwrap();
                    if bias {
                        let b = q.bias.as_mut().unwrap();
                        let kk = k % b.len();
                        b[kk] += t;
                    } else {
                        let c = q.weight.ncols();
                        q.weight[[k / c, k % c]] += t;
                    }
                    block_loss(&m, &ps, &x, &y)
                };
                let fd = (bump(h) - bump(-h)) / (2.0 * f64::from(h));
                let an = f64::from(if bias {
                    let b = g.bias.as_ref().unwrap();
                    b[k % b.len()]
                } else {
                    let c = g.weight.ncols();
                    g.weight[[k / c, k % c]]
                });
                assert!(
                    (fd - an).abs() <= 2e-4 + 2e-2 * an.abs(),
                    "{}: {} element {k}: finite difference {fd} vs backward {an}",
                    l.name,
                    if bias { "bias" } else { "weight" }
                );
            }
        }
    }
    // The LayerNorm parameters are trained: initialised to 1 and 0 by Model::init.
    m = Model::init(block_spec(BLOCK).unwrap(), 4).unwrap();
    let p = m.params[ln].as_ref().unwrap();
    assert!(
        p.weight.iter().all(|v| *v == 1.0) && p.bias.as_ref().unwrap().iter().all(|v| *v == 0.0)
    );
}

#[test]
fn bad_axes_and_fields_are_refused_naming_the_node_and_field() {
    let cases = [
        (
            r#"(name: "t", op: Transpose(a: H, b: H)), (name: "f", op: Flatten), (name: "fc", op: Dense(out: 3))"#,
            "nodes[0].op.b",
        ),
        (
            r#"(name: "s", op: Softmax(axis: C)), (name: "f", op: Flatten), (name: "fc", op: Dense(out: 3))"#,
            "nodes[0].op.axis",
        ),
        (
            r#"(name: "n", op: LayerNorm(eps: 0.0)), (name: "f", op: Flatten), (name: "fc", op: Dense(out: 3))"#,
            "nodes[0].op.eps",
        ),
        (
            r#"(name: "n", op: LayerNorm(name: "other")), (name: "f", op: Flatten), (name: "fc", op: Dense(out: 3))"#,
            "op.name",
        ),
    ];
    for (nodes, want) in cases {
        let e = block_spec(nodes).unwrap_err();
        assert!(e.contains(want), "{nodes}: {e}");
    }
    let e = block_spec(r#"(name: "s", op: Softmax(axis: X)), (name: "fc", op: Dense(out: 3))"#)
        .unwrap_err();
    assert!(e.contains("`X`") && e.contains("`C`, `H`, or `W`"), "{e}");
    // A chain takes the new kinds too.
    let spec: NetworkSpec = ron::from_str(&crate::network::bare_ops(
        "(schema_version: 1, name: \"c\", input: (c: 2, h: 3, w: 4), classes: 24,
          layers: [Transpose(a: C, b: W), Softmax(axis: H), LayerNorm(axis: W), Flatten])",
    ))
    .unwrap();
    let m = Model::init(spec, 1).unwrap();
    assert_eq!(m.layers[0].output, Shape::new(4, 3, 2));
    assert_eq!(m.layers[2].weight_shape(), Some(vec![2]));
    assert_eq!(m.layers[2].name, "ln1");
    let x = values(2, 24, 3, 1.0);
    assert!(m.forward(x.view()).iter().all(|v| v.is_finite()));
}

#[test]
fn the_int8_encoder_block_runs_softmax_and_layer_norm_in_float_close_to_the_float_model() {
    use crate::qnet::{LayerKind, QLayer, QNetwork, QuantConfig, RefGemm};
    let model = Model::init(block_spec(BLOCK).unwrap(), 4).unwrap();
    let data = crate::data::Dataset::synthetic(64, 4, 5, 3, 5);
    let q = QNetwork::quantize(&model, &data, &QuantConfig::default()).unwrap();
    let kinds: Vec<LayerKind> = q.layers.iter().map(QLayer::kind).collect();
    for (k, n) in [
        (LayerKind::Transpose, 4),
        (LayerKind::Softmax, 1),
        (LayerKind::LayerNorm, 2),
        (LayerKind::MatMul, 2),
    ] {
        assert_eq!(
            kinds.iter().filter(|&&x| x == k).count(),
            n,
            "{k}: {kinds:?}"
        );
    }
    let Some(QLayer::Softmax { out_scale, .. }) =
        q.layers.iter().find(|l| l.kind() == LayerKind::Softmax)
    else {
        panic!("a softmax layer")
    };
    assert!(
        *out_scale > 0.0 && *out_scale <= 1.0 / 127.0 + 1e-9,
        "{out_scale}"
    );
    let x = data.batch_range(0, 32);
    let float = model.forward(x.view());
    let Some(QLayer::Gemm(fc)) = q.layers.last() else {
        panic!("the classifier is a product")
    };
    let codes = q.forward(&RefGemm, q.quantize_input(x.view()));
    let deq: Array2<f32> = codes.mapv(|c| f32::from(c) * fc.out_scale);
    let range = float.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let max = (&deq - &float).iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(max <= 0.08 * range, "max |Δ| = {max}, range {range}");
}
