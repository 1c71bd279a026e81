//! Every knob of the sine engine, in serde form (RON, `deny_unknown_fields`): the product unit
//! ([`ProductConfig`], [`ProductKind`]), the MAC datapath ([`DatapathConfig`], [`RomConfig`]),
//! the bit-exact network ([`SineNetworkConfig`]) and the engine a design names
//! ([`SineEngineConfig`]: numerics plus parallelism), with their [`Validate`] rules.
//!
//! Building a config into hardware is elsewhere: [`ProductConfig::build`] in
//! [`product`](crate::product), [`DatapathConfig::build`] in [`datapath`](crate::datapath),
//! [`SineNetwork::new`](crate::SineNetwork::new) in [`network`](crate::network).

use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::activation::{InputEncoding, RectifiedSine};
use crate::datapath::Datapath;
use crate::error::Error;
use crate::format::{CodeRounding, MAX_FRAC_BITS, MAX_OUT_FRAC_BITS, ProductFormat, half_pi_code};

/// Which product unit to build (serde; RON `Versine`, `CosLiteral`, `QuarterSquare`,
/// `CoarseVersine(drop_bits: 2)`,
/// `Cordic(iterations: 16, guard_bits: 8)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ProductKind {
    /// [`VersineTable`](crate::product::VersineTable), the canonical form (default; note §2.1 "implement this").
    #[default]
    Versine,
    /// [`CosTable`](crate::product::CosTable), the paper-literal form (note §2.1).
    CosLiteral,
    /// [`QuarterSquareTable`](crate::product::QuarterSquareTable), the exact baseline (note §1.3).
    QuarterSquare,
    /// [`CoarseVersineTable`](crate::product::CoarseVersineTable) with `drop_bits` index bits dropped (note §2.4; not recommended).
    CoarseVersine {
        /// Index bits dropped, `d` (0..=16).
        drop_bits: u32,
    },
    /// [`Cordic`](crate::product::Cordic) with `iterations` stages (≥ 1; note §2.5 table uses 8–24) and `guard_bits`
    /// below the product LSB ([`DEFAULT_CORDIC_GUARD_BITS`](crate::product::DEFAULT_CORDIC_GUARD_BITS) = 8 recommended).
    Cordic {
        /// Iterations `n` (≥ 1, and enough to cover `|a ± b|`).
        iterations: u32,
        /// Guard bits below the product LSB.
        guard_bits: u32,
    },
}

/// A product unit's configuration: formats plus the kind.
///
/// ```
/// use nacsim_sine::{ProductConfig, ProductFormat, ProductKind, SineProduct};
/// let unit = ProductConfig { format: ProductFormat::half_range(8, 16), kind: ProductKind::Versine }
///     .build()?;
/// assert_eq!(unit.product(100, 7), 682); // note §5.1 golden vector (exact i·j = 700)
/// # Ok::<(), nacsim_sine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductConfig {
    /// Operand/product formats and operand range (required).
    pub format: ProductFormat,
    /// Which unit (default [`ProductKind::Versine`]).
    #[serde(default)]
    pub kind: ProductKind,
}

/// The table ROM: read ports per copy and number of copies (note §2.6: "dual-port or 2 copies").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RomConfig {
    /// Read ports per ROM copy (default 2: dual-port).
    pub ports_per_copy: u32,
    /// Copies of the table (default 1).
    pub copies: u32,
}

impl Default for RomConfig {
    fn default() -> Self {
        RomConfig {
            ports_per_copy: 2,
            copies: 1,
        }
    }
}

impl RomConfig {
    /// Total read ports, `ports_per_copy × copies`.
    pub fn ports(&self) -> u32 {
        self.ports_per_copy.saturating_mul(self.copies)
    }
}

