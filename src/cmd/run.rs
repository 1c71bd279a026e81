//! `nacsim run`: simulate a design running a network over a dataset.

use std::time::Instant;

use clap::Args;
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_scheduler::design::Design;
use nacsim_scheduler::report::{Calibration, RunFacts, RunReport, RunTimings};
use nacsim_scheduler::sim::Simulation;

use super::args::{DesignArg, EvalLimit, NetworkData};
use super::data::Source;
use crate::CliResult;

/// Arguments of `nacsim run`.
#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// The design.
    #[command(flatten)]
    pub design: DesignArg,
    /// The network and its images.
    #[command(flatten)]
    pub input: NetworkData,
    /// How many images.
    #[command(flatten)]
    pub limit: EvalLimit,
    /// Print one JSON object (keys in docs/report-format.md) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Base seed of stochastic engines (device variation, read noise); the same seed and trial
    /// give the same numbers, bit for bit, on any number of threads.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Monte Carlo trial of stochastic engines (for many trials use `nacsim sweep`).
    #[arg(long, value_name = "T", default_value_t = 0)]
    pub trial: u32,
    /// Skip the float model's pass over the images: the report's `float_accuracy` is then
    /// null (JSON) or "not run" (table), and `timings.float_reference_s` is 0.
    #[arg(long)]
    pub no_float_reference: bool,
}

/// Calibration images: the training split of `--data` (the bundled training sample without
/// `--data`), so no evaluation image sets a scale; the evaluation images themselves only when
/// the folder has no training split, and then the report says so and warns. `images` of the
/// returned description is filled by the caller ([`Calibration::with_images`]).
///
/// # Errors
/// A training split that is present (any of its files) but damaged, incomplete or of another
/// image shape than the evaluation images: a missing split is fine, a broken one is not ignored.
pub fn calibration_set(src: &Source, eval: &Dataset) -> CliResult<(Dataset, Calibration)> {
    calibration_set_for(src, eval, None)
}

/// [`calibration_set`] when only the first `need` calibration images are used (a design's
/// `quant.calibration_images`): a training split in a folder is then read only that far
/// ([`Dataset::load_dir_prefix`]: its files are still checked whole against their headers, so a
/// damaged split is the same error). `None`: the whole split.
///
/// # Errors
/// As [`calibration_set`].
pub fn calibration_set_for(
    src: &Source,
    eval: &Dataset,
    need: Option<usize>,
) -> CliResult<(Dataset, Calibration)> {
    let d = match src {
        Source::Bundled => {
            return Ok((
                Dataset::bundled_calibration(),
                Calibration {
                    data: "bundled Fashion-MNIST sample".into(),
                    split: Split::Train,
                    images: 0,
                },
            ));
        }
        Source::Dir(d) => d,
    };
    let present = Split::Train
        .image_names()
        .into_iter()
        .chain(Split::Train.label_names())
        .any(|n| d.join(n).exists());
    if !present {
        return Ok((
            eval.clone(),
            Calibration {
                data: d.display().to_string(),
                split: Split::Test,
                images: 0,
            },
        ));
    }
    let t = match need {
        Some(k) => Dataset::load_dir_prefix(d, Split::Train, k),
        None => Dataset::load_dir(d, Split::Train),
    }
    .map_err(|e| format!("{e} (the training split is used for calibration; fix or remove it)"))?;
    if t.shape != eval.shape {
        return Err(format!(
            "{}: the training split's images are {} but the test split's are {}; the folder mixes two datasets",
            d.display(),
            t.shape,
            eval.shape
        )
        .into());
    }
    Ok((
        t,
        Calibration {
            data: d.display().to_string(),
            split: Split::Train,
            images: 0,
        },
    ))
}

/// Run `nacsim run`. Each phase is timed apart ([`RunTimings`]); `wall_seconds` runs from the
/// start to the assembled report.
pub fn run(a: &RunArgs) -> CliResult<()> {
    let report = report(a)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", report.table());
    }
    Ok(())
}

/// The report `nacsim run` prints for `a` (its `wall_seconds` from the start of this call).
///
/// # Errors
/// Bad input, as `nacsim run` reports it.
pub fn report(a: &RunArgs) -> CliResult<RunReport> {
    let t0 = Instant::now();
    let design = super::defaults::design(a.design.path())?;
    let (model, label) = super::defaults::network(a.input.network())?;
    let src = a.input.source();
    let data = src.load_for(Split::Test, a.limit.checked()?, &model, &label)?;
    let need = Some(design.config.quant.calibration_images);
    let (calib, calibration) = calibration_set_for(&src, &data, need)?;
    let inputs = RunInputs {
        model: &model,
        network: &label,
        data: &data,
        data_label: &src.describe(),
        calib: &calib,
        calibration: &calibration,
        float_reference: !a.no_float_reference,
    };
    simulate(design, &inputs, a.seed, a.trial, t0)
}

/// The loaded inputs of a run besides the design: what [`simulate`] runs, whoever loaded them
/// (the command line, or the Python package from its own objects and arrays).
#[derive(Clone, Copy, Debug)]
pub struct RunInputs<'a> {
    /// The trained network.
    pub model: &'a Model,
    /// Its label in the report (`network`).
    pub network: &'a str,
    /// The evaluation images.
    pub data: &'a Dataset,
    /// Their label in the report (`data`).
    pub data_label: &'a str,
    /// The calibration images ([`calibration_set`]).
    pub calib: &'a Dataset,
    /// Their description (`images` is filled here).
    pub calibration: &'a Calibration,
    /// Run the float model over the images for the report's `float_accuracy` (`false`:
    /// `--no-float-reference`, the key is null and `timings.float_reference_s` is 0).
    pub float_reference: bool,
}

/// Simulate `design` running `i.model` over `i.data` with trial `trial` of seed `seed`: the
/// run report, `wall_seconds` counted from `t0` (the loading before this call is
/// `timings.load_s`), each later phase timed apart ([`RunTimings`]).
///
/// # Errors
/// The design does not fit the network, or the report cannot be built.
pub fn simulate(
    design: Design,
    i: &RunInputs<'_>,
    seed: u64,
    trial: u32,
    t0: Instant,
) -> CliResult<RunReport> {
    let load_s = t0.elapsed().as_secs_f64();
    let t = Instant::now();
    let qnet = Simulation::quantize(&design, i.model, i.calib)?;
    let calibrate_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let sim = Simulation::from_quantized(design, qnet, i.model, seed, trial)?;
    let compile_s = t.elapsed().as_secs_f64();
    let calibration = i.calibration.clone().with_images(&sim, i.calib.len());
    let t = Instant::now();
    let acc = sim.accuracy(i.data);
    let simulate_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let float_acc = i
        .float_reference
        .then(|| i.model.float_accuracy(i.data, 1000));
    let float_reference_s = if i.float_reference {
        t.elapsed().as_secs_f64()
    } else {
        0.0
    };
    let mut report = RunReport::build(
        &sim,
        RunFacts {
            network: i.network.to_string(),
            data: i.data_label.to_string(),
            images: i.data.len(),
            accuracy: acc,
            float_accuracy: float_acc,
            calibration,
            wall_seconds: 0.0,
            timings: Some(RunTimings {
                load_s,
                calibrate_s,
                compile_s,
                simulate_s,
                float_reference_s,
            }),
        },
    )?;
    report.wall_seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}
