//! The product seam of the integer forward pass, its reference, and the epilogue that turns
//! accumulators into output codes.

use nacsim_core::gemm::gemm_i8;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::QGemm;
use crate::quant::Rounding;

/// The product seam of the integer forward pass.
pub trait IntGemm: Sync {
    /// `y[n, o] = Σ_k x[n, k] · w[o, k]` exactly in `i32` (x `[m, fan_in]`, w `[out, fan_in]`,
    /// result `[m, out]`). `layer` is the index into [`QNetwork::layers`](super::QNetwork::layers).
    fn gemm(&self, layer: usize, x: ArrayView2<i8>, w: ArrayView2<i8>) -> Array2<i32>;

    /// [`gemm`](Self::gemm) for rows that start at row `first_row` of the whole run (image
    /// index × product rows per image): engines with per-read noise key their draws by it, so
    /// results do not depend on how the run is batched. The default ignores it.
    fn gemm_at(
        &self,
        layer: usize,
        first_row: u64,
        x: ArrayView2<i8>,
        w: ArrayView2<i8>,
    ) -> Array2<i32> {
        let _ = first_row;
        self.gemm(layer, x, w)
    }

    /// The product of a grouped convolution with `groups` groups: `x` `[m, groups·K_g]` (the
    /// im2col columns of group `g` are `g·K_g .. (g+1)·K_g`), `w` `[out, K_g]` (the weights
    /// of group `g` are rows `g·o_g .. (g+1)·o_g`), result `[m, out]`: one
    /// [`gemm_at`](Self::gemm_at) per group. Engines that map the groups themselves override
    /// it.
    ///
    /// # Panics
    /// If the columns of `x` or the rows of `w` do not split into `groups` equal parts.
    fn gemm_grouped_at(
        &self,
        layer: usize,
        first_row: u64,
        x: ArrayView2<i8>,
        w: ArrayView2<i8>,
        groups: usize,
    ) -> Array2<i32> {
        grouped_by(x, w.nrows(), groups, |g, xg| {
            let og = w.nrows() / groups;
            self.gemm_at(
                layer,
                first_row,
                xg,
                w.slice(ndarray::s![g * og..(g + 1) * og, ..]),
            )
        })
    }
}

/// A grouped product assembled from one product per group: `run(g, x_g)` returns the
/// `[m, out/groups]` outputs of group `g` for its columns `x_g` of `x`; the result is
/// `[m, out]`, group `g` in columns `g·o_g ..`.
///
/// # Panics
/// If `x`'s columns or `out` do not split into `groups` equal parts, or a group's result has
/// the wrong shape.
pub fn grouped_by(
    x: ArrayView2<i8>,
    out: usize,
    groups: usize,
    mut run: impl FnMut(usize, ArrayView2<i8>) -> Array2<i32>,
) -> Array2<i32> {
    assert!(
        groups > 0 && x.ncols().is_multiple_of(groups) && out.is_multiple_of(groups),
        "grouped product: {} columns and {out} outputs in {groups} groups",
        x.ncols()
    );
    let (kg, og) = (x.ncols() / groups, out / groups);
    let mut y = Array2::<i32>::zeros((x.nrows(), out));
    for g in 0..groups {
        let yg = run(g, x.slice(ndarray::s![.., g * kg..(g + 1) * kg]));
        y.slice_mut(ndarray::s![.., g * og..(g + 1) * og])
            .assign(&yg);
    }
    y
}

/// Rows of `x` per parallel task of [`RefGemm`].
pub const GEMM_ROWS: usize = 16;

/// The reference integer product: the workspace's int8 oracle [`gemm_i8`] (three plain loops,
/// an `i32` adder that wraps) on fixed blocks of [`GEMM_ROWS`] rows in parallel, so the result
/// is the oracle's for any thread count. Exact while `fan_in ≤ 131071` (every product is at most
/// `2^14` in magnitude); beyond, sums wrap modulo 2³² like every engine's `i32` accumulator.
#[derive(Clone, Copy, Debug, Default)]
pub struct RefGemm;

impl IntGemm for RefGemm {
    fn gemm(&self, _layer: usize, x: ArrayView2<i8>, w: ArrayView2<i8>) -> Array2<i32> {
        assert_eq!(x.ncols(), w.ncols(), "fan_in of x and w");
        let (m, k, n) = (x.nrows(), x.ncols(), w.nrows());
        let mut out = Array2::<i32>::zeros((m, n));
        if out.is_empty() || k == 0 {
            return out;
        }
        let (x, w) = (x.as_standard_layout(), w.as_standard_layout());
        let ws = w.as_slice().expect("standard layout");
        out.as_slice_mut()
            .expect("standard layout")
            .par_chunks_mut(GEMM_ROWS * n)
            .zip(
                x.as_slice()
                    .expect("standard layout")
                    .par_chunks(GEMM_ROWS * k),
            )
            .for_each(|(yb, xb)| {
                yb.copy_from_slice(&gemm_i8(xb, ws, xb.len() / k, k, n));
            });
        out
    }
}

