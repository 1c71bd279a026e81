//! The crate's error type.

use nacsim_nn::quant::QuantError;

/// Why a block-circulant layer, quantizer or datapath configuration is impossible, or why an
/// input does not fit it. Messages read `<field> = <value>: <rule>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The block size is unusable (zero, or not what the architecture needs).
    #[error("k = {k}: {rule}")]
    BlockSize {
        /// Block size given.
        k: usize,
        /// The rule it breaks.
        rule: String,
    },
    /// A layer dimension is zero.
    #[error("{what} = 0: must be > 0")]
    EmptyShape {
        /// Which dimension (`rows` or `cols`).
        what: &'static str,
    },
    /// A slice has the wrong length.
    #[error("{what}: expected {expected} values, got {got}")]
    Length {
        /// Which slice.
        what: &'static str,
        /// Length required.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The power-of-two quantizer rejected its parameters.
    #[error("circulant pot quantizer: {0}")]
    Quant(#[from] QuantError),
    /// A calibration found no non-zero finite weight to set the exponent range from.
    #[error("circulant pot quantizer: max |w| = {0}: must be finite and > 0")]
    MaxAbs(f64),
    /// A datapath parameter is outside its supported range.
    #[error("circulant.{field} = {value}: {rule}")]
    Param {
        /// Dotted field name.
        field: &'static str,
        /// Value given.
        value: i64,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The accumulator cannot hold the worst-case sum of the layer.
    #[error(
        "circulant.acc_bits = {acc_bits}: too narrow for a layer with {fan_in} inputs, \
         {act_bits}-bit activations and {bits}-bit codes (needs {needed})"
    )]
    AccTooNarrow {
        /// Accumulator width given.
        acc_bits: u32,
        /// Width needed for an exact result.
        needed: u32,
        /// Inputs per output (padded).
        fan_in: usize,
        /// Activation width.
        act_bits: u32,
        /// Code width b.
        bits: u32,
    },
    /// An activation does not fit the configured activation width.
    #[error("activation x[{index}] = {value}: outside the {act_bits}-bit two's-complement range")]
    Activation {
        /// Position in the input vector.
        index: usize,
        /// Value given.
        value: i64,
        /// Activation width.
        act_bits: u32,
    },
    /// A buffer or register bank is too small for the layer under the chosen loop order.
    #[error("circulant.{field} = {value}: too small, the layer needs {needed}")]
    Capacity {
        /// Dotted field name.
        field: &'static str,
        /// Size given.
        value: u64,
        /// Size needed.
        needed: u64,
    },
    /// A layer's accumulators do not fit the 32-bit integer epilogue of the int8 seam
    /// ([`DenseLayer`](crate::DenseLayer)): int8 activations times `±2^e` over the fan-in.
    #[error(
        "{bits}-bit power-of-two codes over fan-in {fan_in} need {needed}-bit accumulators, \
         more than the 32 bits the scheduler's epilogue takes; use pot.bits ≤ 5"
    )]
    EpilogueTooNarrow {
        /// Code width b.
        bits: u32,
        /// Inputs per output (padded).
        fan_in: usize,
        /// Width needed for an exact result.
        needed: u32,
    },
    /// A step of compiling a layer failed: `stage` is `block` (projection onto block-circulant
    /// matrices) or `pot` (power-of-two quantization).
    #[error("{stage}: {source}")]
    Compile {
        /// The failing step.
        stage: &'static str,
        /// Its error.
        source: Box<Error>,
    },
}
