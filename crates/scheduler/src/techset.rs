//! A technology preset with fields set by the design (`technology: PresetWith(preset: …, set:
//! {…})`), as device presets take overrides: the preset's numbers stay cited, the changed ones
//! say who changed them.
//!
//! A path names a field of the technology file the way the file writes it, dotted:
//! `tia.area_um2`, `sram.points.2.leakage_uw` (list entries by index), `adc.Flash.points.0.area_um2`
//! (map entries by key), `cells.kinds.OneT1R.f2`. A set value is a number, a string or a bool.
//! Every object that carries a `source` and holds a changed number gets
//! ` [set by design D: PATH = VALUE]` appended to its source unless the design also sets that
//! source; the result is validated with the technology file's own rules.

use std::collections::BTreeMap;
use std::path::Path;

use nacsim_core::config::{FieldError, Validate};
use nacsim_core::tech::Technology;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One value a design sets in its technology preset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TechValue {
    /// A number (areas in µm², leakage in µW, F², node in nm, …).
    Number(f64),
    /// A bool (`inferred`).
    Bool(bool),
    /// Text (`source`, `name`).
    Text(String),
}

impl std::fmt::Display for TechValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TechValue::Number(x) => write!(f, "{x}"),
            TechValue::Bool(b) => write!(f, "{b}"),
            TechValue::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// `tech` with the fields of `set` changed (module docs). `design` names the design in the
