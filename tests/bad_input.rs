//! Bad input gives a one-paragraph error naming the file and the problem, exit status 2, no panic.

use std::path::Path;

use crate::util::{assert_message_snapshot, fixtures, nacsim, nacsim_env, root, text};

/// Exit status 2, an `error:` paragraph on stderr, no panic; returns stderr.
fn fails_cleanly(args: &[&str]) -> String {
    let o = nacsim(args);
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "args {args:?}\nstdout: {out}\nstderr: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !err.trim().contains("\n\n"),
        "one paragraph expected: {err}"
    );
    err
}

/// Every `tests/fixtures/bad/<name>.ron` is rejected by `nacsim train` with the message of the
/// snapshot `<name>.snap` (which names the file, the field, the value and the rule).
#[test]
fn bad_training_configs_are_rejected_with_file_field_and_rule() {
    let all = fixtures("tests/fixtures/bad");
    for p in &all {
        let err = fails_cleanly(&["train", p.to_str().unwrap()]);
        assert_message_snapshot(p, &err);
    }
    assert!(all.len() >= 3, "fixtures found: {}", all.len());
}

#[test]
fn misspelled_network_field_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("net.ron");
    std::fs::write(
        &p,
        "(\n  schema_version: 1,\n  name: \"m\",\n  input: (c: 1, h: 28, w: 28),\n  clases: 10,\n  layers: [],\n)\n",
    )
    .unwrap();
    let err = fails_cleanly(&["eval", "--network", p.to_str().unwrap()]);
    assert!(err.contains("net.ron:5:"), "{err}");
    assert!(err.contains("clases"), "{err}");
}

fn write_idx(path: &Path, magic: u32, dims: &[u32], payload: &[u8]) {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(payload);
    std::fs::write(path, b).unwrap();
}

#[test]
fn truncated_idx_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // The header promises 10 images of 28x28; only 3 are there.
    write_idx(
        &dir.path().join("t10k-images-idx3-ubyte"),
        2051,
        &[10, 28, 28],
        &[0u8; 3 * 784],
    );
    write_idx(
        &dir.path().join("t10k-labels-idx1-ubyte"),
        2049,
        &[10],
        &[1u8; 10],
    );
    let err = fails_cleanly(&["eval", "--data", dir.path().to_str().unwrap()]);
    assert!(err.contains("t10k-images-idx3-ubyte"), "{err}");
    assert!(err.to_lowercase().contains("truncated"), "{err}");
}

#[test]
fn missing_dataset_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails_cleanly(&["eval", "--data", dir.path().to_str().unwrap()]);
    assert!(err.contains("t10k-images-idx3-ubyte"), "{err}");
    assert!(err.contains(dir.path().to_str().unwrap()), "{err}");
}

#[test]
fn safetensors_with_a_wrong_shape_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("models/networks/fmnist-mlp.safetensors"),
        dir.path().join("w.safetensors"),
    )
    .unwrap();
    // Same names, but fc1 has 300 outputs instead of 256.
    let net = "(schema_version: 1, name: \"m\", input: (c: 1, h: 28, w: 28), classes: 10, \
               layers: [Flatten, Dense(out: 300), Act(ReLU), Dense(out: 128), Act(ReLU), Dense(out: 10)], \
               weights: \"w.safetensors\")";
    let p = dir.path().join("net.ron");
    std::fs::write(&p, net).unwrap();
    let err = fails_cleanly(&["eval", "--network", p.to_str().unwrap()]);
    assert!(err.contains("w.safetensors"), "{err}");
    assert!(err.contains("fc1.weight"), "{err}");
    assert!(
        err.contains("[256, 784]") && err.contains("[300, 784]"),
        "{err}"
    );
}

#[test]
fn garbage_safetensors_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.safetensors"), b"not a safetensors file").unwrap();
    let net = "(schema_version: 1, name: \"m\", input: (c: 1, h: 28, w: 28), classes: 10, \
               layers: [Flatten, Dense(out: 10)], weights: \"w.safetensors\")";
    let p = dir.path().join("net.ron");
    std::fs::write(&p, net).unwrap();
    let err = fails_cleanly(&["eval", "--network", p.to_str().unwrap()]);
    assert!(
        err.contains("w.safetensors") && err.contains("safetensors"),
        "{err}"
    );
}

