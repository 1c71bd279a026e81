//! Datapath timing of the sine MAC unit: lanes, pipeline stages and table ROM ports (note §2.6,
//! §2.5), with an [`analytic`] fast path. The cycle-stepped model is [`SineSim`](crate::SineSim);
//! both give the same cycles and counters (property-tested).
//!
//! # Model
//!
//! A job is a list of dot products `y_o = Σ_k P(a_ok, b_ok)`. Their products form one stream, in
//! order, issued into `L` lanes (`lanes`). Each product flows through the pipeline of its unit:
//!
//! | stage | table units (note §2.6) | CORDIC (note §2.5) |
//! |---|---|---|
//! | S0 | read `i`, `j` | read `i`, `j` |
//! | S1 | `s = i+j`, `d = i−j` | `s = i+j`, `d = i−j` |
//! | S2 | `\|s\|`, `\|d\|` | `\|s\|`, `\|d\|` |
//! | S3 | two table reads | `n` stages, one iteration each, two cosines in parallel |
//! | S4 | `P = G[\|s\|] − G[\|d\|]` | `P = (x_d − x_s)` rounded |
//! | S5 | `acc += P` | `acc += P` |
//!
//! so the depth is `D = 6` for table units and `D = n + 5` for CORDIC. The ROM holds
//! `copies × ports_per_copy` read ports shared by all lanes; every product reads it twice in S3,
//! so at most `E = min(L, ⌊ports / 2⌋)` products issue per cycle (`E = L` for CORDIC). With `T`
//! products in total:
//!
//! ```text
//! cycles = ⌈T / E⌉ + D − 1        (0 for T = 0)
//! ```
//!
//! counted from the first operand read to the last accumulate.
//!
//! # Counters
//!
//! Table reads are kept apart from adds so the cost of the tables stays visible.
//!
//! | counter | value |
//! |---|---|
//! | `products` | `T` |
//! | `operand_reads` | `2T` |
//! | `table_reads` | `T ·` [`ProductCost::table_reads`](crate::ProductCost::table_reads) (2 or 0) |
//! | `adds` | `T ·` [`ProductCost::adds`](crate::ProductCost::adds) (5, or `6n + 5` for CORDIC), accumulation excluded |
//! | `accumulates` | `T` |
//! | `output_writes` | number of dot products |
//! | `lane_cycles_idle` | `L · cycles − T` (issue slots not used: ROM ports, fill, drain) |

use nacsim_core::Counters;
use serde::{Deserialize, Serialize};

use crate::datapath::Datapath;

/// The counter names as constants, so that a reader of a counter (the scheduler's adapter, an
/// energy table) misspelling one fails to compile instead of pricing 0.
pub mod counter {
    /// The `accumulates` counter.
    pub const ACCUMULATES: &str = "accumulates";
    /// The `adds` counter.
    pub const ADDS: &str = "adds";
    /// The `lane_cycles_idle` counter.
    pub const LANE_CYCLES_IDLE: &str = "lane_cycles_idle";
    /// The `operand_reads` counter.
    pub const OPERAND_READS: &str = "operand_reads";
    /// The `output_writes` counter.
    pub const OUTPUT_WRITES: &str = "output_writes";
    /// The `products` counter.
    pub const PRODUCTS: &str = "products";
    /// The `table_reads` counter.
    pub const TABLE_READS: &str = "table_reads";
}

/// Names of every action counter the timing models report, in lexicographic order.
pub const COUNTER_NAMES: [&str; 7] = [
    counter::ACCUMULATES,
    counter::ADDS,
    counter::LANE_CYCLES_IDLE,
    counter::OPERAND_READS,
    counter::OUTPUT_WRITES,
    counter::PRODUCTS,
    counter::TABLE_READS,
];

/// Pipeline depth of the table units, stages S0–S5 of note §2.6.
pub const TABLE_PIPELINE_STAGES: u32 = 6;

/// Cycles and action counts of one job, from [`analytic`] or the stepped model (which agree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingReport {
    /// Cycles from the first operand read to the last accumulate.
    pub cycles: u64,
    /// Action counts keyed by [`COUNTER_NAMES`] (all present, possibly 0).
    pub counters: Counters,
}

/// The counts as plain fields, bumped in the stepped model's loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub accumulates: u64,
    pub adds: u64,
    pub operand_reads: u64,
    pub output_writes: u64,
    pub products: u64,
    pub table_reads: u64,
}

impl Tally {
    pub(crate) fn report(&self, lanes: u32, cycles: u64) -> TimingReport {
        let counts = [
            self.accumulates,
            self.adds,
            lanes as u64 * cycles - self.products,
            self.operand_reads,
            self.output_writes,
            self.products,
            self.table_reads,
        ];
        TimingReport {
            cycles,
            counters: COUNTER_NAMES.into_iter().zip(counts).collect(),
        }
    }
}

/// Cycles and counters of dot products of lengths `lengths` on `dp`, by the formula in the module
/// docs; equal to [`SineSim`](crate::SineSim) in every count. `O(len)` time.
pub fn analytic(dp: &Datapath, lengths: &[usize]) -> TimingReport {
    let t: u64 = lengths.iter().map(|&n| n as u64).sum();
    closed_form(dp, t, lengths.len() as u64)
}

/// The formula shared by [`analytic`] and [`dense_layer`]: `t` products in `dots` dot products,
/// issued `issue_width` per cycle through a `depth`-stage pipeline.
fn closed_form(dp: &Datapath, t: u64, dots: u64) -> TimingReport {
    let cycles = if t == 0 {
        0
    } else {
        t.div_ceil(dp.issue_width as u64) + dp.depth as u64 - 1
    };
    let c = dp.cost();
    Tally {
        accumulates: t,
        adds: t * c.adds as u64,
        operand_reads: 2 * t,
        output_writes: dots,
        products: t,
        table_reads: t * c.table_reads as u64,
    }
    .report(dp.lanes, cycles)
}

/// Cycles and counters of one Dense layer over `rows` input vectors: `rows · out` dot products
/// of length `fan_in` (every product is issued, zeros included, as the datapath has no zero
/// skipping), by the formula of [`analytic`] without building the list of lengths. Table reads
/// (`table_reads`) are counted apart from adds (`adds`, accumulation excluded, see
/// [`COUNTER_NAMES`]).
///
/// ```
/// use nacsim_sine::{DatapathConfig, ProductConfig, ProductFormat, ProductKind, RomConfig};
/// use nacsim_sine::timing::{analytic, dense_layer};
/// let dp = DatapathConfig {
///     product: ProductConfig { format: ProductFormat::half_range(10, 24), kind: ProductKind::Versine },
///     lanes: 8,
///     rom: RomConfig { ports_per_copy: 2, copies: 8 },
/// }
/// .build()?;
/// let r = dense_layer(&dp, 1, 784, 256);
/// assert_eq!(r, analytic(&dp, &vec![784; 256]));
/// assert_eq!(r.cycles, (784 * 256u64).div_ceil(8) + 5);
/// assert_eq!(r.counters.get("table_reads"), 2 * 784 * 256);
/// # Ok::<(), nacsim_sine::Error>(())
/// ```
pub fn dense_layer(dp: &Datapath, rows: usize, fan_in: usize, out: usize) -> TimingReport {
    let dots = rows as u64 * out as u64;
    closed_form(dp, dots * fan_in as u64, dots)
}
