//! The array's arithmetic: the GEMM computed the way the array computes it, plus the fast exact
//! path the scheduler runs for whole datasets.
//!
//! [`gemm`] follows the hardware's order of additions, with every adder `acc_bits` wide:
//!
//! - **WS**: for each tile (N-block outer, K-tile inner, see [`Tiling`]), the partial sum of
//!   output `(m, n)` starts at 0 at the top used row and passes down the column, each PE adding its
//!   product `x[m, k]·w[n, k]` for `k = k0, k0+1, …` in order; at the bottom edge the accumulator
//!   buffer adds it to the sum of the earlier K-tiles (the first K-tile just stores it).
//! - **OS**: the PE that owns `(m, n)` adds `x[m, k]·w[n, k]` for `k = 0, 1, …, K-1` in order.
//!
//! **Overflow.** With [`Overflow::Wrap`](crate::Overflow::Wrap) every order gives the exact sum
//! modulo `2^acc_bits`, so [`gemm`] always equals [`gemm_ref_acc`](crate::gemm_ref_acc). With
//! `Saturate`, OS adds in the reference's order and equals it always; WS equals it whenever no
//! intermediate sum leaves the range, and otherwise gives the saturated result of the grouping
//! above (partial sums saturate inside their K-tile before the buffer adds them). Below
//! [`SystolicConfig::max_exact_fan_in`] no sum can overflow and every path equals [`gemm_fast`].

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::config::{Dataflow, SystolicConfig};
use crate::tiling::Tiling;

/// `x · wᵀ` computed tile by tile in the array's order of additions, with `cfg.acc_bits`-bit
/// adders applying `cfg.overflow` after every addition (see the module docs).
///
/// # Panics
///
/// If `x` and `w` disagree on `K`, or `cfg` has a zero dimension.
pub fn gemm(cfg: &SystolicConfig, x: ArrayView2<i8>, w: ArrayView2<i8>) -> Array2<i32> {
    let (m, k) = x.dim();
    let n = w.nrows();
    assert_eq!(
        k,
        w.ncols(),
        "systolic: x is [{m}, {k}] but w is [{n}, {}]",
        w.ncols()
    );
    let acc = cfg.acc();
    let mut y = Array2::<i32>::zeros((m, n));
    for t in Tiling::new(cfg, m, k, n).iter() {
        let cols = t.col0..t.col0 + t.cols_used;
        let rows = t.row0..t.row0 + t.rows_used;
        match cfg.dataflow {
            Dataflow::WeightStationary => {
                for mi in 0..m {
                    for ni in cols.clone() {
                        let mut psum = 0;
                        for ki in rows.clone() {
                            psum = acc.add(psum, i32::from(x[[mi, ki]]) * i32::from(w[[ni, ki]]));
                        }
                        let y = &mut y[[mi, ni]];
                        *y = if t.first_in_block {
                            psum
                        } else {
                            acc.add(*y, psum)
                        };
                    }
                }
            }
            Dataflow::OutputStationary => {
                for mi in rows.clone() {
                    for ni in cols.clone() {
                        let mut sum = 0;
                        for ki in 0..k {
                            sum = acc.add(sum, i32::from(x[[mi, ki]]) * i32::from(w[[ni, ki]]));
                        }
                        y[[mi, ni]] = sum;
                    }
                }
            }
        }
    }
    y
}

/// Output rows per parallel task of [`gemm_fast`]: fixed, so the split (and the result) does not
/// depend on the number of threads.
const ROW_BLOCK: usize = 32;
/// Rows of `x` × rows of `w` computed together by one micro-kernel call.
const MR: usize = 4;
const NR: usize = 4;

/// `x · wᵀ` in exact i32 arithmetic (wrapping on overflow), fast: the path the scheduler runs.
///
/// Equals [`gemm`] and [`gemm_ref_acc`](crate::gemm_ref_acc) whenever no sum overflows, which is
/// guaranteed for `K ≤` [`SystolicConfig::max_exact_fan_in`] (131071 at 32 bits), and equals
/// [`gemm_ref`](crate::gemm_ref) always (all arithmetic wraps modulo 2³²). The result is the same
/// for every thread count and instruction set.
///
/// Operands are packed once (rows padded to 4 and `K` to the vector width), then rayon works on
/// blocks of 32 output rows, each a sweep of 4×4 micro-kernels over `K`. The micro-kernel is
/// picked at run time: AVX-512 VNNI (`vpdpbusd`, 64 int8 MACs per instruction, on `x + 128` as
/// u8 with `128·Σ_k w[n, k]` subtracted afterwards), AVX2 (`vpmaddwd` on int16), or portable.
///
/// # Panics
///
/// If `x` and `w` disagree on `K`.
pub fn gemm_fast(x: ArrayView2<i8>, w: ArrayView2<i8>) -> Array2<i32> {
    gemm_fast_on(Isa::detect(), x, w)
}

