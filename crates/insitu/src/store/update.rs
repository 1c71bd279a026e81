//! Pass 2 of an update and the work of one block: the exact programmer (pulse planning,
//! device response, voltage errors, c2c noise) on the weights pass 1 ([`super::scan`]) kept, in
//! device order, with the block's write accounting ([`Acc`]).

use std::cell::RefCell;

use nacsim_core::Stream;
use nacsim_core::keyed::{Keyed, Keys32, unit32};
use nacsim_device::{NoNoise, Normals, PulseDevice};
use nacsim_nn::optim::Step;

use super::draws::ChunkNormals;
use super::neurosim::CellWrite;
use super::scan::{Filter, ScanBlock, ScanBuf, scan};
use crate::config::{
    InSituConfig, Linearization, Magnitude, Modulation, PulseCountRounding, Scheme, VoltageError,
};
use crate::program::{DriveModel, Phys, PulseTrain, modulated_train, nominal_train, round_half_up};

/// Shared, read-only context of one update.
pub(super) struct Ctx<'a> {
    pub(super) skip_below: f64,
    pub(super) cfg: &'a InSituConfig,
    pub(super) model: DriveModel,
    pub(super) nominal: &'a Phys,
    pub(super) shared: &'a Phys,
    pub(super) shared_raw: &'a PulseDevice,
    pub(super) range: f64,
    pub(super) mid: f64,
    pub(super) dpw: usize,
    pub(super) step_up: f64,
    pub(super) step_down: f64,
    /// The optimiser's constants of this step.
    pub(super) opt_step: Step,
    /// 0-based index of this step (keys the per-step draws).
    pub(super) step: u64,
    pub(super) disturb: (f64, f64),
    pub(super) rbw: bool,
    pub(super) neurosim: bool,
    /// Record every programmed cell for the NeuroSim write accounting ([`super::neurosim`]).
    pub(super) ns_trace: bool,
    pub(super) filter: Filter,
    pub(super) needs_uniform: bool,
    pub(super) inv_step_up: f64,
    pub(super) inv_step_down: f64,
    /// Test switch: pass 1 without extra target features.
    pub(super) baseline_scan: bool,
}

#[derive(Default)]
pub(super) struct Acc {
    pub(super) pulses: u64,
    pub(super) e_write_j: f64,
    pub(super) hs_factor: f64,
    /// Σ (G after − G before) over the block's programmed devices, in programming order.
    pub(super) dg_sum: f64,
    /// `(crossbar row, phase, train duration in seconds)` of every programmed device, in
    /// programming order (the layer's row latency is the maximum per row and phase; a list
    /// instead of a per-block array of all rows, which cost a fill and a merge of `cols`
    /// entries per block and step for a few programmed devices).
    pub(super) row_lat: Vec<(u32, u8, f64)>,
    pub(super) row_dist: Vec<[f64; 2]>,
    pub(super) col_dist: Vec<[f64; 2]>,
    pub(super) own_dist: Vec<(usize, usize, f64)>,
    pub(super) any: bool,
    pub(super) max_dw: f64,
    /// Programmed cells of the block when `ns_trace` is on.
    pub(super) ns_cells: Vec<CellWrite>,
}

/// One block of an update: (index into the step's layer views, the block, its weight
/// gradients, its bias gradients).
pub(super) type Job<'a> = (usize, Block<'a>, &'a [f32], Option<&'a [f32]>);

/// The mutable slices of one block of output rows.
pub(super) struct Block<'a> {
    pub(super) index: usize,
    pub(super) o0: usize,
    pub(super) g: &'a mut [f64],
    pub(super) est: &'a mut [f64],
    pub(super) pulses: &'a mut [u32],
    pub(super) m: &'a mut [f32],
    pub(super) v: &'a mut [f32],
    pub(super) w: &'a mut [f32],
    pub(super) b: &'a mut [f32],
}

thread_local! {
    /// Pass 1's candidate list and buffers, kept per thread from block to block and step to
    /// step (an allocation and its growth per block and step cost ~3 % of the bench epoch).
    static SCRATCH: RefCell<(Vec<(u32, f32)>, ScanBuf)> = RefCell::default();
}

