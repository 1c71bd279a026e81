//! The integer forward pass: layer by layer through the [`IntGemm`] seam, pooling on codes,
//! predictions and accuracy.

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use super::requant::div_round;
use super::{GemmKind, IntGemm, QLayer, QNetwork, gemm_epilogue};
use crate::data::Dataset;
use crate::im2col::im2col_hw;
use crate::network::Shape;
use crate::quant::Rounding;

impl QNetwork {
    /// Runs layer `index` on codes `x` `[batch, input features]`.
    ///
    /// # Panics
    /// If `index` is out of range or `x` does not have the layer's input width.
    pub fn layer_forward<G: IntGemm + ?Sized>(
        &self,
        g: &G,
        index: usize,
        x: Array2<i8>,
    ) -> Array2<i8> {
        self.layer_forward_at(g, index, x, 0)
    }

    /// [`layer_forward`](Self::layer_forward) for a batch whose first image is image
    /// `first_image` of the run (passed to [`IntGemm::gemm_at`]).
    ///
    /// # Panics
    /// As [`layer_forward`](Self::layer_forward).
    pub fn layer_forward_at<G: IntGemm + ?Sized>(
        &self,
        g: &G,
        index: usize,
        x: Array2<i8>,
        first_image: usize,
    ) -> Array2<i8> {
        match &self.layers[index] {
            QLayer::Gemm(q) => {
                let b = x.nrows();
                let row0 = (first_image * q.rows_per_sample()) as u64;
                let acc = match q.kind {
                    GemmKind::Dense => g.gemm_at(index, row0, x.view(), q.weight.view()),
                    GemmKind::Conv {
                        kernel,
                        stride,
                        padding,
                        groups,
                    } => {
                        let cols = im2col_hw(x.view(), q.input, q.output, kernel, stride, padding);
                        if groups == 1 {
                            g.gemm_at(index, row0, cols.view(), q.weight.view())
                        } else {
                            g.gemm_grouped_at(index, row0, cols.view(), q.weight.view(), groups)
                        }
                    }
                };
                gemm_epilogue(q, acc.view(), b)
            }
            &QLayer::MaxPool {
                kernel,
                stride,
                input,
                output,
            } => pool_i8(x.view(), input, output, kernel, stride, None),
            &QLayer::AvgPool {
                kernel,
                stride,
                input,
                output,
                rounding,
            } => pool_i8(x.view(), input, output, kernel, stride, Some(rounding)),
            QLayer::Flatten => x,
            &QLayer::GlobalAvgPool { input, rounding } => global_pool_i8(x.view(), input, rounding),
            QLayer::Add { .. } | QLayer::Concat { .. } | QLayer::MatMul { .. } => {
                self.node_forward_at(g, index, vec![x], first_image)
            }
            QLayer::Softmax { .. } | QLayer::LayerNorm { .. } | QLayer::Transpose { .. } => {
                super::attn::forward_codes(&self.layers[index], x)
            }
            QLayer::Lut { table, .. } => {
                let mut y = x;
                y.par_mapv_inplace(|v| table[(i16::from(v) + 128) as usize]);
                y
            }
        }
    }

