//! In-situ training settings: the device, the update scheme, variation, periphery and data
//! options, as one RON file named by a training config's `store: Crossbar(settings: "…")`.
//!
//! ```text
//! (
//!     device: Preset((preset: AgASi)),
//!     scheme: ApproxLinear(method: Inversion, modulate: Width, read_before_write: true),
//!     w_max: 1.0,
//!     variation: (voltage_error_sigma: 0.02, voltage_error: PerPulse),
//!     periphery: (read_noise_sigma: 0.0, adc_bits: 0),
//! )
//! ```
//!
//! Every tunable has a default; `device` and `scheme` are required. Values tagged \[I\] are
//! inferred (the Liu & Zeng paper's body was not available, `docs/engines/notes/crossbar.md` §2.4).

use nacsim_core::config::{Checks, FieldError, Validate};
use nacsim_device::{PulseDeviceConfig, PulseResponse};
use serde::{Deserialize, Serialize};

/// The in-situ training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InSituConfig {
    /// The device model of every crosspoint (required), with its own d2d/c2c knobs
    /// (`nl_d2d_sigma`, `c2c_sigma`, aihwkit `*_dtod`, `dw_min_std`).
    pub device: PulseDeviceConfig,
    /// How a desired weight change becomes programming pulses (required).
    pub scheme: Scheme,
    /// Weight of a full conductance swing (dimensionless, default 1): differential pairs give
    /// `W = w_max·(G⁺ − G⁻)/(Gmax − Gmin)`, a reference cell `W = w_max·(G − Gmid)/((Gmax − Gmin)/2)`;
    /// either way `W ∈ [−w_max, w_max]` (NeuroSim MLP V3.0: `w ∈ [−1, 1]`).
    #[serde(default = "one")]
    pub w_max: f64,
    /// How a signed weight is held by devices (default differential pair).
    #[serde(default)]
    pub mapping: Mapping,
    /// Drive model of non-nominal pulses (default: rate linear in the overdrive).
    #[serde(default)]
    pub drive: DriveSettings,
    /// Variation knobs beyond the device config's own.
    #[serde(default)]
    pub variation: Variation,
    /// Forward-pass periphery non-idealities and read settings.
    #[serde(default)]
    pub periphery: Periphery,
    /// Dataset options (resizing and binarizing the images, images per epoch).
    #[serde(default)]
    pub data: DataOptions,
}

fn one() -> f64 {
    1.0
}

/// How a signed weight is held by devices (note §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Mapping {
    /// Two devices per weight on two columns, `W ∝ G⁺ − G⁻` (aihwkit, CrossSim `BALANCED`);
    /// an update moves both devices in opposite directions by half the change each.
    #[default]
    Differential,
    /// One device per weight against a reference column at `Gmid = (Gmax + Gmin)/2`
    /// (NeuroSim's dummy column); needed for NeuroSim parity.
    Reference,
}

impl Mapping {
    /// Devices per weight.
    pub fn devices_per_weight(self) -> usize {
        match self {
            Mapping::Differential => 2,
            Mapping::Reference => 1,
        }
    }
}

