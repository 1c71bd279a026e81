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
//! table error (`Bilinear`): an f64 product of the operand features over a block of images
//! (`network/gemm.rs`: it skips the inputs that are zero in all four images of a group)
//! pins every accumulator to a proven interval, and only the outputs whose requantized code
//! (or argmax) the interval leaves open are computed product by product.
//!
//! For the versine and quarter-square units (the `T[|i+j|] − T[|i−j|]` form) with entries that
//! fit `i32`, the MAC runs over the nonzero inputs of an image, with the layer's weights stored
//! input-major and partial sums in `i32` that are moved to the `i64` accumulator before they can
//! overflow (the result is the same integer, so this is still bit-exact); on x86-64 with AVX2 the
//! inner loop uses 8-wide table gathers. Other units call [`SineProduct::product`]. Images run in
//! parallel over fixed blocks; each image's result does not depend on the others, so accuracy is
//! identical for any thread count.

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

mod gemm;

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

/// The weight features `ũ = scale · u(w)` of one layer (exact scaling by a power of two), for
/// the two float levels of the fast path (see [`SineNetwork`] "Speed").
#[derive(Debug, Clone)]
struct FastLayer {
    /// Level 1: `ũ` rounded to f32, `[fan_in, out]` in strips.
    strips: gemm::Strips,
    /// Level 2: `ũ` rounded to f32 (half the bytes to fetch), output-major `[out][fan_in]`.
    rows: Vec<f32>,
    /// `‖ũ_o‖₂` per output, raised by a relative `1e-9` over its own f64 rounding.
    norm: Vec<f64>,
    /// `max |ũ|` over the layer.
    max_abs: f64,
}

