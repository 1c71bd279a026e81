//! ONNX import: a model exported by `torch.onnx.export` (or any exporter writing the same
//! operators) read into nacsim's network IR and float parameters.
//!
//! # What is read
//!
//! The graph may branch: every ONNX node that computes a layer becomes a node of nacsim's graph
//! IR ([`crate::network`]) reading the nodes that compute its inputs (`Identity` and `Dropout`
//! are aliases). A graph that is a chain is written as a `layers` file, any other as `nodes`.
//!
//! | ONNX operator | nacsim layer | conditions (else refused with the node's name) |
//! |---|---|---|
//! | `Gemm` | `Dense` | `alpha = beta = 1`, `transA = 0`; `transB` either way; bias optional |
//! | `MatMul` (+ `Add` of a `[out]` initializer) | `Dense` | the weight is an initializer `[in, out]` |
//! | `MatMul` of two activations | `MatMul` | per channel `(c, m, k)·(c, k, n)` |
//! | `Conv` | `Conv2d` | any kernel and strides, pads equal at both ends of each axis, dilation 1, any `group` |
//! | `BatchNormalization` | `BatchNorm2d` | scale, B, mean, var initializers; `momentum` m becomes 1 − m |
//! | `Relu`, `Sigmoid`, `Tanh`, `LeakyRelu`, `Clip` | `Act(…)` | `Clip` bounds from initializers (`HardTanh`; `Clip(0, 6)` is `ReLU6`) |
//! | `MaxPool`, `AveragePool` | `MaxPool2d`, `AvgPool2d` | square kernel, equal strides, no padding, no ceil mode |
//! | `GlobalAveragePool` | `GlobalAvgPool` | |
//! | `Add` of two or more activations | `Add` | |
//! | `Concat` | `Concat` | `axis = 1` (channels) |
//! | `Flatten` (`axis = 1`), static `Reshape` to `[N, F]` (`[N, −1]`, `[−1, F]`, `[0, F]`) | `Flatten` | |
//! | `Softmax` | `Softmax` | opset ≥ 13 (one axis; earlier opsets only on the last axis); not the batch axis |
//! | `LayerNormalization` | `LayerNorm` | opset ≥ 17; `axis` the last axis (one normalised axis); `Scale`, `B` initializers |
//! | `Transpose` | `Transpose` (one or two) | static `perm` keeping the batch axis first: a swap of two of C, H, W is one node, a cycle of all three two nodes, the identity none |
//! | `Identity`, `Dropout` | — | skipped (the identity at inference) |
//!
//! Weights come from the graph's initializers (float32, `raw_data` or `float_data`); a layer's
//! name is its weight's initializer name without `.weight` (`fc1`, `conv2`), as PyTorch names
//! them (a BatchNormalization's from its scale), else the node's name. The input shape is the graph input's `[N, C, H, W]` (or
//! `[N, F]`, read as `F × 1 × 1`), the classes the last layer's outputs. Axes of the attention
//! operators map by the tensor's rank: on `[N, C, H, W]` axes 1, 2, 3 (or −3, −2, −1) are `C`,
//! `H`, `W`; on `[N, F]` axis 1 (−1) is `C`, where nacsim keeps flat features.
//!
//! # Parsing
//!
//! The protobuf messages are the subset of `onnx.proto` (ONNX IR 8, opsets 13–18) nacsim reads,
//! declared here with [`prost`] derives and the field numbers of `onnx.proto`. A maintained ONNX
//! crate was weighed: `tract-onnx` brings a whole inference engine, and the `onnx-protobuf`
//! family generates every message through a build script; the few messages below are plain,
//! checked by the fixtures of `tests/onnx.rs`, and unknown fields are skipped by protobuf rules.

use std::collections::HashMap;
use std::path::Path;

use ndarray::{Array1, Array2};

use crate::graph::BnStats;
use crate::model::{Model, ModelError, Param};
use crate::network::{Activation, Hw, LayerSpec, NetworkSpec, NodeSpec, Shape};

mod attn;
mod proto;
pub use proto::*;

const FLOAT: i32 = 1;
const INT64: i32 = 7;

