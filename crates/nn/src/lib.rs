#![deny(missing_docs)]
//! # nacsim-nn
//!
//! ## Overview
//!
//! Networks for nacsim: the network IR, chains and graphs ([`network`]), the float reference
//! forward and backward passes ([`forward`]; fused float inference of MLPs: [`fused`]; over graphs: [`graph`], with the graph kinds' math
//! in [`ops`]; Softmax, LayerNorm and Transpose in [`attn_ops`]), BatchNorm folding ([`fold`]), im2col for any element type ([`im2col`](mod@im2col)), the one training
//! loop with its two seams ([`train`]) and its data augmentation ([`augment`]), IDX datasets ([`data`]), model I/O in RON + safetensors
//! ([`model`]) or ONNX ([`onnx`]), quantizers shared by the engines ([`quant`]), the int8 network that is every
//! integer engine's functional reference ([`qnet`]) and the ReLU positive-scaling rescaling pass
//! ([`rescale`]).
//!
//! ## Example
//!
//! Train a small MLP for one epoch on part of the bundled Fashion-MNIST sample and evaluate it:
//!
//! ```
//! use nacsim_nn::data::Dataset;
//! use nacsim_nn::model::Model;
//! use nacsim_nn::network::NetworkSpec;
//! use nacsim_nn::train::{accuracy, train, FloatKernel, FloatStore, Optimizer, Schedule, TrainSettings, WeightStore};
//!
//! let spec: NetworkSpec = ron::from_str(
//!     "(schema_version: 1, name: \"tiny\", input: (c: 1, h: 28, w: 28), classes: 10,
//!       layers: [Flatten, Dense(out: 32), Act(ReLU), Dense(out: 10)])",
//! ).unwrap();
//! let model = Model::init(spec, 42).unwrap();
//! let data = Dataset::bundled_sample();
//! let (train_set, test_set) = (data.subset(&(0..1500).collect::<Vec<_>>()), data.subset(&(1500..2000).collect::<Vec<_>>()));
//! let settings = TrainSettings {
//!     seed: 42, epochs: 2, batch_size: 32, lr: 2e-3,
//!     optimizer: Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 },
//!     schedule: Schedule::Constant, augment: None,
//! };
//! let mut store = FloatStore::new(model.params.clone(), settings.optimizer);
//! train(&model.layers, &FloatKernel, &mut store, &train_set, None, &settings, &mut |_| {}).unwrap();
//! let acc = accuracy(&FloatKernel, &model.layers, store.params(), &test_set, 500);
//! assert!(acc > 0.6, "{acc}");
//! ```
//!
//! ## Layer
//!
//! Reference: float math, no time. The engines plug their kernels and weight stores into
//! [`train::train`] and are measured against the float models made here.

pub mod attn_ops;
pub mod augment;
pub mod data;
pub mod fold;
pub mod forward;
pub mod fused;
pub mod graph;
pub mod im2col;
pub mod model;
pub mod network;
pub mod onnx;
pub mod ops;
pub mod optim;
pub mod qnet;
pub mod quant;
pub mod rescale;
pub mod train;
