//! The record of a sweep folder, `DIR/sweep.json`: the sweep it holds (name, swept field,
//! values, trials) and a SHA-256 digest of everything its points depend on — the sweep file's
//! text, the design, network, weights and training files it names, the data and the nacsim
//! version. Every point file carries the same digest.
//!
//! A folder belongs to one sweep: [`open`] writes the record when a sweep starts in an empty
//! folder, resumes when the record is the same, and refuses (naming what changed) when it is
//! not. [`super::merge`] reads the grid from the record, so it knows which points are missing.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Grid, SweepConfig, SweepParameter};

/// Format version of `sweep.json`.
pub const RECORD_FORMAT: u32 = 1;

/// File name of the record inside a sweep folder.
pub const RECORD_FILE: &str = "sweep.json";

/// One input of a sweep and the SHA-256 of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDigest {
    /// What the input is, e.g. `the sweep file`, `the design`, `the test images`.
    pub what: String,
    /// Where it was read from (for messages only; it is not part of the digest, so shards that
    /// see the same files under other paths agree).
    pub path: String,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

impl InputDigest {
    /// The digest of bytes held in memory (e.g. data embedded in the binary).
    pub fn of_bytes(what: impl Into<String>, path: impl Into<String>, bytes: &[u8]) -> Self {
        InputDigest {
            what: what.into(),
            path: path.into(),
            sha256: hex(&Sha256::digest(bytes)),
        }
    }

    /// The digest of a file's bytes (read in pieces, so large datasets are fine).
    ///
    /// # Errors
    /// A message naming the file when it cannot be read.
    pub fn of_file(what: impl Into<String>, path: &Path) -> Result<Self, String> {
        let err = |e: std::io::Error| format!("{}: {e}", path.display());
        let mut f = std::fs::File::open(path).map_err(err)?;
        let mut h = Sha256::new();
        std::io::copy(&mut f, &mut h).map_err(err)?;
        Ok(InputDigest {
            what: what.into(),
            path: tidy(path).display().to_string(),
            sha256: hex(&h.finalize()),
        })
    }
}

