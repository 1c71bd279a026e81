//! Network IR: the topology of a feed-forward network as written in a RON file, and the float
//! parameters that go with it.
//!
//! A network is a list of layers applied in order to an input of shape `(channels, height, width)`.
//! Activations flow between layers as 2-D batches `[batch, features]`, where the features of a
//! spatial tensor are stored channel-major (`c·H·W + y·W + x`), exactly as PyTorch's
//! `Tensor.flatten(1)` lays out an NCHW tensor. So a `Flatten` layer moves no data; it only changes
//! the shape that the next layer sees.
//!
//! Parameter names follow PyTorch's convention for a `nn.Sequential`-free model with named
//! attributes: the k-th `Dense` layer is `fc{k}` and the k-th `Conv2d` is `conv{k}` (both counted
//! from 1), unless the layer gives its own `name`. Weights are `"{name}.weight"` (`[out, in]` for
//! Dense, `[out, in, kh, kw]` for Conv2d) and biases `"{name}.bias"`.

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
    /// 2-D convolution (cross-correlation, as PyTorch), square kernel, zero padding.
    Conv2d {
        /// Output channels.
        out_channels: usize,
        /// Kernel side in pixels.
        kernel: usize,
        /// Stride in pixels (default 1).
        #[serde(default = "default_one")]
        stride: usize,
        /// Zero padding on each side in pixels (default 0).
        #[serde(default)]
        padding: usize,
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
}

fn default_true() -> bool {
    true
}
fn default_one() -> usize {
    1
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
    /// Layers in order.
    pub layers: Vec<LayerSpec>,
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

/// A layer with its shapes resolved and its parameter name assigned.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedLayer {
    /// The layer as written.
    pub spec: LayerSpec,
    /// Parameter name prefix (`fc1`, `conv2`, ...) for layers with parameters, else a
    /// descriptive name such as `relu3` or `pool1`.
    pub name: String,
    /// Input shape of one sample.
    pub input: Shape,
    /// Output shape of one sample.
    pub output: Shape,
}

impl ResolvedLayer {
    /// Shape of the weight tensor in PyTorch order, or `None` for a layer without parameters.
    pub fn weight_shape(&self) -> Option<Vec<usize>> {
        match &self.spec {
            LayerSpec::Dense { out, .. } => Some(vec![*out, self.input.len()]),
            LayerSpec::Conv2d {
                out_channels,
                kernel,
                ..
            } => Some(vec![*out_channels, self.input.c, *kernel, *kernel]),
            _ => None,
        }
    }
    /// Length of the bias vector, or `None` when the layer has none.
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
            _ => None,
        }
    }
    /// Multiply-accumulate operations per sample (0 for layers without products).
    pub fn macs(&self) -> u64 {
        match &self.spec {
            LayerSpec::Dense { out, .. } => (*out * self.input.len()) as u64,
            LayerSpec::Conv2d { kernel, .. } => {
                (self.output.len() * self.input.c * kernel * kernel) as u64
            }
            _ => 0,
        }
    }
    /// True for Dense and Conv2d.
    pub fn has_params(&self) -> bool {
        self.weight_shape().is_some()
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
            LayerSpec::Conv2d { kernel, .. } => (l.output.h as u64)
                .saturating_mul(l.output.w as u64)
                .saturating_mul(l.input.c as u64)
                .saturating_mul((*kernel as u64).saturating_mul(*kernel as u64)),
            _ => 0,
        };
        let step = f32s(
            (l.input.len() as u64)
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
}

