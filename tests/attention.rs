//! Softmax, LayerNorm and Transpose (#16): an attention network exported by PyTorch
//! (`scripts/onnx_attn_fixture.py`) against the outputs PyTorch computed, the importer's
//! refusals, and the transformer encoder block example (`models/training/
//! fmnist-encoder-softmax.ron`) through training steps, `nacsim info` on every committed design
//! and `nacsim run` on the systolic one, with the vector unit's operation counts.

use nacsim_nn::data::Dataset;
use nacsim_nn::model::Model;
use nacsim_nn::network::{LayerSpec, NetworkSpec, TensorAxis};
use nacsim_nn::train::{FloatKernel, FloatStore, WeightStore};
use ndarray::Array2;

use crate::util::{nacsim, root, text};

const CONFIG: &str = "models/training/fmnist-encoder-softmax.ron";
const NETWORK: &str = "models/networks/fmnist-encoder-softmax.ron";

fn fixture(name: &str) -> std::path::PathBuf {
    root().join("tests/fixtures/onnx").join(name)
}

/// The PyTorch export (two Softmax, a LayerNormalization, six Transposes — one of them the
/// cycle `[0, 3, 1, 2]` that becomes two swaps — and two MatMuls of activations) imports and
/// computes what PyTorch computed on the fixture's five inputs: max |Δ| stated, below 1e-5.
#[test]
fn a_torch_exported_attention_network_computes_what_pytorch_computed() {
    let m = Model::load(&fixture("torch-attn.onnx")).unwrap();
    let count = |f: &dyn Fn(&LayerSpec) -> bool| m.layers.iter().filter(|l| f(&l.spec)).count();
    assert_eq!(count(&|s| matches!(s, LayerSpec::Softmax { .. })), 2);
    assert_eq!(count(&|s| matches!(s, LayerSpec::Transpose { .. })), 7);
    assert_eq!(count(&|s| matches!(s, LayerSpec::MatMul { .. })), 2);
    let ln = m.layers.iter().find(|l| l.name == "ln").unwrap();
    // nn.LayerNorm(8) over the last axis of the transposed [N, 1, 6, 8] tensor.
    assert!(matches!(
        ln.spec,
        LayerSpec::LayerNorm {
            axis: TensorAxis::W,
            ..
        }
    ));
    assert!(m.layers.iter().any(|l| matches!(
        l.spec,
        LayerSpec::Softmax {
            axis: TensorAxis::H
        }
    )));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("torch-attn.outputs.json")).unwrap())
            .unwrap();
    let vec = |k: &str| -> Vec<f32> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let x = Array2::from_shape_vec((5, 30), vec("input")).unwrap();
    let want = Array2::from_shape_vec((5, 4), vec("output")).unwrap();
    let max = (&m.forward(x.view()) - &want)
        .iter()
        .fold(0.0_f32, |a, d| a.max(d.abs()));
    eprintln!("torch-attn.onnx: max |nacsim − PyTorch| = {max:e}");
    assert!(max < 1e-5, "max abs difference {max}");
}

/// A LayerNormalization over several axes and a Transpose of the batch axis are refused naming
/// the file, the node and the rule.
#[test]
fn onnx_attention_operators_nacsim_cannot_express_are_refused_by_node() {
    for (file, node, rule) in [
        ("bad-attn-ln.onnx", "/ln_all", "normalises along one axis"),
        ("bad-attn-perm.onnx", "/swap_batch", "batch axis kept first"),
    ] {
        let e = Model::load(&fixture(file)).unwrap_err().to_string();
        assert!(
            e.contains(file) && e.contains(node) && e.contains(rule),
            "{file}: {e}"
        );
    }
}

/// The example's network (the training config's `network`).
fn example_spec() -> NetworkSpec {
    let text = std::fs::read_to_string(root().join(CONFIG)).unwrap();
    let cfg: nacsim_train::TrainConfig = ron::from_str(&text).unwrap();
    cfg.network
}

/// The example is one post-norm encoder block: Transpose to `(1, T, d)`, Q·Kᵀ, Softmax over
/// the keys, P·V, back to `(d, T, 1)`, residual Adds each followed by a LayerNorm over the
/// features; three float training steps lower the loss on a fixed batch.
#[test]
fn the_encoder_example_is_one_softmax_attention_block_and_trains() {
    let spec = example_spec();
    let m = Model::init(spec, 1).unwrap();
    let by = |n: &str| m.layers.iter().find(|l| l.name == n).unwrap();
    assert_eq!(
        by("embed").output,
        nacsim_nn::network::Shape::new(32, 28, 1)
    );
    assert_eq!(
        by("scores").output,
        nacsim_nn::network::Shape::new(1, 28, 28)
    );
    assert!(matches!(
        by("attn").spec,
        LayerSpec::Softmax {
            axis: TensorAxis::W
        }
    ));
    for (ln, res) in [("norm1", "res1"), ("norm2", "res2")] {
        assert!(matches!(
            by(ln).spec,
            LayerSpec::LayerNorm {
                axis: TensorAxis::C,
                ..
            }
        ));
        let ri = m.layers.iter().position(|l| l.name == res).unwrap();
        assert_eq!(by(ln).inputs, vec![Some(ri)], "post-norm: {ln} reads {res}");
    }
    let data = Dataset::bundled_sample();
    let batch = data.subset(&(0..64).collect::<Vec<_>>());
    let settings = crate::util::adam_settings(1, 3, 64, 2e-3);
    let mut store = FloatStore::new(m.params.clone(), settings.optimizer);
    let mut stats = m.stats.clone();
    let rec = nacsim_nn::train::train_net(
        &m.layers,
        &FloatKernel,
        &mut store,
        &mut stats,
        &batch,
        None,
        &settings,
        &mut |_| {},
    )
    .unwrap();
    assert!(
        rec.iter().all(|r| r.loss.is_finite()) && rec[2].loss < rec[0].loss,
        "losses {:?}",
        rec.iter().map(|r| r.loss).collect::<Vec<_>>()
    );
    let norm1 = m.layers.iter().position(|l| l.name == "norm1").unwrap();
    assert_ne!(
        store.params()[norm1],
        m.params[norm1],
        "γ, β of norm1 trained"
    );
}

