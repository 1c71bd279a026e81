//! Every knob of a crossbar engine: array size, device conductance range, signed-weight scheme,
//! mapping, DAC/TIA/ADC periphery, non-idealities, timing and energy constants.
//!
//! Provenance tags follow `docs/engines/notes/crossbar.md`: **\[V\]** read in a peer simulator or paper,
//! **\[I\]** inferred / assumed. Every `[I]` default is a field so that the paper's actual choice
//! can be selected later.
//!
//! The types and their defaults are here; the rules each value must follow (the [`Validate`]
//! impls) are in `validate.rs`.
//!
//! [`Validate`]: nacsim_core::config::Validate

use nacsim_core::config::FieldError;
pub use nacsim_core::tech::AdcArch;
use nacsim_device::{DevicePreset, DriftModel};
use serde::{Deserialize, Serialize};

mod validate;

/// Largest accepted `array_rows` / `array_cols`.
pub const MAX_ARRAY_DIM: usize = 4096;

/// Longest accepted duration of one phase (`dac.settle_ns`, `timing.integration_ns`,
/// `adc.conversion_ns`, `adc.decision_ns` and the conversion time they give): 1 ms, far beyond any real periphery.
pub const MAX_PHASE_NS: f64 = 1e6;

/// Fastest accepted periphery clock (`timing.clock_mhz`), as a design's `clock_mhz`.
pub const MAX_CLOCK_MHZ: f64 = 1e6;

/// Conductance range of the array's devices: `levels` equally spaced conductances from
/// `g_off_s` to `g_on_s` (the finite-level model of NeuroSim `maxNumLevel`, CrossSim
/// `cell_bits`, aihwkit `dw_min` \[V\]).
///
/// The default is a generic HfOx/TaOx RRAM: NeuroSim V3.0 manual Table II, "TaOx/HfOx
/// (Wu et al. 2018)": R_ON = 100 kΩ, ON/OFF = 10, 128 states \[V\]. Device physics (pulse
/// responses, ODE models) lives in `nacsim-device`; this struct only describes the range the
/// array can be programmed to.
///
/// RON: `(g_on_s: 1e-5, g_off_s: 1e-6, levels: 128)`, or a `nacsim-device` preset by name
/// ([`DevicePreset`], NeuroSim V3.0 manual Table II), `(preset: "AlOx/HfO2")`, whose
/// `g_on_s`, `g_off_s` and `levels` (the smaller of its LTP/LTD state counts) any field given
/// beside it overrides: `(preset: "EpiRAM", levels: 32)`. Names match ignoring case and
/// punctuation (`"TaOx-HfOx"`, `"TaOxHfOx"`, `"taox/hfox"`); `"ideal"` is the ideal linear
/// device. With a preset, reads must also stay below its read-disturb limit (checked by
/// [`CrossbarConfig`]'s validation on `dac.v_read_v`).
///
/// `file: "models/devices/x.ron"` instead of `preset` takes the range, levels and drift of a
/// device preset file ([`DeviceRange::from_file`]; relative to the design's folder first, then to
/// the working directory).
///
/// `drift` is the devices' conductance drift after programming ([`DriftModel`]; read at the
/// crossbar's `inference_time_s`): a preset brings its own (aihwkit's PCM statistics for
/// `"GST PCM"`, none for the others), `drift: None` or another model beside it replaces it,
/// e.g. `(preset: "TaOx/HfOx", drift: Relaxation(()))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DeviceRangeSpec")]
pub struct DeviceRange {
    /// Highest (LRS, ON) conductance in siemens (default 1e-5 S = 1/100 kΩ).
    pub g_on_s: f64,
    /// Lowest (HRS, OFF) conductance in siemens (default 1e-6 S: ON/OFF = 10).
    pub g_off_s: f64,
    /// Number of programmable conductance levels, equally spaced in conductance (in
    /// resistance for [`SignedScheme::Bridge`]) (default 128; 2..=2^24).
    pub levels: u32,
    /// The `nacsim-device` preset the range was resolved from, `None` for explicit numbers
    /// (the default). Written to RON as its name ([`DevicePreset::name`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_preset"
    )]
    pub preset: Option<DevicePreset>,
    /// Drift of the programmed conductances with time (default [`DriftModel::None`], or the
    /// preset's [`DevicePreset::drift_model`]). It acts only when `inference_time_s > 0`.
    #[serde(default)]
    pub drift: DriftModel,
}