/// The update scheme: how a desired `ΔW` per crosspoint becomes a pulse train (note §2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Scheme {
    /// Fixed-voltage update (note §2.1) \[I\]: every pulse has the device's nominal amplitude
    /// for the change's sign; only the count or the width carries the magnitude.
    FixedVoltage {
        /// What carries the magnitude (default `Count`).
        #[serde(default)]
        magnitude: Magnitude,
        /// How a fractional pulse count becomes a whole one (default nearest).
        #[serde(default)]
        rounding: PulseCountRounding,
        /// Most pulses per device per update (default 255); `Width` caps the width at this many
        /// nominal widths.
        #[serde(default = "default_max_pulses")]
        max_pulses: u32,
    },
    /// Approximately linear update (note §2.2) \[I\]: the pulse is chosen per device so that the
    /// conductance change is `ΔG ≈ c·ΔW` on the *nominal* device model.
    ApproxLinear {
        /// How the required drive is found (default exact model inversion).
        #[serde(default)]
        method: Linearization,
        /// Whether the width or the amplitude is modulated (default width).
        #[serde(default)]
        modulate: Modulation,
        /// Read each device's conductance before writing it (read-verify; costs read energy
        /// and one read per row in latency). Without it the programmer tracks the state it
        /// believes the device is in (the nominal response to its own pulses), which drifts
        /// from the truth under d2d, c2c and voltage errors. Default false.
        #[serde(default)]
        read_before_write: bool,
        /// Largest drive of one pulse in nominal pulses (default 1): width mode caps the width
        /// at `max_drive·t_p`, amplitude mode the amplitude at the one that gives this drive;
        /// larger changes use several equal pulses.
        #[serde(default = "one")]
        max_drive: f64,
        /// Most pulses per device per update (default 255).
        #[serde(default = "default_max_pulses")]
        max_pulses: u32,
    },
    /// NeuroSim parity (MLP_NeuroSim V3.0 `RealDevice::Write`, note §4.2): pulse count by the
    /// device's `rounding` from `Δw_n = ΔW/(Wmax − Wmin)`, exponential curve, c2c noise
    /// `∝ sqrt(|n|)`, clipping. Needs an exponential device (`Preset` or `Exponential`) and the
    /// `Reference` mapping; no voltage error.
    NeuroSim,
    /// aihwkit-style stochastic pulse coincidence (`UpdateParameters`, note §4.2), in aggregate
    /// form: the loop hands the store the batch gradient, not the per-sample factors, so each
    /// crosspoint draws its coincidence count `n ~ Binomial(BL, p)` with
    /// `p = min(1, |ΔG|/(BL·ΔG_pulse))` (aihwkit's mean `lr·|x·δ|/dw_min`). The correlation of
    /// coincidences along rows and columns is not modelled, and update management (which
    /// rescales the two probabilities but not their product) only acts through the cap `n ≤ BL`.
    Stochastic {
        /// Bit-stream length BL (aihwkit `desired_bl`, default 31).
        #[serde(default = "default_bl")]
        bit_length: u32,
    },
}

fn default_max_pulses() -> u32 {
    255
}

fn default_bl() -> u32 {
    31
}

/// What carries the magnitude in a fixed-voltage update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Magnitude {
    /// Manhattan rule (Zamanidoost et al.): one nominal pulse of the change's sign for every
    /// non-zero change, whatever its size.
    Sign,
    /// `n = round(|ΔG|/ΔG_pulse)` nominal pulses, with `ΔG_pulse = (Gmax − Gmin)/P` the nominal
    /// device's mean step in that direction (default).
    #[default]
    Count,
    /// One pulse of width `t_p·|ΔG|/ΔG_pulse` (capped at `max_pulses·t_p`).
    Width,
}

/// How the fixed-voltage update turns the fractional pulse count `q = |ΔG|/ΔG_pulse` into a
/// whole number of pulses: deterministically, or by a random draw per device and step.
///
/// Not a numeric rounding mode of a datapath (those are `nacsim_nn::quant::Rounding` for
/// integer codes and `nacsim_sine::Rounding` for fixed-point angles), and not NeuroSim's
/// `Δw → pulses` conversion (`nacsim_device::PulseRounding`, used by the `NeuroSim` scheme).
/// Written `rounding: Nearest` / `rounding: Stochastic` in the settings; the serde name is the
/// old `Rounding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename = "Rounding")]
pub enum PulseCountRounding {
    /// `⌊q + 1/2⌋` (round half up, NeuroSim `truncate()` threshold 0.5): changes under half a
    /// pulse are lost.
    #[default]
    Nearest,
    /// `⌊q⌋ + 1` with probability `q − ⌊q⌋`, else `⌊q⌋` (unbiased; keeps small updates alive).
    Stochastic,
}

