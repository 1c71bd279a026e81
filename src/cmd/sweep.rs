//! `nacsim sweep` and `nacsim merge`: parameter sweeps × Monte Carlo trials, sharded and resumable.

use std::path::{Path, PathBuf};

use clap::Args;
use nacsim_nn::data::Split;
use nacsim_nn::model::Model;
use nacsim_scheduler::design::Design;
use nacsim_scheduler::report::RunReport;
use nacsim_scheduler::sim::Simulation;
use nacsim_scheduler::sweep::{
    PointResult, SweepConfig, merge, point_path, shard_points, to_csv, with_field, write_point,
};
use rayon::prelude::*;

use super::data::Source;
use super::run::calibration_set;
use crate::CliResult;

/// Arguments of `nacsim sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Sweep file (RON, models/sweeps/*.ron): design, network, data, the swept design field
    /// (dotted path) and its values, trials and seed.
    #[arg(value_name = "SWEEP.ron")]
    pub config: PathBuf,
    /// Output folder; each finished point is written to OUT/points/ at once, and points already
    /// there are skipped, so an interrupted sweep resumes where it stopped.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Run only shard i of n (0-based): the points whose grid position is i modulo n. Run the
    /// n shards anywhere (a Slurm job array, a Kubernetes Indexed Job), then `nacsim merge`.
    #[arg(long, value_name = "i/n")]
    pub shard: Option<String>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Arguments of `nacsim merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Output folder of one or more `nacsim sweep` runs (its points/ subfolder).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Write the table (one row per swept value: value, trials, accuracy_mean, accuracy_std,
    /// accuracy_min, accuracy_max, energy_pj_mean, cycles_mean, tops_per_watt_mean).
    #[arg(long, value_name = "F.csv")]
    pub csv: Option<PathBuf>,
    /// Write an SVG plot of accuracy (mean, min–max bars) against the swept value.
    #[arg(long, value_name = "F.svg")]
    pub svg: Option<PathBuf>,
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
    let cfg: SweepConfig = nacsim_core::config::load(&a.config)?;
    let (shard, shards) = a.shard.as_deref().map_or(Ok((0, 1)), parse_shard)?;
    let base_dir = a.config.parent().unwrap_or_else(|| Path::new("."));
    let design = Design::load(&base_dir.join(&cfg.design))?;
    let model = Model::load(&base_dir.join(&cfg.network))?;
    let src = if cfg.data.is_empty() {
        Source::Bundled
    } else {
        Source::Dir(base_dir.join(&cfg.data))
    };
    let data = src.load(Split::Test, (cfg.limit > 0).then_some(cfg.limit))?;
    let (calib, _) = calibration_set(&src, &data);
    // Check every value before running anything.
    for v in &cfg.parameter.values {
        with_field(&design.config, &cfg.parameter.path, *v, &a.config)?;
    }
    let todo: Vec<(usize, u32)> =
        shard_points(cfg.parameter.values.len(), cfg.trials, shard, shards)
            .into_iter()
            .filter(|&(v, t)| !point_path(&a.out, v, t).exists())
            .collect();
    std::fs::create_dir_all(a.out.join("points"))
        .map_err(|e| format!("{}: {e}", a.out.display()))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.unwrap_or(0))
        .build()
        .map_err(|e| format!("--threads: {e}"))?;
    let pb = crate::progress_bar(todo.len() as u64, a.quiet);
    pb.set_prefix(cfg.name.clone());
    let results: Vec<CliResult<()>> = pool.install(|| {
        todo.par_iter()
            .map(|&(vi, trial)| -> CliResult<()> {
                let value = cfg.parameter.values[vi];
                let config = with_field(&design.config, &cfg.parameter.path, value, &a.config)?;
                let d = Design {
                    config,
                    energy: design.energy.clone(),
                    path: design.path.clone(),
                };
                let sim = Simulation::with_trial(d, &model, &calib, cfg.seed, trial)?;
                let acc = sim.accuracy(&data);
                let r = RunReport::build(
                    &sim,
                    &cfg.network,
                    &src.describe(),
                    data.len(),
                    acc,
                    0.0,
                    0.0,
                )?;
                write_point(
                    &a.out,
                    &PointResult {
                        value_index: vi,
                        value,
                        trial,
                        accuracy: acc,
                        energy_pj: r.energy_pj,
                        cycles: r.cycles,
                        latency_s: r.latency_s,
                        gops: r.gops,
                        tops_per_watt: r.tops_per_watt,
                    },
                )
                .map_err(|e| format!("{}: {e}", a.out.display()))?;
                pb.inc(1);
                Ok(())
            })
            .collect()
    });
    pb.finish_and_clear();
    results.into_iter().collect::<CliResult<Vec<()>>>()?;
    eprintln!(
        "{}: shard {shard}/{shards}: {} points run, {} already done; results in {}",
        cfg.name,
        todo.len(),
        shard_points(cfg.parameter.values.len(), cfg.trials, shard, shards).len() - todo.len(),
        a.out.join("points").display()
    );
    Ok(())
}

/// Run `nacsim merge`.
pub fn run_merge(a: &MergeArgs) -> CliResult<()> {
    let rows = merge(&a.dir)?;
    let csv = to_csv(&rows);
    match &a.csv {
        Some(p) => std::fs::write(p, &csv).map_err(|e| format!("{}: {e}", p.display()))?,
        None => print!("{csv}"),
    }
    if let Some(p) = &a.svg {
        plot(&rows, p)?;
    }
    Ok(())
}

fn plot(rows: &[nacsim_scheduler::sweep::MergedRow], path: &Path) -> CliResult<()> {
    use plotters::prelude::*;
    let (x0, x1) = rows
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| {
            (a.min(r.value), b.max(r.value))
        });
    let pad = ((x1 - x0) * 0.05).max(1e-9);
    let root = SVGBackend::new(path, (720, 480)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("accuracy vs swept value", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((x0 - pad)..(x1 + pad), 0f64..1f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("value")
        .y_desc("top-1 accuracy")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            rows.iter().map(|r| (r.value, r.accuracy_mean)),
            &BLUE,
        ))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(rows.iter().map(|r| {
            ErrorBar::new_vertical(
                r.value,
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
