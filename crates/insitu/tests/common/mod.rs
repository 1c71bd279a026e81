//! Shared helpers of the in-situ tests.
#![allow(dead_code)]

use std::path::Path;

use nacsim_insitu::{CrossbarKernel, CrossbarStore, InSituConfig};
use nacsim_nn::data::Dataset;
use nacsim_nn::model::{Model, Param};
use nacsim_nn::network::NetworkSpec;
use nacsim_nn::train::{Optimizer, Schedule, TrainSettings, WeightStore, accuracy, train};

pub const SGD: Optimizer = Optimizer::Sgd {
    momentum: 0.0,
    weight_decay: 0.0,
};

pub fn cfg(text: &str) -> InSituConfig {
    nacsim_core::config::parse(text, Path::new("insitu.ron")).expect("valid in-situ config")
}

pub fn cfg_err(text: &str) -> String {
    nacsim_core::config::parse::<InSituConfig>(text, Path::new("insitu.ron"))
        .expect_err("config should be rejected")
        .to_string()
}

pub fn mlp(hidden: usize) -> NetworkSpec {
    nacsim_core::config::parse(
        &format!(
            "(schema_version: 1, name: \"t\", input: (c: 1, h: 28, w: 28), classes: 10, \
             layers: [Flatten, Dense(out: {hidden}), Act(ReLU), Dense(out: 10)])"
        ),
        Path::new("net.ron"),
    )
    .expect("valid network")
}

pub fn one_layer(out: usize, fan_in: usize, w: f32, bias: bool) -> Vec<Option<Param>> {
    vec![Some(Param {
        weight: ndarray::Array2::from_elem((out, fan_in), w),
        bias: bias.then(|| ndarray::Array1::from_elem(out, w)),
    })]
}

pub fn grads_like(p: &[Option<Param>], f: impl Fn(usize) -> f32) -> Vec<Option<Param>> {
    p.iter()
        .map(|p| {
            p.as_ref().map(|p| {
                let mut i = 0;
                let weight = p.weight.mapv(|_| {
                    i += 1;
                    f(i)
                });
                Param {
                    weight,
                    bias: p.bias.as_ref().map(|b| b.mapv(|_| f(0))),
                }
            })
        })
        .collect()
}

/// Trains `spec` in situ on `train_set` and returns (exported params, accuracy on `test`).
#[allow(clippy::too_many_arguments)]
pub fn train_insitu(
    c: &InSituConfig,
    spec: &NetworkSpec,
    train_set: &Dataset,
    test: &Dataset,
    epochs: usize,
    lr: f32,
    batch: usize,
    seed: u64,
) -> (Vec<Option<Param>>, f64, CrossbarStore) {
    let model = Model::init(spec.clone(), seed).unwrap();
    let mut store = CrossbarStore::new(c.clone(), model.params.clone(), SGD, seed).unwrap();
    let kernel = CrossbarKernel::new(c.periphery, c.w_max, seed, model.layers.len());
    let settings = TrainSettings {
        seed,
        epochs,
        batch_size: batch,
        lr,
        optimizer: SGD,
        schedule: Schedule::Constant,
        augment: None,
    };
    train(
        &model.layers,
        &kernel,
        &mut store,
        train_set,
        None,
        &settings,
        &mut |_| {},
    )
    .expect("training stays finite");
    let params = store.export();
    let acc = accuracy(&kernel, &model.layers, &params, test, 500);
    (params, acc, store)
}

pub fn bits(p: &[Option<Param>]) -> Vec<u32> {
    p.iter()
        .flatten()
        .flat_map(|p| {
            p.weight
                .iter()
                .chain(p.bias.iter().flatten())
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        })
        .collect()
}
