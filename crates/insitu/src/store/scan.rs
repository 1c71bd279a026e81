//! Pass 1 of an update: the optimiser's `ΔW` over every weight of a block and a conservative
//! zero-pulse test, in straight-line loops the compiler vectorises.
//!
//! The common case of an update is a weight whose change gives no pulse, so this pass decides
//! cheaply which weights the exact programmer (pass 2, [`super::update`]) must look at: f32
//! arithmetic on 24-bit uniforms with a 1e-6 relative margin, never dropping a weight that may
//! get a pulse (tested: with the test off every weight goes to pass 2 and the results are
//! bit-identical).
//!
//! On x86-64 the pass is compiled for AVX-512 and AVX2 too and the version is picked at run
//! time by [`multiversion`] (no hand-written dispatch or `unsafe`); every version does the same
//! integer and IEEE arithmetic without contraction, so all give the same bits (tested against
//! the baseline build).

use multiversion::multiversion;
use nacsim_core::keyed::Keys32;
use nacsim_nn::optim::Step;

use super::update::Ctx;

/// Which devices may get a pulse from a change of `q` nominal pulses (conservative: `true` when
/// unsure; the exact programmer decides).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Filter {
    /// Every device with a non-zero change is programmed.
    All,
    /// Count with nearest rounding: `q ≥ 1/2`.
    Nearest,
    /// Count with stochastic rounding: `q ≥ u`.
    Stochastic,
    /// Binomial coincidence of `bit_length` trials: zero pulses for `u < (1 − q/BL)^BL`, which
    /// is above `1 − q`.
    Coincidence,
}

/// Relative margin of the quick zero-pulse test against the exact programmer's rounding.
const FILTER_MARGIN: f64 = 1e-9;

impl Ctx<'_> {
    /// False when a device asked for `qa` nominal pulses (approximately: `|ΔG|·(1/ΔG_pulse)`)
    /// with rounding uniform `u` certainly gets none.
    #[inline(always)]
    pub(super) fn may_pulse(&self, qa: f64, u: f64) -> bool {
        let q = qa * (1.0 + FILTER_MARGIN);
        match self.filter {
            Filter::All => true,
            Filter::Nearest => q >= 0.5,
            Filter::Stochastic => q >= u,
            Filter::Coincidence => u + q + FILTER_MARGIN >= 1.0,
        }
    }
}

/// Reusable buffer of pass 1 (the changes of one row under momentum or Adam).
#[derive(Default)]
pub(super) struct ScanBuf {
    dw: Vec<f32>,
}

/// The weight-part and bias-part slices of row `row` (block-local weight index of its first
/// column) of an optimiser buffer (empty slices when the buffer is unused).
fn split_row(buf: &mut [f32], row: usize, fan_in: usize, cols: usize) -> (&mut [f32], &mut [f32]) {
    if buf.is_empty() {
        return (&mut [], &mut []);
    }
    buf[row..row + cols].split_at_mut(fan_in)
}

/// The block pass 1 works on: its rows' gradients, weights, biases and optimiser buffers.
pub(super) struct ScanBlock<'b> {
    /// Layer-wide index of the block's first weight (keys the rounding words).
    pub(super) w0: u64,
    /// Output rows of the block.
    pub(super) rows: usize,
    /// Inputs per row (weights; the bias, if any, is column `fan_in`).
    pub(super) fan_in: usize,
    /// Crossbar columns per row: `fan_in`, plus one with a bias.
    pub(super) cols: usize,
    /// Weight gradients, `rows × fan_in`.
    pub(super) gw: &'b [f32],
    /// Bias gradients, `rows` (when the layer has a bias).
    pub(super) gb: Option<&'b [f32]>,
    /// Weights, `rows × fan_in`.
    pub(super) w: &'b [f32],
    /// Biases, `rows` (empty without a bias).
    pub(super) b: &'b [f32],
    /// First-moment buffer, `rows × cols` (empty when unused).
    pub(super) m: &'b mut [f32],
    /// Second-moment buffer, `rows × cols` (empty when unused).
    pub(super) v: &'b mut [f32],
}

