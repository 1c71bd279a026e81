//! Merging a sweep folder: the point files checked against the record, one row of statistics
//! per design, and the CSV of the rows.
//!
//! The CSV of a one-field inference sweep keeps its fixed columns ([`to_csv`]); a training
//! sweep's table has the training figures (accuracies and the in-situ write totals); a
//! multi-axis sweep's table has one column per swept field and the mean and standard deviation
//! of every report figure its points carry ([`Merged::table`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Grid, PointResult, SweepValue, record};

/// Statistics of one figure over the trials of a design.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MetricStats {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one trial).
    pub std: f64,
    /// Lowest.
    pub min: f64,
    /// Highest.
    pub max: f64,
}

impl MetricStats {
    /// The statistics of `xs` (in trial order, so the sums do not depend on the run order).
    /// Equal values (a deterministic figure, or one trial) give exactly that value as the
    /// mean and a standard deviation of exactly 0, not the rounding residue of `Σx/n`.
    pub fn of(xs: &[f64]) -> Self {
        let n = xs.len() as f64;
        if let Some(&first) = xs.first()
            && xs.iter().all(|&x| x == first)
        {
            return MetricStats {
                mean: first,
                std: 0.0,
                min: first,
                max: first,
            };
        }
        let mean = xs.iter().sum::<f64>() / n;
        let var = if xs.len() > 1 {
            xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        MetricStats {
            mean,
            std: var.sqrt(),
            min: xs.iter().copied().fold(f64::INFINITY, f64::min),
            max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// Statistics of one design over its trials.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MergedRow {
    /// The value (multi-axis sweeps: of the first field).
    pub value: SweepValue,
    /// The design's value of every swept field ([`Merged::fields`] order).
    pub values: Vec<SweepValue>,
    /// Trials found.
    pub trials: usize,
    /// Trials of the sweep's grid (`trials` in the sweep file); a row holds all of them unless
    /// the merge was asked to allow a partial sweep.
    pub trials_expected: usize,
    /// Mean accuracy.
    pub accuracy_mean: f64,
    /// Sample standard deviation of the accuracy (0 for one trial).
    pub accuracy_std: f64,
    /// Lowest accuracy.
    pub accuracy_min: f64,
    /// Highest accuracy.
    pub accuracy_max: f64,
    /// Mean energy in pJ.
    pub energy_pj_mean: f64,
    /// Mean cycles.
    pub cycles_mean: f64,
    /// Mean TOPS/W.
    pub tops_per_watt_mean: f64,
    /// Every figure the design's points carry ([`PointResult::metrics`], or the fixed figures
    /// of older point files), by report key.
    pub metrics: BTreeMap<String, MetricStats>,
}

impl MergedRow {
    /// Whether the row holds every trial of its value.
    pub fn complete(&self) -> bool {
        self.trials == self.trials_expected
    }
}

/// The points of a sweep folder, summarised.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// The folder's record (the grid).
    pub record: record::SweepRecord,
    /// The designs of the sweep.
    pub grid: Grid,
    /// Whether the points are training runs (they carry `float_accuracy`).
    pub training: bool,
    /// One row per design that has at least one point, in design order.
    pub rows: Vec<MergedRow>,
    /// Points of the grid with no point file, `(value index, trial)` in grid order.
    pub missing: Vec<(usize, u32)>,
}

impl Merged {
    /// The missing points for a message: the first `show` as `value V trial T`, then a count of
    /// the rest.
    pub fn describe_missing(&self, show: usize) -> String {
        let one = self.record.parameter.is_some();
        let mut s: Vec<String> = self
            .missing
            .iter()
            .take(show)
            .map(|&(v, t)| format!("{} trial {t}", design_label(&self.grid, one, v)))
            .collect();
        if self.missing.len() > show {
            s.push(format!("and {} more", self.missing.len() - show));
        }
        s.join(", ")
    }
}

/// A design for messages: `value V` in a one-field sweep, else `design I (field=value, …)`.
fn design_label(grid: &Grid, one_field: bool, design: usize) -> String {
    if one_field {
        format!("value {}", grid.rows[design][0])
    } else {
        format!("design {design} ({})", grid.describe(design))
    }
}

/// Read the record and every point file of sweep folder `dir` and summarise per grid value
/// (ordered by value index; trials in trial order, so the sums do not depend on the order the
/// points were run in). Points missing from the grid are listed in [`Merged::missing`], not an
/// error: the caller decides whether a partial sweep may be merged.
///
/// # Errors
/// A missing folder or record, an unreadable point file, a point of another sweep (its digest
/// differs from the record's) or outside the grid, and two point files holding the same point
/// with different results, each naming the files.
pub fn merge(dir: &Path) -> Result<Merged, String> {
    let pdir = dir.join("points");
    if !pdir.is_dir() {
        return Err(format!(
            "{}: no such folder; run `nacsim sweep` with --out {} first",
            pdir.display(),
            dir.display()
        ));
    }
    let rec = record::SweepRecord::load(dir)?.ok_or_else(|| {
        format!(
            "{}: no sweep record, so the grid of its points is unknown (an older nacsim wrote them, or they were \
             copied in); run the sweep again with `nacsim sweep SWEEP.ron --out {} --force-new`",
            record::SweepRecord::file(dir).display(),
            dir.display()
        )
    })?;
    let grid = rec.designs();
    let values = grid.rows.len();
    let mut points: BTreeMap<(usize, u32), (PathBuf, PointResult)> = BTreeMap::new();
    for p in record::point_files(dir)? {
        let r: PointResult = serde_json::from_slice(
            &std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?,
        )
        .map_err(|e| format!("{}: not a point result: {e}", p.display()))?;
        if r.digest.as_deref() != Some(rec.digest.as_str()) {
            return Err(format!(
                "{}: the point belongs to another sweep (its digest is {}, the folder's record {} has {}); \
                 remove it, or start over with `nacsim sweep {} --out {} --force-new`",
                p.display(),
                r.digest.as_deref().unwrap_or("missing"),
                record::SweepRecord::file(dir).display(),
                rec.digest,
                rec.sweep_file,
                dir.display()
            ));
        }
        if r.value_index >= values || r.trial >= rec.trials {
            return Err(format!(
                "{}: value index {} trial {} is outside the sweep's grid ({values} values × {} trials); remove it",
                p.display(),
                r.value_index,
                r.trial,
                rec.trials
            ));
        }
        match points.get(&(r.value_index, r.trial)) {
            Some((q, other)) if *other != r => {
                return Err(format!(
                    "{} and {} both hold {} trial {} with different results; remove the wrong one, or start \
                     over with `nacsim sweep {} --out {} --force-new`",
                    q.display(),
                    p.display(),
                    design_label(&grid, rec.parameter.is_some(), r.value_index),
                    r.trial,
                    rec.sweep_file,
                    dir.display()
                ));
            }
            Some(_) => {}
            None => {
                points.insert((r.value_index, r.trial), (p, r));
            }
        }
    }
    let missing = (0..values)
        .flat_map(|v| (0..rec.trials).map(move |t| (v, t)))
        .filter(|k| !points.contains_key(k))
        .collect();
    let mut by_value: BTreeMap<usize, Vec<&PointResult>> = BTreeMap::new();
    for (&(v, _), (_, r)) in &points {
        by_value.entry(v).or_default().push(r);
    }
    let training = points.values().any(|(_, r)| r.float_accuracy.is_some());
    let rows = by_value
        .iter()
        .map(|(&vi, rs)| {
            let n = rs.len() as f64;
            let mean = |f: &dyn Fn(&PointResult) -> f64| rs.iter().map(|r| f(r)).sum::<f64>() / n;
            let acc_mean = mean(&|r| r.accuracy);
            let var = if rs.len() > 1 {
                rs.iter()
                    .map(|r| (r.accuracy - acc_mean).powi(2))
                    .sum::<f64>()
                    / (n - 1.0)
            } else {
                0.0
            };
            let mut figures: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for r in rs {
                for (k, x) in point_metrics(r) {
                    figures.entry(k).or_default().push(x);
                }
            }
            MergedRow {
                value: grid.rows[vi][0].clone(),
                values: grid.rows[vi].clone(),
                metrics: figures
                    .into_iter()
                    .map(|(k, xs)| (k, MetricStats::of(&xs)))
                    .collect(),
                trials: rs.len(),
                trials_expected: rec.trials as usize,
                accuracy_mean: acc_mean,
                accuracy_std: var.sqrt(),
                accuracy_min: rs.iter().map(|r| r.accuracy).fold(f64::INFINITY, f64::min),
                accuracy_max: rs
                    .iter()
                    .map(|r| r.accuracy)
                    .fold(f64::NEG_INFINITY, f64::max),
                energy_pj_mean: mean(&|r| r.energy_pj),
                cycles_mean: mean(&|r| r.cycles as f64),
                tops_per_watt_mean: mean(&|r| r.tops_per_watt),
            }
        })
        .collect();
    Ok(Merged {
        record: rec,
        grid,
        training,
        rows,
        missing,
    })
}

/// The figures of a point by report key: its [`PointResult::metrics`], or for point files
/// written before them, the fixed figures (`accuracy`, `energy_pj`, `cycles`, `time_s`, `gops`,
/// `tops_per_watt`).
pub fn point_metrics(r: &PointResult) -> BTreeMap<String, f64> {
    if !r.metrics.is_empty() {
        return r.metrics.clone();
    }
    let mut m = BTreeMap::new();
    m.insert("accuracy".to_string(), r.accuracy);
    m.insert("energy_pj".to_string(), r.energy_pj);
    m.insert("cycles".to_string(), r.cycles as f64);
    m.insert("time_s".to_string(), r.latency_s);
    m.insert("gops".to_string(), r.gops);
    m.insert("tops_per_watt".to_string(), r.tops_per_watt);
    m
}

/// A table of strings: a header and rows of the same length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, one cell per column.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The table as CSV (quoted only where a cell needs it, `\n` line ends).
    pub fn to_csv(&self) -> String {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        for r in std::iter::once(&self.header).chain(&self.rows) {
            w.write_record(r)
                .expect("writing CSV to memory cannot fail");
        }
        let bytes = w.into_inner().expect("writing CSV to memory cannot fail");
        String::from_utf8(bytes).expect("the fields are UTF-8")
    }
}

/// `x` with 7 significant digits, trailing zeros dropped: fixed-point for magnitudes 1e-3 to
/// 1e6, else scientific (`2.5e-7`); `0` for zero. Deterministic for a given `x`.
pub fn sig7(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return x.to_string();
    }
    let e = x.abs().log10().floor() as i32;
    let trim = |s: &str| s.trim_end_matches('0').trim_end_matches('.').to_string();
    if (-3..6).contains(&e) {
        trim(&format!("{:.*}", (6 - e) as usize, x))
    } else {
        let s = format!("{x:.6e}");
        let (m, ex) = s.split_once('e').unwrap_or((&s, "0"));
        format!("{}e{ex}", trim(m))
    }
}

