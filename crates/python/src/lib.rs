//! `nacsim._nacsim`: the native half of the `nacsim` Python package (PyO3), over the same
//! code as the CLI (the `nacsim` library crate's `cmd` modules), so a report from Python is the
//! CLI's report for the same inputs, bit for bit.
//!
//! The Python half (`python/nacsim/__init__.py`) turns paths, numpy arrays and JSON into what
//! these functions take and return; the exceptions are its classes (`_errors.py`), built here
//! by [`errors::to_py`]. Every simulation runs with the GIL released.
//!
//! | module | job |
//! |---|---|
//! | this one | the module and its functions: `run`, `info`, `train`, `sweep`, `merge` |
//! | [`design`] | `nacsim.Design`: load, `set` a field by path (validated as the file is), `get` |
//! | [`network`] | `nacsim.Network`: RON (with or without weights), ONNX, SCALE-Sim CSV |
//! | [`data`] | images and labels from arrays, checked, as the simulator's 8-bit dataset |
//! | [`errors`] | nacsim's errors as `ConfigError` / `DataError` / `NacsimError` with attributes |

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use nacsim::cmd::data::Source;
use nacsim::cmd::run::{RunInputs, calibration_set_for, simulate};
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_scheduler::design::Design as CoreDesign;
use nacsim_scheduler::report::Calibration;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

pub mod data;
pub mod design;
pub mod errors;
pub mod network;

use data::{ArrayData, ImageArray, PixelType};
use design::Design;
use errors::{BoxError, PyInputError, py_result};
use network::{Net, Network};

/// The `design` argument: the embedded default, a file, or a loaded [`Design`].
enum DesignArg {
    Default,
    Path(PathBuf),
    Loaded(Box<CoreDesign>),
}

impl DesignArg {
    fn from_py(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(match obj {
            None => DesignArg::Default,
            Some(o) if o.is_none() => DesignArg::Default,
            Some(o) => match o.cast::<Design>() {
                Ok(d) => DesignArg::Loaded(Box::new(d.borrow().inner.clone())),
                Err(_) => DesignArg::Path(o.extract()?),
            },
        })
    }

    fn resolve(self) -> Result<CoreDesign, BoxError> {
        match self {
            DesignArg::Default => nacsim::cmd::defaults::design(None),
            DesignArg::Path(p) => Ok(CoreDesign::load(&p)?),
            DesignArg::Loaded(d) => Ok(*d),
        }
    }
}

/// The `network` argument: the embedded default, a file, or a loaded [`Network`].
enum NetworkArg {
    Default,
    Path(PathBuf),
    Loaded(Arc<Net>),
}

impl NetworkArg {
    fn from_py(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(match obj {
            None => NetworkArg::Default,
            Some(o) if o.is_none() => NetworkArg::Default,
            Some(o) => match o.cast::<Network>() {
                Ok(n) => NetworkArg::Loaded(n.get().inner.clone()),
                Err(_) => NetworkArg::Path(o.extract()?),
            },
        })
    }

    fn resolve(self) -> Result<Arc<Net>, BoxError> {
        Ok(match self {
            NetworkArg::Default => Arc::new(Network::default_rust()?),
            NetworkArg::Path(p) => Arc::new(Network::load_rust(&p)?),
            NetworkArg::Loaded(n) => n,
        })
    }
}

/// The `data` argument as the Python half passes it: `None` (the bundled sample), a folder of
/// IDX files, or arrays `(images, dtype, shape, labels, calibration)`.
enum DataArg {
    Bundled,
    Dir(PathBuf),
    Arrays(ArrayData),
}

fn image_array(t: &Bound<'_, PyTuple>, at: usize) -> PyResult<ImageArray> {
    let bytes = t.get_item(at)?.cast_into::<PyBytes>()?.as_bytes().to_vec();
    let pixel: String = t.get_item(at + 1)?.extract()?;
    let shape: [usize; 4] = t.get_item(at + 2)?.extract()?;
    Ok(ImageArray {
        bytes,
        pixel: PixelType::parse(&pixel)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.message))?,
        shape,
    })
}

impl DataArg {
    fn from_py(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let Some(o) = obj.filter(|o| !o.is_none()) else {
            return Ok(DataArg::Bundled);
        };
        let Ok(t) = o.cast::<PyTuple>() else {
            return Ok(DataArg::Dir(o.extract()?));
        };
        // (images bytes, dtype, shape, labels as int64 bytes, calibration or None) where
        // calibration is (bytes, dtype, shape).
        let images = image_array(t, 0)?;
        let labels = t
            .get_item(3)?
            .cast_into::<PyBytes>()?
            .as_bytes()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect();
        let cal = t.get_item(4)?;
        let calibration = if cal.is_none() {
            None
        } else {
            Some(image_array(cal.cast::<PyTuple>()?, 0)?)
        };
        Ok(DataArg::Arrays(ArrayData {
            images,
            labels,
            calibration,
        }))
    }
}