/// A float or int64 initializer's values.
fn floats(t: &TensorProto) -> Result<Vec<f32>, String> {
    if t.data_location == 1 {
        return Err(format!(
            "initializer {} is stored in an external file; export with the weights inside the model (torch.onnx.export(..., external_data=False))",
            t.name
        ));
    }
    match t.data_type {
        FLOAT if !t.raw_data.is_empty() => {
            if !t.raw_data.len().is_multiple_of(4) {
                return Err(format!(
                    "initializer {}: raw data not a whole number of float32s",
                    t.name
                ));
            }
            Ok(t.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        }
        FLOAT => Ok(t.float_data.clone()),
        INT64 if !t.raw_data.is_empty() => Ok(t
            .raw_data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect()),
        INT64 => Ok(t.int64_data.iter().map(|&v| v as f32).collect()),
        d => Err(format!(
            "initializer {} has element type {d}; nacsim reads float32 weights (export the model in float32)",
            t.name
        )),
    }
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

fn ints(n: &NodeProto, name: &str) -> Vec<i64> {
    attr(n, name).map(|a| a.ints.clone()).unwrap_or_default()
}

fn int(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map_or(default, |a| a.i)
}

fn float(n: &NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).map_or(default, |a| a.f)
}

/// All entries equal (one value per axis or per side), returned once.
fn uniform(v: &[i64], default: i64) -> Option<usize> {
    let first = *v.first().unwrap_or(&default);
    (v.iter().all(|&x| x == first) && first >= 0).then_some(first as usize)
}

/// Read an ONNX model file into a [`Model`] (see the module doc for what is read).
///
/// # Errors
/// [`ModelError::Onnx`] naming the file and the node, operator or attribute that is refused;
/// topology errors of the converted network.
pub fn load(path: &Path) -> Result<Model, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        op: "read",
        source,
    })?;
    let err = |msg: String| ModelError::Onnx {
        path: path.to_path_buf(),
        msg,
    };
    let m = <ModelProto as prost::Message>::decode(bytes.as_slice())
        .map_err(|e| err(format!("not an ONNX model ({e})")))?;
    let name = path
        .file_stem()
        .map_or_else(|| "onnx".to_string(), |s| s.to_string_lossy().into_owned());
    let (spec, by_name) = convert(&m, &name).map_err(err)?;
    let layers = spec.resolve().map_err(|source| ModelError::Topology {
        path: path.to_path_buf(),
        source,
    })?;
    let mut params = Vec::with_capacity(layers.len());
    let mut stats = Vec::with_capacity(layers.len());
    for l in &layers {
        let (p, st) = by_name.get(&l.name).cloned().unwrap_or((None, None));
        let want = l
            .weight_shape()
            .map(|s| [s[0], s[1..].iter().product::<usize>()]);
        let got = p.as_ref().map(|p| [p.weight.nrows(), p.weight.ncols()]);
        if want != got {
            return Err(err(format!(
                "layer {}: the weights are {got:?} but the layer needs {want:?}",
                l.name
            )));
        }
        params.push(p);
        stats.push(st);
    }
    Ok(Model {
        spec,
        layers,
        params,
        stats,
    })
}

/// Parameters and running statistics of one converted layer.
type LayerData = (Option<Param>, Option<BnStats>);

/// A graph node being converted: its layer, the ONNX tensors it reads, its data.
struct Conv {
    name: String,
    op: LayerSpec,
    reads: Vec<String>,
    data: LayerData,
    /// The ONNX tensor it computes.
    tensor: String,
}

/// `pads` `[top, left, bottom, right]` as per-axis padding, when each axis is symmetric.
fn pads_hw(p: &[i64]) -> Option<Hw> {
    match p {
        [] => Some(Hw::square(0)),
        [t, l, b, r] if t == b && l == r && *t >= 0 && *l >= 0 => {
            Some(Hw::new(*t as usize, *l as usize))
        }
        _ => None,
    }
}

/// A 2-axis attribute (`kernel_shape`, `strides`, `dilations`) as a pair.
fn pair(v: &[i64], default: usize) -> Option<Hw> {
    match v {
        [] => Some(Hw::square(default)),
        [h, w] if *h > 0 && *w > 0 => Some(Hw::new(*h as usize, *w as usize)),
        _ => None,
    }
}