/// The fast path of a unit whose product is a bilinear form plus a bounded error:
/// `P(i, j) = scale · u(i) · v(j) + e`, `|e| ≤ e_max` (see [`SineNetwork`] "Speed").
#[derive(Debug, Clone)]
struct Bilinear {
    /// `u(i) = v(i)` for codes `i` in `−max..=max`, at index `i + max`.
    feature: Vec<f64>,
    /// `feature` rounded to nearest f32 (level 1's input features).
    feature32: Vec<f32>,
    /// Offset of code 0 in `feature`.
    zero: usize,
    /// `scale`: `2^F` (versine, `u = sin(i · 2^-f)`) or `2^(F − 2f)` (quarter-square, `u = i`).
    scale: f64,
    /// Bound on `|P − scale · u(i) · v(j)|` over the table, in product LSBs.
    e_max: f64,
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
                let (w, fan_in) = (&l.w, l.fan_in);
                // `scale` is a power of two: `ũ` is the f64 feature times it, exactly.
                let rows: Vec<f64> = w.iter().map(|&i| fb.scale * fb.at(i)).collect();
                let norm = rows
                    .chunks_exact(fan_in)
                    .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt() * (1.0 + 1e-9))
                    .collect();
                let max_abs = rows.iter().fold(0f64, |m, v| m.max(v.abs()));
                l.fast = Some(FastLayer {
                    strips: gemm::Strips::new(fan_in, l.out, |k, o| rows[o * fan_in + k]),
                    rows: rows.iter().map(|&v| v as f32).collect(),
                    norm,
                    max_abs,
                });
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

    /// [`SineNetwork::exact_acc`] over an image's non-zero inputs (the same integer).
    fn exact_acc_sparse(&self, l: &SineLayer, o: usize, row: &SparseRow) -> i64 {
        let w = &l.w[o * l.fan_in..(o + 1) * l.fan_in];
        let mut acc = l.bias[o];
        match &self.diff_table {
            Some(t) => {
                for (&k, &j) in row.k.iter().zip(&row.j) {
                    let i = w[k as usize];
                    acc += t[(i + j).unsigned_abs() as usize] - t[(i - j).unsigned_abs() as usize];
                }
            }
            None => {
                for (&k, &j) in row.k.iter().zip(&row.j) {
                    acc += self.unit.product(w[k as usize], j);
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

    /// The fast path on a block of images (see "Speed" in the module docs). Level 1: an f32
    /// product gives each accumulator to within its proven bound; an output whose requantised,
    /// rectified code (or, for the logits, the argmax) is the same at both ends of its interval
    /// takes that value. Level 2: every other output is recomputed as an f64 dot product, with
    /// the tighter f64 bound. Level 3: what is still open is computed product by product. The
    /// result equals the exact path.
    fn predict_block_fast(&self, fb: &Bilinear, images: &[&[u8]], preds: &mut [usize], simd: bool) {
        let n = images.len();
        let mut x = vec![0i32; n * self.input_len];
        let codes: &[i32; 256] = self.input_codes[..]
            .try_into()
            .expect("one code per 8-bit pixel");
        for (xb, img) in x.chunks_exact_mut(self.input_len).zip(images) {
            for (c, &p) in xb.iter_mut().zip(*img) {
                *c = codes[p as usize];
            }
        }
        let last = self.layers.len() - 1;
        let shift = self.format.out_frac_bits - self.format.frac_bits;
        let rounding = self.config.rounding;
        let monotone = self.config.activation != RectifiedSine::Periodic;
        let max_b = self.format.max_abs_b as i32;
        let inv_step = (-(shift as f64)).exp2();
        // Codes as reals: the requantised value is clamped to the activation's range, whose
        // ends are integers, so float clamping and comparing is exact.
        let (clo, chi) = match self.config.activation {
            RectifiedSine::Clamped => (0.0, self.half_pi.min(max_b) as f64),
            RectifiedSine::Unclamped => (0.0, max_b as f64),
            RectifiedSine::Periodic => (f64::NEG_INFINITY, f64::INFINITY),
        };
        let mut row = SparseRow::default();
        let code_of = |c: f64| {
            if monotone {
                c as i32
            } else {
                self.clamp_code(c as i32)
            }
        };
        for (li, l) in self.layers.iter().enumerate() {
            let fl = l.fast.as_ref().expect("fast path has features");
            let (fan_in, out) = (l.fan_in, l.out);
            let groups = gemm::Groups::new(n, fan_in, &x, &fb.feature32, fb.zero);
            let mut s = vec![0f32; n * out];
            gemm::product(&groups, &fl.strips, &mut s, simd);
            if li < last {
                let mut next = vec![0i32; n * out];
                let mut lo_c = vec![0f64; out];
                let mut ok = vec![false; out];
                for b in 0..n {
                    let (r2, vnorm) = row.load(&x[b * fan_in..(b + 1) * fan_in], fb, fl, simd);
                    let bound = Bound {
                        table: r2,
                        f32_per_norm: gemm::rel_bound(groups.terms(b)) * vnorm,
                        inv_step,
                        clo,
                        chi,
                    };
                    certify(
                        &bound,
                        rounding,
                        &s[b * out..(b + 1) * out],
                        &l.bias_f64,
                        &fl.norm,
                        &mut lo_c,
                        &mut ok,
                    );
                    let nb = &mut next[b * out..(b + 1) * out];
                    for (o, (d, (&c, &k))) in nb.iter_mut().zip(lo_c.iter().zip(&ok)).enumerate() {
                        if k {
                            *d = code_of(c);
                            continue;
                        }
                        let mid = row.dot(fl, o) + l.bias_f64[o];
                        // Plus the f32 rounding of `ũ` and the rounding of the bias add and of
                        // mid ± r.
                        let r = r2 + F32_ROWS * fl.norm[o] * vnorm;
                        let r = r + 8.0 * f64::EPSILON * (mid.abs() + r);
                        let cl = round_real(rounding, (mid - r) * inv_step).max(clo).min(chi);
                        let ch = round_real(rounding, (mid + r) * inv_step).max(clo).min(chi);
                        *d = if cl == ch {
                            code_of(cl)
                        } else {
                            self.activate(self.exact_acc_sparse(l, o, &row))
                        };
                    }
                }
                x = next;
            } else {
                let mut mid = vec![0f64; out];
                let mut rad = vec![0f64; out];
                for (b, p) in preds.iter_mut().enumerate() {
                    let (r2, vnorm) = row.load(&x[b * fan_in..(b + 1) * fan_in], fb, fl, simd);
                    let f32_per_norm = gemm::rel_bound(groups.terms(b)) * vnorm;
                    for (o, (m, r)) in mid.iter_mut().zip(&mut rad).enumerate() {
                        *m = f64::from(s[b * out + o]) + l.bias_f64[o];
                        let r1 = r2 + f32_per_norm * fl.norm[o];
                        *r = r1 + 8.0 * f64::EPSILON * (m.abs() + r1);
                    }
                    if let Some(best) = certain_argmax(&mid, &rad) {
                        *p = best;
                        continue;
                    }
                    for (o, (m, r)) in mid.iter_mut().zip(&mut rad).enumerate() {
                        *m = row.dot(fl, o) + l.bias_f64[o];
                        let r1 = r2 + F32_ROWS * fl.norm[o] * vnorm;
                        *r = r1 + 8.0 * f64::EPSILON * (m.abs() + r1);
                    }
                    *p = certain_argmax(&mid, &rad).unwrap_or_else(|| {
                        let acc: Vec<i64> = (0..out)
                            .map(|o| self.exact_acc_sparse(l, o, &row))
                            .collect();
                        argmax(&acc)
                    });
                }
            }
        }
    }
}

/// One image's non-zero inputs of a layer (buffers reused from image to image).
#[derive(Debug, Default)]
struct SparseRow {
    /// Input indices `k`.
    k: Vec<u32>,
    /// Their codes `j`.
    j: Vec<i32>,
    /// Their f64 features `ṽ = u(j)`.
    v: Vec<f64>,
}

impl SparseRow {
    /// Loads the non-zero inputs of `xb`; returns `(r2, ‖ṽ‖₂)`: `r2` is the table error of
    /// every non-zero product plus the f64 error of the level-2 dot product, `(n + 8)·2^-53`
    /// relative to `Σ |ũ · ṽ|` (sin and products ≤ 1 ulp each) bounded by `max|ũ| · Σ|ṽ|`,
    /// doubled for margin (it also covers the f64 features' own error for level 1);
    /// `‖ṽ‖₂` (raised by a relative `1e-9` over its rounding) gives level 1's
    /// `Σ|ũṽ| ≤ ‖ũ_o‖₂ ‖ṽ‖₂`.
    fn load(&mut self, xb: &[i32], fb: &Bilinear, fl: &FastLayer, simd: bool) -> (f64, f64) {
        let len = xb.len();
        #[cfg(target_arch = "x86_64")]
        if simd
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: the features the function is compiled for are present.
            let (pos, sum, sq) = unsafe { self.load_avx512(xb, fb) };
            return Self::bounds(pos, len, sum, sq, fb, fl);
        }
        let _ = simd;
        self.k.resize(len, 0);
        self.j.resize(len, 0);
        self.v.resize(len, 0.0);
        // Branch-free compaction.
        let mut pos = 0;
        {
            let (kb, jb, vb) = (&mut self.k[..], &mut self.j[..], &mut self.v[..]);
            for (k, &c) in xb.iter().enumerate() {
                kb[pos] = k as u32;
                jb[pos] = c;
                vb[pos] = fb.at(c);
                pos += usize::from(c != 0);
            }
        }
        self.k.truncate(pos);
        self.j.truncate(pos);
        self.v.truncate(pos);
        // Four partial sums (their order does not matter: rounded up below).
        let (mut sum, mut sq) = ([0f64; 4], [0f64; 4]);
        let chunks = self.v.chunks_exact(4);
        for &v in chunks.remainder() {
            sum[0] += v.abs();
            sq[0] += v * v;
        }
        for c in chunks {
            for i in 0..4 {
                sum[i] += c[i].abs();
                sq[i] += c[i] * c[i];
            }
        }
        let sum: f64 = sum.iter().sum();
        let sq: f64 = sq.iter().sum();
        Self::bounds(pos, len, sum, sq, fb, fl)
    }

    /// `(r2, ‖ṽ‖₂)` of [`SparseRow::load`] from the count of non-zero inputs, `Σ|ṽ|` and
    /// `Σṽ²` (each computed in f64 in some order; the margins cover their rounding).
    fn bounds(
        pos: usize,
        len: usize,
        sum: f64,
        sq: f64,
        fb: &Bilinear,
        fl: &FastLayer,
    ) -> (f64, f64) {
        let r2 = pos as f64 * fb.e_max
            + 2.0 * (len as f64 + 8.0) * f64::EPSILON * fl.max_abs * sum
            + 1e-6;
        (r2, sq.sqrt() * (1.0 + 1e-9))
    }

    /// [`SparseRow::load`] with AVX-512: sixteen codes at a time compressed into registers,
    /// the features gathered eight at a time. Returns the count, `Σ|ṽ|` and `Σṽ²`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512VL.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl")]
    unsafe fn load_avx512(&mut self, xb: &[i32], fb: &Bilinear) -> (usize, f64, f64) {
        use std::arch::x86_64::*;
        let len = xb.len();
        // Room for a full register past the last value.
        self.k.resize(len + 16, 0);
        self.j.resize(len + 16, 0);
        let mut pos = 0;
        let mut iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let sixteen = _mm512_set1_epi32(16);
        let chunks = xb.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            // SAFETY: `c` holds 16 codes; `k`, `j` hold at least `pos + 16` values.
            unsafe {
                let cv = _mm512_loadu_si512(c.as_ptr().cast());
                let m = _mm512_test_epi32_mask(cv, cv);
                _mm512_storeu_si512(
                    self.k.as_mut_ptr().add(pos).cast(),
                    _mm512_maskz_compress_epi32(m, iota),
                );
                _mm512_storeu_si512(
                    self.j.as_mut_ptr().add(pos).cast(),
                    _mm512_maskz_compress_epi32(m, cv),
                );
                pos += m.count_ones() as usize;
            }
            iota = _mm512_add_epi32(iota, sixteen);
        }
        let k0 = len - rest.len();
        for (k, &c) in rest.iter().enumerate() {
            self.k[pos] = (k0 + k) as u32;
            self.j[pos] = c;
            pos += usize::from(c != 0);
        }
        self.v.resize(pos + 8, 0.0);
        let zero = _mm256_set1_epi32(fb.zero as i32);
        let (mut sum, mut sq) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let mut i = 0;
        while i < pos {
            let m: u8 = if pos - i >= 8 {
                0xff
            } else {
                (1u8 << (pos - i)) - 1
            };
            // SAFETY: `j` (`len + 16` values) and `v` (`pos + 8`) hold `i + 8` values; the
            // masked lanes are neither read nor gathered; every code indexes `feature` (codes
            // are clamped to the table's range).
            unsafe {
                let idx = _mm256_add_epi32(
                    _mm256_maskz_loadu_epi32(m, self.j.as_ptr().add(i).cast()),
                    zero,
                );
                let v = _mm512_mask_i32gather_pd::<8>(
                    _mm512_setzero_pd(),
                    m,
                    idx,
                    fb.feature.as_ptr().cast(),
                );
                _mm512_storeu_pd(self.v.as_mut_ptr().add(i), v);
                sum = _mm512_add_pd(sum, _mm512_abs_pd(v));
                sq = _mm512_fmadd_pd(v, v, sq);
            }
            i += 8;
        }
        self.k.truncate(pos);
        self.j.truncate(pos);
        self.v.truncate(pos);
        (pos, _mm512_reduce_add_pd(sum), _mm512_reduce_add_pd(sq))
    }

    /// Level 2: `Σ_k ũ_ok ṽ_k` in f64 over the non-zero inputs.
    fn dot(&self, fl: &FastLayer, o: usize) -> f64 {
        let fan_in = fl.rows.len() / fl.norm.len();
        gemm::sparse_dot(&fl.rows[o * fan_in..(o + 1) * fan_in], &self.k, &self.v)
    }
}

/// Level 1's interval of one image's accumulators: `mid = ŝ + bias`, radius
/// `table + f32_per_norm · ‖ũ_o‖₂` plus the rounding of the bias add and of `mid ± r`.
struct Bound {
    /// Table error and f64 errors of the image (product LSBs).
    table: f64,
    /// `rel_bound(m) · ‖ṽ‖₂`, to be multiplied by `‖ũ_o‖₂`.
    f32_per_norm: f64,
    /// `2^-(F − f)`, accumulator LSB → code.
    inv_step: f64,
    /// The activation's code range.
    clo: f64,
    /// The activation's code range.
    chi: f64,
}

impl Bound {
    /// For every output: the code at the interval's low end (`code`), and whether the high
    /// end gives the same (`ok`). Branch-free, so that it vectorises.
    #[inline(always)]
    fn certify(
        &self,
        round: impl Fn(f64) -> f64,
        s: &[f32],
        bias: &[f64],
        norm: &[f64],
        code: &mut [f64],
        ok: &mut [bool],
    ) {
        for ((((c, k), &sv), &bias), &nu) in code.iter_mut().zip(ok).zip(s).zip(bias).zip(norm) {
            let mid = f64::from(sv) + bias;
            let r1 = self.table + self.f32_per_norm * nu;
            let r = r1 + 8.0 * f64::EPSILON * (mid.abs() + r1);
            let cl = round((mid - r) * self.inv_step).max(self.clo).min(self.chi);
            let ch = round((mid + r) * self.inv_step).max(self.clo).min(self.chi);
            *c = cl;
            *k = cl == ch;
        }
    }
}

/// [`Bound::certify`] of one image's outputs with `rounding`, compiled for AVX-512 and AVX2
/// as well (the loop vectorises).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn certify(
    bound: &Bound,
    rounding: CodeRounding,
    s: &[f32],
    bias: &[f64],
    norm: &[f64],
    code: &mut [f64],
    ok: &mut [bool],
) {
    match rounding {
        CodeRounding::HalfEven => bound.certify(
            |t| round_real(CodeRounding::HalfEven, t),
            s,
            bias,
            norm,
            code,
            ok,
        ),
        CodeRounding::HalfUp => bound.certify(
            |t| round_real(CodeRounding::HalfUp, t),
            s,
            bias,
            norm,
            code,
            ok,
        ),
        CodeRounding::Floor => bound.certify(
            |t| round_real(CodeRounding::Floor, t),
            s,
            bias,
            norm,
            code,
            ok,
        ),
    }
}

