//! Cheap keyed counter-based draws for the per-device and per-output hot loops.
//!
//! A [`Keyed`] key is taken once from a [`Stream`] (its generator [`Stream::rng`]`(u64::MAX)`,
//! so it does not overlap the small generator indices other draws use); a draw is a pure
//! function of `(key, counter, index)`: the SplitMix64 output at position `index` of a sequence
//! whose start is the SplitMix64 finalizer of `key ^ counter` (Steele, Lea & Flood, "Fast
//! splittable pseudorandom number generators", OOPSLA 2014). No state is carried between
//! draws, so results do not depend on the order or the thread that draws them. One draw costs
//! two 64-bit multiplies instead of a ChaCha block (≈10× cheaper per word in the update loop).
//!
//! For the vectorised per-weight loop of the store there is also a 32-bit form,
//! [`Keys32::words`]: two keyed rounds of Wellons' `lowbias32` integer hash (Wellons, "Hash
//! function prospector", 2018) per index and a third for the second device of a pair — 32-bit
//! multiplies only, so AVX2/AVX-512 process 8/16 weights at a time.
//!
//! Standard normals in bulk: [`Seq::fill_normals`], Marsaglia & Tsang's 256-strip ziggurat
//! ("The ziggurat method for generating random variables", J. Stat. Softw. 5(8), 2000) on
//! one keyed 32-bit word per element (half of a [`Seq::word`]: one SplitMix64 hash per two
//! draws). The fast path (one hash, one table look-up, one multiply) takes ≈ 98.8 % of draws and
//! is vectorised (AVX-512 intrinsics with gathered table look-ups where the CPU has AVX-512F and
//! DQ, else AVX2/baseline clones chosen at run time by `multiversion`; the same bits on every
//! path); the rare wedge and tail draws take further words from a SplitMix64 sequence
//! keyed by the element, so element `i` is a pure function of `(key, counter, i)`.
//!
//! Statistical quality: SplitMix64 passes BigCrush as a sequence; the 32-bit hash is checked
//! here for mean, tail frequency and pair correlation. Both are used for stochastic rounding,
//! coincidence draws and read noise, not for cryptography.

use std::sync::LazyLock;

use crate::rng::Stream;
use multiversion::multiversion;
use rand::RngCore;

/// SplitMix64's increment (the golden ratio in 64-bit fixed point; Steele, Lea & Flood 2014).
pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finalizer (Steele, Lea & Flood 2014, with Stafford's "variant 13" shifts and
/// multipliers), a bijection on u64. The one copy of the workspace: [`SplitMix`], [`Keyed`] and
/// the ChaCha key derivation of [`crate::rng`] all hash through it. One step of the SplitMix64
/// generator from state `s` is `mix64(s + GAMMA)`.
#[inline(always)]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit key for counter-based draws (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyed(u64);

impl Keyed {
    /// The key of `stream`.
    pub fn of(stream: &Stream) -> Self {
        Keyed(stream.rng(u64::MAX).next_u64())
    }

    /// The sequence of draws for `counter` (an update step, a forward call).
    #[inline]
    pub fn at(self, counter: u64) -> Seq {
        Seq(mix64(self.0 ^ mix64(counter.wrapping_add(GAMMA))))
    }
}

/// The draws of one counter of a [`Keyed`] key, addressed by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seq(u64);

impl Seq {
    /// The 64-bit word at `index`.
    #[inline(always)]
    pub fn word(self, index: u64) -> u64 {
        mix64(
            self.0
                .wrapping_add(index.wrapping_add(1).wrapping_mul(GAMMA)),
        )
    }

    /// A sequential generator starting at `index` (word `i` of it is [`word`](Self::word)`(index
    /// + i)`), for samplers that consume a variable number of words (the ziggurat normal).
    pub fn rng(self, index: u64) -> SplitMix {
        SplitMix {
            state: self.0.wrapping_add(index.wrapping_mul(GAMMA)),
        }
    }

    /// Four 32-bit keys (words `u64::MAX − 1`, `u64::MAX`) for [`Keys32::words`], two
    /// independent 32-bit streams per index.
    pub fn keys32(self) -> Keys32 {
        let (a, b) = (self.word(u64::MAX - 1), self.word(u64::MAX));
        Keys32 {
            k: [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32],
        }
    }

    /// A second independent sequence derived from this one and `sub` (e.g. one per output row).
    #[inline]
    pub fn derive(self, sub: u64) -> Seq {
        Seq(mix64(
            self.0 ^ mix64(sub.wrapping_add(GAMMA).wrapping_mul(GAMMA)),
        ))
    }
}

impl Seq {
    /// Standard normal draws for elements `0..out.len()` of this sequence (see the module
    /// docs): element `i` is a function of `(key, counter, i)` only, whatever the slice length
    /// or the instruction set.
    ///
    /// Element `i`'s word is half of the SplitMix64 output [`word`](Self::word)`(i / 2)`
    /// (SplitMix64 passes BigCrush), rather than the cheaper two-round 32-bit hash of
    /// [`Keys32::words`]. Checked against ChaCha8 Box–Muller draws on what the draws are for:
    /// 100 crossbar MLP trials under 30 % d2d variation per seed give accuracy mean 0.849–0.852
    /// and std 0.0148–0.0151 over seeds 1–3 (ChaCha8 Box–Muller: 0.849–0.851, 0.0123–0.0182;
    /// the std of 100 trials swings that much from seed to seed).
    pub fn fill_normals(self, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512dq") {
            // SAFETY: the features the function is compiled for are present.
            unsafe { normals_avx512(self, &ZIGGURAT, out) };
            return;
        }
        normals_dispatch(self, &ZIGGURAT, out);
    }
}

