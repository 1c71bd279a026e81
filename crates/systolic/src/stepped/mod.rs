//! The cycle-stepped model: PE registers that move data one hop per cycle, the weight-load or
//! read-out sequencer, and the accumulator buffer, advanced by [`SystolicSim::tick`].
//!
//! It computes the GEMM as a side effect of moving the data (so it is a second functional check
//! of [`gemm`](crate::gemm)), counts the same actions as [`analytic`](crate::analytic), and
//! optionally emits a trace. This file holds the state, the sequencing shared by both
//! dataflows and the trace; the register moves of each dataflow are in `ws.rs` and `os.rs`.
//!
//! # Registers (PE `(r, j)`, row-major over the R×C array)
//!
//! - `x`: the input operand, moving right one PE per cycle (both dataflows), entering row `r`
//!   at the left edge with a skew of `r` cycles. Kept twice (this cycle's and the next), so
//!   a hop is a copy from one to the other.
//! - WS: `weight` (active) and `weight_shadow` (with `double_buffer`), stationary; `psum` moves
//!   down one PE per cycle, and the bottom used row hands it to the accumulator buffer.
//! - OS: `weight` moves down one PE per cycle, entering column `j` at the top edge with a skew
//!   of `j` cycles; `psum` is the stationary accumulator, read out one row per cycle after the
//!   tile (from `out_shadow`, where the sums move first, with `double_buffer`).
//!
//! An empty register holds the marker `-32768`, which no int8 value takes; the MAC counters
//! count PEs holding an operand.
//!
//! # Trace signals (scope `systolic` unless [`SystolicSim::set_trace_scope`] says otherwise)
//!
//! | signal | width | meaning in cycle `c` |
//! |---|---|---|
//! | `busy` | 1 | some PE did a MAC |
//! | `row<r>.busy` | 1 | some PE of physical row `r` did a MAC (a WS K-tile of `a < R` rows sits in the bottom `a` rows) |
//! | `out_valid` | 1 | the output edge delivered data (WS: a partial or final sum left the bottom row; OS: a row was read out) |
//! | `tile` | 32 | index of the tile computing (holds the last one) |
//! | `weight_load` (WS) / `readout` (OS) | 1 | the stationary-operand transfer wrote/read one row |
//!
//! Spans: one per tile compute (`tile <i>`, category `compute`, on the scope's track) and one
//! per transfer (`load <i>` / `readout <i>`, on track `<scope>.xfer`).

use nacsim_core::config::{FieldError, Validate};
use nacsim_core::trace::{SignalId, TraceSink};
use ndarray::{Array2, ArrayView2};

use crate::config::{AccFormat, Dataflow, SystolicConfig};
use crate::tiling::{Tile, Tiling};
use crate::timing::{Tally, TimingReport};

mod os;
mod ws;

/// Why a stepped run could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config breaks one or more rules.
    #[error("systolic: invalid config: {}", FieldError::join(.0))]
    InvalidConfig(Vec<FieldError>),
    /// `x` and `w` disagree on the fan-in `K`.
    #[error("systolic: x is [{m}, {k}] but w is [{n}, {k_w}]: the fan-in K must agree")]
    ShapeMismatch {
        /// Rows of `x`.
        m: usize,
        /// Columns of `x`.
        k: usize,
        /// Rows of `w`.
        n: usize,
        /// Columns of `w`.
        k_w: usize,
    },
}

const EMPTY: i16 = i16::MIN;