fn bad(
    index: usize,
    field: &'static str,
    value: impl ToString,
    rule: impl Into<String>,
) -> TopologyError {
    TopologyError::BadParam {
        index,
        field,
        value: value.to_string(),
        rule: rule.into(),
    }
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

impl NetworkSpec {
    /// Resolve shapes and parameter names, checking that every layer fits its input.
    ///
    /// # Errors
    /// A [`TopologyError`] naming the layer index, the field, its value and the rule.
    pub fn resolve(&self) -> Result<Vec<ResolvedLayer>, TopologyError> {
        if self.schema_version != 1 {
            return Err(TopologyError::SchemaVersion(self.schema_version));
        }
        let Some(input_len) = self.input.checked_len() else {
            return Err(TopologyError::Input {
                value: format!("{:?}", self.input),
                rule: "c·h·w overflows a 64-bit count; give a realistic image size".into(),
            });
        };
        if input_len == 0 {
            return Err(TopologyError::Input {
                value: format!("{:?}", self.input),
                rule: "input shape must be non-empty (c, h and w at least 1)".into(),
            });
        }
        let mut shape = self.input;
        let (mut n_fc, mut n_conv, mut n_act, mut n_pool) = (0, 0, 0, 0);
        let mut names = std::collections::BTreeSet::new();
        let mut out = Vec::with_capacity(self.layers.len());
        for (i, spec) in self.layers.iter().enumerate() {
            let input = shape;
            let (name, output) = match spec {
                LayerSpec::Dense { out, name, .. } => {
                    n_fc += 1;
                    if *out == 0 {
                        return Err(bad(i, "out", out, "must be at least 1"));
                    }
                    if out.checked_mul(input.len()).is_none() {
                        return Err(bad(
                            i,
                            "out",
                            out,
                            format!(
                                "{out} x {} inputs = more weights than a 64-bit count holds",
                                input.len()
                            ),
                        ));
                    }
                    let nm = if name.is_empty() {
                        format!("fc{n_fc}")
                    } else {
                        name.clone()
                    };
                    (nm, Shape::flat(*out))
                }
                LayerSpec::Conv2d {
                    out_channels,
                    kernel,
                    stride,
                    padding,
                    name,
                    ..
                } => {
                    n_conv += 1;
                    if *out_channels == 0 {
                        return Err(bad(i, "out_channels", out_channels, "must be at least 1"));
                    }
                    if *kernel == 0 {
                        return Err(bad(i, "kernel", kernel, "must be at least 1"));
                    }
                    if *stride == 0 {
                        return Err(bad(i, "stride", stride, "must be at least 1"));
                    }
                    let padded = |side: usize| padding.checked_mul(2)?.checked_add(side);
                    let (Some(hp), Some(wp)) = (padded(input.h), padded(input.w)) else {
                        return Err(bad(
                            i,
                            "padding",
                            padding,
                            format!(
                                "the padded input {}+2x{padding} overflows a 64-bit size; use a padding below the kernel side",
                                input.h.max(input.w)
                            ),
                        ));
                    };
                    if *kernel > hp || *kernel > wp {
                        return Err(bad(
                            i,
                            "kernel",
                            kernel,
                            format!("larger than the padded input {hp}x{wp}"),
                        ));
                    }
                    let nm = if name.is_empty() {
                        format!("conv{n_conv}")
                    } else {
                        name.clone()
                    };
                    let oh = (hp - kernel) / stride + 1;
                    let ow = (wp - kernel) / stride + 1;
                    let output = Shape::new(*out_channels, oh, ow);
                    let spatial = oh.checked_mul(ow).and_then(|x| x.checked_mul(input.c));
                    if spatial.is_none() {
                        return Err(bad(
                            i,
                            "padding",
                            padding,
                            format!(
                                "the output would be {oh}x{ow} pixels, which overflows a 64-bit count; use a padding below the kernel side"
                            ),
                        ));
                    }
                    let fan_in = input
                        .c
                        .checked_mul(*kernel)
                        .and_then(|x| x.checked_mul(*kernel));
                    let Some(fan_in) = fan_in else {
                        return Err(bad(
                            i,
                            "kernel",
                            kernel,
                            "kernel x kernel x input channels overflows a 64-bit count",
                        ));
                    };
                    let fits = output
                        .checked_len()
                        .and_then(|o| o.checked_mul(fan_in))
                        .and_then(|_| out_channels.checked_mul(fan_in));
                    if fits.is_none() {
                        return Err(bad(
                            i,
                            "out_channels",
                            out_channels,
                            format!(
                                "{out_channels} channels of {oh}x{ow} outputs with {fan_in} products each overflow a 64-bit count"
                            ),
                        ));
                    }
                    (nm, output)
                }
                LayerSpec::MaxPool2d { kernel, stride }
                | LayerSpec::AvgPool2d { kernel, stride } => {
                    n_pool += 1;
                    if *kernel == 0 {
                        return Err(bad(i, "kernel", kernel, "must be at least 1"));
                    }
                    if *stride == 0 {
                        return Err(bad(i, "stride", stride, "must be at least 1"));
                    }
                    if *kernel > input.h || *kernel > input.w {
                        return Err(bad(
                            i,
                            "kernel",
                            kernel,
                            format!("larger than the input {}x{}", input.h, input.w),
                        ));
                    }
                    let oh = (input.h - kernel) / stride + 1;
                    let ow = (input.w - kernel) / stride + 1;
                    (format!("pool{n_pool}"), Shape::new(input.c, oh, ow))
                }
                LayerSpec::Flatten => (format!("flatten{i}"), Shape::flat(input.len())),
                LayerSpec::Act(a) => {
                    n_act += 1;
                    if let Activation::HardTanh { min, max } = a
                        && min.partial_cmp(max) != Some(std::cmp::Ordering::Less)
                    {
                        return Err(bad(
                            i,
                            "HardTanh.min",
                            min,
                            format!("must be below max = {max}"),
                        ));
                    }
                    if let Some((field, v)) = a.bad_parameter() {
                        return Err(bad(
                            i,
                            field,
                            v,
                            format!("must be a finite number within ±{ACT_PARAM_MAX}"),
                        ));
                    }
                    let base = match a {
                        Activation::ReLU => "relu",
                        Activation::LeakyReLU { .. } => "leaky_relu",
                        Activation::HardTanh { .. } => "hardtanh",
                        Activation::Tanh => "tanh",
                        Activation::Sigmoid => "sigmoid",
                        Activation::Elu { .. } => "elu",
                        Activation::Selu => "selu",
                        Activation::RectSine => "rect_sine",
                    };
                    (format!("{base}{n_act}"), input)
                }
            };
            if !names.insert(name.clone()) {
                return Err(TopologyError::DuplicateName { index: i, name });
            }
            shape = output;
            out.push(ResolvedLayer {
                spec: spec.clone(),
                name,
                input,
                output,
            });
        }
        if shape.len() != self.classes {
            return Err(TopologyError::Classes {
                classes: self.classes,
                got: shape.len(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lenet() -> NetworkSpec {
        NetworkSpec {
            schema_version: 1,
            name: "lenet".into(),
            input: Shape::new(1, 28, 28),
            classes: 10,
            layers: vec![
                LayerSpec::Conv2d {
                    out_channels: 6,
                    kernel: 5,
                    stride: 1,
                    padding: 2,
                    bias: true,
                    name: String::new(),
                },
                LayerSpec::Act(Activation::ReLU),
                LayerSpec::MaxPool2d {
                    kernel: 2,
                    stride: 2,
                },
                LayerSpec::Conv2d {
                    out_channels: 16,
                    kernel: 5,
                    stride: 1,
                    padding: 0,
                    bias: true,
                    name: String::new(),
                },
                LayerSpec::Act(Activation::ReLU),
                LayerSpec::AvgPool2d {
                    kernel: 2,
                    stride: 2,
                },
                LayerSpec::Flatten,
                LayerSpec::Dense {
                    out: 120,
                    bias: true,
                    name: String::new(),
                },
                LayerSpec::Act(Activation::Tanh),
                LayerSpec::Dense {
                    out: 10,
                    bias: false,
                    name: String::new(),
                },
            ],
            weights: String::new(),
            notes: String::new(),
            trained_for: Default::default(),
        }
    }

    #[test]
    fn lenet_shapes_and_names() {
        let r = lenet().resolve().unwrap();
        assert_eq!(r[0].output, Shape::new(6, 28, 28));
        assert_eq!(r[2].output, Shape::new(6, 14, 14));
        assert_eq!(r[3].output, Shape::new(16, 10, 10));
        assert_eq!(r[5].output, Shape::new(16, 5, 5));
        assert_eq!(r[6].output, Shape::flat(400));
        assert_eq!(r[0].name, "conv1");
        assert_eq!(r[3].name, "conv2");
        assert_eq!(r[7].name, "fc1");
        assert_eq!(r[7].weight_shape(), Some(vec![120, 400]));
        assert_eq!(r[9].bias_len(), None);
        assert_eq!(r[3].macs(), 16 * 100 * 6 * 25);
    }

    #[test]
    fn wrong_class_count_is_named() {
        let mut n = lenet();
        n.classes = 7;
        let e = n.resolve().unwrap_err().to_string();
        assert!(e.contains("classes = 7") && e.contains("10"), "{e}");
    }

    #[test]
    fn zero_stride_is_rejected() {
        let mut n = lenet();
        n.layers[2] = LayerSpec::MaxPool2d {
            kernel: 2,
            stride: 0,
        };
        let e = n.resolve().unwrap_err().to_string();
        assert_eq!(e, "layers[2].stride = 0: must be at least 1");
    }

    #[test]
    fn ron_round_trip() {
        let n = lenet();
        let s = ron::ser::to_string_pretty(&n, Default::default()).unwrap();
        let back: NetworkSpec = ron::from_str(&s).unwrap();
        assert_eq!(n, back);
        let short: NetworkSpec = ron::from_str(
            "(schema_version: 1, name: \"m\", input: (c: 4, h: 1, w: 1), classes: 2, layers: [Dense(out: 2)])",
        )
        .unwrap();
        assert_eq!(short.resolve().unwrap()[0].name, "fc1");
    }

    fn one_layer(input: Shape, layer: &str) -> NetworkSpec {
        ron::from_str(&format!(
            "(schema_version: 1, name: \"m\", input: (c: {}, h: {}, w: {}), classes: 10, layers: [{layer}, Flatten, Dense(out: 10)])",
            input.c, input.h, input.w
        ))
        .unwrap()
    }

    #[test]
    fn huge_padding_is_an_error_naming_layer_and_field_not_a_wrapped_shape() {
        let n = one_layer(
            Shape::new(1, 28, 28),
            "Conv2d(out_channels: 1, kernel: 3, padding: 4611686018427387904)",
        );
        let e = n.resolve().unwrap_err().to_string();
        assert!(
            e.starts_with("layers[0].padding = 4611686018427387904: "),
            "{e}"
        );
        assert!(e.contains("overflows"), "{e}");
        let n = one_layer(
            Shape::new(1, 28, 28),
            "Conv2d(out_channels: 1, kernel: 40, padding: 2)",
        );
        let e = n.resolve().unwrap_err().to_string();
        assert_eq!(
            e,
            "layers[0].kernel = 40: larger than the padded input 32x32"
        );
    }

    #[test]
    fn shapes_that_overflow_a_count_are_errors() {
        let n = one_layer(Shape::new(1 << 32, 1 << 32, 1), "Act(ReLU)");
        let e = n.resolve().unwrap_err().to_string();
        assert!(e.starts_with("input = ") && e.contains("overflows"), "{e}");
        let n = one_layer(
            Shape::new(1, 28, 28),
            "Flatten, Dense(out: 18446744073709551615)",
        );
        let e = n.resolve().unwrap_err().to_string();
        assert!(
            e.starts_with("layers[1].out = 18446744073709551615: "),
            "{e}"
        );
        let n = one_layer(
            Shape::new(1, 65536, 65536),
            "Conv2d(out_channels: 4294967296, kernel: 3, padding: 1)",
        );
        let e = n.resolve().unwrap_err().to_string();
        assert!(
            e.starts_with("layers[0].out_channels = 4294967296: "),
            "{e}"
        );
    }

    #[test]
    fn activation_parameters_must_be_finite_and_bounded() {
        for (act, field) in [
            ("Elu(alpha: inf)", "Elu.alpha"),
            ("LeakyReLU(alpha: NaN)", "LeakyReLU.alpha"),
            ("HardTanh(min: -1.0, max: 1e30)", "HardTanh.max"),
        ] {
            let n = one_layer(Shape::new(1, 28, 28), &format!("Act({act})"));
            let e = n.resolve().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("layers[0].{field} = ")),
                "{act}: {e}"
            );
            assert!(e.contains("finite"), "{e}");
        }
        let n = one_layer(Shape::new(1, 28, 28), "Act(Elu(alpha: 1.0))");
        assert!(n.resolve().is_ok());
    }
}
