//! Every knob of the circulant engine, in serde form (RON, `deny_unknown_fields`): one B-MV
//! unit's arithmetic ([`BmvConfig`]), the parallel architecture around it ([`ArchConfig`]) and
//! the engine a design names ([`CirculantConfig`]: architecture, block size, power-of-two code
//! format, convention), with their checks. The code format itself, [`PotConfig`], lives with its
//! quantizer in [`pot`](crate::pot).

use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::{Convention, Error, LayerShape, PotConfig};

/// Lanes per row of the paper's B-MV: one 16×16 circulant per cycle, 256 BSUs, which is what
/// 409.6 GOPS at 800 MHz requires (note §2.1, \[P\] + \[D\]).
pub const GAMMA: usize = 16;

/// What an accumulator adder does when a sum leaves the `acc_bits` two's-complement range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Overflow {
    /// Keep the low `acc_bits` bits (a plain adder). The default: modular addition is
    /// associative, so the result is the exact sum modulo `2^acc_bits` in any order.
    #[default]
    Wrap,
    /// Clamp every sum to `[−2^(acc_bits−1), 2^(acc_bits−1) − 1]` (saturation logic).
    Saturate,
}

/// How a k > γ block is cut into γ×γ sub-blocks (note §2.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Split {
    /// Stride-α (polyphase) split: `X^β[m] = x[m·α + β]`. The only split under which the
    /// summary's pseudo-circulant equation is exact (note §2.3, verified \[D\]). The default.
    #[default]
    Polyphase,
    /// Contiguous split `X^β[m] = x[β·γ + m]`: the sub-blocks are Toeplitz, not circulant, so the
    /// pseudo-circulant form fails. Only for [`pseudo_circulant`](crate::pseudo_circulant)'s negative test.
    Contiguous,
}

/// Parameters of one B-MV unit's arithmetic. The paper gives none of the widths (note §5 #7);
/// every field is an inferred default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BmvConfig {
    /// Lanes γ per row, and the circulant size computed per cycle (default 16, note §2.1; a power
    /// of two in 2..=64).
    pub gamma: usize,
    /// Activation width A in bits, two's complement (default 16, as C-LSTM; note §5 #7; 2..=32).
    pub act_bits: u32,
    /// Accumulator width in bits (default 40, note §2.2; 2..=64).
    pub acc_bits: u32,
    /// Accumulator overflow behaviour (default [`Overflow::Wrap`]).
    pub overflow: Overflow,
    /// Largest supported block size (default 256: k ∈ {16·2^i} ≤ 256, note §5 #10).
    pub max_k: usize,
    /// Refuse layers whose worst-case sum does not fit `acc_bits` (default `true`); with `false`
    /// the accumulator wraps or saturates as configured.
    pub require_exact: bool,
}

impl Default for BmvConfig {
    fn default() -> Self {
        Self {
            gamma: GAMMA,
            act_bits: 16,
            acc_bits: 40,
            overflow: Overflow::Wrap,
            max_k: 256,
            require_exact: true,
        }
    }
}
impl BmvConfig {
    /// Check the parameters on their own.
    ///
    /// # Errors
    /// [`Error::Param`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        let p = |field, value: i64, rule| Err(Error::Param { field, value, rule });
        if !(self.gamma.is_power_of_two() && (2..=64).contains(&self.gamma)) {
            return p(
                "gamma",
                self.gamma as i64,
                "must be a power of two in 2..=64",
            );
        }
        if !(2..=32).contains(&self.act_bits) {
            return p("act_bits", i64::from(self.act_bits), "must be in 2..=32");
        }
        if !(2..=64).contains(&self.acc_bits) {
            return p("acc_bits", i64::from(self.acc_bits), "must be in 2..=64");
        }
        if self.max_k < self.gamma {
            return p("max_k", self.max_k as i64, "must be >= gamma");
        }
        Ok(())
    }
}

/// Order of the loops over output and input sub-vectors (note §2.4 recommends output-stationary
/// and asks for the order to be an option).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum LoopOrder {
    /// `for task-wave { for j, β { step } write }`: accumulators stay put, inputs are re-read
    /// once per wave.
    #[default]
    OutputStationary,
    /// `for j, β { for task-wave { step } }`: each input sub-vector is read once, every output
    /// needs its own accumulator.
    InputStationary,
}

/// A port width or bank size: matched to what the datapath needs, or a given number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Width {
    /// Exactly what one step needs at full rate (no stalls).
    #[default]
    Matched,
    /// A fixed number per cycle (ports) or in total (banks); > 0.
    Fixed(u64),
}

impl Width {
    /// The given number, or `matched`.
    pub(crate) fn or(self, matched: u64) -> u64 {
        match self {
            Self::Matched => matched,
            Self::Fixed(n) => n,
        }
    }
}

