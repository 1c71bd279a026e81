//! The one training loop, with its two seams, and the float plugs.
//!
//! - The **product kernel** ([`ProductKernel`]) computes the forward and backward matrix products.
//! - The **weight store** ([`WeightStore`]) owns the weight state: it hands the forward pass the
//!   weights it should see and turns gradients into a new state (float SGD/Adam here;
//!   block-circulant projection with power-of-two straight-through, or crossbar pulse programming,
//!   in the engine crates).
//!
//! Every variant is therefore the same loop with different plugs and can be compared with the
//! float baseline on the same data and seed. The loop is deterministic: shuffling draws from a
//! keyed stream (`Purpose::Shuffle`, trial = epoch), the optional augmentation from another
//! (`Purpose::Augment`, keyed by epoch and image index; [`crate::augment`]) and every parallel step splits over outputs
//! only, so the trained weights are bit-identical for any thread count.

use std::time::Instant;

use ndarray::{Array2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use crate::augment::Augment;
use crate::data::Dataset;
pub use crate::forward::{FloatKernel, ProductKernel};
use crate::forward::{argmax, layer_backward, layer_forward, softmax_cross_entropy};
use crate::graph::{
    BnStats, TrainCtx, init_stats, is_plain, net_backward, net_forward, net_train_forward,
};
use crate::model::Param;
use crate::network::ResolvedLayer;
use crate::optim::Step;
pub use crate::optim::{MAX_WEIGHT_DECAY, MOMENT_FLOOR, Optimizer};

/// The weight seam of the training loop.
pub trait WeightStore {
    /// The parameters the forward and backward passes use now (one entry per layer).
    fn params(&self) -> &[Option<Param>];
    /// Apply one step's gradients (`[out, fan_in]` weights and `[out]` biases, one entry per
    /// layer) at learning rate `lr`.
    fn update(&mut self, grads: &[Option<Param>], lr: f32);
    /// The float parameters to save as the trained model.
    fn export(&self) -> Vec<Option<Param>>;
}

/// Learning-rate schedule over epochs (the rate is constant within an epoch).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `every_epochs` epochs.
    Step {
        /// Period in epochs.
        every_epochs: usize,
        /// Factor.
        gamma: f32,
    },
    /// Cosine annealing from the base rate (epoch 0) towards `min_lr` (after the last epoch).
    Cosine {
        /// Floor of the rate.
        min_lr: f32,
    },
}

impl Schedule {
    /// Learning rate of epoch `e` (0-based) of `epochs`, from base rate `lr`.
    pub fn rate(&self, lr: f32, e: usize, epochs: usize) -> f32 {
        match *self {
            Schedule::Constant => lr,
            Schedule::Step {
                every_epochs,
                gamma,
            } => lr * gamma.powi((e / every_epochs.max(1)) as i32),
            Schedule::Cosine { min_lr } => {
                let t = e as f64 / epochs.max(1) as f64;
                (f64::from(min_lr)
                    + 0.5 * f64::from(lr - min_lr) * (1.0 + (std::f64::consts::PI * t).cos()))
                    as f32
            }
        }
    }
}

/// Largest base learning rate a training config accepts (beyond it every float step diverges).
pub const MAX_LR: f32 = 10.0;

/// Settings of one training run (the part of a training config the loop needs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSettings {
    /// Seed of shuffling (and, in the config, of initialisation).
    pub seed: u64,
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f32,
    /// Optimiser.
    pub optimizer: Optimizer,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Augmentation of the training images (random shift, mirror; [`Augment`]); default none,
    /// which leaves the loop and its results exactly as without the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<Augment>,
}

/// A float weight store: plain parameters updated by an [`Optimizer`] (its shared per-weight
/// [`Step`]).
#[derive(Clone, Debug)]
pub struct FloatStore {
    params: Vec<Option<Param>>,
    opt: Optimizer,
    /// First moment / momentum buffer per layer.
    m: Vec<Option<Param>>,
    /// Second moment per layer (Adam).
    v: Vec<Option<Param>>,
    step: u64,
}

