//! The device bank of a layer: each crosspoint's device drawn with its device-to-device
//! variation, and the NeuroSim exponential builder with a tabulated `normA`.

use nacsim_core::Stream;
use nacsim_core::config::FieldError;
use nacsim_device::PulseDevice;
use rayon::prelude::*;

use crate::config::InSituConfig;
use crate::program::Phys;

/// The devices of one layer.
pub(super) enum Bank {
    /// Every device is the shared one (no device-to-device variation).
    Shared,
    /// One device per crosspoint.
    PerDevice {
        /// The devices' responses.
        phys: Vec<Phys>,
        /// The devices themselves, kept only for the NeuroSim write rule.
        raw: Vec<PulseDevice>,
    },
}

/// Device errors seen from the settings' root (`device.…`).
pub(super) fn within_device(errs: Vec<FieldError>) -> Vec<FieldError> {
    errs.into_iter().map(|e| e.within("device")).collect()
}

/// The `n_dev` devices of layer `id` drawn from `seed`: device `i` from
/// `(seed, DeviceToDevice, id, 0)` by index, then (exponential devices) its conductance range
/// `G·(1 + σξ)` from `(seed, DeviceToDevice, id, 1)` at `2i` (`Gmax`) and `2i + 1` (`Gmin`).
/// `keep_raw` keeps the devices beside their responses (the NeuroSim write rule needs them).
///
/// # Errors
///
/// The device's rule violations, under `device`.
pub(super) fn per_device_bank(
    cfg: &InSituConfig,
    seed: u64,
    id: u32,
    n_dev: usize,
    keep_raw: bool,
) -> Result<Bank, Vec<FieldError>> {
    use nacsim_core::Purpose;
    let d2d = Stream::new(seed, Purpose::DeviceToDevice, id, 0);
    let gr = Stream::new(seed, Purpose::DeviceToDevice, id, 1);
    let sig = cfg.variation.g_range_d2d_sigma;
    let fast = FastBuilder::new(&cfg.device);
    let raw: Result<Vec<PulseDevice>, Vec<FieldError>> = (0..n_dev)
        .into_par_iter()
        .map(|i| {
            let mut d = match &fast {
                Some(f) => PulseDevice::Exponential(f.build(&d2d, i as u64)),
                None => cfg.device.build(&d2d, i as u64).map_err(within_device)?,
            };
            if sig > 0.0
                && let PulseDevice::Exponential(e) = &mut d
            {
                let i = i as u64;
                let hi = e.g_max_s * (1.0 + sig * gr.normal(2 * i, 0.0, 1.0));
                let lo = e.g_min_s * (1.0 + sig * gr.normal(2 * i + 1, 0.0, 1.0));
                let lo = lo.max(0.0);
                let hi = hi.max(lo * (1.0 + 1e-6) + 1e-18);
                e.sigma_c2c_s *= (hi - lo) / (e.g_max_s - e.g_min_s);
                e.g_max_s = hi;
                e.g_min_s = lo;
            }
            Ok(d)
        })
        .collect();
    let raw = raw?;
    let phys = raw.par_iter().map(|d| Phys::new(d.clone())).collect();
    Ok(Bank::PerDevice {
        phys,
        raw: if keep_raw { raw } else { Vec::new() },
    })
}

/// Builds NeuroSim exponential devices with d2d NL labels like
/// [`ExpDeviceConfig::build`](nacsim_device::ExpDeviceConfig::build) (same draws, same clamp,
/// same `normA`), but with the `normA` table computed once instead of one bisection per device
/// (NeuroSim-table lookup only: the value depends on the label's table index alone).
///
/// Why a second builder: the device crate's builder solves `normA` by bisection for every
/// device, twice, which dominates building a store of ~10⁵–10⁶ devices with d2d variation. The
/// right home of the table is `nacsim_device` (a builder that tabulates once); until it has
/// one, this copy stays, and the test `fast_builder_draws_the_same_devices_as_the_device_crate`
/// checks it against the device crate device by device.
pub struct FastBuilder {
    cfg: nacsim_device::ExpDeviceConfig,
    table: Vec<f64>,
}

impl FastBuilder {
    /// A builder for `device`, if it is a valid exponential device with the NeuroSim-table
    /// lookup.
    pub fn new(device: &nacsim_device::PulseDeviceConfig) -> Option<Self> {
        use nacsim_core::config::Validate;
        let cfg = match device {
            nacsim_device::PulseDeviceConfig::Preset(p) => p.resolve(),
            nacsim_device::PulseDeviceConfig::Exponential(e) => e.clone(),
            _ => return None,
        };
        if cfg.nl_lookup != nacsim_device::NlLookup::NeuroSimTable || cfg.validate().is_err() {
            return None;
        }
        let table = (1..=900)
            .map(|k| {
                // (k + 0.5)/100 truncates to table index k − 1 exactly (k/100 itself may not:
                // the 53-label quirk).
                let label = (f64::from(k) + 0.5) / 100.0;
                nacsim_device::norm_a(label, nacsim_device::NlLookup::NeuroSimTable)
                    .unwrap_or(f64::NAN)
            })
            .collect();
        Some(FastBuilder { cfg, table })
    }

    fn a(&self, nl: f64, p: u32) -> Option<f64> {
        if nl == 0.0 {
            return None;
        }
        let index = ((nl.abs() * 100.0) as i64 - 1).clamp(0, 899) as usize;
        Some(nl.signum() * self.table[index] * f64::from(p))
    }

    /// Device `device_index` drawn from `d2d`.
    pub fn build(&self, d2d: &Stream, device_index: u64) -> nacsim_device::ExpDevice {
        use nacsim_device::neurosim::NL_TABLE_RANGE;
        let c = &self.cfg;
        let (nl_ltp, nl_ltd) = if c.nl_d2d_sigma == 0.0 {
            (c.nl_ltp, c.nl_ltd)
        } else {
            let draw = |nl: f64, k: u64| {
                let x = d2d.normal(2 * device_index + k, nl, c.nl_d2d_sigma);
                let sign = if x < 0.0 { -1.0 } else { 1.0 };
                sign * x.abs().clamp(NL_TABLE_RANGE.0, NL_TABLE_RANGE.1)
            };
            (draw(c.nl_ltp, 0), draw(c.nl_ltd, 1))
        };
        nacsim_device::ExpDevice {
            g_max_s: c.g_on_s,
            g_min_s: c.g_off_s,
            pulses_ltp: c.pulses_ltp,
            pulses_ltd: c.pulses_ltd,
            a_ltp: self.a(nl_ltp, c.pulses_ltp),
            a_ltd: self.a(nl_ltd, c.pulses_ltd),
            sigma_c2c_s: c.c2c_sigma * (c.g_on_s - c.g_off_s),
            rounding: c.rounding,
        }
    }
}
