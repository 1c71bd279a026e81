//! nacsim-systolic: the baseline engine, an R×C int8 systolic MAC array.
//!
//! # Overview
//!
//! The conventional digital accelerator every multiplier-light design is measured against:
//! int8 × int8 products accumulated in an `acc_bits`-bit (default 32) adder chain, on a
//! weight-stationary (WS, TPU v1-like) or output-stationary (OS) R×C array, with a vector unit
//! behind the output edge for requantization and pooling. A layer reaches the engine as a GEMM
//! `y [M, N] = x [M, K] · w [N, K]ᵀ` (Dense directly, Conv2d after im2col).
//!
//! | module | layer | what it gives |
//! |---|---|---|
//! | [`config`] | | [`SystolicConfig`]: R, C, [`Dataflow`], accumulator, double buffering, vector lanes |
//! | [`reference`](mod@reference) | reference | [`gemm_ref`]: the workspace's int8 oracle ([`nacsim_core::gemm::gemm_i8`]) on views; [`gemm_ref_acc`]: the same three plain loops with a narrow or saturating adder |
//! | [`datapath`] | datapath | [`gemm`] in the array's order of additions; [`gemm_fast`], the exact fast path (each instruction set's kernel tested against the oracle) |
//! | [`tiling`] | timing | [`Tiling`]: how a GEMM is cut into R×C tiles and in which order they run |
//! | [`timing`] | timing | [`analytic`] cycles and action counts, [`peak_ops_per_cycle`], [`vector_cycles`] |
//! | [`stepped`] | timing | [`SystolicSim`]: registers moving one PE per cycle, with traces; [`run_stepped`] |
//!
//! The stepped and analytic models give the same cycles and counters, and the stepped model's
//! result equals [`gemm`] (property-tested). `docs/engines/systolic.md` derives the cycle
//! formulas and compares them with SCALE-Sim v2.
//!
//! # Example
//!
//! ```
//! use nacsim_core::NullSink;
//! use nacsim_systolic::{Dataflow, SystolicConfig, analytic, gemm_fast, peak_ops_per_cycle, run_stepped};
//! use ndarray::Array2;
//!
//! let cfg = SystolicConfig::new(8, 8, Dataflow::WeightStationary);
//! let x = Array2::from_shape_fn((20, 30), |(m, k)| ((m * 7 + k * 3) % 255) as u8 as i8);
//! let w = Array2::from_shape_fn((12, 30), |(n, k)| ((n * 5 + k * 11) % 255) as u8 as i8);
//!
//! let (y, stepped) = run_stepped(&cfg, x.view(), w.view(), &mut NullSink)?;
//! let fast = analytic(&cfg, 20, 30, 12);
//! assert_eq!(stepped, fast);
//! assert_eq!(y, gemm_fast(x.view(), w.view()));
//! assert_eq!(fast.counters.get("macs"), 20 * 30 * 12);
//! // 4 K-tiles × 2 N-blocks; each tile computes in M + a + c − 2 cycles.
//! assert_eq!(fast.tiles, 8);
//! println!("{} cycles, {:.0}% of {} ops/cycle", fast.cycles, 100.0 * fast.utilization, peak_ops_per_cycle(&cfg));
//! # Ok::<(), nacsim_systolic::Error>(())
//! ```
//!
//! # Layer
//!
//! Reference, datapath and timing of the int8 baseline engine. No energy here: the counters
//! (`macs`, `input_reads`, `weight_reads`, `weight_loads`, `psum_reads`, `psum_writes`,
//! `output_writes`, `requants`, `pe_cycles_active`, `pe_cycles_idle`) are priced afterwards by an
//! [`EnergyTable`](nacsim_core::EnergyTable).
#![deny(missing_docs)]

pub mod config;
pub mod datapath;
pub mod reference;
pub mod stepped;
pub mod tiling;
pub mod timing;

#[cfg(test)]
mod testutil;

pub use config::{AccFormat, Dataflow, Overflow, SystolicConfig};
pub use datapath::{gemm, gemm_fast};
pub use reference::{gemm_ref, gemm_ref_acc};
pub use stepped::{Error, SystolicSim, run_stepped};
pub use tiling::{Tile, Tiling};
pub use timing::{COUNTER_NAMES, TimingReport, analytic, peak_ops_per_cycle, vector_cycles};
