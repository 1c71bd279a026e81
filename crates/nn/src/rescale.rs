//! The ReLU positive-scaling symmetry and a rescaling pass that uses it to balance weight ranges
//! before quantization.
//!
//! ReLU and LeakyReLU are positively homogeneous, `f(c·x) = c·f(x)` for `c > 0`, and max/average
//! pooling and `Flatten` act on each channel separately. So when a Dense or Conv2d layer (the
//! *producer*) reaches the next Dense or Conv2d layer (the *consumer*) through only such layers,
//! multiplying the producer's output neuron (or channel) `j` — row `j` of its weight and its bias
//! `b[j]` — by `c_j > 0` and dividing the consumer's input columns that read neuron `j` by `c_j`
//! leaves the network function unchanged (up to float rounding). The consumer columns of
//! producer channel `j` are one contiguous block of `fan_in / channels` columns: the `H·W`
//! features `j·H·W .. (j+1)·H·W` for a Dense consumer (channel-major flatten), or the
//! `k·k` taps of input channel `j` for a Conv2d consumer (`(c, ky, kx)` column order).
//!
//! Tanh, Sigmoid, HardTanh, ELU and SELU are not positively homogeneous and stop a pair.

use ndarray::s;
use serde::{Deserialize, Serialize};

use crate::model::Model;
use crate::network::{Activation, LayerSpec};

/// Why a rescaling cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RescaleError {
    /// The two layers are not a producer/consumer pair of [`rescale_pairs`].
    #[error(
        "layers {producer} -> {consumer}: not a rescalable pair (a Dense/Conv2d layer reaching the next \
         Dense/Conv2d layer through only ReLU, LeakyReLU, pooling or Flatten)"
    )]
    NotAPair {
        /// Producer layer index.
        producer: usize,
        /// Consumer layer index.
        consumer: usize,
    },
    /// The number of scales is not the producer's output neurons/channels.
    #[error("scales has {got} entries: layers[{producer}] has {expected} output neurons/channels")]
    ScalesLen {
        /// Producer layer index.
        producer: usize,
        /// Output neurons/channels of the producer.
        expected: usize,
        /// Scales given.
        got: usize,
    },
    /// A scale is zero, negative, NaN or infinite.
    #[error("scales[{index}] = {value}: must be finite and > 0")]
    BadScale {
        /// Neuron/channel index.
        index: usize,
        /// Scale given.
        value: f32,
    },
    /// The model's parameters do not fit its layers.
    #[error("layers[{layer}] ({name}): {rule}")]
    Params {
        /// Layer index.
        layer: usize,
        /// Layer name.
        name: String,
        /// What is wrong.
        rule: String,
    },
}

/// How [`rescale`] chooses the per-neuron scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum RescaleMethod {
    /// Geometric balance of weight ranges: `c_j = sqrt(out_j / in_j)`, where `in_j` is
    /// `max |W_producer[j, :]|` (the bias is excluded, as in the cross-layer equalization of
    /// Nagel et al., "Data-Free Quantization", ICCV 2019, §4.1; it is still scaled by `c_j`) and
    /// `out_j` is `max |w|` over the consumer columns of neuron `j`. Afterwards both equal
    /// `sqrt(in_j · out_j)`. Neurons with `in_j = 0` or `out_j = 0` keep `c_j = 1`.
    BalanceMaxAbs,
}

/// What a [`rescale`] run did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RescaleReport {
    /// Method used.
    pub method: RescaleMethod,
    /// Sweeps over all pairs (front to back).
    pub sweeps: usize,
    /// The (producer, consumer) layer pairs rescaled.
    pub pairs: Vec<(usize, usize)>,
    /// Neurons/channels left unscaled because their incoming or outgoing weights are all zero
    /// (or not finite), counted once per pair.
    pub skipped_neurons: usize,
    /// Per layer, max |w| of the weight before the pass (`None` for layers without parameters).
    pub max_abs_before: Vec<Option<f32>>,
    /// Per layer, max |w| of the weight after the pass.
    pub max_abs_after: Vec<Option<f32>>,
    /// Largest per-neuron ratio `max(in_j/out_j, out_j/in_j)` over all pairs before the pass
    /// (1 = perfectly balanced; skipped neurons excluded).
    pub imbalance_before: f64,
    /// The same ratio after the pass.
    pub imbalance_after: f64,
}