/// The argmax of reals known to within `rad` each, if certain: the best lower bound beats
/// every other upper bound (so the exact argmax, first on ties, is the same index).
fn certain_argmax(mid: &[f64], rad: &[f64]) -> Option<usize> {
    let best = argmax_f64(mid);
    let lo = mid[best] - rad[best];
    mid.iter()
        .zip(rad)
        .enumerate()
        .all(|(o, (m, r))| o == best || m + r < lo)
        .then_some(best)
}

/// Level 2's relative error from `ũ` rounded to f32: `|fl32(ũ) − ũ| ≤ 2^-24 |ũ|`, so
/// `|Σ fl32(ũ)ṽ − Σ ũṽ| ≤ 2^-24 Σ|ũṽ| ≤ 2^-24 ‖ũ_o‖₂ ‖ṽ‖₂`; the products and sums in f64
/// are in `r2` (whose `max|ũ|` term has a factor 2 of margin, covering `fl32(ũ) ≤ (1 + 2^-24) ũ`).
/// Raised by `2^-20` relative for margin.
const F32_ROWS: f64 = (1.0 + 1.0 / 1_048_576.0) / 16_777_216.0;

/// Images per parallel task of [`SineNetwork::predict_all`] (fixed, so the partition does not
/// depend on the thread count; each image's result is independent of the others anyway).
const IMAGES_PER_TASK: usize = 250;

