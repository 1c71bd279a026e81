//! nacsim-circulant: block-circulant FC layers with power-of-two defining vectors, after BPCA
//! (Z. Qin et al., "Accelerating Deep Neural Networks by Combining Block-Circulant Matrices and
//! Low-Precision Weights", *Electronics* 8(1):78, 2019, doi:10.3390/electronics8010078).
//!
//! # Overview
//!
//! An FC weight `W` (m × n) is zero-padded and cut into `⌈m/k⌉ × ⌈n/k⌉` circulant k×k blocks,
//! each stored as one length-k defining vector; the vectors are quantized to `{0, ±2^e}` with b
//! bits, so a product is a shift and the layer stores `k·32/b` times fewer bits than fp32. The
//! accelerator computes one 16×16 circulant block per cycle with shifts and adds (the B-MV).
//! The reference for every formula and default is the engineering note
//! `docs/engines/notes/circulant.md` ("the note" below); provenance tags \[P\], \[S1\], \[D\] are the note's.
//!
//! | module | layer | what it gives |
//! |---|---|---|
//! | [`config`] | | [`CirculantConfig`] (the engine of a design), [`ArchConfig`], [`BmvConfig`]: every knob of the architecture, with its checks |
//! | [`reference`](mod@reference) | reference | [`BlockCirculant`], [`Convention`]: layout, padding, dense expansion, products, projection |
//! | [`training`] | reference | exact vector gradient (direct, [`vector_grad_fft`]), [`matvec_fft`], [`BlockCirculantKernel`] |
//! | [`pot`] | reference | [`PotConfig`], [`ExponentRange`], [`ShiftCode`], [`PotLayer`]; [`storage_bits`], [`compression_ratio`] |
//! | [`datapath`] | datapath | [`bmv_forward`]: BSUs, adder trees, accumulators, polyphase split; [`Writeback`]; [`int_reference`]; [`DenseLayer`]: a Dense layer compiled for the int8 seam |
//! | [`timing`] | timing | [`analytic`] cycles and counters of the parallel architecture; [`BmvCounters`]: the actions of a run |
//! | [`stepped`] | timing | [`run_stepped`] ([`BmvTimingSim`]): the cycle-stepped model, equal to [`analytic`] in every count |
//!
//! Energy is not modelled here: the timing counters are priced by an
//! [`EnergyTable`](nacsim_core::EnergyTable) elsewhere.
//!
//! # Example
//!
//! ```
//! use nacsim_circulant::{BlockCirculant, BmvConfig, Convention, PotConfig, bmv_forward, int_reference};
//!
//! let w = BlockCirculant::from_fn(40, 64, 16, Convention::FirstRow, |i, j, t| {
//!     ((i * 7 + j * 3 + t) % 11) as f64 / 11.0 - 0.5
//! })?;
//! let layer = PotConfig::new(3).quantize(&w)?;
//! assert!((layer.compression_ratio() - 40.0 * 64.0 * 32.0 / (3.0 * 64.0 * 3.0)).abs() < 1e-9);
//! let x: Vec<i32> = (0..64).map(|s| s * 37 % 200 - 100).collect();
//! let (y, counts) = bmv_forward(&BmvConfig::default(), &layer, &x)?;
//! let exact = int_reference(&layer.codes, &x)?;
//! assert!(y.iter().zip(&exact).all(|(a, b)| i128::from(*a) == *b));
//! assert_eq!(counts.cmvs, 3 * 4); // ⌈40/16⌉ · 64/16 blocks, one cycle each
//! # Ok::<(), nacsim_circulant::Error>(())
//! ```
#![deny(missing_docs)]

pub mod config;
pub mod datapath;
mod error;
pub mod pot;
pub mod reference;
pub mod stepped;
pub mod timing;
pub mod training;

#[cfg(test)]
mod testutil;

pub use config::{
    ArchConfig, BmvConfig, CirculantConfig, GAMMA, LoopOrder, Overflow, Split, Width,
};
pub use datapath::{
    DenseLayer, LayerShape, PreparedLayer, Writeback, bmv_forward, bsu, cmv, int_reference,
    pseudo_circulant,
};
pub use error::Error;
pub use pot::{ExponentRange, PotConfig, PotLayer, ShiftCode, compression_ratio, storage_bits};
pub use reference::{BlockCirculant, Convention, dense_matvec, reverse_index};
pub use stepped::{BmvTimingSim, run_stepped};
pub use timing::{BmvCounters, COUNTER_NAMES, TimingReport, analytic};
pub use training::{BlockCirculantKernel, FftPlan, LayerCompression, matvec_fft, vector_grad_fft};
