//! What one point of a sweep computes: an inference run of a design (a network on data), a
//! shape-only costing of a design (a SCALE-Sim topology), or a training run; each with the
//! digests of the files it reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nacsim_insitu::InSituConfig;
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_scheduler::design::{Design, EnergySource};
use nacsim_scheduler::report::{InfoReport, RunFacts, RunReport};
use nacsim_scheduler::sim::Simulation;
use nacsim_scheduler::sweep::record::InputDigest;
use nacsim_scheduler::sweep::{Grid, PointResult, SweepConfig, set_json_field, with_fields};
use nacsim_train::{StoreChoice, TrainConfig, apply_insitu_data, check_data, fit, insitu_settings};

use super::data::Source;
use super::run::calibration_set;
use crate::CliResult;

/// Points of one design (its index) for the given trials; the callback takes the fraction of
/// the current point done (training points report it after every step).
pub type Job<'a> =
    Box<dyn Fn(usize, &[u32], &(dyn Fn(f64) + Sync)) -> CliResult<Vec<PointResult>> + Sync + 'a>;

/// Trials of one design evaluated in one pass over the images (the Monte Carlo batch axis:
/// input codes and the first layer's input conversion are shared). Results do not depend on it.
pub const TRIALS_PER_PASS: usize = 8;

/// The scalar numbers of a report's JSON object (top level only) by key, without `skip`.
fn scalars(v: &serde_json::Value, skip: &[&str]) -> BTreeMap<String, f64> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .filter_map(|(k, x)| x.as_f64().map(|x| (k.clone(), x)))
                .collect()
        })
        .unwrap_or_default()
}

/// A point's result with the design's values and figures.
fn point(
    grid: &Grid,
    di: usize,
    trial: u32,
    metrics: BTreeMap<String, f64>,
    extra: impl FnOnce(&mut PointResult),
) -> PointResult {
    let row = &grid.rows[di];
    let get = |k: &str| metrics.get(k).copied().unwrap_or(0.0);
    let mut r = PointResult {
        value_index: di,
        value: row[0].clone(),
        values: if grid.fields.len() > 1 || row.len() != 1 {
            row.clone()
        } else {
            Vec::new()
        },
        trial,
        accuracy: get("accuracy"),
        energy_pj: get("energy_pj"),
        cycles: get("cycles") as u64,
        latency_s: get("time_s"),
        gops: get("gops"),
        tops_per_watt: get("tops_per_watt"),
        float_accuracy: None,
        seconds: None,
        metrics,
        digest: None,
    };
    extra(&mut r);
    r
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

/// The design file of an inference or shape-only sweep and the digests of it and its energy
/// preset.
fn load_design(
    cfg: &SweepConfig,
    base_dir: &Path,
    inputs: &mut Vec<InputDigest>,
) -> CliResult<Design> {
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
    // The technology file sets area and static power: a changed one is another sweep.
    if let Some(p) = design.config.technology.as_ref().and_then(|t| t.preset()) {
        let p = design_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(p);
        inputs.push(InputDigest::of_file("the design's technology file", &p)?);
    }
    Ok(design)
}

/// The design with design `di`'s fields set.
fn design_at(design: &Design, grid: &Grid, di: usize, file: &Path) -> CliResult<Design> {
    let config = with_fields(&design.config, &grid.fields, &grid.rows[di], file)?;
    Ok(Design {
        config,
        energy: design.energy.clone(),
        technology: design.technology.clone(),
        path: design.path.clone(),
    })
}

/// An inference point: the design with the swept fields set, trial `t` of its stochastic knobs,
/// the network evaluated on the test set.
/// Pushes the digests of its files (design, energy preset, technology file, network, weights, data) to `inputs`.
pub fn inference_job<'a>(
    cfg: &'a SweepConfig,
    grid: &'a Grid,
    file: &'a Path,
    base_dir: &Path,
    inputs: &mut Vec<InputDigest>,
) -> CliResult<Job<'a>> {
    let design = load_design(cfg, base_dir, inputs)?;
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
    // Check every design before running anything.
    for row in &grid.rows {
        with_fields(&design.config, &grid.fields, row, file)?;
    }
    Ok(Box::new(move |di, trials, _| {
        let d = design_at(&design, grid, di, file)?;
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
                // The float accuracy is not measured by a sweep; wall time is not a result.
                let m = scalars(
                    &serde_json::to_value(&r)?,
                    &["wall_seconds", "float_accuracy"],
                );
                Ok(point(grid, di, trial, m, |_| {}))
            })
            .collect()
    }))
}

