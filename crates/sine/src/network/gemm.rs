//! The f32 product of the fast path ([`SineNetwork`](super::SineNetwork), "Speed"), level 1 of
//! the certification: for a block of images, `s[r, o] = Σ_k v[r, k] · u[k, o]` over the inputs
//! `k` that are non-zero in some row of a group of [`MR`] rows (a zero input adds exactly 0),
//! with the weight features packed once per network into strips of [`NR`] columns, together with
//! a rigorous bound on its error ([`rel_bound`]).
//!
//! # Summation and its error bound
//!
//! Only the bound matters here, not the bits. A group's `m` terms (its list of inputs, ascending
//! `k`) are summed in `J = ⌈m / L⌉` consecutive blocks of `L` = [`block_len`]`(m)` ≈ `√m` terms:
//! each block is a recursive sum in f32 that starts from 0, and the block sums are added, in
//! order, into a second f32 accumulator that starts from 0. With `u = 2^-24` (f32, round to
//! nearest) and `γ_n = n·u / (1 − n·u)` (Higham, *Accuracy and Stability of Numerical
//! Algorithms*, 2nd ed., §3.1, Lemma 3.1 and eq. (3.4)–(3.5)):
//!
//! 1. **Features.** The f32 features are the f64 features `ũ`, `ṽ` rounded to nearest:
//!    `a = ũ(1 + α)`, `b = ṽ(1 + β)`, `|α|, |β| ≤ u`, so `ab = ũṽ(1 + θ)` with
//!    `|θ| ≤ 2u + u²`, and `Σ|ab| ≤ (1 + u)² S` with `S = Σ_k |ũ_k ṽ_k|`.
//! 2. **A block** `σ = Σ_{t ≤ L'} a_t b_t` (`L' ≤ L` terms) summed recursively from 0, with a
//!    fused multiply-add (`fl(ab + c) = (ab + c)(1 + δ)`) or a multiply then an add (the first
//!    add, to 0, is exact): every term carries at most `L'` factors `(1 + δ)`, so
//!    `|σ̂ − σ| ≤ γ_L Σ_block |ab|` (Higham §3.1, the recursive-summation bound applied to the
//!    products), and `|σ̂| ≤ (1 + γ_L) Σ_block |ab|`.
//! 3. **The block sums** added recursively from 0 (the first add exact): `J − 1` roundings, so
//!    `|T̂ − Σ σ̂| ≤ γ_{J−1} Σ |σ̂| ≤ γ_{J−1} (1 + γ_L) Σ|ab|`.
//!
//! Together, against the f64 sum `Σ ũṽ`:
//! `|T̂ − Σ ũṽ| ≤ [2u + u² + (1 + u)² (γ_L + γ_{J−1}(1 + γ_L))] · S` = [`rel_bound`]`(m) · S`.
//! With `L ≈ √m` this is about `2√m · u · S` rather than the `m · u · S` of one recursive sum
//! (for the committed network's first layer, `m ≈ 610`: 51 against 610 product LSBs per unit of
//! `S` at `F = 24`). No value can be subnormal, where the model `fl(x) = x(1 + δ)` would fail:
//! every feature is at least `2^-21` in magnitude, so a multiple of `2^-44`, and every nonzero
//! product or sum at least `2^-88`. The caller bounds `S ≤ ‖ũ_o‖₂ ‖ṽ_r‖₂` (Cauchy–Schwarz,
//! norms per output and per image, computed once) and adds the f64-level errors of the
//! features themselves.
//!
//! The AVX-512 kernel (fused multiply-adds) and the portable one (multiply, then add) sum the
//! same blocks in the same order; their bits may differ (one or two roundings per term), both
//! are inside the bound (tested against the exact sum), and every output the bound leaves open
//! is recomputed, so the network's results are the exact path's on either.

/// Rows per group (four images share the list of their non-zero inputs).
pub(super) const MR: usize = 4;

/// Columns per strip (two AVX-512 registers of f32 per row).
pub(super) const NR: usize = 32;

/// f32 unit roundoff `u = 2^-24` (round to nearest).
const U32: f64 = 1.0 / 16_777_216.0;

