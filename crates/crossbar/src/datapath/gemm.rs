//! The f32 products of the read path (column sums `digits·g_eff`, read-noise variances
//! `digits²·n2`) for a block of input rows, skipping the inputs that are zero.
//!
//! # Same bits as the dense product
//!
//! Every output is `Σ_k a[r,k]·b[k,o]` accumulated in ascending `k` with one fused
//! multiply-add per term, restarted every [`KC`] = 256 terms and the partial sums added in
//! order: the per-element arithmetic of `matrixmultiply`'s FMA kernels (AVX-512 and AVX2+FMA,
//! `kc = 256`), which `ndarray`'s `dot` used here before, so the outputs are unchanged bit for
//! bit on such CPUs (tested against `dot`). A term whose input is zero is skipped: on a
//! running sum that is not `-0` (sums start at `+0`, and `+0 + -0 = +0`), `fma(0, b, s) = s`.
//! Rows are handled in groups of [`MR`]; a term is skipped when the input is zero in every row
//! of the group (the others multiply by 0, exactly as before). A row's sums therefore do not
//! depend on which rows share its group, so the rows of a block are grouped in order of their
//! number of non-zero inputs in the tile: rows of similar count tend to share their zeros
//! (Fashion-MNIST pixels, first layer: 64 % of the dense terms done instead of 78 % for groups
//! of consecutive rows). The DAC digits of non-negative activations (ReLU outputs, pixels)
//! are zero for about half the inputs, so this does well under the multiply-adds of the dense
//! product and needs no packing of the weights, nor of the inputs: the kernels convert each
//! int8 code through the slice's digit table as they read it (the same f32 a packing pass
//! would have stored, so the same bits).

use ndarray::{ArrayView2, CowArray, Ix2};

/// Terms per partial sum (`matrixmultiply`'s `kc` for f32).
pub(super) const KC: usize = 256;

/// Rows per group (the packing below spells out four rows).
pub(super) const MR: usize = 4;

/// Columns per strip of the vector kernel (4 AVX-512 registers per row).
const NR: usize = 64;

/// Inputs of one row tile for a block of rows, ready for [`product`]: the block's int8 codes
/// (borrowed when the block is in standard layout, as the read path's blocks are), the table
/// from code to value (and to its square when `squares` is set), and per group of [`MR`] rows
/// the inputs `k` that are non-zero in at least one of its rows (groups of rows of similar
/// non-zero count, see the module docs). The kernels convert each code
/// through the table as they use it (`table[code]`, the same f32 a packing pass would store),
/// so no packed copy of the values is written.
#[derive(Debug)]
pub(super) struct Packed<'a> {
    /// Rows of the block.
    pub(super) rows: usize,
    /// Inputs per row (the tile's length).
    pub(super) len: usize,
    /// The block's codes, standard layout.
    codes: CowArray<'a, i8, Ix2>,
    /// First column of the tile in `codes`.
    start: usize,
    table: [f32; 256],
    /// `table[c]²` (exact: digits are integers below 2^12).
    squares: Option<[f32; 256]>,
    /// The rows of group `g` are `perm[g·MR..g·MR + MR]` (a slot `≥ rows` pads the last
    /// group with a repeated row, whose sums are computed and dropped).
    perm: Vec<u32>,
    nz: Vec<u32>,
    /// `nz[nz_off[g]..nz_off[g + 1]]`: the non-zero inputs of group `g`.
    nz_off: Vec<usize>,
    /// Per row: whether any of its inputs is non-zero.
    pub(super) row_any: Vec<bool>,
}

/// Which values of a [`Packed`] block a product uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operand {
    /// The values themselves.
    Values,
    /// Their squares (exact: digits are integers below 2^12).
    Squares,
}

