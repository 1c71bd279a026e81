//! Training with augmentation (`train.augment`): the same weights for any thread count, no
//! change at all when the augmentation is the identity, and a change when it is not.

use std::path::Path;

use nacsim_nn::data::Dataset;
use nacsim_nn::model::Param;
use nacsim_train::{TrainConfig, fit};

fn config(augment: &str) -> TrainConfig {
    nacsim_core::config::parse(
        &format!(
            "(schema_version: 1, name: \"aug\", dataset: FashionMnist, output: \"aug.ron\",
              network: (schema_version: 1, name: \"aug\", input: (c: 1, h: 28, w: 28), classes: 10,
                        nodes: [
                          (name: \"c1\", op: Conv2d(out_channels: 4, kernel: 3, stride: 2, padding: 1, bias: false)),
                          (name: \"bn\", op: BatchNorm2d()),
                          (name: \"r\", op: Act(ReLU)),
                          (name: \"gap\", op: GlobalAvgPool),
                          (name: \"fc\", op: Dense(out: 10)),
                        ]),
              train: (seed: 3, epochs: 2, batch_size: 32, lr: 0.01,
                      optimizer: Adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0001),
                      schedule: Constant{augment}))"
        ),
        Path::new("aug.ron"),
    )
    .expect("a valid config")
}

fn train(cfg: &TrainConfig, threads: usize) -> Vec<Option<Param>> {
    let data = Dataset::bundled_sample();
    let train_set = data.subset(&(0..192).collect::<Vec<_>>());
    let test_set = data.subset(&(192..256).collect::<Vec<_>>());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        fit(
            cfg,
            Path::new("."),
            None,
            &train_set,
            &test_set,
            None,
            &mut |_| {},
        )
        .expect("trains")
        .model
        .params
    })
}

#[test]
fn augmented_training_is_the_same_for_any_thread_count() {
    let cfg = config(", augment: Some((shift: 2, hflip: true))");
    assert_eq!(train(&cfg, 1), train(&cfg, 2));
}

#[test]
fn the_identity_augmentation_changes_nothing_and_a_real_one_does() {
    let none = train(&config(""), 2);
    let identity = train(&config(", augment: Some((shift: 0, hflip: false))"), 2);
    assert_eq!(none, identity);
    let shifted = train(&config(", augment: Some((shift: 1))"), 2);
    assert_ne!(none, shifted);
}
