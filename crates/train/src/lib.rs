//! # nacsim-train
//!
//! ## Overview
//!
//! Training runs: the training config (`models/training/*.ron`, [`TrainConfig`]) and
//! [`fit()`], which builds the product kernel and the weight store the config chooses and runs
//! `nacsim_nn`'s one training loop with them. The kernel choice ([`KernelChoice`]) holds the
//! engines' own config types (`nacsim_circulant::Convention`, `nacsim_sine::InputEncoding`);
//! the built kernels are one closed enum ([`Kernel`]). The command line (`nacsim train`,
//! training sweeps) only parses arguments, loads data and prints.
//!
//! | module | what it gives |
//! | --- | --- |
//! | [`config`] | [`TrainConfig`], [`KernelChoice`], [`PotChoice`], [`StoreChoice`], validation |
//! | [`kernel`] | [`Kernel`]: float, block-circulant, sine or crossbar products |
//! | [`fit`](mod@fit) | [`fit()`], in-situ settings and data options, the memory and data checks |
//!
//! ## Example
//!
//! Train a small block-circulant MLP for two epochs on part of the bundled sample:
//!
//! ```
//! use std::path::Path;
//! use nacsim_nn::data::Dataset;
//! use nacsim_train::{KernelChoice, TrainConfig, fit};
//!
//! let cfg: TrainConfig = nacsim_core::config::parse(
//!     "(schema_version: 1, name: \"tiny\", dataset: FashionMnist, output: \"tiny.ron\",
//!       network: (schema_version: 1, name: \"tiny\", input: (c: 1, h: 28, w: 28), classes: 10,
//!                 layers: [Flatten, Dense(out: 32), Act(ReLU), Dense(out: 10)]),
//!       train: (seed: 1, epochs: 2, batch_size: 32, lr: 0.002,
//!               optimizer: Adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0),
//!               schedule: Constant),
//!       kernel: BlockCirculant(block: 16, pot: Bits(bits: 4)))",
//!     Path::new("tiny.ron"),
//! )?;
//! assert!(matches!(cfg.kernel, KernelChoice::BlockCirculant { block: 16, .. }));
//! let data = Dataset::bundled_sample();
//! let train_set = data.subset(&(0..1000).collect::<Vec<_>>());
//! let test_set = data.subset(&(1000..1500).collect::<Vec<_>>());
//! let fitted = fit(&cfg, Path::new("."), None, &train_set, &test_set, None, &mut |_| {})
//!     .expect("trains");
//! assert_eq!(fitted.history.len(), 2);
//! assert!(fitted.accuracy > 0.2, "{}", fitted.accuracy); // chance is 0.1
//! # Ok::<(), nacsim_core::ConfigError>(())
//! ```
//!
//! ## Layer
//!
//! Reference (float training) with the engines' hardware-aware plugs; no time.
#![deny(missing_docs)]

pub mod config;
pub mod fit;
pub mod kernel;

use std::path::PathBuf;

pub use config::{KernelChoice, PotChoice, StoreChoice, TrainConfig};
pub use fit::{
    EVAL_BATCH, Fitted, InSitu, apply_insitu_data, check_data, check_memory, fit,
    fit_with_neurosim, insitu_settings,
};
pub use kernel::Kernel;

/// Any error of a training run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A settings file could not be read, parsed or validated.
    #[error(transparent)]
    Config(#[from] nacsim_core::ConfigError),
    /// The run would exceed the memory limit.
    #[error(transparent)]
    Memory(#[from] nacsim_core::memory::MemoryError),
    /// The network cannot be built.
    #[error(transparent)]
    Topology(#[from] nacsim_nn::network::TopologyError),
    /// The starting network (`init`) cannot be loaded.
    #[error(transparent)]
    Model(#[from] nacsim_nn::model::ModelError),
    /// The starting network (`init`) has other layers than the config's network.
    #[error(
        "init: {} has a different topology than the config's network; train from it with the same layers",
        path.display()
    )]
    InitTopology {
        /// Path of the starting network.
        path: PathBuf,
    },
    /// The crossbar weight store rejects the in-situ settings.
    #[error("{}: {error}", path.display())]
    InSitu {
        /// Path of the in-situ settings.
        path: PathBuf,
        /// What the store rejects (in the message; not a separate cause).
        error: nacsim_insitu::StoreError,
    },
    /// The data does not fit the network (input shape, classes); the message names the config,
    /// the field, the value and the data.
    #[error("{0}")]
    Data(String),
    /// The training loop stopped.
    #[error(transparent)]
    Train(#[from] nacsim_nn::train::TrainError),
}
