//! Bit-exact fixed-point inference of a sine-trained Dense network (note §1.2, §1.5, §2.1).
//!
//! # Datapath
//!
//! A network `[Flatten], Dense, Act(RectSine), …, Dense` (as trained by
//! [`SineKernel`](crate::SineKernel), whose saved weights are `sin(W)`) runs as:
//!
//! 1. **Input.** Each 8-bit pixel `p` becomes the angle code of [`InputEncoding`](crate::InputEncoding) (default
//!    `round(asin(p/255) · 2^f)`, a 256-entry table).
//! 2. **Weights.** Each saved weight `s = sin(w)` becomes the angle code
//!    `round_half_even(asin(s) · 2^f)` (any angle with the same sine gives the same products).
//!    Biases become accumulator codes `round_half_even(b · 2^F)`.
//! 3. **MAC.** `acc_o = bias_o + Σ_k P(w_ok, x_k)` in the accumulator (`F` fraction bits), with
//!    `P` from the configured [`ProductKind`](crate::ProductKind) unit (`G[|i+j|] − G[|i−j|]` for the versine table).
//!    Zero angles are skipped: `P(i, 0) = 0` exactly for every unit, since `|i+0| = |i−0|`.
//! 4. **Between layers.** `acc` is requantised to an angle code at `f` bits with the configured
//!    [`CodeRounding`] ([`CodeRounding::shift_right`] by `F − f`), and the rectified sine is applied to the
//!    code ([`RectifiedSine::angle_code`]: for (A) a clamp to `[0, round(π/2 · 2^f)]`). The next
//!    layer consumes this angle `ẑ` (its input is exactly `sin ẑ`), never `sin ẑ` itself. Codes of
//!    the unbounded variants (B), (C) saturate at `angle_max_rad`.
//! 5. **Output.** The last layer's accumulators are the logits; the prediction is their argmax
//!    (first on ties).
//!
//! # Speed
//!
//! For the versine and quarter-square units the product is a bilinear form plus a bounded
//! table error (`Bilinear`, `network/fast.rs`), and [`SineNetwork::predict_all`] certifies
//! every output in up to three levels on a block of images:
//!
//! 1. an **f32 product** of the operand features (`network/gemm.rs`: it skips the inputs that
//!    are zero in all four images of a group, sums in `√m` blocks, and proves
//!    `|ŝ − Σ ũṽ| ≤ rel_bound(m) · ‖ũ_o‖₂ ‖ṽ‖₂`) pins every accumulator to an interval; an
//!    output whose requantised, rectified code (or, for the logits, the argmax) is the same at
//!    both ends takes it;
//! 2. every other output is recomputed as an **f64 dot product** over the image's non-zero
//!    inputs, with the much tighter f64 bound;
//! 3. what is still open is computed **product by product** over the non-zero inputs.
//!
//! Each level's bound covers the table error of the non-zero products, so the result equals
//! the product-by-product path exactly, on the AVX-512 kernels and on the portable ones
//! (tested against each other and against the exact path). Other units call
//! [`SineProduct::product`] for every product. Images run in parallel over fixed blocks; each
//! image's result does not depend on the others, so accuracy is identical for any thread
//! count.

use serde::{Deserialize, Serialize};

use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_nn::network::{Activation, LayerSpec};
use rayon::prelude::*;

use crate::activation::RectifiedSine;
use crate::config::ProductConfig;
use crate::config::SineNetworkConfig;
use crate::error::Error;
use crate::format::{CodeRounding, ProductFormat, half_pi_code};
use crate::product::{SineProduct, SineUnit};

mod fast;
mod gemm;

use fast::{Bilinear, FastLayer};

/// Shape of one Dense layer of a [`SineNetwork`], for the scheduler's cost model
/// ([`dense_layer`](crate::timing::dense_layer)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenseShape {
    /// Layer name in the model (`fc1`, …).
    pub name: String,
    /// Input vectors per image (1 for a Dense layer).
    pub rows: usize,
    /// Inputs per output (dot-product length).
    pub fan_in: usize,
    /// Outputs.
    pub out: usize,
}

