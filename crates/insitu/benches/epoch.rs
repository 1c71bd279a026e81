//! Speed of in-situ training epochs (issue #6 targets):
//!
//! * `neurosim_epoch`: the MLP_NeuroSim V3.0 setting — 400-100-10 sigmoid MLP on 20×20
//!   binarized images, 8,000 training images at batch 1 with NeuroSim's write rule on Ag:a-Si
//!   (97/100 pulses, NL 2.40/−4.88, c2c 3.5 %), then 10,000 test images. Target ≤ 4 s
//!   (NeuroSim takes ~80 s on 2 cores).
//! * `neurosim_epoch_write_accounting`: the same epoch with MLP_NeuroSim's write accounting on
//!   (`CrossbarStore::enable_neurosim` with NeuroSim's default circuit block, issue #17): its
//!   cost is the ratio to `neurosim_epoch`.
//! * `fmnist_mlp_epoch`: 784-256-128-10 on 60,000 images at batch 64, Ag:a-Si fixed-voltage
//!   update with stochastic rounding, 2 % read noise and an 8-bit ADC. Target: ≥ 5× faster than
//!   aihwkit's CPU pulsed training of the same MLP (the issue quotes ~6 s; aihwkit 1.1.0 takes
//!   19–24 s on the 2-core machine here: `scripts/aihwkit_reference.py --workload train`).
//! * `fmnist_mlp_float_epoch`: the same epoch (same network, data, batch, plain SGD at the same
//!   learning rate) with the float store and kernel — the reference for the in-situ/float ratio,
//!   measured in the same run because the machine's load changes timings between runs.
//!
//! Data: Fashion-MNIST from `/usr/share/datasets/fashion-mnist` (or `$FMNIST_DIR`) when present,
//! else synthetic images of the same size. The `fmnist_mlp` settings, network and epoch are
//! shared with `examples/epoch_cpu.rs` (`benches/common`). Run: `cargo bench -p nacsim-insitu
//! --bench epoch`.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;

use common::{FMNIST_INSITU, FMNIST_MLP, SGD, load, net, settings, train_settings};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use nacsim_insitu::{CrossbarKernel, CrossbarStore, InSituConfig};
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::model::Model;
use nacsim_nn::train::{FloatKernel, FloatStore, WeightStore, accuracy};

fn run_epoch(
    c: &InSituConfig,
    model: &Model,
    store: &mut CrossbarStore,
    tr: &Dataset,
    te: &Dataset,
    batch: usize,
    lr: f32,
) -> f64 {
    let kernel = CrossbarKernel::new(c.periphery, c.w_max, 1, model.layers.len());
    common::epoch(
        &model.layers,
        &kernel,
        store,
        tr,
        &train_settings(batch, lr),
    );
    accuracy(&kernel, &model.layers, store.params(), te, 1000)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("insitu");
    g.sample_size(10);

    let ns = settings(
        "(device: Preset((preset: AgASi)), scheme: NeuroSim, mapping: Reference, \
         periphery: (dac_bits: 1, adc_bits: 8), \
         data: (resize: Some((20, 20)), binarize: Some(0.5), train_images: 8000))",
    );
    let tr = nacsim_insitu::data::apply_train(load(Split::Train, 60_000), &ns.data);
    let te = nacsim_insitu::data::apply(load(Split::Test, 10_000), &ns.data);
    let spec = net(
        "(schema_version: 1, name: \"neurosim\", input: (c: 1, h: 20, w: 20), classes: 10, \
         layers: [Flatten, Dense(out: 100), Act(Sigmoid), Dense(out: 10)])",
    );
    let model = Model::init(spec, 1).expect("model");
    g.bench_function("neurosim_epoch", |b| {
        b.iter_batched(
            || CrossbarStore::new(ns.clone(), model.params.clone(), SGD, 1).expect("store"),
            |mut store| black_box(run_epoch(&ns, &model, &mut store, &tr, &te, 1, 0.3)),
            BatchSize::PerIteration,
        );
    });
    // The bench network has biases: one more row per sub-array than MLP_NeuroSim's.
    let mut circuit = nacsim_crossbar::neurosim::NeuroSimConfig::mlp_v3_default();
    for l in &mut circuit.layers {
        l.rows += 1;
    }
    g.bench_function("neurosim_epoch_write_accounting", |b| {
        b.iter_batched(
            || {
                let mut s =
                    CrossbarStore::new(ns.clone(), model.params.clone(), SGD, 1).expect("store");
                s.enable_neurosim(&circuit, tr.len() as u64)
                    .expect("the block matches 401-101-10");
                s
            },
            |mut store| {
                let acc = run_epoch(&ns, &model, &mut store, &tr, &te, 1, 0.3);
                black_box((acc, store.neurosim_write().map(|l| l.epochs.len())))
            },
            BatchSize::PerIteration,
        );
    });

    let fx = settings(FMNIST_INSITU);
    let tr = load(Split::Train, 60_000);
    let te = load(Split::Test, 0);
    let spec = net(FMNIST_MLP);
    let model = Model::init(spec, 1).expect("model");
    g.bench_function("fmnist_mlp_epoch", |b| {
        b.iter_batched(
            || CrossbarStore::new(fx.clone(), model.params.clone(), SGD, 1).expect("store"),
            |mut store| black_box(run_epoch(&fx, &model, &mut store, &tr, &te, 64, 0.1)),
            BatchSize::PerIteration,
        );
    });
    g.bench_function("fmnist_mlp_float_epoch", |b| {
        b.iter_batched(
            || FloatStore::new(model.params.clone(), SGD),
            |mut store| {
                common::epoch(
                    &model.layers,
                    &FloatKernel,
                    &mut store,
                    &tr,
                    &train_settings(64, 0.1),
                );
                black_box(accuracy(
                    &FloatKernel,
                    &model.layers,
                    store.params(),
                    &te,
                    1000,
                ))
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
