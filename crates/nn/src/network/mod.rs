//! Network IR: the topology of a feed-forward network as written in a RON file, and the float
//! parameters that go with it.
//!
//! A network is either a list of layers applied in order (`layers: [...]`, a chain) or a graph
//! (`nodes: [...]`): named nodes, each with an op and named `inputs` (default: the node before it;
//! `"input"` names the network input), resolved in topological order ([`NetworkSpec::resolve`]).
//! The network output is the last node of the file; every node must feed it. A chain resolves to
//! exactly the graph whose node `i` reads node `i − 1`, and the float and int8 passes run a chain
//! by the same sequential code as before graphs existed.
//!
//! The input has shape `(channels, height, width)`.
//! Activations flow between layers as 2-D batches `[batch, features]`, where the features of a
//! spatial tensor are stored channel-major (`c·H·W + y·W + x`), exactly as PyTorch's
//! `Tensor.flatten(1)` lays out an NCHW tensor. So a `Flatten` layer moves no data; it only changes
//! the shape that the next layer sees.
//!
//! Parameter names follow PyTorch's convention for a `nn.Sequential`-free model with named
//! attributes: the k-th `Dense` layer is `fc{k}` and the k-th `Conv2d` is `conv{k}` (both counted
//! from 1), unless the layer gives its own `name`. Weights are `"{name}.weight"` (`[out, in]` for
//! Dense, `[out, in / groups, kh, kw]` for Conv2d) and biases `"{name}.bias"`. The k-th
//! `BatchNorm2d` is `bn{k}`, with `"{name}.weight"` (γ), `"{name}.bias"` (β),
//! `"{name}.running_mean"` and `"{name}.running_var"`, all `[channels]`, as PyTorch names them.
//! The k-th `LayerNorm` is `ln{k}`, with `"{name}.weight"` (γ) and `"{name}.bias"` (β), each as
//! long as its normalised axis.

use serde::{Deserialize, Serialize};

/// Shape of one sample: channels, height, width. A flat vector of `n` features is `(n, 1, 1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shape {
    /// Channels (C).
    pub c: usize,
    /// Height in pixels (H).
    pub h: usize,
    /// Width in pixels (W).
    pub w: usize,
}

