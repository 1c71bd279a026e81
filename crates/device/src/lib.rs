//! Memristive device models for nacsim (issue #5 "Devices", device-level parts of #6).
//!
//! # Overview
//!
//! Two families, after `docs/engines/notes/crossbar.md` §1.2 and §7.3:
//!
//! | module | family | what it models |
//! |---|---|---|
//! | [`neurosim`] | [`PulseResponse`] | NeuroSim exponential LTP/LTD curve `G(P) = B(1−e^{−P/A}) + Gmin`, NL label → normA ([`norm_a`]), the NeuroSim parity write rule ([`ExpDevice::write`]) |
//! | [`step`] | [`PulseResponse`] | aihwkit step models (ConstantStep, LinearStep, SoftBounds, PowStep, ExpStep) with device-to-device (`*_dtod`) and cycle-to-cycle (`dw_min_std`) variation |
//! | [`lut`] | [`PulseResponse`] | a measured look-up-table device: one conductance per pulse index for LTP and LTD |
//! | [`state`] | [`StateDevice`] | ODE devices `dx/dt = f(x, v)`, `G = g(x)`: HP linear ion drift (Joglekar / Biolek / Prodromakis windows) and VTEAM; exact pulses where a closed form exists, adaptive Dormand–Prince 5(4) or fixed RK4 otherwise; [`tabulate`] turns one into a [`LutDevice`] |
//! | [`presets`] | — | cited device presets (NeuroSim V3.0 Table II: Ag:a-Si, TaOx/HfOx, PCMO, AlOx/HfO2, GST PCM, EpiRAM, HZO FeFET, ideal) selectable by name with overrides |
//! | [`drift`] | — | conductance drift after programming for inference at time `t`: [`DriftModel`] (none, power law, aihwkit PCM statistics, RRAM relaxation) |
//! | [`measured`] | — | measured curves in: the curves CSV (line/column errors), mean LUT made monotone, cycle-to-cycle σ from repeated cycles |
//! | [`fit`] | — | fitted models out: NeuroSim NL labels, aihwkit SoftBounds / PowStep / ExpStep, RMSE (siemens) and R², distinguishable levels |
//! | [`file`] | — | device preset files (`models/devices/*.ron`): a device, its drift, provenance (file name, SHA-256) and fit quality |
//! | [`noise`] | — | inference noise statistics: aihwkit PCM (programming, drift, 1/f read), CrossSim RRAM Milo / Wan σ_G |
//! | [`config`] | — | [`PulseDeviceConfig`]: one serde enum choosing any pulse model, validated, built per device |
//!
//! Conductances are in siemens (`_s`), voltages in volts (`_v`), times in seconds (`_s` on a
//! time-named field such as `width_s`). Pulse counts are signed: `n > 0` potentiates (LTP,
//! conductance up), `n < 0` depresses (LTD, conductance down).
//!
//! Randomness comes only from [`nacsim_core::rng::Stream`]: device-to-device parameters are drawn
//! at build time from a [`Purpose::DeviceToDevice`](nacsim_core::Purpose) stream keyed by the
//! device index, cycle-to-cycle noise from a [`StreamNormals`] made from a
//! [`Purpose::CycleToCycle`](nacsim_core::Purpose) stream keyed by the write event. Results are
//! therefore bit-identical for any thread count.
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use nacsim_device::{NoNoise, PulseDeviceConfig, PulseResponse};
//! use nacsim_core::{Purpose, Stream};
//!
//! let cfg: PulseDeviceConfig = nacsim_core::config::parse(
//!     "Preset((preset: AgASi, overrides: (c2c_sigma: 0.0)))",
//!     Path::new("device.ron"),
//! )?;
//! let d2d = Stream::new(1, Purpose::DeviceToDevice, 0, 0);
//! let dev = cfg.build(&d2d, 0).expect("valid preset");
//! let g0 = dev.g_min_s();
//! let g10 = dev.apply_pulses(g0, 10, &mut NoNoise);
//! assert!((g10 - 1.0709e-8).abs() < 1e-12); // note §6 validation #2
//! # Ok::<(), nacsim_core::ConfigError>(())
//! ```
//!
//! # Layer
//!
//! Reference: pure per-device functions over `f64`, no time or energy accounting (the crossbar
//! crate counts pulses and costs them).
#![deny(missing_docs)]