/// Writes a preset by its name, the form [`device_preset`] reads back.
fn serialize_preset<S: serde::Serializer>(
    p: &Option<DevicePreset>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_some(p.name()),
        None => s.serialize_none(),
    }
}

impl Default for DeviceRange {
    fn default() -> Self {
        DeviceRange {
            g_on_s: 1e-5,
            g_off_s: 1e-6,
            levels: 128,
            preset: None,
            drift: DriftModel::None,
        }
    }
}

/// The RON form of [`DeviceRange`]: every field optional, `preset` resolved by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DeviceRangeSpec {
    preset: Option<String>,
    file: Option<String>,
    g_on_s: Option<f64>,
    g_off_s: Option<f64>,
    levels: Option<u32>,
    drift: Option<DriftModel>,
}

/// Lower-case letters and digits of `s` (what preset names are matched on).
fn preset_key(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The `nacsim-device` preset called `name` (ignoring case and punctuation; its display name
/// or its RON variant name; `"ideal"` for the ideal linear device).
///
/// # Errors
///
/// A [`FieldError`] on `device.preset` that lists the valid names.
pub fn device_preset(name: &str) -> Result<DevicePreset, FieldError> {
    let key = preset_key(name);
    DevicePreset::ALL
        .into_iter()
        .find(|p| {
            preset_key(p.name()) == key || (key == "ideal" && *p == DevicePreset::IdealLinear)
        })
        .ok_or_else(|| {
            let valid: Vec<String> = DevicePreset::ALL
                .iter()
                .map(|p| format!("\"{}\"", p.name()))
                .collect();
            FieldError::new(
                "device.preset",
                format!("{name:?}"),
                format!("unknown device preset; valid names: {}", valid.join(", ")),
            )
        })
}

impl DeviceRange {
    /// The range of `preset`: its `g_on_s`, `g_off_s` and the smaller of its LTP/LTD state
    /// counts as `levels` (NeuroSim V3.0 manual Table II via `nacsim-device`).
    pub fn from_preset(preset: DevicePreset) -> Self {
        let (ltp, ltd) = preset.states();
        DeviceRange {
            g_on_s: preset.g_on_s(),
            g_off_s: preset.g_off_s(),
            levels: ltp.min(ltd),
            preset: Some(preset),
            drift: preset.drift_model(),
        }
    }
}

impl DeviceRange {
    /// The range of a device preset file ([`nacsim_device::DeviceFile`], e.g. written by
    /// `nacsim device import`): its nominal device's `g_max`/`g_min` as `g_on_s`/`g_off_s`,
    /// the smaller pulse count as `levels`, and its drift model. A relative path is looked for in
    /// the folder of the config being parsed first, then in the working directory.
    ///
    /// # Errors
    ///
    /// A [`FieldError`] on `device.file` when the file does not load or its device is invalid.
    pub fn from_file(path: &str) -> Result<Self, FieldError> {
        let bad = |rule: String| FieldError::new("device.file", format!("{path:?}"), rule);
        let file = nacsim_device::file::load_named(path).map_err(bad)?;
        let s = file
            .summary()
            .map_err(|e| bad(format!("its device is invalid: {}", FieldError::join(&e))))?;
        Ok(DeviceRange {
            g_on_s: s.g_on_s,
            g_off_s: s.g_off_s,
            levels: s.levels,
            preset: None,
            drift: file.drift,
        })
    }
}

impl TryFrom<DeviceRangeSpec> for DeviceRange {
    type Error = FieldError;

    fn try_from(s: DeviceRangeSpec) -> Result<Self, FieldError> {
        let base = match (&s.preset, &s.file) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "device.file",
                    format!("{:?}", s.file.unwrap_or_default()),
                    "give either `preset` or `file`, not both",
                ));
            }
            (Some(name), None) => DeviceRange::from_preset(device_preset(name)?),
            (None, Some(path)) => DeviceRange::from_file(path)?,
            (None, None) => DeviceRange::default(),
        };
        Ok(DeviceRange {
            g_on_s: s.g_on_s.unwrap_or(base.g_on_s),
            g_off_s: s.g_off_s.unwrap_or(base.g_off_s),
            levels: s.levels.unwrap_or(base.levels),
            preset: base.preset,
            drift: s.drift.unwrap_or(base.drift),
        })
    }
}

