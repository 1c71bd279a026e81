//! Energy tables: picojoules per action, costed against [`Counters`] after a run (cost layer).
//!
//! ```text
//! E = Σ_a count_a · e_a        (e_a in pJ per action, from the table)
//! ```
//!
//! A table is a RON file loaded with [`config::load`](crate::config::load):
//!
//! ```ron
//! (
//!     schema_version: 1,
//!     name: "cmos45-horowitz2014",
//!     source: "M. Horowitz, ISSCC 2014, 'Computing's energy problem', Fig. 1.1.9 (45 nm)",
//!     technology_nm: 45,
//!     energy_pj: {
//!         "int8_adds": 0.03,
//!         "int8_mults": 0.2,
//!         "sram_reads": 5.0,
//!     },
//! )
//! ```
//!
//! Every counted action must have an entry; a missing one is an error naming the action and the
//! table, never a silent zero.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{Checks, FieldError, Validate};
use crate::counters::Counters;
use crate::units::Picojoules;

/// The energy-table schema version this crate reads.
pub const ENERGY_SCHEMA_VERSION: u32 = 1;

/// Energy per action for one technology or design point, with the source of its numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyTable {
    /// File format version; must be [`ENERGY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Short identifier used in reports and errors, e.g. `cmos45-horowitz2014`.
    pub name: String,
    /// Where the numbers come from: `"<authors, venue, year, table>"`, or the scaling rule.
    pub source: String,
    /// Process node in nanometres, if the table is for one (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technology_nm: Option<u32>,
    /// True when the table is *calibrated*: fitted so that a design reproduces a paper's
    /// headline figure (e.g. 5.3 TOPS/W) rather than built up from per-action costs. Reports
    /// say so next to every energy they print (default: false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub calibrated: bool,
    /// Energy per action in picojoules, keyed by counter name (`shift_adds`, `sram_reads`).
    /// A key written twice is a parse error naming it (not a silent last-one-wins).
    #[serde(deserialize_with = "unique_keys")]
    pub energy_pj: BTreeMap<String, f64>,
}

/// Largest energy of one action (or one byte or bit moved) a table or design accepts: 1e9 pJ
/// = 1 mJ, orders of magnitude above any device; beyond it totals overflow towards infinity.
pub const MAX_ACTION_PJ: f64 = 1e9;

/// Deserializes a map refusing a key that appears twice (serde's `BTreeMap` keeps the last).
///
/// # Errors
/// A `duplicate key` message naming the key.
pub fn unique_keys<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Visit<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map from action names to numbers")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = m.next_entry::<String, V>()? {
                if out.contains_key(&k) {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate key {k:?}: each action may be priced once; remove one of the entries"
                    )));
                }
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Visit(std::marker::PhantomData))
}

/// The energy of a run: the total and its split by action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyReport {
    /// Name of the table used.
    pub table: String,
    /// Sum over actions, in pJ.
    pub total: Picojoules,
    /// `count · e_action` per counted action, in pJ.
    pub by_action: BTreeMap<String, Picojoules>,
}

/// Errors from costing counters or deriving a table.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EnergyError {
    /// Actions were counted (with a non-zero count) that the table has no entry for.
    #[error(
        "energy table `{table}` has no entry for counted action(s) {}; add them to its energy_pj",
        quoted_list(actions)
    )]
    MissingActions {
        /// The table's name.
        table: String,
        /// The missing action names, in lexicographic order.
        actions: Vec<String>,
    },
    /// A scaling factor was negative, NaN or infinite.
    #[error("energy table `{table}`: scaling factor {factor} must be finite and >= 0")]
    InvalidFactor {
        /// The table's name.
        table: String,
        /// The rejected factor.
        factor: f64,
    },
}

/// `` `a`, `b` `` for a message.
fn quoted_list(actions: &[String]) -> String {
    let list: Vec<String> = actions.iter().map(|a| format!("`{a}`")).collect();
    list.join(", ")
}

impl EnergyTable {
    /// Energy of one `action` in pJ, if the table has it.
    pub fn get(&self, action: &str) -> Option<Picojoules> {
        self.energy_pj.get(action).copied().map(Picojoules)
    }

    /// Costs `counters`: `E = Σ count_a · e_a`.
    ///
    /// Actions registered with a count of 0 and absent from the table are skipped (they cost
    /// nothing whatever their price); zero-count actions present in the table appear with 0 pJ.
    ///
    /// # Errors
    ///
    /// [`EnergyError::MissingActions`] listing every counted action the table lacks.
    pub fn cost(&self, counters: &Counters) -> Result<EnergyReport, EnergyError> {
        let mut by_action = BTreeMap::new();
        let mut missing = Vec::new();
        for (action, n) in counters.iter() {
            match self.energy_pj.get(action) {
                Some(&e) => {
                    by_action.insert(action.to_owned(), Picojoules(n as f64 * e));
                }
                None if n == 0 => {}
                None => missing.push(action.to_owned()),
            }
        }
        if !missing.is_empty() {
            return Err(EnergyError::MissingActions {
                table: self.name.clone(),
                actions: missing,
            });
        }
        Ok(EnergyReport {
            table: self.name.clone(),
            total: by_action.values().sum(),
            by_action,
        })
    }