/// Strips of the ziggurat (a power of two: the strip index is the word's low bits).
const STRIPS: usize = 256;

/// Marsaglia & Tsang's ziggurat tables for the standard normal with [`STRIPS`] strips (their
/// `zigset`, computed in f64 at first use): `k[i]` the accept bound of strip `i` on `|hz|`
/// (`hz` the signed draw word), `w[i]` the scale from `hz` to `x`, `f[i] = exp(−x_i²/2)`
/// at the strip's edge.
struct Ziggurat {
    k: [u32; STRIPS],
    w32: [f32; STRIPS],
    w: [f64; STRIPS],
    f: [f64; STRIPS],
    /// `edge[i] = x_i`, the right edge of strip `i ≥ 1` (`f[i] = exp(−x_i²/2)`), and
    /// `edge[0] = 0` (`f[0] = 1`): the corners of the wedges for [`below_density`].
    edge: [f64; STRIPS],
}

/// Right edge of the base strip (`r`) of the 256-strip normal ziggurat (Marsaglia & Tsang 2000,
/// the constants `rand_distr` also uses).
const ZIG_R: f64 = 3.654_152_885_361_009;
/// Area of each strip (`v`) of the 256-strip normal ziggurat (Marsaglia & Tsang 2000).
const ZIG_V: f64 = 4.928_673_233_99e-3;

static ZIGGURAT: LazyLock<Ziggurat> = LazyLock::new(|| {
    let m1 = 2_147_483_648.0f64;
    let top = STRIPS - 1;
    let (mut k, mut w, mut f) = ([0u32; STRIPS], [0f64; STRIPS], [0f64; STRIPS]);
    let mut dn = ZIG_R;
    let mut tn = dn;
    let q = ZIG_V / (-0.5 * dn * dn).exp();
    k[0] = ((dn / q) * m1) as u32;
    k[1] = 0;
    w[0] = q / m1;
    w[top] = dn / m1;
    f[0] = 1.0;
    f[top] = (-0.5 * dn * dn).exp();
    for i in (1..top).rev() {
        dn = (-2.0 * (ZIG_V / dn + (-0.5 * dn * dn).exp()).ln()).sqrt();
        k[i + 1] = ((dn / tn) * m1) as u32;
        tn = dn;
        f[i] = (-0.5 * dn * dn).exp();
        w[i] = dn / m1;
    }
    let mut edge = w.map(|v| v * m1);
    edge[0] = 0.0;
    Ziggurat {
        k,
        w32: w.map(|v| v as f32),
        w,
        f,
        edge,
    }
});

/// The ziggurat's draw word of element `i`: half `i mod 2` (low half first) of the SplitMix64
/// word `i / 2`, so one 64-bit hash serves two draws.
#[inline(always)]
fn draw_word(seq: Seq, i: u64) -> u32 {
    (seq.word(i >> 1) >> ((i & 1) * 32)) as u32
}

