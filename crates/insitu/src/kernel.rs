//! The forward non-idealities of a crossbar during training, as a product kernel.
//!
//! The periphery model is the crossbar crate's
//! [`TrainingPeriphery`](nacsim_crossbar::periphery::TrainingPeriphery) (after aihwkit's analog
//! forward with noise management `AbsMax`, note §4.1); this kernel applies it around the float
//! product and draws the read noise. Per sample, inputs are scaled by their largest magnitude
//! `a = max|x|`;
//!
//! 1. DAC: inputs are rounded to `2^dac_bits − 1` steps of `a` (optional);
//! 2. MVM: `y = x·Wᵀ` with the store's effective weights (the conductances);
//! 3. read noise: `y += σ·w_max·a·ξ`, output-referred (aihwkit `out_noise`);
//! 4. ADC: `y` is clipped to `±adc_bound·w_max·a` and rounded to `2^adc_bits` levels over that
//!    range (optional).
//!
//! The backward products are digital (float), as in-situ training with a digital periphery
//! computes the errors; the gradient passes straight through the ADC.
//!
//! Randomness: read noise from `(seed, ReadNoise, layer, 0)` through a keyed counter-based
//! generator ([`nacsim_core::keyed`]): sample row `n` of call `call` (`call` counts this layer's
//! forward products; the loop calls them in a fixed order) draws its outputs' normals in order
//! from its own sequence `(call, n)` by the ziggurat method (`rand_distr::StandardNormal`, its
//! fast test run on 16 words at a time, bit for bit), so the noise is the same for any thread
//! count and costs about 3 ns per output.

use std::sync::atomic::{AtomicU64, Ordering};

use multiversion::multiversion;
use nacsim_core::{Purpose, Stream};
use nacsim_nn::forward::par_matmul;
use nacsim_nn::train::ProductKernel;
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1, Axis};
use std::sync::LazyLock;

use nacsim_core::keyed::{Seq, SplitMix};
use rand::{Rng, RngCore};
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::config::Periphery;
use nacsim_core::keyed::Keyed;

/// A float kernel with DAC, read noise and ADC on the forward product.
#[derive(Debug)]
pub struct CrossbarKernel {
    periphery: Periphery,
    w_max: f64,
    seed: u64,
    calls: Vec<AtomicU64>,
    keys: Vec<Keyed>,
}

impl CrossbarKernel {
    /// A kernel for a network of `layers` layers.
    pub fn new(periphery: Periphery, w_max: f64, seed: u64, layers: usize) -> Self {
        CrossbarKernel {
            periphery,
            w_max,
            seed,
            calls: (0..layers).map(|_| AtomicU64::new(0)).collect(),
            keys: (0..layers)
                .map(|l| Keyed::of(&Stream::new(seed, Purpose::ReadNoise, l as u32, 0)))
                .collect(),
        }
    }

    /// True when the forward product equals the float one.
    pub fn is_ideal(&self) -> bool {
        self.periphery.is_ideal()
    }
}

/// Outputs of a forward product below which its periphery (read noise, ADC) runs on the calling
/// thread instead of as parallel tasks.
const PERIPHERY_PAR_MIN: usize = 4096;

/// The largest magnitude of each sample row ([`absmax`]).
fn row_absmax(x: ArrayView2<f32>) -> Vec<f32> {
    x.axis_iter(Axis(0)).map(absmax).collect()
}

/// The largest magnitude of a sample row, `max(0, |x|…)` (NaN ignored, as `f32::max` does).
fn absmax(r: ArrayView1<f32>) -> f32 {
    match r.as_slice() {
        Some(r) => absmax_dispatch(r),
        None => r.iter().fold(0.0f32, |m, v| m.max(v.abs())),
    }
}

/// `max(0, |x|…)` of a slice in 16 lane-wise maxima folded at the end, compiled for AVX-512,
/// AVX2 and the baseline: the same value as a left fold, because `f32::max` of magnitudes is
/// associative and commutative (no −0 after `abs`, NaN ignored either way).
#[multiversion(targets("x86_64+avx2+avx512f+avx512bw+avx512vl+avx512dq", "x86_64+avx2"))]
fn absmax_dispatch(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut it = x.chunks_exact(16);
    for c in &mut it {
        for (m, v) in lanes.iter_mut().zip(c) {
            *m = m.max(v.abs());
        }
    }
    let tail = it.remainder().iter().fold(0.0f32, |m, v| m.max(v.abs()));
    lanes.into_iter().fold(tail, f32::max)
}