/// How a signed weight is made from non-negative conductances (note §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum SignedScheme {
    /// Two columns per output, `w ∝ G⁺ − G⁻`; one device of the pair stays at `g_off_s`
    /// (CrossSim `BALANCED`, MemTorch `DoubleColumn` \[V\]). Weight unit `Δg = (g_on−g_off)/(levels−1)`,
    /// `2·levels − 1` distinct weights. The default.
    #[default]
    Differential,
    /// One device per weight and one reference column per tile whose devices sit at
    /// `G_ref = (g_on+g_off)/2`; the reference current is subtracted in analog before the
    /// TIA, `w ∝ G − G_ref` (NeuroSim dummy columns \[V\]). `levels` distinct weights.
    Reference,
    /// Four-device memristor bridge (Adhikari et al. 2012, the paper's ref. \[3\]):
    /// `ψ = M2/(M1+M2) − M4/(M3+M4)`, with `M1 = M4 = R_a`, `M2 = M3 = R_b`,
    /// `R_a + R_b = R_on + R_off` (complementary programming) so that `ψ` is linear in
    /// resistance; `levels` resistance levels. The bridge output drives a differential amplifier
    /// of transconductance `g_on_s` \[I\] onto the column. IR drop is not modelled for it.
    Bridge,
}

/// Weight → conductance mapping (MemTorch `naive_map` \[V\]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MappingConfig {
    /// Percentile of `|w|` (over the layer, or the column with `per_column_scale`) that maps to
    /// the largest conductance difference; larger weights are clipped (default 100 = max |w|;
    /// range (0, 100]). MemTorch's `p_l` \[V\].
    pub clip_percentile: f64,
    /// One `w_max` per output column instead of one per layer (default `false`). The column
    /// scale is applied digitally after the ADC, so it costs nothing in the array.
    pub per_column_scale: bool,
}

impl Default for MappingConfig {
    fn default() -> Self {
        MappingConfig {
            clip_percentile: 100.0,
            per_column_scale: false,
        }
    }
}

/// How int8 input codes become row voltages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum InputEncoding {
    /// One multi-bit voltage per input (bipolar DAC, `dac.bits` bits); codes are rounded to the
    /// DAC grid when `dac.bits < 8`. The default.
    #[default]
    Parallel,
    /// Bit-serial (ISAAC \[V\]): the two's-complement code is cut into slices of
    /// `bits_per_slice` bits (the top slice signed), applied one per read, and the ADC codes are
    /// shifted and added digitally.
    BitSerial {
        /// Bits per slice, 1..=8 (ISAAC: 1).
        bits_per_slice: u32,
    },
}

/// Row drivers (DACs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DacConfig {
    /// Resolution of a parallel DAC in bits (default 8, exact for int8 codes; 1..=16).
    /// Ignored with [`InputEncoding::BitSerial`], where the DAC has `bits_per_slice` bits.
    pub bits: u32,
    /// Read voltage in volts of the largest input magnitude (default 0.2 V \[I\]; CrossSim uses
    /// 0.1 V \[V\]). Must not exceed `read_disturb_v`.
    pub v_read_v: f64,
    /// Parallel or bit-serial inputs (default parallel).
    pub encoding: InputEncoding,
    /// DAC settling time per read in ns (default 1 ns \[I\]).
    pub settle_ns: f64,
}

impl Default for DacConfig {
    fn default() -> Self {
        DacConfig {
            bits: 8,
            v_read_v: 0.2,
            encoding: InputEncoding::Parallel,
            settle_ns: 1.0,
        }
    }
}

/// Transimpedance amplifier on each output column, `v = R_f·(I⁺ − I⁻)` (note §1.4).
///
/// The gain `R_f` is not a knob: it is derived per layer so that the ADC's full scale
/// (`adc.v_full_scale_v`) corresponds to an exact power-of-two number of unit currents, which
/// keeps the digital shift-and-add integer-exact (see [`ProgrammedLayer::tia_gain_ohm`](crate::ProgrammedLayer::tia_gain_ohm)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TiaConfig {
    /// Output rail in volts: `|v|` is clamped to it (default 1.0 V \[I\], equal to the ADC full
    /// scale, so the rails never clip before the ADC does).
    pub v_sat_v: f64,
}

