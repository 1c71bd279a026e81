//! Float inference of the Fashion-MNIST MLP (784-256-128-10) over the 10,000 test images at
//! batch 1000, and one float training epoch (60,000 images, batch 64, the training config's
//! optimizer), each through the float kernel ([`FloatKernel`], the generic layer-by-layer pass)
//! and through the float path's products as they were before issue #20 (`matrixmultiply` over
//! 64-row blocks, which packs all of `b` again per block), in the same process; inference also
//! through the fused pass of `nacsim_nn::fused` (`Model::float_accuracy`: what `nacsim eval` and
//! a run's `float_reference_s` time). All give the same bits (checked here on the logits).
//!
//! Uses `/usr/share/datasets/fashion-mnist` when installed, else seeded pseudo-images of the
//! same shape.
//! Run: `cargo bench --bench float_forward`; add `NACSIM_INTERLEAVED=<rounds>` to also print,
//! per pass, the median and the fastest of `rounds` alternating inference passes (wall), the
//! figure to trust on a loaded machine: `NACSIM_INTERLEAVED=15 cargo bench --bench
//! float_forward -- NOMATCH` runs only those rounds.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::forward::{BLOCK, ProductKernel, forward_with};
use nacsim_nn::fused::DenseChain;
use nacsim_nn::model::Model;
use nacsim_nn::train::{FloatKernel, FloatStore, accuracy, train};
use nacsim_train::TrainConfig;
use ndarray::{Array2, ArrayView2, Axis, linalg::general_mat_mul, s};
use rayon::prelude::*;

/// The float path's products before #20: `matrixmultiply` over fixed rayon blocks of the
/// result, 64-row blocks for tall products (the former `par_matmul`).
struct MatrixMultiply;

fn mm(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    let (m, n) = (a.nrows(), b.ncols());
    let mut c = Array2::<f32>::zeros((m, n));
    if m * n * a.ncols() < 1 << 16 {
        general_mat_mul(1.0, &a, &b, 0.0, &mut c);
    } else if n >= m {
        c.axis_chunks_iter_mut(Axis(1), BLOCK)
            .into_par_iter()
            .enumerate()
            .for_each(|(j, mut cc)| {
                let bb = b.slice(s![.., j * BLOCK..j * BLOCK + cc.ncols()]);
                general_mat_mul(1.0, &a, &bb, 0.0, &mut cc);
            });
    } else {
        let rows = (BLOCK.max((1usize << 18) / (a.ncols() * n).max(1))).next_multiple_of(BLOCK);
        c.axis_chunks_iter_mut(Axis(0), rows)
            .into_par_iter()
            .enumerate()
            .for_each(|(i, mut cc)| {
                let aa = a.slice(s![i * rows..i * rows + cc.nrows(), ..]);
                general_mat_mul(1.0, &aa, &b, 0.0, &mut cc);
            });
    }
    c
}

