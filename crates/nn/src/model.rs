//! Float models: a resolved topology with its parameters, initialisation, and model I/O
//! (topology in RON, weights in safetensors with PyTorch naming).
//!
//! Weight tensors are kept as 2-D `[out, fan_in]` matrices. For a Conv2d layer that is PyTorch's
//! `[out, in, kh, kw]` tensor read in the same row-major order, so the bytes in the safetensors file
//! are exactly PyTorch's and a file written here loads with `torch.nn.Module.load_state_dict`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::graph::{BnStats, init_stats};
use crate::network::{LayerSpec, NetworkSpec, ResolvedLayer, TopologyError};

/// Trainable parameters of one Dense or Conv2d layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Weights `[out, fan_in]`; for Conv2d `fan_in = in_channels · kernel · kernel` in
    /// `(c, ky, kx)` order.
    pub weight: Array2<f32>,
    /// Bias `[out]`, if the layer has one.
    pub bias: Option<Array1<f32>>,
}

/// A network with its float parameters: the reference model every engine is compared against.
#[derive(Clone, Debug)]
pub struct Model {
    /// The topology as written.
    pub spec: NetworkSpec,
    /// Layers with shapes and names resolved.
    pub layers: Vec<ResolvedLayer>,
    /// Parameters, one entry per layer (`None` for layers without parameters; γ as a
    /// `[channels, 1]` weight and β as the bias for BatchNorm2d).
    pub params: Vec<Option<Param>>,
    /// Running statistics, one entry per layer (`Some` for BatchNorm2d layers).
    pub stats: Vec<Option<BnStats>>,
}

/// Errors of model loading and saving. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The file could not be read or written.
    #[error("{path}: cannot {op}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// "read" or "write".
        op: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// The RON text does not parse as a network description.
    #[error(transparent)]
    Config(#[from] nacsim_core::config::ConfigError),
    /// An ONNX file that is not a model nacsim can import ([`crate::onnx`]).
    #[error("{path}: {msg}")]
    Onnx {
        /// File.
        path: PathBuf,
        /// What is wrong and what nacsim reads instead.
        msg: String,
    },
    /// The topology is impossible.
    #[error("{path}: {source}")]
    Topology {
        /// File.
        path: PathBuf,
        /// What is wrong.
        source: TopologyError,
    },
    /// The network file names no weights file.
    #[error(
        "{path}: weights = \"\": this network file describes a topology only; give it a `weights` \
         file (train one with `nacsim train`) to evaluate it"
    )]
    NoWeights {
        /// File.
        path: PathBuf,
    },
    /// The safetensors file is malformed.
    #[error("{path}: not a valid safetensors file: {msg}")]
    Safetensors {
        /// File.
        path: PathBuf,
        /// Parser message.
        msg: String,
    },
    /// A tensor the topology needs is absent.
    #[error(
        "{path}: tensor `{name}` is missing (the topology needs it with shape {expected:?}); tensors present: {present}"
    )]
    MissingTensor {
        /// File.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Shape the topology needs.
        expected: Vec<usize>,
        /// Names in the file.
        present: String,
    },
    /// A tensor has the wrong shape.
    #[error(
        "{path}: tensor `{name}` has shape {got:?} but the topology needs {expected:?}; the weights do not belong to this network file"
    )]
    Shape {
        /// File.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Shape the topology needs.
        expected: Vec<usize>,
        /// Shape in the file.
        got: Vec<usize>,
    },
    /// A tensor has a dtype other than F32.
    #[error(
        "{path}: tensor `{name}` has dtype {got}; only F32 is supported (convert with `tensor.float()` in PyTorch)"
    )]
    Dtype {
        /// File.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Dtype found.
        got: String,
    },
    /// The file holds a tensor the topology has no place for.
    #[error(
        "{path}: tensor `{name}` is not used by this topology (its parameters are: {expected}); the weights do not belong to this network file"
    )]
    Unexpected {
        /// File.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Names the topology expects.
        expected: String,
    },
    /// A parameter value is NaN or infinite.
    #[error("{path}: tensor `{name}` holds a non-finite value at flat index {index}")]
    NonFinite {
        /// File.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Flat index.
        index: usize,
    },
}

