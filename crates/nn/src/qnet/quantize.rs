//! [`QNetwork::quantize`]: calibrate activation scales on the float model, then turn each float
//! layer into its integer layer.

use nacsim_core::config::Validate;
use ndarray::{Array2, ArrayView2, Zip};

use super::{
    Calibration, GemmKind, QGemm, QLayer, QNetwork, QuantConfig, QuantizeError, Requant,
    fused_relus, gemm_kind_of, relu_fusions,
};
use crate::data::Dataset;
use crate::forward::{FloatKernel, layer_forward as float_layer_forward};
use crate::model::Model;
use crate::model::Param;
use crate::network::ResolvedLayer;
use crate::network::{Activation, LayerSpec, is_chain};
use crate::quant::{Rounding, round};

/// Running statistic of |value| at one quantization point.
#[derive(Default)]
struct Stat {
    max: f32,
    values: Vec<f32>,
    nonfinite: bool,
}

impl Stat {
    fn observe(&mut self, a: &Array2<f32>, keep: bool) {
        // Non-finite values are flagged (and make the calibration fail), so the order-free
        // maximum over the finite ones is the running maximum of before; two plain passes
        // vectorize.
        self.nonfinite |= a.iter().any(|v| !v.is_finite());
        self.max = a.iter().fold(self.max, |m, &v| m.max(v.abs()));
        if keep {
            self.values.extend(a.iter().map(|v| v.abs()));
        }
    }

    /// The statistic of `parts` observed one after the other, in order: the same as one
    /// `Stat` observing their images in that order (the maximum is order-free; the kept values
    /// are concatenated in order).
    fn merge(parts: Vec<Stat>) -> Stat {
        let total: usize = parts.iter().map(|p| p.values.len()).sum();
        let mut parts = parts.into_iter();
        let mut out = parts.next().unwrap_or_default();
        out.values.reserve_exact(total - out.values.len());
        for p in parts {
            out.nonfinite |= p.nonfinite;
            out.max = out.max.max(p.max);
            out.values.extend_from_slice(&p.values);
        }
        out
    }

    fn range(mut self, cal: Calibration) -> f32 {
        match cal {
            Calibration::MaxAbs => self.max,
            Calibration::Percentile(p) => {
                let n = self.values.len();
                if n == 0 {
                    return 0.0;
                }
                let k = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n);
                *self.values.select_nth_unstable_by(k - 1, f32::total_cmp).1
            }
        }
    }
}

/// `clamp(round(v / scale), −max, max)` with `mode`; NaN → 0.
pub(super) fn quantize_value(v: f64, scale: f64, max: i32, mode: Rounding) -> i32 {
    let q = round(v / scale, mode);
    if q.is_nan() {
        0
    } else {
        q.clamp(-f64::from(max), f64::from(max)) as i32
    }
}

