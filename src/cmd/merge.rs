//! `nacsim merge`: the points of a sweep folder joined into a CSV table and plots.

use std::path::{Path, PathBuf};

use clap::Args;
use nacsim_scheduler::sweep::{Merged, merge};

use super::plot;
use crate::CliResult;

/// Arguments of `nacsim merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Output folder of one or more `nacsim sweep` runs (its sweep.json record and points/).
    /// Every point of the grid (designs × trials) must be there, unless --allow-partial.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Write the table, one row per design. One-field inference sweeps: value, trials,
    /// accuracy_mean, accuracy_std, accuracy_min, accuracy_max, energy_pj_mean, cycles_mean,
    /// tops_per_watt_mean, trials_expected, complete. Training sweeps: the accuracies, total
    /// write energy, float accuracy and in-situ write totals (pulses, write energy, write
    /// latency). Multi-axis sweeps: one column per swept field, trials, KEY_mean and KEY_std
    /// of every report figure, trials_expected, complete (docs/dse.md).
    #[arg(long, value_name = "F.csv")]
    pub csv: Option<PathBuf>,
    /// Merge even if points are missing (a shard failed or is still running): a row then holds
    /// the trials found (`trials` < `trials_expected`, `complete` = false), designs with no
    /// point have no row, and the missing points are listed on stderr.
    #[arg(long)]
    pub allow_partial: bool,
    /// Write an SVG plot of a figure against a swept field: by default accuracy (mean, min–max
    /// bars) against the swept value; with --metric, that figure's mean ± standard deviation
    /// against --x (one line per combination of the other fields).
    #[arg(long, value_name = "F.svg")]
    pub svg: Option<PathBuf>,
    /// The figure to plot (default: accuracy, or time_s for a shape-only sweep; a report key, e.g. time_s, energy_pj, edp_j_s, area_mm2,
    /// tops_per_watt, accuracy, write_pulses; `nacsim pareto DIR --list` lists a sweep's).
    #[arg(long, value_name = "KEY")]
    pub metric: Option<String>,
    /// The swept field on the x axis (its dotted path, or a unique end of it such as
    /// `bytes_per_cycle`; default: the first field).
    #[arg(long, value_name = "FIELD")]
    pub x: Option<String>,
    /// Write an SVG heat map of --metric over two swept fields, --x
    /// (columns) and --y (rows); other fields are averaged over.
    #[arg(long, value_name = "F.svg")]
    pub heatmap: Option<PathBuf>,
    /// The swept field on the heat map's y axis (default: the second field).
    #[arg(long, value_name = "FIELD")]
    pub y: Option<String>,
    /// Title of the plot (default: the figure and the swept field, with the sweep's name; for
    /// the one-field accuracy plot "accuracy vs swept value").
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
    /// Label of the plot's x axis (default: the swept field; for the one-field accuracy plot
    /// "value").
    #[arg(long, value_name = "TEXT")]
    pub xlabel: Option<String>,
}

/// Read and check a sweep folder; with missing points, refuse unless `allow_partial` (then
/// warn).
///
/// # Errors
/// What [`merge`] refuses, and missing points without `allow_partial`.
pub fn merged(dir: &Path, allow_partial: bool) -> CliResult<Merged> {
    let m = merge(dir)?;
    if !m.missing.is_empty() {
        let head = format!(
            "{}: {} of the {} points of sweep {:?} are missing ({})",
            dir.display(),
            m.missing.len(),
            m.record.points(),
            m.record.name,
            m.describe_missing(10)
        );
        if !allow_partial {
            return Err(format!(
                "{head}; run them with `nacsim sweep {} --out {}` (it skips the points already there; on a \
                 cluster, rerun the shards that failed), or pass --allow-partial to merge what is there (rows \
                 with missing trials say complete = false)",
                m.record.sweep_file,
                dir.display()
            )
            .into());
        }
        eprintln!("warning: {head}; merged with --allow-partial");
    }
    Ok(m)
}

/// Run `nacsim merge`.
pub fn run_merge(a: &MergeArgs) -> CliResult<()> {
    let m = merged(&a.dir, a.allow_partial)?;
    // Accuracy where the points have it (not shape-only sweeps), else the simulated time.
    let default_metric = if m.metric_names().iter().any(|k| k == "accuracy") {
        "accuracy"
    } else {
        "time_s"
    };
    // Check the plot requests before writing anything.
    let line = match (&a.svg, &a.metric, &a.x) {
        (Some(_), None, None) if m.record.parameter.is_some() => None,
        (Some(_), metric, x) => Some(plot::Line::new(
            &m,
            metric.as_deref().unwrap_or(default_metric),
            x.as_deref(),
        )?),
        (None, _, _) => None,
    };
    let heat = match &a.heatmap {
        Some(_) => Some(plot::Heat::new(
            &m,
            a.metric.as_deref().unwrap_or(default_metric),
            a.x.as_deref(),
            a.y.as_deref(),
        )?),
        None => None,
    };
    let csv = m.table().to_csv();
    match &a.csv {
        Some(p) => std::fs::write(p, &csv).map_err(|e| format!("{}: {e}", p.display()))?,
        None => out!("{csv}"),
    }
    if let Some(p) = &a.svg {
        match &line {
            None => plot::accuracy(
                &m.rows,
                p,
                a.title.as_deref().unwrap_or("accuracy vs swept value"),
                a.xlabel.as_deref().unwrap_or("value"),
            )?,
            Some(l) => l.draw(p, a.title.as_deref(), a.xlabel.as_deref())?,
        }
    }
    if let (Some(p), Some(h)) = (&a.heatmap, &heat) {
        h.draw(p, a.title.as_deref())?;
    }
    Ok(())
}