/// A sine MAC datapath: the product unit, the number of lanes and the table ROM.
///
/// ```
/// use nacsim_sine::{DatapathConfig, ProductConfig, ProductFormat, ProductKind, RomConfig, analytic};
/// let cfg = DatapathConfig {
///     product: ProductConfig { format: ProductFormat::half_range(10, 24), kind: ProductKind::Versine },
///     lanes: 4,
///     rom: RomConfig { ports_per_copy: 2, copies: 2 }, // 4 ports: 2 products per cycle
/// };
/// let r = analytic(&cfg.build()?, &[100, 100]);
/// assert_eq!(r.cycles, 100 + 6 - 1);
/// assert_eq!(r.counters.get("table_reads"), 400);
/// # Ok::<(), nacsim_sine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatapathConfig {
    /// The product unit (required).
    pub product: ProductConfig,
    /// MAC lanes `L` (required; ≥ 1).
    pub lanes: u32,
    /// Table ROM ports (default dual-port, one copy). Ignored by CORDIC.
    #[serde(default)]
    pub rom: RomConfig,
}

/// Configuration of a bit-exact [`SineNetwork`](crate::SineNetwork) (RON, `deny_unknown_fields`).
///
/// ```
/// use nacsim_sine::SineNetworkConfig;
/// let cfg: SineNetworkConfig = ron::from_str(
///     "(product: Versine, frac_bits: 10, out_frac_bits: 24, weight_max_rad: 1.0,
///       angle_max_rad: 1.5708, accumulator_bits: 40, rounding: HalfEven)",
/// ).unwrap();
/// assert_eq!(cfg.format().entries(), 1024 + 1609 + 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SineNetworkConfig {
    /// The product unit (required): `Versine` (note §2.1, canonical), `CosLiteral`,
    /// `QuarterSquare` (exact `a·b` baseline), `CoarseVersine(drop_bits)`,
    /// `Cordic(iterations, guard_bits)`.
    pub product: ProductKind,
    /// Operand (angle) fraction bits `f`, 1..=20 (required); operand value `i · 2^-f` rad.
    pub frac_bits: u32,
    /// Product and accumulator fraction bits `F`, `f..=32` (required).
    pub out_frac_bits: u32,
    /// Largest weight angle `|w|` (rad) the table covers (required): the table's first operand
    /// range is `max_abs_a = ⌈weight_max_rad · 2^f⌉` codes. Building fails, naming the minimum,
    /// if a weight of the model needs more.
    pub weight_max_rad: f64,
    /// Largest activation/input angle (rad) the table covers (required): `max_abs_b =
    /// ⌈angle_max_rad · 2^f⌉` codes. Must reach `π/2` for the rectified sine (A) and the `Arcsin`
    /// input encoding.
    pub angle_max_rad: f64,
    /// The rectified-sine variant applied to requantised codes (default (A) `Clamped`, the
    /// variant `Act(RectSine)` trains with).
    #[serde(default)]
    pub activation: RectifiedSine,
    /// First-layer pixel encoding (default `Arcsin`, the one `Sine(input: Arcsin)` trains with).
    #[serde(default)]
    pub input: InputEncoding,
    /// Accumulator width in bits, signed (required, 2..=64). Building fails, naming the minimum,
    /// if a layer's worst-case sum `fan_in · max|P| + max|bias|` does not fit.
    pub accumulator_bits: u32,
    /// CodeRounding of the requantiser `acc → angle code` (required; the paper's choice is unknown,
    /// note §2.1 suggests `HalfUp`).
    pub rounding: CodeRounding,
}

impl SineNetworkConfig {
    /// A versine-table network at `f`, `F`, with `|w| ≤ weight_max_rad`, angles up to `π/2`
    /// (rectified sine (A), `Arcsin` input), a 48-bit accumulator and half-even requantisation.
    pub fn versine(frac_bits: u32, out_frac_bits: u32, weight_max_rad: f64) -> Self {
        SineNetworkConfig {
            product: ProductKind::Versine,
            frac_bits,
            out_frac_bits,
            weight_max_rad,
            angle_max_rad: std::f64::consts::FRAC_PI_2,
            activation: RectifiedSine::Clamped,
            input: InputEncoding::Arcsin,
            accumulator_bits: 48,
            rounding: CodeRounding::HalfEven,
        }
    }