impl QNetwork {
    /// Quantizes `model`, calibrating activation scales on the first
    /// `cfg.calibration_images` images of `calib` (see the module doc).
    ///
    /// The steps: `check_inputs`, `calibrate` (the scale of every quantization point), then each
    /// float layer in order becomes an integer layer (`quantize_gemm` for Dense and Conv2d,
    /// `lut_layer` for activations; a ReLU after a product is fused into it).
    ///
    /// # Errors
    /// A [`QuantizeError`] for an invalid config, an empty or mis-shaped calibration set, a
    /// layer without parameters, non-finite calibration activations or an unrepresentable
    /// requantization factor.
    pub fn quantize(
        model: &Model,
        calib: &Dataset,
        cfg: &QuantConfig,
    ) -> Result<QNetwork, QuantizeError> {
        let folded;
        let model = if model
            .layers
            .iter()
            .any(|l| matches!(l.spec, LayerSpec::BatchNorm2d { .. }))
        {
            folded = model.fold_batch_norm();
            &folded
        } else {
            model
        };
        check_inputs(model, calib, cfg)?;
        let layers = &model.layers;
        // fused_by[i] = Some(r): ReLU r is folded into the Gemm i (so r makes no layer).
        let fused_by = relu_fusions(layers);
        let fused = fused_relus(layers);
        let scales = calibrate(
            model,
            calib,
            cfg,
            &calibrated_points(layers, &fused_by, &fused),
        )?;
        let amax = code_max(cfg.act_bits);
        // scale_of[i]: scale of the codes node i outputs; qindex[i]: the quantized layer that
        // makes them (a fused ReLU's are its product's).
        let mut scale_of = vec![0.0f32; layers.len()];
        let mut qindex = vec![usize::MAX; layers.len()];
        let mut out = Vec::new();
        let mut inputs = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let src_scale = |s: &Option<usize>| s.map_or(scales[0], |j| scale_of[j]);
            if fused[i] {
                let j = l.inputs[0].expect("a fused ReLU reads its product");
                scale_of[i] = scale_of[j];
                qindex[i] = qindex[j];
                continue;
            }
            // Every layer maps input codes at scale `cur` to output codes at `out_scale`.
            let cur = src_scale(&l.inputs[0]);
            let (q, out_scale) = match &l.spec {
                LayerSpec::Dense { .. } | LayerSpec::Conv2d { .. } => {
                    let p = model.params[i]
                        .as_ref()
                        .ok_or_else(|| QuantizeError::MissingParams(l.name.clone()))?;
                    let relu = fused_by[i];
                    let out_scale = scales[relu.unwrap_or(i) + 1];
                    let g = quantize_gemm(l, p, cur, out_scale, relu.is_some(), cfg)?;
                    (QLayer::Gemm(g), out_scale)
                }
                &LayerSpec::MaxPool2d { kernel, stride } => (
                    QLayer::MaxPool {
                        kernel,
                        stride,
                        input: l.input,
                        output: l.output,
                    },
                    cur,
                ),
                &LayerSpec::AvgPool2d { kernel, stride } => (
                    QLayer::AvgPool {
                        kernel,
                        stride,
                        input: l.input,
                        output: l.output,
                        rounding: cfg.rounding,
                    },
                    cur,
                ),
                LayerSpec::GlobalAvgPool => (
                    QLayer::GlobalAvgPool {
                        input: l.input,
                        rounding: cfg.rounding,
                    },
                    cur,
                ),
                LayerSpec::Flatten | LayerSpec::Dropout { .. } => (QLayer::Flatten, cur),
                LayerSpec::Add => {
                    let out_scale = scales[i + 1];
                    let factors = l
                        .inputs
                        .iter()
                        .map(|s| align_factor(&l.name, src_scale(s) * ADD_FRAC as f32, out_scale))
                        .collect::<Result<_, _>>()?;
                    (
                        QLayer::Add {
                            factors,
                            act_max: amax,
                            rounding: cfg.rounding,
                        },
                        out_scale,
                    )
                }
                LayerSpec::Concat => {
                    let out_scale = l.inputs.iter().map(src_scale).fold(0.0f32, f32::max);
                    let factors = l
                        .inputs
                        .iter()
                        .map(|s| {
                            let si = src_scale(s);
                            if si == out_scale {
                                Ok(None)
                            } else {
                                align_factor(&l.name, si, out_scale).map(Some)
                            }
                        })
                        .collect::<Result<_, _>>()?;
                    (
                        QLayer::Concat {
                            factors,
                            rounding: cfg.rounding,
                        },
                        out_scale,
                    )
                }
                &LayerSpec::MatMul { transpose_b } => {
                    let out_scale = scales[i + 1];
                    let (sa, sb) = (src_scale(&l.inputs[0]), src_scale(&l.inputs[1]));
                    let m = f64::from(sa) * f64::from(sb) / f64::from(out_scale);
                    let requant =
                        Requant::from_real(m).ok_or_else(|| QuantizeError::Multiplier {
                            layer: l.name.clone(),
                            channel: 0,
                            value: m,
                        })?;
                    (
                        QLayer::MatMul {
                            transpose_b,
                            a: l.input,
                            n: l.output.w,
                            requant,
                            in_scales: (sa, sb),
                            out_scale,
                            act_max: amax,
                            rounding: cfg.rounding,
                        },
                        out_scale,
                    )
                }
                &LayerSpec::Softmax { axis } => (
                    QLayer::Softmax {
                        axis,
                        input: l.input,
                        in_scale: cur,
                        out_scale: scales[i + 1],
                        act_max: amax,
                        rounding: cfg.rounding,
                    },
                    scales[i + 1],
                ),
                &LayerSpec::LayerNorm { axis, eps, .. } => {
                    let p = model.params[i]
                        .as_ref()
                        .ok_or_else(|| QuantizeError::MissingParams(l.name.clone()))?;
                    let n = axis.len_in(l.input);
                    (
                        QLayer::LayerNorm {
                            axis,
                            input: l.input,
                            eps,
                            gamma: p.weight.column(0).to_vec(),
                            beta: p.bias.as_ref().map_or_else(|| vec![0.0; n], |b| b.to_vec()),
                            in_scale: cur,
                            out_scale: scales[i + 1],
                            act_max: amax,
                            rounding: cfg.rounding,
                        },
                        scales[i + 1],
                    )
                }
                &LayerSpec::Transpose { a, b } => (
                    QLayer::Transpose {
                        input: l.input,
                        a,
                        b,
                    },
                    cur,
                ),
                LayerSpec::BatchNorm2d { .. } => {
                    unreachable!("check_inputs refuses layer {}", l.name)
                }
                &LayerSpec::Act(act) => {
                    let out_scale = if act == Activation::ReLU {
                        cur
                    } else {
                        scales[i + 1]
                    };
                    (
                        lut_layer(act, cur, out_scale, amax, cfg.rounding),
                        out_scale,
                    )
                }
            };
            scale_of[i] = out_scale;
            qindex[i] = out.len();
            inputs.push(
                l.inputs
                    .iter()
                    .map(|s| s.map(|j| qindex[j]))
                    .collect::<Vec<_>>(),
            );
            out.push(q);
        }
        let chain = inputs
            .iter()
            .enumerate()
            .all(|(k, r)| r.len() == 1 && r[0] == k.checked_sub(1));
        Ok(QNetwork {
            name: model.spec.name.clone(),
            input_scale: scales[0],
            layers: out,
            inputs: if chain { Vec::new() } else { inputs },
            classes: model.spec.classes,
            config: *cfg,
        })
    }

    /// Input codes `[batch, features]` for float inputs: `clamp(round(x / input_scale))` with the
    /// configured rounding, NaN → 0.
    pub fn quantize_input(&self, x: ArrayView2<f32>) -> Array2<i8> {
        let amax = code_max(self.config.act_bits);
        let s = f64::from(self.input_scale);
        let mut y = Array2::<i8>::zeros(x.raw_dim());
        ndarray::Zip::from(&mut y).and(&x).par_for_each(|d, &v| {
            *d = i8::try_from(quantize_value(v.into(), s, amax, self.config.rounding))
                .expect("code within ±127");
        });
        y
    }

    /// Input codes of pixel bytes: `table[b]` is the code [`QNetwork::quantize_input`] gives
    /// `b / 255` (exactly what [`Dataset::batch`] feeds it), so a dataset is quantized by table
    /// lookup with identical codes and no pixel rounded twice.
    pub fn pixel_codes(&self) -> Vec<i8> {
        let levels = Array2::from_shape_fn((1, 256), |(_, p)| p as f32 / 255.0);
        self.quantize_input(levels.view())
            .into_raw_vec_and_offset()
            .0
    }
}

