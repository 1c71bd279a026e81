//! `nacsim sweep` and `nacsim merge`: parameter sweeps × Monte Carlo trials, sharded and resumable.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use clap::Args;
use nacsim_insitu::InSituConfig;
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_scheduler::design::{Design, EnergySource};
use nacsim_scheduler::report::{RunFacts, RunReport};
use nacsim_scheduler::sim::Simulation;
use nacsim_scheduler::sweep::record::{self, InputDigest, Opened, SweepRecord};
use nacsim_scheduler::sweep::{
    Claim, PointResult, SweepConfig, SweepValue, claim, merge, point_path, set_json_field,
    shard_points, to_csv, with_field, write_point,
};
use nacsim_train::{StoreChoice, TrainConfig, apply_insitu_data, check_data, fit, insitu_settings};
use rayon::prelude::*;

use super::data::Source;
use super::run::calibration_set;
use crate::CliResult;

/// Arguments of `nacsim sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Sweep file (RON, models/sweeps/*.ron): design and network (inference sweep) or a
    /// training config (training sweep), data, the swept field (dotted path) and its values,
    /// trials and seed.
    #[arg(value_name = "SWEEP.ron")]
    pub config: PathBuf,
    /// Output folder; each finished point is written to OUT/points/ at once, and points already
    /// there are skipped, so an interrupted sweep resumes where it stopped. OUT/sweep.json
    /// records the sweep and a digest of its inputs (sweep file, design, network and weights or
    /// training files, data, nacsim version): a folder holding another sweep is refused. Runs
    /// of the same sweep into one folder at once share its points (each point is claimed by a
    /// lock on OUT/points/v…-t….lock).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Start over: remove the folder's record and all its points first (when OUT holds another
    /// sweep, or its inputs changed). Stop any other run into OUT first.
    #[arg(long)]
    pub force_new: bool,
    /// Run only shard i of n (0-based): the points whose grid position is i modulo n. Run the
    /// n shards anywhere (a Slurm job array, a Kubernetes Indexed Job), then `nacsim merge`.
    #[arg(long, value_name = "i/n")]
    pub shard: Option<String>,
    /// Worker threads, 1 to 4 × the cores available (default: all cores). Results do not depend
    /// on it.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Arguments of `nacsim merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Output folder of one or more `nacsim sweep` runs (its sweep.json record and points/).
    /// Every point of the grid (values × trials) must be there, unless --allow-partial.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Write the table (one row per swept value: value, trials, accuracy_mean, accuracy_std,
    /// accuracy_min, accuracy_max, energy_pj_mean, cycles_mean, tops_per_watt_mean,
    /// trials_expected, complete).
    #[arg(long, value_name = "F.csv")]
    pub csv: Option<PathBuf>,
    /// Merge even if points are missing (a shard failed or is still running): a row then holds
    /// the trials found (`trials` < `trials_expected`, `complete` = false), values with no
    /// point have no row, and the missing points are listed on stderr.
    #[arg(long)]
    pub allow_partial: bool,
    /// Write an SVG plot of accuracy (mean, min–max bars) against the swept value.
    #[arg(long, value_name = "F.svg")]
    pub svg: Option<PathBuf>,
    /// Title of the plot (default "accuracy vs swept value").
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
    /// Label of the plot's x axis, e.g. the swept field (default "value").
    #[arg(long, value_name = "TEXT")]
    pub xlabel: Option<String>,
}

fn parse_shard(s: &str) -> CliResult<(usize, usize)> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard {s}: expected i/n, e.g. 3/16"))?;
    let (i, n): (usize, usize) = (
        i.parse()
            .map_err(|_| format!("--shard {s}: i is not a whole number"))?,
        n.parse()
            .map_err(|_| format!("--shard {s}: n is not a whole number"))?,
    );
    if n == 0 || i >= n {
        return Err(format!("--shard {s}: need 0 ≤ i < n").into());
    }
    Ok((i, n))
}

