//! Bad input gives a one-paragraph error naming the file and the problem, exit status 2, no panic.

use std::path::Path;

use crate::util::{nacsim, root, text};

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

/// Every `tests/fixtures/bad/<name>.ron` is rejected by `nacsim train` with every line of
/// `<name>.err` in the message.
#[test]
fn bad_training_configs_are_rejected_with_file_field_and_rule() {
    let dir = root().join("tests/fixtures/bad");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|e| e != "ron") {
            continue;
        }
        let expected = std::fs::read_to_string(p.with_extension("err")).unwrap();
        let err = fails_cleanly(&["train", p.to_str().unwrap()]);
        for want in expected.lines().filter(|l| !l.is_empty()) {
            assert!(
                err.contains(want),
                "{}: expected {want:?} in: {err}",
                p.display()
            );
        }
        n += 1;
    }
    assert!(n >= 3, "fixtures found: {n}");
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
