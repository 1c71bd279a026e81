//! The integer forward pass: layer by layer through the [`IntGemm`] seam, pooling on codes,
//! predictions and accuracy.

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use super::requant::div_round;
use super::{GemmKind, IntGemm, QLayer, QNetwork, gemm_epilogue};
use crate::data::Dataset;
use crate::im2col::im2col;
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
                    } => {
                        let cols = im2col(x.view(), q.input, q.output, kernel, stride, padding);
                        g.gemm_at(index, row0, cols.view(), q.weight.view())
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
            QLayer::Lut { table, .. } => {
                let mut y = x;
                y.par_mapv_inplace(|v| table[(i16::from(v) + 128) as usize]);
                y
            }
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
        (0..self.layers.len()).fold(x, |h, i| self.layer_forward_at(g, i, h, first_image))
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
            let codes = data.pixels[s * il..e * il]
                .iter()
                .map(|&b| table[usize::from(b)]);
            let x = Array2::from_shape_vec((e - s, il), codes.collect()).expect("whole images");
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
