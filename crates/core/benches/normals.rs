//! Simulator speed of the bulk standard-normal samplers: [`Seq::fill_normals`] (the keyed
//! ziggurat the crossbar's read noise draws from, compiled for AVX-512/AVX2/baseline and chosen
//! at run time) beside [`Stream::fill_normal`] (ChaCha8 Box–Muller, the reference sampler).
//! Throughput is in draws.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nacsim_core::keyed::Keyed;
use nacsim_core::{Purpose, Stream};

/// Draws per call: one 784 × 256 layer's read-noise block.
const N: usize = 784 * 256;

fn normals(c: &mut Criterion) {
    let stream = Stream::new(1, Purpose::ReadNoise, 0, 0);
    let key = Keyed::of(&stream);
    let mut out = vec![0f32; N];
    let mut g = c.benchmark_group("normals");
    g.throughput(Throughput::Elements(N as u64));
    let mut counter = 0u64;
    g.bench_function("keyed_ziggurat", |b| {
        b.iter(|| {
            counter += 1;
            key.at(counter).fill_normals(black_box(&mut out));
        });
    });
    g.bench_function("chacha_box_muller", |b| {
        b.iter(|| stream.fill_normal(black_box(&mut out), 0.0, 1.0));
    });
    g.finish();
}

criterion_group!(benches, normals);
criterion_main!(benches);