impl Model {
    /// A model with parameters drawn as PyTorch's default initialisation does for `nn.Linear` and
    /// `nn.Conv2d`: weights and biases uniform in `±1/√fan_in` (kaiming-uniform with a = √5).
    /// Every value is a pure function of `(seed, layer index, element index)` through
    /// [`nacsim_core::rng::Stream`] with purpose `WeightInit`.
    ///
    /// # Errors
    /// The topology error, if the spec does not resolve.
    pub fn init(spec: NetworkSpec, seed: u64) -> Result<Self, TopologyError> {
        let layers = spec.resolve()?;
        let params = layers
            .iter()
            .enumerate()
            .map(|(li, l)| {
                let ws = l.weight_shape()?;
                if let LayerSpec::BatchNorm2d { .. } | LayerSpec::LayerNorm { .. } = l.spec {
                    // PyTorch's initialisation: γ = 1, β = 0.
                    return Some(Param {
                        weight: Array2::ones((ws[0], 1)),
                        bias: Some(Array1::zeros(ws[0])),
                    });
                }
                let out = ws[0];
                let fan_in: usize = ws[1..].iter().product();
                let bound = 1.0 / (fan_in as f64).sqrt();
                let s = nacsim_core::rng::Stream::new(
                    seed,
                    nacsim_core::rng::Purpose::WeightInit,
                    li as u32,
                    0,
                );
                let draw = |i: usize| ((2.0 * s.uniform(i as u64) - 1.0) * bound) as f32;
                let weight = Array2::from_shape_fn((out, fan_in), |(o, k)| draw(o * fan_in + k));
                let bias = l
                    .bias_len()
                    .map(|n| Array1::from_shape_fn(n, |o| draw(out * fan_in + o)));
                Some(Param { weight, bias })
            })
            .collect();
        let stats = init_stats(&layers);
        Ok(Self {
            spec,
            layers,
            params,
            stats,
        })
    }

    /// Load a network file and the safetensors weights it names (path relative to the RON file),
    /// or an ONNX model (`.onnx`, read by [`crate::onnx`]).
    ///
    /// # Errors
    /// [`ModelError`] naming the file and the problem: RON parse errors with line and column,
    /// impossible topologies, a missing weights file, missing/unexpected tensors, wrong shapes or
    /// dtypes.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        if is_onnx(path) {
            return crate::onnx::load(path);
        }
        let spec = load_spec(path)?;
        if spec.weights.is_empty() {
            return Err(ModelError::NoWeights {
                path: path.to_path_buf(),
            });
        }
        let wpath = path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(&spec.weights);
        let layers = spec.resolve().map_err(|source| ModelError::Topology {
            path: path.to_path_buf(),
            source,
        })?;
        let bytes = std::fs::read(&wpath).map_err(|source| ModelError::Io {
            path: wpath.clone(),
            op: "read",
            source,
        })?;
        let (params, stats) = params_from_safetensors(&layers, &bytes, &wpath)?;
        Ok(Self {
            spec,
            layers,
            params,
            stats,
        })
    }

    /// Build a model from an in-memory network description and safetensors bytes (for models
    /// embedded in the binary). `label` names the source in error messages.
    ///
    /// # Errors
    /// As [`Model::load`].
    pub fn from_bytes(ron_text: &str, weights: &[u8], label: &str) -> Result<Self, ModelError> {
        let path = Path::new(label);
        let spec: NetworkSpec =
            nacsim_core::config::parse(&crate::network::bare_ops(ron_text), path)?;
        let layers = spec.resolve().map_err(|source| ModelError::Topology {
            path: path.to_path_buf(),
            source,
        })?;
        let (params, stats) = params_from_safetensors(&layers, weights, path)?;
        Ok(Self {
            spec,
            layers,
            params,
            stats,
        })
    }

    /// Write the network as `path` (RON) and its weights beside it as `<stem>.safetensors`; the
    /// RON file's `weights` field is set to that file name.
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub fn save(&mut self, path: &Path) -> Result<(), ModelError> {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        let wname = format!("{stem}.safetensors");
        self.spec.weights = wname.clone();
        let wpath = path.parent().unwrap_or_else(|| Path::new(".")).join(&wname);
        let bytes = self.to_safetensors();
        std::fs::write(&wpath, bytes).map_err(|source| ModelError::Io {
            path: wpath,
            op: "write",
            source,
        })?;
        let text = nacsim_core::config::ron_pretty(&self.spec)?;
        std::fs::write(path, text).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            op: "write",
            source,
        })
    }

    /// The parameters as a safetensors byte buffer (F32, little-endian, PyTorch names and shapes).
    pub fn to_safetensors(&self) -> Vec<u8> {
        let mut tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
        for (l, p) in self.layers.iter().zip(&self.params) {
            let (Some(p), Some(ws)) = (p, l.weight_shape()) else {
                continue;
            };
            tensors.insert(
                format!("{}.weight", l.name),
                (ws, le_bytes(p.weight.iter())),
            );
            if let Some(b) = &p.bias {
                tensors.insert(
                    format!("{}.bias", l.name),
                    (vec![b.len()], le_bytes(b.iter())),
                );
            }
        }
        for (l, st) in self.layers.iter().zip(&self.stats) {
            if let Some(st) = st {
                let n = st.mean.len();
                tensors.insert(
                    format!("{}.running_mean", l.name),
                    (vec![n], le_bytes(st.mean.iter())),
                );
                tensors.insert(
                    format!("{}.running_var", l.name),
                    (vec![n], le_bytes(st.var.iter())),
                );
            }
        }
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(n, (s, d))| {
                let v = TensorView::new(Dtype::F32, s.clone(), d)
                    .expect("sizes consistent by construction");
                (n.clone(), v)
            })
            .collect();
        // One metadata entry only: safetensors writes the metadata map in HashMap order, so a
        // second entry would make the file bytes vary from run to run.
        let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        safetensors::serialize(views, Some(meta))
            .expect("serialising owned f32 tensors cannot fail")
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.params
            .iter()
            .flatten()
            .map(|p| p.weight.len() + p.bias.as_ref().map_or(0, |b| b.len()))
            .sum()
    }
}

