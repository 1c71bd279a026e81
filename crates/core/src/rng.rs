//! Keyed, counter-based random streams: every draw is a pure function of
//! `(seed, purpose, layer, trial, index)`.
//!
//! Separate [`Purpose`]s keep effects apart (changing read noise never reshuffles
//! device-to-device variation), and because a draw depends only on its index, results are the
//! same for any thread count, chunking or sweep sharding (docs/architecture.md, *Determinism*).
//!
//! # Construction
//!
//! `(seed, purpose code, layer, trial)` is hashed with a chain of SplitMix64 finalizers
//! (Steele, Lea & Flood, OOPSLA 2014) into a 256-bit ChaCha8 key (Bernstein 2008, via
//! `rand_chacha`). Two key domains are derived from it:
//!
//! * [`Stream::rng`]`(index)` gives a full generator on ChaCha stream `index` of the *generator*
//!   key, for draws of variable length (shuffles, rejection samplers, `rand_distr`).
//! * The element-wise draws ([`Stream::uniform`], [`Stream::normal`], [`Stream::lognormal`] and
//!   the `fill_*` methods) use the *element* key: element `i` reads fixed words at position
//!   `i` of a stream per distribution, so `fill_normal_at(buf, start, ..)` over any chunking
//!   gives the same values as one `normal(i, ..)` per index, and the fills run at ChaCha speed.
//!
//! Normal draws use the Box–Muller transform on two 53-bit uniforms (`u1 ∈ (0, 1]`,
//! `u2 ∈ [0, 1)`), keeping the cosine branch: exact in distribution up to f64 rounding, with
//! `|z| ≤ sqrt(2·53·ln 2) ≈ 8.57`.

use crate::keyed::{GAMMA, mix64};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What a random stream is for. Each purpose has a stable numeric code mixed into the key.
///
/// **The codes must never change**: they make saved seeds reproduce old results. Add new
/// purposes with new codes; use [`Purpose::Other`] for experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Purpose {
    /// Initial weights of a layer (code 1).
    WeightInit,
    /// Data-set shuffling between epochs (code 2).
    Shuffle,
    /// Static device-to-device variation, drawn once at build (`…_d2d`, code 3).
    DeviceToDevice,
    /// Per-event cycle-to-cycle variation, e.g. per write pulse (`…_c2c`, code 4).
    CycleToCycle,
    /// Per-read noise (code 5).
    ReadNoise,
    /// Programming (write-verify) error (code 6).
    ProgrammingError,
    /// Stuck-at faults (code 7).
    StuckAt,
    /// Dropout masks (code 8).
    Dropout,
    /// Programming-voltage error of write pulses or drivers (code 9).
    ProgrammingVoltage,
    /// Conductance drift exponents (code 10).
    Drift,
    /// Training-data augmentation: per-image translation and flip draws (code 11).
    Augment,
    /// Any other purpose, code `2^32 + n`.
    Other(u32),
}

impl Purpose {
    /// The stable code mixed into the key.
    pub fn code(self) -> u64 {
        match self {
            Purpose::WeightInit => 1,
            Purpose::Shuffle => 2,
            Purpose::DeviceToDevice => 3,
            Purpose::CycleToCycle => 4,
            Purpose::ReadNoise => 5,
            Purpose::ProgrammingError => 6,
            Purpose::StuckAt => 7,
            Purpose::Dropout => 8,
            Purpose::ProgrammingVoltage => 9,
            Purpose::Drift => 10,
            Purpose::Augment => 11,
            Purpose::Other(n) => (1 << 32) + u64::from(n),
        }
    }
}

/// The identity of a stream: everything a draw depends on except its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RngKey {
    /// The run's seed (from the config's `seed`).
    pub seed: u64,
    /// What the draws are for.
    pub purpose: Purpose,
    /// Layer (or array, or unit) number.
    pub layer: u32,
    /// Monte Carlo trial number.
    pub trial: u32,
}

/// One SplitMix64 step from state `z`: the shared finalizer [`mix64`] of `z + GAMMA`.
fn splitmix64(z: u64) -> u64 {
    mix64(z.wrapping_add(GAMMA))
}

