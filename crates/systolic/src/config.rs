//! The array's parameters: size, dataflow, accumulator width and overflow rule, double buffering
//! of the stationary operand, and the width of the vector unit behind the array.

use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

/// Largest accepted `rows` or `cols` (a 4096×4096 array is far beyond any built design).
pub const MAX_DIM: usize = 4096;

/// Default accumulator width in bits: int8 × int8 products summed in int32, as in TPU v1 and
/// every int8 inference accelerator that quotes an int32 accumulator.
pub const DEFAULT_ACC_BITS: u32 = 32;

/// Which operand stays in the processing elements (PEs) while the others move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Dataflow {
    /// Weight stationary (`WS` in RON): each PE holds one weight `w[n, k]`; inputs move right
    /// along the rows (one row of the array per fan-in index `k`) and partial sums move down the
    /// columns (one column per output `n`). The dataflow of TPU v1 and SCALE-Sim's `ws`.
    #[serde(rename = "WS")]
    WeightStationary,
    /// Output stationary (`OS` in RON): each PE owns one output `y[m, n]` and accumulates it in
    /// place; inputs move right along the rows (one row per `m`), weights move down the columns
    /// (one column per `n`). SCALE-Sim's `os`.
    #[serde(rename = "OS")]
    OutputStationary,
}

/// What an accumulator adder does when a sum leaves the `acc_bits` two's-complement range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Overflow {
    /// Keep the low `acc_bits` bits (two's-complement wrap-around), what a plain adder does.
    /// The default: it costs no logic, and because modular addition is associative the result
    /// does not depend on the order in which the array adds.
    #[default]
    Wrap,
    /// Clamp every sum to `[-2^(acc_bits-1), 2^(acc_bits-1) - 1]`, an adder with saturation
    /// logic. The result then depends on the order of additions once any sum saturates.
    Saturate,
}

/// An R×C int8 systolic MAC array.
///
/// RON, with every defaulted field written out:
///
/// ```
/// use std::path::Path;
/// use nacsim_systolic::{Dataflow, SystolicConfig};
/// let cfg: SystolicConfig = nacsim_core::config::parse(
///     "(rows: 32, cols: 32, dataflow: WS, acc_bits: 32, overflow: Wrap,
///       double_buffer: true, requant_lanes: 32)",
///     Path::new("array.ron"),
/// )?;
/// assert_eq!(cfg.requant_lanes(), 32);
/// let defaults = SystolicConfig::new(32, 32, Dataflow::WeightStationary);
/// assert_eq!(SystolicConfig { requant_lanes: None, ..cfg }, defaults);
/// # Ok::<(), nacsim_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystolicConfig {
    /// Rows of PEs, `R` (required; 1..=4096). Under WS a row holds one fan-in index `k` of a
    /// weight tile; under OS one output row `m`.
    pub rows: usize,
    /// Columns of PEs, `C` (required; 1..=4096). A column holds one output `n` in both dataflows.
    pub cols: usize,
    /// Which operand is stationary (required).
    pub dataflow: Dataflow,
    /// Width of every accumulating adder (PE partial-sum adder, accumulator buffer adder) in bits
    /// (default 32; 16..=32, since results are `i32`).
    #[serde(default = "default_acc_bits")]
    pub acc_bits: u32,
    /// What an adder does on overflow (default [`Overflow::Wrap`]).
    #[serde(default)]
    pub overflow: Overflow,
    /// Whether the stationary operand has shadow registers in every PE (default `true`).
    ///
    /// WS: shadow weight registers; the next tile's weights are written while the current tile
    /// computes and swapped in at no cost. OS: shadow output registers; a finished tile's outputs
    /// move there at no cost and are read out while the next tile computes. Without them the
    /// weight load (WS) or the output read-out (OS) stalls the array. See `docs/engines/systolic.md`.
    #[serde(default = "default_double_buffer")]
    pub double_buffer: bool,
    /// Lanes of the vector unit behind the array that requantizes outputs and pools, in
    /// elements per cycle (default: `cols`, enough to keep up with the output edge).
    #[serde(default)]
    pub requant_lanes: Option<usize>,
}

fn default_acc_bits() -> u32 {
    DEFAULT_ACC_BITS
}

fn default_double_buffer() -> bool {
    true
}

impl SystolicConfig {
    /// A `rows`×`cols` array with `dataflow` and every other field at its default.
    pub fn new(rows: usize, cols: usize, dataflow: Dataflow) -> Self {
        SystolicConfig {
            rows,
            cols,
            dataflow,
            acc_bits: DEFAULT_ACC_BITS,
            overflow: Overflow::Wrap,
            double_buffer: default_double_buffer(),
            requant_lanes: None,
        }
    }

    /// Lanes of the vector unit: `requant_lanes`, or `cols` when not given.
    pub fn requant_lanes(&self) -> usize {
        self.requant_lanes.unwrap_or(self.cols)
    }