fn zeros_like(p: &Option<Param>) -> Option<Param> {
    p.as_ref().map(|p| Param {
        weight: Array2::zeros(p.weight.raw_dim()),
        bias: p.bias.as_ref().map(|b| ndarray::Array1::zeros(b.len())),
    })
}

impl FloatStore {
    /// A store holding `params`, updated by `opt`.
    pub fn new(params: Vec<Option<Param>>, opt: Optimizer) -> Self {
        let m = params.iter().map(zeros_like).collect();
        let v = params.iter().map(zeros_like).collect();
        Self {
            params,
            opt,
            m,
            v,
            step: 0,
        }
    }
}

/// Elements per parallel task of an optimiser step (fixed, so results do not depend on the
/// thread count; the update is element-wise anyway).
const UPDATE_CHUNK: usize = 8192;

/// `w += f(g, w, m, v)` over the elements of one tensor.
fn update_slices<F>(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], f: &F)
where
    F: Fn(f32, f32, &mut f32, &mut f32) -> f32 + Sync,
{
    let run = |w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
        for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *w += f(g, *w, m, v);
        }
    };
    if w.len() < UPDATE_CHUNK {
        run(w, g, m, v);
        return;
    }
    w.par_chunks_mut(UPDATE_CHUNK)
        .zip(g.par_chunks(UPDATE_CHUNK))
        .zip(m.par_chunks_mut(UPDATE_CHUNK))
        .zip(v.par_chunks_mut(UPDATE_CHUNK))
        .for_each(|(((w, g), m), v)| run(w, g, m, v));
}

fn for_each_tensor<F>(p: &mut Param, g: &Param, m: &mut Param, v: &mut Param, f: &F)
where
    F: Fn(f32, f32, &mut f32, &mut f32) -> f32 + Sync,
{
    let sl = "parameters are standard-layout arrays";
    update_slices(
        p.weight.as_slice_mut().expect(sl),
        g.weight.as_slice().expect(sl),
        m.weight.as_slice_mut().expect(sl),
        v.weight.as_slice_mut().expect(sl),
        f,
    );
    if let (Some(b), Some(gb), Some(mb), Some(vb)) =
        (&mut p.bias, &g.bias, &mut m.bias, &mut v.bias)
    {
        update_slices(
            b.as_slice_mut().expect(sl),
            gb.as_slice().expect(sl),
            mb.as_slice_mut().expect(sl),
            vb.as_slice_mut().expect(sl),
            f,
        );
    }
}

impl WeightStore for FloatStore {
    fn params(&self) -> &[Option<Param>] {
        &self.params
    }

    fn update(&mut self, grads: &[Option<Param>], lr: f32) {
        self.step += 1;
        let step = self.opt.step(lr, self.step);
        for (((p, g), m), v) in self
            .params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            let (Some(p), Some(g), Some(m), Some(v)) = (p, g, m, v) else {
                continue;
            };
            // One match per step; each variant's loop is straight-line.
            match step {
                Step::Sgd(s) => for_each_tensor(p, g, m, v, &|g, w, _, _| s.delta(g, w)),
                Step::Momentum(s) => for_each_tensor(p, g, m, v, &|g, w, m, _| s.delta(g, w, m)),
                Step::Adam(s) => for_each_tensor(p, g, m, v, &|g, w, m, v| s.delta(g, w, m, v)),
            }
        }
    }

    fn export(&self) -> Vec<Option<Param>> {
        self.params.clone()
    }
}

/// Progress of the loop, reported after every step.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// 0-based epoch.
    pub epoch: usize,
    /// Steps done in this epoch.
    pub step: usize,
    /// Steps per epoch.
    pub steps: usize,
    /// Mean loss of this epoch so far.
    pub loss: f32,
}

/// What one epoch did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f32,
    /// Mean training loss.
    pub loss: f32,
    /// Training accuracy during the epoch (fraction, on the fly).
    pub train_accuracy: f64,
    /// Accuracy on the evaluation set after the epoch (fraction), if one was given.
    pub eval_accuracy: Option<f64>,
    /// Wall time of the epoch in seconds (training only).
    pub seconds: f64,
}

