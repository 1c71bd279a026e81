//! `nacsim train`: train a network from a training config.

use std::path::{Path, PathBuf};

use clap::Args;
use nacsim_nn::data::Split;
use nacsim_nn::train::EpochRecord;
use nacsim_train::{
    Fitted, TrainConfig, apply_insitu_data, check_data, fit_with_neurosim, insitu_settings,
};
use serde::Serialize;

use super::data::Source;
use crate::CliResult;

/// Arguments of `nacsim train`.
#[derive(Args, Debug, Default)]
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
    /// Price the in-situ training run with MLP_NeuroSim's circuit model: the `neurosim` block
    /// of this design (e.g. models/designs/neurosim-mlp-agasi.ron) gives the write latency and
    /// energy of every epoch from the pulses training applied, split array/periphery, per
    /// sub-array and in total, beside the read latency and energy of the epoch's training
    /// images (JSON key neurosim). Needs store: Crossbar with scheme: NeuroSim, mapping:
    /// Reference and batch_size 1 (e.g. models/training/neurosim-agasi-fmnist20.ron); off by
    /// default (the accounting costs time). The weights are the same with or without it.
    #[arg(long, value_name = "DESIGN.ron")]
    pub neurosim: Option<PathBuf>,
    /// Print one JSON object (keys: name, accuracy, images, epochs, seconds, output, history;
    /// insitu with the write totals of crossbar training; neurosim with --neurosim).
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

/// What `nacsim train --json` prints (keys in docs/report-format.md); also written beside the
/// trained network as `.train.json`.
#[derive(Serialize)]
pub struct TrainReport {
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
    /// MLP_NeuroSim's write and read figures per epoch (`--neurosim`).
    #[serde(skip_serializing_if = "Option::is_none")]
    neurosim: Option<super::train_neurosim::NeuroSimTrainReport>,
}

impl TrainReport {
    /// MLP_NeuroSim's figures of the run (`--neurosim`), if asked for.
    pub fn neurosim(&self) -> Option<&super::train_neurosim::NeuroSimTrainReport> {
        self.neurosim.as_ref()
    }
}

/// Run `nacsim train`.
pub fn run(a: &TrainArgs) -> CliResult<()> {
    let report = report(a)?;
    print(a, &report)
}

/// Train as `nacsim train` does (writing the network, its weights and `.train.json`) and
/// return the report it prints.
///
/// # Errors
/// Bad input, as `nacsim train` reports it.
pub fn report(a: &TrainArgs) -> CliResult<TrainReport> {
    let mut cfg: TrainConfig = nacsim_core::config::load(&a.config)?;
    if let Some(e) = a.epochs {
        if e == 0 {
            return Err("--epochs 0: must be at least 1".into());
        }
        cfg.train.epochs = e;
    }
    let base = a.config.parent().unwrap_or_else(|| Path::new("."));
    let neurosim = match &a.neurosim {
        Some(p) => Some((super::train_neurosim::load(p)?, p.clone())),
        None => None,
    };
    let Some(data_dir) = cfg.data_dir(base, a.data.as_deref()) else {
        return Err(format!(
            "{}: dataset {:?} has no standard folder and data_dir is empty; pass --data DIR",
            a.config.display(),
            cfg.dataset
        )
        .into());
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
    check_data(&cfg, &a.config, &src.describe(), &train_set)?;
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
    // In-situ store warnings go to stderr, named by the settings file.
    let warnings = insitu.as_ref().map(|(_, p)| {
        let label = p.display().to_string();
        Box::new(move |m: &str| eprintln!("warning: {label}: {m}")) as _
    });
    let fitted = fit_with_neurosim(
        &cfg,
        base,
        insitu.as_ref(),
        &train_set,
        &test_set,
        warnings,
        neurosim.as_ref().map(|(n, p)| (n, p.as_path())),
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
        neurosim_write,
        accuracy: acc,
        seconds,
    } = fitted;
    let neurosim = match (&neurosim, &neurosim_write) {
        (Some((n, p)), Some(log)) => Some(super::train_neurosim::report(p, n, log)?),
        _ => None,
    };
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
        neurosim,
    };
    let hist_path = out_path.with_extension("train.json");
    std::fs::write(&hist_path, serde_json::to_string_pretty(&report)?)
        .map_err(|e| format!("{}: cannot write: {e}", hist_path.display()))?;
    Ok(report)
}

/// Print a training report as text or JSON.
fn print(a: &TrainArgs, report: &TrainReport) -> CliResult<()> {
    let acc = report.accuracy;
    let seconds = report.seconds;
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
        if let Some(n) = &report.neurosim {
            super::train_neurosim::print(n)?;
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

/// The network's record of the hardware it was trained for, in the keys and formats the
/// engines read (`nacsim_scheduler::engine::{sine, circulant}::TRAINED_*`): the sine input
/// encoding as RON of `nacsim_sine::InputEncoding`, the circulant block and code width.
fn trained_for(cfg: &TrainConfig) -> CliResult<std::collections::BTreeMap<String, String>> {
    use nacsim_scheduler::engine::{TRAINED_BLOCK, TRAINED_INPUT, TRAINED_POT_BITS};
    use nacsim_train::{KernelChoice, PotChoice};
    let mut m = std::collections::BTreeMap::new();
    match &cfg.kernel {
        KernelChoice::Float => {}
        KernelChoice::Sine { input, .. } => {
            m.insert(TRAINED_INPUT.to_string(), ron::to_string(input)?);
        }
        KernelChoice::BlockCirculant { block, pot, .. } => {
            m.insert(TRAINED_BLOCK.to_string(), block.to_string());
            if let PotChoice::Bits { bits, .. } = pot {
                m.insert(TRAINED_POT_BITS.to_string(), bits.to_string());
            }
        }
    }
    Ok(m)
}