/// `γ_n = n·u / (1 − n·u)` for f32 (Higham §3.1, Lemma 3.1).
fn gamma(n: usize) -> f64 {
    let nu = n as f64 * U32;
    nu / (1.0 - nu)
}

/// Terms per block for a group of `m` terms: `⌈√m⌉` (at least 1), which minimises `L + m / L`.
pub(super) fn block_len(m: usize) -> usize {
    let mut l = (m as f64).sqrt().ceil() as usize;
    while l * l < m {
        l += 1;
    }
    l.max(1)
}

/// The relative bound of the module docs: `|ŝ − Σ ũṽ| ≤ rel_bound(m) · Σ|ũṽ|` for a group of
/// `m` terms, whichever kernel ran.
pub(super) fn rel_bound(m: usize) -> f64 {
    let l = block_len(m).min(m.max(1));
    let j = m.div_ceil(block_len(m)).max(1);
    let (gl, gj) = (gamma(l), gamma(j - 1));
    let one_u = 1.0 + U32;
    2.0 * U32 + U32 * U32 + one_u * one_u * (gl + gj * (1.0 + gl))
}

/// The weight features `u[k, o]` of a layer as f32 in strips of [`NR`] columns, `k`-major inside
/// a strip (`data[(s·len + k)·NR + j] = u[k, s·NR + j]`, 0 past the last column).
#[derive(Debug, Clone)]
pub(super) struct Strips {
    len: usize,
    n: usize,
    data: Vec<f32>,
}

impl Strips {
    /// Packs `u(k, o)` (rounded to nearest f32) for `k < len`, `o < n`.
    pub(super) fn new(len: usize, n: usize, u: impl Fn(usize, usize) -> f64) -> Self {
        let strips = n.div_ceil(NR);
        let mut data = vec![0f32; strips * len * NR];
        for s in 0..strips {
            for k in 0..len {
                let row = &mut data[(s * len + k) * NR..(s * len + k + 1) * NR];
                for (j, d) in row.iter_mut().enumerate() {
                    let o = s * NR + j;
                    if o < n {
                        *d = u(k, o) as f32;
                    }
                }
            }
        }
        Self { len, n, data }
    }
}

/// The inputs of a block of rows, by groups of [`MR`]: per group, the inputs `k` non-zero in
/// at least one of its rows and their [`MR`] values as f32 (0 for a padding row).
#[derive(Debug, Clone, Default)]
pub(super) struct Groups {
    rows: usize,
    ks: Vec<u32>,
    vals: Vec<[f32; MR]>,
    /// `ks[off[g]..off[g + 1]]`: group `g`'s inputs.
    off: Vec<usize>,
}

impl Groups {
    /// Packs `rows` rows of `len` input codes `x` (`[rows, len]` row-major) as their f32
    /// features `table[zero + code]`; a code of 0 must have the feature 0 (it is skipped).
    ///
    /// # Panics
    /// If a code falls outside `table` (a caller bug: codes are clamped to the table's range).
    pub(super) fn new(rows: usize, len: usize, x: &[i32], table: &[f32], zero: usize) -> Self {
        let groups = rows.div_ceil(MR);
        let mut ks: Vec<u32> = Vec::with_capacity(groups * len);
        let mut vals = Vec::with_capacity(groups * len);
        let mut off = Vec::with_capacity(groups + 1);
        off.push(0);
        let mut any = vec![0i32; len];
        let at = |c: i32| table[(zero as i64 + i64::from(c)) as usize];
        for g in 0..groups {
            let r0 = g * MR;
            let r1 = (r0 + MR).min(rows);
            any.copy_from_slice(&x[r0 * len..(r0 + 1) * len]);
            for r in r0 + 1..r1 {
                for (a, &c) in any.iter_mut().zip(&x[r * len..(r + 1) * len]) {
                    *a |= c;
                }
            }
            // Branch-free compaction of the inputs non-zero in some row.
            let base = ks.len();
            ks.resize(base + len, 0);
            let mut pos = base;
            for (k, &a) in any.iter().enumerate() {
                ks[pos] = k as u32;
                pos += usize::from(a != 0);
            }
            ks.truncate(pos);
            let rs: Vec<&[i32]> = (r0..r1).map(|r| &x[r * len..(r + 1) * len]).collect();
            vals.extend(ks[base..].iter().map(|&k| {
                let mut t = [0f32; MR];
                for (t, r) in t.iter_mut().zip(&rs) {
                    *t = at(r[k as usize]);
                }
                t
            }));
            off.push(ks.len());
        }
        Self {
            rows,
            ks,
            vals,
            off,
        }
    }

