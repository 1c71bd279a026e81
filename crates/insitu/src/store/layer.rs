//! One layer's crossbar: its devices, driver errors, conductances, pulse counters and the
//! optimiser's digital state, and the ideal program-and-verify of the initial weights.

use nacsim_core::config::FieldError;
use nacsim_core::keyed::Keyed;
use nacsim_core::{Purpose, Stream};
use nacsim_nn::model::Param;
use nacsim_nn::optim::Optimizer;

use super::INSITU_ROUNDING;
use super::accounting::sum_f64;
use super::devices::{Bank, per_device_bank};
use crate::config::{InSituConfig, Mapping, Scheme, VoltageError};
use crate::program::Phys;

/// The crossbar of one Dense (or lowered Conv2d) layer (layout in the module docs).
pub(super) struct XLayer {
    pub(super) out: usize,
    pub(super) fan_in: usize,
    pub(super) cols: usize,
    pub(super) has_bias: bool,
    /// Conductances in siemens, device order.
    pub(super) g: Vec<f64>,
    /// The conductances the programmer believes in (approximately linear update without
    /// read-before-write; empty otherwise).
    pub(super) est: Vec<f64>,
    pub(super) pulses: Vec<u32>,
    /// First moment per weight (optimisers that keep one; empty otherwise).
    pub(super) m: Vec<f32>,
    /// Second moment per weight (Adam; empty otherwise).
    pub(super) v: Vec<f32>,
    pub(super) bank: Bank,
    /// Σ of `g` (siemens), updated by each step's changes.
    pub(super) g_sum: f64,
    /// Static voltage error per row driver (empty without per-driver errors).
    pub(super) row_err: Vec<f64>,
    /// Static voltage error per column driver.
    pub(super) col_err: Vec<f64>,
    pub(super) c2c: Stream,
    pub(super) verr: Stream,
    pub(super) round: Keyed,
}

/// What every layer of a store shares when it is built.
pub(super) struct Shared<'a> {
    pub(super) cfg: &'a InSituConfig,
    pub(super) seed: u64,
    pub(super) device: &'a Phys,
    pub(super) range: f64,
    pub(super) mid: f64,
    pub(super) opt: Optimizer,
}

impl XLayer {
    /// Layer `id` holding `p`: devices drawn (d2d) or shared, per-driver voltage errors drawn,
    /// the initial weights programmed ideally (program-and-verify, not counted).
    ///
    /// # Errors
    ///
    /// The device's rule violations, under `device`.
    pub(super) fn build(s: &Shared<'_>, id: u32, p: &Param) -> Result<Self, Vec<FieldError>> {
        let (cfg, seed, range, mid) = (s.cfg, s.seed, s.range, s.mid);
        let dpw = cfg.mapping.devices_per_weight();
        let (out, fan_in) = p.weight.dim();
        let has_bias = p.bias.is_some();
        let cols = fan_in + usize::from(has_bias);
        let n_dev = out * cols * dpw;
        let bank = if cfg.has_d2d() {
            per_device_bank(cfg, seed, id, n_dev, cfg.scheme == Scheme::NeuroSim)?
        } else {
            Bank::Shared
        };
        let (row_err, col_err) = if cfg.variation.voltage_error == VoltageError::PerDriver
            && cfg.variation.voltage_error_sigma > 0.0
        {
            let s = Stream::new(seed, Purpose::ProgrammingVoltage, id, 0);
            let sig = cfg.variation.voltage_error_sigma;
            (
                (0..cols).map(|k| s.normal(k as u64, 0.0, sig)).collect(),
                (0..out * dpw)
                    .map(|c| s.normal((1u64 << 32) + c as u64, 0.0, sig))
                    .collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let mut g = vec![mid; n_dev];
        // Program the initial weights (program-and-verify, ideal, not counted).
        for o in 0..out {
            for k in 0..cols {
                let w = if k < fan_in {
                    p.weight[[o, k]]
                } else {
                    p.bias.as_ref().map_or(0.0, |b| b[o])
                };
                let half = f64::from(w) * range / (2.0 * cfg.w_max);
                for j in 0..dpw {
                    let d = (o * cols + k) * dpw + j;
                    let target = match cfg.mapping {
                        Mapping::Differential => {
                            if j == 0 {
                                mid + half
                            } else {
                                mid - half
                            }
                        }
                        Mapping::Reference => mid + 2.0 * half,
                    };
                    let dev = match &bank {
                        Bank::Shared => s.device,
                        Bank::PerDevice { phys, .. } => &phys[d],
                    };
                    g[d] = target.clamp(dev.g_min_s(), dev.g_max_s());
                }
            }
        }
        let est = if matches!(
            cfg.scheme,
            Scheme::ApproxLinear {
                read_before_write: false,
                ..
            }
        ) {
            g.clone()
        } else {
            Vec::new()
        };
        let g_sum = sum_f64(&g);
        let n_w = out * cols;
        let moments = s.opt.moments();
        let buffer = |keep: bool| if keep { vec![0.0; n_w] } else { Vec::new() };
        Ok(XLayer {
            out,
            fan_in,
            cols,
            has_bias,
            g,
            est,
            pulses: vec![0; n_dev],
            g_sum,
            m: buffer(moments.first),
            v: buffer(moments.second),
            bank,
            row_err,
            col_err,
            c2c: Stream::new(seed, Purpose::CycleToCycle, id, 0),
            verr: Stream::new(seed, Purpose::ProgrammingVoltage, id, 1),
            round: Keyed::of(&Stream::new(seed, Purpose::Other(INSITU_ROUNDING), id, 0)),
        })
    }
}
