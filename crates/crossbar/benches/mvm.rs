//! Simulator speed of `ProgrammedLayer::run` on the Fashion-MNIST MLP's first layer
//! (784 → 256, 10,000 input rows), next to an f32 ndarray `dot` and the workspace's parallel
//! float product of the same shapes. Prints the wall-time ratio `run / float` and the CPU-time
//! ratio (robust on a loaded machine: 2× CPU on 2 threads is 1× wall when idle) before the criterion
//! groups (target: within 3× of float inference for one Monte Carlo trial with d2d, read noise
//! and an 8-bit ADC).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nacsim_crossbar::{CrossbarConfig, ProgrammedLayer, ReadNoiseModel};
use ndarray::Array2;

const ROWS: usize = 10_000;
const FAN_IN: usize = 784;
const OUT: usize = 256;

fn weights() -> Array2<f32> {
    Array2::from_shape_fn((OUT, FAN_IN), |(o, k)| {
        let h = ((o * 7919 + k * 104_729) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        ((h >> 40) as f32 / (1u64 << 24) as f32) * 0.2 - 0.1
    })
}

fn inputs() -> Array2<i8> {
    Array2::from_shape_fn((ROWS, FAN_IN), |(r, k)| {
        let h = ((r * 31 + k * 17) as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
        (h >> 57) as i8 // 0..=127, like post-ReLU activations
    })
}

/// The Monte Carlo trial of the speed target: 5 % d2d, 2 % read noise, 8-bit ADC.
fn mc_config() -> CrossbarConfig {
    let mut cfg = CrossbarConfig::default();
    cfg.nonideal.d2d_sigma_rel = 0.05;
    cfg.nonideal.read_noise_sigma_rel = 0.02;
    cfg
}

/// CPU time of this process (user + system) from `/proc/self/stat`, in seconds (Linux; 0
/// elsewhere). Ticks are assumed to be 1/100 s (`CLK_TCK` on Linux).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime is field 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// Best wall time of `n` runs, and the mean CPU time per run.
fn best_of(n: usize, mut f: impl FnMut()) -> (Duration, f64) {
    let cpu0 = cpu_seconds();
    let wall = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default();
    (wall, (cpu_seconds() - cpu0) / n as f64)
}

fn mvm(c: &mut Criterion) {
    let w = weights();
    let x = inputs();
    let xf = x.mapv(f32::from);
    let wt = w.t().to_owned();
    let ideal = ProgrammedLayer::program(&CrossbarConfig::ideal(), w.view(), 1, 0, 0).unwrap();
    let mc = ProgrammedLayer::program(&mc_config(), w.view(), 1, 0, 0).unwrap();
    let mut cfg = mc_config();
    cfg.nonideal.read_noise_model = ReadNoiseModel::OutputReferred;
    let mc_out = ProgrammedLayer::program(&cfg, w.view(), 1, 0, 0).unwrap();

    let n = 5;
    let (dot, dot_cpu) = best_of(n, || {
        black_box(xf.dot(&wt));
    });
    let (par, _) = best_of(n, || {
        black_box(nacsim_nn::forward::par_matmul(xf.view(), wt.view()));
    });
    let runs = [
        ("ideal", &ideal),
        ("d2d 5% + read noise 2% before ADC + 8-bit ADC", &mc),
        (
            "d2d 5% + read noise 2% output-referred + 8-bit ADC",
            &mc_out,
        ),
    ];
    let float = dot.min(par);
    println!(
        "mvm 784x256 x {ROWS} rows, {} threads: f32 ndarray dot {dot:?} ({:.0} ms CPU), \
         par_matmul {par:?}",
        rayon::current_num_threads(),
        dot_cpu * 1e3
    );
    for (name, layer) in runs {
        let (t, cpu) = best_of(n, || {
            black_box(layer.run(x.view(), 0));
        });
        println!(
            "  run {name}: {t:?} = {:.2}x float wall; CPU {:.0} ms = {:.2}x the dot's CPU",
            t.as_secs_f64() / float.as_secs_f64(),
            cpu * 1e3,
            cpu / dot_cpu.max(1e-9),
        );
    }

    let mut g = c.benchmark_group("mvm_784x256_10k_rows");
    g.throughput(Throughput::Elements((ROWS * FAN_IN * OUT) as u64));
    g.sample_size(10);
    g.bench_function("f32_ndarray_dot", |b| b.iter(|| black_box(&xf).dot(&wt)));
    g.bench_function("f32_par_matmul", |b| {
        b.iter(|| nacsim_nn::forward::par_matmul(black_box(xf.view()), wt.view()))
    });
    g.bench_function("run_ideal", |b| {
        b.iter(|| ideal.run(black_box(x.view()), 0))
    });
    g.bench_function("run_d2d_read_noise_adc8", |b| {
        b.iter(|| mc.run(black_box(x.view()), 0))
    });
    g.bench_function("run_d2d_read_noise_output_referred_adc8", |b| {
        b.iter(|| mc_out.run(black_box(x.view()), 0))
    });
    g.finish();
}

criterion_group!(benches, mvm);
criterion_main!(benches);
