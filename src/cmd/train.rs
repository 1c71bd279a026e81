//! `nacsim train`: train a network from a training config.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_nn::train::{
    CirculantConvention, EpochRecord, FloatKernel, FloatStore, KernelChoice, PotChoice,
    ProductKernel, SineInput, StoreChoice, TrainConfig, WeightStore, accuracy, train,
};
use serde::Serialize;

use super::data::Source;
use crate::CliResult;

/// Arguments of `nacsim train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training config (RON), e.g. models/training/fmnist-mlp.ron.
    #[arg(value_name = "CONFIG.ron")]
    pub config: PathBuf,
    /// Folder for the trained network file; default: the folder of the config's `output` path.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Folder with the dataset's IDX files (train-* and t10k-*, gz or raw); default: the config's
    /// `data_dir`, else the dataset's standard folder (/usr/share/datasets/fashion-mnist).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Override the number of epochs of the config.
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Train on the first K training images only (for quick checks).
    #[arg(long, value_name = "K")]
    pub limit: Option<usize>,
    /// Evaluate on the first K test images after each epoch (default: all).
    #[arg(long, value_name = "K")]
    pub eval_limit: Option<usize>,
    /// Print one JSON object (keys: name, accuracy, images, epochs, seconds, output, history;
    /// insitu with the write totals of crossbar training).
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Overwrite the output network file if it exists. Without --out the output is the
    /// config's `output` path, which for the committed configs is a committed model in
    /// models/networks/: nacsim refuses to overwrite it unless --force is given.
    #[arg(long)]
    pub force: bool,
}

#[derive(Serialize)]
struct TrainReport {
    name: String,
    config: String,
    seed: u64,
    accuracy: f64,
    images: usize,
    epochs: usize,
    seconds: f64,
    threads: usize,
    output: String,
    history: Vec<EpochRecord>,
    /// Write-side totals of in-situ training (pulses, energy, latency).
    #[serde(skip_serializing_if = "Option::is_none")]
    insitu: Option<nacsim_insitu::WriteStats>,
}

