//! The Monte Carlo batch axis: many trials of one design evaluated in one pass over the images.

use ndarray::Array2;

use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_nn::qnet::{QLayer, QNetwork};

use super::{EngineGemm, SimError, Simulation};
use crate::design::Design;

impl Simulation {
    /// Monte Carlo batch: one simulation per trial of `trials` (base seed `seed`), sharing one
    /// quantization (calibration on `calib`); the trials are programmed in parallel. Each
    /// result equals [`Simulation::with_trial`]`(design, model, calib, seed, trial)` (the
    /// quantization is deterministic). Evaluate them together with
    /// [`Simulation::accuracy_trials`].
    ///
    /// # Errors
    /// As [`Simulation::new`] (the first failing trial's error).
    pub fn with_trials(
        design: Design,
        model: &Model,
        calib: &Dataset,
        seed: u64,
        trials: &[u32],
    ) -> Result<Vec<Self>, SimError> {
        use rayon::prelude::*;
        let qnet = QNetwork::quantize(model, calib, &design.config.quant).map_err(|e| {
            SimError::Quantize {
                network: model.spec.name.clone(),
                msg: e.to_string(),
            }
        })?;
        trials
            .par_iter()
            .map(|&t| Self::build(design.clone(), qnet.clone(), model, seed, t))
            .collect()
    }

    /// Top-1 accuracy of every simulation of `sims` over `data` in one pass over the images
    /// (the Monte Carlo batch axis): per batch of 1,000 images the input codes are computed
    /// once, the layers before the first product and the first product's input conversion
    /// are shared when the trials agree on them (engines with a Monte Carlo batch axis,
    /// [`crate::engine::Engine::run_trials`]), and every trial runs on the batch
    /// before the next batch is read. Result `t` is bit-identical to `sims[t].accuracy(data)`
    /// (tested); trials that cannot share (different networks, designs with a native
    /// whole-network model) are simply evaluated one by one.
    ///
    /// # Panics
    /// As [`Simulation::accuracy`]: if the images do not have the network's input size.
    pub fn accuracy_trials(sims: &[Simulation], data: &Dataset) -> Vec<f64> {
        const BATCH: usize = 1000;
        let Some(first) = sims.first() else {
            return Vec::new();
        };
        let shareable = sims.iter().all(|s| {
            s.native.is_none()
                && s.qnet.inputs.is_empty()
                && s.qnet.layers.len() == first.qnet.layers.len()
                && s.qnet.input_scale == first.qnet.input_scale
                && s.qnet.config == first.qnet.config
        });
        if !shareable {
            return sims.iter().map(|s| s.accuracy(data)).collect();
        }
        first.qnet.accuracy_of(data, BATCH, sims.len(), |x, s| {
            first.forward_trials(sims, x, s)
        })
    }

    /// Int8 logits of every trial of `sims` (which share `self`'s quantized input) for the
    /// input codes `x` of images `first_image..`: the shared prefix of the network is run
    /// once, the first product is run for all trials together when their engine has a Monte
    /// Carlo batch axis ([`crate::engine::Engine::run_trials`]), and the rest per trial.
    pub(super) fn forward_trials(
        &self,
        sims: &[Simulation],
        x: Array2<i8>,
        first_image: usize,
    ) -> Vec<Array2<i8>> {
        let n_layers = self.qnet.layers.len();
        let mut i = 0;
        let mut shared = x;
        // Layers without products that every trial has alike: run once.
        while i < n_layers
            && !matches!(self.qnet.layers[i], QLayer::Gemm(_))
            && sims.iter().all(|s| s.qnet.layers[i] == self.qnet.layers[i])
        {
            shared = self
                .qnet
                .layer_forward_at(&EngineGemm { sim: self }, i, shared, first_image);
            i += 1;
        }
        let mut hs: Vec<Array2<i8>> = match self.shared_product(sims, i, &shared, first_image) {
            Some(hs) => {
                i += 1;
                hs
            }
            None => vec![shared; sims.len()],
        };
        // The rest per trial, trials in parallel (each trial's result does not depend on the
        // thread count).
        use rayon::prelude::*;
        hs.par_iter_mut().zip(sims).for_each(|(h, sim)| {
            for l in i..n_layers {
                let x = std::mem::take(h);
                *h = sim
                    .qnet
                    .layer_forward_at(&EngineGemm { sim }, l, x, first_image);
            }
        });
        hs
    }

    /// Layer `i` of every trial on the shared input `x`, when its engine runs the trials'
    /// compilations together ([`crate::engine::Engine::run_trials`]); `None` otherwise.
    fn shared_product(
        &self,
        sims: &[Simulation],
        i: usize,
        x: &Array2<i8>,
        first_image: usize,
    ) -> Option<Vec<Array2<i8>>> {
        let mut layers = Vec::with_capacity(sims.len());
        let mut gemms = Vec::with_capacity(sims.len());
        let e = self.plan.get(i)?.engine?;
        for s in sims {
            let (QLayer::Gemm(q), Some(c)) = (s.qnet.layers.get(i)?, &s.plan.get(i)?.compiled)
            else {
                return None;
            };
            // The trials share the design: the same engine runs layer i in each.
            if s.plan[i].engine != Some(e) {
                return None;
            }
            layers.push(c);
            gemms.push(q);
        }
        let q0 = gemms[0];
        if gemms
            .iter()
            .any(|q| q.kind != q0.kind || q.input != q0.input)
        {
            return None;
        }
        let b = x.nrows();
        let cols;
        let input = match q0.kind {
            nacsim_nn::qnet::GemmKind::Dense => x.view(),
            nacsim_nn::qnet::GemmKind::Conv {
                kernel,
                stride,
                padding,
                ..
            } => {
                cols = nacsim_nn::qnet::im2col_i8(
                    x.view(),
                    q0.input,
                    q0.output,
                    kernel,
                    stride,
                    padding,
                );
                cols.view()
            }
        };
        let row0 = (first_image * q0.rows_per_sample()) as u64;
        let accs = self.engines[e].run_trials(&layers, input, row0)?;
        Some(
            gemms
                .iter()
                .zip(&accs)
                .map(|(q, acc)| nacsim_nn::qnet::gemm_epilogue(q, acc.view(), b))
                .collect(),
        )
    }
}
