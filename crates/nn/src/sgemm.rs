//! An experimental f32 product kernel (`c = a·b`): AVX-512 FMA over row groups, skipping the
//! inputs that are zero in a whole group. NOT used by the float path: on the Zen 4 machine of
//! issue #20 it ran the MLP's first layer at 77 GF/s dense (matrixmultiply: 97 GF/s) and gains
//! back less than that from skipping (a group of 4 rows skips 21 % of the pixel terms); kept in
//! the history for whoever tunes it further.
//!
//! # Same bits as `matrixmultiply`
//!
//! Every output is `Σ_k a[r,k]·b[k,o]` accumulated in ascending `k` with one fused
//! multiply-add per term, restarted every [`KC`] = 256 terms, each partial sum added to the
//! result in order (the first one stored): the per-element arithmetic of `matrixmultiply`'s
//! AVX-512 and AVX2+FMA sgemm kernels (`kc = 256`; the epilogue `fma(1, ab, 1·c)` rounds once,
//! like an add), which ndarray's `general_mat_mul` used here before. The outputs are therefore
//! unchanged bit for bit, for any shape and any split of the rows across threads (tested
//! against `dot`). Where AVX-512 is missing, [`product`] declines and the caller keeps using
//! `matrixmultiply`, so every CPU keeps the bits it had.
//!
//! A term whose input is zero (either sign) is skipped when the input is zero in every row of
//! its group of [`MR`] rows and every value of `b` is finite: a running sum starts at `+0` and
//! can never become `-0` (`+0 + -0 = +0`, and an exact cancellation rounds to `+0`), so
//! `fma(±0, b, s) = s`; a whole partial sum of skipped terms is `+0`, and adding `+0` to a
//! sum that is not `-0` changes nothing. ReLU outputs and pixels are about half zeros, so a
//! group skips 20–40 % of its terms on the Fashion-MNIST MLP. (The crossbar read path has the
//! same kernel over int8 codes, `nacsim_crossbar`'s `datapath::gemm`.)
//!
//! `b` is packed once per product into panels of [`NV`]·16 columns, `k`-major, so a term
//! loads contiguous vectors; `a` is packed per task, one group of rows interleaved.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

/// Terms per partial sum (`matrixmultiply`'s `kc` for f32).
pub const KC: usize = 256;

/// Rows per group of the micro-kernel.
pub const MR: usize = 4;

/// 16-float vectors per column panel of the micro-kernel (`MR·NV` accumulators).
pub const NV: usize = 4;

/// Columns per panel.
const W: usize = NV * 16;


/// Whether [`product`] runs here (AVX-512F and FMA present), detected once.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `b` `[k, n]` packed into column panels: panel `p` (width `width(p)`) holds
/// `b[kk, p·W + j]` at `data[offset(p) + kk·width(p) + j]`.
struct PackedB {
    k: usize,
    n: usize,
    data: Vec<f32>,
    /// Every value finite (zero terms may be skipped).
    finite: bool,
}

impl PackedB {
    fn panels(&self) -> usize {
        self.n.div_ceil(W)
    }

    /// Width of panel `p`: W, or the last columns rounded up to 16.
    fn width(&self, p: usize) -> usize {
        (self.n - p * W).min(W).next_multiple_of(16)
    }

    fn offset(&self, p: usize) -> usize {
        p * W * self.k
    }

    fn new(b: ArrayView2<f32>) -> Self {
        let (k, n) = b.dim();
        let panels = n.div_ceil(W);
        let last = n - (panels - 1) * W;
        let len = (panels - 1) * W * k + last.next_multiple_of(16) * k;
        let mut data = vec![0f32; len];
        let mut chunks: Vec<&mut [f32]> = Vec::with_capacity(panels);
        let mut rest = data.as_mut_slice();
        for p in 0..panels {
            let w = (n - p * W).min(W).next_multiple_of(16);
            let (head, tail) = rest.split_at_mut(w * k);
            chunks.push(head);
            rest = tail;
        }
        let finite = chunks
            .into_par_iter()
            .enumerate()
            .map(|(p, dst)| {
                let w = dst.len() / k.max(1);
                let c0 = p * W;
                let cols = (n - c0).min(W);
                let src = b.slice(ndarray::s![.., c0..c0 + cols]);
                let mut fin = true;
                if src.strides()[1].unsigned_abs() <= src.strides()[0].unsigned_abs() {
                    // Rows of b contiguous (or the closer of the two): row by row.
                    for (kk, row) in src.axis_iter(Axis(0)).enumerate() {
                        let d = &mut dst[kk * w..kk * w + cols];
                        for (x, &v) in d.iter_mut().zip(row.iter()) {
                            *x = v;
                            fin &= v.is_finite();
                        }
                    }
                } else {
                    // Columns of b contiguous (b = wᵀ): column by column.
                    for (j, col) in src.axis_iter(Axis(1)).enumerate() {
                        for (kk, &v) in col.iter().enumerate() {
                            dst[kk * w + j] = v;
                            fin &= v.is_finite();
                        }
                    }
                }
                fin
            })
            .reduce(|| true, |x, y| x && y);
        Self { k, n, data, finite }
    }
}

