//! ONNX import (#16): a model made by `scripts/onnx_fixtures.py` (the committed CNN's weights,
//! the operators `torch.onnx.export` writes) against the outputs of an independent ONNX
//! runtime (`onnx.reference.ReferenceEvaluator`), against the RON + safetensors form, and
//! through the CLI; refusals name the node and the operator; a CNN exported by PyTorch itself
//! (`scripts/onnx_torch_fixture.py`) against the outputs PyTorch computed.

use nacsim_nn::data::Dataset;
use nacsim_nn::model::{Model, load_spec};
use nacsim_nn::train::{FloatKernel, accuracy};
use ndarray::Array2;

use crate::util::{nacsim, root, text};

fn fixture(name: &str) -> std::path::PathBuf {
    root().join("tests/fixtures/onnx").join(name)
}

/// The float forward of the imported CNN matches the reference runtime's outputs on the
/// fixture's six inputs: max |Δ| is stated and must stay below 1e-4 (float32 sums in another
/// order).
#[test]
fn the_imported_cnn_computes_what_the_onnx_reference_computes() {
    let m = Model::load(&fixture("fmnist-cnn.onnx")).unwrap();
    let max = max_diff_to_reference(&m, "fmnist-cnn.outputs.json", (6, 784), (6, 10));
    eprintln!("fmnist-cnn.onnx: max |nacsim − ONNX reference| = {max:e}");
    assert!(max < 1e-4, "max abs difference {max}");
}

/// Max |nacsim's float forward − the reference outputs| over the inputs of a fixture's
/// `*.outputs.json` (`input` of `in_shape`, `output` of `out_shape`, written by
/// scripts/onnx_fixtures.py).
fn max_diff_to_reference(
    m: &Model,
    outputs: &str,
    in_shape: (usize, usize),
    out_shape: (usize, usize),
) -> f32 {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(outputs)).unwrap()).unwrap();
    let vec = |k: &str| -> Vec<f32> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let x = Array2::from_shape_vec(in_shape, vec("input")).unwrap();
    let want = Array2::from_shape_vec(out_shape, vec("output")).unwrap();
    let got = m.forward(x.view());
    (&got - &want).iter().fold(0.0_f32, |a, d| a.max(d.abs()))
}

/// The import is the RON + safetensors model: same layers and names, bit-identical weights,
/// the same float accuracy on the bundled sample.
#[test]
fn the_onnx_export_is_the_ron_model() {
    let onnx = Model::load(&fixture("fmnist-cnn.onnx")).unwrap();
    let ron = Model::load(&root().join("models/networks/fmnist-cnn.ron")).unwrap();
    let names = |m: &Model| m.layers.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&onnx), names(&ron));
    assert_eq!(onnx.spec.input, ron.spec.input);
    assert_eq!(onnx.spec.classes, 10);
    assert_eq!(onnx.params, ron.params);
    let data = Dataset::bundled_sample().limit(500);
    let a = accuracy(&FloatKernel, &onnx.layers, &onnx.params, &data, 100);
    let b = accuracy(&FloatKernel, &ron.layers, &ron.params, &data, 100);
    assert_eq!(a.to_bits(), b.to_bits());
    assert!(a > 0.85, "{a}");
    assert!(onnx.spec.notes.contains("opset 17"), "{}", onnx.spec.notes);
}

/// Unsupported operators and branching graphs are refused with the file, the node and the op.
#[test]
fn unsupported_graphs_are_refused_by_node_and_operator() {
    let e = Model::load(&fixture("bad-op.onnx"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad-op.onnx") && e.contains("node /relu/Relu uses operator Softsign"),
        "{e}"
    );
    let e = Model::load(&fixture("bad-branch.onnx"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad-branch.onnx")
            && e.contains("(\"fc1\")")
            && e.contains("does not feed the network output"),
        "{e}"
    );
    let e = load_spec(&root().join("README.md").with_extension("onnx"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot read"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"not a protobuf at all \xff\xff\xff").unwrap();
    let e = Model::load(&junk).unwrap_err().to_string();
    assert!(e.contains("not an ONNX model"), "{e}");
    assert!(Model::load(&fixture("tiny.onnx")).is_ok());
}

/// A branching graph (residual Add, Concat, BatchNormalization, grouped and rectangular Conv,
/// Clip(0, 6), GlobalAveragePool, MatMul of two activations, static Reshape) imports as a graph
/// whose float forward matches the script's numpy forward: max |Δ| stated, below 1e-4.
#[test]
fn a_branching_onnx_graph_computes_what_the_numpy_reference_computes() {
    let m = Model::load(&fixture("graph.onnx")).unwrap();
    assert!(m.spec.layers.is_empty() && !m.spec.nodes.is_empty());
    let kinds: Vec<String> = m.layers.iter().map(|l| format!("{:?}", l.spec)).collect();
    for k in [
        "BatchNorm2d",
        "groups: 4",
        "groups: 2",
        "Add",
        "Concat",
        "GlobalAvgPool",
        "MatMul",
        "ReLU6",
    ] {
        assert!(kinds.iter().any(|s| s.contains(k)), "{k} in {kinds:?}");
    }
    let max = max_diff_to_reference(&m, "graph.outputs.json", (5, 36), (5, 3));
    eprintln!("graph.onnx: max |nacsim − numpy reference| = {max:e}");
    assert!(max < 1e-4, "max abs difference {max}");
}

/// `--network model.onnx` works where a network file is accepted: `run` and `info`.
#[test]
fn the_cli_takes_an_onnx_network() {
    let net = fixture("fmnist-cnn.onnx");
    let net = net.to_str().unwrap();
    let o = nacsim(&["run", "--network", net, "--limit", "200", "--json"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["accuracy"].as_f64().unwrap() > 0.8, "{out}");
    let o = nacsim(&["info", "--network", net, "--json"]);
    assert!(o.status.success(), "{}", text(&o).1);
}

/// A CNN exported by `torch.onnx.export` itself (`scripts/onnx_torch_fixture.py`: Conv, ReLU,
/// BatchNormalization, a residual Add, MaxPool, Flatten, Gemm; the second BatchNorm folded into
/// its Conv by the exporter) imports as a graph whose float forward matches the outputs PyTorch
/// computed on the fixture's five inputs: max |Δ| stated, below 1e-4.
#[test]
fn a_torch_exported_residual_cnn_computes_what_pytorch_computed() {
    let m = Model::load(&fixture("torch-resnet.onnx")).unwrap();
    let kinds: Vec<String> = m.layers.iter().map(|l| format!("{:?}", l.spec)).collect();
    for k in ["BatchNorm2d", "Add", "MaxPool"] {
        assert!(kinds.iter().any(|s| s.contains(k)), "{k} in {kinds:?}");
    }
    let max = max_diff_to_reference(&m, "torch-resnet.outputs.json", (5, 64), (5, 10));
    eprintln!("torch-resnet.onnx: max |nacsim − PyTorch| = {max:e}");
    assert!(max < 1e-4, "max abs difference {max}");
}