pub mod config;
pub mod drift;
pub mod file;
pub mod fit;
pub mod lut;
pub mod measured;
pub mod neurosim;
pub mod noise;
pub mod presets;
pub mod state;
pub mod step;

use nacsim_core::config::{Checks, FieldError, Validate};
use nacsim_core::{ChaCha8Rng, Stream};
use rand::RngCore;
use serde::{Deserialize, Serialize};

pub use config::{PulseDevice, PulseDeviceConfig};
pub use drift::{DriftModel, PcmDrift, PowerLawDrift, RelaxationDrift};
pub use file::{DeviceFile, DeviceSource, DeviceSummary};
pub use lut::{LutConfig, LutDevice};
pub use neurosim::{ExpDevice, ExpDeviceConfig, NlLookup, PulseRounding, norm_a};
pub use presets::{DevicePreset, PresetConfig, PresetOverrides};
pub use state::{
    HpConfig, LinearIonDrift, StateDevice, TabulateConfig, Vteam, VteamConfig, Window, tabulate,
};
pub use step::{StepDevice, StepDeviceConfig, StepModel};

/// Any error of this crate, for callers that handle them together (docs/style.md §2.6).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A device config breaks one or more rules (field paths relative to the device config).
    #[error("device config: {}", FieldError::join(.0))]
    Invalid(Vec<FieldError>),
    /// An NL label outside the lookup's range.
    #[error("device: {0}")]
    NlOutOfRange(#[from] neurosim::NlOutOfRange),
}

impl From<Vec<FieldError>> for Error {
    fn from(errs: Vec<FieldError>) -> Self {
        Error::Invalid(errs)
    }
}

/// A phenomenological device: one conductance state, moved by identical write pulses.
///
/// Implementations are per-device instances (device-to-device variation already drawn); the
/// state is the conductance itself, in siemens, so a crossbar stores one `f64` per device.
pub trait PulseResponse {
    /// Lowest conductance the device reaches (siemens).
    fn g_min_s(&self) -> f64;
    /// Highest conductance the device reaches (siemens).
    fn g_max_s(&self) -> f64;
    /// Nominal number of potentiation pulses from `g_min_s` to `g_max_s` (the LTP "states").
    fn pulses_ltp(&self) -> u32;
    /// Nominal number of depression pulses from `g_max_s` to `g_min_s` (the LTD "states").
    fn pulses_ltd(&self) -> u32;
    /// Conductance (siemens) after `n` identical pulses from `g_s`: `n > 0` potentiates, `n < 0`
    /// depresses, `n = 0` returns `g_s`. Cycle-to-cycle noise draws from `noise`
    /// ([`NoNoise`] for the noise-free curve). The result lies in `[g_min_s, g_max_s]`.
    fn apply_pulses(&self, g_s: f64, n: i32, noise: &mut dyn Normals) -> f64;
}

/// A source of standard normal draws `z ~ N(0, 1)` for cycle-to-cycle noise.
pub trait Normals {
    /// The next draw.
    fn next_normal(&mut self) -> f64;
}

/// Draws that are all zero: every noise term vanishes, giving the deterministic curve exactly
/// (note §6 validation #14: σ = 0 is bit-identical to ideal).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNoise;

impl Normals for NoNoise {
    fn next_normal(&mut self) -> f64 {
        0.0
    }
}

/// Normal draws from one keyed ChaCha stream, [`Stream::rng`]`(event_index)`.
///
/// Key the stream by `(seed, Purpose::CycleToCycle, layer, trial)` and `event_index` by the
/// write event (e.g. `device_index · n_writes + write_index`): the draws then depend only on the
/// event, not on thread count or evaluation order. Box–Muller on two 53-bit uniforms, cosine
/// branch ([`nacsim_core::rng::box_muller`], the transform of [`Stream::normal`]).
#[derive(Debug, Clone)]
pub struct StreamNormals {
    rng: ChaCha8Rng,
}

impl StreamNormals {
    /// The draws of event `event_index` of `stream`.
    pub fn new(stream: &Stream, event_index: u64) -> Self {
        StreamNormals {
            rng: stream.rng(event_index),
        }
    }
}

impl Normals for StreamNormals {
    fn next_normal(&mut self) -> f64 {
        let w1 = self.rng.next_u64();
        nacsim_core::rng::box_muller(w1, self.rng.next_u64())
    }
}

