//! `nacsim.Design`: a design file loaded once, its fields read and set by dotted path, each
//! change validated by the same rules as the file.

use std::path::PathBuf;

use nacsim_core::config::{FieldError, Validate};
use nacsim_scheduler::design::{Design as CoreDesign, DesignConfig, DesignError};
use nacsim_scheduler::sweep::{SweepValue, set_json_field};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};
use serde_json::Value;

use crate::errors::{BoxError, py_result};

/// A hardware design (a `models/designs/*.ron` file with its energy table and technology file),
/// loaded once and changed field by field with `set` (Python: `Design.set`).
#[pyclass(module = "nacsim._nacsim", name = "Design")]
#[derive(Clone)]
pub struct Design {
    /// The design in force.
    pub inner: CoreDesign,
}

/// A value given to [`Design::set`].
enum SetValue {
    /// A number or a name, written as a sweep writes its values.
    Sweep(SweepValue),
    /// `True` or `False`.
    Bool(bool),
    /// `None`: an optional field left out.
    Null,
}

impl std::fmt::Display for SetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetValue::Sweep(v) => write!(f, "{v}"),
            SetValue::Bool(b) => write!(f, "{b}"),
            SetValue::Null => f.write_str("None"),
        }
    }
}

fn set_value(v: &Bound<'_, PyAny>) -> PyResult<SetValue> {
    if v.is_none() {
        Ok(SetValue::Null)
    } else if v.is_instance_of::<PyBool>() {
        Ok(SetValue::Bool(v.extract()?))
    } else if v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>() {
        Ok(SetValue::Sweep(SweepValue::Number(v.extract()?)))
    } else if v.is_instance_of::<PyString>() {
        Ok(SetValue::Sweep(SweepValue::Text(v.extract()?)))
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "Design.set: value {} is a {}; give a number, a string (a name such as a device preset), a bool or None",
            v.repr()?,
            v.get_type().name()?
        )))
    }
}

/// The path in the sweep files' syntax (`engines[0].engine.Systolic.rows`) of a path written
/// with list indices as `.0` or `[0]`, enum variants named or skipped
/// (`engines.0.engine.rows`): each step looked up in `doc`.
///
/// # Errors
/// A step that names nothing there, with the fields that are there.
pub fn canonical_path(doc: &Value, path: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut cur = doc;
    let steps = path
        .split('.')
        .flat_map(|seg| seg.split('['))
        .map(|s| s.trim_end_matches(']'))
        .filter(|s| !s.is_empty());
    for step in steps {
        if let (Value::Array(items), Ok(i)) = (cur, step.parse::<usize>()) {
            cur = items.get(i).ok_or_else(|| {
                format!(
                    "{}: no list entry [{i}] (the list has {} entries)",
                    shown(&out),
                    items.len()
                )
            })?;
            out.push_str(&format!("[{i}]"));
            continue;
        }
        let Value::Object(map) = cur else {
            return Err(format!(
                "{}: is {cur}, which has no field `{step}`",
                shown(&out)
            ));
        };
        if let Some(next) = map.get(step) {
            push_key(&mut out, step);
            cur = next;
            continue;
        }
        // An enum variant (`{"Systolic": {...}}`) whose fields the path names directly.
        if map.len() == 1
            && let Some((variant, Value::Object(inner))) = map.iter().next()
            && let Some(next) = inner.get(step)
        {
            push_key(&mut out, variant);
            push_key(&mut out, step);
            cur = next;
            continue;
        }
        let fields: Vec<&str> = map.keys().map(String::as_str).collect();
        return Err(format!(
            "{}: no field `{step}` here (fields: {})",
            shown(&out),
            fields.join(", ")
        ));
    }
    if out.is_empty() {
        return Err("the path names no field".into());
    }
    Ok(out)
}

fn shown(prefix: &str) -> &str {
    if prefix.is_empty() {
        "the design"
    } else {
        prefix
    }
}

fn push_key(out: &mut String, key: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(key);
}

/// The JSON pointer (`/engines/0/engine/Systolic/rows`) of a canonical field path
/// (`engines[0].engine.Systolic.rows`).
fn pointer(canonical: &str) -> String {
    canonical
        .replace('[', ".")
        .replace(']', "")
        .split('.')
        .map(|s| format!("/{s}"))
        .collect()
}