/// Largest code of a `bits`-bit symmetric format, `2^(bits−1) − 1`.
fn code_max(bits: u32) -> i32 {
    (1i32 << (bits - 1)) - 1
}

/// Step 1: the config is valid and the calibration set holds images of the network's input
/// shape.
fn check_inputs(model: &Model, calib: &Dataset, cfg: &QuantConfig) -> Result<(), QuantizeError> {
    cfg.validate().map_err(QuantizeError::Config)?;
    for l in &model.layers {
        let what = match &l.spec {
            LayerSpec::BatchNorm2d { .. } => {
                "a BatchNorm2d that does not follow a Dense or Conv2d read by it alone"
            }
            _ => continue,
        };
        return Err(QuantizeError::Unsupported {
            layer: l.name.clone(),
            what: what.into(),
            fix: "the int8 network folds a BatchNorm2d into the Dense or Conv2d it reads; put it right after the product (read by nothing else), or evaluate this network in float with `nacsim eval`".into(),
        });
    }
    if calib.is_empty() {
        return Err(QuantizeError::EmptyCalibration(calib.name.clone()));
    }
    if calib.shape.len() != model.spec.input.len() {
        return Err(QuantizeError::InputShape {
            name: calib.name.clone(),
            expected: model.spec.input,
            got: calib.shape,
        });
    }
    Ok(())
}

