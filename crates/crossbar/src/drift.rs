//! Conductance drift at inference time and global drift compensation (issue #21).
//!
//! After the static effects of programming ([`datapath::program`](crate::datapath)), every
//! device's conductance is moved by the device's drift model (`device.drift`, a
//! [`DriftModel`] of `nacsim-device`) to its value `inference_time_s` seconds after
//! programming, each device with its own standard normal draw `ξ`. The draws come from the
//! layer's [`Purpose::Drift`] stream, keyed by physical array and by the device's row and
//! column in it ([`device_slot`]): counter `DRIFT_COUNTER_BASE + (row tile << 20 | column
//! tile)`, element `row · array_cols + column` of the vectorised keyed normals. They depend on
//! neither the thread count nor the inference time (the same devices drift the same way at
//! every time, so a time sweep follows one population of devices).
//!
//! With [`DriftCompensation::Global`] each array is read twice with every input at its full
//! value (an all-ones input; aihwkit 1.1/1.2's `GlobalDriftCompensation` reads one-hot inputs
//! instead, an identity matrix, so its gain follows the mean |w| rather than the mean |row
//! sum|: the measured difference is in docs/engines/crossbar.md): once right after
//! programming, once at `inference_time_s`. The ratio of the mean absolute column outputs is
//! the array's gain, applied to its columns as a change of the read-out gain; the physical
//! conductances (and the array energy that follows them) stay drifted.

use rayon::prelude::*;

use nacsim_core::keyed::Keyed;
use nacsim_core::rng::{Purpose, Stream};
use nacsim_device::DriftModel;

use crate::config::{CrossbarConfig, DriftCompensation, SignedScheme};
use crate::timing::Geometry;

/// First counter of the drift draws: far above the counters of the per-device normals of
/// `nonideal.drift_nu` (one per 16384 devices), so the two knobs draw independently.
pub const DRIFT_COUNTER_BASE: u64 = 1 << 40;

/// Where a device sits: physical array `(row tile, column tile)` and its `(row, column)` in it.
///
/// Devices are numbered as in [`ProgrammedLayer::program`](crate::ProgrammedLayer::program):
/// device `d` of weight `(o, k)` is `(o·K + k)·devices_per_weight + d`; the reference column's
/// devices (reference scheme) follow at `n_main + column tile·K + k` and sit in the array's last
/// used column.
pub fn device_slot(
    cfg: &CrossbarConfig,
    geo: &Geometry,
    n_main: usize,
    idx: usize,
) -> ((usize, usize), (usize, usize)) {
    let dev = cfg.devices_per_weight();
    let opa = cfg.outputs_per_array();
    let rows = cfg.array_rows;
    if idx < n_main {
        let (w, d) = (idx / dev, idx % dev);
        let (o, k) = (w / geo.fan_in, w % geo.fan_in);
        ((k / rows, o / opa), (k % rows, (o % opa) * dev + d))
    } else {
        let j = idx - n_main;
        let (ct, k) = (j / geo.fan_in, j % geo.fan_in);
        ((k / rows, ct), (k % rows, opa * dev))
    }
}

/// The draws of array `(rt, ct)`: `array_rows · array_cols` standard normals.
fn array_draws(keyed: Keyed, cfg: &CrossbarConfig, rt: usize, ct: usize) -> Vec<f32> {
    let mut z = vec![0f32; cfg.array_rows * cfg.array_cols];
    keyed
        .at(DRIFT_COUNTER_BASE + ((rt as u64) << 20 | ct as u64))
        .fill_normals(&mut z);
    z
}

/// Whether drift changes anything for `cfg` (a model other than none, at a time > 0).
pub fn is_active(cfg: &CrossbarConfig) -> bool {
    !cfg.device.drift.is_none() && cfg.inference_time_s > 0.0
}

/// The conductances `g` (siemens, after the static effects; `g_target` the ideal targets, same
/// numbering) at `cfg.inference_time_s`. Returns `g` untouched when drift is off.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    cfg: &CrossbarConfig,
    geo: &Geometry,
    n_main: usize,
    g_target: &[f64],
    g: Vec<f64>,
    seed: u64,
    layer: u32,
    trial: u32,
) -> Vec<f64> {
    if !is_active(cfg) {
        return g;
    }
    let model: &DriftModel = &cfg.device.drift;
    let range = (cfg.device.g_off_s, cfg.device.g_on_s);
    let t = cfg.inference_time_s;
    let draws: Vec<Vec<f32>> = if model.is_random() {
        let keyed = Keyed::of(&Stream::new(seed, Purpose::Drift, layer, trial));
        (0..geo.row_tiles * geo.col_tiles)
            .into_par_iter()
            .map(|a| array_draws(keyed, cfg, a / geo.col_tiles, a % geo.col_tiles))
            .collect()
    } else {
        Vec::new()
    };
    let mut out = g;
    out.par_iter_mut().enumerate().for_each(|(idx, gv)| {
        let z = if draws.is_empty() {
            0.0
        } else {
            let ((rt, ct), (r, c)) = device_slot(cfg, geo, n_main, idx);
            f64::from(draws[rt * geo.col_tiles + ct][r * cfg.array_cols + c])
        };
        *gv = model.apply(*gv, g_target[idx], range, t, z);
    });
    out
}

