//! Random sources of the store's per-step draws: standard normals and uniforms from one keyed
//! generator per fixed block of devices ([`Stream::rng`]), created on first use so a block
//! that programs nothing draws nothing.

use nacsim_core::{ChaCha8Rng, Stream};
use nacsim_device::Normals;
use rand::RngCore;

/// Standard normals from one keyed generator, [`Stream::rng`]`(index)`, created on first use
/// (core's one Box–Muller, [`nacsim_core::rng::box_muller_pair`], both branches).
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

impl Normals for ChunkNormals<'_> {
    fn next_normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let rng = self.rng.get_or_insert_with(|| self.stream.rng(self.index));
        let (w1, w2) = (rng.next_u64(), rng.next_u64());
        let (z0, z1) = nacsim_core::rng::box_muller_pair(w1, w2);
        self.spare = Some(z1);
        z0
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
        nacsim_core::rng::unit_f64(rng.next_u64())
    }
}