#[test]
fn sweep_threads_outside_one_to_four_times_the_cores_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let max = 4 * std::thread::available_parallelism().unwrap().get();
    let too_many = (max + 1).to_string();
    for (n, want) in [
        ("0", "--threads 0: give 1 to".to_string()),
        (
            &too_many,
            format!("--threads {too_many}: at most {max} worker threads"),
        ),
        (
            "100000",
            format!("--threads 100000: at most {max} worker threads"),
        ),
    ] {
        let err = fails_cleanly(&[
            "sweep",
            "tests/fixtures/sweeps/tiny.ron",
            "--out",
            out.to_str().unwrap(),
            "--threads",
            n,
        ]);
        assert!(
            err.contains(&want),
            "--threads {n}: want {want:?} in: {err}"
        );
        assert!(
            !out.exists(),
            "nothing is written for a refused --threads {n}"
        );
    }
}

/// A folder holding the bundled sample as both splits (`train-*` and `t10k-*`).
fn sample_data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = root().join("crates/nn/data/fmnist-sample");
    for kind in ["images-idx3", "labels-idx1"] {
        let from = src.join(format!("t10k-{kind}-ubyte.gz"));
        for split in ["t10k", "train"] {
            std::fs::copy(&from, dir.path().join(format!("{split}-{kind}-ubyte.gz"))).unwrap();
        }
    }
    dir
}

/// A small valid training config with `network` (a RON network spec) and extra fields.
fn training_config(dir: &Path, network: &str, extra: &str) -> std::path::PathBuf {
    let p = dir.join("t.ron");
    std::fs::write(
        &p,
        format!(
            "(schema_version: 1, name: \"t\", dataset: FashionMnist, network: {network}, \
             output: \"out/t.ron\", train: (seed: 1, epochs: 1, batch_size: 16, lr: 0.01, \
             optimizer: Sgd(momentum: 0.0, weight_decay: 0.0), schedule: Constant){extra})"
        ),
    )
    .unwrap();
    p
}

const MLP5: &str = "(schema_version: 1, name: \"m\", input: (c: 1, h: 28, w: 28), classes: 5, \
                    layers: [Flatten, Dense(out: 5)])";
const MLP10: &str = "(schema_version: 1, name: \"m\", input: (c: 1, h: 28, w: 28), classes: 10, \
                     layers: [Flatten, Dense(out: 10)])";

