//! The main job and the commands, end to end through the binary.

use crate::util::{nacsim, text};

#[test]
fn eval_of_the_embedded_model_on_the_bundled_sample() {
    let o = nacsim(&["eval"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "stderr: {err}");
    assert!(out.contains("images    2000"), "{out}");
    let acc: f64 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("accuracy"))
        .and_then(|v| v.trim().trim_end_matches('%').trim().parse().ok())
        .unwrap_or_else(|| panic!("no accuracy line in {out}"));
    assert!(
        acc > 85.0,
        "default model accuracy {acc} % on the bundled sample"
    );
}

#[test]
fn eval_json_has_the_documented_keys() {
    let o = nacsim(&[
        "eval",
        "--network",
        "models/networks/fmnist-cnn.ron",
        "--limit",
        "500",
        "--json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "stderr: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON on stdout");
    assert_eq!(v["images"], 500);
    let acc = v["accuracy"].as_f64().expect("accuracy is a number");
    assert!(
        acc > 0.85 && acc <= 1.0,
        "CNN accuracy {acc} on 500 bundled images"
    );
}

#[test]
fn help_documents_every_command() {
    let (out, _) = text(&nacsim(&["--help"]));
    for c in ["run", "info", "trace", "train", "eval"] {
        assert!(out.contains(c), "{out}");
    }
    let (out, _) = text(&nacsim(&["eval", "--help"]));
    for f in ["--network", "--data", "--limit", "--json"] {
        assert!(out.contains(f), "{out}");
    }
}

#[test]
fn train_writes_a_model_that_eval_loads() {
    let dir = tempfile::tempdir().unwrap();
    let d = crate::util::fashion_mnist_dir();
    let o = nacsim(&[
        "train",
        "models/training/fmnist-mlp.ron",
        "--out",
        dir.path().to_str().unwrap(),
        "--data",
        d.to_str().unwrap(),
        "--limit",
        "3000",
        "--eval-limit",
        "1000",
        "--epochs",
        "2",
        "--json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "stderr: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON on stdout");
    assert_eq!(v["epochs"], 2);
    assert!(v["seconds"].as_f64().unwrap() > 0.0);
    let acc = v["accuracy"].as_f64().unwrap();
    assert!(
        acc > 0.70,
        "2 epochs on 3,000 images should pass 70 %, got {acc}"
    );
    let net = dir.path().join("fmnist-mlp.ron");
    assert!(dir.path().join("fmnist-mlp.safetensors").exists());
    let o = nacsim(&[
        "eval",
        "--network",
        net.to_str().unwrap(),
        "--data",
        d.to_str().unwrap(),
        "--limit",
        "1000",
        "--json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "stderr: {err}");
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        e["accuracy"].as_f64().unwrap(),
        acc,
        "eval of the saved model equals the accuracy train reported"
    );
}

/// A block-circulant power-of-two training config saves weights that are block-circulant with
/// k = 16 and whose every entry is 0 or ±2^e (what the shift-add datapath can hold).
#[test]
fn block_circulant_pot_training_saves_circulant_power_of_two_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = crate::util::fashion_mnist_dir();
    let o = nacsim(&[
        "train",
        "models/training/fmnist-mlp256-bc16-pot3.ron",
        "--out",
        dir.path().to_str().unwrap(),
        "--data",
        d.to_str().unwrap(),
        "--limit",
        "6000",
        "--eval-limit",
        "500",
        "--epochs",
        "1",
        "--json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "stderr: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // One short epoch from scratch with 3-bit weights: well above chance (0.1), far from done.
    assert!(v["accuracy"].as_f64().unwrap() > 0.3, "{out}");
    let m = nacsim_nn::model::Model::load(&dir.path().join("fmnist-mlp256-bc16-pot3.ron")).unwrap();
    for p in m.params.iter().flatten() {
        let w = &p.weight;
        let (rows, cols) = w.dim();
        let k = 16;
        for r in 0..rows {
            for c in 0..cols {
                let x = w[[r, c]];
                assert!(
                    x == 0.0 || x.abs().log2().fract() == 0.0,
                    "w[{r},{c}] = {x} is not a power of two"
                );
                // First-row convention: entry (i, j) of a block depends on (j − i) mod k only.
                let (br, bc) = (r / k * k, c / k * k);
                let (i, j) = (r % k, c % k);
                let (i0, j0) = (0, (j + k - i) % k);
                if bc + j0 < cols && br + i0 < rows && (br + k <= rows) && (bc + k <= cols) {
                    assert_eq!(
                        x,
                        w[[br + i0, bc + j0]],
                        "block at ({br},{bc}) is not circulant at ({i},{j})"
                    );
                }
            }
        }
    }
}
