//! Parameter sweeps: a list of designs — the values of one field (by its dotted path), or the
//! product of several axes ([`axes`]) — × Monte Carlo trials, run as independent points,
//! sharded deterministically, one result file per point.
//!
//! Three kinds of sweep share the grid, the shards, the point files and [`merge`]: an *inference*
//! sweep sets fields of a design file and evaluates a trained network on it (trial `t` draws
//! the design's stochastic knobs with `trial = t`); a *shape-only* sweep costs a SCALE-Sim
//! topology on the design (no data); a *training* sweep sets a field of a training
//! config or of its in-situ crossbar settings and trains the network (trial `t` trains with seed
//! `seed + t`), recording the accuracy of the trained network through the training forward pass.
//!
//! A point is `(value index, trial)`. Shard `i/n` runs the points whose position in the grid
//! (`value_index · trials + trial`) is `i` modulo `n`. Each finished point is written to
//! `DIR/points/v{value:04}-t{trial:04}.json` through a temporary file and a rename, so a killed
//! sweep loses at most the points in flight and a rerun skips every point already on disk.
//!
//! A folder holds one sweep: its [`record::SweepRecord`] (`DIR/sweep.json`) names the grid and
//! a digest of every input, every point file carries that digest, and a different sweep is
//! refused ([`record::open`]). Processes running the same sweep into one folder at once share
//! the work: a point is computed only under its claim ([`claim`]: an exclusive lock on
//! `DIR/points/v…-t….lock`, released by the system when its process dies).
//!
//! [`merge`] reads the points, checks them against the record and writes one CSV row per grid
//! value, telling which points are missing; the CSV depends only on the point results, so
//! sharded, threaded and resumed runs give the same bytes.
//!
//! | module | what |
//! | --- | --- |
//! | this one | the sweep file ([`SweepConfig`]), setting a field by its path, shards, point files and claims |
//! | [`axes`] | the axes of a multi-axis sweep (grid, zipped, sampled) and the [`Grid`] of designs they span |
//! | `merged` | [`merge`]: the point files checked against the record, statistics per design, [`Merged::table`], [`to_csv`] |
//! | [`pareto`] | Pareto fronts: dominance and the non-dominated designs |
//! | [`record`] | the folder's record `DIR/sweep.json` and its digest |

pub mod axes;
mod merged;
pub mod pareto;
pub mod record;
#[cfg(test)]
mod tests;

pub use axes::{Axis, Grid, SampleMethod, SampleRange, SampledField};
pub use merged::{Merged, MergedRow, MetricStats, Table, merge, point_metrics, sig7, to_csv};

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::design::{DesignConfig, DesignError};

/// One value of the swept field: a number, or a name (an enum variant such as a device preset).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SweepValue {
    /// A number (whole numbers are written to integer fields as integers).
    Number(f64),
    /// A name, written to the field as a string (unit enum variants, e.g. `"TaOxHfOx"`).
    Text(String),
}

impl SweepValue {
    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            SweepValue::Number(v) => Some(*v),
            SweepValue::Text(_) => None,
        }
    }
}

impl std::fmt::Display for SweepValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SweepValue::Number(v) => write!(f, "{v}"),
            SweepValue::Text(t) => write!(f, "{t}"),
        }
    }
}

impl From<f64> for SweepValue {
    fn from(v: f64) -> Self {
        SweepValue::Number(v)
    }
}

/// The swept parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepParameter {
    /// Dotted path of a field, with `[i]` for list entries and the variant name for enums.
    /// Inference sweeps: a field of the design file, e.g. `dram.bytes_per_cycle` or
    /// `engines[0].engine.Crossbar.nonideal.d2d_sigma_rel`. Training sweeps: `config.…` for the
    /// training config (e.g. `config.train.lr`) or `insitu.…` for its in-situ settings (e.g.
    /// `insitu.variation.voltage_error_sigma`, `insitu.device.Preset.preset`).
    pub path: String,
    /// Values, in order (the CSV keeps this order): numbers, or names for enum fields.
    pub values: Vec<SweepValue>,
}