/// One rectangular write pulse.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pulse {
    /// Amplitude in volts (signed: the polarity that the device needs for this direction).
    pub amplitude_v: f64,
    /// Width in seconds (> 0).
    pub width_s: f64,
}

/// The electrical side of a pulse-programmed device: its LTP and LTD pulses and the switching
/// threshold below which a voltage changes nothing.
///
/// The read voltage must stay below [`read_disturb_limit_v`](Self::read_disturb_limit_v), and a
/// half-selected cell (V/2 scheme, note §2.3) is undisturbed when `|V|/2 ≤ threshold_v`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WritePulses {
    /// Potentiation (conductance-increasing) pulse.
    pub ltp: Pulse,
    /// Depression (conductance-decreasing) pulse.
    pub ltd: Pulse,
    /// Switching threshold magnitude in volts (≥ 0): `|v| ≤ threshold_v` does not change the
    /// state. Both pulse amplitudes must exceed it.
    pub threshold_v: f64,
}

impl Default for WritePulses {
    /// NeuroSim's `IdealDevice` pulses (MLP_NeuroSim_V3.0 `Cell.cpp`): ±2 V, 10 ns; threshold
    /// inferred \[I\] as half the smaller amplitude, 1 V (see [`WritePulses::half_select_threshold_v`]).
    fn default() -> Self {
        WritePulses::with_half_select_threshold(
            Pulse {
                amplitude_v: 2.0,
                width_s: 10e-9,
            },
            Pulse {
                amplitude_v: -2.0,
                width_s: 10e-9,
            },
        )
    }
}

impl WritePulses {
    /// The inferred threshold \[I\] used by every preset: half the smaller pulse amplitude,
    /// `min(|V_ltp|, |V_ltd|)/2`. It is the lowest threshold under which NeuroSim's V/2
    /// half-select scheme (which charges half-selected cells `(V/2)²` energy but never changes
    /// their conductance, `Cell.cpp` `WriteEnergyCalculation`) is self-consistent.
    pub fn half_select_threshold_v(ltp: &Pulse, ltd: &Pulse) -> f64 {
        0.5 * ltp.amplitude_v.abs().min(ltd.amplitude_v.abs())
    }

    /// Pulses with the [`half_select_threshold_v`](Self::half_select_threshold_v) threshold.
    pub fn with_half_select_threshold(ltp: Pulse, ltd: Pulse) -> Self {
        WritePulses {
            threshold_v: Self::half_select_threshold_v(&ltp, &ltd),
            ltp,
            ltd,
        }
    }

    /// The pulse that `n` pulses use: [`ltp`](Self::ltp) for `n > 0`, else [`ltd`](Self::ltd).
    pub fn pulse_for(&self, n: i32) -> &Pulse {
        if n > 0 { &self.ltp } else { &self.ltd }
    }

    /// Duration (seconds) of a train of `n` identical pulses, `|n|·width_s` (NeuroSim write
    /// latency, note §4.2).
    pub fn train_duration_s(&self, n: i32) -> f64 {
        f64::from(n.unsigned_abs()) * self.pulse_for(n).width_s
    }

    /// Highest read voltage magnitude (volts) that cannot disturb the state: the threshold.
    /// A read voltage must be strictly below it.
    pub fn read_disturb_limit_v(&self) -> f64 {
        self.threshold_v
    }

    /// Checks a read voltage against [`read_disturb_limit_v`](Self::read_disturb_limit_v).
    ///
    /// # Errors
    ///
    /// A [`FieldError`] on `field` when `|read_v| ≥ threshold_v`.
    pub fn check_read_voltage(&self, field: &str, read_v: f64) -> Result<(), FieldError> {
        if read_v.is_finite() && read_v.abs() < self.threshold_v {
            Ok(())
        } else {
            Err(FieldError::new(
                field,
                read_v,
                format!(
                    "must be below the device's switching threshold {} V in magnitude, or every \
                     read disturbs the state; lower the read voltage",
                    self.threshold_v
                ),
            ))
        }
    }
}

