//! Simulator speed of the int8 array: the fast GEMM against the plain reference and a float
//! ndarray `dot` of the same shape, and the analytic timing against the cycle-stepped model.
//!
//! Shapes follow the Fashion-MNIST MLP's first layer: FC 784 → 256 at batch 1000 for the GEMMs,
//! and at batch 64 on a 32×32 WS array for timing (SCALE-Sim's reference point).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nacsim_core::{NullSink, TraceSink, VcdSink};
use nacsim_systolic::{Dataflow, SystolicConfig, analytic, gemm_fast, gemm_ref, run_stepped};
use ndarray::Array2;

fn int8(rows: usize, cols: usize, seed: u64) -> Array2<i8> {
    Array2::from_shape_fn((rows, cols), |(r, c)| {
        let h = ((r * 7919 + c * 104_729) as u64 ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 56) as u8 as i8
    })
}

fn gemm(c: &mut Criterion) {
    let (m, k, n) = (1000, 784, 256);
    let x = int8(m, k, 1);
    let w = int8(n, k, 2);
    let xf = x.mapv(f32::from);
    let wt = w.t().mapv(f32::from);
    let mut g = c.benchmark_group("gemm_1000x784x256");
    g.throughput(Throughput::Elements((m * k * n) as u64));
    g.sample_size(10);
    g.bench_function("gemm_fast", |b| {
        b.iter(|| gemm_fast(black_box(x.view()), w.view()))
    });
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    g.bench_function("gemm_fast_1_thread", |b| {
        b.iter(|| one.install(|| gemm_fast(black_box(x.view()), w.view())))
    });
    g.bench_function("f32_ndarray_dot", |b| b.iter(|| black_box(&xf).dot(&wt)));
    g.bench_function("gemm_ref", |b| {
        b.iter(|| gemm_ref(black_box(x.view()), w.view()))
    });
    g.finish();
}

fn timing(c: &mut Criterion) {
    let cfg = SystolicConfig::new(32, 32, Dataflow::WeightStationary);
    let (m, k, n) = (64, 784, 256);
    let x = int8(m, k, 3);
    let w = int8(n, k, 4);
    let cycles = analytic(&cfg, m, k, n).cycles;
    let mut g = c.benchmark_group("timing_fc784x256_b64_32x32");
    g.throughput(Throughput::Elements(cycles));
    g.bench_function("analytic", |b| {
        b.iter(|| analytic(black_box(&cfg), m, k, n))
    });
    g.sample_size(10);
    g.bench_function("stepped", |b| {
        b.iter(|| run_stepped(&cfg, black_box(x.view()), w.view(), &mut NullSink))
    });
    g.bench_function("stepped_with_vcd_trace", |b| {
        b.iter(|| {
            let mut vcd = VcdSink::new(Vec::new());
            let run = run_stepped(&cfg, black_box(x.view()), w.view(), &mut vcd);
            vcd.finish().unwrap();
            (run, vcd.into_inner().len())
        })
    });
    g.finish();
}

criterion_group!(benches, gemm, timing);
criterion_main!(benches);
