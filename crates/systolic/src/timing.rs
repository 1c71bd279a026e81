//! Timing of the R×C array: the analytic fast path, the report both timing models produce, and
//! the peak rate. The cycle-stepped model is [`SystolicSim`](crate::SystolicSim).
//!
//! # Model (full derivation in `docs/engines/systolic.md`)
//!
//! A GEMM `x [M, K] · w [N, K]ᵀ` runs as tiles (see [`Tiling`]): N-blocks of `c ≤ C` outputs on
//! the columns (outer loop) × row tiles of `a ≤ R` on the rows (inner loop): K-tiles under WS,
//! M-tiles under OS. Let `S` be the streamed length (`M` under WS, `K` under OS). One tile:
//!
//! ```text
//! compute   L = S + a + c − 2       cycles from the first operand entering the array to the
//!                                   last result leaving it (skew fill a−1, c−1 + S beats)
//! transfer  a                       of the stationary operand, one array row per cycle:
//!                                   WS writes the tile's a×c weights before it computes,
//!                                   OS reads the a×c outputs out after it computes
//! ```
//!
//! Tiles do not overlap their compute phases (each drains before the next fills, as in
//! SCALE-Sim). With `double_buffer` the transfer of one tile overlaps the compute of its
//! neighbour; a transfer longer than that compute stalls the array:
//!
//! ```text
//! WS, double_buffer:  cycles = a_0 + Σ_{t<T−1} max(L_t, a_{t+1}) + L_{T−1}
//! OS, double_buffer:  cycles = L_0 + Σ_{t≥1}  max(L_t, a_{t−1}) + a_{T−1}
//! no double_buffer:   cycles = Σ_t (a_t + L_t)                     (both dataflows)
//! ```
//!
//! For a full WS tile without double buffering this is `2R + C + M − 2` per tile, SCALE-Sim
//! v2's per-fold count; OS compute `K + R + C − 2` equals SCALE-Sim's OS fold.
//!
//! A smaller array is never faster without double buffering; with it, only when the GEMM is
//! latency-bound (`S + min(N, C) ≤ R`), where a shallower array can overlap one short tile's
//! compute with the next tile's transfer (example and argument in `docs/engines/systolic.md`).
//!
//! # Counters
//!
//! | counter | WS | OS |
//! |---|---|---|
//! | `macs` | `M·K·N` | `M·K·N` |
//! | `pe_cycles_active` | PE-cycles doing a MAC (= `macs`: no padding MACs, idle PEs are gated) | same |
//! | `pe_cycles_idle` | `R·C·cycles − pe_cycles_active` | same |
//! | `input_reads` | `M·K·⌈N/C⌉` (x re-streamed per N-block) | `M·K·⌈N/C⌉` |
//! | `weight_reads` | `K·N` (each weight read once from SRAM) | `K·N·⌈M/R⌉` (re-streamed per M-tile) |
//! | `weight_loads` | `K·N` (written into PE weight registers) | 0 (weights only pass through) |
//! | `psum_reads`, `psum_writes` | `M·N·(⌈K/R⌉ − 1)` each (accumulator buffer, across K-tiles) | 0 (accumulated in the PE) |
//! | `output_writes` | `M·N` final sums written | `M·N` |
//! | `requants` | `M·N` (vector unit behind the output edge) | `M·N` |
//!
//! Requantization is pipelined behind the output edge, which yields at most `C` results per
//! cycle, so with `requant_lanes ≥ C` (the default) it adds no array cycles; its cost is the
//! `requants` count. Separate vector passes (pooling, or requantization with fewer lanes) take
//! [`vector_cycles`].

use nacsim_core::Counters;
use serde::{Deserialize, Serialize};

use crate::config::{Dataflow, SystolicConfig};
use crate::tiling::{Tile, Tiling};

/// The counter names as constants, so that a reader of a counter (the scheduler's adapter, an
/// energy table) misspelling one fails to compile instead of pricing 0.
pub mod counter {
    /// The `input_reads` counter.
    pub const INPUT_READS: &str = "input_reads";
    /// The `macs` counter.
    pub const MACS: &str = "macs";
    /// The `output_writes` counter.
    pub const OUTPUT_WRITES: &str = "output_writes";
    /// The `pe_cycles_active` counter.
    pub const PE_CYCLES_ACTIVE: &str = "pe_cycles_active";
    /// The `pe_cycles_idle` counter.
    pub const PE_CYCLES_IDLE: &str = "pe_cycles_idle";
    /// The `psum_reads` counter.
    pub const PSUM_READS: &str = "psum_reads";
    /// The `psum_writes` counter.
    pub const PSUM_WRITES: &str = "psum_writes";
    /// The `requants` counter.
    pub const REQUANTS: &str = "requants";
    /// The `weight_loads` counter.
    pub const WEIGHT_LOADS: &str = "weight_loads";
    /// The `weight_reads` counter.
    pub const WEIGHT_READS: &str = "weight_reads";
}

