//! nacsim's errors as Python exceptions (`nacsim.ConfigError`, `nacsim.DataError`, both
//! `nacsim.NacsimError`s; the classes are in `python/nacsim/_errors.py`).
//!
//! The exception's text is the CLI's message after `error: ` ([`nacsim::error_text`]); its
//! attributes name the `file`, `field`, `value` and `rule` (and `line`, `column` for a parse
//! error) when the error carries them, read from the typed error anywhere in its chain.

use std::error::Error;

use nacsim_core::config::{ConfigError, FieldError};
use nacsim_nn::data::DataError;
use nacsim_nn::model::ModelError;
use nacsim_scheduler::design::DesignError;
use nacsim_scheduler::sim::SimError;
use nacsim_scheduler::topology::TopologyFileError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Any error of the CLI's code, as the CLI's commands return it.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// Which exception class an error becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A design, network, sweep or training file (or a value set on a loaded one) is wrong:
    /// `nacsim.ConfigError` (a `ValueError`).
    Config,
    /// A dataset (IDX files or arrays) is missing, damaged or does not fit the network:
    /// `nacsim.DataError`.
    Data,
    /// Anything else (a memory estimate over the limit, an I/O failure): `nacsim.NacsimError`.
    Other,
}

/// What an exception carries besides its text.
#[derive(Clone, Debug, Default)]
pub struct Details {
    /// The file at fault.
    pub file: Option<String>,
    /// The dotted path of the field at fault.
    pub field: Option<String>,
    /// The offending value, as written.
    pub value: Option<String>,
    /// The rule it breaks.
    pub rule: Option<String>,
    /// 1-based line of a parse error.
    pub line: Option<usize>,
    /// 1-based column of a parse error.
    pub column: Option<usize>,
    /// Every broken rule of a file that parsed but breaks several: `(field, value, rule)`.
    pub errors: Vec<(String, String, String)>,
}

impl Details {
    fn field_error(file: Option<String>, e: &FieldError) -> Self {
        Details {
            file,
            field: Some(e.field.clone()),
            value: Some(e.value.clone()),
            rule: Some(e.rule.clone()),
            ..Details::default()
        }
    }

    fn file(path: impl std::fmt::Display) -> Self {
        Details {
            file: Some(path.to_string()),
            ..Details::default()
        }
    }
}

/// An error built here (a Python argument or array that does not fit), with its details.
#[derive(Debug)]
pub struct PyInputError {
    /// The exception class.
    pub kind: Kind,
    /// The message.
    pub message: String,
    /// Its attributes.
    pub details: Box<Details>,
}

impl std::fmt::Display for PyInputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for PyInputError {}

impl PyInputError {
    /// A data error naming the argument `field`, the `value` given and the `rule` it breaks;
    /// the message is `field = value: rule`.
    pub fn data(field: &str, value: impl std::fmt::Display, rule: impl Into<String>) -> Self {
        let rule = rule.into();
        let value = value.to_string();
        PyInputError {
            kind: Kind::Data,
            message: format!("{field} = {value}: {rule}"),
            details: Box::new(Details {
                field: Some(field.to_string()),
                value: Some(value),
                rule: Some(rule),
                ..Details::default()
            }),
        }
    }
}

fn config(e: &ConfigError) -> Details {
    match e {
        ConfigError::Parse {
            path,
            line,
            col,
            field,
            msg,
        } => Details {
            file: Some(path.display().to_string()),
            field: field.clone(),
            rule: Some(msg.clone()),
            line: Some(*line),
            column: Some(*col),
            ..Details::default()
        },
        ConfigError::Invalid { path, errors } => {
            let mut d = errors
                .first()
                .map(|f| Details::field_error(Some(path.display().to_string()), f))
                .unwrap_or_else(|| Details::file(path.display()));
            d.errors = errors
                .iter()
                .map(|f| (f.field.clone(), f.value.clone(), f.rule.clone()))
                .collect();
            d
        }
        ConfigError::Io { path, .. } => Details::file(path.display()),
        _ => Details::default(),
    }
}

fn design(e: &DesignError) -> Details {
    match e {
        DesignError::Config(c) => config(c),
        DesignError::Mapping { path, error } => {
            Details::field_error(Some(path.display().to_string()), error)
        }
        _ => Details::default(),
    }
}

