//! nacsim-crossbar: memristor crossbar arrays for inference.
//!
//! # Overview
//!
//! A Dense weight matrix (or a conv layer's im2col matrix) is programmed onto `array_rows ×
//! array_cols` tiles of memristive devices ([`ProgrammedLayer::program`]); int8 input codes are
//! applied as row voltages, columns sum currents (Kirchhoff), TIAs and ADCs digitize them, and
//! the codes of all tiles and input slices are shifted and added
//! ([`ProgrammedLayer::run`]). Every non-ideality of `docs/engines/notes/crossbar.md` §3.2 is its own
//! knob, seeded from its own [`Purpose`](nacsim_core::Purpose) stream, and all of them at 0
//! give the ideal mapping exactly.
//!
//! | module | layer | what it gives |
//! |---|---|---|
//! | [`config`] | | [`CrossbarConfig`]: array, device range, signed scheme, DAC/TIA/ADC, non-idealities, timing, energy; their rules |
//! | [`reference`](mod@reference) | reference | ideal mapping, input slices, exact integer and f64 Kirchhoff MVMs |
//! | [`datapath`] | datapath | [`ProgrammedLayer`]: static effects at programming, fast `run` with read noise (`datapath/gemm.rs`: the zero-skipping f32 products of the read path) |
//! | [`drift`] | datapath | conductance drift at `inference_time_s` (keyed by array, row, column) and global drift compensation |
//! | [`irdrop`] | datapath | line Gauss–Seidel nodal solver and the dense MNA check |
//! | [`periphery`] | datapath | activation circuits, crossbar average pooling, digital max pooling |
//! | [`timing`] | timing | analytic cycles and counters ([`timing::analytic`]) |
//! | [`stepped`] | timing | the cycle-stepped read pipeline with traces |
//! | [`cost`] | cost | energy by action ([`CrossbarCost`], [`cost::energy`]) |
//! | [`neurosim`] | cost | MLP_NeuroSim V3.0's gate-level periphery model: area, read latency/energy of an analog 1T1R MLP |
//!
//! # Example
//!
//! ```
//! use nacsim_core::NullSink;
//! use nacsim_crossbar::{CrossbarConfig, ProgrammedLayer};
//! use ndarray::Array2;
//!
//! let w = Array2::from_shape_fn((10, 300), |(o, k)| ((o * 7 + k * 3) % 13) as f32 / 6.0 - 1.0);
//! let x = Array2::from_shape_fn((4, 300), |(n, k)| ((n * 5 + k * 11) % 255) as u8 as i8);
//!
//! // Ideal crossbar: equal to the integer product of the quantized weights.
//! let ideal = ProgrammedLayer::program(&CrossbarConfig::ideal(), w.view(), 42, 0, 0)?;
//! let y = ideal.run(x.view(), 0);
//! let q = ideal.ideal_codes();
//! let exact: i64 = (0..300).map(|k| i64::from(q[[3, k]]) * i64::from(x[[1, k]])).sum();
//! assert_eq!(i64::from(y[[1, 3]]), exact);
//!
//! // 5 % device-to-device variation and 1 % read noise, 8-bit ADC.
//! let mut cfg = CrossbarConfig::default();
//! cfg.nonideal.d2d_sigma_rel = 0.05;
//! cfg.nonideal.read_noise_sigma_rel = 0.01;
//! let noisy = ProgrammedLayer::program(&cfg, w.view(), 42, 0, 0)?;
//! let (y_stepped, cost) = noisy.run_stepped(x.view(), 0, &mut NullSink)?;
//! assert_eq!(y_stepped, noisy.run(x.view(), 0));
//! assert_eq!(cost, noisy.cost(4));
//! let real: Vec<f32> = y.row(0).iter().zip(ideal.out_w_scale()).map(|(&v, &s)| v as f32 * s).collect();
//! println!("{} cycles, {:.1} pJ, first output ≈ {}", cost.cycles, cost.total_energy_pj(), real[0]);
//! # Ok::<(), nacsim_crossbar::Error>(())
//! ```
//!
//! # Layer
//!
//! Reference, datapath and timing of the crossbar engine, plus its cost: the counters
//! ([`timing::COUNTER_NAMES`]) are priced by [`config::EnergyConstants`] into
//! [`CrossbarCost::energy_pj`] by action ([`cost`]).
#![deny(missing_docs)]

pub mod config;
pub mod cost;
pub mod datapath;
pub mod drift;
pub mod error;
pub mod irdrop;
pub mod neurosim;
pub mod periphery;
pub mod reference;
pub mod stepped;
pub mod timing;

pub use config::{
    AdcArch, AdcConfig, AdcKind, AdcRange, CrossbarConfig, D2dDistribution, DacConfig, DeviceRange,
    DriftCompensation, EnergyConstants, InputEncoding, IrDrop, MappingConfig, NonIdealities,
    ReadNoiseModel, SignedScheme, TiaConfig, TimingConfig, VoltageErrorScope,
};
pub use cost::CrossbarCost;
pub use datapath::ProgrammedLayer;
pub use error::Error;
pub use periphery::{ActivationCircuit, AvgPoolCrossbar, max_pool_digital};
pub use timing::Geometry;
