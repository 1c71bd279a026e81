//! Random sources of the store's per-step draws: standard normals and uniforms from one keyed
//! generator per fixed block of devices ([`Stream::rng`]), created on first use so a block
//! that programs nothing draws nothing.

use nacsim_core::{ChaCha8Rng, Stream};
use nacsim_device::Normals;
use rand::RngCore;

/// Standard normals from one keyed generator, [`Stream::rng`]`(index)`, created on first use
/// (Box–Muller, both branches, 53-bit uniforms).
pub struct ChunkNormals<'a> {
    stream: &'a Stream,
    index: u64,
    rng: Option<ChaCha8Rng>,
    spare: Option<f64>,
}

impl<'a> ChunkNormals<'a> {
    /// The normals of generator `index` of `stream`.
    pub fn new(stream: &'a Stream, index: u64) -> Self {
        ChunkNormals {
            stream,
            index,
            rng: None,
            spare: None,
        }
    }
}

fn unit(w: u64) -> f64 {
    (w >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

impl Normals for ChunkNormals<'_> {
    fn next_normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let rng = self.rng.get_or_insert_with(|| self.stream.rng(self.index));
        let u1 = 1.0 - unit(rng.next_u64());
        let u2 = unit(rng.next_u64());
        let r = (-2.0 * u1.ln()).sqrt();
        let (sn, cs) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare = Some(r * sn);
        r * cs
    }
}

/// Uniforms in `[0, 1)` from one keyed generator, created on first use. (The store's own
/// rounding and coincidence uniforms now come from [`nacsim_core::keyed::Keys32`].)
pub struct ChunkUniforms<'a> {
    stream: &'a Stream,
    index: u64,
    rng: Option<ChaCha8Rng>,
}

impl<'a> ChunkUniforms<'a> {
    /// The uniforms of generator `index` of `stream`.
    pub fn new(stream: &'a Stream, index: u64) -> Self {
        ChunkUniforms {
            stream,
            index,
            rng: None,
        }
    }

    /// The next uniform.
    pub fn next_uniform(&mut self) -> f64 {
        let rng = self.rng.get_or_insert_with(|| self.stream.rng(self.index));
        unit(rng.next_u64())
    }
}
