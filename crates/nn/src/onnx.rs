//! ONNX import: a model exported by `torch.onnx.export` (or any exporter writing the same
//! operators) read into nacsim's network IR and float parameters.
//!
//! # What is read
//!
//! The graph must be a **chain**: every node reads the previous node's output (and
//! initializers), as a PyTorch `nn.Sequential` exports. Branching graphs (residual `Add`,
//! `Concat`) need the graph IR of a later step and are refused naming the node.
//!
//! | ONNX operator | nacsim layer | conditions (else refused with the node's name) |
//! |---|---|---|
//! | `Gemm` | `Dense` | `alpha = beta = 1`, `transA = 0`; `transB` either way; bias optional |
//! | `MatMul` (+ `Add` of a `[out]` initializer) | `Dense` | the weight is an initializer `[in, out]` |
//! | `Conv` | `Conv2d` | square kernel, equal strides, one padding on all sides, dilation 1, `group = 1` |
//! | `Relu`, `Sigmoid`, `Tanh`, `LeakyRelu`, `Clip` | `Act(…)` | `Clip` bounds from initializers (`HardTanh`; `Clip(0, 6)` is ReLU6) |
//! | `MaxPool`, `AveragePool` | `MaxPool2d`, `AvgPool2d` | square kernel, equal strides, no padding, no ceil mode |
//! | `Flatten` (`axis = 1`), `Reshape` to `[N, −1]` | `Flatten` | |
//! | `Identity`, `Dropout` | — | skipped (the identity at inference) |
//!
//! Weights come from the graph's initializers (float32, `raw_data` or `float_data`); a layer's
//! name is its weight's initializer name without `.weight` (`fc1`, `conv2`), as PyTorch names
//! them, else the node's name. The input shape is the graph input's `[N, C, H, W]` (or
//! `[N, F]`, read as `F × 1 × 1`), the classes the last layer's outputs.
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

use crate::model::{Model, ModelError, Param};
use crate::network::{Activation, LayerSpec, NetworkSpec, Shape};

/// `ModelProto` (subset).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// IR version.
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// Operator sets the model uses.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// The producing tool.
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// The graph.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
}

/// `OperatorSetIdProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// Domain (`""` is the default ONNX domain).
    #[prost(string, tag = "1")]
    pub domain: String,
    /// Opset version.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `GraphProto` (subset).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// Nodes in topological order.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// Graph name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Constant tensors (the weights).
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// Graph inputs (may list initializers too, in old IR versions).
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// Graph outputs.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// `NodeProto` (subset).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// Input value names.
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// Output value names.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// Node name.
    #[prost(string, tag = "3")]
    pub name: String,
    /// Operator.
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// Attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    /// Operator domain.
    #[prost(string, tag = "7")]
    pub domain: String,
}

/// `AttributeProto` (the scalar and list forms nacsim reads).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// Attribute name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// A float value.
    #[prost(float, tag = "2")]
    pub f: f32,
    /// An integer value.
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// A byte-string value.
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    /// A tensor value.
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// A list of floats.
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    /// A list of integers.
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
    /// Which field holds the value (`AttributeType`).
    #[prost(int32, tag = "20")]
    pub r#type: i32,
}

/// `TensorProto` (subset).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Dimensions.
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    /// Element type (`1` = float32, `7` = int64).
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// Float elements (when not in `raw_data`).
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    /// Int64 elements (when not in `raw_data`).
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    /// Name.
    #[prost(string, tag = "8")]
    pub name: String,
    /// Elements as little-endian bytes.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    /// Where the data are (`1` = an external file, not supported).
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

/// `ValueInfoProto` (subset).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// Value name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its type.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// `TypeProto` (tensor types only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// A tensor type.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TensorTypeProto>,
}

/// `TypeProto.Tensor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorTypeProto {
    /// Element type.
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    /// Shape.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// `TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// Dimensions.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `TensorShapeProto.Dimension`: a size or a symbolic name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    /// A fixed size (0 when symbolic).
    #[prost(int64, tag = "1")]
    pub dim_value: i64,
    /// A symbolic name (`batch`).
    #[prost(string, tag = "2")]
    pub dim_param: String,
}

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

/// Read an ONNX file into a [`Model`].
///
/// # Errors
/// [`ModelError::Onnx`] naming the file and, for an unsupported graph, the node, its operator
/// and what nacsim can read instead (see the module table).
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
    let (spec, params) = convert(&m, &name).map_err(err)?;
    let layers = spec.resolve().map_err(|source| ModelError::Topology {
        path: path.to_path_buf(),
        source,
    })?;
    for (l, p) in layers.iter().zip(&params) {
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
    }
    let params = params.into_iter().collect();
    let stats = crate::graph::init_stats(&layers);
    Ok(Model {
        spec,
        layers,
        params,
        stats,
    })
}