/// A shape-only point: the design with the swept fields set, costed on the layer shapes of a
/// SCALE-Sim topology (as `nacsim info --topology`); trial `t` draws the weights of engines
/// whose costs follow weight values with seed `seed + t`. Pushes the digests of the design, its
/// energy preset and the topology file to `inputs`.
pub fn topology_job<'a>(
    cfg: &'a SweepConfig,
    grid: &'a Grid,
    file: &'a Path,
    base_dir: &Path,
    inputs: &mut Vec<InputDigest>,
) -> CliResult<Job<'a>> {
    let design = load_design(cfg, base_dir, inputs)?;
    let topo_path = base_dir.join(&cfg.topology);
    let topo = nacsim_scheduler::topology::load(&topo_path)?;
    inputs.push(InputDigest::of_file("the topology", &topo_path)?);
    for row in &grid.rows {
        with_fields(&design.config, &grid.fields, row, file)?;
    }
    let label = cfg.topology.clone();
    Ok(Box::new(move |di, trials, _| {
        trials
            .iter()
            .map(|&trial| {
                let d = design_at(&design, grid, di, file)?;
                let sim = Simulation::from_topology(d, &topo, cfg.seed + u64::from(trial))
                    .map_err(|e| {
                        format!("{}: design {}: {e}", file.display(), grid.describe(di))
                    })?;
                let r = InfoReport::build(&sim, &label)?;
                let mut m = scalars(&serde_json::to_value(&r)?, &[]);
                if let (Some(c), Some(hz)) = (m.get("cycles"), m.get("clock_hz"))
                    && *hz > 0.0
                {
                    m.insert("time_s".into(), c / hz);
                }
                Ok(point(grid, di, trial, m, |_| {}))
            })
            .collect()
    }))
}

/// The field of a training sweep that swaps the in-situ settings file (values: file names
/// relative to the training config).
pub const SETTINGS_FIELD: &str = "config.store.Crossbar.settings";