/// The cycle-stepped R×C array running one GEMM `x [M, K] · w [N, K]ᵀ`.
///
/// ```
/// use ndarray::array;
/// use nacsim_systolic::{Dataflow, SystolicConfig, SystolicSim, analytic, gemm_ref};
/// let cfg = SystolicConfig::new(2, 2, Dataflow::WeightStationary);
/// let (x, w) = (array![[1i8, 2]], array![[3i8, 4], [5, 6]]);
/// let mut sim = SystolicSim::new(&cfg, x.view(), w.view())?;
/// while !sim.is_done() {
///     sim.tick();
/// }
/// assert_eq!(sim.report(), analytic(&cfg, 1, 2, 2));
/// assert_eq!(sim.into_output(), gemm_ref(x.view(), w.view()));
/// # Ok::<(), nacsim_systolic::Error>(())
/// ```
#[derive(Debug)]
pub struct SystolicSim<'a> {
    cfg: SystolicConfig,
    acc: AccFormat,
    x: ArrayView2<'a, i8>,
    w: ArrayView2<'a, i8>,
    tiling: Tiling,
    /// Streamed length `S`: `M` (WS) or `K` (OS).
    stream: usize,
    cycle: u64,
    // PE registers, row-major R×C.
    /// Input registers, rows of `C + 1`: slot 0 holds the value at the left edge, slot `1 + j`
    /// the register of PE `j`, so one hop right is `next[1 + j] = reg[j]` for every `j`.
    x_reg: Vec<i16>,
    /// The input registers being computed this cycle (swapped with `x_reg` at its end).
    x_next: Vec<i16>,
    weight: Vec<i16>,
    /// OS: the weights entering the top edge this cycle.
    w_edge: Vec<i16>,
    weight_shadow: Vec<i16>,
    psum: Vec<i32>,
    out_shadow: Vec<i32>,
    /// Accumulator / output buffer `[M, N]`.
    y: Array2<i32>,
    // Sequencer.
    next_compute: u64,
    next_load: u64,
    /// Tile computing, its cycle `τ` within the tile, and its start cycle.
    compute: Option<(Tile, usize, u64)>,
    /// Stationary transfer in progress: tile, rows done, start cycle.
    xfer: Option<(Tile, usize, u64)>,
    /// WS: tile whose weights are loaded but not yet computing. OS: tile whose sums wait in the
    /// PE accumulators for the read-out.
    ready: Option<Tile>,
    /// OS without double buffering: the accumulators are being read out.
    draining_accumulators: bool,
    tally: Tally,
    out_valid: bool,
    trace: Option<Trace>,
    scope: String,
    origin: u64,
}

#[derive(Debug)]
struct Trace {
    busy: SignalId,
    out_valid: SignalId,
    tile: SignalId,
    xfer: SignalId,
    rows: Vec<SignalId>,
    /// Last value emitted per signal, indexed like `[busy, out_valid, tile, xfer, rows…]`.
    last: Vec<u64>,
    row_busy: Vec<bool>,
}

impl<'a> SystolicSim<'a> {
    /// A simulator at cycle 0 with empty registers, for `x` (`[M, K]`) and `w` (`[N, K]`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `cfg` does not validate, [`Error::ShapeMismatch`] if `x` and
    /// `w` disagree on `K`.
    pub fn new(
        cfg: &SystolicConfig,
        x: ArrayView2<'a, i8>,
        w: ArrayView2<'a, i8>,
    ) -> Result<Self, Error> {
        cfg.validate().map_err(Error::InvalidConfig)?;
        let ((m, k), (n, k_w)) = (x.dim(), w.dim());
        if k != k_w {
            return Err(Error::ShapeMismatch { m, k, n, k_w });
        }
        let pes = cfg.rows * cfg.cols;
        Ok(SystolicSim {
            cfg: cfg.clone(),
            acc: cfg.acc(),
            x,
            w,
            tiling: Tiling::new(cfg, m, k, n),
            stream: match cfg.dataflow {
                Dataflow::WeightStationary => m,
                Dataflow::OutputStationary => k,
            },
            cycle: 0,
            x_reg: vec![EMPTY; cfg.rows * (cfg.cols + 1)],
            x_next: vec![EMPTY; cfg.rows * (cfg.cols + 1)],
            weight: vec![EMPTY; pes],
            w_edge: vec![EMPTY; cfg.cols],
            weight_shadow: vec![EMPTY; pes],
            psum: vec![0; pes],
            out_shadow: vec![0; pes],
            y: Array2::zeros((m, n)),
            next_compute: 0,
            next_load: 0,
            compute: None,
            xfer: None,
            ready: None,
            draining_accumulators: false,
            tally: Tally::default(),
            out_valid: false,
            trace: None,
            scope: "systolic".to_owned(),
            origin: 0,
        })
    }