/// The (producer, consumer) layer pairs where positive per-neuron rescaling preserves the
/// function: a Dense/Conv2d producer followed, through zero or more ReLU, LeakyReLU,
/// MaxPool2d, AvgPool2d or Flatten layers, by a Dense/Conv2d consumer. In layer order.
pub fn rescale_pairs(model: &Model) -> Vec<(usize, usize)> {
    let layers = &model.layers;
    let mut pairs = Vec::new();
    if !crate::network::is_chain(layers) {
        return pairs;
    }
    for (p, _) in layers.iter().enumerate().filter(|(_, l)| l.has_product()) {
        for (c, m) in layers.iter().enumerate().skip(p + 1) {
            match &m.spec {
                LayerSpec::Dense { .. } | LayerSpec::Conv2d { .. } => {
                    pairs.push((p, c));
                    break;
                }
                LayerSpec::MaxPool2d { .. }
                | LayerSpec::AvgPool2d { .. }
                | LayerSpec::Flatten
                | LayerSpec::Act(Activation::ReLU | Activation::LeakyReLU { .. }) => {}
                LayerSpec::Act(_)
                | LayerSpec::BatchNorm2d { .. }
                | LayerSpec::GlobalAvgPool
                | LayerSpec::Dropout { .. }
                | LayerSpec::Add
                | LayerSpec::Concat
                | LayerSpec::MatMul { .. }
                | LayerSpec::Softmax { .. }
                | LayerSpec::LayerNorm { .. }
                | LayerSpec::Transpose { .. } => break,
            }
        }
    }
    pairs
}

/// Check a pair against the model; returns (producer output channels, consumer columns per channel).
fn pair_geometry(
    model: &Model,
    producer: usize,
    consumer: usize,
) -> Result<(usize, usize), RescaleError> {
    if !rescale_pairs(model).contains(&(producer, consumer)) {
        return Err(RescaleError::NotAPair { producer, consumer });
    }
    let bad = |layer: usize, rule: String| RescaleError::Params {
        layer,
        name: model.layers[layer].name.clone(),
        rule,
    };
    let channels = model.layers[producer].output.c;
    let Some(Some(pp)) = model.params.get(producer) else {
        return Err(bad(producer, "has no parameters".into()));
    };
    let Some(Some(cp)) = model.params.get(consumer) else {
        return Err(bad(consumer, "has no parameters".into()));
    };
    if pp.weight.nrows() != channels || pp.bias.as_ref().is_some_and(|b| b.len() != channels) {
        return Err(bad(
            producer,
            format!("weight/bias rows do not match its {channels} outputs"),
        ));
    }
    let fan_in: usize = model.layers[consumer]
        .weight_shape()
        .map_or(0, |s| s[1..].iter().product());
    if cp.weight.ncols() != fan_in || fan_in == 0 || !fan_in.is_multiple_of(channels) {
        return Err(bad(
            consumer,
            format!(
                "weight has {} columns; expected {fan_in}, a multiple of {channels}",
                cp.weight.ncols()
            ),
        ));
    }
    Ok((channels, fan_in / channels))
}

/// Scale output neuron/channel `j` of `producer` by `scales[j]` (weight row and bias) and divide
/// the matching input columns of `consumer` by it. The network function is unchanged up to float
/// rounding. Nothing is modified on error.
///
/// # Errors
/// [`RescaleError::NotAPair`] unless `(producer, consumer)` is in [`rescale_pairs`];
/// [`RescaleError::ScalesLen`] unless there is one scale per output neuron/channel;
/// [`RescaleError::BadScale`] for a scale that is not finite and > 0;
/// [`RescaleError::Params`] if the parameters do not fit the layers.
pub fn apply_scales(
    model: &mut Model,
    producer: usize,
    consumer: usize,
    scales: &[f32],
) -> Result<(), RescaleError> {
    let (channels, block) = pair_geometry(model, producer, consumer)?;
    if scales.len() != channels {
        return Err(RescaleError::ScalesLen {
            producer,
            expected: channels,
            got: scales.len(),
        });
    }
    if let Some((index, &value)) = scales
        .iter()
        .enumerate()
        .find(|(_, c)| !(c.is_finite() && **c > 0.0))
    {
        return Err(RescaleError::BadScale { index, value });
    }
    let (head, tail) = model.params.split_at_mut(consumer);
    let (Some(pp), Some(cp)) = (head[producer].as_mut(), tail[0].as_mut()) else {
        return Err(RescaleError::NotAPair { producer, consumer }); // excluded by pair_geometry
    };
    for (j, &cj) in scales.iter().enumerate() {
        pp.weight.row_mut(j).mapv_inplace(|w| w * cj);
        if let Some(b) = pp.bias.as_mut() {
            b[j] *= cj;
        }
        cp.weight
            .slice_mut(s![.., j * block..(j + 1) * block])
            .mapv_inplace(|w| w / cj);
    }
    Ok(())
}