/// A training point: the training config and its in-situ settings with the swept fields set,
/// trained with seed `seed + trial`; the accuracy after the last epoch through the training
/// forward pass (the crossbar's, for in-situ training) and the write totals. Pushes the digests
/// of its files (training config, starting network, in-situ settings, data) to `inputs`.
pub fn training_job<'a>(
    cfg: &'a SweepConfig,
    grid: &'a Grid,
    file: &'a Path,
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
    // Sweeping the in-situ settings file itself (e.g. one file per update scheme): every file
    // the grid names, loaded and digested up front.
    let swap = grid.fields.iter().position(|f| f == SETTINGS_FIELD);
    let mut swapped: BTreeMap<String, (serde_json::Value, PathBuf)> = BTreeMap::new();
    if let Some(k) = swap {
        let StoreChoice::Crossbar { settings } = &tcfg.store else {
            return Err(format!(
                "{}: {SETTINGS_FIELD} is swept, but the training config has no in-situ settings (store: Float)",
                file.display()
            )
            .into());
        };
        for row in &grid.rows {
            let name = row[k].to_string();
            if swapped.contains_key(&name) {
                continue;
            }
            let p = tbase.join(&name);
            let s: InSituConfig = nacsim_core::config::load(&p)?;
            if name != *settings {
                inputs.push(InputDigest::of_file(
                    format!("the in-situ settings {name}"),
                    &p,
                )?);
            }
            swapped.insert(name, (serde_json::to_value(&s)?, p));
        }
    }
    let data_dir: PathBuf = match (cfg.data.as_str(), tcfg.data_dir.as_str()) {
        (d, _) if !d.is_empty() => base_dir.join(d),
        (_, d) if !d.is_empty() => tbase.join(d),
        _ => PathBuf::from(tcfg.dataset.default_dir().ok_or_else(|| {
            format!(
                "{}: the training config's dataset has no standard folder; give `data` in the sweep",
                file.display()
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
    if let Some((s, _)) = &insitu {
        let data = serde_json::to_value(s.data)?;
        for (name, (v, _)) in &swapped {
            if v["data"] != data {
                return Err(format!(
                    "{}: the in-situ settings {name} have other data options than the training config's; the data \
                     are prepared once per sweep: sweep settings files with the same `data` options",
                    file.display()
                )
                .into());
            }
        }
    }
    // One document holding both files, so that `config.…` and `insitu.…` paths address them.
    let doc = serde_json::json!({
        "config": serde_json::to_value(&tcfg)?,
        "insitu": insitu.as_ref().map(|(s, _)| serde_json::to_value(s)).transpose()?,
    });
    let one = grid.fields.len() == 1;
    let configs = move |di: usize| -> CliResult<(TrainConfig, Option<nacsim_train::InSitu>)> {
        let row = &grid.rows[di];
        let bad = |path: &str, rule: String| {
            if one {
                format!(
                    "{}: parameter.path = {path:?} with value {}: {rule}",
                    file.display(),
                    row[0]
                )
            } else {
                format!(
                    "{}: design {di} ({}): field {path:?}: {rule}",
                    file.display(),
                    grid.describe(di)
                )
            }
        };
        let mut d = doc.clone();
        let mut settings_path = insitu.as_ref().map(|(_, p)| p.clone());
        if let Some(k) = swap {
            let (v, p) = &swapped[&row[k].to_string()];
            d["insitu"] = v.clone();
            settings_path = Some(p.clone());
        }
        for (path, value) in grid.fields.iter().zip(row) {
            if path.starts_with("insitu.") && insitu.is_none() {
                return Err(bad(
                    path,
                    "the training config has no in-situ settings (store: Float)".into(),
                )
                .into());
            }
            set_json_field(&mut d, path, value).map_err(|e| bad(path, e))?;
        }
        let all = grid.fields.join(", ");
        let t: TrainConfig = typed(&d["config"]).map_err(|e| bad(&all, e))?;
        let s = match settings_path {
            Some(p) => Some((
                typed::<InSituConfig>(&d["insitu"]).map_err(|e| bad(&all, e))?,
                p,
            )),
            None => None,
        };
        Ok((t, s))
    };
    // Check every design before running anything.
    for di in 0..grid.rows.len() {
        configs(di)?;
    }
    let train_point =
        move |di: usize, trial: u32, done: &(dyn Fn(f64) + Sync)| -> CliResult<PointResult> {
            let (mut t, s) = configs(di)?;
            t.train.seed = cfg.seed + u64::from(trial);
            let epochs = t.train.epochs.max(1) as f64;
            let f = fit(
                &t,
                &tbase,
                s.as_ref(),
                &train_set,
                &test_set,
                None,
                &mut |p| {
                    let step = p.step as f64 / p.steps.max(1) as f64;
                    done((p.epoch as f64 + step) / epochs);
                },
            )?;
            let acc = f
                .history
                .last()
                .and_then(|r| r.eval_accuracy)
                .unwrap_or(f.accuracy);
            let w = f.write_stats.unwrap_or_default();
            let total = w.write_energy_pj + w.half_select_energy_pj + w.read_energy_pj;
            let mut m = BTreeMap::new();
            m.insert("accuracy".to_string(), acc);
            m.insert("float_accuracy".to_string(), f.accuracy);
            m.insert("energy_pj".to_string(), total);
            m.insert("write_pulses".to_string(), w.pulses as f64);
            m.insert("write_steps".to_string(), w.steps as f64);
            m.insert("write_energy_pj".to_string(), w.write_energy_pj);
            m.insert("half_select_energy_pj".to_string(), w.half_select_energy_pj);
            m.insert("read_energy_pj".to_string(), w.read_energy_pj);
            m.insert("write_latency_s".to_string(), w.write_latency_s);
            m.insert(
                "max_pulses_per_device".to_string(),
                f64::from(w.max_pulses_per_device),
            );
            m.insert(
                "mean_pulses_per_device".to_string(),
                w.mean_pulses_per_device,
            );
            Ok(point(grid, di, trial, m, |r| {
                r.latency_s = w.write_latency_s;
                r.float_accuracy = Some(f.accuracy);
                r.seconds = Some(f.seconds);
            }))
        };
    Ok(Box::new(move |di, trials, done| {
        trials
            .iter()
            .map(|&trial| train_point(di, trial, done))
            .collect()
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