/// Run `nacsim sweep`.
pub fn run(a: &SweepArgs) -> CliResult<()> {
    let threads = super::check_threads(a.threads)?;
    let cfg: SweepConfig = nacsim_core::config::load(&a.config)?;
    let (shard, shards) = a.shard.as_deref().map_or(Ok((0, 1)), parse_shard)?;
    let label = a.config.display().to_string();
    super::limits::check_sweep_points(cfg.parameter.values.len(), cfg.trials, shards, &label)?;
    let base_dir = a.config.parent().unwrap_or_else(|| Path::new("."));
    let mut inputs = vec![InputDigest::of_file("the sweep file", &a.config)?];
    // What a group of points (trials of one value) does: inference trials on a design,
    // evaluated together on the Monte Carlo batch axis, or training runs.
    let (job, group): (Job, usize) = if cfg.train.is_empty() {
        (
            inference_job(&cfg, a, base_dir, &mut inputs)?,
            TRIALS_PER_PASS,
        )
    } else {
        (training_job(&cfg, a, base_dir, &mut inputs)?, 1)
    };
    let rec = SweepRecord::new(&cfg, &a.config, env!("CARGO_PKG_VERSION"), inputs);
    if let Opened::StartedOver(n) = record::open(&a.out, &rec, a.force_new)? {
        eprintln!(
            "{}: --force-new: removed the old record and {n} points",
            a.out.display()
        );
    }
    let mine = shard_points(cfg.parameter.values.len(), cfg.trials, shard, shards);
    let todo: Vec<(usize, u32)> = mine
        .iter()
        .copied()
        .filter(|&(v, t)| !point_path(&a.out, v, t).exists())
        .collect();
    // Consecutive trials of one value, at most `group` at a time.
    let mut groups: Vec<(usize, Vec<u32>)> = Vec::new();
    for &(v, t) in &todo {
        match groups.last_mut() {
            Some((gv, ts)) if *gv == v && ts.len() < group => ts.push(t),
            _ => groups.push((v, vec![t])),
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|e| format!("--threads: {e}"))?;
    let pb = crate::progress_bar(todo.len() as u64, a.quiet);
    pb.set_prefix(cfg.name.clone());
    let ran = AtomicUsize::new(0);
    let unlocked = AtomicBool::new(false);
    // Points another process was computing when this one came to them.
    let busy: Mutex<Vec<(usize, u32)>> = Mutex::new(Vec::new());
    let claim_err = |e: std::io::Error| format!("{}: claiming a point: {e}", a.out.display());
    // Compute the points of `trials` of value `vi` that this process can claim.
    let run_group = |vi: usize, trials: &[u32], wait: bool| -> CliResult<()> {
        let mut claims = Vec::new();
        for &t in trials {
            match claim(&a.out, vi, t, wait).map_err(claim_err)? {
                Claim::Mine(c) => {
                    if !c.is_locked() {
                        unlocked.store(true, Ordering::Relaxed);
                    }
                    claims.push((t, c));
                }
                Claim::Busy => busy.lock().expect("no panics holding it").push((vi, t)),
                Claim::Done => pb.inc(1),
            }
        }
        if claims.is_empty() {
            return Ok(());
        }
        let claimed: Vec<u32> = claims.iter().map(|(t, _)| *t).collect();
        for mut r in job(vi, &claimed)? {
            r.digest = Some(rec.digest.clone());
            write_point(&a.out, &r).map_err(|e| format!("{}: {e}", a.out.display()))?;
            if let Some(i) = claims.iter().position(|(t, _)| *t == r.trial) {
                claims.swap_remove(i).1.release();
            }
            ran.fetch_add(1, Ordering::Relaxed);
            pb.inc(1);
        }
        Ok(())
    };
    pool.install(|| -> CliResult<()> {
        groups
            .par_iter()
            .map(|(vi, trials)| run_group(*vi, trials, false))
            .collect::<CliResult<Vec<()>>>()?;
        // Then wait for the other processes' points of this shard; compute any whose process
        // died before writing it.
        let waiting = std::mem::take(&mut *busy.lock().expect("no panics holding it"));
        waiting
            .par_iter()
            .map(|&(vi, t)| run_group(vi, &[t], true))
            .collect::<CliResult<Vec<()>>>()?;
        Ok(())
    })?;
    pb.finish_and_clear();
    if unlocked.load(Ordering::Relaxed) {
        eprintln!(
            "warning: {}: the file system does not lock files, so runs of this sweep into the folder at the \
             same time may compute the same points twice (the results are the same)",
            a.out.display()
        );
    }
    let ran = ran.into_inner();
    let elsewhere = todo.len() - ran;
    eprintln!(
        "{}: shard {shard}/{shards}: {ran} points run, {} already done{}; results in {}",
        cfg.name,
        mine.len() - todo.len(),
        if elsewhere > 0 {
            format!(", {elsewhere} run by another process at the same time")
        } else {
            String::new()
        },
        a.out.join("points").display()
    );
    Ok(())
}

/// The digests of the IDX files `Dataset::load_dir` reads for `split` in `dir`.
fn data_digests(dir: &Path, split: Split, inputs: &mut Vec<InputDigest>) -> CliResult<()> {
    let (images, labels) = Dataset::split_files(dir, split)?;
    inputs.push(InputDigest::of_file(
        format!("the {split} images"),
        &images,
    )?);
    inputs.push(InputDigest::of_file(
        format!("the {split} labels"),
        &labels,
    )?);
    Ok(())
}

/// The digests of a network file and the weights it names.
fn network_digests(
    what: &str,
    path: &Path,
    model: &Model,
    inputs: &mut Vec<InputDigest>,
) -> CliResult<()> {
    inputs.push(InputDigest::of_file(what, path)?);
    let weights = path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(&model.spec.weights);
    inputs.push(InputDigest::of_file(format!("{what}'s weights"), &weights)?);
    Ok(())
}

/// Points of one value (its index) for the given trials.
type Job<'a> = Box<dyn Fn(usize, &[u32]) -> CliResult<Vec<PointResult>> + Sync + 'a>;

/// Trials of one value evaluated in one pass over the images (the Monte Carlo batch axis:
/// input codes and the first layer's input conversion are shared). Results do not depend on it.
const TRIALS_PER_PASS: usize = 8;

/// An inference point: the design with the swept field set, trial `t` of its stochastic knobs,
/// the network evaluated on the test set.
/// Pushes the digests of its files (design, energy preset, network, weights, data) to `inputs`.
fn inference_job<'a>(
    cfg: &'a SweepConfig,
    a: &'a SweepArgs,
    base_dir: &Path,
    inputs: &mut Vec<InputDigest>,
) -> CliResult<Job<'a>> {
    let design_path = base_dir.join(&cfg.design);
    let design = Design::load(&design_path)?;
    inputs.push(InputDigest::of_file("the design", &design_path)?);
    if let EnergySource::Preset(p) = &design.config.energy {
        let p = design_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(p);
        inputs.push(InputDigest::of_file("the design's energy preset", &p)?);
    }
    let network_path = base_dir.join(&cfg.network);
    let model = Model::load(&network_path)?;
    network_digests("the network", &network_path, &model, inputs)?;
    let src = if cfg.data.is_empty() {
        Source::Bundled
    } else {
        Source::Dir(base_dir.join(&cfg.data))
    };
    let data = src.load(Split::Test, (cfg.limit > 0).then_some(cfg.limit))?;
    let (calib, calibration) = calibration_set(&src, &data)?;
    match &src {
        Source::Bundled => {
            for (name, bytes) in Dataset::bundled_sample_files() {
                let split = if name.contains("train") {
                    "training"
                } else {
                    "test"
                };
                let kind = if name.contains("labels") {
                    "labels"
                } else {
                    "images"
                };
                inputs.push(InputDigest::of_bytes(
                    format!("the bundled {split} {kind}"),
                    name,
                    bytes,
                ));
            }
        }
        Source::Dir(d) => {
            data_digests(d, Split::Test, inputs)?;
            // The training split calibrates the scales when it is there.
            if calibration.split == Split::Train {
                data_digests(d, Split::Train, inputs)?;
            }
        }
    }
    // Check every value before running anything.
    for v in &cfg.parameter.values {
        with_field(&design.config, &cfg.parameter.path, v, &a.config)?;
    }
    Ok(Box::new(move |vi, trials| {
        let value = &cfg.parameter.values[vi];
        let config = with_field(&design.config, &cfg.parameter.path, value, &a.config)?;
        let d = Design {
            config,
            energy: design.energy.clone(),
            technology: design.technology.clone(),
            path: design.path.clone(),
        };
        let sims = Simulation::with_trials(d, &model, &calib, cfg.seed, trials)?;
        let accs = Simulation::accuracy_trials(&sims, &data);
        sims.iter()
            .zip(trials)
            .zip(accs)
            .map(|((sim, &trial), acc)| {
                let r = RunReport::build(
                    sim,
                    RunFacts {
                        network: cfg.network.clone(),
                        data: src.describe(),
                        images: data.len(),
                        accuracy: acc,
                        float_accuracy: None,
                        calibration: calibration.clone().with_images(sim, calib.len()),
                        wall_seconds: 0.0,
                        timings: None,
                    },
                )?;
                Ok(PointResult {
                    value_index: vi,
                    value: value.clone(),
                    trial,
                    accuracy: acc,
                    energy_pj: r.energy_pj,
                    cycles: r.cycles,
                    latency_s: r.time_s,
                    gops: r.gops,
                    tops_per_watt: r.tops_per_watt,
                    float_accuracy: None,
                    seconds: None,
                    digest: None,
                })
            })
            .collect()
    }))
}

