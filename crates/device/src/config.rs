//! One serde choice over every pulse-device model, validated and built per device.
//!
//! RON (newtype variants take their struct in a second pair of parentheses):
//!
//! ```text
//! Preset((preset: AgASi, overrides: (c2c_sigma: 0.0)))
//! Exponential((g_on_s: 1e-5, g_off_s: 1e-6, pulses_ltp: 128, pulses_ltd: 128, nl_ltp: 0.04, nl_ltd: -0.63))
//! Step((model: SoftBounds, g_on_s: 1e-5, g_off_s: 1e-6))
//! Lut((ltp_g_s: [1e-6, 2e-6, 3e-6], ltd_g_s: [3e-6, 2e-6, 1e-6]))
//! Tabulated((model: Hp(()), ltp: (amplitude_v: 1.0, width_s: 1e-3), ltd: (amplitude_v: -1.0, width_s: 1e-3)))
//! ```

use nacsim_core::Stream;
use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::lut::{LutConfig, LutDevice};
use crate::neurosim::{ExpDevice, ExpDeviceConfig};
use crate::presets::PresetConfig;
use crate::state::{TabulateConfig, tabulate};
use crate::step::{StepDevice, StepDeviceConfig};
use crate::{Normals, PulseResponse, WritePulses};

/// Which pulse-device model a crossbar uses.
///
/// Besides the variants, RON may name a device preset file, `File("models/devices/x.ron")`
/// ([`DeviceFile`](crate::DeviceFile), written by `nacsim device import` / `fit --out`): its
/// device replaces the `File` when the config is read. The path is relative to the working
/// directory (run nacsim from the repository root, as the README's commands do) or absolute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "PulseDeviceSpec")]
pub enum PulseDeviceConfig {
    /// A named preset with overrides (NeuroSim exponential model).
    Preset(PresetConfig),
    /// A NeuroSim exponential device given field by field.
    Exponential(ExpDeviceConfig),
    /// An aihwkit step model.
    Step(StepDeviceConfig),
    /// A measured look-up table.
    Lut(LutConfig),
    /// A state (ODE) device tabulated under fixed pulses. It has no device-to-device variation,
    /// so build it once and clone the result.
    Tabulated(TabulateConfig),
}

/// The RON form of [`PulseDeviceConfig`]: its variants plus `File(path)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
enum PulseDeviceSpec {
    Preset(PresetConfig),
    Exponential(ExpDeviceConfig),
    Step(StepDeviceConfig),
    Lut(LutConfig),
    Tabulated(TabulateConfig),
    File(String),
}

impl TryFrom<PulseDeviceSpec> for PulseDeviceConfig {
    type Error = String;

    fn try_from(s: PulseDeviceSpec) -> Result<Self, String> {
        Ok(match s {
            PulseDeviceSpec::Preset(p) => PulseDeviceConfig::Preset(p),
            PulseDeviceSpec::Exponential(p) => PulseDeviceConfig::Exponential(p),
            PulseDeviceSpec::Step(p) => PulseDeviceConfig::Step(p),
            PulseDeviceSpec::Lut(p) => PulseDeviceConfig::Lut(p),
            PulseDeviceSpec::Tabulated(p) => PulseDeviceConfig::Tabulated(p),
            PulseDeviceSpec::File(path) => crate::file::load_named(&path)?.device,
        })
    }
}

impl Validate for PulseDeviceConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        match self {
            PulseDeviceConfig::Preset(p) => c.nested("Preset", p),
            PulseDeviceConfig::Exponential(p) => c.nested("Exponential", p),
            PulseDeviceConfig::Step(p) => c.nested("Step", p),
            PulseDeviceConfig::Lut(p) => c.nested("Lut", p),
            PulseDeviceConfig::Tabulated(p) => c.nested("Tabulated", p),
        }
        c.finish()
    }
}

