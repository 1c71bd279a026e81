//! Device presets with cited parameters (note §4.3), selectable by name with overrides.
//!
//! Every preset is a NeuroSim exponential device ([`ExpDeviceConfig`]). The numbers are
//! NeuroSim V3.0's 32 nm benchmark table (manual Table II, note §4.3) unless a row says
//! otherwise. Values tagged \[I\] are inferred (the table does not state them); NOTES.md lists
//! each inference:
//!
//! * **Threshold voltage** \[I\]: no source gives one, so every preset uses
//!   [`WritePulses::half_select_threshold_v`] = `min(|V_ltp|, |V_ltd|)/2`, the lowest threshold
//!   consistent with NeuroSim's V/2 half-select scheme. Override `threshold_v` with a measured
//!   value.
//! * **Depression polarity** \[I\]: where the table lists one amplitude "for both" (TaOx/HfOx) or
//!   the NeuroSim ideal device, LTD uses the opposite sign. PCM (GST) is unipolar: both pulses
//!   are positive, as listed.
//! * **"< x %" σ** \[I\]: taken as `x %` (PCMO, HZO FeFET).
//! * **GST states** \[I\]: the table says 100–120; we take 100.
//!
//! RON: `(preset: AgASi, overrides: (nl_ltp: 3.0, c2c_sigma: 0.0))`.

use nacsim_core::config::{FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::drift::{DriftModel, PcmDrift};
use crate::neurosim::{ExpDeviceConfig, NlLookup, PulseRounding};
use crate::{Pulse, WritePulses};

/// A named device preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum DevicePreset {
    /// Ag:a-Si (Jo et al., Nano Lett. 2010), NeuroSim's default RRAM: Gmax 3.8462e-8 S,
    /// Gmin 3.0769e-9 S (R_on 26 MΩ, on/off 12.5), 97 LTP / 100 LTD pulses, NL 2.40/−4.88,
    /// c2c 3.5 %, +3.2 V/300 µs, −2.8 V/300 µs (MLP_NeuroSim_V3.0 `Cell.cpp`, note §4.3 notes).
    AgASi,
    /// TaOx/HfOx (Wu et al. 2018): 128 states, NL 0.04/−0.63, R_on 100 kΩ, on/off 10,
    /// 1.6 V/50 ns (LTD −1.6 V \[I\]), c2c 3.7 %.
    TaOxHfOx,
    /// PCMO (Park et al. 2013): 50 states, NL 3.68/−6.76, R_on 23 MΩ, on/off 6.84,
    /// LTP −2 V/1 ms, LTD +2 V/1 ms, c2c < 1 % (taken as 1 % \[I\]).
    Pcmo,
    /// AlOx/HfO2 (Woo et al. 2016): 40 states, NL 1.94/−0.61, R_on 16.9 kΩ, on/off 4.43,
    /// 0.9 V/100 µs, −1 V/100 µs, c2c 5 %.
    AlOxHfO2,
    /// GST phase-change memory (Kuzum et al., Nano Lett. 2011): 100 states (100–120 in the
    /// table \[I\]), NL 0.105/2.4, R_on 4.71 kΩ, on/off 19.8, LTP 0.7 V/6 µs, LTD 3 V/125 ns
    /// (unipolar), c2c 1.5 %.
    GstPcm,
    /// EpiRAM Ag:SiGe (Choi et al., Nat. Mater. 2018): 64 states, NL 0.5/−0.5, R_on 81 kΩ,
    /// on/off 50.2, 5 V/5 µs, −3 V/5 µs, c2c 2 %.
    EpiRam,
    /// HZO FeFET (Jerry et al., IEDM 2017): 32 states, NL 1.75/1.46, R_on 559 kΩ, on/off 45,
    /// 3.65 V/75 ns, −2.95 V/75 ns, c2c < 0.5 % (taken as 0.5 % \[I\]).
    HzoFeFet,
    /// Ideal linear device: NeuroSim `IdealDevice` (MLP_NeuroSim_V3.0 `Cell.cpp`): Gmax 5 µS,
    /// Gmin 100 nS, 64 levels, ±2 V/10 ns (LTD sign \[I\]), no nonlinearity or noise.
    IdealLinear,
}

/// One row of the preset table.
struct Row {
    name: &'static str,
    source: &'static str,
    g_on_s: f64,
    on_off: f64,
    g_off_s: Option<f64>,
    pulses: (u32, u32),
    nl: (f64, f64),
    c2c: f64,
    ltp: (f64, f64),
    ltd: (f64, f64),
}

impl DevicePreset {
    /// Every preset.
    pub const ALL: [DevicePreset; 8] = [
        DevicePreset::AgASi,
        DevicePreset::TaOxHfOx,
        DevicePreset::Pcmo,
        DevicePreset::AlOxHfO2,
        DevicePreset::GstPcm,
        DevicePreset::EpiRam,
        DevicePreset::HzoFeFet,
        DevicePreset::IdealLinear,
    ];