/// A sweep file (`models/sweeps/*.ron`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// File format version; must be 1.
    pub schema_version: u32,
    /// Name of the sweep.
    pub name: String,
    /// Design file, relative to the sweep file (inference sweeps; empty for training sweeps).
    #[serde(default)]
    pub design: String,
    /// Network file (with weights), relative to the sweep file (inference sweeps).
    #[serde(default)]
    pub network: String,
    /// Training config, relative to the sweep file (training sweeps; give it instead of
    /// `design` and `network`). Its `output` is not written: the trained weights of a point are
    /// not kept.
    #[serde(default)]
    pub train: String,
    /// Folder of IDX files; empty means the bundled 2,000-image Fashion-MNIST sample (inference)
    /// or the training config's data folder (training).
    #[serde(default)]
    pub data: String,
    /// Evaluate only the first `limit` test images; 0 means all.
    #[serde(default)]
    pub limit: usize,
    /// Training sweeps: train on the first `train_limit` training images (after the in-situ
    /// data options); 0 means all.
    #[serde(default)]
    pub train_limit: usize,
    /// Shape-only sweeps: a SCALE-Sim topology file (CSV, `models/workloads/*.csv`), relative
    /// to the sweep file, costed by its layer shapes on `design` instead of running `network`
    /// on data (no accuracy; every other report figure).
    #[serde(default)]
    pub topology: String,
    /// The swept field and its values (a one-field sweep; give this or `axes`). Written
    /// `parameter: (path: …, values: […])` (no `Some(…)`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_parameter"
    )]
    pub parameter: Option<SweepParameter>,
    /// The axes of a multi-axis sweep (give this or `parameter`): grids, zipped fields and
    /// sampled designs; the designs are the cartesian product of the axes' rows
    /// ([`axes::Grid::of_axes`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub axes: Vec<Axis>,
    /// Monte Carlo trials per value (≥ 1); trial `t` of a stochastic design draws from its keyed
    /// streams with `trial = t`; trial `t` of a training sweep trains with seed `seed + t`.
    pub trials: u32,
    /// Base seed of the trials.
    pub seed: u64,
}

/// `parameter` as written in a sweep file: the parameter itself, without `Some(…)`.
fn some_parameter<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SweepParameter>, D::Error> {
    SweepParameter::deserialize(d).map(Some)
}

/// The most trials per value a sweep file may ask for.
pub const MAX_TRIALS: u32 = 10_000;

/// The most points (values × trials) a sweep may have.
pub const MAX_POINTS: usize = 1_000_000;

impl SweepConfig {
    /// The designs of the sweep: the one field and its values (`parameter`), or the product of
    /// the `axes`.
    pub fn grid(&self) -> Grid {
        match &self.parameter {
            Some(p) => Grid {
                fields: vec![p.path.clone()],
                rows: p.values.iter().map(|v| vec![v.clone()]).collect(),
            },
            None => Grid::of_axes(&self.axes),
        }
    }

    /// Number of designs, without building them (saturating).
    pub fn designs(&self) -> usize {
        match &self.parameter {
            Some(p) => p.values.len(),
            None => Grid::count(&self.axes),
        }
    }

    /// The dotted paths of the swept fields.
    pub fn fields(&self) -> Vec<String> {
        match &self.parameter {
            Some(p) => vec![p.path.clone()],
            None => self.axes.iter().flat_map(Axis::paths).collect(),
        }
    }
}