/// One Dense layer in codes.
#[derive(Debug, Clone)]
struct SineLayer {
    name: String,
    fan_in: usize,
    out: usize,
    /// Weight angle codes, output-major: `w[o · fan_in + k]`.
    w: Vec<i32>,
    /// Bias codes at `F` fraction bits (0 without a bias).
    bias: Vec<i64>,
    /// Fast path: the weight features, packed for each level of the certification.
    fast: Option<FastLayer>,
    /// `bias` as f64 (exact: `|bias| < 2^53`).
    bias_f64: Vec<f64>,
}

/// A bit-exact sine network (see the module docs).
#[derive(Debug, Clone)]
pub struct SineNetwork {
    config: SineNetworkConfig,
    format: ProductFormat,
    unit: SineUnit,
    /// The float-GEMM fast path (versine and quarter-square units), else `None`.
    fast: Option<Bilinear>,
    /// `T` of a `T[|i+j|] − T[|i−j|]` unit (versine, quarter-square), for direct lookups.
    diff_table: Option<Vec<i64>>,
    /// Pixel → angle code.
    input_codes: Vec<i32>,
    /// `round(π/2 · 2^f)`, the clamp of the rectified sine (A).
    half_pi: i32,
    layers: Vec<SineLayer>,
    input_len: usize,
    classes: usize,
}