    /// Number of terms `m` of the group of row `r` (the inputs non-zero in one of its rows).
    pub(super) fn terms(&self, r: usize) -> usize {
        let g = r / MR;
        self.off[g + 1] - self.off[g]
    }
}

/// `s = v · u` (`s` row-major `[rows, n]`, overwritten): see the module docs. `simd: false`
/// forces the portable kernel (tests compare both).
pub(super) fn product(v: &Groups, u: &Strips, s: &mut [f32], simd: bool) {
    assert_eq!(s.len(), v.rows * u.n, "gemm: s is not [rows, n]");
    #[cfg(target_arch = "x86_64")]
    if simd && std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature the function is compiled for is present.
        unsafe { product_avx512(v, u, s) };
        return;
    }
    let _ = simd;
    product_portable(v, u, s);
}

/// [`product`] with the 4 × 32 block accumulators and the 4 × 32 totals in sixteen AVX-512
/// registers (fused multiply-adds).
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn product_avx512(v: &Groups, u: &Strips, s: &mut [f32]) {
    use std::arch::x86_64::*;
    let (len, n) = (u.len, u.n);
    for st in 0..n.div_ceil(NR) {
        let strip = &u.data[st * len * NR..(st + 1) * len * NR];
        let c0 = st * NR;
        let w = (n - c0).min(NR);
        for g in 0..v.off.len() - 1 {
            let ks = &v.ks[v.off[g]..v.off[g + 1]];
            let vals = &v.vals[v.off[g]..v.off[g + 1]];
            let l = block_len(ks.len());
            let zero = _mm512_setzero_ps();
            let mut tot = [[zero; 2]; MR];
            for (kc, vc) in ks.chunks(l).zip(vals.chunks(l)) {
                let mut acc = [[zero; 2]; MR];
                for (&k, a) in kc.iter().zip(vc) {
                    let k = k as usize;
                    let b = &strip[k * NR..(k + 1) * NR];
                    // SAFETY: `b` holds NR = 2·16 values.
                    let bv = unsafe {
                        [
                            _mm512_loadu_ps(b.as_ptr()),
                            _mm512_loadu_ps(b.as_ptr().add(16)),
                        ]
                    };
                    for (row, &ai) in acc.iter_mut().zip(a) {
                        let ai = _mm512_set1_ps(ai);
                        for (x, &bj) in row.iter_mut().zip(&bv) {
                            *x = _mm512_fmadd_ps(ai, bj, *x);
                        }
                    }
                }
                for (t, a) in tot.iter_mut().zip(&acc) {
                    for (x, &y) in t.iter_mut().zip(a) {
                        *x = _mm512_add_ps(*x, y);
                    }
                }
            }
            for (i, row) in tot.iter().enumerate() {
                let r = g * MR + i;
                if r < v.rows {
                    let mut tmp = [0f32; NR];
                    for (j, x) in row.iter().enumerate() {
                        // SAFETY: tmp holds NR = 2·16 values.
                        unsafe { _mm512_storeu_ps(tmp.as_mut_ptr().add(16 * j), *x) };
                    }
                    s[r * n + c0..r * n + c0 + w].copy_from_slice(&tmp[..w]);
                }
            }
        }
    }
}