impl<'a> Packed<'a> {
    /// The inputs `table[code]` of the columns `start..start + len` of the int8 codes `xb`, and
    /// their squares when `squares` is set.
    pub(super) fn new(
        xb: ArrayView2<'a, i8>,
        start: usize,
        len: usize,
        table: &[f32; 256],
        squares: bool,
    ) -> Self {
        assert!(start + len <= xb.ncols(), "gemm: tile outside the block");
        let rows = xb.nrows();
        let codes = if xb.is_standard_layout() {
            CowArray::from(xb)
        } else {
            CowArray::from(xb.as_standard_layout().into_owned())
        };
        let groups = rows.div_ceil(MR);
        // 1 when a code's value is non-zero (either sign of zero counts as zero).
        let mut nonzero = [0u8; 256];
        for (n, t) in nonzero.iter_mut().zip(table) {
            *n = u8::from(t.to_bits() << 1 != 0);
        }
        // Per row: its non-zero inputs as a bit set (64 inputs a word), and how many.
        let words = len.div_ceil(64);
        let mut bits = vec![0u64; rows * words];
        let mut count = vec![0u32; rows];
        // Whether exactly the code 0 has the value 0 (the DAC digits of one slice): then a
        // code's flag is `code != 0`, which compiles to vector compares.
        let plain = nonzero
            .iter()
            .enumerate()
            .all(|(i, &n)| (n != 0) == (i != 0));
        {
            let data = codes.as_slice().expect("standard layout");
            let cols = codes.ncols();
            for (r, c) in count.iter_mut().enumerate() {
                let row = &data[r * cols + start..r * cols + start + len];
                let b = &mut bits[r * words..(r + 1) * words];
                for (w, chunk) in b.iter_mut().zip(row.chunks(64)) {
                    *w = if plain {
                        nonzero_bits(chunk)
                    } else {
                        chunk.iter().enumerate().fold(0, |m, (j, &v)| {
                            m | (u64::from(nonzero[usize::from(v as u8)]) << j)
                        })
                    };
                }
                *c = b.iter().map(|w| w.count_ones()).sum();
            }
        }
        let row_any = count.iter().map(|&c| c != 0).collect();
        // Rows in order of their non-zero count (stable), so that the rows of a group tend to
        // share their zero inputs; a padding slot of the last group repeats the last row.
        let mut perm: Vec<u32> = (0..rows as u32).collect();
        perm.sort_by_key(|&r| count[r as usize]);
        perm.resize(groups * MR, perm.last().copied().unwrap_or(0));
        let mut nz = vec![0u32; groups * len];
        let mut nz_off = Vec::with_capacity(groups + 1);
        nz_off.push(0);
        let mut m = 0;
        for slots in perm.chunks_exact(MR) {
            for w in 0..words {
                let mut any = slots
                    .iter()
                    .fold(0, |m, &r| m | bits[r as usize * words + w]);
                while any != 0 {
                    nz[m] = (w * 64) as u32 + any.trailing_zeros();
                    m += 1;
                    any &= any - 1;
                }
            }
            nz_off.push(m);
        }
        nz.truncate(m);
        Self {
            rows,
            len,
            codes,
            start,
            table: *table,
            squares: squares.then(|| table.map(|v| v * v)),
            perm,
            nz,
            nz_off,
            row_any,
        }
    }

    /// Whether the squares were asked for.
    pub(super) fn has_squares(&self) -> bool {
        self.squares.is_some()
    }

    /// The table from code to operand value.
    fn operand(&self, op: Operand) -> &[f32; 256] {
        match op {
            Operand::Values => &self.table,
            Operand::Squares => self
                .squares
                .as_ref()
                .expect("squares asked for (Packed::new with squares)"),
        }
    }

    fn groups(&self) -> usize {
        self.nz_off.len() - 1
    }

    /// The codes in standard layout.
    fn data(&self) -> &[i8] {
        self.codes.as_slice().expect("standard layout")
    }

    /// The tile's codes of group `g`'s rows.
    #[inline(always)]
    fn rows_of<'d>(&self, data: &'d [i8], g: usize) -> [&'d [i8]; MR] {
        let cols = self.codes.ncols();
        std::array::from_fn(|i| {
            let r = self.perm[g * MR + i] as usize;
            &data[r * cols + self.start..r * cols + self.start + self.len]
        })
    }

    /// The row of slot `i` of group `g`, `None` for a padding slot.
    #[inline(always)]
    fn row_of(&self, g: usize, i: usize) -> Option<usize> {
        let slot = g * MR + i;
        (slot < self.rows).then(|| self.perm[slot] as usize)
    }
}

/// Bit `j` set when `chunk[j] != 0` (at most 64 codes).
#[inline(always)]
fn nonzero_bits(chunk: &[i8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let mut m = 0u64;
        let mut parts = chunk.chunks_exact(16);
        for (i, p) in (&mut parts).enumerate() {
            // SAFETY: SSE2 is part of x86_64; `p` holds 16 bytes (unaligned load).
            let z = unsafe {
                let v = _mm_loadu_si128(p.as_ptr().cast());
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128()))
            };
            m |= u64::from(!z as u16) << (16 * i);
        }
        let done = chunk.len() / 16 * 16;
        for (j, &v) in parts.remainder().iter().enumerate() {
            m |= u64::from(v != 0) << (done + j);
        }
        m
    }
    #[cfg(not(target_arch = "x86_64"))]
    chunk
        .iter()
        .enumerate()
        .fold(0, |m, (j, &v)| m | (u64::from(v != 0) << j))
}