/// [`gemm_fast`] with the micro-kernel of `isa`, which the caller has checked the CPU runs
/// ([`Isa::available`]); the tests call every kernel through it.
fn gemm_fast_on(isa: Isa, x: ArrayView2<i8>, w: ArrayView2<i8>) -> Array2<i32> {
    assert!(isa.available(), "gemm_fast: this CPU lacks {isa:?}");
    let (m, k) = x.dim();
    let n = w.nrows();
    assert_eq!(
        k,
        w.ncols(),
        "gemm_fast: x is [{m}, {k}] but w is [{n}, {}]",
        w.ncols()
    );
    let mut y = Array2::<i32>::zeros((m, n));
    if m == 0 || n == 0 || k == 0 {
        return y;
    }
    let x = x.as_standard_layout();
    let w = w.as_standard_layout();
    let (xs, ws) = (x.as_slice().unwrap(), w.as_slice().unwrap());
    let ys = y.as_slice_mut().unwrap();
    let zero = vec![0i32; n];
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => {
            // Σ_k (x + 128)·w = Σ_k x·w + 128·Σ_k w.
            let corr: Vec<i32> = ws
                .chunks_exact(k)
                .map(|r| {
                    r.iter()
                        .fold(0i32, |s, &v| s.wrapping_add(i32::from(v)))
                        .wrapping_mul(128)
                })
                .collect();
            let wp = pack(ws, k, 64, |v| v);
            let to_u8 = |v: i8| v.cast_unsigned() ^ 0x80;
            // SAFETY: `isa.available()` saw every feature `tile_vnni` is compiled for.
            let tile = |a: &[u8], b: &[i8], kp| unsafe { x86::tile_vnni(a, b, kp) };
            drive(xs, k, 64, &wp, &corr, to_u8, tile, ys);
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            let wp = pack(ws, k, 16, i16::from);
            // SAFETY: `isa.available()` saw AVX2, the feature `tile_avx2` is compiled for.
            let tile = |a: &[i16], b: &[i16], kp| unsafe { x86::tile_avx2(a, b, kp) };
            drive(xs, k, 16, &wp, &zero, i16::from, tile, ys);
        }
        Isa::Portable => {
            let wp = pack(ws, k, 2, i16::from);
            drive(xs, k, 2, &wp, &zero, i16::from, tile_portable, ys);
        }
    }
    y
}

/// Instruction set of the [`gemm_fast`] micro-kernel.
///
/// Why hand-written intrinsics and a hand-written dispatch (issue #15 asked for a crate such as
/// `multiversion` where benches allow): with `tile_portable` compiled by
/// `#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512vnni", "x86_64+avx2"))]`
/// and run on an AVX-512 VNNI CPU, `cargo bench -p nacsim-systolic --bench gemm`
/// (`gemm_fast_1_thread`, 1000×784×256) took 205–255 ms against 3.3–3.8 ms for `tile_vnni`
/// (f32 `dot` 10–12 ms in the same runs): the compiler does not find `vpdpbusd`, so the
/// intrinsics pay about 60×. Each kernel must also be callable on its own, so that every
/// instruction set is tested against the oracle (`tests::each_kernel_equals_the_oracle`), which
/// a generated dispatcher does not allow; the two `unsafe` calls below are guarded by
/// [`Isa::available`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
}

impl Isa {
    /// Every kernel compiled for this architecture, best first.
    #[cfg_attr(not(test), allow(dead_code))]
    const ALL: &[Isa] = &[
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2,
        Isa::Portable,
    ];

    /// Whether this CPU runs the kernel.
    fn available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vnni")
            }
        }
    }

    /// The best kernel this CPU runs.
    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if Isa::Avx512Vnni.available() {
                return Isa::Avx512Vnni;
            }
            if Isa::Avx2.available() {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }
}

