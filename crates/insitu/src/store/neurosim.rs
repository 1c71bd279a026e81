//! Opt-in MLP_NeuroSim write accounting (issue #17): every update step, the signed pulse count
//! and mean conductance of each programmed cell, handed per layer to
//! [`SubArray::write_image`](nacsim_crossbar::neurosim::SubArray::write_image) and summed per
//! epoch. Off unless [`CrossbarStore::enable_neurosim`](super::CrossbarStore::enable_neurosim)
//! is called; it only reads what the programmer did, so training is unchanged.

use nacsim_core::config::FieldError;
use nacsim_crossbar::neurosim::{NeuroSimConfig, SubArray, Technology, WriteCost};
use serde::Serialize;

use super::layer::XLayer;

/// One programmed cell of a step: (layer-wide device index, signed pulse count with LTP > 0,
/// mean of its conductance before and after in S).
pub(super) type CellWrite = (u32, i32, f64);

/// NeuroSim's write cost of every epoch, per sub-array (layer), from the pulses training applied.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NeuroSimWriteLog {
    /// Update steps (training images at batch 1) per epoch.
    pub steps_per_epoch: u64,
    /// Per epoch: the steps it had (the last epoch of a run may be cut short) and one
    /// [`WriteCost`] per sub-array (input side first), each the sum over the epoch's steps.
    pub epochs: Vec<NeuroSimEpochWrite>,
}

/// The write cost of one epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NeuroSimEpochWrite {
    /// Update steps counted in this epoch.
    pub steps: u64,
    /// Per sub-array, input side first: the sums of `SubArray::write_image` over the steps.
    pub layers: Vec<WriteCost>,
}

/// One sub-array's dense per-step buffers, in NeuroSim's layout (row = input `k`, column =
/// output `o`: index `k · out + o`).
struct Layer {
    /// Crossbar rows of the store layer (`fan_in` + bias): the device `(o, k)` is `o·xcols + k`.
    xcols: usize,
    sub: SubArray,
    pulses: Vec<i32>,
    g_mean: Vec<f64>,
    touched: Vec<usize>,
}

/// The tracker the store keeps while the accounting is on.
pub(super) struct Tracker {
    cfg: NeuroSimConfig,
    tech: Technology,
    layers: Vec<Layer>,
    /// Store layer index → tracker layer.
    by_store: Vec<Option<usize>>,
    pub(super) log: NeuroSimWriteLog,
}

impl Tracker {
    /// Checks `cfg` against the store's layers (one sub-array per crossbar layer, input side
    /// first, `rows` = fan-in (+ bias), `cols` = outputs) and builds the sub-arrays.
    pub(super) fn new(
        cfg: &NeuroSimConfig,
        layers: &[Option<XLayer>],
        steps_per_epoch: u64,
    ) -> Result<Self, Vec<FieldError>> {
        if let Err(e) = cfg.validate() {
            return Err(vec![FieldError::new(
                format!("neurosim.{}", e.field),
                "",
                e.message,
            )]);
        }
        let mut errors = Vec::new();
        if steps_per_epoch == 0 {
            errors.push(FieldError::new(
                "steps_per_epoch",
                0,
                "must be at least 1 (a training set with no images?)",
            ));
        }
        let xl: Vec<(usize, &XLayer)> = layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.as_ref().map(|l| (i, l)))
            .collect();
        if xl.len() != cfg.layers.len() {
            errors.push(FieldError::new(
                "neurosim.layers",
                format!("{} sub-arrays", cfg.layers.len()),
                format!(
                    "must name one sub-array per weight layer of the network: it has {} (input side first)",
                    xl.len()
                ),
            ));
        }
        for (i, ((_, l), s)) in xl.iter().zip(&cfg.layers).enumerate() {
            if s.rows != l.cols {
                errors.push(FieldError::new(
                    format!("neurosim.layers[{i}].rows"),
                    s.rows,
                    format!(
                        "must equal the layer's inputs{}: {}",
                        if l.has_bias { " + 1 (bias)" } else { "" },
                        l.cols
                    ),
                ));
            }
            if s.cols != l.out {
                errors.push(FieldError::new(
                    format!("neurosim.layers[{i}].cols"),
                    s.cols,
                    format!("must equal the layer's outputs: {}", l.out),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let tech = Technology::ptm32_hp(cfg.temperature_k);
        let mut by_store = vec![None; layers.len()];
        let tl = xl
            .iter()
            .zip(&cfg.layers)
            .enumerate()
            .map(|(i, ((li, l), s))| {
                by_store[*li] = Some(i);
                Layer {
                    xcols: l.cols,
                    sub: SubArray::new(&tech, cfg, s),
                    pulses: vec![0; s.rows * s.cols],
                    g_mean: vec![0.0; s.rows * s.cols],
                    touched: Vec::new(),
                }
            })
            .collect();
        Ok(Tracker {
            cfg: cfg.clone(),
            tech,
            layers: tl,
            by_store,
            log: NeuroSimWriteLog {
                steps_per_epoch: steps_per_epoch.max(1),
                epochs: Vec::new(),
            },
        })
    }

    /// Adds the cells store layer `li` programmed in this step.
    pub(super) fn record(&mut self, li: usize, cells: &[CellWrite]) {
        let Some(Some(t)) = self.by_store.get(li) else {
            return;
        };
        let l = &mut self.layers[*t];
        let out = l.sub.cols;
        for &(d, n, g) in cells {
            let d = d as usize;
            let (o, k) = (d / l.xcols, d % l.xcols);
            let i = k * out + o;
            l.pulses[i] = n;
            l.g_mean[i] = g;
            l.touched.push(i);
        }
    }

    /// Closes update step `step` (0-based): every sub-array's write cost of the step (input
    /// side first, the first with `Train.cpp`'s double-counted periphery energy) is added to
    /// its epoch; the buffers are cleared.
    pub(super) fn finish_step(&mut self, step: u64) {
        let e = (step / self.log.steps_per_epoch) as usize;
        let n_layers = self.layers.len();
        while self.log.epochs.len() <= e {
            self.log.epochs.push(NeuroSimEpochWrite {
                steps: 0,
                layers: vec![WriteCost::default(); n_layers],
            });
        }
        let epoch = &mut self.log.epochs[e];
        epoch.steps += 1;
        for (i, l) in self.layers.iter_mut().enumerate() {
            let c = l
                .sub
                .write_image(&self.tech, &self.cfg, &l.pulses, &l.g_mean, i == 0);
            epoch.layers[i].add(&c);
            for &j in &l.touched {
                l.pulses[j] = 0;
                l.g_mean[j] = 0.0;
            }
            l.touched.clear();
        }
    }
}