/// The quantities [`RescaleMethod::BalanceMaxAbs`] balances, per producer output neuron/channel
/// `j`: `(in, out)` with `in[j] = max |W_producer[j, :]|` (bias excluded) and
/// `out[j] = max |w|` over the consumer columns that read neuron `j`.
///
/// # Errors
/// As [`apply_scales`] for the pair.
pub fn balance_ranges(
    model: &Model,
    producer: usize,
    consumer: usize,
) -> Result<(Vec<f32>, Vec<f32>), RescaleError> {
    let (channels, block) = pair_geometry(model, producer, consumer)?;
    let (Some(pp), Some(cp)) = (&model.params[producer], &model.params[consumer]) else {
        return Err(RescaleError::NotAPair { producer, consumer }); // excluded by pair_geometry
    };
    let max_abs = |it: ndarray::ArrayView2<f32>| it.fold(0.0f32, |m, w| m.max(w.abs()));
    let inc = (0..channels)
        .map(|j| max_abs(pp.weight.slice(s![j..j + 1, ..])))
        .collect();
    let out = (0..channels)
        .map(|j| max_abs(cp.weight.slice(s![.., j * block..(j + 1) * block])))
        .collect();
    Ok((inc, out))
}

/// Whether a neuron with ranges `(i, o)` can be balanced.
fn balanceable(i: f32, o: f32) -> bool {
    i > 0.0 && o > 0.0 && i.is_finite() && o.is_finite()
}

fn imbalance(model: &Model, pairs: &[(usize, usize)]) -> Result<f64, RescaleError> {
    let mut worst = 1.0f64;
    for &(p, c) in pairs {
        let (inc, out) = balance_ranges(model, p, c)?;
        for (&i, &o) in inc.iter().zip(&out).filter(|(i, o)| balanceable(**i, **o)) {
            let r = f64::from(i) / f64::from(o);
            worst = worst.max(r.max(1.0 / r));
        }
    }
    Ok(worst)
}

fn layer_max_abs(model: &Model) -> Vec<Option<f32>> {
    model
        .params
        .iter()
        .map(|p| {
            p.as_ref()
                .map(|p| p.weight.fold(0.0f32, |m, w| m.max(w.abs())))
        })
        .collect()
}

