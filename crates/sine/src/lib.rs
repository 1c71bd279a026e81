//! nacsim-sine: the sine-approximation ("trigonometric inference") engine of Cai et al.,
//! "Trigonometric Inference Providing Learning in Deep Neural Networks", *Applied Sciences* 2021,
//! 11(15), 6704, doi:10.3390/app11156704.
//!
//! # Overview
//!
//! Weights and errors are approximated by their sines (`x ≈ sin x` for small `x`), and every
//! product `sin a · sin b` is computed through the product-to-sum identity with adds, absolute
//! values, two table reads and a subtract: exactly the datapath of a quarter-square multiplier with
//! a different table (note §1.3). A rectified-sine activation keeps layer inputs as sines. Only the
//! paper's abstract was available; the datapath follows the engineering note
//! `docs/engines/notes/sine.md` ("the note" below; section numbers refer to it), whose inferred choices
//! are all options here. `NOTES.md` in this crate lists where this crate reads the note
//! differently.
//!
//! | module | layer | what it gives |
//! |---|---|---|
//! | [`config`] | | [`SineEngineConfig`], [`SineNetworkConfig`], [`DatapathConfig`], [`RomConfig`], [`ProductConfig`], [`ProductKind`]: every knob, with its validation |
//! | [`format`](mod@format) | datapath | [`ProductFormat`] (`f`, `F`, operand range), table geometry `const fn`s, [`CodeRounding`], [`requantize`] |
//! | [`product`] | datapath | [`VersineTable`], [`CosTable`], [`QuarterSquareTable`], [`CoarseVersineTable`], [`Cordic`], [`SinCosTable`]; trait [`SineProduct`], enum [`SineUnit`] built from [`ProductConfig`] |
//! | [`datapath`] | datapath | [`Datapath`] (unit, lanes, issue width, depth) built from [`DatapathConfig`]; [`DenseLayer`]: a Dense layer at the int8 seam (angle codes, product sums) |
//! | [`activation`] | reference | [`RectifiedSine`] variants with derivatives and the angle handed on; first-layer [`InputEncoding`] |
//! | [`reference`](mod@reference) | reference | `sin a sin b`, CORDIC in real arithmetic, the note's error bounds |
//! | [`timing`] | timing | [`analytic`] and [`dense_layer`](timing::dense_layer) cycles and counters, [`COUNTER_NAMES`] |
//! | [`stepped`] | timing | [`SineSim`]: products moving one stage per cycle; [`run_stepped`] |
//! | [`training`] | reference | [`SineKernel`]: the sine-in-float plug of the training loop; [`ShiftRate`] |
//! | [`network`] | datapath | [`SineNetwork`]: bit-exact fixed-point inference of a sine-trained Dense network, [`DenseShape`] for [`timing::dense_layer`] |
//!
//! # Example
//!
//! ```
//! use nacsim_sine::{ProductFormat, SineProduct, VersineTable, QuarterSquareTable};
//!
//! // f = 8 operand bits, F = 16 product bits, |a|, |b| ≤ 0.5: a 257-entry, 14-bit table.
//! let fmt = ProductFormat::half_range(8, 16);
//! let g = VersineTable::new(fmt)?;
//! assert_eq!((g.entries().len(), g.width_bits()), (257, 14));
//! // a = 64/256 = 0.25: P = 4011 ≈ 2^16 · sin²(0.25) (exact product: 4096).
//! assert_eq!(g.product(64, 64), 4011);
//! let p = g.product(64, 64) as f64 / 65536.0;
//! assert!((p - 0.25f64.sin().powi(2)).abs() <= 1.0 / 65536.0);
//! // Same datapath, quarter-square table: exact.
//! assert_eq!(QuarterSquareTable::new(fmt)?.product(64, 64), 64 * 64);
//! # Ok::<(), nacsim_sine::Error>(())
//! ```
//!
//! # Layer
//!
//! Reference, bit-exact datapath and timing. No energy here: the counters (`products`,
//! `operand_reads`, `table_reads`, `adds`, `accumulates`, `output_writes`, `lane_cycles_idle`)
//! keep table reads apart from adds so an `EnergyTable` can price the tables on their own.
#![deny(missing_docs)]

pub mod activation;
pub mod config;
pub mod datapath;
pub mod error;
pub mod format;
pub mod network;
pub mod product;
pub mod reference;
pub mod stepped;
pub mod timing;
pub mod training;

pub use activation::{InputEncoding, RectifiedSine};
pub use config::{
    DatapathConfig, ProductConfig, ProductKind, RomConfig, SineEngineConfig, SineNetworkConfig,
};
pub use datapath::{Datapath, DenseLayer};
pub use error::Error;
pub use format::{CodeRounding, ProductFormat, quantize, requantize};
pub use network::{DenseShape, SineNetwork};
pub use product::{
    CoarseVersineTable, Cordic, CosTable, ProductCost, QuarterSquareTable, SinCosTable,
    SineProduct, SineUnit, VersineTable, weight_update,
};
pub use stepped::{SineSim, run_stepped};
pub use timing::{COUNTER_NAMES, TimingReport, analytic};
pub use training::{ShiftRate, SineKernel, power_of_two_rate};