    /// Runs layer `index` of a graph on the codes of its inputs, in the order of
    /// [`QNetwork::inputs`] (one input for every layer but Add and Concat).
    ///
    /// # Panics
    /// As [`layer_forward`](Self::layer_forward).
    pub fn node_forward_at<G: IntGemm + ?Sized>(
        &self,
        g: &G,
        index: usize,
        mut xs: Vec<Array2<i8>>,
        first_image: usize,
    ) -> Array2<i8> {
        match &self.layers[index] {
            QLayer::Add {
                factors,
                act_max,
                rounding,
            } => {
                let (b, f) = xs[0].dim();
                let mut acc = Array2::<i32>::zeros((b, f));
                for (x, m) in xs.iter().zip(factors) {
                    ndarray::Zip::from(&mut acc)
                        .and(x)
                        .for_each(|a, &v| *a += m.apply(i32::from(v), *rounding));
                }
                let den = i64::from(super::quantize::ADD_FRAC);
                acc.mapv(|a| {
                    let y = div_round(i64::from(a), den, *rounding)
                        .clamp(-i64::from(*act_max), i64::from(*act_max));
                    i8::try_from(y).expect("clamped to a code")
                })
            }
            QLayer::Concat { factors, rounding } => {
                let aligned: Vec<Array2<i8>> = xs
                    .into_iter()
                    .zip(factors)
                    .map(|(x, m)| match m {
                        None => x,
                        Some(m) => x.mapv(|v| {
                            i8::try_from(m.apply(i32::from(v), *rounding).clamp(-127, 127))
                                .expect("clamped to a code")
                        }),
                    })
                    .collect();
                let width: usize = aligned.iter().map(|x| x.ncols()).sum();
                let mut y = Array2::<i8>::zeros((aligned[0].nrows(), width));
                let mut at = 0;
                for x in &aligned {
                    y.slice_mut(ndarray::s![.., at..at + x.ncols()]).assign(x);
                    at += x.ncols();
                }
                y
            }
            &QLayer::MatMul {
                transpose_b,
                a,
                n,
                requant,
                act_max,
                rounding,
                ..
            } => matmul_i8(
                g,
                index,
                (&xs[0], &xs[1]),
                (a, n, transpose_b),
                (requant, act_max, rounding),
                first_image,
            ),
            _ => self.layer_forward_at(g, index, xs.pop().expect("one input"), first_image),
        }
    }

    /// Int8 logits `[batch, classes]` for input codes `x` `[batch, input features]`.
    pub fn forward<G: IntGemm + ?Sized>(&self, g: &G, x: Array2<i8>) -> Array2<i8> {
        self.forward_at(g, x, 0)
    }

    /// [`forward`](Self::forward) for a batch whose first image is image `first_image` of the
    /// run (see [`IntGemm::gemm_at`]).
    pub fn forward_at<G: IntGemm + ?Sized>(
        &self,
        g: &G,
        x: Array2<i8>,
        first_image: usize,
    ) -> Array2<i8> {
        if self.inputs.is_empty() {
            return (0..self.layers.len())
                .fold(x, |h, i| self.layer_forward_at(g, i, h, first_image));
        }
        // A graph: each output kept until its last reader has run.
        let n = self.layers.len();
        let mut left = vec![0usize; n];
        let mut input_left = 0usize;
        for r in &self.inputs {
            for s in r {
                match s {
                    Some(k) => left[*k] += 1,
                    None => input_left += 1,
                }
            }
        }
        let mut outs: Vec<Option<Array2<i8>>> = vec![None; n];
        let mut input = Some(x);
        for i in 0..n {
            let xs = self.inputs[i]
                .iter()
                .map(|s| {
                    let (slot, l) = match s {
                        Some(k) => (&mut outs[*k], &mut left[*k]),
                        None => (&mut input, &mut input_left),
                    };
                    *l -= 1;
                    let v = if *l == 0 { slot.take() } else { slot.clone() };
                    v.expect("inputs run first (topological order)")
                })
                .collect();
            outs[i] = Some(self.node_forward_at(g, i, xs, first_image));
        }
        outs.pop().flatten().expect("a graph has an output layer")
    }

    /// The codes entering layer `layer` (its first input) for input codes `x`: the layers
    /// before it run with `g` (a chain folds; a graph runs its nodes before `layer`).
    ///
    /// # Panics
    /// If `layer` is out of range.
    pub fn input_of<G: IntGemm + ?Sized>(&self, g: &G, x: Array2<i8>, layer: usize) -> Array2<i8> {
        if self.inputs.is_empty() {
            return (0..layer).fold(x, |h, i| self.layer_forward_at(g, i, h, 0));
        }
        let mut outs = self.outputs_before(g, &x, layer);
        match self.inputs[layer].first().copied().flatten() {
            Some(k) => outs[k].take().expect("inputs run first"),
            None => x,
        }
    }

    /// Every input of layer `layer` for input codes `x`, in the order of
    /// [`QNetwork::inputs`] (one for a chain's layer; `a` and `b` of a MatMul; the summands
    /// of an Add): the layers before it run with `g`, as in [`input_of`](Self::input_of).
    ///
    /// # Panics
    /// If `layer` is out of range.
    pub fn inputs_of<G: IntGemm + ?Sized>(
        &self,
        g: &G,
        x: Array2<i8>,
        layer: usize,
    ) -> Vec<Array2<i8>> {
        if self.inputs.is_empty() {
            return vec![self.input_of(g, x, layer)];
        }
        let outs = self.outputs_before(g, &x, layer);
        self.inputs[layer]
            .iter()
            .map(|s| match s {
                Some(k) => outs[*k].clone().expect("inputs run first"),
                None => x.clone(),
            })
            .collect()
    }