/// Per-block Gaussian sources (created on first use).
struct Draws<'a> {
    c2c: ChunkNormals<'a>,
    verr: ChunkNormals<'a>,
}

/// One block of a layer's update.
pub(super) fn update_block(
    ctx: &Ctx<'_>,
    l: &LayerView<'_>,
    blk: Block<'_>,
    gw: &[f32],
    gb: Option<&[f32]>,
) -> Acc {
    let dpw = ctx.dpw;
    let cols = l.cols;
    let rows = blk.g.len() / (cols * dpw);
    let mut acc = Acc::default();
    if ctx.disturb != (0.0, 0.0) {
        acc.row_dist = vec![[0.0; 2]; cols];
        acc.col_dist = vec![[0.0; 2]; rows * dpw];
    }
    let dev0 = blk.o0 * cols * dpw;
    let gen_index = ctx.step * l.n_blocks as u64 + blk.index as u64;
    let mut draws = Draws {
        c2c: ChunkNormals::new(l.c2c, gen_index),
        verr: ChunkNormals::new(l.verr, gen_index),
    };
    let keys: Keys32 = l.round.at(ctx.step).keys32();
    let scale = ctx.range / (2.0 * ctx.cfg.w_max);
    // Pass 1: the optimiser over every weight of the block and a conservative zero-pulse test;
    // the weights that may be programmed, in index order, with their ΔW.
    let (mut cand, mut buf) = SCRATCH.take();
    cand.clear();
    let mut max_bits = 0u32;
    let w0 = (dev0 / dpw) as u64; // layer-wide index of the block's first weight
    let fan_in = l.fan_in;
    scan(
        ctx,
        keys,
        ScanBlock {
            w0,
            rows,
            fan_in,
            cols,
            gw,
            gb,
            w: blk.w,
            b: blk.b,
            m: blk.m,
            v: blk.v,
        },
        &mut buf,
        &mut cand,
        &mut max_bits,
    );
    // Pass 2: the exact programmer on the candidates' devices (device order, so the c2c and
    // voltage-error normals are consumed in a fixed order).
    // Touch the candidates' conductances and pulse counters first: independent loads overlap
    // their cache misses, which the long per-device loop below would take one at a time.
    acc.row_lat.reserve_exact(cand.len() * dpw);
    let mut warm = 0.0f64;
    for &(wi, _) in &cand {
        let d = wi as usize * dpw;
        warm += blk.g[d] + f64::from(blk.pulses[d]);
    }
    std::hint::black_box(warm);
    let est = blk.est;
    for &(wi, dw) in &cand {
        let wi = wi as usize;
        let (r, k) = (wi / cols, wi % cols);
        let o = blk.o0 + r;
        let index = (w0 + wi as u64) as u32;
        let a = f64::from(dw.abs()) * scale;
        let base = wi * dpw;
        let mut programmed = false;
        let words = if ctx.needs_uniform {
            keys.words(index)
        } else {
            (0, 0)
        };
        for j in 0..dpw {
            let sign = if j == 0 { 1.0 } else { -1.0 };
            let up = (dw > 0.0) == (j == 0);
            let u = if ctx.needs_uniform {
                unit32(if j == 0 { words.0 } else { words.1 })
            } else {
                0.0
            };
            let inv = if up {
                ctx.inv_step_up
            } else {
                ctx.inv_step_down
            };
            if !ctx.may_pulse(a * inv, u) {
                continue;
            }
            programmed = true;
            let di = base + j;
            let (dev, raw) = match l.bank {
                BankView::Shared => (ctx.shared, ctx.shared_raw),
                BankView::PerDevice { phys, raw } => (
                    &phys[dev0 + di],
                    raw.get(dev0 + di).unwrap_or(ctx.shared_raw),
                ),
            };
            let vf = if l.row_err.is_empty() {
                1.0
            } else {
                1.0 + 0.5 * (l.row_err[k] + l.col_err[o * dpw + j])
            };
            let est_slot = est.get_mut(di);
            program_device(
                ctx,
                dev,
                raw,
                &mut blk.g[di],
                est_slot,
                &mut blk.pulses[di],
                sign * f64::from(dw) * scale,
                sign * f64::from(dw),
                vf,
                u,
                &mut draws,
                (k, r * dpw + j, dev0 + di),
                &mut acc,
            );
        }
        if programmed {
            let w = weight_of(ctx.cfg, ctx.range, ctx.mid, &blk.g[base..base + dpw]) as f32;
            if k < fan_in {
                blk.w[r * fan_in + k] = w;
            } else if let Some(b) = blk.b.get_mut(r) {
                *b = w;
            }
        }
    }
    acc.max_dw = f64::from(f32::from_bits(max_bits));
    SCRATCH.set((cand, buf));
    acc
}