/// The operand value of input `k` of a row: `table[code]`.
#[inline(always)]
fn value(table: &[f32; 256], row: &[i8], k: usize) -> f32 {
    table[usize::from(row[k] as u8)]
}

/// `c = a·b`: `a` packed rows `[rows, len]` (their values or squares, `op`), `b` `[len, n]`
/// row-major, `c` `[rows, n]` row-major (overwritten). Same bits as `matrixmultiply`'s FMA
/// kernels (module docs).
pub(super) fn product(a: &Packed, op: Operand, b: &[f32], n: usize, c: &mut [f32]) {
    assert_eq!(b.len(), a.len * n, "gemm: b is not [len, n]");
    assert_eq!(c.len(), a.rows * n, "gemm: c is not [rows, n]");
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the features the function is compiled for are present.
        unsafe { product_avx512(a, a.operand(op), b, n, c) };
        return;
    }
    product_portable(a, a.operand(op), b, n, c);
}

/// [`product`] through the portable strip kernel, compiled for AVX2+FMA or the baseline
/// (where `mul_add` is the exact software fused multiply-add: the same bits, slowly).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn product_portable(a: &Packed, tab: &[f32; 256], b: &[f32], n: usize, c: &mut [f32]) {
    let data = a.data();
    let mut c0 = 0;
    while c0 < n {
        let w = (n - c0).min(NR);
        for g in 0..a.groups() {
            strip_portable(a, data, tab, g, b, n, c0, w, c);
        }
        c0 += w;
    }
}

/// Columns `c0..c0 + w` of group `g`'s rows, scalar code the compiler may vectorise.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn strip_portable(
    a: &Packed,
    data: &[i8],
    tab: &[f32; 256],
    g: usize,
    b: &[f32],
    n: usize,
    c0: usize,
    w: usize,
    c: &mut [f32],
) {
    let rs = a.rows_of(data, g);
    let nz = &a.nz[a.nz_off[g]..a.nz_off[g + 1]];
    let mut acc = [[0f32; NR]; MR];
    let mut blk = [[0f32; NR]; MR];
    let mut block_end = KC;
    let mut first = true;
    let merge = |acc: &mut [[f32; NR]; MR], blk: &mut [[f32; NR]; MR], first: bool| {
        for (ar, br) in acc.iter_mut().zip(blk.iter_mut()) {
            for (x, y) in ar[..w].iter_mut().zip(br[..w].iter_mut()) {
                *x = if first { *y } else { *x + *y };
                *y = 0.0;
            }
        }
    };
    for &k in nz {
        let k = k as usize;
        if k >= block_end {
            merge(&mut acc, &mut blk, first);
            first = false;
            block_end = (k / KC + 1) * KC;
        }
        let av = rs.map(|r| value(tab, r, k));
        let brow = &b[k * n + c0..k * n + c0 + w];
        for (br, &ai) in blk.iter_mut().zip(&av) {
            for (s, &bv) in br[..w].iter_mut().zip(brow) {
                *s = ai.mul_add(bv, *s);
            }
        }
    }
    merge(&mut acc, &mut blk, first);
    for (i, ar) in acc.iter().enumerate() {
        if let Some(r) = a.row_of(g, i) {
            c[r * n + c0..r * n + c0 + w].copy_from_slice(&ar[..w]);
        }
    }
}