impl Shape {
    /// A spatial shape `(c, h, w)`.
    pub const fn new(c: usize, h: usize, w: usize) -> Self {
        Self { c, h, w }
    }
    /// A flat feature vector of length `n`, shape `(n, 1, 1)`.
    pub const fn flat(n: usize) -> Self {
        Self { c: n, h: 1, w: 1 }
    }
    /// Number of scalar features, `c·h·w`.
    pub const fn len(&self) -> usize {
        self.c * self.h * self.w
    }
    /// True when the shape holds no features.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `c·h·w`, or `None` when the product overflows `usize` (a shape no machine can hold).
    pub const fn checked_len(&self) -> Option<usize> {
        match self.c.checked_mul(self.h) {
            Some(ch) => ch.checked_mul(self.w),
            None => None,
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.h == 1 && self.w == 1 {
            write!(f, "{}", self.c)
        } else {
            write!(f, "{}x{}x{}", self.c, self.h, self.w)
        }
    }
}

/// Element-wise activation functions. Each has a float forward and derivative in
/// [`crate::forward`]; the constants of SELU are those of Klambauer et al., NeurIPS 2017.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Activation {
    /// max(0, x).
    ReLU,
    /// x for x > 0, `alpha`·x otherwise (PyTorch default alpha = 0.01).
    LeakyReLU {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// clamp(x, min, max) (PyTorch default −1, 1).
    HardTanh {
        /// Lower rail.
        min: f32,
        /// Upper rail.
        max: f32,
    },
    /// tanh(x).
    Tanh,
    /// 1 / (1 + e^−x).
    Sigmoid,
    /// x for x > 0, `alpha`·(e^x − 1) otherwise (PyTorch default alpha = 1).
    Elu {
        /// Scale of the negative branch.
        alpha: f32,
    },
    /// λ·ELU(x, α) with λ = 1.0507009873554805, α = 1.6732632423543772 (Klambauer et al. 2017).
    Selu,
    /// Rectified sine, variant (A) of the sine engine's note (`docs/engines/notes/sine.md` §1.5):
    /// 0 for x ≤ 0, sin x on (0, π/2), 1 for x ≥ π/2 (x in radians); derivative cos x inside,
    /// 0 outside and at the kinks. Its output is exactly the sine of the angle clamp(x, 0, π/2),
    /// which the sine engine's next product consumes.
    RectSine,
    /// clamp(x, 0, 6) (PyTorch `nn.ReLU6`, MobileNet's activation); derivative 1 inside, 0 at
    /// and beyond the rails. A general clip is [`Activation::HardTanh`].
    ReLU6,
}

/// Largest magnitude accepted for an activation parameter (slopes, rails, ELU scale): beyond it
/// the float pass overflows f32 on ordinary inputs.
pub const ACT_PARAM_MAX: f32 = 1e6;

impl Activation {
    /// The first parameter that is not finite or exceeds [`ACT_PARAM_MAX`] in magnitude, as
    /// `(field path within the layer, value)`.
    pub fn bad_parameter(&self) -> Option<(&'static str, f32)> {
        let params: &[(&'static str, f32)] = match self {
            Activation::LeakyReLU { alpha } => &[("LeakyReLU.alpha", *alpha)],
            Activation::Elu { alpha } => &[("Elu.alpha", *alpha)],
            Activation::HardTanh { min, max } => &[("HardTanh.min", *min), ("HardTanh.max", *max)],
            _ => &[],
        };
        params
            .iter()
            .copied()
            .find(|(_, v)| !(v.is_finite() && v.abs() <= ACT_PARAM_MAX))
    }
}

/// One layer of a network as written in RON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum LayerSpec {
    /// Fully connected layer `y = W·x + b`, `W` is `[out, in]`.
    Dense {
        /// Output features.
        out: usize,
        /// Whether the layer has a bias (default true).
        #[serde(default = "default_true")]
        bias: bool,
        /// Parameter name prefix; empty means `fc{k}` for the k-th Dense layer.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        name: String,
    },
    /// 2-D convolution (cross-correlation, as PyTorch), zero padding. `kernel`, `stride` and
    /// `padding` are each a number (both axes) or a pair `(h, w)`.
    Conv2d {
        /// Output channels.
        out_channels: usize,
        /// Kernel size in pixels, `3` or `(3, 1)`.
        kernel: Hw,
        /// Stride in pixels (default 1).
        #[serde(default = "Hw::one")]
        stride: Hw,
        /// Zero padding on each side in pixels (default 0).
        #[serde(default)]
        padding: Hw,
        /// Channel groups (default 1): each group of `in / groups` input channels feeds its own
        /// `out / groups` outputs; `groups = in_channels` is a depthwise convolution.
        #[serde(default = "default_one", skip_serializing_if = "is_one")]
        groups: usize,
        /// Whether the layer has a bias (default true).
        #[serde(default = "default_true")]
        bias: bool,
        /// Parameter name prefix; empty means `conv{k}` for the k-th Conv2d layer.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        name: String,
    },
    /// Max pooling over square windows, no padding.
    MaxPool2d {
        /// Window side in pixels.
        kernel: usize,
        /// Stride in pixels.
        stride: usize,
    },
    /// Average pooling over square windows, no padding.
    AvgPool2d {
        /// Window side in pixels.
        kernel: usize,
        /// Stride in pixels.
        stride: usize,
    },
    /// Reinterpret `(c, h, w)` as `(c·h·w, 1, 1)`; moves no data.
    Flatten,
    /// An element-wise activation.
    Act(Activation),
    /// Batch normalisation per channel (PyTorch `nn.BatchNorm2d`; on a flat input, per feature):
    /// `y = γ·(x − μ)/√(σ² + eps) + β`. Float training normalises by the batch statistics and
    /// updates the running ones, `r ← (1 − momentum)·r + momentum·batch` (unbiased variance, as
    /// PyTorch); inference uses the running statistics. Folded into the product before it at
    /// quantization.
    BatchNorm2d {
        /// Added to the variance (PyTorch default 1e-5).
        #[serde(default = "default_eps")]
        eps: f32,
        /// Weight of the batch statistic in the running average (PyTorch default 0.1).
        #[serde(default = "default_momentum")]
        momentum: f32,
        /// Parameter name prefix; empty means `bn{k}` for the k-th BatchNorm2d layer.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        name: String,
    },
    /// Mean over each channel's pixels: `(c, h, w)` → `(c, 1, 1)`.
    GlobalAvgPool,
    /// Dropout with drop probability `p`: identity at inference; in training each value is
    /// zeroed with probability `p` and the rest scaled by `1/(1 − p)`, the mask a pure function
    /// of `(seed, step, layer, element)` (keyed stream, purpose `Dropout`).
    Dropout {
        /// Drop probability in `[0, 1)`.
        p: f32,
    },
    /// Element-wise sum of two or more inputs of the same shape (a residual connection).
    Add,
    /// Concatenation of two or more inputs along the channel axis (same height and width).
    Concat,
    /// Product of two activations, per channel: `a (c, m, k) · b (c, k, n) → (c, m, n)`, or with
    /// `transpose_b`, `b (c, n, k)` (attention scores `Q·Kᵀ`). No parameters. Network files
    /// may write it bare, `MatMul`, like the unit kinds (see [`bare_ops`]), or `MatMul()`.
    MatMul {
        /// Read the second input transposed (default false).
        #[serde(default)]
        transpose_b: bool,
    },
    /// Softmax over one axis (default `W`, the last): `y = e^(x − max)/Σ e^(x − max)` along
    /// `axis` at every position of the other two (the max subtracted for numerical
    /// stability, as PyTorch). No parameters; written bare (`Softmax`) or `Softmax(axis: H)`.
    Softmax {
        /// The axis the probabilities sum to 1 along (default `W`).
        #[serde(default = "axis_w")]
        axis: TensorAxis,
    },
    /// Layer normalisation (PyTorch `nn.LayerNorm` over one axis): at every position of the
    /// other two axes, `y = γ·(x − μ)/√(σ² + eps) + β` with the mean μ and biased variance σ²
    /// along `axis` (default `C`: a token's features are its channels, the `(d, T, 1)` layout
    /// of [`TensorAxis`]); γ and β are learned, one per element of the axis
    /// (`"{name}.weight"`, `"{name}.bias"`, initialised to 1 and 0). Batch-independent: the
    /// same in training and inference. Written bare (`LayerNorm`) or with fields.
    LayerNorm {
        /// The normalised axis (default `C`).
        #[serde(default = "axis_c")]
        axis: TensorAxis,
        /// Added to the variance (PyTorch default 1e-5).
        #[serde(default = "default_eps")]
        eps: f32,
        /// Parameter name prefix; empty means `ln{k}` for the k-th LayerNorm layer.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        name: String,
    },
    /// Swap two axes of the `(c, h, w)` tensor, e.g. `Transpose(a: C, b: W)` turns per-token
    /// features on channels `(d, T, 1)` into a `(1, T, d)` matrix. Moves data, no arithmetic.
    Transpose {
        /// One axis.
        a: TensorAxis,
        /// The other (must differ from `a`).
        b: TensorAxis,
    },
}

/// One axis of a sample's `(c, h, w)` tensor, as the attention ops name it (`C`, `H`, `W`).
///
/// Tokens in this IR: a sequence of `T` tokens of `d` features is either `(d, T, 1)` — features
/// on channels, the layout a per-token Conv2d (a `(1, d_in)` kernel over `(1, T, d_in)`, or a
/// 1×1 kernel) produces — or `(1, T, d)` — one matrix per channel, the layout the per-channel
/// [`LayerSpec::MatMul`] multiplies (attention scores `Q·Kᵀ`, `P·V`). [`LayerSpec::Transpose`]
/// of `C` and `W` moves between the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TensorAxis {
    /// Channels.
    C,
    /// Height (rows).
    H,
    /// Width (columns), the last axis.
    W,
}