    /// A table whose every energy is multiplied by `factor`, named `new_name`.
    ///
    /// Uniform scaling is the rule for moving a table between nodes or voltages when only an
    /// aggregate ratio is known, e.g. dynamic energy ∝ C·V², so 45 nm → 22 nm at equal V with
    /// C ∝ feature size gives `factor = 22/45`. `rule` says which rule and ratio were used; it is
    /// recorded in the new `source` together with the original source, so reports stay traceable.
    /// `technology_nm` is cleared, since a scaled table is an estimate, not a measured node.
    ///
    /// # Errors
    ///
    /// [`EnergyError::InvalidFactor`] if `factor` is negative, NaN or infinite.
    pub fn scaled(&self, factor: f64, new_name: &str, rule: &str) -> Result<Self, EnergyError> {
        if !(factor.is_finite() && factor >= 0.0) {
            return Err(EnergyError::InvalidFactor {
                table: self.name.clone(),
                factor,
            });
        }
        Ok(EnergyTable {
            schema_version: ENERGY_SCHEMA_VERSION,
            name: new_name.to_owned(),
            source: format!("{rule}: x{factor} of `{}` ({})", self.name, self.source),
            technology_nm: None,
            calibrated: self.calibrated,
            energy_pj: self
                .energy_pj
                .iter()
                .map(|(k, &v)| (k.clone(), v * factor))
                .collect(),
        })
    }
}

impl Validate for EnergyTable {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.schema_version(self.schema_version, ENERGY_SCHEMA_VERSION);
        c.check(
            !self.name.trim().is_empty(),
            "name",
            "\"\"",
            "must not be empty",
        );
        c.check(
            !self.source.trim().is_empty(),
            "source",
            "\"\"",
            "must cite where the numbers come from",
        );
        if let Some(nm) = self.technology_nm {
            c.check(nm > 0, "technology_nm", nm, "must be at least 1");
        }
        for (action, &e) in &self.energy_pj {
            c.check(
                e.is_finite() && (0.0..=MAX_ACTION_PJ).contains(&e),
                &format!("energy_pj.{action}"),
                crate::config::num(e),
                &format!("must be finite and >= 0 pJ, at most {MAX_ACTION_PJ:e} pJ per action"),
            );
        }
        c.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, parse};
    use std::path::Path;

    const TABLE: &str = r#"(
        schema_version: 1,
        name: "t45",
        source: "Horowitz ISSCC 2014",
        technology_nm: 45,
        energy_pj: { "shift_adds": 0.5, "sram_reads": 5.0 },
    )"#;

    fn table() -> EnergyTable {
        parse(TABLE, Path::new("t45.ron")).unwrap()
    }

    #[test]
    fn cost_is_count_times_energy() {
        let c: Counters = [("shift_adds", 10), ("sram_reads", 2)]
            .into_iter()
            .collect();
        let r = table().cost(&c).unwrap();
        assert_eq!(r.total, Picojoules(15.0));
        assert_eq!(r.by_action["shift_adds"], Picojoules(5.0));
        assert_eq!(r.by_action["sram_reads"], Picojoules(10.0));
    }

    #[test]
    fn missing_action_is_an_error_naming_it_and_the_table() {
        let c: Counters = [
            ("shift_adds", 1),
            ("adc_conversions", 3),
            ("write_pulses", 0),
        ]
        .into_iter()
        .collect();
        let err = table().cost(&c).unwrap_err();
        assert_eq!(
            err,
            EnergyError::MissingActions {
                table: "t45".into(),
                actions: vec!["adc_conversions".into()]
            }
        );
        assert!(err.to_string().contains("`t45`") && err.to_string().contains("`adc_conversions`"));
    }

    #[test]
    fn validation_rejects_negative_and_nan_and_empty_source() {
        let text = r#"(schema_version: 2, name: "x", source: " ", energy_pj: {"a_ops": -1.0, "b_ops": NaN})"#;
        let err = parse::<EnergyTable>(text, Path::new("x.ron")).unwrap_err();
        let ConfigError::Invalid { errors, .. } = &err else {
            panic!("{err:?}")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "schema_version",
                "source",
                "energy_pj.a_ops",
                "energy_pj.b_ops"
            ]
        );
        assert!(
            err.to_string()
                .contains("x.ron: energy_pj.a_ops = -1: must be finite and >= 0 pJ")
        );
    }

    #[test]
    fn scaled_multiplies_and_records_rule() {
        let s = table()
            .scaled(0.5, "t22-est", "CV^2 with C ~ node, 22/45 ~ 0.5")
            .unwrap();
        assert_eq!(s.get("sram_reads"), Some(Picojoules(2.5)));
        assert!(s.source.contains("CV^2") && s.source.contains("Horowitz"));
        assert!(s.validate().is_ok());
        assert!(table().scaled(f64::NAN, "x", "r").is_err());
        assert!(table().scaled(-1.0, "x", "r").is_err());
    }

    #[test]
    fn a_duplicated_key_is_refused_by_name() {
        let text = TABLE.replace(
            "\"shift_adds\": 0.5,",
            "\"shift_adds\": 0.5, \"shift_adds\": 9.0,",
        );
        let err = parse::<EnergyTable>(&text, Path::new("t45.ron")).unwrap_err();
        let s = err.to_string();
        assert!(matches!(err, ConfigError::Parse { .. }), "{s}");
        assert!(s.contains("duplicate key \"shift_adds\""), "{s}");
    }

    #[test]
    fn an_energy_beyond_the_bound_is_refused() {
        let text = TABLE.replace("0.5", "1e308");
        let s = parse::<EnergyTable>(&text, Path::new("t45.ron"))
            .unwrap_err()
            .to_string();
        assert!(s.contains("energy_pj.shift_adds = 1e308"), "{s}");
        assert!(s.contains("at most 1e9 pJ"), "{s}");
    }
}