/// The signed value `hz` and strip index `iz` of a draw word: all 32 bits, and the low 8 of
/// them (Marsaglia & Tsang's layout; the index bits are the value's least significant ones).
#[inline(always)]
fn split_word(w: u32) -> (i32, usize) {
    (w as i32, (w as usize) & (STRIPS - 1))
}

/// [`normals_impl`] compiled for AVX-512 (F, BW, VL, DQ: 64-bit multiplies as instructions),
/// AVX2 and the baseline, the best one the CPU has chosen on the first call (`multiversion`'s
/// run-time dispatch). The body is inlined into each clone, so every clone computes the same
/// bits; no hand-written intrinsics (the compiler vectorises the branch-free fast path).
/// `cargo bench -p nacsim-core --bench normals` (2026-12, AVX-512 host, loaded): 178 M draws/s
/// with this dispatch, 178 M with the hand-written `#[target_feature]` dispatch it replaced,
/// 109 M for the baseline body alone, so the clones pay and the crate costs nothing. The
/// AVX-512 clone fetches the table entries one lane at a time, though; where AVX-512F and DQ
/// are present [`normals_avx512`] (two gathers per 16 draws) is used instead: 232–334 M
/// draws/s against this clone's 181–218 M in alternating runs (session 10, load 14).
#[multiversion(targets("x86_64+avx2+avx512f+avx512bw+avx512vl+avx512dq", "x86_64+avx2"))]
fn normals_dispatch(seq: Seq, zig: &Ziggurat, out: &mut [f32]) {
    normals_impl(seq, zig, out);
}

/// Elements per block of the fast path: one vectorised pass computes the block's draws and a
/// bit mask of its rejections.
const LANES: usize = 16;

/// The body of [`Seq::fill_normals`]: per block of [`LANES`], the SplitMix64 finalizer (64-bit
/// multiplies; AVX-512DQ has them as instructions) per two elements, one table look-up and one
/// f32 multiply per element, branch-free, so every instruction set gives the same bits; then the block's
/// rejections, if any (about one block in six), through [`slow_normal`].
#[inline(always)]
fn normals_impl(seq: Seq, zig: &Ziggurat, out: &mut [f32]) {
    let draw = |i: u64| {
        let (hz, iz) = split_word(draw_word(seq, i));
        (hz as f32 * zig.w32[iz], hz.unsigned_abs() >= zig.k[iz])
    };
    let full = (out.len() / LANES * LANES) as u64;
    let mut blocks = out.chunks_exact_mut(LANES);
    for (b, block) in (&mut blocks).enumerate() {
        let i0 = (b * LANES) as u64;
        let mut rejected = 0u32;
        for (j, z) in block.iter_mut().enumerate() {
            let (x, reject) = draw(i0 + j as u64);
            *z = x;
            rejected |= u32::from(reject) << j;
        }
        while rejected != 0 {
            let j = rejected.trailing_zeros() as usize;
            let i = i0 + j as u64;
            block[j] = slow_normal(seq.derive(i), zig, draw_word(seq, i)) as f32;
            rejected &= rejected - 1;
        }
    }
    for (j, z) in blocks.into_remainder().iter_mut().enumerate() {
        let i = full + j as u64;
        let (x, reject) = draw(i);
        *z = if reject {
            slow_normal(seq.derive(i), zig, draw_word(seq, i)) as f32
        } else {
            x
        };
    }
}

