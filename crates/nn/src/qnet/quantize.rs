//! [`QNetwork::quantize`]: calibrate activation scales on the float model, then turn each float
//! layer into its integer layer.

use nacsim_core::config::Validate;
use ndarray::{Array2, ArrayView2, Zip};

use super::{
    Calibration, GemmKind, QGemm, QLayer, QNetwork, QuantConfig, QuantizeError, Requant,
    fused_relus, gemm_kind_of,
};
use crate::data::Dataset;
use crate::forward::{FloatKernel, layer_forward as float_layer_forward};
use crate::model::Model;
use crate::network::{Activation, LayerSpec};
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
    /// # Errors
    /// A [`QuantizeError`] for an invalid config, an empty or mis-shaped calibration set, a
    /// layer without parameters, non-finite calibration activations or an unrepresentable
    /// requantization factor.
    pub fn quantize(
        model: &Model,
        calib: &Dataset,
        cfg: &QuantConfig,
    ) -> Result<QNetwork, QuantizeError> {
        cfg.validate().map_err(QuantizeError::Config)?;
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
        let layers = &model.layers;
        let n = layers.len();
        // fused[i]: layer i is a ReLU folded into the Gemm before it.
        let fused = fused_relus(layers);
        let need: Vec<bool> = (0..n)
            .map(|i| match layers[i].spec {
                LayerSpec::Dense { .. } | LayerSpec::Conv2d { .. } => !(i + 1 < n && fused[i + 1]),
                LayerSpec::Act(Activation::ReLU) => fused[i],
                LayerSpec::Act(_) => true,
                _ => false,
            })
            .collect();

        // Calibration: float forward over the first N images in chunks, statistics at each point.
        let keep = matches!(cfg.calibration, Calibration::Percentile(_));
        let mut stats: Vec<Stat> = (0..=n).map(|_| Stat::default()).collect(); // [0] = input
        let images = cfg.calibration_images.min(calib.len());
        for start in (0..images).step_by(256) {
            let mut h = calib.batch_range(start, (start + 256).min(images));
            stats[0].observe(&h, keep);
            for (i, l) in layers.iter().enumerate() {
                h = float_layer_forward(&FloatKernel, i, l, model.params[i].as_ref(), h, false).0;
                if need[i] {
                    stats[i + 1].observe(&h, keep);
                }
            }
        }
        let amax = (1i32 << (cfg.act_bits - 1)) - 1;
        let mut scales = Vec::with_capacity(n + 1);
        for (i, s) in stats.into_iter().enumerate() {
            if (i == 0 || need[i - 1]) && s.nonfinite {
                let what = if i == 0 {
                    "the input".to_string()
                } else {
                    format!("the output of {}", layers[i - 1].name)
                };
                return Err(QuantizeError::NonFinite(what));
            }
            let r = if i == 0 || need[i - 1] {
                s.range(cfg.calibration)
            } else {
                0.0
            };
            // An all-zero tensor may take any scale; use range 1.
            scales.push(if r > 0.0 {
                r / amax as f32
            } else {
                1.0 / amax as f32
            });
        }

        let wmax = (1i32 << (cfg.weight_bits - 1)) - 1;
        let mut cur = scales[0];
        let mut out = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            if fused[i] {
                continue;
            }
            let q = match &l.spec {
                LayerSpec::Dense { .. } | LayerSpec::Conv2d { .. } => {
                    let p = model.params[i]
                        .as_ref()
                        .ok_or_else(|| QuantizeError::MissingParams(l.name.clone()))?;
                    let relu = i + 1 < n && fused[i + 1];
                    let out_scale = scales[if relu { i + 2 } else { i + 1 }];
                    let kind = gemm_kind_of(&l.spec).unwrap_or(GemmKind::Dense);
                    let row_max: Vec<f32> = p
                        .weight
                        .rows()
                        .into_iter()
                        .map(|r| r.fold(0f32, |a, &v| a.max(v.abs())))
                        .collect();
                    let tensor_max = row_max.iter().fold(0f32, |a, &v| a.max(v));
                    let w_scale: Vec<f32> = row_max
                        .iter()
                        .map(|&m| {
                            let m = if cfg.per_channel_weights {
                                m
                            } else {
                                tensor_max
                            };
                            if m > 0.0 {
                                m / wmax as f32
                            } else {
                                1.0 / wmax as f32
                            }
                        })
                        .collect();
                    let mut weight = Array2::<i8>::zeros(p.weight.dim());
                    Zip::from(weight.rows_mut())
                        .and(p.weight.rows())
                        .and(&w_scale[..])
                        .par_for_each(|mut q_row, w_row, &s| {
                            for (q, &w) in q_row.iter_mut().zip(w_row) {
                                let v = quantize_value(w.into(), s.into(), wmax, cfg.rounding);
                                *q = i8::try_from(v).expect("weight code within ±127");
                            }
                        });
                    let acc_scale = |o: usize| f64::from(cur) * f64::from(w_scale[o]);
                    let bias = p.bias.as_ref().map_or_else(Vec::new, |b| {
                        b.iter()
                            .enumerate()
                            .map(|(o, &v)| {
                                quantize_value(v.into(), acc_scale(o), i32::MAX, cfg.rounding)
                            })
                            .collect()
                    });
                    let requant = (0..w_scale.len())
                        .map(|o| {
                            let m = acc_scale(o) / f64::from(out_scale);
                            Requant::from_real(m).ok_or_else(|| QuantizeError::Multiplier {
                                layer: l.name.clone(),
                                channel: o,
                                value: m,
                            })
                        })
                        .collect::<Result<_, _>>()?;
                    let g = QGemm {
                        name: l.name.clone(),
                        kind,
                        input: l.input,
                        output: l.output,
                        weight,
                        bias,
                        requant,
                        in_scale: cur,
                        out_scale,
                        w_scale,
                        relu,
                        act_max: amax,
                        rounding: cfg.rounding,
                    };
                    cur = out_scale;
                    QLayer::Gemm(g)
                }
                &LayerSpec::MaxPool2d { kernel, stride } => QLayer::MaxPool {
                    kernel,
                    stride,
                    input: l.input,
                    output: l.output,
                },
                &LayerSpec::AvgPool2d { kernel, stride } => QLayer::AvgPool {
                    kernel,
                    stride,
                    input: l.input,
                    output: l.output,
                    rounding: cfg.rounding,
                },
                LayerSpec::Flatten => QLayer::Flatten,
                &LayerSpec::Act(act) => {
                    let out_scale = if act == Activation::ReLU {
                        cur
                    } else {
                        scales[i + 1]
                    };
                    let table = (-128i32..=127)
                        .map(|c| {
                            let y = act.apply(c as f32 * cur);
                            let v = quantize_value(y.into(), out_scale.into(), amax, cfg.rounding);
                            i8::try_from(v).expect("activation code within ±127")
                        })
                        .collect();
                    let lut = QLayer::Lut {
                        act,
                        table,
                        in_scale: cur,
                        out_scale,
                    };
                    cur = out_scale;
                    lut
                }
            };
            out.push(q);
        }
        Ok(QNetwork {
            name: model.spec.name.clone(),
            input_scale: scales[0],
            layers: out,
            classes: model.spec.classes,
            config: *cfg,
        })
    }

    /// Input codes `[batch, features]` for float inputs: `clamp(round(x / input_scale))` with the
    /// configured rounding, NaN → 0.
    pub fn quantize_input(&self, x: ArrayView2<f32>) -> Array2<i8> {
        let amax = (1i32 << (self.config.act_bits - 1)) - 1;
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
