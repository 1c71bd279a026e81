//! The crate's error type.

use std::fmt;

/// Why a product unit could not be built, or an operand could not be used.
///
/// `Display` names the field (a dotted path under `sine.`), the value and the minimum or limit that
/// would work, in the house form `sine.<field> = <value>: <rule>`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration field breaks a rule.
    #[error("{field} = {value}: {rule}")]
    Config {
        /// Dotted path of the field, e.g. `sine.out_frac_bits`.
        field: String,
        /// The offending value.
        value: String,
        /// The rule with its limit, e.g. `must be at least frac_bits = 8`.
        rule: String,
    },
    /// A pre-rounding table value lies within
    /// [`TIE_MARGIN_ULPS`](crate::product::TIE_MARGIN_ULPS) ulps of a rounding tie, so the rounded
    /// entry could depend on the platform's libm (note §2.1, "Table generation").
    #[error(
        "sine: {table} table entry {index} = {value} is within 8 ulps of a rounding tie; \
         commit the table as golden data instead of generating it"
    )]
    AmbiguousRounding {
        /// Which table (`versine`, `cos`, `sin`).
        table: &'static str,
        /// The entry index `k`.
        index: u32,
        /// The pre-rounding value `2^F · (…)`.
        value: f64,
    },
    /// A model layer the bit-exact [`SineNetwork`](crate::SineNetwork) cannot run.
    #[error("sine: layer {layer}: {reason}")]
    Unsupported {
        /// The layer's name in the model.
        layer: String,
        /// Why, and what would work.
        reason: String,
    },
    /// An operand pair whose table index `|i ± j|` is beyond the built table.
    #[error("sine: {unit} unit needs table index {index}, beyond its last entry {max_index}")]
    OutOfRange {
        /// The unit (`versine`, `cos`, `quarter_square`, `cordic`, `sin_cos`).
        unit: &'static str,
        /// The index that was needed.
        index: i64,
        /// The largest index the table holds.
        max_index: u32,
    },
}

impl Error {
    /// A [`Error::Config`] for `sine.<field>`.
    pub(crate) fn config(field: &str, value: impl fmt::Display, rule: impl Into<String>) -> Self {
        Error::Config {
            field: format!("sine.{field}"),
            value: value.to_string(),
            rule: rule.into(),
        }
    }
}