/// [`normals_impl`] with AVX-512 intrinsics: per block of [`LANES`] = 16 draws, the eight
/// SplitMix64 words are hashed in one register (`vpmullq`), whose 16 halves are the block's
/// draw words in order (low half first, as [`draw_word`]); the strip's scale and accept bound
/// are looked up in the tables held in registers ([`lookup256`]: permutes and blends; the
/// compiled clones of [`normals_impl`] fetch them one lane at a time, and two 16-lane gathers,
/// used until session 12, took about twice as long on Zen 5: 16 against 8 ns per block in a
/// micro-benchmark). The arithmetic is the fast path's: `i32 → f32` conversion (round to
/// nearest) and one f32 multiply, an unsigned compare of `|hz|` with the bound, so the same
/// bits (tested against [`normals_impl`]); rejections and the last partial block go through
/// the same code as there.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512DQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn normals_avx512(seq: Seq, zig: &Ziggurat, out: &mut [f32]) {
    use std::arch::x86_64::*;
    let steps = _mm512_set_epi64(
        7u64.wrapping_mul(GAMMA) as i64,
        6u64.wrapping_mul(GAMMA) as i64,
        5u64.wrapping_mul(GAMMA) as i64,
        4u64.wrapping_mul(GAMMA) as i64,
        3u64.wrapping_mul(GAMMA) as i64,
        2u64.wrapping_mul(GAMMA) as i64,
        GAMMA as i64,
        0,
    );
    let m1 = _mm512_set1_epi64(0xBF58_476D_1CE4_E5B9u64 as i64);
    let m2 = _mm512_set1_epi64(0x94D0_49BB_1331_11EBu64 as i64);
    // The strips' scales and accept bounds (bit patterns, moved but never computed on), 16
    // entries a register.
    // SAFETY: each table holds STRIPS = 256 = 16·16 entries of 4 bytes.
    let w_tab: [__m512; 16] =
        std::array::from_fn(|i| unsafe { _mm512_loadu_ps(zig.w32.as_ptr().add(16 * i)) });
    let k_tab: [__m512; 16] = std::array::from_fn(|i| unsafe {
        _mm512_castsi512_ps(_mm512_loadu_si512(zig.k.as_ptr().add(16 * i).cast()))
    });
    let full = out.len() / LANES * LANES;
    let (head, tail) = out.split_at_mut(full);
    for (b, block) in head.chunks_exact_mut(LANES).enumerate() {
        let i0 = (b * LANES) as u64;
        // State of word i0/2 + j: seq + (i0/2 + j + 1)·GAMMA ([`Seq::word`]).
        let base = seq.0.wrapping_add(((i0 >> 1) + 1).wrapping_mul(GAMMA));
        let mut z = _mm512_add_epi64(_mm512_set1_epi64(base as i64), steps);
        z = _mm512_xor_si512(z, _mm512_srli_epi64::<30>(z));
        z = _mm512_mullo_epi64(z, m1);
        z = _mm512_xor_si512(z, _mm512_srli_epi64::<27>(z));
        z = _mm512_mullo_epi64(z, m2);
        z = _mm512_xor_si512(z, _mm512_srli_epi64::<31>(z));
        // The strip index is each lane's low 8 bits: bits 0–4 pick one of 32 entries (the
        // permutes), bits 5–7 one of the 8 permutes' results (the blends).
        let bit = |b: i32| _mm512_test_epi32_mask(z, _mm512_set1_epi32(1 << b));
        let (b5, b6, b7) = (bit(5), bit(6), bit(7));
        let w = lookup256(&w_tab, z, b5, b6, b7);
        let k = _mm512_castps_si512(lookup256(&k_tab, z, b5, b6, b7));
        let x = _mm512_mul_ps(_mm512_cvtepi32_ps(z), w);
        let mut rejected = u32::from(_mm512_cmpge_epu32_mask(_mm512_abs_epi32(z), k));
        // SAFETY: the block holds LANES = 16 floats.
        unsafe { _mm512_storeu_ps(block.as_mut_ptr(), x) };
        while rejected != 0 {
            let j = rejected.trailing_zeros() as usize;
            let i = i0 + j as u64;
            block[j] = slow_normal(seq.derive(i), zig, draw_word(seq, i)) as f32;
            rejected &= rejected - 1;
        }
    }
    for (j, z) in tail.iter_mut().enumerate() {
        let i = (full + j) as u64;
        let (hz, iz) = split_word(draw_word(seq, i));
        *z = if hz.unsigned_abs() >= zig.k[iz] {
            slow_normal(seq.derive(i), zig, draw_word(seq, i)) as f32
        } else {
            hz as f32 * zig.w32[iz]
        };
    }
}