/// The epilogue of a Gemm layer: bias add, requantization and clamp per output channel, and the
/// layout change from one row per output pixel (`acc` `[batch·oh·ow, out]`) to channel-major
/// samples (`[batch, out·oh·ow]`; for Dense, `[batch, out]` unchanged).
///
/// # Panics
/// If `acc` is not `[batch · oh · ow, out]`.
pub fn gemm_epilogue(q: &QGemm, acc: ArrayView2<i32>, batch: usize) -> Array2<i8> {
    let p = q.output.h * q.output.w;
    let o = q.out_channels();
    assert_eq!(acc.dim(), (batch * p, o), "accumulator shape of {}", q.name);
    let mut y = Array2::<i8>::zeros((batch, o * p));
    if y.is_empty() {
        return y;
    }
    let acc = acc.as_standard_layout();
    let acc = acc.as_slice().expect("standard layout");
    let fast = FastRequant::new(q);
    y.as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(o * p)
        .zip(acc.par_chunks(o * p))
        .with_min_len(16)
        .for_each(|(row, a)| {
            for (pi, ap) in a.chunks_exact(o).enumerate() {
                match &fast {
                    Some(f) if p == 1 => f.dense(ap, row),
                    Some(f) => {
                        for ((oc, &v), &c) in ap.iter().enumerate().zip(&f.chan) {
                            row[oc * p + pi] = f.apply(c, v);
                        }
                    }
                    None => {
                        for (oc, &v) in ap.iter().enumerate() {
                            row[oc * p + pi] = q.requantize(oc, v);
                        }
                    }
                }
            }
        });
    y
}

/// The epilogue of a layer with [`Rounding::NearestEven`] and every shift in `1..63` (the usual
/// case), branch-free: `(p + 2^(s−1) − 1 + ((p >> s) & 1)) >> s` is `p / 2^s` rounded to
/// nearest, ties to even, for any `p` with `|p| ≤ 2^62` (the sum stays below 2^63), and clamping
/// the unsaturated quotient to the activation range equals saturating to `i32` first. Equal to
/// [`QGemm::requantize`] for every accumulator (tested); data-dependent branches (tie tests,
/// clamps) cost more than the arithmetic on random accumulators.
struct FastRequant {
    /// Per channel: bias code, multiplier, shift.
    chan: Vec<(i32, i64, u32)>,
    /// `chan`'s bias codes, multipliers and shifts as three arrays (the vector loop's layout).
    bias: Vec<i32>,
    mult: Vec<i64>,
    shift: Vec<u64>,
    lo: i64,
    hi: i64,
}

impl FastRequant {
    fn new(q: &QGemm) -> Option<Self> {
        if q.rounding != Rounding::NearestEven
            || q.requant.len() != q.out_channels()
            || !(0..=127).contains(&q.act_max)
        {
            return None;
        }
        let chan = q
            .requant
            .iter()
            .enumerate()
            .map(|(o, r)| {
                (1..63).contains(&r.shift).then(|| {
                    (
                        q.bias.get(o).copied().unwrap_or(0),
                        i64::from(r.multiplier),
                        r.shift.unsigned_abs(),
                    )
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(FastRequant {
            bias: chan.iter().map(|c| c.0).collect(),
            mult: chan.iter().map(|c| c.1).collect(),
            shift: chan.iter().map(|c| u64::from(c.2)).collect(),
            chan,
            lo: if q.relu { 0 } else { -i64::from(q.act_max) },
            hi: i64::from(q.act_max),
        })
    }

    /// `out[o] = apply(chan[o], acc[o])` for every channel of one Dense output row: the same
    /// arithmetic lane by lane, compiled for AVX-512 (8 channels per instruction: 64-bit
    /// multiplies and variable arithmetic shifts) and AVX2 where the CPU has them.
    fn dense(&self, acc: &[i32], out: &mut [i8]) {
        dense_requant(
            &self.bias,
            &self.mult,
            &self.shift,
            self.lo,
            self.hi,
            acc,
            out,
        );
    }

    #[inline(always)]
    fn apply(&self, (b, m, s): (i32, i64, u32), acc: i32) -> i8 {
        let p = i64::from(acc.saturating_add(b)) * m;
        let y = (p + (1i64 << (s - 1)) - 1 + ((p >> s) & 1)) >> s;
        // |y| ≤ act_max ≤ 127 after the clamp.
        y.clamp(self.lo, self.hi) as i8
    }
}

/// [`FastRequant::apply`] over one Dense output row, channel `o` with bias code `bias[o]`,
/// multiplier `mult[o]` and shift `shift[o]` (in `1..63`): the same integer arithmetic, written
/// so that it vectorizes (no data-dependent branch).
#[multiversion::multiversion(targets(
    "x86_64+avx2+avx512f+avx512bw+avx512vl+avx512dq",
    "x86_64+avx2"
))]
fn dense_requant(
    bias: &[i32],
    mult: &[i64],
    shift: &[u64],
    lo: i64,
    hi: i64,
    acc: &[i32],
    out: &mut [i8],
) {
    for ((((y, &v), &b), &m), &s) in out.iter_mut().zip(acc).zip(bias).zip(mult).zip(shift) {
        let p = i64::from(v.saturating_add(b)) * m;
        let y64 = (p + (1i64 << (s - 1)) - 1 + ((p >> s) & 1)) >> s;
        *y = y64.clamp(lo, hi) as i8;
    }
}
