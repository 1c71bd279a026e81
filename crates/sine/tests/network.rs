//! The bit-exact sine network: the certified fast path equals the product-by-product path, the
//! MAC obeys the note's dot-product bound, results do not depend on the thread count, and bad
//! configs and unsupported models give errors naming the field and what would work.

use std::path::Path;

use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_nn::network::NetworkSpec;
use nacsim_sine::{CodeRounding, InputEncoding, ProductKind, RectifiedSine};
use nacsim_sine::{DenseShape, SineNetwork, SineNetworkConfig};

/// A `784-h1-h2-10` RectSine MLP with weights `sin(3·w_init)` (larger than the init, so that the
/// hidden angles spread over the whole clamp range) and biases `0.3·b_init`.
fn sine_mlp(h1: usize, h2: usize, seed: u64) -> Model {
    let spec: NetworkSpec = ron::from_str(&format!(
        "(schema_version: 1, name: \"t\", input: (c: 1, h: 28, w: 28), classes: 10,
          layers: [Flatten, Dense(out: {h1}), Act(RectSine), Dense(out: {h2}), Act(RectSine),
                   Dense(out: 10)])"
    ))
    .unwrap();
    let mut m = Model::init(spec, seed).unwrap();
    for p in m.params.iter_mut().flatten() {
        p.weight.mapv_inplace(|w| (3.0 * w).sin());
        if let Some(b) = &mut p.bias {
            b.mapv_inplace(|v| 0.3 * v);
        }
    }
    m
}

fn committed_model() -> Model {
    Model::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/networks/fmnist-mlp-sine.ron"),
    )
    .expect("models/networks/fmnist-mlp-sine.ron")
}

fn configs() -> Vec<SineNetworkConfig> {
    let v = |f, ff| SineNetworkConfig::versine(f, ff, 1.0);
    vec![
        v(8, 16), // F − f = 8: nearly every output falls back to the exact path
        v(10, 24),
        v(12, 24),
        SineNetworkConfig {
            rounding: CodeRounding::HalfUp,
            ..v(10, 20)
        },
        SineNetworkConfig {
            rounding: CodeRounding::Floor,
            ..v(10, 24)
        },
        SineNetworkConfig {
            activation: RectifiedSine::Unclamped,
            angle_max_rad: 3.0,
            ..v(10, 24)
        },
        SineNetworkConfig {
            activation: RectifiedSine::Periodic,
            angle_max_rad: 4.0,
            ..v(8, 22)
        },
        SineNetworkConfig {
            input: InputEncoding::Scale { shift: 1 },
            ..v(10, 24)
        },
        SineNetworkConfig {
            product: ProductKind::QuarterSquare,
            ..v(10, 24)
        },
    ]
}

#[test]
fn fast_path_equals_product_by_product_path() {
    let data = Dataset::bundled_sample().limit(300);
    for (mi, model) in [sine_mlp(48, 24, 7), committed_model()].iter().enumerate() {
        for cfg in configs() {
            let net = SineNetwork::new(&cfg, model).unwrap();
            assert!(net.has_fast_path());
            let fast = net.predict_all(&data).unwrap();
            for (i, &p) in fast.iter().enumerate() {
                assert_eq!(
                    p,
                    net.predict(data.image(i)).unwrap(),
                    "model {mi}, image {i}, {cfg:?}"
                );
            }
        }
    }
}

#[test]
fn units_without_fast_path_run_product_by_product() {
    let data = Dataset::bundled_sample().limit(40);
    let model = sine_mlp(16, 8, 3);
    let cfg = SineNetworkConfig {
        product: ProductKind::CosLiteral,
        ..SineNetworkConfig::versine(8, 16, 1.25)
    };
    let net = SineNetwork::new(&cfg, &model).unwrap();
    assert!(!net.has_fast_path());
    let preds = net.predict_all(&data).unwrap();
    for (i, &p) in preds.iter().enumerate() {
        assert_eq!(p, net.predict(data.image(i)).unwrap());
    }
}