impl Default for TiaConfig {
    fn default() -> Self {
        TiaConfig { v_sat_v: 1.0 }
    }
}

/// Column ADCs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum AdcKind {
    /// No quantization and no clipping: the ADC returns the column value rounded to one unit
    /// current (the smallest step the ideal mapping can produce). Timing and energy are still
    /// those of a `bits`-bit ADC.
    Ideal,
    /// A uniform symmetric ADC with codes `−(2^(bits−1)−1)..=2^(bits−1)−1`, rounding to
    /// nearest with ties to even (default). One bit is read as a comparator with a dead zone,
    /// codes −1, 0, 1.
    Uniform,
}

/// How an ADC's full scale is chosen from the layer's ideal codes `q` (per layer and input
/// slice, max over row tiles and columns; in unit currents).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum AdcRange {
    /// `frac × max Σ_k |q_k|·max|digit|`: `frac = 1` never clips (range (0, 1]).
    WorstCase {
        /// Fraction of the worst case.
        frac: f64,
    },
    /// `sigmas × max sqrt(Σ_k q_k²)·max|digit|/√3`: `sigmas` standard deviations of a column
    /// sum with inputs uniform over the digit range, capped at the worst case (> 0). A
    /// data-free calibration \[I\]: the worst case wastes most codes on sums that never occur
    /// (column sums grow like `√K`, the worst case like `K`).
    Statistical {
        /// Standard deviations covered.
        sigmas: f64,
    },
}

/// Column ADCs: resolution, range and sharing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdcConfig {
    /// Ideal or quantizing (default [`AdcKind::Uniform`]).
    pub kind: AdcKind,
    /// Resolution in bits (default 8, ISAAC \[V\]; 1..=16).
    pub bits: u32,
    /// How the full scale is set from the programmed weights (default
    /// `Statistical(sigmas: 4.0)`). The LSB is then rounded up to a power of two unit currents
    /// (≥ 1), so the real full scale is at least this.
    pub range: AdcRange,
    /// ADC input full scale in volts (default 1.0 V \[I\]); sets the TIA gain.
    pub v_full_scale_v: f64,
    /// Output columns sharing one ADC, converted one after another (default 128: one ADC per
    /// 128-column array, ISAAC \[V\]). Clamped to the columns of a tile.
    pub cols_per_adc: usize,
    /// Converter architecture, `Sar` (default) or `Flash` ([`AdcArch`], shared with the
    /// technology files' ADC tables): sets how the conversion time, energy
    /// ([`crate::cost::adc_conversion_pj`]) and area follow `bits`. SAR: one comparator
    /// decision per bit, energy `adc_8bit_pj · 2^(bits−8)` (a constant Walden figure of merit
    /// anchored at ISAAC's 8-bit SAR, 1.5625 pJ / 2^8 = 6.1 fJ per conversion step \[V\] +
    /// \[I\]); ISAAC, NeuroSim and PUMA use SAR column ADCs. Flash: `2^bits − 1` comparators
    /// decide at once, energy `(2^bits − 1) · flash_comparator_pj`.
    pub architecture: AdcArch,
    /// Time of one comparator decision in ns (default 0.09765625 ns = ISAAC's 8-bit SAR
    /// conversion of 0.78125 ns at 1.28 GS/s \[V\] over its 8 bit decisions \[I\]). A SAR
    /// conversion takes `bits` decisions, a flash conversion one.
    pub decision_ns: f64,
    /// Measured time of one conversion in ns, overriding the architecture's
    /// `bits × decision_ns` (SAR) or `decision_ns` (flash) when given (default: not given).
    /// Written as a plain number, `conversion_ns: 0.78125`; with it set, changing `bits` no
    /// longer changes the conversion time.
    #[serde(
        default,
        deserialize_with = "plain_some",
        serialize_with = "plain_or_unit",
        skip_serializing_if = "Option::is_none"
    )]
    pub conversion_ns: Option<f64>,
}

/// Deserialize a plain number into `Some(number)` (the field's absence is `None`).
fn plain_some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    f64::deserialize(d).map(Some)
}

/// Serialize `Some(x)` as the plain number `x` (so that it reads back with [`plain_some`]).
fn plain_or_unit<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => s.serialize_f64(*x),
        None => s.serialize_unit(),
    }
}

