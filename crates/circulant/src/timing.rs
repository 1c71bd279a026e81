//! Cycle-accurate timing of the configurable parallel BPCA architecture: `num_bmv` B-MV units of
//! γ×γ lanes, a weight port, an input port, an accumulator bank, an output port, a loop order and
//! a pipeline depth. Two models with identical counts (property-tested): [`analytic`] (closed
//! form per wave, here) and [`run_stepped`](crate::run_stepped)
//! ([`BmvTimingSim`](crate::BmvTimingSim) in [`stepped`](crate::stepped), one tick per cycle).
//! No energy here: the counters are priced afterwards.
//!
//! # The model (inferred, note §2.4 and §5 #9, #11: the paper gives none of it)
//! - Work is cut into *tasks*, one per output sub-vector `Y_i^r` (`p·α` of them, γ outputs each),
//!   and *input sub-vectors* `X_j^β` (`q·α`). A *step* is one C-MV on every active unit: the
//!   units work on different tasks and share (broadcast) one input sub-vector.
//! - A step needs `active·γ·b` code bits and, unless the input sub-vector is already held, γ
//!   activations. The fetch stage gathers them at the port widths; a step issues in the cycle its
//!   operands are complete, so it takes `max(1, ⌈active·γ·b / weight_port⌉, ⌈γ / input_port⌉)`
//!   cycles (the excess over 1 is counted as `fetch_stall_cycles`).
//! - A step issued in cycle t leaves the last of `pipeline_depth` stages (fetch, BSU, two adder-
//!   tree stages, accumulate, note §2.2's recommended split) in cycle `t + depth − 1`.
//! - When the last step of a task group retires, its outputs (padding rows excluded) join an
//!   output queue, drained from the next cycle on at `output_port` values per cycle, overlapped
//!   with compute (double-buffered accumulators; the output buffer is assumed large enough).
//! - [`LoopOrder::OutputStationary`] (default, note §2.4): waves of `num_bmv` tasks, each
//!   running over all `q·α` input sub-vectors; accumulators needed: `num_bmv·γ`.
//!   [`LoopOrder::InputStationary`]: each input sub-vector is fetched once and used by every task
//!   in waves of `num_bmv`; accumulators needed: all `p·k` outputs.
//! - Codes and activations are resident in on-chip SRAM (as the paper's 12.7 mm² of SRAM
//!   suggests, note §2.4); DRAM transfers are not modelled.

use nacsim_core::Counters;

pub use crate::config::{ArchConfig, LoopOrder, Width};
use crate::{Error, LayerShape};

/// The counter names as constants, so that a reader of a counter (the scheduler's adapter, an
/// energy table) misspelling one fails to compile instead of pricing 0.
pub mod counter {
    /// The `acc_adds` counter.
    pub const ACC_ADDS: &str = "acc_adds";
    /// The `act_reads` counter.
    pub const ACT_READS: &str = "act_reads";
    /// The `bmv_busy_cycles` counter.
    pub const BMV_BUSY_CYCLES: &str = "bmv_busy_cycles";
    /// The `bmv_idle_cycles` counter.
    pub const BMV_IDLE_CYCLES: &str = "bmv_idle_cycles";
    /// The `cmvs` counter.
    pub const CMVS: &str = "cmvs";
    /// The `code_reads` counter.
    pub const CODE_READS: &str = "code_reads";
    /// The `fetch_stall_cycles` counter.
    pub const FETCH_STALL_CYCLES: &str = "fetch_stall_cycles";
    /// The `output_writes` counter.
    pub const OUTPUT_WRITES: &str = "output_writes";
    /// The `shifts` counter.
    pub const SHIFTS: &str = "shifts";
    /// The `tree_adds` counter.
    pub const TREE_ADDS: &str = "tree_adds";
}

/// Names of the counters every [`TimingReport`] carries (all present, possibly 0).
pub const COUNTER_NAMES: [&str; 10] = [
    counter::ACC_ADDS,
    counter::ACT_READS,
    counter::BMV_BUSY_CYCLES,
    counter::BMV_IDLE_CYCLES,
    counter::CMVS,
    counter::CODE_READS,
    counter::FETCH_STALL_CYCLES,
    counter::OUTPUT_WRITES,
    counter::SHIFTS,
    counter::TREE_ADDS,
];

