//! nacsim-core: the foundation shared by every nacsim crate.
//!
//! # Overview
//!
//! | module | what it models |
//! |---|---|
//! | [`units`] | [`Cycles`], [`Picojoules`], [`Hertz`], [`Seconds`] and the report formulas ([`gops`], [`tops_per_watt`]) |
//! | [`counters`] | [`Counters`]: named action counts (`shift_adds`, `sram_reads`) bumped by timing models |
//! | [`energy`] | [`EnergyTable`]: pJ per action with its source; `E = Σ count_a · e_a` |
//! | [`tech`] | [`Technology`]: area (µm²) and leakage (µW) per component at one node, with sources; SRAM by capacity, converters by bits, memristor cells in F² |
//! | [`rng`] | [`Stream`]: keyed counter-based random draws, a pure function of `(seed, purpose, layer, trial, index)`; the one Box–Muller ([`rng::box_muller`]) |
//! | [`keyed`] | [`keyed::Keyed`]: cheap counter-hash draws (the workspace's one SplitMix64, [`keyed::mix64`]; `lowbias32`) for the per-read and per-weight hot loops, taken from a [`Stream`] |
//! | [`gemm`] | [`gemm::gemm_i8`]: the plain int8 × int8 → int32 product, the oracle of every integer GEMM |
//! | [`cpu`] | run-time checks for the AVX-512/AVX2 paths of the loops dispatched by hand (new loops use `multiversion`) |
//! | [`memory`] | the memory guard: a request's estimate checked against `NACSIM_MEMORY_LIMIT` or 3/4 of physical memory |
//! | [`config`] | RON loading ([`config::load`]) with errors naming file, line/column or field path, value and rule |
//! | [`trace`] | [`TraceSink`] and its VCD, Perfetto, CSV and null implementations |
//!
//! # Layer
//!
//! Cost: counters × energy table after a run, and the time/throughput conversions of a report.
//! The other modules serve every layer (configs, randomness, traces).
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use nacsim_core::{Counters, Cycles, EnergyTable, Hertz, config, gops, tops_per_watt};
//!
//! let table: EnergyTable = config::parse(
//!     r#"(schema_version: 1, name: "demo", source: "made-up numbers for the example",
//!         energy_pj: {"shift_adds": 0.05, "sram_reads": 2.0})"#,
//!     Path::new("demo.ron"),
//! )?;
//!
//! let mut counters = Counters::new();
//! counters.add("shift_adds", 1_000);
//! counters.add("sram_reads", 10);
//!
//! let energy = table.cost(&counters)?;
//! assert_eq!(energy.total.0, 70.0); // 1000·0.05 + 10·2.0 pJ
//!
//! let clock = Hertz::from_mhz(500.0);
//! let t = Cycles(250).at(clock); // 500 ns
//! let ops = 2_000;
//! println!("{:.1} GOPS @ {clock}, {:.1} TOPS/W", gops(ops, t), tops_per_watt(ops, energy.total));
//! assert!((gops(ops, t) - 4.0).abs() < 1e-9);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod config;
pub mod counters;
pub mod cpu;
pub mod energy;
pub mod gemm;
pub mod keyed;
pub mod memory;
pub mod rng;
pub mod tech;
pub mod trace;
pub mod units;

pub use config::{Checks, ConfigError, FieldError, Validate};
pub use counters::Counters;
pub use energy::{ENERGY_SCHEMA_VERSION, EnergyError, EnergyReport, EnergyTable};
pub use rng::{Purpose, RngKey, Stream};
pub use tech::{TECH_SCHEMA_VERSION, Technology};
pub use trace::{CsvSink, NullSink, PerfettoSink, SignalId, Tee, TraceSink, VcdSink};
pub use units::{Cycles, Hertz, Picojoules, Seconds, gops, tops_per_watt};

/// Re-exported so downstream crates name the same generator type as [`Stream::rng`] returns.
pub use rand_chacha::ChaCha8Rng;

/// Any error from this crate, for callers that handle them together.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Loading or writing a config failed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Costing counters failed.
    #[error(transparent)]
    Energy(#[from] EnergyError),
}

pub mod testing {
    //! Helpers for the workspace's tests.

    /// Property-test case count: `PROPTEST_CASES` when set to a number, else `default`.
    /// (`proptest::test_runner::Config::with_cases` ignores the variable, so CI counts stay
    /// moderate by default and can be raised locally.)
    pub fn proptest_cases(default: u32) -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}