impl AdcConfig {
    /// Time of one conversion in ns: `conversion_ns` when given, else `bits × decision_ns` for
    /// a SAR ADC and `decision_ns` for a flash ADC.
    pub fn conversion_time_ns(&self) -> f64 {
        match (self.conversion_ns, self.architecture) {
            (Some(t), _) => t,
            (None, AdcArch::Sar) => f64::from(self.bits) * self.decision_ns,
            (None, AdcArch::Flash) => self.decision_ns,
        }
    }

    /// Comparators in one ADC: 1 for a SAR ADC, `2^bits − 1` for a flash ADC.
    pub fn comparators(&self) -> u64 {
        match self.architecture {
            AdcArch::Sar => 1,
            AdcArch::Flash => (1u64 << self.bits.min(63)) - 1,
        }
    }
}

impl Default for AdcConfig {
    fn default() -> Self {
        AdcConfig {
            kind: AdcKind::Uniform,
            bits: 8,
            range: AdcRange::Statistical { sigmas: 4.0 },
            v_full_scale_v: 1.0,
            cols_per_adc: 128,
            architecture: AdcArch::Sar,
            decision_ns: 0.097_656_25,
            conversion_ns: None,
        }
    }
}

/// Distribution of device-to-device variation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum D2dDistribution {
    /// `G·(1 + σ·ξ)`, clamped at 0 S (default).
    #[default]
    Normal,
    /// `G·exp(σ·ξ)` (median-preserving; `σ` is the log-std, ≈ relative σ for small σ).
    LogNormal,
}

/// Which programming pulses share one voltage error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum VoltageErrorScope {
    /// Independent per device (default).
    #[default]
    Device,
    /// One error per row driver, shared by every device of an array row (note §3.2 \[I\]).
    RowDriver,
}

/// Where read noise enters the signal chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ReadNoiseModel {
    /// Before each tile's TIA and ADC (the physical place): one draw per input row, slice, row
    /// tile and column; the noise is clipped and quantized with the signal. The default.
    #[default]
    BeforeAdc,
    /// Output-referred: the variances of every tile and slice are summed (`4^shift` per slice)
    /// and one draw per input row and output column is added after the shift-and-add, rounded
    /// to an output unit. `S·T_r` times fewer draws (the speed option for Monte Carlo sweeps);
    /// it ignores the ADC's clipping and quantization of the noise.
    OutputReferred,
}

/// IR drop along the wires.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum IrDrop {
    /// Ideal wires (default; IR drop is slow to program).
    #[default]
    Off,
    /// Resistive row and column lines, solved per tile at programming time (see
    /// [`irdrop`](crate::irdrop) for the nodal model and the linearization used in `run`).
    Lines {
        /// Resistance of one wire segment between adjacent crosspoints in ohms (aihwkit's
        /// `ir_drop` example: 0.35 Ω \[V\]). Must be > 0.
        segment_ohm: f64,
    },
}

