//! `nacsim.Network`: a network loaded once (RON + safetensors, ONNX, or a SCALE-Sim topology
//! CSV) for `nacsim.run` and `nacsim.info`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nacsim_nn::model::{Model, is_onnx, load_spec};
use nacsim_nn::network::NetworkSpec;
use pyo3::prelude::*;

use crate::errors::{BoxError, py_result};

/// What a [`Network`] holds.
pub enum Net {
    /// A trained network (RON with its weights, or ONNX), or the embedded default.
    Model {
        /// The float model.
        model: Model,
        /// Its label in reports (the path, as the CLI writes it).
        label: String,
    },
    /// A RON network file without weights: shapes only (`info` works, `run` does not).
    Spec {
        /// The topology.
        spec: NetworkSpec,
        /// The file.
        path: PathBuf,
    },
    /// A SCALE-Sim topology file (CSV), checked at load: shapes only.
    Topology {
        /// The file.
        path: PathBuf,
    },
}

/// A neural network for `nacsim.run` (trained) or `nacsim.info` (any).
#[pyclass(module = "nacsim._nacsim", name = "Network", frozen)]
#[derive(Clone)]
pub struct Network {
    /// The loaded network, shared by copies.
    pub inner: Arc<Net>,
}

/// A `.csv` path: a SCALE-Sim topology.
fn is_topology(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

impl Network {
    /// Load `path` as the CLI reads `--network` (or `--topology` for a `.csv`).
    ///
    /// # Errors
    /// As the CLI's.
    pub fn load_rust(path: &Path) -> Result<Net, BoxError> {
        if is_topology(path) {
            nacsim_scheduler::topology::load(path)?;
            return Ok(Net::Topology {
                path: path.to_path_buf(),
            });
        }
        if !is_onnx(path) {
            let spec = load_spec(path)?;
            if spec.weights.is_empty() {
                return Ok(Net::Spec {
                    spec,
                    path: path.to_path_buf(),
                });
            }
        }
        let (model, label) = nacsim::cmd::defaults::network(Some(path))?;
        Ok(Net::Model { model, label })
    }

    /// The embedded default network.
    ///
    /// # Errors
    /// Never in practice (the embedded files are tested).
    pub fn default_rust() -> Result<Net, BoxError> {
        let (model, label) = nacsim::cmd::defaults::network(None)?;
        Ok(Net::Model { model, label })
    }

    fn spec(&self) -> Option<&NetworkSpec> {
        match &*self.inner {
            Net::Model { model, .. } => Some(&model.spec),
            Net::Spec { spec, .. } => Some(spec),
            Net::Topology { .. } => None,
        }
    }
}

#[pymethods]
impl Network {
    /// Load a network: RON (with or without weights), ONNX, or a SCALE-Sim topology CSV.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let r = py.detach(|| Network::load_rust(&path));
        Ok(Network {
            inner: Arc::new(py_result(py, r)?),
        })
    }

    /// The embedded default network (models/networks/fmnist-mlp.ron with its weights).
    #[staticmethod]
    fn default(py: Python<'_>) -> PyResult<Self> {
        let r = Network::default_rust();
        Ok(Network {
            inner: Arc::new(py_result(py, r)?),
        })
    }

    /// `"trained"`, `"topology-only"` (a RON file without weights) or `"scale-sim"` (CSV).
    #[getter]
    fn kind(&self) -> &'static str {
        match &*self.inner {
            Net::Model { .. } => "trained",
            Net::Spec { .. } => "topology-only",
            Net::Topology { .. } => "scale-sim",
        }
    }

    /// The network's label in reports (its path, or the embedded default's name).
    #[getter]
    fn label(&self) -> String {
        match &*self.inner {
            Net::Model { label, .. } => label.clone(),
            Net::Spec { path, .. } | Net::Topology { path } => path.display().to_string(),
        }
    }

    /// Input image shape `(channels, height, width)`, or `None` for a SCALE-Sim topology.
    #[getter]
    fn input_shape(&self) -> Option<(usize, usize, usize)> {
        self.spec().map(|s| (s.input.c, s.input.h, s.input.w))
    }

    /// Number of classes, or `None` for a SCALE-Sim topology.
    #[getter]
    fn classes(&self) -> Option<usize> {
        self.spec().map(|s| s.classes)
    }

    fn __repr__(&self) -> String {
        format!("Network({:?}, {})", self.label(), self.kind())
    }
}