fn data(e: &DataError) -> Details {
    match e {
        DataError::Missing { dir, .. } => Details::file(dir.display()),
        DataError::NotAFolder { path }
        | DataError::Io { path, .. }
        | DataError::Gzip { path, .. }
        | DataError::BadMagic { path, .. }
        | DataError::TruncatedHeader { path, .. }
        | DataError::Truncated { path, .. }
        | DataError::TrailingData { path, .. } => Details::file(path.display()),
        DataError::CountMismatch { labels, .. } => Details::file(labels.display()),
        DataError::LabelOutOfRange {
            path,
            label,
            classes,
            ..
        } => Details {
            file: Some(path.display().to_string()),
            value: Some(label.to_string()),
            rule: Some(format!("labels must be below {classes}")),
            ..Details::default()
        },
        _ => Details::default(),
    }
}

fn model(e: &ModelError) -> Details {
    match e {
        ModelError::Config(c) => config(c),
        ModelError::Io { path, .. }
        | ModelError::Topology { path, .. }
        | ModelError::Safetensors { path, .. }
        | ModelError::Shape { path, .. } => Details::file(path.display()),
        ModelError::Onnx { path, msg } => Details {
            rule: Some(msg.clone()),
            ..Details::file(path.display())
        },
        ModelError::NoWeights { path } => Details {
            field: Some("weights".into()),
            value: Some("\"\"".into()),
            rule: Some("give the network a weights file to evaluate it".into()),
            ..Details::file(path.display())
        },
        ModelError::MissingTensor { path, name, .. } => Details {
            field: Some(name.clone()),
            ..Details::file(path.display())
        },
        _ => Details::default(),
    }
}

/// The exception class and details of `e`: the first typed error found along its chain.
pub fn classify(e: &(dyn Error + 'static)) -> (Kind, Details) {
    let mut cur: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(p) = err.downcast_ref::<PyInputError>() {
            return (p.kind, (*p.details).clone());
        }
        if let Some(c) = err.downcast_ref::<ConfigError>() {
            return (Kind::Config, config(c));
        }
        if let Some(d) = err.downcast_ref::<DesignError>() {
            return (Kind::Config, design(d));
        }
        if let Some(d) = err.downcast_ref::<DataError>() {
            return (Kind::Data, data(d));
        }
        if let Some(m) = err.downcast_ref::<ModelError>() {
            return (Kind::Config, model(m));
        }
        if let Some(t) = err.downcast_ref::<TopologyFileError>() {
            return (
                Kind::Config,
                Details {
                    file: Some(t.path.clone()),
                    field: t.column.clone(),
                    rule: Some(t.message.clone()),
                    line: (t.line > 0).then_some(t.line),
                    ..Details::default()
                },
            );
        }
        if let Some(s) = err.downcast_ref::<SimError>() {
            return match s {
                SimError::Design(d) => (Kind::Config, design(d)),
                SimError::Engine { design, .. } | SimError::Energy { design, .. } => {
                    (Kind::Config, Details::file(design))
                }
                SimError::Data(_) => (Kind::Data, Details::default()),
                _ => (Kind::Other, Details::default()),
            };
        }
        cur = err.source();
    }
    (Kind::Other, Details::default())
}

/// The Python exception for `e`: its class by [`classify`], its text the CLI's message.
pub fn to_py(py: Python<'_>, e: &(dyn Error + Send + Sync + 'static)) -> PyErr {
    let text = nacsim::error_text(e);
    let (kind, d) = classify(e);
    build(py, kind, &text, &d).unwrap_or_else(|err| err)
}

fn build(py: Python<'_>, kind: Kind, text: &str, d: &Details) -> PyResult<PyErr> {
    let errors = py.import("nacsim._errors")?;
    let cls = errors.getattr(match kind {
        Kind::Config => "ConfigError",
        Kind::Data => "DataError",
        Kind::Other => "NacsimError",
    })?;
    let kw = PyDict::new(py);
    kw.set_item("file", &d.file)?;
    kw.set_item("field", &d.field)?;
    kw.set_item("value", &d.value)?;
    kw.set_item("rule", &d.rule)?;
    kw.set_item("line", d.line)?;
    kw.set_item("column", d.column)?;
    kw.set_item("errors", d.errors.clone())?;
    Ok(PyErr::from_value(cls.call((text,), Some(&kw))?))
}

/// `r` with its error turned into the Python exception ([`to_py`]).
pub fn py_result<T>(py: Python<'_>, r: Result<T, BoxError>) -> PyResult<T> {
    r.map_err(|e| to_py(py, e.as_ref()))
}