/// One group of `MR` rows of `a`: the terms `kk` that are not skipped, ascending, and their
/// values interleaved in the same order (`vals[t·MR + i]` is row `i`'s input `nz[t]`, 0 for
/// padding rows), so the kernel reads them as one stream.
struct GroupA {
    vals: Vec<f32>,
    nz: Vec<u32>,
}

impl GroupA {
    fn pack(a: &ArrayView2<f32>, r0: usize, skip: bool) -> Self {
        let (m, k) = a.dim();
        let mut full = vec![0f32; k * MR];
        for i in 0..MR.min(m - r0) {
            for (kk, &v) in a.row(r0 + i).iter().enumerate() {
                full[kk * MR + i] = v;
            }
        }
        if !skip {
            return Self {
                vals: full,
                nz: (0..k as u32).collect(),
            };
        }
        let mut vals = Vec::with_capacity(k * MR);
        let mut nz = Vec::with_capacity(k);
        for (kk, g) in full.chunks_exact(MR).enumerate() {
            // Non-zero in some row (either sign of zero counts as zero).
            if g.iter().any(|&v| v != 0.0) {
                nz.push(kk as u32);
                vals.extend_from_slice(g);
            }
        }
        Self { vals, nz }
    }
}

/// `c = a·b` (`a` `[m, k]`, `b` `[k, n]`, `c` `[m, n]` with unit column stride, overwritten)
/// in parallel over fixed blocks of rows and column panels, with the same bits as
/// `matrixmultiply`'s FMA kernels (module docs). Returns `false`, touching nothing, when the CPU
/// lacks AVX-512 or `c`'s columns are not contiguous; the caller then computes the product
/// itself.
///
/// # Panics
/// If the shapes do not agree (a caller bug).
pub fn product(a: ArrayView2<f32>, b: ArrayView2<f32>, mut c: ArrayViewMut2<f32>) -> bool {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!(b.nrows(), k, "inner dimensions of a product");
    assert_eq!(c.dim(), (m, n), "product output shape");
    if !available() || (n > 1 && c.strides()[1] != 1) {
        return false;
    }
    if m == 0 || n == 0 {
        return true;
    }
    if k == 0 {
        c.fill(0.0);
        return true;
    }
    let pb = PackedB::new(b);
    let groups: Vec<GroupA> = (0..m.div_ceil(MR))
        .into_par_iter()
        .map(|g| GroupA::pack(&a, g * MR, pb.finite))
        .collect();
    let ldc = c.strides()[0];
    let out = SendPtr(c.as_mut_ptr());
    let chunks = m.div_ceil(ROWS);
    let task = |t: usize| {
        let (rc, p) = (t / pb.panels(), t % pb.panels());
        let gs = &groups[rc * ROWS / MR..((rc + 1) * ROWS).min(m).div_ceil(MR)];
        let r0 = rc * ROWS;
        // SAFETY: AVX-512F and FMA are present (checked above); this task alone writes the
        // rows r0.. r0 + ROWS, columns of panel p of c, which lie inside c.
        unsafe { panel_rows(gs, &pb, p, out.get().offset(r0 as isize * ldc).add(p * W), ldc, m - r0) };
    };
    if m * n * k < 1 << 16 {
        (0..chunks * pb.panels()).for_each(task);
    } else {
        (0..chunks * pb.panels()).into_par_iter().for_each(task);
    }
    true
}

/// Rows of `c` per task (a multiple of [`MR`]); the split changes no bits, each output being
/// computed by one task in a fixed order.
const ROWS: usize = 32;

/// Terms per chunk, a divisor of [`KC`]: a chunk of a panel of `b` (`KB·W` floats, 16 KiB)
/// stays in L1 while every group of a task runs over it.
const KB: usize = 64;

/// The output pointer shared by the tasks, each writing its own rows and columns.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);

