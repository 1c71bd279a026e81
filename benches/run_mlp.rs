//! A full 10,000-image Fashion-MNIST run of the MLP through the baseline int8 systolic engine
//! (functional through the engine + analytic timing and energy), against float ndarray inference
//! of the same network on the same images, in the same process.
//!
//! Uses `/usr/share/datasets/fashion-mnist` when installed, else 10,000 seeded pseudo-images of
//! the same shape. Run: `cargo bench --bench run_mlp`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_nn::train::{FloatKernel, accuracy};
use nacsim_scheduler::design::Design;
use nacsim_scheduler::report::RunReport;
use nacsim_scheduler::sim::Simulation;

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = Model::load(&root.join("models/networks/fmnist-mlp.ron")).expect("model");
    let design = Design::load(&root.join("models/designs/systolic-int8.ron")).expect("design");
    let test = Dataset::load_dir(Path::new("/usr/share/datasets/fashion-mnist"), Split::Test)
        .unwrap_or_else(|_| Dataset::synthetic(10_000, 28, 28, 10, 1));
    let sim = Simulation::new(design, &model, &test.clone().limit(512)).expect("simulation");

    let mut g = c.benchmark_group("mlp_10k_images");
    g.sample_size(10);
    g.throughput(Throughput::Elements(test.len() as u64));
    g.bench_function("systolic_int8_run", |b| {
        b.iter(|| {
            let acc = sim.accuracy(&test);
            black_box(
                RunReport::build(&sim, "mlp", "test", test.len(), acc, 0.0, 0.0).expect("report"),
            )
        })
    });
    g.bench_function("float_ndarray_inference", |b| {
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
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
