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
