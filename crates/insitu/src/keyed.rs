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
//! Statistical quality: SplitMix64 passes BigCrush as a sequence; the 32-bit hash is checked
//! here for mean, tail frequency and pair correlation. Both are used for stochastic rounding,
//! coincidence draws and read noise, not for cryptography.

use nacsim_core::Stream;
use rand::RngCore;

/// SplitMix64's increment (the golden ratio in 64-bit fixed point).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64 finalizer (a bijection on u64).
#[inline(always)]
fn mix(mut z: u64) -> u64 {
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
        Seq(mix(self.0 ^ mix(counter.wrapping_add(GAMMA))))
    }
}

/// The draws of one counter of a [`Keyed`] key, addressed by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seq(u64);

impl Seq {
    /// The 64-bit word at `index`.
    #[inline(always)]
    pub fn word(self, index: u64) -> u64 {
        mix(self
            .0
            .wrapping_add(index.wrapping_add(1).wrapping_mul(GAMMA)))
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
        Seq(mix(
            self.0 ^ mix(sub.wrapping_add(GAMMA).wrapping_mul(GAMMA))
        ))
    }
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

impl RngCore for SplitMix {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
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
    use nacsim_core::Purpose;
    use rand::Rng;

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
}