/// The chain of `m`'s graph as a network spec and one parameter entry per layer.
fn convert(m: &ModelProto, name: &str) -> Result<(NetworkSpec, Vec<Option<Param>>), String> {
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
    let mut layers = Vec::new();
    let mut params: Vec<Option<Param>> = Vec::new();
    let mut current = input.name.clone();
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
    let layer_name = |n: &NodeProto, w: &TensorProto| {
        w.name.strip_suffix(".weight").map_or_else(
            || n.name.trim_matches('/').replace('/', "_"),
            str::to_string,
        )
    };
    let mut i = 0;
    while i < g.node.len() {
        let n = &g.node[i];
        i += 1;
        if n.input.first() != Some(&current) {
            return Err(format!(
                "node {} ({}) reads {:?}, not the previous output {current}: nacsim imports chains only (branches such as residual Add or Concat are not supported yet)",
                n.name,
                n.op_type,
                n.input.first()
            ));
        }
        let [out] = n.output.as_slice() else {
            if n.op_type == "Dropout" && !n.output.is_empty() {
                current.clone_from(&n.output[0]);
                continue;
            }
            return Err(format!(
                "node {} ({}) has {} outputs; nacsim reads single-output nodes",
                n.name,
                n.op_type,
                n.output.len()
            ));
        };
        let refuse =
            |what: &str| Err::<(), String>(format!("node {} ({}): {what}", n.name, n.op_type));
        match n.op_type.as_str() {
            "Identity" | "Dropout" => {}
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
                let mut output = out.clone();
                // MatMul + Add(bias): the Add is this layer's bias.
                if !gemm
                    && let Some(next) = g.node.get(i)
                    && next.op_type == "Add"
                    && next.input.first() == Some(out)
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
                layers.push(LayerSpec::Dense {
                    out: outs,
                    bias: bias.is_some(),
                    name: layer_name(n, wt),
                });
                params.push(Some(Param { weight, bias }));
                current = output;
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
                if kh != kw {
                    refuse(
                        "the kernel is not square (rectangular kernels come with the graph IR)",
                    )?;
                }
                let stride = uniform(&ints(n, "strides"), 1);
                let padding = uniform(&ints(n, "pads"), 0);
                let dilation = uniform(&ints(n, "dilations"), 1);
                if int(n, "group", 1) != 1 {
                    refuse(
                        "group ≠ 1 (grouped and depthwise convolutions come with the graph IR)",
                    )?;
                }
                let auto = attr(n, "auto_pad").map(|a| a.s.clone()).unwrap_or_default();
                if !(auto.is_empty() || auto == b"NOTSET") {
                    refuse("auto_pad is set; export with explicit pads")?;
                }
                let (Some(stride), Some(padding), Some(1)) = (stride, padding, dilation) else {
                    return Err(format!(
                        "node {} (Conv): strides, pads and dilations must be the same on every axis and side, dilation 1",
                        n.name
                    ));
                };
                let (o, fan_in) = (*o as usize, (*c * *kh * *kw) as usize);
                let weight = Array2::from_shape_vec((o, fan_in), w).map_err(|e| e.to_string())?;
                let bias = tensor(n, 2)?.map(|(_, b)| Array1::from(b));
                layers.push(LayerSpec::Conv2d {
                    out_channels: o,
                    kernel: (*kh as usize).into(),
                    stride: stride.into(),
                    padding: padding.into(),
                    groups: 1,
                    bias: bias.is_some(),
                    name: layer_name(n, wt),
                });
                params.push(Some(Param { weight, bias }));
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
                        Activation::HardTanh {
                            min: bound(1, f32::MIN)?,
                            max: bound(2, f32::MAX)?,
                        }
                    }
                };
                layers.push(LayerSpec::Act(act));
                params.push(None);
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
                layers.push(if n.op_type == "MaxPool" {
                    LayerSpec::MaxPool2d { kernel, stride }
                } else {
                    LayerSpec::AvgPool2d { kernel, stride }
                });
                params.push(None);
            }
            "Flatten" => {
                if int(n, "axis", 1) != 1 {
                    refuse("axis ≠ 1; nacsim flattens everything but the batch")?;
                }
                layers.push(LayerSpec::Flatten);
                params.push(None);
            }
            "Reshape" => {
                let shape = tensor(n, 1)?.map(|(_, v)| v).unwrap_or_default();
                if !(shape.len() == 2 && shape[1] == -1.0) {
                    refuse("only a reshape to [N, −1] (a flatten) is supported")?;
                }
                layers.push(LayerSpec::Flatten);
                params.push(None);
            }
            op => {
                return Err(format!(
                    "node {} uses operator {op}, which nacsim does not import; supported: Gemm, MatMul(+Add), Conv, Relu, Sigmoid, Tanh, LeakyRelu, Clip, MaxPool, AveragePool, Flatten, Reshape to [N, -1], Identity, Dropout",
                    n.name
                ));
            }
        }
        current.clone_from(out);
    }
    let classes = layers
        .iter()
        .rev()
        .find_map(|l| match l {
            LayerSpec::Dense { out, .. } => Some(*out),
            _ => None,
        })
        .ok_or("the graph has no fully connected output layer")?;
    let spec = NetworkSpec {
        schema_version: 1,
        name: name.to_string(),
        input: shape,
        classes,
        layers,
        nodes: Vec::new(),
        weights: String::new(),
        notes: format!(
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
        ),
        trained_for: Default::default(),
    };
    Ok((spec, params))
}