/// Names of every action counter the timing models report, in lexicographic order.
pub const COUNTER_NAMES: [&str; 10] = [
    counter::INPUT_READS,
    counter::MACS,
    counter::OUTPUT_WRITES,
    counter::PE_CYCLES_ACTIVE,
    counter::PE_CYCLES_IDLE,
    counter::PSUM_READS,
    counter::PSUM_WRITES,
    counter::REQUANTS,
    counter::WEIGHT_LOADS,
    counter::WEIGHT_READS,
];

/// Cycles and action counts of one GEMM on the array, from [`analytic`] or the stepped model
/// (which agree exactly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingReport {
    /// Cycles from the first weight write (WS) or first operand (OS) to the last output written.
    pub cycles: u64,
    /// Action counts, keyed by the names in [`COUNTER_NAMES`] (all present, possibly 0).
    pub counters: Counters,
    /// Number of tiles (folds, in SCALE-Sim's words).
    pub tiles: u64,
    /// `macs / (R·C·cycles)`, in `[0, 1]`; 0 for an empty GEMM.
    pub utilization: f64,
}

/// The same counts as plain fields, bumped in the stepped model's hot loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub input_reads: u64,
    pub macs: u64,
    pub output_writes: u64,
    pub psum_reads: u64,
    pub psum_writes: u64,
    pub requants: u64,
    pub weight_loads: u64,
    pub weight_reads: u64,
}

impl Tally {
    /// The report for a run of `cycles` cycles and `tiles` tiles on `cfg`'s array.
    pub(crate) fn report(&self, cfg: &SystolicConfig, cycles: u64, tiles: u64) -> TimingReport {
        let pe_cycles = (cfg.rows * cfg.cols) as u64 * cycles;
        let counts = [
            self.input_reads,
            self.macs,
            self.output_writes,
            self.macs,
            pe_cycles - self.macs,
            self.psum_reads,
            self.psum_writes,
            self.requants,
            self.weight_loads,
            self.weight_reads,
        ];
        TimingReport {
            cycles,
            counters: COUNTER_NAMES.into_iter().zip(counts).collect(),
            tiles,
            utilization: if pe_cycles == 0 {
                0.0
            } else {
                self.macs as f64 / pe_cycles as f64
            },
        }
    }
}

/// Compute cycles `L = S + a + c − 2` of `tile`, where `stream` is `S` (`M` under WS, `K` under OS).
pub(crate) fn compute_cycles(tile: &Tile, stream: usize) -> u64 {
    (stream + tile.rows_used + tile.cols_used - 2) as u64
}

/// Cycles of the tile sequence by the per-tile recurrence of the module docs, tile by tile:
/// `O(tiles)`. The oracle of [`analytic`]'s closed form (tested equal).
pub fn tile_by_tile_cycles(cfg: &SystolicConfig, m: usize, k: usize, n: usize) -> u64 {
    let tiling = Tiling::new(cfg, m, k, n);
    let ws = cfg.dataflow == Dataflow::WeightStationary;
    let stream = if ws { m } else { k };
    let mut cycles = 0u64;
    let mut prev: Option<(usize, usize)> = None;
    for t in tiling.iter() {
        let t = (t.rows_used, t.cols_used);
        cycles += step(cfg, ws, stream, prev, t);
        prev = Some(t);
    }
    cycles + finish(cfg, ws, stream, prev)
}

/// Cycles charged when tile `t` (rows used, columns used) follows `prev`.
fn step(
    cfg: &SystolicConfig,
    ws: bool,
    stream: usize,
    prev: Option<(usize, usize)>,
    t: (usize, usize),
) -> u64 {
    let compute = |(r, c): (usize, usize)| (stream + r + c - 2) as u64;
    let load = |(r, _): (usize, usize)| r as u64;
    match (cfg.double_buffer, ws, prev) {
        (false, _, _) => load(t) + compute(t),
        // WS: the load of t ran during the compute of t−1 (or alone, for t = 0).
        (true, true, None) => load(t),
        (true, true, Some(p)) => compute(p).max(load(t)),
        // OS: t computes while t−1 is read out; t's own read-out is added at the end.
        (true, false, None) => compute(t),
        (true, false, Some(p)) => compute(t).max(load(p)),
    }
}