    /// The outputs of a graph's layers `0..layer` for input codes `x` (run with `g`).
    fn outputs_before<G: IntGemm + ?Sized>(
        &self,
        g: &G,
        x: &Array2<i8>,
        layer: usize,
    ) -> Vec<Option<Array2<i8>>> {
        let mut outs: Vec<Option<Array2<i8>>> = vec![None; layer];
        for i in 0..layer {
            let xs = self.inputs[i]
                .iter()
                .map(|s| match s {
                    Some(k) => outs[*k].clone().expect("inputs run first"),
                    None => x.clone(),
                })
                .collect();
            outs[i] = Some(self.node_forward_at(g, i, xs, 0));
        }
        outs
    }

    /// Predicted class of each float input (the first largest logit code).
    pub fn predict<G: IntGemm + ?Sized>(&self, g: &G, x: ArrayView2<f32>) -> Vec<usize> {
        argmax_rows(&self.forward(g, self.quantize_input(x)))
    }

    /// Top-1 accuracy over `data`, in batches of `batch` images (pixels quantized through
    /// [`QNetwork::pixel_codes`]).
    pub fn accuracy<G: IntGemm + ?Sized>(&self, g: &G, data: &Dataset, batch: usize) -> f64 {
        self.accuracy_of(data, batch, 1, |x, first| {
            vec![self.forward_at(g, x, first)]
        })[0]
    }

    /// Top-1 accuracy of `passes` forward passes over `data` (e.g. Monte Carlo trials of one
    /// quantized network), in batches of `batch` images with pixels quantized through
    /// [`QNetwork::pixel_codes`]: `forward(x, first_image)` returns the int8 logits of every
    /// pass for the input codes `x` of images `first_image..`.
    ///
    /// # Panics
    /// If `forward` does not return `passes` logit matrices.
    pub fn accuracy_of(
        &self,
        data: &Dataset,
        batch: usize,
        passes: usize,
        mut forward: impl FnMut(Array2<i8>, usize) -> Vec<Array2<i8>>,
    ) -> Vec<f64> {
        let batch = batch.max(1);
        let table = self.pixel_codes();
        let il = data.image_len();
        let mut correct = vec![0usize; passes];
        for s in (0..data.len()).step_by(batch) {
            let e = (s + batch).min(data.len());
            // Table look-ups in parallel chunks (an indexed collect: the same codes in order).
            let codes: Vec<i8> = data.pixels[s * il..e * il]
                .par_iter()
                .with_min_len(1 << 14)
                .map(|&b| table[usize::from(b)])
                .collect();
            let x = Array2::from_shape_vec((e - s, il), codes).expect("whole images");
            let logits = forward(x, s);
            assert_eq!(logits.len(), passes, "one logit matrix per pass");
            let labels = data.labels_range(s, e);
            for (c, y) in correct.iter_mut().zip(&logits) {
                *c += argmax_rows(y)
                    .iter()
                    .zip(&labels)
                    .filter(|(a, b)| **a == **b)
                    .count();
            }
        }
        correct
            .iter()
            .map(|&c| {
                if data.is_empty() {
                    0.0
                } else {
                    c as f64 / data.len() as f64
                }
            })
            .collect()
    }

    /// Parameter storage: weights · `weight_bits` + biases · 32.
    pub fn storage_bits(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| match l {
                QLayer::Gemm(q) => {
                    q.weight.len() as u64 * u64::from(self.config.weight_bits)
                        + q.bias.len() as u64 * 32
                }
                _ => 0,
            })
            .sum()
    }
}