/// Plans and applies the pulses of one device; `u` is its rounding/coincidence uniform, `at`
/// is (crossbar row, block-local column, layer-wide device index).
#[allow(clippy::too_many_arguments)]
#[inline]
fn program_device(
    ctx: &Ctx<'_>,
    dev: &Phys,
    raw: &PulseDevice,
    g: &mut f64,
    est: Option<&mut f64>,
    count: &mut u32,
    dg: f64,
    dw_dev: f64,
    vf: f64,
    u: f64,
    draws: &mut Draws<'_>,
    at: (usize, usize, usize),
    acc: &mut Acc,
) {
    let up = dg > 0.0;
    let q = dg.abs() / if up { ctx.step_up } else { ctx.step_down };
    let g_old = *g;
    let (train, g_new) = if ctx.neurosim {
        let PulseDevice::Exponential(d) = raw else {
            return; // validated: NeuroSim needs an exponential device
        };
        let w = ctx.cfg.w_max;
        let out = d.write(g_old, dw_dev, -w, w, &mut draws.c2c);
        let Some(t) = nominal_train(&ctx.model, out.n_pulses > 0, out.n_pulses.unsigned_abs())
        else {
            return;
        };
        (t, out.g_s)
    } else {
        let train = match ctx.cfg.scheme {
            Scheme::FixedVoltage {
                magnitude,
                rounding,
                max_pulses,
            } => match magnitude {
                Magnitude::Sign => nominal_train(&ctx.model, up, 1),
                Magnitude::Count => {
                    let n = match rounding {
                        PulseCountRounding::Nearest => round_half_up(q),
                        PulseCountRounding::Stochastic => {
                            let f = (q as u64) as f64; // q ≥ 0: truncation is floor
                            f + f64::from(u8::from(u < q - f))
                        }
                    };
                    nominal_train(&ctx.model, up, n.min(f64::from(max_pulses)) as u32)
                }
                Magnitude::Width => {
                    let s = q.min(f64::from(max_pulses));
                    (s > 0.0).then(|| {
                        let p = ctx.model.nominal(up);
                        PulseTrain {
                            amplitude_v: p.amplitude_v,
                            width_s: p.width_s * s,
                            count: 1,
                            up,
                        }
                    })
                }
            },
            Scheme::ApproxLinear {
                method,
                modulate,
                max_drive,
                max_pulses,
                ..
            } => {
                let base = if ctx.rbw {
                    g_old
                } else {
                    est.as_deref().copied().unwrap_or(g_old)
                };
                let cap = max_drive * f64::from(max_pulses);
                let s = match method {
                    Linearization::Inversion => ctx.nominal.drive_to_reach(base, base + dg, cap),
                    Linearization::SmallSignal => {
                        let sl = ctx.nominal.slope(base, up);
                        if sl == 0.0 {
                            0.0
                        } else {
                            (dg / sl).abs().min(cap)
                        }
                    }
                };
                let t = modulated_train(
                    &ctx.model,
                    up,
                    s,
                    max_drive,
                    max_pulses,
                    modulate == Modulation::Amplitude,
                );
                if let (Some(t), Some(e)) = (&t, est) {
                    let s_cmd = f64::from(t.count) * ctx.model.drive(up, t.amplitude_v, t.width_s);
                    *e = ctx.nominal.respond(base, up, s_cmd, &mut NoNoise);
                }
                t
            }
            Scheme::Stochastic { bit_length } => {
                let p = q / f64::from(bit_length);
                nominal_train(&ctx.model, up, binomial(bit_length, p, u))
            }
            Scheme::NeuroSim => None,
        };
        let Some(train) = train else { return };
        // Physics: the actual pulse with its voltage error.
        let v = train.amplitude_v * vf;
        let r = ctx.model.drive(up, v, train.width_s);
        let n = f64::from(train.count);
        let mut s = n * r;
        let sig = ctx.cfg.variation.voltage_error_sigma;
        if sig > 0.0 && ctx.cfg.variation.voltage_error == VoltageError::PerPulse {
            let sd = n.sqrt() * ctx.model.drive_slope(up, v, train.width_s) * v.abs() * sig;
            s = (s + sd * draws.verr.next_normal()).max(0.0);
        }
        (train, dev.respond(g_old, up, s, &mut draws.c2c))
    };
    *g = g_new;
    acc.dg_sum += g_new - g_old;
    acc.any = true;
    *count = count.saturating_add(train.count);
    acc.pulses += u64::from(train.count);
    let v = train.amplitude_v * vf;
    let n = f64::from(train.count);
    acc.e_write_j += n * v * v * 0.5 * (g_old + g_new) * train.width_s;
    acc.hs_factor += n * 0.25 * v * v * train.width_s;
    let phase = usize::from(!train.up);
    let (row, col, d) = at;
    if ctx.ns_trace {
        let n = train.count.min(i32::MAX as u32) as i32;
        let signed = if train.up { n } else { -n };
        acc.ns_cells.push((d as u32, signed, 0.5 * (g_old + g_new)));
    }
    let dur = train.duration_s();
    acc.row_lat.push((row as u32, phase as u8, dur));
    if !acc.row_dist.is_empty() {
        let nominal_w = ctx.model.nominal(train.up).width_s;
        let widths = n * train.width_s / nominal_w;
        acc.row_dist[row][phase] += widths;
        acc.col_dist[col][phase] += widths;
        acc.own_dist.push((d, phase, widths));
    }
}