/// Rescale every pair of [`rescale_pairs`] with `method`, front to back, `sweeps` times (later
/// pairs change the outgoing ranges of earlier ones, so more sweeps balance a chain further; 0
/// sweeps changes nothing). The network function is unchanged up to float rounding.
///
/// # Errors
/// [`RescaleError::Params`] if the model's parameters do not fit its layers (nothing is
/// modified for the failing pair).
pub fn rescale(
    model: &mut Model,
    method: RescaleMethod,
    sweeps: usize,
) -> Result<RescaleReport, RescaleError> {
    let pairs = rescale_pairs(model);
    let max_abs_before = layer_max_abs(model);
    let imbalance_before = imbalance(model, &pairs)?;
    let mut skipped_neurons = 0;
    for sweep in 0..sweeps {
        for &(p, c) in &pairs {
            let (inc, out) = balance_ranges(model, p, c)?;
            let scales: Vec<f32> = match method {
                RescaleMethod::BalanceMaxAbs => inc
                    .iter()
                    .zip(&out)
                    .map(|(&i, &o)| {
                        let cj = (f64::from(o) / f64::from(i)).sqrt() as f32;
                        if balanceable(i, o) && cj.is_finite() && cj > 0.0 {
                            cj
                        } else {
                            skipped_neurons += usize::from(sweep == 0);
                            1.0
                        }
                    })
                    .collect(),
            };
            apply_scales(model, p, c, &scales)?;
        }
    }
    Ok(RescaleReport {
        method,
        sweeps,
        imbalance_after: imbalance(model, &pairs)?,
        max_abs_after: layer_max_abs(model),
        pairs,
        skipped_neurons,
        max_abs_before,
        imbalance_before,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{Hw, NetworkSpec, Shape};
    use ndarray::Array2;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Proptest cases: 64 unless `PROPTEST_CASES` says otherwise.
    fn cases() -> u32 {
        nacsim_core::testing::proptest_cases(64)
    }

    fn dense(out: usize) -> LayerSpec {
        LayerSpec::Dense {
            out,
            bias: true,
            name: String::new(),
        }
    }

    fn conv(out_channels: usize, kernel: usize, padding: usize) -> LayerSpec {
        LayerSpec::Conv2d {
            out_channels,
            kernel: Hw::square(kernel),
            stride: Hw::one(),
            padding: Hw::square(padding),
            groups: 1,
            bias: true,
            name: String::new(),
        }
    }

    /// A model with weights and biases uniform in [−1, 1) drawn from `seed`.
    fn model(input: Shape, classes: usize, layers: Vec<LayerSpec>, seed: u64) -> Model {
        let spec = NetworkSpec {
            schema_version: 1,
            name: "rescale-test".into(),
            input,
            classes,
            layers,
            nodes: Vec::new(),
            weights: String::new(),
            notes: String::new(),
            trained_for: Default::default(),
        };
        let mut m = Model::init(spec, seed).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for p in m.params.iter_mut().flatten() {
            p.weight.mapv_inplace(|_| rng.random_range(-1.0f32..1.0));
            if let Some(b) = p.bias.as_mut() {
                b.mapv_inplace(|_| rng.random_range(-1.0f32..1.0));
            }
        }
        m
    }

    fn mlp(n_in: usize, h1: usize, h2: usize, n_out: usize, seed: u64) -> Model {
        let layers = vec![
            dense(h1),
            LayerSpec::Act(Activation::ReLU),
            dense(h2),
            LayerSpec::Act(Activation::LeakyReLU { alpha: 0.1 }),
            dense(n_out),
        ];
        model(Shape::flat(n_in), n_out, layers, seed)
    }

    /// Conv–ReLU–MaxPool–Flatten–Dense, or (`deep`) Conv–LeakyReLU–AvgPool–Conv–ReLU–Flatten–Dense.
    fn cnn(c_in: usize, c1: usize, padding: usize, n_out: usize, deep: bool, seed: u64) -> Model {
        let layers = if deep {
            vec![
                conv(c1, 3, padding),
                LayerSpec::Act(Activation::LeakyReLU { alpha: 0.2 }),
                LayerSpec::AvgPool2d {
                    kernel: 2,
                    stride: 2,
                },
                conv(2, 2, 0),
                LayerSpec::Act(Activation::ReLU),
                LayerSpec::Flatten,
                dense(n_out),
            ]
        } else {
            vec![
                conv(c1, 3, padding),
                LayerSpec::Act(Activation::ReLU),
                LayerSpec::MaxPool2d {
                    kernel: 2,
                    stride: 2,
                },
                LayerSpec::Flatten,
                dense(n_out),
            ]
        };
        model(Shape::new(c_in, 6, 6), n_out, layers, seed)
    }

    fn inputs(m: &Model, batch: usize, seed: u64) -> Array2<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        Array2::from_shape_fn((batch, m.spec.input.len()), |_| {
            rng.random_range(-1.0f32..1.0)
        })
    }

    /// Outputs agree within 1e-5 absolute plus 1e-4 relative to the largest output of the sample.
    fn assert_same_function(a: &Array2<f32>, b: &Array2<f32>) -> Result<(), TestCaseError> {
        for (ra, rb) in a.rows().into_iter().zip(b.rows()) {
            let mag = ra.fold(0.0f32, |m, v| m.max(v.abs()));
            for (x, y) in ra.iter().zip(rb) {
                prop_assert!(
                    (x - y).abs() <= 1e-5 + 1e-4 * mag,
                    "{x} vs {y} (row max {mag})\n{a}\n{b}"
                );
            }
        }
        Ok(())
    }

    fn random_scales(m: &Model, seed: u64) -> Vec<((usize, usize), Vec<f32>)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xca1e);
        rescale_pairs(m)
            .into_iter()
            .map(|(p, c)| {
                let n = m.layers[p].output.c;
                (
                    (p, c),
                    (0..n)
                        .map(|_| rng.random_range(-2.0f32..2.0).exp2())
                        .collect(),
                )
            })
            .collect()
    }

    fn check_invariance(mut m: Model, seed: u64, sweeps: usize) -> Result<(), TestCaseError> {
        let x = inputs(&m, 3, seed);
        let y0 = m.forward(x.view());
        let mut r = m.clone();
        for ((p, c), s) in random_scales(&m, seed) {
            apply_scales(&mut r, p, c, &s).unwrap();
        }
        assert_same_function(&y0, &r.forward(x.view()))?;
        rescale(&mut m, RescaleMethod::BalanceMaxAbs, sweeps).unwrap();
        assert_same_function(&y0, &m.forward(x.view()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn rescaling_preserves_mlp_function(
            n_in in 1usize..=5, h1 in 1usize..=6, h2 in 1usize..=6, n_out in 1usize..=4,
            seed: u64, sweeps in 1usize..=3,
        ) {
            let m = mlp(n_in, h1, h2, n_out, seed);
            prop_assert_eq!(rescale_pairs(&m), vec![(0, 2), (2, 4)]);
            check_invariance(m, seed, sweeps)?;
        }

        #[test]
        fn rescaling_preserves_cnn_function(
            c_in in 1usize..=2, c1 in 1usize..=3, padding in 0usize..=1, n_out in 1usize..=3,
            deep: bool, seed: u64, sweeps in 1usize..=3,
        ) {
            let m = cnn(c_in, c1, padding, n_out, deep, seed);
            let want = if deep { vec![(0, 3), (3, 6)] } else { vec![(0, 4)] };
            prop_assert_eq!(rescale_pairs(&m), want);
            check_invariance(m, seed, sweeps)?;
        }
    }

    fn assert_balanced(m: &Model, p: usize, c: usize) {
        let (inc, out) = balance_ranges(m, p, c).unwrap();
        for (j, (i, o)) in inc.iter().zip(&out).enumerate() {
            assert!(
                (i - o).abs() <= 1e-5 * i.max(*o),
                "pair ({p}, {c}) neuron {j}: in {i} out {o}"
            );
        }
    }

    #[test]
    fn balance_max_abs_equalizes_ranges() {
        // One pair: balanced after a single sweep.
        let layers = vec![dense(7), LayerSpec::Act(Activation::ReLU), dense(3)];
        let mut m = model(Shape::flat(5), 3, layers, 11);
        let (inc, out) = balance_ranges(&m, 0, 2).unwrap();
        let r = rescale(&mut m, RescaleMethod::BalanceMaxAbs, 1).unwrap();
        assert_balanced(&m, 0, 2);
        let (inc2, _) = balance_ranges(&m, 0, 2).unwrap();
        for j in 0..7 {
            assert!((inc2[j] - (inc[j] * out[j]).sqrt()).abs() <= 1e-5 * inc2[j]);
        }
        assert_eq!((r.pairs.clone(), r.skipped_neurons), (vec![(0, 2)], 0));
        assert!(
            r.imbalance_before > 1.0 && r.imbalance_after - 1.0 < 1e-5,
            "{r:?}"
        );
        // Conv → Dense through MaxPool + Flatten: balanced per channel block.
        let mut m = cnn(2, 3, 1, 2, false, 5);
        rescale(&mut m, RescaleMethod::BalanceMaxAbs, 1).unwrap();
        assert_balanced(&m, 0, 4);
        // A chain: the last pair is balanced after one sweep; many sweeps balance all pairs.
        let mut m = mlp(4, 6, 5, 3, 3);
        let r1 = rescale(&mut m, RescaleMethod::BalanceMaxAbs, 1).unwrap();
        assert_balanced(&m, 2, 4);
        let r = rescale(&mut m, RescaleMethod::BalanceMaxAbs, 200).unwrap();
        assert!(
            r.imbalance_after < 1.0 + 1e-4 && r.imbalance_after <= r1.imbalance_after,
            "{r:?}"
        );
        assert_eq!(r.max_abs_after.len(), 5);
        assert!(r.max_abs_after[1].is_none() && r.max_abs_after[4].is_some());
    }

    #[test]
    fn zero_neurons_are_skipped() {
        let layers = vec![dense(4), LayerSpec::Act(Activation::ReLU), dense(2)];
        let mut m = model(Shape::flat(3), 2, layers, 1);
        let p = m.params[0].as_mut().unwrap();
        p.weight.row_mut(1).fill(0.0);
        m.params[2].as_mut().unwrap().weight.column_mut(3).fill(0.0);
        let before = m.params.clone();
        let r = rescale(&mut m, RescaleMethod::BalanceMaxAbs, 2).unwrap();
        assert_eq!(r.skipped_neurons, 2);
        assert!(
            m.params
                .iter()
                .flatten()
                .all(|p| p.weight.iter().all(|w| w.is_finite()))
        );
        let (a, b) = (before[0].as_ref().unwrap(), m.params[0].as_ref().unwrap());
        assert_eq!(
            (a.weight.row(3), a.bias.as_ref().unwrap()[1]),
            (b.weight.row(3), b.bias.as_ref().unwrap()[1])
        );
    }

    #[test]
    fn non_homogeneous_activations_give_no_pairs() {
        let acts = [
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::HardTanh {
                min: -1.0,
                max: 1.0,
            },
            Activation::Elu { alpha: 1.0 },
            Activation::Selu,
        ];
        for a in acts {
            let layers = vec![dense(4), LayerSpec::Act(a), dense(2)];
            let mut m = model(Shape::flat(3), 2, layers, 2);
            assert!(rescale_pairs(&m).is_empty(), "{a:?}");
            let before = m.params.clone();
            let r = rescale(&mut m, RescaleMethod::BalanceMaxAbs, 3).unwrap();
            assert!(r.pairs.is_empty() && m.params == before);
            assert_eq!(
                apply_scales(&mut m, 0, 2, &[1.0; 4]),
                Err(RescaleError::NotAPair {
                    producer: 0,
                    consumer: 2
                })
            );
        }
        // ReLU before a Tanh: only the pair whose path avoids the Tanh.
        let layers = vec![
            dense(4),
            LayerSpec::Act(Activation::ReLU),
            dense(4),
            LayerSpec::Act(Activation::Tanh),
            dense(2),
        ];
        assert_eq!(
            rescale_pairs(&model(Shape::flat(3), 2, layers, 2)),
            vec![(0, 2)]
        );
    }

    #[test]
    fn apply_scales_rejects_bad_input() {
        let mut m = mlp(3, 4, 2, 2, 9);
        let before = m.params.clone();
        assert_eq!(
            apply_scales(&mut m, 0, 2, &[1.0; 3]),
            Err(RescaleError::ScalesLen {
                producer: 0,
                expected: 4,
                got: 3
            })
        );
        for v in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let e = apply_scales(&mut m, 0, 2, &[1.0, 1.0, v, 1.0]).unwrap_err();
            assert!(matches!(e, RescaleError::BadScale { index: 2, .. }), "{e}");
        }
        assert!(matches!(
            apply_scales(&mut m, 0, 4, &[1.0; 4]),
            Err(RescaleError::NotAPair { .. })
        ));
        assert!(matches!(
            apply_scales(&mut m, 9, 10, &[]),
            Err(RescaleError::NotAPair { .. })
        ));
        assert_eq!(m.params, before);
        // Parameters that do not fit the layers are an error, not a panic.
        m.params[2] = None;
        assert!(matches!(
            rescale(&mut m, RescaleMethod::BalanceMaxAbs, 1),
            Err(RescaleError::Params { layer: 2, .. })
        ));
    }
}
