//! `nacsim pareto`: the designs of a sweep that no other design beats in every objective.

use std::path::PathBuf;

use clap::Args;
use nacsim_scheduler::sweep::pareto::{Direction, front};
use nacsim_scheduler::sweep::{Table, sig7};

use super::merge::merged;
use super::plot;
use crate::CliResult;

/// Arguments of `nacsim pareto`.
#[derive(Args, Debug)]
pub struct ParetoArgs {
    /// Output folder of a sweep (as for `nacsim merge`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Objectives to make small, comma-separated report keys (e.g. time_s,energy_pj,area_mm2,
    /// edp_j_s); each design's mean over its trials.
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub minimize: Vec<String>,
    /// Objectives to make large (e.g. accuracy,tops_per_watt,gops).
    #[arg(long, value_name = "C", value_delimiter = ',')]
    pub maximize: Vec<String>,
    /// Write the merged table of every design with a last column `pareto` (true on the front).
    #[arg(long, value_name = "F.csv")]
    pub csv: Option<PathBuf>,
    /// Write an SVG scatter of the first two objectives with the front drawn.
    #[arg(long, value_name = "F.svg")]
    pub svg: Option<PathBuf>,
    /// Title of the plot (default: the sweep's name and the objectives).
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
    /// Use what is there when points are missing (as `nacsim merge --allow-partial`).
    #[arg(long)]
    pub allow_partial: bool,
    /// List the swept fields and the figures the sweep's points carry, then stop.
    #[arg(long)]
    pub list: bool,
}

/// Run `nacsim pareto`: print the front (swept fields and objective means, one CSV row per
/// design on the front, in design order).
pub fn run(a: &ParetoArgs) -> CliResult<()> {
    let m = merged(&a.dir, a.allow_partial)?;
    if a.list {
        outln!("fields: {}", m.fields().join(", "));
        outln!("figures: {}", m.metric_names().join(", "));
        return Ok(());
    }
    let mut objectives: Vec<(String, Direction)> = Vec::new();
    for (names, d) in [
        (&a.minimize, Direction::Minimize),
        (&a.maximize, Direction::Maximize),
    ] {
        for n in names.iter().filter(|n| !n.is_empty()) {
            let k = plot::metric(&m, n).map_err(|e| {
                format!(
                    "--{} {n}: {e}",
                    if d == Direction::Minimize {
                        "minimize"
                    } else {
                        "maximize"
                    }
                )
            })?;
            if objectives.iter().any(|(o, _)| *o == k) {
                return Err(format!("{k} is named twice; give each objective once").into());
            }
            objectives.push((k, d));
        }
    }
    if objectives.is_empty() {
        return Err(format!(
            "give objectives with --minimize and/or --maximize (report keys; sweep {:?} carries {})",
            m.record.name,
            m.metric_names().join(", ")
        )
        .into());
    }
    // Designs that lack an objective (e.g. a partial merge) take no part.
    let rows: Vec<usize> = (0..m.rows.len())
        .filter(|&i| {
            objectives
                .iter()
                .all(|(k, _)| m.rows[i].metrics.contains_key(k))
        })
        .collect();
    let points: Vec<Vec<f64>> = rows
        .iter()
        .map(|&i| {
            objectives
                .iter()
                .map(|(k, _)| m.rows[i].metrics[k].mean)
                .collect()
        })
        .collect();
    let dirs: Vec<Direction> = objectives.iter().map(|(_, d)| *d).collect();
    let on = front(&points, &dirs);
    let mut marks = vec![false; m.rows.len()];
    for (&i, &f) in rows.iter().zip(&on) {
        marks[i] = f;
    }
    let mut header: Vec<String> = m.fields().to_vec();
    header.extend(objectives.iter().map(|(k, _)| format!("{k}_mean")));
    let table = Table {
        header,
        rows: m
            .rows
            .iter()
            .zip(&marks)
            .filter(|(_, f)| **f)
            .map(|(r, _)| {
                let mut c: Vec<String> = r.values.iter().map(ToString::to_string).collect();
                c.extend(objectives.iter().map(|(k, _)| sig7(r.metrics[k].mean)));
                c
            })
            .collect(),
    };
    out!("{}", table.to_csv());
    if let Some(p) = &a.csv {
        let mut t = m.table();
        t.header.push("pareto".into());
        for (row, f) in t.rows.iter_mut().zip(&marks) {
            row.push(f.to_string());
        }
        std::fs::write(p, t.to_csv()).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = &a.svg {
        let (x, y) = match objectives.as_slice() {
            [x, y, ..] => (x, y),
            [x] => (x, x),
            [] => unreachable!("checked above"),
        };
        let pts: Vec<(f64, f64)> = points
            .iter()
            .map(|v| (v[0], v[1.min(v.len() - 1)]))
            .collect();
        let word = |d: Direction| match d {
            Direction::Minimize => "min",
            Direction::Maximize => "max",
        };
        let title = a.title.clone().unwrap_or_else(|| {
            format!(
                "{}: Pareto front ({} {}, {} {})",
                m.record.name,
                word(x.1),
                x.0,
                word(y.1),
                y.0
            )
        });
        plot::pareto(
            &pts,
            &on,
            (&plot::label(&x.0), &plot::label(&y.0)),
            &title,
            p,
        )?;
    }
    Ok(())
}