/// Binomial(n, p) by inversion of the CDF with one uniform `u`.
fn binomial(n: u32, p: f64, u: f64) -> u32 {
    if p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    let q = 1.0 - p;
    let mut prob = q.powi(n as i32);
    let mut cdf = prob;
    let mut k = 0;
    while u >= cdf && k < n {
        prob *= f64::from(n - k) / f64::from(k + 1) * p / q;
        k += 1;
        cdf += prob;
    }
    k
}

/// The weight a device group (one weight's `dpw` conductances) holds.
#[inline]
pub(super) fn weight_of(cfg: &InSituConfig, range: f64, mid: f64, g: &[f64]) -> f64 {
    match cfg.mapping {
        crate::config::Mapping::Differential => cfg.w_max * (g[0] - g[1]) / range,
        crate::config::Mapping::Reference => cfg.w_max * (g[0] - mid) * 2.0 / range,
    }
}

/// A layer's devices as the update sees them.
pub(super) enum BankView<'a> {
    Shared,
    PerDevice {
        phys: &'a [Phys],
        raw: &'a [PulseDevice],
    },
}

/// The read-only part of a layer during an update.
pub(super) struct LayerView<'a> {
    pub(super) fan_in: usize,
    pub(super) cols: usize,
    pub(super) n_blocks: usize,
    pub(super) bank: BankView<'a>,
    pub(super) row_err: &'a [f64],
    pub(super) col_err: &'a [f64],
    pub(super) c2c: &'a Stream,
    pub(super) verr: &'a Stream,
    pub(super) round: Keyed,
}

/// `n` slices of `v` of `per` elements each (the last shorter), or `n` empty slices when `v`
/// is empty.
pub(super) fn blocks_of<T>(v: &mut [T], per: usize, n: usize) -> Vec<&mut [T]> {
    if v.is_empty() {
        (0..n).map(|_| &mut [][..]).collect()
    } else {
        v.chunks_mut(per.max(1)).collect()
    }
}