/// The training figures of a training sweep's table, after the accuracy statistics and the
/// total energy: the float-forward accuracy and the in-situ write totals.
const TRAINING_FIGURES: [&str; 4] = [
    "float_accuracy",
    "write_pulses",
    "write_energy_pj",
    "write_latency_s",
];

impl Merged {
    /// The swept fields.
    pub fn fields(&self) -> &[String] {
        &self.grid.fields
    }

    /// The report keys of the figures the rows carry, sorted.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .rows
            .iter()
            .flat_map(|r| r.metrics.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The merged table. A one-field inference sweep: the columns of [`to_csv`] (unchanged since
    /// the first sweeps). A one-field training sweep: `value, trials, accuracy_mean,
    /// accuracy_std, accuracy_min, accuracy_max, energy_pj_mean, float_accuracy_mean,
    /// write_pulses_mean, write_energy_pj_mean, write_latency_s_mean, trials_expected,
    /// complete`. A multi-axis sweep: one column per swept field (named by its path), `trials`,
    /// then `KEY_mean, KEY_std` for every figure (sorted by key; `accuracy_min`, `accuracy_max`
    /// after `accuracy_std`), `trials_expected, complete`.
    pub fn table(&self) -> Table {
        let done = |r: &MergedRow| vec![r.trials_expected.to_string(), r.complete().to_string()];
        let stat = |r: &MergedRow, k: &str| r.metrics.get(k).copied();
        if self.record.parameter.is_some() && !self.training {
            let csv_rows = self.rows.iter().map(legacy_cells).collect();
            return Table {
                header: LEGACY_HEADER.map(String::from).to_vec(),
                rows: csv_rows,
            };
        }
        if self.record.parameter.is_some() {
            let mut header: Vec<String> =
                LEGACY_HEADER[..7].iter().map(|s| s.to_string()).collect();
            header.extend(TRAINING_FIGURES.iter().map(|k| format!("{k}_mean")));
            header.extend(["trials_expected", "complete"].map(String::from));
            let rows = self
                .rows
                .iter()
                .map(|r| {
                    let mut c = legacy_cells(r)[..7].to_vec();
                    for k in TRAINING_FIGURES {
                        c.push(stat(r, k).map_or_else(String::new, |s| sig7(s.mean)));
                    }
                    c.extend(done(r));
                    c
                })
                .collect();
            return Table { header, rows };
        }
        let names = self.metric_names();
        let mut header: Vec<String> = self.grid.fields.clone();
        header.push("trials".into());
        for k in &names {
            header.push(format!("{k}_mean"));
            header.push(format!("{k}_std"));
            if k == "accuracy" {
                header.push("accuracy_min".into());
                header.push("accuracy_max".into());
            }
        }
        header.extend(["trials_expected", "complete"].map(String::from));
        let rows = self
            .rows
            .iter()
            .map(|r| {
                let mut c: Vec<String> = r.values.iter().map(ToString::to_string).collect();
                c.push(r.trials.to_string());
                for k in &names {
                    let s = stat(r, k);
                    c.push(s.map_or_else(String::new, |s| sig7(s.mean)));
                    c.push(s.map_or_else(String::new, |s| sig7(s.std)));
                    if k == "accuracy" {
                        c.push(s.map_or_else(String::new, |s| sig7(s.min)));
                        c.push(s.map_or_else(String::new, |s| sig7(s.max)));
                    }
                }
                c.extend(done(r));
                c
            })
            .collect();
        Table { header, rows }
    }
}

const LEGACY_HEADER: [&str; 11] = [
    "value",
    "trials",
    "accuracy_mean",
    "accuracy_std",
    "accuracy_min",
    "accuracy_max",
    "energy_pj_mean",
    "cycles_mean",
    "tops_per_watt_mean",
    "trials_expected",
    "complete",
];

fn legacy_cells(r: &MergedRow) -> Vec<String> {
    vec![
        r.value.to_string(),
        r.trials.to_string(),
        format!("{:.6}", r.accuracy_mean),
        format!("{:.6}", r.accuracy_std),
        format!("{:.6}", r.accuracy_min),
        format!("{:.6}", r.accuracy_max),
        format!("{:.6e}", r.energy_pj_mean),
        format!("{:.1}", r.cycles_mean),
        format!("{:.6}", r.tops_per_watt_mean),
        r.trials_expected.to_string(),
        r.complete().to_string(),
    ]
}

/// The merged table of a one-field inference sweep as CSV (fixed column order and number
/// formatting). The last two columns, `trials_expected` and `complete` (`true`/`false`), tell
/// whether a row holds every trial of its value.
pub fn to_csv(rows: &[MergedRow]) -> String {
    Table {
        header: LEGACY_HEADER.map(String::from).to_vec(),
        rows: rows.iter().map(legacy_cells).collect(),
    }
    .to_csv()
}