/// How the approximately linear update finds the drive that gives `ΔG = c·ΔW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Linearization {
    /// Invert the nominal device's response at the (read or tracked) state: the drive `s` with
    /// `G(x + s) − G(x) = ΔG` (note §2.2 (a)).
    #[default]
    Inversion,
    /// First-order: `s = ΔG / (dG/ds)` at the current state (Soudry et al., TNNLS 2015; note
    /// §2.2 (b)); accurate for small steps, off where the curve bends.
    SmallSignal,
}

/// Which pulse parameter the approximately linear update modulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Modulation {
    /// Pulse width at the nominal amplitude (default).
    #[default]
    Width,
    /// Pulse amplitude at the nominal width; small changes use amplitudes just above the
    /// threshold, where a relative voltage error matters most.
    Amplitude,
}

/// The drive model for pulses that are not the device's nominal one \[I\].
///
/// A pulse of amplitude `V` and width `t` in direction d moves the device like
/// `s = (t/t_p)·((|V| − V_th)/(|V_p| − V_th))^α` nominal pulses (`t_p`, `V_p` the device's
/// nominal pulse in that direction, `V_th` its threshold; `s = 0` for `|V| ≤ V_th`). This is the
/// VTEAM threshold rate law `k·(V/v_th − 1)^α` (note §1.2) with the nominal pulse as the unit,
/// applied in the device's pulse-position coordinate, so a nominal pulse is exactly one pulse of
/// the pulse-response model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriveSettings {
    /// Exponent α of the overdrive (default 1, VTEAM `alpha_off` in MemTorch's defaults).
    pub exponent: f64,
}

impl Default for DriveSettings {
    fn default() -> Self {
        DriveSettings { exponent: 1.0 }
    }
}

/// Variation beyond the device config's own d2d/c2c knobs (note §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Variation {
    /// Relative d2d σ of each device's `Gmax` and `Gmin` (NeuroSim `conductanceRangeVar`
    /// analogue), drawn once: `G·(1 + σξ)`. Exponential devices only. Default 0.
    pub g_range_d2d_sigma: f64,
    /// Relative σ of the programming voltage, `V·(1 + σξ)` (paper's "errors of programming
    /// voltages", note §3.2). Default 0.
    pub voltage_error_sigma: f64,
    /// Whether the voltage error is drawn per pulse or once per driver (default per pulse).
    pub voltage_error: VoltageError,
    /// Apply half-select disturb to unselected cells of a driven row or column (V/2 scheme):
    /// each such cell receives the drive of a `V/2` pulse, which is zero unless `V/2` exceeds
    /// the threshold. Default false, as in NeuroSim (half-selected cells cost energy but keep
    /// their state). Note that the presets' inferred threshold `min(|V_ltp|, |V_ltd|)/2` lies
    /// below `V_ltp/2` when the LTP amplitude is the larger one (Ag:a-Si: 1.6 V > 1.4 V, a
    /// drive of 0.11 pulse per half-selected pulse), so switching this on for such a preset
    /// needs a measured `threshold_v` to be meaningful; the store warns when it is active.
    pub half_select_disturb: bool,
}

impl Default for Variation {
    fn default() -> Self {
        Variation {
            g_range_d2d_sigma: 0.0,
            voltage_error_sigma: 0.0,
            voltage_error: VoltageError::PerPulse,
            half_select_disturb: false,
        }
    }
}

/// Lifetime of the programming-voltage error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum VoltageError {
    /// A fresh draw for every pulse (for `n` equal pulses the summed drive is drawn at once by
    /// the delta method: `n·r(V) + sqrt(n)·r'(V)·σ·|V|·ξ`).
    #[default]
    PerPulse,
    /// A static error per row driver and per column driver; a cell sees
    /// `V·(1 + (ε_row + ε_col)/2)` (V/2 on each side).
    PerDriver,
}

/// Forward-pass periphery and read settings: the crossbar crate's training periphery model
/// ([`nacsim_crossbar::periphery::TrainingPeriphery`]: DAC, output-referred read noise and ADC
/// normalized by each sample's largest input, read voltage and width of read-before-write).
pub use nacsim_crossbar::periphery::TrainingPeriphery as Periphery;