/// `nacsim info` takes the example on every committed design: the designs with an int8
/// systolic array run its MatMuls there; the others refuse naming the MatMul layer and the
/// engine. Softmax, LayerNorm and Transpose are vector-unit layers in every report.
#[test]
fn info_runs_the_encoder_example_on_every_design_that_has_an_int8_array() {
    // The config's network as a topology-only file (info draws seeded weights where an
    // engine's costs follow them).
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("encoder.ron");
    let ron_text = ron::ser::to_string_pretty(&example_spec(), Default::default()).unwrap();
    std::fs::write(&net, ron_text).unwrap();
    let mut ran = 0;
    for e in std::fs::read_dir(root().join("models/designs")).unwrap() {
        let d = e.unwrap().path();
        let o = nacsim(&[
            "info",
            "--design",
            d.to_str().unwrap(),
            "--network",
            net.to_str().unwrap(),
            "--json",
        ]);
        let (out, err) = text(&o);
        if !o.status.success() {
            // Refused naming the layer it cannot run (the first one: a convolution on the
            // B-MV, a MatMul on the crossbar) and the engine.
            let names = [
                "embed", "q", "k", "v", "scores", "ctx", "out_proj", "ffn1", "fc",
            ];
            assert!(
                names.iter().any(|n| err.contains(&format!("layer {n}"))
                    || err.contains(&format!("layer \"{n}\""))
                    || err.contains(&format!("layer {n}:"))),
                "{}: {err}",
                d.display()
            );
            eprintln!("{}: refused: {}", d.display(), err.trim());
            continue;
        }
        eprintln!("{}: ran", d.display());
        ran += 1;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let layers = v["layers"].as_array().unwrap();
        let kinds: Vec<(&str, &str)> = layers
            .iter()
            .map(|l| (l["kind"].as_str().unwrap(), l["engine"].as_str().unwrap()))
            .collect();
        for (k, n) in [("softmax", 1), ("layernorm", 2), ("transpose", 4)] {
            assert_eq!(
                kinds
                    .iter()
                    .filter(|(kk, e)| *kk == k && *e == "vector")
                    .count(),
                n,
                "{}: {k} on the vector unit: {kinds:?}",
                d.display()
            );
        }
        assert!(
            layers
                .iter()
                .filter(|l| l["kind"] == "softmax" || l["kind"] == "layernorm")
                .all(
                    |l| l["cycles"].as_u64().unwrap() > 0 && l["energy_pj"].as_f64().unwrap() > 0.0
                ),
            "{}",
            d.display()
        );
    }
    assert!(ran >= 2, "systolic-int8 and bpca-hybrid-cnn run it");
}

/// `nacsim run` on the systolic design: int8 within 3 points of float on 300 images, and the
/// vector unit's `vector_ops` of the softmax and the layer norms are the documented counts
/// (`7·E + E/n` and `9·E + 2·E/n` per image, `E` the input elements, `n` the axis length).
#[test]
fn run_counts_softmax_and_layer_norm_operations_on_the_vector_unit() {
    let images = 300u64;
    let o = nacsim(&[
        "run",
        "--network",
        NETWORK,
        "--limit",
        &images.to_string(),
        "--json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (a, f) = (
        v["accuracy"].as_f64().unwrap(),
        v["float_accuracy"].as_f64().unwrap(),
    );
    assert!(f > 0.5 && (a - f).abs() <= 0.03, "int8 {a} vs float {f}");
    let layer = |n: &str| {
        v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == n)
            .unwrap_or_else(|| panic!("layer {n}"))
            .clone()
    };
    let ops = |n: &str| layer(n)["counters"]["vector_ops"].as_u64().unwrap();
    let e = 28 * 28u64;
    assert_eq!(ops("attn"), images * (7 * e + e / 28));
    let e = 32 * 28u64;
    assert_eq!(ops("norm1"), images * (9 * e + 2 * (e / 32)));
    assert_eq!(ops("q_t"), images * e);
    assert_eq!(layer("attn")["engine"], "vector");
    assert_eq!(layer("scores")["kind"], "matmul");
    // Traces: the one-image schedule has a span per attention layer; tracing one on a
    // cycle-stepped model is refused naming it.
    let dir = tempfile::tempdir().unwrap();
    let (vcd, json) = (dir.path().join("t.vcd"), dir.path().join("t.json"));
    let o = nacsim(&[
        "trace",
        "--network",
        NETWORK,
        "--layer",
        "q",
        "--vcd",
        vcd.to_str().unwrap(),
        "--perfetto",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let trace = std::fs::read_to_string(&json).unwrap();
    for n in ["\"attn\"", "\"norm1\"", "\"norm2\"", "\"q_t\""] {
        assert!(trace.contains(n), "span {n} in the Perfetto trace");
    }
    let o = nacsim(&[
        "trace",
        "--network",
        NETWORK,
        "--layer",
        "attn",
        "--vcd",
        vcd.to_str().unwrap(),
    ]);
    let err = text(&o).1;
    assert!(
        !o.status.success() && err.contains("(attn)") && err.contains("vector unit"),
        "{err}"
    );
}
