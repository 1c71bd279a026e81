//! The f64 product of the fast path ([`SineNetwork`](super::SineNetwork), "Speed"): for a
//! block of images, `s[r, o] = Σ_k v[r, k] · u[k, o]` over the inputs `k` that are non-zero in
//! some row of a group of [`MR`] rows (a zero input adds exactly 0), with the weight features
//! packed once per network into strips of [`NR`] columns.
//!
//! Only the bound matters here, not the bits: every output is one recursive sum of at most
//! `fan_in` products in ascending `k`, so its error is at most `γ_n Σ_k |v·u|`
//! (`γ_n = n·2^-53/(1 − n·2^-53)`, Higham, *Accuracy and Stability of Numerical Algorithms*,
//! 2nd ed., §3.1), below the `2·(n + 8)·2^-52` relative radius the fast path allows; every
//! output the interval leaves open is recomputed product by product. So the network's results
//! are the exact path's whatever the summation order (tested against it).

/// Rows per group (four images share the list of their non-zero inputs).
pub(super) const MR: usize = 4;

/// Columns per strip (four AVX-512 registers of f64 per row).
pub(super) const NR: usize = 32;

/// The weight features `u[k, o]` of a layer in strips of [`NR`] columns, `k`-major inside a
/// strip (`data[(s·len + k)·NR + j] = u[k, s·NR + j]`, 0 past the last column), and `max |u|`.
#[derive(Debug, Clone)]
pub(super) struct Strips {
    len: usize,
    n: usize,
    data: Vec<f64>,
    /// `max |u|` over the layer.
    pub(super) max_abs: f64,
}

impl Strips {
    /// Packs `u(k, o)` for `k < len`, `o < n`.
    pub(super) fn new(len: usize, n: usize, u: impl Fn(usize, usize) -> f64) -> Self {
        let strips = n.div_ceil(NR);
        let mut data = vec![0f64; strips * len * NR];
        let mut max_abs = 0f64;
        for s in 0..strips {
            for k in 0..len {
                let row = &mut data[(s * len + k) * NR..(s * len + k + 1) * NR];
                for (j, d) in row.iter_mut().enumerate() {
                    let o = s * NR + j;
                    if o < n {
                        *d = u(k, o);
                        max_abs = max_abs.max(d.abs());
                    }
                }
            }
        }
        Self {
            len,
            n,
            data,
            max_abs,
        }
    }
}

/// The inputs of a block of rows, by groups of [`MR`]: per group, the inputs `k` non-zero in
/// at least one of its rows and their [`MR`] values (0 for a padding row).
#[derive(Debug, Clone, Default)]
pub(super) struct Groups {
    rows: usize,
    ks: Vec<u32>,
    vals: Vec<[f64; MR]>,
    /// `ks[off[g]..off[g + 1]]`: group `g`'s inputs.
    off: Vec<usize>,
}

impl Groups {
    /// Packs `rows` rows of `len` input codes `x` (`[rows, len]` row-major) as their features
    /// `feature(code)`; a code of 0 must have the feature 0 (it is skipped).
    pub(super) fn new(rows: usize, len: usize, x: &[i32], feature: impl Fn(i32) -> f64) -> Self {
        let groups = rows.div_ceil(MR);
        let mut ks = Vec::with_capacity(groups * len);
        let mut vals = Vec::with_capacity(groups * len);
        let mut off = Vec::with_capacity(groups + 1);
        off.push(0);
        let mut tmp = vec![[0f64; MR]; len];
        let mut any = vec![false; len];
        for g in 0..groups {
            any.fill(false);
            for i in 0..MR {
                let r = g * MR + i;
                if r < rows {
                    let xr = &x[r * len..(r + 1) * len];
                    for ((t, a), &c) in tmp.iter_mut().zip(&mut any).zip(xr) {
                        t[i] = feature(c);
                        *a |= c != 0;
                    }
                } else {
                    for t in &mut tmp {
                        t[i] = 0.0;
                    }
                }
            }
            for (k, (t, &a)) in tmp.iter().zip(&any).enumerate() {
                if a {
                    ks.push(k as u32);
                    vals.push(*t);
                }
            }
            off.push(ks.len());
        }
        Self {
            rows,
            ks,
            vals,
            off,
        }
    }
}

/// `s = v · u` (`s` row-major `[rows, n]`, overwritten): see the module docs.
pub(super) fn product(v: &Groups, u: &Strips, s: &mut [f64]) {
    assert_eq!(s.len(), v.rows * u.n, "gemm: s is not [rows, n]");
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature the function is compiled for is present.
        unsafe { product_avx512(v, u, s) };
        return;
    }
    product_portable(v, u, s);
}

