//! Float forward and backward passes over a graph network, and the float math of the kinds a
//! chain of single-input products does not have: BatchNorm2d, Dropout, GlobalAvgPool, grouped
//! Conv2d, Add, Concat and MatMul.
//!
//! Nodes run in the resolved (topological) order; a node's output is kept until its last reader
//! has run. In the backward pass the error of a node read by several others is the sum of their
//! errors, added in descending reader order (fixed, so the sum does not depend on threads). A
//! *plain chain* (a chain without BatchNorm2d or Dropout, [`is_plain`]) runs by the sequential
//! passes of [`crate::forward`] and [`crate::train`], unchanged.

use ndarray::{Array1, Array2, s};

use crate::forward::{Cache, ProductKernel, forward_with, layer_backward, layer_forward};
use crate::model::Param;
use crate::network::{LayerSpec, ResolvedLayer, is_chain};
use crate::ops::{bn_backward, bn_infer, bn_train, concat, dropout_mask, matmul, matmul_backward};

/// Running statistics of one BatchNorm2d layer, per channel (PyTorch's `running_mean` and
/// `running_var` buffers; initialised to 0 and 1).
#[derive(Clone, Debug, PartialEq)]
pub struct BnStats {
    /// Running mean μ.
    pub mean: Array1<f32>,
    /// Running (unbiased) variance σ².
    pub var: Array1<f32>,
}

impl BnStats {
    /// PyTorch's initial statistics for `c` channels: mean 0, variance 1.
    pub fn init(c: usize) -> Self {
        Self {
            mean: Array1::zeros(c),
            var: Array1::ones(c),
        }
    }
}

/// The initial [`BnStats`] of each layer (`Some` for BatchNorm2d layers).
pub fn init_stats(layers: &[ResolvedLayer]) -> Vec<Option<BnStats>> {
    layers
        .iter()
        .map(|l| matches!(l.spec, LayerSpec::BatchNorm2d { .. }).then(|| BnStats::init(l.input.c)))
        .collect()
}

/// True when `layers` is a chain without BatchNorm2d or Dropout: the sequential passes of
/// [`crate::forward`] run it exactly as before graphs existed.
pub fn is_plain(layers: &[ResolvedLayer]) -> bool {
    is_chain(layers)
        && !layers.iter().any(|l| {
            matches!(
                l.spec,
                LayerSpec::BatchNorm2d { .. } | LayerSpec::Dropout { .. }
            )
        })
}

/// Float logits of a batch through any network: a plain chain by [`forward_with`], else node by
/// node with BatchNorm2d on its running statistics (`stats[i]`; missing statistics are PyTorch's
/// initial ones) and Dropout as the identity.
pub fn net_forward<K: ProductKernel + ?Sized>(
    kernel: &K,
    layers: &[ResolvedLayer],
    params: &[Option<Param>],
    stats: &[Option<BnStats>],
    x: Array2<f32>,
) -> Array2<f32> {
    if is_plain(layers) {
        return forward_with(kernel, layers, params, x);
    }
    net_forward_observe(kernel, layers, params, stats, x, &mut |_, _| {})
}

/// The node-by-node inference pass of [`net_forward`] (for any network, chains included),
/// calling `observe(i, output)` after node `i` (calibration of the int8 scales).
pub fn net_forward_observe<K: ProductKernel + ?Sized>(
    kernel: &K,
    layers: &[ResolvedLayer],
    params: &[Option<Param>],
    stats: &[Option<BnStats>],
    x: Array2<f32>,
    observe: &mut dyn FnMut(usize, &Array2<f32>),
) -> Array2<f32> {
    let mut pass = Pass::new(layers, x);
    for (i, l) in layers.iter().enumerate() {
        let xs = pass.take_inputs(i);
        let p = params.get(i).and_then(Option::as_ref);
        let y = match &l.spec {
            LayerSpec::BatchNorm2d { eps, .. } => {
                let p = p.expect("batch norm has parameters");
                let fallback;
                let st = match stats.get(i).and_then(Option::as_ref) {
                    Some(s) => s,
                    None => {
                        fallback = BnStats::init(l.input.c);
                        &fallback
                    }
                };
                bn_infer(l, p, st, *eps, xs.into_iter().next().expect("one input"))
            }
            _ => node_forward(kernel, i, l, p, xs, None).0,
        };
        observe(i, &y);
        pass.put(i, y);
    }
    pass.output()
}