/// A training point: the training config and its in-situ settings with the swept field set,
/// trained with seed `seed + trial`; the accuracy after the last epoch through the training
/// forward pass (the crossbar's, for in-situ training) and the write totals. Pushes the digests
/// of its files (training config, starting network, in-situ settings, data) to `inputs`.
fn training_job<'a>(
    cfg: &'a SweepConfig,
    a: &'a SweepArgs,
    base_dir: &Path,
    inputs: &mut Vec<InputDigest>,
) -> CliResult<Job<'a>> {
    let train_path = base_dir.join(&cfg.train);
    let tcfg: TrainConfig = nacsim_core::config::load(&train_path)?;
    let tbase = train_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .to_path_buf();
    inputs.push(InputDigest::of_file("the training config", &train_path)?);
    if !tcfg.init.is_empty() {
        let p = tbase.join(&tcfg.init);
        network_digests("the starting network", &p, &Model::load(&p)?, inputs)?;
    }
    if let StoreChoice::Crossbar { settings } = &tcfg.store {
        inputs.push(InputDigest::of_file(
            "the in-situ settings",
            &tbase.join(settings),
        )?);
    }
    let data_dir: PathBuf = match (cfg.data.as_str(), tcfg.data_dir.as_str()) {
        (d, _) if !d.is_empty() => base_dir.join(d),
        (_, d) if !d.is_empty() => tbase.join(d),
        _ => PathBuf::from(tcfg.dataset.default_dir().ok_or_else(|| {
            format!(
                "{}: the training config's dataset has no standard folder; give `data` in the sweep",
                a.config.display()
            )
        })?),
    };
    data_digests(&data_dir, Split::Train, inputs)?;
    data_digests(&data_dir, Split::Test, inputs)?;
    let src = Source::Dir(data_dir);
    let insitu = insitu_settings(&tcfg, &tbase)?;
    let (train_set, test_set) = apply_insitu_data(
        insitu.as_ref(),
        src.load(Split::Train, None)?,
        src.load(Split::Test, (cfg.limit > 0).then_some(cfg.limit))?,
    );
    let mut train_set = train_set;
    if cfg.train_limit > 0 {
        train_set.truncate(cfg.train_limit);
    }
    check_data(&tcfg, &train_path, &src.describe(), &train_set)?;
    // One document holding both files, so that `config.…` and `insitu.…` paths address them.
    let doc = serde_json::json!({
        "config": serde_json::to_value(&tcfg)?,
        "insitu": insitu.as_ref().map(|(s, _)| serde_json::to_value(s)).transpose()?,
    });
    let point =
        move |value: &SweepValue| -> CliResult<(TrainConfig, Option<nacsim_train::InSitu>)> {
            let bad = |rule: String| {
                format!(
                    "{}: parameter.path = {:?} with value {value}: {rule}",
                    a.config.display(),
                    cfg.parameter.path
                )
            };
            if cfg.parameter.path.starts_with("insitu.") && insitu.is_none() {
                return Err(bad(
                    "the training config has no in-situ settings (store: Float)".into()
                )
                .into());
            }
            let mut d = doc.clone();
            set_json_field(&mut d, &cfg.parameter.path, value).map_err(bad)?;
            let t: TrainConfig = typed(&d["config"]).map_err(bad)?;
            let s = match &insitu {
                Some((_, p)) => {
                    Some((typed::<InSituConfig>(&d["insitu"]).map_err(bad)?, p.clone()))
                }
                None => None,
            };
            Ok((t, s))
        };
    // Check every value before running anything.
    for v in &cfg.parameter.values {
        point(v)?;
    }
    let train_point = move |vi: usize, trial: u32| -> CliResult<PointResult> {
        let value = &cfg.parameter.values[vi];
        let (mut t, s) = point(value)?;
        t.train.seed = cfg.seed + u64::from(trial);
        let f = fit(
            &t,
            &tbase,
            s.as_ref(),
            &train_set,
            &test_set,
            None,
            &mut |_| {},
        )?;
        let acc = f
            .history
            .last()
            .and_then(|r| r.eval_accuracy)
            .unwrap_or(f.accuracy);
        let w = f.write_stats.unwrap_or_default();
        Ok(PointResult {
            value_index: vi,
            value: value.clone(),
            trial,
            accuracy: acc,
            energy_pj: w.write_energy_pj + w.half_select_energy_pj + w.read_energy_pj,
            cycles: 0,
            latency_s: w.write_latency_s,
            gops: 0.0,
            tops_per_watt: 0.0,
            float_accuracy: Some(f.accuracy),
            seconds: Some(f.seconds),
            digest: None,
        })
    };
    Ok(Box::new(move |vi, trials| {
        trials.iter().map(|&trial| train_point(vi, trial)).collect()
    }))
}