/// `need[i]`: the output of float layer `i` is a quantization point whose scale is calibrated:
/// a product without a fused ReLU, a fused ReLU (the product's clamped output), a non-ReLU
/// activation (its table's output), an Add, a MatMul, a Softmax or a LayerNorm. Pooling,
/// Flatten, Dropout, Transpose and Concat keep (or align to) their inputs' scales.
fn calibrated_points(
    layers: &[ResolvedLayer],
    fused_by: &[Option<usize>],
    fused: &[bool],
) -> Vec<bool> {
    (0..layers.len())
        .map(|i| match layers[i].spec {
            LayerSpec::Dense { .. } | LayerSpec::Conv2d { .. } => fused_by[i].is_none(),
            LayerSpec::Act(Activation::ReLU) => fused[i],
            LayerSpec::Act(_)
            | LayerSpec::Add
            | LayerSpec::MatMul { .. }
            | LayerSpec::Softmax { .. }
            | LayerSpec::LayerNorm { .. } => true,
            _ => false,
        })
        .collect()
}

/// Fraction bits of an Add's aligned terms: each input code is requantized to the output scale
/// with 8 extra fraction bits, the terms summed exactly, and the sum rounded once.
pub(super) const ADD_FRAC: i32 = 256;

/// The requantization factor `from / to` of a scale alignment at layer `layer`.
fn align_factor(layer: &str, from: f32, to: f32) -> Result<Requant, QuantizeError> {
    let m = f64::from(from) / f64::from(to);
    Requant::from_real(m).ok_or_else(|| QuantizeError::Multiplier {
        layer: layer.to_string(),
        channel: 0,
        value: m,
    })
}

/// Step 2: the scale of every quantization point, `[0]` the input and `[i + 1]` the output of
/// float layer `i` (`1 / A` where `need[i]` is false or the tensor is all zero): the float
/// forward over the first `cfg.calibration_images` images in chunks of 256, the
/// [`Calibration`] statistic of |value| at each point, divided by the largest code `A`.
fn calibrate(
    model: &Model,
    calib: &Dataset,
    cfg: &QuantConfig,
    need: &[bool],
) -> Result<Vec<f32>, QuantizeError> {
    let layers = &model.layers;
    let n = layers.len();
    use rayon::prelude::*;
    let keep = matches!(cfg.calibration, Calibration::Percentile(_));
    let images = cfg.calibration_images.min(calib.len());
    // The chunks of 256 images run in parallel, each with its own statistics ([0] = input),
    // merged in image order afterwards: the same statistics as one pass in order.
    let starts: Vec<usize> = (0..images).step_by(256).collect();
    let per_chunk: Vec<Vec<Stat>> = starts
        .par_iter()
        .map(|&start| {
            let mut stats: Vec<Stat> = (0..=n).map(|_| Stat::default()).collect();
            let mut h = calib.batch_range(start, (start + 256).min(images));
            stats[0].observe(&h, keep);
            if !is_chain(layers) {
                crate::graph::net_forward_observe(
                    &FloatKernel,
                    layers,
                    &model.params,
                    &model.stats,
                    h,
                    &mut |i, y| {
                        if need[i] {
                            stats[i + 1].observe(y, keep);
                        }
                    },
                );
                return stats;
            }
            for (i, l) in layers.iter().enumerate() {
                h = float_layer_forward(&FloatKernel, i, l, model.params[i].as_ref(), h, false).0;
                if need[i] {
                    stats[i + 1].observe(&h, keep);
                }
            }
            stats
        })
        .collect();
    let mut by_point: Vec<Vec<Stat>> = (0..=n).map(|_| Vec::new()).collect();
    for chunk in per_chunk {
        for (point, s) in by_point.iter_mut().zip(chunk) {
            point.push(s);
        }
    }
    let stats: Vec<Stat> = by_point.into_iter().map(Stat::merge).collect();
    // Errors in point order, before any range is taken.
    for (i, s) in stats.iter().enumerate() {
        let calibrated = i == 0 || need[i - 1];
        if calibrated && s.nonfinite {
            let what = if i == 0 {
                "the input".to_string()
            } else {
                format!("the output of {}", layers[i - 1].name)
            };
            return Err(QuantizeError::NonFinite(what));
        }
    }
    let amax = code_max(cfg.act_bits);
    // Each point's range (a percentile select) on its own: in parallel, results in order.
    let scales = stats
        .into_par_iter()
        .enumerate()
        .map(|(i, s)| {
            let calibrated = i == 0 || need[i - 1];
            let r = if calibrated {
                s.range(cfg.calibration)
            } else {
                0.0
            };
            // An all-zero tensor may take any scale; use range 1.
            if r > 0.0 {
                r / amax as f32
            } else {
                1.0 / amax as f32
            }
        })
        .collect();
    Ok(scales)
}