/// [`product`] in portable code (compiled for AVX2 as well): the same blocks in the same
/// order, a multiply then an add per term.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn product_portable(v: &Groups, u: &Strips, s: &mut [f32]) {
    let (len, n) = (u.len, u.n);
    for st in 0..n.div_ceil(NR) {
        let strip = &u.data[st * len * NR..(st + 1) * len * NR];
        let c0 = st * NR;
        let w = (n - c0).min(NR);
        for g in 0..v.off.len() - 1 {
            let ks = &v.ks[v.off[g]..v.off[g + 1]];
            let vals = &v.vals[v.off[g]..v.off[g + 1]];
            let l = block_len(ks.len());
            let mut tot = [[0f32; NR]; MR];
            for (kc, vc) in ks.chunks(l).zip(vals.chunks(l)) {
                let mut acc = [[0f32; NR]; MR];
                for (&k, a) in kc.iter().zip(vc) {
                    let k = k as usize;
                    let b: &[f32; NR] = strip[k * NR..(k + 1) * NR]
                        .try_into()
                        .expect("strip rows hold NR values");
                    for (row, &ai) in acc.iter_mut().zip(a) {
                        for (x, &bj) in row.iter_mut().zip(b) {
                            *x += ai * bj;
                        }
                    }
                }
                for (t, a) in tot.iter_mut().zip(&acc) {
                    for (x, &y) in t.iter_mut().zip(a) {
                        *x += y;
                    }
                }
            }
            for (i, row) in tot.iter().enumerate() {
                let r = g * MR + i;
                if r < v.rows {
                    s[r * n + c0..r * n + c0 + w].copy_from_slice(&row[..w]);
                }
            }
        }
    }
}

/// Lanes of [`dense_dot`]'s partial sums.
const DOT_LANES: usize = 32;

/// `Σ_k row[k] · v[k]` in f64 (the f32 weights widened exactly) over all `k` (level 2 of the
/// certification, with the image's features `v` dense, 0 for a zero input: a zero term adds
/// exactly 0). Only its bound is used: every product is rounded once and passes through at
/// most `max(⌊n / 32⌋ + 6, (n mod 32) + 1)` adds (32 partial sums, a pairwise reduction of
/// them, a tail of fewer than 32 terms added in order, one final add), which is at most
/// `n + 8` for every `n`, so `|ŝ − Σ| ≤ γ_{n+8}^{f64} Σ|row · v|` (Higham §3.1).
/// `simd: false` forces the portable code (tests compare both).
pub(super) fn dense_dot(row: &[f32], v: &[f64], simd: bool) -> f64 {
    assert_eq!(row.len(), v.len(), "dense_dot: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if simd && std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature the function is compiled for is present; the lengths are equal.
        return unsafe { dense_dot_avx512(row, v) };
    }
    let _ = simd;
    dense_dot_portable(row, v)
}

/// [`dense_dot`] with four AVX-512 registers of partial sums (fused multiply-adds: one
/// rounding per term and add, and at most `⌊n / 32⌋ + 6` per term, as in the portable code;
/// the compiler vectorised that only to 128 bits).
///
/// # Safety
/// The CPU must have AVX-512F; `row` and `v` must have the same length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dense_dot_avx512(row: &[f32], v: &[f64]) -> f64 {
    use std::arch::x86_64::*;
    let n = row.len();
    let mut acc = [_mm512_setzero_pd(); 4];
    let mut k = 0;
    while k + DOT_LANES <= n {
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: `k + 8·i + 8 ≤ n` values in both slices.
            unsafe {
                let r = _mm512_cvtps_pd(_mm256_loadu_ps(row.as_ptr().add(k + 8 * i)));
                let x = _mm512_loadu_pd(v.as_ptr().add(k + 8 * i));
                *a = _mm512_fmadd_pd(r, x, *a);
            }
        }
        k += DOT_LANES;
    }
    let mut tail = 0f64;
    for (&r, &x) in row[k..].iter().zip(&v[k..]) {
        tail += f64::from(r) * x;
    }
    let s = _mm512_add_pd(_mm512_add_pd(acc[0], acc[1]), _mm512_add_pd(acc[2], acc[3]));
    _mm512_reduce_add_pd(s) + tail
}