/// Output (in conductance units) of column `o` of array row tile `rt` for an all-ones input:
/// `Σ_k (G⁺ − G⁻)` (differential) or `Σ_k (G − G_ref)` (reference) over the tile's rows.
fn column_sum(
    cfg: &CrossbarConfig,
    geo: &Geometry,
    n_main: usize,
    g: &[f64],
    rt: usize,
    o: usize,
) -> f64 {
    let dev = cfg.devices_per_weight();
    let k0 = rt * cfg.array_rows;
    let k1 = (k0 + cfg.array_rows).min(geo.fan_in);
    let ct = o / cfg.outputs_per_array();
    (k0..k1)
        .map(|k| {
            let base = (o * geo.fan_in + k) * dev;
            match cfg.signed {
                SignedScheme::Differential => g[base] - g[base + 1],
                SignedScheme::Reference => g[base] - g[n_main + ct * geo.fan_in + k],
                // Refused by validation (a ratio output has no common gain to restore).
                SignedScheme::Bridge => 0.0,
            }
        })
        .sum()
}

/// Mean absolute column output of array `(rt, ct)` for an all-ones input (the reference read).
pub fn reference_read(
    cfg: &CrossbarConfig,
    geo: &Geometry,
    n_main: usize,
    g: &[f64],
    (rt, ct): (usize, usize),
) -> f64 {
    let opa = cfg.outputs_per_array();
    let o0 = ct * opa;
    let o1 = (o0 + opa).min(geo.outputs);
    let total: f64 = (o0..o1)
        .map(|o| column_sum(cfg, geo, n_main, g, rt, o).abs())
        .sum();
    total / (o1 - o0) as f64
}

/// The compensation gain of every device (its array's programmed / drifted reference read,
/// 1 where either read is 0), or `None` without [`DriftCompensation::Global`] or drift.
pub fn compensation_gains(
    cfg: &CrossbarConfig,
    geo: &Geometry,
    n_main: usize,
    programmed: &[f64],
    drifted: &[f64],
) -> Option<Vec<f64>> {
    if cfg.drift_compensation != DriftCompensation::Global || !is_active(cfg) {
        return None;
    }
    let gains: Vec<f64> = (0..geo.row_tiles * geo.col_tiles)
        .into_par_iter()
        .map(|a| {
            let tile = (a / geo.col_tiles, a % geo.col_tiles);
            let before = reference_read(cfg, geo, n_main, programmed, tile);
            let after = reference_read(cfg, geo, n_main, drifted, tile);
            if before > 0.0 && after > 0.0 {
                before / after
            } else {
                1.0
            }
        })
        .collect();
    Some(
        (0..drifted.len())
            .map(|idx| {
                let ((rt, ct), _) = device_slot(cfg, geo, n_main, idx);
                gains[rt * geo.col_tiles + ct]
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cover_each_array_position_once() {
        let mut cfg = CrossbarConfig {
            array_rows: 4,
            array_cols: 6,
            ..CrossbarConfig::default()
        };
        for signed in [SignedScheme::Differential, SignedScheme::Reference] {
            cfg.signed = signed;
            let (out, fan_in) = (7, 9);
            let geo = Geometry::new(&cfg, out, fan_in);
            let n_main = out * fan_in * cfg.devices_per_weight();
            let n_ref = if signed == SignedScheme::Reference {
                geo.col_tiles * fan_in
            } else {
                0
            };
            let mut seen = std::collections::HashSet::new();
            for idx in 0..n_main + n_ref {
                let ((rt, ct), (r, c)) = device_slot(&cfg, &geo, n_main, idx);
                assert!(rt < geo.row_tiles && ct < geo.col_tiles, "{signed:?} {idx}");
                assert!(r < cfg.array_rows && c < cfg.array_cols, "{signed:?} {idx}");
                assert!(
                    seen.insert((rt, ct, r, c)),
                    "{signed:?}: {idx} shares a slot"
                );
            }
        }
    }
}