impl Validate for SweepConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.schema_version(self.schema_version, 1);
        c.check(
            (1..=MAX_TRIALS).contains(&self.trials),
            "trials",
            self.trials,
            &format!("must be in 1..={MAX_TRIALS}"),
        );
        let designs = self.designs();
        c.check(
            self.trials > MAX_TRIALS || designs.saturating_mul(self.trials as usize) <= MAX_POINTS,
            "trials",
            self.trials,
            &format!(
                "{designs} designs × {} trials is more than {MAX_POINTS} points; split the sweep into several files",
                self.trials
            ),
        );
        match (&self.parameter, self.axes.is_empty()) {
            (Some(_), false) => {
                c.check(
                    false,
                    "axes",
                    "[…]",
                    "give either `parameter` (one field) or `axes` (several), not both",
                );
            }
            (None, true) => {
                c.check(
                    false,
                    "parameter",
                    "missing",
                    "give `parameter: (path: …, values: […])` or `axes: [Grid(path: …, values: […]), …]`",
                );
            }
            _ => {}
        }
        if let Some(p) = &self.parameter {
            c.check(
                !p.values.is_empty(),
                "parameter.values",
                "[]",
                "give at least one value",
            );
            for (i, v) in p.values.iter().enumerate() {
                c.check(
                    v.as_f64().is_none_or(f64::is_finite),
                    &format!("parameter.values[{i}]"),
                    v,
                    "must be finite",
                );
            }
            c.check(
                !p.path.is_empty(),
                "parameter.path",
                "\"\"",
                "name a design field (or, in a training sweep, a `config.…` or `insitu.…` field)",
            );
        }
        for (field, value, rule) in axes::problems(&self.axes) {
            c.check(false, &field, value, &rule);
        }
        let what = if self.parameter.is_some() {
            "parameter.path"
        } else {
            "axes"
        };
        if self.train.is_empty() {
            c.check(
                !self.design.is_empty(),
                "design",
                "\"\"",
                "name a design file (inference or shape-only sweep) or give `train` (training sweep)",
            );
            if self.topology.is_empty() {
                c.check(
                    !self.network.is_empty(),
                    "network",
                    "\"\"",
                    "name a network file with weights (inference sweep) or a `topology` CSV (shape-only sweep)",
                );
            } else {
                c.check(
                    self.network.is_empty(),
                    "topology",
                    &self.topology,
                    "a shape-only sweep costs the topology's layer shapes: leave out `network`",
                );
            }
        } else {
            c.check(
                self.design.is_empty() && self.network.is_empty() && self.topology.is_empty(),
                "train",
                &self.train,
                "a training sweep trains its own network: leave out `design`, `network` and `topology`",
            );
            for p in self.fields() {
                c.check(
                    p.starts_with("config.") || p.starts_with("insitu."),
                    what,
                    &p,
                    "a training sweep sets `config.…` (the training config) or `insitu.…` (its in-situ settings)",
                );
                c.check(
                    !p.starts_with("insitu.data"),
                    what,
                    &p,
                    "the in-situ data options are applied once per sweep; sweep them in separate sweep files",
                );
            }
        }
        c.finish()
    }
}

/// The result of one point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointResult {
    /// Index of the design: of the value in `parameter.values`, or of the row in the sweep's
    /// [`Grid`] (multi-axis sweeps).
    pub value_index: usize,
    /// The value (multi-axis sweeps: of the first field; all are in `values`).
    pub value: SweepValue,
    /// Multi-axis sweeps: the design's value of every swept field, in [`Grid::fields`] order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<SweepValue>,
    /// Trial number.
    pub trial: u32,
    /// Top-1 accuracy (fraction). Training sweeps: the accuracy after the last epoch through the
    /// training forward pass (for in-situ training, the crossbar with its read noise and ADC).
    pub accuracy: f64,
    /// Energy in pJ (inference of the test set; training sweeps: write energy of the training
    /// run, half-select and read-before-write included).
    pub energy_pj: f64,
    /// Cycles (0 for training sweeps).
    pub cycles: u64,
    /// Latency in seconds (training sweeps: write latency).
    pub latency_s: f64,
    /// GOPS.
    pub gops: f64,
    /// TOPS/W.
    pub tops_per_watt: f64,
    /// Training sweeps: the trained weights evaluated by the float forward pass (what
    /// `nacsim train` reports as `accuracy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub float_accuracy: Option<f64>,
    /// Training sweeps: wall time of the training in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Every scalar figure of the point's report by its report key (docs/report-format.md;
    /// e.g. `time_s`, `energy_pj`, `area_mm2`, `edp_j_s`; training sweeps: `write_pulses`,
    /// `write_energy_pj`, `write_latency_s`, …); wall times are left out, so the figures
    /// depend only on the sweep. Empty in point files of nacsim versions before it.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metrics: std::collections::BTreeMap<String, f64>,
    /// The digest of the sweep that computed the point ([`record::SweepRecord::digest`]);
    /// `None` in point files of nacsim versions before the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Set the field at `path` of a JSON document to `value`: numbers keep integer fields integral