/// Parse and check a network file (topology only; weights are not read).
///
/// # Errors
/// RON parse errors with line and column, and topology errors, naming the file.
pub fn load_spec(path: &Path) -> Result<NetworkSpec, ModelError> {
    if is_onnx(path) {
        return Ok(crate::onnx::load(path)?.spec);
    }
    let text =
        std::fs::read_to_string(path).map_err(|source| nacsim_core::config::ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
    Ok(nacsim_core::config::parse(
        &crate::network::bare_ops(&text),
        path,
    )?)
}

/// A path whose extension is `.onnx` (any case): read by [`crate::onnx`], not as RON.
pub fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

fn le_bytes<'a>(it: impl Iterator<Item = &'a f32>) -> Vec<u8> {
    it.flat_map(|v| v.to_le_bytes()).collect()
}

type Loaded = (Vec<Option<Param>>, Vec<Option<BnStats>>);

fn params_from_safetensors(
    layers: &[ResolvedLayer],
    bytes: &[u8],
    path: &Path,
) -> Result<Loaded, ModelError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| ModelError::Safetensors {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    let mut present: Vec<String> = st.names().into_iter().map(String::from).collect();
    present.sort();
    let mut wanted = Vec::new();
    let read = |name: &str, expected: Vec<usize>| -> Result<Vec<f32>, ModelError> {
        let t = st.tensor(name).map_err(|_| ModelError::MissingTensor {
            path: path.to_path_buf(),
            name: name.to_string(),
            expected: expected.clone(),
            present: present.join(", "),
        })?;
        if t.dtype() != Dtype::F32 {
            return Err(ModelError::Dtype {
                path: path.to_path_buf(),
                name: name.to_string(),
                got: format!("{:?}", t.dtype()),
            });
        }
        if t.shape() != expected.as_slice() {
            return Err(ModelError::Shape {
                path: path.to_path_buf(),
                name: name.to_string(),
                expected,
                got: t.shape().to_vec(),
            });
        }
        let v: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if let Some(index) = v.iter().position(|x| !x.is_finite()) {
            return Err(ModelError::NonFinite {
                path: path.to_path_buf(),
                name: name.to_string(),
                index,
            });
        }
        Ok(v)
    };
    let mut params = Vec::with_capacity(layers.len());
    let mut stats = Vec::with_capacity(layers.len());
    for l in layers {
        if let LayerSpec::BatchNorm2d { .. } = l.spec {
            let c = l.input.c;
            let mut buf = |what: &str| -> Result<Array1<f32>, ModelError> {
                let n = format!("{}.{what}", l.name);
                let v = read(&n, vec![c])?;
                wanted.push(n);
                Ok(Array1::from_vec(v))
            };
            let (mean, var) = (buf("running_mean")?, buf("running_var")?);
            if let Some(index) = var.iter().position(|v| *v < 0.0) {
                return Err(ModelError::NonFinite {
                    path: path.to_path_buf(),
                    name: format!("{}.running_var (negative)", l.name),
                    index,
                });
            }
            stats.push(Some(BnStats { mean, var }));
        } else {
            stats.push(None);
        }
        let Some(ws) = l.weight_shape() else {
            params.push(None);
            continue;
        };
        let wname = format!("{}.weight", l.name);
        let w = read(&wname, ws.clone())?;
        wanted.push(wname);
        let weight = Array2::from_shape_vec((ws[0], ws[1..].iter().product()), w)
            .expect("length checked against shape");
        let bias = match l.bias_len() {
            Some(n) => {
                let bname = format!("{}.bias", l.name);
                let b = read(&bname, vec![n])?;
                wanted.push(bname);
                Some(Array1::from_vec(b))
            }
            None => None,
        };
        params.push(Some(Param { weight, bias }));
    }
    if let Some(extra) = present.iter().find(|n| !wanted.contains(n)) {
        return Err(ModelError::Unexpected {
            path: path.to_path_buf(),
            name: extra.clone(),
            expected: wanted.join(", "),
        });
    }
    Ok((params, stats))
}
