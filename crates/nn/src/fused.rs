//! Fused float inference of dense chains (MLPs): the float accuracy pass of `nacsim eval` and of
//! a run's float reference, with the bits of [`crate::forward::forward_with`] on the
//! [`FloatKernel`](crate::forward::FloatKernel).
//!
//! The generic pass ([`crate::train::accuracy_net`]) runs a batch layer by layer, each product
//! split over rayon blocks of rows, then the bias, the activation and the argmax as separate
//! passes over freshly allocated matrices. Here the images are cut into *units* of contiguous
//! rows (at most `batch` each, at least one per thread), and one rayon task takes a unit through
//! the whole network on one thread: the rows are scaled from the dataset's bytes into a buffer,
//! every Dense layer is one `matrixmultiply` call (which packs its weights once per unit rather
//! than once per row block) followed at once by its bias and activations (an epilogue over the
//! block it just wrote, still in cache), and the last layer's rows go straight to the argmax and
//! the count of hits. Each thread keeps its buffers from unit to unit.
//!
//! Bits: a row's logits do not depend on which rows share its product (no sum is split:
//! `matrixmultiply` sums each output over `k` in the same order for any number of rows, which
//! `forward::tests::par_matmul_equals_dot` checks), the bias and activations are the same
//! element-wise f32 operations in the same order, and the count of hits is an integer sum.
//! So the accuracy, and every logit ([`DenseChain::logits`]), equal the generic pass's bit for
//! bit under any thread count (tests below).

use std::sync::Mutex;

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, linalg::general_mat_mul};
use rayon::prelude::*;

use crate::data::Dataset;
use crate::forward::argmax;
use crate::model::Param;
use crate::network::{Activation, LayerSpec, ResolvedLayer};

/// One Dense layer with the activations that follow it.
#[derive(Debug)]
struct Stage<'a> {
    /// Weights `[out, fan_in]`.
    weight: &'a Array2<f32>,
    /// Bias `[out]`, if any.
    bias: Option<&'a Array1<f32>>,
    /// Activations applied in order after the bias.
    acts: Vec<Activation>,
}

/// A chain of Dense layers and element-wise activations (Flatten being the identity on a batch
/// of channel-major rows), ready for fused float inference.
#[derive(Debug)]
pub struct DenseChain<'a> {
    /// Activations before the first Dense layer, on the input.
    lead: Vec<Activation>,
    stages: Vec<Stage<'a>>,
    /// Input features per sample.
    inputs: usize,
}

/// Buffers of one thread: the scaled input rows and each stage's output.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    h: Vec<Vec<f32>>,
}

impl<'a> DenseChain<'a> {
    /// The chain of `layers` with `params`, or `None` when the network is not a plain chain of
    /// Dense, activation and Flatten layers (ending in a Dense layer), or a parameter is missing
    /// or mis-shaped (the generic pass then runs, and reports it).
    pub fn new(layers: &[ResolvedLayer], params: &'a [Option<Param>]) -> Option<Self> {
        if !crate::graph::is_plain(layers) || layers.is_empty() {
            return None;
        }
        let inputs = layers[0].input.len();
        let mut chain = DenseChain {
            lead: Vec::new(),
            stages: Vec::new(),
            inputs,
        };
        let mut width = inputs;
        for (i, l) in layers.iter().enumerate() {
            match &l.spec {
                LayerSpec::Flatten => {}
                LayerSpec::Act(a) => match chain.stages.last_mut() {
                    Some(s) => s.acts.push(*a),
                    None => chain.lead.push(*a),
                },
                LayerSpec::Dense { out, .. } => {
                    let p = params.get(i)?.as_ref()?;
                    if p.weight.dim() != (*out, width)
                        || p.bias.as_ref().is_some_and(|b| b.len() != *out)
                    {
                        return None;
                    }
                    chain.stages.push(Stage {
                        weight: &p.weight,
                        bias: p.bias.as_ref(),
                        acts: Vec::new(),
                    });
                    width = *out;
                }
                _ => return None,
            }
        }
        // Logits come from a Dense layer (an activation after it is applied; any width works).
        chain.stages.last()?;
        Some(chain)
    }

    /// Output features per sample (the classes).
    pub fn outputs(&self) -> usize {
        self.stages.last().map_or(self.inputs, |s| s.weight.nrows())
    }

    /// Float logits `[rows, outputs]` of a batch `[rows, inputs]` on the calling thread (the
    /// same bits as [`crate::forward::forward_with`] with the float kernel).
    ///
    /// # Panics
    /// If `x` does not have the chain's input width (a caller bug).
    pub fn logits(&self, x: ArrayView2<f32>) -> Array2<f32> {
        assert_eq!(x.ncols(), self.inputs, "input features of the chain");
        let rows = x.nrows();
        let mut s = Scratch::default();
        s.x.clear();
        s.x.extend(x.iter());
        let out = self.run(&mut s, rows);
        Array2::from_shape_vec((rows, self.outputs()), out.to_vec()).expect("rows × outputs values")
    }