/// Entry `i mod 256` of the 256-entry table `t` (16 registers) for each 32-bit lane `i` of
/// `z`, given the lanes' bits 5, 6 and 7 as masks: 8 two-register permutes (bits 0–4) and 7
/// blends. Pure data movement (no arithmetic on the entries), so the table's bits exactly,
/// as a gather would fetch them (on Zen 5 a 16-lane gather costs about as much as both
/// look-ups this way).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn lookup256(
    t: &[std::arch::x86_64::__m512; 16],
    z: std::arch::x86_64::__m512i,
    b5: std::arch::x86_64::__mmask16,
    b6: std::arch::x86_64::__mmask16,
    b7: std::arch::x86_64::__mmask16,
) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let l0: [__m512; 8] =
        std::array::from_fn(|j| _mm512_permutex2var_ps(t[2 * j], z, t[2 * j + 1]));
    let l1: [__m512; 4] =
        std::array::from_fn(|j| _mm512_mask_blend_ps(b5, l0[2 * j], l0[2 * j + 1]));
    let l2: [__m512; 2] =
        std::array::from_fn(|j| _mm512_mask_blend_ps(b6, l1[2 * j], l1[2 * j + 1]));
    _mm512_mask_blend_ps(b7, l2[0], l2[1])
}

/// Marsaglia & Tsang's `nfix`: the wedge and tail of the ziggurat for a rejected word `w`,
/// drawing further words from `seq` (the element's own sequence).
#[cold]
#[inline(never)]
fn slow_normal(seq: Seq, zig: &Ziggurat, w: u32) -> f64 {
    let mut rng = seq.rng(0);
    let (mut hz, mut iz) = split_word(w);
    loop {
        let x = f64::from(hz) * zig.w[iz];
        if iz == 0 {
            loop {
                let x = -open_unit(&mut rng).ln() / ZIG_R;
                let y = -open_unit(&mut rng).ln();
                if y + y >= x * x {
                    return if hz > 0 { ZIG_R + x } else { -ZIG_R - x };
                }
            }
        }
        let y = zig.f[iz] + open_unit(&mut rng) * (zig.f[iz - 1] - zig.f[iz]);
        if below_density(zig, iz, x, y) {
            return x;
        }
        (hz, iz) = split_word(rng.next_u32());
        if hz.unsigned_abs() < zig.k[iz] {
            return f64::from(hz) * zig.w[iz];
        }
    }
}

/// Relative margin of the squeeze in [`below_density`]: far above the rounding errors of the
/// bounds (≈ 1e-15) and of `exp` (< 1 ulp), and above the ≤ 4e-9 relative by which a wedge
/// draw may lie left of its strip's wedge (the accept bound `k` is truncated).
const SQUEEZE_MARGIN: f64 = 1e-6;

/// Whether `y < exp(−x²/2)` (`exp` of the f64 `−0.5·x·x`, as Marsaglia & Tsang's wedge test
/// computes it) for a draw `x` in the wedge of strip `iz ≥ 1`, `|x|` in `[x_{iz−1}, x_iz]`, and
/// `y` in `[f[iz], f[iz−1]]`. The density is convex for `|x| ≥ 1` and concave below, so on the
/// wedge it lies between the chord through the strip's corners and the tangents at them
/// (the tangents below where it is convex, above where it is concave). A `y` clearly below
/// the lower bound or above the upper one (by [`SQUEEZE_MARGIN`] relative) is decided
/// without `exp`; the rest, and the one strip that contains `x = 1`, compare with `exp`.
/// The same answer as the comparison with `exp` (tested), so the same draws.
#[inline(always)]
fn below_density(zig: &Ziggurat, iz: usize, x: f64, y: f64) -> bool {
    let ax = x.abs();
    let (a, b) = (zig.edge[iz - 1], zig.edge[iz]);
    let (fa, fb) = (zig.f[iz - 1], zig.f[iz]);
    let chord = fb + (fa - fb) * ((b - ax) / (b - a));
    // Tangents of exp(−t²/2) at t = a and t = b, evaluated at |x|.
    let (ta, tb) = (fa * (1.0 - a * (ax - a)), fb * (1.0 + b * (b - ax)));
    let (lo, hi) = if a >= 1.0 {
        (ta.max(tb), chord)
    } else if b <= 1.0 {
        (chord, ta.min(tb))
    } else {
        (fb, fa)
    };
    if y < lo * (1.0 - SQUEEZE_MARGIN) {
        return true;
    }
    if y > hi * (1.0 + SQUEEZE_MARGIN) {
        return false;
    }
    y < (-0.5 * x * x).exp()
}