type TileOut = [[i32; NR]; MR];

/// Rows of `src` (`K` long) converted by `f`, padded with zeros to a multiple of `NR` rows of
/// `K` rounded up to `step`.
fn pack<T: Copy + Default>(src: &[i8], k: usize, step: usize, f: impl Fn(i8) -> T) -> Vec<T> {
    let (rows, kp) = (src.len() / k, k.next_multiple_of(step));
    let mut out = vec![T::default(); rows.next_multiple_of(NR) * kp];
    for (o, s) in out.chunks_exact_mut(kp).zip(src.chunks_exact(k)) {
        for (o, &s) in o.iter_mut().zip(s) {
            *o = f(s);
        }
    }
    out
}

/// `y = x · wᵀ − corr` over blocks of `ROW_BLOCK` rows in parallel, with `x` packed per block.
#[allow(clippy::too_many_arguments)]
fn drive<X, W>(
    xs: &[i8],
    k: usize,
    step: usize,
    wp: &[W],
    corr: &[i32],
    to_x: impl Fn(i8) -> X + Sync,
    tile: impl Fn(&[X], &[W], usize) -> TileOut + Sync,
    y: &mut [i32],
) where
    X: Copy + Default + Send,
    W: Sync,
{
    let (n, kp) = (corr.len(), k.next_multiple_of(step));
    y.par_chunks_mut(ROW_BLOCK * n)
        .enumerate()
        .for_each(|(b, yb)| {
            let rows = yb.len() / n;
            let m0 = b * ROW_BLOCK;
            let xp = pack(&xs[m0 * k..(m0 + rows) * k], k, step, &to_x);
            for j0 in (0..n).step_by(NR) {
                let wt = &wp[j0 * kp..(j0 + NR) * kp];
                for i0 in (0..rows).step_by(MR) {
                    let t = tile(&xp[i0 * kp..(i0 + MR) * kp], wt, kp);
                    for (i, ti) in t.iter().enumerate().take(rows - i0) {
                        let yr = &mut yb[(i0 + i) * n..(i0 + i + 1) * n];
                        for (j, &v) in ti.iter().enumerate().take(n - j0) {
                            yr[j0 + j] = v.wrapping_sub(corr[j0 + j]);
                        }
                    }
                }
            }
        });
}