/// Pass 1 of a block update: the optimiser's `ΔW` over every weight and bias of the block (row
/// by row, each row's weights then its bias, block-local weight index `row·cols + k`), pushing
/// `(block-local index, ΔW)` of every weight whose devices may get a pulse, in index order, and
/// raising `max_bits` to the bits of the largest finite `|ΔW|`. The zero-pulse test runs in f32
/// on 24-bit uniforms with a 1e-6 relative margin, on 16 weights at a time in straight-line
/// code the compiler vectorises (a row's last partial group and its bias run as a group padded
/// with zero changes, which never pass the test); pass 2 decides exactly.
///
/// `ctx.baseline_scan` runs the build without extra target features (the test of the vector
/// versions).
pub(super) fn scan(
    ctx: &Ctx<'_>,
    keys: Keys32,
    blk: ScanBlock<'_>,
    buf: &mut ScanBuf,
    cand: &mut Vec<(u32, f32)>,
    max_bits: &mut u32,
) {
    if ctx.baseline_scan {
        scan_impl(ctx, keys, blk, buf, cand, max_bits);
    } else {
        scan_dispatch(ctx, keys, blk, buf, cand, max_bits);
    }
}

/// [`scan_impl`] compiled for AVX-512, AVX2 and the baseline, picked at run time. It pays:
/// `cargo bench -p nacsim-insitu --bench epoch` on a 2-core AVX-512 machine (Dec 2026) took
/// 1.42 s per `fmnist_mlp_epoch` with this dispatch and 1.64 s with the baseline build only
/// (`neurosim_epoch` 1.17 s vs 1.26 s). The source stays plain Rust: the compiler vectorises
/// it for each target.
#[multiversion(targets("x86_64+avx2+avx512f+avx512bw+avx512vl+avx512dq", "x86_64+avx2",))]
fn scan_dispatch<'c, 'b>(
    ctx: &Ctx<'c>,
    keys: Keys32,
    blk: ScanBlock<'b>,
    buf: &mut ScanBuf,
    cand: &mut Vec<(u32, f32)>,
    max_bits: &mut u32,
) {
    scan_impl(ctx, keys, blk, buf, cand, max_bits);
}

/// Weights per group of the zero-pulse test (one AVX-512 vector of f32).
const LANES: usize = 16;

/// The zero-pulse test of one step.
#[derive(Clone, Copy)]
enum Test {
    /// `All` and `Nearest`: `|ΔW| > 0` and not below `skip_below` (when positive).
    Magnitude { skip_below: f64 },
    /// `Stochastic` and `Coincidence`: against the devices' 24-bit rounding uniforms.
    Uniform {
        keys: Keys32,
        /// `q·2^24·(1 + 2e-6)` per unit `|ΔW|` of a device moving up.
        cu: f32,
        /// The same for a device moving down.
        cd: f32,
        /// Two devices per weight (differential pair).
        two: bool,
        /// The coincidence test (`Stochastic` scheme) instead of `q ≥ u`.
        coinc: bool,
    },
}