/// Dataset options applied before training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DataOptions {
    /// Resize every image to `(h, w)` by area averaging (default none); the network's input
    /// must have this size (NeuroSim MLP V3.0: 20×20).
    pub resize: Option<(usize, usize)>,
    /// Binarize pixels: `≥ threshold·255` becomes 255, else 0 (threshold in `(0, 1]`; default
    /// none; NeuroSim MLP V3.0 uses 1-bit inputs).
    pub binarize: Option<f64>,
    /// Train on the first this many training images (0 = all, default). NeuroSim MLP V3.0 uses
    /// 8,000 images per epoch.
    pub train_images: usize,
}

fn check_sigma(c: &mut Checks, field: &str, x: f64) {
    c.check(
        x.is_finite() && x >= 0.0,
        field,
        x,
        "must be a finite standard deviation ≥ 0 (a fraction; 0 disables it)",
    );
}

impl Validate for InSituConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.nested("device", &self.device);
        c.check(
            self.w_max.is_finite() && self.w_max > 0.0,
            "w_max",
            self.w_max,
            "must be a positive finite weight (the weight of a full conductance swing)",
        );
        let exponential = matches!(
            self.device,
            PulseDeviceConfig::Preset(_) | PulseDeviceConfig::Exponential(_)
        );
        match self.scheme {
            Scheme::FixedVoltage { max_pulses, .. } => {
                c.check(
                    max_pulses >= 1,
                    "scheme.FixedVoltage.max_pulses",
                    max_pulses,
                    "must be at least 1, or no update can ever be written",
                );
            }
            Scheme::ApproxLinear {
                max_drive,
                max_pulses,
                ..
            } => {
                c.check(
                    max_drive.is_finite() && max_drive > 0.0,
                    "scheme.ApproxLinear.max_drive",
                    max_drive,
                    "must be a positive number of nominal pulses per pulse",
                );
                c.check(
                    max_pulses >= 1,
                    "scheme.ApproxLinear.max_pulses",
                    max_pulses,
                    "must be at least 1, or no update can ever be written",
                );
            }
            Scheme::NeuroSim => {
                c.check(
                    exponential,
                    "scheme",
                    "NeuroSim",
                    "NeuroSim's write rule needs an exponential device (device: Preset(..) or \
                     Exponential(..)); use FixedVoltage for other models",
                );
                c.check(
                    self.mapping == Mapping::Reference,
                    "mapping",
                    format!("{:?}", self.mapping),
                    "NeuroSim parity uses one device per weight; set mapping: Reference",
                );
                c.check(
                    self.variation.voltage_error_sigma == 0.0,
                    "variation.voltage_error_sigma",
                    self.variation.voltage_error_sigma,
                    "NeuroSim's write rule has no voltage error; set it to 0 or use \
                     FixedVoltage(magnitude: Count)",
                );
            }
            Scheme::Stochastic { bit_length } => {
                c.check(
                    (1..=1024).contains(&bit_length),
                    "scheme.Stochastic.bit_length",
                    bit_length,
                    "must be in 1..=1024 (aihwkit's default is 31)",
                );
            }
        }
        c.check(
            self.drive.exponent.is_finite() && self.drive.exponent > 0.0,
            "drive.exponent",
            self.drive.exponent,
            "must be a positive exponent (VTEAM α)",
        );
        let v = &self.variation;
        check_sigma(&mut c, "variation.g_range_d2d_sigma", v.g_range_d2d_sigma);
        check_sigma(
            &mut c,
            "variation.voltage_error_sigma",
            v.voltage_error_sigma,
        );
        if v.g_range_d2d_sigma > 0.0 {
            c.check(
                exponential,
                "variation.g_range_d2d_sigma",
                v.g_range_d2d_sigma,
                "is implemented for exponential devices (Preset, Exponential) only; use the \
                 step model's w_max_dtod/w_min_dtod instead",
            );
        }
        c.nested("periphery", &self.periphery);
        let p = &self.periphery;
        if let Ok(w) = self.device.write_pulses()
            && let Err(e) = w.check_read_voltage("periphery.read_v", p.read_v)
        {
            c.push(e);
        }
        if let Scheme::ApproxLinear {
            modulate: Modulation::Amplitude,
            max_drive,
            ..
        } = self.scheme
            && let Ok(w) = self.device.write_pulses()
        {
            // The largest amplitude must stay finite and above threshold: always true for a
            // positive max_drive, but say so clearly for a threshold at or above the pulse.
            for (name, pulse) in [("ltp", w.ltp), ("ltd", w.ltd)] {
                c.check(
                    pulse.amplitude_v.abs() > w.threshold_v,
                    &format!("device.{name}.amplitude_v"),
                    pulse.amplitude_v,
                    &format!(
                        "must exceed the threshold {} V for amplitude modulation (max_drive {max_drive})",
                        w.threshold_v
                    ),
                );
            }
        }
        let d = &self.data;
        if let Some((h, w)) = d.resize {
            c.check(
                (1..=4096).contains(&h) && (1..=4096).contains(&w),
                "data.resize",
                format!("({h}, {w})"),
                "must be a size of 1..=4096 pixels on each side",
            );
        }
        if let Some(t) = d.binarize {
            c.check(
                t.is_finite() && t > 0.0 && t <= 1.0,
                "data.binarize",
                t,
                "must be a threshold in (0, 1] (fraction of full white)",
            );
        }
        c.finish()
    }
}