/// (and fill `null` optional fields), names replace strings (unit enum variants) or fill `null`.
///
/// # Errors
/// A message naming the part of the path that does not exist or the value that does not fit.
pub fn set_json_field(
    doc: &mut serde_json::Value,
    path: &str,
    value: &SweepValue,
) -> Result<(), String> {
    let mut cur = doc;
    for part in split_path(path) {
        cur = match part {
            Part::Key(k) => {
                let here: Vec<String> = cur
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                cur.get_mut(k.as_str()).ok_or_else(|| {
                    if here.is_empty() {
                        format!("no field `{k}` here")
                    } else {
                        format!("no field `{k}` here (fields: {})", here.join(", "))
                    }
                })?
            }
            Part::Index(i) => cur
                .get_mut(i)
                .ok_or_else(|| format!("no list entry [{i}] here"))?,
        };
    }
    *cur = match (&*cur, value) {
        (serde_json::Value::Number(n), SweepValue::Number(v)) if n.is_f64() => {
            serde_json::json!(v)
        }
        (serde_json::Value::Number(_), SweepValue::Number(v)) => {
            if v.fract() != 0.0 || *v < 0.0 {
                return Err("the field is a whole number; give whole, non-negative values".into());
            }
            serde_json::json!(*v as u64)
        }
        (serde_json::Value::Null, SweepValue::Number(v)) => {
            if v.fract() == 0.0 && *v >= 0.0 {
                serde_json::json!(*v as u64)
            } else {
                serde_json::json!(v)
            }
        }
        (serde_json::Value::String(_) | serde_json::Value::Null, SweepValue::Text(t)) => {
            serde_json::json!(t)
        }
        (_, SweepValue::Text(_)) => {
            return Err("the field is not a name; give numbers".into());
        }
        _ => return Err("the field is not a number".into()),
    };
    Ok(())
}

/// Set the field at `path` of a design to `value`, keeping integers integral.
///
/// # Errors
/// The path does not name a numeric field, or the value does not fit it (e.g. 2.5 for an
/// integer field, or a value the design's rules reject), as a [`DesignError`] naming the path.
pub fn with_field(
    design: &DesignConfig,
    path: &str,
    value: &SweepValue,
    file: &Path,
) -> Result<DesignConfig, DesignError> {
    with_fields(
        design,
        &[path.to_string()],
        std::slice::from_ref(value),
        file,
    )
}