/// A config from its JSON form, validated; the first message of either step.
fn typed<T: serde::de::DeserializeOwned + nacsim_core::config::Validate>(
    v: &serde_json::Value,
) -> Result<T, String> {
    let t: T = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    t.validate().map_err(|e| {
        e.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    Ok(t)
}

/// Run `nacsim merge`.
pub fn run_merge(a: &MergeArgs) -> CliResult<()> {
    let m = merge(&a.dir)?;
    if !m.missing.is_empty() {
        let head = format!(
            "{}: {} of the {} points of sweep {:?} are missing ({})",
            a.dir.display(),
            m.missing.len(),
            m.record.points(),
            m.record.name,
            m.describe_missing(10)
        );
        if !a.allow_partial {
            return Err(format!(
                "{head}; run them with `nacsim sweep {} --out {}` (it skips the points already there; on a \
                 cluster, rerun the shards that failed), or pass --allow-partial to merge what is there (rows \
                 with missing trials say complete = false)",
                m.record.sweep_file,
                a.dir.display()
            )
            .into());
        }
        eprintln!("warning: {head}; merged with --allow-partial");
    }
    let rows = m.rows;
    let csv = to_csv(&rows);
    match &a.csv {
        Some(p) => std::fs::write(p, &csv).map_err(|e| format!("{}: {e}", p.display()))?,
        None => out!("{csv}"),
    }
    if let Some(p) = &a.svg {
        plot(
            &rows,
            p,
            a.title.as_deref().unwrap_or("accuracy vs swept value"),
            a.xlabel.as_deref().unwrap_or("value"),
        )?;
    }
    Ok(())
}

fn plot(
    rows: &[nacsim_scheduler::sweep::MergedRow],
    path: &Path,
    title: &str,
    xlabel: &str,
) -> CliResult<()> {
    use plotters::prelude::*;
    // Named values (e.g. device presets) are placed at 0, 1, 2, … and labelled by name.
    let numeric = rows.iter().all(|r| r.value.as_f64().is_some());
    let xs: Vec<f64> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if numeric {
                r.value.as_f64().unwrap_or(0.0)
            } else {
                i as f64
            }
        })
        .collect();
    let label = |x: &f64| -> String {
        if numeric {
            format!("{x}")
        } else if x.fract() == 0.0 && *x >= 0.0 && (*x as usize) < rows.len() {
            rows[*x as usize].value.to_string()
        } else {
            String::new()
        }
    };
    let (x0, x1) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let pad = ((x1 - x0) * 0.05).max(1e-9);
    let root = SVGBackend::new(path, (720, 480)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((x0 - pad)..(x1 + pad), 0f64..1f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(xlabel)
        .x_labels(if numeric { 10 } else { rows.len().max(2) })
        .x_label_formatter(&label)
        .y_desc("top-1 accuracy")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            rows.iter().zip(&xs).map(|(r, &x)| (x, r.accuracy_mean)),
            &BLUE,
        ))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(rows.iter().zip(&xs).map(|(r, &x)| {
            ErrorBar::new_vertical(
                x,
                r.accuracy_min,
                r.accuracy_mean,
                r.accuracy_max,
                BLUE.filled(),
                8,
            )
        }))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