impl InSituConfig {
    /// The device config with every device-to-device knob set to zero: the model the programmer
    /// believes in (it does not know each device's draw).
    pub fn nominal_device(&self) -> PulseDeviceConfig {
        match &self.device {
            PulseDeviceConfig::Preset(p) => {
                let mut p = p.clone();
                p.overrides.nl_d2d_sigma = Some(0.0);
                PulseDeviceConfig::Preset(p)
            }
            PulseDeviceConfig::Exponential(e) => {
                let mut e = e.clone();
                e.nl_d2d_sigma = 0.0;
                PulseDeviceConfig::Exponential(e)
            }
            PulseDeviceConfig::Step(s) => {
                let c2c = s.dw_min_std;
                let mut s = s.clone().ideal();
                s.dw_min_std = c2c;
                PulseDeviceConfig::Step(s)
            }
            other => other.clone(),
        }
    }

    /// True when devices differ from one another (any d2d knob is non-zero).
    pub fn has_d2d(&self) -> bool {
        let device = match &self.device {
            PulseDeviceConfig::Preset(p) => p.resolve().nl_d2d_sigma > 0.0,
            PulseDeviceConfig::Exponential(e) => e.nl_d2d_sigma > 0.0,
            PulseDeviceConfig::Step(_) => self.nominal_device() != self.device,
            PulseDeviceConfig::Lut(_) | PulseDeviceConfig::Tabulated(_) => false,
        };
        device || self.variation.g_range_d2d_sigma > 0.0
    }

    /// Checks the nominal device builds and returns it with its write pulses.
    ///
    /// # Errors
    ///
    /// The device's rule violations, under `device`.
    pub fn build_nominal(
        &self,
    ) -> Result<(nacsim_device::PulseDevice, nacsim_device::WritePulses), Vec<FieldError>> {
        let within = |errs: Vec<FieldError>| -> Vec<FieldError> {
            errs.into_iter().map(|e| e.within("device")).collect()
        };
        let s = nacsim_core::Stream::new(0, nacsim_core::Purpose::DeviceToDevice, 0, 0);
        let dev = self.nominal_device().build(&s, 0).map_err(within)?;
        let pulses = self.device.write_pulses().map_err(within)?;
        debug_assert!(dev.g_max_s() > dev.g_min_s());
        Ok((dev, pulses))
    }
}