    /// The accumulator format (`acc_bits`, `overflow`) every adder of the array uses.
    pub fn acc(&self) -> AccFormat {
        AccFormat::new(self.acc_bits, self.overflow)
    }

    /// Largest fan-in `K` for which no sum of int8 × int8 products can leave the accumulator
    /// range, whatever the order of additions: `⌊(2^(acc_bits-1) - 1) / 2^14⌋` (each product lies
    /// in `[-16256, 16384]`). Up to this `K`, [`gemm_fast`](crate::gemm_fast) equals the array.
    pub fn max_exact_fan_in(&self) -> usize {
        let max = (1i64 << (self.acc_bits.clamp(16, 32) - 1)) - 1;
        (max / 16384) as usize
    }
}

impl Validate for SystolicConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        let dim_rule = "must be in 1..=4096";
        c.check(
            (1..=MAX_DIM).contains(&self.rows),
            "rows",
            self.rows,
            dim_rule,
        );
        c.check(
            (1..=MAX_DIM).contains(&self.cols),
            "cols",
            self.cols,
            dim_rule,
        );
        c.check(
            (16..=32).contains(&self.acc_bits),
            "acc_bits",
            self.acc_bits,
            "must be in 16..=32 (an int8 product needs 16 bits; results are i32)",
        );
        if let Some(l) = self.requant_lanes {
            c.check(
                (1..=MAX_DIM).contains(&l),
                "requant_lanes",
                l,
                "must be in 1..=4096",
            );
        }
        c.finish()
    }
}

/// A two's-complement accumulator of `bits` bits with an overflow rule: the adder every PE and
/// the accumulator buffer use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccFormat {
    shift: u32,
    min: i32,
    max: i32,
    overflow: Overflow,
}

impl AccFormat {
    /// An adder of `bits` bits (clamped to 16..=32) with `overflow`.
    pub fn new(bits: u32, overflow: Overflow) -> Self {
        let bits = bits.clamp(16, 32);
        let max = ((1i64 << (bits - 1)) - 1) as i32;
        AccFormat {
            shift: 32 - bits,
            min: -max - 1,
            max,
            overflow,
        }
    }

    /// Width in bits (16..=32).
    pub fn bits(self) -> u32 {
        32 - self.shift
    }

    /// The overflow rule.
    pub fn overflow(self) -> Overflow {
        self.overflow
    }

    /// `a + b` as the adder computes it; `a` must already be in range (`b` may be any `i32`
    /// product or partial sum that is itself in range).
    #[inline(always)]
    pub fn add(self, a: i32, b: i32) -> i32 {
        match self.overflow {
            Overflow::Wrap => (a.wrapping_add(b) << self.shift) >> self.shift,
            Overflow::Saturate => a.saturating_add(b).clamp(self.min, self.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn defaults_and_bad_values_name_field_value_and_rule() {
        let cfg: SystolicConfig =
            nacsim_core::config::parse("(rows: 4, cols: 8, dataflow: OS)", Path::new("a.ron"))
                .unwrap();
        assert_eq!(cfg.acc_bits, 32);
        assert_eq!(cfg.overflow, Overflow::Wrap);
        assert!(cfg.double_buffer);
        assert_eq!(cfg.requant_lanes(), 8);
        let err = nacsim_core::config::parse::<SystolicConfig>(
            "(rows: 0, cols: 8, dataflow: WS, acc_bits: 8, requant_lanes: 0)",
            Path::new("a.ron"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("a.ron: rows = 0: must be in 1..=4096"),
            "{err}"
        );
        assert!(err.contains("acc_bits = 8: must be in 16..=32"), "{err}");
        assert!(
            err.contains("requant_lanes = 0: must be in 1..=4096"),
            "{err}"
        );
        let err = nacsim_core::config::parse::<SystolicConfig>(
            "(rows: 4, cols: 8, dataflow: WS, colz: 3)",
            Path::new("a.ron"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("colz"), "{err}");
    }

    #[test]
    fn adder_wraps_or_saturates_at_acc_bits() {
        let w16 = AccFormat::new(16, Overflow::Wrap);
        assert_eq!(w16.add(32767, 1), -32768);
        assert_eq!(w16.add(-32768, -1), 32767);
        let s16 = AccFormat::new(16, Overflow::Saturate);
        assert_eq!(s16.add(32767, 1), 32767);
        assert_eq!(s16.add(-32768, -16384), -32768);
        let w32 = AccFormat::new(32, Overflow::Wrap);
        assert_eq!(w32.add(i32::MAX, 1), i32::MIN);
        let s32 = AccFormat::new(32, Overflow::Saturate);
        assert_eq!(s32.add(i32::MAX, 1), i32::MAX);
        let cfg = SystolicConfig::new(2, 2, Dataflow::WeightStationary);
        assert_eq!(cfg.max_exact_fan_in(), 131_071);
    }
}