/// What a training step passes to the nodes that behave differently in training.
pub struct TrainCtx<'a> {
    /// Seed of the dropout masks.
    pub seed: u64,
    /// Global step number (dropout masks differ from step to step).
    pub step: u64,
    /// Running statistics, updated by every BatchNorm2d node.
    pub stats: &'a mut [Option<BnStats>],
}

/// Forward a training batch through any network, keeping every node's cache for
/// [`net_backward`]: BatchNorm2d normalises by the batch statistics and updates `ctx.stats`;
/// Dropout draws its mask from `(ctx.seed, ctx.step, layer, element)`.
pub fn net_train_forward<K: ProductKernel + ?Sized>(
    kernel: &K,
    layers: &[ResolvedLayer],
    params: &[Option<Param>],
    ctx: &mut TrainCtx<'_>,
    x: Array2<f32>,
) -> (Array2<f32>, Vec<Cache>) {
    let mut pass = Pass::new(layers, x);
    let mut caches = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let xs = pass.take_inputs(i);
        let p = params.get(i).and_then(Option::as_ref);
        let (y, c) = node_forward(kernel, i, l, p, xs, Some(ctx));
        caches.push(c);
        pass.put(i, y);
    }
    (pass.output(), caches)
}

/// Backward through any network from the error of the logits: returns each layer's gradients
/// (`None` for layers without parameters). Errors are propagated only towards nodes that lead
/// to a parameter.
pub fn net_backward<K: ProductKernel + ?Sized>(
    kernel: &K,
    layers: &[ResolvedLayer],
    params: &[Option<Param>],
    caches: &[Cache],
    dlogits: Array2<f32>,
) -> Vec<Option<Param>> {
    let n = layers.len();
    // wants[j]: node j or one of its ancestors has parameters.
    let mut wants = vec![false; n];
    for (j, l) in layers.iter().enumerate() {
        wants[j] = l.has_params() || l.inputs.iter().flatten().any(|&k| wants[k]);
    }
    let mut grads: Vec<Option<Param>> = vec![None; n];
    let mut errs: Vec<Option<Array2<f32>>> = vec![None; n];
    if let Some(e) = errs.last_mut() {
        *e = Some(dlogits);
    }
    for i in (0..n).rev() {
        let Some(dy) = errs[i].take() else {
            continue;
        };
        let l = &layers[i];
        let need_dx = l.inputs.iter().flatten().any(|&j| wants[j]);
        let p = params.get(i).and_then(Option::as_ref);
        let (dxs, g) = node_backward(kernel, i, l, p, &caches[i], dy, need_dx);
        grads[i] = g;
        if !need_dx {
            continue;
        }
        for (src, dx) in l.inputs.iter().zip(dxs) {
            let (Some(j), Some(dx)) = (src, dx) else {
                continue;
            };
            if !wants[*j] {
                continue;
            }
            match &mut errs[*j] {
                Some(acc) => *acc += &dx,
                slot @ None => *slot = Some(dx),
            }
        }
    }
    grads
}

/// Live outputs of a pass, each freed after its last reader.
struct Pass<'a> {
    layers: &'a [ResolvedLayer],
    outs: Vec<Option<Array2<f32>>>,
    left: Vec<usize>,
    input: Option<Array2<f32>>,
    input_left: usize,
}

impl<'a> Pass<'a> {
    fn new(layers: &'a [ResolvedLayer], x: Array2<f32>) -> Self {
        let mut left = vec![0; layers.len()];
        let mut input_left = 0;
        for l in layers {
            for s in &l.inputs {
                match s {
                    Some(j) => left[*j] += 1,
                    None => input_left += 1,
                }
            }
        }
        Self {
            layers,
            outs: vec![None; layers.len()],
            left,
            input: Some(x),
            input_left,
        }
    }

    fn take_inputs(&mut self, i: usize) -> Vec<Array2<f32>> {
        let mut xs = Vec::with_capacity(self.layers[i].inputs.len());
        for s in &self.layers[i].inputs {
            let (slot, left) = match s {
                Some(j) => (&mut self.outs[*j], &mut self.left[*j]),
                None => (&mut self.input, &mut self.input_left),
            };
            *left -= 1;
            let x = if *left == 0 {
                slot.take()
            } else {
                slot.clone()
            };
            xs.push(x.expect("a node's inputs run before it (topological order)"));
        }
        xs
    }

