//! `nacsim sweep`: sweeps of one field or several axes × Monte Carlo trials, sharded and
//! resumable (the points: `sweep_jobs`; merging: `merge`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use clap::Args;
use nacsim_scheduler::sweep::record::{self, InputDigest, Opened, SweepRecord};
use nacsim_scheduler::sweep::{Claim, SweepConfig, claim, point_path, shard_points, write_point};
use rayon::prelude::*;

pub use super::merge::{MergeArgs, run_merge};
use super::sweep_jobs::{Job, TRIALS_PER_PASS, inference_job, topology_job, training_job};
use crate::CliResult;

/// Arguments of `nacsim sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Sweep file (RON, models/sweeps/*.ron): design and network (inference sweep), design and
    /// topology (shape-only sweep) or a training config (training sweep), data, the swept field
    /// (dotted path) and its values or several axes (grids, zipped fields, samples;
    /// docs/dse.md), trials and seed.
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

/// Progress units per point (a training point reports fractions of itself).
const UNITS: u64 = 1000;

/// Run `nacsim sweep`.
pub fn run(a: &SweepArgs) -> CliResult<()> {
    let threads = super::check_threads(a.threads)?;
    let cfg: SweepConfig = nacsim_core::config::load(&a.config)?;
    let (shard, shards) = a.shard.as_deref().map_or(Ok((0, 1)), parse_shard)?;
    let label = a.config.display().to_string();
    super::limits::check_sweep_points(cfg.designs(), cfg.trials, shards, &label)?;
    let grid = cfg.grid();
    let base_dir = a.config.parent().unwrap_or_else(|| Path::new("."));
    let mut inputs = vec![InputDigest::of_file("the sweep file", &a.config)?];
    // What a group of points (trials of one design) does: inference trials on a design,
    // evaluated together on the Monte Carlo batch axis, shape-only costings, or training runs.
    let (job, group): (Job, usize) = if !cfg.train.is_empty() {
        (
            training_job(&cfg, &grid, &a.config, base_dir, &mut inputs)?,
            1,
        )
    } else if !cfg.topology.is_empty() {
        (
            topology_job(&cfg, &grid, &a.config, base_dir, &mut inputs)?,
            1,
        )
    } else {
        (
            inference_job(&cfg, &grid, &a.config, base_dir, &mut inputs)?,
            TRIALS_PER_PASS,
        )
    };
    let rec = SweepRecord::new(&cfg, &a.config, env!("CARGO_PKG_VERSION"), inputs);
    if let Opened::StartedOver(n) = record::open(&a.out, &rec, a.force_new)? {
        eprintln!(
            "{}: --force-new: removed the old record and {n} points",
            a.out.display()
        );
    }
    let mine = shard_points(grid.rows.len(), cfg.trials, shard, shards);
    let todo: Vec<(usize, u32)> = mine
        .iter()
        .copied()
        .filter(|&(v, t)| !point_path(&a.out, v, t).exists())
        .collect();
    // Consecutive trials of one design, at most `group` at a time.
    let mut groups: Vec<(usize, Vec<u32>)> = Vec::new();
    for &(v, t) in &todo {
        match groups.last_mut() {
            Some((gv, ts)) if *gv == v && ts.len() < group => ts.push(t),
            _ => groups.push((v, vec![t])),
        }
    }
    let pb = crate::progress_bar(todo.len() as u64 * UNITS, a.quiet);
    // The bar counts thousandths of points (a training point ticks after every step); the
    // message counts whole points.
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {msg} ({elapsed}, eta {eta})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    pb.set_prefix(cfg.name.clone());
    if !pb.is_hidden() {
        // Elapsed time and ETA move even while a long point runs.
        pb.enable_steady_tick(std::time::Duration::from_millis(500));
    }
    let done_points = AtomicUsize::new(0);
    let total = todo.len();
    let trials = cfg.trials;
    let message = |done: usize| {
        format!(
            "{done}/{total} points ({} designs × {trials} trials)",
            grid.rows.len()
        )
    };
    pb.set_message(message(0));
    let finish_point = |given: u64| {
        let d = done_points.fetch_add(1, Ordering::Relaxed) + 1;
        pb.inc(UNITS.saturating_sub(given));
        pb.set_message(message(d));
    };
    let ran = AtomicUsize::new(0);
    let unlocked = AtomicBool::new(false);
    // Points another process was computing when this one came to them.
    let busy: Mutex<Vec<(usize, u32)>> = Mutex::new(Vec::new());
    let claim_err = |e: std::io::Error| format!("{}: claiming a point: {e}", a.out.display());
    // Compute the points of `trials` of design `vi` that this process can claim.
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
                Claim::Done => finish_point(0),
            }
        }
        if claims.is_empty() {
            return Ok(());
        }
        let claimed: Vec<u32> = claims.iter().map(|(t, _)| *t).collect();
        // Units of the point in flight given to the bar (training points run one at a time
        // per group; a point's fraction only grows).
        let given = AtomicU64::new(0);
        let tick = |fraction: f64| {
            let want = ((fraction.clamp(0.0, 1.0) * UNITS as f64) as u64).min(UNITS - 1);
            let before = given.fetch_max(want, Ordering::Relaxed);
            if want > before {
                pb.inc(want - before);
            }
        };
        for mut r in job(vi, &claimed, &tick)? {
            r.digest = Some(rec.digest.clone());
            write_point(&a.out, &r).map_err(|e| format!("{}: {e}", a.out.display()))?;
            if let Some(i) = claims.iter().position(|(t, _)| *t == r.trial) {
                claims.swap_remove(i).1.release();
            }
            ran.fetch_add(1, Ordering::Relaxed);
            finish_point(given.swap(0, Ordering::Relaxed));
        }
        Ok(())
    };
    super::in_pool(threads, || -> CliResult<()> {
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
    })??;
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