/// `rand_distr`'s 256-strip standard-normal ziggurat (Marsaglia & Tsang's layout as
/// `rand_distr` 0.5 implements it for `StandardNormal`): `x[i]` the strip's width (the sample
/// is `u·x[i]`, `u` in `[−1, 1)`), `lim[i] = x[i + 1]` its fast-accept bound (0 for the last
/// strip, which always takes the slow path).
struct Zig {
    x: [f64; 256],
    lim: [f64; 256],
}

/// The table, read out of `rand_distr` itself at first use, so it is the one `StandardNormal`
/// samples with: a generator whose one word is strip `i` with `u = 2^−51` makes the sampler
/// return `2^−51·x[i]` exactly (accepted at once, far below `x[i + 1]`; the last strip, whose
/// fast bound is 0, accepts it in its wedge test, the density at `2^−51·x[i]` being 1).
static ZIG: LazyLock<Zig> = LazyLock::new(|| {
    struct Word(u64);
    impl RngCore for Word {
        fn next_u32(&mut self) -> u32 {
            self.0 as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            for (d, b) in dst.iter_mut().zip(self.0.to_le_bytes().iter().cycle()) {
                *d = *b;
            }
        }
    }
    let mut x = [0.0f64; 256];
    for (i, v) in x.iter_mut().enumerate() {
        let z: f64 = Word(((1u64 << 51 | 1) << 12) | i as u64).sample(StandardNormal);
        *v = z * 2f64.powi(51);
    }
    let mut lim = [0.0f64; 256];
    lim[..255].copy_from_slice(&x[1..]);
    Zig { x, lim }
});

/// Counts the words a sampler takes from a [`SplitMix`] (its `next_u32` takes one too).
struct Counting {
    rng: SplitMix,
    words: u64,
}

impl RngCore for Counting {
    fn next_u32(&mut self) -> u32 {
        self.words += 1;
        self.rng.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.words += 1;
        self.rng.next_u64()
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.words += dst.len().div_ceil(8) as u64;
        self.rng.fill_bytes(dst);
    }
}

/// Adds `s·z` to every element of `row`, `z` the standard normals that `rand_distr`'s
/// `StandardNormal` draws one after another from `rs.rng(0)` — bit for bit (tested), but the
/// common case vectorised: word `k` of that generator is `rs.word(k)`, so the ziggurat's fast
/// test runs on 16 words at once; the first rejected word (about one in a hundred) goes to
/// `StandardNormal` itself on a generator started at that word, and the next block starts after
/// the words it took.
#[multiversion(targets("x86_64+avx2+avx512f+avx512bw+avx512vl+avx512dq", "x86_64+avx2"))]
fn noise_dispatch(rs: Seq, s: f32, row: &mut [f32], zig: &Zig) {
    const L: usize = 16;
    let mut p = 0;
    let mut w = 0u64;
    while p < row.len() {
        let n = (row.len() - p).min(L);
        let mut xs = [0.0f64; L];
        let mut reject = 0u32;
        for (j, x) in xs.iter_mut().enumerate() {
            let bits = rs.word(w + j as u64);
            let i = (bits & 0xff) as usize;
            // `rand_distr`: the high 52 bits as a float in [2, 4), minus 3.
            let u = f64::from_bits((bits >> 12) | 0x4000_0000_0000_0000) - 3.0;
            *x = u * zig.x[i];
            reject |= u32::from(x.abs() >= zig.lim[i]) << j;
        }
        reject &= (1u32 << n) - 1;
        let good = if reject == 0 {
            n
        } else {
            reject.trailing_zeros() as usize
        };
        if good == L {
            // The common case at a fixed length, so it is vectorised too.
            for (v, &x) in row[p..p + L].iter_mut().zip(&xs) {
                *v += s * x as f32;
            }
        } else {
            for (v, &x) in row[p..p + good].iter_mut().zip(&xs) {
                *v += s * x as f32;
            }
        }
        p += good;
        w += good as u64;
        if good < n {
            let mut rng = Counting {
                rng: rs.rng(w),
                words: 0,
            };
            let z: f64 = rng.sample(StandardNormal);
            row[p] += s * z as f32;
            p += 1;
            w += rng.words;
        }
    }
}

/// The ADC of one sample's outputs, bit for bit
/// [`TrainingPeriphery::adc_row`](nacsim_crossbar::periphery::TrainingPeriphery::adc_row) (the
/// same clip, division, rounding half away from zero, product and clip), in a loop the compiler
/// vectorises: `f32::round` has an exact vector lowering on SSE4.1 and later, which the AVX2 and
/// AVX-512 builds of [`adc_dispatch`] use (the crossbar crate's scalar `round_half_away` exists
/// for the baseline target, where `round` is a libm call). Tested against `adc_row`.
fn adc_row(p: &Periphery, row: &mut [f32], full: f32) {
    if p.adc_bits > 0 && full > 0.0 {
        let levels = (1u64 << p.adc_bits) as f32;
        let top = p.adc_bound as f32 * full;
        let step = 2.0 * top / levels;
        adc_dispatch(row, top, step);
    }
}