/// Set the fields at `paths` of a design to `values` (in order), keeping integers integral;
/// the design's rules are checked once all are set.
///
/// # Errors
/// A path that does not name a field, a value that does not fit it, or a design the rules
/// reject, as a [`DesignError`] naming the path(s) and value(s).
pub fn with_fields(
    design: &DesignConfig,
    paths: &[String],
    values: &[SweepValue],
    file: &Path,
) -> Result<DesignConfig, DesignError> {
    let bad = |field: String, value: String, rule: String| DesignError::Mapping {
        path: file.to_path_buf(),
        error: FieldError::new(field, value, rule),
    };
    let at = |p: &String| format!("parameter.path = {p:?}");
    let mut v = serde_json::to_value(design)
        .map_err(|e| bad("design".into(), String::new(), e.to_string()))?;
    for (p, x) in paths.iter().zip(values) {
        set_json_field(&mut v, p, x).map_err(|e| bad(at(p), x.to_string(), e))?;
    }
    let all = || {
        if paths.len() == 1 {
            (at(&paths[0]), values[0].to_string())
        } else {
            (
                format!("axes ({})", paths.join(", ")),
                values
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        }
    };
    let out: DesignConfig = serde_json::from_value(v).map_err(|e| {
        let (f, x) = all();
        bad(f, x, e.to_string())
    })?;
    out.validate().map_err(|errs| {
        let first = errs
            .into_iter()
            .next()
            .expect("validate returns at least one error");
        if paths.len() == 1 {
            DesignError::Mapping {
                path: file.to_path_buf(),
                error: first,
            }
        } else {
            let (f, x) = all();
            bad(f, x, format!("the design then breaks a rule: {first}"))
        }
    })?;
    Ok(out)
}

enum Part {
    Key(String),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Part> {
    let mut out = Vec::new();
    for seg in path.split('.') {
        let (key, rest) = seg.split_once('[').map_or((seg, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Part::Key(key.to_string()));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse::<usize>() {
                out.push(Part::Index(i));
            }
        }
    }
    out
}

/// The points of the grid that shard `shard` of `shards` runs, in grid order.
pub fn shard_points(values: usize, trials: u32, shard: usize, shards: usize) -> Vec<(usize, u32)> {
    (0..values)
        .flat_map(|v| (0..trials).map(move |t| (v, t)))
        .enumerate()
        .filter(|(i, _)| i % shards.max(1) == shard)
        .map(|(_, p)| p)
        .collect()
}

/// File of a point's result.
pub fn point_path(dir: &Path, value_index: usize, trial: u32) -> PathBuf {
    dir.join("points")
        .join(format!("v{value_index:04}-t{trial:04}.json"))
}

/// Write a point's result atomically (temporary file, then rename).
///
/// # Errors
/// I/O errors.
pub fn write_point(dir: &Path, r: &PointResult) -> std::io::Result<()> {
    let path = point_path(dir, r.value_index, r.trial);
    std::fs::create_dir_all(path.parent().expect("points folder"))?;
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(r).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, &path)
}

/// File of a point's claim (a lock file beside the point file).
pub fn claim_path(dir: &Path, value_index: usize, trial: u32) -> PathBuf {
    point_path(dir, value_index, trial).with_extension("lock")
}

/// A point this process may compute: it holds the exclusive lock on the point's claim file.
/// The system releases the lock when the process ends, however it ends (a killed process leaves
/// an unlocked claim file, which the next run takes over).
#[derive(Debug)]
pub struct PointClaim {
    path: PathBuf,
    /// The open, locked claim file; `None` where the file system has no locks.
    file: Option<File>,
}

impl PointClaim {
    /// Whether the claim is a lock; `false` where the file system does not support locks (then
    /// two processes may compute the same point, which costs time but not correctness: a
    /// point's result depends only on the sweep, and point files are replaced atomically).
    pub fn is_locked(&self) -> bool {
        self.file.is_some()
    }

    /// Give the claim up once the point file is written: the claim file is removed, then the
    /// lock released (a process waiting for it then finds the point file and skips the point).
    pub fn release(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

/// The state of a point for a process that wants to compute it.
#[derive(Debug)]
pub enum Claim {
    /// Claimed: compute the point, write it, then [`PointClaim::release`].
    Mine(PointClaim),
    /// Another process holds the claim (it is computing the point now).
    Busy,
    /// The point file exists.
    Done,
}

/// Claim point `(value_index, trial)` of the sweep in `dir`; with `wait`, wait for another
/// process's claim instead of returning [`Claim::Busy`].
///
/// # Errors
/// The claim file cannot be created or opened.
pub fn claim(dir: &Path, value_index: usize, trial: u32, wait: bool) -> std::io::Result<Claim> {
    let point = point_path(dir, value_index, trial);
    if point.exists() {
        return Ok(Claim::Done);
    }
    let path = claim_path(dir, value_index, trial);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    let locked = if wait {
        file.lock().map_err(TryLockError::Error)
    } else {
        file.try_lock()
    };
    let file = match locked {
        Ok(()) => Some(file),
        Err(TryLockError::WouldBlock) => return Ok(Claim::Busy),
        // No locks on this file system: go on unclaimed (see `PointClaim::is_locked`).
        Err(TryLockError::Error(_)) => None,
    };
    // The holder before us writes the point before it gives the claim up.
    if point.exists() {
        return Ok(Claim::Done);
    }
    Ok(Claim::Mine(PointClaim { path, file }))
}