/// Portable micro-kernel: `MR` rows of `a` · `NR` rows of `b`, int16 pairs (the shape of a
/// 16-bit multiply-add, which compilers vectorize).
fn tile_portable(a: &[i16], b: &[i16], kp: usize) -> TileOut {
    let mut t = [[0i32; NR]; MR];
    for (i, ar) in a.chunks_exact(kp).enumerate() {
        for (j, br) in b.chunks_exact(kp).enumerate() {
            t[i][j] = ar
                .chunks_exact(2)
                .zip(br.chunks_exact(2))
                .fold(0i32, |s, (p, q)| {
                    let pair =
                        i32::from(p[0]) * i32::from(q[0]) + i32::from(p[1]) * i32::from(q[1]);
                    s.wrapping_add(pair)
                });
        }
    }
    t
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MR, NR, TileOut};
    use std::arch::x86_64::*;

    /// AVX-512 VNNI micro-kernel: `a` holds `MR` rows of `x + 128` (u8), `b` holds `NR` rows of
    /// `w` (i8), each `kp` long (a multiple of 64). Sums wrap modulo 2³².
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::needless_range_loop)] // acc[i][j] reads as the math does
    pub(super) fn tile_vnni(a: &[u8], b: &[i8], kp: usize) -> TileOut {
        assert!(a.len() >= MR * kp && b.len() >= NR * kp && kp.is_multiple_of(64));
        let mut acc = [[_mm512_setzero_si512(); NR]; MR];
        let mut av = [_mm512_setzero_si512(); MR];
        for c in (0..kp).step_by(64) {
            // SAFETY (all loads): 64 bytes at `row · kp + c` with row < MR (a) or < NR (b) and
            // c + 64 ≤ kp, in bounds by the assert.
            for (i, v) in av.iter_mut().enumerate() {
                *v = unsafe { _mm512_loadu_si512(a.as_ptr().add(i * kp + c).cast()) };
            }
            for j in 0..NR {
                let bv = unsafe { _mm512_loadu_si512(b.as_ptr().add(j * kp + c).cast()) };
                for i in 0..MR {
                    acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], av[i], bv);
                }
            }
        }
        acc.map(|r| r.map(|v| _mm512_reduce_add_epi32(v)))
    }

    /// AVX2 micro-kernel on int16 rows `kp` long (a multiple of 16); `NR` columns done in two
    /// halves to keep the accumulators in the 16 ymm registers.
    #[target_feature(enable = "avx2")]
    pub(super) fn tile_avx2(a: &[i16], b: &[i16], kp: usize) -> TileOut {
        assert!(a.len() >= MR * kp && b.len() >= NR * kp && kp.is_multiple_of(16));
        let mut t = [[0i32; NR]; MR];
        for j0 in (0..NR).step_by(2) {
            let mut acc = [[_mm256_setzero_si256(); 2]; MR];
            for c in (0..kp).step_by(16) {
                // SAFETY (all loads): 16 i16 at `row · kp + c` with row < MR (a) or < NR (b) and
                // c + 16 ≤ kp, in bounds by the assert.
                let b0 = unsafe { _mm256_loadu_si256(b.as_ptr().add(j0 * kp + c).cast()) };
                let b1 = unsafe { _mm256_loadu_si256(b.as_ptr().add((j0 + 1) * kp + c).cast()) };
                for (i, acc) in acc.iter_mut().enumerate() {
                    let av = unsafe { _mm256_loadu_si256(a.as_ptr().add(i * kp + c).cast()) };
                    acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(av, b0));
                    acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(av, b1));
                }
            }
            for i in 0..MR {
                for j in 0..2 {
                    t[i][j0 + j] = hsum(acc[i][j]);
                }
            }
        }
        t
    }

    #[target_feature(enable = "avx2")]
    fn hsum(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        _mm_cvtsi128_si32(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overflow;
    use crate::reference::{gemm_ref, gemm_ref_acc};
    use crate::testutil::{arb_cfg, arb_gemm, cases, matrix};
    use nacsim_core::gemm::gemm_i8;
    use proptest::prelude::*;

    /// Every kernel this CPU runs; the others are named on stderr (a skipped instruction set is
    /// visible in `cargo test -- --nocapture`).
    fn kernels() -> Vec<Isa> {
        Isa::ALL
            .iter()
            .copied()
            .filter(|isa| {
                let ok = isa.available();
                if !ok {
                    eprintln!("gemm_fast: skipping {isa:?}, which this CPU lacks");
                }
                ok
            })
            .collect()
    }

    /// The core oracle on row-major copies of `x` and `w`.
    fn oracle(x: &Array2<i8>, w: &Array2<i8>) -> Array2<i32> {
        let (m, k, n) = (x.nrows(), x.ncols(), w.nrows());
        let y = gemm_i8(
            x.as_standard_layout().as_slice().unwrap(),
            w.as_standard_layout().as_slice().unwrap(),
            m,
            k,
            n,
        );
        Array2::from_shape_vec((m, n), y).unwrap()
    }

    #[test]
    fn detect_picks_the_best_available_kernel() {
        let best = Isa::detect();
        assert!(best.available());
        assert_eq!(kernels()[0], best);
        assert!(kernels().contains(&Isa::Portable));
    }

    #[test]
    fn every_kernel_is_exact_even_when_sums_wrap() {
        let (m, k, n) = (37, 300, 23);
        let x = matrix(m, k, 5).mapv(|v| if v < 0 { -128 } else { 127 });
        let w = matrix(n, k, 6).mapv(|v| if v < 0 { -128 } else { 127 });
        let reference = oracle(&x, &w);
        for isa in kernels() {
            assert_eq!(gemm_fast_on(isa, x.view(), w.view()), reference, "{isa:?}");
        }
        // 200000 products of 16384 overflow i32; every kernel wraps like the reference.
        let big_x = Array2::from_elem((5, 200_000), -128i8);
        let big_w = Array2::from_elem((4, 200_000), -128i8);
        let wrapped = oracle(&big_x, &big_w);
        assert_eq!(wrapped[[0, 0]], (200_000i64 * 16384) as i32);
        for isa in kernels() {
            assert_eq!(
                gemm_fast_on(isa, big_x.view(), big_w.view()),
                wrapped,
                "{isa:?}"
            );
        }
    }

    #[test]
    fn fast_path_handles_remainders_and_empty_shapes() {
        for isa in kernels() {
            for (m, k, n) in [
                (1, 1, 1),
                (3, 5, 2),
                (37, 70, 9),
                (65, 33, 40),
                (0, 3, 2),
                (2, 0, 3),
                (3, 2, 0),
            ] {
                let x = matrix(m, k, 1);
                let w = matrix(n, k, 2);
                assert_eq!(
                    gemm_fast_on(isa, x.view(), w.view()),
                    oracle(&x, &w),
                    "{isa:?} {m}x{k}x{n}"
                );
            }
            let x = matrix(9, 7, 3);
            let w = matrix(5, 7, 4);
            let xt = x.t().to_owned();
            // Non-standard layouts are accepted.
            assert_eq!(gemm_fast_on(isa, xt.t(), w.view()), oracle(&x, &w));
        }
        assert_eq!(
            gemm_fast(matrix(3, 5, 1).view(), matrix(2, 5, 2).view()),
            gemm_ref(matrix(3, 5, 1).view(), matrix(2, 5, 2).view())
        );
    }

    #[test]
    fn saturating_ws_groups_by_k_tile() {
        // K = 4 on a 2-row array: tiles {k0,k1}, {k2,k3}; 16 bits saturate.
        let x = ndarray::array![[-128i8, -128, -128, 127]];
        let w = ndarray::array![[-128i8, -128, -128, -128]];
        let mut cfg = SystolicConfig::new(2, 1, Dataflow::WeightStationary);
        cfg.acc_bits = 16;
        cfg.overflow = Overflow::Saturate;
        // Tile 0: 16384 + 16384 → 32767; tile 1: 16384 - 16256 = 128; buffer: 32767 + 128 → 32767.
        assert_eq!(gemm(&cfg, x.view(), w.view())[[0, 0]], 32767);
        let reference = gemm_ref_acc(x.view(), w.view(), 16, Overflow::Saturate)[[0, 0]];
        assert_eq!(reference, 32767 - 16256);
        cfg.dataflow = Dataflow::OutputStationary;
        assert_eq!(gemm(&cfg, x.view(), w.view())[[0, 0]], reference);
    }

    /// A dimension with its edge sizes: 0, 1, just around the vector widths (2, 16, 64) and the
    /// 4×4 micro-tile, a 32-row block and a half, or anything up to 150.
    fn edge_dim() -> impl Strategy<Value = usize> {
        prop_oneof![
            prop::sample::select(vec![
                0usize, 1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 127, 128, 129
            ]),
            0usize..=150,
        ]
    }

    proptest! {
        #![proptest_config(cases(48))]

        /// Per instruction set: each micro-kernel this CPU runs equals the core oracle on every
        /// shape, the extremes −128/127 included.
        #[test]
        fn each_kernel_equals_the_oracle(
            m in edge_dim(), k in edge_dim(), n in edge_dim(), seed: u64, extreme in prop::bool::weighted(0.25),
        ) {
            let (mut x, mut w) = (matrix(m, k, seed), matrix(n, k, seed ^ 1));
            if extreme {
                let ext = |v: &mut i8| *v = if *v < 0 { -128 } else { 127 };
                x.map_inplace(ext);
                w.map_inplace(ext);
            }
            let want = oracle(&x, &w);
            for isa in kernels() {
                prop_assert_eq!(&gemm_fast_on(isa, x.view(), w.view()), &want, "{:?}", isa);
            }
        }

        #[test]
        fn datapath_equals_reference_and_fast_path(cfg in arb_cfg(), (x, w) in arb_gemm(40)) {
            let reference = gemm_ref_acc(x.view(), w.view(), cfg.acc_bits, cfg.overflow);
            let y = gemm(&cfg, x.view(), w.view());
            let exact = x.ncols() <= cfg.max_exact_fan_in();
            if exact || cfg.overflow == Overflow::Wrap || cfg.dataflow == Dataflow::OutputStationary {
                prop_assert_eq!(&y, &reference);
            }
            if exact {
                prop_assert_eq!(&y, &gemm_fast(x.view(), w.view()));
            }
        }
    }
}