    /// Names the trace unit `scope` (a dotted path, default `systolic`) and shifts every trace
    /// event by `origin` cycles, to place this GEMM on a longer timeline. Call before the first
    /// traced tick.
    pub fn set_trace_scope(&mut self, scope: &str, origin: u64) {
        self.scope = scope.to_owned();
        self.origin = origin;
    }

    /// Cycles simulated so far.
    pub fn cycle(&self) -> u64 {
        self.cycle
    }

    /// Whether every tile has computed and every result is written.
    pub fn is_done(&self) -> bool {
        self.next_compute == self.tiling.len()
            && self.compute.is_none()
            && self.xfer.is_none()
            && self.ready.is_none()
    }

    /// Final outputs written to the output buffer so far.
    pub fn outputs_written(&self) -> u64 {
        self.tally.output_writes
    }

    /// Whether the output edge delivered data in the last simulated cycle.
    pub fn out_valid(&self) -> bool {
        self.out_valid
    }

    /// Cycles and counts so far (the full report once [`is_done`](Self::is_done)).
    pub fn report(&self) -> TimingReport {
        self.tally.report(&self.cfg, self.cycle, self.tiling.len())
    }

    /// The output buffer `[M, N]` (complete once [`is_done`](Self::is_done)).
    pub fn into_output(self) -> Array2<i32> {
        self.y
    }

    /// Advances one cycle without tracing.
    pub fn tick(&mut self) {
        self.step(None);
    }

    /// Advances one cycle, reporting signal changes and finished spans to `sink` when it is
    /// enabled. Pass the same sink on every call: signals are declared on the first.
    pub fn tick_traced(&mut self, sink: &mut dyn TraceSink) {
        if sink.enabled() {
            if self.trace.is_none() {
                self.trace = Some(self.declare(sink));
            }
            self.step(Some(sink));
        } else {
            self.step(None);
        }
    }

    /// Ticks until done; returns the report.
    pub fn run(&mut self, sink: &mut dyn TraceSink) -> TimingReport {
        let traced = sink.enabled();
        while !self.is_done() {
            if traced {
                self.tick_traced(sink);
            } else {
                self.step(None);
            }
        }
        self.report()
    }

    fn declare(&self, sink: &mut dyn TraceSink) -> Trace {
        let s = &self.scope;
        let xfer = match self.cfg.dataflow {
            Dataflow::WeightStationary => "weight_load",
            Dataflow::OutputStationary => "readout",
        };
        let rows: Vec<_> = (0..self.cfg.rows)
            .map(|r| sink.declare_signal(&format!("{s}.row{r}"), "busy", 1))
            .collect();
        Trace {
            busy: sink.declare_signal(s, "busy", 1),
            out_valid: sink.declare_signal(s, "out_valid", 1),
            tile: sink.declare_signal(s, "tile", 32),
            xfer: sink.declare_signal(s, xfer, 1),
            last: vec![u64::MAX; 4 + rows.len()],
            row_busy: vec![false; rows.len()],
            rows,
        }
    }