impl TensorAxis {
    /// The axis' position in `(c, h, w)`: 0, 1 or 2.
    pub const fn index(self) -> usize {
        match self {
            TensorAxis::C => 0,
            TensorAxis::H => 1,
            TensorAxis::W => 2,
        }
    }
    /// The axis' length in `s`.
    pub const fn len_in(self, s: Shape) -> usize {
        match self {
            TensorAxis::C => s.c,
            TensorAxis::H => s.h,
            TensorAxis::W => s.w,
        }
    }
}

impl std::fmt::Display for TensorAxis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TensorAxis::C => "C",
            TensorAxis::H => "H",
            TensorAxis::W => "W",
        })
    }
}

fn axis_w() -> TensorAxis {
    TensorAxis::W
}
fn axis_c() -> TensorAxis {
    TensorAxis::C
}

impl LayerSpec {
    /// How many inputs the op reads: `(least, most)`.
    pub const fn arity(&self) -> (usize, usize) {
        match self {
            LayerSpec::Add | LayerSpec::Concat => (2, usize::MAX),
            LayerSpec::MatMul { .. } => (2, 2),
            _ => (1, 1),
        }
    }
}

/// A pair of pixel counts `(h, w)`: a Conv2d kernel, stride or padding. Written as one number
/// for both axes (`3`) or as a pair (`(3, 1)`); a square value is written back as one number,
/// so files that gave numbers round-trip unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Hw {
    /// Along the height (rows).
    pub h: usize,
    /// Along the width (columns).
    pub w: usize,
}