fn value_at<'a>(doc: &'a Value, canonical: &str) -> Option<&'a Value> {
    doc.pointer(&pointer(canonical))
}

impl Design {
    fn file(&self) -> PathBuf {
        self.inner.path.clone()
    }

    fn bad(&self, field: &str, value: impl std::fmt::Display, rule: String) -> BoxError {
        Box::new(DesignError::Mapping {
            path: self.file(),
            error: FieldError::new(field, value, rule),
        })
    }

    fn set_rust(&mut self, path: &str, value: &SetValue) -> Result<(), BoxError> {
        let mut doc = serde_json::to_value(&self.inner.config)?;
        let field = canonical_path(&doc, path).map_err(|rule| self.bad(path, value, rule))?;
        let target = value_at(&doc, &field).cloned().unwrap_or(Value::Null);
        match value {
            SetValue::Sweep(v) => {
                set_json_field(&mut doc, &field, v).map_err(|rule| self.bad(&field, value, rule))?
            }
            SetValue::Bool(b) => {
                if !matches!(target, Value::Bool(_) | Value::Null) {
                    return Err(self.bad(&field, value, "the field is not true/false".into()));
                }
                set_at(&mut doc, &field, Value::Bool(*b));
            }
            SetValue::Null => set_at(&mut doc, &field, Value::Null),
        }
        let config: DesignConfig = serde_json::from_value(doc).map_err(|e| {
            self.bad(
                &field,
                value,
                format!("the design does not take this value: {e}"),
            )
        })?;
        // The same rules, the same words as a file holding the value.
        config.validate().map_err(|errors| -> BoxError {
            Box::new(DesignError::Config(
                nacsim_core::config::ConfigError::Invalid {
                    path: self.file(),
                    errors,
                },
            ))
        })?;
        self.inner.config = config;
        Ok(())
    }
}

/// JSON text as Python objects.
pub fn json_loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

fn set_at(doc: &mut Value, canonical: &str, v: Value) {
    if let Some(slot) = doc.pointer_mut(&pointer(canonical)) {
        *slot = v;
    }
}

#[pymethods]
impl Design {
    /// Load a design file (RON) with its energy preset and technology file.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let r = py.detach(|| CoreDesign::load(&path).map_err(|e| Box::new(e) as BoxError));
        Ok(Design {
            inner: py_result(py, r)?,
        })
    }

    /// The embedded default design (models/designs/systolic-int8.ron).
    #[staticmethod]
    fn default(py: Python<'_>) -> PyResult<Self> {
        let r = nacsim::cmd::defaults::design(None);
        Ok(Design {
            inner: py_result(py, r)?,
        })
    }

    /// Set the field at `path` to `value`, validated as the file would be.
    fn set(&mut self, py: Python<'_>, path: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = set_value(value)?;
        let r = self.set_rust(path, &v);
        py_result(py, r)
    }

    /// The value at `path` (a number, string, bool, None, list or dict).
    fn get<'py>(&self, py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyAny>> {
        let r = (|| -> Result<String, BoxError> {
            let doc = serde_json::to_value(&self.inner.config)?;
            let field = canonical_path(&doc, path).map_err(|rule| self.bad(path, "?", rule))?;
            Ok(value_at(&doc, &field)
                .cloned()
                .unwrap_or(Value::Null)
                .to_string())
        })();
        json_loads(py, &py_result(py, r)?)
    }

    /// The canonical spelling of `path` (`engines[0].engine.Systolic.rows`).
    fn resolve(&self, py: Python<'_>, path: &str) -> PyResult<String> {
        let r = (|| -> Result<String, BoxError> {
            let doc = serde_json::to_value(&self.inner.config)?;
            canonical_path(&doc, path).map_err(|rule| self.bad(path, "?", rule))
        })();
        py_result(py, r)
    }

    /// The whole design as a dict (the file's fields; enum variants as one-key dicts).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = serde_json::to_string(&self.inner.config).map_err(|e| Box::new(e) as BoxError);
        json_loads(py, &py_result(py, r)?)
    }

    /// An independent copy.
    fn copy(&self) -> Self {
        self.clone()
    }

    /// The file the design came from.
    #[getter]
    fn path(&self) -> String {
        self.inner.path.display().to_string()
    }

    /// The design's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.config.name.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "Design({:?} from {})",
            self.inner.config.name,
            self.inner.path.display()
        )
    }
}