impl Test {
    /// The test on one group of [`LANES`] changes `d` whose first has layer-wide index `first`:
    /// a flag byte (0 or 1) per weight, and the lane-wise maximum of the finite `|ΔW|` bits
    /// raised in `mx`.
    #[inline(always)]
    fn flags(self, first: u32, d: &[f32; LANES], mx: &mut [u32; LANES]) -> [u8; LANES] {
        let mut f = [0u8; LANES];
        match self {
            Test::Magnitude { skip_below: sb } => {
                for j in 0..LANES {
                    let a = d[j].abs();
                    let b = a.to_bits();
                    // NaN (bits above +inf) does not count, as `f32::max` would ignore it.
                    mx[j] = mx[j].max(if b > 0x7F80_0000 { 0 } else { b });
                    f[j] = u8::from(a > 0.0 && !(sb > 0.0 && f64::from(a) < sb));
                }
            }
            Test::Uniform {
                keys,
                cu,
                cd,
                two,
                coinc,
            } => {
                for j in 0..LANES {
                    let dj = d[j];
                    let a = dj.abs();
                    let b = a.to_bits();
                    mx[j] = mx[j].max(if b > 0x7F80_0000 { 0 } else { b });
                    let (w0, w1) = keys.words(first.wrapping_add(j as u32));
                    let (u0, u1) = ((w0 >> 8) as i32 as f32, (w1 >> 8) as i32 as f32);
                    // Device 0 moves up for ΔW > 0, device 1 the other way.
                    let (t0, t1) = if dj > 0.0 {
                        (a * cu, a * cd)
                    } else {
                        (a * cd, a * cu)
                    };
                    let hit = if coinc {
                        // u + q ≥ 1 − 1e-9 with u ≤ (u24 + 1)·2^-24; 16 = 1e-6·2^24 of slack.
                        (u0 + 1.0 + t0 + 16.0 >= 16_777_216.0)
                            | (two & (u1 + 1.0 + t1 + 16.0 >= 16_777_216.0))
                    } else {
                        // q ≥ u, with u ≥ u24·2^-24.
                        (t0 >= u0) | (two & (t1 >= u1))
                    };
                    f[j] = u8::from(hit & (a > 0.0));
                }
            }
        }
        f
    }
}

/// Pushes `(wi0 + j, d[j])` for every set flag of a group, in order: the 16 flag bytes (0 or 1
/// each) are read as one little-endian word and its set bytes visited by their trailing zeros,
/// so a group without a candidate costs one test.
#[inline(always)]
fn push_flagged(f: [u8; LANES], wi0: usize, d: &[f32; LANES], cand: &mut Vec<(u32, f32)>) {
    let mut m = u128::from_le_bytes(f);
    while m != 0 {
        let k = (m.trailing_zeros() / 8) as usize;
        cand.push(((wi0 + k) as u32, d[k]));
        m &= m - 1;
    }
}

/// The changes `dw(x[j], y[j])` of a run of `x.len()` weights with block-local index `wi0 + j`
/// and layer-wide index `first + j`, tested [`LANES`] at a time; the last partial group is
/// padded with `x = y = 0`, whose change (`dw(0, 0)` is ±0 for every optimiser here) never
/// passes the test nor raises the maximum.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run(
    test: Test,
    first: u64,
    wi0: usize,
    x: &[f32],
    y: &[f32],
    dw: impl Fn(f32, f32) -> f32,
    mx: &mut [u32; LANES],
    cand: &mut Vec<(u32, f32)>,
) {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut xs = x.chunks_exact(LANES);
    let mut ys = y.chunks_exact(LANES);
    let mut c = 0;
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        let mut d = [0.0f32; LANES];
        for j in 0..LANES {
            d[j] = dw(xc[j], yc[j]);
        }
        let f = test.flags(first.wrapping_add(c as u64) as u32, &d, mx);
        push_flagged(f, wi0 + c, &d, cand);
        c += LANES;
    }
    let (xr, yr) = (xs.remainder(), ys.remainder());
    if !xr.is_empty() {
        let (mut xp, mut yp) = ([0.0f32; LANES], [0.0f32; LANES]);
        xp[..xr.len()].copy_from_slice(xr);
        yp[..yr.len()].copy_from_slice(yr);
        let mut d = [0.0f32; LANES];
        for j in 0..LANES {
            d[j] = dw(xp[j], yp[j]);
        }
        let f = test.flags(first.wrapping_add(c as u64) as u32, &d, mx);
        push_flagged(f, wi0 + c, &d, cand);
    }
}