impl ProductKernel for MatrixMultiply {
    fn forward(&self, _: usize, x: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32> {
        mm(x, w.t())
    }
    fn backward_input(&self, _: usize, dy: ArrayView2<f32>, w: ArrayView2<f32>) -> Array2<f32> {
        mm(dy, w)
    }
    fn weight_grad(&self, _: usize, dy: ArrayView2<f32>, x: ArrayView2<f32>) -> Array2<f32> {
        mm(dy.t(), x)
    }
}

/// CPU time of the process's live threads in ns, from `/proc/self/task/*/schedstat` (Linux; 0
/// elsewhere).
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn load(split: Split, n: usize) -> Dataset {
    Dataset::load_dir(Path::new("/usr/share/datasets/fashion-mnist"), split)
        .unwrap_or_else(|_| Dataset::synthetic(n, 28, 28, 10, 1))
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = Model::load(&root.join("models/networks/fmnist-mlp.ron")).expect("model");
    let test = load(Split::Test, 10_000);
    let idx: Vec<usize> = (0..1000).collect();
    let x = test.batch(&idx);
    let fused = DenseChain::new(&model.layers, &model.params)
        .expect("the MLP is a dense chain")
        .logits(x.view());
    let fast = forward_with(&FloatKernel, &model.layers, &model.params, x.clone());
    let slow = forward_with(&MatrixMultiply, &model.layers, &model.params, x);
    let same = |a: &Array2<f32>, b: &Array2<f32>| {
        a.dim() == b.dim() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
    };
    assert!(
        same(&fast, &slow),
        "the float kernel's logits differ from matrixmultiply's"
    );
    assert!(
        same(&fused, &fast),
        "the fused pass's logits differ from the float kernel's"
    );
    let want = accuracy(&FloatKernel, &model.layers, &model.params, &test, 1000);
    assert_eq!(model.float_accuracy(&test, 1000), want, "fused accuracy");

    if let Some(rounds) = common::interleaved_rounds() {
        let passes: [(&str, &dyn Fn() -> f64); 3] = [
            ("fused", &|| model.float_accuracy(&test, 1000)),
            ("float_kernel", &|| {
                accuracy(&FloatKernel, &model.layers, &model.params, &test, 1000)
            }),
            ("matrixmultiply", &|| {
                accuracy(&MatrixMultiply, &model.layers, &model.params, &test, 1000)
            }),
        ];
        let mut times = vec![(Vec::new(), Vec::new()); passes.len()];
        for _ in 0..rounds {
            for ((_, pass), (wall, cpu)) in passes.iter().zip(&mut times) {
                let c0 = cpu_ns();
                let t0 = std::time::Instant::now();
                black_box(pass());
                wall.push(t0.elapsed().as_secs_f64());
                cpu.push((cpu_ns() - c0) as f64 * 1e-9);
            }
        }
        println!(
            "float inference, 10k images, {rounds} alternating rounds (wall; CPU, all threads):"
        );
        // Per-round ratios to the first pass (each from one round, the passes back to back).
        let ratio = |x: &[f64], y: &[f64]| {
            let mut r: Vec<f64> = x.iter().zip(y).map(|(a, b)| a / b).collect();
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        };
        for (k, (name, _)) in passes.iter().enumerate().skip(1) {
            println!(
                "  {name} / fused per round: wall median {:.2}x, CPU median {:.2}x",
                ratio(&times[k].0, &times[0].0),
                ratio(&times[k].1, &times[0].1)
            );
        }
        for ((name, _), (wall, cpu)) in passes.iter().zip(&mut times) {
            wall.sort_by(f64::total_cmp);
            cpu.sort_by(f64::total_cmp);
            println!(
                "  {name:15} wall median {:6.1} ms, fastest {:6.1} ms; CPU median {:6.1} ms",
                wall[wall.len() / 2] * 1e3,
                wall[0] * 1e3,
                cpu[cpu.len() / 2] * 1e3
            );
        }
    }

    let mut g = c.benchmark_group("float_inference_10k");
    g.sample_size(20);
    g.throughput(Throughput::Elements(test.len() as u64));
    g.bench_function("fused", |b| {
        b.iter(|| black_box(model.float_accuracy(&test, 1000)))
    });
    g.bench_function("float_kernel", |b| {
        b.iter(|| {
            black_box(accuracy(
                &FloatKernel,
                &model.layers,
                &model.params,
                &test,
                1000,
            ))
        })
    });
    g.bench_function("matrixmultiply", |b| {
        b.iter(|| {
            black_box(accuracy(
                &MatrixMultiply,
                &model.layers,
                &model.params,
                &test,
                1000,
            ))
        })
    });
    g.finish();

    let mut cfg: TrainConfig =
        nacsim_core::config::load(&root.join("models/training/fmnist-mlp.ron")).expect("config");
    cfg.train.epochs = 1;
    cfg.train.batch_size = 64;
    let data = load(Split::Train, 60_000);
    let init = Model::init(cfg.network.clone(), cfg.train.seed).expect("topology");
    let mut g = c.benchmark_group("float_epoch_60k");
    g.sample_size(10);
    g.throughput(Throughput::Elements(data.len() as u64));
    let mut epoch = |name: &str, kernel: &dyn ProductKernel| {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut store = FloatStore::new(init.params.clone(), cfg.train.optimizer);
                black_box(
                    train(
                        &init.layers,
                        kernel,
                        &mut store,
                        &data,
                        None,
                        &cfg.train,
                        &mut |_| {},
                    )
                    .expect("training stays finite"),
                )
            })
        });
    };
    epoch("float_kernel", &FloatKernel);
    epoch("matrixmultiply", &MatrixMultiply);
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