/// The int8 MatMul of layer `index`: per sample and channel, `a [m, k]` times the "weights"
/// `b` as `[n, k]` through the seam (row keys `((first_image + s)·c + ch)·m`), requantized by
/// one factor and clamped to `±act_max`.
/// The operands of channel `ch` of sample `s` of a MatMul node
/// ([`QLayer::MatMul`]): `a` as `[m, k]` and `b` as the "weights"
/// `[n, k]` (read transposed when `tb` is false, `b` being stored `(c, k, n)`).
///
/// # Panics
/// If the rows of `xa`, `xb` are shorter than the shapes say (a caller bug).
pub fn matmul_operands<'a>(
    (xa, xb): (&'a Array2<i8>, &'a Array2<i8>),
    s: usize,
    ch: usize,
    (a, n, tb): (Shape, usize, bool),
) -> (ArrayView2<'a, i8>, Array2<i8>) {
    let (m, k) = (a.h, a.w);
    let am = xa
        .slice(ndarray::s![s, ch * m * k..(ch + 1) * m * k])
        .into_shape_with_order((m, k))
        .expect("contiguous (m, k)");
    let bv = xb.slice(ndarray::s![s, ch * k * n..(ch + 1) * k * n]);
    let w = if tb {
        bv.to_shape((n, k)).expect("contiguous (n, k)").to_owned()
    } else {
        bv.to_shape((k, n))
            .expect("contiguous (k, n)")
            .t()
            .to_owned()
    };
    (am, w)
}

fn matmul_i8<G: IntGemm + ?Sized>(
    g: &G,
    index: usize,
    (xa, xb): (&Array2<i8>, &Array2<i8>),
    (a, n, tb): (Shape, usize, bool),
    (requant, act_max, rounding): (super::Requant, i32, Rounding),
    first_image: usize,
) -> Array2<i8> {
    let (c, m) = (a.c, a.h);
    let mut y = Array2::<i8>::zeros((xa.nrows(), c * m * n));
    y.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(s, mut row)| {
            for ch in 0..c {
                let (am, w) = matmul_operands((xa, xb), s, ch, (a, n, tb));
                let key = (((first_image + s) * c + ch) * m) as u64;
                let acc = g.gemm_at(index, key, am.view(), w.view());
                for (i, &v) in acc.iter().enumerate() {
                    let q = requant.apply_clamped(v, rounding, -act_max, act_max);
                    row[ch * m * n + i] = i8::try_from(q).expect("clamped to a code");
                }
            }
        });
    y
}

fn pool_i8(
    x: ArrayView2<i8>,
    input: Shape,
    output: Shape,
    kernel: usize,
    stride: usize,
    avg: Option<Rounding>,
) -> Array2<i8> {
    let (h, w) = (input.h, input.w);
    let (oh, ow) = (output.h, output.w);
    let area = i64::try_from(kernel * kernel).expect("small kernel");
    let mut y = Array2::<i8>::zeros((x.nrows(), output.len()));
    y.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(x.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(mut d, s)| {
            for ch in 0..input.c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let (mut best, mut sum) = (i8::MIN, 0i64);
                        for ky in 0..kernel {
                            for kx in 0..kernel {
                                let v = s[(ch * h + oy * stride + ky) * w + ox * stride + kx];
                                best = best.max(v);
                                sum += i64::from(v);
                            }
                        }
                        d[(ch * oh + oy) * ow + ox] = match avg {
                            None => best,
                            Some(mode) => i8::try_from(div_round(sum, area, mode))
                                .expect("a mean of codes is a code"),
                        };
                    }
                }
            }
        });
    y
}

/// The mean of each channel's codes, the `i32` sum divided with `rounding`.
fn global_pool_i8(x: ArrayView2<i8>, input: Shape, rounding: Rounding) -> Array2<i8> {
    let px = input.h * input.w;
    let den = i64::try_from(px).expect("pixel count fits i64");
    Array2::from_shape_fn((x.nrows(), input.c), |(b, c)| {
        let sum: i64 = x
            .slice(ndarray::s![b, c * px..(c + 1) * px])
            .iter()
            .map(|&v| i64::from(v))
            .sum();
        i8::try_from(div_round(sum, den, rounding)).expect("a mean of codes is a code")
    })
}

/// Index of the first largest code of each row (the predicted class of each logit row, as
/// [`QNetwork::accuracy`] counts it).
fn argmax_rows(y: &Array2<i8>) -> Vec<usize> {
    y.rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(0, |b, (i, &v)| if v > r[b] { i } else { b })
        })
        .collect()
}
