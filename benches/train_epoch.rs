//! One training epoch of the Fashion-MNIST MLP (784-256-128-10) on 60,000 images at batch 64,
//! through the one training loop with the float plugs; beside it, float inference of the same
//! network over the same images as a reference point in the same process.
//!
//! Uses the real training set when `/usr/share/datasets/fashion-mnist` is installed, else 60,000
//! seeded pseudo-images of the same shape (speed does not depend on pixel values).
//! Run: `cargo bench --bench train_epoch`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_nn::train::{FloatKernel, FloatStore, accuracy, train};
use nacsim_train::TrainConfig;

fn training_set() -> Dataset {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    if let Ok(d) = Dataset::load_dir(dir, Split::Train) {
        return d;
    }
    eprintln!("train_epoch: Fashion-MNIST not installed, using 60,000 pseudo-images");
    Dataset::synthetic(60_000, 28, 28, 10, 1)
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cfg: TrainConfig =
        nacsim_core::config::load(&root.join("models/training/fmnist-mlp.ron")).expect("config");
    cfg.train.epochs = 1;
    cfg.train.batch_size = 64;
    let data = training_set();
    let model = Model::init(cfg.network.clone(), cfg.train.seed).expect("topology");

    let mut g = c.benchmark_group("mlp_epoch_60k");
    g.sample_size(10);
    g.throughput(Throughput::Elements(data.len() as u64));
    g.bench_function("train_batch64", |b| {
        b.iter(|| {
            let mut store = FloatStore::new(model.params.clone(), cfg.train.optimizer);
            black_box(
                train(
                    &model.layers,
                    &FloatKernel,
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
    g.bench_function("infer_batch64", |b| {
        b.iter(|| {
            black_box(accuracy(
                &FloatKernel,
                &model.layers,
                &model.params,
                &data,
                64,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