impl SineNetwork {
    /// Builds the network for `model` (weights `sin(W)` as saved by `nacsim train` with the
    /// `Sine` kernel).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a broken config rule, including a weight range the table cannot
    /// cover (`sine.weight_max_rad = …: … needs at least …`) and an accumulator too narrow
    /// (`sine.accumulator_bits = …: … needs at least …`); [`Error::Unsupported`] for a model it
    /// cannot run (Conv2d, pooling, activations other than `RectSine` between Dense layers, a
    /// weight with `|s| > 1`, which is not a sine).
    pub fn new(config: &SineNetworkConfig, model: &Model) -> Result<Self, Error> {
        let format = config.check()?;
        let unit = ProductConfig {
            format,
            kind: config.product,
        }
        .build()?;
        let unsupported = |layer: &str, reason: String| Error::Unsupported {
            layer: layer.to_owned(),
            reason,
        };
        // Layer pattern: [Flatten]* (Dense Act(RectSine))* Dense.
        let mut dense: Vec<(usize, bool)> = Vec::new(); // (model layer index, activated)
        for (i, l) in model.layers.iter().enumerate() {
            match &l.spec {
                LayerSpec::Flatten => {
                    if !dense.is_empty() {
                        return Err(unsupported(
                            &l.name,
                            "Flatten is only supported before the first Dense layer".into(),
                        ));
                    }
                }
                LayerSpec::Dense { .. } => {
                    if let Some(&(_, false)) = dense.last() {
                        return Err(unsupported(
                            &l.name,
                            "a Dense layer must follow Act(RectSine): the sine MAC consumes angles"
                                .into(),
                        ));
                    }
                    dense.push((i, false));
                }
                LayerSpec::Act(Activation::RectSine) => match dense.last_mut() {
                    Some((_, act @ false)) => *act = true,
                    _ => {
                        return Err(unsupported(
                            &l.name,
                            "Act(RectSine) must follow a Dense layer".into(),
                        ));
                    }
                },
                LayerSpec::Act(a) => {
                    return Err(unsupported(
                        &l.name,
                        format!(
                            "activation {a:?}: the sine datapath needs Act(RectSine) between Dense layers"
                        ),
                    ));
                }
                other => {
                    return Err(unsupported(
                        &l.name,
                        format!("{other:?}: the sine network runs Dense layers only"),
                    ));
                }
            }
        }
        match dense.last() {
            None => {
                return Err(unsupported(&model.spec.name, "has no Dense layer".into()));
            }
            Some(&(i, true)) => {
                return Err(unsupported(
                    &model.layers[i].name,
                    "the last Dense layer gives the logits and must not be followed by an activation"
                        .into(),
                ));
            }
            _ => {}
        }

        let scale_f = (format.frac_bits as f64).exp2();
        let scale_ff = (format.out_frac_bits as f64).exp2();
        let p_bound = config.product_bound(&format);
        let mut layers = Vec::with_capacity(dense.len());
        // (layer, angle, code) of the largest weight angle of the whole model.
        let mut worst: (&str, f64, u32) = ("", 0.0, 0);
        for &(i, _) in &dense {
            let l = &model.layers[i];
            let p = model.params[i]
                .as_ref()
                .ok_or_else(|| unsupported(&l.name, "has no parameters".into()))?;
            let (out, fan_in) = p.weight.dim();
            let mut w = vec![0i32; fan_in * out];
            for ((o, k), &s) in p.weight.indexed_iter() {
                let s = f64::from(s);
                if s.is_nan() || s.abs() > 1.0 {
                    return Err(unsupported(
                        &l.name,
                        format!(
                            "weight [{o}, {k}] = {s} is not a sine (|s| > 1): the model was not \
                             trained with the Sine kernel, whose saved weights are sin(W)"
                        ),
                    ));
                }
                let angle = s.asin();
                let code = (angle * scale_f).round_ties_even();
                let mag = code.abs() as u32;
                if mag > worst.2 {
                    worst = (l.name.as_str(), angle, mag);
                }
                w[o * fan_in + k] = code as i32;
            }
            let bias: Vec<i64> = match &p.bias {
                Some(b) => b
                    .iter()
                    .map(|&v| (f64::from(v) * scale_ff).round_ties_even() as i64)
                    .collect(),
                None => vec![0; out],
            };
            let max_bias = bias.iter().map(|b| b.unsigned_abs()).max().unwrap_or(0) as f64;
            let acc_max = fan_in as f64 * p_bound + max_bias;
            let need = 1 + (acc_max + 1.0).log2().ceil() as u32;
            if need > config.accumulator_bits {
                return Err(Error::config(
                    "accumulator_bits",
                    config.accumulator_bits,
                    format!(
                        "layer {} (fan_in {fan_in}) can reach |acc| = {acc_max:.3e} product LSBs; \
                         needs at least {need}",
                        l.name
                    ),
                ));
            }
            layers.push(SineLayer {
                name: l.name.clone(),
                fan_in,
                out,
                w,
                bias_f64: bias.iter().map(|&b| b as f64).collect(),
                bias,
                fast: None,
            });
        }
        if worst.2 > format.max_abs_a {
            return Err(Error::config(
                "weight_max_rad",
                config.weight_max_rad,
                format!(
                    "the table cannot cover the largest weight angle, {:.6} rad in layer {} \
                     (code {}, table range {} codes); needs at least {:.6} (= {} · 2^-{})",
                    worst.1.abs(),
                    worst.0,
                    worst.2,
                    format.max_abs_a,
                    worst.2 as f64 / scale_f,
                    worst.2,
                    format.frac_bits
                ),
            ));
        }
        let input_len = layers[0].fan_in;
        if input_len != model.spec.input.len() {
            return Err(unsupported(
                &layers[0].name,
                format!(
                    "fan_in {input_len} differs from the input size {}",
                    model.spec.input.len()
                ),
            ));
        }
        let max_b = format.max_abs_b as i32;
        let input_codes = config
            .input
            .table(format.frac_bits)
            .into_iter()
            .map(|c| c.clamp(-max_b, max_b))
            .collect();
        let fast = Bilinear::for_unit(&unit);
        let diff_table = match &unit {
            SineUnit::Versine(t) => Some(t.entries().to_vec()),
            SineUnit::QuarterSquare(t) => Some(t.entries().to_vec()),
            _ => None,
        };
        if let Some(fb) = &fast {
            for l in &mut layers {
                l.fast = Some(FastLayer::new(fb, &l.w, l.fan_in, l.out));
            }
        }
        Ok(SineNetwork {
            config: *config,
            format,
            unit,
            fast,
            diff_table,
            input_codes,
            half_pi: half_pi_code(format.frac_bits) as i32,
            layers,
            input_len,
            classes: model.spec.classes,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SineNetworkConfig {
        &self.config
    }

    /// The product format (`f`, `F`, table ranges).
    pub fn format(&self) -> &ProductFormat {
        &self.format
    }

    /// The product unit.
    pub fn unit(&self) -> &SineUnit {
        &self.unit
    }

    /// Number of classes (logits).
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Shapes of the Dense layers in order, for the timing model
    /// ([`dense_layer`](crate::timing::dense_layer)).
    pub fn layer_shapes(&self) -> Vec<DenseShape> {
        self.layers
            .iter()
            .map(|l| DenseShape {
                name: l.name.clone(),
                rows: 1,
                fan_in: l.fan_in,
                out: l.out,
            })
            .collect()
    }

    /// Weight angle codes of Dense layer `layer` (`[out][fan_in]`, row-major), for tests and traces.
    ///
    /// # Panics
    ///
    /// If `layer` is not below the number of Dense layers.
    pub fn weight_codes(&self, layer: usize) -> &[i32] {
        &self.layers[layer].w
    }

    /// Whether [`SineNetwork::predict_all`] uses the certified float fast path (versine and
    /// quarter-square units).
    pub fn has_fast_path(&self) -> bool {
        self.fast.is_some()
    }

    fn check_len(&self, n: usize) -> Result<(), Error> {
        if n != self.input_len {
            return Err(Error::config(
                "image",
                n,
                format!("must have {} pixels", self.input_len),
            ));
        }
        Ok(())
    }

    /// The logits (accumulator codes at `F` fraction bits) of one image of 8-bit pixels,
    /// computed product by product.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] (field `image`) if the image length differs from the network input.
    pub fn logits(&self, image: &[u8]) -> Result<Vec<i64>, Error> {
        self.check_len(image.len())?;
        let mut x: Vec<i32> = image
            .iter()
            .map(|&p| self.input_codes[p as usize])
            .collect();
        let last = self.layers.len() - 1;
        let mut acc = Vec::new();
        for (li, l) in self.layers.iter().enumerate() {
            acc = (0..l.out).map(|o| self.exact_acc(l, o, &x)).collect();
            if li < last {
                x = acc.iter().map(|&a| self.activate(a)).collect();
            }
        }
        Ok(acc)
    }

    /// The predicted class of one image (argmax of [`SineNetwork::logits`], first on ties).
    ///
    /// # Errors
    ///
    /// As [`SineNetwork::logits`].
    pub fn predict(&self, image: &[u8]) -> Result<usize, Error> {
        Ok(argmax(&self.logits(image)?))
    }

    /// Predicted classes of every image of `data` (equal to [`SineNetwork::predict`] of each),
    /// in parallel over fixed blocks of images.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] (field `image`) if the images do not have the network's input size.
    pub fn predict_all(&self, data: &Dataset) -> Result<Vec<usize>, Error> {
        self.predict_all_with(data, true)
    }

    /// [`SineNetwork::predict_all`]; `simd: false` runs the fast path's portable f32 kernel
    /// even where AVX-512 is present (tests compare both).
    fn predict_all_with(&self, data: &Dataset, simd: bool) -> Result<Vec<usize>, Error> {
        self.check_len(data.image_len())?;
        let mut out = vec![0usize; data.len()];
        out.par_chunks_mut(IMAGES_PER_TASK)
            .enumerate()
            .for_each(|(b, preds)| {
                let start = b * IMAGES_PER_TASK;
                let images: Vec<&[u8]> = (start..start + preds.len())
                    .map(|i| data.image(i))
                    .collect();
                match &self.fast {
                    Some(fb) => self.predict_block_fast(fb, &images, preds, simd),
                    None => {
                        for (p, img) in preds.iter_mut().zip(&images) {
                            *p = self.predict(img).expect("length checked");
                        }
                    }
                }
            });
        Ok(out)
    }

    /// Top-1 accuracy (fraction) on `data`; 0 for an empty set.
    ///
    /// # Errors
    ///
    /// As [`SineNetwork::predict_all`].
    pub fn accuracy(&self, data: &Dataset) -> Result<f64, Error> {
        if data.is_empty() {
            return Ok(0.0);
        }
        let preds = self.predict_all(data)?;
        let correct = preds
            .iter()
            .enumerate()
            .filter(|&(i, &p)| p == data.label(i))
            .count();
        Ok(correct as f64 / data.len() as f64)
    }

    /// `bias_o + Σ_k P(w_ok, x_k)` product by product (zero inputs skipped: `P(i, 0) = 0`).
    fn exact_acc(&self, l: &SineLayer, o: usize, x: &[i32]) -> i64 {
        let w = &l.w[o * l.fan_in..(o + 1) * l.fan_in];
        let mut acc = l.bias[o];
        match &self.diff_table {
            // The same integers as `unit.product`, without the per-product dispatch.
            Some(t) => {
                for (&i, &j) in w.iter().zip(x) {
                    if j != 0 {
                        acc +=
                            t[(i + j).unsigned_abs() as usize] - t[(i - j).unsigned_abs() as usize];
                    }
                }
            }
            None => {
                for (&i, &j) in w.iter().zip(x) {
                    if j != 0 {
                        acc += self.unit.product(i, j);
                    }
                }
            }
        }
        acc
    }

    /// Requantise an accumulator to an angle code and apply the rectified sine.
    fn activate(&self, acc: i64) -> i32 {
        let shift = self.format.out_frac_bits - self.format.frac_bits;
        let c = self
            .config
            .rounding
            .shift_right(acc, shift)
            .clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        self.clamp_code(c)
    }

    /// The rectified sine of a requantised code ([`RectifiedSine::angle_code`]), saturated to
    /// the table's angle range.
    #[inline]
    fn clamp_code(&self, c: i32) -> i32 {
        let max_b = self.format.max_abs_b as i32;
        match self.config.activation {
            RectifiedSine::Clamped => c.clamp(0, self.half_pi),
            RectifiedSine::Unclamped => c.max(0),
            RectifiedSine::Periodic => self.config.activation.angle_code(c, self.format.frac_bits),
        }
        .clamp(-max_b, max_b)
    }
}

/// Images per parallel task of [`SineNetwork::predict_all`] (fixed, so the partition does not
/// depend on the thread count; each image's result is independent of the others anyway).
const IMAGES_PER_TASK: usize = 250;

/// `1.5 · 2^52`: adding and subtracting it rounds an f64 of magnitude below 2^51 to an integer,
/// half to even, in the default rounding mode (no libm call, vectorisable).
const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;

/// `rounding` applied to a real `t` (`|t| < 2^51`), equal to [`CodeRounding::round`] and, for
/// `t = v · 2^-s` with an integer `v`, to [`CodeRounding::shift_right`].
#[inline(always)]
fn round_real(rounding: CodeRounding, t: f64) -> f64 {
    let floor = |x: f64| {
        let r = (x + ROUND_MAGIC) - ROUND_MAGIC;
        if r > x { r - 1.0 } else { r }
    };
    match rounding {
        CodeRounding::HalfEven => (t + ROUND_MAGIC) - ROUND_MAGIC,
        CodeRounding::HalfUp => floor(t + 0.5),
        CodeRounding::Floor => floor(t),
    }
}

/// Index of the largest value (the first one on ties).
fn argmax(v: &[i64]) -> usize {
    let mut bi = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[bi] {
            bi = i;
        }
    }
    bi
}

/// Index of the largest value (the first one on ties).
fn argmax_f64(v: &[f64]) -> usize {
    let mut bi = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[bi] {
            bi = i;
        }
    }
    bi
}
#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX-512 and the portable kernels (and levels 2, 3 behind them) give the exact
    /// path's predictions on the committed network, for both fast units, a format where
    /// nearly every output falls back (f = 8, F = 16), another rounding and the periodic
    /// activation.
    #[test]
    fn both_kernels_give_the_exact_predictions() {
        let model = Model::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../models/networks/fmnist-mlp-sine.ron"),
        )
        .expect("committed sine model");
        let data = Dataset::bundled_sample().limit(120);
        let v = |f, ff| SineNetworkConfig::versine(f, ff, 1.0);
        let configs = [
            v(10, 24),
            v(8, 16),
            SineNetworkConfig {
                product: crate::ProductKind::QuarterSquare,
                ..v(10, 24)
            },
            SineNetworkConfig {
                rounding: CodeRounding::HalfUp,
                ..v(10, 20)
            },
            SineNetworkConfig {
                activation: RectifiedSine::Periodic,
                angle_max_rad: 4.0,
                ..v(8, 22)
            },
        ];
        for cfg in configs {
            let net = SineNetwork::new(&cfg, &model).expect("builds");
            let exact: Vec<usize> = (0..data.len())
                .map(|i| net.predict(data.image(i)).expect("size"))
                .collect();
            for simd in [true, false] {
                assert_eq!(
                    net.predict_all_with(&data, simd).expect("size"),
                    exact,
                    "{cfg:?} simd {simd}"
                );
            }
        }
    }

    #[test]
    fn real_rounding_matches_integer_shifts() {
        for r in [
            CodeRounding::HalfEven,
            CodeRounding::HalfUp,
            CodeRounding::Floor,
        ] {
            for v in -5000i64..5000 {
                for s in [0u32, 1, 3, 14] {
                    let t = v as f64 * (-(s as f64)).exp2();
                    assert_eq!(
                        round_real(r, t),
                        r.shift_right(v, s) as f64,
                        "{r:?} {v} {s}"
                    );
                }
            }
        }
    }
}