/// Fisher–Yates permutation of `0..n`, a pure function of `(seed, epoch)` through the keyed
/// stream with purpose `Shuffle`.
pub fn shuffled(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let s =
        nacsim_core::rng::Stream::new(seed, nacsim_core::rng::Purpose::Shuffle, 0, epoch as u32);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (s.uniform(i as u64) * (i + 1) as f64) as usize;
        idx.swap(i, j.min(i));
    }
    idx
}

/// Why the training loop stopped early.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A label of the data is not below the network's number of outputs.
    #[error(
        "{data}: label {label} at index {index} needs at least {need} outputs but the network's last layer outputs {outputs}; make network.classes (and the last layer) cover every label",
        need = *label + 1
    )]
    Labels {
        /// Dataset name.
        data: String,
        /// Index of the first offending sample.
        index: usize,
        /// Its label.
        label: usize,
        /// Outputs of the last layer.
        outputs: usize,
    },
    /// The loss or a weight became NaN or infinite: the run diverged.
    #[error(
        "training diverged at epoch {epoch}, step {step} (learning rate {lr}): {what} is not finite; lower train.lr, raise Adam's eps, or add weight decay"
    )]
    NonFinite {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch (0: checked after the epoch).
        step: usize,
        /// Learning rate of the epoch.
        lr: f32,
        /// What is not finite (`the loss`, `a weight of fc2`).
        what: String,
    },
}

/// Name of the first layer holding a non-finite parameter.
fn non_finite_param(layers: &[ResolvedLayer], params: &[Option<Param>]) -> Option<String> {
    layers.iter().zip(params).find_map(|(l, p)| {
        let p = p.as_ref()?;
        let bad = p.weight.iter().any(|v| !v.is_finite())
            || p.bias
                .as_ref()
                .is_some_and(|b| b.iter().any(|v| !v.is_finite()));
        bad.then(|| format!("a parameter of {}", l.name))
    })
}