/// The loop of [`adc_row`], compiled for AVX-512, AVX2 and the baseline and picked at run time.
#[multiversion(targets("x86_64+avx2+avx512f+avx512bw+avx512vl+avx512dq", "x86_64+avx2"))]
fn adc_dispatch(row: &mut [f32], top: f32, step: f32) {
    for v in row {
        *v = ((v.clamp(-top, top) / step).round() * step).clamp(-top, top);
    }
}

impl ProductKernel for CrossbarKernel {
    fn forward(&self, layer: usize, x: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32> {
        if self.is_ideal() {
            return par_matmul(x, w.t());
        }
        let p = &self.periphery;
        // With a DAC the magnitudes scale the inputs before the product; without one they are
        // taken row by row in the parallel loop below.
        let amax = (p.dac_bits > 0).then(|| row_absmax(x));
        let mut y = match &amax {
            Some(amax) => {
                let mut xq = x.to_owned();
                for (r, &a) in xq.axis_iter_mut(Axis(0)).zip(amax) {
                    p.dac_row(r, a);
                }
                par_matmul(xq.view(), w.t())
            }
            None => par_matmul(x, w.t()),
        };
        let call = self
            .calls
            .get(layer)
            .map_or(0, |c| c.fetch_add(1, Ordering::Relaxed));
        let seq = match self.keys.get(layer) {
            Some(k) => k.at(call),
            None => {
                Keyed::of(&Stream::new(self.seed, Purpose::ReadNoise, layer as u32, 0)).at(call)
            }
        };
        let noisy = p.read_noise_sigma > 0.0;
        let wm = self.w_max as f32;
        let periphery = |n: usize, mut row: ArrayViewMut1<f32>| {
            let a = match &amax {
                Some(amax) => amax[n],
                None => absmax(x.row(n)),
            };
            let full = wm * a;
            if noisy {
                let rs = seq.derive(n as u64);
                let s = p.read_noise_scale(full);
                match row.as_slice_mut() {
                    Some(r) => noise_dispatch(rs, s, r, &ZIG),
                    None => {
                        let mut rng = rs.rng(0);
                        for v in row.iter_mut() {
                            let z: f64 = rng.sample(StandardNormal);
                            *v += s * z as f32;
                        }
                    }
                }
            }
            match row.as_slice_mut() {
                Some(r) => adc_row(p, r, full),
                None => p.adc_row(row, full),
            }
        };
        // Each row draws from its own keyed sequence, so the order of rows does not matter: a
        // small product's rows (the 10-output layer: ~2 µs of work) run here rather than as
        // parallel tasks.
        if y.len() < PERIPHERY_PAR_MIN {
            for (n, row) in y.axis_iter_mut(Axis(0)).enumerate() {
                periphery(n, row);
            }
        } else {
            y.axis_iter_mut(Axis(0))
                .into_par_iter()
                .enumerate()
                .with_min_len(16)
                .for_each(|(n, row)| periphery(n, row));
        }
        y
    }

    fn backward_input(&self, layer: usize, dy: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32> {
        // The backward pass is digital: the float plug's products.
        nacsim_nn::forward::FloatKernel.backward_input(layer, dy, w)
    }

    fn weight_grad(&self, layer: usize, dy: ArrayView2<f32>, x: ArrayView2<f32>) -> Array2<f32> {
        nacsim_nn::forward::FloatKernel.weight_grad(layer, dy, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn xw() -> (Array2<f32>, Array2<f32>) {
        let x = Array2::from_shape_fn((3, 5), |(i, j)| ((i * 5 + j) as f32 * 0.37).sin().abs());
        let w = Array2::from_shape_fn((4, 5), |(i, j)| ((i * 7 + j) as f32 * 0.91).cos() * 0.5);
        (x, w)
    }

    #[test]
    fn ideal_periphery_is_the_float_product_and_adc_lands_on_its_grid() {
        let (x, w) = xw();
        let float = par_matmul(x.view(), w.t());
        let k = CrossbarKernel::new(Periphery::default(), 1.0, 1, 1);
        assert!(k.is_ideal());
        assert_eq!(k.forward(0, x.view(), w.view()), float);
        let p = Periphery {
            adc_bits: 4,
            adc_bound: 2.0,
            ..Periphery::default()
        };
        let y = CrossbarKernel::new(p, 1.0, 1, 1).forward(0, x.view(), w.view());
        for (n, row) in y.rows().into_iter().enumerate() {
            let a = x.row(n).iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let step = 2.0 * 2.0 * a / 16.0;
            for (&v, &f) in row.iter().zip(float.row(n)) {
                let q = v / step;
                assert!(
                    (q - q.round()).abs() < 1e-4,
                    "{v} not on the grid of {step}"
                );
                assert!((v - f).abs() <= 0.5 * step + 1e-6 || f.abs() > 2.0 * a);
            }
        }
    }

    #[test]
    fn vector_ziggurat_draws_what_standard_normal_draws() {
        let key = Keyed::of(&Stream::new(3, Purpose::ReadNoise, 1, 0));
        let mut slow = 0;
        for row in 0..400u64 {
            let rs = key.at(row % 7).derive(row);
            let len = (row as usize * 37) % 700;
            let base: Vec<f32> = (0..len).map(|i| i as f32 * 0.01).collect();
            let mut want = base.clone();
            let mut rng = rs.rng(0);
            for v in &mut want {
                let z: f64 = rng.sample(StandardNormal);
                slow += usize::from(z.abs() > ZIG.x[1] * 0.9);
                *v += 0.3 * z as f32;
            }
            let mut got = base;
            noise_dispatch(rs, 0.3, &mut got, &ZIG);
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "row {row}"
            );
        }
        assert!(slow > 10, "the tail (slow path) was exercised: {slow}");
        // Strips narrow towards the mode; the last one's fast bound is 0.
        assert!(ZIG.x.windows(2).all(|w| w[0] > w[1] && w[1] > 0.0));
        assert!(ZIG.lim[254] == ZIG.x[255] && ZIG.lim[255] == 0.0);
    }

    #[test]
    fn vector_absmax_is_the_left_fold() {
        use rand::RngCore;
        let mut rng = nacsim_core::keyed::SplitMix::new(11);
        for len in [0usize, 1, 15, 16, 17, 31, 300, 784, 1000] {
            for kind in 0..4 {
                let x: Vec<f32> = (0..len)
                    .map(|i| match (kind, i % 7) {
                        (1, 3) => f32::NAN,
                        (2, _) => -0.0,
                        (3, 5) => f32::NEG_INFINITY,
                        _ => f32::from_bits(rng.next_u32() & 0xBFFF_FFFF),
                    })
                    .collect();
                let want = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert_eq!(
                    absmax_dispatch(&x).to_bits(),
                    want.to_bits(),
                    "{len}, {kind}"
                );
            }
        }
    }

    #[test]
    fn vector_adc_is_the_periphery_adc_bit_for_bit() {
        use rand::RngCore;
        let mut rng = nacsim_core::keyed::SplitMix::new(7);
        for bits in [1u32, 4, 8, 12] {
            let p = Periphery {
                adc_bits: bits,
                adc_bound: 1.5,
                ..Periphery::default()
            };
            for full in [1e-3f32, 0.37, 1.0, 3.3] {
                // Values around the grid's half steps, the rails, signed zeros and beyond.
                let step = 2.0 * 1.5 * full / (1u64 << bits) as f32;
                let mut x: Vec<f32> = (0..4000)
                    .map(|i| {
                        let u = (rng.next_u64() >> 40) as f32 / 16_777_216.0;
                        match i % 4 {
                            0 => (u - 0.5) * 5.0 * full,
                            1 => ((i / 4) as f32 - 500.0 + 0.5) * step * 0.25,
                            2 => f32::from_bits(rng.next_u32()),
                            _ => ((i as f32) * 0.5 - 1000.0) * step,
                        }
                    })
                    .collect();
                x.extend([0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30]);
                let mut want = x.clone();
                p.adc_row(want.iter_mut(), full);
                adc_row(&p, &mut x, full);
                for (a, b) in x.iter().zip(&want) {
                    assert!(
                        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                        "{bits} bits, full {full}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn read_noise_is_keyed_by_call_and_scales_with_sigma() {
        let (x, w) = xw();
        let float = par_matmul(x.view(), w.t());
        let p = |s: f64| Periphery {
            read_noise_sigma: s,
            ..Periphery::default()
        };
        let k = CrossbarKernel::new(p(0.1), 1.0, 7, 2);
        let first = k.forward(1, x.view(), w.view());
        let second = k.forward(1, x.view(), w.view());
        assert_ne!(first, second, "a fresh draw per call");
        let again = CrossbarKernel::new(p(0.1), 1.0, 7, 2).forward(1, x.view(), w.view());
        assert_eq!(first, again, "same seed, same call index, same noise");
        let double = CrossbarKernel::new(p(0.2), 1.0, 7, 2).forward(1, x.view(), w.view());
        for ((a, b), f) in first.iter().zip(&double).zip(&float) {
            assert!(((b - f) - 2.0 * (a - f)).abs() < 1e-5, "noise ∝ σ");
        }
    }
}