impl ArchConfig {
    /// The plan of a layer: derived sizes, checked.
    pub(crate) fn plan(&self, shape: &LayerShape) -> Result<Plan, Error> {
        self.validate()?;
        self.bmv.check_shape(shape)?;
        let g = self.bmv.gamma as u64;
        let k = shape.k as u64;
        let alpha = k / g;
        let (p, q) = (
            shape.rows.div_ceil(shape.k) as u64,
            shape.cols.div_ceil(shape.k) as u64,
        );
        let units = self.num_bmv as u64;
        let tasks = p * alpha;
        let acc_needed = match self.loop_order {
            LoopOrder::OutputStationary => units.min(tasks) * g,
            LoopOrder::InputStationary => tasks * g,
        };
        let acc = self.acc_bank_values.or(acc_needed);
        if acc < acc_needed {
            return Err(Error::Capacity {
                field: "acc_bank_values",
                value: acc,
                needed: acc_needed,
            });
        }
        let bits = u64::from(shape.bits);
        let weight_port = self.weight_port_bits.or(units * g * bits);
        let input_port = self.input_port_acts.or(g);
        Ok(Plan {
            g,
            alpha,
            k,
            q,
            rows: shape.rows as u64,
            units,
            tasks,
            bits,
            weight_port,
            input_port,
            output_port: self.output_port_values.or(units * g),
            depth: u64::from(self.pipeline_depth),
            order: self.loop_order,
        })
    }
}

/// Derived sizes of one layer on one architecture (shared by both models).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub(crate) g: u64,
    pub(crate) alpha: u64,
    pub(crate) k: u64,
    pub(crate) q: u64,
    pub(crate) rows: u64,
    pub(crate) units: u64,
    pub(crate) tasks: u64,
    pub(crate) bits: u64,
    pub(crate) weight_port: u64,
    pub(crate) input_port: u64,
    pub(crate) output_port: u64,
    pub(crate) depth: u64,
    pub(crate) order: LoopOrder,
}

impl Plan {
    /// Cycles to fetch one step's operands.
    pub(crate) fn step_cycles(&self, active: u64, new_input: bool) -> u64 {
        let w = (active * self.g * self.bits).div_ceil(self.weight_port);
        let x = if new_input {
            self.g.div_ceil(self.input_port)
        } else {
            0
        };
        w.max(x).max(1)
    }

    /// Real (unpadded) outputs of task `(i, r)`: `#{m < γ : i·k + m·α + r < rows}`.
    pub(crate) fn task_outputs(&self, task: u64) -> u64 {
        let (i, r) = (task / self.alpha, task % self.alpha);
        let base = i * self.k + r;
        if base >= self.rows {
            0
        } else {
            ((self.rows - base).div_ceil(self.alpha)).min(self.g)
        }
    }
}

/// Cycles and action counts of one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct TimingReport {
    /// Cycles from the first fetch to the last output written.
    pub cycles: u64,
    /// Action counts keyed by [`COUNTER_NAMES`].
    pub counters: Counters,
    /// `shifts + tree_adds + acc_adds` (the paper's op count, note §5 #8).
    pub ops: u64,
    /// `ops / (peak_ops_per_cycle · cycles)`, in [0, 1].
    pub utilization: f64,
}

/// Action counts of a B-MV run (no energy here; the cost layer prices them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BmvCounters {
    /// γ×γ circulant products, one per busy cycle of one B-MV.
    pub cmvs: u64,
    /// BSU operations (shift + conditional negate), γ² per C-MV, zero codes included.
    pub shifts: u64,
    /// Two-input adds in the adder trees, γ·(γ − 1) per C-MV.
    pub tree_adds: u64,
    /// Accumulator adds, γ per C-MV.
    pub acc_adds: u64,
    /// Codes read from the weight buffer, γ per C-MV.
    pub code_reads: u64,
    /// Activations read from the input buffer, γ per C-MV.
    pub act_reads: u64,
    /// Accumulator values written back (padding rows excluded).
    pub output_writes: u64,
}

impl BmvCounters {
    /// The actions of `cmvs` γ×γ C-MVs that wrote `output_writes` values back: per C-MV γ²
    /// BSU shifts, γ·(γ − 1) adder-tree adds, γ accumulator adds, γ code reads and γ activation
    /// reads (the datapath of note §2.2; the timing model re-reads activations only when the
    /// input sub-vector changes, see [`TimingReport`]).
    pub fn of_cmvs(cmvs: u64, output_writes: u64, gamma: u64) -> Self {
        BmvCounters {
            cmvs,
            shifts: cmvs * gamma * gamma,
            tree_adds: cmvs * gamma * (gamma - 1),
            acc_adds: cmvs * gamma,
            code_reads: cmvs * gamma,
            act_reads: cmvs * gamma,
            output_writes,
        }
    }