    fn step(&mut self, sink: Option<&mut dyn TraceSink>) {
        let now = self.cycle;
        let mut ended: [Option<(Tile, u64, bool)>; 2] = [None, None];
        if let Some(t) = &mut self.trace {
            t.row_busy.fill(false);
        }
        self.out_valid = false;
        let macs_before = self.tally.macs;
        match self.cfg.dataflow {
            Dataflow::WeightStationary => self.step_ws(now, &mut ended),
            Dataflow::OutputStationary => self.step_os(now, &mut ended),
        }
        if let (Some(sink), Some(tr)) = (sink, &mut self.trace) {
            let c = now + self.origin;
            let computing = ended[0]
                .map(|e| e.0.index)
                .or(self.compute.map(|t| t.0.index));
            let tile = computing.unwrap_or(if tr.last[2] == u64::MAX {
                0
            } else {
                tr.last[2]
            });
            let head = [
                (tr.busy, u64::from(self.tally.macs > macs_before)),
                (tr.out_valid, u64::from(self.out_valid)),
                (tr.tile, tile),
                (
                    tr.xfer,
                    u64::from(self.xfer.is_some() || ended[1].is_some()),
                ),
            ];
            let rows = tr
                .rows
                .iter()
                .zip(&tr.row_busy)
                .map(|(&id, &b)| (id, u64::from(b)));
            for (i, (id, v)) in head.into_iter().chain(rows).enumerate() {
                if tr.last[i] != v {
                    tr.last[i] = v;
                    sink.change(c, id, v);
                }
            }
            for (tile, start, xfer) in ended.into_iter().flatten() {
                let (name, cat, track) = if xfer {
                    let what = match self.cfg.dataflow {
                        Dataflow::WeightStationary => "load",
                        Dataflow::OutputStationary => "readout",
                    };
                    (
                        format!("{what} {}", tile.index),
                        what,
                        format!("{}.xfer", self.scope),
                    )
                } else {
                    (
                        format!("tile {}", tile.index),
                        "compute",
                        self.scope.clone(),
                    )
                };
                sink.span(&name, cat, start + self.origin, c + 1, &track);
            }
        }
        self.cycle += 1;
    }

    /// Empties the moving operand registers of the tile's corner before it starts.
    fn clear_moving(&mut self, t: &Tile) {
        let c = self.cfg.cols;
        for r in 0..t.rows_used {
            let xs = r * (c + 1);
            self.x_reg[xs..xs + 1 + t.cols_used].fill(EMPTY);
            if self.cfg.dataflow == Dataflow::OutputStationary {
                self.weight[r * c..r * c + t.cols_used].fill(EMPTY);
                self.psum[r * c..r * c + t.cols_used].fill(0);
            }
        }
    }
}

/// An `acc`-bit wrapping adder, `shift = 32 − bits`.
#[inline(always)]
fn wrap(a: i32, b: i32, shift: u32) -> i32 {
    (a.wrapping_add(b) << shift) >> shift
}

#[inline(always)]
fn prod(x: i16, w: i16) -> i32 {
    i32::from(x) * i32::from(w)
}