fn write_net(dir: &Path, layers: &str, input: &str) -> String {
    let p = dir.join("net.ron");
    std::fs::write(
        &p,
        format!(
            "(schema_version: 1, name: \"m\", input: {input}, classes: 10, layers: [{layers}])"
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn huge_conv_padding_names_the_layer_and_field_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let net = write_net(
        dir.path(),
        "Conv2d(out_channels: 1, kernel: 3, padding: 4611686018427387904), Flatten, Dense(out: 10)",
        "(c: 1, h: 28, w: 28)",
    );
    let err = fails_cleanly(&["info", "--network", &net]);
    assert!(
        err.contains("net.ron: layers[0].padding = 4611686018427387904"),
        "{err}"
    );
    assert!(err.contains("overflows"), "{err}");
    assert!(!err.contains("18446744073709551"), "wrapped integer: {err}");
}

#[test]
fn requests_beyond_the_memory_limit_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let lim = [("NACSIM_MEMORY_LIMIT", "4G")];
    for (layers, input) in [
        (
            "Flatten, Dense(out: 1000000000), Dense(out: 10)",
            "(c: 1, h: 28, w: 28)",
        ),
        ("Flatten, Dense(out: 10)", "(c: 1, h: 65536, w: 65536)"),
        (
            "Conv2d(out_channels: 1, kernel: 3, padding: 100000), Flatten, Dense(out: 10)",
            "(c: 1, h: 28, w: 28)",
        ),
    ] {
        let net = write_net(dir.path(), layers, input);
        // `info` answers from the shapes and allocates no weight: it needs no limit.
        let o = crate::util::nacsim_env(&["info", "--network", &net, "--json"], &lim);
        let (out, err) = text(&o);
        assert!(o.status.success(), "info {layers}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(v["cycles"].as_u64().unwrap() > 0, "{v}");
        let o = crate::util::nacsim_env(&["run", "--network", &net], &lim);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "run {layers}: {err}");
        assert!(!err.contains("memory allocation"), "{err}");
        assert!(err.starts_with("error: the network "), "{err}");
        assert!(err.contains("would need about"), "{err}");
        assert!(
            err.contains("limit of 4.0 GiB (NACSIM_MEMORY_LIMIT=4G)"),
            "{err}"
        );
    }
    // An unreadable setting is an error too, not a silent default.
    let o = crate::util::nacsim_env(
        &[
            "run",
            "--network",
            "models/networks/fmnist-mlp.ron",
            "--limit",
            "10",
        ],
        &[("NACSIM_MEMORY_LIMIT", "lots")],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("NACSIM_MEMORY_LIMIT = \"lots\": not a size"),
        "{err}"
    );
}

#[test]
fn absurd_epoch_counts_and_sweep_trials_are_refused_not_allocated() {
    let data = sample_data_dir();
    let d = data.path().to_str().unwrap();
    let lim = [("NACSIM_MEMORY_LIMIT", "4G")];
    let cfg = training_config(data.path(), MLP10, "");
    let c = cfg.to_str().unwrap();
    let args = ["train", c, "--data", d, "--epochs", "4294967295", "--quiet"];
    let o = crate::util::nacsim_env(&args, &lim);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("the history of 4294967295 epochs"), "{err}");

    let sweep = data.path().join("s.ron");
    std::fs::write(
        &sweep,
        format!(
            "(schema_version: 1, name: \"s\", design: \"{}\", network: \"{}\", limit: 10, \
             parameter: (path: \"dram.bytes_per_cycle\", values: [8.0, 16.0]), trials: 4294967295, seed: 1)",
            root().join("models/designs/systolic-int8.ron").display(),
            root().join("models/networks/fmnist-mlp.ron").display()
        ),
    )
    .unwrap();
    let out = data.path().join("sweep-out");
    let o = crate::util::nacsim_env(
        &[
            "sweep",
            sweep.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        &lim,
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("4294967295"), "{err}");
    assert!(!err.contains("memory allocation"), "{err}");
}

#[test]
fn network_classes_below_the_dataset_labels_are_refused_at_load() {
    let data = sample_data_dir();
    let d = data.path().to_str().unwrap();
    let cfg = training_config(data.path(), MLP5, "");
    let err = fails_cleanly(&["train", cfg.to_str().unwrap(), "--data", d, "--limit", "50"]);
    assert!(err.contains("t.ron: network.classes = 5"), "{err}");
    assert!(err.contains("10 classes"), "{err}");
    // The same config inside a training sweep.
    let sweep = data.path().join("s.ron");
    std::fs::write(
        &sweep,
        format!(
            "(schema_version: 1, name: \"s\", train: \"t.ron\", data: \"{d}\", limit: 20, \
             train_limit: 20, parameter: (path: \"config.train.lr\", values: [0.01]), trials: 1, seed: 1)"
        ),
    )
    .unwrap();
    let out = data.path().join("sweep-out");
    let err = fails_cleanly(&[
        "sweep",
        sweep.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("network.classes = 5"), "{err}");
}

#[test]
fn an_idx_header_of_another_shape_with_the_same_pixel_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(
        &dir.path().join("t10k-images-idx3-ubyte"),
        2051,
        &[4, 14, 56],
        &[0u8; 4 * 784],
    );
    write_idx(
        &dir.path().join("t10k-labels-idx1-ubyte"),
        2049,
        &[4],
        &[1u8; 4],
    );
    let d = dir.path().to_str().unwrap();
    for cmd in ["eval", "run"] {
        let err = fails_cleanly(&[cmd, "--data", d]);
        assert!(err.contains("images are 1x14x56"), "{cmd}: {err}");
        assert!(err.contains("expects input 1x28x28"), "{cmd}: {err}");
    }
}

#[test]
fn sweep_files_with_no_or_absurd_trial_counts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("tests/fixtures/sweeps/tiny.ron"))
        .unwrap()
        .replace(
            "../../../models",
            &root().join("models").display().to_string(),
        );
    for (trials, want) in [
        ("0", "trials = 0: must be in 1..=10000"),
        ("1000000", "trials = 1000000: must be in 1..=10000"),
    ] {
        let p = dir.path().join("s.ron");
        std::fs::write(&p, text.replace("trials: 2", &format!("trials: {trials}"))).unwrap();
        let err = fails_cleanly(&[
            "sweep",
            p.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ]);
        assert!(
            err.contains(&format!("{}: {want}", p.display())),
            "want {want:?} in: {err}"
        );
    }
}