/// Cycles after the last tile `last` (double buffering: its compute (WS) or read-out (OS)).
fn finish(cfg: &SystolicConfig, ws: bool, stream: usize, last: Option<(usize, usize)>) -> u64 {
    match (cfg.double_buffer, last) {
        (true, Some((r, c))) => {
            if ws {
                (stream + r + c - 2) as u64
            } else {
                r as u64
            }
        }
        _ => 0,
    }
}

/// Cycles and action counts of an `m × k × n` GEMM (`x: [m, k]`, `w: [n, k]`) on `cfg`'s array,
/// by the formulas in the module docs; equal to the cycle-stepped model's in every count.
///
/// Runs in `O(1)` time: tiles run row tiles inside column blocks, and every tile is full but
/// those of the last row tile or the last column block, so the per-tile recurrence
/// ([`tile_by_tile_cycles`]) sums over a handful of distinct (previous, current) pairs.
///
/// # Panics
///
/// If `cfg.rows` or `cfg.cols` is 0 (an invalid config).
pub fn analytic(cfg: &SystolicConfig, m: usize, k: usize, n: usize) -> TimingReport {
    let tiling = Tiling::new(cfg, m, k, n);
    let ws = cfg.dataflow == Dataflow::WeightStationary;
    let stream = if ws { m } else { k };
    let (rt, ct) = (tiling.row_tiles() as u64, tiling.col_tiles() as u64);
    let mut cycles = 0u64;
    let mut last = None;
    if rt > 0 && ct > 0 {
        let row_dim = if ws { k } else { m };
        let r_last = row_dim - (rt as usize - 1) * cfg.rows;
        let c_last = n - (ct as usize - 1) * cfg.cols;
        let rows_of = |i: u64| if i + 1 == rt { r_last } else { cfg.rows };
        // One column block of `cols` columns after `prev`: its cycles and its last tile.
        let block = |cols: usize, prev: Option<(usize, usize)>| {
            let first = (rows_of(0), cols);
            let mut sum = step(cfg, ws, stream, prev, first);
            if rt >= 2 {
                let full = (cfg.rows, cols);
                // Tiles 1..rt−1 are full (their predecessors too); the last may be partial.
                sum = sum
                    .saturating_add((rt - 2).saturating_mul(step(
                        cfg,
                        ws,
                        stream,
                        Some(full),
                        full,
                    )))
                    .saturating_add(step(cfg, ws, stream, Some(full), (r_last, cols)));
            }
            (sum, (r_last, cols))
        };
        let cols_of = |j: u64| if j + 1 == ct { c_last } else { cfg.cols };
        let (first_sum, after_first) = block(cols_of(0), None);
        cycles = first_sum;
        last = Some(after_first);
        if ct >= 2 {
            // Blocks 1..ct−1 follow a full block's last tile, as block 1 does.
            let (mid_sum, after_mid) = block(cfg.cols, Some(after_first));
            let prev = if ct > 2 { after_mid } else { after_first };
            let (last_sum, after_last) = block(c_last, Some(prev));
            cycles = cycles
                .saturating_add((ct - 2).saturating_mul(mid_sum))
                .saturating_add(last_sum);
            last = Some(after_last);
        }
    }
    cycles = cycles.saturating_add(finish(cfg, ws, stream, last));
    let (m, k, n) = (m as u64, k as u64, n as u64);
    let (row_tiles, col_tiles) = (tiling.row_tiles() as u64, tiling.col_tiles() as u64);
    let tally = if tiling.is_empty() {
        Tally::default()
    } else if ws {
        Tally {
            input_reads: m * k * col_tiles,
            macs: m * k * n,
            output_writes: m * n,
            psum_reads: m * n * (row_tiles - 1),
            psum_writes: m * n * (row_tiles - 1),
            requants: m * n,
            weight_loads: k * n,
            weight_reads: k * n,
        }
    } else {
        Tally {
            input_reads: m * k * col_tiles,
            macs: m * k * n,
            output_writes: m * n,
            requants: m * n,
            weight_reads: k * n * row_tiles,
            ..Tally::default()
        }
    };
    tally.report(cfg, cycles, tiling.len())
}

/// Peak int8 operations per cycle of the array, `2·R·C` (a MAC counts as two ops). Multiply by
/// the design clock for peak ops/s.
pub fn peak_ops_per_cycle(cfg: &SystolicConfig) -> u64 {
    2 * (cfg.rows * cfg.cols) as u64
}