/// Every non-ideality, each independently sweepable and seeded from its own
/// [`Purpose`](nacsim_core::Purpose). All zero (the default) is the ideal crossbar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NonIdealities {
    /// Relative σ of static device-to-device conductance variation (fraction: 0.05 = 5 %;
    /// default 0). Stream `DeviceToDevice`.
    pub d2d_sigma_rel: f64,
    /// Distribution of the d2d variation (default normal).
    pub d2d_distribution: D2dDistribution,
    /// σ of the additive programming (write-verify) error as a fraction of `g_on − g_off`
    /// (CrossSim `Independent` \[V\]; default 0). Stream `ProgrammingError`.
    pub programming_sigma_rel: f64,
    /// Relative σ of the programming-voltage error `ΔV/V_p` (default 0). Stream
    /// `ProgrammingVoltage`.
    pub programming_voltage_sigma_rel: f64,
    /// Linear sensitivity `s` of the programmed conductance excursion to the relative voltage
    /// error: `G = g_off + (G_target − g_off)·(1 + s·ΔV/V_p)` (default 1.0 \[I\]; the exact pulse
    /// physics is a later issue).
    pub programming_voltage_sensitivity: f64,
    /// Which devices share a programming-voltage error (default per device).
    pub programming_voltage_scope: VoltageErrorScope,
    /// Relative σ of read noise `G·(1 + σ·ξ)`, redrawn for every MVM (NeuroSim `sigmaReadNoise`
    /// \[V\]; default 0). Stream `ReadNoise`, keyed by input row and column.
    pub read_noise_sigma_rel: f64,
    /// Where read noise is added (default before the ADC).
    pub read_noise_model: ReadNoiseModel,
    /// Fraction of devices stuck at `g_on_s` (MemTorch `lrs_proportion` \[V\]; default 0).
    /// Stream `StuckAt`.
    pub stuck_on_frac: f64,
    /// Fraction of devices stuck at `g_off_s` (default 0). Stream `StuckAt`.
    pub stuck_off_frac: f64,
    /// Mean drift exponent ν of `G(t) = G0·(t/t0)^−ν` (MemTorch `Retention` \[V\]; default 0).
    pub drift_nu: f64,
    /// σ of ν across devices (normal, clamped at 0; default 0). Stream `Drift`.
    pub drift_nu_sigma: f64,
    /// Time since programming in seconds at which the layer is read (default 1 s).
    pub drift_time_s: f64,
    /// Drift reference time t0 in seconds (default 1 s, NeuroSim V1.4 \[V\]).
    pub drift_t0_s: f64,
    /// Wire resistance (default off).
    pub ir_drop: IrDrop,
}

impl Default for NonIdealities {
    fn default() -> Self {
        NonIdealities {
            d2d_sigma_rel: 0.0,
            d2d_distribution: D2dDistribution::Normal,
            programming_sigma_rel: 0.0,
            programming_voltage_sigma_rel: 0.0,
            programming_voltage_sensitivity: 1.0,
            programming_voltage_scope: VoltageErrorScope::Device,
            read_noise_sigma_rel: 0.0,
            read_noise_model: ReadNoiseModel::BeforeAdc,
            stuck_on_frac: 0.0,
            stuck_off_frac: 0.0,
            drift_nu: 0.0,
            drift_nu_sigma: 0.0,
            drift_time_s: 1.0,
            drift_t0_s: 1.0,
            ir_drop: IrDrop::Off,
        }
    }
}

/// Clock and read-phase timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimingConfig {
    /// Clock of the periphery and digital logic in MHz (default 1000 \[I\]; ISAAC: 1.2 GHz).
    pub clock_mhz: f64,
    /// Read (integration) time of one MVM in ns (default 10 ns \[I\]).
    pub integration_ns: f64,
    /// Sample-and-hold after the TIA (ISAAC \[V\]; default `true`): the next read overlaps the
    /// previous read's ADC conversions.
    pub sample_hold: bool,
}

impl Default for TimingConfig {
    fn default() -> Self {
        TimingConfig {
            clock_mhz: 1000.0,
            integration_ns: 10.0,
            sample_hold: true,
        }
    }
}

/// Energy per action in pJ, priced after the run from the counters.
///
/// Sources: ISAAC (Shafiee et al., ISCA 2016, Table 2, per IMA of 8 arrays of 128×128):
/// ADC 8 bit 1.28 GS/s ×8 = 16 mW; DAC 1 bit ×8×128 = 4 mW; sample-and-hold ×8×128 = 10 µW;
/// shift-and-add ×4 = 0.2 mW; read cycle 100 ns, digital clock 1.2 GHz.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnergyConstants {
    /// Energy of one 8-bit ADC conversion in pJ (default 1.5625 = 16 mW for the IMA's 8 ADCs
    /// = 2 mW per ADC at 1.28 GS/s, ISAAC \[V\]; until 2026-12 the default was 12.5, the power
    /// of all eight ADCs charged to one conversion). Scaled by `2^(bits−8)` for other
    /// resolutions (Walden figure of merit \[I\]).
    pub adc_8bit_pj: f64,
    /// Energy of one 1-bit DAC conversion in pJ (default 0.390625 = 4 mW / 1024 DACs = 3.9 µW
    /// per DAC, for one 100 ns read cycle, ISAAC \[V\]; until 2026-12 the default was 3.9e-4,
    /// a µW/mW slip 1000× too low). Scaled linearly with DAC bits \[I\].
    pub dac_1bit_pj: f64,
    /// Energy of one TIA/sample-and-hold read of a column in pJ (default 1e-3 ≈ 10 µW / 1024
    /// S&H / 10 MHz, ISAAC's S&H \[V\]; a TIA is assumed to cost the same \[I\]).
    pub tia_pj: f64,
    /// Energy of one digital shift-and-add in pJ (default 0.05 ≈ 0.2 mW / 4 units / 1.2 GHz,
    /// ISAAC \[V\], rounded up \[I\]).
    pub shift_add_pj: f64,
    /// Energy of one comparator decision of a flash ADC in pJ (default 0.0615 = 3.875 mW
    /// average at 1 GS/s over the 63 comparators of a 6-bit flash ADC in 90 nm, Ghai, Mohanty
    /// and Kougianos, GLSVLSI 2009 \[V\]; encoder included and not scaled to the design's node
    /// \[I\]: an upper bound at 45 nm). Used only by [`AdcArch::Flash`].
    pub flash_comparator_pj: f64,
}