#[test]
fn a_damaged_training_split_is_an_error_not_silently_skipped() {
    let data = sample_data_dir();
    let bad = data.path().join("train-images-idx3-ubyte.gz");
    std::fs::write(&bad, b"\x1f\x8bnot really gzip").unwrap();
    let d = data.path().to_str().unwrap();
    let err = fails_cleanly(&["run", "--data", d, "--limit", "10"]);
    assert!(err.contains("train-images-idx3-ubyte.gz"), "{err}");
    assert!(err.contains("calibration"), "{err}");
    // A missing training split is fine: calibration falls back to the test images.
    std::fs::remove_file(&bad).unwrap();
    std::fs::remove_file(data.path().join("train-labels-idx1-ubyte.gz")).unwrap();
    let o = nacsim(&["run", "--data", d, "--limit", "10"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("of the test split of"), "{out}");
    assert!(
        out.contains("warning: the int8 scales were calibrated on the evaluation images"),
        "{out}"
    );
}

#[test]
fn a_zero_limit_is_refused_like_an_empty_sample() {
    let err = fails_cleanly(&["eval", "--limit", "0"]);
    assert!(err.contains("--limit 0: must be at least 1"), "{err}");
    let err = fails_cleanly(&["run", "--limit", "0"]);
    assert!(err.contains("--limit 0: must be at least 1"), "{err}");
    let data = sample_data_dir();
    let cfg = training_config(data.path(), MLP10, "");
    let d = data.path().to_str().unwrap();
    let err = fails_cleanly(&[
        "train",
        cfg.to_str().unwrap(),
        "--data",
        d,
        "--eval-limit",
        "0",
    ]);
    assert!(err.contains("--eval-limit 0: must be at least 1"), "{err}");
    let err = fails_cleanly(&["train", cfg.to_str().unwrap(), "--data", d, "--limit", "0"]);
    assert!(err.contains("--limit 0: must be at least 1"), "{err}");
}

#[test]
fn a_file_passed_as_the_data_folder_is_called_a_file() {
    let f = root().join("crates/nn/data/fmnist-sample/t10k-images-idx3-ubyte.gz");
    let err = fails_cleanly(&["eval", "--data", f.to_str().unwrap()]);
    assert!(err.contains("is a file, not a folder"), "{err}");
    assert!(!err.contains("does not exist"), "{err}");
}

/// A report that cannot be written (a full disk) is an error with exit status 1, not a panic.
#[cfg(target_os = "linux")]
#[test]
fn a_report_to_a_full_disk_is_a_write_error_not_a_panic() {
    for args in [
        &["info", "--json"][..],
        &["info"],
        &["eval", "--limit", "20"],
        &["eval", "--limit", "20", "--json"],
        &["run", "--limit", "20"],
    ] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_nacsim"))
            .args(args)
            .current_dir(root())
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("error: cannot write the report to standard output: "),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// A network without layers (found by the mutation test, tests/mutants.rs: `layers: []`) has
/// nothing to map: `info` describes it instead of indexing its first layer.
#[test]
fn a_network_without_layers_is_described_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("net.ron");
    std::fs::write(
        &p,
        "(schema_version: 1, name: \"e\", input: (c: 1, h: 16, w: 16), classes: 256, layers: [])",
    )
    .unwrap();
    let o = nacsim(&["info", "--network", p.to_str().unwrap(), "--json"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cycles"], 0, "{out}");
    assert_eq!(v["layers"].as_array().map(Vec::len), Some(0), "{out}");
}

#[test]
fn rayon_num_threads_outside_one_to_four_times_the_cores_is_refused() {
    let max = 4 * std::thread::available_parallelism().unwrap().get();
    let too_many = (max + 1).to_string();
    for (v, want) in [
        (
            too_many.as_str(),
            format!("RAYON_NUM_THREADS={too_many}: at most {max} worker threads"),
        ),
        (
            "lots",
            "RAYON_NUM_THREADS=\"lots\": not a whole number".to_string(),
        ),
    ] {
        let o = nacsim_env(&["info"], &[("RAYON_NUM_THREADS", v)]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{v}: {out} {err}");
        assert!(
            err.starts_with("error: ") && err.contains(&want),
            "{v}: {err}"
        );
    }
    // 0 (rayon's "all cores") and the limit itself pass.
    for v in ["0", &max.to_string()] {
        let o = nacsim_env(&["info"], &[("RAYON_NUM_THREADS", v)]);
        assert!(o.status.success(), "{v}: {}", text(&o).1);
    }
}
