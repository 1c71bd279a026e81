//! Write accounting of one update step: the blocks' accumulators merged layer by layer
//! (energy of driven, half-selected and read cells, row-by-row write latency), half-select
//! disturb, and the fixed-order conductance sum.

use nacsim_device::NoNoise;
use rayon::prelude::*;

use super::CHUNK_DEVICES;
use super::devices::Bank;
use super::layer::XLayer;
use super::update::{Acc, Ctx};
use crate::config::Periphery;

/// The write totals of one step, summed over its layers in order.
#[derive(Debug, Default)]
pub(super) struct StepTotals {
    /// Any device was programmed.
    pub(super) any: bool,
    /// Largest finite `|ΔW|` asked for.
    pub(super) max_dw: f64,
    /// Pulses applied.
    pub(super) pulses: u64,
    /// Write latency in seconds.
    pub(super) latency_s: f64,
    /// Energy of the driven cells in joules.
    pub(super) write_j: f64,
    /// Energy of the half-selected cells in joules.
    pub(super) half_select_j: f64,
    /// Read-before-write energy in joules.
    pub(super) read_j: f64,
}

/// Merges the accumulators of layer `l`'s blocks (`accs`, in block order) into `t`: pulses,
/// write energy, half-select energy at the layer's mean conductance at the start of the step,
/// row-by-row latency, and the read-before-write cost when `read` gives the read settings.
/// Applies half-select disturb when the step has it; returns whether it did (the layer's
/// weights must then be re-read).
pub(super) fn merge_layer(
    ctx: &Ctx<'_>,
    l: &mut XLayer,
    accs: impl Iterator<Item = Acc>,
    read: Option<&Periphery>,
    t: &mut StepTotals,
) -> bool {
    let dpw = ctx.dpw;
    let n_dev = l.g.len();
    let mut row_lat = vec![[0.0f64; 2]; l.cols];
    let disturb = ctx.disturb != (0.0, 0.0);
    let mut row_dist = if disturb {
        vec![[0.0f64; 2]; l.cols]
    } else {
        Vec::new()
    };
    let mut col_dist: Vec<[f64; 2]> = Vec::new();
    let mut own: Vec<(usize, usize, f64)> = Vec::new();
    let mut hs = 0.0;
    // Σ G at the start of the step, kept incrementally (recomputed after disturb).
    let g_sum = l.g_sum;
    for a in accs {
        t.any |= a.any;
        t.max_dw = t.max_dw.max(a.max_dw);
        t.pulses += a.pulses;
        t.write_j += a.e_write_j;
        hs += a.hs_factor;
        l.g_sum += a.dg_sum;
        for &(row, phase, dur) in &a.row_lat {
            // Branch-free `if dur > t { t = dur }`: the same value (durations are ≥ +0, and a
            // NaN never replaces `t` either way).
            let t = &mut row_lat[row as usize][usize::from(phase)];
            *t = t.max(dur);
        }
        for (t, s) in row_dist.iter_mut().zip(&a.row_dist) {
            t[0] += s[0];
            t[1] += s[1];
        }
        col_dist.extend_from_slice(&a.col_dist);
        own.extend_from_slice(&a.own_dist);
    }
    let g_mean = g_sum / n_dev.max(1) as f64;
    let cells_per_row = (l.out * dpw) as f64;
    let cells_per_col = l.cols as f64;
    t.half_select_j += hs * g_mean * (cells_per_row - 1.0 + cells_per_col - 1.0);
    t.latency_s += row_lat.iter().map(|r| r[0] + r[1]).sum::<f64>();
    if let Some(p) = read {
        t.read_j += p.read_v * p.read_v * g_sum * p.read_width_s;
        t.latency_s += l.cols as f64 * p.read_width_s;
    }
    if disturb && !col_dist.is_empty() {
        apply_disturb(ctx, l, &row_dist, &col_dist, &own);
        return true;
    }
    false
}

/// Half-select disturb: every cell moves by the drive of the `V/2` pulses that its row and
/// column carried for other cells (noise-free), LTP first.
fn apply_disturb(
    ctx: &Ctx<'_>,
    l: &mut XLayer,
    row: &[[f64; 2]],
    col: &[[f64; 2]],
    own: &[(usize, usize, f64)],
) {
    let dpw = ctx.dpw;
    let cols = l.cols;
    let (hs_up, hs_down) = ctx.disturb;
    // A selected cell does not see V/2 from its own pulses: they are counted once in its row's
    // and once in its column's sum, so subtract them twice.
    let mut own_w = vec![[0.0f64; 2]; l.g.len()];
    for &(d, phase, w) in own {
        own_w[d][phase] += 2.0 * w;
    }
    let bank = &l.bank;
    l.g.par_chunks_mut(CHUNK_DEVICES)
        .enumerate()
        .for_each(|(ci, g)| {
            for (i, gv) in g.iter_mut().enumerate() {
                let d = ci * CHUNK_DEVICES + i;
                let k = (d / dpw) % cols;
                let c = (d / (dpw * cols)) * dpw + d % dpw;
                let dev = match bank {
                    Bank::Shared => ctx.shared,
                    Bank::PerDevice { phys, .. } => &phys[d],
                };
                let up = hs_up * (row[k][0] + col[c][0] - own_w[d][0]).max(0.0);
                let down = hs_down * (row[k][1] + col[c][1] - own_w[d][1]).max(0.0);
                let x = dev.respond(*gv, true, up, &mut NoNoise);
                *gv = dev.respond(x, false, down, &mut NoNoise);
            }
        });
    l.g_sum = sum_f64(&l.g);
}

/// Sum of `x` in eight interleaved partial sums (vectorisable; a fixed order, so the result
/// does not depend on threads).
pub(super) fn sum_f64(x: &[f64]) -> f64 {
    let mut p = [0.0f64; 8];
    let mut it = x.chunks_exact(8);
    for c in &mut it {
        for (a, v) in p.iter_mut().zip(c) {
            *a += v;
        }
    }
    let tail: f64 = it.remainder().iter().sum();
    ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7])) + tail
}