    /// Codes covering `rad` at `f` bits: `⌈rad · 2^f⌉`, at least 1 (saturating).
    pub(crate) fn codes(&self, rad: f64) -> u32 {
        let c = (rad * (self.frac_bits as f64).exp2()).ceil();
        if c.is_nan() || c < 1.0 {
            1
        } else if c > u32::MAX as f64 {
            u32::MAX
        } else {
            c as u32
        }
    }

    /// The product format: `f`, `F` and the table's operand ranges.
    pub fn format(&self) -> ProductFormat {
        ProductFormat {
            frac_bits: self.frac_bits,
            out_frac_bits: self.out_frac_bits,
            max_abs_a: self.codes(self.weight_max_rad),
            max_abs_b: self.codes(self.angle_max_rad),
        }
    }

    /// The largest angle code the inputs and activations need: `round(π/2 · 2^f)` for (A) or the
    /// `Arcsin` encoding, `2^(f−shift)` for `Scale`, whichever is larger.
    pub(crate) fn needed_angle_code(&self) -> u32 {
        let input = match self.input {
            InputEncoding::Arcsin => half_pi_code(self.frac_bits),
            InputEncoding::Scale { .. } => self.input.angle_code(255, self.frac_bits).max(0) as u32,
        };
        let act = match self.activation {
            RectifiedSine::Clamped => half_pi_code(self.frac_bits),
            RectifiedSine::Periodic | RectifiedSine::Unclamped => 0,
        };
        input.max(act)
    }

    /// Model-independent checks, in field order; the first broken rule.
    pub(crate) fn check(&self) -> Result<ProductFormat, Error> {
        if !(1..=MAX_FRAC_BITS).contains(&self.frac_bits) {
            return Err(Error::config(
                "frac_bits",
                self.frac_bits,
                format!("must be in 1..={MAX_FRAC_BITS}"),
            ));
        }
        if self.out_frac_bits < self.frac_bits {
            return Err(Error::config(
                "out_frac_bits",
                self.out_frac_bits,
                format!(
                    "must be at least frac_bits = {} (F < f makes a product of two 1-LSB angles vanish)",
                    self.frac_bits
                ),
            ));
        }
        if self.out_frac_bits > MAX_OUT_FRAC_BITS {
            return Err(Error::config(
                "out_frac_bits",
                self.out_frac_bits,
                format!("must be at most {MAX_OUT_FRAC_BITS}"),
            ));
        }
        if !(self.weight_max_rad.is_finite() && self.weight_max_rad > 0.0) {
            return Err(Error::config(
                "weight_max_rad",
                self.weight_max_rad,
                "must be a positive number of radians",
            ));
        }
        if !(self.angle_max_rad.is_finite() && self.angle_max_rad > 0.0) {
            return Err(Error::config(
                "angle_max_rad",
                self.angle_max_rad,
                "must be a positive number of radians",
            ));
        }
        if let InputEncoding::Scale { shift } = self.input
            && shift > 8
        {
            return Err(Error::config(
                "input.Scale.shift",
                shift,
                "must be in 0..=8",
            ));
        }
        let need = self.needed_angle_code();
        if self.codes(self.angle_max_rad) < need {
            let q = (-(self.frac_bits as f64)).exp2();
            return Err(Error::config(
                "angle_max_rad",
                self.angle_max_rad,
                format!(
                    "the table cannot cover the angles of activation {:?} / input {:?} (code {need}); \
                     needs at least {:.6} (= {need} · 2^-{})",
                    self.activation,
                    self.input,
                    need as f64 * q,
                    self.frac_bits
                ),
            ));
        }
        if !(2..=64).contains(&self.accumulator_bits) {
            return Err(Error::config(
                "accumulator_bits",
                self.accumulator_bits,
                "must be in 2..=64",
            ));
        }
        let format = self.format();
        ProductConfig {
            format,
            kind: self.product,
        }
        .build()
        .map_err(|e| match e {
            Error::Config { field, value, rule } => Error::Config {
                field: field
                    .replacen("sine.kind.", "sine.product.", 1)
                    .replacen("sine.format.max_abs_a", "sine.weight_max_rad", 1)
                    .replacen("sine.format.max_abs_b", "sine.angle_max_rad", 1)
                    .replacen("sine.format.", "sine.", 1),
                value,
                rule,
            },
            other => other,
        })?;
        Ok(format)
    }