impl Default for EnergyConstants {
    fn default() -> Self {
        EnergyConstants {
            adc_8bit_pj: 1.5625,
            dac_1bit_pj: 0.390625,
            tia_pj: 1e-3,
            shift_add_pj: 0.05,
            flash_comparator_pj: 0.0615,
        }
    }
}

/// A memristor crossbar engine: every knob, with units in the field names.
///
/// Every field has a default ([`CrossbarConfig::default`]), so `()` in RON is a valid config:
///
/// ```
/// use std::path::Path;
/// use nacsim_crossbar::CrossbarConfig;
/// let cfg: CrossbarConfig = nacsim_core::config::parse(
///     "(array_rows: 64, array_cols: 64, adc: (kind: Uniform, bits: 6, range: WorstCase(frac: 0.5),
///       v_full_scale_v: 1.0, cols_per_adc: 8, conversion_ns: 1.0),
///       nonideal: (d2d_sigma_rel: 0.05, read_noise_sigma_rel: 0.01))",
///     Path::new("xbar.ron"),
/// )?;
/// assert_eq!(cfg.device.levels, 128);
/// assert_eq!(cfg.nonideal.d2d_sigma_rel, 0.05);
/// # Ok::<(), nacsim_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrossbarConfig {
    /// Rows (word lines) of one physical array (default 128, ISAAC \[V\]; 1..=4096).
    pub array_rows: usize,
    /// Columns (bit lines) of one physical array (default 128; 2..=4096). Outputs per array:
    /// `cols/2` (differential, bridge) or `cols − 1` (reference).
    pub array_cols: usize,
    /// Device conductance range (default generic HfOx RRAM).
    pub device: DeviceRange,
    /// Signed-weight scheme (default differential pair).
    pub signed: SignedScheme,
    /// Weight mapping.
    pub mapping: MappingConfig,
    /// Row drivers.
    pub dac: DacConfig,
    /// Column TIAs.
    pub tia: TiaConfig,
    /// Column ADCs.
    pub adc: AdcConfig,
    /// Non-idealities (default: none). Boxed so that the config stays small enough to sit
    /// inline in the scheduler's engine enum (field access is unchanged).
    pub nonideal: Box<NonIdealities>,
    /// Copies of each layer's arrays working on different input rows (conv: im2col rows). The
    /// row count, hence latency, is divided by it (default 1).
    pub replication: usize,
    /// Largest read voltage in volts that does not disturb the stored state (default 0.5 V
    /// \[I\]: below the ≈1 V SET voltage of HfOx cells).
    pub read_disturb_v: f64,
    /// Clock and read timing.
    pub timing: TimingConfig,
    /// Energy per action.
    pub energy: EnergyConstants,
    /// Memristor cell type, for the area a technology file gives (default 1T1R, NeuroSim's
    /// default; `Passive` for a 0T1R crossbar). It changes no cycle, energy or accuracy.
    #[serde(skip_serializing_if = "is_default_cell")]
    pub cell: nacsim_core::tech::CellKind,
    /// Time in seconds between programming the arrays and the inference read (default 0: read
    /// right after programming, no drift). The devices' `device.drift` model acts at this time
    /// ([`drift`](crate::drift)); sweep it as `engines[i].engine.Crossbar.inference_time_s`.
    pub inference_time_s: f64,
    /// Drift compensation applied after drift (default [`DriftCompensation::None`]).
    pub drift_compensation: DriftCompensation,
}