impl Hw {
    /// `(n, n)`.
    pub const fn square(n: usize) -> Self {
        Self { h: n, w: n }
    }
    /// `(h, w)`.
    pub const fn new(h: usize, w: usize) -> Self {
        Self { h, w }
    }
    /// `(1, 1)`, the default stride.
    pub const fn one() -> Self {
        Self::square(1)
    }
    /// The side when both axes are equal.
    pub const fn as_square(&self) -> Option<usize> {
        if self.h == self.w { Some(self.h) } else { None }
    }
    /// `h · w`.
    pub const fn area(&self) -> usize {
        self.h * self.w
    }
}

impl From<usize> for Hw {
    fn from(n: usize) -> Self {
        Self::square(n)
    }
}

impl std::fmt::Display for Hw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_square() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "({}, {})", self.h, self.w),
        }
    }
}

impl Serialize for Hw {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        match self.as_square() {
            Some(n) => s.serialize_u64(n as u64),
            None => {
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element(&self.h)?;
                t.serialize_element(&self.w)?;
                t.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Hw {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Hw;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a pixel count such as 3, or a pair (h, w) such as (3, 1)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Hw, E> {
                usize::try_from(v)
                    .map(Hw::square)
                    .map_err(|_| E::custom(format!("{v} does not fit a pixel count")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Hw, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("{v}: a pixel count cannot be negative")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Hw, A::Error> {
                let h: usize = a
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                let w: usize = a
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(1, &self))?;
                if a.next_element::<usize>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(3, &self));
                }
                Ok(Hw::new(h, w))
            }
        }
        d.deserialize_any(V)
    }
}

/// One node of a graph network (`nodes: [...]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique name; also the parameter name prefix of a Dense, Conv2d or BatchNorm2d node.
    pub name: String,
    /// What the node computes.
    pub op: LayerSpec,
    /// Names of the nodes it reads, in order (`"input"`: the network input); empty means the
    /// node before it in the file (the network input for the first node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
}

fn default_true() -> bool {
    true
}
fn default_one() -> usize {
    1
}
fn is_one(v: &usize) -> bool {
    *v == 1
}
fn default_eps() -> f32 {
    1e-5
}
fn default_momentum() -> f32 {
    0.1
}

/// A network file (`models/networks/*.ron`): topology and, optionally, where its weights are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// File format version; must be 1.
    pub schema_version: u32,
    /// Human-readable name.
    pub name: String,
    /// Shape of one input sample.
    pub input: Shape,
    /// Number of classes the last layer scores (its output length must equal this).
    pub classes: usize,
    /// Layers in order (a chain); empty when the file gives `nodes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerSpec>,
    /// Nodes of a graph network (see the module doc); empty for a chain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeSpec>,
    /// Safetensors file with the trained weights, relative to the RON file; empty for a
    /// topology-only description.
    #[serde(default)]
    pub weights: String,
    /// Free text: how the weights were made (training config, seed, accuracy).
    #[serde(default)]
    pub notes: String,
    /// What hardware the weights were trained for, as `key: value` pairs that `nacsim train`
    /// writes and each engine reads with its own types, e.g. `"sine.input": "Arcsin"` or
    /// `"circulant.block": "16"` (default: empty, nothing recorded). A design whose engine
    /// disagrees with a recorded value runs the network with a warning naming both.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub trained_for: std::collections::BTreeMap<String, String>,
}

/// A layer (graph node) with its shapes resolved and its parameter name assigned.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedLayer {
    /// The layer as written.
    pub spec: LayerSpec,
    /// Parameter name prefix (`fc1`, `conv2`, ...) for layers with parameters, else a
    /// descriptive name such as `relu3` or `pool1` (a graph node's own name).
    pub name: String,
    /// Input shape of one sample (the first input's, for Add, Concat and MatMul).
    pub input: Shape,
    /// Output shape of one sample.
    pub output: Shape,
    /// What the node reads, in order: `Some(j)` is the output of resolved layer `j < self`,
    /// `None` the network input. A chain's layer `i` reads `[Some(i − 1)]` (`[None]` for the
    /// first).
    pub inputs: Vec<Option<usize>>,
}