/// The trained model of `net`, or the error the CLI gives for a network without weights.
fn trained(net: &Net) -> Result<(&Model, &str), BoxError> {
    match net {
        Net::Model { model, label } => Ok((model, label)),
        Net::Spec { path, .. } => Err(match Model::load(path) {
            Err(e) => Box::new(e),
            Ok(_) => format!("{}: the network was loaded without its weights; load it again", path.display()).into(),
        }),
        Net::Topology { path } => Err(format!(
            "{}: a SCALE-Sim topology has layer shapes but no weights; nacsim.run needs a trained network \
             (RON with weights, or ONNX); nacsim.info takes a topology",
            path.display()
        )
        .into()),
    }
}

/// The scalar options of `nacsim.run`.
struct RunOpts {
    limit: Option<usize>,
    seed: u64,
    trial: u32,
    float_reference: bool,
}

fn run_rust(
    design: DesignArg,
    network: NetworkArg,
    data: DataArg,
    opts: RunOpts,
    t0: Instant,
) -> Result<String, BoxError> {
    let RunOpts {
        limit,
        seed,
        trial,
        float_reference,
    } = opts;
    let design = design.resolve()?;
    let net = network.resolve()?;
    let (model, label) = trained(&net)?;
    let (data, data_label, calib, calibration): (Dataset, String, Dataset, Calibration) = match data
    {
        DataArg::Bundled | DataArg::Dir(_) => {
            let src = match data {
                DataArg::Dir(d) => Source::Dir(d),
                _ => Source::Bundled,
            };
            let data = src.load_for(Split::Test, limit, model, label)?;
            let need = Some(design.config.quant.calibration_images);
            let (calib, calibration) = calibration_set_for(&src, &data, need)?;
            (data, src.describe(), calib, calibration)
        }
        DataArg::Arrays(a) => {
            let mut data = a.dataset(model.spec.classes)?;
            if let Some(k) = limit {
                data.truncate(k);
            }
            if data.shape != model.spec.input {
                return Err(Box::new(PyInputError::data(
                    "images.shape",
                    format!("{:?}", a.images.shape),
                    format!(
                        "images are {} (c x h x w) but the network {label} expects input {}; pass images that fit",
                        data.shape, model.spec.input
                    ),
                )));
            }
            let describe = a.describe();
            let (calib, split) = match a.calibration_set(model.spec.classes)? {
                Some(c) => (c, Split::Train),
                None => (data.clone(), Split::Test),
            };
            let calibration = Calibration {
                data: describe.clone(),
                split,
                images: 0,
            };
            (data, describe, calib, calibration)
        }
    };
    let inputs = RunInputs {
        model,
        network: label,
        data: &data,
        data_label: &data_label,
        calib: &calib,
        calibration: &calibration,
        float_reference,
    };
    let report = simulate(design, &inputs, seed, trial, t0)?;
    Ok(serde_json::to_string(&report)?)
}

/// Simulate a design running a trained network over a dataset; the run report as JSON text.
/// `float_reference = false` skips the float-accuracy pass (`--no-float-reference`).
#[pyfunction]
#[pyo3(signature = (design=None, network=None, data=None, limit=None, seed=0, trial=0, float_reference=true))]
#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    design: Option<&Bound<'_, PyAny>>,
    network: Option<&Bound<'_, PyAny>>,
    data: Option<&Bound<'_, PyAny>>,
    limit: Option<usize>,
    seed: u64,
    trial: u32,
    float_reference: bool,
) -> PyResult<String> {
    let t0 = Instant::now();
    let design = DesignArg::from_py(design)?;
    let network = NetworkArg::from_py(network)?;
    let data = DataArg::from_py(data)?;
    let r = py.detach(move || {
        let opts = RunOpts {
            limit,
            seed,
            trial,
            float_reference,
        };
        run_rust(design, network, data, opts, t0)
    });
    py_result(py, r)
}

