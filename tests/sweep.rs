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

/// The tiny sweep, written to `dir/name` with absolute model paths and `edit` applied to its
/// text (`(from, to)` replacements); returns the file.
fn sweep_copy(dir: &Path, name: &str, edit: &[(&str, &str)]) -> std::path::PathBuf {
    let root = crate::util::root();
    let mut t = std::fs::read_to_string(root.join(SWEEP)).unwrap().replace(
        "../../../models",
        &root.join("models").display().to_string(),
    );
    for (from, to) in edit {
        assert!(t.contains(from), "{from} not in the sweep file");
        t = t.replace(from, to);
    }
    let p = dir.join(name);
    std::fs::write(&p, t).unwrap();
    p
}

/// Run `nacsim sweep CONFIG --out OUT EXTRA…`: exit status and stderr.
fn sweep_status(config: &Path, out: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "sweep",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let o = nacsim(&args);
    (o.status.code(), text(&o).1)
}

/// Run `nacsim merge DIR EXTRA…`: exit status, stdout (the CSV) and stderr.
fn merge_status(dir: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["merge", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = nacsim(&args);
    let (out, err) = text(&o);
    (o.status.code(), out, err)
}

/// "N points run" from a sweep's closing line.
fn points_run(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.contains(" points run"))
        .unwrap_or_else(|| panic!("no closing line in: {stderr}"));
    let before = line.split(" points run").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_changed_sweep_file_or_input_is_refused_in_a_finished_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let small = [("limit: 300", "limit: 100")];
    let s = sweep_copy(dir.path(), "s.ron", &small);
    let (code, err) = sweep_status(&s, &out, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(points_run(&err), 6, "{err}");
    let (code, err) = sweep_status(&s, &out, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("0 points run, 6 already done"), "{err}");
    let before = merge_status(&out, &[]);
    assert_eq!(before.0, Some(0), "{}", before.2);

    // The values change: the old points must not be taken for the new sweep's.
    let s = sweep_copy(
        dir.path(),
        "s.ron",
        &[small[0], ("[0.0, 0.1, 0.4]", "[0.0, 0.2, 0.4]")],
    );
    let (code, err) = sweep_status(&s, &out, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("error: ") && !err.contains("points run"),
        "{err}"
    );
    assert!(
        err.contains(&format!("the sweep file {} changed", s.display())),
        "{err}"
    );
    assert!(
        err.contains("--force-new") && err.contains("--out") && err.contains("6 points"),
        "{err}"
    );
    assert_eq!(merge_status(&out, &[]), before, "the folder is untouched");

    // --force-new starts over: the old points go, the new values are run.
    let (code, err) = sweep_status(&s, &out, &["--force-new"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("removed the old record and 6 points"), "{err}");
    assert_eq!(points_run(&err), 6, "{err}");
    let (code, csv, err) = merge_status(&out, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(csv.lines().nth(2).unwrap().starts_with("0.2,"), "{csv}");

    // A file the sweep names changes: the design (a copy, with its energy and technology presets
    // found).
    let design = dir.path().join("d.ron");
    let root = crate::util::root();
    let dtext = crate::util::committed_design_text("crossbar-rram.ron");
    std::fs::write(&design, &dtext).unwrap();
    let named = root
        .join("models/designs/crossbar-rram.ron")
        .display()
        .to_string();
    let s = sweep_copy(dir.path(), "s.ron", &[small[0], (&named, "d.ron")]);
    let out2 = dir.path().join("out2");
    let (code, err) = sweep_status(&s, &out2, &[]);
    assert_eq!(code, Some(0), "{err}");
    std::fs::write(&design, dtext.replace("clock_mhz: ", "clock_mhz:  ")).unwrap();
    let (code, err) = sweep_status(&s, &out2, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("the design {} changed", design.display()))
            && !err.contains("the sweep file"),
        "{err}"
    );

    // The data: the same bytes elsewhere are the same sweep; other bytes are not.
    let sample = root.join("crates/nn/data/fmnist-sample");
    for d in ["data1", "data2"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
        for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            std::fs::copy(sample.join(f), dir.path().join(d).join(f)).unwrap();
        }
    }
    let with_data = |d: &str| {
        sweep_copy(
            dir.path(),
            "s.ron",
            &[("limit: 300", &*format!("data: \"{d}\", limit: 100"))],
        )
    };
    let out3 = dir.path().join("out3");
    let (code, err) = sweep_status(&with_data("data1"), &out3, &[]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = sweep_status(&with_data("data2"), &out3, &[]);
    assert_eq!(code, Some(2), "only the sweep file's text changed: {err}");
    assert!(
        err.contains("the sweep file") && !err.contains("labels"),
        "{err}"
    );
    // The labels in plain IDX instead of gzip: the same labels, other bytes.
    let gz = std::fs::read(dir.path().join("data1/t10k-labels-idx1-ubyte.gz")).unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
    std::fs::write(dir.path().join("data1/t10k-labels-idx1-ubyte"), plain).unwrap();
    let (code, err) = sweep_status(&with_data("data1"), &out3, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("the test labels") && err.contains("changed"),
        "{err}"
    );
}

#[test]
fn merge_refuses_an_incomplete_grid_and_mixed_points() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let s = sweep_copy(dir.path(), "s.ron", &[("limit: 300", "limit: 100")]);
    // One shard of two failed: half the points are missing.
    let (code, err) = sweep_status(&s, &out, &["--shard", "0/2"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, csv, err) = merge_status(&out, &[]);
    assert_eq!(code, Some(2), "an incomplete sweep merged:\n{csv}");
    assert!(err.starts_with("error: ") && csv.is_empty(), "{err}");
    assert!(
        err.contains("3 of the 6 points")
            && err.contains("value 0 trial 1, value 0.1 trial 1, value 0.4 trial 1")
            && err.contains("--allow-partial")
            && err.contains(&format!("nacsim sweep {}", s.display())),
        "{err}"
    );
    let (code, csv, err) = merge_status(&out, &["--allow-partial"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("3 of the 6 points"), "{err}");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].ends_with(",trials_expected,complete"), "{csv}");
    assert_eq!(lines.len(), 4, "{csv}");
    for row in &lines[1..] {
        assert_eq!(row.split(',').nth(1), Some("1"), "{row}");
        assert!(row.ends_with(",2,false"), "a partial row is marked: {row}");
    }

    // The rest of the grid: complete rows.
    let (code, err) = sweep_status(&s, &out, &["--shard", "1/2"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, reference, err) = merge_status(&out, &[]);
    assert_eq!(code, Some(0), "{err}");
    for row in reference.lines().skip(1) {
        assert_eq!(row.split(',').nth(1), Some("2"), "{row}");
        assert!(row.ends_with(",2,true"), "a complete row: {row}");
    }

    // A second file holding the same point: the same result is harmless, another is refused.
    let points = out.join("points");
    let p = points.join("v0001-t0000.json");
    let copy = points.join("v0001-t0000 (copy).json");
    std::fs::copy(&p, &copy).unwrap();
    let (code, csv, err) = merge_status(&out, &[]);
    assert_eq!((code, csv), (Some(0), reference.clone()), "{err}");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["accuracy"] = serde_json::json!(0.5);
    std::fs::write(&copy, serde_json::to_string(&v).unwrap()).unwrap();
    let (code, _, err) = merge_status(&out, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&p.display().to_string())
            && err.contains(&copy.display().to_string())
            && err.contains("value 0.1 trial 0"),
        "{err}"
    );
    // A point of another sweep (another digest).
    v["accuracy"] = serde_json::json!(0.9);
    v["digest"] = serde_json::json!("0123");
    std::fs::write(&copy, serde_json::to_string(&v).unwrap()).unwrap();
    let (code, _, err) = merge_status(&out, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&copy.display().to_string()) && err.contains("another sweep"),
        "{err}"
    );
    std::fs::remove_file(&copy).unwrap();

    // Points with no record (an older nacsim's folder): neither merged nor resumed blindly.
    std::fs::remove_file(out.join("sweep.json")).unwrap();
    let (code, _, err) = merge_status(&out, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no sweep record") && err.contains("--force-new"),
        "{err}"
    );
    let (code, err) = sweep_status(&s, &out, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("6 point files but no record"), "{err}");
}