/// Runs `x [M, K] · w [N, K]ᵀ` on the cycle-stepped array to completion, tracing to `sink` when
/// it is enabled (pass [`NullSink`](nacsim_core::NullSink) for none; `finish` is left to the
/// caller). Returns the output buffer and the report, equal to [`gemm`](crate::gemm) and
/// [`analytic`](crate::analytic).
///
/// # Errors
///
/// As [`SystolicSim::new`].
pub fn run_stepped(
    cfg: &SystolicConfig,
    x: ArrayView2<i8>,
    w: ArrayView2<i8>,
    sink: &mut dyn TraceSink,
) -> Result<(Array2<i32>, TimingReport), Error> {
    let mut sim = SystolicSim::new(cfg, x, w)?;
    let report = sim.run(sink);
    Ok((sim.into_output(), report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{arb_cfg_up_to, arb_gemm, cases, matrix};
    use crate::{Overflow, analytic, gemm, gemm_ref_acc};
    use nacsim_core::{Hertz, NullSink};
    use proptest::prelude::*;
    use std::io;

    /// Records every event, for checking what the model emits.
    struct Recorder {
        ids: nacsim_core::VcdSink<Vec<u8>>,
        names: Vec<String>,
        changes: Vec<(u64, usize, u64)>,
        spans: Vec<(String, u64, u64, String)>,
    }

    impl TraceSink for Recorder {
        fn enabled(&self) -> bool {
            true
        }
        fn declare_signal(&mut self, scope: &str, name: &str, width: u32) -> SignalId {
            self.names.push(format!("{scope}.{name}"));
            // Borrow a real sink's id allocation (ids are declaration indices).
            self.ids.declare_signal(scope, name, width)
        }
        fn change(&mut self, cycle: u64, id: SignalId, value: u64) {
            self.changes.push((cycle, id.index(), value));
        }
        fn span(&mut self, name: &str, _: &str, start: u64, end: u64, track: &str) {
            self.spans
                .push((name.to_owned(), start, end, track.to_owned()));
        }
        fn finish(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn sim<'a>(cfg: &SystolicConfig, x: &'a Array2<i8>, w: &'a Array2<i8>) -> SystolicSim<'a> {
        SystolicSim::new(cfg, x.view(), w.view()).unwrap()
    }

    /// Ticks `n` cycles and returns the final outputs written so far.
    fn after(sim: &mut SystolicSim, n: u64) -> u64 {
        while sim.cycle() < n {
            sim.tick();
        }
        sim.outputs_written()
    }

    #[test]
    fn ws_first_output_valid_exactly_at_load_plus_fill() {
        // 2×2 WS, M=1, K=2, N=2: weights load in cycles 0–1, x[0,0] meets PE(0,0) in cycle 2,
        // x[0,1] and the partial sum meet PE(1,0) in cycle 3: the first sum leaves at the end of
        // cycle 3, so it is written after 4 cycles = 2R (load R + fill R).
        let (x, w) = (matrix(1, 2, 1), matrix(2, 2, 2));
        for db in [false, true] {
            let cfg = SystolicConfig {
                double_buffer: db,
                ..SystolicConfig::new(2, 2, Dataflow::WeightStationary)
            };
            let mut s = sim(&cfg, &x, &w);
            assert_eq!(after(&mut s, 3), 0);
            assert!(!s.out_valid());
            assert_eq!(after(&mut s, 4), 1);
            assert!(s.out_valid());
            assert!(!s.is_done());
            assert_eq!(after(&mut s, 5), 2);
            assert!(s.is_done());
            assert_eq!(s.report().cycles, 5);
        }
    }

    #[test]
    fn os_first_output_valid_exactly_after_compute() {
        // 2×2 OS, M=1, K=2, N=2: the last MAC (PE(0,1), k=1) is in cycle K + 0 + 1 − 1 = 2; the
        // row is read out in cycle 3.
        let (x, w) = (matrix(1, 2, 1), matrix(2, 2, 2));
        let cfg = SystolicConfig::new(2, 2, Dataflow::OutputStationary);
        let mut s = sim(&cfg, &x, &w);
        assert_eq!(after(&mut s, 3), 0);
        assert_eq!(after(&mut s, 4), 2);
        assert!(s.is_done());
        assert_eq!(
            s.into_output(),
            gemm_ref_acc(x.view(), w.view(), 32, Overflow::Wrap)
        );
    }

    #[test]
    fn ws_weight_load_stalls_after_a_short_tile() {
        // R=4, C=1, M=1, K=5, N=2: tiles a = 4, 1, 4, 1 with L = a. Loading 4 rows behind a
        // 1-cycle tile stalls 3 cycles: 4 + 4 + max(1, 4) + 4 + 1 = 17 (no double buffer: 20).
        let (x, w) = (matrix(1, 5, 1), matrix(2, 5, 2));
        for (db, cycles) in [(true, 17), (false, 20)] {
            let cfg = SystolicConfig {
                double_buffer: db,
                ..SystolicConfig::new(4, 1, Dataflow::WeightStationary)
            };
            let (y, rep) = run_stepped(&cfg, x.view(), w.view(), &mut NullSink).unwrap();
            assert_eq!(rep.cycles, cycles);
            assert_eq!(rep, analytic(&cfg, 1, 5, 2));
            assert_eq!(y, gemm(&cfg, x.view(), w.view()));
        }
    }

    #[test]
    fn trace_marks_output_edge_rows_and_tiles() {
        let (x, w) = (matrix(1, 2, 1), matrix(2, 2, 2));
        let cfg = SystolicConfig::new(2, 2, Dataflow::WeightStationary);
        let mut rec = Recorder {
            ids: nacsim_core::VcdSink::new(Vec::new()),
            names: Vec::new(),
            changes: Vec::new(),
            spans: Vec::new(),
        };
        let mut s = sim(&cfg, &x, &w);
        s.set_trace_scope("layer0.array", 100);
        s.run(&mut rec);
        let id = |n: &str| rec.names.iter().position(|s| s == n).unwrap();
        let edges = |i: usize| -> Vec<(u64, u64)> {
            rec.changes
                .iter()
                .filter(|c| c.1 == i)
                .map(|c| (c.0, c.2))
                .collect()
        };
        assert_eq!(edges(id("layer0.array.out_valid")), [(100, 0), (103, 1)]);
        assert_eq!(edges(id("layer0.array.busy")), [(100, 0), (102, 1)]);
        assert_eq!(edges(id("layer0.array.weight_load")), [(100, 1), (102, 0)]);
        assert_eq!(edges(id("layer0.array.row1.busy")), [(100, 0), (103, 1)]);
        assert_eq!(
            rec.spans,
            [
                (
                    "load 0".to_owned(),
                    100,
                    102,
                    "layer0.array.xfer".to_owned()
                ),
                ("tile 0".to_owned(), 102, 105, "layer0.array".to_owned()),
            ]
        );
    }

    #[test]
    fn vcd_and_perfetto_sinks_accept_the_trace() {
        let (x, w) = (matrix(5, 7, 1), matrix(6, 7, 2));
        for dataflow in [Dataflow::WeightStationary, Dataflow::OutputStationary] {
            let cfg = SystolicConfig::new(4, 4, dataflow);
            let mut vcd = nacsim_core::VcdSink::new(Vec::new());
            let mut perfetto = nacsim_core::PerfettoSink::new(Vec::new(), Hertz::from_mhz(500.0));
            let (traced, rep) = {
                let mut tee = nacsim_core::Tee::new(vec![&mut vcd, &mut perfetto]);
                run_stepped(&cfg, x.view(), w.view(), &mut tee).unwrap()
            };
            // Tracing changes nothing.
            assert_eq!(
                (traced, rep),
                run_stepped(&cfg, x.view(), w.view(), &mut NullSink).unwrap()
            );
            vcd.finish().unwrap();
            perfetto.finish().unwrap();
            let vcd = String::from_utf8(vcd.into_inner()).unwrap();
            assert!(
                vcd.contains("out_valid") && vcd.contains("$scope module row3 $end"),
                "{vcd}"
            );
            let json = String::from_utf8(perfetto.into_inner()).unwrap();
            assert!(json.contains(r#""name":"tile 0""#), "{json}");
        }
    }

    #[test]
    fn bad_config_and_shapes_are_errors() {
        let (x, w) = (matrix(2, 3, 1), matrix(2, 4, 2));
        let cfg = SystolicConfig::new(2, 2, Dataflow::WeightStationary);
        let e = SystolicSim::new(&cfg, x.view(), w.view()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "systolic: x is [2, 3] but w is [2, 4]: the fan-in K must agree"
        );
        let bad = SystolicConfig::new(0, 2, Dataflow::WeightStationary);
        let e = SystolicSim::new(&bad, x.view(), x.view()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "systolic: invalid config: rows = 0: must be in 1..=4096"
        );
        // An empty GEMM takes no cycles.
        let empty = Array2::<i8>::zeros((0, 3));
        let (y, rep) = run_stepped(&cfg, empty.view(), x.view(), &mut NullSink).unwrap();
        assert_eq!((y.dim(), rep.cycles), ((0, 2), 0));
        assert_eq!(rep, analytic(&cfg, 0, 3, 2));
    }

    proptest! {
        #![proptest_config(cases(64))]

        #[test]
        fn stepped_equals_analytic_and_datapath(cfg in arb_cfg_up_to(16), (x, w) in arb_gemm(40)) {
            let (m, k, n) = (x.nrows(), x.ncols(), w.nrows());
            let (y, rep) = run_stepped(&cfg, x.view(), w.view(), &mut NullSink).unwrap();
            prop_assert_eq!(&rep, &analytic(&cfg, m, k, n));
            prop_assert_eq!(&y, &gemm(&cfg, x.view(), w.view()));
            if cfg.overflow == Overflow::Wrap {
                prop_assert_eq!(&y, &gemm_ref_acc(x.view(), w.view(), cfg.acc_bits, cfg.overflow));
            }
        }
    }
}
