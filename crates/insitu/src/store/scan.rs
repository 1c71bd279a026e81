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

/// Reusable buffers of pass 1.
#[derive(Default)]
pub(super) struct ScanBuf {
    dw: Vec<f32>,
    flag: Vec<u8>,
}

/// The weight-part and bias-part slices of row `row` (block-local weight index of its first
/// column) of an optimiser buffer (empty slices when the buffer is unused).
pub(super) fn split_row(
    buf: &mut [f32],
    row: usize,
    fan_in: usize,
    cols: usize,
) -> (&mut [f32], &mut [f32]) {
    if buf.is_empty() {
        return (&mut [], &mut []);
    }
    buf[row..row + cols].split_at_mut(fan_in)
}

/// Pass 1 of a block update over one contiguous run of weights: gradients `gs`, current
/// weights `ws`, optimiser buffers `m`, `v` (empty when unused), block-local weight index
/// `wi0` of the first, layer-wide index `w0 + wi0`; pushes `(block-local index, ΔW)` of every
/// weight whose devices may get a pulse and raises `max_bits` to the bits of the largest
/// finite `|ΔW|`. The zero-pulse test runs in f32 on 24-bit uniforms with a 1e-6 relative
/// margin, in straight-line loops the compiler vectorises; pass 2 decides exactly.
///
/// `baseline` runs the build without extra target features (the test of the vector versions).
#[allow(clippy::too_many_arguments)]
pub(super) fn scan(
    ctx: &Ctx<'_>,
    keys: Keys32,
    w0: u64,
    wi0: usize,
    gs: &[f32],
    ws: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    buf: &mut ScanBuf,
    cand: &mut Vec<(u32, f32)>,
    max_bits: &mut u32,
) {
    if ctx.baseline_scan {
        scan_impl(ctx, keys, w0, wi0, gs, ws, m, v, buf, cand, max_bits);
    } else {
        scan_dispatch(ctx, keys, w0, wi0, gs, ws, m, v, buf, cand, max_bits);
    }
}

/// [`scan_impl`] compiled for AVX-512, AVX2 and the baseline, picked at run time. It pays:
/// `cargo bench -p nacsim-insitu --bench epoch` on a 2-core AVX-512 machine (Dec 2026) took
/// 1.42 s per `fmnist_mlp_epoch` with this dispatch and 1.64 s with the baseline build only
/// (`neurosim_epoch` 1.17 s vs 1.26 s). The source stays plain Rust: the compiler vectorises
/// it for each target.
#[multiversion(targets("x86_64+avx2+avx512f+avx512bw+avx512vl+avx512dq", "x86_64+avx2",))]
#[allow(clippy::too_many_arguments)]
fn scan_dispatch<'c>(
    ctx: &Ctx<'c>,
    keys: Keys32,
    w0: u64,
    wi0: usize,
    gs: &[f32],
    ws: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    buf: &mut ScanBuf,
    cand: &mut Vec<(u32, f32)>,
    max_bits: &mut u32,
) {
    scan_impl(ctx, keys, w0, wi0, gs, ws, m, v, buf, cand, max_bits);
}

/// The body of [`scan`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn scan_impl(
    ctx: &Ctx<'_>,
    keys: Keys32,
    w0: u64,
    wi0: usize,
    gs: &[f32],
    ws: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    buf: &mut ScanBuf,
    cand: &mut Vec<(u32, f32)>,
    max_bits: &mut u32,
) {
    let n = gs.len().min(ws.len());
    buf.flag.clear();
    buf.flag.resize(n, 0);
    match ctx.opt_step {
        Step::Sgd(s) => {
            // Plain SGD: ΔW is recomputed where needed instead of stored.
            let dw = |j: usize| s.delta(gs[j], ws[j]);
            flag_run(ctx, keys, w0 + wi0 as u64, n, &dw, &mut buf.flag, max_bits);
            push_flagged(&buf.flag, wi0, &dw, cand);
            return;
        }
        Step::Momentum(s) => {
            debug_assert!(m.len() >= n);
            buf.dw.clear();
            buf.dw.extend(
                gs.iter()
                    .zip(ws)
                    .zip(m.iter_mut())
                    .map(|((&g, &w), m)| s.delta(g, w, m)),
            );
        }
        Step::Adam(s) => {
            debug_assert!(m.len() >= n && v.len() >= n);
            buf.dw.clear();
            buf.dw.extend(
                gs.iter()
                    .zip(ws)
                    .zip(m.iter_mut().zip(v.iter_mut()))
                    .map(|((&g, &w), (m, v))| s.delta(g, w, m, v)),
            );
        }
    }
    let dws = &buf.dw[..];
    let dw = |j: usize| dws[j];
    flag_run(ctx, keys, w0 + wi0 as u64, n, &dw, &mut buf.flag, max_bits);
    push_flagged(&buf.flag, wi0, &dw, cand);
}