#[test]
fn mac_is_within_the_dot_product_bound_of_sine_in_float() {
    // One Dense layer: logits are raw accumulators, |acc·2^-F − (b + Σ sin a sin b)| ≤
    // nnz · 2^-F (note §5.2 item 9 against sin a sin b) + ½ LSB of bias rounding.
    let spec: NetworkSpec = ron::from_str(
        "(schema_version: 1, name: \"one\", input: (c: 1, h: 28, w: 28), classes: 10,
          layers: [Flatten, Dense(out: 10)])",
    )
    .unwrap();
    let mut model = Model::init(spec, 11).unwrap();
    for p in model.params.iter_mut().flatten() {
        p.weight.mapv_inplace(|w| (20.0 * w).sin());
    }
    let data = Dataset::bundled_sample().limit(20);
    for (f, ff) in [(8u32, 16u32), (10, 24), (12, 28)] {
        let cfg = SineNetworkConfig::versine(f, ff, 1.0);
        let net = SineNetwork::new(&cfg, &model).unwrap();
        let q = (-(f as f64)).exp2();
        let lsb = (-(ff as f64)).exp2();
        let w = net.weight_codes(0);
        let table = cfg.input.table(f);
        let p = model.params[1].as_ref().unwrap();
        for i in 0..data.len() {
            let img = data.image(i);
            let logits = net.logits(img).unwrap();
            let nnz = img.iter().filter(|&&v| v != 0).count() as f64;
            for (o, &acc) in logits.iter().enumerate() {
                let bias = f64::from(p.bias.as_ref().unwrap()[o]);
                let want: f64 = bias
                    + img
                        .iter()
                        .enumerate()
                        .map(|(k, &px)| {
                            (w[o * 784 + k] as f64 * q).sin()
                                * (table[px as usize] as f64 * q).sin()
                        })
                        .sum::<f64>();
                let err = (acc as f64 * lsb - want).abs();
                assert!(
                    err <= (nnz + 0.5) * lsb * (1.0 + 1e-9),
                    "f={f} F={ff} image {i} out {o}: error {err:e} > {}",
                    (nnz + 0.5) * lsb
                );
            }
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let data = Dataset::bundled_sample().limit(600);
    let model = sine_mlp(32, 16, 5);
    let net = SineNetwork::new(&SineNetworkConfig::versine(10, 24, 1.0), &model).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| net.predict_all(&data).unwrap());
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
        .install(|| net.predict_all(&data).unwrap());
    assert_eq!(one, three);
}

#[test]
fn layer_shapes_list_the_dense_layers() {
    let net = SineNetwork::new(
        &SineNetworkConfig::versine(8, 16, 1.0),
        &sine_mlp(32, 16, 1),
    )
    .unwrap();
    let shapes: Vec<(usize, usize, usize)> = net
        .layer_shapes()
        .iter()
        .map(
            |&DenseShape {
                 rows, fan_in, out, ..
             }| (rows, fan_in, out),
        )
        .collect();
    assert_eq!(shapes, vec![(1, 784, 32), (1, 32, 16), (1, 16, 10)]);
}

fn err(cfg: SineNetworkConfig, model: &Model) -> String {
    SineNetwork::new(&cfg, model).unwrap_err().to_string()
}

#[test]
fn bad_configs_name_the_field_and_the_minimum() {
    let model = sine_mlp(16, 8, 2);
    let base = SineNetworkConfig::versine(10, 24, 1.0);
    // F < f.
    let e = err(
        SineNetworkConfig {
            out_frac_bits: 8,
            ..base
        },
        &model,
    );
    assert!(
        e.starts_with("sine.out_frac_bits = 8: must be at least frac_bits = 10"),
        "{e}"
    );
    // CORDIC with 0 iterations.
    let e = err(
        SineNetworkConfig {
            product: ProductKind::Cordic {
                iterations: 0,
                guard_bits: 8,
            },
            ..base
        },
        &model,
    );
    assert_eq!(e, "sine.product.iterations = 0: must be at least 1");
    // A table that cannot cover the weights: the largest weight angle of this model is
    // asin(max |sin(3w)|); the message names it as the minimum.
    let max_angle = model
        .params
        .iter()
        .flatten()
        .flat_map(|p| p.weight.iter())
        .fold(0f64, |m, &s| m.max(f64::from(s).abs().asin()));
    let e = err(
        SineNetworkConfig {
            weight_max_rad: 0.05,
            ..base
        },
        &model,
    );
    assert!(
        e.starts_with("sine.weight_max_rad = 0.05: the table cannot cover"),
        "{e}"
    );
    let min: f64 = e
        .rsplit("needs at least ")
        .next()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (min - max_angle).abs() <= 0.5 / 1024.0 + 1e-6,
        "{e} vs {max_angle}"
    );
    // ... and that minimum works.
    SineNetwork::new(
        &SineNetworkConfig {
            weight_max_rad: min,
            ..base
        },
        &model,
    )
    .unwrap();
    // Activation angles need π/2 for the rectified sine (A).
    let e = err(
        SineNetworkConfig {
            angle_max_rad: 1.0,
            ..base
        },
        &model,
    );
    assert!(
        e.starts_with("sine.angle_max_rad = 1: the table cannot cover")
            && e.ends_with("needs at least 1.570312 (= 1608 · 2^-10)"),
        "{e}"
    );
    // Accumulator too narrow.
    let e = err(
        SineNetworkConfig {
            accumulator_bits: 20,
            ..base
        },
        &model,
    );
    assert!(
        e.starts_with("sine.accumulator_bits = 20: layer fc1 (fan_in 784)")
            && e.contains("needs at least 3"),
        "{e}"
    );
    // The same checks through the config validator (no model).
    use nacsim_core::config::Validate;
    let v = SineNetworkConfig {
        frac_bits: 0,
        ..base
    }
    .validate()
    .unwrap_err();
    assert_eq!(v[0].field, "frac_bits");
}