impl PulseDeviceConfig {
    /// Device `device_index`, drawing device-to-device variation from `d2d` (a
    /// `Purpose::DeviceToDevice` stream).
    ///
    /// # Errors
    ///
    /// Every broken rule, with field paths under the variant name.
    pub fn build(&self, d2d: &Stream, device_index: u64) -> Result<PulseDevice, Vec<FieldError>> {
        let within = |p: &'static str| {
            move |errs: Vec<FieldError>| -> Vec<FieldError> {
                errs.into_iter().map(|e| e.within(p)).collect()
            }
        };
        Ok(match self {
            PulseDeviceConfig::Preset(p) => {
                p.validate().map_err(within("Preset"))?;
                PulseDevice::Exponential(
                    p.resolve()
                        .build(d2d, device_index)
                        .map_err(within("Preset"))?,
                )
            }
            PulseDeviceConfig::Exponential(p) => {
                PulseDevice::Exponential(p.build(d2d, device_index).map_err(within("Exponential"))?)
            }
            PulseDeviceConfig::Step(p) => {
                PulseDevice::Step(p.build(d2d, device_index).map_err(within("Step"))?)
            }
            PulseDeviceConfig::Lut(p) => PulseDevice::Lut(p.build().map_err(within("Lut"))?),
            PulseDeviceConfig::Tabulated(p) => {
                PulseDevice::Lut(tabulate(p).map_err(within("Tabulated"))?.lut)
            }
        })
    }

    /// The write pulses and switching threshold of the chosen device. For a tabulated state
    /// device the threshold is its [`StateDevice::read_disturb_limit_v`](crate::StateDevice::read_disturb_limit_v).
    ///
    /// # Errors
    ///
    /// The state model's errors when it cannot be built.
    pub fn write_pulses(&self) -> Result<WritePulses, Vec<FieldError>> {
        Ok(match self {
            PulseDeviceConfig::Preset(p) => p.resolve().pulses,
            PulseDeviceConfig::Exponential(p) => p.pulses,
            PulseDeviceConfig::Step(p) => p.pulses,
            PulseDeviceConfig::Lut(p) => p.pulses,
            PulseDeviceConfig::Tabulated(p) => {
                let dev = p.model.build()?;
                WritePulses {
                    ltp: p.ltp,
                    ltd: p.ltd,
                    threshold_v: dev.read_disturb_limit_v(),
                }
            }
        })
    }
}

/// A built pulse device of any model (closed enum, docs/style.md §2.2).
#[derive(Debug, Clone, PartialEq)]
pub enum PulseDevice {
    /// NeuroSim exponential.
    Exponential(ExpDevice),
    /// aihwkit step model.
    Step(StepDevice),
    /// Look-up table (measured or tabulated).
    Lut(LutDevice),
}

impl PulseResponse for PulseDevice {
    fn g_min_s(&self) -> f64 {
        match self {
            PulseDevice::Exponential(d) => d.g_min_s(),
            PulseDevice::Step(d) => d.g_min_s(),
            PulseDevice::Lut(d) => d.g_min_s(),
        }
    }
    fn g_max_s(&self) -> f64 {
        match self {
            PulseDevice::Exponential(d) => d.g_max_s(),
            PulseDevice::Step(d) => d.g_max_s(),
            PulseDevice::Lut(d) => d.g_max_s(),
        }
    }
    fn pulses_ltp(&self) -> u32 {
        match self {
            PulseDevice::Exponential(d) => d.pulses_ltp(),
            PulseDevice::Step(d) => d.pulses_ltp(),
            PulseDevice::Lut(d) => d.pulses_ltp(),
        }
    }
    fn pulses_ltd(&self) -> u32 {
        match self {
            PulseDevice::Exponential(d) => d.pulses_ltd(),
            PulseDevice::Step(d) => d.pulses_ltd(),
            PulseDevice::Lut(d) => d.pulses_ltd(),
        }
    }
    fn apply_pulses(&self, g_s: f64, n: i32, noise: &mut dyn Normals) -> f64 {
        match self {
            PulseDevice::Exponential(d) => d.apply_pulses(g_s, n, noise),
            PulseDevice::Step(d) => d.apply_pulses(g_s, n, noise),
            PulseDevice::Lut(d) => d.apply_pulses(g_s, n, noise),
        }
    }
}
