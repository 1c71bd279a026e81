//! A full 10,000-image Fashion-MNIST run of the committed residual graph
//! (`models/networks/fmnist-resnet8`: BatchNorm folded, residual Adds, global average pooling)
//! through the baseline int8 systolic design (functional through the engine, then the analytic
//! timing and energy of the run report), against float inference of the same graph on the same
//! images in the same process (#16's target: within 3×).
//!
//! Uses `/usr/share/datasets/fashion-mnist` when installed, else 10,000 seeded pseudo-images of
//! the same shape. Run: `cargo bench --bench graph_resnet`; add `NACSIM_INTERLEAVED=<rounds>`
//! to also print interleaved medians of both, wall and CPU, and their ratio measured in the same
//! rounds (so both see the same machine load):
//! `NACSIM_INTERLEAVED=5 cargo bench --bench graph_resnet -- NOMATCH` runs only those rounds.
//! `nacsim info` on ResNet-50 is benched in `benches/info_topology.rs`.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_scheduler::design::Design;
use nacsim_scheduler::report::RunReport;
use nacsim_scheduler::sim::Simulation;

fn setup() -> (Model, Simulation, Dataset) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = Model::load(&root.join("models/networks/fmnist-resnet8.ron")).expect("model");
    let design = Design::load(&root.join("models/designs/systolic-int8.ron")).expect("design");
    let test = Dataset::load_dir(Path::new("/usr/share/datasets/fashion-mnist"), Split::Test)
        .unwrap_or_else(|_| Dataset::synthetic(10_000, 28, 28, 10, 1));
    let sim = Simulation::new(design, &model, &test.clone().limit(512)).expect("simulation");
    (model, sim, test)
}

fn bench(c: &mut Criterion) {
    let (model, sim, test) = setup();
    let mut g = c.benchmark_group("resnet8_10k_images");
    g.sample_size(10);
    g.throughput(Throughput::Elements(test.len() as u64));
    g.bench_function("float_inference", |b| {
        b.iter(|| black_box(model.float_accuracy(&test, 1000)));
    });
    g.bench_function("systolic_int8_run", |b| {
        b.iter(|| {
            let acc = sim.accuracy(&test);
            black_box(
                RunReport::build(
                    &sim,
                    common::facts("fmnist-resnet8", "test", test.len(), acc),
                )
                .expect("report"),
            )
        });
    });
    g.finish();
}

/// With `NACSIM_INTERLEAVED=<rounds>`: float inference and the systolic run in alternating
/// rounds, printing median wall and CPU times and the run's ratio to float inference.
fn interleaved(c: &mut Criterion) {
    let _ = c;
    let Some(rounds) = common::interleaved_rounds() else {
        return;
    };
    let (model, sim, test) = setup();
    let mut float = Vec::new();
    let mut run = Vec::new();
    let time = |f: &mut dyn FnMut()| {
        let c0 = common::cpu_seconds().unwrap_or(0.0);
        let t0 = std::time::Instant::now();
        f();
        (
            t0.elapsed().as_secs_f64(),
            common::cpu_seconds().unwrap_or(0.0) - c0,
        )
    };
    let (mut fa, mut ia) = (0.0, 0.0);
    for _ in 0..rounds {
        float.push(time(&mut || fa = model.float_accuracy(&test, 1000)));
        run.push(time(&mut || {
            ia = sim.accuracy(&test);
            black_box(
                RunReport::build(
                    &sim,
                    common::facts("fmnist-resnet8", "test", test.len(), ia),
                )
                .expect("report"),
            );
        }));
    }
    let median = |v: &[(f64, f64)], k: usize| {
        let mut x: Vec<f64> = v.iter().map(|r| if k == 0 { r.0 } else { r.1 }).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    println!(
        "resnet8, {} images, interleaved medians of {rounds} rounds: float {:.3} s wall / {:.3} s CPU (accuracy {fa:.4}); systolic int8 run {:.3} s wall / {:.3} s CPU (accuracy {ia:.4}); ratio {:.2}x wall, {:.2}x CPU",
        test.len(),
        median(&float, 0),
        median(&float, 1),
        median(&run, 0),
        median(&run, 1),
        median(&run, 0) / median(&float, 0),
        median(&run, 1) / median(&float, 1),
    );
}

criterion_group!(benches, bench, interleaved);
criterion_main!(benches);