    #[rustfmt::skip]
    fn row(self) -> Row {
        //                 name         source                                                   Gon [S]        on/off   Goff [S]             pulses      NL             c2c     LTP (V, s)       LTD (V, s)
        let r = |name, source, g_on_s, on_off, g_off_s, pulses, nl, c2c, ltp, ltd| Row { name, source, g_on_s, on_off, g_off_s, pulses, nl, c2c, ltp, ltd };
        match self {
            DevicePreset::AgASi =>       r("Ag:a-Si",      "Jo et al., Nano Lett. 10, 2010; NeuroSim V3.0 Cell.cpp and manual Table II", 3.8462e-8, 12.5, Some(3.0769e-9), (97, 100), (2.40, -4.88), 0.035, (3.2, 300e-6), (-2.8, 300e-6)),
            DevicePreset::TaOxHfOx =>    r("TaOx/HfOx",    "Wu et al., 2018; NeuroSim V3.0 manual Table II",                         1.0 / 100e3, 10.0, None, (128, 128), (0.04, -0.63), 0.037, (1.6, 50e-9), (-1.6, 50e-9)),
            DevicePreset::Pcmo =>        r("PCMO",         "Park et al., 2013; NeuroSim V3.0 manual Table II",                       1.0 / 23e6, 6.84, None, (50, 50), (3.68, -6.76), 0.01, (-2.0, 1e-3), (2.0, 1e-3)),
            DevicePreset::AlOxHfO2 =>    r("AlOx/HfO2",    "Woo et al., 2016; NeuroSim V3.0 manual Table II",                        1.0 / 16.9e3, 4.43, None, (40, 40), (1.94, -0.61), 0.05, (0.9, 100e-6), (-1.0, 100e-6)),
            DevicePreset::GstPcm =>      r("GST PCM",      "Kuzum et al., Nano Lett. 2011; NeuroSim V3.0 manual Table II",           1.0 / 4.71e3, 19.8, None, (100, 100), (0.105, 2.4), 0.015, (0.7, 6e-6), (3.0, 125e-9)),
            DevicePreset::EpiRam =>      r("EpiRAM",       "Choi et al., Nat. Mater. 2018; NeuroSim V3.0 manual Table II",           1.0 / 81e3, 50.2, None, (64, 64), (0.5, -0.5), 0.02, (5.0, 5e-6), (-3.0, 5e-6)),
            DevicePreset::HzoFeFet =>    r("HZO FeFET",    "Jerry et al., IEDM 2017; NeuroSim V3.0 manual Table II",                 1.0 / 559e3, 45.0, None, (32, 32), (1.75, 1.46), 0.005, (3.65, 75e-9), (-2.95, 75e-9)),
            DevicePreset::IdealLinear => r("ideal linear", "NeuroSim V3.0 Cell.cpp IdealDevice",                                     5e-6, 50.0, Some(100e-9), (64, 64), (0.0, 0.0), 0.0, (2.0, 10e-9), (-2.0, 10e-9)),
        }
    }

    /// Human-readable name.
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// Citation of the numbers.
    pub fn source(self) -> &'static str {
        self.row().source
    }

    /// ON conductance `Gon = Gmax` (siemens).
    pub fn g_on_s(self) -> f64 {
        self.config().g_on_s
    }

    /// OFF conductance `Goff = Gmin` (siemens).
    pub fn g_off_s(self) -> f64 {
        self.config().g_off_s
    }

    /// Number of states (pulses per full sweep) as `(LTP, LTD)`.
    pub fn states(self) -> (u32, u32) {
        let c = self.config();
        (c.pulses_ltp, c.pulses_ltd)
    }

    /// Write pulses (amplitudes in volts, widths in seconds) and threshold (volts).
    pub fn write_pulses(self) -> WritePulses {
        self.config().pulses
    }

    /// Switching threshold magnitude (volts, inferred \[I\], see the module docs).
    pub fn threshold_v(self) -> f64 {
        self.config().pulses.threshold_v
    }

    /// Largest read voltage magnitude that cannot disturb the device (volts); reads must stay
    /// strictly below it.
    pub fn read_disturb_limit_v(self) -> f64 {
        self.config().pulses.read_disturb_limit_v()
    }

    /// The preset's drift model for inference ([`DriftModel`]): aihwkit's PCM statistics for
    /// GST PCM (measured on IBM's PCM, Nandakumar et al. 2019, applied to GST \[I\]: NeuroSim's
    /// table gives no drift), none for the others (no cited retention data \[I\]; choose
    /// [`DriftModel::Relaxation`] or a power law in the crossbar's `device.drift`).
    pub fn drift_model(self) -> DriftModel {
        match self {
            DevicePreset::GstPcm => DriftModel::Pcm(PcmDrift::default()),
            _ => DriftModel::None,
        }
    }

    /// The preset's device config (no overrides).
    pub fn config(self) -> ExpDeviceConfig {
        let r = self.row();
        let ltp = Pulse {
            amplitude_v: r.ltp.0,
            width_s: r.ltp.1,
        };
        let ltd = Pulse {
            amplitude_v: r.ltd.0,
            width_s: r.ltd.1,
        };
        ExpDeviceConfig {
            g_on_s: r.g_on_s,
            g_off_s: r.g_off_s.unwrap_or(r.g_on_s / r.on_off),
            pulses_ltp: r.pulses.0,
            pulses_ltd: r.pulses.1,
            nl_ltp: r.nl.0,
            nl_ltd: r.nl.1,
            c2c_sigma: r.c2c,
            nl_d2d_sigma: 0.0,
            nl_lookup: NlLookup::NeuroSimTable,
            rounding: PulseRounding::NeuroSim,
            pulses: WritePulses::with_half_select_threshold(ltp, ltd),
        }
    }
}

