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

use ndarray::{Array2, ArrayView2, ArrayViewMut2, linalg::general_mat_mul};
use rayon::prelude::*;

use crate::data::Dataset;
use crate::model::Param;
use crate::network::{Activation, LayerSpec, ResolvedLayer};

/// One Dense layer with the activations that follow it.
#[derive(Debug)]
struct Stage<'a> {
    /// Weights transposed, `[fan_in, out]` row-major (packed by plain copies).
    wt: Array2<f32>,
    /// Bias `[out]`, if any.
    bias: Option<&'a [f32]>,
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

/// Buffers of one thread: the input and each stage's output, feature-major (`[features,
/// rows]`, a sample per column).
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    h: Vec<Vec<f32>>,
}

/// Samples per tile of the transposing input copy: one 64-byte line of output per feature.
const TILE: usize = 16;

impl<'a> DenseChain<'a> {
    /// The chain of `layers` with `params`, or `None` when the network is not a plain chain of
    /// Dense, activation and Flatten layers (with at least one Dense layer), or a parameter is
    /// missing or mis-shaped (the generic pass then runs, and reports it).
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
                    let bias = match &p.bias {
                        Some(b) => Some(b.as_slice()?),
                        None => None,
                    };
                    chain.stages.push(Stage {
                        wt: p.weight.t().as_standard_layout().into_owned(),
                        bias,
                        acts: Vec::new(),
                    });
                    width = *out;
                }
                _ => return None,
            }
        }
        chain.stages.last()?;
        Some(chain)
    }

    /// Output features per sample (the classes).
    pub fn outputs(&self) -> usize {
        self.stages.last().map_or(self.inputs, |s| s.wt.ncols())
    }

    /// Float logits `[rows, outputs]` of a batch `[rows, inputs]` on the calling thread (the
    /// same bits as [`crate::forward::forward_with`] with the float kernel).
    ///
    /// # Panics
    /// If `x` does not have the chain's input width (a caller bug).
    pub fn logits(&self, x: ArrayView2<f32>) -> Array2<f32> {
        assert_eq!(x.ncols(), self.inputs, "input features of the chain");
        let rows = x.nrows();
        let x = x.as_standard_layout();
        let mut s = Scratch::default();
        s.x.resize(rows * self.inputs, 0.0);
        transpose_into(
            x.as_slice().expect("standard layout"),
            rows,
            &mut s.x,
            |v| v,
        );
        let out = self.run(&mut s, rows);
        let t = ArrayView2::from_shape((self.outputs(), rows), out).expect("outputs × rows");
        t.t().as_standard_layout().into_owned()
    }

    /// Takes the `rows` samples in `s.x` (feature-major) through the chain; returns the logits,
    /// feature-major (`[outputs, rows]`).
    ///
    /// Each product is `C = A · B` with `A` the previous output read column-major, `B` the
    /// transposed weights row-major and `C` written column-major: `matrixmultiply` packs all
    /// three by plain copies (a row-major `A` or a weight matrix read transposed is packed value
    /// by value, which cost about a third of the product's time), and every value is the sum it
    /// is in `x · wᵀ` (the same terms, multiplied and added in the same order).
    fn run<'s>(&self, s: &'s mut Scratch, rows: usize) -> &'s [f32] {
        if !self.lead.is_empty() {
            epilogue(&mut s.x, None, &self.lead, rows);
        }
        s.h.resize_with(self.stages.len(), Vec::new);
        let Scratch { x, h } = s;
        let mut input: &[f32] = x;
        let mut width = self.inputs;
        for (stage, out) in self.stages.iter().zip(h.iter_mut()) {
            let o = stage.wt.ncols();
            out.resize(rows * o, 0.0);
            let a = ArrayView2::from_shape((width, rows), &input[..rows * width])
                .expect("width × rows values");
            let mut c =
                ArrayViewMut2::from_shape((o, rows), &mut out[..]).expect("out × rows values");
            general_mat_mul(
                1.0,
                &a.t(),
                &stage.wt,
                0.0,
                &mut c.view_mut().reversed_axes(),
            );
            epilogue(out, stage.bias, &stage.acts, rows);
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
        let k = data.image_len();
        assert_eq!(k, self.inputs, "image size of the chain");
        let threads = rayon::current_num_threads().max(1);
        let units = n.div_ceil(batch.max(1)).next_multiple_of(threads);
        let rows = n.div_ceil(units);
        let units = n.div_ceil(rows);
        let scratch: Vec<Mutex<Scratch>> = (0..threads).map(|_| Mutex::default()).collect();
        let scale = Dataset::pixel_values();
        (0..units)
            .into_par_iter()
            .with_max_len(1)
            .map(|u| {
                let (start, end) = (u * rows, ((u + 1) * rows).min(n));
                let r = end - start;
                let slot = rayon::current_thread_index().unwrap_or(0) % threads;
                // A unit never waits on rayon, so a thread's slot is free; the fallback is a
                // guard, not a path.
                let mut own = Scratch::default();
                let mut guard = scratch[slot].try_lock();
                let s = match guard.as_deref_mut() {
                    Ok(s) => s,
                    Err(_) => &mut own,
                };
                s.x.resize(r * k, 0.0);
                let px = &data.pixels[start * k..end * k];
                #[cfg(target_arch = "x86_64")]
                let done = x86::transpose_pixels(px, r, &mut s.x);
                #[cfg(not(target_arch = "x86_64"))]
                let done = false;
                if !done {
                    transpose_into(px, r, &mut s.x, |p| scale[p as usize]);
                }
                let logits = self.run(s, r);
                hits(logits, r, &data.labels[start..end])
            })
            .sum()
    }
}