/// [`product`] with AVX-512 FMA for full strips of [`NR`] columns, the portable kernel for
/// the last partial strip.
///
/// # Safety
/// The CPU must have AVX-512F and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn product_avx512(a: &Packed, tab: &[f32; 256], b: &[f32], n: usize, c: &mut [f32]) {
    use std::arch::x86_64::*;
    let data = a.data();
    let full = n / NR * NR;
    for c0 in (0..full).step_by(NR) {
        for g in 0..a.groups() {
            let rs = a.rows_of(data, g);
            let nz = &a.nz[a.nz_off[g]..a.nz_off[g + 1]];
            let zero = _mm512_setzero_ps();
            let mut acc = [[zero; 4]; MR];
            let mut blk = [[zero; 4]; MR];
            let mut block_end = KC;
            let mut first = true;
            for &k in nz {
                let k = k as usize;
                if k >= block_end {
                    for (ar, br) in acc.iter_mut().zip(blk.iter_mut()) {
                        for (x, y) in ar.iter_mut().zip(br.iter_mut()) {
                            *x = if first { *y } else { _mm512_add_ps(*x, *y) };
                            *y = zero;
                        }
                    }
                    first = false;
                    block_end = (k / KC + 1) * KC;
                }
                debug_assert!(k * n + c0 + NR <= b.len());
                // SAFETY: k < len and c0 + NR <= n, so the 64 floats are inside b.
                let bp = unsafe { b.as_ptr().add(k * n + c0) };
                let bv = unsafe {
                    [
                        _mm512_loadu_ps(bp),
                        _mm512_loadu_ps(bp.add(16)),
                        _mm512_loadu_ps(bp.add(32)),
                        _mm512_loadu_ps(bp.add(48)),
                    ]
                };
                let av = rs.map(|r| value(tab, r, k));
                for (br, &ai) in blk.iter_mut().zip(&av) {
                    let ai = _mm512_set1_ps(ai);
                    for (s, &bj) in br.iter_mut().zip(&bv) {
                        *s = _mm512_fmadd_ps(ai, bj, *s);
                    }
                }
            }
            for (ar, br) in acc.iter_mut().zip(blk.iter()) {
                for (x, y) in ar.iter_mut().zip(br) {
                    *x = if first { *y } else { _mm512_add_ps(*x, *y) };
                }
            }
            for (i, ar) in acc.iter().enumerate() {
                if let Some(r) = a.row_of(g, i) {
                    let cr = &mut c[r * n + c0..r * n + c0 + NR];
                    for (j, x) in ar.iter().enumerate() {
                        // SAFETY: cr holds NR = 4·16 floats.
                        unsafe { _mm512_storeu_ps(cr.as_mut_ptr().add(16 * j), *x) };
                    }
                }
            }
        }
    }
    if full < n {
        for g in 0..a.groups() {
            strip_portable(a, data, tab, g, b, n, full, n - full, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, s};
    use proptest::prelude::*;

    use super::*;

    /// Digits of non-negative codes (zero for about half of them) and effective weights off
    /// the integer grid, as after device variation.
    fn case(
        rows: usize,
        cols: usize,
        len: usize,
        n: usize,
        seed: u64,
    ) -> (Array2<i8>, Array2<f32>) {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let x = Array2::from_shape_fn((rows, cols), |_| {
            let v = next();
            if v % 2 == 0 {
                0
            } else {
                ((v >> 8) % 128) as i8
            }
        });
        let b = Array2::from_shape_fn((len, n), |_| {
            ((next() >> 11) as f64 / (1u64 << 53) as f64 * 254.0 - 127.0) as f32 * 1.037
        });
        (x, b)
    }

    /// The digit of every code: the code itself, or (`sliced`) a coarser digit that is also
    /// zero for some non-zero codes, as a slice of a bit-sliced DAC is.
    fn table(sliced: bool) -> [f32; 256] {
        let mut t = [0f32; 256];
        for (i, v) in t.iter_mut().enumerate() {
            let c = (i as u8) as i8;
            *v = f32::from(if sliced { c / 4 } else { c });
        }
        t
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The same bits as ndarray's dense `dot` (matrixmultiply) on FMA CPUs, for tiles
        /// shorter and longer than KC, partial row groups and partial column strips.
        #[test]
        fn product_equals_dense_dot(
            rows in 1usize..23,
            len in prop_oneof![1usize..140, 250usize..600],
            n in prop_oneof![1usize..20, 60usize..140],
            start in 0usize..3,
            seed in any::<u64>(),
            sliced in any::<bool>(),
        ) {
            let (x, b) = case(rows, len + start + 1, len, n, seed);
            let t = table(sliced);
            let p = Packed::new(x.view(), start, len, &t, true);
            let mut c = vec![0f32; rows * n];
            product(&p, Operand::Values, b.as_slice().unwrap(), n, &mut c);
            let d = x.slice(s![.., start..start + len]).mapv(|v| t[usize::from(v as u8)]);
            let fma = std::is_x86_feature_detected!("fma");
            if fma {
                let want = d.dot(&b);
                for (got, want) in c.iter().zip(want.iter()) {
                    prop_assert_eq!(got.to_bits(), want.to_bits());
                }
            }
            // On every CPU: the portable kernel gives the same bits as the vector one.
            let mut c2 = vec![0f32; rows * n];
            product_portable(&p, p.operand(Operand::Values), b.as_slice().unwrap(), n, &mut c2);
            prop_assert_eq!(c.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                c2.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            // Squares pack the same non-zero pattern.
            let mut c3 = vec![0f32; rows * n];
            product(&p, Operand::Squares, b.as_slice().unwrap(), n, &mut c3);
            if fma {
                let want = d.mapv(|v| v * v).dot(&b);
                for (got, want) in c3.iter().zip(want.iter()) {
                    prop_assert_eq!(got.to_bits(), want.to_bits());
                }
            }
            for (r, any) in p.row_any.iter().enumerate() {
                prop_assert_eq!(*any, d.row(r).iter().any(|&v| v != 0.0));
            }
        }
    }
}