/// True when `layers` is a chain: layer `i` reads exactly layer `i − 1` (the first reads the
/// network input). The float and int8 passes run a chain by their sequential code.
pub fn is_chain(layers: &[ResolvedLayer]) -> bool {
    layers
        .iter()
        .enumerate()
        .all(|(i, l)| l.inputs.len() == 1 && l.inputs[0] == i.checked_sub(1))
}

impl ResolvedLayer {
    /// Shape of the weight tensor in PyTorch order, or `None` for a layer without parameters
    /// (`[channels]`, γ, for BatchNorm2d; `[axis length]`, γ, for LayerNorm).
    pub fn weight_shape(&self) -> Option<Vec<usize>> {
        match &self.spec {
            LayerSpec::Dense { out, .. } => Some(vec![*out, self.input.len()]),
            LayerSpec::Conv2d {
                out_channels,
                kernel,
                groups,
                ..
            } => Some(vec![
                *out_channels,
                self.input.c / (*groups).max(1),
                kernel.h,
                kernel.w,
            ]),
            LayerSpec::BatchNorm2d { .. } => Some(vec![self.input.c]),
            LayerSpec::LayerNorm { axis, .. } => Some(vec![axis.len_in(self.input)]),
            _ => None,
        }
    }
    /// Length of the bias vector (β for BatchNorm2d and LayerNorm), or `None` when the layer
    /// has none.
    pub fn bias_len(&self) -> Option<usize> {
        match &self.spec {
            LayerSpec::Dense {
                out, bias: true, ..
            } => Some(*out),
            LayerSpec::Conv2d {
                out_channels,
                bias: true,
                ..
            } => Some(*out_channels),
            LayerSpec::BatchNorm2d { .. } => Some(self.input.c),
            LayerSpec::LayerNorm { axis, .. } => Some(axis.len_in(self.input)),
            _ => None,
        }
    }
    /// Multiply-accumulate operations per sample (0 for layers without products).
    pub fn macs(&self) -> u64 {
        match &self.spec {
            LayerSpec::Dense { out, .. } => (*out * self.input.len()) as u64,
            LayerSpec::Conv2d { kernel, groups, .. } => {
                (self.output.len() * (self.input.c / (*groups).max(1)) * kernel.area()) as u64
            }
            LayerSpec::MatMul { transpose_b, .. } => {
                let _ = transpose_b; // a (c, m, k): k is a's width either way
                (self.output.len() * self.input.w) as u64
            }
            _ => 0,
        }
    }
    /// True for layers with trained parameters: Dense, Conv2d, BatchNorm2d and LayerNorm.
    pub fn has_params(&self) -> bool {
        self.weight_shape().is_some()
    }
    /// True for Dense and Conv2d: the layers whose weights are a product's.
    pub fn has_product(&self) -> bool {
        matches!(
            self.spec,
            LayerSpec::Dense { .. } | LayerSpec::Conv2d { .. }
        )
    }
}

/// What the float passes of resolved layers hold in memory, in bytes (f32 values, 4 bytes
/// each); sums saturate at `u64::MAX`. For the memory guard ([`nacsim_core::memory`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Weights and biases, once.
    pub params: u64,
    /// The largest single layer step over the batch: its input, output and (Conv2d) im2col
    /// matrix together (inference keeps no more at once).
    pub activations_peak: u64,
    /// Every layer's input, output and im2col matrix over the batch (a training step caches
    /// them all for the backward pass).
    pub activations_all: u64,
}

/// The [`Footprint`] of `layers` for a batch of `batch` samples.
pub fn footprint(layers: &[ResolvedLayer], batch: usize) -> Footprint {
    let b = batch as u64;
    let f32s = |n: u64| n.saturating_mul(4);
    let mut fp = Footprint::default();
    for l in layers {
        let weights = l.weight_shape().map_or(0u64, |s| {
            s.iter().fold(1u64, |a, &d| a.saturating_mul(d as u64))
        });
        let bias = l.bias_len().unwrap_or(0) as u64;
        fp.params = fp.params.saturating_add(f32s(weights.saturating_add(bias)));
        let im2col = match &l.spec {
            LayerSpec::Conv2d { kernel, groups, .. } => (l.output.h as u64)
                .saturating_mul(l.output.w as u64)
                .saturating_mul((l.input.c / (*groups).max(1)) as u64)
                .saturating_mul(kernel.area() as u64),
            _ => 0,
        };
        let step = f32s(
            (l.input.len() as u64)
                .saturating_mul(l.inputs.len().max(1) as u64)
                .saturating_add(l.output.len() as u64)
                .saturating_add(im2col)
                .saturating_mul(b),
        );
        fp.activations_peak = fp.activations_peak.max(step);
        fp.activations_all = fp.activations_all.saturating_add(step);
    }
    fp
}