#[test]
fn unsupported_models_are_refused_with_the_layer_and_the_reason() {
    let relu: NetworkSpec = ron::from_str(
        "(schema_version: 1, name: \"r\", input: (c: 1, h: 28, w: 28), classes: 10,
          layers: [Flatten, Dense(out: 8), Act(ReLU), Dense(out: 10)])",
    )
    .unwrap();
    let e = err(
        SineNetworkConfig::versine(8, 16, 1.0),
        &Model::init(relu, 1).unwrap(),
    );
    assert!(e.starts_with("sine: layer relu1: activation ReLU"), "{e}");
    let conv: NetworkSpec = ron::from_str(
        "(schema_version: 1, name: \"c\", input: (c: 1, h: 28, w: 28), classes: 10,
          layers: [Conv2d(out_channels: 2, kernel: 3), Act(RectSine), Flatten, Dense(out: 10)])",
    )
    .unwrap();
    let e = err(
        SineNetworkConfig::versine(8, 16, 1.0),
        &Model::init(conv, 1).unwrap(),
    );
    assert!(
        e.starts_with("sine: layer conv1: Conv2d") && e.contains("Dense layers only"),
        "{e}"
    );
    // A float model's weights are not sines.
    let plain: NetworkSpec = ron::from_str(
        "(schema_version: 1, name: \"p\", input: (c: 1, h: 28, w: 28), classes: 10,
          layers: [Flatten, Dense(out: 10)])",
    )
    .unwrap();
    let mut m = Model::init(plain, 1).unwrap();
    m.params[1].as_mut().unwrap().weight[[0, 0]] = 1.5;
    let e = err(SineNetworkConfig::versine(8, 16, 1.0), &m);
    assert!(e.contains("is not a sine"), "{e}");
}

#[test]
fn int8_quantization_accepts_the_rectified_sine() {
    // The scheduler's int8 path quantizes Act(RectSine) into an element-wise lookup table.
    use nacsim_nn::qnet::{QNetwork, QuantConfig, RefGemm};
    let model = committed_model();
    let data = Dataset::bundled_sample().limit(500);
    let q = QNetwork::quantize(&model, &data, &QuantConfig::default()).unwrap();
    let acc = q.accuracy(&RefGemm, &data, 100);
    let float = nacsim_nn::train::accuracy(
        &nacsim_nn::train::FloatKernel,
        &model.layers,
        &model.params,
        &data,
        100,
    );
    assert!((acc - float).abs() < 0.03, "int8 {acc} vs float {float}");
}

#[test]
fn issue_7_f10_table_datapath_stays_within_half_a_point_of_sine_in_float() {
    // See: issue #7 acceptance (bit-exact f = 10 table datapath within 0.5 points). On the
    // bundled sample; the full test set is in docs/engines/sine.md.
    let model = committed_model();
    let data = Dataset::bundled_sample();
    let float = nacsim_nn::train::accuracy(
        &nacsim_nn::train::FloatKernel,
        &model.layers,
        &model.params,
        &data,
        500,
    );
    let net = SineNetwork::new(&SineNetworkConfig::versine(10, 24, 1.0), &model).unwrap();
    let exact = net.accuracy(&data).unwrap();
    assert!(
        (exact - float).abs() <= 0.005,
        "bit-exact {exact} vs sine-in-float {float}"
    );
    assert!(float > 0.8, "the committed model is trained: {float}");
}