/// A uniform draw in the open interval (0, 1) (53 bits plus half an ulp; never 0, so its
/// logarithm is finite).
fn open_unit(rng: &mut SplitMix) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / 9_007_199_254_740_992.0)
}

/// Chris Wellons' `lowbias32` integer hash (a bijection on u32; two multiplies).
#[inline(always)]
fn lowbias32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

/// Keys of 32-bit per-element draws for one counter (see [`Seq::keys32`]); the fourth key is
/// spare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys32 {
    k: [u32; 4],
}

impl Keys32 {
    /// The two 32-bit words at `index` (one per device of a pair): `w₀ = h(h(index ⊕ k₀) ⊕
    /// k₁)`, `w₁ = h(w₀ ⊕ k₂)` with `h` = `lowbias32` — six 32-bit multiplies, which vectorise.
    #[inline(always)]
    pub fn words(self, index: u32) -> (u32, u32) {
        let w0 = lowbias32(lowbias32(index ^ self.k[0]) ^ self.k[1]);
        (w0, lowbias32(w0 ^ self.k[2]))
    }
}

/// Maps a 32-bit word to `[0, 1)`.
#[inline(always)]
pub fn unit32(w: u32) -> f64 {
    f64::from(w) * (1.0 / 4_294_967_296.0)
}

/// The SplitMix64 generator (an [`RngCore`] for `rand_distr` samplers).
#[derive(Debug, Clone)]
pub struct SplitMix {
    state: u64,
}

impl SplitMix {
    /// The generator whose first output is `mix64(state + GAMMA)` (the reference SplitMix64
    /// seeded with `state`), for deterministic test data outside a keyed stream.
    pub fn new(state: u64) -> Self {
        SplitMix { state }
    }
}

impl RngCore for SplitMix {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix64(self.state)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let w = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Purpose;
    use rand::Rng;

