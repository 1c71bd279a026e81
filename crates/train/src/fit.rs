//! One training run: from a [`TrainConfig`] and the data to a trained [`Model`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use nacsim_core::memory::{Estimate, MemoryError, check};
use nacsim_insitu::store::WarningSink;
use nacsim_insitu::store::{NeuroSimConfig, NeuroSimWriteLog};
use nacsim_insitu::{CrossbarKernel, CrossbarStore, InSituConfig, StoreError, WriteStats};
use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_nn::network::footprint;
use nacsim_nn::train::{
    EpochRecord, FloatKernel, FloatStore, Progress, WeightStore, accuracy_net, train_net,
};

use crate::config::{KernelChoice, StoreChoice, TrainConfig};
use crate::{Error, Kernel};

/// Images per batch of the accuracy passes (the test accuracy of a trained model, and the
/// simulator's).
pub const EVAL_BATCH: usize = 1000;

/// In-situ crossbar settings with the path they were read from.
pub type InSitu = (InSituConfig, PathBuf);

/// The in-situ crossbar settings a training config names (`store: Crossbar(settings: …)`,
/// relative to `base`, the config's folder), with their path; `None` for a float store.
///
/// # Errors
/// The settings file cannot be read or parsed (the error names the file, line and field).
pub fn insitu_settings(cfg: &TrainConfig, base: &Path) -> Result<Option<InSitu>, Error> {
    Ok(match &cfg.store {
        StoreChoice::Crossbar { settings } => {
            let p = base.join(settings);
            Some((nacsim_core::config::load(&p)?, p))
        }
        StoreChoice::Float => None,
    })
}

/// The data after the in-situ settings' data options (resize, binarize, images per epoch).
pub fn apply_insitu_data(
    insitu: Option<&InSitu>,
    train_set: Dataset,
    test_set: Dataset,
) -> (Dataset, Dataset) {
    match insitu {
        Some((s, _)) => (
            nacsim_insitu::data::apply_train(train_set, &s.data),
            nacsim_insitu::data::apply(test_set, &s.data),
        ),
        None => (train_set, test_set),
    }
}

/// The network's input shape must be the images' shape (channels, height and width), and its
/// classes must cover the dataset's labels. `config` is the config's path and `data` describes
/// where the images came from, for the message.
///
/// # Errors
/// [`Error::Data`], naming the config, `network.input` or `network.classes`, the value and the
/// data.
pub fn check_data(
    cfg: &TrainConfig,
    config: &Path,
    data: &str,
    train_set: &Dataset,
) -> Result<(), Error> {
    if train_set.shape != cfg.network.input {
        return Err(Error::Data(format!(
            "{}: network.input = {} but the images in {} are {}: make the input (c, h, w) equal to the images' shape",
            config.display(),
            cfg.network.input,
            data,
            train_set.shape
        )));
    }
    if cfg.network.classes < train_set.classes {
        return Err(Error::Data(format!(
            "{}: network.classes = {}: the dataset in {} has {} classes (labels 0..={}); the network must have at least {} outputs",
            config.display(),
            cfg.network.classes,
            data,
            train_set.classes,
            train_set.classes - 1,
            train_set.classes
        )));
    }
    Ok(())
}