    /// Bound on `|P|` (product LSBs) for operands within the format's ranges: `2^F · a · b`
    /// (`|sin a sin b| ≤ |ab|`, and the quarter-square unit is exact), plus 2 LSB of table
    /// rounding, plus `2^(F−n+1)` for an `n`-iteration CORDIC.
    pub(crate) fn product_bound(&self, format: &ProductFormat) -> f64 {
        let q = format.operand_lsb();
        let scale = (format.out_frac_bits as f64).exp2();
        let a = format.max_abs_a as f64 * q;
        let b = format.max_abs_b as f64 * q;
        let cordic = match self.product {
            ProductKind::Cordic { iterations, .. } => scale * (-(iterations as f64 - 1.0)).exp2(),
            _ => 0.0,
        };
        (scale * a * b).ceil() + 2.0 + cordic
    }
}

impl Validate for SineNetworkConfig {
    /// The model-independent rules (the first broken one); [`SineNetwork::new`](crate::SineNetwork::new) also checks the
    /// model against the table range and the accumulator width.
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        self.check().map(|_| ()).map_err(field_errors)
    }
}

/// Maps a build error to the house's validation error, with the path relative to the config.
fn field_errors(e: Error) -> Vec<FieldError> {
    match e {
        Error::Config { field, value, rule } => {
            let field = field.strip_prefix("sine.").unwrap_or(&field).to_owned();
            vec![FieldError { field, value, rule }]
        }
        other => vec![FieldError::new("product", "(table)", other.to_string())],
    }
}

impl Validate for ProductConfig {
    /// Builds the unit and reports why it cannot be built (one error: the first broken rule).
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        self.build().map(|_| ()).map_err(field_errors)
    }
}

impl Validate for DatapathConfig {
    /// Builds the datapath and reports why it cannot be built (one error: the first broken rule).
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        self.build().map(|_| ()).map_err(field_errors)
    }
}

/// The sine engine of a design: the numerics of the datapath and its parallelism.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SineEngineConfig {
    /// Product unit, formats (`f`, `F`), operand ranges, activation variant, input encoding,
    /// accumulator width and rounding of the bit-exact network.
    pub numerics: SineNetworkConfig,
    /// MAC lanes (products issued per cycle, at most the ROM ports / 2).
    pub lanes: u32,
    /// Table ROM ports and copies (default dual-port, one copy).
    #[serde(default)]
    pub rom: RomConfig,
}

impl SineEngineConfig {
    /// The datapath of these settings.
    ///
    /// # Errors
    /// The crate's error naming the broken field.
    pub fn datapath(&self) -> Result<Datapath, Error> {
        DatapathConfig {
            product: ProductConfig {
                format: self.numerics.format(),
                kind: self.numerics.product,
            },
            lanes: self.lanes,
            rom: self.rom,
        }
        .build()
    }
}

impl Validate for SineEngineConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.nested("numerics", &self.numerics);
        if self.numerics.validate().is_ok()
            && let Err(e) = self.datapath()
        {
            c.push(FieldError::new(
                "lanes",
                self.lanes,
                format!("with rom {:?}: {e}", self.rom),
            ));
        }
        c.finish()
    }
}