/// Optional replacements for a preset's fields (each `None` keeps the preset's value).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresetOverrides {
    /// `Gmax = Gon` (siemens).
    pub g_on_s: Option<f64>,
    /// `Gmin = Goff` (siemens).
    pub g_off_s: Option<f64>,
    /// LTP pulses (states).
    pub pulses_ltp: Option<u32>,
    /// LTD pulses (states).
    pub pulses_ltd: Option<u32>,
    /// LTP NL label.
    pub nl_ltp: Option<f64>,
    /// LTD NL label.
    pub nl_ltd: Option<f64>,
    /// Cycle-to-cycle σ (fraction of the range).
    pub c2c_sigma: Option<f64>,
    /// Device-to-device σ of the NL labels.
    pub nl_d2d_sigma: Option<f64>,
    /// NL → normA lookup.
    pub nl_lookup: Option<NlLookup>,
    /// Δw → pulse rounding.
    pub rounding: Option<PulseRounding>,
    /// LTP pulse amplitude (volts).
    pub ltp_amplitude_v: Option<f64>,
    /// LTP pulse width (seconds).
    pub ltp_width_s: Option<f64>,
    /// LTD pulse amplitude (volts).
    pub ltd_amplitude_v: Option<f64>,
    /// LTD pulse width (seconds).
    pub ltd_width_s: Option<f64>,
    /// Switching threshold (volts). Not recomputed when an amplitude is overridden.
    pub threshold_v: Option<f64>,
}

/// A preset chosen by name, with overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetConfig {
    /// The preset (required).
    pub preset: DevicePreset,
    /// Field replacements (default none).
    #[serde(default)]
    pub overrides: PresetOverrides,
}

impl PresetConfig {
    /// `preset` without overrides.
    pub fn new(preset: DevicePreset) -> Self {
        PresetConfig {
            preset,
            overrides: PresetOverrides::default(),
        }
    }

    /// The preset's config with the overrides applied.
    pub fn resolve(&self) -> ExpDeviceConfig {
        let o = &self.overrides;
        let mut c = self.preset.config();
        macro_rules! set {
            ($($src:ident => $($dst:ident).+),* $(,)?) => {
                $( if let Some(v) = o.$src { c.$($dst).+ = v; } )*
            };
        }
        set!(
            g_on_s => g_on_s, g_off_s => g_off_s, pulses_ltp => pulses_ltp,
            pulses_ltd => pulses_ltd, nl_ltp => nl_ltp, nl_ltd => nl_ltd,
            c2c_sigma => c2c_sigma, nl_d2d_sigma => nl_d2d_sigma, nl_lookup => nl_lookup,
            rounding => rounding, ltp_amplitude_v => pulses.ltp.amplitude_v,
            ltp_width_s => pulses.ltp.width_s, ltd_amplitude_v => pulses.ltd.amplitude_v,
            ltd_width_s => pulses.ltd.width_s, threshold_v => pulses.threshold_v,
        );
        c
    }

    /// The override field that sets `field` of the resolved config.
    fn override_name(field: &str) -> Option<&'static str> {
        Some(match field {
            "g_on_s" => "g_on_s",
            "g_off_s" => "g_off_s",
            "pulses_ltp" => "pulses_ltp",
            "pulses_ltd" => "pulses_ltd",
            "nl_ltp" => "nl_ltp",
            "nl_ltd" => "nl_ltd",
            "c2c_sigma" => "c2c_sigma",
            "nl_d2d_sigma" => "nl_d2d_sigma",
            "pulses.ltp.amplitude_v" => "ltp_amplitude_v",
            "pulses.ltp.width_s" => "ltp_width_s",
            "pulses.ltd.amplitude_v" => "ltd_amplitude_v",
            "pulses.ltd.width_s" => "ltd_width_s",
            "pulses.threshold_v" => "threshold_v",
            _ => return None,
        })
    }
}

impl Validate for PresetConfig {
    /// Validates the resolved config; errors are named `overrides.<field>` (the preset's own
    /// values are valid, so a broken rule comes from an override or from an override's
    /// interaction with the preset, e.g. `g_off_s` above the preset's `g_on_s`).
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        self.resolve().validate().map_err(|errs| {
            errs.into_iter()
                .map(|mut e| {
                    let name = Self::override_name(&e.field).unwrap_or("(preset)");
                    e.field = format!("overrides.{name}");
                    e.rule = format!("{} [preset {}]", e.rule, self.preset.name());
                    e
                })
                .collect()
        })
    }
}