/// A sweep long enough for two processes to overlap: 5 values × 2 trials on the 2,000 bundled
/// images; its merged CSV from one uninterrupted single-thread run.
fn long_sweep(dir: &Path) -> (std::path::PathBuf, String) {
    let s = sweep_copy(
        dir,
        "long.ron",
        &[
            ("limit: 300", "limit: 0"),
            ("[0.0, 0.1, 0.4]", "[0.0, 0.1, 0.2, 0.3, 0.4]"),
        ],
    );
    let out = dir.join("reference");
    let (code, err) = sweep_status(&s, &out, &["--threads", "1"]);
    assert_eq!(code, Some(0), "{err}");
    (s, merged(&out))
}

fn spawn_sweep(config: &Path, out: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_nacsim"))
        .args(["sweep", config.to_str().unwrap(), "--out"])
        .arg(out)
        .args(["--quiet", "--threads", "1"])
        .current_dir(crate::util::root())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_processes_running_one_sweep_into_one_folder_share_the_points() {
    let dir = tempfile::tempdir().unwrap();
    let (s, reference) = long_sweep(dir.path());
    let out = dir.path().join("shared");
    let runs: Vec<_> = (0..2).map(|_| spawn_sweep(&s, &out)).collect();
    let mut total = 0;
    for r in runs {
        let o = r.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        total += points_run(&err);
    }
    assert_eq!(total, 10, "each point is computed once, by one of the two");
    assert_eq!(merged(&out), reference);
}

#[test]
fn a_killed_sweep_resumes_past_its_claims_to_the_same_csv() {
    let dir = tempfile::tempdir().unwrap();
    let (s, reference) = long_sweep(dir.path());
    let out = dir.path().join("killed");
    let mut child = spawn_sweep(&s, &out);
    let points = out.join("points");
    let count = |ext: &str| {
        std::fs::read_dir(&points).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == ext)
            })
            .count()
        })
    };
    let start = std::time::Instant::now();
    while count("json") == 0 {
        assert!(start.elapsed().as_secs() < 120, "no point written");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no clean-up runs
    child.wait().unwrap();
    let done = count("json");
    assert!(
        done < 10,
        "the run was killed before the end ({done} points)"
    );
    // A claim left behind by a killed process, on the last point missing (the killed run's own
    // claims are on the points it was computing).
    let last_missing = (0..5)
        .flat_map(|v| (0..2).map(move |t| format!("v{v:04}-t{t:04}")))
        .rfind(|p| !points.join(format!("{p}.json")).exists())
        .unwrap();
    let planted = points.join(format!("{last_missing}.lock"));
    std::fs::write(&planted, b"").unwrap();
    let mut resume = spawn_sweep(&s, &out);
    let start = std::time::Instant::now();
    while resume.try_wait().unwrap().is_none() {
        if start.elapsed().as_secs() > 120 {
            resume.kill().unwrap();
            panic!("the resumed sweep waits for the claims of a dead process");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = resume.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    assert_eq!(points_run(&err), 10 - done, "{err}");
    assert_eq!(merged(&out), reference, "resumed after SIGKILL");
    assert!(
        !planted.exists(),
        "a claim is removed once its point is written"
    );
}