/// Run `nacsim train`.
pub fn run(a: &TrainArgs) -> CliResult<()> {
    let mut cfg: TrainConfig = nacsim_core::config::load(&a.config)?;
    if let Some(e) = a.epochs {
        if e == 0 {
            return Err("--epochs 0: must be at least 1".into());
        }
        cfg.train.epochs = e;
    }
    let base = a.config.parent().unwrap_or_else(|| Path::new("."));
    let data_dir: PathBuf = match (&a.data, cfg.data_dir.as_str(), cfg.dataset.default_dir()) {
        (Some(d), _, _) => d.clone(),
        (None, d, _) if !d.is_empty() => base.join(d),
        (None, _, Some(d)) => PathBuf::from(d),
        (None, _, None) => {
            return Err(format!(
                "{}: dataset {:?} has no standard folder and data_dir is empty; pass --data DIR",
                a.config.display(),
                cfg.dataset
            )
            .into());
        }
    };
    let src = Source::Dir(data_dir);
    let train_set = src.load(Split::Train, super::data::check_limit("limit", a.limit)?)?;
    let test_set = src.load(
        Split::Test,
        super::data::check_limit("eval-limit", a.eval_limit)?,
    )?;
    // In-situ training on crossbars: the settings file (relative to the config) may resize,
    // binarize and limit the data.
    let insitu = insitu_settings(&cfg, base)?;
    let (train_set, test_set) = apply_insitu_data(insitu.as_ref(), train_set, test_set);
    check_input_shape(&cfg, &a.config, &src, &train_set)?;
    let out_path = {
        let o = base.join(&cfg.output);
        match &a.out {
            Some(dir) => dir.join(o.file_name().ok_or("config output has no file name")?),
            None => o,
        }
    };
    if out_path.exists() && !a.force {
        return Err(format!(
            "{}: the output network exists (without --out, the config's `output` path: for a committed config, a committed model); pass --out DIR to write the trained network elsewhere, or --force to overwrite it",
            out_path.display()
        )
        .into());
    }
    if let Some(dir) = out_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create folder: {e}", dir.display()))?;
    }

    let steps = train_set.len().div_ceil(cfg.train.batch_size);
    let pb = crate::progress_bar(
        (steps as u64).saturating_mul(cfg.train.epochs as u64),
        a.quiet || a.json,
    );
    pb.set_prefix(cfg.name.clone());
    let fitted = fit(
        &cfg,
        base,
        insitu.as_ref(),
        &train_set,
        &test_set,
        true,
        &mut |p| {
            pb.inc(1);
            if p.step == p.steps || p.step % 50 == 0 {
                pb.set_message(format!(
                    "epoch {}/{} loss {:.4}",
                    p.epoch + 1,
                    cfg.train.epochs,
                    p.loss
                ));
            }
        },
    )
    .map_err(|e| format!("{}: {e}", a.config.display()))?;
    pb.finish_and_clear();
    let Fitted {
        model: mut trained,
        history,
        write_stats,
        accuracy: acc,
        seconds,
    } = fitted;
    trained.spec.notes = format!(
        "Trained by `nacsim train {}` (kernel {:?}, store {:?}; seed {}, {} epochs, batch {}, {} training images): test accuracy {:.4} on {} images of {}.",
        a.config.display(),
        cfg.kernel,
        cfg.store,
        cfg.train.seed,
        cfg.train.epochs,
        cfg.train.batch_size,
        train_set.len(),
        acc,
        test_set.len(),
        src.describe()
    );
    trained.spec.trained_for = trained_for(&cfg)?;
    trained.save(&out_path)?;
    let report = TrainReport {
        name: cfg.name.clone(),
        config: a.config.display().to_string(),
        seed: cfg.train.seed,
        accuracy: acc,
        images: test_set.len(),
        epochs: cfg.train.epochs,
        seconds,
        threads: rayon::current_num_threads(),
        output: out_path.display().to_string(),
        history,
        insitu: write_stats,
    };
    let hist_path = out_path.with_extension("train.json");
    std::fs::write(&hist_path, serde_json::to_string_pretty(&report)?)
        .map_err(|e| format!("{}: cannot write: {e}", hist_path.display()))?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!(
            "{:>5} {:>9} {:>10} {:>10} {:>10} {:>8}",
            "epoch",
            "lr",
            "loss",
            "train acc",
            "test acc",
            "time s"
        );
        for r in &report.history {
            outln!(
                "{:>5} {:>9.2e} {:>10.4} {:>10.4} {:>10} {:>8.2}",
                r.epoch,
                r.lr,
                r.loss,
                r.train_accuracy,
                r.eval_accuracy.map_or("-".into(), |v| format!("{v:.4}")),
                r.seconds
            );
        }
        if let Some(w) = &report.insitu {
            outln!(
                "in situ: {} pulses (max {} per device), write {:.3e} pJ + half-select {:.3e} pJ + read {:.3e} pJ, write latency {:.3e} s",
                w.pulses,
                w.max_pulses_per_device,
                w.write_energy_pj,
                w.half_select_energy_pj,
                w.read_energy_pj,
                w.write_latency_s
            );
        }
        outln!(
            "{}: test accuracy {:.2} % on {} images, {:.1} s; wrote {} (+ .safetensors, .train.json)",
            report.name,
            100.0 * acc,
            report.images,
            seconds,
            report.output
        );
    }
    Ok(())
}

