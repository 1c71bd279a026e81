//! Energy of a layer's actions (cost layer): the counters of [`timing`](crate::timing) priced
//! by the config's [`EnergyConstants`](crate::config::EnergyConstants) into pJ by action.
//!
//! # Energy (pJ, by action; constants in [`EnergyConstants`](crate::config::EnergyConstants))
//!
//! ```text
//! array_read = device_reads · v_read² · Ḡ · integration_ns·1e-9 · 1e12   (Ḡ: mean programmed conductance of the layer;
//!                                                                          v_read: full-scale input, an upper bound)
//! dac        = dac_conversions · dac_1bit_pj · dac_bits
//! adc        = adc_conversions · adc_8bit_pj · 2^(adc.bits − 8)                 (SAR: constant Walden FoM)
//!            = adc_conversions · (2^adc.bits − 1) · flash_comparator_pj          (flash: every comparator decides)
//! tia        = tia_reads · tia_pj
//! shift_add  = shift_adds · shift_add_pj
//! ```

use std::collections::BTreeMap;

use nacsim_core::Counters;
use serde::{Deserialize, Serialize};

use crate::config::{AdcArch, CrossbarConfig};
use crate::timing::counter;

/// The energy action names as constants, so that a reader (the scheduler's adapter) misspelling
/// one fails to compile.
pub mod action {
    /// ADC conversions.
    pub const ADC: &str = "adc";
    /// Device reads of the arrays (`V²·G·t`).
    pub const ARRAY_READ: &str = "array_read";
    /// DAC conversions.
    pub const DAC: &str = "dac";
    /// Digital shift-and-adds of slices and row tiles.
    pub const SHIFT_ADD: &str = "shift_add";
    /// TIA reads.
    pub const TIA: &str = "tia";
}

/// Energy action names, in lexicographic order.
pub const ENERGY_ACTIONS: [&str; 5] = [
    action::ADC,
    action::ARRAY_READ,
    action::DAC,
    action::SHIFT_ADD,
    action::TIA,
];

/// Timing, action counts and energy of running `rows` input vectors through a layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossbarCost {
    /// Cycles at `timing.clock_mhz` from the first DAC settle to the last output added.
    pub cycles: u64,
    /// Action counts keyed by [`COUNTER_NAMES`](crate::timing::COUNTER_NAMES) (all present).
    pub counters: Counters,
    /// Energy in pJ keyed by [`ENERGY_ACTIONS`] (all present).
    pub energy_pj: BTreeMap<String, f64>,
}

impl CrossbarCost {
    /// Total energy in pJ.
    pub fn total_energy_pj(&self) -> f64 {
        self.energy_pj.values().sum()
    }
}

/// Energy by action in pJ from `counters` (module docs).
pub fn energy(cfg: &CrossbarConfig, counters: &Counters, mean_g_s: f64) -> BTreeMap<String, f64> {
    let e = &cfg.energy;
    let v = cfg.dac.v_read_v;
    let t_s = cfg.timing.integration_ns * 1e-9;
    let adc = adc_conversion_pj(cfg);
    let c = |name: &str| counters.get(name) as f64;
    let values = [
        c(counter::ADC_CONVERSIONS) * adc,
        c(counter::DEVICE_READS) * v * v * mean_g_s * t_s * 1e12,
        c(counter::DAC_CONVERSIONS) * e.dac_1bit_pj * f64::from(cfg.dac_bits()),
        c(counter::SHIFT_ADDS) * e.shift_add_pj,
        c(counter::TIA_READS) * e.tia_pj,
    ];
    ENERGY_ACTIONS
        .into_iter()
        .map(str::to_owned)
        .zip(values)
        .collect()
}

/// Energy of one ADC conversion in pJ: `adc_8bit_pj · 2^(bits−8)` for a SAR ADC (a constant
/// Walden figure of merit, ISAAC's anchor), `(2^bits − 1) · flash_comparator_pj` for a flash
/// ADC ([`AdcArch`]).
pub fn adc_conversion_pj(cfg: &CrossbarConfig) -> f64 {
    let e = &cfg.energy;
    match cfg.adc.architecture {
        AdcArch::Sar => e.adc_8bit_pj * 2f64.powi(cfg.adc.bits as i32 - 8),
        AdcArch::Flash => cfg.adc.comparators() as f64 * e.flash_comparator_pj,
    }
}