/// `path` with `dir/..` pairs taken out, for messages (`a/b/../c` → `a/c`).
fn tidy(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match (c, out.last()) {
            (Component::CurDir, _) => {}
            (Component::ParentDir, Some(Component::Normal(_))) => {
                out.pop();
            }
            _ => out.push(c),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The record of a sweep folder (`DIR/sweep.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRecord {
    /// Format of this file; [`RECORD_FORMAT`].
    pub format: u32,
    /// Name of the sweep.
    pub name: String,
    /// The sweep file as it was given to the run that wrote the record (for messages).
    pub sweep_file: String,
    /// Version of nacsim that wrote the record.
    pub nacsim_version: String,
    /// The swept field and its values (a one-field sweep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<SweepParameter>,
    /// Multi-axis sweeps: the designs (swept fields and one row of values per design), as
    /// expanded from the sweep file's axes when the record was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<Grid>,
    /// Trials per value (the grid's columns).
    pub trials: u32,
    /// Every input and its digest, in a fixed order.
    pub inputs: Vec<InputDigest>,
    /// SHA-256 over the nacsim version and each input's `what` and digest; every point file of
    /// the folder carries it.
    pub digest: String,
}

impl SweepRecord {
    /// The record of `cfg` (read from `sweep_file`) run by nacsim `version` on `inputs`.
    pub fn new(
        cfg: &SweepConfig,
        sweep_file: &Path,
        version: &str,
        inputs: Vec<InputDigest>,
    ) -> Self {
        let mut h = Sha256::new();
        h.update(format!("nacsim {version}\n"));
        for i in &inputs {
            h.update(format!("{}\t{}\n", i.what, i.sha256));
        }
        SweepRecord {
            format: RECORD_FORMAT,
            name: cfg.name.clone(),
            sweep_file: sweep_file.display().to_string(),
            nacsim_version: version.to_string(),
            parameter: cfg.parameter.clone(),
            grid: cfg.parameter.is_none().then(|| cfg.grid()),
            trials: cfg.trials,
            inputs,
            digest: hex(&h.finalize()),
        }
    }

    /// The record's file in sweep folder `dir`.
    pub fn file(dir: &Path) -> PathBuf {
        dir.join(RECORD_FILE)
    }

    /// The designs of the sweep (one field: its values).
    pub fn designs(&self) -> Grid {
        match (&self.parameter, &self.grid) {
            (Some(p), _) => Grid {
                fields: vec![p.path.clone()],
                rows: p.values.iter().map(|v| vec![v.clone()]).collect(),
            },
            (None, Some(g)) => g.clone(),
            (None, None) => Grid {
                fields: Vec::new(),
                rows: Vec::new(),
            },
        }
    }

    /// Number of designs.
    pub fn design_count(&self) -> usize {
        match (&self.parameter, &self.grid) {
            (Some(p), _) => p.values.len(),
            (None, Some(g)) => g.rows.len(),
            (None, None) => 0,
        }
    }

    /// Number of points of the grid (designs × trials).
    pub fn points(&self) -> usize {
        self.design_count() * self.trials as usize
    }

    /// The record of sweep folder `dir`, or `None` when it has none.
    ///
    /// # Errors
    /// An unreadable or damaged record, naming the file.
    pub fn load(dir: &Path) -> Result<Option<Self>, String> {
        let p = Self::file(dir);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                format!(
                    "{}: not a sweep record ({e}); start over with `nacsim sweep … --out {} --force-new` or pick another --out",
                    p.display(),
                    dir.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", p.display())),
        }
    }

    /// Write the record to `dir` unless one is there already (atomically: a complete temporary
    /// file is hard-linked to the name, which fails when the name exists). `Ok(None)`: written;
    /// `Ok(Some(r))`: the record `r` was there first.
    fn create(&self, dir: &Path) -> Result<Option<Self>, String> {
        let p = Self::file(dir);
        let err = |e: std::io::Error| format!("{}: {e}", p.display());
        // Unique among the processes of all machines that share the folder.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = dir.join(format!("{RECORD_FILE}.tmp{}-{nanos}", std::process::id()));
        {
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(&serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?)
                .and_then(|()| f.write_all(b"\n"))
                .and_then(|()| f.sync_all())
                .map_err(err)?;
        }
        let linked = std::fs::hard_link(&tmp, &p);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(dir)?
                .map(Some)
                .ok_or_else(|| format!("{}: vanished while being read", p.display())),
            Err(e) => Err(err(e)),
        }
    }

    /// What differs between `old` (the record in a folder) and this one, one phrase each, e.g.
    /// `the sweep file models/sweeps/x.ron changed`.
    pub fn changes_since(&self, old: &SweepRecord) -> Vec<String> {
        let mut out = Vec::new();
        if old.nacsim_version != self.nacsim_version {
            out.push(format!(
                "the nacsim version changed ({} → {})",
                old.nacsim_version, self.nacsim_version
            ));
        }
        for i in &self.inputs {
            match old.inputs.iter().find(|o| o.what == i.what) {
                Some(o) if o.sha256 == i.sha256 => {}
                Some(o) if o.path == i.path => out.push(format!("{} {} changed", i.what, i.path)),
                Some(o) => out.push(format!("{} changed ({} → {})", i.what, o.path, i.path)),
                None => out.push(format!("{} {} is new", i.what, i.path)),
            }
        }
        for o in &old.inputs {
            if !self.inputs.iter().any(|i| i.what == o.what) {
                out.push(format!("{} {} is no longer used", o.what, o.path));
            }
        }
        if out.is_empty() && old.digest != self.digest {
            out.push("the sweep's inputs changed".into());
        }
        out
    }
}

/// How [`open`] found a sweep folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// The folder had no record; this sweep's record was written.
    New,
    /// The folder holds this sweep (same digest): points already there are kept.
    Resumed,
    /// `force_new`: the old record and this many point files were removed, the new record written.
    StartedOver(usize),
}

/// Make `dir` the folder of the sweep `rec`: write its record into an empty folder, resume a
/// folder holding the same sweep, and refuse any other. With `force_new`, remove the old record
/// and points first.
///
/// # Errors
/// The folder holds another sweep (the message names what changed and the fix), holds point
/// files but no record, or cannot be written.
pub fn open(dir: &Path, rec: &SweepRecord, force_new: bool) -> Result<Opened, String> {
    let pdir = dir.join("points");
    std::fs::create_dir_all(&pdir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut removed = None;
    if force_new {
        removed = Some(remove_points(dir)?);
        match std::fs::remove_file(SweepRecord::file(dir)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", SweepRecord::file(dir).display())),
        }
    }
    let existing = match SweepRecord::load(dir)? {
        Some(old) => Some(old),
        None if point_files(dir)?.is_empty() => rec.create(dir)?,
        // Points but no record: unless a run started at the same moment has just written both.
        None => match SweepRecord::load(dir)? {
            Some(old) => Some(old),
            None => {
                let n = point_files(dir)?.len();
                return Err(format!(
                    "{}: the folder holds {n} point files but no record {RECORD_FILE} (an older nacsim wrote them, or they \
                     were copied in), so nothing tells which sweep they belong to; start over with --force-new (removes \
                     them) or pick another --out",
                    dir.display()
                ));
            }
        },
    };
    match existing {
        None => Ok(removed.map_or(Opened::New, Opened::StartedOver)),
        Some(old) if old.digest == rec.digest => Ok(Opened::Resumed),
        Some(old) => {
            let n = point_files(dir)?.len();
            Err(format!(
                "{}: the folder holds another sweep ({:?}, {n} points, from {}): {}; start over with --force-new \
                 (removes its {n} points) or pick another --out",
                dir.display(),
                old.name,
                old.sweep_file,
                rec.changes_since(&old).join("; ")
            ))
        }
    }
}

/// The point result files (`*.json`) in `dir/points`, sorted by name.
///
/// # Errors
/// The folder cannot be listed.
pub fn point_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let pdir = dir.join("points");
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&pdir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(format!("{}: {e}", pdir.display())),
    };
    for e in entries {
        let p = e.map_err(|e| format!("{}: {e}", pdir.display()))?.path();
        if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Remove the point files, claims and temporary files of `dir/points`; the number of point
/// files removed.
fn remove_points(dir: &Path) -> Result<usize, String> {
    let points = point_files(dir)?;
    let pdir = dir.join("points");
    let rm = |p: &Path| std::fs::remove_file(p).map_err(|e| format!("{}: {e}", p.display()));
    for p in &points {
        rm(p)?;
    }
    for e in std::fs::read_dir(&pdir).map_err(|e| format!("{}: {e}", pdir.display()))? {
        let p = e.map_err(|e| format!("{}: {e}", pdir.display()))?.path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.ends_with(".lock") || n.contains(".json.tmp")) {
            rm(&p)?;
        }
    }
    Ok(points.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::SweepValue;

    fn cfg() -> SweepConfig {
        SweepConfig {
            schema_version: 1,
            name: "t".into(),
            design: "d.ron".into(),
            network: "n.ron".into(),
            train: String::new(),
            data: String::new(),
            limit: 0,
            train_limit: 0,
            topology: String::new(),
            parameter: Some(SweepParameter {
                path: "dram.bytes_per_cycle".into(),
                values: vec![SweepValue::Number(1.0), SweepValue::Number(2.0)],
            }),
            axes: Vec::new(),
            trials: 3,
            seed: 1,
        }
    }

    fn rec(design: &[u8], version: &str) -> SweepRecord {
        SweepRecord::new(
            &cfg(),
            Path::new("s.ron"),
            version,
            vec![
                InputDigest::of_bytes("the sweep file", "s.ron", b"sweep"),
                InputDigest::of_bytes("the design", "d.ron", design),
            ],
        )
    }

    #[test]
    fn paths_are_tidied_for_messages() {
        assert_eq!(
            tidy(Path::new("tests/fixtures/sweeps/../../../models/d.ron")),
            Path::new("models/d.ron")
        );
        assert_eq!(tidy(Path::new("../a/./b/..")), Path::new("../a"));
        assert_eq!(tidy(Path::new("/x/../y")), Path::new("/y"));
    }

    #[test]
    fn the_digest_follows_contents_and_version_not_paths() {
        let a = rec(b"x", "0.1.0");
        assert_eq!(a.digest, rec(b"x", "0.1.0").digest);
        assert_eq!(a.points(), 6);
        let mut moved = rec(b"x", "0.1.0");
        moved.inputs[1].path = "elsewhere/d.ron".into();
        let moved = SweepRecord::new(&cfg(), Path::new("s.ron"), "0.1.0", moved.inputs);
        assert_eq!(a.digest, moved.digest);
        let b = rec(b"y", "0.1.0");
        assert_ne!(a.digest, b.digest);
        assert_eq!(b.changes_since(&a), vec!["the design d.ron changed"]);
        let c = rec(b"x", "0.2.0");
        assert_ne!(a.digest, c.digest);
        assert_eq!(
            c.changes_since(&a),
            vec!["the nacsim version changed (0.1.0 → 0.2.0)"]
        );
    }

    #[test]
    fn a_folder_is_created_resumed_refused_and_started_over() {
        let dir = tempfile::tempdir().unwrap();
        let a = rec(b"x", "0.1.0");
        assert_eq!(open(dir.path(), &a, false), Ok(Opened::New));
        assert_eq!(open(dir.path(), &a, false), Ok(Opened::Resumed));
        std::fs::write(dir.path().join("points/v0000-t0000.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("points/v0000-t0001.lock"), b"").unwrap();
        let b = rec(b"y", "0.1.0");
        let err = open(dir.path(), &b, false).unwrap_err();
        assert!(
            err.contains("the design d.ron changed") && err.contains("--force-new"),
            "{err}"
        );
        assert_eq!(SweepRecord::load(dir.path()).unwrap(), Some(a.clone()));
        assert_eq!(open(dir.path(), &b, true), Ok(Opened::StartedOver(1)));
        assert_eq!(SweepRecord::load(dir.path()).unwrap(), Some(b));
        assert_eq!(
            std::fs::read_dir(dir.path().join("points"))
                .unwrap()
                .count(),
            0
        );
        // Point files without a record: nothing tells which sweep they are from.
        std::fs::remove_file(SweepRecord::file(dir.path())).unwrap();
        std::fs::write(dir.path().join("points/v0000-t0000.json"), b"{}").unwrap();
        let err = open(dir.path(), &a, false).unwrap_err();
        assert!(err.contains("no record"), "{err}");
    }
}