    #[test]
    fn splitmix_matches_the_reference_generator() {
        // Vigna's splitmix64.c seeded with 0: the first three outputs.
        let mut r = SplitMix::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
        assert_eq!(mix64(GAMMA), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn words_are_pure_functions_of_key_counter_and_index() {
        let k = Keyed::of(&Stream::new(3, Purpose::Other(1), 0, 0));
        let s = k.at(7);
        let mut r = s.rng(10);
        for i in 10..20 {
            assert_eq!(r.next_u64(), s.word(i));
        }
        assert_eq!(k.at(7).word(5), s.word(5));
        assert_ne!(k.at(8).word(5), s.word(5));
        assert_ne!(s.derive(1).word(5), s.derive(2).word(5));
        let other = Keyed::of(&Stream::new(4, Purpose::Other(1), 0, 0));
        assert_ne!(other.at(7).word(5), s.word(5));
    }

    #[test]
    fn uniforms_and_normals_have_the_right_moments() {
        let s = Keyed::of(&Stream::new(1, Purpose::ReadNoise, 0, 0)).at(0);
        let n = 200_000;
        let nf = n as f64;
        let k = s.keys32();
        let (mut m0, mut m1, mut same) = (0.0, 0.0, 0usize);
        let (mut corr, mut below) = (0.0, 0usize);
        for i in 0..n as u32 {
            let (w0, w1) = k.words(i);
            let (a, b) = (unit32(w0), unit32(w1));
            m0 += a;
            m1 += b;
            corr += (a - 0.5) * (b - 0.5);
            same += usize::from(w0 == w1);
            below += usize::from(a < 0.01);
        }
        // P(u < 0.01) = 0.01, standard error 2.2e-4; 5 sigma.
        assert!((below as f64 / nf - 0.01).abs() < 1.1e-3, "{below}");
        // Correlation of the two words: standard error 1/sqrt(n) ≈ 2.2e-3; 5 sigma.
        assert!((corr / nf * 12.0).abs() < 0.011, "{}", corr / nf * 12.0);
        assert!((m0 / nf - 0.5).abs() < 3.3e-3, "{}", m0 / nf);
        assert!((m1 / nf - 0.5).abs() < 3.3e-3, "{}", m1 / nf);
        assert!(same < 3);
        let mut r = s.rng(0);
        let z: Vec<f64> = (0..n)
            .map(|_| r.sample(rand_distr::StandardNormal))
            .collect();
        let mean = z.iter().sum::<f64>() / nf;
        let var = z.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / nf;
        let tail = z.iter().filter(|x| x.abs() > 2.0).count() as f64 / nf;
        assert!(mean.abs() < 0.012, "{mean}");
        assert!((var - 1.0).abs() < 0.016, "{var}");
        assert!((tail - 0.0455).abs() < 0.0025, "{tail}");
    }

    #[test]
    fn fill_normals_is_a_pure_function_of_the_element() {
        let s = Keyed::of(&Stream::new(9, Purpose::ReadNoise, 1, 2)).at(5);
        let mut long = vec![0f32; 5000];
        s.fill_normals(&mut long);
        for n in [0, 1, 7, 16, 17, 1000, 4999] {
            let mut short = vec![0f32; n];
            s.fill_normals(&mut short);
            assert_eq!(short[..], long[..n]);
        }
        let mut other = vec![0f32; 5000];
        Keyed::of(&Stream::new(9, Purpose::ReadNoise, 1, 2))
            .at(6)
            .fill_normals(&mut other);
        assert!(long.iter().zip(&other).filter(|(a, b)| a == b).count() < 5);
        assert!(long.iter().all(|z| z.is_finite()));
    }

    #[test]
    fn vectorised_fast_path_equals_the_scalar_one() {
        let seq = Keyed::of(&Stream::new(2, Purpose::ReadNoise, 0, 0)).at(1);
        let mut a = vec![0f32; 10_007];
        let mut b = a.clone();
        seq.fill_normals(&mut a);
        normals_impl(seq, &ZIGGURAT, &mut b);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b));
        // The share of draws that leave the fast path (wedges and tail) is 1 − Σk/(S·2^31),
        // about 1.2 % for 256 strips.
        let n = 200_000;
        let p = 1.0
            - ZIGGURAT.k.iter().map(|&k| f64::from(k)).sum::<f64>()
                / (STRIPS as f64 * 2f64.powi(31));
        assert!((0.008..0.016).contains(&p), "{p}");
        let slow = (0..n)
            .filter(|&i| {
                let (hz, iz) = split_word(draw_word(seq, i));
                hz.unsigned_abs() >= ZIGGURAT.k[iz]
            })
            .count() as f64;
        let nf = n as f64;
        assert!(
            (slow - nf * p).abs() < 5.0 * (nf * p).sqrt(),
            "{slow} vs {}",
            nf * p
        );
    }

    /// The wedge and tail as before the squeeze: every wedge draw compared with `exp`.
    fn slow_normal_exp(seq: Seq, zig: &Ziggurat, w: u32) -> f64 {
        let mut rng = seq.rng(0);
        let (mut hz, mut iz) = split_word(w);
        loop {
            let x = f64::from(hz) * zig.w[iz];
            if iz == 0 {
                loop {
                    let x = -open_unit(&mut rng).ln() / ZIG_R;
                    let y = -open_unit(&mut rng).ln();
                    if y + y >= x * x {
                        return if hz > 0 { ZIG_R + x } else { -ZIG_R - x };
                    }
                }
            }
            if zig.f[iz] + open_unit(&mut rng) * (zig.f[iz - 1] - zig.f[iz]) < (-0.5 * x * x).exp()
            {
                return x;
            }
            (hz, iz) = split_word(rng.next_u32());
            if hz.unsigned_abs() < zig.k[iz] {
                return f64::from(hz) * zig.w[iz];
            }
        }
    }