/// In-situ crossbar settings named by a training config (`store: Crossbar(settings: …)`,
/// relative to the config's folder), with their path.
///
/// # Errors
/// The settings file cannot be read or parsed (error names the file, line and field).
pub fn insitu_settings(
    cfg: &TrainConfig,
    base: &Path,
) -> CliResult<Option<(nacsim_insitu::InSituConfig, PathBuf)>> {
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
    insitu: Option<&(nacsim_insitu::InSituConfig, PathBuf)>,
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
/// classes must cover the dataset's labels.
///
/// # Errors
/// A message naming the config, `network.input` or `network.classes`, the value and the data.
pub fn check_input_shape(
    cfg: &TrainConfig,
    config: &Path,
    src: &Source,
    train_set: &Dataset,
) -> CliResult<()> {
    if train_set.shape != cfg.network.input {
        return Err(format!(
            "{}: network.input = {} but the images in {} are {}: make the input (c, h, w) equal to the images' shape",
            config.display(),
            cfg.network.input,
            src.describe(),
            train_set.shape
        )
        .into());
    }
    if cfg.network.classes < train_set.classes {
        return Err(format!(
            "{}: network.classes = {}: the dataset in {} has {} classes (labels 0..={}); the network must have at least {} outputs",
            config.display(),
            cfg.network.classes,
            src.describe(),
            train_set.classes,
            train_set.classes - 1,
            train_set.classes
        )
        .into());
    }
    Ok(())
}

/// A trained network and what its training did.
pub struct Fitted {
    /// The trained model (weights as the hardware-aware forward pass used them).
    pub model: Model,
    /// One record per epoch (loss, train accuracy, accuracy on the test set through the
    /// training forward pass).
    pub history: Vec<EpochRecord>,
    /// Write-side totals of in-situ training.
    pub write_stats: Option<nacsim_insitu::WriteStats>,
    /// Test accuracy of the saved weights by the float forward pass.
    pub accuracy: f64,
    /// Wall time of the training loop in seconds.
    pub seconds: f64,
}

/// Train the network of `cfg` (from `cfg.init` if given) on `train_set`, evaluating on
/// `test_set` after every epoch; `insitu` makes the weight store a crossbar. `warn` prints the
/// in-situ store's warnings to stderr.
///
/// # Errors
/// Bad `init` model, topology mismatch, in-situ settings the store rejects, bad kernel choice.
pub fn fit(
    cfg: &TrainConfig,
    base: &Path,
    insitu: Option<&(nacsim_insitu::InSituConfig, PathBuf)>,
    train_set: &Dataset,
    test_set: &Dataset,
    warn: bool,
    progress: &mut dyn FnMut(nacsim_nn::train::Progress),
) -> CliResult<Fitted> {
    super::limits::check_training(cfg, &format!("the network of {}", cfg.name))?;
    let mut model = Model::init(cfg.network.clone(), cfg.train.seed)?;
    if !cfg.init.is_empty() {
        let p = base.join(&cfg.init);
        let start = Model::load(&p)?;
        if start.layers != model.layers {
            return Err(format!(
                "init: {} has a different topology than the config's network; train from it with the same layers",
                p.display()
            )
            .into());
        }
        model.params = start.params;
    }
    let kernel: Box<dyn TrainKernel> = match insitu {
        Some((s, _)) => Box::new(nacsim_insitu::CrossbarKernel::new(
            s.periphery,
            s.w_max,
            cfg.train.seed,
            model.layers.len(),
        )),
        None => build_kernel(cfg, &model)?,
    };
    let mut xbar = match insitu {
        Some((s, p)) => {
            let mut x = nacsim_insitu::CrossbarStore::new(
                s.clone(),
                model.params.clone(),
                cfg.train.optimizer,
                cfg.train.seed,
            )
            .map_err(|e| format!("{}: {e}", p.display()))?;
            let label = p.display().to_string();
            if warn {
                x.set_warning_sink(Box::new(move |m| eprintln!("warning: {label}: {m}")));
            } else {
                x.set_warning_sink(Box::new(|_| {}));
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
    let history = train(
        &model.layers,
        &*kernel,
        store,
        train_set,
        Some(test_set),
        &cfg.train,
        progress,
    )?;
    let seconds = t0.elapsed().as_secs_f64();
    let mut trained = model;
    trained.params = store.export();
    let write_stats = xbar.as_ref().map(nacsim_insitu::CrossbarStore::stats);
    // Save the weights the hardware-aware forward pass used (block-circulant, power-of-two):
    // the saved model is exactly what was evaluated.
    if let Some(circ) = kernel.as_circulant() {
        for (li, p) in trained.params.iter_mut().enumerate() {
            if let Some(p) = p
                && let Some(w) = circ.effective_weight(li, p.weight.view())
            {
                p.weight = w;
            }
        }
    }
    // Sine kernel: the forward pass multiplies by sin(W), so the saved weights are sin(W) and a
    // plain float evaluation of the saved model is the sine-in-float forward (with the Arcsin
    // input encoding, exactly). nacsim_sine::SineNetwork takes asin of them back to angles.
    if let Some(sine) = kernel.as_sine() {
        for p in trained.params.iter_mut().flatten() {
            p.weight = sine.effective_weight(p.weight.view());
        }
    }
    let accuracy = accuracy(
        &FloatKernel,
        &trained.layers,
        &trained.params,
        test_set,
        1000,
    );
    Ok(Fitted {
        model: trained,
        history,
        write_stats,
        accuracy,
        seconds,
    })
}

/// The training kernel of a config.
trait TrainKernel: ProductKernel {
    /// The block-circulant kernel, if this is one.
    fn as_circulant(&self) -> Option<&nacsim_circulant::training::BlockCirculantKernel>;
    /// The sine-in-float kernel, if this is one.
    fn as_sine(&self) -> Option<&nacsim_sine::SineKernel> {
        None
    }
}

impl TrainKernel for nacsim_insitu::CrossbarKernel {
    fn as_circulant(&self) -> Option<&nacsim_circulant::training::BlockCirculantKernel> {
        None
    }
}

impl TrainKernel for FloatKernel {
    fn as_circulant(&self) -> Option<&nacsim_circulant::training::BlockCirculantKernel> {
        None
    }
}

impl TrainKernel for nacsim_circulant::training::BlockCirculantKernel {
    fn as_circulant(&self) -> Option<&nacsim_circulant::training::BlockCirculantKernel> {
        Some(self)
    }
}

impl TrainKernel for nacsim_sine::SineKernel {
    fn as_circulant(&self) -> Option<&nacsim_circulant::training::BlockCirculantKernel> {
        None
    }
    fn as_sine(&self) -> Option<&nacsim_sine::SineKernel> {
        Some(self)
    }
}

/// The network's record of the hardware it was trained for, in the keys and formats the
/// engines read (`nacsim_scheduler::engine::{sine, circulant}::TRAINED_*`): the sine input
/// encoding as RON of `nacsim_sine::InputEncoding`, the circulant block and code width.
fn trained_for(cfg: &TrainConfig) -> CliResult<std::collections::BTreeMap<String, String>> {
    use nacsim_scheduler::engine::{TRAINED_BLOCK, TRAINED_INPUT, TRAINED_POT_BITS};
    let mut m = std::collections::BTreeMap::new();
    match &cfg.kernel {
        KernelChoice::Float => {}
        KernelChoice::Sine { input, .. } => {
            let input = sine_input(*input);
            m.insert(TRAINED_INPUT.to_string(), ron::to_string(&input)?);
        }
        KernelChoice::BlockCirculant { block, pot, .. } => {
            m.insert(TRAINED_BLOCK.to_string(), block.to_string());
            if let nacsim_nn::train::PotChoice::Bits { bits, .. } = pot {
                m.insert(TRAINED_POT_BITS.to_string(), bits.to_string());
            }
        }
    }
    Ok(m)
}

/// The sine crate's input encoding of the training config's.
fn sine_input(input: SineInput) -> nacsim_sine::InputEncoding {
    match input {
        SineInput::Arcsin => nacsim_sine::InputEncoding::Arcsin,
        SineInput::Scale { shift } => nacsim_sine::InputEncoding::Scale { shift },
    }
}

fn build_kernel(cfg: &TrainConfig, model: &Model) -> CliResult<Box<dyn TrainKernel>> {
    use nacsim_circulant::training::{BlockCirculantKernel, LayerCompression};
    match &cfg.kernel {
        KernelChoice::Float => Ok(Box::new(FloatKernel)),
        KernelChoice::Sine { input, .. } => {
            let input = sine_input(*input);
            let first = model
                .layers
                .iter()
                .position(|l| l.has_params())
                .unwrap_or(0);
            Ok(Box::new(nacsim_sine::SineKernel::new(first, input)))
        }
        KernelChoice::BlockCirculant {
            block,
            layers,
            convention,
            pot,
        } => {
            let convention = match convention {
                CirculantConvention::FirstRow => nacsim_circulant::Convention::FirstRow,
                CirculantConvention::FirstColumn => nacsim_circulant::Convention::FirstColumn,
            };
            let pot = match pot {
                PotChoice::Off => None,
                PotChoice::Bits { bits, rounding } => Some(nacsim_circulant::PotConfig {
                    bits: *bits,
                    rounding: *rounding,
                    range: nacsim_circulant::ExponentRange::InqMaxAbs,
                }),
            };
            let chosen: Vec<usize> = if layers.is_empty() {
                model
                    .layers
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| matches!(l.spec, nacsim_nn::network::LayerSpec::Dense { .. }))
                    .map(|(i, _)| i)
                    .collect()
            } else {
                layers.clone()
            };
            let layers = chosen
                .into_iter()
                .map(|i| {
                    (
                        i,
                        LayerCompression {
                            k: *block,
                            convention,
                            pot,
                        },
                    )
                })
                .collect();
            Ok(Box::new(BlockCirculantKernel::new(layers)))
        }
    }
}