    /// Ops as the paper counts them (note §5 #8): shifts + adds, 512 per 16×16 C-MV.
    pub fn ops(&self) -> u64 {
        self.shifts + self.tree_adds + self.acc_adds
    }
}

/// Plain tally of the counters, bumped in both models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) cmvs: u64,
    pub(crate) code_reads: u64,
    pub(crate) act_reads: u64,
    pub(crate) output_writes: u64,
    pub(crate) fetch_stall_cycles: u64,
}

impl Tally {
    pub(crate) fn step(&mut self, plan: &Plan, active: u64, new_input: bool, cycles: u64) {
        self.cmvs += active;
        self.code_reads += active * plan.g;
        if new_input {
            self.act_reads += plan.g;
        }
        self.fetch_stall_cycles += cycles - 1;
    }

    pub(crate) fn report(&self, cfg: &ArchConfig, plan: &Plan, cycles: u64) -> TimingReport {
        let g = plan.g;
        let mut c = Counters::new();
        let BmvCounters {
            shifts,
            tree_adds,
            acc_adds,
            ..
        } = BmvCounters::of_cmvs(self.cmvs, self.output_writes, g);
        for (name, v) in [
            ("acc_adds", acc_adds),
            ("act_reads", self.act_reads),
            ("bmv_busy_cycles", self.cmvs),
            ("bmv_idle_cycles", plan.units * cycles - self.cmvs),
            ("cmvs", self.cmvs),
            ("code_reads", self.code_reads),
            ("fetch_stall_cycles", self.fetch_stall_cycles),
            ("output_writes", self.output_writes),
            ("shifts", shifts),
            ("tree_adds", tree_adds),
        ] {
            c.add(name, v);
        }
        let ops = shifts + tree_adds + acc_adds;
        TimingReport {
            cycles,
            counters: c,
            ops,
            utilization: ops as f64 / (cfg.peak_ops_per_cycle() * cycles) as f64,
        }
    }
}

/// Output queue drained at `port` values per cycle, advanced by whole intervals (the analytic
/// model's counterpart of the stepped writeback stage).
struct Drain {
    port: u64,
    backlog: u64,
    next: u64,
    last_write: Option<u64>,
}

impl Drain {
    /// `n` outputs join the queue at the end of cycle `t` (after that cycle's writeback).
    fn push(&mut self, t: u64, n: u64) {
        if t + 1 > self.next {
            // Cycles next..=t drain the backlog first.
            let span = t + 1 - self.next;
            let cycles = self.backlog.div_ceil(self.port).min(span);
            if cycles > 0 {
                self.last_write = Some(self.next + cycles - 1);
            }
            self.backlog -= self.backlog.min(self.port * span);
            self.next = t + 1;
        }
        self.backlog += n;
    }

    /// The cycle of the last write once everything has drained.
    fn finish(mut self) -> Option<u64> {
        if self.backlog > 0 {
            self.last_write = Some(self.next + self.backlog.div_ceil(self.port) - 1);
        }
        self.last_write
    }
}

