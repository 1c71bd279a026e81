//! The crate's error type.

use nacsim_core::config::FieldError;

/// Why a layer cannot be programmed or run. Messages name the subsystem, the value and the
/// rule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config breaks one or more rules (each names its field, value and rule).
    #[error("crossbar: invalid config: {}", FieldError::join(.0))]
    InvalidConfig(Vec<FieldError>),
    /// The weight matrix has no rows or no columns.
    #[error("crossbar: weight is [{out}, {fan_in}]: both dimensions must be > 0")]
    EmptyWeight {
        /// Rows (outputs) given.
        out: usize,
        /// Columns (fan-in) given.
        fan_in: usize,
    },
    /// A weight is NaN or infinite.
    #[error("crossbar: weight[{out}, {fan_in}] = {value}: must be finite")]
    NonFiniteWeight {
        /// Output index.
        out: usize,
        /// Fan-in index.
        fan_in: usize,
        /// The value.
        value: f32,
    },
    /// The input has the wrong number of columns.
    #[error("crossbar: x has {cols} columns but the layer's fan-in is {fan_in}")]
    ShapeMismatch {
        /// Columns of `x`.
        cols: usize,
        /// Fan-in of the layer.
        fan_in: usize,
    },
    /// Layers given to [`ProgrammedLayer::run_trials`](crate::ProgrammedLayer::run_trials)
    /// do not convert their inputs alike (different geometry or DAC slices).
    #[error("crossbar: trials cannot share inputs: {0}")]
    IncompatibleTrials(String),
}