impl Validate for Pulse {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.check(
            self.amplitude_v.is_finite() && self.amplitude_v != 0.0,
            "amplitude_v",
            self.amplitude_v,
            "must be finite and non-zero (volts)",
        );
        c.check(
            self.width_s.is_finite() && self.width_s > 0.0,
            "width_s",
            self.width_s,
            "must be a positive pulse width in seconds",
        );
        c.finish()
    }
}

impl Validate for WritePulses {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.nested("ltp", &self.ltp);
        c.nested("ltd", &self.ltd);
        if c.check(
            self.threshold_v.is_finite() && self.threshold_v >= 0.0,
            "threshold_v",
            self.threshold_v,
            "must be a finite voltage magnitude ≥ 0",
        ) {
            for (name, p) in [("ltp", &self.ltp), ("ltd", &self.ltd)] {
                c.check(
                    p.amplitude_v.abs() > self.threshold_v || p.amplitude_v.is_nan(),
                    &format!("{name}.amplitude_v"),
                    p.amplitude_v,
                    &format!(
                        "magnitude must exceed threshold_v = {} V, or no pulse can write the \
                         device; raise the amplitude or lower threshold_v",
                        self.threshold_v
                    ),
                );
            }
        }
        c.finish()
    }
}

/// `x` is a finite number ≥ 0 (a σ, a fraction or a magnitude).
pub(crate) fn check_sigma(c: &mut Checks, field: &str, x: f64) {
    c.check(
        x.is_finite() && x >= 0.0,
        field,
        x,
        "must be a finite standard deviation ≥ 0 (0 disables it)",
    );
}