/// Run the training loop: `epochs` passes of shuffled mini-batches of `train` through the layers,
/// with products by `kernel` and weights in `store`; after each epoch, evaluate on `eval` if given.
/// A final partial batch is used, not dropped. `progress` is called after every step.
///
/// # Errors
/// [`TrainError::Labels`] before the first step if a label of `train` or `eval` is not below the
/// last layer's outputs; [`TrainError::NonFinite`] at the first step whose logits are not finite,
/// or after the first epoch that leaves a non-finite parameter (nothing NaN is ever returned).
pub fn train<K: ProductKernel + ?Sized, S: WeightStore + ?Sized>(
    layers: &[ResolvedLayer],
    kernel: &K,
    store: &mut S,
    train: &Dataset,
    eval: Option<&Dataset>,
    settings: &TrainSettings,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<EpochRecord>, TrainError> {
    let mut stats = init_stats(layers);
    train_net(
        layers, kernel, store, &mut stats, train, eval, settings, progress,
    )
}

/// [`train`] for any network, graphs and BatchNorm2d included: `stats` holds the running
/// statistics of the BatchNorm2d layers (one entry per layer, e.g. [`init_stats`]), updated by
/// every step and used by the per-epoch evaluation. A plain chain ([`is_plain`]) runs the
/// sequential step exactly as [`train`] always has; any other network runs
/// [`net_train_forward`] / [`net_backward`], with dropout masks keyed by `settings.seed` and
/// the global step.
///
/// # Errors
/// As [`train`].
#[allow(clippy::too_many_arguments)]
pub fn train_net<K: ProductKernel + ?Sized, S: WeightStore + ?Sized>(
    layers: &[ResolvedLayer],
    kernel: &K,
    store: &mut S,
    stats: &mut Vec<Option<BnStats>>,
    train: &Dataset,
    eval: Option<&Dataset>,
    settings: &TrainSettings,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<EpochRecord>, TrainError> {
    if stats.len() != layers.len() {
        *stats = init_stats(layers);
    }
    let plain = is_plain(layers);
    let mut global_step = 0u64;
    let outputs = layers.last().map_or(0, |l| l.output.len());
    for d in std::iter::once(train).chain(eval) {
        if let Some(index) = (0..d.len()).find(|&i| d.label(i) >= outputs) {
            return Err(TrainError::Labels {
                data: d.name.clone(),
                index,
                label: d.label(index),
                outputs,
            });
        }
    }
    let n = train.len();
    let bs = settings.batch_size.max(1);
    let steps = n.div_ceil(bs);
    // Grown as epochs finish (an absurd epoch count must not reserve memory up front).
    let mut records = Vec::new();
    for epoch in 0..settings.epochs {
        let t0 = Instant::now();
        let lr = settings.schedule.rate(settings.lr, epoch, settings.epochs);
        let order = shuffled(n, settings.seed, epoch);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for (step, idx) in order.chunks(bs).enumerate() {
            let mut x = train.batch(idx);
            if let Some(a) = &settings.augment {
                a.apply_batch(&mut x, idx, train.shape, settings.seed, epoch);
            }
            let labels = train.labels_of(idx);
            let params = store.params();
            global_step += 1;
            let (h, caches) = if plain {
                let mut caches = Vec::with_capacity(layers.len());
                let mut h = x;
                for (i, (l, p)) in layers.iter().zip(params).enumerate() {
                    let (y, c) = layer_forward(kernel, i, l, p.as_ref(), h, true);
                    caches.push(c);
                    h = y;
                }
                (h, caches)
            } else {
                let mut ctx = TrainCtx {
                    seed: settings.seed,
                    step: global_step,
                    stats,
                };
                net_train_forward(kernel, layers, params, &mut ctx, x)
            };
            if h.iter().any(|v| !v.is_finite()) {
                return Err(TrainError::NonFinite {
                    epoch: epoch + 1,
                    step: step + 1,
                    lr,
                    what: "the network output (loss)".into(),
                });
            }
            let (loss, dy, ok) = softmax_cross_entropy(h.view(), &labels);
            loss_sum += f64::from(loss) * idx.len() as f64;
            correct += ok;
            let grads = if plain {
                chain_backward(kernel, layers, params, &caches, dy)
            } else {
                net_backward(kernel, layers, params, &caches, dy)
            };
            drop(caches);
            store.update(&grads, lr);
            progress(Progress {
                epoch,
                step: step + 1,
                steps,
                loss: (loss_sum / ((step * bs + idx.len()) as f64)) as f32,
            });
        }
        let seconds = t0.elapsed().as_secs_f64();
        if let Some(what) = non_finite_param(layers, store.params()) {
            return Err(TrainError::NonFinite {
                epoch: epoch + 1,
                step: 0,
                lr,
                what,
            });
        }
        let eval_accuracy =
            eval.map(|d| accuracy_net(kernel, layers, store.params(), stats, d, 1000));
        records.push(EpochRecord {
            epoch: epoch + 1,
            lr,
            loss: (loss_sum / n.max(1) as f64) as f32,
            train_accuracy: correct as f64 / n.max(1) as f64,
            eval_accuracy,
            seconds,
        });
    }
    Ok(records)
}

/// The sequential backward pass of a plain chain (from the first layer with parameters on).
fn chain_backward<K: ProductKernel + ?Sized>(
    kernel: &K,
    layers: &[ResolvedLayer],
    params: &[Option<Param>],
    caches: &[crate::forward::Cache],
    mut dy: Array2<f32>,
) -> Vec<Option<Param>> {
    let first_param = layers.iter().position(|l| l.has_params()).unwrap_or(0);
    let mut grads: Vec<Option<Param>> = vec![None; layers.len()];
    for i in (first_param..layers.len()).rev() {
        let (dx, g) = layer_backward(
            kernel,
            i,
            &layers[i],
            params[i].as_ref(),
            &caches[i],
            dy,
            i > first_param,
        );
        grads[i] = g;
        match dx {
            Some(d) => dy = d,
            None => break,
        }
    }
    grads
}

/// Top-1 accuracy (fraction) of the layers with `params` over `data`, in batches of `batch`.
pub fn accuracy<K: ProductKernel + ?Sized>(
    kernel: &K,
    layers: &[ResolvedLayer],
    params: &[Option<Param>],
    data: &Dataset,
    batch: usize,
) -> f64 {
    accuracy_net(kernel, layers, params, &[], data, batch)
}

/// [`accuracy`] of any network, BatchNorm2d on its running statistics `stats` (one entry per
/// layer; missing entries are PyTorch's initial statistics).
pub fn accuracy_net<K: ProductKernel + ?Sized>(
    kernel: &K,
    layers: &[ResolvedLayer],
    params: &[Option<Param>],
    stats: &[Option<BnStats>],
    data: &Dataset,
    batch: usize,
) -> f64 {
    let n = data.len();
    if n == 0 {
        return 0.0;
    }
    let mut correct = 0;
    let all: Vec<usize> = (0..n).collect();
    for idx in all.chunks(batch.max(1)) {
        let y = net_forward(kernel, layers, params, stats, data.batch(idx));
        let labels = data.labels_of(idx);
        correct += y
            .axis_iter(Axis(0))
            .zip(&labels)
            .filter(|(r, l)| argmax(r.as_slice().expect("contiguous")) == **l)
            .count();
    }
    correct as f64 / n as f64
}

/// Which dataset a training config trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum DatasetName {
    /// Fashion-MNIST (Xiao et al. 2017), IDX files; default folder
    /// `/usr/share/datasets/fashion-mnist` (Debian package `dataset-fashion-mnist`).
    FashionMnist,
    /// MNIST (LeCun et al. 1998), IDX files; no default folder (pass `--data DIR`).
    Mnist,
}

impl DatasetName {
    /// Default folder of the IDX files, if the dataset has a standard install location.
    pub fn default_dir(&self) -> Option<&'static str> {
        match self {
            DatasetName::FashionMnist => Some("/usr/share/datasets/fashion-mnist"),
            DatasetName::Mnist => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;

    fn setup(classes: usize) -> (Model, Dataset, TrainSettings) {
        let spec: crate::network::NetworkSpec = ron::from_str(&format!(
            "(schema_version: 1, name: \"t\", input: (c: 1, h: 28, w: 28), classes: {classes}, layers: [Flatten, Dense(out: {classes})])"
        ))
        .unwrap();
        let settings = TrainSettings {
            seed: 1,
            epochs: 2,
            batch_size: 16,
            lr: 1e-3,
            optimizer: Optimizer::Sgd {
                momentum: 0.0,
                weight_decay: 0.0,
            },
            schedule: Schedule::Constant,
            augment: None,
        };
        (
            Model::init(spec, 1).unwrap(),
            Dataset::bundled_sample().limit(64),
            settings,
        )
    }

    #[test]
    fn labels_beyond_the_outputs_are_an_error_not_a_panic() {
        let (m, data, s) = setup(5);
        let mut store = FloatStore::new(m.params.clone(), s.optimizer);
        let e = train(
            &m.layers,
            &FloatKernel,
            &mut store,
            &data,
            None,
            &s,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(e, TrainError::Labels { outputs: 5, .. }), "{e}");
        assert!(e.to_string().contains("network.classes"), "{e}");
    }

    #[test]
    fn a_non_finite_weight_stops_training_with_an_error() {
        let (mut m, data, s) = setup(10);
        m.params[1].as_mut().unwrap().weight[[0, 300]] = f32::INFINITY;
        let mut store = FloatStore::new(m.params.clone(), s.optimizer);
        let e = train(
            &m.layers,
            &FloatKernel,
            &mut store,
            &data,
            None,
            &s,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                TrainError::NonFinite {
                    epoch: 1,
                    step: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("lower train.lr"), "{e}");
        // A finite run is unchanged: two epochs recorded.
        let (m, data, s) = setup(10);
        let mut store = FloatStore::new(m.params.clone(), s.optimizer);
        let h = train(
            &m.layers,
            &FloatKernel,
            &mut store,
            &data,
            None,
            &s,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(h.len(), 2);
    }
}