impl Bilinear {
    /// The fast path of `unit`, if its product has the form `scale · u(i) · v(j) + e`.
    ///
    /// Versine: `G[|i+j|] − G[|i−j|] = 2^F (sin²((i+j)θ) − sin²((i−j)θ)) + r_s − r_d
    /// = 2^F sin a sin b + r_s − r_d` (`θ = 2^-(f+1)`, `sin²x − sin²y = sin(x+y) sin(x−y)`),
    /// with `r_k = G[k] − 2^F sin²(kθ)` the table's rounding, so `e_max = 2 max |r_k|` (≤ 1).
    /// Quarter-square: `Q[|i+j|] − Q[|i−j|] = i·j · 2^(F−2f)` exactly, `e_max = 0`.
    fn for_unit(unit: &SineUnit) -> Option<Self> {
        let fmt = *unit.format();
        let max = fmt.max_abs_a.max(fmt.max_abs_b) as i64;
        let q = fmt.operand_lsb();
        let (feature, scale, e_max): (Vec<f64>, f64, f64) = match unit {
            SineUnit::Versine(t) => {
                let scale = fmt.out_lsb().recip();
                let theta = (-(fmt.frac_bits as f64 + 1.0)).exp2();
                let r = t
                    .entries()
                    .iter()
                    .enumerate()
                    .map(|(k, &g)| (g as f64 - scale * (k as f64 * theta).sin().powi(2)).abs())
                    .fold(0f64, f64::max);
                let feature = (-max..=max).map(|i| (i as f64 * q).sin()).collect();
                // Margin for the f64 evaluation of r_k itself (entries ≤ 2^32, ulp ≤ 2^-20).
                (feature, scale, 2.0 * r + 1e-5)
            }
            SineUnit::QuarterSquare(_) => {
                let scale = (fmt.out_frac_bits as f64 - 2.0 * fmt.frac_bits as f64).exp2();
                ((-max..=max).map(|i| i as f64).collect(), scale, 0.0)
            }
            _ => return None,
        };
        Some(Bilinear {
            feature32: feature.iter().map(|&v| v as f32).collect(),
            feature,
            zero: max as usize,
            scale,
            e_max,
        })
    }

    /// The feature of code `i`.
    #[inline]
    fn at(&self, i: i32) -> f64 {
        self.feature[(self.zero as i64 + i as i64) as usize]
    }
}

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