/// Checks `0 < g_off_s < g_on_s`, both finite.
pub(crate) fn check_conductance_range(c: &mut Checks, g_on_s: f64, g_off_s: f64) {
    let ok_off = c.check(
        g_off_s.is_finite() && g_off_s >= 0.0,
        "g_off_s",
        g_off_s,
        "must be a finite conductance ≥ 0 in siemens",
    );
    let ok_on = c.check(
        g_on_s.is_finite() && g_on_s > 0.0,
        "g_on_s",
        g_on_s,
        "must be a positive finite conductance in siemens",
    );
    if ok_on && ok_off {
        c.check(
            g_on_s > g_off_s,
            "g_on_s",
            g_on_s,
            &format!(
                "must exceed g_off_s = {g_off_s} S (Gon ≤ Goff leaves no conductance range); \
                 swap or fix the two values"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn field_errors<T: Validate>(v: &T) -> Vec<String> {
        v.validate()
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn pulse_below_threshold_zero_width_and_bad_threshold_are_named() {
        let mut p = WritePulses::default();
        p.ltp.amplitude_v = 0.8; // below the 1 V threshold
        p.ltd.width_s = -1e-9;
        let e = field_errors(&p);
        assert!(
            e.iter()
                .any(|s| s
                    .starts_with("ltp.amplitude_v = 0.8: magnitude must exceed threshold_v = 1 V")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|s| s.starts_with("ltd.width_s = -0.000000001: must be a positive")),
            "{e:?}"
        );
        p = WritePulses::default();
        p.threshold_v = -0.1;
        assert!(field_errors(&p)[0].starts_with("threshold_v = -0.1"));
        // Amplitude equal to the threshold cannot write either.
        p = WritePulses::default();
        p.ltd.amplitude_v = -1.0;
        assert_eq!(field_errors(&p).len(), 1);
    }

    #[test]
    fn read_voltage_must_stay_below_the_threshold() {
        let p = WritePulses::default();
        assert_eq!(p.read_disturb_limit_v(), 1.0);
        assert!(p.check_read_voltage("read_v", 0.5).is_ok());
        let e = p.check_read_voltage("read_v", 1.0).unwrap_err();
        assert!(
            e.to_string().starts_with("read_v = 1: must be below"),
            "{e}"
        );
        assert!(p.check_read_voltage("read_v", f64::NAN).is_err());
    }

    #[test]
    fn conductance_range_sigma_and_pulse_count_rules() {
        let mut c = presets::DevicePreset::AgASi.config();
        c.g_on_s = 1e-9; // below g_off_s
        c.c2c_sigma = -0.01;
        c.pulses_ltp = 0;
        c.nl_ltd = 12.0;
        let e = field_errors(&c);
        assert!(
            e.iter()
                .any(|s| s.starts_with("g_on_s = 0.000000001: must exceed g_off_s")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|s| s.starts_with("c2c_sigma = -0.01: must be a finite standard deviation")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|s| s.starts_with("pulses_ltp = 0: must be at least 1 pulse")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|s| s.starts_with("nl_ltd = 12: NL label 12 is outside")),
            "{e:?}"
        );
    }

    #[test]
    fn ron_config_parses_with_overrides_and_reports_paths() {
        let p = Path::new("dev.ron");
        let cfg: PulseDeviceConfig = nacsim_core::config::parse(
            "Preset((preset: TaOxHfOx, overrides: (pulses_ltp: 64, threshold_v: 0.9)))",
            p,
        )
        .unwrap();
        let PulseDeviceConfig::Preset(pc) = &cfg else {
            panic!("{cfg:?}")
        };
        let r = pc.resolve();
        assert_eq!(
            (r.pulses_ltp, r.pulses_ltd, r.pulses.threshold_v),
            (64, 128, 0.9)
        );
        let err = nacsim_core::config::parse::<PulseDeviceConfig>(
            "Preset((preset: AgASi, overrides: (g_off_s: 1e-7, ltp_amplitude_v: 1.0)))",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("dev.ron: Preset.overrides.g_on_s = "), "{err}");
        assert!(
            err.contains(
                "Preset.overrides.ltp_amplitude_v = 1: magnitude must exceed threshold_v = 1.4 V"
            ),
            "{err}"
        );
        let err = nacsim_core::config::parse::<PulseDeviceConfig>(
            "Preset((preset: AgASi, overrides: (nl_lpt: 1.0)))",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("nl_lpt"), "{err}");
        let step: PulseDeviceConfig = nacsim_core::config::parse(
            "Step((model: PowStep(gamma: 2.0, gamma_dtod: 0.1, up_down: 0.0, up_down_dtod: 0.0), g_on_s: 1e-5, g_off_s: 1e-6))",
            p,
        )
        .unwrap();
        let d = step
            .build(
                &Stream::new(3, nacsim_core::Purpose::DeviceToDevice, 0, 0),
                9,
            )
            .unwrap();
        assert!(d.g_max_s() > d.g_min_s());
        let tab: PulseDeviceConfig = nacsim_core::config::parse(
            "Tabulated((model: Hp(()), ltp: (amplitude_v: 0.5, width_s: 1e-3), ltd: (amplitude_v: -1.0, width_s: 1e-2)))",
            p,
        )
        .unwrap();
        let e = tab
            .build(
                &Stream::new(3, nacsim_core::Purpose::DeviceToDevice, 0, 0),
                0,
            )
            .unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].to_string()
                .starts_with("Tabulated.ltp.amplitude_v = 0.5: the LTP pulse does not raise"),
            "{}",
            e[0]
        );
        assert_eq!(tab.write_pulses().unwrap().threshold_v, 0.55);
    }

    #[test]
    fn crate_error_names_every_field() {
        let e = Error::from(vec![
            FieldError::new("g_on_s", 0, "must be positive"),
            FieldError::new("pulses_ltp", 0, "must be at least 1"),
        ]);
        assert_eq!(
            e.to_string(),
            "device config: g_on_s = 0: must be positive; pulses_ltp = 0: must be at least 1"
        );
        let e = Error::from(norm_a(12.0, NlLookup::Exact).unwrap_err());
        assert!(e.to_string().starts_with("device: NL label 12"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn configs_round_trip_through_pretty_ron() {
        let o = PresetOverrides {
            nl_ltp: Some(1.0),
            ..PresetOverrides::default()
        };
        let configs = [
            PulseDeviceConfig::Preset(PresetConfig {
                preset: DevicePreset::GstPcm,
                overrides: o,
            }),
            PulseDeviceConfig::Exponential(DevicePreset::EpiRam.config()),
            PulseDeviceConfig::Step(StepDeviceConfig::new(
                StepModel::ExpStep {
                    a: -0.5,
                    b: -0.5,
                    a_up: -1.18445,
                    a_down: -0.0814,
                    gamma_up: 5.0,
                    gamma_down: 5.0,
                },
                2e-5,
                1e-6,
            )),
            PulseDeviceConfig::Tabulated(TabulateConfig {
                model: state::StateModelConfig::Vteam(VteamConfig::default()),
                ltp: Pulse {
                    amplitude_v: -0.3,
                    width_s: 1e-10,
                },
                ltd: Pulse {
                    amplitude_v: 1.0,
                    width_s: 1e-9,
                },
                max_pulses: 64,
                start_margin: 0.0,
            }),
        ];
        for c in configs {
            let text = nacsim_core::config::ron_pretty(&c).unwrap();
            let back: PulseDeviceConfig =
                nacsim_core::config::parse(&text, Path::new("x.ron")).unwrap();
            assert_eq!(back, c, "{text}");
        }
    }

    #[test]
    fn every_preset_validates_builds_and_exposes_its_electrical_side() {
        let d2d = Stream::new(1, nacsim_core::Purpose::DeviceToDevice, 0, 0);
        for preset in DevicePreset::ALL {
            let cfg = PulseDeviceConfig::Preset(PresetConfig::new(preset));
            assert!(cfg.validate().is_ok(), "{}", preset.name());
            let dev = cfg.build(&d2d, 0).unwrap();
            let c = preset.config();
            assert_eq!(dev.g_max_s(), c.g_on_s, "{}", preset.name());
            assert_eq!(dev.g_min_s(), c.g_off_s, "{}", preset.name());
            let w = cfg.write_pulses().unwrap();
            assert!(w.read_disturb_limit_v() > 0.0);
            assert!(
                w.ltp.amplitude_v.abs() > w.threshold_v && w.ltd.amplitude_v.abs() > w.threshold_v
            );
            assert!(!preset.source().is_empty());
        }
        let ag = DevicePreset::AgASi.config();
        assert_eq!(
            (ag.g_on_s, ag.g_off_s, ag.pulses_ltp, ag.pulses_ltd),
            (3.8462e-8, 3.0769e-9, 97, 100)
        );
        assert_eq!((ag.nl_ltp, ag.nl_ltd, ag.c2c_sigma), (2.40, -4.88, 0.035));
        assert_eq!(
            (
                ag.pulses.ltp.amplitude_v,
                ag.pulses.ltd.amplitude_v,
                ag.pulses.ltp.width_s
            ),
            (3.2, -2.8, 300e-6)
        );
        assert_eq!(ag.pulses.read_disturb_limit_v(), 1.4);
        assert_eq!(DevicePreset::AgASi.read_disturb_limit_v(), 1.4);
        assert_eq!(DevicePreset::AgASi.states(), (97, 100));
        assert!((ag.pulses.train_duration_s(-3) - 900e-6).abs() < 1e-15);
    }

    #[test]
    fn d2d_nl_variation_changes_devices_reproducibly() {
        let mut c = DevicePreset::AgASi.config();
        c.nl_d2d_sigma = 0.5;
        let s = Stream::new(5, nacsim_core::Purpose::DeviceToDevice, 0, 0);
        let a = c.build(&s, 0).unwrap();
        let b = c.build(&s, 1).unwrap();
        assert_ne!(a.a_ltp, b.a_ltp);
        assert_eq!(a, c.build(&s, 0).unwrap());
        c.nl_d2d_sigma = 0.0;
        assert_eq!(c.build(&s, 0).unwrap(), c.build_nominal().unwrap());
    }

    #[test]
    fn c2c_noise_spread_scales_with_sigma_and_sqrt_pulses() {
        // NeuroSim: σ_G = sigmaCtoC·(Gmax − Gmin)·sqrt(|n|); measure it over 4000 writes.
        let mut c = DevicePreset::IdealLinear.config();
        c.c2c_sigma = 0.01;
        let d = c.build_nominal().unwrap();
        let s = Stream::new(11, nacsim_core::Purpose::CycleToCycle, 0, 0);
        let mid = 0.5 * (d.g_min_s + d.g_max_s);
        let ideal = d.apply_pulses(mid, 4, &mut NoNoise);
        let n = 4000;
        let var = (0..n)
            .map(|i| (d.apply_pulses(mid, 4, &mut StreamNormals::new(&s, i)) - ideal).powi(2))
            .sum::<f64>()
            / n as f64;
        let want = 0.01 * (d.g_max_s - d.g_min_s) * 2.0;
        // Standard error of a std estimate from 4000 draws ≈ 1.1 %.
        assert!(
            (var.sqrt() / want - 1.0).abs() < 0.05,
            "{} vs {want}",
            var.sqrt()
        );
    }
}
