//! The `fmnist_mlp_epoch` setting shared by the epoch bench (`benches/epoch.rs`) and the
//! CPU-time example (`examples/epoch_cpu.rs`): the in-situ settings, the 784-256-128-10 MLP, the
//! training settings (one epoch, batch 64, plain SGD at lr 0.1, seed 1), the data and the epoch
//! run itself, so the two time the same thing. Included with `#[path]`; not a bench.

#![allow(dead_code)] // each user takes a subset

use std::path::{Path, PathBuf};

use nacsim_insitu::InSituConfig;
use nacsim_nn::data::{Dataset, Split};
use nacsim_nn::network::{NetworkSpec, ResolvedLayer};
use nacsim_nn::train::{Optimizer, ProductKernel, Schedule, TrainSettings, WeightStore, train};

/// Plain SGD, the optimiser of in-situ training (and of the float reference epoch).
pub const SGD: Optimizer = Optimizer::Sgd {
    momentum: 0.0,
    weight_decay: 0.0,
};

/// The in-situ settings of `fmnist_mlp_epoch`: Ag:a-Si, fixed-voltage updates with the pulse
/// count stochastically rounded, 2 % read noise and an 8-bit ADC.
pub const FMNIST_INSITU: &str = "(device: Preset((preset: AgASi)), \
     scheme: FixedVoltage(magnitude: Count, rounding: Stochastic), \
     periphery: (read_noise_sigma: 0.02, adc_bits: 8))";

/// The 784-256-128-10 ReLU MLP of `fmnist_mlp_epoch`.
pub const FMNIST_MLP: &str = "(schema_version: 1, name: \"mlp\", input: (c: 1, h: 28, w: 28), \
     classes: 10, layers: [Flatten, Dense(out: 256), Act(ReLU), Dense(out: 128), Act(ReLU), \
     Dense(out: 10)])";

/// `text` parsed as in-situ settings (errors name `bench.ron`).
pub fn settings(text: &str) -> InSituConfig {
    nacsim_core::config::parse(text, Path::new("bench.ron")).expect("settings")
}

/// `text` parsed as a network (errors name `bench.ron`).
pub fn net(text: &str) -> NetworkSpec {
    nacsim_core::config::parse(text, Path::new("bench.ron")).expect("network")
}

/// The Fashion-MNIST directory: `$FMNIST_DIR`, else `/usr/share/datasets/fashion-mnist`.
pub fn fmnist_dir() -> PathBuf {
    std::env::var_os("FMNIST_DIR").map_or_else(
        || PathBuf::from("/usr/share/datasets/fashion-mnist"),
        PathBuf::from,
    )
}

/// The first `n` images of a Fashion-MNIST split ([`fmnist_dir`]), or `n` synthetic images of
/// the same size when the data is not there.
pub fn load(split: Split, n: usize) -> Dataset {
    match Dataset::load_dir(&fmnist_dir(), split) {
        Ok(d) => d.limit(n),
        Err(_) => Dataset::synthetic(n, 28, 28, 10, 1),
    }
}

/// One epoch at `batch` images per step and learning rate `lr` (plain SGD, constant rate,
/// seed 1, no augmentation).
pub fn train_settings(batch: usize, lr: f32) -> TrainSettings {
    TrainSettings {
        seed: 1,
        epochs: 1,
        batch_size: batch,
        lr,
        optimizer: SGD,
        schedule: Schedule::Constant,
        augment: None,
    }
}

/// One training epoch of `layers` on `tr` with any kernel and store (the in-situ and the float
/// epoch differ only in these two).
pub fn epoch<K: ProductKernel, S: WeightStore>(
    layers: &[ResolvedLayer],
    kernel: &K,
    store: &mut S,
    tr: &Dataset,
    ts: &TrainSettings,
) {
    train(layers, kernel, store, tr, None, ts, &mut |_| {}).expect("training stays finite");
}