/// appended sources.
///
/// # Errors
/// One [`FieldError`] per bad entry, on `technology.set."PATH"`: a path the file does not have,
/// a value of the wrong kind (text for a number, a fraction for an integer), or a value the
/// technology file's rules refuse.
pub fn apply(
    tech: &Technology,
    set: &BTreeMap<String, TechValue>,
    design: &Path,
) -> Result<Technology, Vec<FieldError>> {
    let mut doc = serde_json::to_value(tech).map_err(|e| {
        vec![FieldError::new(
            "technology",
            "PresetWith",
            format!("the preset cannot be represented: {e}"),
        )]
    })?;
    let field = |p: &str| format!("technology.set.{p:?}");
    let mut errors = Vec::new();
    let name = design.file_name().map_or_else(
        || design.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    for (path, value) in set {
        let parts: Vec<&str> = path.split('.').collect();
        let Some(slot) = slot(&mut doc, &parts) else {
            errors.push(FieldError::new(
                field(path),
                value.to_string(),
                "is not a field of the technology file (dotted path as the file writes it, e.g. tia.area_um2, sram.points.0.leakage_uw, adc.Sar.points.4.area_um2)",
            ));
            continue;
        };
        let new = match (slot.clone(), value) {
            (Value::Number(n), TechValue::Number(x)) if n.is_u64() || n.is_i64() => {
                if x.fract() != 0.0 || *x < 0.0 || *x > u32::MAX as f64 {
                    errors.push(FieldError::new(
                        field(path),
                        value.to_string(),
                        "must be a whole number (the field is an integer)",
                    ));
                    continue;
                }
                Value::from(*x as u64)
            }
            (Value::Number(_), TechValue::Number(x)) => match serde_json::Number::from_f64(*x) {
                Some(n) => Value::Number(n),
                None => {
                    errors.push(FieldError::new(
                        field(path),
                        value.to_string(),
                        "must be finite",
                    ));
                    continue;
                }
            },
            (Value::String(_), TechValue::Text(s)) => Value::String(s.clone()),
            (Value::Bool(_), TechValue::Bool(b)) => Value::Bool(*b),
            (old, _) => {
                errors.push(FieldError::new(
                    field(path),
                    value.to_string(),
                    format!("must be {}", kind(&old)),
                ));
                continue;
            }
        };
        *slot = new;
        // The nearest enclosing object with a source says what changed, unless the design
        // sets that source itself.
        if !matches!(value, TechValue::Text(_)) {
            for depth in (0..parts.len()).rev() {
                let owner = &parts[..depth];
                let source_path = owner
                    .iter()
                    .chain(std::iter::once(&"source"))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(".");
                if let Some(Value::String(s)) = slot_of(&mut doc, owner, "source") {
                    if !set.contains_key(&source_path) {
                        s.push_str(&format!(" [set by design {name}: {path} = {value}]"));
                    }
                    break;
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let t: Technology = serde_json::from_value(doc).map_err(|e| {
        vec![FieldError::new(
            "technology.set",
            format!("{} fields", set.len()),
            e.to_string(),
        )]
    })?;
    t.validate().map_err(|es| {
        es.into_iter()
            .map(|e| {
                FieldError::new(
                    format!("technology (after set) {}", e.field),
                    e.value,
                    e.rule,
                )
            })
            .collect::<Vec<_>>()
    })?;
    Ok(t)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Bool(_) => "true or false",
        _ => "a single value (not a whole table)",
    }
}

/// The value at `parts` (object keys or list indices), if there is one.
fn slot<'a>(doc: &'a mut Value, parts: &[&str]) -> Option<&'a mut Value> {
    let mut v = doc;
    for p in parts {
        v = match v {
            Value::Object(m) => m.get_mut(*p)?,
            Value::Array(a) => a.get_mut(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// The field `key` of the object at `owner`, if it has one.
fn slot_of<'a>(doc: &'a mut Value, owner: &[&str], key: &str) -> Option<&'a mut Value> {
    match slot(doc, owner)? {
        Value::Object(m) => m.get_mut(key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tech() -> Technology {
        let (_, text) = crate::design::EMBEDDED_TECHNOLOGIES[0];
        nacsim_core::config::parse(text, Path::new("45nm.ron")).unwrap()
    }

    fn set(entries: &[(&str, TechValue)]) -> BTreeMap<String, TechValue> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect()
    }

    fn errors(entries: &[(&str, TechValue)]) -> String {
        apply(&tech(), &set(entries), Path::new("d.ron"))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn nested_entries_change_and_their_sources_say_who_changed_them() {
        let t0 = tech();
        let t = apply(
            &t0,
            &set(&[
                ("adc.Sar.points.4.area_um2", TechValue::Number(3000.0)),
                ("sram.points.0.leakage_uw", TechValue::Number(1.5)),
                ("tia.leakage_uw", TechValue::Number(0.0)),
                ("tia.source", TechValue::Text("our test chip".into())),
            ]),
            Path::new("x/d.ron"),
        )
        .unwrap();
        let sar = &t.adc[&nacsim_core::tech::AdcArch::Sar];
        assert_eq!(sar.points[4].area_um2, 3000.0);
        assert!(
            sar.source
                .ends_with("[set by design d.ron: adc.Sar.points.4.area_um2 = 3000]")
        );
        assert_eq!(t.sram.points[0].leakage_uw, 1.5);
        assert!(t.sram.source.contains("sram.points.0.leakage_uw = 1.5"));
        // A source the design sets replaces the preset's, with nothing appended.
        assert_eq!(t.tia.leakage_uw, 0.0);
        assert_eq!(t.tia.source, "our test chip");
        // Everything else is the preset's.
        assert_eq!(t.pe_int8, t0.pe_int8);
        assert_eq!(
            t.adc[&nacsim_core::tech::AdcArch::Flash],
            t0.adc[&nacsim_core::tech::AdcArch::Flash]
        );
    }

    #[test]
    fn bad_entries_are_errors_naming_the_path() {
        let e = errors(&[("tia.aera_um2", TechValue::Number(1.0))]);
        assert!(
            e.contains(
                "technology.set.\"tia.aera_um2\" = 1: is not a field of the technology file"
            ),
            "{e}"
        );
        let e = errors(&[("tia.area_um2", TechValue::Text("big".into()))]);
        assert!(
            e.contains("technology.set.\"tia.area_um2\" = \"big\": must be a number"),
            "{e}"
        );
        let e = errors(&[("node_nm", TechValue::Number(32.5))]);
        assert!(e.contains("must be a whole number"), "{e}");
        let e = errors(&[("tia.area_um2", TechValue::Number(-1.0))]);
        assert!(e.contains("technology (after set) tia.area_um2"), "{e}");
        let e = errors(&[("sram", TechValue::Number(1.0))]);
        assert!(
            e.contains("must be a single value (not a whole table)"),
            "{e}"
        );
    }
}