/// The memory a training run of `cfg` (named `label` in the message) needs, checked against
/// the limit (`nacsim_core::memory`, `NACSIM_MEMORY_LIMIT`): parameters with gradients and
/// optimiser moments, the cached activations of a step, an evaluation batch, the epoch history
/// and the block-circulant kernel's tables. An impossible topology is left to the loader.
///
/// # Errors
/// The estimate exceeds the limit.
pub fn check_memory(cfg: &TrainConfig, label: &str) -> Result<(), MemoryError> {
    let Ok(layers) = cfg.network.resolve() else {
        return Ok(());
    };
    let step = footprint(&layers, cfg.train.batch_size);
    let eval = footprint(&layers, EVAL_BATCH);
    let mut e = Estimate::new();
    e.add(
        "parameters with gradients and optimiser moments",
        step.params.saturating_mul(4),
    )
    .add(
        format!(
            "activations and their gradients for a batch of {}",
            cfg.train.batch_size
        ),
        step.activations_all.saturating_mul(2),
    )
    .add("an evaluation batch", eval.activations_peak)
    .add(
        format!("the history of {} epochs", cfg.train.epochs),
        (cfg.train.epochs as u64).saturating_mul(std::mem::size_of::<EpochRecord>() as u64),
    );
    if let KernelChoice::BlockCirculant { block, .. } = &cfg.kernel {
        let k = *block as u64;
        let widest = layers
            .iter()
            .map(|l| (l.input.len().max(l.output.len()) as u64).div_ceil(k.max(1)) * k)
            .max()
            .unwrap_or(0);
        e.add(
            format!("block-circulant tables for block {block}"),
            k.saturating_mul(k)
                .saturating_add(widest.saturating_mul(widest))
                .saturating_mul(8),
        );
    }
    check(&format!("training {label}"), &e)
}

/// A trained network and what its training did.
pub struct Fitted {
    /// The trained model (weights as the hardware-aware forward pass used them).
    pub model: Model,
    /// One record per epoch (loss, train accuracy, accuracy on the test set through the
    /// training forward pass).
    pub history: Vec<EpochRecord>,
    /// Write-side totals of in-situ training.
    pub write_stats: Option<WriteStats>,
    /// MLP_NeuroSim's write cost per epoch and sub-array, when [`fit_with_neurosim`] asked
    /// for it.
    pub neurosim_write: Option<NeuroSimWriteLog>,
    /// Test accuracy of the saved weights by the float forward pass.
    pub accuracy: f64,
    /// Wall time of the training loop in seconds.
    pub seconds: f64,
}