/// Cycles and counts of one layer in closed form per wave (no per-cycle loop).
///
/// # Errors
/// From [`ArchConfig::validate`], [`BmvConfig::check_shape`](crate::BmvConfig::check_shape), or [`Error::Capacity`] for an
/// accumulator bank smaller than the loop order needs.
pub fn analytic(cfg: &ArchConfig, shape: &LayerShape) -> Result<TimingReport, Error> {
    let plan = cfg.plan(shape)?;
    let mut t = Tally::default();
    let mut drain = Drain {
        port: plan.output_port,
        backlog: 0,
        next: 0,
        last_write: None,
    };
    let waves = plan.tasks.div_ceil(plan.units);
    let active = |w: u64| plan.units.min(plan.tasks - w * plan.units);
    let inputs = plan.q * plan.alpha;
    let mut issued = 0u64; // cycles consumed by fetches so far
    match plan.order {
        LoopOrder::OutputStationary => {
            for w in 0..waves {
                let a = active(w);
                let c = plan.step_cycles(a, true);
                for _ in 0..inputs {
                    t.step(&plan, a, true, c);
                }
                issued += inputs * c;
                let outs: u64 = (w * plan.units..w * plan.units + a)
                    .map(|task| plan.task_outputs(task))
                    .sum();
                drain.push(issued - 1 + plan.depth - 1, outs);
                t.output_writes += outs;
            }
        }
        LoopOrder::InputStationary => {
            for _ in 0..inputs {
                for w in 0..waves {
                    let (a, fresh) = (active(w), w == 0);
                    let c = plan.step_cycles(a, fresh);
                    t.step(&plan, a, fresh, c);
                    issued += c;
                }
            }
            drain.push(issued - 1 + plan.depth - 1, plan.rows);
            t.output_writes += plan.rows;
        }
    }
    let last_retire = issued - 1 + plan.depth - 1;
    let end = drain.finish().map_or(last_retire, |w| w.max(last_retire));
    Ok(t.report(cfg, &plan, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BmvConfig;
    use crate::stepped::run_stepped;
    use crate::testutil::cases;
    use proptest::prelude::*;

    fn shape(rows: usize, cols: usize, k: usize, bits: u32) -> LayerShape {
        LayerShape {
            rows,
            cols,
            k,
            bits,
        }
    }

    #[test]
    fn fc4096_takes_65536_cycles_plus_pipeline_fill_at_409_6_gops() {
        let cfg = ArchConfig::default();
        assert!((cfg.peak_gops(800.0) - 409.6).abs() < 1e-9);
        for k in [16, 256] {
            let r = analytic(&cfg, &shape(4096, 4096, k, 3)).unwrap();
            assert!((65_536..=65_536 + 16).contains(&r.cycles), "{}", r.cycles);
            assert_eq!(r.cycles, 65_536 + 5); // depth − 1 + one writeback cycle
            assert_eq!(r.counters.get("cmvs"), 65_536);
            assert_eq!(r.ops, 512 * 65_536);
            assert!(r.utilization > 0.9999);
            assert_eq!(r.counters.get("fetch_stall_cycles"), 0);
        }
        // AlexNet FC, padded (note §4 item 4): 229,120 cycles of compute.
        let cmvs: u64 = [(4096, 9216), (4096, 4096), (1000, 4096)]
            .iter()
            .map(|&(m, n)| {
                analytic(&cfg, &shape(m, n, 16, 4))
                    .unwrap()
                    .counters
                    .get("cmvs")
            })
            .sum();
        assert_eq!(cmvs, 229_120);
    }

    #[test]
    fn exact_cycles_of_small_cases() {
        // One 16×16 block, depth 5: issue at 0, retire at 4, written at 5 → 6 cycles.
        let cfg = ArchConfig::default();
        let r = run_stepped(&cfg, &shape(16, 16, 16, 3)).unwrap();
        assert_eq!(r.cycles, 6);
        let d1 = ArchConfig {
            pipeline_depth: 1,
            ..cfg
        };
        assert_eq!(run_stepped(&d1, &shape(16, 16, 16, 3)).unwrap().cycles, 2);
        // A 32-bit weight port at b = 4 needs two cycles per step.
        let narrow = ArchConfig {
            weight_port_bits: Width::Fixed(32),
            ..cfg
        };
        let r = run_stepped(&narrow, &shape(16, 32, 16, 4)).unwrap();
        assert_eq!(r.cycles, 4 + 4 + 1); // steps issue at 1 and 3, retire at 7, write at 8
        assert_eq!(r.counters.get("fetch_stall_cycles"), 2);
    }

    #[test]
    fn loop_orders_trade_input_reads_for_accumulators() {
        let s = shape(64, 128, 16, 3);
        let os = analytic(&ArchConfig::default(), &s).unwrap();
        let is_cfg = ArchConfig {
            loop_order: LoopOrder::InputStationary,
            ..ArchConfig::default()
        };
        let is = analytic(&is_cfg, &s).unwrap();
        assert_eq!(os.counters.get("act_reads"), 4 * 128);
        assert_eq!(is.counters.get("act_reads"), 128);
        assert_eq!(os.counters.get("cmvs"), is.counters.get("cmvs"));
        let small = ArchConfig {
            acc_bank_values: Width::Fixed(32),
            ..is_cfg
        };
        assert_eq!(
            analytic(&small, &s).unwrap_err().to_string(),
            "circulant.acc_bank_values = 32: too small, the layer needs 64"
        );
        let bad = ArchConfig {
            num_bmv: 0,
            ..ArchConfig::default()
        };
        assert_eq!(
            run_stepped(&bad, &s).unwrap_err().to_string(),
            "circulant.num_bmv = 0: must be > 0"
        );
        assert!(matches!(
            analytic(&ArchConfig::default(), &shape(64, 64, 48, 3)),
            Err(Error::BlockSize { k: 48, .. })
        ));
        assert!(matches!(
            analytic(&ArchConfig::default(), &shape(64, 64, 16, 1)),
            Err(Error::Param { field: "bits", .. })
        ));
    }

    #[test]
    fn timing_counts_match_the_datapath_run() {
        use crate::{BlockCirculant, Convention, PotConfig, bmv_forward};
        for (rows, cols, k) in [(40, 70, 16), (64, 64, 32), (100, 64, 64)] {
            let bc = BlockCirculant::from_fn(rows, cols, k, Convention::FirstColumn, |i, j, t| {
                ((i * 5 + j * 3 + t) % 9) as f64 - 4.0
            })
            .unwrap();
            let layer = PotConfig::new(4).quantize(&bc).unwrap();
            let (_, n) = bmv_forward(&BmvConfig::default(), &layer, &vec![1; cols]).unwrap();
            let t = analytic(&ArchConfig::default(), &LayerShape::of(&layer)).unwrap();
            assert_eq!(t.counters.get("cmvs"), n.cmvs);
            assert_eq!(t.counters.get("shifts"), n.shifts);
            assert_eq!(t.counters.get("tree_adds"), n.tree_adds);
            assert_eq!(t.counters.get("acc_adds"), n.acc_adds);
            assert_eq!(t.counters.get("code_reads"), n.code_reads);
            assert_eq!(t.counters.get("act_reads"), n.act_reads);
            assert_eq!(t.counters.get("output_writes"), n.output_writes);
            assert_eq!(t.ops, n.ops());
        }
    }

    #[test]
    fn config_reads_from_ron_with_defaults() {
        let cfg: ArchConfig = ron::from_str(
            "(num_bmv: 2, loop_order: InputStationary, weight_port_bits: Fixed(64), \
              bmv: (acc_bits: 48, overflow: Saturate))",
        )
        .unwrap();
        assert_eq!(cfg.num_bmv, 2);
        assert_eq!(cfg.pipeline_depth, 5);
        assert_eq!(cfg.bmv.gamma, 16);
        assert_eq!(cfg.bmv.overflow, crate::Overflow::Saturate);
        let back: ArchConfig = ron::from_str(&ron::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        assert!(ron::from_str::<ArchConfig>("(num_bmvs: 2)").is_err());
    }

    fn arb_width(max: u64) -> impl Strategy<Value = Width> {
        prop_oneof![2 => Just(Width::Matched), 1 => (1..=max).prop_map(Width::Fixed)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn stepped_counts_equal_analytic_counts(
            rows in 1usize..200, cols in 1usize..200,
            k in prop_oneof![Just(16usize), Just(32), Just(64)],
            bits in 2u32..=6, num_bmv in 1usize..=5, depth in 1u32..=8, is: bool,
            weight_port in arb_width(200), input_port in arb_width(20), output_port in arb_width(40),
        ) {
            prop_assume!(rows >= k || cols >= k);
            let cfg = ArchConfig {
                num_bmv,
                pipeline_depth: depth,
                loop_order: if is { LoopOrder::InputStationary } else { LoopOrder::OutputStationary },
                weight_port_bits: weight_port,
                input_port_acts: input_port,
                output_port_values: output_port,
                bmv: BmvConfig { acc_bits: 64, ..BmvConfig::default() },
                ..ArchConfig::default()
            };
            let s = shape(rows, cols, k, bits);
            let a = analytic(&cfg, &s).unwrap();
            let st = run_stepped(&cfg, &s).unwrap();
            prop_assert_eq!(&a, &st);
            prop_assert_eq!(a.counters.get("output_writes"), rows as u64);
            prop_assert_eq!(
                a.counters.get("cmvs"),
                (rows.div_ceil(k) * cols.div_ceil(k) * (k / 16) * (k / 16)) as u64
            );
            prop_assert!(a.utilization <= 1.0);
        }
    }
}