/// The network of `m`'s graph as a network spec (a chain as `layers`, anything else as
/// `nodes`), and the parameters and statistics of each layer by name.
fn convert(
    m: &ModelProto,
    name: &str,
) -> Result<(NetworkSpec, HashMap<String, LayerData>), String> {
    let g = m.graph.as_ref().ok_or("the model has no graph")?;
    let inits: HashMap<&str, &TensorProto> =
        g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let inputs: Vec<&ValueInfoProto> = g
        .input
        .iter()
        .filter(|v| !inits.contains_key(v.name.as_str()))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(format!(
            "the graph has {} inputs besides its initializers; nacsim reads models with one input",
            inputs.len()
        ));
    };
    let dims: Vec<i64> = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .map(|s| s.dim.iter().map(|d| d.dim_value).collect())
        .unwrap_or_default();
    let shape = match dims.as_slice() {
        [_, c, h, w] if *c > 0 && *h > 0 && *w > 0 => Shape {
            c: *c as usize,
            h: *h as usize,
            w: *w as usize,
        },
        [_, f] if *f > 0 => Shape {
            c: *f as usize,
            h: 1,
            w: 1,
        },
        _ => {
            return Err(format!(
                "input {} has shape {dims:?}; nacsim reads [N, C, H, W] or [N, F] with fixed C, H, W, F",
                input.name
            ));
        }
    };
    let tensor = |n: &NodeProto, k: usize| -> Result<Option<(&TensorProto, Vec<f32>)>, String> {
        match n.input.get(k).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => {
                let t = inits.get(s.as_str()).ok_or_else(|| {
                    format!(
                        "node {} ({}): input {s} is not an initializer; nacsim reads weights stored in the model",
                        n.name, n.op_type
                    )
                })?;
                Ok(Some((t, floats(t)?)))
            }
        }
    };
    let is_init = |s: &str| inits.contains_key(s);
    let layer_name = |n: &NodeProto, w: &TensorProto| {
        w.name.strip_suffix(".weight").map_or_else(
            || n.name.trim_matches('/').replace('/', "_"),
            str::to_string,
        )
    };
    // ONNX tensor → the node that computes it (the input is "input"; Identity/Dropout alias).
    let mut alias: HashMap<String, String> = HashMap::new();
    // ONNX tensor → its rank (4 for [N, C, H, W], 2 for [N, F]), for the axes of the attention
    // operators (crate::onnx::attn).
    let mut ranks: HashMap<String, usize> = HashMap::from([(input.name.clone(), dims.len())]);
    let opset = m
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty())
        .map_or(0, |o| o.version);
    let mut out: Vec<Conv> = Vec::new();
    let mut i = 0;
    while i < g.node.len() {
        let n = &g.node[i];
        i += 1;
        let refuse =
            |what: &str| Err::<(), String>(format!("node {} ({}): {what}", n.name, n.op_type));
        let Some(first) = n.input.first() else {
            return Err(format!("node {} ({}) reads nothing", n.name, n.op_type));
        };
        let out_name = match (n.op_type.as_str(), n.output.as_slice()) {
            (_, [o]) => o.clone(),
            ("Dropout", [o, ..]) => o.clone(),
            _ => {
                return Err(format!(
                    "node {} ({}) has {} outputs; nacsim reads single-output nodes",
                    n.name,
                    n.op_type,
                    n.output.len()
                ));
            }
        };
        let own = n.name.trim_matches('/').replace('/', "_");
        let own = if own.is_empty() {
            format!("node{i}")
        } else {
            own
        };
        let mut node = |name: String, op: LayerSpec, reads: Vec<String>, data: LayerData| {
            out.push(Conv {
                name,
                op,
                reads,
                data,
                tensor: String::new(),
            });
        };
        let act_inputs = || -> Vec<String> {
            n.input
                .iter()
                .filter(|s| !s.is_empty() && !is_init(s))
                .cloned()
                .collect()
        };
        let in_rank = ranks.get(first).copied().unwrap_or(4);
        ranks.insert(
            out_name.clone(),
            match n.op_type.as_str() {
                "Gemm" | "Flatten" | "Reshape" => 2,
                "MatMul" if is_init(n.input.get(1).map_or("", String::as_str)) => 2,
                _ => in_rank,
            },
        );
        match n.op_type.as_str() {
            "Identity" | "Dropout" => {
                alias.insert(out_name.clone(), first.clone());
                continue;
            }
            "Softmax" | "LayerNormalization" | "Transpose" => {
                let ctx = attn::Ctx {
                    n,
                    rank: in_rank,
                    opset,
                    own: &own,
                };
                let made = attn::convert(&ctx, |k| tensor(n, k))?;
                if made.is_empty() {
                    // An identity permutation.
                    alias.insert(out_name.clone(), first.clone());
                    continue;
                }
                let mut reads = vec![first.clone()];
                let last = made.len() - 1;
                for (k, (name, op, data)) in made.into_iter().enumerate() {
                    let t = if k == last {
                        out_name.clone()
                    } else {
                        format!("{out_name}#{k}")
                    };
                    out.push(Conv {
                        name,
                        op,
                        reads,
                        data,
                        tensor: t.clone(),
                    });
                    reads = vec![t];
                }
                continue;
            }
            "MatMul" if !is_init(n.input.get(1).map_or("", String::as_str)) => {
                node(
                    own,
                    LayerSpec::MatMul { transpose_b: false },
                    act_inputs(),
                    (None, None),
                );
            }
            "Gemm" | "MatMul" => {
                let Some((wt, w)) = tensor(n, 1)? else {
                    return Err(format!("node {} ({}): no weight input", n.name, n.op_type));
                };
                let [a, b] = wt.dims.as_slice() else {
                    return Err(format!(
                        "node {} ({}): weight {} has dims {:?}; a 2-D weight is needed",
                        n.name, n.op_type, wt.name, wt.dims
                    ));
                };
                let (a, b) = (*a as usize, *b as usize);
                let gemm = n.op_type == "Gemm";
                if gemm
                    && (float(n, "alpha", 1.0) != 1.0
                        || float(n, "beta", 1.0) != 1.0
                        || int(n, "transA", 0) != 0)
                {
                    refuse("alpha and beta must be 1 and transA 0")?;
                }
                let trans_b = gemm && int(n, "transB", 0) == 1;
                let weight = if trans_b {
                    Array2::from_shape_vec((a, b), w).map_err(|e| e.to_string())?
                } else {
                    Array2::from_shape_vec((a, b), w)
                        .map_err(|e| e.to_string())?
                        .reversed_axes()
                        .as_standard_layout()
                        .to_owned()
                };
                let outs = weight.nrows();
                let mut bias = if gemm {
                    tensor(n, 2)?.map(|(_, b)| Array1::from(b))
                } else {
                    None
                };
                let mut output = out_name.clone();
                // MatMul + Add(bias): the Add is this layer's bias.
                if !gemm
                    && let Some(next) = g.node.get(i)
                    && next.op_type == "Add"
                    && next.input.first() == Some(&out_name)
                    && let Some((_, b)) = tensor(next, 1)?
                    && b.len() == outs
                {
                    bias = Some(Array1::from(b));
                    output.clone_from(&next.output[0]);
                    i += 1;
                }
                if bias.as_ref().is_some_and(|b| b.len() != outs) {
                    refuse("the bias does not have one entry per output")?;
                }
                node(
                    layer_name(n, wt),
                    LayerSpec::Dense {
                        out: outs,
                        bias: bias.is_some(),
                        name: String::new(),
                    },
                    vec![first.clone()],
                    (Some(Param { weight, bias }), None),
                );
                out.last_mut().expect("just pushed").tensor = output;
                continue;
            }
            "Conv" => {
                let Some((wt, w)) = tensor(n, 1)? else {
                    return Err(format!("node {} (Conv): no weight input", n.name));
                };
                let [o, c, kh, kw] = wt.dims.as_slice() else {
                    return Err(format!(
                        "node {} (Conv): weight dims {:?} are not [O, C, kH, kW]",
                        n.name, wt.dims
                    ));
                };
                let auto = attr(n, "auto_pad").map(|a| a.s.clone()).unwrap_or_default();
                if !(auto.is_empty() || auto == b"NOTSET") {
                    refuse("auto_pad is set; export with explicit pads")?;
                }
                let groups = usize::try_from(int(n, "group", 1)).unwrap_or(0);
                let (Some(stride), Some(padding), Some(Hw { h: 1, w: 1 })) = (
                    pair(&ints(n, "strides"), 1),
                    pads_hw(&ints(n, "pads")),
                    pair(&ints(n, "dilations"), 1),
                ) else {
                    return Err(format!(
                        "node {} (Conv): strides must be 2 positive values, pads the same at both ends of each axis, dilation 1",
                        n.name
                    ));
                };
                let (o, fan_in) = (*o as usize, (*c * *kh * *kw) as usize);
                let weight = Array2::from_shape_vec((o, fan_in), w).map_err(|e| e.to_string())?;
                let bias = tensor(n, 2)?.map(|(_, b)| Array1::from(b));
                node(
                    layer_name(n, wt),
                    LayerSpec::Conv2d {
                        out_channels: o,
                        kernel: Hw::new(*kh as usize, *kw as usize),
                        stride,
                        padding,
                        groups,
                        bias: bias.is_some(),
                        name: String::new(),
                    },
                    vec![first.clone()],
                    (Some(Param { weight, bias }), None),
                );
            }
            "BatchNormalization" => {
                let get = |k: usize, what: &str| -> Result<Vec<f32>, String> {
                    tensor(n, k)?
                        .map(|(_, v)| v)
                        .ok_or_else(|| format!("node {} (BatchNormalization): no {what}", n.name))
                };
                let (gamma, beta, mean, var) = (
                    get(1, "scale")?,
                    get(2, "B")?,
                    get(3, "mean")?,
                    get(4, "var")?,
                );
                let c = gamma.len();
                if [beta.len(), mean.len(), var.len()] != [c; 3] {
                    refuse("scale, B, mean and var must have one entry per channel")?;
                }
                let nm = n.input[1]
                    .strip_suffix(".weight")
                    .map_or_else(|| own.clone(), str::to_string);
                node(
                    nm,
                    LayerSpec::BatchNorm2d {
                        eps: float(n, "epsilon", 1e-5),
                        // ONNX keeps `momentum` of the running value, PyTorch of the batch's.
                        momentum: 1.0 - float(n, "momentum", 0.9),
                        name: String::new(),
                    },
                    vec![first.clone()],
                    (
                        Some(Param {
                            weight: Array2::from_shape_vec((c, 1), gamma)
                                .map_err(|e| e.to_string())?,
                            bias: Some(Array1::from(beta)),
                        }),
                        Some(BnStats {
                            mean: Array1::from(mean),
                            var: Array1::from(var),
                        }),
                    ),
                );
            }
            "Relu" | "Sigmoid" | "Tanh" | "LeakyRelu" | "Clip" => {
                let act = match n.op_type.as_str() {
                    "Relu" => Activation::ReLU,
                    "Sigmoid" => Activation::Sigmoid,
                    "Tanh" => Activation::Tanh,
                    "LeakyRelu" => Activation::LeakyReLU {
                        alpha: float(n, "alpha", 0.01),
                    },
                    _ => {
                        let bound = |k: usize, d: f32| -> Result<f32, String> {
                            Ok(tensor(n, k)?
                                .and_then(|(_, v)| v.first().copied())
                                .unwrap_or(d))
                        };
                        match (bound(1, f32::MIN)?, bound(2, f32::MAX)?) {
                            (0.0, 6.0) => Activation::ReLU6,
                            (min, max) => Activation::HardTanh { min, max },
                        }
                    }
                };
                node(own, LayerSpec::Act(act), vec![first.clone()], (None, None));
            }
            "MaxPool" | "AveragePool" => {
                let k = uniform(&ints(n, "kernel_shape"), 0);
                let s = uniform(&ints(n, "strides"), 1);
                let p = uniform(&ints(n, "pads"), 0);
                let (Some(kernel), Some(stride), Some(0)) = (k, s, p) else {
                    return Err(format!(
                        "node {} ({}): kernel_shape and strides must be square and pads 0",
                        n.name, n.op_type
                    ));
                };
                if int(n, "ceil_mode", 0) != 0 {
                    refuse("ceil_mode = 1 is not supported")?;
                }
                let op = if n.op_type == "MaxPool" {
                    LayerSpec::MaxPool2d { kernel, stride }
                } else {
                    LayerSpec::AvgPool2d { kernel, stride }
                };
                node(own, op, vec![first.clone()], (None, None));
            }
            "GlobalAveragePool" => {
                node(
                    own,
                    LayerSpec::GlobalAvgPool,
                    vec![first.clone()],
                    (None, None),
                );
            }
            "Add" => {
                let reads = act_inputs();
                if reads.len() != n.input.len() {
                    refuse(
                        "an Add of an activation and a constant is supported only as the bias of a MatMul right before it",
                    )?;
                }
                node(own, LayerSpec::Add, reads, (None, None));
            }
            "Concat" => {
                if int(n, "axis", 1) != 1 {
                    refuse("axis ≠ 1; nacsim concatenates along channels")?;
                }
                node(own, LayerSpec::Concat, act_inputs(), (None, None));
            }
            "Flatten" => {
                if int(n, "axis", 1) != 1 {
                    refuse("axis ≠ 1; nacsim flattens everything but the batch")?;
                }
                node(own, LayerSpec::Flatten, vec![first.clone()], (None, None));
            }
            "Reshape" => {
                let shape = tensor(n, 1)?.map(|(_, v)| v).unwrap_or_default();
                if !(shape.len() == 2 && (shape[1] == -1.0 || shape[0] == -1.0 || shape[0] == 0.0))
                {
                    refuse(
                        "only a static reshape to [N, F] (a flatten: [N, −1], [0, F] or [−1, F]) is supported",
                    )?;
                }
                node(own, LayerSpec::Flatten, vec![first.clone()], (None, None));
            }
            op => {
                return Err(format!(
                    "node {} uses operator {op}, which nacsim does not import; supported: Gemm, MatMul(+Add), Conv (grouped, rectangular), BatchNormalization, LayerNormalization (last axis), Softmax, Transpose (batch axis fixed), Relu, Sigmoid, Tanh, LeakyRelu, Clip, MaxPool, AveragePool, GlobalAveragePool, Add, Concat, Flatten, Reshape to [N, F], Identity, Dropout",
                    n.name
                ));
            }
        }
        out.last_mut().expect("just pushed").tensor = out_name;
    }
    // Resolve tensor names to node names; names made unique.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for c in &mut out {
        let k = seen.entry(c.name.clone()).or_insert(0);
        *k += 1;
        if *k > 1 || c.name == "input" {
            c.name = format!("{}_{}", c.name, *k);
        }
    }
    let node_of = |t: &str, out: &[Conv]| -> Result<String, String> {
        let mut t = t.to_string();
        for _ in 0..g.node.len() + 1 {
            if t == input.name {
                return Ok("input".into());
            }
            if let Some(c) = out.iter().find(|c| c.tensor == t) {
                return Ok(c.name.clone());
            }
            match alias.get(&t) {
                Some(a) if *a != t => t.clone_from(a),
                _ => break,
            }
        }
        Err(format!("tensor {t} is read but no node computes it"))
    };
    let mut nodes = Vec::with_capacity(out.len());
    for c in &out {
        let reads = c
            .reads
            .iter()
            .map(|t| node_of(t, &out))
            .collect::<Result<Vec<_>, _>>()?;
        nodes.push(NodeSpec {
            name: c.name.clone(),
            op: c.op.clone(),
            inputs: reads,
        });
    }
    let classes = out
        .iter()
        .rev()
        .find_map(|c| match c.op {
            LayerSpec::Dense { out, .. } => Some(out),
            _ => None,
        })
        .ok_or("the graph has no fully connected output layer")?;
    let by_name: HashMap<String, LayerData> = out.into_iter().map(|c| (c.name, c.data)).collect();
    let notes = format!(
        "imported from ONNX ({}, opset {})",
        if m.producer_name.is_empty() {
            "unknown producer"
        } else {
            &m.producer_name
        },
        m.opset_import
            .iter()
            .find(|o| o.domain.is_empty())
            .map_or(0, |o| o.version)
    );
    let chain = nodes.iter().enumerate().all(|(k, nd)| {
        nd.inputs.len() == 1
            && nd.inputs[0]
                == if k == 0 {
                    "input".to_string()
                } else {
                    nodes[k - 1].name.clone()
                }
    });
    let (layers, nodes) = if chain {
        // A chain keeps the form of a `layers` file: parameter layers named, others numbered.
        let layers = nodes
            .into_iter()
            .map(|nd| {
                let mut op = nd.op;
                if let LayerSpec::Dense { name, .. }
                | LayerSpec::Conv2d { name, .. }
                | LayerSpec::BatchNorm2d { name, .. }
                | LayerSpec::LayerNorm { name, .. } = &mut op
                {
                    *name = nd.name;
                }
                op
            })
            .collect();
        (layers, Vec::new())
    } else {
        (Vec::new(), nodes)
    };
    Ok((
        NetworkSpec {
            schema_version: 1,
            name: name.to_string(),
            input: shape,
            classes,
            layers,
            nodes,
            weights: String::new(),
            notes,
            trained_for: Default::default(),
        },
        by_name,
    ))
}