/// Trains the network of `cfg` (from `cfg.init`, relative to `base`, if given) on `train_set`,
/// evaluating on `test_set` after every epoch; `insitu` makes the weight store a crossbar, whose
/// warnings go to `warnings` (dropped if `None`). `progress` is called after every step.
///
/// The memory estimate is checked first ([`check_memory`]).
///
/// # Errors
/// Memory limit, bad `init` model or topology, in-situ settings the store rejects, a training
/// failure (labels beyond the outputs, non-finite values).
pub fn fit(
    cfg: &TrainConfig,
    base: &Path,
    insitu: Option<&InSitu>,
    train_set: &Dataset,
    test_set: &Dataset,
    warnings: Option<WarningSink>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Fitted, Error> {
    fit_with_neurosim(
        cfg, base, insitu, train_set, test_set, warnings, None, progress,
    )
}

/// [`fit()`] with MLP_NeuroSim's write accounting on the crossbar store (issue #17):
/// `neurosim` is a design's `neurosim` block with the design's path (for messages); every
/// update step is priced as one training image ([`CrossbarStore::enable_neurosim`]) and
/// [`Fitted::neurosim_write`] holds the sums per epoch. The weights are the same as without it.
///
/// # Errors
/// As [`fit()`]; and [`Error::Data`] naming the file and field when `neurosim` is given
/// without an in-situ store, with a batch size other than 1 (NeuroSim writes after every
/// image), or when the store rejects it (scheme, mapping, sub-array shapes).
#[allow(clippy::too_many_arguments)]
pub fn fit_with_neurosim(
    cfg: &TrainConfig,
    base: &Path,
    insitu: Option<&InSitu>,
    train_set: &Dataset,
    test_set: &Dataset,
    warnings: Option<WarningSink>,
    neurosim: Option<(&NeuroSimConfig, &Path)>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Fitted, Error> {
    if let Some((_, design)) = neurosim {
        if insitu.is_none() {
            return Err(Error::Data(format!(
                "store = {:?}: NeuroSim figures from {} price the write pulses of in-situ training; use store: Crossbar(settings: …) with scheme: NeuroSim",
                cfg.store,
                design.display()
            )));
        }
        if cfg.train.batch_size != 1 {
            return Err(Error::Data(format!(
                "train.batch_size = {}: NeuroSim figures from {} price every update as one training image (NeuroSim writes after each image); set batch_size: 1",
                cfg.train.batch_size,
                design.display()
            )));
        }
    }
    check_memory(cfg, &format!("the network of {}", cfg.name))?;
    let mut model = Model::init(cfg.network.clone(), cfg.train.seed)?;
    if !cfg.init.is_empty() {
        let p = base.join(&cfg.init);
        let start = Model::load(&p)?;
        if start.layers != model.layers {
            return Err(Error::InitTopology { path: p });
        }
        model.params = start.params;
        model.stats = start.stats;
    }
    let kernel = match insitu {
        Some((s, _)) => Kernel::Crossbar(CrossbarKernel::new(
            s.periphery,
            s.w_max,
            cfg.train.seed,
            model.layers.len(),
        )),
        None => Kernel::build(&cfg.kernel, &model.layers),
    };
    let mut xbar = match insitu {
        Some((s, p)) => {
            let mut x = CrossbarStore::new(
                s.clone(),
                model.params.clone(),
                cfg.train.optimizer,
                cfg.train.seed,
            )
            .map_err(|error| Error::InSitu {
                path: p.clone(),
                error,
            })?;
            x.set_warning_sink(warnings.unwrap_or_else(|| Box::new(|_| {})));
            if let Some((n, design)) = neurosim {
                let steps = train_set.len().div_ceil(cfg.train.batch_size.max(1)) as u64;
                x.enable_neurosim(n, steps)
                    .map_err(|e| neurosim_error(e, design, p))?;
            }
            Some(x)
        }
        None => None,
    };
    let float_store = FloatStore::new(model.params.clone(), cfg.train.optimizer);
    // The sine kernel may make the learning rate a power of two (a shift).
    let mut store: Box<dyn WeightStore> = match cfg.kernel {
        KernelChoice::Sine { lr_shift: true, .. } => Box::new(nacsim_sine::ShiftRate(float_store)),
        _ => Box::new(float_store),
    };
    let t0 = Instant::now();
    let store: &mut dyn WeightStore = match &mut xbar {
        Some(x) => x,
        None => &mut *store,
    };
    let mut stats = model.stats.clone();
    let history = train_net(
        &model.layers,
        &kernel,
        store,
        &mut stats,
        train_set,
        Some(test_set),
        &cfg.train,
        progress,
    )?;
    let seconds = t0.elapsed().as_secs_f64();
    let mut trained = model;
    trained.params = store.export();
    trained.stats = stats;
    let write_stats = xbar.as_ref().map(CrossbarStore::stats);
    let neurosim_write = xbar
        .as_ref()
        .and_then(CrossbarStore::neurosim_write)
        .cloned();
    // Save the weights the hardware-aware forward pass used: the saved model is exactly what
    // was evaluated.
    kernel.to_effective(&mut trained.params);
    let accuracy = accuracy_net(
        &FloatKernel,
        &trained.layers,
        &trained.params,
        &trained.stats,
        test_set,
        EVAL_BATCH,
    );
    Ok(Fitted {
        model: trained,
        history,
        write_stats,
        neurosim_write,
        accuracy,
        seconds,
    })
}

/// The store's rejection of a NeuroSim block, each field named with its file: `neurosim.*`
/// in the design, the rest in the in-situ settings.
fn neurosim_error(e: StoreError, design: &Path, insitu: &Path) -> Error {
    let fields = match e {
        StoreError::Invalid(f) => f,
        other => return Error::Data(format!("{}: {other}", insitu.display())),
    };
    Error::Data(
        fields
            .iter()
            .map(|f| {
                let file = if f.field.starts_with("neurosim") {
                    design
                } else {
                    insitu
                };
                format!("{}: {f}", file.display())
            })
            .collect::<Vec<_>>()
            .join("; "),
    )
}