/// Cycles of the vector unit for a separate pass over `elements` values (pooling, or a
/// requantization pass): `⌈elements / requant_lanes⌉`.
pub fn vector_cycles(cfg: &SystolicConfig, elements: u64) -> u64 {
    elements.div_ceil(cfg.requant_lanes().max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{arb_cfg_up_to, cases};
    use proptest::prelude::*;

    fn cfg(rows: usize, cols: usize, dataflow: Dataflow, double_buffer: bool) -> SystolicConfig {
        SystolicConfig {
            double_buffer,
            ..SystolicConfig::new(rows, cols, dataflow)
        }
    }

    #[test]
    fn counters_of_a_small_ws_and_os_gemm() {
        // M=5, K=10, N=7 on 4×3: WS 3 K-tiles × 3 N-blocks, OS 2 M-tiles × 3 N-blocks.
        let ws = analytic(&cfg(4, 3, Dataflow::WeightStationary, true), 5, 10, 7);
        let c = |r: &TimingReport, n: &str| r.counters.get(n);
        assert_eq!(ws.tiles, 9);
        assert_eq!(c(&ws, "macs"), 350);
        assert_eq!(c(&ws, "input_reads"), 5 * 10 * 3);
        assert_eq!((c(&ws, "weight_reads"), c(&ws, "weight_loads")), (70, 70));
        assert_eq!((c(&ws, "psum_reads"), c(&ws, "psum_writes")), (70, 70));
        assert_eq!((c(&ws, "output_writes"), c(&ws, "requants")), (35, 35));
        assert_eq!(c(&ws, "pe_cycles_idle"), 12 * ws.cycles - 350);
        let os = analytic(&cfg(4, 3, Dataflow::OutputStationary, true), 5, 10, 7);
        assert_eq!(os.tiles, 6);
        assert_eq!(c(&os, "weight_reads"), 70 * 2);
        assert_eq!((c(&os, "weight_loads"), c(&os, "psum_reads")), (0, 0));
        let names: Vec<_> = os.counters.iter().map(|(n, _)| n).collect();
        assert_eq!(names, COUNTER_NAMES);
        assert_eq!(
            peak_ops_per_cycle(&cfg(32, 32, Dataflow::WeightStationary, true)),
            2048
        );
        assert_eq!(
            vector_cycles(&cfg(4, 3, Dataflow::OutputStationary, true), 10),
            4
        );
    }

    #[test]
    fn full_ws_tile_without_double_buffer_matches_scale_sim_fold() {
        // SCALE-Sim v2 WS: every fold takes 2R + C + M − 2 cycles (R to load weights, then
        // M rows streamed with R − 1 + C − 1 skew and R … drain), folds back to back.
        for (r, c, m, k, n) in [(32, 32, 64, 64, 64), (8, 4, 100, 24, 12), (3, 5, 1, 3, 5)] {
            let rep = analytic(&cfg(r, c, Dataflow::WeightStationary, false), m, k, n);
            let folds = (k / r * n / c) as u64;
            assert_eq!(
                rep.cycles,
                folds * (2 * r + c + m - 2) as u64,
                "{r}x{c} {m},{k},{n}"
            );
            // OS computes a fold in SCALE-Sim's K + R + C − 2 and reads out R rows after it.
            let rep = analytic(&cfg(r, c, Dataflow::OutputStationary, false), k, m, n);
            let folds = (k / r * n / c) as u64;
            assert_eq!(rep.cycles, folds * (m + r + c - 2 + r) as u64);
        }
    }

    /// The FC 784 → 256 layer at batch 64 on 32×32 (SCALE-Sim's reference workload).
    #[test]
    fn fc_784x256_batch_64_on_32x32() {
        let ws = analytic(&cfg(32, 32, Dataflow::WeightStationary, true), 64, 784, 256);
        // 25 K-tiles (24 full + 16 rows) × 8 N-blocks; L = 126 (full) or 110 (16-row tile).
        assert_eq!(ws.tiles, 200);
        assert_eq!(ws.cycles, 32 + 8 * (24 * 126 + 110));
        let scale_sim_ws = 200 * (2 * 32 + 32 + 64 - 2);
        assert_eq!(scale_sim_ws, 31_600);
        let no_db = analytic(
            &cfg(32, 32, Dataflow::WeightStationary, false),
            64,
            784,
            256,
        );
        assert_eq!(no_db.cycles, 8 * (24 * (32 + 126) + 16 + 110));
    }

    /// Checks that none of the `shrinks` (rows, cols) of `cfg` is faster on `m × k × n`.
    fn check_shrinks(
        cfg: &SystolicConfig,
        shrinks: [(usize, usize); 3],
        (m, k, n): (usize, usize, usize),
    ) -> Result<(), TestCaseError> {
        let base = analytic(cfg, m, k, n).cycles;
        for (rows, cols) in shrinks {
            let half = SystolicConfig {
                rows,
                cols,
                ..cfg.clone()
            };
            let cycles = analytic(&half, m, k, n).cycles;
            prop_assert!(
                cycles >= base,
                "{}x{} → {rows}x{cols}: {base} → {cycles}",
                cfg.rows,
                cfg.cols
            );
        }
        Ok(())
    }

    #[test]
    fn latency_bound_double_buffered_array_can_be_slower_than_its_half() {
        // 2×2 WS, M=1, K=2, N=1: load 2 rows, fill 2 rows = 4 cycles. A 1×2 array loads row 0,
        // then multiplies it while loading row 1 into the shadow registers: 1 + 1 + 1 = 3.
        let big = analytic(&cfg(2, 2, Dataflow::WeightStationary, true), 1, 2, 1);
        let half = analytic(&cfg(1, 2, Dataflow::WeightStationary, true), 1, 2, 1);
        assert_eq!((big.cycles, half.cycles), (4, 3));
    }

    proptest! {
        #![proptest_config(cases(64))]

        /// The closed form of `analytic` equals the per-tile recurrence for any array, dataflow,
        /// buffering and GEMM shape (partial last row tile and column block included).
        #[test]
        fn closed_form_cycles_equal_the_tile_by_tile_recurrence(
            rows in 1usize..=9, cols in 1usize..=9, m in 0usize..=40, k in 0usize..=40,
            n in 0usize..=40, os in any::<bool>(), double_buffer in any::<bool>(),
        ) {
            let dataflow = if os { Dataflow::OutputStationary } else { Dataflow::WeightStationary };
            let c = cfg(rows, cols, dataflow, double_buffer);
            prop_assert_eq!(analytic(&c, m, k, n).cycles, tile_by_tile_cycles(&c, m, k, n));
        }

        /// With K a multiple of R (WS) or M a multiple of R (OS), N a multiple of C and the
        /// streamed length S ≥ R, no tile ever stalls on a transfer: the run takes exactly
        /// T·(S + R + C − 2) + R cycles, i.e. peak 2·R·C ops/cycle is lost only to each tile's
        /// skew fill and drain (R + C − 2 cycles) and one exposed transfer of R cycles.
        #[test]
        fn fully_utilized_layer_reaches_peak_within_pipeline_fill(
            rows in 1usize..=16, cols in 1usize..=16, a in 1usize..=4, b in 1usize..=4,
            extra in 0usize..=200, os in any::<bool>(),
        ) {
            let s = rows + extra;
            let (dataflow, m, k) = if os {
                (Dataflow::OutputStationary, a * rows, s)
            } else {
                (Dataflow::WeightStationary, s, a * rows)
            };
            let c = cfg(rows, cols, dataflow, true);
            let n = b * cols;
            let rep = analytic(&c, m, k, n);
            let tiles = (a * b) as u64;
            prop_assert_eq!(rep.cycles, tiles * (s + rows + cols - 2) as u64 + rows as u64);
            let ops = 2.0 * (m * k * n) as f64;
            let peak = peak_ops_per_cycle(&c) as f64;
            let bound = peak * s as f64 / (s + rows + cols - 2 + rows) as f64;
            prop_assert!(ops / rep.cycles as f64 >= bound * (1.0 - 1e-12));
            prop_assert!(ops / rep.cycles as f64 <= peak);
        }

        /// Halving the rows, the columns or both never makes a GEMM faster, unless the array is
        /// latency-bound (see the module docs): without double buffering for any shrink, with it
        /// for exact halving when `S + min(N, C) > R`.
        #[test]
        fn halving_the_array_never_decreases_cycles(
            cfg in arb_cfg_up_to(32), m in 1usize..=80, k in 1usize..=80, n in 1usize..=80,
        ) {
            let (r, c) = (cfg.rows, cfg.cols);
            if !cfg.double_buffer {
                let shrinks = [(r.div_ceil(2), c), (r, c.div_ceil(2)), (r.div_ceil(2), c.div_ceil(2))];
                check_shrinks(&cfg, shrinks, (m, k, n))?;
            } else {
                let (r, c) = ((r / 2 * 2).max(2), (c / 2 * 2).max(2));
                let even = SystolicConfig { rows: r, cols: c, ..cfg.clone() };
                let stream = if cfg.dataflow == Dataflow::WeightStationary { m } else { k };
                if stream + n.min(c) > r {
                    check_shrinks(&even, [(r / 2, c), (r, c / 2), (r / 2, c / 2)], (m, k, n))?;
                }
            }
        }
    }
}