    fn put(&mut self, i: usize, y: Array2<f32>) {
        self.outs[i] = Some(y);
    }

    fn output(mut self) -> Array2<f32> {
        match self.outs.last_mut() {
            Some(y) => y.take().expect("the output node ran"),
            None => self
                .input
                .take()
                .expect("an empty network returns its input"),
        }
    }
}

/// One node forward; `ctx` = `Some` in training (caches kept, batch statistics, dropout).
fn node_forward<K: ProductKernel + ?Sized>(
    kernel: &K,
    i: usize,
    l: &ResolvedLayer,
    p: Option<&Param>,
    mut xs: Vec<Array2<f32>>,
    ctx: Option<&mut TrainCtx<'_>>,
) -> (Array2<f32>, Cache) {
    let keep = ctx.is_some();
    match (&l.spec, ctx) {
        (LayerSpec::BatchNorm2d { eps, momentum, .. }, Some(ctx)) => {
            let p = p.expect("batch norm has parameters");
            let st = ctx.stats[i].get_or_insert_with(|| BnStats::init(l.input.c));
            bn_train(l, p, st, *eps, *momentum, xs.pop().expect("one input"))
        }
        (LayerSpec::BatchNorm2d { eps, .. }, None) => {
            let st = BnStats::init(l.input.c);
            let p = p.expect("batch norm has parameters");
            (
                bn_infer(l, p, &st, *eps, xs.pop().expect("one input")),
                Cache::None,
            )
        }
        (LayerSpec::Dropout { p: rate }, Some(ctx)) if *rate > 0.0 => {
            let x = xs.pop().expect("one input");
            let mask = dropout_mask(ctx.seed, ctx.step, i, x.nrows(), x.ncols(), *rate);
            (x * &mask, Cache::Mask(mask))
        }
        (LayerSpec::Add, _) => {
            let mut it = xs.into_iter();
            let mut y = it.next().expect("Add has inputs");
            for x in it {
                y += &x;
            }
            (y, Cache::None)
        }
        (LayerSpec::Concat, _) => {
            let y = concat(&xs);
            let widths = xs.iter().map(|x| x.ncols()).collect();
            (
                y,
                if keep {
                    Cache::Split(widths)
                } else {
                    Cache::None
                },
            )
        }
        (LayerSpec::MatMul { transpose_b }, _) => {
            let y = matmul(l, xs[0].view(), xs[1].view(), *transpose_b);
            (y, if keep { Cache::Inputs(xs) } else { Cache::None })
        }
        _ => layer_forward(kernel, i, l, p, xs.pop().expect("one input"), keep),
    }
}

/// One node backward: the error to each input (`None` where not needed) and the gradients.
fn node_backward<K: ProductKernel + ?Sized>(
    kernel: &K,
    i: usize,
    l: &ResolvedLayer,
    p: Option<&Param>,
    cache: &Cache,
    dy: Array2<f32>,
    need_dx: bool,
) -> (Vec<Option<Array2<f32>>>, Option<Param>) {
    match (&l.spec, cache) {
        (LayerSpec::BatchNorm2d { .. }, Cache::Norm { xhat, inv_std }) => {
            let p = p.expect("batch norm has parameters");
            let (dx, g) = bn_backward(l, p, xhat, inv_std, dy);
            (vec![Some(dx)], Some(g))
        }
        (LayerSpec::Dropout { .. }, Cache::Mask(m)) => (vec![Some(dy * m)], None),
        (LayerSpec::Add, _) => {
            let k = l.inputs.len();
            let mut v: Vec<Option<Array2<f32>>> = (1..k).map(|_| Some(dy.clone())).collect();
            v.push(Some(dy));
            (v, None)
        }
        (LayerSpec::Concat, Cache::Split(widths)) => {
            let mut at = 0;
            let v = widths
                .iter()
                .map(|&w| {
                    let d = dy.slice(s![.., at..at + w]).to_owned();
                    at += w;
                    Some(d)
                })
                .collect();
            (v, None)
        }
        (LayerSpec::MatMul { transpose_b }, Cache::Inputs(xs)) => {
            let (da, db) = matmul_backward(l, xs[0].view(), xs[1].view(), dy.view(), *transpose_b);
            (vec![Some(da), Some(db)], None)
        }
        _ => {
            let (dx, g) = layer_backward(kernel, i, l, p, cache, dy, need_dx);
            (vec![dx], g)
        }
    }
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
