//! Merging a sweep folder: the point files checked against the record, one row of statistics
//! per grid value, and the CSV of the rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{PointResult, SweepValue, record};

/// Statistics of one grid value over its trials.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MergedRow {
    /// The value.
    pub value: SweepValue,
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
    /// One row per grid value that has at least one point, in value order.
    pub rows: Vec<MergedRow>,
    /// Points of the grid with no point file, `(value index, trial)` in grid order.
    pub missing: Vec<(usize, u32)>,
}

impl Merged {
    /// The missing points for a message: the first `show` as `value V trial T`, then a count of
    /// the rest.
    pub fn describe_missing(&self, show: usize) -> String {
        let vals = &self.record.parameter.values;
        let mut s: Vec<String> = self
            .missing
            .iter()
            .take(show)
            .map(|&(v, t)| format!("value {} trial {t}", vals[v]))
            .collect();
        if self.missing.len() > show {
            s.push(format!("and {} more", self.missing.len() - show));
        }
        s.join(", ")
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
    let values = rec.parameter.values.len();
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
                    "{} and {} both hold value {} trial {} with different results; remove the wrong one, or start \
                     over with `nacsim sweep {} --out {} --force-new`",
                    q.display(),
                    p.display(),
                    rec.parameter.values[r.value_index],
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
            MergedRow {
                value: rec.parameter.values[vi].clone(),
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
        rows,
        missing,
    })
}

/// The merged table as CSV (fixed column order and number formatting). The last two columns,
/// `trials_expected` and `complete` (`true`/`false`), tell whether a row holds every trial of
/// its value.
pub fn to_csv(rows: &[MergedRow]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let mut write = |record: &[String]| {
        w.write_record(record)
            .expect("writing CSV to memory cannot fail");
    };
    write(
        &[
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
        ]
        .map(String::from),
    );
    for r in rows {
        write(&[
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
        ]);
    }
    let bytes = w.into_inner().expect("writing CSV to memory cannot fail");
    String::from_utf8(bytes).expect("the fields are UTF-8")
}
