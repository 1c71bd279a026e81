//! The state-model choice of a config and the tabulation of a state model into a look-up-table
//! device.

use nacsim_core::config::{Checks, FieldError, Validate};
use serde::{Deserialize, Serialize};

use crate::Pulse;
use crate::lut::LutDevice;

use super::{HpConfig, LinearIonDrift, StateDevice, Vteam, VteamConfig, Window};

/// Which state model (serde choice for configs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum StateModelConfig {
    /// HP linear ion drift.
    Hp(HpConfig),
    /// VTEAM.
    Vteam(VteamConfig),
}

impl Validate for StateModelConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        match self {
            StateModelConfig::Hp(c) => c.validate(),
            StateModelConfig::Vteam(c) => c.validate(),
        }
    }
}

impl StateModelConfig {
    /// The window of either model.
    pub fn window(&self) -> Window {
        match self {
            StateModelConfig::Hp(c) => c.window,
            StateModelConfig::Vteam(c) => c.window,
        }
    }

    /// The device as a trait object.
    ///
    /// # Errors
    ///
    /// Every broken rule of [`Validate::validate`].
    pub fn build(&self) -> Result<Box<dyn StateDevice + Send + Sync>, Vec<FieldError>> {
        Ok(match *self {
            StateModelConfig::Hp(c) => Box::new(LinearIonDrift::new(c)?),
            StateModelConfig::Vteam(c) => Box::new(Vteam::new(c)?),
        })
    }
}

/// How to tabulate a [`StateDevice`] into a look-up-table pulse device.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TabulateConfig {
    /// The state model (required).
    pub model: StateModelConfig,
    /// The fixed potentiation (conductance-increasing) pulse (required).
    pub ltp: Pulse,
    /// The fixed depression pulse (required).
    pub ltd: Pulse,
    /// Most pulses tabulated per direction (default 4096; 1..=1_000_000). Tabulation also stops
    /// when a pulse no longer raises (LTP) or lowers (LTD) the conductance.
    #[serde(default = "d_max_pulses")]
    pub max_pulses: u32,
    /// Start each curve this fraction of the state range inside the bound (default 0; must be
    /// > 0 for windows that lock the bounds, Joglekar and Prodromakis).
    #[serde(default)]
    pub start_margin: f64,
}

fn d_max_pulses() -> u32 {
    4096
}

impl Validate for TabulateConfig {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut c = Checks::new();
        c.nested("model", &self.model);
        c.nested("ltp", &self.ltp);
        c.nested("ltd", &self.ltd);
        c.check(
            (1..=1_000_000).contains(&self.max_pulses),
            "max_pulses",
            self.max_pulses,
            "must be in 1..=1000000",
        );
        if c.check(
            self.start_margin.is_finite() && (0.0..0.5).contains(&self.start_margin),
            "start_margin",
            self.start_margin,
            "must be in [0, 0.5)",
        ) && self.model.window().locks_bounds()
        {
            c.check(
                self.start_margin > 0.0,
                "start_margin",
                self.start_margin,
                "must be > 0: the window is zero at both bounds, so a state starting there never moves",
            );
        }
        c.finish()
    }
}

/// A tabulated state device: the look-up table plus the states it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Tabulated {
    /// The pulse device.
    pub lut: LutDevice,
    /// State after each LTP pulse (index = pulse count).
    pub ltp_states: Vec<f64>,
    /// State after each LTD pulse.
    pub ltd_states: Vec<f64>,
}

/// Tabulates `cfg.model` under the fixed LTP/LTD pulses into a [`LutDevice`]: the LTP curve
/// starts at the low-conductance end of the state range (moved in by `start_margin`), the LTD
/// curve at the high end, each applying [`StateDevice::apply_pulse`] until the conductance stops
/// moving or `max_pulses` is reached. At the table points the adapter equals exact integration
/// bit for bit (the same pulse map produced them).
///
/// # Errors
///
/// Every broken rule of [`Validate::validate`], and an error on `ltp.amplitude_v` /
/// `ltd.amplitude_v` when the first pulse does not move the conductance the right way (below
/// threshold or wrong polarity).
pub fn tabulate(cfg: &TabulateConfig) -> Result<Tabulated, Vec<FieldError>> {
    cfg.validate()?;
    let dev = cfg.model.build()?;
    let (lo, hi) = dev.state_range();
    let margin = cfg.start_margin * (hi - lo);
    let (x_low_g, x_high_g) = if dev.conductance_s(lo) < dev.conductance_s(hi) {
        (lo + margin, hi - margin)
    } else {
        (hi - margin, lo + margin)
    };
    let run = |x0: f64, pulse: &Pulse, up: bool| {
        let mut xs = vec![x0];
        let mut gs = vec![dev.conductance_s(x0)];
        let mut x = x0;
        for _ in 0..cfg.max_pulses {
            let xn = dev.apply_pulse(x, pulse.amplitude_v, pulse.width_s);
            let g = dev.conductance_s(xn);
            let last = gs[gs.len() - 1];
            if (up && g <= last) || (!up && g >= last) {
                break;
            }
            xs.push(xn);
            gs.push(g);
            x = xn;
        }
        (xs, gs)
    };
    let (ltp_states, ltp) = run(x_low_g, &cfg.ltp, true);
    let (ltd_states, ltd) = run(x_high_g, &cfg.ltd, false);
    let mut c = Checks::new();
    c.check(
        ltp.len() >= 2,
        "ltp.amplitude_v",
        cfg.ltp.amplitude_v,
        "the LTP pulse does not raise the conductance (below threshold or wrong polarity)",
    );
    c.check(
        ltd.len() >= 2,
        "ltd.amplitude_v",
        cfg.ltd.amplitude_v,
        "the LTD pulse does not lower the conductance (below threshold or wrong polarity)",
    );
    c.finish()?;
    Ok(Tabulated {
        lut: LutDevice::from_tables(ltp, ltd, 0.0),
        ltp_states,
        ltd_states,
    })
}

/// `n` pulses of `v` volts, `width_s` seconds each, applied by exact per-pulse integration.
pub fn apply_pulses_exact<D: StateDevice + ?Sized>(
    dev: &D,
    mut x: f64,
    v: f64,
    width_s: f64,
    n: u32,
) -> f64 {
    for _ in 0..n {
        x = dev.apply_pulse(x, v, width_s);
    }
    x
}
