//! `nacsim sweep` + `nacsim merge`: sharded, threaded and resumed runs give the same CSV bytes.

use std::path::Path;

use crate::util::{nacsim, text};

const SWEEP: &str = "tests/fixtures/sweeps/tiny.ron";

fn sweep(out: &Path, extra: &[&str]) {
    sweep_file(SWEEP, out, extra);
}

fn sweep_file(config: &str, out: &Path, extra: &[&str]) {
    let mut args = vec!["sweep", config, "--out", out.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    let o = nacsim(&args);
    assert!(o.status.success(), "{args:?}: {}", text(&o).1);
}

/// `nacsim sweep CONFIG --out OUT` must fail with status 2; its stderr.
fn sweep_error(config: &Path, out: &Path) -> String {
    let o = nacsim(&[
        "sweep",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{}: {err}", config.display());
    err
}

fn merged(out: &Path) -> String {
    let csv = out.join("table.csv");
    let svg = out.join("plot.svg");
    let o = nacsim(&[
        "merge",
        out.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(
        std::fs::read_to_string(&svg).unwrap().contains("<svg"),
        "an SVG plot"
    );
    std::fs::read_to_string(csv).unwrap()
}

#[test]
fn sharded_threaded_and_resumed_sweeps_merge_to_the_same_csv() {
    let whole = tempfile::tempdir().unwrap();
    sweep(whole.path(), &["--threads", "1"]);
    let reference = merged(whole.path());
    let lines: Vec<&str> = reference.lines().collect();
    assert_eq!(lines.len(), 4, "header + one row per value:\n{reference}");
    assert!(lines[0].starts_with(
        "value,trials,accuracy_mean,accuracy_std,accuracy_min,accuracy_max,energy_pj_mean"
    ));
    for row in &lines[1..] {
        assert_eq!(
            row.split(',').nth(1),
            Some("2"),
            "two trials per value: {row}"
        );
    }

    // Monte Carlo: σ = 0 is the ideal mapping (trials identical, equal to `nacsim run`); trials
    // differ at σ > 0 and the mean falls with σ.
    let col = |row: &str, i: usize| row.split(',').nth(i).unwrap().parse::<f64>().unwrap();
    let run = nacsim(&[
        "run",
        "--design",
        "models/designs/crossbar-rram.ron",
        "--limit",
        "300",
        "--json",
    ]);
    assert!(run.status.success(), "{}", text(&run).1);
    let ideal: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let want = ideal["accuracy"].as_f64().unwrap();
    assert!(
        (col(lines[1], 2) - want).abs() < 1e-6,
        "σ = 0: {} vs nacsim run {want}",
        lines[1]
    );
    assert_eq!(col(lines[1], 3), 0.0, "σ = 0 trials are identical");
    // Trials differ at σ = 0.4: their programmed conductances (so their read energies) do.
    // (Their accuracies on 300 images may tie.)
    let energy = |trial: usize| {
        let p = whole.path().join(format!("points/v0002-t{trial:04}.json"));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        v["energy_pj"].as_f64().unwrap()
    };
    assert_ne!(energy(0), energy(1), "trials differ at σ = 0.4");
    assert!(
        col(lines[3], 2) < col(lines[1], 2),
        "accuracy falls with σ:\n{reference}"
    );

    // Three shards as separate processes, two threads each.
    let sharded = tempfile::tempdir().unwrap();
    for s in ["0/3", "1/3", "2/3"] {
        sweep(sharded.path(), &["--shard", s, "--threads", "2"]);
    }
    assert_eq!(
        merged(sharded.path()),
        reference,
        "sharded + merge differs from the whole run"
    );

    // A run that stopped part way (one shard done, one point file lost mid-write), resumed.
    let resumed = tempfile::tempdir().unwrap();
    sweep(resumed.path(), &["--shard", "0/2"]);
    std::fs::write(
        resumed.path().join("points/v0000-t0000.json.tmp999"),
        b"{ partial",
    )
    .unwrap();
    sweep(resumed.path(), &[]);
    assert_eq!(merged(resumed.path()), reference, "resumed run differs");
}

#[test]
fn a_bad_sweep_path_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.ron");
    let text_in = std::fs::read_to_string(crate::util::root().join(SWEEP))
        .unwrap()
        .replace(
            "../../../models",
            &crate::util::root().join("models").display().to_string(),
        )
        .replace(
            "engines[0].engine.Crossbar.nonideal.d2d_sigma_rel",
            "engines[0].engine.Crossbar.nonideal.d2d_sigma_rle",
        );
    std::fs::write(&p, text_in).unwrap();
    let err = sweep_error(&p, &dir.path().join("o"));
    assert!(
        err.contains("d2d_sigma_rle") && err.contains("no field"),
        "{err}"
    );
}

const TRAIN_SWEEP: &str = "tests/fixtures/sweeps/tiny-train.ron";

#[test]
fn training_sweeps_are_thread_and_shard_invariant() {
    crate::util::fashion_mnist_dir();
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "sweep",
            TRAIN_SWEEP,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        let o = nacsim(&args);
        assert!(o.status.success(), "{args:?}: {}", text(&o).1);
    };
    let one = tempfile::tempdir().unwrap();
    run(one.path(), &["--threads", "1"]);
    let reference = merged(one.path());
    let lines: Vec<&str> = reference.lines().collect();
    assert_eq!(lines.len(), 3, "header + one row per value:\n{reference}");
    let col = |row: &str, i: usize| row.split(',').nth(i).unwrap().parse::<f64>().unwrap();
    for row in &lines[1..] {
        assert_eq!(col(row, 1), 2.0, "two trials: {row}");
        // Seeds differ between trials, so do the trained networks.
        assert!(col(row, 4) < col(row, 5), "trials differ: {row}");
        // Trained, not chance (10 classes), and the write energy is accounted.
        assert!(col(row, 2) > 0.3, "the network learns: {row}");
        assert!(col(row, 6) > 0.0, "write energy: {row}");
    }
    let point: serde_json::Value =
        serde_json::from_slice(&std::fs::read(one.path().join("points/v0001-t0000.json")).unwrap())
            .unwrap();
    assert_eq!(point["value"], 0.3);
    assert!(point["float_accuracy"].as_f64().unwrap() > 0.0);

    let sharded = tempfile::tempdir().unwrap();
    for s in ["0/2", "1/2"] {
        run(sharded.path(), &["--shard", s, "--threads", "2"]);
    }
    assert_eq!(
        merged(sharded.path()),
        reference,
        "2 threads, 2 shards: a different table than 1 thread"
    );
}

#[test]
fn a_training_sweep_rejects_fields_it_cannot_set() {
    let dir = tempfile::tempdir().unwrap();
    let src = crate::util::root().join("tests/fixtures/sweeps");
    for f in ["tiny-insitu-train.ron", "tiny-insitu-settings.ron"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let base = std::fs::read_to_string(src.join("tiny-train.ron")).unwrap();
    for (from, to, want) in [
        (
            "insitu.variation.voltage_error_sigma",
            "insitu.variation.voltage_eror_sigma",
            "voltage_eror_sigma",
        ),
        (
            "insitu.variation.voltage_error_sigma",
            "insitu.data.binarize",
            "data options",
        ),
        (
            "insitu.variation.voltage_error_sigma",
            "variation.voltage_error_sigma",
            "`config.…`",
        ),
        ("values: [0.0, 0.3]", "values: [0.0, \"big\"]", "not a name"),
    ] {
        let p = dir.path().join("bad.ron");
        std::fs::write(&p, base.replace(from, to)).unwrap();
        let err = sweep_error(&p, &dir.path().join("o"));
        assert!(err.contains(want), "{to}: want {want:?} in: {err}");
    }
}