    /// Takes the `rows` input rows in `s.x` through the chain; returns the logits, row-major.
    fn run<'s>(&self, s: &'s mut Scratch, rows: usize) -> &'s [f32] {
        if !self.lead.is_empty() {
            epilogue(&mut s.x, None, &self.lead, self.inputs);
        }
        s.h.resize_with(self.stages.len(), Vec::new);
        let Scratch { x, h } = s;
        let mut input: &[f32] = x;
        let mut width = self.inputs;
        for (stage, out) in self.stages.iter().zip(h.iter_mut()) {
            let o = stage.weight.nrows();
            out.resize(rows * o, 0.0);
            let a = ArrayView2::from_shape((rows, width), &input[..rows * width])
                .expect("rows × width values");
            let mut c =
                ArrayViewMut2::from_shape((rows, o), &mut out[..]).expect("rows × out values");
            general_mat_mul(1.0, &a, &stage.weight.t(), 0.0, &mut c);
            epilogue(out, stage.bias, &stage.acts, o);
            input = out;
            width = o;
        }
        &input[..rows * width]
    }

    /// Number of images of `data` whose largest logit (the first on ties) is their label, in
    /// units of at most `batch` rows run in parallel (see the module docs).
    ///
    /// # Panics
    /// If the images do not have the chain's input width (a caller bug).
    pub fn correct(&self, data: &Dataset, batch: usize) -> usize {
        let n = data.len();
        if n == 0 {
            return 0;
        }
        assert_eq!(data.image_len(), self.inputs, "image size of the chain");
        let threads = rayon::current_num_threads().max(1);
        let units = n.div_ceil(batch.max(1)).next_multiple_of(threads);
        let rows = n.div_ceil(units);
        let units = n.div_ceil(rows);
        let scratch: Vec<Mutex<Scratch>> = (0..threads).map(|_| Mutex::default()).collect();
        (0..units)
            .into_par_iter()
            .with_max_len(1)
            .map(|u| {
                let (start, end) = (u * rows, ((u + 1) * rows).min(n));
                let slot = rayon::current_thread_index().unwrap_or(0) % threads;
                // A unit never waits on rayon, so a thread's slot is free; the fallback is a
                // guard, not a path.
                let mut own = Scratch::default();
                let mut guard = scratch[slot].try_lock();
                let s = match guard.as_deref_mut() {
                    Ok(s) => s,
                    Err(_) => &mut own,
                };
                s.x.resize((end - start) * self.inputs, 0.0);
                data.fill_range(start, &mut s.x);
                let logits = self.run(s, end - start);
                logits
                    .chunks_exact(self.outputs())
                    .zip(&data.labels[start..end])
                    .filter(|(r, l)| argmax(r) == usize::from(**l))
                    .count()
            })
            .sum()
    }
}

/// Bias, then activations, on each row of `y` (`width` values per row), in place: the same f32
/// operations, in the same order per value, as the generic pass's separate passes.
fn epilogue(y: &mut [f32], bias: Option<&Array1<f32>>, acts: &[Activation], width: usize) {
    let bias = bias.map(|b| b.as_slice().expect("bias is contiguous"));
    match (bias, acts) {
        (Some(b), [Activation::ReLU]) => {
            for row in y.chunks_exact_mut(width) {
                for (v, &bj) in row.iter_mut().zip(b) {
                    *v = (*v + bj).max(0.0);
                }
            }
        }
        (Some(b), []) => {
            for row in y.chunks_exact_mut(width) {
                for (v, &bj) in row.iter_mut().zip(b) {
                    *v += bj;
                }
            }
        }
        _ => {
            for row in y.chunks_exact_mut(width) {
                for (j, v) in row.iter_mut().enumerate() {
                    let mut t = match bias {
                        Some(b) => *v + b[j],
                        None => *v,
                    };
                    for a in acts {
                        t = a.apply(t);
                    }
                    *v = t;
                }
            }
        }
    }
}

/// Float top-1 accuracy of `data` through a dense chain ([`DenseChain::correct`]), or `None`
/// when the network is not one (then use [`crate::train::accuracy_net`]).
pub fn float_accuracy(
    layers: &[ResolvedLayer],
    params: &[Option<Param>],
    data: &Dataset,
    batch: usize,
) -> Option<f64> {
    let chain = DenseChain::new(layers, params)?;
    if data.image_len() != chain.inputs {
        return None;
    }
    if data.is_empty() {
        return Some(0.0);
    }
    Some(chain.correct(data, batch) as f64 / data.len() as f64)
}

#[cfg(test)]
#[path = "fused_tests.rs"]
mod tests;
