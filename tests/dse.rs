//! Design-space exploration: multi-axis sweeps (inference, shape-only, training) give the same
//! CSV bytes for any sharding, thread count and resume; `nacsim pareto` finds the designs no
//! other beats; `nacsim merge` plots any figure against any field and heat maps.

use std::path::Path;

use crate::util::{nacsim, text};

const AXES: &str = "tests/fixtures/sweeps/tiny-axes.ron";
const SHAPE: &str = "tests/fixtures/sweeps/tiny-shape.ron";
const TRAIN_AXES: &str = "tests/fixtures/sweeps/tiny-train-axes.ron";

fn sweep(config: &str, out: &Path, extra: &[&str]) {
    let mut args = vec!["sweep", config, "--out", out.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    let o = nacsim(&args);
    assert!(o.status.success(), "{args:?}: {}", text(&o).1);
}

fn merged(out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["merge", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = nacsim(&args);
    assert!(o.status.success(), "{args:?}: {}", text(&o).1);
    text(&o).0
}

/// The column `name` of a CSV, as text.
fn column(csv: &str, name: &str) -> Vec<String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let i = header
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    lines
        .map(|l| l.split(',').nth(i).unwrap().to_string())
        .collect()
}

/// The same sweep unsharded on one thread, in 3 shards on 2 threads, and resumed after points
/// were removed: the same CSV bytes; the reference table.
fn invariant(config: &str, rows: usize) -> String {
    let whole = tempfile::tempdir().unwrap();
    sweep(config, whole.path(), &["--threads", "1"]);
    let reference = merged(whole.path(), &[]);
    assert_eq!(
        reference.lines().count(),
        rows + 1,
        "header + one row per design:\n{reference}"
    );
    let sharded = tempfile::tempdir().unwrap();
    for s in ["2/3", "0/3", "1/3"] {
        sweep(config, sharded.path(), &["--shard", s, "--threads", "2"]);
    }
    assert_eq!(
        merged(sharded.path(), &[]),
        reference,
        "3 shards, 2 threads"
    );
    // Resume: remove every other point, run again.
    let points = whole.path().join("points");
    let mut files: Vec<_> = std::fs::read_dir(&points)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files.iter().step_by(2) {
        std::fs::remove_file(f).unwrap();
    }
    let o = nacsim(&["merge", whole.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "missing points are refused");
    assert!(text(&o).1.contains("design 0 ("), "{}", text(&o).1);
    sweep(config, whole.path(), &[]);
    assert_eq!(merged(whole.path(), &[]), reference, "resumed");
    reference
}

#[test]
fn a_multi_axis_inference_sweep_is_shard_thread_and_resume_invariant() {
    let csv = invariant(AXES, 8);
    let header = csv.lines().next().unwrap();
    assert!(
        header.starts_with(
            "engines[0].engine.Crossbar.adc.bits,engines[0].engine.Crossbar.nonideal.d2d_sigma_rel,\
             dram.bytes_per_cycle,engines[0].engine.Crossbar.nonideal.read_noise_sigma_rel,trials,\
             accuracy_mean,accuracy_std,accuracy_min,accuracy_max,"
        ),
        "{header}"
    );
    assert!(header.ends_with(",trials_expected,complete"), "{header}");
    for k in [
        "time_s_mean",
        "energy_pj_mean",
        "edp_j_s_mean",
        "area_mm2_mean",
    ] {
        assert!(header.split(',').any(|h| h == k), "{k} in {header}");
    }
    // The grid: ADC bits slowest, the zipped pair moves together, two sampled read noises.
    let bits = column(&csv, "engines[0].engine.Crossbar.adc.bits");
    assert_eq!(bits, ["4", "4", "4", "4", "8", "8", "8", "8"]);
    let d2d = column(&csv, "engines[0].engine.Crossbar.nonideal.d2d_sigma_rel");
    let bw = column(&csv, "dram.bytes_per_cycle");
    for (d, b) in d2d.iter().zip(&bw) {
        assert_eq!(d == "0", b == "8", "zipped: d2d {d} with bandwidth {b}");
    }
    let noise = column(
        &csv,
        "engines[0].engine.Crossbar.nonideal.read_noise_sigma_rel",
    );
    let mut strata: Vec<usize> = noise[..2]
        .iter()
        .map(|x| (x.parse::<f64>().unwrap() / 0.05 * 2.0) as usize)
        .collect();
    strata.sort_unstable();
    assert_eq!(strata, [0, 1], "Latin hypercube: one sample per half");
    // 8-bit ADCs are more accurate than 4-bit ones.
    let acc: Vec<f64> = column(&csv, "accuracy_mean")
        .iter()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(acc[4..].iter().sum::<f64>() > acc[..4].iter().sum::<f64>() + 0.4);
}

#[test]
fn a_shape_only_sweep_is_shard_thread_and_resume_invariant() {
    let csv = invariant(SHAPE, 18);
    let header = csv.lines().next().unwrap();
    assert!(
        !header.contains("accuracy"),
        "no data, no accuracy: {header}"
    );
    // More columns of the array: fewer cycles (same rows, bandwidth and SRAM).
    let cycles: Vec<f64> = column(&csv, "cycles_mean")
        .iter()
        .map(|x| x.parse().unwrap())
        .collect();
    let cols = column(&csv, "engines[0].engine.Systolic.cols");
    assert_eq!(cols[0], "8");
    assert_eq!(cols[3], "32");
    assert!(cycles[3] < cycles[0], "{csv}");
}

#[test]
fn a_multi_axis_training_sweep_is_thread_and_shard_invariant() {
    crate::util::fashion_mnist_dir();
    let one = tempfile::tempdir().unwrap();
    sweep(TRAIN_AXES, one.path(), &["--threads", "1"]);
    let reference = merged(one.path(), &[]);
    let header = reference.lines().next().unwrap();
    for k in [
        "config.train.lr",
        "insitu.variation.voltage_error_sigma",
        "accuracy_mean",
        "float_accuracy_mean",
        "write_pulses_mean",
        "write_energy_pj_mean",
        "write_latency_s_mean",
    ] {
        assert!(header.split(',').any(|h| h == k), "{k} in {header}");
    }
    assert!(!header.contains("cycles"), "{header}");
    let pulses = column(&reference, "write_pulses_mean");
    assert!(
        pulses.iter().all(|p| p.parse::<f64>().unwrap() > 0.0),
        "{reference}"
    );
    let two = tempfile::tempdir().unwrap();
    for s in ["1/2", "0/2"] {
        sweep(TRAIN_AXES, two.path(), &["--shard", s, "--threads", "2"]);
    }
    assert_eq!(merged(two.path(), &[]), reference);
}

/// Whether row `a` dominates row `b` (minimise the first `k_min` objectives, maximise the rest).
fn dominates(a: &[f64], b: &[f64], k_min: usize) -> bool {
    let key = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .enumerate()
            .map(|(i, x)| if i < k_min { *x } else { -x })
            .collect()
    };
    let (a, b) = (key(a), key(b));
    a.iter().zip(&b).all(|(x, y)| x <= y) && a.iter().zip(&b).any(|(x, y)| x < y)
}

#[test]
fn pareto_marks_the_designs_no_other_beats_and_names_unknown_figures() {
    let dir = tempfile::tempdir().unwrap();
    sweep(SHAPE, dir.path(), &[]);
    let d = dir.path().to_str().unwrap();
    let csv = dir.path().join("marked.csv");
    let svg = dir.path().join("front.svg");
    let o = nacsim(&[
        "pareto",
        d,
        "--minimize",
        "time_s,energy_pj",
        "--maximize",
        "tops_per_mm2",
        "--csv",
        csv.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let front = text(&o).0;
    let marked = std::fs::read_to_string(&csv).unwrap();
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    let objectives: Vec<Vec<f64>> = {
        let cols: Vec<Vec<f64>> = ["time_s_mean", "energy_pj_mean", "tops_per_mm2_mean"]
            .iter()
            .map(|k| {
                column(&marked, k)
                    .iter()
                    .map(|x| x.parse().unwrap())
                    .collect()
            })
            .collect();
        (0..cols[0].len())
            .map(|i| cols.iter().map(|c| c[i]).collect())
            .collect()
    };
    let marks = column(&marked, "pareto");
    let mut on = 0;
    for (i, p) in objectives.iter().enumerate() {
        let dominated = objectives.iter().any(|q| dominates(q, p, 2));
        assert_eq!(marks[i] == "true", !dominated, "row {i}: {p:?}");
        on += usize::from(!dominated);
    }
    assert!(on > 0 && on < objectives.len(), "{marked}");
    assert_eq!(
        front.lines().count(),
        on + 1,
        "the front, one row each:\n{front}"
    );
    assert!(front.starts_with(
        "engines[0].engine.Systolic.rows,engines[0].engine.Systolic.cols,dram.bytes_per_cycle,\
         sram.weights.capacity_bytes,time_s_mean,energy_pj_mean,tops_per_mm2_mean\n"
    ));

    let o = nacsim(&["pareto", d, "--minimize", "time_s,latency"]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--minimize latency") && err.contains("edp_j_s") && err.contains("area_mm2"),
        "the error lists the figures: {err}"
    );
    let o = nacsim(&["pareto", d]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("--minimize"), "{}", text(&o).1);
}

#[test]
fn merge_plots_any_figure_against_any_field_and_heat_maps() {
    let dir = tempfile::tempdir().unwrap();
    sweep(SHAPE, dir.path(), &[]);
    let d = dir.path().to_str().unwrap();
    let line = dir.path().join("line.svg");
    let heat = dir.path().join("heat.svg");
    merged(
        dir.path(),
        &[
            "--svg",
            line.to_str().unwrap(),
            "--metric",
            "time_s",
            "--x",
            "cols",
            "--heatmap",
            heat.to_str().unwrap(),
            "--y",
            "rows",
        ],
    );
    let l = std::fs::read_to_string(&line).unwrap();
    assert!(
        l.contains("tiny-shape: time_s vs engines[0].engine.Systolic.cols")
            && l.contains("time_s (s)"),
        "default title and label name the figure, its unit and the field"
    );
    let h = std::fs::read_to_string(&heat).unwrap();
    assert!(h.contains("<rect"), "cells");
    assert!(
        h.contains("engines[0].engine.Systolic.cols")
            && h.contains("engines[0].engine.Systolic.rows"),
        "axes name the fields"
    );
    for (args, want) in [
        (
            vec!["--svg", "x.svg", "--metric", "latency"],
            "unknown figure",
        ),
        (vec!["--svg", "x.svg", "--x", "banks"], "swept fields"),
        (
            vec!["--heatmap", "x.svg", "--x", "rows", "--y", "rows"],
            "same field",
        ),
    ] {
        let mut a = vec!["merge", d];
        a.extend(args);
        let o = nacsim(&a);
        assert_eq!(o.status.code(), Some(2), "{a:?}");
        assert!(text(&o).1.contains(want), "{a:?}: {}", text(&o).1);
    }
}

#[test]
fn bad_axes_are_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = crate::util::root();
    let src = std::fs::read_to_string(root.join(SHAPE)).unwrap().replace(
        "../../../models",
        &root.join("models").display().to_string(),
    );
    for (from, to, want) in [
        (
            "Integer(min: 65536, max: 262144)",
            "Integer(min: 5, max: 1)",
            "axes[2].fields[1].range",
        ),
        (
            "\"engines[0].engine.Systolic.cols\"",
            "\"engines[0].engine.Systolic.rows\"",
            "set by an earlier axis",
        ),
        ("values: [8.0, 32.0]", "values: [8.5, 32.0]", "whole"),
        (
            "\"dram.bytes_per_cycle\"",
            "\"dram.no_such_field\"",
            "no_such_field",
        ),
    ] {
        assert!(src.contains(from), "{from}");
        let p = dir.path().join("bad.ron");
        std::fs::write(&p, src.replace(from, to)).unwrap();
        let o = nacsim(&[
            "sweep",
            p.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ]);
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(want), "{to}: {err}");
    }
}