const DOMAIN_GENERATOR: u64 = 0x6765_6E65_7261_746F; // "generato"
const DOMAIN_ELEMENT: u64 = 0x656C_656D_656E_7473; // "elements"
/// ChaCha stream numbers of the element key, one per distribution.
const STREAM_UNIFORM: u64 = 0;
const STREAM_NORMAL: u64 = 1;

impl RngKey {
    /// The 256-bit ChaCha key for one domain.
    fn chacha_key(&self, domain: u64) -> [u8; 32] {
        let mut h = splitmix64(self.seed);
        h = splitmix64(h ^ self.purpose.code());
        h = splitmix64(h ^ (u64::from(self.layer) << 32 | u64::from(self.trial)));
        h = splitmix64(h ^ domain);
        let mut key = [0u8; 32];
        for chunk in key.chunks_exact_mut(8) {
            h = splitmix64(h);
            chunk.copy_from_slice(&h.to_le_bytes());
        }
        key
    }
}

/// A keyed family of random draws; cheap to clone, holds no mutable state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    key: RngKey,
    generator_key: [u8; 32],
    element_key: [u8; 32],
}

/// Maps the top 53 bits of a random word to `[0, 1)` (multiples of 2^-53).
#[inline]
pub fn unit_f64(w: u64) -> f64 {
    (w >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The radius `r = sqrt(−2 ln u1)` and angle `θ = 2π·u2` of Box–Muller (Box & Muller, "A note
/// on the generation of random normal deviates", Ann. Math. Stat. 29, 1958) from two raw
/// words, with `u1 = 1 − unit_f64(w1)` in `(0, 1]` (so the logarithm is finite) and
/// `u2 = unit_f64(w2)`.
#[inline]
fn box_muller_polar(w1: u64, w2: u64) -> (f64, f64) {
    let u1 = 1.0 - unit_f64(w1); // (0, 1]: ln is finite
    let u2 = unit_f64(w2);
    ((-2.0 * u1.ln()).sqrt(), std::f64::consts::TAU * u2)
}

/// One standard normal draw from two raw words: Box–Muller, cosine branch, `r·cos θ` (see
/// [`box_muller_pair`] for both branches). The one Box–Muller of the workspace: [`Stream`]'s
/// normals and the device crate's cycle-to-cycle noise draw through it.
#[inline]
pub fn box_muller(w1: u64, w2: u64) -> f64 {
    let (r, theta) = box_muller_polar(w1, w2);
    r * theta.cos()
}

/// Two independent standard normal draws from two raw words: Box–Muller, both branches,
/// `(r·cos θ, r·sin θ)`. The first equals [`box_muller`]`(w1, w2)` bit for bit.
#[inline]
pub fn box_muller_pair(w1: u64, w2: u64) -> (f64, f64) {
    let (r, theta) = box_muller_polar(w1, w2);
    let (sin, cos) = theta.sin_cos();
    (r * cos, r * sin)
}

impl Stream {
    /// The stream for `(seed, purpose, layer, trial)`.
    pub fn new(seed: u64, purpose: Purpose, layer: u32, trial: u32) -> Self {
        Self::from_key(RngKey {
            seed,
            purpose,
            layer,
            trial,
        })
    }

    /// The stream for `key`.
    pub fn from_key(key: RngKey) -> Self {
        Stream {
            key,
            generator_key: key.chacha_key(DOMAIN_GENERATOR),
            element_key: key.chacha_key(DOMAIN_ELEMENT),
        }
    }

    /// The key this stream was built from.
    pub fn key(&self) -> RngKey {
        self.key
    }

    /// An independent generator for `index` (ChaCha stream `index`), for draws of variable
    /// length; it starts at word 0 each time it is requested.
    pub fn rng(&self, index: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(self.generator_key);
        rng.set_stream(index);
        rng
    }

    /// Element generator positioned at element `start` of a distribution stream.
    fn elements(&self, stream: u64, start: u64, words_per_element: u128) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(self.element_key);
        rng.set_stream(stream);
        rng.set_word_pos(u128::from(start) * words_per_element);
        rng
    }

    /// Uniform draw in `[0, 1)` (53-bit resolution) for `index`.
    pub fn uniform(&self, index: u64) -> f64 {
        unit_f64(self.elements(STREAM_UNIFORM, index, 2).next_u64())
    }

    /// Normal draw `mean + std·z` for `index`, `z ~ N(0, 1)`.
    ///
    /// `std` should be finite and ≥ 0 (a negative `std` gives the same distribution).
    pub fn normal(&self, index: u64, mean: f64, std: f64) -> f64 {
        let mut rng = self.elements(STREAM_NORMAL, index, 4);
        mean + std * box_muller(rng.next_u64(), rng.next_u64())
    }

    /// Log-normal draw `exp(mu + sigma·z)` for `index`, with the same `z` as
    /// [`normal`](Self::normal) at that index (so use distinct purposes for independent effects).
    pub fn lognormal(&self, index: u64, mu: f64, sigma: f64) -> f64 {
        self.normal(index, mu, sigma).exp()
    }

    /// Fills `out[i]` with `normal(i, mean, std)` (rounded to f32).
    pub fn fill_normal(&self, out: &mut [f32], mean: f64, std: f64) {
        self.fill_normal_at(out, 0, mean, std);
    }

    /// Fills `out[i]` with `normal(start + i, mean, std)`, for filling one chunk of a larger
    /// buffer; any chunking gives the same values.
    pub fn fill_normal_at(&self, out: &mut [f32], start: u64, mean: f64, std: f64) {
        let mut rng = self.elements(STREAM_NORMAL, start, 4);
        for x in out {
            let z = box_muller(rng.next_u64(), rng.next_u64());
            *x = (mean + std * z) as f32;
        }
    }

    /// Fills `out[i]` with `uniform(start + i)`.
    pub fn fill_uniform_at(&self, out: &mut [f64], start: u64) {
        let mut rng = self.elements(STREAM_UNIFORM, start, 2);
        for x in out {
            *x = unit_f64(rng.next_u64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn s() -> Stream {
        Stream::new(42, Purpose::DeviceToDevice, 3, 7)
    }

    #[test]
    fn same_key_same_numbers() {
        assert_eq!(s().normal(5, 0.0, 1.0), s().normal(5, 0.0, 1.0));
        assert_eq!(s().uniform(9), s().uniform(9));
        let a: Vec<u64> = (0..4).map(|_| s().rng(2).next_u64()).collect();
        assert!(a.iter().all(|&x| x == a[0]));
        let mut r1 = s().rng(2);
        let mut r2 = s().rng(2);
        assert_eq!(r1.random::<u64>(), r2.random::<u64>());
    }

    #[test]
    fn every_key_part_and_index_changes_the_draw() {
        let base = s().normal(5, 0.0, 1.0);
        let variants = [
            Stream::new(43, Purpose::DeviceToDevice, 3, 7),
            Stream::new(42, Purpose::ReadNoise, 3, 7),
            Stream::new(42, Purpose::Other(3), 3, 7),
            Stream::new(42, Purpose::DeviceToDevice, 4, 7),
            Stream::new(42, Purpose::DeviceToDevice, 3, 8),
            // Swapping layer and trial must not collide.
            Stream::new(42, Purpose::DeviceToDevice, 7, 3),
        ];
        for v in &variants {
            assert_ne!(v.normal(5, 0.0, 1.0), base, "{:?}", v.key());
        }
        assert_ne!(s().normal(6, 0.0, 1.0), base);
        assert_ne!(s().rng(0).next_u64(), s().rng(1).next_u64());
        // Generator and element domains are independent.
        assert_ne!(
            s().rng(0).next_u64(),
            s().elements(STREAM_UNIFORM, 0, 2).next_u64()
        );
    }

    #[test]
    fn fill_is_independent_of_chunking() {
        let mut whole = vec![0f32; 1000];
        s().fill_normal(&mut whole, 1.0, 0.5);
        let mut chunked = vec![0f32; 1000];
        for (k, chunk) in chunked.chunks_mut(37).enumerate() {
            s().fill_normal_at(chunk, (k * 37) as u64, 1.0, 0.5);
        }
        assert_eq!(whole, chunked);
        for i in [0usize, 1, 36, 37, 999] {
            assert_eq!(whole[i], s().normal(i as u64, 1.0, 0.5) as f32);
        }
        let mut u = vec![0f64; 100];
        s().fill_uniform_at(&mut u, 50);
        assert_eq!(u[3], s().uniform(53));
    }

    #[test]
    fn normal_moments_match() {
        let n = 100_000;
        let mut v = vec![0f32; n];
        s().fill_normal(&mut v, 2.0, 3.0);
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        // Standard errors: 3/sqrt(n) ~ 0.0095 for the mean, ~0.0067 for the std.
        assert!((mean - 2.0).abs() < 0.05, "mean {mean}");
        assert!((var.sqrt() - 3.0).abs() < 0.04, "std {}", var.sqrt());
        let mut u = vec![0f64; n];
        s().fill_uniform_at(&mut u, 0);
        let um = u.iter().sum::<f64>() / n as f64;
        assert!((um - 0.5).abs() < 0.01 && u.iter().all(|&x| (0.0..1.0).contains(&x)));
    }

    #[test]
    fn lognormal_is_exp_of_normal() {
        let x = s().lognormal(11, 0.1, 0.2);
        assert!((x.ln() - s().normal(11, 0.1, 0.2)).abs() < 1e-12);
    }

    #[test]
    fn purpose_codes_are_stable() {
        let codes: Vec<u64> = [
            Purpose::WeightInit,
            Purpose::Shuffle,
            Purpose::DeviceToDevice,
            Purpose::CycleToCycle,
            Purpose::ReadNoise,
            Purpose::ProgrammingError,
            Purpose::StuckAt,
            Purpose::Dropout,
            Purpose::ProgrammingVoltage,
            Purpose::Drift,
            Purpose::Augment,
        ]
        .iter()
        .map(|p| p.code())
        .collect();
        assert_eq!(codes, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(Purpose::Other(0).code(), 1 << 32);
    }

    #[test]
    fn golden_values_never_change() {
        // Pinned outputs: if this fails, saved seeds no longer reproduce old results.
        let s = Stream::new(1, Purpose::WeightInit, 0, 0);
        assert_eq!(s.uniform(0), 0.697_045_503_825_861_3);
        assert_eq!(s.rng(0).next_u64(), 12_596_358_115_198_319_018);
        // ln and cos may differ in the last bit between libm builds.
        assert!((s.normal(0, 0.0, 1.0) - -0.120_889_536_100_596_27).abs() < 1e-12);
    }

    #[test]
    fn box_muller_pair_extends_the_cosine_branch() {
        let mut r = s().rng(3);
        for _ in 0..1000 {
            let (w1, w2) = (r.next_u64(), r.next_u64());
            let (c, sn) = box_muller_pair(w1, w2);
            assert_eq!(c.to_bits(), box_muller(w1, w2).to_bits());
            // Same radius: c² + s² = −2 ln u1.
            let u1 = 1.0 - unit_f64(w1);
            assert!((c * c + sn * sn + 2.0 * u1.ln()).abs() < 1e-12 * (1.0 - 2.0 * u1.ln()));
        }
        // u1 = 1 (w1 = 0) is radius 0; w1 = u64::MAX is the largest radius, still finite.
        assert_eq!(box_muller(0, 12345), 0.0);
        assert!(box_muller(u64::MAX, 0).is_finite());
    }

    proptest::proptest! {
        #[test]
        fn fill_matches_pointwise_for_any_chunking(
            seed: u64, start in 0u64..1 << 40, len in 0usize..200, cut in 0usize..200,
        ) {
            let s = Stream::new(seed, Purpose::ReadNoise, 0, 0);
            let mut whole = vec![0f32; len];
            s.fill_normal_at(&mut whole, start, 0.0, 1.0);
            let cut = cut.min(len);
            let mut parts = vec![0f32; len];
            let (a, b) = parts.split_at_mut(cut);
            s.fill_normal_at(b, start + cut as u64, 0.0, 1.0);
            s.fill_normal_at(a, start, 0.0, 1.0);
            proptest::prop_assert_eq!(&whole, &parts);
            if let Some(&last) = whole.last() {
                let i = start + len as u64 - 1;
                proptest::prop_assert_eq!(last, s.normal(i, 0.0, 1.0) as f32);
            }
        }
    }
}