/// The configurable parallel architecture. Every default is an inference (note §5 #9, #11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchConfig {
    /// Arithmetic of each B-MV unit (γ, widths).
    pub bmv: BmvConfig,
    /// Number of B-MV units (default 1: 256 BSUs reach the paper's 409.6 GOPS at 800 MHz).
    pub num_bmv: usize,
    /// Pipeline stages from fetch to accumulate (default 5, note §2.2; ≥ 1).
    pub pipeline_depth: u32,
    /// Loop order (default output-stationary).
    pub loop_order: LoopOrder,
    /// Weight-buffer read width in bits per cycle (default matched: `num_bmv·γ·b`, i.e. 64 b at
    /// γ = 16, b = 4, note §4 item 11).
    pub weight_port_bits: Width,
    /// Input-buffer read width in activations per cycle (default matched: γ).
    pub input_port_acts: Width,
    /// Output writeback width in values per cycle (default matched: `num_bmv·γ`).
    pub output_port_values: Width,
    /// Accumulator registers (default matched to the loop order's need).
    pub acc_bank_values: Width,
}

impl Default for ArchConfig {
    fn default() -> Self {
        Self {
            bmv: BmvConfig::default(),
            num_bmv: 1,
            pipeline_depth: 5,
            loop_order: LoopOrder::OutputStationary,
            weight_port_bits: Width::Matched,
            input_port_acts: Width::Matched,
            output_port_values: Width::Matched,
            acc_bank_values: Width::Matched,
        }
    }
}

impl ArchConfig {
    /// Peak ops per cycle: `2·γ²·num_bmv` (shift + add per lane, note §5 #8): 512 for one B-MV.
    pub fn peak_ops_per_cycle(&self) -> u64 {
        let g = self.bmv.gamma as u64;
        2 * g * g * self.num_bmv as u64
    }

    /// Peak throughput in GOPS at `clock_mhz`: 409.6 for the default at 800 MHz (note §2.1).
    pub fn peak_gops(&self, clock_mhz: f64) -> f64 {
        self.peak_ops_per_cycle() as f64 * clock_mhz / 1000.0
    }

    /// Check the architecture on its own.
    ///
    /// # Errors
    /// [`Error::Param`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        self.bmv.validate()?;
        let p = |field, value: i64, rule| Err(Error::Param { field, value, rule });
        if self.num_bmv == 0 {
            return p("num_bmv", 0, "must be > 0");
        }
        if self.pipeline_depth == 0 {
            return p("pipeline_depth", 0, "must be > 0");
        }
        for (field, w) in [
            ("weight_port_bits", self.weight_port_bits),
            ("input_port_acts", self.input_port_acts),
            ("output_port_values", self.output_port_values),
            ("acc_bank_values", self.acc_bank_values),
        ] {
            if w == Width::Fixed(0) {
                return p(field, 0, "must be > 0");
            }
        }
        Ok(())
    }
}

/// The circulant engine of a design: architecture plus the compression it applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CirculantConfig {
    /// The configurable parallel architecture (B-MV units, γ, widths, ports, loop order,
    /// pipeline depth); every field has the crate's default (one B-MV of 16×16 lanes).
    #[serde(default)]
    pub arch: ArchConfig,
    /// Block size k of the block-circulant weight matrices (γ·2^i, at most `arch.bmv.max_k`).
    pub block: usize,
    /// Power-of-two code format of the defining vectors (bits b, rounding, exponent range).
    pub pot: PotConfig,
    /// Convention of the defining vectors (first row, the default, or first column).
    #[serde(default)]
    pub convention: Convention,
}

impl CirculantConfig {
    /// The B-MV shape of a `rows × cols` (outputs × fan-in) layer under this config.
    pub fn shape(&self, rows: usize, cols: usize) -> LayerShape {
        LayerShape {
            rows,
            cols,
            k: self.block,
            bits: self.pot.bits,
        }
    }

    /// Whether a layer of `shape` runs at the int8 seam: a shape the B-MV takes
    /// ([`BmvConfig::check_shape`]) and accumulators that fit 32 bits with int8 activations.
    ///
    /// # Errors
    /// Those of [`BmvConfig::check_shape`]; [`Error::EpilogueTooNarrow`].
    pub fn check_shape(&self, shape: &LayerShape) -> Result<(), Error> {
        self.arch.bmv.check_shape(shape)?;
        // The epilogue takes i32 accumulators: int8 activations times ±2^e over the fan-in
        // must fit.
        let needed = BmvConfig {
            act_bits: 8,
            ..self.arch.bmv
        }
        .required_acc_bits(shape.cols, self.pot.bits);
        if needed > 32 {
            return Err(Error::EpilogueTooNarrow {
                bits: self.pot.bits,
                fan_in: shape.cols,
                needed,
            });
        }
        Ok(())
    }
}

impl Validate for CirculantConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        if let Err(e) = self.arch.validate() {
            c.push(FieldError::new("arch", "…", e.to_string()));
        }
        let g = self.arch.bmv.gamma;
        c.check(
            self.block >= g && self.block.is_power_of_two() && self.block <= self.arch.bmv.max_k,
            "block",
            self.block,
            &format!(
                "the B-MV needs k = γ·2^i with γ = {g} and k ≤ arch.bmv.max_k = {}: use 16, 32, 64, 128 or 256",
                self.arch.bmv.max_k
            ),
        );
        c.check(
            (2..=8).contains(&self.pot.bits),
            "pot.bits",
            self.pot.bits,
            "must be in 2..=8 (1 sign bit + at least 1 exponent bit)",
        );
        c.finish()
    }
}