    #[test]
    fn squeeze_decides_as_exp() {
        let zig = &*ZIGGURAT;
        let mut r = SplitMix::new(11);
        let (mut decided, mut total) = (0usize, 0usize);
        for iz in 1..STRIPS {
            let k = u64::from(zig.k[iz]);
            for j in 0..20_000 {
                // A wedge draw of strip iz: |hz| in [k, 2^31), either sign.
                let m = (k + r.next_u64() % ((1u64 << 31) - k)) as i64;
                let hz = if r.next_u32() & 1 == 0 { m } else { -m };
                let x = hz as f64 * zig.w[iz];
                let e = (-0.5 * x * x).exp();
                let y = if j % 4 == 0 {
                    // Near the density, where the margins matter.
                    let d = (open_unit(&mut r) - 0.5) * 1e-5;
                    (e * (1.0 + d)).clamp(zig.f[iz], zig.f[iz - 1])
                } else {
                    zig.f[iz] + open_unit(&mut r) * (zig.f[iz - 1] - zig.f[iz])
                };
                assert_eq!(
                    below_density(zig, iz, x, y),
                    y < e,
                    "strip {iz}, x {x}, y {y}"
                );
                let (a, b) = (zig.edge[iz - 1], zig.edge[iz]);
                if j % 4 != 0 && a >= 1.0 {
                    total += 1;
                    let ax = x.abs();
                    let (fa, fb) = (zig.f[iz - 1], zig.f[iz]);
                    let chord = fb + (fa - fb) * ((b - ax) / (b - a));
                    let tang = (fa * (1.0 - a * (ax - a))).max(fb * (1.0 + b * (b - ax)));
                    decided += usize::from(
                        y < tang * (1.0 - SQUEEZE_MARGIN) || y > chord * (1.0 + SQUEEZE_MARGIN),
                    );
                }
            }
        }
        // Most wedge draws of the convex strips never reach exp.
        assert!(decided as f64 > 0.9 * total as f64, "{decided} of {total}");
        println!("squeeze: {decided} of {total} convex wedge draws decided without exp");
    }

    #[test]
    fn fill_normals_equals_the_exp_wedge_test() {
        let zig = &*ZIGGURAT;
        for c in 0..40u64 {
            let seq = Keyed::of(&Stream::new(5, Purpose::ReadNoise, 0, 0)).at(c);
            let mut z = vec![0f32; 50_000];
            seq.fill_normals(&mut z);
            for (i, &v) in z.iter().enumerate() {
                let i = i as u64;
                let w = draw_word(seq, i);
                let (hz, iz) = split_word(w);
                let want = if hz.unsigned_abs() >= zig.k[iz] {
                    slow_normal_exp(seq.derive(i), zig, w) as f32
                } else {
                    hz as f32 * zig.w32[iz]
                };
                assert_eq!(v.to_bits(), want.to_bits(), "counter {c}, element {i}");
            }
        }
    }

    #[test]
    fn fill_normals_matches_the_normal_distribution() {
        let n = 1_000_000usize;
        let mut z = vec![0f32; n];
        // Several sequences, as the crossbar draws them (one per read).
        let k = Keyed::of(&Stream::new(4, Purpose::ReadNoise, 0, 0));
        for (c, chunk) in z.chunks_mut(1000).enumerate() {
            k.at(c as u64).fill_normals(chunk);
        }
        let nf = n as f64;
        let mean = z.iter().map(|&x| f64::from(x)).sum::<f64>() / nf;
        let m2 = z.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / nf;
        let m4 = z.iter().map(|&x| f64::from(x).powi(4)).sum::<f64>() / nf;
        // Standard errors: mean 1e-3, variance 1.4e-3, fourth moment 1e-2; 5 sigma.
        assert!(mean.abs() < 5e-3, "{mean}");
        assert!((m2 - 1.0).abs() < 7e-3, "{m2}");
        assert!((m4 - 3.0).abs() < 5e-2, "{m4}");
        // Bin counts against the normal CDF (tail bins exercise the wedge and tail paths):
        // P(|z| > t) for t = 1, 2, 3, 3.442 (the base strip's edge), 4.
        for (t, p) in [
            (1.0, 0.317_310_507_9),
            (2.0, 0.045_500_263_9),
            (3.0, 0.002_699_796_1),
            (3.442_619_855_899, 0.000_576_1),
            (ZIG_R, 0.000_258_1),
            (4.0, 0.000_063_342_5),
        ] {
            let c = z.iter().filter(|x| f64::from(x.abs()) > t).count() as f64;
            let sd = (nf * p * (1.0 - p)).sqrt();
            assert!(
                (c - nf * p).abs() < 5.0 * sd + 1.0,
                "P(|z|>{t}): {c} vs {}",
                nf * p
            );
        }
        // Symmetry: as many positive as negative draws.
        let pos = z.iter().filter(|&&x| x > 0.0).count() as f64;
        assert!((pos - nf / 2.0).abs() < 5.0 * (nf / 4.0).sqrt(), "{pos}");
    }
}
