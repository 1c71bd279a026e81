//! The committed trained models in their ONNX form (#16): `models/networks/<name>.onnx`, made
//! from the RON + safetensors model by `scripts/export_onnx.py` (PyTorch, `torch.onnx.export`,
//! opset 17), must compute what the RON model computes and what PyTorch computed.
//!
//! PyTorch's exporter folds every BatchNorm that follows a Conv into the Conv's weights and bias,
//! so the ONNX graph is a different float computation of the same function: the logits may
//! differ by float32 rounding. The bound below, 1e-4 on logits of magnitude ~10, is a few
//! hundred ulps; what was measured is printed. On the bundled 2,000-image sample the
//! accuracies must be identical (the full 10,000-image test set is compared in
//! docs/workloads.md, not in a test).

use nacsim_nn::data::Dataset;
use nacsim_nn::forward::argmax;
use nacsim_nn::model::Model;
use nacsim_nn::network::LayerSpec;
use ndarray::Array2;

use crate::util::root;

/// Largest |ONNX logit − RON logit| (and |nacsim − PyTorch|) accepted.
const MAX_ABS: f32 = 1e-4;

/// The committed models that have an ONNX export.
const MODELS: [&str; 4] = [
    "fmnist-resnet8",
    "fmnist-sepcnn",
    "fmnist-resnet8-bc16-pot3",
    "fmnist-sepcnn-bc16-pot3",
];

fn load(name: &str) -> (Model, Model) {
    let dir = root().join("models/networks");
    let ron = Model::load(&dir.join(format!("{name}.ron"))).unwrap();
    let onnx = Model::load(&dir.join(format!("{name}.onnx"))).unwrap();
    (ron, onnx)
}

fn max_abs(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    (a - b).iter().fold(0.0_f32, |m, d| m.max(d.abs()))
}

/// The ONNX import's float forward equals the RON model's on every sample image within
/// [`MAX_ABS`], and the top-1 accuracy on the sample is identical.
#[test]
fn onnx_exports_compute_what_the_ron_models_compute() {
    let data = Dataset::bundled_sample();
    for name in MODELS {
        let (ron, onnx) = load(name);
        assert_eq!(onnx.spec.input, ron.spec.input, "{name}");
        let (mut worst, mut same_top1) = (0.0_f32, 0usize);
        for start in (0..data.len()).step_by(500) {
            let x = data.batch_range(start, start + 500);
            let (a, b) = (ron.forward(x.view()), onnx.forward(x.view()));
            worst = worst.max(max_abs(&a, &b));
            same_top1 += a
                .rows()
                .into_iter()
                .zip(b.rows())
                .filter(|(r, o)| argmax(r.as_slice().unwrap()) == argmax(o.as_slice().unwrap()))
                .count();
        }
        eprintln!(
            "{name}: max |ONNX − RON| logit over {} sample images = {worst:e}; same top-1 on {same_top1}",
            data.len()
        );
        assert!(worst < MAX_ABS, "{name}: max |Δ| {worst}");
        let (a, b) = (
            ron.float_accuracy(&data, 500),
            onnx.float_accuracy(&data, 500),
        );
        assert_eq!(a.to_bits(), b.to_bits(), "{name}: RON {a} vs ONNX {b}");
        assert!(a > 0.85, "{name}: {a}");
    }
}

/// nacsim's forward of the ONNX file equals the logits PyTorch computed for the first images
/// of the sample (`<name>.torch-outputs.json`, written by the export script) within
/// [`MAX_ABS`].
#[test]
fn onnx_exports_compute_what_pytorch_computed() {
    let data = Dataset::bundled_sample();
    for name in MODELS {
        let (_, onnx) = load(name);
        let path = root().join(format!("models/networks/{name}.torch-outputs.json"));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let shape: Vec<usize> = v["output_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let want: Vec<f32> = v["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let want = Array2::from_shape_vec((shape[0], shape[1]), want).unwrap();
        let got = onnx.forward(data.batch_range(0, shape[0]).view());
        let d = max_abs(&got, &want);
        eprintln!(
            "{name}: max |nacsim(ONNX) − PyTorch| over {} images = {d:e}",
            shape[0]
        );
        assert!(d < MAX_ABS, "{name}: max |Δ| {d}");
        assert!(shape[0] >= 4, "{name}: {} images", shape[0]);
    }
}

/// The export keeps the structure that makes the models what they are: the residual Adds of
/// the ResNet-8 and the depthwise convolutions (groups = channels) of the separable CNN.
#[test]
fn onnx_exports_keep_residual_adds_and_depthwise_convolutions() {
    let (_, resnet) = load("fmnist-resnet8");
    let adds = resnet
        .layers
        .iter()
        .filter(|l| matches!(l.spec, LayerSpec::Add))
        .count();
    assert_eq!(adds, 3);
    let (ron, sep) = load("fmnist-sepcnn");
    let depthwise = |m: &Model| {
        m.layers
            .iter()
            .filter(|l| matches!(l.spec, LayerSpec::Conv2d { groups, .. } if groups > 1 && groups == l.input.c))
            .count()
    };
    assert_eq!(depthwise(&sep), 4);
    assert_eq!(depthwise(&sep), depthwise(&ron));
}