/// Sets `flags[j]` for the weights `j < n` of a run (layer-wide index `first + j`, change
/// `dw(j)`) whose devices may get a pulse, and raises `max_bits` to the bits of the largest
/// finite `|ΔW|`: one straight-line loop the compiler vectorises.
#[inline(always)]
fn flag_run(
    ctx: &Ctx<'_>,
    keys: Keys32,
    first: u64,
    n: usize,
    dw: &impl Fn(usize) -> f32,
    flags: &mut [u8],
    max_bits: &mut u32,
) {
    let flags = &mut flags[..n];
    let mut mx = *max_bits;
    match ctx.filter {
        Filter::All | Filter::Nearest => {
            let sb = ctx.skip_below;
            for (j, f) in flags.iter_mut().enumerate() {
                let a = dw(j).abs();
                let b = a.to_bits();
                // NaN (bits above +inf) does not count, as `f32::max` would ignore it.
                mx = mx.max(if b > 0x7F80_0000 { 0 } else { b });
                *f = u8::from(a > 0.0 && !(sb > 0.0 && f64::from(a) < sb));
            }
        }
        Filter::Stochastic | Filter::Coincidence => {
            // t = q·2^24·(1 + 2e-6) per device; u24 = word >> 8.
            let c = (ctx.range / (2.0 * ctx.cfg.w_max) * 16_777_216.0 * (1.0 + 1e-6)) as f32;
            let (cu, cd) = (
                c * ctx.inv_step_up as f32 * (1.0 + 1e-6),
                c * ctx.inv_step_down as f32 * (1.0 + 1e-6),
            );
            let two = ctx.dpw == 2;
            let coinc = ctx.filter == Filter::Coincidence;
            let base = first as u32;
            for (j, f) in flags.iter_mut().enumerate() {
                let d = dw(j);
                let a = d.abs();
                let b = a.to_bits();
                mx = mx.max(if b > 0x7F80_0000 { 0 } else { b });
                let (w0, w1) = keys.words(base.wrapping_add(j as u32));
                let (u0, u1) = ((w0 >> 8) as i32 as f32, (w1 >> 8) as i32 as f32);
                // Device 0 moves up for ΔW > 0, device 1 the other way.
                let (t0, t1) = if d > 0.0 {
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
                *f = u8::from(hit & (a > 0.0));
            }
        }
    }
    *max_bits = mx;
}

/// Pushes `(wi0 + j, dw(j))` for every set flag, in order: eight flags (0 or 1 each) are read as
/// one little-endian word and its set bytes visited by their trailing zeros, so a run of
/// unflagged weights costs one load and one test per eight.
#[inline(always)]
fn push_flagged(flags: &[u8], wi0: usize, dw: &impl Fn(usize) -> f32, cand: &mut Vec<(u32, f32)>) {
    let mut words = flags.chunks_exact(8);
    let mut j = 0;
    for chunk in &mut words {
        let mut m = u64::from_le_bytes(chunk.try_into().expect("chunks of eight"));
        while m != 0 {
            let k = j + (m.trailing_zeros() / 8) as usize;
            cand.push(((wi0 + k) as u32, dw(k)));
            m &= m - 1;
        }
        j += 8;
    }
    for (k, &f) in words.remainder().iter().enumerate() {
        if f != 0 {
            cand.push(((wi0 + j + k) as u32, dw(j + k)));
        }
    }
}