/// Step 3a: a Dense or Conv2d layer with parameters `p`, input codes at `in_scale`, output
/// codes at `out_scale`, clamped at 0 when a ReLU is fused (`relu`).
fn quantize_gemm(
    l: &ResolvedLayer,
    p: &Param,
    in_scale: f32,
    out_scale: f32,
    relu: bool,
    cfg: &QuantConfig,
) -> Result<QGemm, QuantizeError> {
    let wmax = code_max(cfg.weight_bits);
    let w_scale = weight_scales(p.weight.view(), wmax, cfg.per_channel_weights);
    let weight = weight_codes(p.weight.view(), &w_scale, wmax, cfg.rounding);
    let bias = p.bias.as_ref().map_or_else(Vec::new, |b| {
        bias_codes(b.iter(), in_scale, &w_scale, cfg.rounding)
    });
    let requant = requant_factors(&l.name, in_scale, &w_scale, out_scale)?;
    Ok(QGemm {
        name: l.name.clone(),
        kind: gemm_kind_of(&l.spec).unwrap_or(GemmKind::Dense),
        input: l.input,
        output: l.output,
        weight,
        bias,
        requant,
        in_scale,
        out_scale,
        w_scale,
        relu,
        act_max: code_max(cfg.act_bits),
        rounding: cfg.rounding,
    })
}

/// Symmetric weight scale per output channel: `max |w[o, :]| / W` (the tensor's max for every
/// channel unless `per_channel`), `1 / W` for an all-zero row.
fn weight_scales(weight: ArrayView2<f32>, wmax: i32, per_channel: bool) -> Vec<f32> {
    let row_max: Vec<f32> = weight
        .rows()
        .into_iter()
        .map(|r| r.fold(0f32, |a, &v| a.max(v.abs())))
        .collect();
    let tensor_max = row_max.iter().fold(0f32, |a, &v| a.max(v));
    row_max
        .iter()
        .map(|&m| {
            let m = if per_channel { m } else { tensor_max };
            if m > 0.0 {
                m / wmax as f32
            } else {
                1.0 / wmax as f32
            }
        })
        .collect()
}

/// Weight codes `clamp(round(w[o, k] / w_scale[o]), −W, W)`.
fn weight_codes(weight: ArrayView2<f32>, w_scale: &[f32], wmax: i32, mode: Rounding) -> Array2<i8> {
    let mut codes = Array2::<i8>::zeros(weight.dim());
    Zip::from(codes.rows_mut())
        .and(weight.rows())
        .and(w_scale)
        .par_for_each(|mut q_row, w_row, &s| {
            for (q, &w) in q_row.iter_mut().zip(w_row) {
                let v = quantize_value(w.into(), s.into(), wmax, mode);
                *q = i8::try_from(v).expect("weight code within ±127");
            }
        });
    codes
}

/// Bias codes at the accumulator scale `in_scale · w_scale[o]`, saturated to `i32`.
pub(super) fn bias_codes<'a>(
    bias: impl Iterator<Item = &'a f32>,
    in_scale: f32,
    w_scale: &[f32],
    mode: Rounding,
) -> Vec<i32> {
    bias.enumerate()
        .map(|(o, &v)| {
            let acc_scale = f64::from(in_scale) * f64::from(w_scale[o]);
            quantize_value(v.into(), acc_scale, i32::MAX, mode)
        })
        .collect()
}

/// The requantization factor `in_scale · w_scale[o] / out_scale` of every output channel of
/// layer `name`.
pub(super) fn requant_factors(
    name: &str,
    in_scale: f32,
    w_scale: &[f32],
    out_scale: f32,
) -> Result<Vec<Requant>, QuantizeError> {
    w_scale
        .iter()
        .enumerate()
        .map(|(o, &ws)| {
            let m = f64::from(in_scale) * f64::from(ws) / f64::from(out_scale);
            Requant::from_real(m).ok_or_else(|| QuantizeError::Multiplier {
                layer: name.to_string(),
                channel: o,
                value: m,
            })
        })
        .collect()
}

/// Step 3b: an activation as a 256-entry table, `table[c + 128] = clamp(round(f(c · in_scale) /
/// out_scale))`.
fn lut_layer(act: Activation, in_scale: f32, out_scale: f32, amax: i32, mode: Rounding) -> QLayer {
    let table = (-128i32..=127)
        .map(|c| {
            let y = act.apply(c as f32 * in_scale);
            let v = quantize_value(y.into(), out_scale.into(), amax, mode);
            i8::try_from(v).expect("activation code within ±127")
        })
        .collect();
    QLayer::Lut {
        act,
        table,
        in_scale,
        out_scale,
    }
}