/// Copies `rows` rows of `src` (row-major, `src.len() / rows` values each) into `dst`
/// transposed (`dst[f · rows + i] = f(src[i · width + f])`), in tiles of [`TILE`] rows.
fn transpose_into<T: Copy>(src: &[T], rows: usize, dst: &mut [f32], f: impl Fn(T) -> f32) {
    if rows == 0 {
        return;
    }
    let width = src.len() / rows;
    for i0 in (0..rows).step_by(TILE) {
        let t = TILE.min(rows - i0);
        let block = &src[i0 * width..(i0 + t) * width];
        for (k, col) in dst.chunks_exact_mut(rows).enumerate() {
            for (i, d) in col[i0..i0 + t].iter_mut().enumerate() {
                *d = f(block[i * width + k]);
            }
        }
    }
}

/// Number of samples (columns of the feature-major `logits`) whose first largest logit is
/// their label: the comparisons of [`crate::forward::argmax`], sample by sample.
fn hits(logits: &[f32], rows: usize, labels: &[u8]) -> usize {
    let mut best: Vec<f32> = logits[..rows].to_vec();
    let mut arg = vec![0u32; rows];
    for (j, row) in logits.chunks_exact(rows).enumerate().skip(1) {
        for ((b, a), &v) in best.iter_mut().zip(&mut arg).zip(row) {
            if v > *b {
                *b = v;
                *a = j as u32;
            }
        }
    }
    arg.iter()
        .zip(labels)
        .filter(|(a, l)| **a == u32::from(**l))
        .count()
}

/// Bias, then activations, on each feature row of the feature-major `y` (`rows` values per
/// feature), in place: the same f32 operations, in the same order per value, as the generic
/// pass's separate passes.
fn epilogue(y: &mut [f32], bias: Option<&[f32]>, acts: &[Activation], rows: usize) {
    if rows == 0 {
        return;
    }
    for (j, row) in y.chunks_exact_mut(rows).enumerate() {
        let b = bias.map(|b| b[j]);
        match (b, acts) {
            (Some(b), [Activation::ReLU]) => row.iter_mut().for_each(|v| *v = (*v + b).max(0.0)),
            (Some(b), []) => row.iter_mut().for_each(|v| *v += b),
            _ => {
                for v in row.iter_mut() {
                    let mut t = match b {
                        Some(b) => *v + b,
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

#[cfg(target_arch = "x86_64")]
#[path = "fused_x86.rs"]
mod x86;

#[cfg(test)]
#[path = "fused_tests.rs"]
mod tests;