/// Why a topology is impossible.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// `schema_version` is not 1.
    #[error("schema_version = {0}: must be 1")]
    SchemaVersion(u32),
    /// A layer parameter is zero or otherwise out of range.
    #[error("layers[{index}].{field} = {value}: {rule}")]
    BadParam {
        /// Layer index.
        index: usize,
        /// Field name.
        field: &'static str,
        /// Value given.
        value: String,
        /// The rule it breaks.
        rule: String,
    },
    /// The last layer's output does not match `classes`.
    #[error("classes = {classes}: the last layer outputs {got} features; make them equal")]
    Classes {
        /// Declared classes.
        classes: usize,
        /// Output features of the network.
        got: usize,
    },
    /// The input shape is empty or too large to count.
    #[error("input = {value}: {rule}")]
    Input {
        /// The shape as written.
        value: String,
        /// The rule it breaks.
        rule: String,
    },
    /// Two layers share a parameter name.
    #[error("layers[{index}].name = {name:?}: name already used by an earlier layer")]
    DuplicateName {
        /// Layer index.
        index: usize,
        /// The name.
        name: String,
    },
    /// A node parameter of a graph network is out of range.
    #[error("nodes[{index}] ({node:?}): op.{field} = {value}: {rule}")]
    NodeParam {
        /// Node index in the file.
        index: usize,
        /// Node name.
        node: String,
        /// Field name within the op.
        field: &'static str,
        /// Value given.
        value: String,
        /// The rule it breaks.
        rule: String,
    },
    /// A graph network's wiring is wrong: an unknown or missing input, a cycle, inputs whose
    /// shapes do not fit the op, a node that does not feed the output, a repeated name.
    #[error("nodes[{index}] ({node:?}): {rule}")]
    Graph {
        /// Node index in the file.
        index: usize,
        /// Node name.
        node: String,
        /// What is wrong, naming the inputs and their shapes, and the fix.
        rule: String,
    },
    /// The file gives both `layers` and `nodes`, or neither.
    #[error("layers / nodes: {0}")]
    Layout(String),
}

impl TopologyError {
    /// The error as a config [`FieldError`](nacsim_core::config::FieldError) (dotted field path,
    /// value, rule), for messages of the form `<file>: <path> = <value>: <rule>`.
    pub fn to_field_error(&self) -> nacsim_core::config::FieldError {
        use nacsim_core::config::FieldError;
        match self {
            TopologyError::SchemaVersion(v) => FieldError::new("schema_version", v, "must be 1"),
            TopologyError::BadParam {
                index,
                field,
                value,
                rule,
            } => FieldError::new(format!("layers[{index}].{field}"), value, rule.clone()),
            TopologyError::Classes { classes, got } => FieldError::new(
                "classes",
                classes,
                format!("the last layer outputs {got} features; make them equal"),
            ),
            TopologyError::Input { value, rule } => FieldError::new("input", value, rule.clone()),
            TopologyError::DuplicateName { index, name } => FieldError::new(
                format!("layers[{index}].name"),
                format!("{name:?}"),
                "name already used by an earlier layer",
            ),
            TopologyError::NodeParam {
                index,
                node,
                field,
                value,
                rule,
            } => FieldError::new(
                format!("nodes[{index}].op.{field}"),
                value,
                format!("(node {node:?}) {rule}"),
            ),
            TopologyError::Graph { index, node, rule } => {
                FieldError::new(format!("nodes[{index}]"), format!("{node:?}"), rule.clone())
            }
            TopologyError::Layout(rule) => FieldError::new("layers", "[...]", rule.clone()),
        }
    }
}

impl nacsim_core::config::Validate for NetworkSpec {
    fn validate(&self) -> Result<(), Vec<nacsim_core::config::FieldError>> {
        self.resolve()
            .map(|_| ())
            .map_err(|e| vec![e.to_field_error()])
    }
}

mod bare;
mod resolve;
#[cfg(test)]
mod tests;

pub use bare::{BARE_OPS, bare_ops};