/// The body of [`scan`].
#[inline(always)]
fn scan_impl(
    ctx: &Ctx<'_>,
    keys: Keys32,
    blk: ScanBlock<'_>,
    buf: &mut ScanBuf,
    cand: &mut Vec<(u32, f32)>,
    max_bits: &mut u32,
) {
    let test = match ctx.filter {
        Filter::All | Filter::Nearest => Test::Magnitude {
            skip_below: ctx.skip_below,
        },
        Filter::Stochastic | Filter::Coincidence => {
            // t = q·2^24·(1 + 2e-6) per device; u24 = word >> 8.
            let c = (ctx.range / (2.0 * ctx.cfg.w_max) * 16_777_216.0 * (1.0 + 1e-6)) as f32;
            Test::Uniform {
                keys,
                cu: c * ctx.inv_step_up as f32 * (1.0 + 1e-6),
                cd: c * ctx.inv_step_down as f32 * (1.0 + 1e-6),
                two: ctx.dpw == 2,
                coinc: ctx.filter == Filter::Coincidence,
            }
        }
    };
    let mut mx = [0u32; LANES];
    let ScanBlock {
        w0,
        rows,
        fan_in,
        cols,
        gw,
        gb,
        w,
        b,
        m,
        v,
    } = blk;
    let bias = cols > fan_in;
    for r in 0..rows {
        let row = r * cols;
        let gs = &gw[r * fan_in..(r + 1) * fan_in];
        let ws = &w[r * fan_in..(r + 1) * fan_in];
        // The bias: its gradient and value (0 without gradients or value, as before).
        let (gbr, br) = (gb.map_or(0.0, |gb| gb[r]), b.get(r).copied().unwrap_or(0.0));
        let first = w0 + row as u64;
        let at_bias = w0 + (row + fan_in) as u64;
        match ctx.opt_step {
            Step::Sgd(s) => {
                // Plain SGD: ΔW straight from the gradient and the weight.
                let dw = |g: f32, w: f32| s.delta(g, w);
                run(test, first, row, gs, ws, dw, &mut mx, cand);
                if bias {
                    run(
                        test,
                        at_bias,
                        row + fan_in,
                        &[gbr],
                        &[br],
                        dw,
                        &mut mx,
                        cand,
                    );
                }
            }
            Step::Momentum(s) => {
                let (m_w, m_b) = split_row(m, row, fan_in, cols);
                debug_assert!(m_w.len() >= fan_in);
                buf.dw.clear();
                buf.dw.extend(
                    gs.iter()
                        .zip(ws)
                        .zip(m_w.iter_mut())
                        .map(|((&g, &w), m)| s.delta(g, w, m)),
                );
                run(test, first, row, &buf.dw, &buf.dw, |d, _| d, &mut mx, cand);
                if bias {
                    let d = [s.delta(gbr, br, &mut m_b[0])];
                    run(test, at_bias, row + fan_in, &d, &d, |d, _| d, &mut mx, cand);
                }
            }
            Step::Adam(s) => {
                let (m_w, m_b) = split_row(m, row, fan_in, cols);
                let (v_w, v_b) = split_row(v, row, fan_in, cols);
                debug_assert!(m_w.len() >= fan_in && v_w.len() >= fan_in);
                buf.dw.clear();
                buf.dw.extend(
                    gs.iter()
                        .zip(ws)
                        .zip(m_w.iter_mut().zip(v_w.iter_mut()))
                        .map(|((&g, &w), (m, v))| s.delta(g, w, m, v)),
                );
                run(test, first, row, &buf.dw, &buf.dw, |d, _| d, &mut mx, cand);
                if bias {
                    let d = [s.delta(gbr, br, &mut m_b[0], &mut v_b[0])];
                    run(test, at_bias, row + fan_in, &d, &d, |d, _| d, &mut mx, cand);
                }
            }
        }
    }
    *max_bits = mx.into_iter().fold(*max_bits, u32::max);
}
