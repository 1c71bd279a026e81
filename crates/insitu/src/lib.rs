//! In-situ training on memristor crossbars (issue #6; `docs/engines/notes/crossbar.md` §2, §3.2, §4.2,
//! §7).
//!
//! # Overview
//!
//! Plugs for nacsim's one training loop ([`nacsim_nn::train::train`]):
//!
//! | item | seam | what it does |
//! |---|---|---|
//! | [`CrossbarStore`] | `WeightStore` | weights as device conductances (differential pairs or reference cells of [`nacsim_device`] devices with d2d variation); updates become pulse trains per crosspoint; counts pulses, write energy and latency; optionally MLP_NeuroSim's write latency and energy per epoch ([`CrossbarStore::enable_neurosim`]) |
//! | [`CrossbarKernel`] | `ProductKernel` | DAC, output-referred read noise and ADC on the forward product; digital backward |
//! | [`program`] | — | the pulse programmers: fixed-voltage (sign, count, width), approximately linear (inversion or small-signal; width or amplitude; optional read-before-write), NeuroSim parity, aihwkit-style stochastic coincidence; the drive model of non-nominal pulses; exact ODE programming of single state devices |
//! | [`InSituConfig`] | — | the settings, one RON file, validated with field errors |
//! | [`data`] | — | area resize and binarization (NeuroSim's 20×20 1-bit inputs) |
//!
//! Units: conductances in siemens (`_s` on `g_*`), voltages in volts (`_v`), times in seconds
//! (`_s` on widths, latencies), energies in picojoules (`_pj`).
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use nacsim_insitu::{CrossbarStore, InSituConfig};
//! use nacsim_nn::train::{Optimizer, WeightStore};
//!
//! let cfg: InSituConfig = nacsim_core::config::parse(
//!     "(device: Preset((preset: IdealLinear)), scheme: ApproxLinear())",
//!     Path::new("insitu.ron"),
//! )?;
//! let w = ndarray::Array2::from_elem((2, 3), 0.25f32);
//! let params = vec![Some(nacsim_nn::model::Param { weight: w, bias: None })];
//! let sgd = Optimizer::Sgd { momentum: 0.0, weight_decay: 0.0 };
//! let mut store = CrossbarStore::new(cfg, params, sgd, 1).expect("valid");
//! let grad = ndarray::Array2::from_elem((2, 3), 1.0f32);
//! store.update(&[Some(nacsim_nn::model::Param { weight: grad, bias: None })], 0.1);
//! let w1 = store.params()[0].as_ref().unwrap().weight[[0, 0]];
//! assert!((w1 - 0.15).abs() < 1e-6); // ideal linear device: exactly SGD
//! assert_eq!(store.stats().steps, 1);
//! # Ok::<(), nacsim_core::ConfigError>(())
//! ```
//!
//! # Layer
//!
//! Function (weights, accuracy) with per-step write accounting (pulse counts, energy, latency)
//! kept apart in [`WriteStats`].
#![deny(missing_docs)]

pub mod config;
pub mod data;
pub mod kernel;
pub mod program;
pub mod store;

pub use config::{
    DataOptions, DriveSettings, InSituConfig, Linearization, Magnitude, Mapping, Modulation,
    Periphery, PulseCountRounding, Scheme, Variation, VoltageError,
};
pub use kernel::CrossbarKernel;
pub use program::{DriveModel, PulseTrain};
pub use store::{CrossbarStore, StoreError, WriteStats};