fn info_rust(design: DesignArg, network: NetworkArg, seed: u64) -> Result<String, BoxError> {
    use nacsim::cmd::info::{network_report, topology_report};
    let design = design.resolve()?;
    let net = network.resolve()?;
    let report = match &*net {
        Net::Topology { path } => topology_report(design, path, seed)?,
        Net::Model { model, label } => {
            network_report(design, &model.spec, label, seed, || Ok(Some(model.clone())))?
        }
        Net::Spec { spec, path } => {
            network_report(design, spec, &path.display().to_string(), seed, || Ok(None))?
        }
    };
    Ok(serde_json::to_string(&report)?)
}

/// What is known about a design running a network without data; the info report as JSON text.
#[pyfunction]
#[pyo3(signature = (design=None, network=None, seed=0))]
fn info(
    py: Python<'_>,
    design: Option<&Bound<'_, PyAny>>,
    network: Option<&Bound<'_, PyAny>>,
    seed: u64,
) -> PyResult<String> {
    let design = DesignArg::from_py(design)?;
    let network = NetworkArg::from_py(network)?;
    let r = py.detach(move || info_rust(design, network, seed));
    py_result(py, r)
}

/// Train from a training config as `nacsim train` does; its report as JSON text.
#[pyfunction]
#[pyo3(signature = (config, out=None, data=None, epochs=None, limit=None, eval_limit=None, force=false, progress=false))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    config: PathBuf,
    out: Option<PathBuf>,
    data: Option<PathBuf>,
    epochs: Option<usize>,
    limit: Option<usize>,
    eval_limit: Option<usize>,
    force: bool,
    progress: bool,
) -> PyResult<String> {
    let a = nacsim::cmd::train::TrainArgs {
        config,
        out,
        data,
        epochs,
        limit,
        eval_limit,
        quiet: !progress,
        force,
        ..Default::default()
    };
    let r = py.detach(move || -> Result<String, BoxError> {
        Ok(serde_json::to_string(&nacsim::cmd::train::report(&a)?)?)
    });
    py_result(py, r)
}

/// Run a sweep file into the folder `out` as `nacsim sweep` does (shards, resume, records);
/// every point file of the folder as JSON text, in grid order.
#[pyfunction]
#[pyo3(signature = (spec, out, threads=None, shard=None, force_new=false, progress=false))]
fn sweep(
    py: Python<'_>,
    spec: PathBuf,
    out: PathBuf,
    threads: Option<usize>,
    shard: Option<String>,
    force_new: bool,
    progress: bool,
) -> PyResult<Vec<String>> {
    let a = nacsim::cmd::sweep::SweepArgs {
        config: spec,
        out,
        force_new,
        shard,
        threads,
        quiet: !progress,
    };
    let r = py.detach(move || -> Result<Vec<String>, BoxError> {
        nacsim::cmd::sweep::run(&a)?;
        points(&a.out)
    });
    py_result(py, r)
}

/// The point files of the sweep folder `dir`, as text.
fn points(dir: &Path) -> Result<Vec<String>, BoxError> {
    let files = nacsim_scheduler::sweep::record::point_files(dir)?;
    files
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .map_err(|e| format!("{}: cannot read: {e}", p.display()).into())
        })
        .collect()
}

/// The merged rows of a sweep folder (one per swept value: mean, std, min, max over the
/// trials) as JSON text, as `nacsim merge` writes them to CSV.
#[pyfunction]
#[pyo3(signature = (out, allow_partial=false))]
fn merge(py: Python<'_>, out: PathBuf, allow_partial: bool) -> PyResult<String> {
    let r = py.detach(move || -> Result<String, BoxError> {
        let m = nacsim_scheduler::sweep::merge(&out)?;
        if !m.missing.is_empty() && !allow_partial {
            return Err(format!(
                "{}: {} of the {} points of sweep {:?} are missing ({}); run them with nacsim.sweep (it skips the points \
                 already there), or pass allow_partial=True to merge what is there (rows with missing trials say \
                 complete = False)",
                out.display(),
                m.missing.len(),
                m.record.points(),
                m.record.name,
                m.describe_missing(10)
            )
            .into());
        }
        let rows: Vec<serde_json::Value> = m
            .rows
            .iter()
            .map(|r| -> Result<serde_json::Value, BoxError> {
                let mut v = serde_json::to_value(r)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("complete".into(), r.complete().into());
                }
                Ok(v)
            })
            .collect::<Result<_, _>>()?;
        Ok(serde_json::to_string(&rows)?)
    });
    py_result(py, r)
}

/// The native module `nacsim._nacsim`.
#[pymodule]
fn _nacsim(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Design>()?;
    m.add_class::<Network>()?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(info, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(merge, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