/// [`dense_dot`] in portable code (compiled for AVX-512 and AVX2 as well).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn dense_dot_portable(row: &[f32], v: &[f64]) -> f64 {
    let mut acc = [0f64; DOT_LANES];
    let (rc, vc) = (row.chunks_exact(DOT_LANES), v.chunks_exact(DOT_LANES));
    let mut tail = 0f64;
    for (&r, &x) in rc.remainder().iter().zip(vc.remainder()) {
        tail += f64::from(r) * x;
    }
    for (r, x) in rc.zip(vc) {
        for i in 0..DOT_LANES {
            acc[i] += f64::from(r[i]) * x[i];
        }
    }
    let mut w = DOT_LANES;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            acc[i] += acc[i + w];
        }
    }
    acc[0] + tail
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn blocks_cover_the_terms_and_the_bound_grows_like_the_root() {
        for m in 0..2000 {
            let l = block_len(m);
            assert!(l * l >= m && (l == 1 || (l - 1) * (l - 1) < m), "m = {m}");
        }
        // 2√m·u in f32 product LSBs at F = 24, against m·u for one recursive sum.
        let lsb = |m| rel_bound(m) / U32;
        assert!(lsb(1) < 3.1 && lsb(1) > 2.9, "{}", lsb(1));
        assert!(lsb(625) < 2.0 * 25.0 + 3.0, "{}", lsb(625));
        assert!(lsb(784) > 2.0 * 27.0, "{}", lsb(784));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Both kernels within `rel_bound(m) · Σ|ũṽ|` of the exact sum of the f64 features
        /// (random reals, so the f32 sums round; the reference is an f64 sum of at most 300
        /// terms, whose own error, below 300·2^-53 relative, is allowed for), for partial
        /// groups and strips and sparse inputs.
        #[test]
        fn product_is_the_sum_within_the_bound(
            rows in 1usize..11, len in 1usize..300, n in 1usize..75, seed in any::<u64>(),
            scale_exp in -8i32..30,
        ) {
            let mut st = seed | 1;
            let mut next = move || {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                st
            };
            let mut real = move || (next() >> 11) as f64 / (1u64 << 53) as f64;
            let x: Vec<i32> = (0..rows * len)
                .map(|_| {
                    if real() < 0.4 {
                        0
                    } else {
                        ((real() * 2000.0) as i32 - 1000) | 1
                    }
                })
                .collect();
            let feature = |c: i32| if c == 0 { 0.0 } else { (f64::from(c) * 1e-3).sin() };
            let table: Vec<f32> = (-1000..=1000).map(|c| feature(c) as f32).collect();
            let scale = f64::from(scale_exp).exp2();
            let u: Vec<f64> = (0..len * n).map(|_| (real() * 2.0 - 1.0) * scale).collect();
            let g = Groups::new(rows, len, &x, &table, 1000);
            let p = Strips::new(len, n, |k, o| u[k * n + o]);
            let mut s = vec![f32::NAN; rows * n];
            product(&g, &p, &mut s, true);
            let mut s2 = vec![f32::NAN; rows * n];
            product(&g, &p, &mut s2, false);
            for r in 0..rows {
                let m = g.terms(r);
                for o in 0..n {
                    let terms = (0..len).map(|k| feature(x[r * len + k]) * u[k * n + o]);
                    let want: f64 = terms.clone().sum();
                    let abs: f64 = terms.map(f64::abs).sum();
                    let bound = rel_bound(m) * abs + 2.0 * len as f64 * f64::EPSILON * abs;
                    for got in [s[r * n + o], s2[r * n + o]] {
                        let err = (f64::from(got) - want).abs();
                        prop_assert!(err <= bound, "r {} o {} m {} err {} bound {}", r, o, m, err, bound);
                    }
                }
            }
        }

        /// The dense f64 dot product is the sum (small integers: exact in any order), for
        /// lengths below, at and past its lane count.
        #[test]
        fn dense_dot_is_the_sum(len in 0usize..200, seed in any::<u64>()) {
            let mut st = seed | 1;
            let mut next = move || {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                st
            };
            let row: Vec<f32> = (0..len).map(|_| (next() % 201) as f32 - 100.0).collect();
            let v: Vec<f64> = (0..len)
                .map(|_| if next() % 3 == 0 { 0.0 } else { (next() % 201) as f64 - 100.0 })
                .collect();
            let want: f64 = row.iter().zip(&v).map(|(&r, x)| f64::from(r) * x).sum();
            prop_assert_eq!(dense_dot(&row, &v, true), want);
            prop_assert_eq!(dense_dot(&row, &v, false), want);
        }
    }
}