/// Compensation of conductance drift in the periphery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum DriftCompensation {
    /// None: the drifted conductances are read as they are (the default).
    #[default]
    None,
    /// One scale per physical array from a reference read (aihwkit
    /// `GlobalDriftCompensation`): right after programming and again at `inference_time_s`, the
    /// array is read with every input at its full value, the mean absolute column output is
    /// taken, and the ratio (programmed / drifted) scales the array's columns. Modelled as a
    /// per-array gain of the column read-out (the TIA), so read noise is scaled with the
    /// signal; the reference read is noise-free and ignores IR drop \[I\].
    Global,
}

fn is_default_cell(c: &nacsim_core::tech::CellKind) -> bool {
    *c == nacsim_core::tech::CellKind::default()
}

impl Default for CrossbarConfig {
    fn default() -> Self {
        CrossbarConfig {
            array_rows: 128,
            array_cols: 128,
            device: DeviceRange::default(),
            signed: SignedScheme::Differential,
            mapping: MappingConfig::default(),
            dac: DacConfig::default(),
            tia: TiaConfig::default(),
            adc: AdcConfig::default(),
            nonideal: Box::default(),
            replication: 1,
            read_disturb_v: 0.5,
            timing: TimingConfig::default(),
            energy: EnergyConstants::default(),
            cell: nacsim_core::tech::CellKind::default(),
            inference_time_s: 0.0,
            drift_compensation: DriftCompensation::None,
        }
    }
}

impl CrossbarConfig {
    /// The default config with every non-ideality off, an ideal ADC and an 8-bit (exact) DAC:
    /// `run` then equals the ideal mapping exactly.
    pub fn ideal() -> Self {
        let mut c = CrossbarConfig::default();
        c.adc.kind = AdcKind::Ideal;
        c
    }

    /// Outputs (weight columns) one physical array holds.
    pub fn outputs_per_array(&self) -> usize {
        match self.signed {
            SignedScheme::Differential | SignedScheme::Bridge => self.array_cols / 2,
            SignedScheme::Reference => self.array_cols.saturating_sub(1),
        }
        .max(1)
    }

    /// Devices per weight: 2 (differential), 1 (reference; plus one reference device per
    /// array row), 4 (bridge).
    pub fn devices_per_weight(&self) -> usize {
        match self.signed {
            SignedScheme::Differential => 2,
            SignedScheme::Reference => 1,
            SignedScheme::Bridge => 4,
        }
    }

    /// Weight storage of a `fan_in × outputs` layer in bits: devices per weight × the bits that
    /// name one of the device's `levels` (at least 2 levels, 1 bit).
    pub fn weight_storage_bits(&self, fan_in: usize, outputs: usize) -> u64 {
        let levels = u64::from(self.device.levels.max(2));
        let bits = u64::from(64 - (levels - 1).leading_zeros());
        (fan_in * outputs) as u64 * self.devices_per_weight() as u64 * bits
    }

    /// Input slices per input vector: 1 for parallel inputs, `⌈8/bits_per_slice⌉` bit-serial.
    pub fn input_slices(&self) -> u32 {
        match self.dac.encoding {
            InputEncoding::Parallel => 1,
            InputEncoding::BitSerial { bits_per_slice } => 8u32.div_ceil(bits_per_slice.max(1)),
        }
    }

    /// DAC resolution in bits as built: `dac.bits` (parallel) or `bits_per_slice`.
    pub fn dac_bits(&self) -> u32 {
        match self.dac.encoding {
            InputEncoding::Parallel => self.dac.bits,
            InputEncoding::BitSerial { bits_per_slice } => bits_per_slice,
        }
    }

    /// Peak operations per cycle (2 per MAC) of one layer's array set when every array is full:
    /// `2 · array_rows · outputs_per_array · replication` MACs every steady-state input vector
    /// (see [`timing`](crate::timing)), at least 1. Scales with the number of arrays a layer
    /// occupies; this is the figure for one array (× replication).
    pub fn peak_ops_per_cycle(&self) -> u64 {
        let macs = (self.array_rows * self.outputs_per_array() * self.replication.max(1)) as u64;
        let per_vector = crate::timing::steady_cycles_per_vector(self, self.outputs_per_array());
        (2 * macs / per_vector.max(1)).max(1)
    }
}