/// [`product`] with the 4 × 32 accumulators in sixteen AVX-512 registers (fused
/// multiply-adds: one rounding per term, inside the same bound).
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn product_avx512(v: &Groups, u: &Strips, s: &mut [f64]) {
    use std::arch::x86_64::*;
    let (len, n) = (u.len, u.n);
    for st in 0..n.div_ceil(NR) {
        let strip = &u.data[st * len * NR..(st + 1) * len * NR];
        let c0 = st * NR;
        let w = (n - c0).min(NR);
        for g in 0..v.off.len() - 1 {
            let range = v.off[g]..v.off[g + 1];
            let zero = _mm512_setzero_pd();
            let mut acc = [[zero; 4]; MR];
            for (&k, a) in v.ks[range.clone()].iter().zip(&v.vals[range]) {
                let k = k as usize;
                let b = &strip[k * NR..(k + 1) * NR];
                // SAFETY: `b` holds NR = 4·8 values.
                let bv = unsafe {
                    [
                        _mm512_loadu_pd(b.as_ptr()),
                        _mm512_loadu_pd(b.as_ptr().add(8)),
                        _mm512_loadu_pd(b.as_ptr().add(16)),
                        _mm512_loadu_pd(b.as_ptr().add(24)),
                    ]
                };
                for (row, &ai) in acc.iter_mut().zip(a) {
                    let ai = _mm512_set1_pd(ai);
                    for (x, &bj) in row.iter_mut().zip(&bv) {
                        *x = _mm512_fmadd_pd(ai, bj, *x);
                    }
                }
            }
            for (i, row) in acc.iter().enumerate() {
                let r = g * MR + i;
                if r < v.rows {
                    let mut tmp = [0f64; NR];
                    for (j, x) in row.iter().enumerate() {
                        // SAFETY: tmp holds NR = 4·8 values.
                        unsafe { _mm512_storeu_pd(tmp.as_mut_ptr().add(8 * j), *x) };
                    }
                    s[r * n + c0..r * n + c0 + w].copy_from_slice(&tmp[..w]);
                }
            }
        }
    }
}

/// [`product`] in portable code (compiled for AVX2 as well).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn product_portable(v: &Groups, u: &Strips, s: &mut [f64]) {
    let (len, n) = (u.len, u.n);
    for st in 0..n.div_ceil(NR) {
        let strip = &u.data[st * len * NR..(st + 1) * len * NR];
        let c0 = st * NR;
        let w = (n - c0).min(NR);
        for g in 0..v.off.len() - 1 {
            let range = v.off[g]..v.off[g + 1];
            let mut acc = [[0f64; NR]; MR];
            for (&k, a) in v.ks[range.clone()].iter().zip(&v.vals[range]) {
                let k = k as usize;
                let b: &[f64; NR] = strip[k * NR..(k + 1) * NR]
                    .try_into()
                    .expect("strip rows hold NR values");
                for (row, &ai) in acc.iter_mut().zip(a) {
                    for (x, &bj) in row.iter_mut().zip(b) {
                        *x += ai * bj;
                    }
                }
            }
            for (i, row) in acc.iter().enumerate() {
                let r = g * MR + i;
                if r < v.rows {
                    s[r * n + c0..r * n + c0 + w].copy_from_slice(&row[..w]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Within `γ_n Σ|v·u|` of the exact sum (computed in f64 from small integers, so
        /// exactly), for partial groups and strips and sparse inputs.
        #[test]
        fn product_is_the_sum_within_the_bound(
            rows in 1usize..11, len in 1usize..70, n in 1usize..75, seed in any::<u64>(),
        ) {
            let mut st = seed | 1;
            let mut next = move || {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                st
            };
            let x: Vec<i32> = (0..rows * len)
                .map(|_| if next() % 3 == 0 { 0 } else { (next() % 201) as i32 - 100 })
                .collect();
            let v: Vec<f64> = x.iter().map(|&c| f64::from(c)).collect();
            let u: Vec<f64> = (0..len * n).map(|_| (next() % 201) as f64 - 100.0).collect();
            let g = Groups::new(rows, len, &x, f64::from);
            let p = Strips::new(len, n, |k, o| u[k * n + o]);
            let mut s = vec![f64::NAN; rows * n];
            product(&g, &p, &mut s);
            let mut s2 = vec![f64::NAN; rows * n];
            product_portable(&g, &p, &mut s2);
            prop_assert_eq!(&s, &s2);
            for r in 0..rows {
                for o in 0..n {
                    // Integers below 2^53 in every partial sum: the f64 sum is exact.
                    let want: f64 = (0..len).map(|k| v[r * len + k] * u[k * n + o]).sum();
                    prop_assert_eq!(s[r * n + o], want);
                }
            }
            let max = u.iter().fold(0f64, |m, x| m.max(x.abs()));
            prop_assert_eq!(p.max_abs, max);
        }
    }
}