impl SendPtr {
    /// The pointer (a method, so that closures capture the `Sync` wrapper).
    fn get(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: the tasks write disjoint parts of the output (see `product`).
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

/// Panel `p` of the rows of the groups `gs` (at most `rows_left` rows are real), `c` pointing
/// at their first row: chunk by chunk of [`KB`] terms, each group's running partial sum kept
/// in a scratch between chunks (exact: an f32 stored and reloaded), merged into `c` at the
/// end of every [`KC`] block.
///
/// # Safety
/// The CPU must have AVX-512F and FMA; `c` must address the groups' rows (stride `ldc`) and the
/// panel's columns.
#[cfg(target_arch = "x86_64")]
unsafe fn panel_rows(
    gs: &[GroupA],
    pb: &PackedB,
    p: usize,
    c: *mut f32,
    ldc: isize,
    rows_left: usize,
) {
    let k = pb.k;
    let width = pb.width(p);
    let b = &pb.data[pb.offset(p)..pb.offset(p) + width * k];
    let cols = (pb.n - p * W).min(W);
    let mut scratch = vec![0f32; gs.len() * MR * W];
    let mut cursor = vec![0usize; gs.len()];
    let mut has = vec![false; gs.len()];
    let mut merged = vec![false; gs.len()];
    for block in 0..k.div_ceil(KC) {
        let block_end = ((block + 1) * KC).min(k);
        for k0 in (block * KC..block_end).step_by(KB) {
            let k1 = (k0 + KB).min(block_end);
            let last = k1 == block_end;
            for (g, ga) in gs.iter().enumerate() {
                let from = cursor[g];
                let to = from + ga.nz[from..].partition_point(|&x| (x as usize) < k1);
                cursor[g] = to;
                if from == to && !(has[g] && last) {
                    continue;
                }
                let mode = if !last {
                    Merge::Scratch
                } else if merged[g] {
                    Merge::Add
                } else {
                    Merge::Store
                };
                let job = Chunk {
                    vals: &ga.vals[from * MR..to * MR],
                    nz: &ga.nz[from..to],
                    b,
                    acc: &mut scratch[g * MR * W..(g + 1) * MR * W],
                    init: !has[g],
                    mode,
                    c: c.wrapping_offset((g * MR) as isize * ldc),
                    ldc,
                    rows: rows_left.saturating_sub(g * MR).min(MR),
                    cols,
                };
                // SAFETY: forwarded from the caller; the group's rows are inside c.
                unsafe {
                    match width / 16 {
                        1 => chunk::<1>(job),
                        2 => chunk::<2>(job),
                        3 => chunk::<3>(job),
                        _ => chunk::<NV>(job),
                    }
                }
                has[g] = !last;
                merged[g] |= last;
            }
        }
    }
    // Groups with no terms at all: +0 (the dense sum of zero products).
    for (g, &mg) in merged.iter().enumerate() {
        if !mg {
            for i in 0..rows_left.saturating_sub(g * MR).min(MR) {
                // SAFETY: row g·MR + i and the panel's columns are inside c.
                unsafe {
                    let row = c.offset((g * MR + i) as isize * ldc);
                    std::ptr::write_bytes(row, 0, cols);
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn panel_rows(_: &[GroupA], _: &PackedB, _: usize, _: *mut f32, _: isize, _: usize) {
    unreachable!("sgemm::product declines without AVX-512")
}

/// Where a chunk's partial sum goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// Back to the scratch (the KC block goes on).
    Scratch,
    /// Into `c`, its first partial sum.
    Store,
    /// Added to `c`.
    Add,
}

/// One chunk of terms of one group over one panel.
struct Chunk<'a> {
    vals: &'a [f32],
    nz: &'a [u32],
    b: &'a [f32],
    acc: &'a mut [f32],
    init: bool,
    mode: Merge,
    c: *mut f32,
    ldc: isize,
    rows: usize,
    cols: usize,
}

/// `acc[i, j] (+)= Σ_t vals[t·MR + i]·b[nz[t]·V·16 + j]` over the chunk's terms, in order,
/// then stored back or merged into `c` (module docs for the order of the arithmetic).
///
/// # Safety
/// The CPU must have AVX-512F and FMA; `b` holds `V·16` floats per term; `acc` holds `MR·W`;
/// `c` points at `rows` rows of stride `ldc` with `cols ≤ V·16` writable floats each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn chunk<const V: usize>(j: Chunk<'_>) {
    use std::arch::x86_64::*;
    debug_assert!(j.cols <= V * 16 && j.rows <= MR && j.acc.len() >= MR * W);
    let zero = _mm512_setzero_ps();
    let ap = j.acc.as_mut_ptr();
    let mut acc = [[zero; V]; MR];
    if !j.init {
        for (i, ai) in acc.iter_mut().enumerate() {
            for (v, s) in ai.iter_mut().enumerate() {
                // SAFETY: acc holds MR·W ≥ MR·V·16 floats.
                *s = unsafe { _mm512_loadu_ps(ap.add(i * W + 16 * v)) };
            }
        }
    }
    let vals = j.vals.as_ptr();
    let bp = j.b.as_ptr();
    for (t, &kk) in j.nz.iter().enumerate() {
        let kk = kk as usize;
        debug_assert!((kk + 1) * V * 16 <= j.b.len() && (t + 1) * MR <= j.vals.len());
        // SAFETY: kk < k, so the V vectors of row kk and the MR values are in bounds.
        unsafe {
            let brow = bp.add(kk * V * 16);
            let mut bv = [zero; V];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(brow.add(16 * v));
            }
            let av = vals.add(t * MR);
            for (i, ai) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*av.add(i));
                for (s, &bj) in ai.iter_mut().zip(&bv) {
                    *s = _mm512_fmadd_ps(x, bj, *s);
                }
            }
        }
    }
    if j.mode == Merge::Scratch {
        for (i, ai) in acc.iter().enumerate() {
            for (v, &s) in ai.iter().enumerate() {
                // SAFETY: as above.
                unsafe { _mm512_storeu_ps(ap.add(i * W + 16 * v), s) };
            }
        }
        return;
    }
    for (i, ai) in acc.iter().enumerate().take(j.rows) {
        for (v, &s) in ai.iter().enumerate() {
            let left = j.cols.saturating_sub(16 * v).min(16);
            let mask = ((1u32 << left) - 1) as __mmask16;
            // SAFETY: row i < rows; the mask covers only columns < cols.
            unsafe {
                let cp = j.c.offset(i as isize * j.ldc).add(16 * v);
                let x = if j.mode == Merge::Store {
                    s
                } else {
                    _mm512_add_ps(_mm512_maskz_loadu_ps(mask, cp), s)
                };
                _mm512_mask_storeu_ps(cp, mask, x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use proptest::prelude::*;

    use super::*;

    /// Values with about `zeros`/8 exact zeros (a quarter of them `-0`), the rest off any grid.
    fn matrix(rows: usize, cols: usize, zeros: u64, seed: u64) -> Array2<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Array2::from_shape_fn((rows, cols), |_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            match (s % 8 < zeros, s % 32) {
                (true, 0..8) => -0.0,
                (true, _) => 0.0,
                _ => ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 * 1.37,
            }
        })
    }

    fn bits(x: &Array2<f32>) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        /// The same bits as ndarray's `dot` (matrixmultiply), for short and long inner
        /// dimensions (k > KC), partial row groups and column panels, zero-heavy rows with
        /// `-0`, transposed operands (the three products of a training step), and under one
        /// and two threads.
        #[test]
        fn product_equals_dot(
            m in prop_oneof![1usize..13, 60usize..140],
            k in prop_oneof![1usize..40, 250usize..700],
            n in prop_oneof![1usize..20, 60usize..150],
            zeros in 0u64..8,
            transpose in 0u8..4,
            seed in any::<u64>(),
        ) {
            prop_assume!(available());
            let a = matrix(m, k, zeros, seed);
            let b = matrix(k, n, 1, seed ^ 0x5555);
            let at = a.t().to_owned();
            let bt = b.t().to_owned();
            let av = if transpose & 1 == 1 { at.t() } else { a.view() };
            let bv = if transpose & 2 == 2 { bt.t() } else { b.view() };
            let want = a.dot(&b);
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut c = Array2::<f32>::from_elem((m, n), f32::NAN);
                prop_assert!(pool.install(|| product(av, bv, c.view_mut())));
                prop_assert_eq!(bits(&c), bits(&want));
            }
        }
    }

    /// A zero input times an infinite weight is NaN in the dense product: no skipping then.
    #[test]
    fn no_skipping_when_b_is_not_finite() {
        if !available() {
            return;
        }
        let mut a = matrix(9, 300, 6, 7);
        a.row_mut(0).fill(0.0);
        let mut b = matrix(300, 70, 0, 8);
        b[[3, 5]] = f32::INFINITY;
        b[[290, 69]] = f32::NAN;
        let mut c = Array2::<f32>::zeros((9, 70));
        assert!(product(a.view(), b.view(), c.view_mut()));
        let want = a.dot(&b);
        assert!(c[[0, 5]].is_nan());
        assert_eq!(bits(&c), bits(&want));
    }

    /// Rows of zeros only, and an empty inner dimension, give `+0`.
    #[test]
    fn all_zero_rows_give_positive_zero() {
        if !available() {
            return;
        }
        let a = Array2::<f32>::from_elem((5, 600), -0.0);
        let b = matrix(600, 33, 0, 3);
        let mut c = Array2::<f32>::from_elem((5, 33), 1.0);
        assert!(product(a.view(), b.view(), c.view_mut()));
        assert!(c.iter().all(|v| v.to_bits() == 0));
        let mut c0 = Array2::<f32>::from_elem((5, 33), 1.0);
        let empty = Array2::<f32>::zeros((5, 0));
        assert!(product(empty.view(), Array2::zeros((0, 33)).view(), c0.view_mut()));
        assert!(c0.iter().all(|v| v.to_bits() == 0));
    }
}
